//! Fuzzes what a node or the gateway reads from a peer before anything else: the batch body
//! (version 1, and version 2 with its manifests) and each envelope in it, read as a receiver
//! and as a router. No input may panic a reader; an envelope that parses must keep its bytes
//! exactly (its signature is over them), and so must a manifest.
//!
//! Run: `cargo +nightly fuzz run exchange_body` (seed corpus: `fuzz/corpus/exchange_body/`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use originlink_exchange::body::BatchV2;
use originlink_exchange::{Batch, Envelope, Manifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data) {
        assert_eq!(m.raw, data, "a manifest keeps its bytes");
    }
    if let Ok(b) = BatchV2::parse(data) {
        for raw in &b.messages {
            let _ = Envelope::parse_routed(raw.get().as_bytes());
        }
    }
    let Ok(batch) = Batch::parse(data) else {
        if let Ok(e) = Envelope::parse(data) {
            assert_eq!(e.raw, data, "an envelope keeps its bytes");
        }
        let _ = Envelope::parse_routed(data);
        return;
    };
    for raw in &batch.messages {
        let _ = Envelope::parse(raw.get().as_bytes());
    }
});
