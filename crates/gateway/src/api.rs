//! The gateway's HTTP endpoints (see `docs/protocol.md`).
//!
//! Every caller is identified by the TLS client certificate it presented
//! ([`PeerCert`], matched against the trust list by [`Directory::identify`]); the operator
//! endpoints also accept the gateway's own certificate or the operator's bearer token. Every
//! request body is read to its end (up to a bound) before answering, even when the answer is
//! a refusal, so that the kept-alive connection stays usable.

use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use originlink_exchange::body::BatchV2;
use originlink_exchange::server::PeerCert;
use originlink_exchange::{
    Ack, Batch, BatchResponse, Delivery, Envelope, ExchangeError, Manifest, Peer, Vouched, check_message,
};
use serde::Deserialize;
use serde_json::json;

use crate::metrics::Metrics;
use crate::operator;
use crate::queue::{ManifestBody, NewMessage, Outcome, Settle};

/// How long a pulled message stays leased to the node that pulled it.
pub const PULL_LEASE: Duration = Duration::from_secs(30);
/// The most messages one pull returns.
pub const MAX_PULL: usize = 1000;
/// The body limit of the small JSON requests (pull).
const SMALL_BODY: usize = 64 * 1024;

pub use crate::state::Shared;

/// The router: the exchange endpoints, `/healthz` and `/metrics`.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route(originlink_exchange::MESSAGES_PATH, post(post_messages))
        .route(originlink_exchange::MESSAGES_PATH_V2, post(post_messages_v2))
        .route("/exchange/v1/messages/{id}", get(track))
        .route("/exchange/v1/pull", post(pull))
        .route("/exchange/v1/pull/ack", post(pull_ack))
        .route("/exchange/v1/trust-list", get(trust_list))
        .route("/exchange/v1/dead", get(dead))
        .route("/exchange/v1/dead/{id}/retry", post(retry_dead))
        .route("/exchange/v1/traffic", get(traffic))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "NOT_FOUND", None, "no such resource") })
        .with_state(shared)
}

fn error(status: StatusCode, code: &'static str, field: Option<&str>, message: &str) -> Response {
    (status, Json(ExchangeError::new(code, field, message))).into_response()
}

