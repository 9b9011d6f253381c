//! The exchange end to end, with a gateway and country nodes as separate `originlink`
//! processes talking HTTPS with mutual TLS: delivery and status through the gateway and over
//! a direct link, replace and revoke, a gateway that is down while certificates are issued,
//! and the crash test (`kill -9` of every process at random moments while 2,000 certificates
//! are issued and exchanged), on SQLite and on PostgreSQL.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use originlink_region::{Api, Options, Region};
use serde_json::{Value, json};

use crate::support::{bin, tempdir};

/// A running `originlink node` or `originlink gateway`, restartable.
pub(crate) struct Proc {
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    /// Extra environment (configuration overrides), kept across restarts.
    pub(crate) envs: Vec<(String, String)>,
}

impl Proc {
    fn start(args: &[&str], log: PathBuf) -> Proc {
        let mut p =
            Proc { args: args.iter().map(|s| s.to_string()).collect(), log, child: None, envs: vec![] };
        p.spawn();
        p
    }

    pub(crate) fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let mut child = bin()
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("originlink starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
                line.clear();
            }
        });
        rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            panic!(
                "{:?} did not start: {}",
                self.args,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            )
        });
        self.child = Some(child);
    }

    /// `kill -9`.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub(crate) fn node(region: &Region, country: &str) -> Proc {
    let cfg = &region.nodes[country].config;
    Proc::start(&["node", "--config", path(cfg)], region.dir.join(format!("{country}.log")))
}

pub(crate) fn gateway(region: &Region) -> Proc {
    Proc::start(&["gateway", "--config", path(&region.gateway_config)], region.dir.join("gateway.log"))
}

pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

pub(crate) async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn fast_retries(mut o: Options) -> Options {
    o.backoff_base_ms = Some(50);
    o.backoff_max_ms = Some(1000);
    o.log_level = Some("info".into());
    o
}

pub(crate) fn two(direct: bool) -> Options {
    let mut o = Options { countries: vec!["KH".into(), "TH".into()], ..Options::default() };
    if direct {
        o.direct = vec![("KH".into(), "TH".into())];
    }
    fast_retries(o)
}

pub(crate) async fn received(api: &Api, number: &str, version: i64) -> Option<Value> {
    let list = api.ok("GET", "/api/v1/received?limit=200", "th-customs", None).await.ok()?;
    list.as_array()?.iter().find(|r| r["number"] == number && r["version"] == version).cloned()
}

async fn remote_status(api: &Api, id: i64) -> Option<String> {
    let c = api.ok("GET", &format!("/api/v1/certificates/{id}"), "kh-officer", None).await.ok()?;
    c["remote_status"].as_str().map(str::to_owned)
}

async fn exchange_state(api: &Api, admin: &str) -> Value {
    api.ok("GET", "/api/v1/exchange", admin, None).await.expect("exchange state")
}

