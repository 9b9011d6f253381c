//! Fuzzes the fast UBL fact scanner against the DOM: on any well-formed, DTD-free XML (what
//! `verify_enveloped` lets through), whenever the scanner returns facts they must equal what
//! the DOM path reads. Neither may panic.
//!
//! Run: `cargo +nightly fuzz run ubl_facts` (seeds: `fuzz/corpus/ubl_facts/`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use originlink_trust::document::{xml_facts, xml_facts_fast};

fuzz_target!(|data: &[u8]| {
    let fast = xml_facts_fast(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let opts = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 100_000 };
    if roxmltree::Document::parse_with_options(text, opts).is_err() {
        return;
    }
    if let Some(f) = fast {
        assert_eq!(xml_facts(data).ok(), Some(f), "fast scan and DOM disagree");
    }
});
