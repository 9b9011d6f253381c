//! Who is at the keyboard: signing in and out, the session cookie, the CSRF token every form
//! carries, one-time invitations, flash messages after a POST-redirect-GET, and the role a
//! page needs.
//!
//! The session cookie is `__Host-originlink-{country}`: `HttpOnly`, `Secure`,
//! `SameSite=Strict`, `Path=/`, no `Domain`; its value is a random session id whose SHA-256
//! is what the node stores ([`originlink_node::app::sessions`]). Sign-in always starts a new
//! session (the id rotates). The sign-in form itself carries a token that must match a
//! short-lived cookie (double submit), so no other site can sign a person in.

use std::future::Future;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use originlink_node::app::{self, notifications, sessions};
use originlink_store::{Role, User};
use serde::{Deserialize, Serialize};

use crate::Shared;
use crate::forms::FormData;

/// A signed-in person: the user, the session's CSRF token and the session id (for signing
/// out).
#[derive(Debug, Clone)]
pub struct Person {
    /// Who.
    pub user: User,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    session_id: String,
    /// A flash message to show once (set by the previous POST).
    pub flash: Option<String>,
    /// Notifications not seen yet.
    pub unseen: i64,
}

impl Person {
    /// Refuses (403 page) unless the person has one of `roles`.
    pub fn require(&self, s: &Shared, roles: &[Role]) -> Result<(), Response> {
        if roles.contains(&self.user.role) {
            return Ok(());
        }
        let m = s.views.messages();
        Err(s.views.message(
            StatusCode::FORBIDDEN,
            Some(self),
            &m.text("forbidden-title", &[]),
            &m.text("forbidden-body", &[("role", m.text(&format!("role-{}", self.user.role.as_str()), &[]))]),
        ))
    }
}

/// Not signed in: a page sends the person to sign in (and back afterwards).
#[derive(Debug)]
pub struct SignInFirst(String);

impl SignInFirst {
    /// To sign in, then back to the page of request `parts`. After signing in the browser
    /// asks for `next` with GET: a form's action answers only POST, so a post leads back to
    /// the record it acted on (the path without its last segment: `/applications/7/submit` →
    /// `/applications/7`).
    pub fn to(parts: &Parts) -> SignInFirst {
        let next = if parts.method == axum::http::Method::GET {
            parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default()
        } else {
            let path = parts.uri.path();
            path.rsplit_once('/').map(|(up, _)| up).filter(|up| !up.is_empty()).unwrap_or("/").to_owned()
        };
        SignInFirst(next)
    }
}

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        let to = format!("/sign-in?next={}", urlencode(safe_next(&self.0)));
        Redirect::to(&to).into_response()
    }
}

