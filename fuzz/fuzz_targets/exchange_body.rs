//! Fuzzes what a node or the gateway reads from a peer before anything else: the batch body
//! and each envelope in it. No input may panic either reader; an envelope that parses must
//! keep its bytes exactly (its signature is over them).
//!
//! Run: `cargo +nightly fuzz run exchange_body` (seed corpus: `fuzz/corpus/exchange_body/`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use originlink_exchange::{Batch, Envelope};

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = Batch::parse(data) else {
        let _ = Envelope::parse(data);
        return;
    };
    for raw in &batch.messages {
        let _ = Envelope::parse(raw.get().as_bytes());
    }
});
