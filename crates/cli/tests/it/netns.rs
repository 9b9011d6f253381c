//! The region as separate hosts: the gateway, the KH node and the TH node each in its own
//! Linux network namespace (iproute2; created and removed by the test), joined by veth pairs
//! to a bridge in a fourth namespace, with latency added on every hop and TH cut off for 30 s.
//! Delivery resumes when TH is back, the order of a certificate's versions holds (v1, its
//! replacement v2, v2 revoked: TH ends with v1 superseded and v2 revoked), and nothing is
//! lost or applied twice.
//!
//! Latency: this machine's kernel has no `sch_netem` (`tc qdisc add … netem` answers "Specified
//! qdisc kind is unknown"), so every hop goes through a delaying TCP relay instead: each host's
//! address in the trust list is a relay on the bridge (50 ms in front of KH, 100 ms in front of
//! the gateway, 200 ms in front of TH, each way), which holds every chunk of bytes for that
//! long before passing it on, without limiting throughput. The partition is the bridge port
//! of TH's veth set down: TH neither reaches nor is reached.
//!
//! Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and `ip`; `scripts/setup.sh` installs iproute2.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use originlink_region::{Api, Region};
use originlink_trust::trustlist::TrustList;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::exchange::{Proc, count_events, drained, eventually, open_store, received, revoke, rt, two};
use crate::support::tempdir;

/// The bridge's subnet: the test's own end .1, the gateway .2, KH .3, TH .4.
const NET: &str = "10.213.0";

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip (iproute2) runs");
    assert!(
        out.status.success(),
        "ip {}: {} (the namespace test needs root and iproute2)",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// The namespaces and links; removed when dropped, whatever happened.
struct Hosts {
    tag: String,
}

impl Hosts {
    fn ns(&self, host: &str) -> String {
        format!("ol{}{host}", self.tag)
    }

    /// The bridge-side end of `host`'s veth (in the switch namespace).
    fn port(&self, host: &str) -> String {
        format!("ol{}{host}p", self.tag)
    }

    fn new() -> Hosts {
        let h = Hosts { tag: format!("{}", std::process::id() % 100_000) };
        let sw = h.ns("sw");
        ip(&["netns", "add", &sw]);
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &sw, "link", "set", "br0", "up"]);
        for (host, n) in [("gw", 2), ("kh", 3), ("th", 4)] {
            let (ns, dev, port) = (h.ns(host), format!("ol{}{host}", h.tag), h.port(host));
            ip(&["netns", "add", &ns]);
            ip(&["link", "add", &dev, "netns", &ns, "type", "veth", "peer", "name", &port, "netns", &sw]);
            ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"]);
            ip(&["-n", &ns, "addr", "add", &format!("{NET}.{n}/24"), "dev", &dev]);
            ip(&["-n", &ns, "link", "set", &dev, "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        // The test's own end, in this namespace: it runs the relays and calls the APIs.
        let (dev, port) = (format!("ol{}rt", h.tag), h.port("rt"));
        ip(&["link", "add", &dev, "type", "veth", "peer", "name", &port, "netns", &sw]);
        ip(&["-n", &sw, "link", "set", &port, "master", "br0", "up"]);
        ip(&["addr", "add", &format!("{NET}.1/24"), "dev", &dev]);
        ip(&["link", "set", &dev, "up"]);
        h
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &format!("ol{}rt", self.tag)]).output();
        for host in ["gw", "kh", "th", "sw"] {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(host)]).output();
        }
    }
}

