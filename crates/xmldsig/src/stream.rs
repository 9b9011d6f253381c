//! The streaming fast path of [`crate::verify_enveloped`]: one pass over the bytes, no DOM.
//!
//! The pass tokenizes the document once and, as it goes, writes the exclusive canonical form
//! of the root element minus the enveloped `Signature` straight into a SHA-256 context (in
//! chunks of a few KiB), canonicalizes `SignedInfo` into a small buffer, records the
//! `Signature` subtree in a tiny tree of its own, checks the anti-wrapping policy (one
//! `Signature` at an allowed place, unique IDs, the `Reference` pointing at the root) and picks
//! up the text of a few elements the caller asks for (the trust crate's issuing country and
//! issue date).
//!
//! It accepts a deliberately narrow subset of XML, the shape our own signer and writer produce
//! and little more: UTF-8 without BOM, an optional standard XML declaration, ASCII names, no
//! DOCTYPE, no processing instructions, no carriage returns or other control characters, no
//! tabs or line feeds inside attribute values, only the predefined entities and character
//! references, plain namespace declarations, no comments or CDATA inside the `Signature`, no
//! `InclusiveNamespaces`, exactly the `Signature` shape `sign_enveloped` writes. Everything in
//! that subset is also accepted by roxmltree with the same meaning, so the DOM path would parse
//! it into the same tree. Whenever the input leaves the subset, or any check does not pass, the
//! answer is [`FastVerify::Unsure`] and the caller runs the DOM path, which stays the reference
//! implementation and decides. The pass itself only answers on its own when it has been through
//! every check the DOM path makes: valid, `TAMPERED` (the digest differs) or `BAD_SIGNATURE`
//! (no certificate's key verifies) — exactly where the DOM path ends on the same document.
//!
//! Differential tests (crates/xmldsig/tests/it/stream_diff.rs, crates/trust/tests/it) and the
//! fuzz target `xmldsig_stream_diff` compare both paths.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::c14n::{escape_attr, escape_text};
use crate::error::Error;
use crate::keys::{
    CachedCert, ENVELOPED_SIGNATURE, EXC_C14N, KeyCache, SHA256, SignatureAlgorithm,
    certificate_key_or_unsupported, verify_with,
};
use crate::signature::{Placement, Verified};
use crate::ubl;
use crate::xml::{DSIG_NS, Limits, XML_NS};

const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";
/// Most element paths a caller may ask to capture.
pub const MAX_CAPTURES: usize = 8;
/// More ID attributes than this and the DOM path decides (keeps the duplicate check linear).
const MAX_IDS: usize = 64;
/// More attributes on one element than this and the DOM path decides.
const MAX_ATTRS: usize = 64;
/// Canonical bytes are handed to the digest in chunks of about this size.
const FLUSH_AT: usize = 4096;
/// Most certificates accepted in `X509Data` (as in the DOM path).
const MAX_CERTIFICATES: usize = 16;
const NONE: usize = usize::MAX;

/// An element path below the root element: `[(namespace, local name), …]`, outermost first.
pub type CapturePath<'a> = &'a [(&'a str, &'a str)];

/// The answer of [`verify_enveloped_fast`].
#[derive(Debug)]
pub enum FastVerify {
    /// Valid: the same [`Verified`] the DOM path returns, and per capture path the element's
    /// text (see [`verify_enveloped_fast`]).
    Verified(Verified, Vec<Option<String>>),
    /// Definitely invalid, with the error the DOM path returns (`TAMPERED` or `BAD_SIGNATURE`).
    Rejected(Error),
    /// Not decided here: run the DOM path ([`crate::verify_enveloped_with`]).
    Unsure,
}

/// The streaming fast path of [`crate::verify_enveloped`]; see the module documentation.
///
/// `capture` names element paths below the root (at most [`MAX_CAPTURES`]). For each one the
/// answer holds `Some(text)` when every step of the path matched exactly one child element and
/// the last one holds no element, its text being the element's character data as canonical XML
/// sees it (references decoded, text and CDATA joined, comments left out); `None` otherwise.
/// The text is only handed out with a valid signature, so it is signed content.
pub fn verify_enveloped_fast(
    xml: &[u8],
    limits: &Limits,
    keys: Option<&KeyCache>,
    capture: &[CapturePath<'_>],
) -> FastVerify {
    let Some(mut scanned) = scan(xml, limits, capture, true) else {
        return FastVerify::Unsure;
    };
    finish(&mut scanned, keys).unwrap_or(FastVerify::Unsure)
}

/// Test support: the canonical bytes the fast path digests (root element without the
/// `Signature`) and the canonical `SignedInfo`, or `None` where it would defer to the DOM.
pub fn canonical_for_tests(xml: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let s = scan(xml, &Limits::default(), &[], false)?;
    Some((s.canonical, s.signed_info))
}

/// What one pass found.
struct Scanned<'i> {
    digest: Option<ring::digest::Digest>,
    canonical: Vec<u8>,
    signed_info: Option<Vec<u8>>,
    sig_nodes: Vec<SigNode<'i>>,
    placement: Option<Placement>,
    root_ids: Vec<Cow<'i, str>>,
    root_ns: Option<&'i str>,
    root_local: &'i str,
    captured: Vec<Option<String>>,
}

/// One element of the `Signature` subtree (all in the XML-DSig namespace).
struct SigNode<'i> {
    local: &'i str,
    parent: usize,
    algorithm: Option<Cow<'i, str>>,
    uri: Option<Cow<'i, str>>,
    text: Cow<'i, str>,
}

