//! What anyone may ask, without signing in (`app::status`):
//! - `GET /verify`: the number and check code printed on a certificate (a QR code brings both
//!   in the URL), answered in one line and a colour, with the minimal facts; and a signed file
//!   to upload (`POST /verify/file`), verified in full, each check in words.
//! - `GET /public/v1/verify?number=&code=` and `POST /public/v1/verify` (the signed file as the
//!   body): the same answers in JSON.
//! - `GET /public/v1/status-lists`, `GET /public/v1/status-lists/{issuer}`: the signed status
//!   lists this node publishes and holds; `GET /public/v1/trust-list` and
//!   `GET /public/v1/operator.pem`: what an outsider needs to verify offline.
//!
//! Every lookup counts against the client address's limit; a wrong number and a wrong code
//! get the same answer.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use originlink_exchange::server::PeerAddr;
use originlink_node::app::{self, status};
use serde::Deserialize;

use crate::Shared;
use crate::auth::{cookie, page_ctx, same, set_cookie};

/// The query of `/verify` (`n`, `c`: what a QR code carries) and of `/public/v1/verify`
/// (`number`, `code`).
#[derive(Debug, Default, Deserialize)]
pub struct Lookup {
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    c: Option<String>,
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

impl Lookup {
    fn pair(&self) -> Option<(&str, &str)> {
        let n = self.n.as_deref().or(self.number.as_deref())?;
        let c = self.c.as_deref().or(self.code.as_deref())?;
        Some((n, c))
    }
}

/// The client a lookup counts against: its IPv4 address, or its IPv6 /64 network (one host
/// holds a whole /64, so its addresses count as one), without the port.
fn client(peer: Option<&PeerAddr>) -> String {
    match peer.map(|p| p.0.ip()) {
        None => "unknown".into(),
        Some(std::net::IpAddr::V4(a)) => a.to_string(),
        Some(std::net::IpAddr::V6(a)) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = a.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The upload form's double-submit cookie, beside the session cookie.
fn token_cookie(s: &Shared) -> String {
    format!("{}-verify", s.cookie)
}

/// The verification page: the forms, and the answer when there is one.
fn page(s: &Shared, status_code: StatusCode, typed: (&str, &str), answer: minijinja::Value) -> Response {
    let m = s.views.messages();
    let token = crate::auth::random_token();
    let ctx = context! {
        page => page_ctx(None, &m.text("check-title", &[]), "/verify"),
        number => typed.0,
        code => typed.1,
        token => token.clone(),
        ..answer
    };
    let mut res = s.views.render_status(status_code, "verify.html", ctx);
    res.headers_mut().append(header::SET_COOKIE, set_cookie(&token_cookie(s), &token, Some(3600)));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `GET /verify`: the forms; with a number and a code, their answer.
pub async fn verify_page(
    State(s): State<Shared>,
    peer: Option<axum::Extension<PeerAddr>>,
    Query(q): Query<Lookup>,
) -> Response {
    let Some((number, code)) = q.pair() else {
        return page(&s, StatusCode::OK, ("", ""), context! {});
    };
    let who = client(peer.as_deref());
    match status::lookup(&s.app, &who, number, code).await {
        Ok(found) => page(&s, StatusCode::OK, (number, code), context! { looked_up => true, found => found }),
        Err(e) => {
            let status_code = match e.kind {
                app::Kind::Throttled => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            };
            let why = if e.kind == app::Kind::Throttled { e.message.clone() } else { s.views.error_text(&e) };
            page(&s, status_code, (number, code), context! { unavailable => why, error_code => e.code })
        }
    }
}

/// `POST /verify/file` (multipart: `document`, `verify_token`): the full check of a signed
/// file.
pub async fn verify_file_page(
    State(s): State<Shared>,
    peer: Option<axum::Extension<PeerAddr>>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let mut parts = crate::forms::multipart_parts(multipart).await;
    let given = String::from_utf8_lossy(&parts.remove("verify_token").unwrap_or_default()).into_owned();
    let expected = cookie(&headers, &token_cookie(&s)).unwrap_or_default();
    if expected.is_empty() || !same(expected, &given) {
        return crate::auth::csrf_refused(&s, None);
    }
    let file = parts.remove("document").unwrap_or_default();
    let m = s.views.messages();
    if file.is_empty() {
        let error = context! { text => m.text("check-file-empty", &[]), code => "DOCUMENT_REQUIRED" };
        return page(&s, StatusCode::BAD_REQUEST, ("", ""), context! { file_error => error });
    }
    let who = client(peer.as_deref());
    if let Err(e) = s.app.public.limiter.check(&who, s.app.clock.now()) {
        let why = m.text("check-throttled", &[("seconds", e.num_seconds().max(1).to_string())]);
        return page(&s, StatusCode::TOO_MANY_REQUESTS, ("", ""), context! { unavailable => why });
    }
    match status::verify_file(&s.app, file).await {
        Ok(check) => page(&s, StatusCode::OK, ("", ""), context! { check => check }),
        Err(e) => {
            let error = context! { text => m.text("check-file-unreadable", &[]), code => e.code, detail => e.message };
            page(&s, StatusCode::UNPROCESSABLE_ENTITY, ("", ""), context! { file_error => error })
        }
    }
}

/// A JSON error body: `{"code", "message", "field"}`, as the node's API answers.
fn json_error(e: &app::Error) -> Response {
    let status_code = match e.kind {
        app::Kind::Invalid => StatusCode::BAD_REQUEST,
        app::Kind::Throttled => StatusCode::TOO_MANY_REQUESTS,
        app::Kind::NotFound => StatusCode::NOT_FOUND,
        app::Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = serde_json::json!({"code": e.code, "message": e.message, "field": e.field});
    (status_code, Json(body)).into_response()
}

/// `GET /public/v1/verify?number=…&code=…`: `{"found": false}` or `{"found": true,
/// "certificate": {…}}`.
pub async fn verify_json(
    State(s): State<Shared>,
    peer: Option<axum::Extension<PeerAddr>>,
    Query(q): Query<Lookup>,
) -> Response {
    let Some((number, code)) = q.pair() else {
        let e = app::Error::invalid("INVALID_QUERY", "number", "give number and code");
        return json_error(&e);
    };
    match status::lookup(&s.app, &client(peer.as_deref()), number, code).await {
        Ok(Some(c)) => Json(serde_json::json!({"found": true, "certificate": c})).into_response(),
        Ok(None) => Json(serde_json::json!({"found": false})).into_response(),
        Err(e) => json_error(&e),
    }
}

/// `POST /public/v1/verify` with the signed document as the body: the full check.
pub async fn verify_file_json(
    State(s): State<Shared>,
    peer: Option<axum::Extension<PeerAddr>>,
    body: Bytes,
) -> Response {
    if let Err(wait) = s.app.public.limiter.check(&client(peer.as_deref()), s.app.clock.now()) {
        let e = app::Error::new(
            app::Kind::Throttled,
            "TOO_MANY_REQUESTS",
            format!("too many checks from this address: try again in {} seconds", wait.num_seconds().max(1)),
        );
        return json_error(&e);
    }
    match status::verify_file(&s.app, body.to_vec()).await {
        Ok(check) => Json(check).into_response(),
        Err(e) => json_error(&e),
    }
}

/// `GET /public/v1/status-lists`: which lists this node holds (issuer, sequence, issued_at,
/// next_update).
pub async fn status_lists(State(s): State<Shared>) -> Response {
    match status::lists(&s.app).await {
        Ok(lists) => Json(serde_json::json!({ "lists": lists })).into_response(),
        Err(e) => json_error(&e),
    }
}

/// `GET /public/v1/status-lists/{issuer}`: the signed list, byte for byte.
pub async fn status_list(State(s): State<Shared>, Path(issuer): Path<String>) -> Response {
    match status::signed_list(&s.app, &issuer).await {
        Ok(l) => signed_json(l.signed),
        Err(e) => json_error(&e),
    }
}

fn signed_json(bytes: Vec<u8>) -> Response {
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// `GET /public/v1/trust-list`: the signed trust list this node verifies with.
pub async fn trust_list(State(s): State<Shared>) -> Response {
    match status::published_trust(&s.app) {
        Ok((list, _)) => signed_json(list),
        Err(e) => json_error(&e),
    }
}

/// `GET /public/v1/operator.pem`: the operator certificates that must sign the trust list.
pub async fn operator_pem(State(s): State<Shared>) -> Response {
    match status::published_trust(&s.app) {
        Ok((_, pem)) => {
            let mut res = pem.into_response();
            res.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-pem-file"));
            res
        }
        Err(e) => json_error(&e),
    }
}
