//! The regional gateway's web console for its operator, served by the gateway on its own
//! `[console]` listener: members with their queues, finding a message by id or by the
//! certificate it is about, dead letters with a Retry button, the traffic of the last hour and
//! the trust list in force. Every page calls one use case of `originlink_gateway::operator`,
//! the one the JSON operator endpoints call, and renders it with the node console's layout,
//! catalogue and stylesheet; no JavaScript.
//!
//! Sign-in is the node console's: a name and a password ([`sessions`]), the session cookie
//! `__Host-originlink-gateway` (`HttpOnly`, `Secure`, `SameSite=Strict`), a double-submit
//! token on the sign-in form, the session's CSRF token in every other form.
//!
//! - this file: [`Shared`], the [`Operator`] extractor, sign-in and sign-out, the router.
//! - [`sessions`]: the operators' sign-in use cases.
//! - [`pages`]: one handler per page.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use originlink_node::app::sessions::Throttle;
use serde::Deserialize;

use crate::auth::{self, PageCtx, SignInFirst, safe_next};
use crate::forms::FormData;
use crate::views::{self, Views};

pub mod pages;
pub mod sessions;

/// The session cookie of the operator's console.
pub const COOKIE: &str = "__Host-originlink-gateway";

/// The role shown beside the operator's name.
const ROLE: &str = "operator";

/// The navigation of every signed-in page: (path, text id).
const NAV: &[(&str, &str)] = &[
    ("/", "nav-members"),
    ("/messages", "nav-find-message"),
    ("/dead", "nav-dead-letters"),
    ("/traffic", "nav-traffic"),
    ("/trust-list", "nav-trust-list"),
];

/// What every page shares: the gateway's state (for its use cases), the templates and
/// catalogue, and the wrong-password pause.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The gateway.
    pub gateway: originlink_gateway::state::Shared,
    /// Templates and messages.
    pub views: Arc<Views>,
    /// Wrong passwords by name, in this process.
    pub sign_ins: Arc<Throttle>,
}

impl Shared {
    /// The console's state over the gateway's `shared` state; titles end with `gateway` (its id).
    pub fn new(gateway: originlink_gateway::state::Shared, id: &str) -> Shared {
        let title = format!("{id} gateway");
        Shared { gateway, views: Arc::new(Views::titled(title)), sign_ins: Arc::new(Throttle::default()) }
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.gateway.clock.now()
    }
}

/// A signed-in operator: the name, the session's CSRF token and id, a flash message.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The operator's name.
    pub name: String,
    /// The session's CSRF token.
    pub csrf: String,
    session_id: String,
    /// A flash message to show once.
    pub flash: Option<String>,
}

impl Operator {
    /// The layout's context for a page titled `title` at `path`.
    pub fn page(&self, title: &str, path: &str) -> PageCtx {
        PageCtx::new(title, path, Some((&self.name, ROLE, &self.csrf)), self.flash.clone(), NAV)
    }

    /// Whether a posted form carries the session's CSRF token: `Err` is the refusal page.
    pub fn checked(&self, s: &Shared, form: &FormData) -> Result<(), Response> {
        if auth::same(form.get("csrf").unwrap_or_default(), &self.csrf) {
            return Ok(());
        }
        let title = s.views.messages().text("csrf-title", &[]);
        Err(auth::csrf_refused_in(&s.views, self.page(&title, "")))
    }

    /// Clears the flash cookie once `res` has shown it.
    pub fn shown(&self, res: Response) -> Response {
        auth::shown_of(COOKIE, self.flash.is_some(), res)
    }
}

impl FromRequestParts<Shared> for Operator {
    type Rejection = SignInFirst;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, SignInFirst> {
        let back = || SignInFirst::to(parts);
        let Some(id) = auth::cookie(&parts.headers, COOKIE) else { return Err(back()) };
        let id = id.to_owned();
        match sessions::session(s.gateway.queue.as_ref(), &id, s.now()).await {
            Ok(Some(session)) => Ok(Operator {
                name: session.operator,
                csrf: session.csrf,
                session_id: id,
                flash: auth::read_flash_of(COOKIE, &parts.headers),
            }),
            Ok(None) => Err(back()),
            Err(e) => {
                tracing::warn!(error = %e, "operator session lookup failed");
                Err(back())
            }
        }
    }
}

/// `?next=` of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct Next {
    #[serde(default)]
    next: Option<String>,
}

/// `GET /sign-in`
pub async fn sign_in_page(State(s): State<Shared>, Query(q): Query<Next>) -> Response {
    let next = safe_next(q.next.as_deref().unwrap_or("/"));
    auth::sign_in_form(&s.views, COOKIE, StatusCode::OK, "", next, None)
}

/// `POST /sign-in`: name and password; a new session on success.
pub async fn sign_in(State(s): State<Shared>, headers: HeaderMap, form: FormData) -> Response {
    let name = form.get("name").unwrap_or_default();
    let next = safe_next(form.get("next").unwrap_or("/"));
    if !auth::login_token_ok(COOKIE, &headers, &form) {
        let title = s.views.messages().text("csrf-title", &[]);
        return auth::csrf_refused_in(&s.views, PageCtx::new(&title, "", None, None, &[]));
    }
    let password = form.get("password").unwrap_or_default();
    match sessions::sign_in(s.gateway.queue.as_ref(), &s.sign_ins, name, password, s.now()).await {
        Ok(started) => auth::signed_in(COOKIE, &started.id, next),
        Err(e) => auth::sign_in_refused(&s.views, COOKIE, name, next, &e),
    }
}

/// `POST /sign-out`
pub async fn sign_out(State(s): State<Shared>, op: Operator, form: FormData) -> Response {
    if let Err(refused) = op.checked(&s, &form) {
        return refused;
    }
    if let Err(e) = sessions::sign_out(s.gateway.queue.as_ref(), &op.session_id).await {
        return pages::unavailable(&s, &op, &e.message);
    }
    tracing::info!(operator = %op.name, "operator signed out");
    auth::signed_out(COOKIE)
}

/// Any other path: the not-found page.
pub async fn not_found(State(s): State<Shared>, op: Option<Operator>) -> Response {
    let m = s.views.messages();
    let title = m.text("not-found-title", &[]);
    let page = match &op {
        Some(op) => op.page(&title, ""),
        None => PageCtx::new(&title, "", None, None, &[]),
    };
    s.views.message_in(StatusCode::NOT_FOUND, page, &m.text("not-found-body", &[]))
}

impl axum::extract::OptionalFromRequestParts<Shared> for Operator {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Option<Self>, Self::Rejection> {
        Ok(<Operator as FromRequestParts<Shared>>::from_request_parts(parts, s).await.ok())
    }
}

/// `GET /` without a session: to the sign-in page.
async fn home(s: State<Shared>, op: Option<Operator>) -> Response {
    match op {
        Some(op) => pages::members(s, op).await,
        None => Redirect::to("/sign-in").into_response(),
    }
}

/// Every page of the operator's console.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/console.css", get(views::stylesheet))
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/messages", get(pages::find))
        .route("/messages/{id}", get(pages::message))
        .route("/dead", get(pages::dead))
        .route("/dead/{id}/retry", post(pages::retry))
        .route("/traffic", get(pages::traffic))
        .route("/trust-list", get(pages::trust_list))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(views::security_headers))
        .with_state(shared)
}
