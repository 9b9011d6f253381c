//! One scenario per reason code, each changing one thing from a matching baseline, plus
//! several codes at once, whole declarations and the PENDING flow.

use originlink_customs::{
    CustomsPolicy, EcoRef, Ledger, Outcome, Policies, ReasonCode as R, VerificationStatus, decide,
    decide_declaration, is_candidate, normalize_name,
};
use originlink_model::{Agreement, CertificateNumber, HsCode, PartialUse, Quantity};

use crate::common::*;

#[test]
fn baseline_is_granted() {
    let d = decide1(&decl(), Some(&facts()));
    expect(&d, Outcome::Granted, &[]);
    assert_eq!(d.matched_item, Some(1));
    assert_eq!(d.consume, Some(Quantity::parse("100", "KGM").unwrap()));
}

#[test]
fn mfn_line_is_not_claimed() {
    let mut d = decl();
    d.lines[0].claimed_agreement = None;
    expect(&decide1(&d, Some(&facts())), Outcome::NotClaimed, &[]);
}

#[test]
fn co_not_received() {
    let d = decide1(&decl(), None);
    expect(&d, Outcome::Denied, &[R::CoNotReceived]);
    assert_eq!(d.reasons[0].field.as_deref(), Some("/lines/0/eco"));
    // Facts of another certificate count as not received.
    let mut d = decl();
    d.lines[0].eco = EcoRef::Issued {
        issuing_country: cc("KH"),
        number: CertificateNumber::parse("KH-2026-999999").unwrap(),
    };
    expect(&decide1(&d, Some(&facts())), Outcome::Denied, &[R::CoNotReceived]);
}

#[test]
fn co_invalid_carries_the_verification_reason() {
    let f = facts().with_status(VerificationStatus::Invalid { reason: "SIGNATURE_INVALID".into() });
    let d = decide1(&decl(), Some(&f));
    expect(&d, Outcome::Denied, &[R::CoInvalid]);
    assert_eq!(d.reasons[0].detail, "SIGNATURE_INVALID");
}

#[test]
fn co_not_verified_is_pending_not_denied() {
    let f = facts().with_status(VerificationStatus::CannotVerify { reason: "TRUST_LIST_UNAVAILABLE".into() });
    expect(&decide1(&decl(), Some(&f)), Outcome::Pending, &[R::CoNotVerified]);
}

#[test]
fn co_revoked() {
    let f = facts().with_status(VerificationStatus::Revoked);
    expect(&decide1(&decl(), Some(&f)), Outcome::Denied, &[R::CoRevoked]);
}

#[test]
fn co_superseded() {
    let f = facts().with_status(VerificationStatus::Superseded);
    expect(&decide1(&decl(), Some(&f)), Outcome::Denied, &[R::CoSuperseded]);
}

#[test]
fn co_expired_after_the_last_valid_day() {
    // Issued 2026-03-02, 12 months: valid through 2027-03-01.
    let mut d = decl();
    d.declaration_date = date(2027, 3, 1);
    expect(&decide1(&d, Some(&facts())), Outcome::Granted, &[]);
    d.declaration_date = date(2027, 3, 2);
    let dec = decide1(&d, Some(&facts()));
    expect(&dec, Outcome::Denied, &[R::CoExpired]);
    assert_eq!(dec.reasons[0].field.as_deref(), Some("/declaration_date"));
}

#[test]
fn co_expired_follows_the_country_policy() {
    let mut p = CustomsPolicy::from_settings(Agreement::Atiga.settings());
    p.validity_months = 6;
    let policies = Policies::builtin().with_country(cc("TH"), Agreement::Atiga, p);
    let mut d = decl();
    d.declaration_date = date(2026, 9, 2);
    let dec = decide(&d.lines[0], &d, Some(&facts()), &policies);
    expect(&dec, Outcome::Denied, &[R::CoExpired]);
}

#[test]
fn wrong_importing_country() {
    let mut d = decl();
    d.importing_country = cc("VN");
    expect(&decide1(&d, Some(&facts())), Outcome::Denied, &[R::WrongImportingCountry]);
}

