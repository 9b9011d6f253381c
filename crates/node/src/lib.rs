//! The country node: one HTTPS service per country, its National Single Window for origin.
//!
//! Architecture invariant: handlers hold no state of their own. Everything durable goes
//! through `originlink_store::Store` (SQLite or PostgreSQL), every key through
//! `originlink_trust`, every instant through the injected [`Clock`]. Logs never contain a
//! token, a key or a database URL.
//!
//! # Layout (each layer imports only the ones below it; `tests/it/module_cycles.rs` checks)
//! - [`http`]: the JSON API, a thin adapter: the route table (roles, OpenAPI), extractors,
//!   error mapping, one file per resource.
//! - [`app`]: every use case (apply, approve, revoke, declare, verify, users, exchange
//!   administration), over storage, the issuer, the exchange and the clock. No HTTP.
//! - [`exchange`]: sealing, the inbound check-verify-apply, the outbox and pull workers.
//! - [`issue`]: the document that gets signed, the signer; [`numbering`]: number patterns.
//! - [`config`], [`audit`] (opening storage with the audit key), [`metrics`], [`start`],
//!   [`throttle`] (wrong passwords by name).
//! - this file: [`Application`] (build binds first, then serves).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;

pub mod app;
pub mod audit;
pub mod config;
pub mod exchange;
pub mod http;
pub mod issue;
pub mod metrics;
pub mod notify;
pub mod numbering;
pub mod public;
pub mod start;
pub mod throttle;

pub use app::users::{MAX_COMPANY_NAME, MAX_USER_NAME, add_user, clean_name, new_token};
pub use app::{AppState, CustomsSetup};
pub use config::Config;
pub use start::StartError;

pub use originlink_service::{Clock, FixedClock, OffsetClock, SystemClock};

/// The clock the configuration asks for.
pub fn clock_for(config: &Config) -> Arc<dyn Clock> {
    match config.clock.offset_days {
        0 => Arc::new(SystemClock),
        d => Arc::new(OffsetClock(chrono::Duration::days(d))),
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
    notifier: notify::Notifier,
}

impl Application {
    /// Loads keys, opens storage, binds the listener (port 0 picks one) and reports the
    /// address it got. Nothing is served until [`Application::run_until_stopped`].
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<Application, StartError> {
        let state = AppState::build(config, clock).await?;
        let router = http::router(state.clone(), config.server.body_limit);
        let tls = tls_config(config)?;
        let (listener, addr) = originlink_service::bind(&config.server.listen).await?;
        let listener = listener
            .into_std()
            .map_err(|source| originlink_service::BindError { addr: config.server.listen.clone(), source })?;
        // Where the links in e-mails point: the console's public address, or its listener's
        // when it names a port.
        let console = config.console.as_ref().and_then(|c| {
            let scheme = if c.tls_cert.is_some() { "https" } else { "http" };
            c.public_url
                .clone()
                .or_else(|| (!c.listen.ends_with(":0")).then(|| format!("{scheme}://{}", c.listen)))
        });
        let notifier =
            notify::Notifier::new(state.clone(), &config.notifications.clone().unwrap_or_default(), console)
                .map_err(|e| StartError::Notifications(e.to_string()))?;
        Ok(Application {
            addr,
            listener,
            tls,
            router,
            state,
            shutdown: Default::default(),
            limits: config.server.limits,
            notifier,
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
        if let Some(x) = self.state.exchange.clone() {
            // What the pull worker applies, customs acts on (the inbound endpoint does the same).
            let (arrived, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
            exchange::workers::spawn(self.state.exchange_env(), x, self.shutdown.subscribe(), arrived);
            let state = self.state.clone();
            tokio::spawn(async move {
                while let Some(a) = arrivals.recv().await {
                    app::customs::after_arrivals(&state, &a).await;
                }
            });
        }
        // People are told what happened: in the console, by e-mail, by webhook.
        self.notifier.spawn(self.shutdown.subscribe());
        // The status list: published at start when due, then at least every refresh interval
        // (a revocation or replacement publishes at once).
        tokio::spawn(status_list_loop(self.state.clone(), self.shutdown.subscribe()));
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

/// Keeps this node's status list fresh: checks once a minute whether one is due.
async fn status_list_loop(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if let Err(e) = app::status::refresh_if_due(&state).await {
            tracing::warn!(error = %e, "publishing the status list failed; retrying in a minute");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
            _ = stop.changed() => return,
        }
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

/// Installs the `tracing` subscriber for the node process (text or JSON lines on stderr).
pub fn init_logging(log: &config::LogConfig) {
    log.init();
}
