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

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::c14n::{escape_attr, escape_text};
use crate::error::Error;
use crate::keys::{
    CertKey, ENVELOPED_SIGNATURE, EXC_C14N, KeyCache, SHA256, SignatureAlgorithm,
    certificate_key_or_unsupported, verify_with,
};
use crate::sign::Placement;
use crate::ubl;
use crate::verify::Verified;
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
    let Some(scanned) = scan(xml, limits, capture, true) else {
        return FastVerify::Unsure;
    };
    finish(scanned, keys).unwrap_or(FastVerify::Unsure)
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
    text: String,
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
}

/// One exclusive-C14N output: the bytes, and the namespace declarations rendered by open
/// output ancestors (innermost last).
struct Emit<'i> {
    out: Vec<u8>,
    rendered: Vec<(Option<&'i str>, &'i str)>,
    digest: Option<ring::digest::Context>,
}

impl<'i> Emit<'i> {
    fn new(capacity: usize, digest: bool) -> Self {
        Emit {
            out: Vec::with_capacity(capacity),
            rendered: Vec::new(),
            digest: digest.then(|| ring::digest::Context::new(&ring::digest::SHA256)),
        }
    }

    fn maybe_flush(&mut self) {
        if self.out.len() >= FLUSH_AT
            && let Some(ctx) = self.digest.as_mut()
        {
            ctx.update(&self.out);
            self.out.clear();
        }
    }

