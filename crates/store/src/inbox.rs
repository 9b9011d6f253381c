//! Applying inbound exchange messages, written once for both backends.
//!
//! A backend implements [`InboxTx`] over its open transaction (SQLite synchronously, its
//! futures are always ready: see [`ready`]; PostgreSQL asynchronously) and calls
//! [`apply_batch`], then appends the audit events it returns in the same transaction.
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

use std::future::Future;
use std::task::{Context, Poll, Waker};

use crate::audit::PendingEvent;
use crate::{
    ANSWER_FROM_WRONG_PEER, ANY_RECIPIENT, Applied, INCOMING, Inbound, InboundKind, NewReceived,
    NewVerification, OUTGOING, OutMessage, ReceivedStatus, Refusal, Result, STATUS_FROM_WRONG_PEER,
    StatusEvent, StoreError, VerificationRequest,
};

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

/// What the inbox needs from a backend's open transaction.
pub(crate) trait InboxTx {
    /// Inserts the inbox row of `m` in `state` (with `reason`, for a quarantined one); false
    /// when its message id is already there.
    async fn inbox_insert(
        &mut self,
        m: &Inbound,
        state: &str,
        reason: Option<&str>,
        at: &str,
    ) -> Result<bool>;
    /// Changes the state (and the reason) of an inbox row.
    async fn inbox_state(
        &mut self,
        message_id: &str,
        state: &str,
        reason: Option<&str>,
        at: &str,
    ) -> Result<()>;
    /// Records a refused message.
    async fn refuse(&mut self, r: &Refusal) -> Result<()>;
    /// The countries certificate `number` (one of ours) was sent to, sorted; empty when none.
    async fn sent_to(&mut self, number: &str) -> Result<Vec<String>>;
    /// One version of a received certificate (locked for update where the backend locks).
    async fn find_received(&mut self, country: &str, number: &str, version: i64) -> Result<Option<Found>>;
    /// Inserts a received certificate; `None` when that (country, number, version) exists.
    async fn insert_received(&mut self, r: &NewReceived, at: &str) -> Result<Option<i64>>;
    /// Sets the status (and, for a revocation, the reason) of a received certificate.
    async fn set_received_status(
        &mut self,
        id: i64,
        status: ReceivedStatus,
        reason: Option<&str>,
    ) -> Result<()>;
    /// Holds a message (its JSON) until version `waits_for` of `cert_key` is stored.
    async fn hold(
        &mut self,
        message_id: &str,
        cert_key: &str,
        waits_for: i64,
        message: &str,
        at: &str,
    ) -> Result<()>;
    /// Removes and returns (in the order they were held) the messages waiting for `version`,
    /// as (message id, message JSON).
    async fn take_held(&mut self, cert_key: &str, version: i64) -> Result<Vec<(String, String)>>;
    /// Records a reported status; returns our certificate's id if it is stored here.
    async fn insert_status(&mut self, s: &StatusEvent) -> Result<Option<i64>>;
    /// Enqueues messages in the outbox.
    async fn enqueue(&mut self, messages: &[OutMessage], at: &str) -> Result<()>;
    /// Inserts an open verification request; `None` when (direction, message id) exists.
    async fn insert_verification(
        &mut self,
        direction: &str,
        v: &NewVerification,
        at: &str,
    ) -> Result<Option<VerificationRequest>>;
    /// A verification request by direction and request message id (locked for update where
    /// the backend locks).
    async fn find_verification(
        &mut self,
        direction: &str,
        message_id: &str,
    ) -> Result<Option<VerificationRequest>>;
    /// Records the answer and outcome of a request (its status becomes the outcome).
    async fn set_verification_answer(
        &mut self,
        id: i64,
        answer: &str,
        outcome: &str,
        at: &str,
    ) -> Result<VerificationRequest>;
}