/// Issues a KH→TH certificate through the KH API and checks it arrives verified and its status
/// comes back; then replaces it and revokes the replacement.
async fn round_trip(region: &Region) {
    let kh = region.api("KH").expect("KH api");
    let th = region.api("TH").expect("TH api");
    let now = chrono::Utc::now();
    let doc = originlink_region::application_document("KH", "TH", 7, 2, now).expect("document");
    let cert = originlink_region::issue(&kh, "KH", "angkor", doc, None).await.expect("issued");
    let number = cert["number"].as_str().expect("number").to_owned();
    let id = cert["id"].as_i64().expect("id");
    let r = eventually("the certificate at TH", 60, || received(&th, &number, 1)).await;
    assert_eq!(r["status"], "valid", "{r}");
    // Stored exactly as signed.
    let doc = th.ok("GET", r["document"].as_str().expect("link"), "th-customs", None).await.expect("doc");
    let signed = kh.ok("GET", &format!("/api/v1/certificates/{id}/document"), "kh-officer", None).await;
    assert_eq!(doc, signed.expect("signed"), "TH stores the bytes KH signed");
    let s = eventually("the status at KH", 60, || remote_status(&kh, id)).await;
    assert_eq!(s, "received");
    let statuses = kh.ok("GET", &format!("/api/v1/certificates/{id}/statuses"), "kh-officer", None).await;
    let statuses = statuses.expect("statuses");
    assert_eq!(statuses[0]["code"], "43", "{statuses}");
    assert_eq!(statuses[0]["from_country"], "TH");

    // Replace: v2 valid, v1 superseded at TH.
    let doc = originlink_region::application_document("KH", "TH", 7, 3, now).expect("document");
    let v2 = originlink_region::issue(&kh, "KH", "angkor", doc, Some(id)).await.expect("replaced");
    assert_eq!((v2["number"].as_str(), v2["version"].as_i64()), (Some(number.as_str()), Some(2)));
    eventually("v2 valid and v1 superseded at TH", 60, || async {
        let a = received(&th, &number, 2).await?;
        let b = received(&th, &number, 1).await?;
        (a["status"] == "valid" && b["status"] == "superseded").then_some(())
    })
    .await;
    // Revoke v2.
    let v2id = v2["id"].as_i64().expect("id");
    kh.ok(
        "POST",
        &format!("/api/v1/certificates/{v2id}/revoke"),
        "kh-officer",
        Some(json!({"reason": "wrong consignee"})),
    )
    .await
    .expect("revoked");
    let r = eventually("the revocation at TH", 60, || async {
        received(&th, &number, 2).await.filter(|r| r["status"] == "revoked")
    })
    .await;
    assert_eq!(r["revoked_reason"], "wrong consignee");
    let s = eventually("the revoked status at KH", 60, || async {
        remote_status(&kh, v2id).await.filter(|s| s == "revoked")
    })
    .await;
    assert_eq!(s, "revoked");
    for (api, admin) in [(&kh, "kh-admin"), (&th, "th-admin")] {
        eventually("the outbox to drain", 60, || async {
            let s = exchange_state(api, admin).await;
            (s["outbox_pending"] == 0 && s["outbox_dead"] == 0 && s["held"] == 0).then_some(())
        })
        .await;
    }
}

#[test]
fn a_certificate_goes_through_the_gateway_and_its_status_comes_back() {
    let dir = tempdir("exchange-gw");
    let rt = rt();
    let region = rt.block_on(originlink_region::setup(&dir, &two(false))).expect("region");
    let _g = gateway(&region);
    let _kh = node(&region, "KH");
    let _th = node(&region, "TH");
    rt.block_on(round_trip(&region));
}

#[test]
fn a_direct_link_needs_no_gateway() {
    let dir = tempdir("exchange-direct");
    let rt = rt();
    let region = rt.block_on(originlink_region::setup(&dir, &two(true))).expect("region");
    // No gateway process at all.
    let _kh = node(&region, "KH");
    let _th = node(&region, "TH");
    rt.block_on(round_trip(&region));
}

#[test]
fn certificates_issued_while_the_gateway_is_down_arrive_when_it_returns() {
    let dir = tempdir("exchange-down");
    let rt = rt();
    let region = rt.block_on(originlink_region::setup(&dir, &two(false))).expect("region");
    let _kh = node(&region, "KH");
    let _th = node(&region, "TH");
    let kh = region.api("KH").expect("api");
    let th = region.api("TH").expect("api");
    let numbers: Vec<String> = rt.block_on(async {
        let mut v = Vec::new();
        for i in 0..5 {
            let doc = originlink_region::application_document("KH", "TH", 20 + i, 1, chrono::Utc::now())
                .expect("document");
            let c = originlink_region::issue(&kh, "KH", "mekong", doc, None).await.expect("issued");
            v.push(c["number"].as_str().expect("number").to_owned());
        }
        v
    });
    rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = exchange_state(&kh, "kh-admin").await;
        assert_eq!(s["outbox_pending"], 5, "held in the outbox while the gateway is down: {s}");
    });
    let _g = gateway(&region);
    rt.block_on(async {
        for n in &numbers {
            let r = eventually("delivery after the gateway returns", 60, || received(&th, n, 1)).await;
            assert_eq!(r["status"], "valid");
        }
        eventually("KH's outbox to drain", 60, || async {
            (exchange_state(&kh, "kh-admin").await["outbox_pending"] == 0).then_some(())
        })
        .await;
    });
}

