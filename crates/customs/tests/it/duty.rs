//! Duty against hand-computed figures (the arithmetic is in the comments), rounding,
//! specific rates, errors, revenue totals, and the tariff loader's errors.

use originlink_customs::{Declaration, EcoRef, Importer, Line, Revenue, Scheme, Tariff, duty};
use originlink_model::{Agreement, Currency, HsCode, Money, Quantity};

use crate::common::{cc, date};

fn line(hs: &str, qty: &str, unit: &str, value: &str, cur: &str, claim: Option<Agreement>) -> Line {
    Line {
        line_no: 1,
        hs_code: HsCode::parse(hs).unwrap(),
        description: "goods".into(),
        quantity: Quantity::parse(qty, unit).unwrap(),
        customs_value: Money::parse(value, cur).unwrap(),
        origin_country: cc("KH"),
        claimed_agreement: claim,
        eco: EcoRef::Pending,
        invoice_number: None,
    }
}

fn decl_in(country: &str) -> Declaration {
    Declaration {
        number: "IMP-1".into(),
        importer: Importer { name: "Importer".into(), id: None },
        importing_country: cc(country),
        declaration_date: date(2026, 3, 10),
        lines: vec![],
    }
}

/// Checks `(mfn, preferential, due, preference_granted)` as text with the currency's decimals.
fn check(country: &str, l: Line, granted: bool, want: [&str; 4]) {
    let d = duty(&decl_in(country), &l, Tariff::builtin(), granted).unwrap();
    let got = [
        d.mfn.amount_text(),
        d.preferential.amount_text(),
        d.due.amount_text(),
        d.preference_granted.amount_text(),
    ];
    assert_eq!(got, want, "{country} {} granted={granted}", l.hs_code);
    assert_eq!(d.due.currency(), l.customs_value.currency());
}

#[test]
fn th_rice_atiga_granted() {
    // MFN 30 %: 29 400.00 × 0.30 = 8 820.00; ATIGA 0 % → due 0.00; forgone 8 820.00.
    check(
        "TH",
        line("1006.30", "1000", "KGM", "29400.00", "THB", Some(Agreement::Atiga)),
        true,
        ["8820.00", "0.00", "0.00", "8820.00"],
    );
}

#[test]
fn th_rice_atiga_denied() {
    // Denied: due is the MFN duty 8 820.00, nothing forgone.
    check(
        "TH",
        line("1006.30", "1000", "KGM", "29400.00", "THB", Some(Agreement::Atiga)),
        false,
        ["8820.00", "0.00", "8820.00", "0.00"],
    );
}

#[test]
fn th_tshirts_rcep_rounding() {
    // MFN 30 %: 12 345.67 × 0.30 = 3 703.701 → 3 703.70.
    // RCEP 10 %: 1 234.567 → 1 234.57 (half-up). Forgone 3 703.70 − 1 234.57 = 2 469.13.
    check(
        "TH",
        line("6109.10", "1200", "H87", "12345.67", "THB", Some(Agreement::Rcep)),
        true,
        ["3703.70", "1234.57", "1234.57", "2469.13"],
    );
}

#[test]
fn th_sugar_compound_mfn() {
    // MFN 65 % + 0.50 THB/KGM: 30 000.00 × 0.65 = 19 500 + 2 000 × 0.50 = 1 000 → 20 500.00.
    // ATIGA 0 % granted → due 0.00, forgone 20 500.00.
    check(
        "TH",
        line("1701.99", "2000", "KGM", "30000.00", "THB", Some(Agreement::Atiga)),
        true,
        ["20500.00", "0.00", "0.00", "20500.00"],
    );
}

#[test]
fn th_beer_compound_rounds_once_on_the_total() {
    // MFN 60 % + 3.125 THB/LTR: 10 000.01 × 0.60 = 6 000.006; 333 × 3.125 = 1 040.625;
    // sum 7 040.631 → 7 040.63 (rounding each part first would give 6 000.01 + 1 040.63 = 7 040.64).
    // RCEP 54 %: 10 000.01 × 0.54 = 5 400.0054 → 5 400.01. Forgone 7 040.63 − 5 400.01 = 1 640.62.
    check(
        "TH",
        line("2203.00", "333", "LTR", "10000.01", "THB", Some(Agreement::Rcep)),
        true,
        ["7040.63", "5400.01", "5400.01", "1640.62"],
    );
}

#[test]
fn th_shrimps_midpoint_rounds_up() {
    // MFN 5 %: 100.10 × 0.05 = 5.005 → 5.01 (half-up; banker's rounding would give 5.00).
    // Not granted: due 5.01; ATIGA 0 % shown as the preferential 0.00.
    check(
        "TH",
        line("0306.17", "10", "KGM", "100.10", "THB", Some(Agreement::Atiga)),
        false,
        ["5.01", "0.00", "5.01", "0.00"],
    );
}

#[test]
fn th_coffee_without_rcep_rate_pays_mfn() {
    // TH has no RCEP rate for 0901.11: preferential = MFN 90 %: 144.00 × 0.90 = 129.60.
    check(
        "TH",
        line("0901.11", "60", "KGM", "144.00", "THB", Some(Agreement::Rcep)),
        true,
        ["129.60", "129.60", "129.60", "0.00"],
    );
}