    /// Writes an exclusive-C14N start tag (no inclusive prefixes).
    fn open(
        &mut self,
        qname: &'i str,
        prefix: Option<&'i str>,
        attrs: &[Attr<'i>],
        bindings: &[(Option<&'i str>, &'i str)],
        needed: &mut Vec<Option<&'i str>>,
        order: &mut Vec<usize>,
    ) -> Option<()> {
        self.out.push(b'<');
        self.out.extend_from_slice(qname.as_bytes());
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
                    if rendered.unwrap_or("") == e {
                        continue;
                    }
                    self.out.extend_from_slice(b" xmlns=\"");
                    e
                }
                Some(name) => {
                    let e = effective?;
                    if rendered == Some(e) {
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
            escape_attr(&a.value, &mut self.out);
            self.out.push(b'"');
        }
        self.out.push(b'>');
        Some(())
    }

    fn close(&mut self, qname: &str, rend_start: usize) {
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(qname.as_bytes());
        self.out.push(b'>');
        self.rendered.truncate(rend_start);
    }
}

fn lookup<'i>(list: &[(Option<&'i str>, &'i str)], prefix: Option<&str>) -> Option<&'i str> {
    list.iter().rev().find(|(p, _)| *p == prefix).map(|(_, u)| *u)
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

/// An ASCII QName at `b[i..]`: (qname, prefix, local, end).
fn parse_qname(s: &str, i: usize) -> Option<(&str, Option<&str>, &str, usize)> {
    let b = s.as_bytes();
    let ncname = |from: usize| -> Option<usize> {
        if !is_name_start(*b.get(from)?) {
            return None;
        }
        let mut j = from + 1;
        while j < b.len() && is_name_char(b[j]) {
            j += 1;
        }
        Some(j)
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
    let suspicious = |c: u8| (c < 0x20 && c != b'\t' && c != b'\n') | (c == 0xEF);
    let mut blocks = b.chunks_exact(16);
    let mut hit = blocks.by_ref().any(|blk| blk.iter().fold(false, |h, &c| h | suspicious(c)));
    hit |= blocks.remainder().iter().any(|&c| suspicious(c));
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
    counts: Vec<Vec<u32>>,
    cap_text: Vec<String>,
    cap_bad: Vec<bool>,
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
        frames: Vec::with_capacity(16),
        main: Emit::new(if digest { FLUSH_AT + 1024 } else { xml.len() }, digest),
        si: Emit::new(1024, false),
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
        counts: capture.iter().map(|p| vec![0; p.len()]).collect(),
        cap_text: vec![String::new(); capture.len()],
        cap_bad: vec![false; capture.len()],
        nodes: 1,
        attrs: Vec::with_capacity(8),
        needed: Vec::with_capacity(8),
        order: Vec::with_capacity(8),
        scratch: String::new(),
    };
    st.run()?;
    let digest = st.main.digest.take().map(|mut ctx| {
        ctx.update(&st.main.out);
        ctx.finish()
    });
    let captured = (0..capture.len())
        .map(|k| {
            let sure = !st.cap_bad[k] && st.counts[k].iter().all(|&c| c == 1) && !capture[k].is_empty();
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
                    self.text(text)?;
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
            let vlen = b[vstart..].iter().position(|&c| c == quote)?;
            let raw = &s[vstart..vstart + vlen];
            j = vstart + vlen + 1;
            if raw.bytes().any(|c| matches!(c, b'<' | b'\t' | b'\n')) {
                return None;
            }
            match (ap, al) {
                (Some("xmlns"), name) => self.declare(bind_start, Some(name), raw)?,
                (None, "xmlns") => self.declare(bind_start, None, raw)?,
                (_, "xmlns") => return None,
                _ => {
                    if self.attrs.len() >= MAX_ATTRS {
                        return None;
                    }
                    let value = decoded(raw)?;
                    self.attrs.push(Attr { qname: aq, prefix: ap, local: al, ns: None, value });
                }
            }
        }

        // Names and namespaces.
        let ns = match prefix {
            Some("xml" | "xmlns") => return None,
            Some(p) => Some(lookup(&self.bindings, Some(p))?),
            None => lookup(&self.bindings, None),
        };
        for k in 0..self.attrs.len() {
            let ans = match self.attrs[k].prefix {
                Some("xml") => Some(XML_NS),
                Some(p) => Some(lookup(&self.bindings, Some(p))?),
                None => None,
            };
            self.attrs[k].ns = ans;
            let local = self.attrs[k].local;
            if self.attrs[..k].iter().any(|a| a.ns == ans && a.local == local) {
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
        let is_sig = local == "Signature" && ns == Some(DSIG_NS);
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
            if ns != Some(DSIG_NS) {
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
            self.main.open(qname, prefix, &self.attrs, &self.bindings, &mut self.needed, &mut self.order)?;
        }
        if self.si_active {
            self.si.open(qname, prefix, &self.attrs, &self.bindings, &mut self.needed, &mut self.order)?;
        }

        // Capture paths.
        let (mut cap, mut leaf) = (0u8, 0u8);
        if depth >= 1 {
            let (parent_cap, parent_leaf) = self.frames.last().map_or((0, 0), |f| (f.cap, f.leaf));
            for (k, path) in self.capture.iter().enumerate() {
                let bit = 1u8 << k;
                if parent_leaf & bit != 0 {
                    self.cap_bad[k] = true;
                }
                let level = depth - 1;
                if level < path.len()
                    && (depth == 1 || parent_cap & bit != 0)
                    && local == path[level].1
                    && ns == Some(path[level].0)
                {
                    cap |= bit;
                    self.counts[k][level] += 1;
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
            self.close();
        }
        Some(j)
    }

    fn declare(&mut self, bind_start: usize, prefix: Option<&'i str>, uri: &'i str) -> Option<()> {
        // Empty (undeclaring), reserved, or needing C14N escapes: the DOM path decides.
        if uri.is_empty()
            || uri == XML_NS
            || uri == XMLNS_NS
            || matches!(prefix, Some("xml" | "xmlns"))
            || uri.bytes().any(|c| matches!(c, b'&' | b'<' | b'"'))
            || self.bindings[bind_start..].iter().any(|(p, _)| *p == prefix)
        {
            return None;
        }
        self.bindings.push((prefix, uri));
        Some(())
    }

    fn push_sig_node(&mut self, local: &'i str, parent: usize) -> Option<usize> {
        if self.sig_nodes.len() >= 64 {
            return None;
        }
        let attr = |name: &str| {
            self.attrs.iter().find(|a| a.ns.is_none() && a.local == name).map(|a| a.value.clone())
        };
        let node =
            SigNode { local, parent, algorithm: attr("Algorithm"), uri: attr("URI"), text: String::new() };
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

    fn close(&mut self) {
        let Some(f) = self.frames.pop() else { return };
        let depth = self.frames.len();
        let in_sig = self.sig_frame != NONE;
        if !in_sig {
            self.main.close(f.qname, f.rend_start);
            self.main.maybe_flush();
        }
        if self.si_active {
            self.si.close(f.qname, f.si_rend_start);
            if depth == self.si_frame {
                self.si_active = false;
                self.si_done = true;
            }
        }
        if depth == self.sig_frame {
            self.sig_frame = NONE;
        }
        self.bindings.truncate(f.bind_start);
    }

    fn end_tag(&mut self, i: usize) -> Option<usize> {
        let s = self.s;
        let b = s.as_bytes();
        let (q, _, _, mut j) = parse_qname(s, i + 2)?;
        while j < b.len() && is_ws(b[j]) {
            j += 1;
        }
        if b.get(j) != Some(&b'>') || self.frames.last()?.qname != q {
            return None;
        }
        self.close();
        Some(j + 1)
    }

    fn text(&mut self, raw: &'i str) -> Option<()> {
        self.nodes += 1;
        if raw.as_bytes().contains(&b'>') && raw.contains("]]>") {
            return None;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let text: &str = if raw.as_bytes().contains(&b'&') {
            scratch.clear();
            decode_into(raw, &mut scratch)?;
            &scratch
        } else {
            raw
        };
        let r = self.chars(text, false);
        self.scratch = scratch;
        r
    }

    fn cdata(&mut self, content: &'i str) -> Option<()> {
        self.nodes += 1;
        if self.frames.is_empty() {
            return None;
        }
        self.chars(content, true)
    }

    /// Character data (decoded) of the innermost open element.
    fn chars(&mut self, text: &str, cdata: bool) -> Option<()> {
        let top = self.frames.last()?;
        let (leaf, sig_node) = (top.leaf, top.sig_node);
        if self.sig_frame != NONE {
            if cdata {
                return None;
            }
            self.sig_nodes.get_mut(sig_node)?.text.push_str(text);
            if self.si_active {
                escape_text(text, &mut self.si.out);
            }
        } else {
            escape_text(text, &mut self.main.out);
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
    digest_value: Vec<u8>,
    signature: Vec<u8>,
    certificates: Vec<(Vec<u8>, Option<CertKey>)>,
}

fn kids(nodes: &[SigNode], parent: usize) -> Vec<usize> {
    (0..nodes.len()).filter(|&k| nodes[k].parent == parent).collect()
}

fn base64_of(text: &str) -> Option<Vec<u8>> {
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    STANDARD.decode(compact).ok()
}

/// Checks the recorded `Signature` subtree against the one shape accepted here and returns
/// its parts; `None` for anything else (the DOM path then decides, with its own codes).
fn signature_parts(s: &Scanned, keys: Option<&KeyCache>) -> Option<Parts> {
    let n = &s.sig_nodes;
    let mut visited = 0usize;
    // Element children with the expected local names, and no text other than whitespace.
    let shape = |idx: usize, names: &[&str], visited: &mut usize| -> Option<Vec<usize>> {
        if !n[idx].text.bytes().all(|b| b.is_ascii_whitespace()) {
            return None;
        }
        let k = kids(n, idx);
        if k.len() != names.len() || k.iter().zip(names).any(|(&c, name)| n[c].local != *name) {
            return None;
        }
        *visited += 1;
        Some(k)
    };
    let leaf = |idx: usize, visited: &mut usize| -> Option<&str> {
        if !kids(n, idx).is_empty() {
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
    let digest_value = base64_of(leaf(reference[2], &mut visited)?)?;
    if digest_value.len() != 32 {
        return None;
    }
    let signature = base64_of(leaf(sig[1], &mut visited)?)?;

    let key_info = kids(n, sig[2]);
    if key_info.is_empty() || !n[sig[2]].text.bytes().all(|b| b.is_ascii_whitespace()) {
        return None;
    }
    visited += 1;
    let mut certificates = Vec::new();
    for x509 in key_info {
        let certs = kids(n, x509);
        if n[x509].local != "X509Data" || !n[x509].text.bytes().all(|b| b.is_ascii_whitespace()) {
            return None;
        }
        visited += 1;
        for cert in certs {
            if n[cert].local != "X509Certificate" || certificates.len() >= MAX_CERTIFICATES {
                return None;
            }
            let der = base64_of(leaf(cert, &mut visited)?)?;
            let key = match keys {
                Some(cache) => cache.key(&der).ok()?,
                None => certificate_key_or_unsupported(&der).ok()?,
            };
            certificates.push((der, key));
        }
    }
    if certificates.is_empty() || visited != n.len() {
        return None;
    }
    Some(Parts { algorithm, digest_value, signature, certificates })
}

fn finish(s: Scanned, keys: Option<&KeyCache>) -> Option<FastVerify> {
    let placement = s.placement?;
    let signed_info = s.signed_info.as_deref()?;
    let parts = signature_parts(&s, keys)?;
    if s.digest?.as_ref() != parts.digest_value.as_slice() {
        return Some(FastVerify::Rejected(Error::Tampered));
    }
    let signer = parts.certificates.iter().position(|(_, key)| {
        key.as_ref().is_some_and(|key| verify_with(key, parts.algorithm, signed_info, &parts.signature))
    });
    let Some(signer) = signer else {
        return Some(FastVerify::Rejected(Error::BadSignature));
    };
    let mut certificates: Vec<Vec<u8>> = parts.certificates.into_iter().map(|(der, _)| der).collect();
    let signer_certificate_der = certificates.remove(signer);
    let verified = Verified {
        signer_certificate_der,
        other_certificates_der: certificates,
        algorithm: parts.algorithm,
        root_namespace: s.root_ns.map(str::to_owned),
        root_name: s.root_local.to_owned(),
        placement,
    };
    Some(FastVerify::Verified(verified, s.captured))
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
