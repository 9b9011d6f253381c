//! Benchmarks of the rules engine (figures in BENCHMARKS.md, "Rules engine").
//!
//! - `material_rule_evaluations/*`: one rule evaluated against a 200-material bill; the
//!   throughput is in material-rule evaluations (one material against one rule) per second.
//! - `qualify_200/*`: the whole assessment of a 200-material bill, without and with the JSON
//!   request parsing and the pretty JSON answer (what `originlink qualify --json` does
//!   in-process).
//!
//! Criterion measures elapsed time on one thread, so a figure is per core; on the shared
//! machine it is an upper bound of the cost (other builds take cores too).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use originlink_rules::{OriginSettings, parse_request, parse_rule, qualify, rule_is_met};
use serde_json::json;

const MATERIALS: usize = 200;

/// HS 2022 codes from several chapters; 8415.90 shares the product's heading.
const CODES: &[&str] = &[
    "8415.90", "8501.40", "8302.42", "7318.15", "3926.90", "8544.42", "7411.10", "8414.30", "4016.93",
    "8536.50",
];

/// A split air conditioner (8415.10, FOB 100 000.00) with 200 materials: 40 % originating,
/// 40 % non-originating, 20 % of undetermined origin; materials total about 80 000.00.
fn request(rule: &str) -> serde_json::Value {
    let statuses = ["originating", "non-originating", "non-originating", "undetermined", "originating"];
    let materials: Vec<_> = (0..MATERIALS)
        .map(|i| {
            json!({
                "name": format!("part {i}"),
                "hs": CODES[i % CODES.len()],
                "value": format!("{}.{:02}", 390 + i % 20, i % 100),
                "origin": if i % 5 == 0 { "MY" } else { "CN" },
                "status": statuses[i % statuses.len()],
                "weight_kg": "0.25",
            })
        })
        .collect();
    json!({
        "agreement": "ATIGA",
        "exporting_country": "TH",
        "product": { "hs": "8415.10", "description": "Split-system air conditioner" },
        "rule": rule,
        "method": "build-down",
        "valuation": { "basis": "FOB", "value": "100000.00", "currency": "USD" },
        "costs": { "direct_labour": "8000.00", "direct_overhead": "4000.00", "profit": "6000.00", "other": "2000.00" },
        "materials": materials,
        "operations": ["assembly", "testing", "packaging"],
    })
}

fn material_rule_evaluations(c: &mut Criterion) {
    let mut group = c.benchmark_group("material_rule_evaluations");
    group.throughput(Throughput::Elements(MATERIALS as u64));
    for rule in ["CTH", "RVC40", "RVC40 or CTH except from heading 2403", "CTSH + 35%"] {
        let good = parse_request(request(rule).to_string().as_bytes()).expect("valid request");
        let parsed = parse_rule(rule).expect("valid rule");
        let settings = OriginSettings::builtin(good.regime);
        group.bench_function(rule, |b| {
            b.iter(|| rule_is_met(black_box(&parsed), black_box(&good), &settings))
        });
    }
    group.finish();
}

fn qualify_200(c: &mut Criterion) {
    let mut group = c.benchmark_group("qualify_200");
    let rule = "RVC40 or CTH except from heading 2403";
    let text = request(rule).to_string();
    let good = parse_request(text.as_bytes()).expect("valid request");
    group.bench_function("assessment", |b| b.iter(|| qualify(black_box(&good)).expect("in bounds")));
    group.bench_function("json_in_json_out", |b| {
        b.iter(|| {
            let good = parse_request(black_box(text.as_bytes())).expect("valid request");
            let a = qualify(&good).expect("in bounds");
            a.to_json_string()
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    material_rule_evaluations(c);
    qualify_200(c);
}

criterion_group! {
    name = all;
    config = Criterion::default().sample_size(50).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(all);
