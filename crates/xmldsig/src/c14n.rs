//! Exclusive XML Canonicalization 1.0 (<https://www.w3.org/TR/xml-exc-c14n/>) over a roxmltree DOM.
//!
//! Only the node-sets XML-DSig needs here are supported: a whole document or one element subtree,
//! optionally minus one excluded subtree (the enveloped `Signature`). No XPath node-sets.
//! The walk is iterative, so deep nesting cannot overflow the stack.

use roxmltree::{Document, Node, NodeId, NodeType};

use crate::error::{Error, malformed};
use crate::xml::{Limits, attribute_qname, element_qname, parse};

/// Options of one exclusive canonicalization.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExcC14n<'a> {
    pub with_comments: bool,
    /// The `InclusiveNamespaces PrefixList`, with `None` standing for `#default`.
    pub inclusive_prefixes: Vec<Option<&'a str>>,
    /// A subtree left out of the output (the enveloped signature).
    pub exclude: Option<NodeId>,
}

/// Parses a `PrefixList` attribute value (whitespace-separated, `#default` for the default namespace).
pub(crate) fn parse_prefix_list(list: &str) -> Vec<Option<&str>> {
    list.split_ascii_whitespace().map(|p| if p == "#default" { None } else { Some(p) }).collect()
}

/// Canonicalizes a whole document: the root element plus the comments (if asked) and
/// processing instructions around it, each separated from the root by a line feed.
pub(crate) fn canonicalize_document(doc: &Document, opts: &ExcC14n, out: &mut Vec<u8>) -> Result<(), Error> {
    let mut after_root = false;
    for child in doc.root().children() {
        match child.node_type() {
            NodeType::Element => {
                canonicalize_subtree(child, opts, out)?;
                after_root = true;
            }
            NodeType::Comment | NodeType::PI => {
                if child.is_comment() && !opts.with_comments {
                    continue;
                }
                if after_root {
                    out.push(b'\n');
                }
                write_leaf(child, out);
                if !after_root {
                    out.push(b'\n');
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Canonicalizes the subtree rooted at element `apex`, whose ancestors are outside the node-set.
pub(crate) fn canonicalize_subtree<'a>(
    apex: Node<'a, '_>,
    opts: &ExcC14n<'a>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    // Namespace declarations rendered by output ancestors, innermost last; `frames` marks
    // where each open element's declarations start.
    let mut rendered: Vec<(Option<&str>, &str)> = Vec::new();
    // Per open element: where its declarations start in `rendered`, and its qualified name.
    let mut frames: Vec<(usize, &str)> = Vec::new();
    let mut scratch = Scratch::default();

    let mut node = apex;
    loop {
        let excluded = Some(node.id()) == opts.exclude;
        let mut descend = false;
        if !excluded {
            match node.node_type() {
                NodeType::Element => {
                    let qname = element_qname(node);
                    frames.push((rendered.len(), qname));
                    open_element(node, qname, opts, &mut rendered, &mut scratch, out)?;
                    descend = node.has_children();
                }
                NodeType::Text => escape_text(node.text().unwrap_or(""), out),
                NodeType::Comment if !opts.with_comments => {}
                _ => write_leaf(node, out),
            }
        }
        if descend && let Some(child) = node.first_child() {
            node = child;
            continue;
        }
        // Close `node` (if it was an output element), then climb until a next sibling.
        loop {
            if node.is_element()
                && Some(node.id()) != opts.exclude
                && let Some((start, qname)) = frames.pop()
            {
                out.extend_from_slice(b"</");
                out.extend_from_slice(qname.as_bytes());
                out.push(b'>');
                rendered.truncate(start);
            }
            if node == apex {
                return Ok(());
            }
            if let Some(next) = node.next_sibling() {
                node = next;
                break;
            }
            match node.parent() {
                Some(parent) => node = parent,
                None => return Ok(()),
            }
        }
    }
}

fn lookup<'r>(rendered: &[(Option<&str>, &'r str)], prefix: Option<&str>) -> Option<&'r str> {
    rendered.iter().rev().find(|(p, _)| *p == prefix).map(|(_, u)| *u)
}

/// Buffers reused from element to element, to keep allocation out of the walk.
#[derive(Default)]
struct Scratch<'a> {
    needed: Vec<Option<&'a str>>,
    attrs: Vec<(&'a str, &'a str, &'a str, &'a str)>,
    emit: Vec<(Option<&'a str>, &'a str)>,
}

