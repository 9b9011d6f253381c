//! Requests that cannot be assessed are refused with a stable code and the field named; odd
//! but assessable requests give warnings.

use originlink_rules::{RuleOrigin, good_from_json, parse_request, qualify};
use serde_json::{Value, json};

fn base() -> Value {
    json!({
        "agreement": "ATIGA",
        "exporting_country": "TH",
        "product": { "hs": "9403.60", "description": "Wooden furniture" },
        "rule": "RVC40 or CTH",
        "valuation": { "basis": "FOB", "value": "100.00", "currency": "USD" },
        "materials": [
            { "name": "sawn oak", "hs": "4407.91", "value": "50.00", "origin": "US", "status": "non-originating" }
        ]
    })
}

/// Applies `edit` to the base request and checks the refusal.
fn check_refused(edit: impl FnOnce(&mut Value), code: &str, field: &str) {
    let mut v = base();
    edit(&mut v);
    match good_from_json(&v) {
        Ok(_) => panic!("{code} {field}: accepted"),
        Err(e) => assert_eq!((e.code, e.field.as_str()), (code, field), "{e}"),
    }
}

#[test]
fn the_base_request_is_accepted() {
    let a = qualify(&good_from_json(&base()).unwrap()).unwrap();
    assert!(a.originating);
}

#[test]
fn bad_fields_are_named() {
    check_refused(|v| v["agreement"] = json!("NAFTA"), "AGREEMENT_UNKNOWN", "agreement");
    check_refused(|v| v["product"]["hs"] = json!("9999.99"), "HS_UNKNOWN", "product.hs");
    check_refused(|v| v["product"]["hs"] = json!("94"), "HS_MALFORMED", "product.hs");
    check_refused(|v| v["materials"][0]["hs"] = json!("0101.99"), "HS_UNKNOWN", "materials[0].hs");
    check_refused(|v| v["materials"][0]["value"] = json!("-1.00"), "VALUE_NEGATIVE", "materials[0].value");
    check_refused(|v| v["valuation"]["value"] = json!("-100"), "VALUE_NEGATIVE", "valuation.value");
    check_refused(|v| v["valuation"]["value"] = json!("0.00"), "VALUE_ZERO", "valuation.value");
    check_refused(|v| v["valuation"]["value"] = json!(100), "FIELD_TYPE", "valuation.value");
    check_refused(|v| v["valuation"]["value"] = json!("1e3"), "DECIMAL_MALFORMED", "valuation.value");
    check_refused(
        |v| v["valuation"]["value"] = json!("1000000000000.01"),
        "VALUE_TOO_LARGE",
        "valuation.value",
    );
    check_refused(|v| v["valuation"]["value"] = json!("1.1234567"), "VALUE_PRECISION", "valuation.value");
    check_refused(|v| v["valuation"]["basis"] = json!("CIF"), "BASIS_UNKNOWN", "valuation.basis");
    check_refused(|v| v["valuation"]["currency"] = json!("usd"), "CURRENCY_INVALID", "valuation.currency");
    check_refused(|v| v["costs"] = json!({ "profit": "-0.01" }), "VALUE_NEGATIVE", "costs.profit");
    check_refused(|v| v["rule"] = json!("RVC40 or CTX"), "RULE_SYNTAX", "rule");
    check_refused(|v| v["method"] = json!("sideways"), "METHOD_UNKNOWN", "method");
    check_refused(|v| v["exporting_country"] = json!("CN"), "EXPORTER_NOT_MEMBER", "exporting_country");
    check_refused(|v| v["exporting_country"] = json!("XX"), "COUNTRY_INVALID", "exporting_country");
    check_refused(|v| v["materials"][0]["status"] = json!("partial"), "RVC_REQUIRED", "materials[0].rvc");
    check_refused(|v| v["materials"][0]["rvc"] = json!("30"), "FIELD_NOT_ALLOWED", "materials[0].rvc");
    check_refused(
        |v| {
            v["materials"][0]["status"] = json!("partial");
            v["materials"][0]["rvc"] = json!("130");
        },
        "PERCENT_RANGE",
        "materials[0].rvc",
    );
    check_refused(|v| v["materials"][0]["status"] = json!("local"), "STATUS_UNKNOWN", "materials[0].status");
    check_refused(|v| v["materials"][0]["origin"] = json!("ZZ"), "COUNTRY_INVALID", "materials[0].origin");
    check_refused(|v| v["materials"][0]["weight"] = json!("1"), "FIELD_UNKNOWN", "materials[0].weight");
    check_refused(
        |v| {
            v["materials"][0].as_object_mut().unwrap().remove("name");
        },
        "FIELD_MISSING",
        "materials[0].name",
    );
    check_refused(
        |v| {
            v.as_object_mut().unwrap().remove("materials");
        },
        "FIELD_MISSING",
        "materials",
    );
    check_refused(|v| v["materials"] = json!({}), "FIELD_TYPE", "materials");
    check_refused(|v| v["operations"] = json!(["packaging", 3]), "FIELD_TYPE", "operations[1]");
    check_refused(|v| v["wholly_obtained"] = json!("yes"), "FIELD_TYPE", "wholly_obtained");
    check_refused(|v| v["de_minimis_percent"] = json!("10"), "FIELD_NOT_ALLOWED", "de_minimis_percent");
    check_refused(|v| v["product"]["weight_kg"] = json!("0"), "VALUE_ZERO", "product.weight_kg");
    check_refused(
        |v| {
            v["agreement"] = json!("GENERIC");
            v.as_object_mut().unwrap().remove("rule");
        },
        "RULE_REQUIRED",
        "rule",
    );
    check_refused(
        |v| {
            v["agreement"] = json!("RCEP");
            v.as_object_mut().unwrap().remove("rule");
        },
        "RULE_NOT_FOUND",
        "rule",
    );
}

