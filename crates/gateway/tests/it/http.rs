//! The gateway over real HTTPS with mutual TLS, in process: nodes push, the gateway checks,
//! queues and pushes on to a fake receiving node, or lets a node pull.

use std::time::Duration;

use chrono::Utc;

use hyper::Method;
use originlink_exchange::Batch;
use serde_json::{Value, json};

use crate::support::*;

fn ack_ids(v: &Value) -> Vec<String> {
    v["acks"].as_array().expect("acks").iter().map(|a| a["id"].as_str().unwrap_or("").to_owned()).collect()
}

async fn a_to_b_accepted_pushed_and_replays_delivered_once(db: TestDb) {
    let net = Net::new(&db.url, Options::default());
    let th = net.start_th(Mode::Deliver).await;
    let gw = net.start().await;
    let kh = net.client(&gw, &net.kh);
    let envs: Vec<_> = (0..3).map(|_| net.envelope("KH", "TH", &net.kh.key())).collect();
    let raws: Vec<&[u8]> = envs.iter().map(|e| e.raw.as_slice()).collect();
    let (status, body) = post_batch(&kh, &raws).await;
    assert_eq!(status, 200, "{body}");
    for (a, e) in body["acks"].as_array().expect("acks").iter().zip(&envs) {
        assert_eq!(a["id"], e.header.id.as_str());
        assert_eq!(a["result"], "accepted");
        assert!(a.get("duplicate").is_none());
    }
    eventually("TH has all three", || async { th.applied().len() == 3 }).await;
    // Byte for byte as the sender sent them.
    let got = th.got.lock().unwrap().raw.clone();
    for e in &envs {
        assert!(got.contains(&e.raw));
    }
    let id = envs[0].header.id.clone();
    eventually("tracking says delivered", || async {
        let (s, t) = call(&kh, Method::GET, &format!("/exchange/v1/messages/{id}"), b"").await;
        s == 200 && t["state"] == "delivered"
    })
    .await;
    let (_, t) = call(&kh, Method::GET, &format!("/exchange/v1/messages/{id}"), b"").await;
    assert_eq!(
        (t["from"].as_str(), t["to"].as_str(), t["type"].as_str()),
        (Some("KH"), Some("TH"), Some("status.update"))
    );
    assert_eq!(t["attempts"], 0);
    assert!(t["received_at"].is_string() && t["delivered_at"].is_string(), "{t}");

    // Replay: acknowledged as duplicates, nothing stored or delivered again.
    let (status, body) = post_batch(&kh, &raws).await;
    assert_eq!(status, 200);
    assert!(
        body["acks"]
            .as_array()
            .expect("acks")
            .iter()
            .all(|a| a["result"] == "accepted" && a["duplicate"] == true),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(th.got.lock().unwrap().raw.len(), 3, "delivered once");
    assert_eq!(th.got.lock().unwrap().strangers, 0, "the gateway pushed with its own certificate");

    // Tracking is for the sender only: TH (the recipient) and unknown ids get 404.
    let thc = net.client(&gw, &net.th);
    let (s, b) = call(&thc, Method::GET, &format!("/exchange/v1/messages/{id}"), b"").await;
    assert_eq!((s, b["code"].as_str()), (404, Some("NOT_FOUND")));
    let (s, _) =
        call(&kh, Method::GET, "/exchange/v1/messages/0190aaaa-0000-7000-8000-000000000000", b"").await;
    assert_eq!(s, 404);

    let (s, m) = call(&kh, Method::GET, "/metrics", b"").await;
    let m = m.as_str().expect("text").to_owned();
    assert_eq!(s, 200);
    assert!(m.contains("originlink_gateway_accepted_total 3"), "{m}");
    assert!(m.contains("originlink_gateway_duplicates_total 3"), "{m}");
    assert!(m.contains("originlink_gateway_delivered_total 3"), "{m}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_a_to_b_accepted_pushed_and_replays_delivered_once() {
    a_to_b_accepted_pushed_and_replays_delivered_once(sqlite_db()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_to_b_accepted_pushed_and_replays_delivered_once() {
    a_to_b_accepted_pushed_and_replays_delivered_once(pg_db().await).await;
}

/// Every refusal of one connection: the answer has the code, nothing is stored, and the
/// same connection then carries a valid batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_have_codes_store_nothing_and_keep_the_connection() {
    let db = sqlite_db();
    let net = Net::new(&db.url, Options { body_limit: 64 * 1024, ..Options::default() });
    let gw = net.start().await;
    let mut conn = OneConn::connect(gw.addr, Some(&net.kh), &net.gw).await;
    let kh_key = net.kh.key();

    let mut refused_ids = Vec::new();
    let mut valid = 0;
    // Per envelope: (envelope bytes, code, field).
    let mut cases: Vec<(Vec<u8>, &str, &str)> = Vec::new();
    // KH's client certificate, an envelope from TH (validly signed by TH).
    let th_env = net.envelope("TH", "KH", &net.th.key());
    cases.push((th_env.raw.clone(), "SENDER_MISMATCH", "from"));
    // A header member changed after signing.
    let e = net.envelope("KH", "TH", &kh_key);
    let mut v: Value = serde_json::from_slice(&e.raw).expect("json");
    v["created_at"] = json!("2020-01-01T00:00:00.000000Z");
    cases.push((serde_json::to_vec(&v).expect("json"), "ENVELOPE_SIGNATURE_INVALID", "signature"));
    // The payload changed.
    let e = net.envelope("KH", "TH", &kh_key);
    let mut v: Value = serde_json::from_slice(&e.raw).expect("json");
    v["payload"] = json!("eyJzdGF0dXMiOiJyZWplY3RlZCJ9");
    cases.push((serde_json::to_vec(&v).expect("json"), "PAYLOAD_HASH_MISMATCH", "payload_sha256"));
    // Signed by a key that is not a KH node key.
    let e = net.envelope("KH", "TH", &net.sg.key());
    cases.push((e.raw.clone(), "ENVELOPE_SIGNATURE_INVALID", "signature"));
    // To a country that is not a member.
    let e = net.envelope("KH", "JP", &kh_key);
    cases.push((e.raw.clone(), "RECIPIENT_UNKNOWN", "to"));
    // Not an envelope.
    cases.push((
        br#"{"id":"0190aaaa-0000-7000-8000-000000000001","format":"originlink-envelope/1"}"#.to_vec(),
        "ENVELOPE_MALFORMED",
        "",
    ));
    for (raw, code, field) in &cases {
        let id = serde_json::from_slice::<Value>(raw).expect("json")["id"].as_str().unwrap_or("").to_owned();
        let (s, b) = conn.post(Batch::encode([raw.as_slice()])).await;
        assert_eq!(s, 200, "{b}");
        let a = &b["acks"][0];
        assert_eq!((a["result"].as_str(), a["code"].as_str()), (Some("refused"), Some(*code)), "{b}");
        if !field.is_empty() {
            assert_eq!(a["field"].as_str(), Some(*field), "{b}");
        }
        assert_eq!(a["id"].as_str(), Some(id.as_str()));
        refused_ids.push(id);
        post_valid(&mut conn, &net, &kh_key).await;
        valid += 1;
    }

    // A batch mixing good and bad: acks in order, only the good one stored.
    let good = net.envelope("KH", "TH", &kh_key);
    let bad = net.envelope("KH", "JP", &kh_key);
    let (s, b) = conn.post(Batch::encode([bad.raw.as_slice(), good.raw.as_slice()])).await;
    assert_eq!(s, 200);
    assert_eq!(ack_ids(&b), [bad.header.id.clone(), good.header.id.clone()]);
    assert_eq!(
        (b["acks"][0]["result"].as_str(), b["acks"][1]["result"].as_str()),
        (Some("refused"), Some("accepted"))
    );
    refused_ids.push(bad.header.id.clone());
    valid += 1;

    // Whole-request refusals.
    let (s, b) = conn.post(b"this is not json".to_vec()).await;
    assert_eq!((s, b["code"].as_str()), (400, Some("BATCH_MALFORMED")), "{b}");
    post_valid(&mut conn, &net, &kh_key).await;
    valid += 1;
    let (s, b) = conn.post(br#"{"messages":[]}"#.to_vec()).await;
    assert_eq!((s, b["code"].as_str()), (400, Some("BATCH_EMPTY")), "{b}");
    post_valid(&mut conn, &net, &kh_key).await;
    valid += 1;
    let big = net.envelope("KH", "TH", &kh_key);
    let mut body = b"{\"messages\":[".to_vec();
    for i in 0..300 {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(&big.raw);
    }
    body.extend_from_slice(b"]}");
    assert!(body.len() > 64 * 1024);
    let (s, b) = conn.post(body).await;
    assert_eq!((s, b["code"].as_str()), (413, Some("BATCH_TOO_LARGE")), "{b}");
    post_valid(&mut conn, &net, &kh_key).await;
    valid += 1;
    assert!(gw.queue.track(&big.header.id).await.expect("track").is_none(), "nothing stored from a 413");

    for id in &refused_ids {
        assert!(gw.queue.track(id).await.expect("track").is_none(), "{id} was refused but stored");
    }
    let depth = gw.queue.depth().await.expect("depth");
    assert_eq!(depth, [("TH".to_owned(), valid as u64)], "only the valid envelopes are queued");
    let (_, m) = conn.request(Method::GET, "/metrics", Vec::new()).await;
    let m = m.as_str().expect("text").to_owned();
    assert!(m.contains("originlink_gateway_refused_total{code=\"ENVELOPE_SIGNATURE_INVALID\"} 2"), "{m}");
    assert!(m.contains("originlink_gateway_requests_refused_total{code=\"BATCH_TOO_LARGE\"} 1"), "{m}");
    assert!(m.contains(&format!("originlink_gateway_queue_depth{{recipient=\"TH\"}} {valid}")), "{m}");
    let segment_bytes: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("originlink_gateway_segment_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the segment files' size");
    assert!(segment_bytes > 0, "the queued envelopes are in segment files: {m}");
}

async fn post_valid(conn: &mut OneConn, net: &Net, key: &originlink_trust::PrivateKey) {
    let e = net.envelope("KH", "TH", key);
    let (s, b) = conn.post(Batch::encode([e.raw.as_slice()])).await;
    assert_eq!((s, b["acks"][0]["result"].as_str()), (200, Some("accepted")), "{b}");
}

/// Client certificates: none, unknown, expired, revoked. Each answer has its code; the
/// connection still answers afterwards; nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_certificate_refusals() {
    let db = sqlite_db();
    let net = Net::new(&db.url, Options::default());
    let gw = net.start().await;
    let e = net.envelope("KH", "TH", &net.kh.key());
    let la_env = net.envelope("LA", "TH", &net.la.key());
    let mm_env = net.envelope("MM", "TH", &net.mm.key());
    let cases: Vec<(Option<&Keys>, &[u8], u16, &str)> = vec![
        (None, &e.raw, 401, "CLIENT_CERT_REQUIRED"),
        (Some(&net.sg), &e.raw, 403, "CLIENT_CERT_UNKNOWN"),
        (Some(&net.la), &la_env.raw, 403, "CLIENT_CERT_EXPIRED"),
        (Some(&net.mm), &mm_env.raw, 403, "CLIENT_CERT_REVOKED"),
    ];
    for (who, raw, status, code) in cases {
        let mut conn = OneConn::connect(gw.addr, who, &net.gw).await;
        for _ in 0..2 {
            let (s, b) = conn.post(Batch::encode([raw])).await;
            assert_eq!((s, b["code"].as_str()), (status, Some(code)), "{b}");
        }
        let (s, b) = conn.request(Method::GET, "/healthz", Vec::new()).await;
        assert_eq!(s, 200, "the connection is still usable: {b}");
        // Not a tracker either.
        let (s, b) =
            conn.request(Method::GET, &format!("/exchange/v1/messages/{}", e.header.id), Vec::new()).await;
        assert_eq!((s, b["code"].as_str()), (status, Some(code)));
    }
    assert!(gw.queue.depth().await.expect("depth").is_empty(), "nothing stored");
}

/// The receiver is down: the gateway retries with backoff (tracking shows it), and delivers
/// once the receiver is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receiver_down_retries_then_delivers() {
    let db = sqlite_db();
    let net = Net::new(&db.url, Options::default());
    let gw = net.start().await;
    let kh = net.client(&gw, &net.kh);
    let e = net.envelope("KH", "TH", &net.kh.key());
    let (s, b) = post_batch(&kh, &[&e.raw]).await;
    assert_eq!((s, b["acks"][0]["result"].as_str()), (200, Some("accepted")));
    let path = format!("/exchange/v1/messages/{}", e.header.id);
    let (_, t) = call(&kh, Method::GET, &path, b"").await;
    assert_eq!(t["state"], "pending");
    eventually("two failed attempts", || async {
        let (_, t) = call(&kh, Method::GET, &path, b"").await;
        t["attempts"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    let (_, t) = call(&kh, Method::GET, &path, b"").await;
    assert_eq!(t["state"], "pending");
    assert!(t["error"].as_str().unwrap_or("").contains("connect"), "{t}");
    let th = net.start_th(Mode::Deliver).await;
    eventually("delivered after TH came up", || async {
        let (_, t) = call(&kh, Method::GET, &path, b"").await;
        t["state"] == "delivered"
    })
    .await;
    assert_eq!(th.applied(), vec![e.header.id.clone()]);
}

/// A recipient that never comes up: dead after max_attempts; others are not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_recipient_goes_dead_without_slowing_others() {
    let db = sqlite_db();
    let net = Net::new(
        &db.url,
        Options { max_attempts: 3, backoff_base_ms: 10, backoff_max_ms: 40, ..Options::default() },
    );
    let th = net.start_th(Mode::Deliver).await;
    let gw = net.start().await;
    // TH sends to KH, whose URL is a closed port.
    let thc = net.client(&gw, &net.th);
    let to_kh = net.envelope("TH", "KH", &net.th.key());
    assert_eq!(post_batch(&thc, &[&to_kh.raw]).await.0, 200);
    let kh = net.client(&gw, &net.kh);
    let to_th = net.envelope("KH", "TH", &net.kh.key());
    assert_eq!(post_batch(&kh, &[&to_th.raw]).await.0, 200);
    eventually("KH to TH delivered", || async { th.applied().len() == 1 }).await;
    let path = format!("/exchange/v1/messages/{}", to_kh.header.id);
    eventually("TH to KH dead", || async {
        let (_, t) = call(&thc, Method::GET, &path, b"").await;
        t["state"] == "failed"
    })
    .await;
    let (_, t) = call(&thc, Method::GET, &path, b"").await;
    assert_eq!(t["attempts"], 3, "{t}");
}

/// The receiver refuses: dead letter at once; the operator lists it (own certificate or
/// token, nobody else) and retries it; then it is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_by_receiver_dead_letter_then_operator_retry() {
    let db = sqlite_db();
    let net = Net::new(&db.url, Options::default());
    let th = net.start_th(Mode::Refuse("ENVELOPE_SIGNATURE_INVALID")).await;
    let gw = net.start().await;
    let kh = net.client(&gw, &net.kh);
    let e = net.envelope("KH", "TH", &net.kh.key());
    assert_eq!(post_batch(&kh, &[&e.raw]).await.0, 200);
    let path = format!("/exchange/v1/messages/{}", e.header.id);
    eventually("dead letter", || async {
        let (_, t) = call(&kh, Method::GET, &path, b"").await;
        t["state"] == "failed"
    })
    .await;
    let (_, t) = call(&kh, Method::GET, &path, b"").await;
    assert_eq!(t["attempts"], 1);
    assert!(t["error"].as_str().unwrap_or("").contains("ENVELOPE_SIGNATURE_INVALID"), "{t}");

    // Nodes are not the operator.
    let (s, b) = call(&kh, Method::GET, "/exchange/v1/dead", b"").await;
    assert_eq!((s, b["code"].as_str()), (403, Some("OPERATOR_REQUIRED")));
    let (s, _) = call(&kh, Method::POST, &format!("/exchange/v1/dead/{}/retry", e.header.id), b"").await;
    assert_eq!(s, 403);
    // The operator's token (no client certificate).
    let mut op = OneConn::connect(gw.addr, None, &net.gw).await;
    let (s, b) = op.request(Method::GET, "/exchange/v1/dead", Vec::new()).await;
    assert_eq!((s, b["code"].as_str()), (401, Some("CLIENT_CERT_REQUIRED")));
    let (s, b) = op_request(&mut op, "Bearer wrong-token", Method::GET, "/exchange/v1/dead").await;
    assert_eq!((s, b["code"].as_str()), (401, Some("OPERATOR_TOKEN_INVALID")));
    let (s, b) =
        op_request(&mut op, &format!("Bearer {}", net.operator_token), Method::GET, "/exchange/v1/dead")
            .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["messages"][0]["id"], e.header.id.as_str());
    assert_eq!(b["messages"][0]["state"], "failed");
    // The operator can track any message.
    let (s, b) = op_request(&mut op, &format!("Bearer {}", net.operator_token), Method::GET, &path).await;
    assert_eq!((s, b["state"].as_str()), (200, Some("failed")));

    // Retry with the gateway's own certificate, after the receiver is fixed.
    *th.mode.lock().unwrap() = Mode::Deliver;
    let gwc = net.client(&gw, &net.gw);
    let (s, b) = call(&gwc, Method::POST, &format!("/exchange/v1/dead/{}/retry", e.header.id), b"").await;
    assert_eq!(s, 200, "{b}");
    assert_eq!((b["state"].as_str(), b["attempts"].as_u64()), (Some("pending"), Some(0)));
    let (s, _) =
        call(&gwc, Method::POST, "/exchange/v1/dead/0190aaaa-0000-7000-8000-000000000000/retry", b"").await;
    assert_eq!(s, 404);
    eventually("delivered after the retry", || async {
        let (_, t) = call(&kh, Method::GET, &path, b"").await;
        t["state"] == "delivered"
    })
    .await;
    assert_eq!(th.applied(), vec![e.header.id.clone()]);
    let (_, b) = call(&gwc, Method::GET, "/exchange/v1/dead", b"").await;
    assert_eq!(b["messages"], json!([]));
}

async fn op_request(conn: &mut OneConn, auth: &str, method: Method, path: &str) -> (u16, Value) {
    conn.request_with(method, path, Vec::new(), &[("authorization", auth)]).await
}

/// VN pulls: it gets its messages (leased), acknowledges them; nobody else can pull or
/// acknowledge them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pull_only_recipient_pulls_and_acks() {
    let db = sqlite_db();
    let net = Net::new(&db.url, Options::default());
    let gw = net.start().await;
    let kh = net.client(&gw, &net.kh);
    let envs: Vec<_> = (0..3).map(|_| net.envelope("KH", "VN", &net.kh.key())).collect();
    let raws: Vec<&[u8]> = envs.iter().map(|e| e.raw.as_slice()).collect();
    assert_eq!(post_batch(&kh, &raws).await.0, 200);

    // KH pulls its own country's messages: none of VN's.
    let (s, b) = call(&kh, Method::POST, "/exchange/v1/pull", br#"{"max":10}"#).await;
    assert_eq!((s, b["messages"].as_array().map(Vec::len)), (200, Some(0)), "{b}");
    let vn = net.client(&gw, &net.vn);
    let (s, b) = call(&vn, Method::POST, "/exchange/v1/pull", br#"{"max":2}"#).await;
    assert_eq!(s, 200, "{b}");
    let first: Vec<String> = b["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(first, [envs[0].header.id.clone(), envs[1].header.id.clone()]);
    // Byte for byte: the raw envelope is in the answer.
    let (_, raw) =
        vn.request(Method::POST, "/exchange/v1/pull", br#"{"max":10}"#.to_vec()).await.expect("pull");
    assert!(
        raw.windows(envs[2].raw.len()).any(|w| w == envs[2].raw.as_slice()),
        "the third, exactly as sent"
    );
    let (_, b) = call(&vn, Method::POST, "/exchange/v1/pull", br#"{"max":10}"#).await;
    assert_eq!(b["messages"], json!([]), "all leased");

    // KH cannot acknowledge VN's messages.
    let ack = |id: &str, result: &str| json!({"id": id, "result": result});
    let acks = json!({"acks": [ack(&first[0], "delivered")]}).to_string();
    let (s, b) = call(&kh, Method::POST, "/exchange/v1/pull/ack", acks.as_bytes()).await;
    assert_eq!((s, b["settled"].as_u64()), (200, Some(0)));
    let acks = json!({"acks": [
        ack(&first[0], "delivered"),
        ack(&first[1], "delivered-with-warnings"),
        {"id": envs[2].header.id, "result": "refused", "code": "ENVELOPE_SIGNATURE_INVALID"},
    ]})
    .to_string();
    let (s, b) = call(&vn, Method::POST, "/exchange/v1/pull/ack", acks.as_bytes()).await;
    assert_eq!((s, b["settled"].as_u64()), (200, Some(3)), "{b}");
    for (e, state) in envs.iter().zip(["delivered", "delivered", "failed"]) {
        let (_, t) = call(&kh, Method::GET, &format!("/exchange/v1/messages/{}", e.header.id), b"").await;
        assert_eq!(t["state"], state, "{t}");
    }
    // Malformed pull, and a gateway (not a node) may not pull.
    let (s, b) = call(&vn, Method::POST, "/exchange/v1/pull", b"{}").await;
    assert_eq!((s, b["code"].as_str()), (400, Some("BODY_MALFORMED")));
    let (s, b) = call(&net.client(&gw, &net.gw), Method::POST, "/exchange/v1/pull", br#"{"max":1}"#).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("NODE_REQUIRED")));
}

/// Stopping is graceful, and a restart on the same database keeps everything: a message
/// accepted while the receiver was down is delivered by the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_keeps_the_queue() {
    let db = sqlite_db();
    let net = Net::new(&db.url, Options::default());
    let gw = net.start().await;
    let kh = net.client(&gw, &net.kh);
    let e = net.envelope("KH", "TH", &net.kh.key());
    assert_eq!(post_batch(&kh, &[&e.raw]).await.0, 200);
    gw.stop().await;
    let th = net.start_th(Mode::Deliver).await;
    let gw = net.start().await;
    eventually("delivered by the second run", || async { th.applied().len() == 1 }).await;
    // TH applies before it answers; the gateway settles the message once the answer is in.
    eventually("settled as delivered", || async {
        let t = gw.queue.track(&e.header.id).await.expect("track").expect("kept");
        t.state == originlink_gateway::queue::State::Delivered
    })
    .await;
    assert_eq!(th.applied().len(), 1, "delivered once");
}

/// The gateway's time is the injected clock: a message is received at the clock's instant,
/// and a clock past the node certificates' validity makes them expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_injected_clock_is_the_gateways_time() {
    use std::sync::Arc;

    use chrono::{DateTime, Timelike, Utc};
    use originlink_service::FixedClock;

    let db = sqlite_db();
    let net = Net::new(&db.url, Options::default());
    let at = Utc::now().with_nanosecond(0).expect("whole second");
    let gw = net.start_with_clock(Arc::new(FixedClock(at))).await;
    let kh = net.client(&gw, &net.kh);
    let e = net.envelope("KH", "VN", &net.kh.key());
    let (s, b) = post_batch(&kh, &[e.raw.as_slice()]).await;
    assert_eq!((s, b["acks"][0]["result"].as_str()), (200, Some("accepted")), "{b}");
    let (s, t) = call(&kh, Method::GET, &format!("/exchange/v1/messages/{}", e.header.id), b"").await;
    assert_eq!(s, 200, "{t}");
    let received: DateTime<Utc> = t["received_at"].as_str().expect("received_at").parse().expect("instant");
    assert_eq!(received, at, "{t}");
    gw.stop().await;

    let later = at + chrono::Duration::days(20 * 365);
    let gw = net.start_with_clock(Arc::new(FixedClock(later))).await;
    let mut conn = OneConn::connect(gw.addr, Some(&net.kh), &net.gw).await;
    let (s, b) = conn.post(Batch::encode([e.raw.as_slice()])).await;
    assert_eq!((s, b["code"].as_str()), (403, Some("CLIENT_CERT_EXPIRED")), "{b}");
    gw.stop().await;
}

/// The operator replaces the trust list file: within seconds the gateway knows a new member
/// and forgets a removed one, without a restart. A list signed by someone else, or an older
/// one, changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_newer_trust_list_is_put_in_force_without_a_restart() {
    let db = sqlite_db();
    let net = Net::new(&db.url, Options::default());
    let gw = net.start().await;
    let status = |who: &Keys| {
        let (addr, gwk) = (gw.addr, &net.gw);
        let who = who.clone();
        async move {
            let mut conn = OneConn::connect(addr, Some(&who), gwk).await;
            let (s, b) = conn.request(Method::GET, "/exchange/v1/trust-list", Vec::new()).await;
            (s, b["code"].as_str().map(str::to_owned))
        }
    };
    assert_eq!(status(&net.sg).await, (403, Some("CLIENT_CERT_UNKNOWN".into())), "SG is not a member yet");

    // A list naming SG but signed by another operator: refused, the list in force stays.
    let mut with_sg = net.list.clone();
    with_sg.sequence = 8;
    with_sg.members.push(Net::member("SG", &net.sg));
    let stranger =
        originlink_trust::keys::init_operator("Not The Operator", Utc::now().date_naive()).expect("operator");
    net.publish(&with_sg, &stranger);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(status(&net.sg).await, (403, Some("CLIENT_CERT_UNKNOWN".into())), "a forged list is refused");
    assert_eq!(status(&net.kh).await.0, 200);

    // The same list signed by the operator: SG is a member within seconds.
    net.publish(&with_sg, &net.operator);
    eventually("SG is a member", || async { status(&net.sg).await.0 == 200 }).await;

    // An older list (sequence 7, without SG) changes nothing.
    net.publish(&net.list, &net.operator);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(status(&net.sg).await.0, 200, "an older list is not put in force");

    // A newer list without KH: KH is refused from then on.
    let mut without_kh = with_sg.clone();
    without_kh.sequence = 9;
    without_kh.members.retain(|m| m.country.as_str() != "KH");
    net.publish(&without_kh, &net.operator);
    eventually("KH is no longer a member", || async {
        status(&net.kh).await == (403, Some("CLIENT_CERT_UNKNOWN".into()))
    })
    .await;
}

/// The operator's traffic endpoint on the gateway's clock: the 60 minutes ending with the
/// current one, what was accepted and delivered (pulled) in it and the latency; tracking shows
/// the certificate the envelope names. Nodes are not the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn traffic_per_minute_for_the_operator_and_the_certificate_in_tracking() {
    use std::sync::Arc;

    use chrono::{DurationRound, Utc};
    use originlink_service::FixedClock;

    let db = sqlite_db();
    let net = Net::new(&db.url, Options::default());
    let minute = Utc::now().duration_trunc(chrono::Duration::minutes(1)).expect("a whole minute");
    let gw = net.start_with_clock(Arc::new(FixedClock(minute + chrono::Duration::seconds(30)))).await;
    let kh = net.client(&gw, &net.kh);
    let (a, b) = (net.envelope("KH", "VN", &net.kh.key()), net.envelope("KH", "VN", &net.kh.key()));
    assert_eq!(post_batch(&kh, &[&a.raw, &b.raw]).await.0, 200);
    let vn = net.client(&gw, &net.vn);
    let (s, pulled) = call(&vn, Method::POST, "/exchange/v1/pull", br#"{"max":1}"#).await;
    assert_eq!(s, 200, "{pulled}");
    let ack = json!({ "acks": [{ "id": pulled["messages"][0]["id"], "result": "delivered" }] });
    let (s, acked) = call(&vn, Method::POST, "/exchange/v1/pull/ack", ack.to_string().as_bytes()).await;
    assert_eq!((s, acked["settled"].as_u64()), (200, Some(1)), "{acked}");

    let (s, b) = call(&kh, Method::GET, "/exchange/v1/traffic", b"").await;
    assert_eq!((s, b["code"].as_str()), (403, Some("OPERATOR_REQUIRED")));
    let mut op = OneConn::connect(gw.addr, None, &net.gw).await;
    let token = format!("Bearer {}", net.operator_token);
    let (s, t) = op_request(&mut op, &token, Method::GET, "/exchange/v1/traffic").await;
    assert_eq!(s, 200, "{t}");
    let minutes = t["minutes"].as_array().expect("minutes");
    assert_eq!(minutes.len(), 60);
    let first = minute - chrono::Duration::minutes(59);
    assert_eq!(minutes[0]["minute"], first.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    assert_eq!(
        minutes[59],
        json!({
            "minute": minute.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "received": 2, "delivered": 1, "latency_mean_ms": 0, "latency_max_ms": 0
        })
    );
    assert!(minutes[..59].iter().all(|m| m["received"] == 0 && m["latency_mean_ms"].is_null()), "{t}");
    let path = format!("/exchange/v1/messages/{}", a.header.id);
    let (s, tracked) = op_request(&mut op, &token, Method::GET, &path).await;
    assert_eq!(s, 200, "{tracked}");
    assert_eq!(tracked["certificate"], json!({ "country": "VN", "number": "VN-2026-000001" }));
}
