//! The declaration reader: a round trip, one malformed field at a time (code and path),
//! limits, and no panics on arbitrary bytes.

use originlink_customs::declaration::{MAX_BYTES, MAX_LINES};
use originlink_customs::{Declaration, EcoRef};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::decl;

fn valid() -> Value {
    decl().to_json()
}

fn read(v: &Value) -> Result<Declaration, Vec<(String, String)>> {
    Declaration::from_json(v.to_string().as_bytes())
        .map_err(|ps| ps.into_iter().map(|p| (p.code, p.path)).collect())
}

/// Sets the value at a JSON pointer (the parent must exist); `None` removes it.
fn with(pointer: &str, value: Option<Value>) -> Value {
    let mut v = valid();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let p = v.pointer_mut(parent).unwrap();
    match (p, value) {
        (Value::Object(o), Some(x)) => {
            o.insert(key.to_owned(), x);
        }
        (Value::Object(o), None) => {
            o.remove(key);
        }
        (Value::Array(a), Some(x)) => a[key.parse::<usize>().unwrap()] = x,
        _ => unreachable!(),
    }
    v
}

#[test]
fn round_trip() {
    let d = decl();
    let back = Declaration::from_json(&d.to_json_bytes()).unwrap();
    assert_eq!(back, d);
    let v = valid();
    assert_eq!(v["lines"][0]["hs_code"], "1006.30");
    assert_eq!(v["lines"][0]["customs_value"], json!({"amount": "98.00", "currency": "USD"}));
    assert_eq!(v["lines"][0]["eco"]["issuing_country"], "KH");
    // PENDING and MFN lines, optional fields left out.
    let mut v = valid();
    v["lines"][0]["eco"] = json!("PENDING");
    v["lines"][0]["claimed_agreement"] = Value::Null;
    v["lines"][0].as_object_mut().unwrap().remove("invoice_number");
    v["importer"].as_object_mut().unwrap().remove("id");
    let d = read(&v).unwrap();
    assert_eq!(d.lines[0].eco, EcoRef::Pending);
    assert_eq!(d.lines[0].claimed_agreement, None);
    assert_eq!(d.importer.id, None);
    assert_eq!(Declaration::from_json(&d.to_json_bytes()).unwrap(), d);
    // National HS digits are kept.
    let v = with("/lines/0/hs_code", Some(json!("1006.30.9990")));
    assert_eq!(read(&v).unwrap().lines[0].hs_code.digits(), "1006309990");
}

#[test]
fn each_malformed_field_has_its_code_and_path() {
    let long = "x".repeat(513);
    let cases: Vec<(&str, Option<Value>, &str)> = vec![
        ("/number", Some(json!("no spaces allowed")), "DECLARATION_NUMBER_INVALID"),
        ("/number", Some(json!("A".repeat(36))), "TEXT_TOO_LONG"),
        ("/number", None, "FIELD_REQUIRED"),
        ("/number", Some(json!(12)), "TYPE_MISMATCH"),
        ("/importer/name", Some(json!("  ")), "TEXT_EMPTY"),
        ("/importer/name", Some(json!(long)), "TEXT_TOO_LONG"),
        ("/importer/name", Some(json!("a\u{0}b")), "TEXT_CONTROL_CHARACTER"),
        ("/importer/id", Some(json!(["x"])), "TYPE_MISMATCH"),
        ("/importer/nickname", Some(json!("x")), "FIELD_UNKNOWN"),
        ("/importing_country", Some(json!("XX")), "COUNTRY_INVALID"),
        ("/declaration_date", Some(json!("2026-02-30")), "DATE_INVALID"),
        ("/declaration_date", Some(json!("2026-3-1")), "DATE_INVALID"),
        ("/lines", Some(json!([])), "LINES_EMPTY"),
        ("/lines", Some(json!({})), "TYPE_MISMATCH"),
        ("/extra", Some(json!(1)), "FIELD_UNKNOWN"),
        ("/lines/0", Some(json!("line")), "TYPE_MISMATCH"),
        ("/lines/0/line_no", Some(json!(0)), "LINE_NO_INVALID"),
        ("/lines/0/line_no", Some(json!(1.5)), "LINE_NO_INVALID"),
        ("/lines/0/hs_code", Some(json!("9999.99")), "HS_UNKNOWN"),
        ("/lines/0/hs_code", Some(json!("10063")), "HS_MALFORMED"),
        ("/lines/0/description", None, "FIELD_REQUIRED"),
        ("/lines/0/quantity", Some(json!("0")), "QUANTITY_NOT_POSITIVE"),
        ("/lines/0/quantity", Some(json!("1e3")), "DECIMAL_MALFORMED"),
        ("/lines/0/quantity", Some(json!(100)), "TYPE_MISMATCH"),
        ("/lines/0/quantity", Some(json!("1.0000001")), "QUANTITY_PRECISION"),
        ("/lines/0/unit", Some(json!("KG")), "UNIT_UNKNOWN"),
        ("/lines/0/customs_value/amount", Some(json!("-1.00")), "AMOUNT_NEGATIVE"),
        ("/lines/0/customs_value/amount", Some(json!("1.001")), "AMOUNT_PRECISION"),
        ("/lines/0/customs_value/currency", Some(json!("usd")), "CURRENCY_INVALID"),
        ("/lines/0/customs_value", Some(json!("98.00 USD")), "TYPE_MISMATCH"),
        ("/lines/0/origin_country", Some(json!("KHM")), "COUNTRY_INVALID"),
        ("/lines/0/claimed_agreement", Some(json!("NAFTA")), "AGREEMENT_UNKNOWN"),
        ("/lines/0/eco", Some(json!("pending")), "ECO_INVALID"),
        ("/lines/0/eco/number", Some(json!("#1")), "CERT_NUMBER_INVALID"),
        ("/lines/0/eco/issuing_country", None, "FIELD_REQUIRED"),
        ("/lines/0/invoice_number", Some(json!("I".repeat(36))), "TEXT_TOO_LONG"),
    ];
    for (pointer, value, code) in cases {
        let v = with(pointer, value.clone());
        let got = read(&v).unwrap_err();
        let want_path = if pointer == "/lines" && value == Some(json!({})) { "/lines" } else { pointer };
        assert_eq!(got, [(code.to_owned(), want_path.to_owned())], "{pointer} = {value:?}");
    }
}

