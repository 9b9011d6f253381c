//! Failover between a peer's endpoints over real mutual TLS: an endpoint that refuses
//! connections and one that answers 503 are passed over, the one that answers is kept, and a
//! refusal that is the peer's answer (a 4xx) is not retried elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing;
use chrono::Utc;
use originlink_exchange::client::PeerClient;
use originlink_exchange::failover::Failover;
use originlink_exchange::server::{self, Shutdown};
use originlink_exchange::tls::{self, Identity};

struct Endpoint {
    url: String,
    hits: Arc<AtomicUsize>,
    stop: Shutdown,
}

/// A server on a free port answering `status` to every batch, counting them.
async fn endpoint(id: &Identity, status: StatusCode) -> Endpoint {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let router = Router::new().route(
        originlink_exchange::MESSAGES_PATH,
        routing::post(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async move { (status, "{\"acks\":[]}") }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    let stop = Shutdown::default();
    let tls = tls::server_config(id).expect("server tls");
    tokio::spawn(server::serve(listener, tls, router, stop.clone()));
    Endpoint { url, hits, stop }
}

fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!("https://{}", l.local_addr().expect("addr"))
}

async fn post(f: &Failover) -> Result<(StatusCode, bytes::Bytes), originlink_exchange::client::ClientError> {
    f.request(hyper::Method::POST, originlink_exchange::MESSAGES_PATH, b"{}".to_vec()).await
}

#[tokio::test]
async fn a_peer_is_reached_through_whichever_endpoint_answers() {
    let issued = originlink_trust::keys::init_gateway("HUB", Utc::now().date_naive()).expect("keys");
    let id = Identity::from_parts(vec![issued.cert_der.clone()], issued.key);
    let unavailable = endpoint(&id, StatusCode::SERVICE_UNAVAILABLE).await;
    let good = endpoint(&id, StatusCode::OK).await;
    let refusing = endpoint(&id, StatusCode::FORBIDDEN).await;
    let client = |url: &str| {
        let tls = tls::client_config(&id, vec![issued.cert_der.clone()]).expect("client tls");
        Arc::new(PeerClient::new(url, tls, Duration::from_secs(5)).expect("client"))
    };

    // Closed port, then 503, then an answer: the answer comes back and that endpoint is kept.
    let f = Failover::new(vec![client(&closed_port()), client(&unavailable.url), client(&good.url)])
        .expect("endpoints");
    assert_eq!(f.len(), 3);
    let (status, _) = post(&f).await.expect("an endpoint answers");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(f.base(), good.url, "the endpoint that answered is the current one");
    post(&f).await.expect("answers again");
    assert_eq!(
        unavailable.hits.load(Ordering::SeqCst),
        1,
        "the 503 endpoint was tried once, then passed over"
    );
    assert_eq!(good.hits.load(Ordering::SeqCst), 2);

    // The current endpoint goes away: the next one that answers takes over.
    good.stop.trigger();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let f2 = Failover::new(vec![client(&good.url), client(&refusing.url)]).expect("endpoints");
    let (status, _) = post(&f2).await.expect("an answer");
    assert_eq!(status, StatusCode::FORBIDDEN, "a refusal is the peer's answer, not a reason to move on");
    assert_eq!(f2.base(), refusing.url);
    let f3 = Failover::new(vec![client(&refusing.url), client(&unavailable.url)]).expect("endpoints");
    assert_eq!(post(&f3).await.expect("answer").0, StatusCode::FORBIDDEN);
    assert_eq!(unavailable.hits.load(Ordering::SeqCst), 1, "a 403 is not retried on another endpoint");

    // Nothing answers: the last failure is returned.
    let dead = Failover::new(vec![client(&closed_port()), client(&unavailable.url)]).expect("endpoints");
    assert_eq!(post(&dead).await.expect("the 503 answer").0, StatusCode::SERVICE_UNAVAILABLE);
    let all_closed = Failover::new(vec![client(&closed_port()), client(&closed_port())]).expect("endpoints");
    assert!(post(&all_closed).await.is_err(), "no endpoint reachable is an error");

    assert!(Failover::new(Vec::new()).is_none(), "no endpoint, no client");

    // Spread: senders without a preference start anywhere, and still reach the one that answers.
    for _ in 0..4 {
        let s = Failover::spread(vec![client(&closed_port()), client(&refusing.url)]).expect("endpoints");
        assert_eq!(post(&s).await.expect("answer").0, StatusCode::FORBIDDEN);
    }
    unavailable.stop.trigger();
    refusing.stop.trigger();
}
