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
    /// The network namespace it runs in (`ip netns exec`), if not this one.
    netns: Option<String>,
}

impl Proc {
    pub(crate) fn start(args: &[&str], log: PathBuf) -> Proc {
        Proc::start_in(None, &[], args, log)
    }

    /// Starts `originlink ARGS` in network namespace `netns` (when given) with `envs`.
    pub(crate) fn start_in(netns: Option<&str>, envs: &[(&str, &str)], args: &[&str], log: PathBuf) -> Proc {
        let mut p = Proc {
            args: args.iter().map(|s| s.to_string()).collect(),
            log,
            child: None,
            envs: envs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            netns: netns.map(str::to_owned),
        };
        p.spawn();
        p
    }

    pub(crate) fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("log file");
        let mut command = match &self.netns {
            // `ip netns exec` enters the namespace and then executes the binary (same pid).
            Some(ns) => {
                let mut c = std::process::Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_originlink")]);
                c
            }
            None => bin(),
        };
        let mut child = command
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
    // TH answers the new version with `replaced` (UNCL 1373 code 10).
    let v2id = v2["id"].as_i64().expect("id");
    let s = eventually("the replaced status at KH", 60, || async {
        remote_status(&kh, v2id).await.filter(|s| s == "replaced")
    })
    .await;
    assert_eq!(s, "replaced");
    // Revoke v2.
    revoke(&kh, v2id).await;
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
    drained(&[(&kh, "kh-admin"), (&th, "th-admin")], 60).await;
}

/// KH's officer revokes certificate `id` ("wrong consignee").
pub(crate) async fn revoke(kh: &Api, id: i64) {
    let reason = json!({"reason": "wrong consignee"});
    kh.ok("POST", &format!("/api/v1/certificates/{id}/revoke"), "kh-officer", Some(reason))
        .await
        .expect("revoked");
}

