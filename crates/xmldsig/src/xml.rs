//! Parsing under limits, and the small DOM helpers roxmltree does not have (source prefixes,
//! ID attributes and their uniqueness).

use std::collections::HashSet;

use roxmltree::{Attribute, Document, Node, ParsingOptions};

use crate::error::{Error, malformed, wrapping};

/// Namespace of XML-DSig 1.0.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Namespace of the exclusive C14N `InclusiveNamespaces` element.
pub const EXC_C14N_NS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub(crate) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Resource limits applied before and while parsing untrusted XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Largest accepted number of DOM nodes (elements, text, comments, PIs).
    pub max_nodes: u32,
    /// Deepest accepted element nesting. The parser recurses once per level, so this is
    /// what keeps hostile nesting from overflowing the stack.
    pub max_depth: usize,
}

impl Default for Limits {
    /// 4 MiB, 200 000 nodes, nesting 256 deep: far above any certificate of origin, far below harm.
    fn default() -> Self {
        Limits { max_bytes: 4 * 1024 * 1024, max_nodes: 200_000, max_depth: 256 }
    }
}

/// Parses `xml` as UTF-8 XML without DTD, within `limits`.
pub(crate) fn parse<'i>(xml: &'i [u8], limits: &Limits) -> Result<Document<'i>, Error> {
    if xml.len() > limits.max_bytes {
        return Err(Error::DocumentTooLarge(format!(
            "{} bytes, limit {} bytes",
            xml.len(),
            limits.max_bytes
        )));
    }
    let text = std::str::from_utf8(xml).map_err(|e| malformed(format!("not UTF-8: {e}")))?;
    let bounds = originlink_xmlbounds::Bounds {
        max_bytes: limits.max_bytes,
        max_depth: limits.max_depth,
        max_nodes: limits.max_nodes as usize,
        ..originlink_xmlbounds::Bounds::DEFAULT
    };
    originlink_xmlbounds::check(xml, &bounds).map_err(|e| match e {
        originlink_xmlbounds::Exceeded::Dtd { .. } => malformed("a DOCTYPE is not accepted"),
        e => Error::DocumentTooLarge(format!("{}: {e}", e.code())),
    })?;
    let opts = ParsingOptions { allow_dtd: false, nodes_limit: limits.max_nodes };
    let doc = Document::parse_with_options(text, opts).map_err(|e| match e {
        roxmltree::Error::NodesLimitReached => {
            Error::DocumentTooLarge(format!("more than {} XML nodes", limits.max_nodes))
        }
        other => malformed(format!("not well-formed XML: {other}")),
    })?;
    // roxmltree accepts an empty `<!DOCTYPE x>`; our policy is no DTD at all.
    let prolog = &text[..doc.root_element().range().start];
    if prolog.contains("<!DOCTYPE") {
        return Err(malformed("a DOCTYPE is not accepted"));
    }
    Ok(doc)
}

/// The qualified name of an element as written in the source.
pub(crate) fn element_qname<'i>(node: Node<'_, 'i>) -> &'i str {
    let input = node.document().input_text();
    let rest = input.get(node.range().start + 1..).unwrap_or("");
    // All delimiters are ASCII, so the cut is on a char boundary.
    let end = rest
        .bytes()
        .position(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'/' | b'>'))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The qualified name of an attribute as written in the source.
pub(crate) fn attribute_qname<'i>(node: Node<'_, 'i>, attr: &Attribute<'_, 'i>) -> &'i str {
    node.document().input_text().get(attr.range_qname()).unwrap_or_else(|| attr.name())
}

/// Whether `node` is the element `{DSIG_NS}local`.
pub(crate) fn is_ds(node: Node, local: &str) -> bool {
    node.is_element() && node.tag_name().name() == local && node.tag_name().namespace() == Some(DSIG_NS)
}

/// The ID-like attribute values of an element: `Id`, `ID`, `id` and `xml:id`.
pub(crate) fn id_values<'a>(node: Node<'a, '_>) -> impl Iterator<Item = &'a str> {
    node.attributes()
        .filter(|a| match a.namespace() {
            None => matches!(a.name(), "Id" | "ID" | "id"),
            Some(ns) => ns == XML_NS && a.name() == "id",
        })
        .map(|a| a.value())
}

/// No ID value (see [`id_values`]) appears twice on the elements under `root`, itself included:
/// a duplicate is refused as possible signature wrapping.
pub(crate) fn check_unique_ids(root: Node) -> Result<(), Error> {
    let mut seen = HashSet::new();
    for node in root.descendants().filter(|n| n.is_element()) {
        for id in id_values(node) {
            if !seen.insert(id) {
                return Err(wrapping(format!("duplicate ID {id:?}")));
            }
        }
    }
    Ok(())
}
