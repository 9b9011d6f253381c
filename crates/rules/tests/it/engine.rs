//! The evaluator's rules one by one: certificate codes, build-up, method choice, partial
//! cumulation, GENERIC de minimis, MaxNOM, processes, minimal operations, PSR exclusions.

use originlink_model::Agreement;
use originlink_model::CountryCode;
use originlink_rules::{
    Atom, Ctc, OriginSettings, Regime, Rvc, RvcMethod, RvcNotation, certificate_code, good_from_json,
    qualify, qualify_with,
};
use serde_json::{Value, json};

fn biscuits() -> Value {
    json!({
        "agreement": "ATIGA",
        "exporting_country": "TH",
        "product": { "hs": "1905.31", "description": "Sweet biscuits" },
        "rule": "RVC40 or CTH",
        "valuation": { "basis": "FOB", "value": "15.00", "currency": "USD" },
        "costs": { "direct_labour": "1.20", "direct_overhead": "0.80", "profit": "2.50", "other": "0" },
        "materials": [
            { "name": "wheat flour", "hs": "1101.00", "value": "4.00", "origin": "MY", "status": "originating" },
            { "name": "sugar", "hs": "1701.99", "value": "2.50", "origin": "AU", "status": "non-originating" },
            { "name": "wafer sheets", "hs": "1905.32", "value": "5.00", "origin": "MY", "status": "partial", "rvc": "30" },
            { "name": "flavouring", "hs": "2106.90", "value": "1.00", "status": "undetermined" }
        ]
    })
}

fn run(v: &Value) -> Value {
    qualify(&good_from_json(v).unwrap_or_else(|e| panic!("{e}"))).unwrap().to_json()
}

fn rvc(percent: u8, notation: RvcNotation) -> Atom {
    Atom::Rvc(Rvc { percent, method: None, notation })
}

#[test]
fn certificate_codes_follow_form_d_and_rcep() {
    let atiga = Regime::Agreement(Agreement::Atiga);
    let rcep = Regime::Agreement(Agreement::Rcep);
    let cth = Atom::Ctc(Ctc::Heading);
    let ctsh = Atom::Ctc(Ctc::Subheading);
    for (regime, met, code) in [
        (atiga, vec![rvc(40, RvcNotation::Compact)], "40%"),
        (atiga, vec![cth], "CTH"),
        (atiga, vec![ctsh, rvc(35, RvcNotation::Percent)], "CTSH + 35%"),
        (atiga, vec![rvc(35, RvcNotation::Spaced), ctsh], "CTSH + 35%"),
        (atiga, vec![Atom::PartialCumulation(25)], "PC 25%"),
        (atiga, vec![Atom::WhollyObtained], "WO"),
        (atiga, vec![Atom::ProducedEntirely], "PE"),
        (atiga, vec![Atom::ChemicalReaction], "SP"),
        (atiga, vec![Atom::Ctc(Ctc::Chapter)], "CC"),
        (rcep, vec![ctsh], "CTC"),
        (rcep, vec![rvc(40, RvcNotation::Compact)], "RVC"),
        (rcep, vec![Atom::ChemicalReaction], "CR"),
        (rcep, vec![Atom::WhollyObtained], "WO"),
        (Regime::Generic, vec![rvc(60, RvcNotation::Compact)], "60%"),
    ] {
        assert_eq!(certificate_code(regime, &met), code, "{regime} {met:?}");
    }
}

#[test]
fn build_up_adds_originating_materials_and_costs() {
    let mut v = biscuits();
    v["method"] = json!("build-up");
    let out = run(&v);
    // VOM 4.00 + 30 % of 5.00 = 5.50; costs 4.50; (5.50 + 4.50) / 15.00 = 66.67 %.
    assert_eq!(out["rvc_percent"], "66.6666");
    assert_eq!(
        out["alternatives"][0]["detail"],
        "RVC (5.50 + 1.20 + 0.80 + 2.50 + 0.00) / 15.00 = 66.66% >= 40%"
    );
    assert_eq!(out["rvc"]["formula"], "(VOM + labour + overhead + profit + other) / FOB x 100");
    assert_eq!(out["rvc"]["method"], "build-up");
}

