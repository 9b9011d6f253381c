//! The exchange as the node's administrator sees it: queue depths, messages that can never
//! be processed or were refused, dead letters and retrying them.

use originlink_store::{InboxRecord, OutboxRow, Refusal, User};
use serde::Serialize;

use super::{AppState, Result};

/// How the exchange stands.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Whether this node has an `[exchange]` configuration.
    pub configured: bool,
    /// Outgoing messages waiting to be delivered.
    pub outbox_pending: i64,
    /// Outgoing messages given up on (dead letters).
    pub outbox_dead: i64,
    /// Inbound messages recorded.
    pub inbox: i64,
    /// Inbound messages waiting for an earlier version.
    pub held: i64,
    /// Inbound messages that can never be processed.
    pub quarantined: i64,
    /// The trust list in force (`None` without an exchange).
    pub trust_list: Option<TrustListInForce>,
}

/// The trust list in force, as the operator checks it after publishing a new one.
#[derive(Debug, Clone, Serialize)]
pub struct TrustListInForce {
    /// The operator's sequence number.
    pub sequence: u64,
    /// When it was issued (RFC 3339).
    pub issued_at: String,
    /// When the next one is due (RFC 3339); after it received certificates cannot be verified.
    pub next_update: String,
}

/// The exchange's queues.
pub async fn status(state: &AppState) -> Result<Status> {
    let (outbox_pending, outbox_dead) = state.store.outbox_counts().await?;
    Ok(Status {
        configured: state.exchange.is_some(),
        outbox_pending,
        outbox_dead,
        inbox: state.store.inbox_len().await?,
        held: state.store.held_len().await?,
        quarantined: state.store.quarantined_len().await?,
        trust_list: state.exchange.as_ref().map(|x| {
            let t = x.trust();
            TrustListInForce {
                sequence: t.sequence,
                issued_at: t.issued_at.to_rfc3339(),
                next_update: t.next_update.to_rfc3339(),
            }
        }),
    })
}

/// Inbound messages that can never be processed, newest first, at most 500.
pub async fn quarantined(state: &AppState) -> Result<Vec<InboxRecord>> {
    Ok(state.store.quarantined(500).await?)
}

/// Inbound messages refused, with the code, newest first, at most 500.
pub async fn refused(state: &AppState) -> Result<Vec<Refusal>> {
    Ok(state.store.refused(500).await?)
}

/// Outgoing messages still in the outbox, pending and dead, oldest first, at most 500: each
/// with its recipient, kind, attempts, last error and next attempt.
pub async fn outbox(state: &AppState) -> Result<Vec<OutboxRow>> {
    Ok(state.store.outbox_messages(500).await?)
}

/// Outgoing messages given up on, at most 500.
pub async fn dead_letters(state: &AppState) -> Result<Vec<OutboxRow>> {
    Ok(state.store.dead_letters(500).await?)
}

/// Puts a dead letter back in the outbox, to be sent now.
pub async fn retry(state: &AppState, user: &User, message_id: &str) -> Result<OutboxRow> {
    let row = state.store.retry_dead(&state.ctx(user), message_id).await?;
    state.wake_exchange();
    Ok(row)
}