/// Creates a fresh PostgreSQL database and returns its URL.
fn pg_database(name: &str) -> String {
    let db = format!("ol_{}_{name}", std::process::id());
    for sql in [format!("DROP DATABASE IF EXISTS {db}"), format!("CREATE DATABASE {db}")] {
        let out = std::process::Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", &sql])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    format!("postgres://postgres@127.0.0.1:5432/{db}")
}

/// One issuance that survives its node being killed: each step is retried, and a step that
/// already happened (409) is read back instead of repeated.
async fn issue_resiliently(kh: &Api, seq: u32) -> String {
    let user = if seq.is_multiple_of(2) { "angkor" } else { "mekong" };
    let doc = originlink_region::application_document("KH", "TH", seq, 1, chrono::Utc::now()).expect("doc");
    let id = loop {
        if let Ok((201, app)) =
            kh.call("POST", "/api/v1/applications", user, Some(json!({"document": doc}))).await
        {
            break app["id"].as_i64().expect("id");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    loop {
        match kh.call("POST", &format!("/api/v1/applications/{id}/submit"), user, None).await {
            Ok((200 | 409, _)) => break,
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    loop {
        match kh.call("POST", &format!("/api/v1/applications/{id}/approve"), "kh-officer", None).await {
            Ok((200, c)) => return c["number"].as_str().expect("number").to_owned(),
            Ok((409, _)) => {
                // Approved before the node died: read the certificate back.
                if let Ok((200, app)) =
                    kh.call("GET", &format!("/api/v1/applications/{id}"), "kh-officer", None).await
                    && let Some(cid) = app["certificate_id"].as_i64()
                    && let Ok((200, c)) =
                        kh.call("GET", &format!("/api/v1/certificates/{cid}"), "kh-officer", None).await
                {
                    return c["number"].as_str().expect("number").to_owned();
                }
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn crash_test(postgres: bool) {
    const N: u32 = 2000;
    let name = if postgres { "crash-pg" } else { "crash-sqlite" };
    let dir = tempdir(name);
    let mut opts = two(false);
    opts.log_level = Some("warn".into());
    if postgres {
        let kh = pg_database("crash_kh");
        pg_database("crash_th");
        opts.database = Some(format!("{}{{country}}", kh.trim_end_matches("kh")));
        opts.gateway_database = Some(pg_database("crash_gw"));
    }
    let rt = rt();
    let region = rt.block_on(originlink_region::setup(&dir, &opts)).expect("region");
    let procs =
        Arc::new(std::sync::Mutex::new(vec![gateway(&region), node(&region, "KH"), node(&region, "TH")]));
    let done = Arc::new(AtomicBool::new(false));
    // The killer: every 0.5–2 s, kill -9 one process at random and restart it after 0–1 s.
    let killer = {
        let (procs, done) = (procs.clone(), done.clone());
        std::thread::spawn(move || {
            let mut kills = 0u32;
            let mut seed = std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
            let mut rnd = move |n: u64| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed % n
            };
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(500 + rnd(1500)));
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let which = rnd(3) as usize;
                let mut p = procs.lock().expect("procs");
                p[which].kill9();
                kills += 1;
                std::thread::sleep(Duration::from_millis(rnd(1000)));
                p[which].spawn();
            }
            kills
        })
    };
    let kh = region.api("KH").expect("api");
    let th = region.api("TH").expect("api");
    let numbers = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        let next = Arc::new(std::sync::atomic::AtomicU32::new(0));
        for _ in 0..8 {
            let (kh, next) = (kh.clone(), next.clone());
            tasks.spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let seq = next.fetch_add(1, Ordering::SeqCst);
                    if seq >= N {
                        return mine;
                    }
                    mine.push(issue_resiliently(&kh, seq + 1000).await);
                }
            });
        }
        let mut all = Vec::new();
        while let Some(r) = tasks.join_next().await {
            all.extend(r.expect("issuer task"));
        }
        all
    });
    done.store(true, Ordering::SeqCst);
    let kills = killer.join().expect("killer");
    assert!(kills >= 3, "the processes were killed {kills} times");
    let mut distinct = numbers.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), N as usize, "{N} distinct certificates issued");

    // Everything settles: nothing left in any outbox or queue, nothing held.
    rt.block_on(async {
        eventually("every outbox to drain", 300, || async {
            let a = exchange_state(&kh, "kh-admin").await;
            let b = exchange_state(&th, "th-admin").await;
            // KH's inbox holds the statuses that came back, TH's the certificates.
            (a["inbox"] == N
                && b["inbox"] == N
                && a["outbox_pending"] == 0
                && b["outbox_pending"] == 0
                && a["held"] == 0
                && b["held"] == 0)
                .then_some(())
        })
        .await;
        let a = exchange_state(&kh, "kh-admin").await;
        let b = exchange_state(&th, "th-admin").await;
        assert_eq!((a["outbox_dead"].as_i64(), b["outbox_dead"].as_i64()), (Some(0), Some(0)), "{a} {b}");
    });
    // Read both databases directly.
    rt.block_on(async {
        let th_store = originlink_store::open(&db_url(&region, "TH")).await.expect("TH store");
        let kh_store = originlink_store::open(&db_url(&region, "KH")).await.expect("KH store");
        let mut got = Vec::new();
        let mut page = originlink_store::Page::first(None, 500);
        loop {
            let list = th_store.list_received(&page).await.expect("received");
            let Some(last) = list.last() else { break };
            page.before = Some(last.id);
            got.extend(list.into_iter().map(|r| {
                assert_eq!(r.status, originlink_store::ReceivedStatus::Valid, "{}", r.number);
                r.number
            }));
        }
        got.sort();
        let missing: Vec<&String> = distinct.iter().filter(|n| got.binary_search(n).is_err()).collect();
        assert!(missing.is_empty(), "missing at TH: {missing:?}");
        assert_eq!(got.len(), distinct.len(), "every certificate present exactly once at TH");
        // No message applied twice: one `received.stored` audit event per certificate, one
        // status per certificate at KH.
        let stored = count_events(th_store.as_ref(), "received.stored").await;
        assert_eq!(stored, N as usize, "received.stored events at TH");
        let statuses = count_events(kh_store.as_ref(), "certificate.status").await;
        assert_eq!(statuses, N as usize, "certificate.status events at KH");
        for n in &distinct {
            let s = kh_store.certificate_statuses(n).await.expect("statuses");
            assert_eq!(s.len(), 1, "{n}: one status back");
        }
        assert!(th_store.verify_audit().await.expect("audit").is_ok());
        assert!(kh_store.verify_audit().await.expect("audit").is_ok());
    });
    drop(procs);
}

