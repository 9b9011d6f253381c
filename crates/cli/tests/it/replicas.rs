//! A replicated region on PostgreSQL under failure: two replicas of the KH node, of the TH
//! node and of the gateway, each a separate `originlink` process with its own listener, the
//! replicas of one service sharing its database, every replica an endpoint in the trust
//! list. One KH replica and one gateway replica are `kill -9`'d while 2,000 certificates are
//! issued KH → TH, and started again later. Afterwards every certificate is at TH exactly
//! once, KH's numbers have no gap, both audit chains verify, and both replicas of each
//! service served (the split is printed).

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use originlink_region::{Api, Region};
use serde_json::{Value, json};

use crate::exchange::{Proc, count_events, each_received_once, eventually, on_postgres, open_store, rt, two};
use crate::support::tempdir;

fn replica(region: &Region, country: &str, r: usize) -> Proc {
    let info = &region.nodes[country];
    let config = if r == 0 { &info.config } else { &info.replicas[r - 1].config };
    let log = region.dir.join(format!("{country}-{}.log", r + 1));
    Proc::start(&["node", "--config", config.to_str().expect("utf-8")], log)
}

fn gateway_replica(region: &Region, r: usize) -> Proc {
    let config = if r == 0 { &region.gateway_config } else { &region.gateway_replicas[r - 1].config };
    let log = region.dir.join(format!("gateway-{}.log", r + 1));
    Proc::start(&["gateway", "--config", config.to_str().expect("utf-8")], log)
}

/// One plain HTTP/1.1 exchange with a console on loopback: (status, Set-Cookie pairs, body).
fn http(url: &str, method: &str, path: &str, cookies: &str, form: &str) -> (u16, Vec<String>, String) {
    let addr = url.strip_prefix("http://").expect("http URL");
    let mut s = std::net::TcpStream::connect(addr).expect("console reachable");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookies}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    s.write_all(req.as_bytes()).expect("request sent");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("answer read");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let cookies = head
        .lines()
        .filter_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .filter_map(|c| c.split(';').next().map(str::to_owned))
        .collect();
    (status, cookies, body.to_owned())
}

/// Signs in on one console replica and returns the session cookies; the other replica then
/// knows the person (sessions live in the shared database).
fn console_session_crosses_replicas(region: &Region) {
    let info = &region.nodes["KH"];
    let (a, b) = (info.console_url.as_deref().expect("console"), info.replicas[0].console_url.as_str());
    let (status, cookies, page) = http(a, "GET", "/sign-in", "", "");
    assert_eq!(status, 200, "{page}");
    let token = page
        .split("name=\"login_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the sign-in form's token");
    let password = &info.passwords["kh-officer"];
    let form = format!("name=kh-officer&password={password}&login_token={token}&next=%2F");
    let (status, session, _) = http(a, "POST", "/sign-in", &cookies.join("; "), &form);
    assert_eq!(status, 303, "signed in on replica 1");
    let session: Vec<String> = session.into_iter().filter(|c| !c.ends_with('=')).collect();
    let (status, _, page) = http(b, "GET", "/applications", &session.join("; "), "");
    assert_eq!(status, 200, "replica 2 knows the session replica 1 started: {page}");
    assert!(page.contains("kh-officer"), "replica 2 shows who is signed in");
}

/// The value of an unlabelled counter in a `/metrics` text, 0 when absent.
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// `/metrics` of a node replica (through its API listener; it asks for no role).
async fn metrics(api: &Api) -> String {
    let anyone = api.tokens.keys().next().expect("a user");
    match api.call("GET", "/metrics", anyone, None).await {
        Ok((200, Value::String(text))) => text,
        other => panic!("metrics: {other:?}"),
    }
}

