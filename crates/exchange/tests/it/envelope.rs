//! The envelope as an outside implementation meets it (`docs/protocol.md`): envelopes written
//! and signed the way the spec says, by code that is not ours (a JSON object, RFC 8785, a
//! detached JWS), in every form the spec allows; and each refusal with the code that names its
//! real reason.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{TimeZone, Utc};
use originlink_exchange::body::MessageBody;
use originlink_exchange::{
    CertRef, Endpoint, Envelope, ExchangeError, Header, MessageType, StatusBody, check_message,
};
use originlink_model::CountryCode;
use originlink_trust::{Cert, PrivateKey};
use serde_json::{Value, json};

struct Node {
    key: PrivateKey,
    cert: Cert,
}

fn node() -> Node {
    let today = Utc::now().date_naive();
    let issued = originlink_trust::keys::init_gateway("KH-NODE", today).expect("keys");
    let cert = Cert::from_der(&issued.cert_der).expect("cert");
    Node { key: issued.key, cert }
}

fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).expect("country")
}

fn sha256_hex(b: &[u8]) -> String {
    originlink_exchange::envelope::sha256_hex(b)
}

/// A `status.update` from KH to TH about a TH certificate, as JSON members, unsigned.
fn status_members(payload: &[u8]) -> Value {
    json!({
        "format": "originlink-envelope/1",
        "id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        "from": {"country": "KH", "node": "KH-MOC"},
        "to": {"country": "TH"},
        "type": "status.update",
        "certificate": {"country": "TH", "number": "TH-2026-000123", "version": 1},
        "payload_type": "application/json",
        "payload_sha256": sha256_hex(payload),
        "created_at": "2026-12-02T03:16:47.123456Z",
        "payload": STANDARD.encode(payload),
    })
}

fn status_payload() -> Vec<u8> {
    br#"{"status":"received","code":"43"}"#.to_vec()
}

/// Signs as the spec says, written independently of `Envelope::seal`: the RFC 8785 form of the
/// object without `payload` and `signature`, as a detached JWS; the object is sent as is.
fn sign_as_written(mut v: Value, key: &PrivateKey) -> Vec<u8> {
    let mut signed = v.clone();
    let o = signed.as_object_mut().expect("object");
    o.remove("payload");
    o.remove("signature");
    let canonical = originlink_trust::jcs::to_canonical(&signed);
    let jws = originlink_trust::jws::sign_detached(&canonical, key, &[]).expect("sign");
    v["signature"] = json!(jws);
    serde_json::to_vec(&v).expect("json")
}

fn refused(raw: &[u8]) -> ExchangeError {
    Envelope::parse(raw).expect_err("refused")
}

fn accepted(n: &Node, raw: &[u8]) -> Envelope {
    let env = Envelope::parse(raw).unwrap_or_else(|e| panic!("{e:?}: {}", String::from_utf8_lossy(raw)));
    env.verify_signature(&[&n.cert]).unwrap_or_else(|e| panic!("{e:?}: {}", String::from_utf8_lossy(raw)));
    env
}