/// A refusal of the whole request, with the status its code calls for.
fn refuse(m: &Metrics, e: ExchangeError) -> Response {
    let status = match e.code {
        "CLIENT_CERT_REQUIRED" | "OPERATOR_TOKEN_INVALID" => StatusCode::UNAUTHORIZED,
        "CLIENT_CERT_UNKNOWN"
        | "CLIENT_CERT_EXPIRED"
        | "CLIENT_CERT_REVOKED"
        | "OPERATOR_REQUIRED"
        | "NODE_REQUIRED" => StatusCode::FORBIDDEN,
        "BATCH_TOO_LARGE" => StatusCode::PAYLOAD_TOO_LARGE,
        "BODY_TIMEOUT" => StatusCode::REQUEST_TIMEOUT,
        "NOT_FOUND" => StatusCode::NOT_FOUND,
        "QUEUE_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    m.request_refused(e.code);
    tracing::debug!(code = e.code, message = %e.message, "request refused");
    (status, Json(e)).into_response()
}

fn unavailable(m: &Metrics, cause: impl std::fmt::Display) -> Response {
    tracing::error!(error = %cause, "queue failure");
    refuse(m, ExchangeError::new("QUEUE_UNAVAILABLE", None, "the queue is unavailable; retry later"))
}

/// Reads a whole body, up to `limit` bytes, only once the caller is known (the shared reader
/// stops at the limit and at the body deadline).
async fn read_body(req: Request, limit: usize) -> Result<Vec<u8>, ExchangeError> {
    let (parts, body) = req.into_parts();
    originlink_exchange::server::read_body(&parts.headers, body, limit).await.map_err(|(_, e)| e)
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    /// The gateway's own certificate or the operator's token.
    Operator,
    /// A listed peer.
    Peer(Peer),
}

fn caller(s: &Shared, peer: &PeerCert, headers: &HeaderMap) -> Result<Caller, ExchangeError> {
    if peer.0.as_deref().is_some_and(|c| c.as_slice() == s.own_cert.as_slice()) {
        return Ok(Caller::Operator);
    }
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let token = auth.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        let ok = match (token, &s.operator_token_sha256) {
            (Some(t), Some(want)) => {
                let got = ring::digest::digest(&ring::digest::SHA256, t.as_bytes());
                got.as_ref().iter().zip(want.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
            }
            _ => false,
        };
        return if ok {
            Ok(Caller::Operator)
        } else {
            Err(ExchangeError::new("OPERATOR_TOKEN_INVALID", None, "the bearer token is not valid"))
        };
    }
    s.directory
        .get()
        .identify(peer.0.as_deref().map(Vec::as_slice), s.clock.now())
        .map(|p| Caller::Peer(p.clone()))
}

fn peer_of(req: &Request) -> PeerCert {
    req.extensions().get::<PeerCert>().cloned().unwrap_or_default()
}

/// `POST /exchange/v1/messages`: every envelope checked by its own signature.
async fn post_messages(State(s): State<Shared>, req: Request) -> Response {
    accept(s, req, false).await
}

/// `POST /exchange/v2/messages`: envelopes with the signed manifests that list them; one
/// verification per manifest instead of one per envelope.
async fn post_messages_v2(State(s): State<Shared>, req: Request) -> Response {
    if s.protocol < 2 {
        // Configured as the previous version: the path does not exist.
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", None, "no such resource");
    }
    accept(s, req, true).await
}

async fn accept(s: Shared, req: Request, v2: bool) -> Response {
    let peer = peer_of(&req);
    // Who is sending is settled from the TLS handshake before a byte of the body is read.
    let client = match s.directory.get().identify(peer.0.as_deref().map(Vec::as_slice), s.clock.now()) {
        Ok(p) => p.clone(),
        Err(e) => return refuse(&s.metrics, e),
    };
    let body = match read_body(req, s.body_limit).await {
        Ok(b) => b,
        Err(e) => return refuse(&s.metrics, e),
    };
    let parsed = if v2 {
        BatchV2::parse(&body).map(|b| (b.manifests, b.messages))
    } else {
        Batch::parse(&body).map(|b| (Vec::new(), b.messages))
    };
    let (manifests, messages) = match parsed {
        Ok(b) => b,
        Err(e) => return refuse(&s.metrics, e),
    };
    // Parsing and signature checks are CPU work: off the async threads.
    let checker = s.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let vouched = vouch(&checker, &client, manifests);
        let checked: Vec<_> =
            messages.iter().map(|raw| check(&checker, &client, raw.get().as_bytes(), &vouched)).collect();
        (vouched, checked)
    })
    .await;
    let (vouched, checked) = match checked {
        Ok(c) => c,
        Err(e) => return unavailable(&s.metrics, e),
    };
    let new: Vec<NewMessage> = checked.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
    // The manifests the accepted messages name, kept with them to be forwarded.
    let keep: Vec<ManifestBody> = vouched
        .verified
        .iter()
        .map(|(m, sha256)| ManifestBody {
            sha256: sha256.clone(),
            body: String::from_utf8_lossy(&m.raw).into_owned(),
        })
        .filter(|m| new.iter().any(|n| n.manifest.as_deref() == Some(m.sha256.as_str())))
        .collect();
    let stored = if new.is_empty() {
        Vec::new()
    } else {
        match s.queue.enqueue_with_manifests(new, keep, s.clock.now()).await {
            Ok(v) => v,
            Err(e) => return unavailable(&s.metrics, e),
        }
    };
    // Committed: only now may the answer say `accepted`.
    let mut stored = stored.into_iter();
    let mut acks = Vec::with_capacity(checked.len());
    let (mut accepted, mut duplicates) = (0, 0);
    for c in checked {
        match c {
            Ok(m) => {
                let is_new = stored.next().unwrap_or(false);
                let mut ack = Ack::ok(m.id.clone(), Delivery::Accepted);
                if is_new {
                    accepted += 1;
                    if let Some(n) = s.wake.get(&m.recipient) {
                        n.notify_one();
                    }
                } else {
                    duplicates += 1;
                    ack.duplicate = true;
                }
                acks.push(ack);
            }
            Err(ack) => {
                if let Some(code) = ack.code.as_deref() {
                    s.metrics.refused(static_code(code));
                }
                acks.push(ack);
            }
        }
    }
    s.metrics.accepted(accepted);
    s.metrics.duplicates(duplicates);
    let manifests = originlink_exchange::manifest::refusals(&vouched);
    (StatusCode::OK, Json(BatchResponse { acks, manifests })).into_response()
}