#[test]
fn importer_mismatch() {
    let mut d = decl();
    d.importer.id = None;
    d.importer.name = "Bangkok Imports Co., Ltd.".into();
    let dec = decide1(&d, Some(&facts()));
    expect(&dec, Outcome::Denied, &[R::ImporterMismatch]);
    assert_eq!(dec.reasons[0].field.as_deref(), Some("/importer"));
    // Ids on both sides decide: same name, other id.
    let mut d = decl();
    d.importer.id = Some("TH-TIN-99999999".into());
    expect(&decide1(&d, Some(&facts())), Outcome::Denied, &[R::ImporterMismatch]);
}

#[test]
fn importer_names_are_normalized() {
    let mut d = decl();
    d.importer.id = None;
    for name in [
        "SIAM FRESH TRADING PUBLIC COMPANY LIMITED",
        "Siam  Fresh Trading Public Co.,Ltd",
        "siam fresh trading",
        "Siam Fresh Trading PCL.",
        "The Siam Fresh Trading",
    ] {
        d.importer.name = name.into();
        expect(&decide1(&d, Some(&facts())), Outcome::Granted, &[]);
    }
    for name in ["Siam Fresh Foods Co., Ltd.", "Siam Trading Public Co., Ltd.", "Fresh Trading Siam"] {
        d.importer.name = name.into();
        expect(&decide1(&d, Some(&facts())), Outcome::Denied, &[R::ImporterMismatch]);
    }
    assert_eq!(normalize_name("PT Nusantara Ekspor Mandiri"), "nusantara ekspor mandiri");
    assert_eq!(normalize_name("Osaka Precision Parts K.K."), "osaka precision parts");
    assert_eq!(normalize_name("Klang Valley Manufacturing Sdn. Bhd."), "klang valley manufacturing");
    assert_eq!(normalize_name("Co., Ltd."), "co ltd");
}

#[test]
fn hs_mismatch_compares_six_digits() {
    let mut d = decl();
    // A national code under the same subheading matches.
    d.lines[0].hs_code = HsCode::parse("1006.30.9990").unwrap();
    expect(&decide1(&d, Some(&facts())), Outcome::Granted, &[]);
    d.lines[0].hs_code = HsCode::parse("1006.40").unwrap();
    let dec = decide1(&d, Some(&facts()));
    expect(&dec, Outcome::Denied, &[R::HsMismatch]);
    assert_eq!(dec.matched_item, None);
    assert_eq!(dec.reasons[0].field.as_deref(), Some("/lines/0/hs_code"));
}

#[test]
fn unit_mismatch() {
    let mut d = decl();
    d.lines[0].quantity = Quantity::parse("0.1", "TNE").unwrap();
    expect(&decide1(&d, Some(&facts())), Outcome::Denied, &[R::UnitMismatch]);
}

#[test]
fn quantity_exceeded() {
    let mut d = decl();
    d.lines[0].quantity = Quantity::parse("250", "KGM").unwrap();
    expect(&decide1(&d, Some(&facts())), Outcome::Granted, &[]);
    d.lines[0].quantity = Quantity::parse("250.000001", "KGM").unwrap();
    let dec = decide1(&d, Some(&facts()));
    expect(&dec, Outcome::Denied, &[R::QuantityExceeded]);
    assert_eq!(dec.matched_item, Some(1));
}

#[test]
fn already_utilized_when_nothing_is_left() {
    let c = cert();
    let f = facts().with_ledger(Ledger::from_uses(&c, [("TH-IMP-2026-000000", 1, "250".parse().unwrap())]));
    expect(&decide1(&decl(), Some(&f)), Outcome::Denied, &[R::AlreadyUtilized]);
}

#[test]
fn already_utilized_under_partial_use_none() {
    let c = cert();
    // Another declaration took 10 T-shirts (item 2); item 1 is untouched.
    let f = facts().with_ledger(Ledger::from_uses(&c, [("TH-IMP-2026-000000", 2, "10".parse().unwrap())]));
    expect(&decide1(&decl(), Some(&f)), Outcome::Granted, &[]);
    let mut p = CustomsPolicy::from_settings(Agreement::Atiga.settings());
    p.partial_use = PartialUse::None;
    let policies = Policies::builtin().with_country(cc("TH"), Agreement::Atiga, p);
    let d = decl();
    let dec = decide(&d.lines[0], &d, Some(&f), &policies);
    expect(&dec, Outcome::Denied, &[R::AlreadyUtilized]);
    // The declaration that used it may use it again (re-decision, or another line).
    let f = facts().with_ledger(Ledger::from_uses(&c, [(d.number.as_str(), 2, "10".parse().unwrap())]));
    expect(&decide(&d.lines[0], &d, Some(&f), &policies), Outcome::Granted, &[]);
}

