//! Certificate status lists in verification: every combination of what the document's
//! signature says, what the issuer's list says of it, and which list is at hand.

use chrono::Duration;
use originlink_trust::statuslist::{self, Entry, EntryStatus, FORMAT, StatusList};
use originlink_trust::{CannotVerifyReason, InvalidReason, Verdict};

use crate::support::{at, authority, cc, date, json_doc, list, member, sign, verifier, xml_doc};

/// The list KH would publish at `issued_at` with `entries`, in force for a day.
fn kh_list(issued_at: chrono::DateTime<chrono::Utc>, entries: Vec<Entry>) -> StatusList {
    StatusList {
        format: FORMAT.into(),
        issuer: cc("KH"),
        sequence: 3,
        issued_at,
        next_update: issued_at + Duration::days(1),
        entries,
    }
}

fn entry(number: &str, status: EntryStatus, since: chrono::DateTime<chrono::Utc>) -> Entry {
    Entry {
        number: number.into(),
        version: 1,
        status,
        since,
        reason: (status == EntryStatus::Revoked).then(|| "issued on a wrong invoice".into()),
        superseded_by: (status == EntryStatus::Superseded).then_some(2),
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Valid,
    Invalid(InvalidReason),
    Cannot(CannotVerifyReason),
}

fn outcome(v: &Verdict) -> Expect {
    match v {
        Verdict::Valid(_) => Expect::Valid,
        Verdict::Invalid { reason, .. } => Expect::Invalid(*reason),
        Verdict::CannotVerify { reason, .. } => Expect::Cannot(*reason),
    }
}

#[test]
fn every_combination_of_signature_listing_and_list_at_hand() {
    let kh = authority("KH");
    let th = authority("TH");
    let v = verifier(&list(vec![member("KH", &kh), member("TH", &th)]));
    let now = at(2026, 1, 12);
    for (format, doc) in
        [("xml", xml_doc("KH", date(2026, 1, 10))), ("json", json_doc("KH", date(2026, 1, 10)))]
    {
        let signed = sign(&doc, &kh.signing);
        let id = statuslist::identify(&signed).expect("the signed document reads");
        assert_eq!((id.issuer, id.version), (cc("KH"), 1), "{format}");
        let tampered = {
            let mut t = String::from_utf8(signed.clone()).expect("utf-8");
            let name = "Angkor Agro Exports";
            assert!(t.contains(name), "{format}: the sample names its exporter");
            t = t.replacen(name, "Angkor Agro Imports", 1);
            t.into_bytes()
        };
        let listings: [(&str, Vec<Entry>, Expect); 4] = [
            ("not listed", vec![entry("KH-2099-999999", EntryStatus::Revoked, now)], Expect::Valid),
            (
                "revoked",
                vec![entry(&id.number, EntryStatus::Revoked, now - Duration::hours(2))],
                Expect::Invalid(InvalidReason::Revoked),
            ),
            (
                "superseded",
                vec![entry(&id.number, EntryStatus::Superseded, now - Duration::hours(2))],
                Expect::Invalid(InvalidReason::Superseded),
            ),
            (
                "revoked later than now",
                vec![entry(&id.number, EntryStatus::Revoked, now + Duration::hours(1))],
                Expect::Valid,
            ),
        ];
        for (what, entries, in_force) in listings {
            let fresh = kh_list(now - Duration::hours(1), entries.clone());
            let stale = kh_list(now - Duration::days(2), entries.clone());
            let fresh_signed = fresh.sign(&kh.signing.key, &kh.signing.cert_der).expect("sign");
            let stale_signed = stale.sign(&kh.signing.key, &kh.signing.cert_der).expect("sign");
            // KH's entries under TH's name and key: the list of another issuer.
            let mut th_list = fresh.clone();
            th_list.issuer = cc("TH");
            let th_signed = th_list.sign(&th.signing.key, &th.signing.cert_der).expect("sign");
            // KH's list signed with TH's key: refused.
            let wrong_key = fresh.sign(&th.signing.key, &th.signing.cert_der).expect("sign");
            let changed =
                String::from_utf8(fresh_signed.clone()).expect("utf-8").replacen("KH-20", "KH-21", 1);
            assert_ne!(changed.as_bytes(), fresh_signed.as_slice());
            let unknown = Expect::Cannot(CannotVerifyReason::StatusUnknown);
            let at_hand: [(&str, Option<&[u8]>, Expect); 6] = [
                ("in force", Some(&fresh_signed), in_force),
                ("stale", Some(&stale_signed), unknown),
                ("none", None, unknown),
                ("another issuer's", Some(&th_signed), unknown),
                ("signed with another issuer's key", Some(&wrong_key), unknown),
                ("changed after signing", Some(changed.as_bytes()), unknown),
            ];
            for (which, bytes, expect) in at_hand {
                let list = match bytes {
                    None => Err("no status list".to_owned()),
                    Some(b) => StatusList::verified(b, &v, now).map_err(|e| e.to_string()),
                };
                let list = list.as_ref().map_err(String::as_str);
                let good = statuslist::with_status(v.verify(&signed, now).expect("reads"), &id, list, now);
                assert_eq!(outcome(&good), expect, "{format}, {what}, list {which}: {good:?}");
                // A signature that fails stays INVALID for its own reason, whatever the list says.
                let bad = statuslist::with_status(v.verify(&tampered, now).expect("reads"), &id, list, now);
                let broken =
                    if format == "xml" { InvalidReason::Tampered } else { InvalidReason::BadSignature };
                assert_eq!(outcome(&bad), Expect::Invalid(broken), "{format}, {what}, {which}");
            }
        }
    }
}

#[test]
fn a_list_is_taken_only_from_its_issuers_registered_signing_key() {
    let kh = authority("KH");
    let th = authority("TH");
    let v = verifier(&list(vec![member("KH", &kh), member("TH", &th)]));
    let now = at(2026, 1, 12);
    let fresh = kh_list(now - Duration::hours(1), vec![]);
    let ok = fresh.sign(&kh.signing.key, &kh.signing.cert_der).expect("sign");
    assert_eq!(StatusList::verified(&ok, &v, now).expect("KH's own key"), fresh);
    let code = |b: &[u8]| StatusList::verified(b, &v, now).expect_err("refused").code();
    // TH's key on KH's list: the signer's country is not the issuer's.
    assert_eq!(code(&fresh.sign(&th.signing.key, &th.signing.cert_der).expect("sign")), "COUNTRY_MISMATCH");
    // The CA key is not a document-signing key.
    assert_eq!(code(&fresh.sign(&kh.ca.key, &kh.ca.cert_der).expect("sign")), "WRONG_KEY_USAGE");
    // A country outside the trust list.
    let vn = authority("VN");
    let mut vn_list = fresh.clone();
    vn_list.issuer = cc("VN");
    assert_eq!(code(&vn_list.sign(&vn.signing.key, &vn.signing.cert_der).expect("sign")), "UNTRUSTED_ISSUER");
    assert_eq!(code(&serde_json::to_vec(&fresh).expect("json")), "STATUS_LIST_UNSIGNED");
    assert_eq!(code(b"[1,2"), "STATUS_LIST_MALFORMED");
}
