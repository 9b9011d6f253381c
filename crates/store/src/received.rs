//! Certificates received from other countries, written once for both backends (a backend
//! implements [`ReceivedTx`]; the inbox stores them the same way).

use crate::audit::{self, AuditTx, PendingEvent};
use crate::model::{Ctx, NewReceived, ReceivedCertificate, ReceivedStatus};
use crate::{Result, StoreError, timestamp};

/// What storing received certificates needs from a backend's open transaction.
pub(crate) trait ReceivedTx {
    /// Inserts a received certificate; `None` when that (country, number, version) exists.
    async fn insert_received(&mut self, r: &NewReceived, at: &str) -> Result<Option<i64>>;
    /// One received certificate.
    async fn received(&mut self, id: i64) -> Result<Option<ReceivedCertificate>>;
}

/// Writes a received certificate, its document packed ([`crate::text::pack`]): its id, `None`
/// when that (country, number, version) is stored already.
pub(crate) async fn store<T: ReceivedTx>(tx: &mut T, r: &NewReceived, at: &str) -> Result<Option<i64>> {
    let packed = NewReceived { document: crate::text::pack(&r.document), ..r.clone() };
    tx.insert_received(&packed, at).await
}

/// Records a received certificate. Duplicate (country, number, version): `RECEIVED_EXISTS`.
pub(crate) async fn insert<T: ReceivedTx + AuditTx>(
    tx: &mut T,
    ctx: &Ctx,
    r: &NewReceived,
) -> Result<ReceivedCertificate> {
    let Some(id) = store(tx, r, &timestamp(&ctx.at)).await? else {
        return Err(StoreError::conflict(
            "RECEIVED_EXISTS",
            format!("{} {} v{} exists", r.issuing_country, r.number, r.version),
        ));
    };
    audit::append(tx, ctx, &[received_event(id, r)]).await?;
    tx.received(id).await?.ok_or(StoreError::NotFound)
}

/// The audit event of a received certificate stored: `received.stored`, or
/// `received.rejected` for one that failed verification (it is kept all the same).
pub(crate) fn received_event(id: i64, r: &NewReceived) -> PendingEvent {
    let action = if r.status == ReceivedStatus::Invalid { "received.rejected" } else { "received.stored" };
    let after = serde_json::json!({
        "issuing_country": r.issuing_country,
        "number": r.number,
        "version": r.version,
        "status": r.status.as_str(),
        "verdict": r.verdict,
        "message_id": r.message_id,
    });
    PendingEvent::new(action, format!("received/{id}"), "null".into(), after.to_string())
}

/// The audit event of a received certificate changing status (superseded by a newer version,
/// or revoked by its issuer).
pub(crate) fn received_status_event(
    id: i64,
    from: ReceivedStatus,
    to: ReceivedStatus,
    extra: &[(&str, serde_json::Value)],
) -> PendingEvent {
    let action = match to {
        ReceivedStatus::Revoked => "received.revoked",
        _ => "received.superseded",
    };
    let state = |s: ReceivedStatus, extra: &[(&str, serde_json::Value)]| {
        let mut m = serde_json::Map::new();
        m.insert("status".into(), s.as_str().into());
        for (k, v) in extra {
            m.insert((*k).into(), v.clone());
        }
        serde_json::Value::Object(m).to_string()
    };
    PendingEvent::new(action, format!("received/{id}"), state(from, &[]), state(to, extra))
}