struct Frame<'i> {
    qname: &'i str,
    ns: Option<&'i str>,
    local: &'i str,
    bind_start: usize,
    rend_start: usize,
    si_rend_start: usize,
    /// Capture paths this element is on (bit per path).
    cap: u8,
    /// Capture paths this element ends.
    leaf: u8,
    /// Index into `sig_nodes`, or `NONE` outside the `Signature`.
    sig_node: usize,
}

struct Attr<'i> {
    qname: &'i str,
    prefix: Option<&'i str>,
    local: &'i str,
    ns: Option<&'i str>,
    value: Cow<'i, str>,
    /// `value` holds no byte C14N escapes in attributes: written as it is.
    plain: bool,
}

/// One exclusive-C14N output: the bytes, and the namespace declarations rendered by open
/// output ancestors (innermost last).
///
/// Most of the canonical form is the input itself, byte for byte (tags written as `<qname>`
/// and `</qname>`, text without references or `>`). Such pieces are not copied one by one:
/// while they follow each other in the input they only extend a pending run of input bytes
/// (`run_start..run_end`), which is copied (or handed to the digest directly) once something
/// else has to be written. Every write of other bytes goes through [`Emit::flush_run`] first,
/// so the output is the same sequence of bytes either way.
struct Emit<'i> {
    src: &'i [u8],
    out: Vec<u8>,
    run_start: usize,
    run_end: usize,
    rendered: Vec<(Option<&'i str>, &'i str)>,
    digest: Option<ring::digest::Context>,
}

impl<'i> Emit<'i> {
    fn new(src: &'i [u8], capacity: usize, digest: bool) -> Self {
        Emit {
            src,
            out: Vec::with_capacity(capacity),
            run_start: 0,
            run_end: 0,
            rendered: Vec::new(),
            digest: digest.then(|| ring::digest::Context::new(&ring::digest::SHA256)),
        }
    }

    /// The input bytes `start..end` come next in the output, as they are.
    #[inline]
    fn verbatim(&mut self, start: usize, end: usize) {
        if start != self.run_end {
            self.flush_run();
            self.run_start = start;
        }
        self.run_end = end;
    }

    /// Copies the pending run to `out` (before anything else is written there).
    #[inline]
    fn flush_run(&mut self) {
        if self.run_end != self.run_start {
            self.out.extend_from_slice(&self.src[self.run_start..self.run_end]);
            self.run_start = self.run_end;
        }
    }

    fn maybe_flush(&mut self) {
        let Some(ctx) = self.digest.as_mut() else { return };
        let run = self.run_end - self.run_start;
        if self.out.len() + run >= FLUSH_AT {
            if !self.out.is_empty() {
                ctx.update(&self.out);
                self.out.clear();
            }
            // A long run goes to the digest straight from the input.
            if run != 0 {
                ctx.update(&self.src[self.run_start..self.run_end]);
                self.run_start = self.run_end;
            }
        }
    }

    /// The output: the digest of all bytes (with a digest), or all bytes.
    fn finish(&mut self) -> Option<ring::digest::Digest> {
        self.flush_run();
        self.digest.take().map(|mut ctx| {
            ctx.update(&self.out);
            self.out.clear();
            ctx.finish()
        })
    }

    /// Writes an exclusive-C14N start tag (no inclusive prefixes).
    ///
    /// `at` is where the start tag begins in the input (`<qname` is always written as it
    /// stands there); `raw_end` is where it ends when the tag is exactly `<qname>`: if no
    /// namespace declaration is to be rendered, it is also the canonical start tag. `decl` is
    /// where the declaration of the element's own prefix stands in the input when it is
    /// written there exactly as C14N writes it (` xmlns:p="uri"`), else empty.
    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        qname: &'i str,
        prefix: Option<&'i str>,
        ns: Option<&'i str>,
        attrs: &[Attr<'i>],
        at: usize,
        raw_end: Option<usize>,
        decl: (usize, usize),
        bindings: &[(Option<&'i str>, &'i str)],
        needed: &mut Vec<Option<&'i str>>,
        order: &mut Vec<usize>,
    ) -> Option<()> {
        let name_end = at + 1 + qname.len();
        if attrs.is_empty() {
            // The common case: only the element's own prefix, already resolved to `ns`.
            let rendered = lookup(&self.rendered, prefix);
            let declare = match prefix {
                None => !str_eq(rendered.unwrap_or(""), ns.unwrap_or("")),
                Some(_) => {
                    let e = ns?;
                    !rendered.is_some_and(|r| str_eq(r, e))
                }
            };
            if !declare && let Some(end) = raw_end {
                self.verbatim(at, end);
                return Some(());
            }
            self.verbatim(at, name_end);
            if declare && decl.1 > decl.0 {
                self.verbatim(decl.0, decl.1);
                self.rendered.push((prefix, ns.unwrap_or("")));
            } else if declare {
                self.flush_run();
                let e = ns.unwrap_or("");
                match prefix {
                    None => self.out.extend_from_slice(b" xmlns=\""),
                    Some(name) => {
                        self.out.extend_from_slice(b" xmlns:");
                        self.out.extend_from_slice(name.as_bytes());
                        self.out.extend_from_slice(b"=\"");
                    }
                }
                self.out.extend_from_slice(e.as_bytes());
                self.out.push(b'"');
                self.rendered.push((prefix, e));
            }
            match raw_end {
                // The `>` as it stands in the input: the run goes on into what follows.
                Some(end) => self.verbatim(end - 1, end),
                None => {
                    self.flush_run();
                    self.out.push(b'>');
                }
            }
            return Some(());
        }
        self.verbatim(at, name_end);
        self.flush_run();
        needed.clear();
        needed.push(prefix);
        for a in attrs {
            if let Some(p) = a.prefix
                && p != "xml"
            {
                needed.push(Some(p));
            }
        }
        if needed.len() > 1 {
            needed.sort_unstable();
            needed.dedup();
        }
        for &p in needed.iter() {
            let effective = lookup(bindings, p);
            let rendered = lookup(&self.rendered, p);
            let uri = match p {
                None => {
                    let e = effective.unwrap_or("");
                    if str_eq(rendered.unwrap_or(""), e) {
                        continue;
                    }
                    self.out.extend_from_slice(b" xmlns=\"");
                    e
                }
                Some(name) => {
                    let e = effective?;
                    if rendered.is_some_and(|r| str_eq(r, e)) {
                        continue;
                    }
                    self.out.extend_from_slice(b" xmlns:");
                    self.out.extend_from_slice(name.as_bytes());
                    self.out.extend_from_slice(b"=\"");
                    e
                }
            };
            // Declared URIs were checked free of every byte C14N would escape.
            self.out.extend_from_slice(uri.as_bytes());
            self.out.push(b'"');
            self.rendered.push((p, uri));
        }
        order.clear();
        order.extend(0..attrs.len());
        if attrs.len() > 1 {
            order.sort_unstable_by(|&x, &y| {
                let (a, b) = (&attrs[x], &attrs[y]);
                (a.ns.unwrap_or(""), a.local).cmp(&(b.ns.unwrap_or(""), b.local))
            });
        }
        for &k in order.iter() {
            let a = &attrs[k];
            self.out.push(b' ');
            self.out.extend_from_slice(a.qname.as_bytes());
            self.out.extend_from_slice(b"=\"");
            if a.plain {
                self.out.extend_from_slice(a.value.as_bytes());
            } else {
                escape_attr(&a.value, &mut self.out);
            }
            self.out.push(b'"');
        }
        self.out.push(b'>');
        Some(())
    }