#[test]
fn envelopes_we_seal_verify_and_sign_their_members_as_written() {
    let n = node();
    let header = Header {
        id: originlink_exchange::id::new_id(Utc::now()),
        correlation_id: None,
        from: Endpoint { country: cc("KH"), node: Some("KH-MOC".into()) },
        to: Endpoint { country: cc("TH"), node: None },
        kind: MessageType::StatusUpdate,
        certificate: Some(CertRef { country: cc("TH"), number: "TH-2026-000001".into(), version: 1 }),
        payload_type: "application/json".into(),
        // The wire carries microseconds.
        created_at: Utc.with_ymd_and_hms(2026, 12, 2, 3, 16, 47).unwrap()
            + chrono::Duration::microseconds(123_456),
    };
    let env = Envelope::seal(header.clone(), status_payload(), &n.key).expect("seal");
    let back = accepted(&n, &env.raw);
    assert_eq!(back.header, header.clone());
    // What the signature covers is the canonical form of the members as written: an outside
    // verifier computes the same bytes from the JSON alone.
    let mut v: Value = serde_json::from_slice(&env.raw).expect("json");
    let o = v.as_object_mut().expect("object");
    o.remove("payload");
    o.remove("signature");
    assert_eq!(back.signed_bytes(), originlink_trust::jcs::to_canonical(&v).as_slice());
    // The protected header is {"alg":"ES256"}.
    let protected = env.signature.split('.').next().expect("header");
    let protected = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(protected).expect("b64url");
    assert_eq!(protected, br#"{"alg":"ES256"}"#);
    assert!(env.signature.contains(".."), "detached");
}

#[test]
fn every_rfc3339_form_of_created_at_verifies_as_the_sender_signed_it() {
    let n = node();
    let payload = status_payload();
    let at = |h, mi, s, ns| {
        Utc.with_ymd_and_hms(2026, 12, 2, h, mi, s).unwrap() + chrono::Duration::nanoseconds(ns)
    };
    let forms = [
        ("2026-12-02T03:16:47.123456Z", at(3, 16, 47, 123_456_000)),
        ("2026-12-02T03:16:47.123456+00:00", at(3, 16, 47, 123_456_000)),
        ("2026-12-02T10:16:47.123456+07:00", at(3, 16, 47, 123_456_000)),
        ("2026-12-01T22:16:47-05:00", at(3, 16, 47, 0)),
        ("2026-12-02t03:16:47.123456z", at(3, 16, 47, 123_456_000)),
        // Java's Instant.toString(): as many fraction digits as needed, or none.
        ("2026-12-02T03:16:47.120Z", at(3, 16, 47, 120_000_000)),
        ("2026-12-02T03:16:47.1Z", at(3, 16, 47, 100_000_000)),
        ("2026-12-02T03:16:47Z", at(3, 16, 47, 0)),
        ("2026-12-02T03:16:47.123456789Z", at(3, 16, 47, 123_456_789)),
        ("2026-12-02T03:16:47.123456789999Z", at(3, 16, 47, 123_456_789)),
        ("2026-12-02T03:16:47.123456-00:00", at(3, 16, 47, 123_456_000)),
    ];
    for (text, instant) in forms {
        let mut v = status_members(&payload);
        v["created_at"] = json!(text);
        let env = accepted(&n, &sign_as_written(v, &n.key));
        assert_eq!(env.header.created_at, instant, "{text}");
    }
}

#[test]
fn null_optional_members_verify_and_mean_absent() {
    let n = node();
    let payload = status_payload();
    let mut v = status_members(&payload);
    v["correlation_id"] = Value::Null;
    v["from"]["node"] = Value::Null;
    let env = accepted(&n, &sign_as_written(v, &n.key));
    assert_eq!(env.header.correlation_id, None);
    assert_eq!(env.header.from.node, None);
    // And a present one, in upper-case hex (a UUID's text form allows it).
    let mut v = status_members(&payload);
    v["correlation_id"] = json!("0193A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B");
    accepted(&n, &sign_as_written(v, &n.key));
}

#[test]
fn upper_case_payload_hash_is_accepted() {
    let n = node();
    let payload = status_payload();
    let mut v = status_members(&payload);
    v["payload_sha256"] = json!(sha256_hex(&payload).to_ascii_uppercase());
    let env = accepted(&n, &sign_as_written(v, &n.key));
    assert_eq!(env.payload_sha256, sha256_hex(&payload));
}

#[test]
fn a_version_with_a_zero_fraction_is_the_integer_and_others_are_refused_as_not_integers() {
    let n = node();
    let payload = status_payload();
    for text in ["1.0", "1e0", "2.000"] {
        let mut v = status_members(&payload);
        v["certificate"]["version"] = serde_json::from_str(text).expect("number");
        let env = accepted(&n, &sign_as_written(v, &n.key));
        assert_eq!(env.header.certificate.expect("cert").version, text.parse::<f64>().unwrap() as i64);
    }
    for bad in [json!(1.5), json!("1"), json!(true), json!(1e300)] {
        let mut v = status_members(&payload);
        v["certificate"]["version"] = bad.clone();
        let e = refused(&sign_as_written(v, &n.key));
        assert_eq!(
            (e.code, e.field.as_deref()),
            ("ENVELOPE_MALFORMED", Some("certificate/version")),
            "{bad}"
        );
        assert!(e.message.contains("integer"), "{e:?}");
    }
    let mut v = status_members(&payload);
    v["certificate"]["version"] = json!(0);
    let e = refused(&sign_as_written(v, &n.key));
    assert_eq!((e.code, e.field.as_deref()), ("ENVELOPE_MALFORMED", Some("certificate/version")));
}

#[test]
fn an_unknown_member_is_refused_by_its_name() {
    let n = node();
    let payload = status_payload();
    let mut v = status_members(&payload);
    v["priority"] = json!("high");
    let e = refused(&sign_as_written(v, &n.key));
    assert_eq!((e.code, e.field.as_deref()), ("ENVELOPE_MALFORMED", Some("priority")), "{e:?}");
    let mut v = status_members(&payload);
    v["to"]["node"] = json!("TH-MOC");
    v["to"]["region"] = json!("ASEAN");
    let e = refused(&sign_as_written(v, &n.key));
    assert_eq!((e.code, e.field.as_deref()), ("ENVELOPE_MALFORMED", Some("to/region")), "{e:?}");
    let mut v = status_members(&payload);
    v["certificate"]["issued"] = json!("2026-12-01");
    let e = refused(&sign_as_written(v, &n.key));
    assert_eq!((e.code, e.field.as_deref()), ("ENVELOPE_MALFORMED", Some("certificate/issued")), "{e:?}");
    // Another protocol version is that, whatever its members.
    let mut v = status_members(&payload);
    v["format"] = json!("originlink-envelope/2");
    v["priority"] = json!("high");
    let e = refused(&sign_as_written(v, &n.key));
    assert_eq!((e.code, e.field.as_deref()), ("ENVELOPE_FORMAT_UNKNOWN", Some("format")));
}

#[test]
fn form_errors_get_form_codes_never_signature_codes() {
    let n = node();
    let payload = status_payload();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("created_at", json!("2026-12-02 03:16:47Z"), "created_at"),
        ("created_at", json!("2026-12-02T03:16:47"), "created_at"),
        ("created_at", json!("2026-13-02T03:16:47Z"), "created_at"),
        ("created_at", json!("2026-12-02T03:16:47.Z"), "created_at"),
        ("created_at", json!(1764645407), "created_at"),
        ("payload_sha256", json!("abc"), "payload_sha256"),
        ("payload_sha256", json!(format!("{}zz", &sha256_hex(&payload)[2..])), "payload_sha256"),
        ("payload", json!("not base64!"), "payload"),
        ("id", json!("not-a-uuid"), "id"),
        ("correlation_id", json!(7), "correlation_id"),
        ("payload_type", json!("text/plain"), "payload_type"),
        ("from", json!({"country": "kh"}), "from/country"),
        ("to", json!("TH"), "to"),
    ];
    for (member, value, field) in cases {
        let mut v = status_members(&payload);
        v[member] = value.clone();
        let e = refused(&sign_as_written(v, &n.key));
        assert_eq!((e.code, e.field.as_deref()), ("ENVELOPE_MALFORMED", Some(field)), "{member} = {value}");
    }
    // A missing member.
    let mut v = status_members(&payload);
    v.as_object_mut().expect("object").remove("created_at");
    let e = refused(&sign_as_written(v, &n.key));
    assert_eq!((e.code, e.field.as_deref()), ("ENVELOPE_MALFORMED", Some("created_at")));
    // A signature that is not a detached compact JWS, and one with a refused algorithm.
    for (sig, code) in [
        ("abc", "ENVELOPE_MALFORMED"),
        ("eyJhbGciOiJFUzI1NiJ9.e30.AAAA", "ENVELOPE_MALFORMED"),
        ("eyJhbGciOiJFUzI1NiIsImI2NCI6ZmFsc2V9..AAAA", "ENVELOPE_MALFORMED"),
        ("eyJhbGciOiJub25lIn0..", "ENVELOPE_SIGNATURE_ALGORITHM_NOT_ALLOWED"),
    ] {
        let mut v = status_members(&payload);
        v["signature"] = json!(sig);
        let e = refused(&serde_json::to_vec(&v).expect("json"));
        assert_eq!((e.code, e.field.as_deref()), (code, Some("signature")), "{sig}");
    }
    // A duplicate member name.
    let raw = sign_as_written(status_members(&payload), &n.key);
    let dup = [br#"{"id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c","#.as_slice(), &raw[1..]].concat();
    assert_eq!(refused(&dup).code, "ENVELOPE_MALFORMED");
    // Not an object.
    assert_eq!(refused(b"[]").code, "ENVELOPE_MALFORMED");
}

#[test]
fn the_payload_hash_and_the_signature_still_bind() {
    let n = node();
    let payload = status_payload();
    // A hash of other bytes (well formed): the payload is not the one signed for.
    let mut v = status_members(&payload);
    v["payload_sha256"] = json!(sha256_hex(b"other"));
    let e = refused(&sign_as_written(v, &n.key));
    assert_eq!((e.code, e.field.as_deref()), ("PAYLOAD_HASH_MISMATCH", Some("payload_sha256")));
    // A member changed after signing, even to an equal instant in another form: the signature
    // covers what was written.
    let raw = sign_as_written(status_members(&payload), &n.key);
    for (member, value) in [
        ("created_at", json!("2026-12-02T03:16:47.123456+00:00")),
        ("created_at", json!("2020-01-01T00:00:00.000000Z")),
        ("correlation_id", json!("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")),
    ] {
        let mut v: Value = serde_json::from_slice(&raw).expect("json");
        v[member] = value;
        let env = Envelope::parse(&serde_json::to_vec(&v).expect("json")).expect("well formed");
        let e = env.verify_signature(&[&n.cert]).expect_err("tampered");
        assert_eq!((e.code, e.field.as_deref()), ("ENVELOPE_SIGNATURE_INVALID", Some("signature")));
    }
    // Another key.
    let other = node();
    let env = Envelope::parse(&raw).expect("parse");
    assert_eq!(
        env.verify_signature(&[&other.cert]).expect_err("other key").code,
        "ENVELOPE_SIGNATURE_INVALID"
    );
}

/// A message of `kind` with `payload`, `certificate` and `correlation_id` as given, signed.
fn message(n: &Node, kind: &str, payload: &[u8], certificate: Value, correlation: Value) -> Envelope {
    let mut v = status_members(payload);
    v["type"] = json!(kind);
    v["certificate"] = certificate;
    v["correlation_id"] = correlation;
    accepted(n, &sign_as_written(v, &n.key))
}

fn th_cert() -> Value {
    json!({"country": "TH", "number": "TH-2026-000123", "version": 1})
}

fn kh_cert() -> Value {
    json!({"country": "KH", "number": "KH-2026-000001", "version": 1})
}

const REQUEST_ID: &str = "0193a1b2-0000-7000-8000-000000000001";

#[test]
fn each_type_gets_its_body_checked_in_one_place() {
    let n = node();
    let check = |kind: &str, payload: &[u8], cert: Value, corr: Value| {
        check_message(&message(&n, kind, payload, cert, corr))
    };
    let refusal = |r: Result<MessageBody, ExchangeError>| {
        let e = r.expect_err("refused");
        (e.code, e.field.unwrap_or_default())
    };
    // verification.request: certificate and deadline are required.
    let ok =
        br#"{"questions":["Show the bill of materials"],"deadline":"2026-12-09T03:16:47.123456789+00:00"}"#;
    match check("verification.request", ok, th_cert(), Value::Null).expect("valid") {
        MessageBody::VerificationRequest(b) => {
            assert_eq!(b.questions, ["Show the bill of materials"]);
            assert_eq!(
                b.deadline,
                Utc.with_ymd_and_hms(2026, 12, 9, 3, 16, 47).unwrap()
                    + chrono::Duration::nanoseconds(123_456_789)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        refusal(check("verification.request", ok, Value::Null, Value::Null)),
        ("ENVELOPE_MALFORMED", "certificate".into())
    );
    let no_deadline = br#"{"questions":["Show the bill of materials"]}"#;
    assert_eq!(
        refusal(check("verification.request", no_deadline, th_cert(), Value::Null)),
        ("PAYLOAD_MALFORMED", "payload/deadline".into())
    );
    let bad_deadline = br#"{"questions":["Q"],"deadline":"next week"}"#;
    assert_eq!(
        refusal(check("verification.request", bad_deadline, th_cert(), Value::Null)),
        ("PAYLOAD_MALFORMED", "payload/deadline".into())
    );
    let no_questions = br#"{"questions":[],"deadline":"2026-12-09T00:00:00Z"}"#;
    assert_eq!(
        refusal(check("verification.request", no_questions, th_cert(), Value::Null)),
        ("PAYLOAD_MALFORMED", "payload/questions".into())
    );
    assert_eq!(
        refusal(check("verification.request", ok, kh_cert(), Value::Null)),
        ("RECIPIENT_UNKNOWN", "certificate".into())
    );
    // verification.response: names its request; outcome confirmed or denied.
    let answer = br#"{"outcome":"confirmed","answer":"Origin confirmed"}"#;
    assert!(matches!(
        check("verification.response", answer, Value::Null, json!(REQUEST_ID)),
        Ok(MessageBody::VerificationResponse(_))
    ));
    assert_eq!(
        refusal(check("verification.response", answer, Value::Null, Value::Null)),
        ("ENVELOPE_MALFORMED", "correlation_id".into())
    );
    let maybe = br#"{"outcome":"maybe","answer":"?"}"#;
    assert_eq!(
        refusal(check("verification.response", maybe, Value::Null, json!(REQUEST_ID))),
        ("PAYLOAD_MALFORMED", "payload/outcome".into())
    );
    // status.update: a status body about a certificate the recipient issued.
    assert!(matches!(
        check("status.update", &status_payload(), th_cert(), Value::Null),
        Ok(MessageBody::Status(StatusBody { .. }))
    ));
    assert_eq!(
        refusal(check("status.update", br#"{"status":"lost"}"#, th_cert(), Value::Null)),
        ("PAYLOAD_MALFORMED", "payload".into())
    );
    assert_eq!(
        refusal(check("status.update", b"not json", th_cert(), Value::Null)),
        ("PAYLOAD_MALFORMED", "payload".into())
    );
    assert_eq!(
        refusal(check("status.update", &status_payload(), Value::Null, Value::Null)),
        ("ENVELOPE_MALFORMED", "certificate".into())
    );
    // certificate.revoked: a reason, about a certificate of the sender.
    let revoked = br#"{"reason":"issued in error"}"#;
    assert!(matches!(
        check("certificate.revoked", revoked, kh_cert(), Value::Null),
        Ok(MessageBody::Revoked(_))
    ));
    assert_eq!(
        refusal(check("certificate.revoked", revoked, th_cert(), Value::Null)),
        ("ISSUER_MISMATCH", "certificate".into())
    );
    assert_eq!(
        refusal(check("certificate.revoked", br#"{"why":"x"}"#, kh_cert(), Value::Null)),
        ("PAYLOAD_MALFORMED", "payload/why".into())
    );
    assert_eq!(
        refusal(check("certificate.revoked", br#"{"reason":"a\u0000b"}"#, kh_cert(), Value::Null)),
        ("PAYLOAD_MALFORMED", "payload".into())
    );
    // certificate.issued: the document is the recipient's to judge; the header is checked.
    assert_eq!(check("certificate.issued", b"<x/>", kh_cert(), Value::Null), Ok(MessageBody::Certificate));
    assert_eq!(
        refusal(check("certificate.issued", b"<x/>", Value::Null, Value::Null)),
        ("ENVELOPE_MALFORMED", "certificate".into())
    );
    assert_eq!(
        refusal(check("certificate.replaced", b"<x/>", th_cert(), Value::Null)),
        ("ISSUER_MISMATCH", "certificate".into())
    );
    // A JSON body under another media type.
    let mut v = status_members(revoked);
    v["type"] = json!("certificate.revoked");
    v["certificate"] = kh_cert();
    v["payload_type"] = json!("application/xml");
    let env = accepted(&n, &sign_as_written(v, &n.key));
    assert_eq!(refusal(check_message(&env)), ("ENVELOPE_MALFORMED", "payload_type".into()));
}

/// The block of `docs/protocol.md` that follows `<!-- test-vector:NAME -->`.
fn spec_block(name: &str) -> String {
    const SPEC: &str = include_str!("../../../../docs/protocol.md");
    let marker = format!("<!-- test-vector:{name} -->");
    let after = &SPEC[SPEC.find(&marker).unwrap_or_else(|| panic!("{marker} in the spec")) + marker.len()..];
    let start = after.find("```").expect("a code block") + 3;
    let body = &after[start..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    body[..body.find("```").expect("closing fence")].trim_end().to_owned()
}

/// The spec's test vector, signed by another implementation, verifies here: the envelope
/// parses, its signed bytes are the ones the spec prints, and the signature verifies with the
/// spec's certificate.
#[test]
fn spec_test_vector_verifies() {
    let cert = Cert::parse_all(spec_block("certificate").as_bytes()).expect("certificate").remove(0);
    let envelope = spec_block("envelope");
    let env = Envelope::parse(envelope.as_bytes()).expect("the spec's envelope parses");
    assert_eq!(std::str::from_utf8(env.signed_bytes()).expect("utf-8"), spec_block("signed-bytes"));
    env.verify_signature(&[&cert]).expect("the spec's envelope verifies");
    assert_eq!(env.payload, br#"{"status":"received","code":"43"}"#);
    assert_eq!(
        env.header.created_at,
        Utc.with_ymd_and_hms(2026, 12, 2, 3, 16, 47).unwrap() + chrono::Duration::milliseconds(123)
    );
    assert!(matches!(check_message(&env), Ok(MessageBody::Status(_))));
    // One character changed in a signed member: refused as a signature error.
    let tampered = envelope.replace("TH-2026-000123", "TH-2026-000124");
    let env = Envelope::parse(tampered.as_bytes()).expect("well formed");
    assert_eq!(env.verify_signature(&[&cert]).expect_err("tampered").code, "ENVELOPE_SIGNATURE_INVALID");
}
