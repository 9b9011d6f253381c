//! The one text form of each kind of value the store writes: instants, hex, decimals, token
//! hashes.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// SHA-256 of an API token: what the store keeps instead of the token.
pub fn token_hash(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex, by the `hex` crate (kept as a `&[u8]` function: the name callers use).
pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// Parses lower- or upper-case hex.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs.map(|p| Some(nib(p[0])? << 4 | nib(p[1])?)).collect()
}

/// RFC 3339 with microseconds, the one text form of instants in both backends.
pub fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The canonical text of a decimal (no trailing zeros): how amounts are stored.
pub fn decimal_text(d: &Decimal) -> String {
    d.normalize().to_string()
}

/// An FTS5 query matching `text` anywhere in a trigram-indexed `column`, or `None` when the
/// text is shorter than a trigram (such a search is a scan, with [`like_anywhere`]).
pub(crate) fn trigram_match(column: &str, text: &str) -> Option<String> {
    (text.chars().count() >= 3).then(|| format!("{column} : \"{}\"", text.replace('"', "\"\"")))
}

/// A `LIKE … ESCAPE '\\'` pattern matching `text` anywhere (its `%`, `_` and `\\` taken
/// literally).
pub(crate) fn like_anywhere(text: &str) -> String {
    let mut out = String::from("%");
    for ch in text.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

/// Statuses as `,a,b,` (for a membership test in SQL); `None` when empty (any status).
pub(crate) fn status_set<S: AsRef<str>>(statuses: impl IntoIterator<Item = S>) -> Option<String> {
    let joined: Vec<String> = statuses.into_iter().map(|s| s.as_ref().to_owned()).collect();
    if joined.is_empty() { None } else { Some(format!(",{},", joined.join(","))) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(super::like_anywhere("a%b_c\\"), "%a\\%b\\_c\\\\%");
        assert_eq!(super::status_set(["draft", "returned"]).as_deref(), Some(",draft,returned,"));
        assert_eq!(super::status_set(Vec::<String>::new()), None);
    }
}

/// The marker of a document (a signed certificate, an application's) stored deflated. No signed document starts with a NUL
/// byte (XML starts with `<`, JSON with `{`), so a stored value is unambiguous.
const PACKED: &[u8] = b"\0olz1";

/// The largest document [`unpack`] gives back (a stored value that inflates beyond it is
/// refused as corrupt).
const UNPACKED_MAX: u64 = 64 * 1024 * 1024;

/// A signed document as stored: deflated behind [`PACKED`] when that is smaller, else as it
/// is. [`unpack`] gives back the document byte for byte, so it still hashes to its SHA-256.
pub(crate) fn pack(doc: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut z = flate2::write::DeflateEncoder::new(PACKED.to_vec(), flate2::Compression::default());
    match z.write_all(doc).and_then(|()| z.finish()) {
        Ok(packed) if packed.len() < doc.len() => packed,
        _ => doc.to_vec(),
    }
}

/// The document a stored value holds (see [`pack`]); values stored before packing are
/// documents already.
pub(crate) fn unpack(stored: Vec<u8>) -> crate::Result<Vec<u8>> {
    use std::io::Read as _;
    let Some(z) = stored.strip_prefix(PACKED) else { return Ok(stored) };
    let mut doc = Vec::with_capacity(z.len() * 4);
    flate2::read::DeflateDecoder::new(z)
        .take(UNPACKED_MAX + 1)
        .read_to_end(&mut doc)
        .map_err(|e| crate::StoreError::Backend(format!("a stored document does not inflate: {e}")))?;
    if doc.len() as u64 > UNPACKED_MAX {
        return Err(crate::StoreError::Backend("a stored document inflates past 64 MB".into()));
    }
    Ok(doc)
}

#[cfg(test)]
mod pack_tests {
    use super::*;

    #[test]
    fn packed_documents_come_back_byte_for_byte_and_smaller() {
        let xml = "<CertificateOfOrigin>".to_owned()
            + &"<cbc:Note>Angkor Agro Exports</cbc:Note>".repeat(200)
            + "</CertificateOfOrigin>";
        let packed = pack(xml.as_bytes());
        assert!(
            packed.starts_with(PACKED) && packed.len() * 4 < xml.len(),
            "{} of {}",
            packed.len(),
            xml.len()
        );
        assert_eq!(unpack(packed).expect("inflates"), xml.as_bytes());
        // Too small to gain: kept as it is, and read back as it is.
        assert_eq!(pack(b"{}"), b"{}");
        assert_eq!(unpack(b"<x/>".to_vec()).expect("as stored"), b"<x/>");
        assert_eq!(unpack(Vec::new()).expect("empty"), b"");
        // A damaged stored value is an error, never a wrong document.
        let mut broken = pack(xml.as_bytes());
        broken.truncate(broken.len() / 2);
        assert!(unpack(broken).is_err());
    }
}
