//! The OriginLink regional gateway: a store-and-forward hub between member nodes (as the
//! ASEAN Single Window or the IPPC ePhyto hub), specified in `docs/protocol.md`.
//!
//! A node pushes a batch of signed envelopes; the gateway identifies the node by its TLS
//! client certificate (pinned in the signed trust list), checks every envelope (form, payload
//! hash, `from` = the node's country, `to` a member, the signature by a node key of `from`,
//! and what its type requires: `originlink_exchange::check_message`, the check the
//! recipient node makes too),
//! stores the accepted ones in its durable queue in ONE transaction and only then answers
//! `accepted`. Push workers deliver the queue to each recipient's node over mutual TLS,
//! retrying with backoff and jitter, and dead-letter what is refused or out of attempts;
//! members that cannot accept connections pull instead. The sender tracks its messages; the
//! operator lists and retries dead letters.
//!
//! Architecture invariants:
//! - **Nothing acknowledged is lost.** `accepted` is sent after the commit (SQLite
//!   `synchronous = FULL`, PostgreSQL's default durable commit); `kill -9` at any moment loses
//!   nothing. It may push a message twice (an acknowledgement lost in a crash, a lease that
//!   ran out): the receiving node deduplicates by message id.
//! - **The gateway never sees business state.** It routes on `to.country`; it reads the small
//!   JSON payloads (revocation, status, verification) only to refuse at its door what the
//!   recipient would refuse, never certificate documents, and keeps nothing of them. So it
//!   keeps no audit hash chain: the queue rows (received, attempts, last error, delivered or
//!   failed, when) are the record.
//! - **No key of its own signs anything.** Envelopes are forwarded byte for byte; the
//!   receiving node verifies the sender's signature end to end. The gateway's TLS key only
//!   authenticates the gateway.
//! - Logs never hold an operator token, a key or a database URL.
//! - **One clock.** Every instant (certificate validity, queue times, leases, retries) comes
//!   from the [`Clock`] handed to [`Gateway::build`]; the gateway never reads the wall clock.
//!   Configuration, logging and the PostgreSQL pool come from `originlink-service`; the
//!   gateway depends on no crate of the node (not `originlink-store`).
//!
//! Limits of this version: a newer trust list file is put in force within seconds
//! ([`members::Members::reload`]), but push workers are started for the members listed at
//! start (a member added later pulls until a restart);
//! a member only pulls if the list names its node (the node's certificate identifies it),
//! so "no URL" means a node whose listed URL is not used (`pull_only`); `NO_ROUTE` is
//! never answered: every member's messages are queued, pushed or held for a pull. Delivered
//! rows (with their envelopes) are kept; pruning them is an operator task.
//!
//! # Layout
//! - [`config`]: the TOML configuration (`[server]`, `[database]`, `[gateway]`, `[console]`,
//!   `[log]`) with
//!   `ORIGINLINK__SECTION__KEY` overrides.
//! - [`queue`]: the [`queue::Queue`] trait and its backends, [`queue::sqlite`] and
//!   [`queue::postgres`].
//! - [`api`]: the HTTP endpoints: batches in, pull, tracking, dead letters, traffic, health,
//!   metrics.
//! - [`operator`]: what the operator sees and does (members and their queues, search by
//!   certificate, dead letters, traffic per minute, the trust list in force), written once
//!   for the JSON operator endpoints and the operator's web console (`originlink-console`,
//!   on the `[console]` listener the binary serves beside the API).
//! - [`state`]: [`state::Shared`], what both take.
//! - [`push`]: the per-recipient push workers.
//! - [`metrics`]: counters and the Prometheus exposition.
//! - this file: [`Gateway`] (build binds first, then serves), [`StartError`] (its `Bind`
//!   case is `originlink_service::BindError`), [`init_logging`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use originlink_exchange::backoff::Backoff;
use originlink_exchange::client::PeerClient;
use originlink_exchange::failover::Failover;
use originlink_exchange::server::{self, Shutdown};
use originlink_exchange::tls::{self, Identity};
use originlink_service::Clock;
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub mod api;
pub mod config;
pub mod members;
pub mod metrics;
pub mod operator;
pub mod push;
pub mod queue;
pub mod state;

pub use config::Config;

