//! `qualify` and `rules show` as a user runs them: every documented case through the binary,
//! exit codes 0/1/2, and bad input named by field.

use serde_json::{Value, json};

use crate::support::{run_text, testdata};

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(testdata("roo/cases.json")).expect("testdata/roo/cases.json");
    serde_json::from_str::<Value>(&text).expect("JSON").as_array().expect("a list").clone()
}

fn qualify(input: &Value, json_out: bool) -> (i32, String, String) {
    let args: &[&str] = if json_out { &["qualify", "-", "--json"] } else { &["qualify", "-"] };
    run_text(args, input.to_string().as_bytes())
}

fn sample() -> Value {
    json!({
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
    })
}

#[test]
fn every_case_runs_through_the_binary_with_its_exit_code() {
    for case in cases() {
        let id = case["id"].as_str().unwrap();
        let (code, out, err) = qualify(&case["input"], true);
        let want_code = if case["expected"]["originating"] == json!(true) { 0 } else { 1 };
        assert_eq!(code, want_code, "{id}: {err}");
        let out: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{id}: {e}: {out}"));
        for (k, want) in case["expected"].as_object().unwrap() {
            assert_eq!(&out[k], want, "{id}: {k}");
        }
    }
}

#[test]
fn the_plain_output_explains_the_answer() {
    let (code, out, err) = qualify(&sample(), false);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "ORIGINATING: meets RVC40. Certificate code (Form D box 8): 40%",
        "[met] RVC40: RVC (15.00 - 7.00) / 15.00 = 53.33% >= 40%",
        "[not met] CTH: wafer sheets 1905.32 is in the product's heading 1905",
        "(FOB - VNM) / FOB x 100",
        "= (15.00 - 7.00) / 15.00 x 100 = 53.3333%",
        "De minimis: not used",
        "wafer sheets (1905.32, 5.00): partial: 1.50 originating, 3.50 non-originating; tariff change: fails CTH",
        "flavouring (2106.90, 1.00): undetermined: counted as non-originating; tariff change: meets CTH",
        "wheat flour (1101.00, 4.00): originating; tariff change: not tested (originating)",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[test]
fn a_file_argument_works_like_stdin() {
    let dir = crate::support::tempdir("qualify-file");
    let path = dir.join("good.json");
    std::fs::write(&path, sample().to_string()).unwrap();
    let (code, out, _) = run_text(&["qualify", path.to_str().unwrap(), "--json"], b"");
    assert_eq!(code, 0);
    let out: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["rvc_percent"], "53.3333");
    let (code, _, err) = run_text(&["qualify", dir.join("missing.json").to_str().unwrap()], b"");
    assert_eq!(code, 2, "{err}");
}

/// A change to a valid request that makes it invalid.
type Edit = fn(&mut Value);

#[test]
fn bad_input_exits_2_naming_the_field() {
    let cases: [(Edit, &str); 7] = [
        (|v| v["agreement"] = json!("NAFTA"), "AGREEMENT_UNKNOWN agreement"),
        (|v| v["product"]["hs"] = json!("9999.99"), "HS_UNKNOWN product.hs"),
        (|v| v["materials"][1]["hs"] = json!("0101.99"), "HS_UNKNOWN materials[1].hs"),
        (|v| v["materials"][1]["value"] = json!("-2.50"), "VALUE_NEGATIVE materials[1].value"),
        (|v| v["valuation"]["value"] = json!("0"), "VALUE_ZERO valuation.value"),
        (|v| v["rule"] = json!("RVC40 or CTX"), "RULE_SYNTAX rule: column 10"),
        (
            |v| {
                v["materials"][2].as_object_mut().unwrap().remove("rvc");
            },
            "RVC_REQUIRED materials[2].rvc",
        ),
    ];
    for (edit, message) in cases {
        let mut v = sample();
        edit(&mut v);
        let (code, out, err) = qualify(&v, true);
        assert_eq!(code, 2, "{message}: {out}{err}");
        assert!(err.contains(message), "{message:?} not in {err:?}");
        assert!(out.is_empty(), "{out}");
    }
    let (code, _, err) = run_text(&["qualify", "-"], b"{ not json");
    assert_eq!(code, 2);
    assert!(err.contains("JSON_MALFORMED"), "{err}");
}

#[test]
fn materials_above_fob_are_a_warning_in_the_output() {
    let mut v = sample();
    v["materials"][0]["value"] = json!("9.00");
    let (code, out, _) = qualify(&v, true);
    assert_eq!(code, 0);
    let out: Value = serde_json::from_str(&out).unwrap();
    let w = out["warnings"].as_array().unwrap();
    assert!(
        w.iter().any(|w| w.as_str().unwrap().contains("17.50 is more than the FOB value 15.00")),
        "{w:?}"
    );
}

#[test]
fn rules_show_prints_the_rule_and_its_source() {
    let (code, out, err) = run_text(&["rules", "show", "--agreement", "RCEP", "--hs", "8517.12"], b"");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rule:      CTSH or RVC40"), "{out}");
    assert!(out.contains("source:    RCEP Annex 3A (PSR), subheading 8517.12"), "{out}");

    let (code, out, _) = run_text(&["rules", "show", "--agreement", "ATIGA", "--hs", "1905.31"], b"");
    assert_eq!(code, 0);
    assert!(out.contains("rule:      RVC40 or CTH") && out.contains("Art. 28(1)"), "{out}");

    let (code, out, _) = run_text(&["rules", "show", "--agreement", "RCEP", "--hs", "9403.60"], b"");
    assert_eq!(code, 1, "{out}");

    let (code, _, err) = run_text(&["rules", "show", "--agreement", "NAFTA", "--hs", "8517.12"], b"");
    assert_eq!(code, 2);
    assert!(err.contains("--agreement"), "{err}");
    let (code, _, err) = run_text(&["rules", "show", "--agreement", "RCEP", "--hs", "85x"], b"");
    assert_eq!(code, 2);
    assert!(err.contains("--hs"), "{err}");
}
