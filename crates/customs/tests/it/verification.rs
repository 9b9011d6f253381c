//! Verification requests: deadline from the agreement, overrides, overdue at deadline + 1 s,
//! transitions, and denial applied to the lines that used the certificate.

use chrono::Duration;
use originlink_customs::{
    CertificateUse, CustomsPolicy, Outcome, Policies, ReasonCode, VerificationRequest, VerificationState,
    View, apply_denial, overdue,
};
use originlink_model::{Agreement, CertificateNumber, CertificateRef};

use crate::common::*;

fn cref(n: &str) -> CertificateRef {
    CertificateRef { country: cc("KH"), number: CertificateNumber::parse(n).unwrap() }
}

fn raise(n: &str, deadline_days: Option<u32>) -> VerificationRequest {
    VerificationRequest::raise(
        cref(n),
        Agreement::Rcep,
        cc("TH"),
        vec!["Please provide the cost statement for item 1.".into()],
        at(2026, 4, 1, 10, 0, 0),
        &Policies::builtin(),
        deadline_days,
    )
}

#[test]
fn deadline_from_the_agreement() {
    let r = raise("KH-2026-000001", None);
    // RCEP: 90 days from agreements.json.
    assert_eq!(Agreement::Rcep.settings().verification_deadline_days, 90);
    assert_eq!(r.deadline, at(2026, 6, 30, 10, 0, 0));
    assert_eq!(r.state, VerificationState::Open);
}

#[test]
fn deadline_overrides() {
    assert_eq!(raise("KH-2026-000001", Some(30)).deadline, at(2026, 5, 1, 10, 0, 0));
    let mut p = CustomsPolicy::from_settings(Agreement::Rcep.settings());
    p.verification_deadline_days = 60;
    let policies = Policies::builtin().with_country(cc("TH"), Agreement::Rcep, p);
    let r = VerificationRequest::raise(
        cref("KH-2026-000001"),
        Agreement::Rcep,
        cc("TH"),
        vec![],
        at(2026, 4, 1, 10, 0, 0),
        &policies,
        None,
    );
    assert_eq!(r.deadline, at(2026, 5, 31, 10, 0, 0));
}

#[test]
fn overdue_one_second_after_the_deadline() {
    let r = raise("KH-2026-000001", None);
    let deadline = r.deadline;
    assert_eq!(r.view(deadline), View::Open);
    assert!(!r.is_overdue(deadline));
    assert_eq!(r.view(deadline + Duration::seconds(1)), View::Overdue);
    let later = raise("KH-2026-000002", Some(120));
    let early = raise("KH-2026-000003", Some(10));
    let all = vec![r.clone(), later, early.clone()];
    let list = overdue(&all, deadline + Duration::seconds(1));
    assert_eq!(
        list.iter().map(|r| r.certificate.number.as_str()).collect::<Vec<_>>(),
        ["KH-2026-000003", "KH-2026-000001"]
    );
    // Answered requests are no longer overdue, however late.
    let mut answered = r;
    answered.answer("Cost statement attached.", deadline + Duration::days(3)).unwrap();
    assert_eq!(answered.view(deadline + Duration::days(10)), View::Answered);
    assert!(overdue(&[answered], deadline + Duration::days(10)).is_empty());
    let _ = early;
}

#[test]
fn transitions() {
    let t = at(2026, 4, 2, 0, 0, 0);
    let mut r = raise("KH-2026-000001", None);
    assert_eq!(r.confirm(t).unwrap_err().code, "VERIFICATION_TRANSITION");
    assert_eq!(r.deny("no answer", t).unwrap_err().code, "VERIFICATION_NOT_OVERDUE");
    r.answer("All originating.", t).unwrap();
    assert_eq!(r.answer("again", t).unwrap_err().code, "VERIFICATION_TRANSITION");
    r.confirm(t).unwrap();
    assert_eq!(r.view(t), View::Confirmed);
    assert_eq!(r.deny("x", t).unwrap_err().code, "VERIFICATION_TRANSITION");
    // Open → denied once overdue.
    let mut r = raise("KH-2026-000001", None);
    r.deny("no answer within the deadline", r.deadline + Duration::seconds(1)).unwrap();
    assert_eq!(r.view(r.deadline), View::Denied);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["state"]["state"], "denied");
}

#[test]
fn denial_applies_to_the_lines_that_used_the_certificate() {
    let d = decl();
    let granted = decide1(&d, Some(&facts()));
    assert_eq!(granted.outcome, Outcome::Granted);
    let number = cert().number.unwrap();
    let mut uses = vec![
        CertificateUse {
            declaration: d.number.clone(),
            certificate: cref(number.as_str()),
            decision: granted.clone(),
        },
        CertificateUse {
            declaration: "TH-IMP-2026-000002".into(),
            certificate: cref("KH-2026-000777"),
            decision: granted.clone(),
        },
    ];
    let mut r = raise(number.as_str(), None);
    // Not denied yet: nothing changes.
    assert_eq!(apply_denial(&r, &mut uses), 0);
    r.answer("The exporter could not show the cost statement.", at(2026, 5, 1, 0, 0, 0)).unwrap();
    assert_eq!(apply_denial(&r, &mut uses), 0);
    r.deny("origin not established", at(2026, 5, 2, 0, 0, 0)).unwrap();
    assert_eq!(apply_denial(&r, &mut uses), 1);
    assert_eq!(uses[0].decision.outcome, Outcome::Denied);
    assert_eq!(uses[0].decision.codes(), [ReasonCode::VerificationDenied]);
    assert_eq!(uses[0].decision.consume, None);
    assert_eq!(uses[1].decision, granted, "another certificate's line is untouched");
    // Applying twice changes nothing more.
    assert_eq!(apply_denial(&r, &mut uses), 0);
}
