//! Fuzzes the XML bounds pass (`originlink_xmlbounds::check`) against roxmltree: no input may
//! panic it, and whatever it lets through must not be deeper or wider than it said (so the
//! parser behind it never meets more than the bounds allow).
//!
//! Run: `cargo +nightly fuzz run xml_bounds` (seed corpus: `fuzz/corpus/xml_bounds/`, with
//! deep and wide documents).

#![no_main]

use libfuzzer_sys::fuzz_target;
use originlink_xmlbounds::{Bounds, check};

const BOUNDS: Bounds = Bounds {
    max_bytes: 1 << 20,
    max_depth: 64,
    max_attributes: 16,
    max_nodes: 20_000,
    max_name_len: 64,
    max_value_len: 4096,
    max_namespaces: 16,
};

fuzz_target!(|data: &[u8]| {
    let Ok(shape) = check(data, &BOUNDS) else {
        return;
    };
    assert!(shape.depth <= BOUNDS.max_depth && shape.attributes <= BOUNDS.max_attributes);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let opts = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: BOUNDS.max_nodes as u32 };
    let Ok(doc) = roxmltree::Document::parse_with_options(text, opts) else {
        return;
    };
    // Depth without recursion: the parser's tree is flat in memory.
    let mut deepest = 0;
    for n in doc.descendants().filter(|n| n.is_element()) {
        let depth = n.ancestors().filter(|a| a.is_element()).count();
        deepest = deepest.max(depth);
        assert!(n.attributes().len() <= shape.attributes, "more attributes than the bounds pass saw");
    }
    assert!(deepest <= shape.depth, "parser depth {deepest} > bounds pass depth {}", shape.depth);
});