    /// `raw`: where the end tag stands in the input when that is exactly `</qname>`.
    #[inline]
    fn close(&mut self, qname: &str, rend_start: usize, raw: Option<(usize, usize)>) {
        match raw {
            Some((start, end)) => self.verbatim(start, end),
            None => {
                self.flush_run();
                self.out.extend_from_slice(b"</");
                self.out.extend_from_slice(qname.as_bytes());
                self.out.push(b'>');
            }
        }
        self.rendered.truncate(rend_start);
    }

    /// Character data: `src` is where it stands in the input when it needs no escaping there.
    #[inline]
    fn text(&mut self, text: &str, src: Option<(usize, usize)>) {
        match src {
            Some((start, end)) => self.verbatim(start, end),
            None => {
                self.flush_run();
                escape_text(text, &mut self.out);
            }
        }
    }
}

/// Index of the innermost binding of `prefix` in `list`.
#[inline]
fn lookup_at(list: &[(Option<&str>, &str)], prefix: Option<&str>) -> Option<usize> {
    list.iter().rposition(|(p, _)| opt_eq(*p, prefix))
}

#[inline]
fn lookup<'i>(list: &[(Option<&'i str>, &'i str)], prefix: Option<&str>) -> Option<&'i str> {
    list.iter().rev().find(|(p, _)| opt_eq(*p, prefix)).map(|(_, u)| *u)
}

/// String equality without a `memcmp` call for the short names compared here (prefixes,
/// local names), and a pointer test first for the URIs, which mostly are the same slice of
/// the input.
#[inline]
fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if std::ptr::eq(a.as_ptr(), b.as_ptr()) {
        return true;
    }
    bytes_eq(a, b)
}

/// Equality of two slices of the same length, eight bytes at a time (inline, no `memcmp`).
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
    }
    let word = |s: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    let mut diff = 0u64;
    let mut at = 0;
    while at + 8 <= n {
        diff |= word(a, at) ^ word(b, at);
        at += 8;
    }
    // The last (possibly overlapping) eight bytes.
    diff |= word(a, n - 8) ^ word(b, n - 8);
    diff == 0
}

#[inline]
fn opt_eq(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => str_eq(a, b),
        _ => false,
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n')
}

/// ASCII name characters: 3 for those that may start a name, 1 for the others.
static NAME: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = if b.is_ascii_alphabetic() || b == b'_' {
            3
        } else if b.is_ascii_digit() || b == b'-' || b == b'.' {
            1
        } else {
            0
        };
        i += 1;
    }
    t
};

fn is_name_start(b: u8) -> bool {
    NAME[b as usize] & 2 != 0
}

fn is_name_char(b: u8) -> bool {
    NAME[b as usize] != 0
}

/// The first index at or after `i` whose byte is not an ASCII name character (or `b.len()`).
#[inline(always)]
fn name_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_name_char(b[i]) {
        i += 1;
    }
    i
}

/// An ASCII QName at `b[i..]`: (qname, prefix, local, end).
#[inline(always)]
fn parse_qname(s: &str, i: usize) -> Option<(&str, Option<&str>, &str, usize)> {
    let b = s.as_bytes();
    let ncname = |from: usize| -> Option<usize> {
        if !is_name_start(*b.get(from)?) {
            return None;
        }
        Some(name_end(b, from + 1))
    };
    let end = ncname(i)?;
    if b.get(end) == Some(&b':') {
        let end2 = ncname(end + 1)?;
        Some((&s[i..end2], Some(&s[i..end]), &s[end + 1..end2], end2))
    } else {
        Some((&s[i..end], None, &s[i..end], end))
    }
}