fn db_url(region: &Region, country: &str) -> String {
    let d = &region.nodes[country].database;
    match d.strip_prefix("sqlite:") {
        Some(p) => format!("sqlite:{}", region.dir.join(country).join(p).display()),
        None => d.clone(),
    }
}

async fn count_events(store: &dyn originlink_store::Store, kind: &str) -> usize {
    let (head, _) = store.audit_head().await.expect("head");
    let mut after = i64::MIN;
    let mut n = 0;
    loop {
        let page = store.audit_events(after, head, 1000).await.expect("events");
        n += page.iter().filter(|e| e.action == kind).count();
        match page.last() {
            Some(l) if page.len() == 1000 => after = l.seq,
            _ => return n,
        }
    }
}

#[test]
fn crash_test_sqlite() {
    crash_test(false);
}

#[test]
fn crash_test_postgres() {
    crash_test(true);
}

/// What a node answers to hostile or broken input on its exchange endpoint: a code for each,
/// nothing stored, the same connection still good; a replay is acknowledged and applied once.
#[test]
fn the_exchange_endpoint_refuses_bad_input_with_codes_and_applies_replays_once() {
    use originlink_exchange::client::PeerClient;
    use originlink_node::issue::DocumentSigner as _;
    let dir = tempdir("exchange-bad");
    let rt = rt();
    let region = rt.block_on(originlink_region::setup(&dir, &two(true))).expect("region");
    let _th = node(&region, "TH");
    let th_url = region.nodes["TH"].url.clone();
    let cfg = originlink_node::Config::load(&region.nodes["KH"].config).expect("KH config");
    let now = chrono::Utc::now();
    let kh = originlink_node::exchange::Exchange::load(&cfg, now).expect("exchange").expect("configured");
    let signer = originlink_node::issue::TrustSigner::load(&cfg.authority.keys).expect("signer");
    let (kh_c, th_c) = (
        originlink_model::CountryCode::parse("KH").expect("KH"),
        originlink_model::CountryCode::parse("TH").expect("TH"),
    );
    let mut cert = originlink_model::sample::sample(
        originlink_model::Agreement::Atiga,
        kh_c,
        th_c,
        now.date_naive(),
        1,
        3,
    );
    cert.number = Some(originlink_model::CertificateNumber::parse("KH-2026-900001").expect("number"));
    let signed = signer.sign(originlink_formats::xml::write(&cert).as_bytes()).expect("signed");
    let good = kh.certificate_message(&signed, "KH-2026-900001", 1, th_c, now).expect("sealed").body;

    let keys = region.dir.join("KH").join("keys");
    let id = originlink_exchange::tls::Identity::load(&keys.join("tls.crt"), &keys.join("tls.key"))
        .expect("identity");
    let th_keys = region.dir.join("TH").join("keys");
    let th_cert = originlink_trust::keystore::load_certs(&th_keys.join("tls.crt")).expect("TH cert");
    let tls = originlink_exchange::tls::client_config(&id, vec![th_cert[0].der().to_vec()]).expect("tls");
    let client = PeerClient::new(&th_url, tls, Duration::from_secs(30)).expect("client");
    let post = |body: Vec<u8>| {
        let client = &client;
        async move {
            let (s, b) =
                client.request(hyper::Method::POST, "/exchange/v1/messages", body).await.expect("answer");
            (s.as_u16(), serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null))
        }
    };
    let batch = |e: &[u8]| originlink_exchange::Batch::encode([e]);
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_slice(&good).expect("json");
        f(&mut v);
        serde_json::to_vec(&v).expect("json")
    };
    rt.block_on(async {
        // Whole-request refusals.
        let (s, b) = post(b"not json".to_vec()).await;
        assert_eq!((s, b["code"].as_str()), (400, Some("BATCH_MALFORMED")), "{b}");
        let (s, b) = post(vec![b' '; 33 * 1024 * 1024]).await;
        assert_eq!((s, b["code"].as_str()), (413, Some("BATCH_TOO_LARGE")), "{b}");
        // Per-envelope refusals, each with its code and field.
        let cases: Vec<(Vec<u8>, &str, &str)> = vec![
            (
                edit(&|v| v["created_at"] = json!("2020-01-01T00:00:00.000000Z")),
                "ENVELOPE_SIGNATURE_INVALID",
                "signature",
            ),
            (edit(&|v| v["payload"] = json!("PGJhZC8+")), "PAYLOAD_HASH_MISMATCH", "payload_sha256"),
            (edit(&|v| v["from"]["country"] = json!("TH")), "SENDER_MISMATCH", "from"),
            (edit(&|v| v["to"]["country"] = json!("VN")), "RECIPIENT_UNKNOWN", "to"),
            (edit(&|v| v["type"] = json!("certificate.teleported")), "MESSAGE_TYPE_UNKNOWN", "type"),
            (edit(&|v| v["format"] = json!("originlink-envelope/9")), "ENVELOPE_FORMAT_UNKNOWN", "format"),
        ];
        for (env, code, field) in &cases {
            let (s, b) = post(batch(env)).await;
            assert_eq!(s, 200, "{b}");
            let ack = &b["acks"][0];
            assert_eq!(
                (ack["result"].as_str(), ack["code"].as_str(), ack["field"].as_str()),
                (Some("refused"), Some(*code), Some(*field)),
                "{ack}"
            );
        }
        // Nothing was stored; the same connection takes the good one, and a replay is applied once.
        let (s, b) = post(batch(&good)).await;
        assert_eq!(
            (s, b["acks"][0]["result"].as_str(), b["acks"][0]["duplicate"].as_bool()),
            (200, Some("delivered"), None),
            "{b}"
        );
        let (s, b) = post(batch(&good)).await;
        assert_eq!(
            (s, b["acks"][0]["result"].as_str(), b["acks"][0]["duplicate"].as_bool()),
            (200, Some("delivered"), Some(true)),
            "{b}"
        );
        let th = region.api("TH").expect("api");
        let list = th.ok("GET", "/api/v1/received", "th-customs", None).await.expect("list");
        assert_eq!(list.as_array().map(Vec::len), Some(1), "only the good certificate, once: {list}");
        assert_eq!(list[0]["status"], "valid");
    });
    // No client certificate at all: a coded 401, not a broken handshake.
    let out = std::process::Command::new("curl")
        .args(["-sk", "-X", "POST", "-H", "Content-Type: application/json", "--data", "{}"])
        .arg(format!("{th_url}/exchange/v1/messages"))
        .output()
        .expect("curl runs");
    let body: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(body["code"], "CLIENT_CERT_REQUIRED", "{body}");
}
