//! Starting the exchange's workers: two outbox workers, and the pull worker when the node
//! pulls from its gateway. What the pull worker applies that others may be waiting for is
//! sent on `arrivals`, for the node to act on.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use originlink_exchange::Peer;
use originlink_exchange::body::Batch;
use tokio::sync::mpsc;

use super::{Arrival, Env, Exchange, outbound};

/// Runs the outbox worker (and the pull worker when configured) until `stop` fires.
pub fn spawn(
    env: Env,
    x: Arc<Exchange>,
    stop: tokio::sync::watch::Receiver<bool>,
    arrivals: mpsc::UnboundedSender<Vec<Arrival>>,
) {
    if x.pull {
        tokio::spawn(pull_loop(env.clone(), x.clone(), stop.clone(), arrivals));
    }
    // Two workers, so one batch can be on the wire while the next is being claimed; leases
    // keep them from taking the same messages.
    tokio::spawn(watch_trust_list(x.clone(), stop.clone()));
    if let Some(every) = x.trust_refresh() {
        tokio::spawn(fetch_trust_list(x.clone(), every, stop.clone()));
    }
    tokio::spawn(outbound::outbox_loop(env.clone(), x.clone(), stop.clone()));
    tokio::spawn(outbound::outbox_loop(env, x, stop));
}

async fn pull_loop(
    env: Env,
    x: Arc<Exchange>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    arrivals: mpsc::UnboundedSender<Vec<Arrival>>,
) {
    let mut gateway_peer = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let mut idle = true;
        match x.gateway_route() {
            Ok(None) => {
                tracing::error!("exchange.pull is set but there is no gateway");
                return;
            }
            Err(e) => tracing::warn!(error = %e, "pull: no client"),
            Ok(Some(client)) => {
                let peer = gateway_peer.get_or_insert_with(|| Peer::Gateway {
                    id: "gateway".into(),
                    url: client.base().to_owned(),
                });
                let req = serde_json::json!({"max": x.batch}).to_string().into_bytes();
                match client.request(hyper::Method::POST, "/exchange/v1/pull", req).await {
                    Ok((s, b)) if s == StatusCode::OK => {
                        if let Ok(batch) = Batch::parse(&b) {
                            idle = false;
                            let raws = batch.messages.iter().map(|m| m.get().as_bytes().to_vec()).collect();
                            let done = x.process(&env, peer, raws, Vec::new()).await;
                            if !done.arrivals.is_empty() {
                                // The receiver runs as long as the node; if it is gone, so is the node.
                                let _ = arrivals.send(done.arrivals);
                            }
                            if !done.acks.is_empty() {
                                let body = serde_json::to_vec(&serde_json::json!({ "acks": done.acks }))
                                    .unwrap_or_default();
                                if let Err(e) =
                                    client.request(hyper::Method::POST, "/exchange/v1/pull/ack", body).await
                                {
                                    tracing::warn!(error = %e, "pull: acknowledging failed");
                                }
                            }
                        }
                    }
                    Ok((s, _)) => tracing::warn!(status = %s, "pull refused"),
                    Err(e) => tracing::debug!(error = %e, "pull failed"),
                }
            }
        }
        if idle {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// How often the trust list file is looked at.
const TRUST_LIST_CHECK: Duration = Duration::from_secs(2);

/// Puts a newer trust list in force when its file changes (the operator, or a script that
/// fetched the newly published list, replaced it): no restart. A list that does not verify is
/// refused, and the one in force stays; each refusal is logged once.
async fn watch_trust_list(x: Arc<Exchange>, stop: tokio::sync::watch::Receiver<bool>) {
    let path = x.trust_list_path().to_path_buf();
    let mut refused: Option<String> = None;
    originlink_exchange::server::on_file_change(path, TRUST_LIST_CHECK, stop, || {
        match x.reload_trust_list() {
            Ok(super::Reload::Loaded(_)) => refused = None,
            Ok(super::Reload::Unchanged(current)) => {
                tracing::info!(
                    sequence = current,
                    "the trust list file changed but is not newer; the list in force stays"
                )
            }
            Err(e) => {
                if refused.as_deref() != Some(e.as_str()) {
                    tracing::warn!(error = %e, "a new trust list was refused; the list in force stays");
                }
                refused = Some(e);
            }
        }
    })
    .await
}

/// Asks the gateway for a newer signed trust list every `every`: nodes pick up what the
/// operator publishes at the gateway by themselves. Failures are logged once each and retried.
async fn fetch_trust_list(x: Arc<Exchange>, every: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut failing: Option<String> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        match x.fetch_trust_list().await {
            Ok(_) => failing = None,
            Err(e) => {
                if failing.as_deref() != Some(e.as_str()) {
                    tracing::warn!(error = %e, "fetching the trust list from the gateway failed; the list in force stays");
                }
                failing = Some(e);
            }
        }
    }
}