#[test]
fn every_problem_is_reported() {
    let mut v = valid();
    v["importing_country"] = json!("ZZ");
    v["lines"][0]["unit"] = json!("KG");
    let mut second = v["lines"][0].clone();
    second["customs_value"]["currency"] = json!("XYZ");
    second["line_no"] = json!(1);
    v["lines"].as_array_mut().unwrap().push(second);
    let got = read(&v).unwrap_err();
    assert_eq!(
        got,
        [
            ("COUNTRY_INVALID".into(), "/importing_country".into()),
            ("UNIT_UNKNOWN".into(), "/lines/0/unit".into()),
            ("UNIT_UNKNOWN".into(), "/lines/1/unit".into()),
            ("CURRENCY_INVALID".into(), "/lines/1/customs_value/currency".into()),
        ]
    );
    // Duplicate line numbers once the lines are otherwise fine.
    let mut v = valid();
    let second = v["lines"][0].clone();
    v["lines"].as_array_mut().unwrap().push(second);
    assert_eq!(read(&v).unwrap_err(), [("LINE_NO_DUPLICATE".into(), "/lines/1/line_no".into())]);
}

#[test]
fn limits() {
    let big = vec![b' '; MAX_BYTES + 1];
    let e = Declaration::from_json(&big).unwrap_err();
    assert_eq!((e[0].code.as_str(), e.len()), ("TOO_LARGE", 1));
    let mut v = valid();
    let line = v["lines"][0].clone();
    v["lines"] = Value::Array(
        (1..=MAX_LINES + 1)
            .map(|i| {
                let mut l = line.clone();
                l["line_no"] = json!(i);
                l
            })
            .collect(),
    );
    assert_eq!(read(&v).unwrap_err(), [("TOO_MANY_LINES".into(), "/lines".into())]);
    v["lines"].as_array_mut().unwrap().pop();
    v["lines"][MAX_LINES - 1]["line_no"] = json!(MAX_LINES);
    assert_eq!(read(&v).unwrap().lines.len(), MAX_LINES);
    let deep = "[".repeat(10_000);
    assert_eq!(Declaration::from_json(deep.as_bytes()).unwrap_err()[0].code, "JSON_MALFORMED");
    assert_eq!(Declaration::from_json(b"\xff\xfe").unwrap_err()[0].code, "JSON_MALFORMED");
    assert_eq!(
        Declaration::from_json(b"[]").unwrap_err()[0],
        originlink_model::Problem::new("TYPE_MISMATCH", "", "expected an object")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Declaration::from_json(&bytes);
    }

    /// Any field of a valid declaration replaced by an arbitrary JSON scalar: an answer,
    /// never a panic, and every problem has a path inside the document.
    #[test]
    fn arbitrary_field_values_never_panic(
        field in prop::sample::select(vec![
            "/number", "/importer/name", "/importer/id", "/importing_country", "/declaration_date",
            "/lines/0/line_no", "/lines/0/hs_code", "/lines/0/quantity", "/lines/0/unit",
            "/lines/0/customs_value/amount", "/lines/0/customs_value/currency", "/lines/0/eco",
            "/lines/0/claimed_agreement", "/lines/0/invoice_number", "/lines/0/eco/number",
        ]),
        text in ".{0,80}",
        n in any::<f64>(),
        pick in 0u8..4,
    ) {
        let value = match pick {
            0 => json!(text),
            1 => json!(n),
            2 => Value::Null,
            _ => json!({ "x": text }),
        };
        let v = with(field, Some(value));
        if let Err(ps) = read(&v) {
            for (_, path) in ps {
                prop_assert!(path.is_empty() || path.starts_with('/'));
            }
        }
    }
}
