//! The request middleware: logging, counting, timing, and turning a handler panic into a
//! logged 500. The log line names method, route, status and latency: never headers, so never
//! a token.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::app::AppState;

/// Counts, times and logs every request.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    // The handler runs in its own task so that a panic (a bug) answers a logged 500 instead
    // of dropping the connection.
    let res = match tokio::spawn(next.run(req)).await {
        Ok(res) => res,
        Err(e) => {
            tracing::error!(%method, %route, panic = e.is_panic(), "handler failed");
            ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")
                .into_response()
        }
    };
    let elapsed = start.elapsed();
    state.metrics.record(res.status().as_u16(), elapsed.as_secs_f64());
    tracing::info!(%method, %route, status = res.status().as_u16(), micros = elapsed.as_micros() as u64, "request");
    res
}
