//! Envelopes as an outside implementation writes them (`docs/protocol.md`): every form the
//! spec allows is accepted and forwarded byte for byte; what the recipient would refuse is
//! refused at the door, with the code that names the real reason.

use chrono::Utc;
use originlink_exchange::{Endpoint, Envelope, Header, MessageType};
use originlink_trust::PrivateKey;
use serde_json::{Value, json};

use crate::support::*;

/// The members of an envelope from KH to TH of `kind`, unsigned (the payload encoded and
/// hashed by `Envelope::seal`, the rest written here).
fn members(kind: &str, certificate: Value, payload: &[u8]) -> Value {
    let header = Header {
        id: originlink_exchange::id::new_id(Utc::now()),
        correlation_id: None,
        from: Endpoint { country: cc("KH"), node: Some("KH-NODE".into()) },
        to: Endpoint { country: cc("TH"), node: None },
        kind: MessageType::parse(kind).expect("type"),
        certificate: None,
        payload_type: "application/json".into(),
        created_at: Utc::now(),
    };
    let key = PrivateKey::generate_p256().expect("key");
    let env = Envelope::seal(header, payload.to_vec(), &key).expect("seal");
    let mut v: Value = serde_json::from_slice(&env.raw).expect("json");
    v["certificate"] = certificate;
    v.as_object_mut().expect("object").remove("signature");
    v
}

/// Signed as the spec says (RFC 8785 of the members as written, without `payload` and
/// `signature`; a detached JWS), written independently of `Envelope::seal`.
fn signed(mut v: Value, key: &PrivateKey) -> Vec<u8> {
    let mut m = v.clone();
    let o = m.as_object_mut().expect("object");
    o.remove("payload");
    o.remove("signature");
    let jws = originlink_trust::jws::sign_detached(&originlink_trust::jcs::to_canonical(&m), key, &[])
        .expect("sign");
    v["signature"] = json!(jws);
    serde_json::to_vec(&v).expect("json")
}

fn th_cert() -> Value {
    json!({"country": "TH", "number": "TH-2026-000001", "version": 1})
}

fn status() -> Vec<u8> {
    br#"{"status":"received","code":"43"}"#.to_vec()
}

/// Every encoding variant the spec allows is accepted, stored and forwarded as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_allowed_form_is_accepted_and_forwarded_byte_for_byte() {
    let db = sqlite_db();
    let net = Net::new(&db.url, Options::default());
    let th = net.start_th(Mode::Deliver).await;
    let gw = net.start().await;
    let kh = net.client(&gw, &net.kh);
    let key = net.kh.key();
    let variant = |f: &dyn Fn(&mut Value)| {
        let mut v = members("status.update", th_cert(), &status());
        f(&mut v);
        signed(v, &key)
    };
    let now = Utc::now();
    let envs = [
        variant(&|v| v["created_at"] = json!(now.to_rfc3339())),
        variant(&|v| v["created_at"] = json!(now.format("%Y-%m-%dt%H:%M:%S%.6fz").to_string())),
        variant(&|v| v["created_at"] = json!(now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())),
        variant(&|v| v["created_at"] = json!(now.format("%Y-%m-%dT%H:%M:%SZ").to_string())),
        variant(&|v| v["correlation_id"] = Value::Null),
        variant(&|v| {
            let h = v["payload_sha256"].as_str().expect("hash").to_ascii_uppercase();
            v["payload_sha256"] = json!(h);
        }),
        variant(&|v| v["certificate"]["version"] = json!(1.0)),
    ];
    let raws: Vec<&[u8]> = envs.iter().map(Vec::as_slice).collect();
    let (s, b) = post_batch(&kh, &raws).await;
    assert_eq!(s, 200, "{b}");
    for (i, a) in b["acks"].as_array().expect("acks").iter().enumerate() {
        assert_eq!(a["result"], "accepted", "variant {i}: {a}");
    }
    eventually("TH has all of them", || async { th.applied().len() == envs.len() }).await;
    let got = th.got.lock().unwrap().raw.clone();
    for e in &envs {
        assert!(got.contains(e), "forwarded byte for byte");
    }
    gw.stop().await;
}

