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
