//! Applying inbound exchange messages, written once for both backends.
//!
//! A backend implements [`InboxTx`] over its open transaction (SQLite synchronously, its
//! futures are always ready; PostgreSQL asynchronously) and calls [`apply`], which applies a
//! batch and appends its audit events in the same transaction.
//!
//! The rules:
//! - a message is first authorised against what its sender may say: a `status.update` only
//!   from a country the certificate was sent to (recorded when its certificate messages were
//!   enqueued), a `verification.response` only from the country asked. Otherwise it is
//!   refused with a code ([`crate::STATUS_FROM_WRONG_PEER`], [`crate::ANSWER_FROM_WRONG_PEER`]):
//!   the refusal is recorded and nothing else;
//! - a message id already in the inbox (applied, held, duplicate or quarantined) is a
//!   duplicate and changes nothing; so is a certificate version already stored from another
//!   message;
//! - `certificate.replaced` v needs v-1 stored and `certificate.revoked` v needs v stored,
//!   otherwise the message is held (stored as JSON, keyed by certificate and the version it
//!   waits for);
//! - whenever a version of a certificate lands, every held message waiting for it is applied
//!   and deleted from the held table, repeatedly (a replacement that lands may release more);
//! - the replies of a message are enqueued when it is applied, never when it is held;
//! - a message whose payload can never be processed ([`Inbound::quarantine`]) is applied, but
//!   its inbox record ends `quarantined` with the reason; so does a held message that cannot
//!   be read back when it is released: it is never retried, and the rest goes on.

use crate::audit::{self, AuditTx, PendingEvent};
use crate::model::{
    ANSWER_FROM_WRONG_PEER, ANY_RECIPIENT, Applied, Ctx, INCOMING, Inbound, InboundKind, NewVerification,
    OUTGOING, OutMessage, ReceivedStatus, Refusal, STATUS_FROM_WRONG_PEER, StatusEvent, StoredStatusList,
};
use crate::outbox::{self, OutboxTx};
use crate::received::{self, ReceivedTx, received_event, received_status_event};
use crate::verifications::{self, VerificationsTx};
use crate::{Result, StoreError, timestamp};

/// Inbox state of a message that was applied.
pub(crate) const APPLIED: &str = "applied";
/// Inbox state of a message waiting for a certificate version.
pub(crate) const HELD: &str = "held";
/// Inbox state of a message whose content was already there (another message id).
pub(crate) const DUPLICATE: &str = "duplicate";
/// Inbox state of a message that can never be processed (the reason is recorded with it).
pub(crate) const QUARANTINED: &str = "quarantined";

/// A stored received certificate, as the inbox needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    pub id: i64,
    pub status: ReceivedStatus,
}

/// A message held until the certificate version it needs is stored.
#[derive(Debug)]
pub(crate) struct Held<'a> {
    pub message_id: &'a str,
    /// The certificate ([`cert_key`]).
    pub cert_key: &'a str,
    /// The version it waits for.
    pub waits_for: i64,
    /// The message as JSON.
    pub message: &'a str,
    pub at: &'a str,
}

