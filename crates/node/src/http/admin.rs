//! `/api/v1/users` and `/api/v1/exchange/…`: thin adapters over [`crate::app::users`] and
//! [`crate::app::exchange_admin`].

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use originlink_store::{Role, UserChange};
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{Auth, Id, JsonBody};
use crate::app::{AppState, exchange_admin, notifications, users};

type ApiResult<T> = Result<T, ApiError>;

/// `POST /api/v1/users` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Unique login name.
    pub name: String,
    /// `exporter`, `issuing-officer`, `customs-officer` or `admin`.
    pub role: String,
    /// The exporter's company (created on first use).
    #[serde(default)]
    pub company: Option<String>,
}

pub(crate) async fn create_user(
    State(state): State<AppState>,
    Auth(user): Auth,
    JsonBody(req): JsonBody<CreateUser>,
) -> ApiResult<Response> {
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::invalid("ROLE_UNKNOWN", "role", "exporter, issuing-officer, customs-officer or admin")
    })?;
    let country = state.issuer.authority.country.clone();
    let (created, token) = users::add_user(
        state.store.as_ref(),
        &state.ctx(&user),
        &req.name,
        role,
        req.company.as_deref(),
        &country,
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(serde_json::json!({ "user": created, "token": token })))
        .into_response())
}

/// `GET /api/v1/users`: every user, by id.
pub(crate) async fn list_users(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(axum::Json(users::list(state.store.as_ref()).await?).into_response())
}

async fn change_user(
    state: AppState,
    user: originlink_store::User,
    id: i64,
    c: UserChange,
) -> ApiResult<Response> {
    let changed = users::change(state.store.as_ref(), &state.ctx(&user), Some(user.id), id, c).await?;
    Ok(axum::Json(changed).into_response())
}

/// `POST /api/v1/users/{id}/disable`: its tokens stop authenticating (not one's own).
pub(crate) async fn disable_user(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
) -> ApiResult<Response> {
    change_user(state, user, id, UserChange::Disable).await
}

/// `POST /api/v1/users/{id}/enable`.
pub(crate) async fn enable_user(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
) -> ApiResult<Response> {
    change_user(state, user, id, UserChange::Enable).await
}

/// `POST /api/v1/users/{id}/tokens/revoke`: every token of the user stops authenticating.
pub(crate) async fn revoke_tokens(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
) -> ApiResult<Response> {
    change_user(state, user, id, UserChange::RevokeTokens).await
}

/// `POST /api/v1/users/{id}/tokens`: a new token, returned once; the user's others are revoked.
pub(crate) async fn issue_token(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
) -> ApiResult<Response> {
    let (changed, token) = users::issue_token(state.store.as_ref(), &state.ctx(&user), id).await?;
    Ok((StatusCode::CREATED, axum::Json(serde_json::json!({ "user": changed, "token": token })))
        .into_response())
}

pub(crate) async fn exchange_status(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(axum::Json(exchange_admin::status(&state).await?).into_response())
}

/// `GET /api/v1/exchange/quarantine`: inbound messages that can never be processed (newest
/// first, at most 500), with the reason.
pub(crate) async fn quarantined(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(axum::Json(exchange_admin::quarantined(&state).await?).into_response())
}

/// `GET /api/v1/exchange/refused`: inbound messages refused, with the code (newest first, at
/// most 500).
pub(crate) async fn refused(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(axum::Json(exchange_admin::refused(&state).await?).into_response())
}

/// `GET /api/v1/exchange/outbox`: outgoing messages not yet delivered, pending and dead,
/// oldest first (at most 500), with attempts, last error and next attempt.
pub(crate) async fn outbox(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(axum::Json(exchange_admin::outbox(&state).await?).into_response())
}

pub(crate) async fn dead_letters(State(state): State<AppState>) -> ApiResult<Response> {
    Ok(axum::Json(exchange_admin::dead_letters(&state).await?).into_response())
}

pub(crate) async fn retry_dead(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let Path(id) = id.map_err(|_| ApiError::invalid("INVALID_PATH", "id", "a message id"))?;
    Ok(axum::Json(exchange_admin::retry(&state, &user, &id).await?).into_response())
}

/// `PUT /api/v1/users/{id}/email` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetEmail {
    /// Where the user's notifications are e-mailed; `null` or empty: nowhere.
    #[serde(default)]
    pub email: Option<String>,
}

/// `PUT /api/v1/users/{id}/email`: where a user's notifications are e-mailed.
pub(crate) async fn set_email(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
    JsonBody(req): JsonBody<SetEmail>,
) -> ApiResult<Response> {
    let done =
        notifications::set_email(state.store.as_ref(), &state.ctx(&user), id, req.email.as_deref()).await?;
    Ok(axum::Json(done).into_response())
}

/// `?before=&limit=` of the notifications.
#[derive(Debug, Deserialize)]
pub(crate) struct FeedQuery {
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

/// `GET /api/v1/notifications`: the caller's notifications, newest first (marked seen).
pub(crate) async fn notifications_feed(
    State(state): State<AppState>,
    Auth(user): Auth,
    q: Result<axum::extract::Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let axum::extract::Query(q) =
        q.map_err(|_| ApiError::invalid("INVALID_QUERY", "before", "before and limit are integers"))?;
    let feed = notifications::feed(&state, &user, q.before, q.limit.unwrap_or(50)).await?;
    Ok(axum::Json(feed).into_response())
}
