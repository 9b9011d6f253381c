//! edi3 JSON: schema validity of everything the writer produces, lossless round trips, and a
//! clear, located problem (never a panic) for hostile input.

use std::path::{Path, PathBuf};
use std::process::Command;

use originlink_formats::{Limits, json};
use originlink_model::{
    Address, Agreement, Certificate, CertificateNumber, CertificateRef, CountryCode, Exhibition, NaiveDate,
    OfficialUse, Party, Problem, ProofKind, sample, testkit, validate,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
}

/// Sample certificates of both agreements, each valid.
fn samples() -> Vec<Certificate> {
    let mut v = Vec::new();
    for (a, pairs) in [
        (Agreement::Atiga, &[("KH", "TH"), ("TH", "VN"), ("VN", "KH"), ("MY", "SG"), ("ID", "PH")][..]),
        (Agreement::Rcep, &[("KH", "CN"), ("CN", "JP"), ("JP", "KR"), ("AU", "TH"), ("KR", "VN")][..]),
    ] {
        for (n, (f, t)) in pairs.iter().enumerate() {
            let c = sample::sample(a, cc(f), cc(t), day(), 5 + n, n as u32);
            assert_eq!(validate(&c), vec![], "{a} {f}->{t}");
            v.push(c);
        }
    }
    v
}

/// `n` certificates from the model's testkit generator, deterministic.
fn generated(n: usize) -> Vec<Certificate> {
    let mut runner = TestRunner::deterministic();
    let strategy = testkit::certificate();
    (0..n).map(|_| strategy.new_tree(&mut runner).unwrap().current()).collect()
}

/// A certificate with every optional field filled in (not necessarily valid).
fn rich() -> Certificate {
    let mut c = sample::sample(Agreement::Rcep, cc("KH"), cc("JP"), day(), 5, 7);
    let p = |name: &str, country: &str| Party {
        name: name.to_owned(),
        id: Some(format!("{country} id/with spaces & 中文")),
        address: Address {
            street: Some("1 Road\nBuilding \"B\"".to_owned()),
            city: Some("City".to_owned()),
            postcode: Some("12000".to_owned()),
            country: cc(country),
        },
    };
    c.kind = ProofKind::ApprovedExporterDeclaration;
    c.approved_exporter = Some("AE-KH-00042".to_owned());
    c.version = 2;
    c.replaces =
        Some(CertificateRef { country: cc("KH"), number: CertificateNumber::parse("KH/2026/1").unwrap() });
    c.producer = Some(p("Factory", "KH"));
    c.official_use = Some(OfficialUse { preference_given: false, reason: Some("Late".to_owned()) });
    c.flags.third_party_invoicing = Some(p("Invoicer", "HK"));
    c.flags.exhibition = Some(Exhibition { name: "Fair".to_owned(), place: "Tokyo".to_owned() });
    c.flags.back_to_back =
        Some(CertificateRef { country: cc("TH"), number: CertificateNumber::parse("TH-1").unwrap() });
    c.flags.de_minimis = true;
    c.flags.accumulation = true;
    c.flags.issued_retroactively = true;
    c.remarks = Some("Remarks\twith tab".to_owned());
    c.exporter.address.postcode = Some("12000".to_owned());
    c.items[1].gross_weight = None;
    c.items[2].fob = None;
    c.transport.vessel = None;
    c.transport.port_of_loading.code = Some("KHPNH".to_owned());
    c
}

fn read(bytes: &[u8]) -> Result<Certificate, Vec<Problem>> {
    json::read(bytes, &Limits::default())
}

fn codes_at(problems: &[Problem]) -> Vec<(String, String)> {
    problems.iter().map(|p| (p.code.clone(), p.path.clone())).collect()
}

fn has(problems: &[Problem], code: &str, path: &str) -> bool {
    problems.iter().any(|p| p.code == code && p.path == path)
}

