//! Parse + validate a realistic 5-item certificate (`cargo bench -p originlink-formats`).
//! Throughput is one document per iteration, so criterion's `elem/s` is documents per second
//! on one core.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use originlink_formats::{Limits, json, xml};
use originlink_model::{Agreement, Certificate, CountryCode, NaiveDate, sample, validate};

/// The benchmark certificate: ATIGA, Cambodia to Thailand, 5 items, issued.
fn certificate() -> Certificate {
    let cc = |s| CountryCode::parse(s).expect("country");
    let day = NaiveDate::from_ymd_opt(2026, 3, 2).expect("date");
    sample::sample(Agreement::Atiga, cc("KH"), cc("TH"), day, 5, 0)
}

fn xml_benches(c: &mut Criterion) {
    let cert = certificate();
    let doc = xml::write(&cert);
    let limits = Limits::default();
    assert!(validate(&xml::read(doc.as_bytes(), &limits).expect("reads")).is_empty());
    let mut g = c.benchmark_group(format!("xml 5 items ({} bytes)", doc.len()));
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse+validate", |b| {
        b.iter(|| {
            let cert = xml::read(black_box(doc.as_bytes()), &limits).expect("reads");
            black_box(validate(&cert))
        })
    });
    g.bench_function("parse", |b| b.iter(|| xml::read(black_box(doc.as_bytes()), &limits)));
    g.bench_function("write", |b| b.iter(|| xml::write(black_box(&cert))));
    g.finish();
}

fn json_benches(c: &mut Criterion) {
    let cert = certificate();
    let doc = json::write(&cert);
    let limits = Limits::default();
    assert!(validate(&json::read(doc.as_bytes(), &limits).expect("reads")).is_empty());
    let mut g = c.benchmark_group(format!("json 5 items ({} bytes)", doc.len()));
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse+validate", |b| {
        b.iter(|| {
            let cert = json::read(black_box(doc.as_bytes()), &limits).expect("reads");
            black_box(validate(&cert))
        })
    });
    g.bench_function("parse", |b| b.iter(|| json::read(black_box(doc.as_bytes()), &limits)));
    g.bench_function("write", |b| b.iter(|| json::write(black_box(&cert))));
    g.finish();
}

criterion_group!(benches, xml_benches, json_benches);
criterion_main!(benches);
