//! The JSON API: a thin adapter over [`crate::app`]. Each request goes through, in order: the
//! route table's role guard (401 without a valid token, 403 for a role the table does not
//! list), the extractors (path id: 404; body: 400/413/415), then one use case, whose typed
//! error becomes the one JSON error `{code, message, field?}` ([`error::ApiError`]).
//!
//! - [`routes`]: the route table ([`routes::OPERATIONS`]) with each operation's roles, and the
//!   OpenAPI 3.1 document generated from it.
//! - [`extract`]: [`extract::Auth`], [`extract::Id`], [`extract::JsonBody`],
//!   [`extract::ListPage`], and the role guard.
//! - [`error`]: [`error::ApiError`] and the mapping of use-case errors to statuses.
//! - [`track`]: logging, counting and timing every request.
//! - one file per resource: [`applications`] (and certificates, received), [`customs`]
//!   (declarations, revenue, verifications), [`admin`] (users, exchange), [`system`]
//!   (health, metrics, OpenAPI, qualify, rules), [`exchange`] (the peers' inbound endpoint).

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};

use crate::app::AppState;

pub mod admin;
pub mod applications;
pub mod customs;
pub mod error;
pub mod exchange;
pub mod extract;
pub mod routes;
pub mod system;
pub mod track;

use error::ApiError;

/// Builds the router from the route table, each operation behind its role guard, with the
/// body limit and request tracking.
pub fn router(state: AppState, body_limit: usize) -> Router {
    let mut router = Router::new();
    for op in routes::OPERATIONS {
        let mut route = (op.handler)();
        if !op.roles.is_empty() {
            let roles = op.roles;
            route = route.route_layer(from_fn_with_state(
                state.clone(),
                move |State(state): State<AppState>, req: Request, next: Next| async move {
                    extract::authorize(&state, roles, req, next).await
                },
            ));
        }
        router = router.route(op.path, route);
    }
    // The exchange endpoint (docs/protocol.md) is not part of the user API: peers authenticate
    // with their TLS certificate before it reads the body, and batches may be larger than a
    // user request (it applies its own limit).
    let peers = Router::new()
        .route(originlink_exchange::MESSAGES_PATH, axum::routing::post(exchange::inbound))
        .route(originlink_exchange::MESSAGES_PATH_V2, axum::routing::post(exchange::inbound_v2));
    router
        .layer(DefaultBodyLimit::max(body_limit))
        .merge(peers)
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(from_fn_with_state(state.clone(), track::track))
        .with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

async fn no_method() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "method not allowed on this route")
}
