//! Outbound: the outbox worker. It claims due messages (leased, so workers and replicas do
//! not take the same ones), groups them by next hop, sends them in batches and records each
//! acknowledgement; failures back off, refusals become dead letters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use originlink_exchange::backoff;
use originlink_exchange::body::{Ack, Batch, BatchResponse, BatchV2, Delivery};

use super::{Env, Exchange};

pub(super) async fn outbox_loop(env: Env, x: Arc<Exchange>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let lease = Duration::from_secs(30);
    loop {
        if *stop.borrow() {
            return;
        }
        let now = env.clock.now();
        let rows = match env.store.claim_outbox(now, lease, (x.batch * 4) as i64).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "claiming the outbox failed");
                Vec::new()
            }
        };
        if rows.is_empty() {
            tokio::select! {
                _ = x.wake.notified() => {}
                _ = tokio::time::sleep(x.poll) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        let mut groups: HashMap<Option<Vec<String>>, Vec<originlink_store::OutboxRow>> = HashMap::new();
        for r in rows {
            groups.entry(x.route(&r.recipient)).or_default().push(r);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (url, rows) in groups {
            let (env, x) = (env.clone(), x.clone());
            tasks.spawn(async move { send_group(&env, &x, url, rows).await });
        }
        while tasks.join_next().await.is_some() {}
    }
}

async fn send_group(
    env: &Env,
    x: &Exchange,
    urls: Option<Vec<String>>,
    rows: Vec<originlink_store::OutboxRow>,
) {
    let Some(urls) = urls else {
        fail_all(env, x, &rows, "NO_ROUTE: no gateway and no direct link for the recipient").await;
        return;
    };
    let client = match x.failover(&urls) {
        Ok(c) => c,
        Err(e) => {
            fail_all(env, x, &rows, &e).await;
            return;
        }
    };
    for chunk in rows.chunks(x.batch) {
        let sent = std::time::Instant::now();
        let mut answer = None;
        // Version 2: one signed manifest lists the batch, so each hop verifies one signature
        // for it. A peer that does not know the path is sent version 1.
        if client.speaks_v2() {
            match x.manifest(chunk.iter().map(|r| r.body.as_slice()), env.clock.now()) {
                Ok(m) => {
                    let body = BatchV2::encode([m.raw.as_slice()], chunk.iter().map(|r| r.body.as_slice()));
                    let a = client
                        .request(hyper::Method::POST, originlink_exchange::MESSAGES_PATH_V2, body)
                        .await;
                    if matches!(a, Ok((StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED, _))) {
                        client.heard_v1();
                    } else {
                        answer = Some(a);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "sealing a manifest failed; sending version 1"),
            }
        }
        let answer = match answer {
            Some(a) => a,
            None => {
                let body = Batch::encode(chunk.iter().map(|r| r.body.as_slice()));
                client.request(hyper::Method::POST, originlink_exchange::MESSAGES_PATH, body).await
            }
        };
        env.metrics.delivery_seconds.observe(sent.elapsed().as_secs_f64());
        let resp = match answer {
            Ok((s, b)) if s == StatusCode::OK => match serde_json::from_slice::<BatchResponse>(&b) {
                Ok(r) => r,
                Err(e) => {
                    fail_all(env, x, chunk, &format!("unreadable answer: {e}")).await;
                    continue;
                }
            },
            Ok((s, b)) => {
                let msg = format!("HTTP {s}: {}", String::from_utf8_lossy(&b[..b.len().min(300)]));
                fail_all(env, x, chunk, &msg).await;
                continue;
            }
            Err(e) => {
                fail_all(env, x, chunk, &e.to_string()).await;
                continue;
            }
        };
        let by_id: HashMap<&str, &Ack> = resp.acks.iter().map(|a| (a.id.as_str(), a)).collect();
        let mut done = Vec::new();
        for r in chunk {
            match by_id.get(r.id.as_str()) {
                Some(a) if a.result == Delivery::Refused => {
                    let why = format!(
                        "{}: {}",
                        a.code.as_deref().unwrap_or("REFUSED"),
                        a.message.as_deref().unwrap_or_default()
                    );
                    tracing::warn!(message = %r.id, %why, "message refused; dead letter");
                    if let Err(e) = env.store.outbox_failed(&r.id, &why, env.clock.now(), true).await {
                        tracing::warn!(error = %e, "recording a refusal failed");
                    }
                }
                Some(_) => done.push(r.id.clone()),
                None => fail_all(env, x, std::slice::from_ref(r), "no acknowledgement in the answer").await,
            }
        }
        if let Err(e) = env.store.outbox_delivered(&done).await {
            // The lease expires and they are sent again; the receiver deduplicates.
            tracing::warn!(error = %e, "recording deliveries failed");
        }
        env.metrics.exchange_sent.inc_by(done.len() as u64);
    }
}

async fn fail_all(env: &Env, x: &Exchange, rows: &[originlink_store::OutboxRow], why: &str) {
    let now = env.clock.now();
    for r in rows {
        let attempts = u32::try_from(r.attempts).unwrap_or(u32::MAX).saturating_add(1);
        let dead = x.backoff.is_dead(attempts);
        let delay = x.backoff.delay(attempts.saturating_sub(1), backoff::jitter());
        let next = now + chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::seconds(60));
        if dead {
            tracing::warn!(message = %r.id, recipient = %r.recipient, attempts, %why, "delivery failed for the last time: dead letter (GET /api/v1/exchange/dead)");
        }
        if let Err(e) = env.store.outbox_failed(&r.id, why, next, dead).await {
            tracing::warn!(error = %e, "recording a failed attempt failed");
        }
    }
    let recipient = rows.first().map(|r| r.recipient.as_str()).unwrap_or_default();
    tracing::warn!(count = rows.len(), recipient, %why, "delivery attempt failed; retrying with backoff");
}
