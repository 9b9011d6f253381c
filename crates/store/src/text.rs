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

/// The marker of a document (a signed certificate, an application's) stored deflated, as
/// values were written before [`PACKED`]. No signed document starts with a NUL byte (XML
/// starts with `<`, JSON with `{`), so a stored value is unambiguous.
const PACKED_PLAIN: &[u8] = b"\0olz1";

/// The marker of a document stored deflated with [`DICTIONARY`] preset: how values are written
/// now.
const PACKED: &[u8] = b"\0olz2";

/// The preset dictionary of [`PACKED`] values: an edi3 JSON certificate signed (JWS) and as
/// applied, and two UBL XML certificates signed (XML-DSig), all fictional samples made with
/// `originlink example` and `originlink sign` under a throwaway key. Deflate refers back to
/// it, so the element names, namespaces and signature structure every certificate repeats
/// cost a few bytes instead of a kilobyte or two. Stored values depend on it byte for byte:
/// it never changes (a better one would be a new marker, and this one kept to read old values).
const DICTIONARY: &[u8] = include_bytes!("pack-dictionary-2.bin");

/// The largest document [`unpack`] gives back (a stored value that inflates beyond it is
/// refused as corrupt).
const UNPACKED_MAX: usize = 64 * 1024 * 1024;

/// A signed document as stored: deflated with [`DICTIONARY`] behind [`PACKED`] when that is
/// smaller, else as it is. [`unpack`] gives back the document byte for byte, so it still
/// hashes to its SHA-256.
pub(crate) fn pack(doc: &[u8]) -> Vec<u8> {
    ahead::take(doc).unwrap_or_else(|| pack_now(doc))
}

fn pack_now(doc: &[u8]) -> Vec<u8> {
    match deflate(doc) {
        Some(packed) if packed.len() < doc.len() => packed,
        _ => doc.to_vec(),
    }
}

/// Packs `docs` now, on every core, so that the [`pack`] calls of the transaction that stores
/// them find the work done: deflating with the dictionary is the costliest step of storing a
/// received certificate, and inside a transaction it would hold the database's one writer.
/// The result is the same as packing in the transaction; what is never stored is forgotten
/// (at most [`ahead::KEPT`] documents and 64 MB are kept).
pub(crate) fn pack_ahead(docs: &[&[u8]]) {
    let threads = std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1);
    if docs.is_empty() {
        return;
    }
    let size = docs.len().div_ceil(threads);
    let packed: Vec<(Vec<u8>, Vec<u8>)> = std::thread::scope(|s| {
        let handles: Vec<_> = docs
            .chunks(size)
            .map(|c| s.spawn(move || c.iter().map(|d| (d.to_vec(), pack_now(d))).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    ahead::keep(packed);
}

/// Documents packed ahead of their transaction, by content.
mod ahead {
    use std::collections::HashMap;
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    use std::sync::Mutex;

    /// The most documents kept, and the most bytes (documents and their packed forms): past
    /// either, what is kept is forgotten (packed again if it is stored after all), so documents
    /// that are never stored (a replay, a refused batch) cannot pile up.
    pub(super) const KEPT: usize = 8192;
    const KEPT_BYTES: usize = 64 * 1024 * 1024;

    /// A document and its packed form.
    type Pair = (Vec<u8>, Vec<u8>);

    struct Kept {
        docs: HashMap<u64, Vec<Pair>>,
        count: usize,
        bytes: usize,
    }
    static AHEAD: Mutex<Option<Kept>> = Mutex::new(None);

    fn key(doc: &[u8]) -> u64 {
        BuildHasherDefault::<DefaultHasher>::default().hash_one(doc)
    }

    pub(super) fn keep(packed: Vec<Pair>) {
        let bytes: usize = packed.iter().map(|(d, p)| d.len() + p.len()).sum();
        if packed.len() > KEPT || bytes > KEPT_BYTES {
            return;
        }
        let mut g = AHEAD.lock().unwrap_or_else(|p| p.into_inner());
        let kept = g.get_or_insert_with(|| Kept { docs: HashMap::new(), count: 0, bytes: 0 });
        if kept.count + packed.len() > KEPT || kept.bytes + bytes > KEPT_BYTES {
            *kept = Kept { docs: HashMap::new(), count: 0, bytes: 0 };
        }
        kept.count += packed.len();
        kept.bytes += bytes;
        for (doc, p) in packed {
            kept.docs.entry(key(&doc)).or_default().push((doc, p));
        }
    }

    /// The packed form of `doc` if it was packed ahead (and forgets it).
    pub(super) fn take(doc: &[u8]) -> Option<Vec<u8>> {
        let mut g = AHEAD.lock().unwrap_or_else(|p| p.into_inner());
        let kept = g.as_mut()?;
        let k = key(doc);
        let list = kept.docs.get_mut(&k)?;
        let i = list.iter().position(|(d, _)| d.as_slice() == doc)?;
        let (d, packed) = list.swap_remove(i);
        if list.is_empty() {
            kept.docs.remove(&k);
        }
        kept.count -= 1;
        kept.bytes -= d.len() + packed.len();
        Some(packed)
    }
}

fn deflate(doc: &[u8]) -> Option<Vec<u8>> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    thread_local! {
        /// The thread's compressor, reset for each document: making one allocates and clears
        /// a few hundred kilobytes of state, more than the compression of a certificate costs.
        static DEFLATE: std::cell::RefCell<Option<Compress>> = const { std::cell::RefCell::new(None) };
    }
    DEFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let z = match slot.as_mut() {
            Some(z) => {
                z.reset();
                z
            }
            None => slot.insert(Compress::new(Compression::default(), false)),
        };
        z.set_dictionary(DICTIONARY).ok()?;
        let mut out = Vec::with_capacity(PACKED.len() + doc.len() / 3 + 64);
        out.extend_from_slice(PACKED);
        loop {
            out.reserve(4096);
            let done = usize::try_from(z.total_in()).ok()?;
            match z.compress_vec(&doc[done..], &mut out, FlushCompress::Finish).ok()? {
                Status::StreamEnd => return Some(out),
                Status::Ok | Status::BufError => {}
            }
        }
    })
}

