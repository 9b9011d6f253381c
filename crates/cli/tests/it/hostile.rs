//! The hostile-load test of issue 11: while attackers send deeply nested and very wide
//! documents at full rate, hold slow half-sent requests open and announce 32 MiB bodies to the
//! exchange endpoint without a client certificate, a normal exporter's application is issued,
//! the certificate is delivered to the importing country through the gateway, and `/healthz`
//! answers in under a second throughout. Real processes (gateway, KH and TH nodes), real
//! mutual TLS, on loopback; every loop is bounded in count and time and stops by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::exchange::{eventually, gateway, node, received, rt, two};
use crate::support::tempdir;

/// How long the attack lasts at most (it also stops once the checks are done).
const ATTACK: Duration = Duration::from_secs(40);

struct Target {
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    pinned: Vec<Vec<u8>>,
}

impl Target {
    fn new(region: &originlink_region::Region, country: &str) -> Target {
        let info = &region.nodes[country];
        let addr = info.url.trim_start_matches("https://").parse().expect("node address");
        let keys = region.dir.join(country).join("keys");
        let id = originlink_exchange::tls::Identity::load(&keys.join("tls.crt"), &keys.join("tls.key"))
            .expect("id");
        let pinned = vec![id.cert_der.clone()];
        let tls = originlink_exchange::tls::client_config(&id, pinned.clone()).expect("tls");
        Target { addr, tls, pinned }
    }

    async fn connect(&self) -> Option<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.ok()?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
        tokio_rustls::TlsConnector::from(self.tls.clone()).connect(name, tcp).await.ok()
    }
}

/// Sends `bytes` on a new TLS connection to `addr` and returns everything the server sends
/// until it closes the connection (at most 10 s).
pub(crate) async fn raw_request(
    addr: std::net::SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    bytes: &[u8],
) -> String {
    use tokio::io::AsyncReadExt;
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut s = tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await.expect("tls");
    s.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn under_hostile_load_an_application_is_issued_and_delivered() {
    let dir = tempdir("hostile-load");
    let rt = rt();
    let region = rt.block_on(originlink_region::setup(&dir, &two(false))).expect("region");
    let _g = gateway(&region);
    let _kh = node(&region, "KH");
    let _th = node(&region, "TH");
    let kh = region.api("KH").expect("KH api");
    let th = region.api("TH").expect("TH api");
    let target = Arc::new(Target::new(&region, "KH"));
    let stop = Arc::new(AtomicBool::new(false));
    let until = Instant::now() + ATTACK;
    let sent = Arc::new(AtomicU64::new(0));

    rt.block_on(async {
        let deep = format!("{}{}", "<a>".repeat(5000), "</a>".repeat(5000));
        let wide = format!("<a {}/>", (0..20_000).map(|i| format!("a{i}=\"\"")).collect::<Vec<_>>().join(" "));
        let mut attackers = Vec::new();
        // Deep and wide documents through the user API, as an exporter, back to back.
        for doc in [deep.clone(), wide.clone(), deep, wide] {
            let (kh, stop, sent) = (kh.clone(), stop.clone(), sent.clone());
            attackers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    let r = kh.call("POST", "/api/v1/applications", "angkor", Some(json!({ "document": doc }))).await;
                    if let Ok((status, _)) = r {
                        assert!((400..500).contains(&status), "a hostile document got {status}");
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        // Slow requests: a TLS connection, half a request head, then silence; 100 at a time.
        {
            let (target, stop) = (target.clone(), stop.clone());
            attackers.push(tokio::spawn(async move {
                let mut open = Vec::new();
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    if let Some(mut s) = target.connect().await {
                        let _ = s.write_all(b"POST /api/v1/applications HTTP/1.1\r\nHost: x\r\n").await;
                        open.push(s);
                    }
                    if open.len() >= 100 {
                        open.remove(0);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }));
        }
        // 32 MiB announced to the exchange endpoint by anyone, without a client certificate.
        {
            let (addr, stop) = (target.addr, stop.clone());
            let anon = originlink_exchange::tls::anonymous_client_config(target.pinned.clone()).expect("tls");
            attackers.push(tokio::spawn(async move {
                let connector = tokio_rustls::TlsConnector::from(anon);
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else { continue };
                    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
                    if let Ok(mut s) = connector.connect(name, tcp).await {
                        let head = "POST /exchange/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 33554432\r\n\r\n";
                        let _ = s.write_all(head.as_bytes()).await;
                        let _ = s.write_all(&vec![b' '; 64 * 1024]).await;
                    }
                }
            }));
        }
        // /healthz, every 100 ms, throughout: each answer in under a second.
        let health = {
            let kh = kh.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut worst = Duration::ZERO;
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                    let t = Instant::now();
                    let r = tokio::time::timeout(Duration::from_secs(5), kh.call("GET", "/healthz", "kh-admin", None)).await;
                    let took = t.elapsed();
                    assert!(matches!(r, Ok(Ok((200, _)))), "healthz failed under load: {r:?}");
                    worst = worst.max(took);
                    n += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                (n, worst)
            })
        };

        // Let the attack get going first: 40 hostile documents answered.
        eventually("the attack to run", 30, || {
            let sent = sent.clone();
            async move { (sent.load(Ordering::Relaxed) >= 40).then_some(()) }
        })
        .await;
        let started = Instant::now();
        // Meanwhile, a normal exporter's day: apply, submit, issue, deliver.
        let now = chrono::Utc::now();
        let doc = originlink_region::application_document("KH", "TH", 11, 2, now).expect("document");
        let cert = originlink_region::issue(&kh, "KH", "angkor", doc, None).await.expect("issued under load");
        let number = cert["number"].as_str().expect("number").to_owned();
        let r = eventually("the certificate at TH under load", 60, || received(&th, &number, 1)).await;
        assert_eq!(r["status"], "valid", "{r}");

        // Keep the pressure on for at least 5 s in all, then stop every loop.
        if let Some(left) = Duration::from_secs(5).checked_sub(started.elapsed()) {
            tokio::time::sleep(left).await;
        }
        stop.store(true, Ordering::Relaxed);
        let (checks, worst) = health.await.expect("health task");
        for a in attackers {
            a.await.expect("attacker task");
        }
        assert!(checks >= 5, "healthz was checked only {checks} times");
        assert!(worst < Duration::from_secs(1), "healthz took {worst:?} under load");
        assert!(sent.load(Ordering::Relaxed) >= 40, "the attack hardly ran: {} requests", sent.load(Ordering::Relaxed));
        eprintln!(
            "hostile load: {} hostile documents, {checks} health checks (slowest {worst:?}), certificate {number} delivered",
            sent.load(Ordering::Relaxed)
        );
        // Still up afterwards, and nothing from the attack was stored.
        let apps = kh.ok("GET", "/api/v1/applications?limit=200", "kh-officer", None).await.expect("list");
        assert_eq!(apps.as_array().map(Vec::len), Some(1), "only the normal application exists: {apps}");
    });
}
