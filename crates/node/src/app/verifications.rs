//! Verification requests (retroactive checks): importing customs asks the issuing country
//! about a received certificate; the issuing officer answers, confirmed or denied. Both are
//! sealed into the outbox in the transaction that records them.

use chrono::{DateTime, Utc};
use originlink_exchange::{CertRef, MessageType};
use originlink_model::CountryCode;
use originlink_store::{NewVerification, User, VerificationRequest};
use serde_json::json;

use super::{AppState, Error, Kind, Result};

/// What importing customs asks.
#[derive(Debug, Clone)]
pub struct Raise {
    /// The country that issued the certificate.
    pub issuing_country: String,
    /// The certificate's number.
    pub number: String,
    /// One or more questions of 1 to 2000 characters.
    pub questions: Vec<String>,
    /// Days the issuing country has to answer (default: the agreement's), 1 to 365.
    pub deadline_days: Option<u32>,
}

fn country(field: &'static str, s: &str) -> Result<CountryCode> {
    CountryCode::parse(s).map_err(|_| Error::invalid("INVALID_FIELD", field, "a country code"))
}

fn signing_failed(e: String) -> Error {
    tracing::error!(error = %e, "sealing a verification message failed");
    Error::new(Kind::Internal, "SIGNING_FAILED", e)
}

/// Importing customs asks the issuing country about a certificate it received.
pub async fn raise(state: &AppState, user: &User, r: Raise) -> Result<VerificationRequest> {
    let issuing = country("issuing_country", &r.issuing_country)?;
    if r.questions.is_empty() || r.questions.iter().any(|q| q.trim().is_empty() || q.len() > 2000) {
        return Err(Error::invalid(
            "QUESTIONS_REQUIRED",
            "questions",
            "1 or more questions of 1..2000 characters",
        ));
    }
    let loaded = super::customs::load_facts(state, &r.issuing_country, &r.number)
        .await?
        .ok_or_else(Error::not_found)?;
    let x = state.exchange()?;
    let now = state.clock.now();
    let policy = state.customs.policies.get(loaded.facts.certificate.agreement, x.country);
    let days = r.deadline_days.unwrap_or(policy.verification_deadline_days);
    if !(1..=365).contains(&days) {
        return Err(Error::invalid("INVALID_FIELD", "deadline_days", "1 to 365"));
    }
    let deadline = now + chrono::Duration::days(i64::from(days));
    let payload =
        json!({"questions": r.questions, "deadline": deadline.to_rfc3339()}).to_string().into_bytes();
    let cref = CertRef { country: issuing, number: r.number.clone(), version: loaded.version };
    let m = x
        .seal(MessageType::VerificationRequest, issuing, Some(cref), None, "application/json", payload, now)
        .map_err(signing_failed)?;
    let v = state
        .store
        .create_verification(
            &state.ctx(user),
            NewVerification {
                message_id: m.id.clone(),
                issuing_country: r.issuing_country.clone(),
                number: r.number.clone(),
                partner: r.issuing_country.clone(),
                questions: serde_json::to_string(&r.questions).unwrap_or_default(),
                deadline,
            },
            vec![m],
        )
        .await?;
    state.wake_exchange();
    Ok(v)
}

/// Verification requests, `incoming` (asked of us) or `outgoing` (asked by us), or those
/// overdue now.
pub async fn list(
    state: &AppState,
    direction: Option<&str>,
    overdue: bool,
) -> Result<Vec<VerificationRequest>> {
    Ok(if overdue {
        state.store.overdue_verifications(state.clock.now()).await?
    } else {
        state.store.list_verifications(direction, 500).await?
    })
}

/// A request another member asked about one of our certificates; `NOT_FOUND` otherwise.
pub async fn incoming(state: &AppState, id: i64) -> Result<VerificationRequest> {
    match state.store.verification(id).await? {
        Some(v) if v.direction == "incoming" => Ok(v),
        _ => Err(Error::not_found()),
    }
}

/// Whether an open request is past its deadline at `now`.
pub fn is_overdue(v: &VerificationRequest, now: DateTime<Utc>) -> bool {
    v.status == "open"
        && DateTime::parse_from_rfc3339(&v.deadline).map(|d| d.with_timezone(&Utc) < now).unwrap_or(false)
}

/// The issuing officer answers a request asked of us: `confirmed` or `denied`, with an
/// answer of 1 to 10,000 characters.
pub async fn answer(
    state: &AppState,
    user: &User,
    id: i64,
    answer: &str,
    outcome: &str,
) -> Result<VerificationRequest> {
    if !matches!(outcome, "confirmed" | "denied") {
        return Err(Error::invalid("INVALID_FIELD", "outcome", "confirmed or denied"));
    }
    if answer.trim().is_empty() || answer.len() > 10_000 {
        return Err(Error::invalid("ANSWER_REQUIRED", "answer", "1 to 10000 characters"));
    }
    let v = state.store.verification(id).await?.ok_or_else(Error::not_found)?;
    if v.direction != "incoming" {
        return Err(Error::not_found());
    }
    let x = state.exchange()?;
    let now = state.clock.now();
    let to = CountryCode::parse(&v.partner).map_err(|_| Error::not_found())?;
    let cref = CertRef { country: x.country, number: v.number.clone(), version: 1 };
    let payload = json!({"outcome": outcome, "answer": answer}).to_string().into_bytes();
    let m = x
        .seal(
            MessageType::VerificationResponse,
            to,
            Some(cref),
            Some(v.message_id.clone()),
            "application/json",
            payload,
            now,
        )
        .map_err(signing_failed)?;
    let v = state.store.answer_verification(&state.ctx(user), id, answer, outcome, vec![m]).await?;
    state.wake_exchange();
    Ok(v)
}
