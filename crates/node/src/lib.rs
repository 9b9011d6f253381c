//! The country node: one HTTPS service per country, its National Single Window for origin.
//!
//! Architecture invariant: handlers hold no state of their own. Everything durable goes
//! through `originlink_store::Store` (SQLite or PostgreSQL), every key through
//! `originlink_trust`, every instant through the injected [`Clock`]. Logs never contain a
//! token, a key or a database URL.
//!
//! # Layout
//! - [`config`]: the TOML configuration and its `ORIGINLINK__SECTION__KEY` overrides.
//! - [`issue`]: number patterns, the document that gets signed, the [`issue::DocumentSigner`].
//! - [`api`]: the `/api/v1` handlers (issuance workflow, qualify, rules, users).
//! - [`extract`]: request extractors: the bearer token ([`extract::Auth`]) and JSON bodies
//!   whose rejections are API errors.
//! - [`error`]: [`error::ApiError`], the one JSON error `{code, message, field?}`.
//! - [`metrics`]: Prometheus counters and the request-logging middleware.
//! - [`openapi`]: the route table ([`openapi::OPERATIONS`]): the router and the OpenAPI 3.1
//!   document are both generated from it.
//! - this file: [`Application`] (build binds first, then serves), [`AppState`],
//!   [`add_user`], [`clock_for`]; the [`Clock`] itself comes from `originlink-service`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use originlink_store::{Ctx, NewUser, Role, Store, User};

pub mod api;
pub mod audit;
pub mod config;
pub mod customs;
pub mod error;
pub mod exchange;
pub mod extract;
pub mod issue;
pub mod metrics;
pub mod openapi;

pub use config::Config;

pub use originlink_service::{Clock, FixedClock, OffsetClock, SystemClock};

/// The clock the configuration asks for.
pub fn clock_for(config: &Config) -> Arc<dyn Clock> {
    match config.clock.offset_days {
        0 => Arc::new(SystemClock),
        d => Arc::new(OffsetClock(chrono::Duration::days(d))),
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// The issuing authority: numbering and signing.
    pub issuer: Arc<issue::Issuer>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// The exchange with other members (`None` when not configured).
    pub exchange: Option<Arc<exchange::Exchange>>,
    /// Importing customs: agreement policies and risk weights.
    pub customs: Arc<CustomsSetup>,
}

/// Importing customs settings: the agreements' policies and the risk weights and thresholds.
#[derive(Debug, Clone, Default)]
pub struct CustomsSetup {
    /// Partial use, validity, verification deadlines … per agreement.
    pub policies: originlink_customs::Policies,
    /// Risk rule weights and thresholds (`[customs.risk]` in the configuration).
    pub risk: originlink_customs::RiskConfig,
}

impl AppState {
    /// Loads the signing key, opens (and pings) storage with the audit key, and anchors the
    /// audit chain's head in its checkpoint.
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<AppState, StartError> {
        let signer = issue::TrustSigner::load(&config.authority.keys)?;
        let store = audit::open_store(config).await?;
        store.ping().await?;
        store.checkpoint_audit().await?;
        let pattern = issue::NumberPattern::parse(&config.authority.number_pattern).map_err(|e| {
            StartError::Store(originlink_store::StoreError::Url(format!("number pattern: {e}")))
        })?;
        let issuer = Arc::new(issue::Issuer {
            authority: config.authority.clone(),
            pattern,
            signer: Arc::new(signer),
        });
        let exchange = exchange::Exchange::load(config, clock.now())?.map(Arc::new);
        let customs = Arc::new(CustomsSetup {
            policies: originlink_customs::Policies::builtin(),
            risk: config.customs.risk.clone(),
        });
        Ok(AppState {
            store,
            issuer,
            clock,
            metrics: Arc::new(metrics::Metrics::default()),
            exchange,
            customs,
        })
    }
}

/// Why the node could not start. Stable codes via [`StartError::code`].
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The signing key or certificate could not be loaded.
    #[error("signing key: {0}")]
    Keys(#[from] originlink_trust::Error),
    /// The trust list or exchange configuration is not usable.
    #[error("exchange: {0}")]
    Exchange(String),
    /// The TLS certificate or key is not usable.
    #[error("tls: {0}")]
    Tls(String),
    /// Storage is not reachable.
    #[error("storage: {0}")]
    Store(#[from] originlink_store::StoreError),
    /// The listen address cannot be bound.
    #[error(transparent)]
    Bind(#[from] originlink_service::BindError),
}

impl StartError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            StartError::Keys(_) => "KEYS_UNAVAILABLE",
            StartError::Exchange(_) => "EXCHANGE_INVALID",
            StartError::Tls(_) => "TLS_INVALID",
            StartError::Store(_) => "STORAGE_UNAVAILABLE",
            StartError::Bind(e) => e.code(),
        }
    }
}

/// A built node: bound to its port, not yet serving.
#[derive(Debug)]
pub struct Application {
    addr: SocketAddr,
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    state: AppState,
    shutdown: originlink_exchange::server::Shutdown,
    limits: originlink_exchange::server::ServeLimits,
}

impl Application {
    /// Loads keys, opens storage, binds the listener (port 0 picks one) and reports the
    /// address it got. Nothing is served until [`Application::run_until_stopped`].
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<Application, StartError> {
        let state = AppState::build(config, clock).await?;
        let router = api::router(state.clone(), config.server.body_limit);
        let tls = tls_config(config)?;
        let (listener, addr) = originlink_service::bind(&config.server.listen).await?;
        let listener = listener
            .into_std()
            .map_err(|source| originlink_service::BindError { addr: config.server.listen.clone(), source })?;
        Ok(Application {
            addr,
            listener,
            tls,
            router,
            state,
            shutdown: Default::default(),
            limits: config.server.limits,
        })
    }