/// Decodes the predefined entities and character references of `raw` as roxmltree does;
/// `None` for anything else (the DOM path then decides).
fn decode_into(raw: &str, out: &mut String) -> Option<()> {
    let mut rest = raw;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        let r = &rest[p + 1..];
        let semi = r.as_bytes().iter().take(12).position(|&b| b == b';')?;
        let name = &r[..semi];
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "apos" => '\'',
            "quot" => '"',
            _ => {
                let num = name.strip_prefix('#')?;
                let (digits, radix) = match num.strip_prefix('x') {
                    Some(h) => (h, 16),
                    None => (num, 10),
                };
                let ok = |b: u8| if radix == 16 { b.is_ascii_hexdigit() } else { b.is_ascii_digit() };
                if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(ok) {
                    return None;
                }
                let n = u32::from_str_radix(digits, radix).ok()?;
                let allowed =
                    matches!(n, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF);
                if !allowed {
                    return None;
                }
                char::from_u32(n)?
            }
        };
        out.push(c);
        rest = &r[semi + 1..];
    }
    out.push_str(rest);
    Some(())
}

fn decoded(raw: &str) -> Option<Cow<'_, str>> {
    if raw.as_bytes().contains(&b'&') {
        let mut s = String::with_capacity(raw.len());
        decode_into(raw, &mut s)?;
        Some(Cow::Owned(s))
    } else {
        Some(Cow::Borrowed(raw))
    }
}

/// Bytes the subset refuses anywhere: C0 controls other than tab and line feed (so also
/// carriage returns, which XML normalizes), and the lead byte of U+FFFE/U+FFFF and a BOM
/// (checked precisely when seen).
fn refuse_bytes(b: &[u8]) -> Option<()> {
    // Branch-free over fixed blocks of 64 bytes (the compiler vectorizes the inner loop).
    // Bytes below 0x20 map to themselves, so `< 0x20` is a saturating-subtract test.
    let suspicious = |c: u8| (((c < 0x20) & (c != b'\t') & (c != b'\n')) | (c == 0xEF)) as u8;
    let mut blocks = b.chunks_exact(64);
    let mut hit = false;
    for blk in blocks.by_ref() {
        let blk: &[u8; 64] = blk.try_into().ok()?;
        let mut acc = 0u8;
        for &c in blk {
            acc |= suspicious(c);
        }
        if acc != 0 {
            hit = true;
            break;
        }
    }
    hit |= blocks.remainder().iter().any(|&c| suspicious(c) != 0);
    if !hit {
        return Some(());
    }
    for (i, &c) in b.iter().enumerate() {
        if c < 0x20 && c != b'\t' && c != b'\n' {
            return None;
        }
        if c == 0xEF {
            match (b.get(i + 1), b.get(i + 2)) {
                (Some(0xBF), Some(0xBE | 0xBF)) | (Some(0xBB), Some(0xBF)) => return None,
                _ => {}
            }
        }
    }
    Some(())
}

/// The XML declarations accepted as they are (anything else: the DOM path decides).
const DECLARATIONS: &[&str] = &[
    "<?xml version=\"1.0\"?>",
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>",
    "<?xml version='1.0'?>",
    "<?xml version='1.0' encoding='UTF-8'?>",
    "<?xml version='1.0' encoding='utf-8'?>",
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>",
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>",
];

struct Scan<'i, 'c> {
    s: &'i str,
    limits: &'c Limits,
    capture: &'c [CapturePath<'c>],
    bindings: Vec<(Option<&'i str>, &'i str)>,
    /// Per binding, where it stands in the input as C14N writes it (` xmlns:p="uri"`), or
    /// `(0, 0)`.
    decls: Vec<(usize, usize)>,
    frames: Vec<Frame<'i>>,
    main: Emit<'i>,
    si: Emit<'i>,
    si_active: bool,
    si_frame: usize,
    si_done: bool,
    /// Index in `frames` of the open `Signature`, or `NONE`.
    sig_frame: usize,
    sig_seen: bool,
    sig_nodes: Vec<SigNode<'i>>,
    placement: Option<Placement>,
    ids: Vec<Cow<'i, str>>,
    root_ids: usize,
    root_ns: Option<&'i str>,
    root_local: &'i str,
    /// Per capture path and level, how many elements matched: path `k` at `count_at[k]..`.
    counts: Vec<u32>,
    count_at: [usize; MAX_CAPTURES],
    cap_text: Vec<String>,
    /// Capture paths some leaf of which held an element (bit per path).
    cap_bad: u8,
    nodes: usize,
    attrs: Vec<Attr<'i>>,
    needed: Vec<Option<&'i str>>,
    order: Vec<usize>,
    scratch: String,
}

fn scan<'i>(
    xml: &'i [u8],
    limits: &Limits,
    capture: &[CapturePath<'_>],
    digest: bool,
) -> Option<Scanned<'i>> {
    if xml.len() > limits.max_bytes || capture.len() > MAX_CAPTURES {
        return None;
    }
    refuse_bytes(xml)?;
    let s = std::str::from_utf8(xml).ok()?;
    let mut st = Scan {
        s,
        limits,
        capture,
        bindings: Vec::with_capacity(16),
        decls: Vec::with_capacity(16),
        frames: Vec::with_capacity(16),
        main: Emit::new(xml, if digest { FLUSH_AT + 1024 } else { xml.len() }, digest),
        si: Emit::new(xml, 1024, false),
        si_active: false,
        si_frame: NONE,
        si_done: false,
        sig_frame: NONE,
        sig_seen: false,
        sig_nodes: Vec::with_capacity(16),
        placement: None,
        ids: Vec::new(),
        root_ids: 0,
        root_ns: None,
        root_local: "",
        counts: vec![0; capture.iter().map(|p| p.len()).sum()],
        count_at: {
            let mut at = [0; MAX_CAPTURES];
            for k in 1..capture.len() {
                at[k] = at[k - 1] + capture[k - 1].len();
            }
            at
        },
        cap_text: vec![String::new(); capture.len()],
        cap_bad: 0,
        nodes: 1,
        attrs: Vec::with_capacity(8),
        needed: Vec::with_capacity(8),
        order: Vec::with_capacity(8),
        scratch: String::new(),
    };
    st.run()?;
    let digest = st.main.finish();
    st.si.finish();
    let captured = (0..capture.len())
        .map(|k| {
            let at = st.count_at[k];
            let counts = &st.counts[at..at + capture[k].len()];
            let sure = st.cap_bad & (1 << k) == 0 && counts.iter().all(|&c| c == 1) && !capture[k].is_empty();
            sure.then(|| std::mem::take(&mut st.cap_text[k]))
        })
        .collect();
    let root_ids = st.ids.drain(..st.root_ids).collect();
    Some(Scanned {
        digest,
        canonical: st.main.out,
        signed_info: st.si_done.then_some(st.si.out),
        sig_nodes: st.sig_nodes,
        placement: st.placement,
        root_ids,
        root_ns: st.root_ns,
        root_local: st.root_local,
        captured,
    })
}

