//! The transactional outbox, written once for both backends (a backend implements
//! [`OutboxTx`]): messages are written in the transaction of the change that causes them, and
//! whom a certificate was sent to is recorded with them (who may later report on it).

use chrono::{DateTime, Utc};

use crate::audit::{self, AuditTx, PendingEvent};
use crate::model::{Ctx, OutMessage, OutboxRow};
use crate::{Result, StoreError, timestamp};

/// What the outbox needs from a backend's open transaction.
pub(crate) trait OutboxTx {
    /// Inserts one message, due at `at`; false when its id is already in the outbox.
    async fn insert_message(&mut self, m: &OutMessage, at: &str) -> Result<bool>;
    /// Records that certificate `number` was sent to `recipient` (once).
    async fn add_recipient(&mut self, number: &str, recipient: &str) -> Result<()>;
    /// A dead letter by id (locked for update where the backend locks).
    async fn dead_letter(&mut self, id: &str) -> Result<Option<OutboxRow>>;
    /// Makes a dead letter due at `at` with no attempts; returns it.
    async fn revive(&mut self, id: &str, at: &str) -> Result<OutboxRow>;
}

/// Enqueues `messages` inside the caller's transaction. Duplicate id: `MESSAGE_EXISTS` (the
/// caller's transaction then rolls back, so nothing is enqueued).
pub(crate) async fn enqueue<T: OutboxTx>(tx: &mut T, messages: &[OutMessage], at: &str) -> Result<()> {
    for m in messages {
        if !tx.insert_message(m, at).await? {
            return Err(message_exists(&m.id));
        }
        // Whom a certificate was sent to: who may report on it (`inbox`).
        if let Some((number, to)) = sent_certificate(m) {
            tx.add_recipient(number, to).await?;
        }
    }
    Ok(())
}

/// An operator retries a dead letter: due now, no attempts, audited. Not dead: `NOT_FOUND`.
pub(crate) async fn retry_dead<T: OutboxTx + AuditTx>(tx: &mut T, ctx: &Ctx, id: &str) -> Result<OutboxRow> {
    let before = tx.dead_letter(id).await?.ok_or(StoreError::NotFound)?;
    let after = tx.revive(id, &timestamp(&ctx.at)).await?;
    audit::append(tx, ctx, &[retried_event(&before)]).await?;
    Ok(after)
}

/// Claimed rows are handed out in `seq` order (the order they were written in).
pub(crate) fn claimed(mut rows: Vec<OutboxRow>) -> Vec<OutboxRow> {
    rows.sort_unstable_by_key(|r| r.seq);
    rows
}

/// The end of a lease of `lease` from `now`.
pub(crate) fn lease_until(now: &DateTime<Utc>, lease: std::time::Duration) -> Result<String> {
    chrono::Duration::from_std(lease)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .map(|t| timestamp(&t))
        .ok_or_else(|| StoreError::conflict("LEASE_INVALID", format!("a lease of {lease:?} is out of range")))
}

/// `(number, recipient)` when `m` carries a certificate (issued, replaced, revoked) to its
/// recipient: whom the certificate was sent to, who may then report on it.
fn sent_certificate(m: &OutMessage) -> Option<(&str, &str)> {
    if !matches!(m.kind.as_str(), "certificate.issued" | "certificate.replaced" | "certificate.revoked") {
        return None;
    }
    let (_, number) = m.cert_key.as_deref()?.split_once('/')?;
    Some((number, m.recipient.as_str()))
}

/// The audit event of an operator retrying a dead letter.
fn retried_event(before: &OutboxRow) -> PendingEvent {
    let b = serde_json::json!({
        "dead": true,
        "attempts": before.attempts,
        "last_error": before.last_error,
        "recipient": before.recipient,
        "kind": before.kind,
    });
    let a = serde_json::json!({ "dead": false, "attempts": 0 });
    PendingEvent::new("message.retried", format!("message/{}", before.id), b.to_string(), a.to_string())
}

/// The conflict for a message id already in the outbox.
fn message_exists(id: &str) -> StoreError {
    StoreError::conflict("MESSAGE_EXISTS", format!("message {id} is already in the outbox"))
}