fn open_element<'a>(
    node: Node<'a, '_>,
    qname: &'a str,
    opts: &ExcC14n<'a>,
    rendered: &mut Vec<(Option<&'a str>, &'a str)>,
    scratch: &mut Scratch<'a>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    out.push(b'<');
    out.extend_from_slice(qname.as_bytes());

    // Visibly utilized prefixes: the element's own, and those of its attributes.
    let Scratch { needed, attrs, emit } = scratch;
    needed.clear();
    attrs.clear();
    emit.clear();
    needed.push(qname.split_once(':').map(|(p, _)| p));
    for attr in node.attributes() {
        let aq = attribute_qname(node, &attr);
        if let Some((p, _)) = aq.split_once(':') {
            needed.push(Some(p));
        }
        attrs.push((attr.namespace().unwrap_or(""), attr.name(), aq, attr.value()));
    }
    needed.extend(opts.inclusive_prefixes.iter().copied());
    needed.sort_unstable();
    needed.dedup();

    // Namespace nodes of prefixes that have none in scope (possible only for the inclusive
    // list) are not in the node-set and are not rendered.
    for &prefix in needed.iter() {
        if prefix == Some("xml") {
            continue;
        }
        let Some(ns) = node.namespaces().find(|ns| ns.name() == prefix) else {
            // No binding in scope. For the default namespace this still matters: an output
            // ancestor may have rendered a non-empty default that must be undone.
            if prefix.is_none() && lookup(rendered, None).is_some_and(|u| !u.is_empty()) {
                emit.push((None, ""));
            }
            continue;
        };
        let uri = ns.uri();
        let name = ns.name();
        match name {
            None => {
                let parent = lookup(rendered, None).unwrap_or("");
                if parent != uri {
                    emit.push((None, uri));
                }
            }
            Some(_) => {
                if lookup(rendered, name) != Some(uri) {
                    emit.push((name, uri));
                }
            }
        }
    }
    // `needed` was sorted with None (default) first, then by prefix: the canonical order.
    for &(prefix, uri) in emit.iter() {
        // libxml2 (xmlsec, xmllint) writes namespace URIs unescaped, the spec escapes them:
        // the two disagree on such a document, so it is refused rather than guessed.
        if contains_any(uri.as_bytes(), ATTR_SPECIALS) {
            return Err(malformed(format!(
                "namespace URI {uri:?} has characters C14N implementations disagree on"
            )));
        }

        match prefix {
            None => out.extend_from_slice(b" xmlns=\""),
            Some(p) => {
                out.extend_from_slice(b" xmlns:");
                out.extend_from_slice(p.as_bytes());
                out.extend_from_slice(b"=\"");
            }
        }
        // Free of every byte `escape_attr` replaces (checked above): written as is.
        out.extend_from_slice(uri.as_bytes());
        out.push(b'"');
    }
    rendered.extend_from_slice(emit);

    attrs.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    for &(_, _, aq, value) in attrs.iter() {
        out.push(b' ');
        out.extend_from_slice(aq.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_attr(value, out);
        out.push(b'"');
    }
    out.push(b'>');
    Ok(())
}

