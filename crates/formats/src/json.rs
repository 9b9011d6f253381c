//! UN/CEFACT edi3 CertificateOfOrigin JSON. Mapping table: `docs/formats.md` (`## edi3 JSON`).
//!
//! The document is an edi3 `CertificateOfOrigin`: edi3's own properties carry every box they
//! can (parties, countries, ports, departure, HS code, origin criterion, invoice, issue). What
//! edi3 has no property for (box 13 flags, quantities, packages, FOB, the application reference,
//! version, the approved exporter's code, …) goes into one root object, [`EXTENSION`], whose
//! `items` array runs parallel to the goods lines.
//!
//! Writing: one `includedConsignmentItems` entry per goods line, each with one
//! `tradeLineItems` entry, because edi3 states the origin criterion per consignment item.
//! Reading: every trade line item of every consignment item is one goods line (so foreign
//! edi3 documents that group lines also read). Properties edi3 defines but the model does not
//! hold (e.g. `transportPackages`, `attachedFile`, `status`) are accepted and ignored, for
//! interoperability; unknown properties inside [`EXTENSION`] are refused (`UNKNOWN_PROPERTY`).
//!
//! Amounts and quantities are JSON strings of exact decimals (edi3 has no amount property, so
//! the extension chooses); binary floating point never touches them.
//!
//! Problem codes of the reader: `DOCUMENT_TOO_LARGE`, `ENCODING`, `JSON_MALFORMED` (the
//! document cannot be read at all), `REQUIRED`, `TYPE`, `NOT_AN_INTEGER`, `DATE_INVALID`,
//! `ID_INVALID`, `UNKNOWN_PROPERTY`, `ITEM_COUNT_MISMATCH`, `PRODUCER_MIXED`,
//! `NOT_PREFERENTIAL`, and the model's own codes (`HS_UNKNOWN`, `COUNTRY_INVALID`,
//! `AMOUNT_NEGATIVE`, …). Paths are JSON pointers into the document.

use originlink_model::{Certificate, Problem};

use crate::Limits;

mod pointer;
mod reader;
mod tree;
mod writer;

/// Name of the root object holding what edi3 has no property for.
pub const EXTENSION: &str = "originlinkExtension";

/// `iD` of an issued certificate: this prefix, the issuing country, `:`, the number.
pub(crate) const DOC_PREFIX: &str = "urn:originlink:coo:";
/// `iD` of an application (no number yet): this prefix, the country, `:`, the reference.
pub(crate) const APPLICATION_PREFIX: &str = "urn:originlink:application:";
/// `iD` of a trade party: this prefix and the percent-encoded registration number.
pub(crate) const PARTY_PREFIX: &str = "urn:originlink:party:";
/// `iD` of an invoice: this prefix and the percent-encoded invoice number.
pub(crate) const INVOICE_PREFIX: &str = "urn:originlink:invoice:";
/// `iD` of a port: this prefix and the UN/LOCODE (the convention of edi3's own samples).
pub(crate) const LOCODE_PREFIX: &str = "unece.un.org:locode:";

/// Writes a certificate as an edi3 JSON document: pretty-printed (two spaces), properties in
/// a fixed order, so the same certificate always gives the same bytes.
pub fn write(cert: &Certificate) -> String {
    writer::write(cert)
}

/// Reads an edi3 JSON document. Refuses oversize input first, then anything that is not
/// UTF-8 JSON; then reports every field problem, each with a JSON pointer.
pub fn read(bytes: &[u8], limits: &Limits) -> Result<Certificate, Vec<Problem>> {
    reader::read(bytes, limits)
}

/// Translates a model path of `originlink_model::validate` (`/items/2/fob`) into the JSON
/// pointer of the document [`write`] produces
/// (`/originlinkExtension/items/2/fob`). Unknown paths come back unchanged.
pub fn pointer_for(model_path: &str) -> String {
    pointer::pointer_for(model_path)
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so free text fits a URI.
pub(crate) fn pct_encode(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// Reverses [`pct_encode`] (any `%XX` is decoded). `None` on a bad escape or non-UTF-8 result.
pub(crate) fn pct_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            let hi = b.get(i + 1).copied().and_then(hex)?;
            let lo = b.get(i + 2).copied().and_then(hex)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_round_trips() {
        for s in ["KH-VAT-1", "a b/c%d", "中文 é", "", "%"] {
            let mut e = String::new();
            pct_encode(s, &mut e);
            assert!(e.bytes().all(|b| b.is_ascii_graphic()), "{e}");
            assert_eq!(pct_decode(&e).as_deref(), Some(s));
        }
        assert_eq!(pct_decode("%4"), None);
        assert_eq!(pct_decode("%zz"), None);
        assert_eq!(pct_decode("%FF"), None);
    }
}
