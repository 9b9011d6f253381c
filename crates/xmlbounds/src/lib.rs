//! Hard bounds for untrusted XML, checked in one linear pass before any parser sees the text.
//!
//! roxmltree, which every XML reader of OriginLink uses, recurses once per nesting level and
//! checks duplicate attributes pairwise, so a 35 KB document nested 5,000 deep overflows a
//! thread's stack and 85,000 attributes on one element take seconds. [`check`] refuses such
//! input first, with a stable code, in time linear in the input and constant memory.
//!
//! The scan is deliberately tolerant: it does not decide well-formedness (the parser does), it
//! only over-approximates what the parser could build. Markup inside comments, CDATA,
//! processing instructions and quoted attribute values is skipped exactly as a parser skips
//! it, so on every well-formed prefix the counts equal the parser's; past the first malformed
//! token the parser stops anyway.
//!
//! Architecture invariant: no dependencies, no IO, no allocation, never panics.
//!
//! # Layout
//! - [`Bounds`]: the limits, with [`Bounds::DEFAULT`] for certificate-sized documents.
//! - [`check`]: the pass; [`Exceeded`]: what it refuses, with [`Exceeded::code`].

use std::fmt;

/// Limits for one XML document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Largest document, in bytes.
    pub max_bytes: usize,
    /// Deepest element nesting (the root element is depth 1).
    pub max_depth: usize,
    /// Most attributes (namespace declarations included) on one element.
    pub max_attributes: usize,
    /// Most nodes: elements, text runs, comments, CDATA sections and processing instructions.
    pub max_nodes: usize,
    /// Longest element or attribute name, in bytes (prefix included).
    pub max_name_len: usize,
    /// Longest attribute value, in bytes as written.
    pub max_value_len: usize,
    /// Most namespace declarations (`xmlns`, `xmlns:p`) in the whole document. roxmltree
    /// copies the namespaces in scope into every element that declares one and looks prefixes
    /// up linearly, so their number multiplies the work of every element.
    pub max_namespaces: usize,
}

impl Bounds {
    /// 5 MiB, nesting 256 deep, 128 attributes an element, 200,000 nodes, names of 256 bytes,
    /// attribute values of 64 KiB, 256 namespace declarations. A 50-item certificate with its signature is about 30 KB,
    /// 12 deep, 3,000 nodes, with at most 12 attributes on an element: far inside, while the
    /// worst case allowed parses in tens of milliseconds.
    pub const DEFAULT: Bounds = Bounds {
        max_bytes: 5 * 1024 * 1024,
        max_depth: 256,
        max_attributes: 128,
        max_nodes: 200_000,
        max_name_len: 256,
        max_value_len: 64 * 1024,
        max_namespaces: 256,
    };
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds::DEFAULT
    }
}

/// Which bound a document goes past, and where (byte offset of the construct).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// Larger than [`Bounds::max_bytes`].
    Bytes { size: usize, limit: usize },
    /// Nested deeper than [`Bounds::max_depth`].
    Depth { limit: usize, at: usize },
    /// An element with more than [`Bounds::max_attributes`] attributes.
    Attributes { limit: usize, at: usize },
    /// More than [`Bounds::max_nodes`] nodes.
    Nodes { limit: usize, at: usize },
    /// A name longer than [`Bounds::max_name_len`].
    NameLength { limit: usize, at: usize },
    /// An attribute value longer than [`Bounds::max_value_len`].
    ValueLength { limit: usize, at: usize },
    /// More than [`Bounds::max_namespaces`] namespace declarations.
    Namespaces { limit: usize, at: usize },
    /// A document type declaration: never accepted (no entity can be declared or fetched).
    Dtd { at: usize },
}

