//! Fuzzes the edi3 JSON reader: no input may panic it, and whatever it accepts must write
//! back to JSON that reads as the same certificate.
//!
//! Run: `cargo +nightly fuzz run json_read` (seed corpus: `fuzz/corpus/json_read/`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use originlink_formats::{Limits, json};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_bytes: 256 * 1024 };
    let Ok(cert) = json::read(data, &limits) else {
        return;
    };
    for p in originlink_model::validate(&cert) {
        let _ = json::pointer_for(&p.path);
    }
    let text = json::write(&cert);
    let back = json::read(text.as_bytes(), &Limits { max_bytes: usize::MAX });
    assert_eq!(back.as_ref(), Ok(&cert), "written JSON must read back to the same certificate");
});
