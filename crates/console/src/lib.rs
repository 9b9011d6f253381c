//! The web console of a country node: server-rendered pages for the people of a single
//! window (exporters, issuing officers, administrators), over the node's use cases
//! (`originlink_node::app`). Nothing here decides anything: every page calls a use case, the
//! same one the JSON API calls, and shows its answer or its error in words.
//!
//! - Served on its own listener (`[console]`): HTTPS with its own certificate, or plain HTTP
//!   on loopback behind a reverse proxy ([`Console`]).
//! - People sign in with a name and a password; sessions live in `HttpOnly`, `Secure`,
//!   `SameSite=Strict` cookies named after the node's country, every form carries the
//!   session's CSRF token ([`auth`]).
//! - Pages are minijinja templates compiled into the binary, with every text from the English
//!   message catalogue (Fluent, `messages/en.ftl`) and one small stylesheet; no JavaScript
//!   ([`views`]).
//! - One file per audience: [`exporter`], [`officer`], [`customs`], [`admin`], and
//!   [`documents`] for what several roles see (an application, a certificate).
//! - [`public`]: what anyone may ask without signing in: a certificate by number and check
//!   code, a signed file verified in full, the status lists and trust list published.
//! - [`operator`]: the regional gateway's console for its operator (members and queues,
//!   finding a message, dead letters, traffic, the trust list), over the gateway's use cases
//!   (`originlink_gateway::operator`), with the same layout, catalogue, stylesheet, CSRF and
//!   security headers, and sign-in as for people of a node.
//!
//! Invariants: a handler holds no state; an exporter reaching another company's record gets
//! the same 404 page as for a record that does not exist; a POST without the session's CSRF
//! token changes nothing; text people typed is echoed back escaped (templates autoescape).

// A refused request is answered with its page (`Result<_, Response>`), as axum handlers do;
// a response is larger than clippy's default bound for error types.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use originlink_node::AppState;
use originlink_service::ConsoleConfig;

pub mod admin;
pub mod auth;
pub mod customs;
pub mod documents;
pub mod exporter;
pub mod forms;
pub mod notifications;
pub mod officer;
pub mod operator;
pub mod public;
pub mod views;

/// What every page shares: the node's use cases and state, the templates and catalogue, and
/// the names of this node's cookies.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The node.
    pub app: AppState,
    /// Templates and messages.
    pub views: Arc<views::Views>,
    /// The session cookie's name (per country, so consoles of several nodes on one host do
    /// not sign each other out).
    pub cookie: Arc<str>,
    /// The console's address as people reach it, for links sent to them (invitations):
    /// `[console] public_url`, else the scheme of the listener with the request's `Host`.
    pub base: Base,
}

/// How the console builds the absolute links it gives people.
#[derive(Debug, Clone)]
pub enum Base {
    /// A configured public URL (`https://console.moc.gov.kh`), used as it is.
    Public(Arc<str>),
    /// The listener's scheme (`http` or `https`), with the `Host` of the request.
    Scheme(&'static str),
}

impl Base {
    /// The absolute URL of `path` (starting with `/`) for a request with `headers`.
    pub fn url(&self, headers: &axum::http::HeaderMap, path: &str) -> String {
        match self {
            Base::Public(base) => format!("{}{path}", base.trim_end_matches('/')),
            Base::Scheme(scheme) => {
                let host = headers
                    .get(axum::http::header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .filter(|h| {
                        !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c))
                    })
                    .unwrap_or("localhost");
                format!("{scheme}://{host}{path}")
            }
        }
    }
}

impl Shared {
    /// The console's shared state for `app`.
    pub fn new(app: AppState) -> Shared {
        let country = app.issuer.authority.country.clone();
        Shared {
            views: Arc::new(views::Views::new(&app)),
            cookie: format!("__Host-originlink-{country}").into(),
            base: Base::Scheme("http"),
            app,
        }
    }

    /// With `base` for the links the console gives people.
    pub fn with_base(mut self, base: Base) -> Shared {
        self.base = base;
        self
    }
}

/// Why the console could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The console's TLS certificate or key is not usable.
    #[error("console tls: {0}")]
    Tls(String),
    /// The listen address cannot be bound.
    #[error(transparent)]
    Bind(#[from] originlink_service::BindError),
}

impl StartError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            StartError::Tls(_) => "TLS_INVALID",
            StartError::Bind(e) => e.code(),
        }
    }
}

/// A console bound to its port, not yet serving.
#[derive(Debug)]
pub struct Console {
    addr: SocketAddr,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
}

impl Console {
    /// Loads the console's TLS identity (when configured) and binds its listener.
    pub async fn build(config: &ConsoleConfig, app: AppState) -> Result<Console, StartError> {
        Console::bind(config, |base| router(Shared::new(app).with_base(base))).await
    }

    /// The gateway operator's console ([`operator`]) over the gateway's `shared` state, titled
    /// with the gateway's id `gateway`: its TLS identity (when configured) loaded, its listener
    /// bound.
    pub async fn operator(
        config: &ConsoleConfig,
        shared: originlink_gateway::state::Shared,
        gateway: &str,
    ) -> Result<Console, StartError> {
        Console::bind(config, |_| operator::router(operator::Shared::new(shared, gateway))).await
    }