impl Exceeded {
    /// The stable code: `DOCUMENT_TOO_LARGE`, `XML_TOO_DEEP`, `XML_TOO_MANY_ATTRIBUTES`,
    /// `XML_TOO_MANY_NODES`, `XML_NAME_TOO_LONG`, `XML_VALUE_TOO_LONG`, `XML_TOO_MANY_NAMESPACES` or
    /// `XML_DTD_FORBIDDEN`.
    pub fn code(&self) -> &'static str {
        match self {
            Exceeded::Bytes { .. } => "DOCUMENT_TOO_LARGE",
            Exceeded::Depth { .. } => "XML_TOO_DEEP",
            Exceeded::Attributes { .. } => "XML_TOO_MANY_ATTRIBUTES",
            Exceeded::Nodes { .. } => "XML_TOO_MANY_NODES",
            Exceeded::NameLength { .. } => "XML_NAME_TOO_LONG",
            Exceeded::ValueLength { .. } => "XML_VALUE_TOO_LONG",
            Exceeded::Namespaces { .. } => "XML_TOO_MANY_NAMESPACES",
            Exceeded::Dtd { .. } => "XML_DTD_FORBIDDEN",
        }
    }

    /// Every code [`Exceeded::code`] can give.
    pub const CODES: &'static [&'static str] = &[
        "DOCUMENT_TOO_LARGE",
        "XML_TOO_DEEP",
        "XML_TOO_MANY_ATTRIBUTES",
        "XML_TOO_MANY_NODES",
        "XML_NAME_TOO_LONG",
        "XML_VALUE_TOO_LONG",
        "XML_TOO_MANY_NAMESPACES",
        "XML_DTD_FORBIDDEN",
    ];
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Exceeded::Bytes { size, limit } => {
                write!(f, "the document is {size} bytes; at most {limit} are accepted")
            }
            Exceeded::Depth { limit, at } => {
                write!(f, "elements are nested more than {limit} deep (at byte {at})")
            }
            Exceeded::Attributes { limit, at } => {
                write!(f, "an element has more than {limit} attributes (at byte {at})")
            }
            Exceeded::Nodes { limit, at } => {
                write!(f, "the document has more than {limit} XML nodes (at byte {at})")
            }
            Exceeded::NameLength { limit, at } => {
                write!(f, "a name is longer than {limit} bytes (at byte {at})")
            }
            Exceeded::ValueLength { limit, at } => {
                write!(f, "an attribute value is longer than {limit} bytes (at byte {at})")
            }
            Exceeded::Namespaces { limit, at } => {
                write!(f, "the document declares more than {limit} namespaces (at byte {at})")
            }
            Exceeded::Dtd { at } => write!(
                f,
                "the document has a DTD (<!DOCTYPE …> at byte {at}); DTDs and entity declarations are refused"
            ),
        }
    }
}

impl std::error::Error for Exceeded {}

/// The largest nesting depth, node count and attribute count seen by a passing [`check`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Deepest element nesting.
    pub depth: usize,
    /// Nodes counted.
    pub nodes: usize,
    /// Most attributes on one element.
    pub attributes: usize,
}

/// Checks `xml` against `bounds` in one pass. `Ok` does not mean well-formed: it means a
/// parser may be given the text without risk.
pub fn check(xml: &[u8], bounds: &Bounds) -> Result<Shape, Exceeded> {
    if xml.len() > bounds.max_bytes {
        return Err(Exceeded::Bytes { size: xml.len(), limit: bounds.max_bytes });
    }
    Scan { xml, b: bounds, shape: Shape::default(), depth: 0, namespaces: 0 }.run()
}

struct Scan<'a> {
    xml: &'a [u8],
    b: &'a Bounds,
    shape: Shape,
    depth: usize,
    namespaces: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Position of `needle` in `hay` at or after `from`, or `hay.len()`.
fn find_byte(hay: &[u8], from: usize, needle: u8) -> usize {
    hay.get(from..).and_then(|t| t.iter().position(|&b| b == needle)).map_or(hay.len(), |p| from + p)
}

/// Index just past the first `end` at or after `from`, or `hay.len()`.
fn skip_past(hay: &[u8], from: usize, end: &[u8]) -> usize {
    let mut i = from;
    loop {
        let p = find_byte(hay, i, end[0]);
        if p >= hay.len() {
            return hay.len();
        }
        if hay[p..].starts_with(end) {
            return p + end.len();
        }
        i = p + 1;
    }
}