#[test]
fn a_rule_syntax_error_gives_its_column() {
    let mut v = base();
    v["rule"] = json!("CTH except heading 2403");
    let e = good_from_json(&v).unwrap_err();
    assert_eq!(e.to_string(), "RULE_SYNTAX rule: column 12: expected `from` after `except`, found `heading`");
}

#[test]
fn not_json_is_refused() {
    let e = parse_request(b"{ \"agreement\": ").unwrap_err();
    assert_eq!(e.code, "JSON_MALFORMED");
    assert_eq!(parse_request(b"[]").unwrap_err().code, "FIELD_TYPE");
}

#[test]
fn the_rule_is_looked_up_when_not_given() {
    let mut v = base();
    v.as_object_mut().unwrap().remove("rule");
    let g = good_from_json(&v).unwrap();
    assert!(matches!(&g.rule.origin, RuleOrigin::General { source } if source.contains("Art. 28")));
    assert_eq!(g.rule.rule.to_string(), "RVC40 or CTH");

    v["agreement"] = json!("RCEP");
    v["exporting_country"] = json!("JP");
    v["product"]["hs"] = json!("8518.90");
    let g = good_from_json(&v).unwrap();
    assert!(matches!(&g.rule.origin, RuleOrigin::Psr { range, .. } if range == "8518.90"));
    assert_eq!(g.rule.rule.to_string(), "CTH or RVC40");
    let a = qualify(&g).unwrap();
    assert!(a.warnings.iter().any(|w| w.contains("HS 2012")), "{:?}", a.warnings);
}

#[test]
fn materials_above_the_fob_value_give_a_warning() {
    let mut v = base();
    v["materials"][0]["value"] = json!("60.00");
    v["materials"].as_array_mut().unwrap().push(json!(
        { "name": "fittings", "hs": "8302.42", "value": "45.00", "status": "originating" }
    ));
    let out = qualify(&good_from_json(&v).unwrap()).unwrap().to_json();
    let warnings = out["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].as_str().unwrap().contains("105.00 is more than the FOB value 100.00"),
        "{warnings:?}"
    );
    // Within FOB: no warning.
    let out = qualify(&good_from_json(&base()).unwrap()).unwrap().to_json();
    assert_eq!(out["warnings"], json!([]));
}

#[test]
fn a_rule_that_differs_from_the_table_is_flagged() {
    let mut v = base();
    v["agreement"] = json!("RCEP");
    v["exporting_country"] = json!("JP");
    v["product"]["hs"] = json!("8518.90");
    v["rule"] = json!("CC");
    let a = qualify(&good_from_json(&v).unwrap()).unwrap();
    assert!(a.warnings.iter().any(|w| w.contains("gives `CTH or RVC40`")), "{:?}", a.warnings);
}

#[test]
fn an_rvc_rule_without_values_fails_naming_the_material() {
    let mut v = base();
    v["materials"][0].as_object_mut().unwrap().remove("value");
    v["rule"] = json!("RVC40");
    let a = qualify(&good_from_json(&v).unwrap()).unwrap();
    assert!(!a.originating);
    assert_eq!(a.alternatives[0].detail, "RVC cannot be computed: value of sawn oak not given");
    assert_eq!(a.rvc_percent(), None);
}

#[test]
fn the_largest_request_allowed_is_computed_without_overflow() {
    let mut v = base();
    v["valuation"]["value"] = json!("0.000001");
    v["costs"] = json!({ "direct_labour": "1000000000000", "profit": "999999999999.999999" });
    v["product"]["weight_kg"] = json!("0.000001");
    let m = json!({
        "name": "m", "hs": "9403.91", "value": "999999999999.999999", "status": "partial",
        "rvc": "33.333333", "weight_kg": "999999999999.999999"
    });
    v["materials"] = Value::Array(vec![m; originlink_rules::input::MAX_MATERIALS]);
    for method in ["build-down", "build-up"] {
        v["method"] = json!(method);
        let a = qualify(&good_from_json(&v).unwrap()).unwrap();
        assert!(!a.originating || method == "build-up", "{method}");
        let _ = a.to_json_string();
    }
    v["materials"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "one more", "hs": "9403.91", "status": "originating" }));
    assert_eq!(good_from_json(&v).unwrap_err().code, "MATERIALS_TOO_MANY");
}