/// Verifies the manifests of a batch from `client` (a node may pass on only its own).
fn vouch(s: &Shared, client: &Peer, manifests: Vec<Manifest>) -> Vouched {
    if manifests.is_empty() {
        return Vouched::default();
    }
    let directory = s.directory.get();
    let client_country = match client {
        Peer::Node { country, .. } => Some(*country),
        Peer::Gateway { .. } => None,
    };
    Vouched::check(manifests, client_country, |c| directory.node_certs(c).into_iter().cloned().collect())
}

/// The codes an envelope can be refused with, as `'static` labels for the metrics.
fn static_code(code: &str) -> &'static str {
    const CODES: &[&str] = &[
        "ENVELOPE_TOO_LARGE",
        "ENVELOPE_MALFORMED",
        "ENVELOPE_FORMAT_UNKNOWN",
        "MESSAGE_TYPE_UNKNOWN",
        "PAYLOAD_HASH_MISMATCH",
        "ENVELOPE_SIGNATURE_INVALID",
        "ENVELOPE_SIGNATURE_ALGORITHM_NOT_ALLOWED",
        "PAYLOAD_MALFORMED",
        "ISSUER_MISMATCH",
        "SENDER_MISMATCH",
        "SENDER_UNKNOWN",
        "RECIPIENT_UNKNOWN",
        "NO_ROUTE",
    ];
    CODES.iter().find(|c| **c == code).copied().unwrap_or("OTHER")
}

/// Checks one envelope from `client`: form (a document payload is left for its recipient to
/// read), sender, recipient, signature (or a verified manifest from its sender that lists it),
/// and what its type requires ([`check_message`]).
fn check(s: &Shared, client: &Peer, raw: &[u8], vouched: &Vouched) -> Result<NewMessage, Ack> {
    let env = Envelope::parse_routed(raw).map_err(|e| {
        // The id, if there is one, so the sender can tell which message was refused.
        let id = serde_json::from_slice::<serde_json::Value>(raw)
            .ok()
            .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
            .unwrap_or_default();
        Ack::refused(id, &e)
    })?;
    let h = &env.header;
    let refuse = |code, field, msg: String| {
        Err(Ack::refused(h.id.clone(), &ExchangeError::new(code, Some(field), msg)))
    };
    if let Peer::Node { country, .. } = client
        && *country != h.from.country
    {
        return refuse(
            "SENDER_MISMATCH",
            "from",
            format!("the TLS client is a node of {country}, the envelope is from {}", h.from.country),
        );
    }
    if !s.directory.get().is_member(h.from.country) {
        return refuse("SENDER_UNKNOWN", "from", format!("{} is not a member", h.from.country));
    }
    if !s.directory.get().is_member(h.to.country) {
        return refuse("RECIPIENT_UNKNOWN", "to", format!("{} is not a member", h.to.country));
    }
    let manifest = if vouched.is_empty() {
        None
    } else {
        vouched.vouches(&originlink_exchange::envelope::sha256_hex(raw), h.from.country)
    };
    if manifest.is_none() && s.verify_signatures {
        let directory = s.directory.get();
        let certs = directory.node_certs(h.from.country);
        env.verify_signature(&certs).map_err(|e| Ack::refused(h.id.clone(), &e))?;
    }
    // What the recipient would refuse is refused here, with the same code: the header members
    // the type needs and the type's payload (certificate documents excepted).
    check_message(&env).map_err(|e| Ack::refused(h.id.clone(), &e))?;
    Ok(NewMessage {
        id: h.id.clone(),
        sender: h.from.country.as_str().to_owned(),
        recipient: h.to.country.as_str().to_owned(),
        kind: h.kind.as_str().to_owned(),
        certificate: h.certificate.as_ref().map(|c| crate::queue::CertificateRef {
            country: c.country.as_str().to_owned(),
            number: c.number.clone(),
        }),
        envelope: env.raw,
        manifest: manifest.map(|i| vouched.verified[i].1.clone()),
    })
}

