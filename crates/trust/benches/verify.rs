//! Criterion bench of the verify hot path: a signed 6 KB UBL certificate, ECDSA P-256 and
//! RSA-2048, chain cached. `originlink bench verify` gives the same figures against
//! `openssl speed`; this one is for profiling.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use originlink_model::{Agreement, CountryCode, sample};
use originlink_trust::{Cert, PrivateKey, TrustStore, Verifier, keys};

fn bench(c: &mut Criterion) {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
    let now = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
    let kh = CountryCode::parse("KH").unwrap();
    let th = CountryCode::parse("TH").unwrap();
    let doc =
        originlink_formats::xml::write(&sample::sample(Agreement::Atiga, kh, th, day, 1, 0)).into_bytes();
    let rsa = std::process::Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        .output()
        .ok()
        .and_then(|o| PrivateKey::from_pem(&String::from_utf8_lossy(&o.stdout)).ok());
    let mut cases = vec![("ecdsa-p256", keys::init_authority("KH", "MoC", day, None).unwrap())];
    if let Some(k) = rsa {
        cases.push(("rsa-2048", keys::init_authority("KH", "MoC", day, Some(k)).unwrap()));
    }
    for (name, a) in cases {
        let signed =
            originlink_trust::sign(&doc, &a.signing.key, std::slice::from_ref(&a.signing.cert_der)).unwrap();
        let v = Verifier::new(TrustStore::from_cas(vec![Cert::from_der(&a.ca.cert_der).unwrap()]).unwrap());
        assert!(v.verify_xml(&signed, now).unwrap().is_valid());
        c.bench_function(&format!("verify_xml/{name}"), |b| b.iter(|| v.verify_xml(black_box(&signed), now)));
        let facts = originlink_trust::document::xml_facts(&signed).unwrap();
        c.bench_function(&format!("policy_check_cached/{name}"), |b| {
            b.iter(|| v.check(black_box(&a.signing.cert_der), &[], &facts, "x", now))
        });
        let limits = originlink_xmldsig::Limits::default();
        c.bench_function(&format!("xmldsig_verify_enveloped/{name}"), |b| {
            b.iter(|| originlink_xmldsig::verify_enveloped(black_box(&signed), &limits))
        });
        c.bench_function(&format!("xml_facts/{name}"), |b| {
            b.iter(|| originlink_trust::document::xml_facts(black_box(&signed)))
        });
        c.bench_function(&format!("sign_xml/{name}"), |b| {
            b.iter(|| {
                originlink_trust::sign(
                    black_box(&doc),
                    &a.signing.key,
                    std::slice::from_ref(&a.signing.cert_der),
                )
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
