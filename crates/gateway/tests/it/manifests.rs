//! Protocol version 2 at the gateway: batches with the sender's signed manifest. One
//! verification per manifest stands for its envelopes' signatures; a manifest that does not
//! verify, or that its client may not pass on, vouches for nothing and the envelopes are
//! checked one by one; the manifests of what was accepted go on with it to the recipient.

use originlink_exchange::body::BatchV2;
use originlink_exchange::{Endpoint, Envelope, MESSAGES_PATH_V2, Manifest};
use serde_json::Value;

use crate::support::*;

async fn post_v2(
    c: &originlink_exchange::client::PeerClient,
    manifests: &[&[u8]],
    envs: &[&[u8]],
) -> (u16, Value) {
    let body = BatchV2::encode(manifests.iter().copied(), envs.iter().copied());
    let (status, bytes) = c.request(hyper::Method::POST, MESSAGES_PATH_V2, body).await.expect("request");
    (status.as_u16(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// `e` with the signature of `other`: well formed, but its own signature is wrong.
fn wrong_signature(e: &Envelope, other: &Envelope) -> Vec<u8> {
    let text = String::from_utf8(e.raw.clone()).expect("utf-8");
    text.replace(&e.signature, &other.signature).into_bytes()
}

fn results(v: &Value) -> Vec<(String, String)> {
    v["acks"]
        .as_array()
        .expect("acks")
        .iter()
        .map(|a| (a["result"].as_str().unwrap_or("").to_owned(), a["code"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// A gateway on SQLite with TH's node taking deliveries, and KH's client.
async fn kh_to_th() -> (TestDb, Net, FakeNode, Running, originlink_exchange::client::PeerClient) {
    let db = sqlite_db();
    let net = Net::new(&db.url, Options::default());
    let th = net.start_th(Mode::Deliver).await;
    let gw = net.start().await;
    let kh = net.client(&gw, &net.kh);
    (db, net, th, gw, kh)
}

#[tokio::test]
async fn one_manifest_vouches_for_its_senders_envelopes_and_travels_on_with_them() {
    let (_db, net, th, gw, kh) = kh_to_th().await;
    let envs: Vec<_> = (0..6).map(|_| net.envelope("KH", "TH", &net.kh.key())).collect();
    let kh_at = |key: &originlink_trust::PrivateKey, from: &str, list: &[&[u8]]| {
        Manifest::seal(
            Endpoint { country: cc(from), node: None },
            list.iter().copied(),
            key,
            chrono::Utc::now(),
        )
        .expect("manifest")
    };

    // A manifest KH signed lists three envelopes, one of them with a wrong signature of its
    // own: all three are accepted on the manifest's one signature.
    let broken = wrong_signature(&envs[2], &envs[0]);
    let batch: Vec<&[u8]> = vec![&envs[0].raw, &envs[1].raw, &broken];
    let m = kh_at(&net.kh.key(), "KH", &batch);
    let (status, body) = post_v2(&kh, &[&m.raw], &batch).await;
    assert_eq!(status, 200, "{body}");
    assert!(results(&body).iter().all(|(r, _)| r == "accepted"), "{body}");
    assert!(body.get("manifests").is_none(), "no manifest refused: {body}");
    let tracked = gw.queue.track(&envs[0].header.id).await.expect("track").expect("stored");
    assert_eq!(tracked.manifest, Some(m.sha256()), "its tracking names the manifest that vouched for it");

    // A manifest signed by TH, passed on by KH's node: KH may not vouch with it. Its
    // envelopes are checked by their own signatures: the good one passes, the broken one not.
    let broken = wrong_signature(&envs[4], &envs[0]);
    let batch: Vec<&[u8]> = vec![&envs[3].raw, &broken];
    let m_th = kh_at(&net.th.key(), "TH", &batch);
    let (status, body) = post_v2(&kh, &[&m_th.raw], &batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["manifests"][0]["code"], "SENDER_MISMATCH", "{body}");
    assert_eq!(
        results(&body),
        vec![("accepted".into(), String::new()), ("refused".into(), "ENVELOPE_SIGNATURE_INVALID".into())]
    );
    let tracked = gw.queue.track(&envs[3].header.id).await.expect("track").expect("stored");
    assert_eq!(tracked.manifest, None, "checked by its own signature");
    assert!(serde_json::to_value(&tracked).expect("json").get("manifest").is_none());

    // A manifest whose list was changed after signing does not verify, and vouches for nothing.
    let broken = wrong_signature(&envs[5], &envs[0]);
    let batch: Vec<&[u8]> = vec![&broken];
    let m = kh_at(&net.kh.key(), "KH", &[&envs[5].raw]);
    let h_signed = originlink_exchange::envelope::sha256_hex(&envs[5].raw);
    let h_sent = originlink_exchange::envelope::sha256_hex(&broken);
    let tampered = String::from_utf8(m.raw.clone()).expect("utf-8").replace(&h_signed, &h_sent);
    let (status, body) = post_v2(&kh, &[tampered.as_bytes()], &batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["manifests"][0]["code"], "MANIFEST_SIGNATURE_INVALID", "{body}");
    assert_eq!(body["manifests"][0]["field"], "signature", "{body}");
    assert_eq!(results(&body), vec![("refused".into(), "ENVELOPE_SIGNATURE_INVALID".into())]);

    // A manifest that is not one: the whole request is refused, naming the member.
    let bad = String::from_utf8(m.raw.clone()).expect("utf-8").replace(&m.id, "not-a-uuid");
    let (status, body) = post_v2(&kh, &[bad.as_bytes()], &[&envs[5].raw]).await;
    assert_eq!(
        (status, body["code"].as_str(), body["field"].as_str()),
        (400, Some("MANIFEST_MALFORMED"), Some("manifests/0/id")),
        "{body}"
    );
    // More manifests than envelopes.
    let (status, body) = post_v2(&kh, &[&m.raw, &m.raw], &[&envs[5].raw]).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("BATCH_MALFORMED")), "{body}");

    // The four accepted reach TH over version 2, with the one manifest that vouched for three
    // of them, byte for byte as KH signed it.
    eventually("TH has the four accepted", || async { th.applied().len() == 4 }).await;
    let manifests = th.got.lock().unwrap().manifests.clone();
    assert!(manifests.iter().all(|g| g == &manifests[0]), "one manifest, perhaps sent more than once");
    let first = Manifest::parse(&manifests[0]).expect("a manifest");
    assert_eq!(first.envelopes.len(), 3);
    first
        .verify_signature(&[&originlink_trust::Cert::from_der(&net.kh.cert_der).expect("cert")])
        .expect("KH's");
    gw.stop().await;
}

/// A version 2 batch sent again (a retry after a lost answer, or a replay by someone who
/// recorded it): every envelope is acknowledged as a duplicate, nothing is stored or delivered
/// twice, and the manifest is kept once.
#[tokio::test]
async fn a_replayed_version_2_batch_is_acknowledged_and_delivered_once() {
    let (db, net, th, gw, kh) = kh_to_th().await;
    let envs: Vec<_> = (0..3).map(|_| net.envelope("KH", "TH", &net.kh.key())).collect();
    let batch: Vec<&[u8]> = envs.iter().map(|e| e.raw.as_slice()).collect();
    let m = Manifest::seal(
        Endpoint { country: cc("KH"), node: None },
        batch.iter().copied(),
        &net.kh.key(),
        chrono::Utc::now(),
    )
    .expect("manifest");
    let (status, first) = post_v2(&kh, &[&m.raw], &batch).await;
    assert_eq!(status, 200, "{first}");
    assert!(first["acks"].as_array().expect("acks").iter().all(|a| a["duplicate"] != true), "{first}");
    eventually("TH has the three", || async { th.applied().len() == 3 }).await;
    let (status, again) = post_v2(&kh, &[&m.raw], &batch).await;
    assert_eq!(status, 200, "{again}");
    let acks = again["acks"].as_array().expect("acks");
    assert_eq!(acks.len(), 3);
    assert!(acks.iter().all(|a| a["result"] == "accepted" && a["duplicate"] == true), "{again}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(th.applied().len(), 3, "delivered once");
    let stored: i64 = rusqlite::Connection::open(db.url.strip_prefix("sqlite:").expect("sqlite"))
        .expect("open")
        .query_row("SELECT COUNT(*) FROM gateway_manifests", [], |r| r.get(0))
        .expect("count");
    assert_eq!(stored, 1, "the manifest is kept once");
    gw.stop().await;
}