/// Records the answer to an `outgoing` request: `Ok(Ok((before, after)))`, or `Ok(Err(None))`
/// when there is no such request, `Ok(Err(Some(v)))` when it is not open.
pub(crate) async fn record_answer<T: InboxTx>(
    tx: &mut T,
    request_message_id: &str,
    answer: &str,
    outcome: &str,
    at: &str,
) -> Result<Result<(VerificationRequest, VerificationRequest), Option<VerificationRequest>>> {
    let Some(v) = tx.find_verification(OUTGOING, request_message_id).await? else {
        return Ok(Err(None));
    };
    if v.status != "open" {
        return Ok(Err(Some(v)));
    }
    let after = tx.set_verification_answer(v.id, answer, outcome, at).await?;
    Ok(Ok((v, after)))
}

/// Runs a future that never waits (the SQLite side of [`InboxTx`]) to completion.
pub(crate) fn ready<F: Future>(f: F) -> Result<F::Output> {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Ok(v),
        Poll::Pending => Err(StoreError::Backend("a synchronous store operation waited".into())),
    }
}

/// `issuing country/number`, the key per-certificate ordering uses.
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

/// Applies `batch` inside the caller's transaction; `via` is who delivered it (recorded with
/// a refusal). Returns one answer per message and the audit events to append.
pub(crate) async fn apply_batch<T: InboxTx>(
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
        if !tx.inbox_insert(&m, final_state(&m), m.quarantine.as_deref(), at).await? {
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
                    tx.inbox_state(&message_id, QUARANTINED, Some(&reason), at).await?;
                    events.push(crate::quarantined_event(&message_id, Some(HELD), &reason));
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
                tx.inbox_state(&m.message_id, final_state(m), m.quarantine.as_deref(), at).await?;
            }
            if let Some(reason) = &m.quarantine {
                events.push(crate::quarantined_event(&m.message_id, (!fresh).then_some(HELD), reason));
            }
            if !m.reply.is_empty() {
                tx.enqueue(&m.reply, at).await?;
            }
            Ok((Applied::Applied, landed))
        }
        Outcome::Held(key, waits_for) => {
            let text = serde_json::to_string(m).map_err(|e| StoreError::Backend(e.to_string()))?;
            tx.hold(&m.message_id, &key, waits_for, &text, at).await?;
            if fresh {
                tx.inbox_state(&m.message_id, HELD, m.quarantine.as_deref(), at).await?;
                events.push(crate::held_event(m, &key, waits_for));
            }
            Ok((Applied::Held, None))
        }
        Outcome::Duplicate => {
            tx.inbox_state(&m.message_id, DUPLICATE, None, at).await?;
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
        InboundKind::Issued { certificate: c } => match tx.insert_received(c, at).await? {
            None => Ok(Outcome::Duplicate),
            Some(id) => {
                events.push(crate::received_event(id, c));
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
            let Some(id) = tx.insert_received(c, at).await? else {
                return Ok(Outcome::Duplicate);
            };
            events.push(crate::received_event(id, c));
            // A revoked predecessor stays revoked: that says more than "superseded".
            if let Some(p) =
                prev.filter(|p| !matches!(p.status, ReceivedStatus::Revoked | ReceivedStatus::Superseded))
            {
                tx.set_received_status(p.id, ReceivedStatus::Superseded, None).await?;
                events.push(crate::received_status_event(
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
                    events.push(crate::received_status_event(
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
            events.extend(crate::status_event(certificate, m));
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
            match tx.insert_verification(INCOMING, &v, at).await? {
                None => Ok(Outcome::Duplicate),
                Some(v) => {
                    events.push(crate::verification_created_event(&v));
                    Ok(Outcome::Applied(None))
                }
            }
        }
        InboundKind::VerificationResponse { request_message_id, answer, outcome } => {
            if crate::check_outcome(outcome).is_err() {
                events.push(crate::verification_unmatched_event(m, request_message_id));
                return Ok(Outcome::Applied(None));
            }
            match record_answer(tx, request_message_id, answer, outcome, at).await? {
                Ok((before, after)) => {
                    events.push(crate::verification_answered_event(&before, &after));
                    Ok(Outcome::Applied(None))
                }
                // Answered already (by another message): nothing changes.
                Err(Some(_)) => Ok(Outcome::Duplicate),
                Err(None) => {
                    events.push(crate::verification_unmatched_event(m, request_message_id));
                    Ok(Outcome::Applied(None))
                }
            }
        }
        InboundKind::Other { .. } => Ok(Outcome::Applied(None)),
    }
}
