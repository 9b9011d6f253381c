//! Benchmark of matching and deciding (figures in BENCHMARKS.md, "Importing customs").
//!
//! - `decide_declaration/10_lines`: one 10-line declaration against its 10-item certificate
//!   (fresh ledger each time, so every line is granted and consumed): the throughput is in
//!   declarations per second.
//! - `decide_declaration_json/10_lines`: the same plus reading the declaration from JSON.
//! - `decide_line`: one line against one certificate.
//!
//! Criterion measures elapsed time on one thread, so a figure is per core.

use std::hint::black_box;

use chrono::{NaiveDate, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use originlink_customs::{
    CertificateFacts, Declaration, EcoRef, Importer, Line, Policies, decide, decide_declaration,
};
use originlink_model::{Agreement, CountryCode, Money, Quantity, sample::sample};

fn fixture() -> (Declaration, CertificateFacts) {
    let kh = CountryCode::parse("KH").unwrap();
    let th = CountryCode::parse("TH").unwrap();
    let cert = sample(Agreement::Atiga, kh, th, NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), 10, 0);
    let lines = cert
        .items
        .iter()
        .map(|item| Line {
            line_no: item.number,
            hs_code: item.hs,
            description: item.description.clone(),
            quantity: Quantity::new(item.quantity.value() / rust_decimal::Decimal::TWO, item.quantity.unit())
                .unwrap(),
            customs_value: Money::parse("100.00", "USD").unwrap(),
            origin_country: kh,
            claimed_agreement: Some(Agreement::Atiga),
            eco: EcoRef::Issued { issuing_country: kh, number: cert.number.clone().unwrap() },
            invoice_number: Some(item.invoice.number.clone()),
        })
        .collect();
    let decl = Declaration {
        number: "TH-IMP-2026-000001".into(),
        importer: Importer { name: cert.consignee.name.clone(), id: None },
        importing_country: th,
        declaration_date: NaiveDate::from_ymd_opt(2026, 3, 10).unwrap(),
        lines,
    };
    let facts = CertificateFacts::new(cert, Utc.with_ymd_and_hms(2026, 3, 5, 0, 0, 0).unwrap());
    (decl, facts)
}

fn bench(c: &mut Criterion) {
    let (decl, facts) = fixture();
    let policies = Policies::builtin();
    let json = decl.to_json_bytes();
    {
        let mut certs = vec![facts.clone()];
        let d = decide_declaration(&decl, &mut certs, &policies);
        assert!(d.iter().all(|x| x.outcome == originlink_customs::Outcome::Granted), "{d:#?}");
    }

    let mut g = c.benchmark_group("decide_declaration");
    g.throughput(Throughput::Elements(1));
    g.bench_function("10_lines", |b| {
        b.iter_batched_ref(
            || vec![facts.clone()],
            |certs| black_box(decide_declaration(black_box(&decl), certs, &policies)),
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("decide_declaration_json");
    g.throughput(Throughput::Elements(1));
    g.bench_function("10_lines", |b| {
        b.iter_batched_ref(
            || vec![facts.clone()],
            |certs| {
                let d = Declaration::from_json(black_box(&json)).unwrap();
                black_box(decide_declaration(&d, certs, &policies))
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();

    c.bench_function("decide_line", |b| {
        b.iter(|| black_box(decide(black_box(&decl.lines[3]), &decl, Some(&facts), &policies)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