/// Writes a comment or processing instruction.
fn write_leaf(node: Node, out: &mut Vec<u8>) {
    if node.is_comment() {
        out.extend_from_slice(b"<!--");
        out.extend_from_slice(node.text().unwrap_or("").as_bytes());
        out.extend_from_slice(b"-->");
    } else if let Some(pi) = node.pi() {
        out.extend_from_slice(b"<?");
        out.extend_from_slice(pi.target.as_bytes());
        if let Some(value) = pi.value.filter(|v| !v.is_empty()) {
            out.push(b' ');
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(b"?>");
    }
}

pub(crate) fn escape_text(text: &str, out: &mut Vec<u8>) {
    escape(text, out, b"&<>\r", |b| match b {
        b'&' => Some(b"&amp;"),
        b'<' => Some(b"&lt;"),
        b'>' => Some(b"&gt;"),
        b'\r' => Some(b"&#xD;"),
        _ => None,
    });
}

/// The bytes [`escape_attr`] replaces.
const ATTR_SPECIALS: &[u8; 6] = b"&<\"\t\n\r";

pub(crate) fn escape_attr(text: &str, out: &mut Vec<u8>) {
    escape(text, out, ATTR_SPECIALS, |b| match b {
        b'&' => Some(b"&amp;"),
        b'<' => Some(b"&lt;"),
        b'"' => Some(b"&quot;"),
        b'\t' => Some(b"&#x9;"),
        b'\n' => Some(b"&#xA;"),
        b'\r' => Some(b"&#xD;"),
        _ => None,
    });
}

/// Copies `text`, replacing the bytes `entity` maps; runs without specials are copied whole.
/// `specials` lists exactly the bytes `entity` maps: blocks of bytes holding none of them are
/// skipped with a branch-free test (which the compiler vectorizes) instead of byte by byte.
fn escape<const N: usize>(
    text: &str,
    out: &mut Vec<u8>,
    specials: &[u8; N],
    entity: impl Fn(u8) -> Option<&'static [u8]>,
) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(block) = bytes.get(i..i + BLOCK)
            && !block_has_any(block, specials)
        {
            i += BLOCK;
            continue;
        }
        if let Some(replacement) = entity(bytes[i]) {
            out.extend_from_slice(&bytes[start..i]);
            out.extend_from_slice(replacement);
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

const BLOCK: usize = 16;

/// Whether `block` holds any of `specials`, without an early exit (so it vectorizes).
fn block_has_any<const N: usize>(block: &[u8], specials: &[u8; N]) -> bool {
    block.iter().fold(false, |hit, b| hit | specials.iter().fold(false, |h, s| h | (b == s)))
}

/// Whether `bytes` holds any of `specials`.
fn contains_any<const N: usize>(bytes: &[u8], specials: &[u8; N]) -> bool {
    let mut blocks = bytes.chunks_exact(BLOCK);
    blocks.by_ref().any(|block| block_has_any(block, specials)) || block_has_any(blocks.remainder(), specials)
}

/// Exclusive C14N 1.0 of a whole document, with or without comments.
///
/// Byte-identical to `xmllint --exc-c14n` (which keeps comments) for documents without a DTD.
/// Uses [`Limits::default`]; see [`canonicalize_exclusive_with`] to choose limits and an
/// `InclusiveNamespaces PrefixList`.
pub fn canonicalize_exclusive(xml: &[u8], with_comments: bool) -> Result<Vec<u8>, Error> {
    canonicalize_exclusive_with(xml, with_comments, &[], None, &Limits::default())
}

/// Exclusive C14N 1.0 of a whole document or, with `subtree_id`, of the one element whose
/// `Id`/`ID`/`id`/`xml:id` attribute has that value. `inclusive_prefixes` is the
/// `InclusiveNamespaces PrefixList` (`"#default"` for the default namespace).
pub fn canonicalize_exclusive_with(
    xml: &[u8],
    with_comments: bool,
    inclusive_prefixes: &[&str],
    subtree_id: Option<&str>,
    limits: &Limits,
) -> Result<Vec<u8>, Error> {
    let doc = parse(xml, limits)?;
    let opts = ExcC14n {
        with_comments,
        inclusive_prefixes: inclusive_prefixes
            .iter()
            .map(|p| if *p == "#default" { None } else { Some(*p) })
            .collect(),
        exclude: None,
    };
    let mut out = Vec::with_capacity(xml.len());
    match subtree_id {
        None => canonicalize_document(&doc, &opts, &mut out)?,
        Some(id) => {
            let mut found = doc.descendants().filter(|n| crate::xml::id_values(*n).any(|v| v == id));
            let apex = found.next().ok_or_else(|| malformed(format!("no element with ID {id:?}")))?;
            if found.next().is_some() {
                return Err(crate::error::wrapping(format!("duplicate ID {id:?}")));
            }
            canonicalize_subtree(apex, &opts, &mut out)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expect: &str) {
        let got = canonicalize_exclusive(input.as_bytes(), true).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), expect);
    }

    #[test]
    fn namespaces_are_rendered_where_visibly_used() {
        check(
            r#"<a:r xmlns:a="urn:a" xmlns:b="urn:b" xmlns="urn:d"><b:c x="1"/><d/></a:r>"#,
            r#"<a:r xmlns:a="urn:a"><b:c xmlns:b="urn:b" x="1"></b:c><d xmlns="urn:d"></d></a:r>"#,
        );
    }

    #[test]
    fn default_namespace_is_undone_for_unqualified_children() {
        check(r#"<r xmlns="urn:d"><c xmlns=""/></r>"#, r#"<r xmlns="urn:d"><c xmlns=""></c></r>"#);
    }

    #[test]
    fn escaping_agrees_with_a_byte_by_byte_reference_at_every_position() {
        fn reference(text: &str, attr: bool) -> String {
            text.chars()
                .map(|c| match (c, attr) {
                    ('&', _) => "&amp;".to_owned(),
                    ('<', _) => "&lt;".to_owned(),
                    ('>', false) => "&gt;".to_owned(),
                    ('"', true) => "&quot;".to_owned(),
                    ('\t', true) => "&#x9;".to_owned(),
                    ('\n', true) => "&#xA;".to_owned(),
                    ('\r', _) => "&#xD;".to_owned(),
                    (c, _) => c.to_string(),
                })
                .collect()
        }
        // Every special at every offset around the 16-byte blocks, in short and long runs.
        for special in ['&', '<', '>', '"', '\t', '\n', '\r', '\''] {
            for len in [0, 1, 15, 16, 17, 31, 32, 33, 50] {
                for at in 0..=len {
                    let mut text: String = "aé€b".chars().cycle().take(len).collect();
                    if at < len {
                        let byte = text.char_indices().nth(at).map_or(text.len(), |(i, _)| i);
                        text.insert(byte, special);
                    }
                    text.push(special);
                    let (mut t, mut a) = (Vec::new(), Vec::new());
                    escape_text(&text, &mut t);
                    escape_attr(&text, &mut a);
                    assert_eq!(String::from_utf8(t).unwrap(), reference(&text, false), "{text:?}");
                    assert_eq!(String::from_utf8(a).unwrap(), reference(&text, true), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn contains_any_finds_a_special_at_every_position() {
        for len in [0, 1, 15, 16, 17, 32, 40] {
            let clean = vec![b'a'; len];
            assert!(!contains_any(&clean, ATTR_SPECIALS));
            for at in 0..len {
                for &special in ATTR_SPECIALS {
                    let mut bytes = clean.clone();
                    bytes[at] = special;
                    assert!(contains_any(&bytes, ATTR_SPECIALS), "{len} {at} {special}");
                }
                let mut bytes = clean.clone();
                bytes[at] = b'>';
                assert!(!contains_any(&bytes, ATTR_SPECIALS));
            }
        }
    }

    #[test]
    fn namespace_uris_needing_escapes_are_refused() {
        for uri in ["urn:a?b&amp;c", "urn:a&lt;b", "urn:a&quot;b", "urn:a&#9;b", "urn:a&#10;b", "urn:a&#13;b"]
        {
            let xml = format!(r#"<p:r xmlns:p="{uri}"/>"#);
            let err = canonicalize_exclusive(xml.as_bytes(), false).unwrap_err();
            assert_eq!(err.code(), "MALFORMED", "{uri}");
        }
        let err = canonicalize_exclusive(br#"<p:r xmlns:p="urn:a?b&amp;c"/>"#, false).unwrap_err();
        assert_eq!(err.code(), "MALFORMED");
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let depth = 50_000;
        let xml = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let err = canonicalize_exclusive(xml.as_bytes(), false).unwrap_err();
        assert_eq!(err.code(), "DOCUMENT_TOO_LARGE");
        let limits = Limits { max_depth: 2000, ..Limits::default() };
        let xml = format!("{}{}", "<a>".repeat(2000), "</a>".repeat(2000));
        let out = canonicalize_exclusive_with(xml.as_bytes(), false, &[], None, &limits).unwrap();
        assert_eq!(out.len(), 2000 * 7);
        // Markup-like text inside comments, CDATA and attribute values does not count.
        let xml = format!(
            "<r a='{}'><!--{}--><![CDATA[{}]]><?pi {}?></r>",
            "\"/>".repeat(300),
            "<a>".repeat(300),
            "<a>".repeat(300),
            "<a>".repeat(300)
        );
        let limits = Limits { max_depth: 2, ..Limits::default() };
        assert!(canonicalize_exclusive_with(xml.as_bytes(), true, &[], None, &limits).is_ok());
    }
}