#[test]
fn a_method_in_the_rule_wins_and_is_flagged() {
    let mut v = biscuits();
    v["method"] = json!("build-down");
    v["rule"] = json!("RVC60(build-up)");
    let out = run(&v);
    assert_eq!(out["originating"], true, "{out:#}");
    assert_eq!(out["rvc"]["method"], "build-up");
    assert!(out["warnings"][0].as_str().unwrap().contains("imposes its own RVC method"), "{out:#}");
}

#[test]
fn a_failing_atiga_good_may_still_serve_partial_cumulation() {
    let mut v = biscuits();
    v["rule"] = json!("RVC60");
    v["materials"][0]["status"] = json!("non-originating");
    let out = run(&v);
    // VNM 4.00 + 2.50 + 3.50 + 1.00 = 11.00: RVC 26.67 %.
    assert_eq!((out["originating"].clone(), out["rvc_percent"].clone()), (json!(false), json!("26.6666")));
    assert_eq!(out["partial_cumulation"], "PC 26%");
    v["materials"][1]["value"] = json!("4.50");
    assert_eq!(run(&v)["partial_cumulation"], Value::Null, "RVC 13.33 % is below 20 %");
}

#[test]
fn partial_cumulation_is_atiga_only() {
    let mut v = biscuits();
    v["agreement"] = json!("RCEP");
    let out = run(&v);
    // Under RCEP the wafer sheets count whole: VNM 8.50, RVC 43.33 %.
    assert_eq!(out["rvc_percent"], "43.3333");
    assert_eq!(
        out["materials"][2]["counts_as"],
        "partial: no partial cumulation under RCEP, counted as non-originating"
    );
    assert!(out["warnings"].to_string().contains("partial cumulation is an ATIGA rule"), "{out:#}");
}

#[test]
fn generic_de_minimis_only_when_given() {
    let mut v = biscuits();
    v["agreement"] = json!("GENERIC");
    v["rule"] = json!("CTH");
    v["materials"][2]["status"] = json!("non-originating");
    v["materials"][2].as_object_mut().unwrap().remove("rvc");
    v["materials"][2]["value"] = json!("0.75");
    let out = run(&v);
    assert_eq!(out["originating"], false, "no de minimis under GENERIC by default");
    assert!(
        out["alternatives"][0]["detail"].as_str().unwrap().ends_with("no de minimis under GENERIC"),
        "{out:#}"
    );
    v["de_minimis_percent"] = json!("5");
    let out = run(&v);
    assert_eq!(out["originating"], true, "{out:#}");
    assert_eq!(out["de_minimis"], json!({ "used": true, "percent": "5", "basis": "value" }));
}

#[test]
fn maxnom_needs_the_ex_works_price() {
    let mut v = biscuits();
    v["agreement"] = json!("GENERIC");
    v["rule"] = json!("MaxNOM 60%");
    let out = run(&v);
    assert_eq!(out["originating"], false);
    assert!(out["alternatives"][0]["detail"].as_str().unwrap().contains("ex-works"), "{out:#}");
    v["valuation"]["basis"] = json!("EXW");
    let out = run(&v);
    assert_eq!(out["originating"], true, "{out:#}");
    assert_eq!(out["alternatives"][0]["detail"], "non-originating 8.50 / EXW 15.00 = 56.66% <= 60%");
    assert_eq!(out["certificate_code"], "MaxNOM 60%");
    // GENERIC has no partial cumulation: the wafer sheets count whole.
    v["rule"] = json!("MaxNOM 55%");
    assert_eq!(run(&v)["originating"], false);
}