#[test]
fn vn_bicycles_vnd_has_no_decimals() {
    // MFN 35 %: 7 654 321 × 0.35 = 2 679 012.35 → 2 679 012 (VND: 0 decimals). ATIGA 0 %.
    check(
        "VN",
        line("8712.00", "3", "H87", "7654321", "VND", Some(Agreement::Atiga)),
        true,
        ["2679012", "0", "0", "2679012"],
    );
}

#[test]
fn vn_footwear_rcep_fractional_rate() {
    // MFN 30 %: 1 234 567 × 0.30 = 370 370.1 → 370 370.
    // RCEP 22.5 %: 1 234 567 × 0.225 = 277 777.575 → 277 778. Forgone 92 592.
    check(
        "VN",
        line("6403.99", "50", "PR", "1234567", "VND", Some(Agreement::Rcep)),
        true,
        ["370370", "277778", "277778", "92592"],
    );
}

#[test]
fn vn_beer_compound() {
    // MFN 35 % + 1 500 VND/LTR: 2 000 001 × 0.35 = 700 000.35; 100 × 1 500 = 150 000;
    // 850 000.35 → 850 000. ATIGA 5 %: 100 000.05 → 100 000. Forgone 750 000.
    check(
        "VN",
        line("2203.00", "100", "LTR", "2000001", "VND", Some(Agreement::Atiga)),
        true,
        ["850000", "100000", "100000", "750000"],
    );
}

#[test]
fn vn_sugar_midpoint_in_whole_dong() {
    // MFN 40 %: 1 000 010 × 0.40 = 400 004. ATIGA 5 %: 50 000.5 → 50 001 (half-up).
    // Forgone 400 004 − 50 001 = 350 003.
    check(
        "VN",
        line("1701.99", "1000", "KGM", "1000010", "VND", Some(Agreement::Atiga)),
        true,
        ["400004", "50001", "50001", "350003"],
    );
}

#[test]
fn kh_smartphones_rcep() {
    // MFN 7 %: 1 999.99 × 0.07 = 139.9993 → 140.00. RCEP 0 %. Forgone 140.00.
    check(
        "KH",
        line("8517.13", "2", "H87", "1999.99", "USD", Some(Agreement::Rcep)),
        true,
        ["140.00", "0.00", "0.00", "140.00"],
    );
}

#[test]
fn kh_sugar_mfn_line_specific_rate() {
    // No claim (MFN). 7 % + 0.015 USD/KGM: 555.55 × 0.07 = 38.8885; 1 234 × 0.015 = 18.51;
    // 57.3985 → 57.40. Preferential = MFN.
    check(
        "KH",
        line("1701.99", "1234", "KGM", "555.55", "USD", None),
        true,
        ["57.40", "57.40", "57.40", "0.00"],
    );
}

#[test]
fn specific_rate_needs_the_line_currency_and_unit() {
    let d = decl_in("TH");
    let e =
        duty(&d, &line("1701.99", "10", "KGM", "100.00", "USD", None), Tariff::builtin(), false).unwrap_err();
    assert_eq!(e.code(), "SPECIFIC_RATE_CURRENCY");
    let e =
        duty(&d, &line("2203.00", "10", "H87", "100.00", "THB", None), Tariff::builtin(), false).unwrap_err();
    assert_eq!(e.code(), "SPECIFIC_RATE_UNIT");
    let e =
        duty(&d, &line("0101.21", "1", "H87", "100.00", "THB", None), Tariff::builtin(), false).unwrap_err();
    assert_eq!(e.code(), "TARIFF_NOT_FOUND");
}

#[test]
fn revenue_totals_per_currency() {
    let th = decl_in("TH");
    let vn = decl_in("VN");
    let t = Tariff::builtin();
    let duties = [
        duty(&th, &line("1006.30", "1000", "KGM", "29400.00", "THB", Some(Agreement::Atiga)), t, true)
            .unwrap(),
        duty(&th, &line("0306.17", "10", "KGM", "100.10", "THB", Some(Agreement::Atiga)), t, false).unwrap(),
        duty(&vn, &line("8712.00", "3", "H87", "7654321", "VND", Some(Agreement::Atiga)), t, true).unwrap(),
    ];
    let r = Revenue::of(&duties).unwrap();
    let thb = r.totals(Currency::parse("THB").unwrap()).unwrap();
    // Forgone 8 820.00 + 0; collected 0 + 5.01; MFN 8 820.00 + 5.01.
    assert_eq!(thb.preference_granted_total.to_string(), "8820.00");
    assert_eq!(thb.duty_collected_total.to_string(), "5.01");
    assert_eq!(thb.mfn_total.to_string(), "8825.01");
    assert_eq!(thb.lines, 2);
    let vnd = r.totals(Currency::parse("VND").unwrap()).unwrap();
    assert_eq!((vnd.preference_granted_total.to_string(), vnd.lines), ("2679012".into(), 1));
    // Totals never overflow into a panic.
    let huge =
        duty(&th, &line("1006.30", "1", "KGM", "99999999999999999999999999.99", "THB", None), t, false)
            .unwrap();
    let mut big = Revenue::default();
    // 1e26 × 30 % = 3e25 per line: about 2 640 lines reach the decimal limit (7.9e28).
    let added = (0..10_000).take_while(|_| big.add(&huge).is_ok()).count();
    assert!((2000..10_000).contains(&added), "{added}");
    assert_eq!(big.add(&huge).unwrap_err().code(), "DUTY_OVERFLOW");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["per_currency"]["THB"]["duty_collected_total"], "5.01");
}

