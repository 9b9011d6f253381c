//! Notifications: stored once per key with their deliveries, the notifier's cursor over the
//! audit log moved in the same transaction (so a crash repeats nothing and loses nothing), and
//! each user's e-mail address.

use crate::audit::{self, AuditTx, PendingEvent};
use crate::model::{Ctx, NewDelivery, NewNotification, UserRecord};
use crate::users::UsersTx;
use crate::{Result, StoreError, timestamp};

/// What the notification rules need from a backend's open transaction.
pub(crate) trait NotifyTx: AuditTx {
    /// Inserts a notification; `None` when its key is stored already.
    async fn insert_notification(&mut self, n: &NewNotification) -> Result<Option<i64>>;
    /// Inserts a delivery of a notification, due at once.
    async fn insert_delivery(&mut self, notification: i64, d: &NewDelivery, at: &str) -> Result<()>;
    /// Moves the notifier's cursor to `seq`.
    async fn set_cursor(&mut self, seq: i64) -> Result<()>;
    /// Sets or clears a user's e-mail address.
    async fn set_email_address(&mut self, user_id: i64, email: Option<&str>) -> Result<()>;
}

/// Stores the notifications not stored yet (by key) with their deliveries, and moves the
/// cursor when given; returns how many were new.
pub(crate) async fn add<T: NotifyTx>(
    tx: &mut T,
    cursor: Option<i64>,
    list: &[NewNotification],
) -> Result<usize> {
    let mut added = 0;
    for n in list {
        let Some(id) = tx.insert_notification(n).await? else { continue };
        added += 1;
        let at = timestamp(&n.at);
        for d in &n.deliveries {
            tx.insert_delivery(id, d, &at).await?;
        }
    }
    if let Some(seq) = cursor {
        tx.set_cursor(seq).await?;
    }
    Ok(added)
}

/// Sets or clears user `id`'s e-mail address (checked by the caller), audited as
/// `user.email_set`. Unknown user: `NOT_FOUND`.
pub(crate) async fn set_email<T: NotifyTx + UsersTx>(
    tx: &mut T,
    ctx: &Ctx,
    id: i64,
    email: Option<&str>,
) -> Result<UserRecord> {
    let before = tx.user_record(id).await?.ok_or(StoreError::NotFound)?;
    tx.set_email_address(id, email).await?;
    let after = tx.user_record(id).await?.ok_or(StoreError::NotFound)?;
    let state = |u: &UserRecord| serde_json::json!({ "name": u.name, "email": u.email }).to_string();
    let event = PendingEvent::new("user.email_set", format!("user/{id}"), state(&before), state(&after));
    audit::append(tx, ctx, &[event]).await?;
    Ok(after)
}
