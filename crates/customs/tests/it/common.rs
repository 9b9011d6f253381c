//! Shared fixtures: one issued ATIGA certificate KH → TH and a declaration that matches it
//! in every field, so that each test changes exactly one thing.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use originlink_customs::{
    CertificateFacts, Declaration, EcoRef, Importer, Line, LineDecision, Outcome, Policies, ReasonCode,
};
use originlink_model::{Agreement, Certificate, CountryCode, Money, Quantity, sample::sample};

pub fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).unwrap()
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap()
}

/// Issued 2026-03-02 by KH for TH under ATIGA: item 1 rice 250 KGM (FOB 245.00 USD),
/// item 2 T-shirts 2040 H87, item 3 bicycles 24 H87; all on invoice INV-2026-00100.
pub fn cert() -> Certificate {
    sample(Agreement::Atiga, cc("KH"), cc("TH"), date(2026, 3, 2), 3, 0)
}

/// Received 2026-03-05, valid, unused.
pub fn facts() -> CertificateFacts {
    CertificateFacts::new(cert(), at(2026, 3, 5, 9, 0, 0))
}

/// A declaration filed in TH on 2026-03-10 by the certificate's consignee, one line for
/// 100 KGM of item 1.
pub fn decl() -> Declaration {
    let c = cert();
    let item = &c.items[0];
    Declaration {
        number: "TH-IMP-2026-000001".into(),
        importer: Importer { name: c.consignee.name.clone(), id: c.consignee.id.clone() },
        importing_country: cc("TH"),
        declaration_date: date(2026, 3, 10),
        lines: vec![Line {
            line_no: 1,
            hs_code: item.hs,
            description: "Jasmine rice".into(),
            quantity: Quantity::parse("100", "KGM").unwrap(),
            customs_value: Money::parse("98.00", "USD").unwrap(),
            origin_country: cc("KH"),
            claimed_agreement: Some(Agreement::Atiga),
            eco: EcoRef::Issued { issuing_country: cc("KH"), number: c.number.clone().unwrap() },
            invoice_number: Some(item.invoice.number.clone()),
        }],
    }
}

/// Decides the first line of `d` with `f` under the built-in policies.
pub fn decide1(d: &Declaration, f: Option<&CertificateFacts>) -> LineDecision {
    originlink_customs::decide(&d.lines[0], d, f, &Policies::builtin())
}

/// Asserts the outcome and the exact list of codes.
pub fn expect(dec: &LineDecision, outcome: Outcome, codes: &[ReasonCode]) {
    assert_eq!(dec.codes(), codes, "{dec:#?}");
    assert_eq!(dec.outcome, outcome, "{dec:#?}");
    if outcome == Outcome::Granted {
        assert!(dec.consume.is_some());
    } else {
        assert_eq!(dec.consume, None);
    }
}
