//! Risk: every rule fires alone against a clean baseline; weights come from configuration.

use chrono::Duration;
use originlink_customs::risk::{importer_key, issuer_key, party_key};
use originlink_customs::{
    CertificateFacts, Declaration, Ledger, LineFacts, Risk, RiskCode, RiskConfig, RiskHistory, score,
};
use originlink_model::{CertificateNumber, CertificateRef, Money, Quantity};

use crate::common::*;

/// A history in which the pair is known, so that the baseline scores 0.
fn history(f: &CertificateFacts, d: &Declaration) -> RiskHistory {
    let mut h = RiskHistory::default();
    h.known_pairs.insert((party_key(&f.certificate.exporter), importer_key(d)));
    h
}

fn run(f: &CertificateFacts, d: &Declaration, h: &RiskHistory, cfg: &RiskConfig) -> Risk {
    let lines: Vec<LineFacts<'_>> =
        d.lines.iter().map(|l| LineFacts { line: l, certificate: Some(f), matched_item: Some(1) }).collect();
    score(d, &lines, h, cfg)
}

/// Line value at the certificate FOB pro rata: 100 KGM of 250 at 245.00 → 98.00 (the fixture).
fn alone(f: CertificateFacts, d: Declaration, h: Option<RiskHistory>, code: RiskCode) {
    let h = h.unwrap_or_else(|| history(&f, &d));
    let cfg = RiskConfig::default();
    let r = run(&f, &d, &h, &cfg);
    assert_eq!(r.reasons.iter().map(|r| r.code).collect::<Vec<_>>(), [code], "{r:#?}");
    assert_eq!(r.score, cfg.weights.of(code));
}

#[test]
fn baseline_scores_zero() {
    let (f, d) = (facts(), decl());
    let r = run(&f, &d, &history(&f, &d), &RiskConfig::default());
    assert_eq!(r, Risk::default());
}

#[test]
fn retroactive_issuance() {
    let mut f = facts();
    f.certificate.flags.issued_retroactively = true;
    alone(f, decl(), None, RiskCode::RetroactiveIssuance);
}

#[test]
fn back_to_back() {
    let mut f = facts();
    f.certificate.flags.back_to_back = Some(CertificateRef {
        country: cc("VN"),
        number: CertificateNumber::parse("VN-2026-000009").unwrap(),
    });
    alone(f, decl(), None, RiskCode::BackToBack);
}

#[test]
fn third_party_invoicing() {
    let mut f = facts();
    f.certificate.flags.third_party_invoicing = Some(f.certificate.exporter.clone());
    alone(f, decl(), None, RiskCode::ThirdPartyInvoicing);
}

#[test]
fn issuer_with_denied_verifications() {
    let (f, d) = (facts(), decl());
    let mut h = history(&f, &d);
    h.denied_by_issuer.insert(issuer_key(&f.certificate), 2);
    alone(f, d, Some(h), RiskCode::IssuerDenied);
}

#[test]
fn exporter_with_denied_verifications() {
    let (f, d) = (facts(), decl());
    let mut h = history(&f, &d);
    h.denied_by_exporter.insert(party_key(&f.certificate.exporter), 1);
    alone(f, d, Some(h), RiskCode::ExporterDenied);
}

#[test]
fn value_gap() {
    let f = facts();
    let mut d = decl();
    // Pro rata 98.00; 30 % → up to 127.40 / down to 68.60 passes.
    d.lines[0].customs_value = Money::parse("127.40", "USD").unwrap();
    let r = run(&f, &d, &history(&f, &d), &RiskConfig::default());
    assert!(r.reasons.is_empty(), "{r:?}");
    d.lines[0].customs_value = Money::parse("60.00", "USD").unwrap();
    alone(f, d, None, RiskCode::ValueGap);
}

#[test]
fn near_exhaustion() {
    let c = cert();
    // 200 of 250 used before; this line takes 30 → 20 left = 8 % < 10 %.
    let f = facts().with_ledger(Ledger::from_uses(&c, [("D0", 1, "200".parse().unwrap())]));
    let mut d = decl();
    d.lines[0].quantity = Quantity::parse("30", "KGM").unwrap();
    d.lines[0].customs_value = Money::parse("29.40", "USD").unwrap();
    alone(f.clone(), d.clone(), None, RiskCode::NearExhaustion);
    // Taking 20 leaves 30 = 12 %: no.
    d.lines[0].quantity = Quantity::parse("20", "KGM").unwrap();
    d.lines[0].customs_value = Money::parse("19.60", "USD").unwrap();
    assert!(run(&f, &d, &history(&f, &d), &RiskConfig::default()).reasons.is_empty());
    // The whole item in one go is not "near exhaustion".
    let mut d = decl();
    d.lines[0].quantity = Quantity::parse("250", "KGM").unwrap();
    d.lines[0].customs_value = Money::parse("245.00", "USD").unwrap();
    assert!(run(&facts(), &d, &history(&facts(), &d), &RiskConfig::default()).reasons.is_empty());
}

#[test]
fn issued_long_after_shipment() {
    let mut f = facts();
    let issued = f.certificate.issue_date().unwrap();
    f.certificate.transport.departure_date = issued - Duration::days(30);
    let d = decl();
    assert!(run(&f, &d, &history(&f, &d), &RiskConfig::default()).reasons.is_empty());
    f.certificate.transport.departure_date = issued - Duration::days(31);
    alone(f, d, None, RiskCode::LateIssuance);
}

#[test]
fn first_time_pair() {
    alone(facts(), decl(), Some(RiskHistory::default()), RiskCode::FirstTimePair);
}

#[test]
fn weights_come_from_configuration() {
    let mut f = facts();
    f.certificate.flags.issued_retroactively = true;
    f.certificate.flags.back_to_back = Some(CertificateRef {
        country: cc("VN"),
        number: CertificateNumber::parse("VN-2026-000009").unwrap(),
    });
    let d = decl();
    let h = RiskHistory::default();
    let default = run(&f, &d, &h, &RiskConfig::default());
    assert_eq!(default.score, 20 + 15 + 10);
    let cfg: RiskConfig =
        serde_json::from_str(r#"{"weights": {"retroactive_issuance": 50, "first_time_pair": 0}}"#).unwrap();
    assert_eq!(cfg.weights.back_to_back, 15, "unspecified weights keep their default");
    let r = run(&f, &d, &h, &cfg);
    assert_eq!(r.score, 50 + 15);
    assert!(r.has(RiskCode::FirstTimePair), "a zero weight still shows the reason");
    // A threshold from configuration.
    let cfg: RiskConfig = serde_json::from_str(r#"{"late_issuance_days": 0}"#).unwrap();
    assert!(run(&f, &d, &h, &cfg).has(RiskCode::LateIssuance));
    assert!(serde_json::from_str::<RiskConfig>(r#"{"unknown": 1}"#).is_err());
}

#[test]
fn a_rule_counts_once_per_declaration() {
    let mut f = facts();
    f.certificate.flags.issued_retroactively = true;
    let mut d = decl();
    let mut second = d.lines[0].clone();
    second.line_no = 2;
    d.lines.push(second);
    let r = run(&f, &d, &history(&f, &d), &RiskConfig::default());
    assert_eq!(r.score, 20);
}