impl Scan<'_> {
    fn node(&mut self, at: usize) -> Result<(), Exceeded> {
        self.shape.nodes += 1;
        if self.shape.nodes > self.b.max_nodes {
            return Err(Exceeded::Nodes { limit: self.b.max_nodes, at });
        }
        Ok(())
    }

    fn name(&self, start: usize, end: usize) -> Result<(), Exceeded> {
        if end - start > self.b.max_name_len {
            return Err(Exceeded::NameLength { limit: self.b.max_name_len, at: start });
        }
        Ok(())
    }

    fn run(mut self) -> Result<Shape, Exceeded> {
        let xml = self.xml;
        let mut i = 0;
        while i < xml.len() {
            let lt = find_byte(xml, i, b'<');
            if lt > i && self.depth > 0 {
                // Text between tags (text outside the root is only whitespace or an error).
                self.node(i)?;
            }
            if lt >= xml.len() {
                break;
            }
            let rest = &xml[lt..];
            i = if rest.starts_with(b"<!--") {
                self.node(lt)?;
                skip_past(xml, lt + 4, b"-->")
            } else if rest.starts_with(b"<![CDATA[") {
                self.node(lt)?;
                skip_past(xml, lt + 9, b"]]>")
            } else if rest.starts_with(b"<?") {
                self.node(lt)?;
                skip_past(xml, lt + 2, b"?>")
            } else if rest.starts_with(b"<!DOCTYPE") {
                return Err(Exceeded::Dtd { at: lt });
            } else if rest.starts_with(b"</") {
                let end = find_byte(xml, lt + 2, b'>');
                let name_end = xml[lt + 2..end].iter().position(|&b| is_space(b)).map_or(end, |p| lt + 2 + p);
                self.name(lt + 2, name_end)?;
                self.depth = self.depth.saturating_sub(1);
                end + 1
            } else {
                self.start_tag(lt)?
            };
        }
        Ok(self.shape)
    }

    /// Scans the start tag at `lt` (`<` included) and returns the index past its `>`.
    fn start_tag(&mut self, lt: usize) -> Result<usize, Exceeded> {
        let xml = self.xml;
        self.node(lt)?;
        let mut j = lt + 1;
        while j < xml.len() && !is_space(xml[j]) && xml[j] != b'>' && xml[j] != b'/' {
            j += 1;
        }
        self.name(lt + 1, j)?;
        let mut attributes = 0;
        let mut empty = false;
        while j < xml.len() {
            let c = xml[j];
            if c == b'>' {
                empty = xml[j - 1] == b'/';
                break;
            }
            if c == b'"' || c == b'\'' {
                let close = find_byte(xml, j + 1, c);
                if close - (j + 1) > self.b.max_value_len {
                    return Err(Exceeded::ValueLength { limit: self.b.max_value_len, at: j });
                }
                // Every quoted value is one attribute: a parser cannot build more than that.
                attributes += 1;
                if attributes > self.b.max_attributes {
                    return Err(Exceeded::Attributes { limit: self.b.max_attributes, at: lt });
                }
                j = close + 1;
            } else if is_space(c) || c == b'=' || c == b'/' {
                j += 1;
            } else {
                // An attribute name (or stray characters the parser will refuse).
                let start = j;
                while j < xml.len()
                    && !matches!(xml[j], b'=' | b'>' | b'"' | b'\'' | b'/')
                    && !is_space(xml[j])
                {
                    j += 1;
                }
                self.name(start, j)?;
                let name = &xml[start..j];
                if name == b"xmlns" || name.starts_with(b"xmlns:") {
                    self.namespaces += 1;
                    if self.namespaces > self.b.max_namespaces {
                        return Err(Exceeded::Namespaces { limit: self.b.max_namespaces, at: start });
                    }
                }
            }
        }
        self.shape.attributes = self.shape.attributes.max(attributes);
        // An empty element sits one level down too, though nothing nests in it.
        let level = self.depth + 1;
        if level > self.b.max_depth {
            return Err(Exceeded::Depth { limit: self.b.max_depth, at: lt });
        }
        self.shape.depth = self.shape.depth.max(level);
        if !empty {
            self.depth = level;
        }
        Ok(j + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(xml: &str, b: &Bounds) -> &'static str {
        match check(xml.as_bytes(), b) {
            Ok(_) => "OK",
            Err(e) => e.code(),
        }
    }

    fn deep(n: usize) -> String {
        format!("{}{}", "<a>".repeat(n), "</a>".repeat(n))
    }

    #[test]
    fn each_bound_has_its_code() {
        let b = Bounds {
            max_bytes: 1000,
            max_depth: 3,
            max_attributes: 2,
            max_nodes: 10,
            max_name_len: 8,
            max_value_len: 4,
            max_namespaces: 2,
        };
        let cases: &[(&str, &str)] = &[
            ("<a><b><c/></b></a>", "OK"),
            ("<a><b><c></c></b></a>", "OK"),
            ("<a><b><c><d/></c></b></a>", "XML_TOO_DEEP"),
            ("<a><b><c><d></d></c></b></a>", "XML_TOO_DEEP"),
            ("<a x='1' y=\"2\"/>", "OK"),
            ("<a x='1' y='2' z='3'/>", "XML_TOO_MANY_ATTRIBUTES"),
            ("<a xmlns='u' b='v' c='3'/>", "XML_TOO_MANY_ATTRIBUTES"),
            ("<abcde/>", "OK"),
            ("<abcdefgh/>", "OK"),
            ("<abcdefghi/>", "XML_NAME_TOO_LONG"),
            ("<a abcdefghi='1'/>", "XML_NAME_TOO_LONG"),
            ("<a></abcdefghi>", "XML_NAME_TOO_LONG"),
            ("<a xmlns='u'><b xmlns:p='v'/></a>", "OK"),
            ("<a xmlns='u'><b xmlns:p='v'/><c xmlns:q='w'/></a>", "XML_TOO_MANY_NAMESPACES"),
            ("<a x='abcd'/>", "OK"),
            ("<a x='abcde'/>", "XML_VALUE_TOO_LONG"),
            ("<a>1<b/>2<b/>3<b/>4<b/>5</a>", "OK"),
            ("<a>1<b/>2<b/>3<b/>4<b/>5<b/>6</a>", "XML_TOO_MANY_NODES"),
            ("<!DOCTYPE a><a/>", "XML_DTD_FORBIDDEN"),
            (&"x".repeat(1001), "DOCUMENT_TOO_LARGE"),
        ];
        for (xml, want) in cases {
            assert_eq!(code(xml, &b), *want, "{xml}");
        }
    }

    #[test]
    fn markup_in_comments_cdata_pis_and_values_is_not_counted() {
        let b = Bounds { max_depth: 1, max_attributes: 1, max_namespaces: 0, ..Bounds::DEFAULT };
        let xml = "<?xml version='1.0'?><!-- <a><a><a> --><a x='<b><b> a=\"1\" b=\"2\"'><![CDATA[<c><c>]]><?pi <d><d>?></a>";
        assert_eq!(code(xml, &b), "OK");
    }

    #[test]
    fn depth_agrees_with_roxmltree_on_well_formed_documents() {
        for xml in [
            deep(1),
            deep(7),
            "<a><b/><c><d x='>'/></c></a>".to_owned(),
            "<a ><b\n/><c\t></c ></a\n>".to_owned(),
        ] {
            let doc = roxmltree::Document::parse(&xml).unwrap();
            let real = doc
                .descendants()
                .filter(|n| n.is_element())
                .map(|n| n.ancestors().filter(|a| a.is_element()).count())
                .max()
                .unwrap();
            assert_eq!(check(xml.as_bytes(), &Bounds::DEFAULT).unwrap().depth, real, "{xml}");
        }
    }

    #[test]
    fn hostile_shapes_are_refused_early() {
        assert_eq!(code(&deep(5000), &Bounds::DEFAULT), "XML_TOO_DEEP");
        let wide = format!("<a {}/>", (0..85_000).map(|i| format!("a{i}=''")).collect::<Vec<_>>().join(" "));
        assert_eq!(code(&wide, &Bounds::DEFAULT), "XML_TOO_MANY_ATTRIBUTES");
        let unclosed = "<a x='".repeat(10);
        assert_eq!(code(&unclosed, &Bounds::DEFAULT), "OK");
        assert_eq!(code("<", &Bounds::DEFAULT), "OK");
        assert_eq!(code("<a", &Bounds::DEFAULT), "OK");
        assert_eq!(code("</", &Bounds::DEFAULT), "OK");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let b = Bounds { max_depth: 3, max_attributes: 2, max_nodes: 8, max_name_len: 4, max_value_len: 4, max_namespaces: 1, ..Bounds::DEFAULT };
            let _ = check(&bytes, &b);
        }

        #[test]
        fn never_below_the_parser(xml in "(<a( b='[<>]')?>|</a>|<c/>|x|<!--<a>-->|<!\\[CDATA\\[<a>\\]\\]>){0,30}") {
            if let Ok(doc) = roxmltree::Document::parse(&xml) {
                let real = doc.descendants().filter(|n| n.is_element()).map(|n| n.ancestors().filter(|a| a.is_element()).count()).max().unwrap_or(0);
                let shape = check(xml.as_bytes(), &Bounds::DEFAULT).unwrap();
                proptest::prop_assert!(shape.depth >= real);
            }
        }
    }
}