#[test]
fn invoice_mismatch() {
    let mut d = decl();
    d.lines[0].invoice_number = Some("inv-2026-00100".into());
    expect(&decide1(&d, Some(&facts())), Outcome::Granted, &[]);
    d.lines[0].invoice_number = Some("INV-2026-00999".into());
    expect(&decide1(&d, Some(&facts())), Outcome::Denied, &[R::InvoiceMismatch]);
    // No invoice on the line: nothing to compare.
    d.lines[0].invoice_number = None;
    expect(&decide1(&d, Some(&facts())), Outcome::Granted, &[]);
}

#[test]
fn agreement_mismatch() {
    let mut d = decl();
    d.lines[0].claimed_agreement = Some(Agreement::Rcep);
    expect(&decide1(&d, Some(&facts())), Outcome::Denied, &[R::AgreementMismatch]);
}

#[test]
fn late_proof_for_a_referenced_certificate() {
    // Declared 2026-03-10; allowance 0 days: received on the declaration date is on time.
    let mut f = facts();
    f.received_at = at(2026, 3, 10, 23, 59, 59);
    expect(&decide1(&decl(), Some(&f)), Outcome::Granted, &[]);
    f.received_at = at(2026, 3, 11, 0, 0, 0);
    expect(&decide1(&decl(), Some(&f)), Outcome::Denied, &[R::LateProof]);
    // A country that allows 5 days.
    let mut p = CustomsPolicy::from_settings(Agreement::Atiga.settings());
    p.late_proof_days = 5;
    let policies = Policies::builtin().with_country(cc("TH"), Agreement::Atiga, p);
    let d = decl();
    expect(&decide(&d.lines[0], &d, Some(&f), &policies), Outcome::Granted, &[]);
}

#[test]
fn late_proof_for_a_pending_line() {
    let mut d = decl();
    d.lines[0].eco = EcoRef::Pending;
    let mut f = facts();
    f.received_at = at(2026, 4, 9, 12, 0, 0); // declaration date + 30 days
    expect(&decide1(&d, Some(&f)), Outcome::Granted, &[]);
    f.received_at = at(2026, 4, 10, 0, 0, 0);
    expect(&decide1(&d, Some(&f)), Outcome::Denied, &[R::LateProof]);
}

#[test]
fn verification_denied() {
    let mut f = facts();
    f.verification_denied = true;
    expect(&decide1(&decl(), Some(&f)), Outcome::Denied, &[R::VerificationDenied]);
}

#[test]
fn pending_line_awaits_its_certificate() {
    let mut d = decl();
    d.lines[0].eco = EcoRef::Pending;
    let dec = decide1(&d, None);
    expect(&dec, Outcome::Pending, &[R::Pending]);
}

#[test]
fn several_codes_at_once() {
    let mut d = decl();
    d.importing_country = cc("VN");
    d.importer.id = None;
    d.importer.name = "Hanoi Trading JSC".into();
    d.declaration_date = date(2027, 6, 1);
    d.lines[0].claimed_agreement = Some(Agreement::Rcep);
    d.lines[0].quantity = Quantity::parse("300", "KGM").unwrap();
    d.lines[0].invoice_number = Some("X-1".into());
    let f = facts().with_status(VerificationStatus::Revoked);
    let dec = decide1(&d, Some(&f));
    expect(
        &dec,
        Outcome::Denied,
        &[
            R::CoRevoked,
            R::CoExpired,
            R::WrongImportingCountry,
            R::ImporterMismatch,
            R::AgreementMismatch,
            R::QuantityExceeded,
            R::InvoiceMismatch,
        ],
    );
    // Pending-type and denial-type together: denied.
    let f = facts().with_status(VerificationStatus::CannotVerify { reason: "X".into() });
    let mut d = decl();
    d.lines[0].invoice_number = Some("X-1".into());
    expect(&decide1(&d, Some(&f)), Outcome::Denied, &[R::CoNotVerified, R::InvoiceMismatch]);
}