/// One issuance through whichever KH replica answers: each step goes to replica `prefer`
/// first and moves to the other on a failure; a step that already happened (409) is read
/// back. Counts, per replica, the approvals it answered.
async fn issue(kh: &[Api; 2], mut prefer: usize, seq: u32, served: &[AtomicUsize; 2]) -> String {
    let user = if seq.is_multiple_of(2) { "angkor" } else { "mekong" };
    let doc = originlink_region::application_document("KH", "TH", seq, 1, chrono::Utc::now()).expect("doc");
    let pause = || tokio::time::sleep(Duration::from_millis(50));
    let id = loop {
        if let Ok((201, app)) =
            kh[prefer].call("POST", "/api/v1/applications", user, Some(json!({"document": doc}))).await
        {
            break app["id"].as_i64().expect("id");
        }
        prefer = 1 - prefer;
        pause().await;
    };
    loop {
        match kh[prefer].call("POST", &format!("/api/v1/applications/{id}/submit"), user, None).await {
            Ok((200 | 409, _)) => break,
            _ => prefer = 1 - prefer,
        }
        pause().await;
    }
    loop {
        match kh[prefer].call("POST", &format!("/api/v1/applications/{id}/approve"), "kh-officer", None).await
        {
            Ok((200, c)) => {
                served[prefer].fetch_add(1, Ordering::SeqCst);
                return c["number"].as_str().expect("number").to_owned();
            }
            Ok((409, _)) => {
                if let Ok((200, app)) =
                    kh[prefer].call("GET", &format!("/api/v1/applications/{id}"), "kh-officer", None).await
                    && let Some(cid) = app["certificate_id"].as_i64()
                    && let Ok((200, c)) = kh[prefer]
                        .call("GET", &format!("/api/v1/certificates/{cid}"), "kh-officer", None)
                        .await
                {
                    return c["number"].as_str().expect("number").to_owned();
                }
            }
            _ => prefer = 1 - prefer,
        }
        pause().await;
    }
}