/// `GET /exchange/v1/trust-list`: the signed trust list as the operator published it here,
/// for members' nodes (and the operator), so that nodes pick up a newer list by themselves.
/// Each node checks the operator's signature itself; the gateway only passes the file on.
async fn trust_list(State(s): State<Shared>, req: Request) -> Response {
    if let Err(e) = caller(&s, &peer_of(&req), req.headers()) {
        return refuse(&s.metrics, e);
    }
    let path = s.directory.path().to_path_buf();
    let read = tokio::task::spawn_blocking(move || std::fs::read(path)).await;
    match read.unwrap_or_else(|e| Err(std::io::Error::other(e))) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(e) => {
            tracing::error!(path = %s.directory.path().display(), error = %e, "the trust list file cannot be read");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "TRUST_LIST_UNAVAILABLE",
                None,
                "the trust list cannot be read; retry later",
            )
        }
    }
}

/// `GET /exchange/v1/messages/{id}`: for the sender's node and the operator; 404 for
/// everyone else, whether or not the message exists.
async fn track(State(s): State<Shared>, Path(id): Path<String>, req: Request) -> Response {
    let who = match caller(&s, &peer_of(&req), req.headers()) {
        Ok(c) => c,
        Err(e) => return refuse(&s.metrics, e),
    };
    let t = match s.queue.track(&id).await {
        Ok(t) => t,
        Err(e) => return unavailable(&s.metrics, e),
    };
    match t {
        Some(t)
            if who == Caller::Operator
                || matches!(&who, Caller::Peer(Peer::Node { country, .. }) if country.as_str() == t.from) =>
        {
            Json(t).into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "NOT_FOUND", None, "no such message"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PullRequest {
    max: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PullAck {
    acks: Vec<Ack>,
}

/// The calling node's country, for pull: only nodes pull, each for its own country.
fn pulling_country(s: &Shared, req: &Request) -> Result<String, ExchangeError> {
    match caller(s, &peer_of(req), req.headers())? {
        Caller::Peer(Peer::Node { country, .. }) => Ok(country.as_str().to_owned()),
        _ => {
            Err(ExchangeError::new("NODE_REQUIRED", None, "only a member's node pulls, for its own country"))
        }
    }
}

/// `POST /exchange/v1/pull`
async fn pull(State(s): State<Shared>, req: Request) -> Response {
    let country = match pulling_country(&s, &req) {
        Ok(c) => c,
        Err(e) => return refuse(&s.metrics, e),
    };
    let body = read_body(req, SMALL_BODY).await;
    let p: PullRequest = match body.and_then(|b| {
        serde_json::from_slice(&b)
            .map_err(|e| ExchangeError::new("BODY_MALFORMED", Some("max"), e.to_string()))
    }) {
        Ok(p) => p,
        Err(e) => return refuse(&s.metrics, e),
    };
    let max = p.max.clamp(1, MAX_PULL);
    match s.queue.claim(&country, max, s.clock.now(), PULL_LEASE).await {
        Ok(msgs) => {
            s.metrics.pulled(msgs.len() as u64);
            let body = Batch::encode(msgs.iter().map(|m| m.envelope.as_slice()));
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => unavailable(&s.metrics, e),
    }
}

/// What an acknowledgement means for the queue (push answers and pull acknowledgements).
pub(crate) fn outcome_of(ack: &Ack) -> Outcome {
    match ack.result {
        Delivery::Accepted
        | Delivery::Delivered
        | Delivery::DeliveredWithWarnings
        | Delivery::NotReadable => Outcome::Delivered,
        Delivery::Refused => Outcome::Failed(format!(
            "refused by the recipient: {}{}",
            ack.code.as_deref().unwrap_or("REFUSED"),
            ack.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
        )),
    }
}

/// `POST /exchange/v1/pull/ack`
async fn pull_ack(State(s): State<Shared>, req: Request) -> Response {
    let country = match pulling_country(&s, &req) {
        Ok(c) => c,
        Err(e) => return refuse(&s.metrics, e),
    };
    let body = read_body(req, s.body_limit).await;
    let p: PullAck = match body.and_then(|b| {
        serde_json::from_slice(&b)
            .map_err(|e| ExchangeError::new("BODY_MALFORMED", Some("acks"), e.to_string()))
    }) {
        Ok(p) => p,
        Err(e) => return refuse(&s.metrics, e),
    };
    let outcomes: Vec<Settle> =
        p.acks.iter().map(|a| Settle { id: a.id.clone(), outcome: outcome_of(a) }).collect();
    let (delivered, failed) = outcomes.iter().fold((0, 0), |(d, f), o| match o.outcome {
        Outcome::Delivered => (d + 1, f),
        _ => (d, f + 1),
    });
    // Only this country's pending messages change: another node's ids are ignored.
    match s.queue.settle(&country, outcomes, s.max_attempts, s.clock.now()).await {
        Ok(n) => {
            if n == delivered + failed {
                s.metrics.delivered(delivered as u64);
                s.metrics.failed(failed as u64);
            }
            Json(json!({ "settled": n })).into_response()
        }
        Err(e) => unavailable(&s.metrics, e),
    }
}

fn require_operator(s: &Shared, req: &Request) -> Result<(), ExchangeError> {
    match caller(s, &peer_of(req), req.headers())? {
        Caller::Operator => Ok(()),
        Caller::Peer(_) => {
            Err(ExchangeError::new("OPERATOR_REQUIRED", None, "only the gateway's operator may do this"))
        }
    }
}

#[derive(Debug, Deserialize)]
struct DeadQuery {
    limit: Option<usize>,
}

/// `GET /exchange/v1/dead`
async fn dead(State(s): State<Shared>, Query(q): Query<DeadQuery>, req: Request) -> Response {
    if let Err(e) = require_operator(&s, &req) {
        return refuse(&s.metrics, e);
    }
    match operator::dead(&s, q.limit.unwrap_or(100)).await {
        Ok(v) => Json(json!({ "messages": v })).into_response(),
        Err(e) => unavailable(&s.metrics, e),
    }
}

/// `POST /exchange/v1/dead/{id}/retry`
async fn retry_dead(State(s): State<Shared>, Path(id): Path<String>, req: Request) -> Response {
    if let Err(e) = require_operator(&s, &req) {
        return refuse(&s.metrics, e);
    }
    match operator::retry(&s, &id).await {
        Ok(Some(t)) => Json(t).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "NOT_FOUND", None, "no such dead letter"),
        Err(e) => unavailable(&s.metrics, e),
    }
}

/// `GET /exchange/v1/traffic`: messages received and delivered per minute over the last hour,
/// with the mean and largest delivery latency (the figures of the console's chart).
async fn traffic(State(s): State<Shared>, req: Request) -> Response {
    if let Err(e) = require_operator(&s, &req) {
        return refuse(&s.metrics, e);
    }
    match operator::traffic(&s).await {
        Ok(t) => Json(t).into_response(),
        Err(e) => unavailable(&s.metrics, e),
    }
}

/// `GET /healthz`
async fn healthz(State(s): State<Shared>) -> Response {
    match s.queue.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "queue unavailable\n").into_response()
        }
    }
}

/// `GET /metrics`
async fn metrics(State(s): State<Shared>) -> Response {
    let depth = s.queue.depth().await.unwrap_or_default();
    let segments = s.queue.segment_bytes().await.unwrap_or_default();
    ([(header::CONTENT_TYPE, Metrics::CONTENT_TYPE)], s.metrics.render(&depth, segments)).into_response()
}
