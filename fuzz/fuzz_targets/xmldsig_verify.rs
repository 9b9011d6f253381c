//! Fuzz `verify_enveloped` (and the canonicalizer under it): no input may panic, overflow
//! the stack or hang. Seeds in corpus/xmldsig_verify are signed documents and attacks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use originlink_xmldsig::{Limits, canonicalize_exclusive, verify_enveloped};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_bytes: 256 * 1024, ..Limits::default() };
    let _ = verify_enveloped(data, &limits);
    if data.len() <= limits.max_bytes {
        let _ = canonicalize_exclusive(data, data.first().is_some_and(|b| b & 1 == 1));
    }
});
