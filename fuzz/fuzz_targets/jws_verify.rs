//! Fuzzes JSON signature verification: the JWS parser, the signed-JSON splitter, the trust
//! list reader, the certificate status list reader (and a typed check code), and the whole
//! JSON verify path. None may panic, whatever the bytes.
//!
//! Run: `cargo +nightly fuzz run jws_verify`.

#![no_main]

use std::sync::OnceLock;

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use originlink_trust::jws::DetachedJws;
use originlink_trust::{Cert, TrustList, TrustStore, Verifier, keys};

struct Fixture {
    verifier: Verifier,
    operator: Cert,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
        let a = keys::init_authority("KH", "MoC", day, None).expect("keys");
        let op = keys::init_operator("op", day).expect("operator");
        Fixture {
            verifier: Verifier::new(
                TrustStore::from_cas(vec![Cert::from_der(&a.ca.cert_der).expect("ca")]).expect("store"),
            ),
            operator: Cert::from_der(&op.cert_der).expect("op"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let now = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = DetachedJws::parse(s);
        let _ = originlink_trust::statuslist::normalize_check_code(s);
    }
    let _ = originlink_trust::statuslist::StatusList::verified(data, &f.verifier, now);
    let _ = originlink_trust::jcs::canonicalize(data);
    let _ = TrustList::from_signed(data, std::slice::from_ref(&f.operator));
    let _ = f.verifier.verify_json(data, now);
});