/// The document a stored value holds (see [`pack`]); values stored before packing are
/// documents already, and values packed before the dictionary still read.
pub(crate) fn unpack(stored: Vec<u8>) -> crate::Result<Vec<u8>> {
    let corrupt =
        |why: &str| crate::StoreError::Backend(format!("a stored document does not inflate: {why}"));
    let (z, dictionary) = if let Some(z) = stored.strip_prefix(PACKED) {
        (z, Some(DICTIONARY))
    } else if let Some(z) = stored.strip_prefix(PACKED_PLAIN) {
        (z, None)
    } else {
        return Ok(stored);
    };
    use flate2::{Decompress, FlushDecompress, Status};
    let mut d = Decompress::new(false);
    if let Some(dict) = dictionary {
        d.set_dictionary(dict).map_err(|e| corrupt(&e.to_string()))?;
    }
    let mut doc = Vec::with_capacity(z.len() * 5);
    loop {
        doc.reserve(16 * 1024);
        let (read, wrote) = (d.total_in(), d.total_out());
        let done = usize::try_from(read).map_err(|_| corrupt("too long"))?;
        let status = d
            .decompress_vec(&z[done..], &mut doc, FlushDecompress::Finish)
            .map_err(|e| corrupt(&e.to_string()))?;
        if doc.len() > UNPACKED_MAX {
            return Err(crate::StoreError::Backend("a stored document inflates past 64 MB".into()));
        }
        match status {
            Status::StreamEnd => return Ok(doc),
            // No progress with all the input given: the stream is cut short.
            _ if d.total_in() == read && d.total_out() == wrote => return Err(corrupt("it ends too early")),
            _ => {}
        }
    }
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
            packed.starts_with(PACKED) && packed.len() * 10 < xml.len(),
            "{} of {}",
            packed.len(),
            xml.len()
        );
        assert_eq!(unpack(packed.clone()).expect("inflates"), xml.as_bytes());
        // The thread's compressor is reused: nothing of one document carries into the next.
        let other = "<Other>".repeat(300);
        assert_eq!(unpack(pack_now(other.as_bytes())).expect("inflates"), other.as_bytes());
        assert_eq!(pack_now(xml.as_bytes()), packed, "the same bytes after another document");
        // Too small to gain: kept as it is, and read back as it is.
        assert_eq!(pack(b"{}"), b"{}");
        assert_eq!(unpack(b"<x/>".to_vec()).expect("as stored"), b"<x/>");
        assert_eq!(unpack(Vec::new()).expect("empty"), b"");
        // A damaged stored value is an error, never a wrong document.
        let mut broken = pack(xml.as_bytes());
        broken.truncate(broken.len() / 2);
        assert!(unpack(broken).is_err());
        let mut flipped = pack(xml.as_bytes());
        flipped[PACKED.len() + 3] ^= 0x5a;
        assert_ne!(unpack(flipped).ok().as_deref(), Some(xml.as_bytes()), "never the document, altered");
    }

    /// Values packed before the dictionary (`\0olz1`, plain deflate) still read.
    #[test]
    fn documents_packed_ahead_are_packed_the_same_and_taken_once() {
        let a = b"<Certificate>ahead one</Certificate>".repeat(20);
        let b = b"<Certificate>ahead two</Certificate>".repeat(20);
        let direct = (deflate(&a).expect("a"), deflate(&b).expect("b"));
        pack_ahead(&[&a, &b]);
        assert_eq!(ahead::take(&a).as_ref(), Some(&direct.0), "packed ahead as pack would");
        assert_eq!(ahead::take(&a), None, "taken once");
        assert_eq!(pack(&b), direct.1);
        assert_eq!(pack(&a), direct.0, "packed again when not ahead");
    }

    #[test]
    fn documents_packed_ahead_but_never_stored_cannot_pile_up() {
        let big = |b: u8| vec![b; 33 * 1024 * 1024];
        ahead::keep(vec![(big(1), b"one".to_vec())]);
        assert_eq!(ahead::take(&big(1)), Some(b"one".to_vec()));
        ahead::keep(vec![(big(1), b"one".to_vec())]);
        // Past 64 MB what was kept is forgotten.
        ahead::keep(vec![(big(2), b"two".to_vec())]);
        assert_eq!(ahead::take(&big(1)), None);
        assert_eq!(ahead::take(&big(2)), Some(b"two".to_vec()));
        // One batch over the bound is not kept at all.
        ahead::keep(vec![(big(3), Vec::new()), (big(4), Vec::new())]);
        assert_eq!(ahead::take(&big(3)), None);
    }

    #[test]
    fn values_packed_without_the_dictionary_still_read() {
        use std::io::Write as _;
        let doc = b"<CertificateOfOrigin><cbc:ID>KH-2026-000001</cbc:ID></CertificateOfOrigin>".repeat(20);
        let mut z = flate2::write::DeflateEncoder::new(PACKED_PLAIN.to_vec(), flate2::Compression::default());
        z.write_all(&doc).expect("deflates");
        let old = z.finish().expect("finishes");
        assert_eq!(unpack(old).expect("inflates"), doc);
    }

    /// The dictionary is what stored values were packed with: it may never change.
    #[test]
    fn the_dictionary_never_changes() {
        let sha = hex(ring::digest::digest(&ring::digest::SHA256, DICTIONARY).as_ref());
        assert_eq!(sha, "e3acef501c9d2292b4623b32c01badca2797b1d73c015cbda072dcff9f1f82ef");
        assert!(DICTIONARY.len() <= 32 * 1024, "deflate looks back 32 KiB at most");
    }

    /// A real signed certificate packs to a fraction of its size: the dictionary carries what
    /// every certificate repeats.
    #[test]
    fn a_signed_certificate_packs_small() {
        let xml = std::str::from_utf8(DICTIONARY).expect("text");
        let start = xml.rfind("<?xml").unwrap_or(0);
        let cert = xml[start..].replace("VN-2026", "KH-2026").replace("Viet Nam", "Cambodia");
        let packed = pack(cert.as_bytes());
        assert!(packed.len() * 10 < cert.len(), "{} of {}", packed.len(), cert.len());
        assert_eq!(unpack(packed).expect("inflates"), cert.as_bytes());
    }
}