    /// The bound address (with the real port when the configuration said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that stops the server (and the exchange workers) gracefully.
    pub fn handle(&self) -> originlink_exchange::server::Shutdown {
        self.shutdown.clone()
    }

    /// The shared state (storage, clock, exchange), e.g. for in-process tools.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves, and runs the exchange workers, until the handle asks for shutdown.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tracing::info!(addr = %self.addr, "serving https");
        exchange::spawn_workers(self.state.clone(), self.shutdown.subscribe());
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let served = originlink_exchange::server::serve_with(
            listener,
            self.tls,
            self.router,
            self.shutdown,
            self.limits,
        )
        .await;
        // The audit chain's head as it is at shutdown (between times a background writer
        // keeps it at most a second behind).
        if let Err(e) = self.state.store.checkpoint_audit().await {
            tracing::warn!(error = %e, "audit checkpoint not written at shutdown");
        }
        served
    }
}

/// The server side of TLS: the node certificate, and a request for (not a requirement of) a
/// client certificate, which only the exchange endpoint uses.
fn tls_config(config: &Config) -> Result<Arc<rustls::ServerConfig>, StartError> {
    let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) else {
        return Err(StartError::Tls("tls.cert and tls.key are required".into()));
    };
    let id = originlink_exchange::tls::Identity::load(cert, key)?;
    originlink_exchange::tls::server_config(&id).map_err(|e| StartError::Tls(e.to_string()))
}

/// A new API token: 32 random bytes, hex, with a recognisable prefix.
pub fn new_token() -> Result<String, ring::error::Unspecified> {
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)?;
    Ok(format!("olk_{}", originlink_store::hex(&b)))
}

/// Why a user could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddUserError {
    /// Exporters need a company; other roles must not have one.
    #[error("{0}")]
    Company(&'static str),
    /// Storage refused (e.g. `USER_EXISTS`).
    #[error(transparent)]
    Store(#[from] originlink_store::StoreError),
    /// No randomness for the token.
    #[error("no random source for the token")]
    Random,
    /// A user or company name that is empty, too long or holds control characters
    /// (`NAME_INVALID` on `name`, `COMPANY_NAME_INVALID` on `company`).
    #[error("{field}: {message}")]
    Invalid {
        /// Stable code.
        code: &'static str,
        /// The field concerned.
        field: &'static str,
        /// For people.
        message: String,
    },
}

/// A person's or a company's name as entered: trimmed, 1 to `max` characters, with no
/// control characters (newlines and tabs included) and no bidirectional overrides, which
/// would let a name print as something else in logs, lists and certificates.
pub fn clean_name(raw: &str, max: usize) -> Result<&str, String> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 {
        return Err("must not be empty".into());
    }
    if chars > max {
        return Err(format!("{chars} characters; at most {max}"));
    }
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if let Some(c) = name.chars().find(|&c| c.is_control() || bidi(c) || c == '\u{2028}' || c == '\u{2029}') {
        return Err(format!(
            "contains the control character U+{:04X}; use letters, digits and punctuation",
            c as u32
        ));
    }
    Ok(name)
}

/// Longest user name, in characters.
pub const MAX_USER_NAME: usize = 100;
/// Longest company name, in characters.
pub const MAX_COMPANY_NAME: usize = 200;

impl AddUserError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AddUserError::Company(_) => "COMPANY_REQUIRED_FOR_EXPORTER",
            AddUserError::Store(e) => e.code(),
            AddUserError::Random => "RANDOM_UNAVAILABLE",
            AddUserError::Invalid { code, .. } => code,
        }
    }
}

/// Adds a user (creating its company on first use) and returns it with its token. The
/// token is returned once; only its SHA-256 is stored.
pub async fn add_user(
    store: &dyn Store,
    ctx: &Ctx,
    name: &str,
    role: Role,
    company: Option<&str>,
    country: &str,
) -> Result<(User, String), AddUserError> {
    let name = clean_name(name, MAX_USER_NAME).map_err(|message| AddUserError::Invalid {
        code: "NAME_INVALID",
        field: "name",
        message,
    })?;
    let company = company.map(|c| clean_name(c, MAX_COMPANY_NAME)).transpose().map_err(|message| {
        AddUserError::Invalid { code: "COMPANY_NAME_INVALID", field: "company", message }
    })?;
    let company_id = match (role, company) {
        (Role::Exporter, Some(c)) => Some(match store.company_by_name(c).await? {
            Some(found) => found.id,
            None => store.create_company(ctx, c, country).await?.id,
        }),
        (Role::Exporter, None) => return Err(AddUserError::Company("an exporter needs --company")),
        (_, Some(_)) => return Err(AddUserError::Company("only exporters belong to a company")),
        (_, None) => None,
    };
    let token = new_token().map_err(|_| AddUserError::Random)?;
    let user = store
        .create_user(
            ctx,
            NewUser {
                name: name.to_owned(),
                role,
                company_id,
                token_hash: originlink_store::token_hash(&token),
            },
        )
        .await?;
    Ok((user, token))
}

/// Installs the `tracing` subscriber for the node process (text or JSON lines on stderr).
pub fn init_logging(log: &config::LogConfig) {
    log.init();
}