/// What the inbox needs from a backend's open transaction.
pub(crate) trait InboxTx: ReceivedTx + OutboxTx + VerificationsTx {
    /// Inserts the inbox row of `m` in `state` (with `reason`, for a quarantined one); false
    /// when its message id is already there.
    async fn inbox_insert(&mut self, m: &Inbound, state: (&str, Option<&str>), at: &str) -> Result<bool>;
    /// Changes the state (and the reason) of an inbox row.
    async fn inbox_state(&mut self, id: &str, state: (&str, Option<&str>), at: &str) -> Result<()>;
    /// Records a refused message.
    async fn refuse(&mut self, r: &Refusal) -> Result<()>;
    /// The countries certificate `number` (one of ours) was sent to, sorted; empty when none.
    async fn sent_to(&mut self, number: &str) -> Result<Vec<String>>;
    /// One version of a received certificate (locked for update where the backend locks).
    async fn find_received(&mut self, country: &str, number: &str, version: i64) -> Result<Option<Found>>;
    /// Sets the status (and, for a revocation, the reason) of a received certificate.
    async fn set_received_status(&mut self, id: i64, to: ReceivedStatus, reason: Option<&str>) -> Result<()>;
    /// Holds a message (its JSON) until version `waits_for` of `cert_key` is stored.
    async fn hold(&mut self, h: &Held<'_>) -> Result<()>;
    /// Removes and returns (in the order they were held) the messages waiting for `version`,
    /// as (message id, message JSON).
    async fn take_held(&mut self, cert_key: &str, version: i64) -> Result<Vec<(String, String)>>;
    /// Records a reported status; returns our certificate's id if it is stored here.
    async fn insert_status(&mut self, s: &StatusEvent) -> Result<Option<i64>>;
    /// [`Store::put_status_list`](crate::Store::put_status_list) in this transaction.
    async fn put_status_list(&mut self, l: &StoredStatusList) -> Result<bool>;
}

/// `issuing country/number`, the key per-certificate ordering uses.
/// The certificate documents a batch would store (to pack them ahead of its transaction:
/// [`crate::text::pack_ahead`]).
pub(crate) fn documents(batch: &[Inbound]) -> Vec<&[u8]> {
    batch
        .iter()
        .filter_map(|m| match &m.kind {
            InboundKind::Issued { certificate } | InboundKind::Replaced { certificate } => {
                Some(certificate.document.as_slice())
            }
            _ => None,
        })
        .collect()
}

/// Packs the documents of `batch` on every core, off the async threads and before the
/// transaction that stores them.
pub(crate) async fn pack_ahead(batch: Vec<Inbound>) -> Result<Vec<Inbound>> {
    tokio::task::spawn_blocking(move || {
        crate::text::pack_ahead(&documents(&batch));
        batch
    })
    .await
    .map_err(|e| StoreError::Backend(e.to_string()))
}

pub(crate) fn cert_key(country: &str, number: &str) -> String {
    format!("{country}/{number}")
}

/// The certificate keys a batch touches (sorted, distinct): what a backend that runs
/// batches concurrently serializes on.
pub(crate) fn batch_keys(batch: &[Inbound]) -> Vec<String> {
    let mut keys: Vec<String> = batch
        .iter()
        .filter_map(|m| match &m.kind {
            InboundKind::Issued { certificate: c } | InboundKind::Replaced { certificate: c } => {
                Some(cert_key(&c.issuing_country, &c.number))
            }
            InboundKind::Revoked { issuing_country, number, .. } => Some(cert_key(issuing_country, number)),
            InboundKind::Status { .. }
            | InboundKind::VerificationRequest { .. }
            | InboundKind::VerificationResponse { .. }
            | InboundKind::StatusList { .. }
            | InboundKind::Other { .. } => None,
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

enum Outcome {
    /// Applied; `Some((key, version))` when a certificate version landed (which may release
    /// held messages).
    Applied(Option<(String, i64)>),
    /// Must wait for version `.1` of certificate `.0`.
    Held(String, i64),
    Duplicate,
}

/// Why the sender of `m` may not say it, if it may not: `(code, reason)`.
async fn authorise<T: InboxTx>(tx: &mut T, m: &Inbound) -> Result<Option<(&'static str, String)>> {
    match &m.kind {
        // Only a country the certificate was sent to reports what became of it there.
        InboundKind::Status { number, version, .. } => {
            let to = tx.sent_to(number).await?;
            if to.iter().any(|c| *c == m.from_country || c == ANY_RECIPIENT) {
                return Ok(None);
            }
            let sent =
                if to.is_empty() { "to no member".to_owned() } else { format!("to {}", to.join(", ")) };
            Ok(Some((
                STATUS_FROM_WRONG_PEER,
                format!(
                    "certificate {number} v{version} was sent {sent}: {} may not report on it",
                    m.from_country
                ),
            )))
        }
        // Only the country asked answers. A response to no request of ours is recorded as
        // unmatched (and changes nothing).
        InboundKind::VerificationResponse { request_message_id, .. } => {
            match tx.find_verification(OUTGOING, request_message_id).await? {
                Some(v) if v.partner != m.from_country => Ok(Some((
                    ANSWER_FROM_WRONG_PEER,
                    format!(
                        "verification request {request_message_id} asked {}: {} may not answer it",
                        v.partner, m.from_country
                    ),
                ))),
                _ => Ok(None),
            }
        }
        // Certificates (only from their issuing country) are authorised by the node, which
        // reads the document: the store only sees the issuing country it names.
        _ => Ok(None),
    }
}

/// Applies `batch` inside the caller's transaction and audits it: one answer per message.
pub(crate) async fn apply<T: InboxTx + AuditTx>(
    tx: &mut T,
    ctx: &Ctx,
    batch: Vec<Inbound>,
) -> Result<Vec<Applied>> {
    let (answers, events) = apply_batch(tx, &timestamp(&ctx.at), &ctx.actor, batch).await?;
    audit::append(tx, ctx, &events).await?;
    Ok(answers)
}

/// Applies `batch` inside the caller's transaction; `via` is who delivered it (recorded with
/// a refusal). Returns one answer per message and the audit events to append.
async fn apply_batch<T: InboxTx>(
    tx: &mut T,
    at: &str,
    via: &str,
    batch: Vec<Inbound>,
) -> Result<(Vec<Applied>, Vec<PendingEvent>)> {
    let mut answers = Vec::with_capacity(batch.len());
    let mut events = Vec::with_capacity(batch.len());
    for mut m in batch {
        if let Some((code, reason)) = authorise(tx, &m).await? {
            let r = Refusal {
                message_id: m.message_id.clone(),
                from_country: m.from_country.clone(),
                kind: m.kind.kind().to_owned(),
                via: via.to_owned(),
                code: code.to_owned(),
                reason,
                at: at.to_owned(),
            };
            tx.refuse(&r).await?;
            answers.push(Applied::Refused(code));
            continue;
        }
        // The common case first: a new message that applies. The state is corrected below
        // for the rare held or duplicate-by-content one.
        if !tx.inbox_insert(&m, (final_state(&m), m.quarantine.as_deref()), at).await? {
            answers.push(Applied::Duplicate);
            continue;
        }
        if let InboundKind::Issued { certificate } | InboundKind::Replaced { certificate } = &mut m.kind {
            certificate.message_id = Some(m.message_id.clone());
        }
        let outcome = apply_one(tx, &m, at, &mut events).await?;
        let (answer, landed) = settle(tx, &m, outcome, at, &mut events, true).await?;
        answers.push(answer);
        if let Some(first) = landed {
            release(tx, first, at, &mut events).await?;
        }
    }
    Ok((answers, events))
}

/// Applies the held messages that `landed` (and whatever they land in turn) unlocks.
async fn release<T: InboxTx>(
    tx: &mut T,
    landed: (String, i64),
    at: &str,
    events: &mut Vec<PendingEvent>,
) -> Result<()> {
    let mut work = vec![landed];
    while let Some((key, version)) = work.pop() {
        for (message_id, text) in tx.take_held(&key, version).await? {
            let m: Inbound = match serde_json::from_str(&text) {
                Ok(m) => m,
                Err(e) => {
                    // It will never read: quarantined, and the others go on (failing the
                    // batch would fail it again at every retry).
                    let reason =
                        format!("HELD_UNREADABLE: the held message of {key} does not read back: {e}");
                    tx.inbox_state(&message_id, (QUARANTINED, Some(&reason)), at).await?;
                    events.push(quarantined_event(&message_id, Some(HELD), &reason));
                    continue;
                }
            };
            let outcome = apply_one(tx, &m, at, events).await?;
            let (_, more) = settle(tx, &m, outcome, at, events, false).await?;
            work.extend(more);
        }
    }
    Ok(())
}

/// Records what became of `m` (a new message when `fresh`, else a released one).
async fn settle<T: InboxTx>(
    tx: &mut T,
    m: &Inbound,
    outcome: Outcome,
    at: &str,
    events: &mut Vec<PendingEvent>,
    fresh: bool,
) -> Result<(Applied, Option<(String, i64)>)> {
    match outcome {
        Outcome::Applied(landed) => {
            if !fresh {
                tx.inbox_state(&m.message_id, (final_state(m), m.quarantine.as_deref()), at).await?;
            }
            if let Some(reason) = &m.quarantine {
                events.push(quarantined_event(&m.message_id, (!fresh).then_some(HELD), reason));
            }
            if !m.reply.is_empty() {
                outbox::enqueue(tx, &m.reply, at).await?;
            }
            Ok((Applied::Applied, landed))
        }
        Outcome::Held(key, waits_for) => {
            let text = serde_json::to_string(m).map_err(|e| StoreError::Backend(e.to_string()))?;
            tx.hold(&Held { message_id: &m.message_id, cert_key: &key, waits_for, message: &text, at })
                .await?;
            if fresh {
                tx.inbox_state(&m.message_id, (HELD, m.quarantine.as_deref()), at).await?;
                events.push(held_event(m, &key, waits_for));
            }
            Ok((Applied::Held, None))
        }
        Outcome::Duplicate => {
            tx.inbox_state(&m.message_id, (DUPLICATE, None), at).await?;
            Ok((Applied::Duplicate, None))
        }
    }
}

/// The inbox state of `m` once applied.
fn final_state(m: &Inbound) -> &'static str {
    if m.quarantine.is_some() { QUARANTINED } else { APPLIED }
}

async fn apply_one<T: InboxTx>(
    tx: &mut T,
    m: &Inbound,
    at: &str,
    events: &mut Vec<PendingEvent>,
) -> Result<Outcome> {
    match &m.kind {
        InboundKind::Issued { certificate: c } => match received::store(tx, c, at).await? {
            None => Ok(Outcome::Duplicate),
            Some(id) => {
                events.push(received_event(id, c));
                Ok(Outcome::Applied(Some((cert_key(&c.issuing_country, &c.number), c.version))))
            }
        },
        InboundKind::Replaced { certificate: c } => {
            let key = cert_key(&c.issuing_country, &c.number);
            let prev = if c.version > 1 {
                match tx.find_received(&c.issuing_country, &c.number, c.version - 1).await? {
                    None => return Ok(Outcome::Held(key, c.version - 1)),
                    found => found,
                }
            } else {
                None
            };
            let Some(id) = received::store(tx, c, at).await? else {
                return Ok(Outcome::Duplicate);
            };
            events.push(received_event(id, c));
            // A revoked predecessor stays revoked: that says more than "superseded".
            if let Some(p) =
                prev.filter(|p| !matches!(p.status, ReceivedStatus::Revoked | ReceivedStatus::Superseded))
            {
                tx.set_received_status(p.id, ReceivedStatus::Superseded, None).await?;
                events.push(received_status_event(
                    p.id,
                    p.status,
                    ReceivedStatus::Superseded,
                    &[("superseded_by", id.into())],
                ));
            }
            Ok(Outcome::Applied(Some((key, c.version))))
        }
        InboundKind::Revoked { issuing_country, number, version, reason } => {
            match tx.find_received(issuing_country, number, *version).await? {
                None => Ok(Outcome::Held(cert_key(issuing_country, number), *version)),
                Some(f) if f.status == ReceivedStatus::Revoked => Ok(Outcome::Duplicate),
                Some(f) => {
                    tx.set_received_status(f.id, ReceivedStatus::Revoked, Some(reason)).await?;
                    events.push(received_status_event(
                        f.id,
                        f.status,
                        ReceivedStatus::Revoked,
                        &[("reason", reason.as_str().into()), ("message_id", m.message_id.as_str().into())],
                    ));
                    Ok(Outcome::Applied(None))
                }
            }
        }
        InboundKind::Status { number, version, status, code, detail } => {
            let row = StatusEvent {
                number: number.clone(),
                version: *version,
                from_country: m.from_country.clone(),
                status: status.clone(),
                code: code.clone(),
                detail: detail.clone(),
                message_id: m.message_id.clone(),
                at: at.to_owned(),
            };
            let certificate = tx.insert_status(&row).await?;
            events.extend(status_event(certificate, m));
            Ok(Outcome::Applied(None))
        }
        InboundKind::VerificationRequest {
            request_message_id,
            issuing_country,
            number,
            questions,
            deadline,
        } => {
            let v = NewVerification {
                message_id: request_message_id.clone(),
                issuing_country: issuing_country.clone(),
                number: number.clone(),
                partner: m.from_country.clone(),
                questions: questions.clone(),
                deadline: *deadline,
            };
            match tx.open_request(INCOMING, &v, at).await? {
                None => Ok(Outcome::Duplicate),
                Some(v) => {
                    events.push(verifications::verification_created_event(&v));
                    Ok(Outcome::Applied(None))
                }
            }
        }
        InboundKind::VerificationResponse { request_message_id, answer, outcome } => {
            if verifications::check_outcome(outcome).is_err() {
                events.push(verifications::verification_unmatched_event(m, request_message_id));
                return Ok(Outcome::Applied(None));
            }
            match verifications::answered(tx, request_message_id, answer, outcome, at).await? {
                Ok((before, after)) => {
                    events.push(verifications::verification_answered_event(&before, &after));
                    Ok(Outcome::Applied(None))
                }
                // Answered already (by another message): nothing changes.
                Err(Some(_)) => Ok(Outcome::Duplicate),
                Err(None) => {
                    events.push(verifications::verification_unmatched_event(m, request_message_id));
                    Ok(Outcome::Applied(None))
                }
            }
        }
        InboundKind::StatusList { issuer, sequence, issued_at, next_update, signed } => {
            let list = StoredStatusList {
                issuer: issuer.clone(),
                sequence: *sequence,
                issued_at: issued_at.clone(),
                next_update: next_update.clone(),
                signed: signed.as_bytes().to_vec(),
                stored_at: at.to_owned(),
            };
            // An older or the same list changes nothing.
            if !tx.put_status_list(&list).await? {
                return Ok(Outcome::Duplicate);
            }
            events.push(status_list_event("status_list.received", &list));
            Ok(Outcome::Applied(None))
        }
        InboundKind::Other { .. } => Ok(Outcome::Applied(None)),
    }
}

/// The audit event of a status list kept (`status_list.received` from a partner,
/// `status_list.published` by this node).
fn status_list_event(action: &'static str, l: &StoredStatusList) -> PendingEvent {
    let after =
        serde_json::json!({"sequence": l.sequence, "issued_at": l.issued_at, "next_update": l.next_update});
    PendingEvent::new(action, format!("status-list/{}", l.issuer), "null".into(), after.to_string())
}

/// Keeps this node's own new status list when its sequence is higher than the one kept, audited
/// as `status_list.published`, and enqueues `messages` (the list to each member), in the same
/// transaction: whether it was kept.
pub(crate) async fn publish_status_list<T: InboxTx + AuditTx>(
    tx: &mut T,
    ctx: &Ctx,
    list: &StoredStatusList,
    messages: &[OutMessage],
) -> Result<bool> {
    if !tx.put_status_list(list).await? {
        return Ok(false);
    }
    outbox::enqueue(tx, messages, &timestamp(&ctx.at)).await?;
    audit::append(tx, ctx, &[status_list_event("status_list.published", list)]).await?;
    Ok(true)
}

/// The audit event of a status reported about one of our certificates (`certificate_id` is
/// `None` when no such certificate is stored here); `None` for a message of another kind.
fn status_event(certificate_id: Option<i64>, m: &Inbound) -> Option<PendingEvent> {
    let InboundKind::Status { number, version, status, code, detail } = &m.kind else {
        return None;
    };
    let entity = match certificate_id {
        Some(id) => format!("certificate/{id}"),
        None => format!("certificate-number/{number}/{version}"),
    };
    let after = serde_json::json!({
        "number": number,
        "version": version,
        "from_country": m.from_country,
        "status": status,
        "code": code,
        "detail": detail,
        "message_id": m.message_id,
    });
    Some(PendingEvent::new("certificate.status", entity, "null".into(), after.to_string()))
}

/// The audit event of an inbound message held until the version it needs arrives.
fn held_event(m: &Inbound, cert_key: &str, waits_for: i64) -> PendingEvent {
    let after = serde_json::json!({
        "kind": m.kind.kind(),
        "from_country": m.from_country,
        "cert_key": cert_key,
        "waits_for_version": waits_for,
    });
    PendingEvent::new("message.held", format!("message/{}", m.message_id), "null".into(), after.to_string())
}

/// The audit event of an inbound message quarantined: it was `from` (`None`: it arrived so)
/// and can never be processed, for `reason`.
fn quarantined_event(message_id: &str, from: Option<&str>, reason: &str) -> PendingEvent {
    let before = match from {
        Some(state) => serde_json::json!({ "state": state }).to_string(),
        None => "null".into(),
    };
    let after = serde_json::json!({ "state": QUARANTINED, "reason": reason });
    PendingEvent::new("message.quarantined", format!("message/{message_id}"), before, after.to_string())
}