/// Why the gateway could not start. Stable codes via [`StartError::code`].
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A key or certificate could not be loaded.
    #[error("keys: {0}")]
    Keys(#[from] originlink_trust::Error),
    /// The trust list is unreadable, not signed by the operator, or does not list this
    /// gateway's certificate.
    #[error("trust list: {0}")]
    TrustList(String),
    /// The TLS configuration could not be built.
    #[error("tls: {0}")]
    Tls(String),
    /// The queue's database is not usable.
    #[error("storage: {0}")]
    Queue(#[from] queue::QueueError),
    /// The listen address cannot be bound.
    #[error(transparent)]
    Bind(#[from] originlink_service::BindError),
}

impl StartError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            StartError::Keys(_) => "KEYS_UNAVAILABLE",
            StartError::TrustList(_) => "TRUST_LIST_INVALID",
            StartError::Tls(_) => "TLS_INVALID",
            StartError::Queue(_) => "STORAGE_UNAVAILABLE",
            StartError::Bind(e) => e.code(),
        }
    }
}

/// A built gateway: keys loaded, trust list verified, queue open and migrated, listener
/// bound. Nothing is served and nothing is pushed until [`Gateway::run_until_stopped`].
#[derive(Debug)]
pub struct Gateway {
    addr: SocketAddr,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shared: state::Shared,
    workers: Vec<push::Worker>,
    shutdown: Shutdown,
    limits: server::ServeLimits,
    retention: Duration,
}

impl Gateway {
    /// Loads the TLS identity and the trust list (which must be signed by the operator
    /// certificate and list this gateway's certificate), opens and migrates the queue, binds
    /// the listener (port 0 picks one) and prepares a push worker per recipient. Every
    /// instant the gateway uses (certificate validity, queue times, leases, retries) comes
    /// from `clock`.
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<Gateway, StartError> {
        let g = &config.gateway;
        let identity = Identity::load(&g.tls_cert, &g.tls_key)?;
        let operators = originlink_trust::keystore::load_certs(&g.operator_cert)?;
        let (members, list) =
            members::Members::load(g.trust_list.clone(), operators, identity.cert_der.clone())
                .map_err(StartError::TrustList)?;
        let directory = members.get();
        let queue = queue::open(config.database.url.expose(), config.database.pool_size).await?;
        queue.migrate_at(clock.now()).await?;
        let tls_server = tls::server_config(&identity).map_err(|e| StartError::Tls(e.to_string()))?;
        let (listener, addr) = originlink_service::bind(&config.server.listen).await?;

        let metrics = Arc::new(metrics::Metrics::default());
        let backoff = Backoff {
            base: Duration::from_millis(g.backoff_base_ms),
            max: Duration::from_millis(g.backoff_max_ms),
            max_attempts: g.max_attempts,
        };
        let timeout = Duration::from_millis(g.push_timeout_ms);
        let mut workers = Vec::new();
        let mut wake = HashMap::new();
        for m in &list.members {
            let country = m.country.as_str().to_owned();
            if g.pull_only.contains(&country) {
                continue;
            }
            // One client per listed endpoint of the member (its replicas), tried in turn.
            let mut clients = Vec::new();
            for url in directory.node_endpoints(m.country) {
                let client_tls = tls::client_config(&identity, directory.certs_for_url(url))
                    .map_err(|e| StartError::Tls(e.to_string()))?;
                match PeerClient::new(url, client_tls, timeout) {
                    Ok(c) => clients.push(Arc::new(c)),
                    Err(e) => tracing::warn!(country = %country, url, error = %e, "node URL unusable"),
                }
            }
            // Gateway replicas push to a member's node replicas, starting at a random one.
            let Some(client) = Failover::spread(clients) else {
                // No usable URL: its messages wait for a pull.
                continue;
            };
            let notify = Arc::new(Notify::new());
            wake.insert(country.clone(), notify.clone());
            let client = Arc::new(client.allow_v2(g.protocol >= 2));
            for _ in 0..push::PUSHES_IN_FLIGHT {
                workers.push(push::Worker {
                    recipient: country.clone(),
                    client: client.clone(),
                    wake: notify.clone(),
                    queue: queue.clone(),
                    batch: g.push_batch,
                    backoff,
                    lease: timeout + Duration::from_secs(30),
                    metrics: metrics.clone(),
                    clock: clock.clone(),
                });
            }
        }
        let operator_token_sha256 = g.operator_token_sha256.as_deref().map(|h| {
            let mut out = [0u8; 32];
            for (i, b) in out.iter_mut().enumerate() {
                *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap_or(0);
            }
            out
        });
        let shared = state::Shared {
            queue,
            directory: Arc::new(members),
            own_cert: Arc::new(identity.cert_der.clone()),
            operator_token_sha256,
            verify_signatures: g.verify_signatures,
            protocol: g.protocol,
            body_limit: config.server.body_limit,
            max_attempts: g.max_attempts,
            metrics,
            wake: Arc::new(wake),
            clock,
        };
        let router = api::router(shared.clone());
        tracing::info!(
            gateway = %g.id,
            trust_list = list.sequence,
            members = list.members.len(),
            pushed_to = workers.len() / push::PUSHES_IN_FLIGHT,
            storage = shared.queue.backend(),
            "gateway built"
        );
        Ok(Gateway {
            addr,
            listener,
            tls: tls_server,
            router,
            shared,
            workers,
            shutdown: Shutdown::default(),
            limits: config.server.limits,
            retention: Duration::from_secs(u64::from(g.retention_hours) * 3600),
        })
    }

