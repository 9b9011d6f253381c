//! The signed trust list: accepted only from the expected operator key.

use originlink_trust::trustlist::TrustList;
use originlink_trust::{Cert, jws};

use crate::support::{authority, list, member, operator};

fn op_cert(o: &originlink_trust::Issued) -> Cert {
    Cert::from_der(&o.cert_der).unwrap()
}

#[test]
fn a_list_signed_by_the_operator_round_trips() {
    let op = operator();
    let kh = authority("KH");
    let l = list(vec![member("KH", &kh)]);
    let signed = l.sign(&op.key, &op.cert_der).unwrap();
    let back = TrustList::from_signed(&signed, &[op_cert(&op)]).unwrap();
    assert_eq!(back, l);
}

#[test]
fn unsigned_list_is_refused() {
    let op = operator();
    let l = list(vec![member("KH", &authority("KH"))]);
    let bare = serde_json::to_vec(&l).unwrap();
    let e = TrustList::from_signed(&bare, &[op_cert(&op)]).unwrap_err();
    assert_eq!(e.code(), "TRUST_LIST_UNSIGNED");
}

#[test]
fn list_signed_by_another_key_is_refused() {
    let op = operator();
    let mallory = operator();
    let l = list(vec![member("KH", &authority("KH"))]);
    let signed = l.sign(&mallory.key, &mallory.cert_der).unwrap();
    let e = TrustList::from_signed(&signed, &[op_cert(&op)]).unwrap_err();
    assert_eq!(e.code(), "TRUST_LIST_WRONG_KEY");
    // Claiming the operator's certificate in x5c while signing with another key fails too.
    let json = serde_json::to_vec(&l).unwrap();
    let forged = jws::sign_json(&json, &mallory.key, std::slice::from_ref(&op.cert_der)).unwrap();
    let e = TrustList::from_signed(&forged, &[op_cert(&op)]).unwrap_err();
    assert_eq!(e.code(), "TRUST_LIST_BAD_SIGNATURE");
    // And with no x5c at all.
    let forged = jws::sign_json(&json, &mallory.key, &[]).unwrap();
    assert_eq!(TrustList::from_signed(&forged, &[op_cert(&op)]).unwrap_err().code(), "TRUST_LIST_WRONG_KEY");
    // No configured operator: nothing is accepted.
    let good = l.sign(&op.key, &op.cert_der).unwrap();
    assert_eq!(TrustList::from_signed(&good, &[]).unwrap_err().code(), "TRUST_LIST_NO_OPERATOR_KEY");
}

#[test]
fn a_changed_list_is_refused() {
    let op = operator();
    let kh = authority("KH");
    let signed = list(vec![member("KH", &kh)]).sign(&op.key, &op.cert_der).unwrap();
    let text = String::from_utf8(signed).unwrap();
    // Someone extends the list's life, or adds a revocation by hand.
    let changed = text.replace("2026-01-31T12:00:00Z", "2027-01-31T12:00:00Z");
    assert_ne!(changed, text);
    let e = TrustList::from_signed(changed.as_bytes(), &[op_cert(&op)]).unwrap_err();
    assert_eq!(e.code(), "TRUST_LIST_BAD_SIGNATURE");
}

#[test]
fn unknown_members_in_the_list_are_refused_even_when_signed() {
    let op = operator();
    let mut v = serde_json::to_value(list(vec![])).unwrap();
    v["surprise"] = serde_json::json!(1);
    let signed =
        jws::sign_json(&serde_json::to_vec(&v).unwrap(), &op.key, std::slice::from_ref(&op.cert_der))
            .unwrap();
    assert_eq!(TrustList::from_signed(&signed, &[op_cert(&op)]).unwrap_err().code(), "TRUST_LIST_MALFORMED");
}
