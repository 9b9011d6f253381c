//! Health, metrics, and the reference endpoints (`qualify`,
//! `rules`) over [`crate::app::reference`].

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;
use super::extract::JsonBody;
use crate::app::{AppState, reference};
use crate::metrics::Metrics;

type ApiResult<T> = Result<T, ApiError>;

/// `POST /api/v1/qualify`: a `qualify` request in, the assessment out.
pub(crate) async fn qualify(JsonBody(request): JsonBody<Value>) -> ApiResult<Response> {
    let bytes = serde_json::to_vec(&request).map_err(ApiError::internal)?;
    Ok(axum::Json(reference::qualify(&bytes)?).into_response())
}

/// `GET /api/v1/rules` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesQuery {
    /// `ATIGA` or `RCEP`.
    pub agreement: String,
    /// An HS code (2 to 10 digits, dots allowed).
    pub hs: String,
}

pub(crate) async fn rules(q: Result<Query<RulesQuery>, QueryRejection>) -> ApiResult<Response> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_QUERY", e.body_text()))?;
    Ok(axum::Json(reference::rule(&q.agreement, &q.hs)?).into_response())
}

/// `GET /healthz`: 200 `{"status": "ok", "storage", "quarantined"}` while the node serves and
/// its storage answers. `quarantined` counts the inbound messages that can never be processed
/// (`GET /api/v1/exchange/quarantine`): the node stays up and serves around them, so they do
/// not make it unhealthy, but anything above 0 wants the operator.
pub(crate) async fn healthz(State(state): State<AppState>) -> ApiResult<Response> {
    state.store.ping().await?;
    let quarantined = state.store.quarantined_len().await?;
    Ok(axum::Json(serde_json::json!({
        "status": "ok", "storage": state.store.backend(), "quarantined": quarantined,
    }))
    .into_response())
}

/// `GET /metrics`: Prometheus text exposition.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    // The counters do not depend on storage; the stored gauges are left out while it fails.
    let stored = match crate::app::exchange_admin::status(&state).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: reading the exchange queues failed");
            None
        }
    };
    if let Some(s) = &stored {
        state.metrics.set_queues(s.outbox_pending, s.outbox_dead, s.held, s.quarantined);
    }
    ([(header::CONTENT_TYPE, Metrics::CONTENT_TYPE)], state.metrics.render()).into_response()
}
