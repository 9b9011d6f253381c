//! Wire formats of the e-CO. Each converts explicitly between its wire shape and
//! `originlink_model::Certificate`; wire types never leak into the model.
//!
//! Architecture invariant: no IO here either (callers hand in bytes); every reader is
//! hardened against hostile input and returns every problem it finds, never panics.
//!
//! # Layout
//! - [`xml`]: OASIS UBL 2.4 CertificateOfOrigin (hardened reader, writer).
//! - [`json`]: UN/CEFACT edi3 CertificateOfOrigin JSON (reader, writer).
//! - [`Limits`], [`Format`], [`detect`], [`read`]: what both share.

use originlink_model::{Certificate, Problem};

pub mod json;
pub mod xml;

/// Default largest document accepted: 5 MB.
pub const DEFAULT_MAX_BYTES: usize = 5 * 1024 * 1024;

/// Limits applied by the readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest document, in bytes. Larger input gets `DOCUMENT_TOO_LARGE`.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: DEFAULT_MAX_BYTES }
    }
}

/// A wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// UBL 2.4 XML.
    Xml,
    /// edi3 JSON.
    Json,
}

/// Tells XML from JSON by the first non-blank byte (after an optional UTF-8 BOM).
pub fn detect(bytes: &[u8]) -> Option<Format> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match bytes.iter().find(|b| !b.is_ascii_whitespace())? {
        b'<' => Some(Format::Xml),
        b'{' => Some(Format::Json),
        _ => None,
    }
}

/// Problem codes meaning the input is not a readable certificate document at all (the CLI
/// exits 2 on these, 1 on every other problem), besides the [`LIMIT_CODES`].
pub const UNREADABLE: &[&str] = &[
    "FORMAT_UNKNOWN",
    "DOCUMENT_TOO_LARGE",
    "ENCODING",
    "XML_MALFORMED",
    "XML_WRONG_ROOT",
    "XML_WRONG_NAMESPACE",
    "JSON_MALFORMED",
];

/// Problem codes meaning the input goes past a hard bound on untrusted XML (size, depth,
/// attributes, nodes, name or value length, namespaces, DTD): refused before parsing.
pub const LIMIT_CODES: &[&str] = originlink_xmlbounds::Exceeded::CODES;

/// Whether any of the problems means the input could not be read as a document.
pub fn is_unreadable(problems: &[Problem]) -> bool {
    problems.iter().any(|p| UNREADABLE.contains(&p.code.as_str()) || LIMIT_CODES.contains(&p.code.as_str()))
}

/// Reads a certificate in either format and validates it against its agreement. On failure,
/// every problem found, with paths in the document's own format (XPath for XML, JSON
/// pointers for JSON).
pub fn read_valid(bytes: &[u8], limits: &Limits) -> Result<(Format, Certificate), Vec<Problem>> {
    let (format, cert) = read(bytes, limits)?;
    let problems = originlink_model::validate(&cert);
    if problems.is_empty() {
        return Ok((format, cert));
    }
    Err(problems
        .into_iter()
        .map(|mut p| {
            p.path = match format {
                Format::Xml => xml::xpath_for(&p.path),
                Format::Json => json::pointer_for(&p.path),
            };
            p
        })
        .collect())
}

/// Reads a certificate in either format. On failure, every problem found.
pub fn read(bytes: &[u8], limits: &Limits) -> Result<(Format, Certificate), Vec<Problem>> {
    match detect(bytes) {
        Some(Format::Xml) => xml::read(bytes, limits).map(|c| (Format::Xml, c)),
        Some(Format::Json) => json::read(bytes, limits).map(|c| (Format::Json, c)),
        None => Err(vec![Problem::new(
            "FORMAT_UNKNOWN",
            "/",
            "neither XML (starts with '<') nor JSON (starts with '{')",
        )]),
    }
}
