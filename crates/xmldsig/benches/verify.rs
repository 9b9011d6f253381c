//! Verifications and signatures per second of a signed ~6 KB UBL certificate of origin,
//! ECDSA P-256 and RSA-2048. Keys are made with the `openssl` CLI (cached under target/).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use originlink_xmldsig::{
    Error, Limits, Placement, Verified, sign_enveloped, verify_enveloped, verify_enveloped_with,
};

#[path = "../tests/it/common.rs"]
#[allow(dead_code)]
mod common;

/// `common::verify` checks both verification paths in the tests; here it is plain.
#[allow(dead_code)]
mod stream_diff {
    pub fn verify_both(xml: &[u8], limits: &super::Limits) -> Result<super::Verified, super::Error> {
        super::verify_enveloped(xml, limits)
    }
}

fn bench(c: &mut Criterion) {
    let day = originlink_model::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
    let kh = originlink_model::CountryCode::parse("KH").unwrap();
    let th = originlink_model::CountryCode::parse("TH").unwrap();
    let ubl = originlink_formats::xml::write(&originlink_model::sample::sample(
        originlink_model::Agreement::Atiga,
        kh,
        th,
        day,
        1,
        0,
    ))
    .into_bytes();
    let six_kb = common::six_kb_certificate();
    for (name, key, doc) in [
        ("ecdsa_p256", common::ec_key(), &six_kb),
        ("rsa_2048", common::rsa_key(), &six_kb),
        ("ubl_ecdsa_p256", common::ec_key(), &ubl),
    ] {
        let doc = doc.clone();

        let signing_key = key.signing_key();
        let chain = vec![key.cert_der.clone()];
        let signed = sign_enveloped(&doc, &signing_key, &chain, Placement::UblExtension).unwrap();
        eprintln!("{name}: signed document is {} bytes", signed.len());
        let limits = Limits::default();
        verify_enveloped(&signed, &limits).unwrap();

        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(1));
        group.sample_size(30);
        group.measurement_time(std::time::Duration::from_secs(5));
        group.bench_function("verify", |b| b.iter(|| verify_enveloped(&signed, &limits).unwrap()));
        group.bench_function("verify_dom", |b| {
            b.iter(|| verify_enveloped_with(&signed, &limits, None, |_| ()).unwrap())
        });
        // The streaming pass alone: tokenizing, both canonical forms, no digest, no signature.
        group.bench_function("stream_c14n_only", |b| {
            b.iter(|| originlink_xmldsig::testing::fast_canonical(&signed).unwrap())
        });
        // What the trust crate's `verify_xml` runs (key cached, two facts captured), and the
        // bare signature verify inside it: their difference is the XML work.
        let cache = originlink_xmldsig::KeyCache::new();
        const CBC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";
        const CAC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";
        let paths: [originlink_xmldsig::CapturePath<'static>; 2] = [
            &[(CAC, "CertificateOfOriginApplication"), (CAC, "IssuingCountry"), (CBC, "IdentificationCode")],
            &[(CBC, "IssueDate")],
        ];
        group.bench_function("fast_cached", |b| {
            b.iter(|| {
                let r = originlink_xmldsig::verify_enveloped_fast(&signed, &limits, Some(&cache), &paths);
                assert!(matches!(r, originlink_xmldsig::FastVerify::Verified(..)));
            })
        });
        let (_, si) = originlink_xmldsig::testing::fast_canonical(&signed).unwrap();
        let si = si.unwrap();
        let text = String::from_utf8_lossy(&signed).into_owned();
        let sv = text.split("SignatureValue").nth(1).unwrap();
        let sv = &sv[sv.find('>').unwrap() + 1..sv.find('<').unwrap()];
        let sv: String = sv.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        use base64::Engine as _;
        let sig = base64::engine::general_purpose::STANDARD.decode(&sv).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&key.cert_der).unwrap();
        let pk = cert.public_key().subject_public_key.data.to_vec();
        let alg: &'static dyn ring::signature::VerificationAlgorithm = if name.starts_with("ecdsa") {
            &ring::signature::ECDSA_P256_SHA256_FIXED
        } else {
            &ring::signature::RSA_PKCS1_2048_8192_SHA256
        };
        // (The bare verify does not depend on the document: measured once.)
        if name != "ubl_ecdsa_p256" {
            group.bench_function("ring_raw", |b| {
                b.iter(|| ring::signature::UnparsedPublicKey::new(alg, &pk).verify(&si, &sig).unwrap())
            });
        }
        group.bench_function("sign", |b| {
            b.iter(|| sign_enveloped(&doc, &signing_key, &chain, Placement::UblExtension).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