/// Waits (at most `secs` each) until each node's outbox is empty with no dead letter and
/// nothing held.
pub(crate) async fn drained(nodes: &[(&Api, &str)], secs: u64) {
    for (api, admin) in nodes {
        eventually("the outbox to drain", secs, || async {
            let s = api.ok("GET", "/api/v1/exchange", admin, None).await.ok()?;
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

/// Protocol version 2 (batches with a signed manifest) next to nodes and gateways of the
/// previous version, which speak only version 1 (`protocol = 1` serves and sends exactly the
/// version 1 exchange): an older sender, an older receiver, an older gateway. Each way a
/// certificate is issued, replaced and revoked, and every status comes back; where a newer
/// service met an older one it says it fell back, and where all are new no one did.
#[test]
fn nodes_and_gateways_of_the_previous_protocol_still_exchange_with_new_ones() {
    let fallback = "peer speaks exchange protocol version 1 only";
    let rt = rt();
    let cases: [(Option<&str>, &[&str]); 4] = [
        (None, &[]),
        // The gateway pushes statuses to the older KH, certificates to the older TH.
        (Some("KH"), &["gateway"]),
        (Some("TH"), &["gateway"]),
        // Both nodes send to the older gateway.
        (Some("gateway"), &["KH", "TH"]),
    ];
    for (old, falls_back) in cases {
        let dir = tempdir(&format!("exchange-v1-{}", old.unwrap_or("none")));
        let mut o = two(false);
        o.protocol_v1 = old.into_iter().map(str::to_owned).collect();
        let region = rt.block_on(originlink_region::setup(&dir, &o)).expect("region");
        let g = gateway(&region);
        let kh = node(&region, "KH");
        let th = node(&region, "TH");
        rt.block_on(async {
            round_trip(&region).await;
            // Only when every hop speaks version 2 do senders' manifests prove the envelopes;
            // otherwise each envelope's own signature does, as in version 1.
            for (country, admin) in [("KH", "kh-admin"), ("TH", "th-admin")] {
                let api = region.api(country).expect("api");
                let by_manifest =
                    metric(&api, admin, "originlink_exchange_envelopes_by_manifest_total").await;
                let by_signature =
                    metric(&api, admin, "originlink_exchange_envelopes_by_signature_total").await;
                if old.is_none() {
                    assert!(by_manifest >= 3 && by_signature == 0, "{country}: {by_manifest} {by_signature}");
                } else {
                    assert!(
                        by_manifest == 0 && by_signature >= 3,
                        "{country} with {old:?}: {by_manifest} {by_signature}"
                    );
                }
            }
        });
        drop((g, kh, th));
        for service in ["gateway", "KH", "TH"] {
            let log = std::fs::read_to_string(region.dir.join(format!("{service}.log"))).unwrap_or_default();
            assert_eq!(
                log.contains(fallback),
                falls_back.contains(&service),
                "{service} with {old:?} at version 1: fell back to version 1? log:\n{log}"
            );
        }
    }
}

/// A counter of a node's `/metrics`.
async fn metric(api: &Api, admin: &str, name: &str) -> u64 {
    let (s, v) = api.call("GET", "/metrics", admin, None).await.expect("metrics answer");
    assert_eq!(s, 200);
    let text = v.as_str().expect("text").to_owned();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in {text}"))
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
        // The five certificates wait in the outbox (beside the status list KH published at start).
        let out = kh.ok("GET", "/api/v1/exchange/outbox", "kh-admin", None).await.expect("outbox");
        let kinds: Vec<&str> =
            out.as_array().expect("list").iter().filter_map(|m| m["kind"].as_str()).collect();
        let certificates = kinds.iter().filter(|k| **k == "certificate.issued").count();
        assert_eq!(certificates, 5, "held in the outbox while the gateway is down: {kinds:?}");
        assert!(kinds.iter().all(|k| matches!(*k, "certificate.issued" | "status.list")), "{kinds:?}");
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
pub(crate) fn pg_database(name: &str) -> String {
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

/// Puts the region's KH and TH nodes and its gateway on fresh PostgreSQL databases
/// (`ol_<pid>_<prefix>_kh`, `_th`, `_gw`).
pub(crate) fn on_postgres(opts: &mut Options, prefix: &str) {
    let kh = pg_database(&format!("{prefix}_kh"));
    pg_database(&format!("{prefix}_th"));
    opts.database = Some(format!("{}{{country}}", kh.trim_end_matches("kh")));
    opts.gateway_database = Some(pg_database(&format!("{prefix}_gw")));
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
        on_postgres(&mut opts, "crash");
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
            // KH's inbox holds the statuses that came back, TH's the certificates, and each the
            // one status list the other published when it first started (a restart within the
            // refresh interval publishes none; a list kept is a list sent, in one transaction).
            (a["inbox"] == N + 1
                && b["inbox"] == N + 1
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
        let (th_store, kh_store) = (open_store(&region, "TH").await, open_store(&region, "KH").await);
        each_received_once(th_store.as_ref(), &distinct).await;
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

/// A region node's storage opened as the node opens it, with its audit key (its chain is
/// keyed).
pub(crate) async fn open_store(region: &Region, country: &str) -> Arc<dyn originlink_store::Store> {
    let config = originlink_node::Config::load(&region.nodes[country].config).expect("config");
    originlink_node::audit::open_store(&config).await.expect("store")
}

/// Every certificate of `sent` (sorted) was received exactly once, and is valid.
pub(crate) async fn each_received_once(store: &dyn originlink_store::Store, sent: &[String]) {
    let mut got = Vec::new();
    let mut page = originlink_store::Page::first(None, 500);
    loop {
        let list = store.list_received(&page).await.expect("received");
        let Some(last) = list.last() else { break };
        page.before = Some(last.id);
        got.extend(list.into_iter().map(|r| {
            assert_eq!(r.status, originlink_store::ReceivedStatus::Valid, "{}", r.number);
            r.number
        }));
    }
    got.sort();
    let missing: Vec<&String> = sent.iter().filter(|n| got.binary_search(n).is_err()).collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert_eq!(got.len(), sent.len(), "every certificate present exactly once");
}

pub(crate) async fn count_events(store: &dyn originlink_store::Store, kind: &str) -> usize {
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
    let client = PeerClient::new(&th_url, tls.clone(), Duration::from_secs(30)).expect("client");
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
        // An oversized body is read on and dropped, and answered 413 on a working connection.
        let (s, b) = post(vec![b' '; 33 * 1024 * 1024]).await;
        assert_eq!((s, b["code"].as_str()), (413, Some("BATCH_TOO_LARGE")), "{b}");
        // One announced past even what is drained is refused before a byte is sent.
        let head = "POST /exchange/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 204800000\r\n\r\n";
        let addr = th_url.trim_start_matches("https://").parse().expect("address");
        let resp = crate::hostile::raw_request(addr, tls.clone(), head.as_bytes()).await;
        assert!(resp.starts_with("HTTP/1.1 413") && resp.contains("BATCH_TOO_LARGE"), "{resp}");
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

/// A member node's keys, used by hand: seals envelopes as that member's node would and pushes
/// them over mutual TLS (its own client certificate) to another node's exchange endpoint.
/// What a member may say is checked by the receiver, whoever sends it.
struct Member {
    country: originlink_model::CountryCode,
    exchange: originlink_node::exchange::Exchange,
    signer: originlink_node::issue::TrustSigner,
    identity: originlink_exchange::tls::Identity,
}

impl Member {
    fn load(region: &Region, country: &str) -> Member {
        let cfg = originlink_node::Config::load(&region.nodes[country].config).expect("config");
        let exchange = originlink_node::exchange::Exchange::load(&cfg, chrono::Utc::now())
            .expect("exchange")
            .expect("configured");
        let signer = originlink_node::issue::TrustSigner::load(&cfg.authority.keys).expect("signer");
        let keys = region.dir.join(country).join("keys");
        let identity = originlink_exchange::tls::Identity::load(&keys.join("tls.crt"), &keys.join("tls.key"))
            .expect("identity");
        Member { country: cc(country), exchange, signer, identity }
    }

    /// A certificate this member issues to `to`, signed by its authority key.
    fn certificate(&self, number: &str, to: &str) -> Vec<u8> {
        use originlink_node::issue::DocumentSigner as _;
        let now = chrono::Utc::now();
        let mut cert = originlink_model::sample::sample(
            originlink_model::Agreement::Atiga,
            self.country,
            cc(to),
            now.date_naive(),
            1,
            3,
        );
        cert.number = Some(originlink_model::CertificateNumber::parse(number).expect("number"));
        self.signer.sign(originlink_formats::xml::write(&cert).as_bytes()).expect("signed")
    }

    /// An envelope of this member's node (signed with its key).
    fn seal(
        &self,
        kind: originlink_exchange::MessageType,
        to: &str,
        certificate: (&str, &str, i64),
        correlation: Option<String>,
        payload: Vec<u8>,
    ) -> Vec<u8> {
        let (country, number, version) = certificate;
        let cref = originlink_exchange::CertRef { country: cc(country), number: number.into(), version };
        let payload_type =
            if payload.first() == Some(&b'<') { "application/xml" } else { "application/json" };
        self.exchange
            .seal(kind, cc(to), Some(cref), correlation, payload_type, payload, chrono::Utc::now())
            .expect("sealed")
            .body
    }

    /// Pushes `envelope` to `to`'s node as this member's node; returns its acknowledgement.
    async fn push(&self, region: &Region, to: &str, envelope: &[u8]) -> Value {
        let cert = region.dir.join(to).join("keys").join("tls.crt");
        self.push_to(&region.nodes[to].url, &cert, envelope).await
    }

    /// Pushes `envelope` to the region's gateway; returns its acknowledgement.
    async fn push_gateway(&self, region: &Region, envelope: &[u8]) -> Value {
        let cert = region.dir.join("gateway").join("tls.crt");
        self.push_to(&region.gateway_url, &cert, envelope).await
    }

    /// A client of this member's node to `url`, pinned to the certificate at `cert`.
    fn client(&self, url: &str, cert: &Path) -> originlink_exchange::client::PeerClient {
        let pinned = originlink_trust::keystore::load_certs(cert).expect("cert");
        let tls = originlink_exchange::tls::client_config(&self.identity, vec![pinned[0].der().to_vec()])
            .expect("tls");
        originlink_exchange::client::PeerClient::new(url, tls, Duration::from_secs(30)).expect("client")
    }

    /// `envelope` rewritten by `edit` and signed again as the spec says, the way another
    /// implementation would: a detached JWS over the RFC 8785 form of the members as written,
    /// without `payload` and `signature`.
    fn rewrite(&self, envelope: &[u8], edit: &dyn Fn(&mut Value)) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(envelope).expect("json");
        edit(&mut v);
        let mut signed = v.clone();
        let o = signed.as_object_mut().expect("object");
        o.remove("payload");
        o.remove("signature");
        let canonical = originlink_trust::jcs::to_canonical(&signed);
        let jws = originlink_trust::jws::sign_detached(&canonical, &self.identity.signer, &[]).expect("jws");
        v["signature"] = json!(jws);
        serde_json::to_vec(&v).expect("json")
    }

    async fn push_to(&self, url: &str, cert: &Path, envelope: &[u8]) -> Value {
        let client = self.client(url, cert);
        let body = originlink_exchange::Batch::encode([envelope]);
        let (s, b) = client
            .request(hyper::Method::POST, originlink_exchange::MESSAGES_PATH, body)
            .await
            .expect("answer");
        let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
        assert_eq!(s.as_u16(), 200, "{v}");
        v["acks"][0].clone()
    }
}

fn cc(c: &str) -> originlink_model::CountryCode {
    originlink_model::CountryCode::parse(c).expect("country")
}

/// The three countries of the region, each with its node keys; only the nodes a test starts
/// run.
fn three(name: &str) -> (tokio::runtime::Runtime, Region) {
    let dir = tempdir(name);
    let rt = rt();
    let opts = fast_retries(Options {
        countries: vec!["KH".into(), "TH".into(), "VN".into()],
        ..Options::default()
    });
    let region = rt.block_on(originlink_region::setup(&dir, &opts)).expect("region");
    (rt, region)
}

fn assert_refused(ack: &Value, code: &str, field: &str) {
    assert_eq!(
        (ack["result"].as_str(), ack["code"].as_str(), ack["field"].as_str()),
        (Some("refused"), Some(code), Some(field)),
        "{ack}"
    );
}

/// The refusals the operator of `api`'s node sees.
async fn refusals(api: &Api, admin: &str) -> Vec<Value> {
    let v = api.ok("GET", "/api/v1/exchange/refused", admin, None).await.expect("refused");
    v.as_array().cloned().unwrap_or_default()
}

/// Issue 11, defect 6: a `status.update` about a certificate was accepted from a country it
/// was never sent to. VN's node (a genuine member key) reports on KH's certificate to TH.
#[test]
fn exchange_refuses_a_status_from_a_country_the_certificate_was_not_sent_to() {
    let (rt, region) = three("exchange-status-peer");
    let _kh = node(&region, "KH");
    let kh = region.api("KH").expect("api");
    let (vn, th) = (Member::load(&region, "VN"), Member::load(&region, "TH"));
    rt.block_on(async {
        let doc =
            originlink_region::application_document("KH", "TH", 61, 1, chrono::Utc::now()).expect("doc");
        let cert = originlink_region::issue(&kh, "KH", "angkor", doc, None).await.expect("issued");
        let (id, number) =
            (cert["id"].as_i64().expect("id"), cert["number"].as_str().expect("number").to_owned());
        let status = |m: &Member| {
            let body = originlink_exchange::body::StatusBody::new(
                originlink_exchange::body::BusinessStatus::Accepted,
            );
            m.seal(
                originlink_exchange::MessageType::StatusUpdate,
                "KH",
                ("KH", &number, 1),
                None,
                body.to_json(),
            )
        };
        let ack = vn.push(&region, "KH", &status(&vn)).await;
        assert_refused(&ack, "STATUS_FROM_WRONG_PEER", "from");
        let statuses = kh.ok("GET", &format!("/api/v1/certificates/{id}/statuses"), "kh-officer", None).await;
        assert_eq!(statuses.expect("statuses"), json!([]), "nothing stored from VN");
        let refused = refusals(&kh, "kh-admin").await;
        assert_eq!(
            (refused[0]["code"].as_str(), refused[0]["from_country"].as_str(), refused[0]["kind"].as_str()),
            (Some("STATUS_FROM_WRONG_PEER"), Some("VN"), Some("status.update")),
            "{refused:?}"
        );
        // The country it was sent to may.
        let ack = th.push(&region, "KH", &status(&th)).await;
        assert_eq!(ack["result"], "delivered", "{ack}");
        let statuses = kh.ok("GET", &format!("/api/v1/certificates/{id}/statuses"), "kh-officer", None).await;
        let statuses = statuses.expect("statuses");
        assert_eq!(statuses.as_array().map(Vec::len), Some(1), "{statuses}");
        assert_eq!(
            (statuses[0]["from_country"].as_str(), statuses[0]["status"].as_str()),
            (Some("TH"), Some("accepted"))
        );
    });
}

/// Issue 11, defect 6: a `verification.response` was accepted from a member other than the
/// one asked. TH asks KH about KH's certificate; VN answers "denied".
#[test]
fn exchange_refuses_an_answer_from_a_country_that_was_not_asked() {
    let (rt, region) = three("exchange-answer-peer");
    let _th = node(&region, "TH");
    let th = region.api("TH").expect("api");
    let (kh, vn) = (Member::load(&region, "KH"), Member::load(&region, "VN"));
    rt.block_on(async {
        let number = "KH-2026-900101";
        let env = kh.seal(
            originlink_exchange::MessageType::CertificateIssued,
            "TH",
            ("KH", number, 1),
            None,
            kh.certificate(number, "TH"),
        );
        assert_eq!(kh.push(&region, "TH", &env).await["result"], "delivered");
        let asked =
            json!({"issuing_country": "KH", "number": number, "questions": ["Show the bill of materials"]});
        th.ok("POST", "/api/v1/verifications", "th-customs", Some(asked)).await.expect("asked");
        // The request's message id, as TH stored it (the API shows its own id).
        let config = originlink_node::Config::load(&region.nodes["TH"].config).expect("config");
        let store = originlink_node::audit::open_store(&config).await.expect("TH store");
        let request =
            store.list_verifications(Some("outgoing"), 10).await.expect("list")[0].message_id.clone();
        let answer = |m: &Member, outcome: &str| {
            let payload = json!({"outcome": outcome, "answer": format!("{outcome} by {}", m.country)});
            m.seal(
                originlink_exchange::MessageType::VerificationResponse,
                "TH",
                ("KH", number, 1),
                Some(request.clone()),
                payload.to_string().into_bytes(),
            )
        };
        let ack = vn.push(&region, "TH", &answer(&vn, "denied")).await;
        assert_refused(&ack, "ANSWER_FROM_WRONG_PEER", "from");
        let list = th.ok("GET", "/api/v1/verifications?direction=outgoing", "th-customs", None).await;
        let list = list.expect("verifications");
        assert_eq!((list[0]["status"].as_str(), list[0]["answer"].as_str()), (Some("open"), None), "{list}");
        let refused = refusals(&th, "th-admin").await;
        assert_eq!(
            (refused[0]["code"].as_str(), refused[0]["from_country"].as_str()),
            (Some("ANSWER_FROM_WRONG_PEER"), Some("VN")),
            "{refused:?}"
        );
        // The country asked may.
        assert_eq!(kh.push(&region, "TH", &answer(&kh, "confirmed")).await["result"], "delivered");
        let list = th.ok("GET", "/api/v1/verifications?direction=outgoing", "th-customs", None).await;
        assert_eq!(list.expect("verifications")[0]["status"], "confirmed");
    });
}

/// Issue 11, defect 6: a node could relay another country's genuine certificate under its own
/// country code, and the receiver stored it as a valid certificate of the relaying country.
#[test]
fn exchange_refuses_a_certificate_relayed_by_another_country() {
    let (rt, region) = three("exchange-relay-peer");
    let _th = node(&region, "TH");
    let th = region.api("TH").expect("api");
    let (kh, vn) = (Member::load(&region, "KH"), Member::load(&region, "VN"));
    rt.block_on(async {
        let number = "KH-2026-900201";
        let genuine = kh.certificate(number, "TH");
        let issued = originlink_exchange::MessageType::CertificateIssued;
        // Under VN's code: the document says KH issued it.
        let relayed = vn.seal(issued, "TH", ("VN", number, 1), None, genuine.clone());
        assert_refused(&vn.push(&region, "TH", &relayed).await, "ISSUER_MISMATCH", "certificate");
        // Under KH's code, sent by VN: only KH sends KH's certificates.
        let relayed = vn.seal(issued, "TH", ("KH", number, 1), None, genuine.clone());
        assert_refused(&vn.push(&region, "TH", &relayed).await, "ISSUER_MISMATCH", "certificate");
        let list = th.ok("GET", "/api/v1/received", "th-customs", None).await.expect("received");
        assert_eq!(list, json!([]), "nothing stored");
        let refused = refusals(&th, "th-admin").await;
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(
            refused.iter().all(|r| r["code"] == "ISSUER_MISMATCH" && r["from_country"] == "VN"),
            "{refused:?}"
        );
        // From its issuer it is a valid certificate of KH.
        let own = kh.seal(issued, "TH", ("KH", number, 1), None, genuine);
        assert_eq!(kh.push(&region, "TH", &own).await["result"], "delivered");
        let r = received(&th, number, 1).await.expect("stored");
        assert_eq!((r["issuing_country"].as_str(), r["status"].as_str()), (Some("KH"), Some("valid")), "{r}");
    });
}

/// Issue 11, defect 2 on the receiving side: a member's validly sealed certificate whose
/// payload can never be read (5,000 levels deep, or not XML at all) is stored invalid and
/// quarantined with its reason: acknowledged `not-readable` once, never processed again, shown
/// on `/healthz`, in the metrics and in the administration API; the node stays up across a
/// replay, a declaration naming it and a restart.
#[test]
fn exchange_quarantines_an_unreadable_certificate_and_stays_up() {
    let (rt, region) = three("exchange-quarantine");
    let mut th_proc = node(&region, "TH");
    let th = region.api("TH").expect("api");
    let kh = Member::load(&region, "KH");
    let issued = originlink_exchange::MessageType::CertificateIssued;
    let deep = format!("{}{}", "<a>".repeat(5000), "</a>".repeat(5000)).into_bytes();
    let envelopes = [
        kh.seal(issued, "TH", ("KH", "KH-2026-900301", 1), None, deep),
        kh.seal(issued, "TH", ("KH", "KH-2026-900302", 1), None, b"<CertificateOfOrigin".to_vec()),
    ];
    let health = || async {
        let (s, v) = th.call("GET", "/healthz", "th-admin", None).await.expect("healthz answers");
        assert_eq!((s, v["status"].as_str()), (200, Some("ok")), "{v}");
        v["quarantined"].as_i64().expect("quarantined count")
    };
    let gauge = || async {
        let (s, v) = th.call("GET", "/metrics", "th-admin", None).await.expect("metrics answer");
        assert_eq!(s, 200);
        v.as_str()
            .expect("text")
            .lines()
            .find_map(|l| l.strip_prefix("originlink_exchange_quarantined "))
            .map(str::to_owned)
    };
    rt.block_on(async {
        for env in &envelopes {
            let ack = kh.push(&region, "TH", env).await;
            assert_eq!(ack["result"], "not-readable", "{ack}");
            assert!(ack["code"].is_string(), "{ack}");
        }
        assert_eq!(health().await, 2);
        assert_eq!(gauge().await.as_deref(), Some("2"));
        let q = th.ok("GET", "/api/v1/exchange/quarantine", "th-admin", None).await.expect("quarantine");
        let q = q.as_array().cloned().expect("list");
        assert_eq!(q.len(), 2, "{q:?}");
        assert!(q.iter().all(|r| r["state"] == "quarantined" && r["from_country"] == "KH"), "{q:?}");
        assert!(q.iter().all(|r| r["reason"].as_str().is_some_and(|s| !s.is_empty())), "{q:?}");
        assert_eq!(exchange_state(&th, "th-admin").await["quarantined"], 2);
        // Stored as received, invalid: customs sees it, and a declaration naming it is answered.
        let r = received(&th, "KH-2026-900301", 1).await.expect("stored");
        assert_eq!(r["status"], "invalid", "{r}");
        // A replay is a duplicate: not processed again.
        for env in &envelopes {
            let ack = kh.push(&region, "TH", env).await;
            assert_eq!(
                (ack["result"].as_str(), ack["duplicate"].as_bool()),
                (Some("delivered"), Some(true)),
                "{ack}"
            );
        }
        assert_eq!(health().await, 2);
        let today = chrono::Utc::now().date_naive();
        let mut named = originlink_model::sample::sample(
            originlink_model::Agreement::Atiga,
            cc("KH"),
            cc("TH"),
            today,
            1,
            3,
        );
        named.number = Some(originlink_model::CertificateNumber::parse("KH-2026-900301").expect("number"));
        let decl = originlink_region::declaration_for(&named, "TH-IMP-Q-1", today);
        let (s, v) = th.call("POST", "/api/v1/declarations", "th-customs", Some(decl)).await.expect("answer");
        assert_eq!((s, v["code"].as_str()), (422, Some("CERTIFICATE_NOT_READABLE")), "{v}");
        assert_eq!(health().await, 2, "still up");
    });
    // Restarted, the node comes up with the quarantine as it was and nothing to retry.
    th_proc.kill9();
    th_proc.spawn();
    rt.block_on(async {
        assert_eq!(health().await, 2);
        assert_eq!(gauge().await.as_deref(), Some("2"));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let s = exchange_state(&th, "th-admin").await;
        assert_eq!(
            (s["quarantined"].as_i64(), s["held"].as_i64(), s["inbox"].as_i64()),
            (Some(2), Some(0), Some(2)),
            "{s}"
        );
    });
}

/// Issue 13: envelopes written by another implementation in forms the spec allows were
/// refused as `ENVELOPE_SIGNATURE_INVALID` (`created_at` with `+00:00`, lower-case `t`/`z` or
/// Java's fewer fraction digits; `"correlation_id": null`), as `PAYLOAD_HASH_MISMATCH`
/// (upper-case hex) or as malformed (`"version": 1.0`). Each now verifies over what its sender
/// signed and is delivered; and a `verification.request` without `certificate` or `deadline`,
/// which the gateway used to accept and the recipient to refuse, is refused at the gateway's
/// door with its code.
#[test]
fn exchange_accepts_every_allowed_form_and_the_gateway_refuses_incomplete_bodies() {
    let (rt, region) = three("exchange-forms");
    let _g = gateway(&region);
    let _th = node(&region, "TH");
    let th = region.api("TH").expect("api");
    let kh = Member::load(&region, "KH");
    rt.block_on(async {
        let now = chrono::Utc::now();
        type Edit = Box<dyn Fn(&mut Value)>;
        let variants: Vec<(&str, Edit)> = vec![
            ("+00:00", Box::new(move |v| v["created_at"] = json!(now.to_rfc3339()))),
            (
                "lower-case t and z",
                Box::new(move |v| v["created_at"] = json!(now.format("%Y-%m-%dt%H:%M:%S%.6fz").to_string())),
            ),
            (
                "Instant.toString()",
                Box::new(move |v| v["created_at"] = json!(now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())),
            ),
            ("correlation_id null", Box::new(|v| v["correlation_id"] = Value::Null)),
            (
                "upper-case payload_sha256",
                Box::new(|v| {
                    let h = v["payload_sha256"].as_str().expect("hash").to_ascii_uppercase();
                    v["payload_sha256"] = json!(h);
                }),
            ),
            ("version 1.0", Box::new(|v| v["certificate"]["version"] = json!(1.0))),
        ];
        let issued = originlink_exchange::MessageType::CertificateIssued;
        for (i, (what, edit)) in variants.iter().enumerate() {
            let number = format!("KH-2026-9005{i:02}");
            let sealed = kh.seal(issued, "TH", ("KH", &number, 1), None, kh.certificate(&number, "TH"));
            let env = kh.rewrite(&sealed, edit.as_ref());
            let ack = kh.push(&region, "TH", &env).await;
            assert_eq!(ack["result"], "delivered", "{what}: {ack}");
            let r = received(&th, &number, 1).await.unwrap_or_else(|| panic!("{what}: not stored"));
            assert_eq!(r["status"], "valid", "{what}: {r}");
        }

        // Through the gateway: a verification request about a TH certificate.
        let request = |payload: Value| {
            kh.seal(
                originlink_exchange::MessageType::VerificationRequest,
                "TH",
                ("TH", "TH-2026-000001", 1),
                None,
                payload.to_string().into_bytes(),
            )
        };
        let questions = json!(["Show the bill of materials"]);
        let no_deadline = request(json!({ "questions": questions }));
        assert_refused(
            &kh.push_gateway(&region, &no_deadline).await,
            "PAYLOAD_MALFORMED",
            "payload/deadline",
        );
        let complete = json!({"questions": questions, "deadline": "2026-12-31T17:00:00+07:00"});
        let no_certificate = kh.rewrite(&request(complete.clone()), &|v| v["certificate"] = Value::Null);
        assert_refused(&kh.push_gateway(&region, &no_certificate).await, "ENVELOPE_MALFORMED", "certificate");
        let unknown = kh.rewrite(&request(complete.clone()), &|v| v["priority"] = json!("high"));
        assert_refused(&kh.push_gateway(&region, &unknown).await, "ENVELOPE_MALFORMED", "priority");
        // The complete one is accepted and delivered (its deadline has an offset).
        let good = request(complete);
        let ack = kh.push_gateway(&region, &good).await;
        assert_eq!(ack["result"], "accepted", "{ack}");
        let id = ack["id"].as_str().expect("id").to_owned();
        let gw_cert = region.dir.join("gateway").join("tls.crt");
        let client = kh.client(&region.gateway_url, &gw_cert);
        eventually("the gateway delivers the request", 30, || async {
            let path = format!("/exchange/v1/messages/{id}");
            let (_, b) = client.request(hyper::Method::GET, &path, Vec::new()).await.ok()?;
            let t: Value = serde_json::from_slice(&b).ok()?;
            (t["state"] == "delivered").then_some(())
        })
        .await;
    });
}

/// The operator publishes a newer trust list: a running node puts it in force by itself, with
/// no restart; a list that is not validly signed, or is older, changes nothing.
#[test]
fn a_node_puts_a_newer_trust_list_in_force_without_a_restart() {
    let dir = tempdir("exchange-trust-reload");
    let rt = rt();
    let region = rt.block_on(originlink_region::setup(&dir, &two(true))).expect("region");
    let _kh = node(&region, "KH");
    let kh = region.api("KH").expect("KH api");
    let sequence =
        |api: Api| async move { exchange_state(&api, "kh-admin").await["trust_list"]["sequence"].as_u64() };
    let state = rt.block_on(exchange_state(&kh, "kh-admin"));
    assert_eq!(state["trust_list"]["sequence"], 1, "{state}");
    let path = region.dir.join("trust-list.json");
    let op = region.dir.join("operator");
    let operator_cert =
        originlink_trust::keystore::load_certs(&op.join("operator.crt")).expect("operator cert");
    let key = originlink_trust::keystore::load_private_key(&op.join("operator.key")).expect("operator key");
    let mut list =
        originlink_trust::TrustList::from_signed(&std::fs::read(&path).expect("list"), &operator_cert)
            .expect("list");
    let publish = |list: &originlink_trust::TrustList| {
        let bytes = list.sign(&key, operator_cert[0].der()).expect("sign");
        // Written beside and renamed, as a publishing script would.
        std::fs::write(path.with_extension("new"), bytes).expect("write");
        std::fs::rename(path.with_extension("new"), &path).expect("rename");
    };
    // Tampered after signing: refused, the list in force stays.
    list.sequence = 3;
    let signed = list.sign(&key, operator_cert[0].der()).expect("sign");
    let text = String::from_utf8(signed).expect("utf-8");
    let tampered = text.replacen("\"sequence\": 3", "\"sequence\": 4", 1);
    assert_ne!(tampered, text, "the sequence is where the test expects it");
    std::fs::write(&path, tampered).expect("write");
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(rt.block_on(sequence(kh.clone())), Some(1), "a list that does not verify is refused");
    // A newer, validly signed list: in force within seconds.
    list.sequence = 2;
    publish(&list);
    rt.block_on(eventually("trust list 2 in force", 30, || async {
        (sequence(kh.clone()).await == Some(2)).then_some(())
    }));
    // An older one changes nothing.
    list.sequence = 1;
    publish(&list);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(rt.block_on(sequence(kh.clone())), Some(2), "an older list is not put back in force");
}

/// The operator publishes a newer trust list at the gateway only: a node connected to it
/// fetches it, checks the operator's signature, keeps it as its own file and puts it in force.
#[test]
fn nodes_pick_up_a_newer_trust_list_from_their_gateway() {
    let dir = tempdir("exchange-trust-fetch");
    let rt = rt();
    let opts = Options { trust_list_refresh_s: Some(1), ..two(false) };
    let region = rt.block_on(originlink_region::setup(&dir, &opts)).expect("region");
    // KH keeps its own copy of the list (the region's nodes share the gateway's by default).
    let published = region.dir.join("trust-list.json");
    let own = region.dir.join("KH").join("trust-list.json");
    std::fs::copy(&published, &own).expect("copy");
    let cfg = &region.nodes["KH"].config;
    let text = std::fs::read_to_string(cfg).expect("config");
    assert!(text.contains("trust_list = \"../trust-list.json\""), "{text}");
    std::fs::write(
        cfg,
        text.replace("trust_list = \"../trust-list.json\"", "trust_list = \"trust-list.json\""),
    )
    .expect("config");
    let _gw = gateway(&region);
    let _kh = node(&region, "KH");
    let kh = region.api("KH").expect("KH api");
    let op = region.dir.join("operator");
    let operator_cert =
        originlink_trust::keystore::load_certs(&op.join("operator.crt")).expect("operator cert");
    let key = originlink_trust::keystore::load_private_key(&op.join("operator.key")).expect("operator key");
    let mut list =
        originlink_trust::TrustList::from_signed(&std::fs::read(&published).expect("list"), &operator_cert)
            .expect("list");
    list.sequence = 2;
    std::fs::write(&published, list.sign(&key, operator_cert[0].der()).expect("sign")).expect("publish");
    rt.block_on(eventually("KH to put the gateway's list 2 in force", 30, || async {
        let state = exchange_state(&kh, "kh-admin").await;
        (state["trust_list"]["sequence"] == 2).then_some(())
    }));
    let kept =
        originlink_trust::TrustList::from_signed(&std::fs::read(&own).expect("own list"), &operator_cert)
            .expect("KH's own file is the signed list 2");
    assert_eq!(kept.sequence, 2);
}