#[test]
fn every_code_has_a_stable_distinct_wire_form() {
    let codes: std::collections::BTreeSet<_> = R::ALL.iter().map(|c| c.code()).collect();
    assert_eq!(codes.len(), R::ALL.len());
    for c in R::ALL {
        assert_eq!(R::parse(c.code()), Some(c));
        assert_eq!(serde_json::to_value(c).unwrap(), c.code());
    }
    let doc = include_str!("../../../../docs/reason-codes.md");
    for c in R::ALL {
        assert!(doc.contains(&format!("### `{}`", c.code())), "{} is not documented", c.code());
    }
}

#[test]
fn item_matching_prefers_an_item_with_enough_left() {
    // Two rice items: the first nearly used up.
    let mut c = cert();
    let mut second = c.items[0].clone();
    second.number = 4;
    c.items.push(second);
    let f = originlink_customs::CertificateFacts::new(c.clone(), at(2026, 3, 5, 0, 0, 0))
        .with_ledger(Ledger::from_uses(&c, [("TH-IMP-2026-000000", 1, "200".parse().unwrap())]));
    let dec = decide1(&decl(), Some(&f));
    expect(&dec, Outcome::Granted, &[]);
    assert_eq!(dec.matched_item, Some(4));
}

#[test]
fn lines_of_one_declaration_share_the_ledger() {
    let mut d = decl();
    let mut second = d.lines[0].clone();
    second.line_no = 2;
    second.quantity = Quantity::parse("150", "KGM").unwrap();
    let mut third = second.clone();
    third.line_no = 3;
    d.lines.push(second);
    d.lines.push(third);
    let mut certs = vec![facts()];
    let decisions = decide_declaration(&d, &mut certs, &Policies::builtin());
    let outcomes: Vec<_> = decisions.iter().map(|x| x.outcome).collect();
    // 100 + 150 = 250 fits; the third 150 does not.
    assert_eq!(outcomes, [Outcome::Granted, Outcome::Granted, Outcome::Denied]);
    assert_eq!(decisions[2].codes(), [R::AlreadyUtilized]);
    assert_eq!(decisions[2].reasons[0].field.as_deref(), Some("/lines/2/quantity"));
    assert_eq!(certs[0].ledger.remaining(1), Some("0".parse().unwrap()));
}

#[test]
fn pending_flow_matches_the_certificate_when_it_arrives() {
    let mut d = decl();
    d.lines[0].eco = EcoRef::Pending;
    let policies = Policies::builtin();
    // Filed first: pending.
    assert_eq!(decide1(&d, None).outcome, Outcome::Pending);
    // The certificate arrives two days later: it is a candidate, and the line is granted.
    let mut f = facts();
    f.received_at = at(2026, 3, 12, 8, 0, 0);
    assert!(is_candidate(&d.lines[0], &d, &f, &policies));
    expect(&decide1(&d, Some(&f)), Outcome::Granted, &[]);
    // Not a candidate: other importer, other subheading, revoked, or a line with a number.
    let mut other = d.clone();
    other.importer = originlink_customs::Importer { name: "Someone Else Ltd".into(), id: None };
    assert!(!is_candidate(&other.lines[0], &other, &f, &policies));
    let mut other = d.clone();
    other.lines[0].hs_code = HsCode::parse("0901.11").unwrap();
    assert!(!is_candidate(&other.lines[0], &other, &f, &policies));
    let revoked = f.clone().with_status(VerificationStatus::Revoked);
    assert!(!is_candidate(&d.lines[0], &d, &revoked, &policies));
    assert!(!is_candidate(&decl().lines[0], &decl(), &f, &policies));
}

#[test]
fn policies_are_configuration() {
    let p = Policies::builtin().with_country(cc("KH"), Agreement::Rcep, {
        let mut p = CustomsPolicy::from_settings(Agreement::Rcep.settings());
        p.partial_use = PartialUse::None;
        p
    });
    let json = serde_json::to_string(&p).unwrap();
    let back: Policies = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    assert_eq!(back.get(Agreement::Rcep, cc("KH")).partial_use, PartialUse::None);
    assert_eq!(back.get(Agreement::Rcep, cc("TH")).partial_use, PartialUse::Allowed);
    assert_eq!(back.get(Agreement::Rcep, cc("TH")).verification_deadline_days, 90);
}
