//! `/api/v1/declarations`, `/api/v1/revenue` and `/api/v1/verifications`: thin adapters over
//! [`crate::app::customs`] and [`crate::app::verifications`].

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{Auth, Id, JsonBody, ListOf, Paged, content_type, unsupported_media_type};
use crate::app::AppState;
use crate::app::customs as uc;
use crate::app::verifications::{self, Raise};

type ApiResult<T> = Result<T, ApiError>;

fn declaration_view(d: originlink_store::Declaration) -> Value {
    let lines: Vec<Value> = d
        .lines
        .into_iter()
        .map(|l| {
            json!({
                "line_no": l.line_no,
                "eco": match (&l.eco_country, &l.eco_number) {
                    (Some(c), Some(n)) => json!({"issuing_country": c, "number": n}),
                    _ => json!("PENDING"),
                },
                "outcome": l.outcome,
                "reasons": serde_json::from_str::<Value>(&l.reasons).unwrap_or(Value::Null),
                "matched_item": l.matched_item,
                "consumed": l.consumed,
                "duty": uc::applicable_duty(&l),
                "decided_at": l.decided_at,
            })
        })
        .collect();
    json!({
        "id": d.id, "number": d.number, "importer": d.importer, "importing_country": d.importing_country,
        "declaration_date": d.declaration_date,
        "risk": { "score": d.risk_score, "reasons": serde_json::from_str::<Value>(&d.risk).map(|r| r["reasons"].clone()).unwrap_or(Value::Null) },
        "lines": lines, "created_at": d.created_at,
    })
}

/// `POST /api/v1/declarations`
pub(crate) async fn create_declaration(
    State(state): State<AppState>,
    Auth(user): Auth,
    headers: HeaderMap,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    let body = body.map_err(super::extract::bytes_rejection)?;
    if content_type(&headers) != "application/json" {
        return Err(unsupported_media_type("application/json"));
    }
    let d = uc::declare(&state, &user, &body).await?;
    Ok((StatusCode::CREATED, axum::Json(declaration_view(d))).into_response())
}

/// `GET /api/v1/declarations`: the officer's queue, highest risk first.
/// `?limit=&before=&number=&importer=&from=&to=&outcome=` of the declarations queue.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclarationsQuery {
    limit: Option<i64>,
    before: Option<i64>,
    number: Option<String>,
    importer: Option<String>,
    from: Option<String>,
    to: Option<String>,
    outcome: Option<String>,
}

impl Paged for DeclarationsQuery {
    fn page(&self) -> (Option<i64>, Option<i64>) {
        (self.limit, self.before)
    }
}

pub(crate) async fn list_declarations(
    State(state): State<AppState>,
    ListOf(page, q): ListOf<DeclarationsQuery>,
) -> ApiResult<Response> {
    let query = uc::DeclarationQuery {
        number: q.number,
        importer: q.importer,
        from: q.from,
        to: q.to,
        outcome: q.outcome,
    };
    let list = uc::declarations(&state, &page, &query).await?;
    Ok(axum::Json(list.into_iter().map(declaration_view).collect::<Vec<_>>()).into_response())
}

/// `GET /api/v1/declarations/{id}`
pub(crate) async fn get_declaration(State(state): State<AppState>, Id(id): Id) -> ApiResult<Response> {
    Ok(axum::Json(declaration_view(uc::declaration(&state, id).await?)).into_response())
}

/// Body of `POST /api/v1/declarations/{id}/lines/{line}/decision`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineDecisionBody {
    /// `redecide` or `override`.
    pub action: uc::OfficerAction,
    /// For `override`: `granted` or `denied`.
    #[serde(default)]
    pub outcome: Option<uc::OverrideOutcome>,
    /// Why (1 to 1000 characters).
    pub reason: String,
}

/// `POST /api/v1/declarations/{id}/lines/{line}/decision`: a customs officer re-decides or
/// overrides one line.
pub(crate) async fn decide_line(
    State(state): State<AppState>,
    Auth(user): Auth,
    path: Result<Path<(i64, i32)>, PathRejection>,
    JsonBody(b): JsonBody<LineDecisionBody>,
) -> ApiResult<Response> {
    let Path((id, line)) = path.map_err(|_| ApiError::not_found())?;
    let input = uc::OfficerDecision { action: b.action, outcome: b.outcome, reason: b.reason };
    let d = uc::decide_line(&state, &user, id, line, input).await?;
    Ok(axum::Json(declaration_view(d)).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct RevenueQuery {
    from: NaiveDate,
    to: NaiveDate,
}

/// `GET /api/v1/revenue?from=YYYY-MM-DD&to=YYYY-MM-DD` (to exclusive): preference granted and
/// duty collected, per currency.
pub(crate) async fn revenue(
    State(state): State<AppState>,
    q: Result<Query<RevenueQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q.map_err(|e| ApiError::invalid("INVALID_QUERY", "from", e.body_text()))?;
    Ok(axum::Json(uc::revenue(&state, q.from, q.to).await?).into_response())
}

/// `POST /api/v1/verifications` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RaiseVerification {
    issuing_country: String,
    number: String,
    questions: Vec<String>,
    deadline_days: Option<u32>,
}

fn verification_view(v: originlink_store::VerificationRequest, now: DateTime<Utc>) -> Value {
    let overdue = verifications::is_overdue(&v, now);
    json!({
        "id": v.id, "direction": v.direction, "issuing_country": v.issuing_country, "number": v.number,
        "partner": v.partner, "questions": serde_json::from_str::<Value>(&v.questions).unwrap_or(Value::Null),
        "deadline": v.deadline, "status": v.status, "overdue": overdue, "answer": v.answer,
        "outcome": v.outcome, "created_at": v.created_at, "answered_at": v.answered_at,
    })
}

/// `POST /api/v1/verifications`: importing customs asks the issuing country.
pub(crate) async fn raise_verification(
    State(state): State<AppState>,
    Auth(user): Auth,
    JsonBody(r): JsonBody<RaiseVerification>,
) -> ApiResult<Response> {
    let raise = Raise {
        issuing_country: r.issuing_country,
        number: r.number,
        questions: r.questions,
        deadline_days: r.deadline_days,
    };
    let v = verifications::raise(&state, &user, raise).await?;
    Ok((StatusCode::CREATED, axum::Json(verification_view(v, state.clock.now()))).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct VerificationQuery {
    direction: Option<String>,
    overdue: Option<bool>,
}

/// `GET /api/v1/verifications?direction=incoming|outgoing&overdue=true`
pub(crate) async fn list_verifications(
    State(state): State<AppState>,
    q: Result<Query<VerificationQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q.map_err(|e| ApiError::invalid("INVALID_QUERY", "direction", e.body_text()))?;
    let list = verifications::list(&state, q.direction.as_deref(), q.overdue == Some(true)).await?;
    let now = state.clock.now();
    Ok(axum::Json(list.into_iter().map(|v| verification_view(v, now)).collect::<Vec<_>>()).into_response())
}

/// `POST /api/v1/verifications/{id}/answer` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Answer {
    answer: String,
    outcome: String,
}

/// `POST /api/v1/verifications/{id}/answer`: the issuing officer answers (confirmed/denied).
pub(crate) async fn answer_verification(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<i64>, PathRejection>,
    JsonBody(a): JsonBody<Answer>,
) -> ApiResult<Response> {
    let Path(id) = id.map_err(|_| ApiError::invalid("INVALID_PATH", "id", "an integer id"))?;
    let v = verifications::answer(&state, &user, id, &a.answer, &a.outcome).await?;
    Ok(axum::Json(verification_view(v, state.clock.now())).into_response())
}
