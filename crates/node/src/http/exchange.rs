//! `POST /exchange/v1/messages`, the exchange's inbound endpoint (`docs/protocol.md`): not
//! part of the user API. Peers authenticate with their TLS client certificate, checked before
//! a byte of the body is read; the batch is processed by [`crate::exchange`], and customs acts
//! on what arrived.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use originlink_exchange::ExchangeError;
use originlink_exchange::body::{Batch, BatchResponse, BatchV2};
use originlink_exchange::server::PeerCert;

use crate::app::AppState;

fn refuse(status: StatusCode, e: ExchangeError) -> Response {
    (status, axum::Json(serde_json::json!({"code": e.code, "message": e.message, "field": e.field})))
        .into_response()
}

/// `POST /exchange/v1/messages`: a batch pushed by a gateway or a direct partner. The sender
/// is identified from the TLS handshake before a byte of the body is read; the body is then
/// read up to the batch limit and the body deadline.
/// `POST /exchange/v1/messages`: every envelope checked by its own signature.
pub(crate) async fn inbound(
    State(state): State<AppState>,
    peer: Option<axum::Extension<PeerCert>>,
    req: axum::extract::Request,
) -> Response {
    receive(state, peer, req, false).await
}

/// `POST /exchange/v2/messages`: envelopes with the signed manifests that list them.
pub(crate) async fn inbound_v2(
    State(state): State<AppState>,
    peer: Option<axum::Extension<PeerCert>>,
    req: axum::extract::Request,
) -> Response {
    if state.exchange.as_ref().is_some_and(|x| x.protocol < 2) {
        // Configured as the previous version: the path does not exist.
        return refuse(StatusCode::NOT_FOUND, ExchangeError::new("NOT_FOUND", None, "no such resource"));
    }
    receive(state, peer, req, true).await
}

async fn receive(
    state: AppState,
    peer: Option<axum::Extension<PeerCert>>,
    req: axum::extract::Request,
    v2: bool,
) -> Response {
    let Some(x) = state.exchange.clone() else {
        return refuse(
            StatusCode::NOT_FOUND,
            ExchangeError::new("EXCHANGE_NOT_CONFIGURED", None, "this node has no [exchange] configuration"),
        );
    };
    let der = peer.and_then(|p| p.0.0.clone());
    let now = state.clock.now();
    let peer = match x.identify(der.as_deref().map(Vec::as_slice), now) {
        Ok(p) => p.clone(),
        Err(e) if e.code == "CLIENT_CERT_REQUIRED" => return refuse(StatusCode::UNAUTHORIZED, e),
        Err(e) => return refuse(StatusCode::FORBIDDEN, e),
    };
    let (parts, body) = req.into_parts();
    let body = match originlink_exchange::server::read_body(
        &parts.headers,
        body,
        originlink_exchange::body::MAX_BATCH_BYTES,
    )
    .await
    {
        Ok(b) => b,
        Err((status, e)) => return refuse(status, e),
    };
    let parsed = if v2 {
        BatchV2::parse(&body).map(|b| (b.manifests, b.messages))
    } else {
        Batch::parse(&body).map(|b| (Vec::new(), b.messages))
    };
    let (manifests, messages) = match parsed {
        Ok(b) => b,
        Err(e) if e.code == "BATCH_TOO_LARGE" => return refuse(StatusCode::PAYLOAD_TOO_LARGE, e),
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let raws = messages.iter().map(|m| m.get().as_bytes().to_vec()).collect();
    let crate::exchange::Processed { acks, arrivals, manifests } =
        x.process(&state.exchange_env(), &peer, raws, manifests).await;
    if !arrivals.is_empty() {
        let state = state.clone();
        tokio::spawn(async move { crate::app::customs::after_arrivals(&state, &arrivals).await });
    }
    if acks.is_empty() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            ExchangeError::new("STORAGE_UNAVAILABLE", None, "the messages could not be stored; retry"),
        );
    }
    axum::Json(BatchResponse { acks, manifests }).into_response()
}