/// A TCP relay on `listen` to `target` that holds every chunk `delay` before passing it on,
/// in both directions. Returns the port it listens on.
async fn relay(listen: &str, target: SocketAddr, delay: Duration) -> u16 {
    let l = tokio::net::TcpListener::bind(listen).await.expect("relay binds");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((client, _)) = l.accept().await {
            tokio::spawn(async move {
                let Ok(Ok(server)) =
                    tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(target))
                        .await
                else {
                    return; // unreachable (partitioned): the client sees the connection close
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::join!(pump(cr, sw, delay), pump(sr, cw, delay));
            });
        }
    });
    port
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 || tx.send((tokio::time::Instant::now() + delay, buf[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    let write = async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(read, write);
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a URL with a port")
}

/// Listens on every address (the host's veth) instead of loopback.
fn listen_everywhere(config: &std::path::Path) {
    let text = std::fs::read_to_string(config).expect("config");
    std::fs::write(config, text.replacen("listen = \"127.0.0.1:", "listen = \"0.0.0.0:", 1)).expect("config");
}

async fn issue(kh: &Api, seq: u32, replaces: Option<i64>) -> Value {
    let doc = originlink_region::application_document("KH", "TH", seq, 1, chrono::Utc::now()).expect("doc");
    originlink_region::issue(kh, "KH", "angkor", doc, replaces).await.expect("issued at KH")
}

#[test]
fn hosts_with_latency_and_a_partition_lose_nothing_and_keep_order() {
    let hosts = Hosts::new();
    let dir = tempdir("netns");
    let rt = rt();
    let mut opts = two(false);
    opts.log_level = Some("warn".into());
    let mut region: Region = rt.block_on(originlink_region::setup(&dir, &opts)).expect("region");

    // Each host listens on its veth; the trust list names the relays in front of them.
    let (gw_port, kh_port, th_port) =
        (port_of(&region.gateway_url), port_of(&region.nodes["KH"].url), port_of(&region.nodes["TH"].url));
    for config in [&region.gateway_config, &region.nodes["KH"].config, &region.nodes["TH"].config] {
        listen_everywhere(config);
    }
    let relays = rt.block_on(async {
        let at = |n: u8, port: u16| SocketAddr::from(([10, 213, 0, n], port));
        let listen = format!("{NET}.1:0");
        (
            relay(&listen, at(2, gw_port), Duration::from_millis(100)).await,
            relay(&listen, at(3, kh_port), Duration::from_millis(50)).await,
            relay(&listen, at(4, th_port), Duration::from_millis(200)).await,
        )
    });
    let operator = region.dir.join("operator");
    let key = originlink_trust::keystore::load_private_key(&operator.join("operator.key")).expect("key");
    let cert =
        originlink_trust::keystore::load_certs(&operator.join("operator.crt")).expect("cert").remove(0);
    let list_path = region.dir.join("trust-list.json");
    let mut list =
        TrustList::from_signed(&std::fs::read(&list_path).expect("list"), std::slice::from_ref(&cert))
            .expect("list");
    list.sequence += 1;
    for g in &mut list.gateways {
        g.url = format!("https://{NET}.1:{}", relays.0);
    }
    for m in &mut list.members {
        let port = if m.country.as_str() == "KH" { relays.1 } else { relays.2 };
        for n in &mut m.nodes {
            n.url = format!("https://{NET}.1:{port}");
        }
    }
    std::fs::write(&list_path, list.sign(&key, cert.der()).expect("signed")).expect("list written");

    // The test calls each node's API directly on its host (no relay).
    region.nodes.get_mut("KH").expect("KH").url = format!("https://{NET}.3:{kh_port}");
    region.nodes.get_mut("TH").expect("TH").url = format!("https://{NET}.4:{th_port}");
    let short_pushes = [("ORIGINLINK__GATEWAY__PUSH_TIMEOUT_MS", "5000")];
    let config = |p: &std::path::Path| p.to_str().expect("utf-8").to_owned();
    let (gw_ns, kh_ns, th_ns) = (hosts.ns("gw"), hosts.ns("kh"), hosts.ns("th"));
    let gw_cfg = config(&region.gateway_config);
    let _gw =
        Proc::start_in(Some(&gw_ns), &short_pushes, &["gateway", "--config", &gw_cfg], dir.join("gw.log"));
    let kh_cfg = config(&region.nodes["KH"].config);
    let _kh = Proc::start_in(Some(&kh_ns), &[], &["node", "--config", &kh_cfg], dir.join("KH.log"));
    let th_cfg = config(&region.nodes["TH"].config);
    let _th = Proc::start_in(Some(&th_ns), &[], &["node", "--config", &th_cfg], dir.join("TH.log"));
    let kh = region.api("KH").expect("KH api");
    let th = region.api("TH").expect("TH api");

    let mut sent: Vec<String> = Vec::new();
    rt.block_on(async {
        // Connected, with latency: 10 certificates arrive.
        let started = Instant::now();
        for seq in 0..10 {
            sent.push(issue(&kh, seq, None).await["number"].as_str().expect("number").to_owned());
        }
        for n in &sent {
            eventually("a certificate at TH across the relays", 60, || received(&th, n, 1)).await;
        }
        eprintln!("netns: 10 certificates across 50–200 ms hops in {:.1} s", started.elapsed().as_secs_f64());
    });

    // TH cut off for 30 s. Meanwhile KH issues 20 more, and one certificate is issued, replaced
    // and the replacement revoked: three messages about one certificate, to be applied in order.
    ip(&["-n", &hosts.ns("sw"), "link", "set", &hosts.port("th"), "down"]);
    let cut = Instant::now();
    let (number, v2id) = rt.block_on(async {
        for seq in 10..30 {
            sent.push(issue(&kh, seq, None).await["number"].as_str().expect("number").to_owned());
        }
        let v1 = issue(&kh, 30, None).await;
        let v2 = issue(&kh, 31, v1["id"].as_i64()).await;
        let v2id = v2["id"].as_i64().expect("id");
        revoke(&kh, v2id).await;
        (v1["number"].as_str().expect("number").to_owned(), v2id)
    });
    let waiting = rt.block_on(async {
        let s = kh.ok("GET", &format!("/api/v1/certificates/{v2id}"), "kh-officer", None).await.expect("v2");
        s["remote_status"].clone()
    });
    assert!(waiting.is_null(), "nothing came back from TH while it was cut off: {waiting}");
    std::thread::sleep(Duration::from_secs(30).saturating_sub(cut.elapsed()));
    ip(&["-n", &hosts.ns("sw"), "link", "set", &hosts.port("th"), "up"]);
    let healed = Instant::now();

    rt.block_on(async {
        for n in &sent {
            eventually("every certificate at TH after the partition", 120, || received(&th, n, 1)).await;
        }
        eventually("v1 superseded and v2 revoked at TH", 120, || async {
            let a = received(&th, &number, 1).await?;
            let b = received(&th, &number, 2).await?;
            (a["status"] == "superseded" && b["status"] == "revoked").then_some(())
        })
        .await;
        eprintln!(
            "netns: TH cut off for {:.1} s; everything delivered {:.1} s after it was back",
            (healed - cut).as_secs_f64(),
            healed.elapsed().as_secs_f64()
        );
        drained(&[(&kh, "kh-admin"), (&th, "th-admin")], 120).await;
        // Nothing lost, nothing twice: 31 first versions and one replacement stored at TH,
        // a status back at KH for each.
        let (th_store, kh_store) = (open_store(&region, "TH").await, open_store(&region, "KH").await);
        assert_eq!(count_events(th_store.as_ref(), "received.stored").await, sent.len() + 2);
        eventually("every status back at KH", 60, || async {
            (count_events(kh_store.as_ref(), "certificate.status").await >= sent.len() + 2).then_some(())
        })
        .await;
        for n in &sent {
            assert_eq!(received(&th, n, 1).await.expect("at TH")["status"], "valid", "{n}");
        }
        assert!(th_store.verify_audit().await.expect("audit").is_ok());
        assert!(kh_store.verify_audit().await.expect("audit").is_ok());
    });
    // The processes stop (dropped first), then the namespaces go.
}
