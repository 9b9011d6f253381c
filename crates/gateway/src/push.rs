//! Push workers: [`PUSHES_IN_FLIGHT`] tasks per recipient country that has a node URL and does
//! not pull. Each claims due messages (a lease, so two never take the same), pushes them as one
//! batch over mutual TLS, and records the acknowledgements in one transaction; while one waits
//! for the recipient to store its batch, another's batch is on the way. (Order per certificate
//! does not depend on it: the recipient holds what comes before the version it needs.) A recipient that is down only delays its own worker.
//! An idle worker wakes when a message for its recipient is accepted, or every 100 ms. A
//! member listed with several endpoints (replicas) is pushed to through the one that
//! answers ([`Failover`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use originlink_exchange::backoff::{self, Backoff};
use originlink_exchange::body::BatchV2;
use originlink_exchange::failover::Failover;
use originlink_exchange::{Batch, BatchResponse, MESSAGES_PATH, MESSAGES_PATH_V2};
use originlink_service::Clock;
use tokio::sync::{Notify, watch};

use crate::metrics::Metrics;
use crate::queue::{Claimed, Outcome, Queue, Settle};

/// Push requests in flight to one recipient at a time (its workers).
pub const PUSHES_IN_FLIGHT: usize = 2;

/// How often an idle worker looks for due messages without being woken.
pub const POLL: Duration = Duration::from_millis(100);

/// One recipient's worker.
#[derive(Debug)]
pub struct Worker {
    /// The recipient country.
    pub recipient: String,
    /// The client for its node's endpoints (replicas), tried in turn.
    pub client: Arc<Failover>,
    /// Woken when a message for the recipient is accepted.
    pub wake: Arc<Notify>,
    /// The queue.
    pub queue: Arc<dyn Queue>,
    /// Envelopes per push.
    pub batch: usize,
    /// Retry policy.
    pub backoff: Backoff,
    /// How long a claim is leased: longer than one push can take.
    pub lease: Duration,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The one clock: claim and settle times, retry due times.
    pub clock: Arc<dyn Clock>,
}

impl Worker {
    /// Runs until `stop` turns true. A push in progress is finished (and recorded) first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::debug!(recipient = %self.recipient, url = self.client.base(), "push worker started");
        loop {
            if *stop.borrow() {
                break;
            }
            match self.queue.claim(&self.recipient, self.batch, self.clock.now(), self.lease).await {
                Ok(msgs) if !msgs.is_empty() => self.push(msgs).await,
                Ok(_) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(POLL) => {}
                        _ = stop.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(recipient = %self.recipient, error = %e, "claiming failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }
        tracing::debug!(recipient = %self.recipient, "push worker stopped");
    }

    /// Pushes claimed messages; a batch the recipient finds too large (413) is split.
    async fn push(&self, msgs: Vec<Claimed>) {
        let mut work = vec![msgs];
        while let Some(msgs) = work.pop() {
            // Version 2 carries the senders' manifests of these envelopes, so the recipient
            // verifies one signature per manifest; a recipient that does not know the path is
            // sent version 1 (every envelope carries its own signature).
            let v2 = self.client.speaks_v2();
            let (path, body) = if v2 {
                let mut wanted: Vec<String> = msgs.iter().filter_map(|m| m.manifest.clone()).collect();
                wanted.sort_unstable();
                wanted.dedup();
                let manifests = if wanted.is_empty() {
                    Vec::new()
                } else {
                    self.queue.manifests(wanted).await.unwrap_or_else(|e| {
                        // Without them every envelope is checked by its own signature.
                        tracing::warn!(recipient = %self.recipient, error = %e, "reading manifests failed");
                        Vec::new()
                    })
                };
                let body = BatchV2::encode(
                    manifests.iter().map(|m| m.as_bytes()),
                    msgs.iter().map(|m| m.envelope.as_slice()),
                );
                (MESSAGES_PATH_V2, body)
            } else {
                (MESSAGES_PATH, Batch::encode(msgs.iter().map(|m| m.envelope.as_slice())))
            };
            let sent = std::time::Instant::now();
            let answer = self.client.request(Method::POST, path, body).await;
            self.metrics.pushed(sent.elapsed().as_secs_f64());
            if v2 && matches!(answer, Ok((StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED, _))) {
                self.client.heard_v1();
                work.push(msgs);
                continue;
            }
            let outcomes: Vec<Outcome> = match answer {
                Ok((StatusCode::OK, bytes)) => match serde_json::from_slice::<BatchResponse>(&bytes) {
                    Ok(r) => {
                        let by_id: HashMap<&str, &originlink_exchange::Ack> =
                            r.acks.iter().rev().map(|a| (a.id.as_str(), a)).collect();
                        msgs.iter()
                            .map(|m| match by_id.get(m.id.as_str()) {
                                Some(a) => crate::api::outcome_of(a),
                                None => self.retry(m, "no acknowledgement for this message".into()),
                            })
                            .collect()
                    }
                    Err(e) => msgs.iter().map(|m| self.retry(m, format!("unreadable answer: {e}"))).collect(),
                },
                Ok((StatusCode::PAYLOAD_TOO_LARGE, _)) if msgs.len() > 1 => {
                    let mut first = msgs;
                    let second = first.split_off(first.len() / 2);
                    work.push(second);
                    work.push(first);
                    continue;
                }
                Ok((status, bytes)) => {
                    let v = serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default();
                    let field = |k: &str| v.get(k).and_then(|c| c.as_str()).unwrap_or("").to_owned();
                    let why = format!("HTTP {}: {} {}", status.as_u16(), field("code"), field("message"));
                    let why = why.trim_end().to_owned();
                    msgs.iter().map(|m| self.retry(m, why.clone())).collect()
                }
                Err(e) => msgs.iter().map(|m| self.retry(m, e.to_string())).collect(),
            };
            self.record(&msgs, outcomes).await;
        }
    }

    fn retry(&self, m: &Claimed, error: String) -> Outcome {
        let delay = self.backoff.delay(m.attempts, backoff::jitter());
        let at = self.clock.now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        Outcome::Retry { error, at }
    }

    async fn record(&self, msgs: &[Claimed], outcomes: Vec<Outcome>) {
        let (mut delivered, mut failed, mut retried) = (0u64, 0u64, 0u64);
        for (m, o) in msgs.iter().zip(&outcomes) {
            match o {
                Outcome::Delivered => delivered += 1,
                Outcome::Failed(e) => {
                    failed += 1;
                    tracing::warn!(id = %m.id, recipient = %self.recipient, error = %e, "dead letter");
                }
                Outcome::Retry { error, .. } => {
                    if self.backoff.is_dead(m.attempts + 1) {
                        failed += 1;
                        tracing::warn!(id = %m.id, recipient = %self.recipient, error = %error, "dead letter: out of attempts");
                    } else {
                        retried += 1;
                    }
                }
            }
        }
        if retried > 0 {
            tracing::info!(recipient = %self.recipient, messages = retried, "push failed; will retry");
        }
        let settle =
            msgs.iter().zip(outcomes).map(|(m, outcome)| Settle { id: m.id.clone(), outcome }).collect();
        match self.queue.settle(&self.recipient, settle, self.backoff.max_attempts, self.clock.now()).await {
            Ok(_) => {
                self.metrics.delivered(delivered);
                self.metrics.failed(failed);
                self.metrics.retried(retried);
            }
            // The leases run out and the messages are pushed again; the recipient dedups.
            Err(e) => {
                tracing::error!(recipient = %self.recipient, error = %e, "recording push outcomes failed")
            }
        }
    }
}