/// Runs the committed Python validator over files; returns (success, output).
fn schema_check(files: &[PathBuf]) -> (bool, String) {
    let edi3 = repo().join("testdata/edi3-coo");
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/edi3_validate.py"))
        .arg(edi3.join("CertificateOfOrigin.schema.json"))
        .arg(edi3.join("codes.json"))
        .args(files)
        .output()
        .expect("python3 runs (scripts/setup.sh installs it with jsonschema)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn everything_written_validates_against_the_edi3_schema() {
    let dir = scratch("edi3-json-schema");
    let mut certs = samples();
    certs.push(rich());
    let n_examples = certs.len();
    certs.extend(generated(220));
    let mut files = Vec::new();
    for (i, c) in certs.iter().enumerate() {
        let f = dir.join(format!("{i:03}-{}.json", c.agreement));
        std::fs::write(&f, json::write(c)).unwrap();
        files.push(f);
    }
    assert!(certs[..n_examples].iter().any(|c| c.agreement == Agreement::Atiga));
    assert!(certs[..n_examples].iter().any(|c| c.agreement == Agreement::Rcep));
    let (ok, out) = schema_check(&files);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{} valid, 0 invalid", certs.len())), "{out}");
}

#[test]
fn the_schema_check_can_fail() {
    // The edi3 samples pass, so the local stand-in for the external $ref is wired.
    let edi3 = repo().join("testdata/edi3-coo");
    let (ok, out) = schema_check(&[
        edi3.join("CertificateOfOrigin.sampleFull.json"),
        edi3.join("CertificateOfOrigin.sampleMinimal.json"),
    ]);
    assert!(ok, "{out}");
    // Documents that break the schema's required property, date-time format, uri format and
    // the country pattern are each caught.
    let dir = scratch("edi3-json-schema-negative");
    let base: Value = serde_json::from_str(&json::write(&samples()[0])).unwrap();
    let mut files = Vec::new();
    type Break = (&'static str, fn(&mut Value));
    let breaks: [Break; 4] = [
        ("no-id", |v| {
            v.as_object_mut().unwrap().remove("iD");
        }),
        ("date-only", |v| v["issueDateTime"] = "2026-03-02".into()),
        ("id-not-uri", |v| v["iD"] = "KH 2026 1".into()),
        ("lower-country", |v| v["supplyChainConsignment"]["exportCountry"]["code"] = "kh".into()),
    ];
    for (name, f) in breaks {
        let mut v = base.clone();
        f(&mut v);
        let p = dir.join(format!("{name}.json"));
        std::fs::write(&p, serde_json::to_string(&v).unwrap()).unwrap();
        files.push(p);
    }
    let (ok, out) = schema_check(&files);
    assert!(!ok, "{out}");
    assert!(out.contains("0 valid, 4 invalid"), "{out}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn model_to_json_to_model_is_lossless(c in testkit::certificate()) {
        let text = json::write(&c);
        let back = read(text.as_bytes());
        prop_assert!(back.is_ok(), "{:?}\n{text}", back.err());
        let back = back.unwrap();
        prop_assert_eq!(&back, &c);
        prop_assert_eq!(json::write(&back), text);
    }

    #[test]
    fn damaged_documents_never_panic(pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let mut bytes = json::write(&samples()[1]).into_bytes();
        let i = pos.index(bytes.len());
        if cut { bytes.truncate(i) } else { bytes[i] = byte }
        let _ = read(&bytes);
    }
}

#[test]
fn samples_round_trip_and_stay_valid() {
    let mut all = samples();
    all.push(rich());
    for c in all {
        let text = json::write(&c);
        let back = read(text.as_bytes()).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(back, c);
        assert_eq!(validate(&back), validate(&c));
    }
}

#[test]
fn edge_certificates_round_trip() {
    // Invalid certificates still convert losslessly: an application with no number and no
    // certification, and one with no goods lines at all (the producer still survives).
    let mut application = rich();
    application.number = None;
    application.certification = None;
    application.official_use = None;
    let mut empty = rich();
    empty.items.clear();
    let mut minimal = samples()[0].clone();
    minimal.exporter.id = None;
    minimal.exporter.address = Address { street: None, city: None, postcode: None, country: cc("KH") };
    minimal.items[0].marks = String::new();
    minimal.remarks = Some(String::new());
    for c in [application, empty, minimal] {
        let text = json::write(&c);
        assert_eq!(read(text.as_bytes()).unwrap_or_else(|p| panic!("{p:?}\n{text}")), c);
    }
}

fn mutation() -> impl Strategy<Value = (prop::sample::Index, Value)> {
    let values = prop_oneof![
        Just(Value::Null),
        Just(Value::Bool(true)),
        Just(serde_json::json!(0)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(1.5)),
        Just(serde_json::json!(4294967296u64)),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
        prop::sample::select(vec![
            "",
            "1",
            "KH",
            "kh",
            "XX",
            "USD",
            "KGM",
            "CT",
            "2026-03-02",
            "2026-03-02T10:00:00+07:00",
            "2026-02-30T00:00:00Z",
            "rvc 40%",
            "CTSH+RVC35",
            "1006 30",
            "9999.99",
            "-5",
            "1.123",
            "1e3",
            "urn:originlink:party:%zz",
            "urn:originlink:application:KH:x",
            "a:b:c",
            "RCEP",
            "atiga",
            "exporter-declaration",
            "8",
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    (any::<prop::sample::Index>(), values)
}

/// Every pointer to a value in the document.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| pointers(c, format!("{at}/{k}"), out)),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| pointers(c, format!("{at}/{i}"), out)),
        _ => {}
    }
    out.push(at);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Structure-aware damage: values replaced or removed anywhere. Whatever still reads must
    /// write back to JSON that reads as the same certificate; whatever does not, gets located
    /// problems.
    #[test]
    fn whatever_reads_writes_back_the_same(
        which in 0usize..3,
        muts in prop::collection::vec((mutation(), any::<bool>()), 1..4),
    ) {
        let mut doc: Value = serde_json::from_str(&json::write(&[rich(), samples()[0].clone(), samples()[6].clone()][which])).unwrap();
        for ((pos, value), remove) in muts {
            let mut all = Vec::new();
            pointers(&doc, String::new(), &mut all);
            all.retain(|p| !p.is_empty());
            let target = all[pos.index(all.len())].clone();
            let (parent, key) = target.rsplit_once('/').unwrap();
            match doc.pointer_mut(parent) {
                Some(Value::Object(m)) if remove => { m.remove(key); }
                Some(Value::Object(m)) => { m.insert(key.to_owned(), value); }
                Some(Value::Array(a)) => { a[key.parse::<usize>().unwrap()] = value; }
                _ => {}
            }
        }
        let bytes = serde_json::to_vec(&doc).unwrap();
        match read(&bytes) {
            Ok(cert) => {
                let again = read(json::write(&cert).as_bytes());
                prop_assert_eq!(again.as_ref(), Ok(&cert));
            }
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                for p in &problems {
                    prop_assert!(p.path == "/" || doc.pointer(&p.path).is_some()
                        || p.path.rsplit_once('/').is_some_and(|(parent, _)| parent.is_empty() || doc.pointer(parent).is_some()),
                        "{} at {} is not in the document", p.code, p.path);
                }
            }
        }
    }
}

#[test]
fn writer_is_deterministic_and_pretty() {
    let c = rich();
    let a = json::write(&c);
    assert_eq!(a, json::write(&c.clone()));
    assert!(a.starts_with("{\n  \"iD\": \"urn:originlink:coo:KH:KH-2026-000008\",\n"), "{a}");
    assert!(a.ends_with("}\n"));
    // Amounts are decimal strings, never JSON numbers.
    let v: Value = serde_json::from_str(&a).unwrap();
    let fob = &v["originlinkExtension"]["items"][0]["fob"];
    assert!(fob["amount"].is_string(), "{fob}");
    assert_eq!(fob["currencyCode"], "USD");
    assert_eq!(v["supplyChainConsignment"]["includedConsignmentItems"][0]["manufacturer"]["name"], "Factory");
}

#[test]
fn every_truncation_is_malformed_json() {
    let text = json::write(&samples()[0]);
    let bytes = text.trim_end().as_bytes();
    for n in 0..bytes.len() {
        let p = read(&bytes[..n]).expect_err("a cut document does not read");
        assert!(p.len() == 1 && matches!(p[0].code.as_str(), "JSON_MALFORMED" | "ENCODING"), "{n}: {p:?}");
    }
}

/// Hostile files under testdata/bad/: each a clear problem with a stable code and a path.
#[test]
fn hostile_files_get_located_problems() {
    let bad = repo().join("testdata/bad");
    // (file, code, JSON pointer); the read fails with this problem among its problems.
    let read_errors: &[(&str, &str, &str)] = &[
        ("truncated.json", "JSON_MALFORMED", "/"),
        ("malformed.json", "JSON_MALFORMED", "/"),
        ("deep-nesting.json", "JSON_MALFORMED", "/"),
        ("not-utf8.json", "ENCODING", "/"),
        ("wrong-types.json", "TYPE", "/isPreferential"),
        ("wrong-types.json", "TYPE", "/originlinkExtension/version"),
        (
            "wrong-types.json",
            "TYPE",
            "/supplyChainConsignment/includedConsignmentItems/0/tradeLineItems/0/sequenceNumber",
        ),
        ("wrong-types.json", "TYPE", "/originlinkExtension/items/1/fob/amount"),
        ("wrong-types.json", "TYPE", "/originlinkExtension/items/2/packages/count"),
        ("wrong-types.json", "TYPE", "/supplyChainConsignment/exporter"),
        ("wrong-types.json", "REQUIRED", "/supplyChainConsignment/importer/name"),
        (
            "unknown-hs.json",
            "HS_UNKNOWN",
            "/supplyChainConsignment/includedConsignmentItems/0/tradeLineItems/0/tradeProduct/harmonisedTariffCode/classCode",
        ),
        ("bad-country.json", "COUNTRY_INVALID", "/supplyChainConsignment/importCountry/code"),
        ("negative-amount.json", "AMOUNT_NEGATIVE", "/originlinkExtension/items/1/fob/amount"),
        ("amount-9-decimals.json", "AMOUNT_PRECISION", "/originlinkExtension/items/1/fob/amount"),
        ("unknown-property.json", "UNKNOWN_PROPERTY", "/originlinkExtension/flags/deMinimus"),
        ("bad-date.json", "DATE_INVALID", "/issueDateTime"),
    ];
    for (file, code, path) in read_errors {
        let bytes = std::fs::read(bad.join(file)).unwrap();
        let problems = read(&bytes).expect_err(file);
        assert!(has(&problems, code, path), "{file}: want {code} at {path}, got {:#?}", codes_at(&problems));
        assert!(problems.iter().all(|p| p.path.starts_with('/') && !p.message.is_empty()));
    }
    // These read, and validation finds the problem; pointer_for locates it in the document.
    let invalid: &[(&str, &str, &str)] = &[
        ("rvc-without-fob.json", "FOB_REQUIRED_FOR_RVC", "/originlinkExtension/items/2/fob"),
        ("items-51.json", "ITEM_LIMIT", "/supplyChainConsignment/includedConsignmentItems"),
    ];
    for (file, code, pointer) in invalid {
        let bytes = std::fs::read(bad.join(file)).unwrap();
        let cert = read(&bytes).unwrap_or_else(|p| panic!("{file}: {p:?}"));
        let problems = validate(&cert);
        let found =
            problems.iter().find(|p| p.code == *code).unwrap_or_else(|| panic!("{file}: {problems:?}"));
        assert_eq!(json::pointer_for(&found.path), *pointer, "{file}");
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(doc.pointer(pointer).is_some() || *code == "FOB_REQUIRED_FOR_RVC", "{file}");
    }
}

#[test]
fn six_megabytes_is_too_large_unless_allowed() {
    let mut text = json::write(&samples()[0]);
    text.truncate(text.trim_end().len() - 1); // drop the closing brace
    let pad = 6 * 1024 * 1024 - text.len();
    text.push_str(&" ".repeat(pad));
    text.push('}');
    assert!(text.len() > 6 * 1024 * 1024 - 1);
    let p = read(text.as_bytes()).unwrap_err();
    assert_eq!(codes_at(&p), vec![("DOCUMENT_TOO_LARGE".to_owned(), "/".to_owned())]);
    let roomy = Limits { max_bytes: 8 * 1024 * 1024 };
    assert_eq!(json::read(text.as_bytes(), &roomy).unwrap(), samples()[0]);
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for depth in [129, 10_000, 1_000_000] {
        let doc = format!("{{\"iD\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
        let p = read(doc.as_bytes()).unwrap_err();
        assert_eq!(p[0].code, "JSON_MALFORMED", "{depth}");
        assert!(p[0].message.contains("recursion limit"), "{}", p[0].message);
    }
}

#[test]
fn encodings_other_than_utf8_are_refused() {
    let p = read(b"\xFF\xFE{\x00}\x00").unwrap_err();
    assert_eq!(p[0].code, "ENCODING");
    let p = read(b"{\"iD\": \"caf\xE9\"}").unwrap_err();
    assert_eq!(codes_at(&p), vec![("ENCODING".to_owned(), "/".to_owned())]);
    // A UTF-8 byte order mark is fine.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(json::write(&samples()[2]).bytes());
    assert_eq!(read(&bom).unwrap(), samples()[2]);
}

#[test]
fn duplicate_property_names_are_refused() {
    // Parsers disagree on which duplicate wins, so a document with one is not accepted.
    let text = json::write(&samples()[0]).replacen(
        "\"isPreferential\": true,",
        "\"isPreferential\": true, \"isPreferential\": false,",
        1,
    );
    let p = read(text.as_bytes()).unwrap_err();
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].code, "JSON_MALFORMED");
    assert!(p[0].message.contains("duplicate property \"isPreferential\""), "{}", p[0].message);
}

#[test]
fn a_json_number_amount_is_refused() {
    let mut v: Value = serde_json::from_str(&json::write(&samples()[0])).unwrap();
    v["originlinkExtension"]["items"][0]["fob"]["amount"] = serde_json::json!(1234.5);
    v["originlinkExtension"]["items"][0]["quantity"]["value"] = serde_json::json!(3);
    let p = read(serde_json::to_string(&v).unwrap().as_bytes()).unwrap_err();
    assert!(has(&p, "TYPE", "/originlinkExtension/items/0/fob/amount"), "{p:?}");
    assert!(has(&p, "TYPE", "/originlinkExtension/items/0/quantity/value"), "{p:?}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut v: Value = serde_json::from_str(&json::write(&samples()[0])).unwrap();
    let sc = &mut v["supplyChainConsignment"];
    sc["exportCountry"]["code"] = "XX".into();
    sc["includedConsignmentItems"][3]["tradeLineItems"][0]["tradeProduct"]["harmonisedTariffCode"]["classCode"] =
        "9999.99".into();
    sc["includedConsignmentItems"][4]["crossBorderRegulatoryProcedure"]["originCriteriaText"] = "ZZ".into();
    v["originlinkExtension"]["items"][2]["packages"]["kindCode"] = "QQ".into();
    v["originlinkExtension"]["transportModeCode"] = "7".into();
    v["freeTradeAgreement"] = "NAFTA".into();
    let p = read(serde_json::to_string(&v).unwrap().as_bytes()).unwrap_err();
    let ci = "/supplyChainConsignment/includedConsignmentItems";
    let want = [
        ("AGREEMENT_UNKNOWN", "/freeTradeAgreement".to_owned()),
        ("TRANSPORT_MODE_UNKNOWN", "/originlinkExtension/transportModeCode".to_owned()),
        ("COUNTRY_INVALID", "/supplyChainConsignment/exportCountry/code".to_owned()),
        ("HS_UNKNOWN", format!("{ci}/3/tradeLineItems/0/tradeProduct/harmonisedTariffCode/classCode")),
        ("CRITERION_INVALID", format!("{ci}/4/crossBorderRegulatoryProcedure/originCriteriaText")),
        ("PACKAGE_KIND_UNKNOWN", "/originlinkExtension/items/2/packages/kindCode".to_owned()),
    ];
    for (code, path) in &want {
        assert!(has(&p, code, path), "{code} {path}: {:#?}", codes_at(&p));
    }
    assert_eq!(p.len(), want.len(), "{:#?}", codes_at(&p));
}

#[test]
fn the_edi3_samples_give_clear_problems() {
    let edi3 = repo().join("testdata/edi3-coo");
    let full = read(&std::fs::read(edi3.join("CertificateOfOrigin.sampleFull.json")).unwrap()).unwrap_err();
    let ci = "/supplyChainConsignment/includedConsignmentItems";
    for (code, path) in [
        ("AGREEMENT_UNKNOWN", "/freeTradeAgreement".to_owned()),
        ("REQUIRED", "/originlinkExtension".to_owned()),
        ("CRITERION_INVALID", format!("{ci}/0/crossBorderRegulatoryProcedure/originCriteriaText")),
        ("CRITERION_INVALID", format!("{ci}/1/crossBorderRegulatoryProcedure/originCriteriaText")),
        ("PRODUCER_MIXED", format!("{ci}/1/manufacturer")),
    ] {
        assert!(has(&full, code, &path), "{code} {path}: {:#?}", codes_at(&full));
    }
    let minimal =
        read(&std::fs::read(edi3.join("CertificateOfOrigin.sampleMinimal.json")).unwrap()).unwrap_err();
    assert!(has(&minimal, "AGREEMENT_UNKNOWN", "/freeTradeAgreement"));
    assert!(has(&minimal, "REQUIRED", "/supplyChainConsignment/importer"));
    assert!(has(&minimal, "REQUIRED", "/supplyChainConsignment/exporter/postalAddress"));
    assert!(has(&minimal, "REQUIRED", &format!("{ci}/0/tradeLineItems/1/tradeProduct/description")));
}

#[test]
fn foreign_grouping_and_unknown_edi3_properties_are_accepted() {
    // Two trade line items in one consignment item (as edi3's own sample does) read as two
    // goods lines, and edi3 properties the model does not hold are ignored.
    let c = samples()[5].clone(); // RCEP: one criterion for the first two lines below
    let mut c2 = c.clone();
    c2.items[1].criterion = c2.items[0].criterion;
    let mut v: Value = serde_json::from_str(&json::write(&c2)).unwrap();
    let cis = v["supplyChainConsignment"]["includedConsignmentItems"].as_array_mut().unwrap();
    let second = cis.remove(1);
    let line = second["tradeLineItems"][0].clone();
    cis[0]["tradeLineItems"].as_array_mut().unwrap().push(line);
    v["supplyChainConsignment"]["transportPackages"] = serde_json::json!([{"iD": "gs1.org:sscc:1"}]);
    v["attachedFile"] = serde_json::json!({"uRI": "https://example.invalid/x.pdf"});
    v["status"] = "verified".into();
    let back = read(serde_json::to_string(&v).unwrap().as_bytes()).unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(back, c2);
}

#[test]
fn pointer_for_maps_every_model_path_into_the_document() {
    let c = rich();
    let doc: Value = serde_json::from_str(&json::write(&c)).unwrap();
    let paths = [
        "/agreement",
        "/kind",
        "/number",
        "/reference",
        "/version",
        "/replaces",
        "/replaces/number",
        "/approved_exporter",
        "/remarks",
        "/exporting_country",
        "/importing_country",
        "/exporter/name",
        "/exporter/id",
        "/exporter/address/country",
        "/exporter/address/street",
        "/exporter/address/city",
        "/exporter/address/postcode",
        "/consignee/name",
        "/producer/name",
        "/transport/departure_date",
        "/transport/mode",
        "/transport/port_of_loading/code",
        "/transport/port_of_loading/name",
        "/transport/port_of_discharge/name",
        "/items",
        "/items/3",
        "/items/0/number",
        "/items/0/marks",
        "/items/0/packages/count",
        "/items/0/packages/kind",
        "/items/0/description",
        "/items/0/hs",
        "/items/0/criterion",
        "/items/0/origin_country",
        "/items/0/quantity",
        "/items/0/gross_weight",
        "/items/0/fob",
        "/items/0/invoice/number",
        "/items/0/invoice/date",
        "/declaration/place",
        "/declaration/date",
        "/declaration/signatory",
        "/certification/authority/address/country",
        "/certification/authority/name",
        "/certification/place",
        "/certification/date",
        "/certification/officer",
        "/official_use/preference_given",
        "/official_use/reason",
        "/flags/third_party_invoicing/name",
        "/flags/exhibition/name",
        "/flags/exhibition/place",
        "/flags/back_to_back/country",
        "/flags/de_minimis",
        "/flags/accumulation",
        "/flags/partial_cumulation",
        "/flags/issued_retroactively",
    ];
    for p in paths {
        let ptr = json::pointer_for(p);
        assert!(doc.pointer(&ptr).is_some(), "{p} -> {ptr} is not in the document");
    }
    assert_eq!(json::pointer_for("/items/2/fob"), "/originlinkExtension/items/2/fob");
    assert_eq!(json::pointer_for("/nonsense"), "/nonsense");
    // Whatever validation reports on a broken certificate points into the document.
    let mut broken = rich();
    broken.importing_country = broken.exporting_country;
    broken.version = 0;
    broken.items[0].number = 9;
    broken.items[2].criterion = originlink_model::OriginCriterion::Rvc(Some(40));
    broken.declaration.place = String::new();
    broken.flags.back_to_back.as_mut().unwrap().country = cc("KH");
    let problems = validate(&broken);
    assert!(problems.len() >= 5, "{problems:?}");
    let doc: Value = serde_json::from_str(&json::write(&broken)).unwrap();
    for p in problems {
        let ptr = json::pointer_for(&p.path);
        let found = doc.pointer(&ptr).is_some()
            || ptr.rsplit_once('/').is_some_and(|(parent, _)| doc.pointer(parent).is_some());
        assert!(found, "{} {} -> {ptr}", p.code, p.path);
    }
}

/// Issue 13: `1.0` and `1e0` are the same JSON number as `1` (RFC 8785 writes all three as
/// `1`), so they are accepted wherever an integer belongs; `1.5` is `NOT_AN_INTEGER`.
#[test]
fn integers_written_with_a_zero_fraction_read_as_integers() {
    let c = samples()[0].clone();
    let text = json::write(&c);
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let version = "/originlinkExtension/version";
    let count = "/originlinkExtension/items/0/packages/count";
    let seq = "/supplyChainConsignment/includedConsignmentItems/0/tradeLineItems/0/sequenceNumber";
    let as_float = |v: &mut Value, p: &str| {
        let n = v.pointer(p).and_then(Value::as_u64).unwrap();
        *v.pointer_mut(p).unwrap() = serde_json::json!(n as f64);
    };
    for p in [version, count, seq] {
        as_float(&mut v, p);
    }
    let doc = serde_json::to_string(&v).unwrap();
    assert!(
        doc.contains("\"version\":1.0") || doc.contains(&format!("\"version\":{}.0", c.version)),
        "{doc}"
    );
    assert_eq!(read(doc.as_bytes()).unwrap(), c);
    // As a sender writes them by hand: `1.0`, `1.00`, `1e0`, `10e-1`, `0.1e1`.
    let one = text.replacen(&format!("\"version\": {}", c.version), "\"version\": 1", 1);
    assert!(one.contains("\"version\": 1"), "{one}");
    let want = read(one.as_bytes()).unwrap();
    for form in ["1.0", "1.00", "1e0", "1E+0", "10e-1", "0.1e1"] {
        let doc = one.replacen("\"version\": 1", &format!("\"version\": {form}"), 1);
        assert_eq!(read(doc.as_bytes()).unwrap(), want, "{form}");
    }
    for (form, code) in [
        ("1.5", "NOT_AN_INTEGER"),
        ("1e-1", "NOT_AN_INTEGER"),
        ("-1.0", "TYPE"),
        ("4294967296.0", "TYPE"),
        ("\"1\"", "TYPE"),
    ] {
        let doc = one.replacen("\"version\": 1", &format!("\"version\": {form}"), 1);
        let p = read(doc.as_bytes()).unwrap_err();
        assert!(has(&p, code, version), "{form}: {p:?}");
    }
}
