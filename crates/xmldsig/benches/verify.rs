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
    let doc = common::six_kb_certificate();
    for (name, key) in [("ecdsa_p256", common::ec_key()), ("rsa_2048", common::rsa_key())] {
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
        group.bench_function("sign", |b| {
            b.iter(|| sign_enveloped(&doc, &signing_key, &chain, Placement::UblExtension).unwrap())
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
