//! Hostile clients at the listener (issue 11, defects 4 and 5): the sender is identified from
//! the TLS handshake before any body byte is read, bodies stop at the limit, and slow or idle
//! connections are cut off; the number of connections is capped. The waits below are upper
//! bounds on what must happen (on the old server these requests hung for ever), never sleeps
//! that synchronize.

use std::time::Duration;

use originlink_exchange::server::ServeLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// Far longer than any limit the tests set, far shorter than "for ever".
const BOUND: Duration = Duration::from_secs(10);

fn head(content_length: usize) -> Vec<u8> {
    format!(
        "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n",
        originlink_exchange::MESSAGES_PATH
    )
    .into_bytes()
}

/// Reads until the server closes the connection (or the bound passes: then panics) and
/// returns what it sent.
async fn until_closed<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(BOUND, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&out).into_owned(),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => {
                panic!("the server kept the connection open; it had sent {:?}", String::from_utf8_lossy(&out))
            }
        }
    }
}

fn status_and_code(resp: &str) -> (String, String) {
    let status = resp.split(' ').nth(1).unwrap_or("").to_owned();
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
    let code = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sender_is_known_before_a_body_byte_is_read() {
    let db = sqlite_db();
    let net = Net::new(&db.url, Options::default());
    let gw = net.start().await;
    // Each announces a body and sends none of it: the answer must not wait for the body. A
    // listed peer's is past even what the gateway would drain to answer cleanly.
    for (who, status, code, length) in [
        (None, "401", "CLIENT_CERT_REQUIRED", 32 << 20),
        (Some(&net.sg), "403", "CLIENT_CERT_UNKNOWN", 32 << 20),
        (Some(&net.mm), "403", "CLIENT_CERT_REVOKED", 32 << 20),
        (Some(&net.kh), "413", "BATCH_TOO_LARGE", 200 << 20),
    ] {
        let mut s = tls_connect(gw.addr, who, &net.gw).await.expect("tls");
        s.write_all(&head(length)).await.expect("write head");
        let resp = until_closed(&mut s).await;
        assert_eq!(status_and_code(&resp), (status.to_owned(), code.to_owned()), "{resp}");
    }
    // A listed peer that sends more than the limit without announcing it: the body is read on
    // and dropped, never held, and answered 413 on a connection that still works.
    let mut conn = OneConn::connect(gw.addr, Some(&net.kh), &net.gw).await;
    let (status, b) = conn.post(vec![b' '; 4 << 20]).await;
    assert_eq!((status, b["code"].as_str()), (413, Some("BATCH_TOO_LARGE")), "{b}");
    let (status, _) = conn.request(hyper::Method::GET, "/healthz", Vec::new()).await;
    assert_eq!(status, 200, "the connection carries the next request");
    gw.stop().await;
}

fn short_limits() -> ServeLimits {
    ServeLimits {
        handshake_timeout_ms: 300,
        header_timeout_ms: 300,
        body_timeout_ms: 300,
        max_connections: 64,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_cut_off() {
    let db = sqlite_db();
    let mut net = Net::new(&db.url, Options::default());
    net.config.server.limits = short_limits();
    let gw = net.start().await;

    // A half-sent request head.
    let mut s = tls_connect(gw.addr, Some(&net.kh), &net.gw).await.expect("tls");
    s.write_all(b"POST /exchange/v1/messages HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    until_closed(&mut s).await;

    // A whole head and a tenth of the body it announced.
    let mut s = tls_connect(gw.addr, Some(&net.kh), &net.gw).await.expect("tls");
    s.write_all(&head(1000)).await.expect("write");
    s.write_all(&[b' '; 100]).await.expect("write");
    let resp = until_closed(&mut s).await;
    assert_eq!(status_and_code(&resp), ("408".to_owned(), "BODY_TIMEOUT".to_owned()), "{resp}");

    // A kept-alive connection left idle after a request.
    let mut s = tls_connect(gw.addr, Some(&net.kh), &net.gw).await.expect("tls");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let resp = until_closed(&mut s).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");

    // A TCP connection that never starts TLS.
    let mut tcp = tokio::net::TcpStream::connect(gw.addr).await.expect("connect");
    until_closed(&mut tcp).await;

    // Through all of it, a normal request is served.
    let mut conn = OneConn::connect(gw.addr, Some(&net.kh), &net.gw).await;
    let (status, _) = conn.request(hyper::Method::GET, "/healthz", Vec::new()).await;
    assert_eq!(status, 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let db = sqlite_db();
    let mut net = Net::new(&db.url, Options::default());
    net.config.server.limits = ServeLimits { max_connections: 2, ..ServeLimits::default() };
    let gw = net.start().await;
    let first = tls_connect(gw.addr, Some(&net.kh), &net.gw).await.expect("tls");
    let _second = tls_connect(gw.addr, Some(&net.kh), &net.gw).await.expect("tls");
    // The third is accepted by the kernel but not served while two are open.
    let mut third = tokio::spawn({
        let (addr, kh, gwk) = (gw.addr, net.kh.clone(), net.gw.clone());
        async move { tls_connect(addr, Some(&kh), &gwk).await.map(|_| ()) }
    });
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut third).await.is_err(),
        "a third connection was served past the cap of 2"
    );
    drop(first);
    tokio::time::timeout(BOUND, third)
        .await
        .expect("served once a slot is free")
        .expect("task")
        .expect("tls");
    gw.stop().await;
}