/// Where to go after signing in: a path of this console (`/` then anything but `/` or `\`,
/// with no backslash or control character anywhere, at most 500 bytes); `/` otherwise. Nothing
/// else, so that a crafted link cannot send a person who signs in to another site.
pub fn safe_next(next: &str) -> &str {
    let ok = next.len() <= 500
        && next.starts_with('/')
        && !next[1..].starts_with(['/', '\\'])
        && !next.chars().any(|c| c == '\\' || c.is_control());
    if ok { next } else { "/" }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: `HttpOnly; Secure; SameSite=Strict; Path=/`, with `max_age`
/// seconds (`0` deletes it; `None`: until the browser closes).
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let age = max_age.map(|a| format!("; Max-Age={a}")).unwrap_or_default();
    HeaderValue::from_str(&format!("{name}={value}; HttpOnly; Secure; SameSite=Strict; Path=/{age}"))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The flash cookie's name beside session cookie `session`.
pub fn flash_cookie_of(session: &str) -> String {
    format!("{session}-flash")
}

/// Redirects (303) to `to` with a flash message shown once on the next page.
pub fn redirect_with_flash(s: &Shared, to: &str, flash: &str) -> Response {
    redirect_with_flash_of(&s.cookie, to, flash)
}

/// [`redirect_with_flash`] for the console whose session cookie is `session`.
pub fn redirect_with_flash_of(session: &str, to: &str, flash: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    let encoded: String = flash.bytes().map(|b| format!("{b:02x}")).collect();
    res.headers_mut().append(header::SET_COOKIE, set_cookie(&flash_cookie_of(session), &encoded, Some(60)));
    res
}

fn read_flash(s: &Shared, headers: &HeaderMap) -> Option<String> {
    read_flash_of(&s.cookie, headers)
}

/// The flash message of the console whose session cookie is `session`, if any.
pub fn read_flash_of(session: &str, headers: &HeaderMap) -> Option<String> {
    let hex = cookie(headers, &flash_cookie_of(session))?;
    let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
        .map(|i| hex.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    bytes.and_then(|b| String::from_utf8(b).ok()).filter(|t| !t.is_empty() && t.len() <= 500)
}

impl FromRequestParts<Shared> for Person {
    type Rejection = SignInFirst;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, SignInFirst> {
        let back = || SignInFirst::to(parts);
        let Some(id) = cookie(&parts.headers, &s.cookie) else { return Err(back()) };
        let id = id.to_owned();
        match sessions::session(&s.app, &id).await {
            Ok(Some(session)) => {
                // A count the layout shows on every page; a failure shows none, never an error.
                let unseen = notifications::unseen(&s.app, &session.user).await.unwrap_or(0);
                Ok(Person {
                    user: session.user,
                    csrf: session.csrf,
                    session_id: id,
                    flash: read_flash(s, &parts.headers),
                    unseen,
                })
            }
            Ok(None) => Err(back()),
            Err(e) => {
                tracing::warn!(error = %e, "session lookup failed");
                Err(back())
            }
        }
    }
}

impl axum::extract::OptionalFromRequestParts<Shared> for Person {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Option<Self>, Self::Rejection> {
        Ok(<Person as FromRequestParts<Shared>>::from_request_parts(parts, s).await.ok())
    }
}

/// What the layout needs on every page: the title, who is signed in, the navigation for
/// their role, the CSRF token (sign-out form) and a flash message.
#[derive(Debug, Serialize)]
pub struct PageCtx {
    title: String,
    user: Option<String>,
    role: Option<&'static str>,
    csrf: String,
    flash: Option<String>,
    nav: Vec<(&'static str, &'static str, bool)>,
    /// The notifications link, for a node's people: how many are new, whether it is this page.
    notifications: Option<(i64, bool)>,
}

impl PageCtx {
    /// The page's title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The layout's context for a page titled `title` at `path`, for `user` (with their `role`,
    /// the session's `csrf` token and a `flash` message) and the navigation `nav` (path, text
    /// id).
    pub fn new(
        title: &str,
        path: &str,
        who: Option<(&str, &'static str, &str)>,
        flash: Option<String>,
        nav: &[(&'static str, &'static str)],
    ) -> PageCtx {
        PageCtx {
            title: title.to_owned(),
            user: who.map(|(u, _, _)| u.to_owned()),
            role: who.map(|(_, r, _)| r),
            csrf: who.map(|(_, _, c)| c.to_owned()).unwrap_or_default(),
            flash,
            nav: nav.iter().map(|(href, label)| (*href, *label, !path.is_empty() && path == *href)).collect(),
            notifications: None,
        }
    }
}

/// The layout's context for `person` on a page titled `title` at `path` (for the current
/// navigation item).
pub fn page_ctx(person: Option<&Person>, title: &str, path: &str) -> PageCtx {
    let nav: &[(&str, &str)] = match person.map(|p| p.user.role) {
        Some(Role::Exporter) => &[
            ("/applications", "nav-applications"),
            ("/certificates", "nav-certificates"),
            ("/applications/new", "nav-new-application"),
        ],
        Some(Role::IssuingOfficer) => &[
            ("/review", "nav-review"),
            ("/applications", "nav-applications"),
            ("/certificates", "nav-issued"),
            ("/verifications", "nav-verifications"),
        ],
        Some(Role::Admin) => &[
            ("/admin/users", "nav-users"),
            ("/admin/exchange", "nav-exchange"),
            ("/admin/trust-list", "nav-trust-list"),
            ("/admin/audit", "nav-audit"),
            ("/admin/keys", "nav-keys"),
        ],
        Some(Role::CustomsOfficer) => &[
            ("/certificates", "nav-received"),
            ("/declarations", "nav-declarations"),
            ("/declarations/new", "nav-new-declaration"),
            ("/verifications", "nav-verifications"),
            ("/revenue", "nav-revenue"),
        ],
        None => &[],
    };
    let mut ctx = PageCtx::new(
        title,
        path,
        person.map(|p| (p.user.name.as_str(), p.user.role.as_str(), p.csrf.as_str())),
        person.and_then(|p| p.flash.clone()),
        if person.is_some() { nav } else { &[] },
    );
    // A node's people are told things: the link to their notifications, with what is new.
    if let Some(p) = person {
        ctx.notifications = Some((p.unseen, path == "/notifications"));
    }
    ctx
}

/// Clears the flash cookie once a page has shown it.
pub fn shown(s: &Shared, person: &Person, res: Response) -> Response {
    shown_of(&s.cookie, person.flash.is_some(), res)
}

/// [`shown`] for the console whose session cookie is `session`.
pub fn shown_of(session: &str, had_flash: bool, mut res: Response) -> Response {
    if had_flash {
        res.headers_mut().append(header::SET_COOKIE, set_cookie(&flash_cookie_of(session), "", Some(0)));
    }
    res
}

/// Whether the posted form carries the session's CSRF token (compared in constant time).
pub fn csrf_ok(person: &Person, form: &FormData) -> bool {
    let given = form.get("csrf").unwrap_or_default();
    same(given, &person.csrf)
}

/// Whether two tokens are equal, in time that depends on their length only.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The page for a form posted without the session's token: nothing was changed.
pub fn csrf_refused(s: &Shared, person: Option<&Person>) -> Response {
    let m = s.views.messages();
    s.views.message(StatusCode::FORBIDDEN, person, &m.text("csrf-title", &[]), &m.text("csrf-body", &[]))
}

/// [`csrf_refused`] for a console laid out by `page` (its layout's context).
pub fn csrf_refused_in(views: &crate::views::Views, page: PageCtx) -> Response {
    let m = views.messages();
    views.message_in(StatusCode::FORBIDDEN, page, &m.text("csrf-body", &[]))
}

/// A signed-in person's form post, its CSRF token checked: `Err` is the refusal page.
pub fn checked(s: &Shared, person: &Person, form: &FormData) -> Result<(), Response> {
    if csrf_ok(person, form) { Ok(()) } else { Err(csrf_refused(s, Some(person))) }
}

/// Refuses a post unless the person has one of `roles` and the form carries the session's
/// CSRF token: `Err` is the refusal page.
pub fn may_post(s: &Shared, person: &Person, roles: &[Role], form: &FormData) -> Result<(), Response> {
    person.require(s, roles)?;
    checked(s, person, form)
}

/// Where a state change sends the person next, and the outcome in words shown there.
#[derive(Debug)]
pub struct Done {
    /// The page to go to.
    pub to: String,
    /// The flash message.
    pub flash: String,
}

/// A state change posted by a person with one of `roles`, its CSRF token checked first (the
/// `action` future runs only then). Done: to its page with its flash. Refused as invalid or
/// in conflict: back to `back` with the reason in words. Anything else: the error page.
pub async fn post_action(
    s: &Shared,
    person: &Person,
    roles: &[Role],
    form: &FormData,
    back: &str,
    action: impl Future<Output = app::Result<Done>>,
) -> Response {
    if let Err(refused) = may_post(s, person, roles, form) {
        return refused;
    }
    match action.await {
        Ok(done) => redirect_with_flash(s, &done.to, &done.flash),
        Err(e) if matches!(e.kind, app::Kind::Invalid | app::Kind::Conflict) => {
            redirect_with_flash(s, back, &s.views.error_text(&e))
        }
        Err(e) => s.views.error_page(Some(person), &e),
    }
}

/// `GET /`: each role's first page.
pub async fn home(State(s): State<Shared>, person: Option<Person>) -> Response {
    let Some(p) = person else { return Redirect::to("/sign-in").into_response() };
    let _ = &s;
    let to = match p.user.role {
        Role::Exporter => "/applications",
        Role::IssuingOfficer => "/review",
        Role::Admin => "/admin/users",
        Role::CustomsOfficer => "/certificates",
    };
    Redirect::to(to).into_response()
}

/// `?next=` of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct Next {
    #[serde(default)]
    next: Option<String>,
}

/// The sign-in form's double-submit cookie beside session cookie `session`.
pub fn login_cookie_of(session: &str) -> String {
    format!("{session}-login")
}

fn login_page(
    s: &Shared,
    status: StatusCode,
    name: &str,
    next: &str,
    error: Option<(String, &str)>,
) -> Response {
    sign_in_form(&s.views, &s.cookie, status, name, next, error)
}

/// The sign-in page of the console whose session cookie is `session`: what was typed in the
/// name kept, a fresh double-submit token in the form and its cookie.
pub fn sign_in_form(
    views: &crate::views::Views,
    session: &str,
    status: StatusCode,
    name: &str,
    next: &str,
    error: Option<(String, &str)>,
) -> Response {
    let token = random_token();
    let m = views.messages();
    let ctx = context! {
        page => page_ctx(None, &m.text("sign-in-title", &[]), ""),
        login_token => token.clone(),
        name => name,
        next => next,
        error => error.as_ref().map(|(text, code)| context! { text => text, code => code }),
    };
    let mut res = views.render_status(status, "sign_in.html", ctx);
    res.headers_mut().append(header::SET_COOKIE, set_cookie(&login_cookie_of(session), &token, Some(3600)));
    res
}

/// The sign-in page again after sign-in use case error `e`, in words, the name kept.
pub fn sign_in_refused(
    views: &crate::views::Views,
    session: &str,
    name: &str,
    next: &str,
    e: &app::Error,
) -> Response {
    let status = match e.kind {
        app::Kind::Throttled => StatusCode::TOO_MANY_REQUESTS,
        app::Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let text = if e.kind == app::Kind::Throttled { e.message.clone() } else { views.error_text(e) };
    sign_in_form(views, session, status, name, next, Some((text, e.code)))
}

/// Whether a posted sign-in form carries the token of its double-submit cookie.
pub fn login_token_ok(session: &str, headers: &HeaderMap, form: &FormData) -> bool {
    let expected = cookie(headers, &login_cookie_of(session)).unwrap_or_default();
    let given = form.get("login_token").unwrap_or_default();
    !expected.is_empty() && same(expected, given)
}

/// Where a sign-in leads: to `next` with the new session's cookie `session` = `id`, the
/// sign-in form's cookie cleared.
pub fn signed_in(session: &str, id: &str, next: &str) -> Response {
    let mut res = Redirect::to(next).into_response();
    let h = res.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(session, id, None));
    h.append(header::SET_COOKIE, set_cookie(&login_cookie_of(session), "", Some(0)));
    res
}

/// Where a sign-out leads: the sign-in page, the session cookie `session` cleared.
pub fn signed_out(session: &str) -> Response {
    let mut res = Redirect::to("/sign-in").into_response();
    res.headers_mut().append(header::SET_COOKIE, set_cookie(session, "", Some(0)));
    res
}

pub(crate) fn random_token() -> String {
    let mut b = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `GET /sign-in`
pub async fn sign_in_page(State(s): State<Shared>, Query(q): Query<Next>) -> Response {
    login_page(&s, StatusCode::OK, "", safe_next(q.next.as_deref().unwrap_or("/")), None)
}

/// `POST /sign-in`: name and password; a new session on success.
pub async fn sign_in(State(s): State<Shared>, headers: HeaderMap, form: FormData) -> Response {
    let name = form.get("name").unwrap_or_default();
    let next = safe_next(form.get("next").unwrap_or("/"));
    if !login_token_ok(&s.cookie, &headers, &form) {
        return csrf_refused(&s, None);
    }
    match sessions::sign_in(&s.app, name, form.get("password").unwrap_or_default()).await {
        Ok(started) => signed_in(&s.cookie, &started.id, next),
        Err(e) => sign_in_refused(&s.views, &s.cookie, name, next, &e),
    }
}

/// `POST /sign-out`
pub async fn sign_out(State(s): State<Shared>, person: Person, form: FormData) -> Response {
    if let Err(refused) = checked(&s, &person, &form) {
        return refused;
    }
    if let Err(e) = sessions::sign_out(&s.app, &person.user, &person.session_id).await {
        return s.views.error_page(Some(&person), &e);
    }
    signed_out(&s.cookie)
}

/// `GET /invitation/{token}`: choose a password.
pub async fn invitation_page(State(s): State<Shared>, Path(token): Path<String>) -> Response {
    invitation_form(&s, StatusCode::OK, &token, None)
}

fn invitation_form(s: &Shared, status: StatusCode, token: &str, error: Option<(String, &str)>) -> Response {
    let m = s.views.messages();
    let ctx = context! {
        page => page_ctx(None, &m.text("invitation-title", &[]), ""),
        token => token,
        min => sessions::MIN_PASSWORD,
        error => error.as_ref().map(|(text, code)| context! { text => text, code => code }),
    };
    s.views.render_status(status, "invitation.html", ctx)
}

/// `POST /invitation/{token}`: sets the password, then the person signs in.
pub async fn accept_invitation(
    State(s): State<Shared>,
    Path(token): Path<String>,
    form: FormData,
) -> Response {
    let password = form.get("password").unwrap_or_default();
    if password != form.get("confirm").unwrap_or_default() {
        let text = s.views.messages().text("invitation-mismatch", &[]);
        return invitation_form(&s, StatusCode::BAD_REQUEST, &token, Some((text, "PASSWORDS_DIFFER")));
    }
    match sessions::accept_invitation(&s.app, &token, password).await {
        Ok(user) => {
            let flash = s.views.messages().text("invitation-done", &[("name", user.name.clone())]);
            let ctx = context! {
                page => page_ctx(None, &flash, ""),
                heading => flash,
                body => s.views.messages().text("invitation-sign-in", &[]),
                link => "/sign-in",
            };
            s.views.render("message.html", ctx)
        }
        Err(e) => {
            let status =
                if e.kind == app::Kind::Invalid { StatusCode::BAD_REQUEST } else { StatusCode::CONFLICT };
            invitation_form(&s, status, &token, Some((s.views.error_text(&e), e.code)))
        }
    }
}

/// A value for the templates that is absent.
pub fn none() -> Value {
    Value::from(())
}