#[test]
fn processes_and_minimal_operations() {
    let mut v = biscuits();
    v["agreement"] = json!("RCEP");
    v["rule"] = json!("CR");
    assert_eq!(run(&v)["originating"], false);
    v["operations"] = json!(["chemical-reaction", "packaging"]);
    let out = run(&v);
    assert_eq!((out["originating"].clone(), out["certificate_code"].clone()), (json!(true), json!("CR")));
    // Only minimal operations: nothing else counts.
    v["rule"] = json!("RVC40 or CTH");
    v["operations"] = json!(["sorting", "packaging", "marking"]);
    let out = run(&v);
    assert_eq!(out["originating"], false);
    assert_eq!(out["minimal_operations_only"], true);
    assert_eq!(out["criterion"], Value::Null);
    // One substantive operation is enough to leave the minimal-operations rule.
    v["operations"] = json!(["sorting", "baking"]);
    assert_eq!(run(&v)["originating"], true);
    // ATIGA lists fewer minimal operations: sorting is not one of them.
    v["agreement"] = json!("ATIGA");
    v["operations"] = json!(["sorting", "packaging"]);
    assert_eq!(run(&v)["originating"], true);
}

#[test]
fn the_atiga_line_for_2404_19_10_excludes_heading_2403() {
    let v = json!({
        "agreement": "ATIGA",
        "exporting_country": "MY",
        "product": { "hs": "2404.19.10" },
        "valuation": { "basis": "FOB", "value": "100.00", "currency": "USD" },
        "materials": [
            { "name": "homogenised tobacco", "hs": "2403.91", "value": "65.00", "status": "non-originating" }
        ]
    });
    let out = run(&v);
    assert_eq!(out["rule"], "RVC40 or CTH except from heading 2403");
    assert!(out["rule_source"].as_str().unwrap().contains("ATIGA Annex 3"), "{out:#}");
    assert_eq!(out["originating"], false, "{out:#}");
    assert_eq!(
        out["alternatives"][1]["detail"],
        "homogenised tobacco 2403.91 is non-originating and from heading 2403, which the rule excludes; \
         de minimis: 65.00 is 65.00% of FOB > 10%"
    );
    assert_eq!(out["materials"][0]["ctc"], "fails CTH (excluded: heading 2403)");
    // The same material when originating is not excluded.
    let mut v = v;
    v["materials"][0]["status"] = json!("originating");
    assert_eq!(run(&v)["originating"], true);
    // Given as 2404.19 the national line is not reached: the general rule applies, with a warning.
    v["product"]["hs"] = json!("2404.19");
    let out = run(&v);
    assert_eq!(out["rule"], "RVC40 or CTH");
    assert!(out["warnings"].to_string().contains("2404.19.10"), "{out:#}");
}

#[test]
fn the_exporting_country_sets_the_default_method() {
    let mut v = biscuits();
    let good = good_from_json(&v).unwrap();
    let mut settings = OriginSettings::builtin(good.regime);
    assert_eq!(qualify_with(&good, &settings).unwrap().rvc.unwrap().method, RvcMethod::BuildDown);
    settings.method_by_country.push((CountryCode::parse("TH").unwrap(), RvcMethod::BuildUp));
    let a = qualify_with(&good, &settings).unwrap();
    assert_eq!(a.rvc.unwrap().method, RvcMethod::BuildUp);
    // The exporter's stated method still wins over the country's.
    v["method"] = json!("build-down");
    let a = qualify_with(&good_from_json(&v).unwrap(), &settings).unwrap();
    assert_eq!(a.rvc.unwrap().method, RvcMethod::BuildDown);
}

#[test]
fn accumulation_covers_parties_only() {
    let mut v = biscuits();
    assert_eq!(run(&v)["warnings"], json!([]));
    v["materials"][0]["origin"] = json!("CN");
    let out = run(&v);
    assert!(out["warnings"][0].as_str().unwrap().contains("CN, which is not a party to ATIGA"), "{out:#}");
    v["agreement"] = json!("RCEP");
    v["materials"][2]["status"] = json!("originating");
    v["materials"][2].as_object_mut().unwrap().remove("rvc");
    assert!(!run(&v)["warnings"].to_string().contains("not a party"), "CN is an RCEP party");
}