impl<'i> Scan<'i, '_> {
    fn run(&mut self) -> Option<()> {
        let s = self.s;
        let b = s.as_bytes();
        let mut i = 0;
        if b.starts_with(b"<?xml") {
            let end = s.find("?>")? + 2;
            if !DECLARATIONS.contains(&&s[..end]) {
                return None;
            }
            i = end;
        }
        let mut root_done = false;
        while i < b.len() {
            if b[i] == b'<' {
                match b.get(i + 1) {
                    Some(b'/') => {
                        i = self.end_tag(i)?;
                        if self.frames.is_empty() {
                            root_done = true;
                        }
                    }
                    Some(b'!') if b[i..].starts_with(b"<!--") => {
                        let end = s.get(i + 4..)?.find("-->")?;
                        if self.sig_frame != NONE {
                            return None;
                        }
                        self.nodes += 1;
                        i = i + 4 + end + 3;
                    }
                    Some(b'!') if b[i..].starts_with(b"<![CDATA[") => {
                        let end = s.get(i + 9..)?.find("]]>")?;
                        self.cdata(&s[i + 9..i + 9 + end])?;
                        i = i + 9 + end + 3;
                    }
                    Some(b'!' | b'?') => return None,
                    _ => {
                        if root_done {
                            return None;
                        }
                        if self.frames.is_empty() && s[..i].contains("<!DOCTYPE") {
                            return None;
                        }
                        i = self.start_tag(i)?;
                        if self.frames.is_empty() {
                            root_done = true;
                        }
                    }
                }
            } else {
                let end = s[i..].find('<').map_or(b.len(), |p| i + p);
                let text = &s[i..end];
                if self.frames.is_empty() {
                    if !text.bytes().all(is_ws) {
                        return None;
                    }
                } else {
                    self.text(i, text)?;
                }
                i = end;
            }
        }
        (root_done && self.frames.is_empty() && !self.si_active).then_some(())
    }

    fn start_tag(&mut self, i: usize) -> Option<usize> {
        let s = self.s;
        let b = s.as_bytes();
        let (qname, prefix, local, mut j) = parse_qname(s, i + 1)?;
        self.attrs.clear();
        let bind_start = self.bindings.len();
        let empty;
        loop {
            let ws_start = j;
            while j < b.len() && is_ws(b[j]) {
                j += 1;
            }
            match b.get(j)? {
                b'>' => {
                    j += 1;
                    empty = false;
                    break;
                }
                b'/' => {
                    if b.get(j + 1) != Some(&b'>') {
                        return None;
                    }
                    j += 2;
                    empty = true;
                    break;
                }
                _ => {}
            }
            if j == ws_start {
                return None;
            }
            let (aq, ap, al, mut k) = parse_qname(s, j)?;
            // ` name="`: as C14N writes an attribute (the value is checked below).
            let tight = b[j - 1] == b' ' && b.get(k) == Some(&b'=') && b.get(k + 1) == Some(&b'"');
            let attr_start = j - 1;
            while k < b.len() && is_ws(b[k]) {
                k += 1;
            }
            if b.get(k) != Some(&b'=') {
                return None;
            }
            k += 1;
            while k < b.len() && is_ws(b[k]) {
                k += 1;
            }
            let quote = *b.get(k)?;
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            let vstart = k + 1;
            let vlen = s.get(vstart..)?.find(quote as char)?;
            let raw = &s[vstart..vstart + vlen];
            j = vstart + vlen + 1;
            // One branch-free pass for the refused bytes and references.
            let (mut bad, mut amp) = (0u8, 0u8);
            for &c in raw.as_bytes() {
                bad |= ((c == b'<') | (c == b'\t') | (c == b'\n')) as u8;
                amp |= (c == b'&') as u8;
            }
            if bad != 0 {
                return None;
            }
            let amp = amp != 0;
            let span = if tight { (attr_start, j) } else { (0, 0) };
            match (ap, al) {
                (Some("xmlns"), name) => self.declare(bind_start, Some(name), raw, span)?,
                (None, "xmlns") => self.declare(bind_start, None, raw, span)?,
                (_, "xmlns") => return None,
                _ => {
                    if self.attrs.len() >= MAX_ATTRS {
                        return None;
                    }
                    let value = if amp { decoded(raw)? } else { Cow::Borrowed(raw) };
                    // Raw values hold no `<`, tab, line feed or carriage return (refused above
                    // and in `refuse_bytes`); without references and in double quotes, no `"`
                    // or `&` either.
                    let plain = !amp && quote == b'"';
                    self.attrs.push(Attr { qname: aq, prefix: ap, local: al, ns: None, value, plain });
                }
            }
        }

        // Where the tag ends when it is exactly `<qname>` (no attributes, no whitespace).
        let raw_end = (!empty && j == i + qname.len() + 2).then_some(j);

        // Names and namespaces.
        let (ns, decl) = match prefix {
            Some("xml" | "xmlns") => return None,
            _ => match lookup_at(&self.bindings, prefix) {
                Some(k) => (Some(self.bindings[k].1), self.decls[k]),
                None if prefix.is_none() => (None, (0, 0)),
                None => return None,
            },
        };
        for k in 0..self.attrs.len() {
            let ans = match self.attrs[k].prefix {
                Some("xml") => Some(XML_NS),
                Some(p) => Some(lookup(&self.bindings, Some(p))?),
                None => None,
            };
            self.attrs[k].ns = ans;
            let local = self.attrs[k].local;
            if self.attrs[..k].iter().any(|a| opt_eq(a.ns, ans) && str_eq(a.local, local)) {
                return None;
            }
        }

        // Limits (with a margin: near them, the DOM path decides).
        self.nodes += 1;
        let depth = self.frames.len();
        if depth + 1 > self.limits.max_depth / 2 || self.nodes > (self.limits.max_nodes / 2) as usize {
            return None;
        }

        // IDs, unique over the whole document.
        for a in &self.attrs {
            let is_id = match a.ns {
                None => matches!(a.local, "Id" | "ID" | "id"),
                Some(n) => n == XML_NS && a.local == "id",
            };
            if is_id {
                if self.ids.len() >= MAX_IDS || self.ids.contains(&a.value) {
                    return None;
                }
                self.ids.push(a.value.clone());
            }
        }
        if depth == 0 {
            self.root_ids = self.ids.len();
            self.root_ns = ns;
            self.root_local = local;
        }

        // The Signature, its subtree, and the canonical outputs.
        // Local name first: it is short and tells most elements apart without comparing URIs.
        let is_sig = str_eq(local, "Signature") && opt_eq(ns, Some(DSIG_NS));
        let in_sig = self.sig_frame != NONE;
        let mut sig_node = NONE;
        let rend_start = self.main.rendered.len();
        let si_rend_start = self.si.rendered.len();
        if is_sig {
            if self.sig_seen || depth == 0 {
                return None;
            }
            self.placement = Some(self.placement_here()?);
            self.sig_seen = true;
            self.sig_frame = depth;
            sig_node = self.push_sig_node("Signature", NONE)?;
        } else if in_sig {
            if !opt_eq(ns, Some(DSIG_NS)) {
                return None;
            }
            let parent = self.frames.last()?.sig_node;
            sig_node = self.push_sig_node(local, parent)?;
            if local == "SignedInfo" && parent == 0 {
                if self.si_done || self.si_active {
                    return None;
                }
                self.si_active = true;
                self.si_frame = depth;
            }
        } else {
            self.main.open(
                qname,
                prefix,
                ns,
                &self.attrs,
                i,
                raw_end,
                decl,
                &self.bindings,
                &mut self.needed,
                &mut self.order,
            )?;
        }
        if self.si_active {
            self.si.open(
                qname,
                prefix,
                ns,
                &self.attrs,
                i,
                raw_end,
                decl,
                &self.bindings,
                &mut self.needed,
                &mut self.order,
            )?;
        }

        // Capture paths.
        let (mut cap, mut leaf) = (0u8, 0u8);
        if depth >= 1 {
            let (parent_cap, parent_leaf) = self.frames.last().map_or((0, 0), |f| (f.cap, f.leaf));
            for (k, path) in self.capture.iter().enumerate() {
                let bit = 1u8 << k;
                if parent_leaf & bit != 0 {
                    self.cap_bad |= bit;
                }
                let level = depth - 1;
                if level < path.len()
                    && (depth == 1 || parent_cap & bit != 0)
                    && str_eq(local, path[level].1)
                    && opt_eq(ns, Some(path[level].0))
                {
                    cap |= bit;
                    self.counts[self.count_at[k] + level] += 1;
                    if level + 1 == path.len() {
                        leaf |= bit;
                    }
                }
            }
        }

        self.frames.push(Frame {
            qname,
            ns,
            local,
            bind_start,
            rend_start,
            si_rend_start,
            cap,
            leaf,
            sig_node,
        });
        if empty {
            self.close(None);
        }
        Some(j)
    }

    fn declare(
        &mut self,
        bind_start: usize,
        prefix: Option<&'i str>,
        uri: &'i str,
        span: (usize, usize),
    ) -> Option<()> {
        // Empty (undeclaring), reserved, or needing C14N escapes: the DOM path decides.
        if uri.is_empty()
            || uri == XML_NS
            || uri == XMLNS_NS
            || matches!(prefix, Some("xml" | "xmlns"))
            || uri.bytes().any(|c| matches!(c, b'&' | b'<' | b'"'))
            || self.bindings[bind_start..].iter().any(|(p, _)| opt_eq(*p, prefix))
        {
            return None;
        }
        self.bindings.push((prefix, uri));
        self.decls.push(span);
        Some(())
    }

    fn push_sig_node(&mut self, local: &'i str, parent: usize) -> Option<usize> {
        if self.sig_nodes.len() >= 64 {
            return None;
        }
        let attr = |name: &str| {
            self.attrs.iter().find(|a| a.ns.is_none() && a.local == name).map(|a| a.value.clone())
        };
        let node = SigNode {
            local,
            parent,
            algorithm: attr("Algorithm"),
            uri: attr("URI"),
            text: Cow::Borrowed(""),
        };
        self.sig_nodes.push(node);
        Some(self.sig_nodes.len() - 1)
    }

    /// Where a `Signature` starting now sits: a child of the root, or the UBL extension place.
    fn placement_here(&self) -> Option<Placement> {
        let f = &self.frames;
        if f.len() == 1 {
            return Some(Placement::RootChild);
        }
        let expected = [
            (ubl::EXT_NS, "UBLExtensions"),
            (ubl::EXT_NS, "UBLExtension"),
            (ubl::EXT_NS, "ExtensionContent"),
            (ubl::SIG_NS, "UBLDocumentSignatures"),
            (ubl::SAC_NS, "SignatureInformation"),
        ];
        if f.len() != 6 {
            return None;
        }
        for (frame, (ns, local)) in f[1..].iter().zip(expected) {
            if frame.ns != Some(ns) || frame.local != local {
                return None;
            }
        }
        Some(Placement::UblExtension)
    }

    /// Closes the innermost element; `raw` as for [`Emit::close`].
    fn close(&mut self, raw: Option<(usize, usize)>) {
        let Some(f) = self.frames.pop() else { return };
        let depth = self.frames.len();
        let in_sig = self.sig_frame != NONE;
        if !in_sig {
            self.main.close(f.qname, f.rend_start, raw);
            self.main.maybe_flush();
        }
        if self.si_active {
            self.si.close(f.qname, f.si_rend_start, raw);
            if depth == self.si_frame {
                self.si_active = false;
                self.si_done = true;
            }
        }
        if depth == self.sig_frame {
            self.sig_frame = NONE;
        }
        self.bindings.truncate(f.bind_start);
        self.decls.truncate(f.bind_start);
    }

    fn end_tag(&mut self, i: usize) -> Option<usize> {
        let b = self.s.as_bytes();
        // The name must be the open element's qname, followed by whitespace or `>` (neither is
        // a name character, so this is the qname the tokenizer would read).
        let q = self.frames.last()?.qname;
        let mut j = i + 2 + q.len();
        if !str_eq(self.s.get(i + 2..j)?, q) {
            return None;
        }
        let name_end = j;
        while j < b.len() && is_ws(b[j]) {
            j += 1;
        }
        if b.get(j) != Some(&b'>') {
            return None;
        }
        // Without whitespace, the input's end tag is the canonical one.
        self.close((j == name_end).then_some((i, j + 1)));
        Some(j + 1)
    }

    /// Text at `at` in the input.
    fn text(&mut self, at: usize, raw: &'i str) -> Option<()> {
        self.nodes += 1;
        // One pass for both bytes that need a closer look (most text has neither).
        let (mut gt, mut amp) = (0u8, 0u8);
        for &c in raw.as_bytes() {
            gt |= (c == b'>') as u8;
            amp |= (c == b'&') as u8;
        }
        let amp = amp != 0;
        if gt != 0 && raw.contains("]]>") {
            return None;
        }
        if !amp {
            // Raw text holds no `<` (it ends there) and no carriage return (`refuse_bytes`);
            // without `>` and references it holds nothing C14N escapes.
            let plain = gt == 0;
            return self.chars(raw, Some(raw), plain.then_some((at, at + raw.len())));
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        decode_into(raw, &mut scratch)?;
        let r = self.chars(&scratch, None, None);
        self.scratch = scratch;
        r
    }

    fn cdata(&mut self, content: &'i str) -> Option<()> {
        self.nodes += 1;
        if self.frames.is_empty() {
            return None;
        }
        if self.sig_frame != NONE {
            return None;
        }
        self.chars(content, Some(content), None)
    }

    /// Character data (decoded) of the innermost open element. `src`: the text as it stands
    /// in the input, when it is that (no references decoded); `plain`: where it stands when it
    /// also holds no byte C14N escapes in text.
    fn chars(&mut self, text: &str, src: Option<&'i str>, plain: Option<(usize, usize)>) -> Option<()> {
        let top = self.frames.last()?;
        let (leaf, sig_node) = (top.leaf, top.sig_node);
        if self.sig_frame != NONE {
            let node = self.sig_nodes.get_mut(sig_node)?;
            match src {
                // The first piece of text is borrowed from the input (no copy).
                Some(src) if node.text.is_empty() => node.text = Cow::Borrowed(src),
                _ => node.text.to_mut().push_str(text),
            }
            if self.si_active {
                self.si.text(text, plain);
            }
        } else {
            self.main.text(text, plain);
            self.main.maybe_flush();
        }
        if leaf != 0 {
            for (k, t) in self.cap_text.iter_mut().enumerate() {
                if leaf & (1 << k) != 0 {
                    t.push_str(text);
                }
            }
        }
        Some(())
    }
}