    /// The bound address (with the real port when the configuration said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the gateway: `trigger()` it and [`Gateway::run_until_stopped`] returns once the
    /// listener is closed and each push worker has finished its current batch.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// The queue (for tools and tests).
    pub fn queue(&self) -> Arc<dyn queue::Queue> {
        self.shared.queue.clone()
    }

    /// What the operator's use cases ([`operator`]) take: for the operator's console.
    pub fn shared(&self) -> state::Shared {
        self.shared.clone()
    }

    /// The counters.
    pub fn metrics(&self) -> Arc<metrics::Metrics> {
        self.shared.metrics.clone()
    }

    /// Serves and pushes until the shutdown handle is triggered.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Gateway { addr, listener, tls, router, workers, shutdown, limits, shared, retention } = self;
        let handles: Vec<_> =
            workers.into_iter().map(|w| tokio::spawn(w.run(shutdown.subscribe()))).collect();
        tokio::spawn(watch_trust_list(shared.directory.clone(), shutdown.subscribe()));
        tokio::spawn(purge_delivered(shared.clone(), retention, shutdown.subscribe()));
        tracing::info!(%addr, "serving https");
        let served = server::serve_with(listener, tls, router, shutdown.clone(), limits).await;
        // `serve` also returns on an error: stop the workers either way.
        shutdown.trigger();
        for h in handles {
            let _ = h.await;
        }
        tracing::info!("gateway stopped");
        served
    }
}

/// Puts a newer trust list in force when the operator replaces its file. A list that does not
/// verify (or no longer names this gateway) is refused, logged once, and the one in force stays.
async fn watch_trust_list(members: Arc<members::Members>, stop: tokio::sync::watch::Receiver<bool>) {
    let path = members.path().to_path_buf();
    let mut refused: Option<String> = None;
    server::on_file_change(path, Duration::from_secs(2), stop, || match members.reload() {
        Ok(_) => refused = None,
        Err(e) => {
            if refused.as_deref() != Some(e.as_str()) {
                tracing::warn!(error = %e, "a new trust list was refused; the list in force stays");
            }
            refused = Some(e);
        }
    })
    .await
}

/// Retention: once a minute, empties the bodies of messages delivered more than `retention`
/// ago (in batches of 1,000), keeping their tracking rows. A hub that only routes keeps a body
/// until it is delivered and acknowledged, then for the window, and no longer.
async fn purge_delivered(
    shared: state::Shared,
    retention: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let window = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    loop {
        loop {
            let now = shared.clock.now();
            let Some(before) = now.checked_sub_signed(window) else { break };
            match shared.queue.purge_delivered(before, 1000, now).await {
                Ok(1000) => continue,
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(purged = n, "delivered message bodies purged");
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purging delivered messages failed; retrying in a minute");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Sets up `tracing` to standard error from the `[log]` section (once per process).
pub fn init_logging(log: &config::LogConfig) {
    log.init();
}