    async fn bind(
        config: &ConsoleConfig,
        router: impl FnOnce(Base) -> Router,
    ) -> Result<Console, StartError> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let id = originlink_exchange::tls::Identity::load(cert, key)
                    .map_err(|e| StartError::Tls(e.to_string()))?;
                Some(
                    originlink_exchange::tls::web_server_config(&id)
                        .map_err(|e| StartError::Tls(e.to_string()))?,
                )
            }
            _ => None,
        };
        let (listener, addr) = originlink_service::bind(&config.listen).await?;
        let base = match &config.public_url {
            Some(url) => Base::Public(url.as_str().into()),
            None => Base::Scheme(if tls.is_some() { "https" } else { "http" }),
        };
        Ok(Console { addr, listener, tls, router: router(base) })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The console's base URL (`https://` with TLS, `http://` without).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Serves until `shutdown` fires.
    pub async fn run_until_stopped(
        self,
        shutdown: originlink_exchange::server::Shutdown,
    ) -> std::io::Result<()> {
        tracing::info!(url = %self.url(), "serving the console");
        originlink_exchange::server::serve_any(
            self.listener,
            self.tls,
            self.router,
            shutdown,
            Default::default(),
        )
        .await
    }
}

/// Every page of the console.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/", get(auth::home))
        .route("/console.css", get(views::stylesheet))
        .route("/sign-in", get(auth::sign_in_page).post(auth::sign_in))
        .route("/sign-out", post(auth::sign_out))
        .route("/invitation/{token}", get(auth::invitation_page).post(auth::accept_invitation))
        .route("/notifications", get(notifications::list))
        // Anyone, without signing in.
        .route("/verify", get(public::verify_page))
        .route("/verify/file", post(public::verify_file_page))
        .route("/public/v1/verify", get(public::verify_json).post(public::verify_file_json))
        .route("/public/v1/status-lists", get(public::status_lists))
        .route("/public/v1/status-lists/{issuer}", get(public::status_list))
        .route("/public/v1/trust-list", get(public::trust_list))
        .route("/public/v1/operator.pem", get(public::operator_pem))
        // Exporters (and, for records, officers).
        .route("/applications", get(exporter::applications))
        .route("/applications/new", get(exporter::new_form).post(exporter::new_posted))
        .route("/applications/upload", get(exporter::upload_page).post(exporter::upload))
        .route("/applications/{id}", get(documents::application))
        .route("/applications/{id}/edit", get(exporter::edit_form).post(exporter::edit_posted))
        .route("/applications/{id}/submit", post(exporter::submit))
        .route("/applications/{id}/withdraw", post(exporter::withdraw))
        .route("/applications/{id}/copy", post(exporter::copy))
        .route("/applications/{id}/document", get(documents::application_document))
        .route("/certificates", get(documents::certificates))
        .route("/certificates/{id}", get(documents::certificate))
        .route("/certificates/{id}/document", get(documents::certificate_document))
        .route("/certificates/{id}/pdf", get(documents::certificate_pdf))
        .route("/certificates/{id}/replace", post(exporter::replace))
        // Issuing officers.
        .route("/review", get(officer::queue))
        .route("/applications/{id}/approve", post(officer::approve))
        .route("/applications/{id}/reject", post(officer::reject))
        .route("/applications/{id}/return", post(officer::return_for_correction))
        .route("/certificates/{id}/revoke", get(officer::revoke_page).post(officer::revoke))
        .route("/verifications", get(officer::verifications))
        .route("/verifications/{id}", get(officer::verification_page).post(officer::answer))
        // Importing customs.
        .route("/received/{id}", get(customs::received))
        .route("/declarations", get(customs::declarations))
        .route("/declarations/new", get(customs::new_declaration).post(customs::lodge))
        .route("/declarations/new/form", post(customs::lodge_form))
        .route("/declarations/{id}", get(customs::declaration))
        .route("/declarations/{id}/lines/{line}/decision", post(customs::decide))
        .route("/received/{id}/verify", post(customs::raise_verification))
        .route("/revenue", get(customs::revenue))
        .route("/revenue.csv", get(customs::revenue_csv))
        // Administrators.
        .route("/admin/users", get(admin::users).post(admin::add_user))
        .route("/admin/users/{id}", get(admin::user_page))
        .route("/admin/users/{id}/disable", post(admin::disable))
        .route("/admin/users/{id}/enable", post(admin::enable))
        .route("/admin/users/{id}/invite", post(admin::invite))
        .route("/admin/users/{id}/password", post(admin::set_password))
        .route("/admin/users/{id}/email", post(admin::set_email))
        .route("/admin/exchange", get(admin::exchange))
        .route("/admin/exchange/dead/{id}/retry", post(admin::retry))
        .route("/admin/trust-list", get(admin::trust_list))
        .route("/admin/trust-list/reload", post(admin::reload_trust_list))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/audit/verify", post(admin::verify_audit))
        .route("/admin/keys", get(admin::keys))
        .fallback(views::not_found)
        .method_not_allowed_fallback(views::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(4 * 1024 * 1024))
        .layer(axum::middleware::from_fn(views::security_headers))
        .with_state(shared)
}