/// The checked `Signature`, in the shape `sign_enveloped` writes.
struct Parts {
    algorithm: SignatureAlgorithm,
    digest_value: [u8; 32],
    signature: Vec<u8>,
    certificates: Vec<Arc<CachedCert>>,
}

fn kids<'n>(nodes: &'n [SigNode], parent: usize) -> impl Iterator<Item = usize> + 'n {
    (0..nodes.len()).filter(move |&k| nodes[k].parent == parent)
}

fn base64_of(text: &str) -> Option<Vec<u8>> {
    if !text.bytes().any(|b| b.is_ascii_whitespace()) {
        return STANDARD.decode(text).ok();
    }
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    STANDARD.decode(compact).ok()
}

/// Checks the recorded `Signature` subtree against the one shape accepted here and returns
/// its parts; `None` for anything else (the DOM path then decides, with its own codes).
fn signature_parts(s: &Scanned, keys: Option<&KeyCache>) -> Option<Parts> {
    let n = &s.sig_nodes;
    let mut visited = 0usize;
    // Element children with the expected local names, and no text other than whitespace.
    // At most three names: the children come back in a fixed array (no allocation).
    let shape = |idx: usize, names: &[&str], visited: &mut usize| -> Option<[usize; 3]> {
        if !n[idx].text.bytes().all(|b| b.is_ascii_whitespace()) {
            return None;
        }
        let mut k = [NONE; 3];
        let mut count = 0;
        for c in kids(n, idx) {
            if count >= names.len() || n[c].local != names[count] {
                return None;
            }
            k[count] = c;
            count += 1;
        }
        if count != names.len() {
            return None;
        }
        *visited += 1;
        Some(k)
    };
    let leaf = |idx: usize, visited: &mut usize| -> Option<&str> {
        if kids(n, idx).next().is_some() {
            return None;
        }
        *visited += 1;
        Some(&n[idx].text)
    };
    if n.is_empty() || n[0].local != "Signature" {
        return None;
    }
    let sig = shape(0, &["SignedInfo", "SignatureValue", "KeyInfo"], &mut visited)?;
    let si = shape(sig[0], &["CanonicalizationMethod", "SignatureMethod", "Reference"], &mut visited)?;
    shape(si[0], &[], &mut visited)?;
    if n[si[0]].algorithm.as_deref() != Some(EXC_C14N) {
        return None;
    }
    shape(si[1], &[], &mut visited)?;
    let algorithm = SignatureAlgorithm::from_uri(n[si[1]].algorithm.as_deref()?)?;
    let reference = shape(si[2], &["Transforms", "DigestMethod", "DigestValue"], &mut visited)?;
    let uri = n[si[2]].uri.as_deref()?;
    if !uri.is_empty() {
        let id = uri.strip_prefix('#').filter(|id| !id.is_empty() && !id.starts_with("xpointer("))?;
        if !s.root_ids.iter().any(|v| v == id) {
            return None;
        }
    }
    let transforms = shape(reference[0], &["Transform", "Transform"], &mut visited)?;
    shape(transforms[0], &[], &mut visited)?;
    shape(transforms[1], &[], &mut visited)?;
    if n[transforms[0]].algorithm.as_deref() != Some(ENVELOPED_SIGNATURE)
        || n[transforms[1]].algorithm.as_deref() != Some(EXC_C14N)
    {
        return None;
    }
    shape(reference[1], &[], &mut visited)?;
    if n[reference[1]].algorithm.as_deref() != Some(SHA256) {
        return None;
    }
    let digest_value: [u8; 32] = base64_of(leaf(reference[2], &mut visited)?)?.try_into().ok()?;
    let signature = base64_of(leaf(sig[1], &mut visited)?)?;

    if kids(n, sig[2]).next().is_none() || !n[sig[2]].text.bytes().all(|b| b.is_ascii_whitespace()) {
        return None;
    }
    visited += 1;
    let mut certificates = Vec::new();
    for x509 in kids(n, sig[2]) {
        let certs = kids(n, x509);
        if n[x509].local != "X509Data" || !n[x509].text.bytes().all(|b| b.is_ascii_whitespace()) {
            return None;
        }
        visited += 1;
        for cert in certs {
            if n[cert].local != "X509Certificate" || certificates.len() >= MAX_CERTIFICATES {
                return None;
            }
            let text = leaf(cert, &mut visited)?;
            let entry = match keys {
                Some(cache) => cache.by_text(text, base64_of)?,
                None => {
                    let der = base64_of(text)?;
                    let key = certificate_key_or_unsupported(&der).ok()?;
                    Arc::new(CachedCert { der, key })
                }
            };
            certificates.push(entry);
        }
    }
    if certificates.is_empty() || visited != n.len() {
        return None;
    }
    Some(Parts { algorithm, digest_value, signature, certificates })
}