/// What the recipient would refuse is refused at the door with the code of the real reason,
/// and nothing of it is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn type_bodies_and_member_forms_are_refused_at_the_door_with_their_codes() {
    let db = sqlite_db();
    let net = Net::new(&db.url, Options::default());
    let gw = net.start().await;
    let kh = net.client(&gw, &net.kh);
    let key = net.kh.key();
    let request = br#"{"questions":["Show the bill of materials"],"deadline":"2026-12-09T00:00:00+07:00"}"#;
    let no_deadline = br#"{"questions":["Show the bill of materials"]}"#;
    let with = |v: Value, f: &dyn Fn(&mut Value)| {
        let mut v = v;
        f(&mut v);
        signed(v, &key)
    };
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        // A verification request needs a certificate and a deadline.
        (
            signed(members("verification.request", Value::Null, request), &key),
            "ENVELOPE_MALFORMED",
            "certificate",
        ),
        (
            signed(members("verification.request", th_cert(), no_deadline), &key),
            "PAYLOAD_MALFORMED",
            "payload/deadline",
        ),
        // A verification response names its request.
        (
            signed(
                members("verification.response", Value::Null, br#"{"outcome":"denied","answer":"no"}"#),
                &key,
            ),
            "ENVELOPE_MALFORMED",
            "correlation_id",
        ),
        // A status body that is not one.
        (
            signed(members("status.update", th_cert(), br#"{"status":"lost"}"#), &key),
            "PAYLOAD_MALFORMED",
            "payload",
        ),
        // A revocation of another country's certificate.
        (
            signed(members("certificate.revoked", th_cert(), br#"{"reason":"x"}"#), &key),
            "ISSUER_MISMATCH",
            "certificate",
        ),
        // An unknown member, named.
        (
            with(members("status.update", th_cert(), &status()), &|v| v["priority"] = json!(1)),
            "ENVELOPE_MALFORMED",
            "priority",
        ),
        // A version that is not an integer.
        (
            with(members("status.update", th_cert(), &status()), &|v| {
                v["certificate"]["version"] = json!(1.5)
            }),
            "ENVELOPE_MALFORMED",
            "certificate/version",
        ),
        // A created_at that is not RFC 3339: a form error, not a signature error.
        (
            with(members("status.update", th_cert(), &status()), &|v| {
                v["created_at"] = json!("02/12/2026 03:00")
            }),
            "ENVELOPE_MALFORMED",
            "created_at",
        ),
        // A payload hash that is not hex at all.
        (
            with(members("status.update", th_cert(), &status()), &|v| {
                v["payload_sha256"] = json!("sha256:abc")
            }),
            "ENVELOPE_MALFORMED",
            "payload_sha256",
        ),
    ];
    let mut ids = Vec::new();
    for (raw, code, field) in &cases {
        let (s, b) = post_batch(&kh, &[raw.as_slice()]).await;
        assert_eq!(s, 200, "{b}");
        let a = &b["acks"][0];
        assert_eq!(
            (a["result"].as_str(), a["code"].as_str(), a["field"].as_str()),
            (Some("refused"), Some(*code), Some(*field)),
            "{a}"
        );
        let id = serde_json::from_slice::<Value>(raw).expect("json")["id"].as_str().expect("id").to_owned();
        assert_eq!(a["id"].as_str(), Some(id.as_str()));
        ids.push(id);
    }
    // The complete request is accepted.
    let good = signed(members("verification.request", th_cert(), request), &key);
    let (_, b) = post_batch(&kh, &[good.as_slice()]).await;
    assert_eq!(b["acks"][0]["result"], "accepted", "{b}");
    for id in &ids {
        assert!(gw.queue.track(id).await.expect("track").is_none(), "{id} was refused but stored");
    }
    let (_, m) = call(&kh, hyper::Method::GET, "/metrics", b"").await;
    let m = m.as_str().expect("text").to_owned();
    assert!(m.contains("originlink_gateway_refused_total{code=\"PAYLOAD_MALFORMED\"} 2"), "{m}");
    gw.stop().await;
}