#[test]
fn replicas_on_postgres_survive_the_loss_of_one_of_each() {
    const N: u32 = 2000;
    let dir = tempdir("replicas");
    let mut opts = two(false);
    opts.log_level = Some("warn".into());
    opts.replicas = 2;
    on_postgres(&mut opts, "rep");
    let rt = rt();
    let region = rt.block_on(originlink_region::setup(&dir, &opts)).expect("region");
    assert_eq!((region.nodes["KH"].replicas.len(), region.gateway_replicas.len()), (1, 1));

    let mut gateways = [gateway_replica(&region, 0), gateway_replica(&region, 1)];
    let mut kh_procs = [replica(&region, "KH", 0), replica(&region, "KH", 1)];
    let th_procs = [replica(&region, "TH", 0), replica(&region, "TH", 1)];
    console_session_crosses_replicas(&region);

    let kh = [region.replica_api("KH", 0).expect("api"), region.replica_api("KH", 1).expect("api")];
    let th = [region.replica_api("TH", 0).expect("api"), region.replica_api("TH", 1).expect("api")];
    let gw_api = |r: usize| {
        // The gateway's /metrics is public: any client that the gateway's TLS accepts reads it.
        let url = if r == 0 { region.gateway_url.clone() } else { region.gateway_replicas[0].url.clone() };
        let keys = region.dir.join("KH").join("keys");
        let id = originlink_exchange::tls::Identity::load(&keys.join("tls.crt"), &keys.join("tls.key"))
            .expect("identity");
        let pinned = originlink_trust::keystore::load_certs(&region.dir.join("gateway").join("tls.crt"))
            .expect("the gateway's certificate")
            .iter()
            .map(|c| c.der().to_vec())
            .collect();
        let tls = originlink_exchange::tls::client_config(&id, pinned).expect("tls");
        originlink_exchange::client::PeerClient::new(&url, tls, Duration::from_secs(10)).expect("client")
    };
    let gateway_metrics = |r: usize| {
        let client = gw_api(r);
        async move {
            let (s, b) = client.request(hyper::Method::GET, "/metrics", Vec::new()).await.expect("metrics");
            assert_eq!(s.as_u16(), 200);
            String::from_utf8_lossy(&b).into_owned()
        }
    };

    let started = Instant::now();
    let served = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let next = Arc::new(AtomicU32::new(0));
    let issuing = {
        let (kh, served, next) = (kh.clone(), served.clone(), next.clone());
        rt.spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for t in 0..8 {
                let (kh, served, next) = (kh.clone(), served.clone(), next.clone());
                tasks.spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let seq = next.fetch_add(1, Ordering::SeqCst);
                        if seq >= N {
                            return mine;
                        }
                        mine.push(issue(&kh, t % 2, seq + 1000, &served).await);
                    }
                });
            }
            let mut all = Vec::new();
            while let Some(r) = tasks.join_next().await {
                all.extend(r.expect("issuer task"));
            }
            all
        })
    };
    // A third of the way: read the split so far, then kill -9 the first KH replica and the
    // first gateway replica. Two thirds of the way: start them again.
    let at = |share: u32| {
        let next = next.clone();
        async move {
            eventually("the issuers to get that far", 600, || async {
                (next.load(Ordering::SeqCst) >= N * share / 3).then_some(())
            })
            .await
        }
    };
    rt.block_on(at(1));
    let before_kill =
        rt.block_on(async { (metrics(&kh[0]).await, gateway_metrics(0).await, gateway_metrics(1).await) });
    kh_procs[0].kill9();
    gateways[0].kill9();
    let killed_at = next.load(Ordering::SeqCst);
    rt.block_on(at(2));
    kh_procs[0].spawn();
    gateways[0].spawn();
    let numbers = rt.block_on(issuing).expect("issuers");
    let issued_in = started.elapsed();

    let mut distinct = numbers.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), N as usize, "{N} distinct certificates issued");
    // Gapless: KH's numbers are exactly 1..=N of its sequence.
    let mut seqs: Vec<u32> = distinct
        .iter()
        .map(|n| n.rsplit('-').next().and_then(|s| s.parse().ok()).expect("KH-YYYY-NNNNNN"))
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=N).collect::<Vec<_>>(), "KH's numbers have no gap and no repeat");

    rt.block_on(async {
        eventually("every outbox and queue to drain", 300, || async {
            let mut settled = true;
            for (api, admin) in [(&kh[1], "kh-admin"), (&th[0], "th-admin")] {
                let s = api.ok("GET", "/api/v1/exchange", admin, None).await.ok()?;
                settled &= s["outbox_pending"] == 0 && s["held"] == 0 && s["outbox_dead"] == 0;
            }
            settled.then_some(())
        })
        .await;
    });
    let settled_in = started.elapsed();

    rt.block_on(async {
        let (th_store, kh_store) = (open_store(&region, "TH").await, open_store(&region, "KH").await);
        each_received_once(th_store.as_ref(), &distinct).await;
        assert_eq!(
            count_events(th_store.as_ref(), "received.stored").await,
            N as usize,
            "applied once at TH"
        );
        // Each certificate's status came back once.
        eventually("every status back at KH", 120, || async {
            (count_events(kh_store.as_ref(), "certificate.status").await == N as usize).then_some(())
        })
        .await;
        assert!(th_store.verify_audit().await.expect("audit").is_ok(), "TH's audit chain");
        assert!(kh_store.verify_audit().await.expect("audit").is_ok(), "KH's audit chain");
    });

    // The split: approvals each KH replica answered, envelopes each gateway replica accepted.
    let (kh1_before, gw1_before, gw2_before) = before_kill;
    let after = rt.block_on(async {
        (
            metrics(&kh[0]).await,
            metrics(&kh[1]).await,
            gateway_metrics(0).await,
            gateway_metrics(1).await,
            metrics(&th[0]).await,
            metrics(&th[1]).await,
        )
    });
    let served = [served[0].load(Ordering::SeqCst), served[1].load(Ordering::SeqCst)];
    let split = BTreeMap::from([
        ("KH replica 1 approvals (client count)", served[0] as u64),
        ("KH replica 2 approvals (client count)", served[1] as u64),
        (
            "KH replica 1 approvals before its kill (/metrics)",
            counter(&kh1_before, "originlink_approvals_total"),
        ),
        (
            "KH replica 1 approvals after its restart (/metrics)",
            counter(&after.0, "originlink_approvals_total"),
        ),
        ("KH replica 2 approvals (/metrics)", counter(&after.1, "originlink_approvals_total")),
        (
            "gateway replica 1 accepted before its kill",
            counter(&gw1_before, "originlink_gateway_accepted_total"),
        ),
        (
            "gateway replica 2 accepted before the kill",
            counter(&gw2_before, "originlink_gateway_accepted_total"),
        ),
        (
            "gateway replica 1 accepted after its restart",
            counter(&after.2, "originlink_gateway_accepted_total"),
        ),
        ("gateway replica 2 accepted", counter(&after.3, "originlink_gateway_accepted_total")),
        ("TH replica 1 requests", counter(&after.4, "originlink_http_requests_total")),
        ("TH replica 2 requests", counter(&after.5, "originlink_http_requests_total")),
    ]);
    eprintln!(
        "replicas: {N} certificates issued in {:.1} s, settled in {:.1} s; killed at {killed_at}; split {split:#?}",
        issued_in.as_secs_f64(),
        settled_in.as_secs_f64()
    );
    assert!(served.iter().all(|&n| n > 0), "both KH replicas approved: {served:?}");
    assert!(counter(&kh1_before, "originlink_approvals_total") > 0, "KH replica 1 approved before its kill");
    assert!(counter(&after.1, "originlink_approvals_total") > 0, "KH replica 2 approved");
    assert!(
        counter(&gw1_before, "originlink_gateway_accepted_total") > 0,
        "gateway replica 1 accepted before its kill"
    );
    assert!(counter(&after.3, "originlink_gateway_accepted_total") > 0, "gateway replica 2 accepted");
    drop((gateways, kh_procs, th_procs));
}