fn finish(s: &mut Scanned, keys: Option<&KeyCache>) -> Option<FastVerify> {
    let placement = s.placement?;
    let signed_info = s.signed_info.as_deref()?;
    let parts = signature_parts(s, keys)?;
    if s.digest?.as_ref() != parts.digest_value {
        return Some(FastVerify::Rejected(Error::Tampered));
    }
    let signer = parts.certificates.iter().position(|c| {
        c.key.as_ref().is_some_and(|key| verify_with(key, parts.algorithm, signed_info, &parts.signature))
    });
    let Some(signer) = signer else {
        return Some(FastVerify::Rejected(Error::BadSignature));
    };
    let signer_certificate_der = parts.certificates[signer].der.clone();
    let certificates: Vec<Vec<u8>> = (parts.certificates.iter().enumerate())
        .filter(|&(k, _)| k != signer)
        .map(|(_, c)| c.der.clone())
        .collect();
    let verified = Verified {
        signer_certificate_der,
        other_certificates_der: certificates,
        algorithm: parts.algorithm,
        root_namespace: s.root_ns.map(str::to_owned),
        root_name: s.root_local.to_owned(),
        placement,
    };
    Some(FastVerify::Verified(verified, std::mem::take(&mut s.captured)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_decode_as_roxmltree_does() {
        let mut out = String::new();
        decode_into("a&amp;b&lt;&gt;&quot;&apos;&#65;&#x42;&#xD;", &mut out).unwrap();
        assert_eq!(out, "a&b<>\"'AB\r");
        for bad in ["&foo;", "&#0;", "&#xD800;", "&#x110000;", "&#;", "&#x;", "&amp", "&#X41;", "&#1F;"] {
            assert!(decode_into(bad, &mut String::new()).is_none(), "{bad}");
        }
    }

    #[test]
    fn refused_bytes() {
        assert!(refuse_bytes(b"<a>\t\n</a>").is_some());
        assert!(refuse_bytes("<a>\u{20ac}\u{ffe5}</a>".as_bytes()).is_some());
        for bad in ["<a>\r</a>", "<a>\u{0}</a>", "<a>\u{fffe}</a>", "<a>\u{ffff}</a>", "\u{feff}<a/>"] {
            assert!(refuse_bytes(bad.as_bytes()).is_none(), "{bad:?}");
        }
    }
}
