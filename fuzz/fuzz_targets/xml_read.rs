//! Fuzzes the UBL 2.4 XML reader: no input may panic it, and whatever it accepts must write
//! back to XML that reads as the same certificate.
//!
//! Run: `cargo +nightly fuzz run xml_read` (seed corpus: `fuzz/corpus/xml_read/`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use originlink_formats::{Limits, xml};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_bytes: 256 * 1024 };
    let Ok(cert) = xml::read(data, &limits) else {
        return;
    };
    for p in originlink_model::validate(&cert) {
        let _ = xml::xpath_for(&p.path);
    }
    let text = xml::write(&cert);
    let back = xml::read(text.as_bytes(), &Limits { max_bytes: usize::MAX });
    assert_eq!(back.as_ref(), Ok(&cert), "written XML must read back to the same certificate");
});