#[test]
fn tariff_loader_reports_line_numbers() {
    let h = originlink_customs::tariff::HEADER;
    let text = format!(
        "# comment\n{h}\nTH,MFN,100630,30,,,,ok\nTH,XYZ,100630,0,,,,\nTH,MFN,1006,30,,,,\nTH,MFN,999999,30,,,,\n\
         TH,ATIGA,610910,0,,,,no mfn\nTH,MFN,100630,31,,,,dup\nTH,MFN,170199,5,0.5,,KGM,\nTH,MFN,090111,-1,,,,\nTH,MFN,090112\n\
         TH,MFN,090121,1.5,0.25,THB,KGM,ok\n"
    );
    let errs = Tariff::parse("t.csv", &text).unwrap_err();
    let got: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.code)).collect();
    assert_eq!(
        got,
        [
            (4, "TARIFF_SCHEME_UNKNOWN"),
            (5, "TARIFF_HS_INVALID"),
            (6, "TARIFF_HS_INVALID"),
            (7, "TARIFF_MFN_MISSING"),
            (8, "TARIFF_DUPLICATE"),
            (9, "TARIFF_SPECIFIC_INCOMPLETE"),
            (10, "TARIFF_RATE_INVALID"),
            (11, "TARIFF_COLUMNS"),
        ]
    );
    assert!(errs[0].to_string().starts_with("t.csv:4: TARIFF_SCHEME_UNKNOWN"));
    let e = Tariff::parse("t.csv", "country,scheme\n").unwrap_err();
    assert_eq!((e[0].line, e[0].code), (1, "TARIFF_HEADER"));
    let ok =
        Tariff::parse("t.csv", &format!("{h}\nTH,MFN,090121,1.5,0.25,THB,KGM,ok\nTH,RCEP,090121,0,,,,\n"))
            .unwrap();
    let rate = ok.rate(cc("TH"), Scheme::Mfn, &HsCode::parse("0901.21.10").unwrap()).unwrap();
    assert_eq!(rate.specific.unwrap().amount.to_string(), "0.25");
    assert!(
        ok.rate(cc("TH"), Scheme::Preferential(Agreement::Rcep), &HsCode::parse("090121").unwrap()).is_some()
    );
    assert!(
        ok.rate(cc("TH"), Scheme::Preferential(Agreement::Atiga), &HsCode::parse("090121").unwrap())
            .is_none()
    );
}

#[test]
fn schemes_serialize_as_their_codes() {
    for (s, code) in [
        (Scheme::Mfn, "MFN"),
        (Scheme::Preferential(Agreement::Atiga), "ATIGA"),
        (Scheme::Preferential(Agreement::Rcep), "RCEP"),
    ] {
        assert_eq!(serde_json::to_value(s).unwrap(), code);
        assert_eq!(serde_json::from_value::<Scheme>(code.into()).unwrap(), s);
        assert_eq!(Scheme::parse(code), Some(s));
    }
}

#[test]
fn builtin_tables_cover_the_sample_goods() {
    let t = Tariff::builtin();
    for country in ["TH", "VN", "KH"] {
        for hs in [
            "1006.30", "6109.10", "8712.00", "4011.10", "0901.11", "6403.99", "1701.99", "8516.60",
            "9403.60", "0306.17",
        ] {
            let hs = HsCode::parse(hs).unwrap();
            assert!(t.rate(cc(country), Scheme::Mfn, &hs).is_some(), "{country} {hs}");
            assert!(
                t.rate(cc(country), Scheme::Preferential(Agreement::Atiga), &hs).is_some(),
                "{country} {hs}"
            );
        }
    }
}

/// Every amount of a duty, as stored and shown (JSON), carries the currency's minor units: a
/// zero rate is `0.00` in THB like `8820.00`, and `0` in VND, never a bare `0` beside `8820.00`.
#[test]
fn amounts_serialize_in_the_currencys_minor_units() {
    let d = duty(
        &decl_in("TH"),
        &line("1006.30", "1000", "KGM", "29400.00", "THB", Some(Agreement::Atiga)),
        Tariff::builtin(),
        true,
    )
    .unwrap();
    let j = serde_json::to_value(&d).unwrap();
    let text = |k: &str| j[k]["amount"].as_str().map(str::to_owned).unwrap_or_else(|| j[k].to_string());
    assert_eq!(
        [text("mfn"), text("preferential"), text("due"), text("preference_granted")],
        ["8820.00", "0.00", "0.00", "8820.00"],
        "{j}"
    );
}
