//! Every case of `testdata/roo/cases.json` (built from the legal texts, with expected answers)
//! run through one `check(input, expected)` helper.

use std::path::Path;

use originlink_rules::{good_from_json, qualify};
use serde_json::Value;

fn cases() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/roo/cases.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match serde_json::from_str(&text).expect("cases.json is JSON") {
        Value::Array(cases) => cases,
        _ => panic!("cases.json is a list"),
    }
}

/// Runs one request and compares every field the expectation names.
fn check(id: &str, input: &Value, expected: &Value) {
    let good = good_from_json(input).unwrap_or_else(|e| panic!("{id}: input refused: {e}"));
    let assessment = qualify(&good).unwrap_or_else(|e| panic!("{id}: {e}"));
    let out = assessment.to_json();
    let Value::Object(fields) = expected else { panic!("{id}: expected is an object") };
    assert!(!fields.is_empty(), "{id}: nothing expected");
    for (k, want) in fields {
        assert_eq!(&out[k], want, "{id}: field {k}\nexplanation:\n{}", assessment.render_text());
    }
    // The exit-code contract: a certificate code exactly when the good originates.
    assert_eq!(out["certificate_code"].is_string(), assessment.originating, "{id}");
}

#[test]
fn every_case_gives_its_expected_answer() {
    let cases = cases();
    assert_eq!(cases.len(), 22, "cases.json changed: review the new cases");
    for case in &cases {
        let id = case["id"].as_str().expect("id");
        check(id, &case["input"], &case["expected"]);
    }
}

#[test]
fn the_documented_example_gives_the_documented_output() {
    let input = serde_json::json!({
        "agreement": "ATIGA",
        "exporting_country": "TH",
        "product": { "hs": "1905.31", "description": "Sweet biscuits" },
        "rule": "RVC40 or CTH",
        "method": "build-down",
        "valuation": { "basis": "FOB", "value": "15.00", "currency": "USD" },
        "costs": { "direct_labour": "1.20", "direct_overhead": "0.80", "profit": "2.50", "other": "0" },
        "materials": [
            { "name": "wheat flour", "hs": "1101.00", "value": "4.00", "origin": "MY", "status": "originating" },
            { "name": "sugar", "hs": "1701.99", "value": "2.50", "origin": "AU", "status": "non-originating" },
            { "name": "wafer sheets", "hs": "1905.32", "value": "5.00", "origin": "MY", "status": "partial", "rvc": "30" },
            { "name": "flavouring", "hs": "2106.90", "value": "1.00", "status": "undetermined", "weight_kg": "0.2" }
        ],
        "operations": ["mixing", "baking", "packaging"]
    });
    let out = qualify(&good_from_json(&input).unwrap()).unwrap().to_json();
    assert_eq!(out["originating"], true);
    assert_eq!(out["criterion"], "RVC40");
    assert_eq!(out["certificate_code"], "40%");
    assert_eq!(out["rvc_percent"], "53.3333");
    assert_eq!(out["alternatives"][0]["rule"], "RVC40");
    assert_eq!(out["alternatives"][0]["met"], true);
    assert_eq!(out["alternatives"][0]["detail"], "RVC (15.00 - 7.00) / 15.00 = 53.33% >= 40%");
    assert_eq!(out["alternatives"][1]["rule"], "CTH");
    assert_eq!(out["alternatives"][1]["met"], false);
    let cth = out["alternatives"][1]["detail"].as_str().unwrap();
    assert!(cth.starts_with("wafer sheets 1905.32 is in the product's heading 1905"), "{cth}");
    assert_eq!(out["de_minimis"], serde_json::json!({ "used": false, "percent": "0" }));
    assert_eq!(out["warnings"], serde_json::json!([]));
    let wafer = &out["materials"][2];
    assert_eq!(wafer["name"], "wafer sheets");
    assert_eq!(wafer["counts_as"], "partial: 1.50 originating, 3.50 non-originating");
    assert_eq!(wafer["ctc"], "fails CTH");
}
