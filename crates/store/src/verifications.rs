//! Verification requests in both directions, written once for both backends (a backend
//! implements [`VerificationsTx`]): raising ours, answering theirs, recording their answers.

use crate::audit::{self, AuditTx, PendingEvent};
use crate::model::{Ctx, INCOMING, Inbound, NewVerification, OUTGOING, OutMessage, VerificationRequest};
use crate::outbox::{self, OutboxTx};
use crate::{Result, StoreError, timestamp};

/// A verification request (short, for the signatures below).
pub(crate) type Request = VerificationRequest;

/// What verification requests need from a backend's open transaction.
pub(crate) trait VerificationsTx {
    /// Inserts an open verification request; `None` when (direction, message id) exists.
    async fn open_request(&mut self, dir: &str, v: &NewVerification, at: &str) -> Result<Option<Request>>;
    /// A verification request by direction and request message id (locked for update where
    /// the backend locks).
    async fn find_verification(&mut self, dir: &str, message_id: &str) -> Result<Option<Request>>;
    /// A verification request by id (locked for update where the backend locks).
    async fn lock_verification(&mut self, id: i64) -> Result<Option<Request>>;
    /// Records the answer and outcome of a request (its status becomes the outcome).
    async fn set_verification_answer(&mut self, id: i64, answer: (&str, &str), at: &str) -> Result<Request>;
}

/// Raises an `outgoing` request and enqueues its messages. Duplicate: `VERIFICATION_EXISTS`.
pub(crate) async fn create<T: VerificationsTx + OutboxTx + AuditTx>(
    tx: &mut T,
    ctx: &Ctx,
    v: &NewVerification,
    messages: &[OutMessage],
) -> Result<VerificationRequest> {
    let at = timestamp(&ctx.at);
    let Some(created) = tx.open_request(OUTGOING, v, &at).await? else {
        return Err(StoreError::conflict(
            "VERIFICATION_EXISTS",
            format!("verification {} exists", v.message_id),
        ));
    };
    outbox::enqueue(tx, messages, &at).await?;
    audit::append(tx, ctx, &[verification_created_event(&created)]).await?;
    Ok(created)
}

/// Answers an open `incoming` request and enqueues the response messages.
pub(crate) async fn answer<T: VerificationsTx + OutboxTx + AuditTx>(
    tx: &mut T,
    ctx: &Ctx,
    id: i64,
    (answer, outcome): (&str, &str),
    messages: &[OutMessage],
) -> Result<VerificationRequest> {
    check_outcome(outcome)?;
    let at = timestamp(&ctx.at);
    let before = tx.lock_verification(id).await?.ok_or(StoreError::NotFound)?;
    if before.direction != INCOMING || before.status != "open" {
        return Err(verification_not_open(&before));
    }
    let after = tx.set_verification_answer(id, (answer, outcome), &at).await?;
    outbox::enqueue(tx, messages, &at).await?;
    audit::append(tx, ctx, &[verification_answered_event(&before, &after)]).await?;
    Ok(after)
}

/// Records the response to one of our `outgoing` requests. Unknown: `NOT_FOUND`; not open:
/// `VERIFICATION_NOT_OPEN`.
pub(crate) async fn record_answer<T: VerificationsTx + AuditTx>(
    tx: &mut T,
    ctx: &Ctx,
    request_message_id: &str,
    (answer, outcome): (&str, &str),
) -> Result<VerificationRequest> {
    check_outcome(outcome)?;
    match answered(tx, request_message_id, answer, outcome, &timestamp(&ctx.at)).await? {
        Ok((before, after)) => {
            audit::append(tx, ctx, &[verification_answered_event(&before, &after)]).await?;
            Ok(after)
        }
        Err(Some(v)) => Err(verification_not_open(&v)),
        Err(None) => Err(StoreError::NotFound),
    }
}

/// Records the answer to an `outgoing` request: `Ok(Ok((before, after)))`, or `Ok(Err(None))`
/// when there is no such request, `Ok(Err(Some(v)))` when it is not open.
pub(crate) async fn answered<T: VerificationsTx>(
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
    let after = tx.set_verification_answer(v.id, (answer, outcome), at).await?;
    Ok(Ok((v, after)))
}

fn verification_state(v: &VerificationRequest) -> String {
    serde_json::json!({
        "direction": v.direction,
        "message_id": v.message_id,
        "issuing_country": v.issuing_country,
        "number": v.number,
        "partner": v.partner,
        "deadline": v.deadline,
        "status": v.status,
        "outcome": v.outcome,
    })
    .to_string()
}

/// The audit event of a verification request created (either direction).
pub(crate) fn verification_created_event(v: &VerificationRequest) -> PendingEvent {
    PendingEvent::new(
        "verification.created",
        format!("verification/{}", v.id),
        "null".into(),
        verification_state(v),
    )
}

/// The audit event of a verification request answered (either direction).
pub(crate) fn verification_answered_event(
    before: &VerificationRequest,
    after: &VerificationRequest,
) -> PendingEvent {
    PendingEvent::new(
        "verification.answered",
        format!("verification/{}", after.id),
        verification_state(before),
        verification_state(after),
    )
}

/// The audit event of a verification response that matches no open request of ours.
pub(crate) fn verification_unmatched_event(m: &Inbound, request_message_id: &str) -> PendingEvent {
    let after = serde_json::json!({
        "from_country": m.from_country,
        "request_message_id": request_message_id,
    });
    PendingEvent::new(
        "verification.unmatched",
        format!("message/{}", m.message_id),
        "null".into(),
        after.to_string(),
    )
}

/// Checks a verification outcome.
pub(crate) fn check_outcome(outcome: &str) -> Result<()> {
    match outcome {
        "confirmed" | "denied" => Ok(()),
        _ => Err(StoreError::conflict(
            "VERIFICATION_OUTCOME_INVALID",
            format!("outcome {outcome:?}: confirmed or denied"),
        )),
    }
}

/// The conflict for a verification request that is not open (or not of the right direction).
pub(crate) fn verification_not_open(v: &VerificationRequest) -> StoreError {
    StoreError::conflict(
        "VERIFICATION_NOT_OPEN",
        format!("verification {} is {} ({}), this needs it open", v.id, v.status, v.direction),
    )
}
