//! What every service process of the network (a country node, the gateway) shares besides
//! the wire and its business:
//! - [`config`]: one TOML file with `ORIGINLINK__SECTION__KEY` environment overrides,
//!   [`Secret`]s that never print, the `[database]`, `[log]` and `[console]` sections and the
//!   log subscriber ([`LogConfig::init`]).
//! - [`pgpool`]: the small PostgreSQL connection pool used by the node's store and the
//!   gateway's queue.
//! - [`create_private`]: a database file only its owner can read or write.
//! - [`bind`] and [`BindError`]: the listener every service binds before it serves, and the
//!   start error when it cannot.
//! - [`Clock`]: the one clock, injected so tests control time ([`SystemClock`],
//!   [`OffsetClock`], [`FixedClock`]).
//! - [`serve_until_signal`]: drive a service until SIGTERM or Ctrl-C, then stop it.
//!
//! Invariants: no business rule, no wire format, no key; a [`Secret`] (a database URL may
//! hold a password) never appears in `Debug` output or logs.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;

use chrono::{DateTime, Utc};

pub mod config;
pub mod pgpool;

pub use config::{ConfigError, ConsoleConfig, DatabaseConfig, ENV_PREFIX, LogConfig, Secret};

/// The one clock. Injected so tests control time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The wall clock moved by a fixed offset (`[clock] offset_days`): for drills and for tests
/// that need a deadline to pass, with separate processes.
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock(pub chrono::Duration);

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }
}

/// A clock that always reads the same instant (tests).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// Creates a database file that only its owner can read or write (mode 0600), before
/// SQLite creates it with the umask's bits; SQLite gives its `-wal` and `-shm` files the same
/// mode. An existing file is left as it is.
pub fn create_private(path: &Path) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The listen address of a service cannot be bound. Its stable code is `BIND_FAILED`; the
/// node's and the gateway's start errors wrap it.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct BindError {
    /// The address.
    pub addr: String,
    /// Why.
    pub source: std::io::Error,
}

impl BindError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        "BIND_FAILED"
    }
}

/// Binds `listen` (`HOST:PORT`; port 0 picks one; on Unix with `SO_REUSEADDR`, so a
/// restarted service gets its port back at once) and reports the address it got. Call it
/// inside the runtime.
pub async fn bind(listen: &str) -> Result<(tokio::net::TcpListener, SocketAddr), BindError> {
    let err = |source| BindError { addr: listen.to_owned(), source };
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    Ok((listener, addr))
}

/// Drives `run` (a built service serving) until SIGTERM or Ctrl-C, then calls `stop` (which
/// asks the service to stop gracefully) and lets `run` finish. Returns what `run` returns.
pub async fn serve_until_signal(
    stop: impl FnOnce() + Send + 'static,
    run: impl Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    let watcher = tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        stop();
    });
    let served = run.await;
    watcher.abort();
    served
}

/// Resolves on the first SIGTERM (Unix) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).expect("instant");
        assert_eq!(FixedClock(t).now(), t);
        let wall = SystemClock.now();
        let ahead = OffsetClock(chrono::Duration::days(2)).now();
        assert!(ahead - wall >= chrono::Duration::days(2));
    }

    #[test]
    fn private_files_are_owner_only_and_left_alone_when_present() {
        let dir = std::env::temp_dir().join(format!("originlink_service_{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("db.sqlite");
        let _ = std::fs::remove_file(&p);
        create_private(&p).expect("created");
        std::fs::write(&p, b"kept").expect("write");
        create_private(&p).expect("existing is fine");
        assert_eq!(std::fs::read(&p).expect("read"), b"kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn env_overrides_and_secrets() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct C {
            database: DatabaseConfig,
            #[serde(default)]
            log: LogConfig,
        }
        let env = vec![
            ("ORIGINLINK__DATABASE__POOL_SIZE".to_owned(), "3".to_owned()),
            ("ORIGINLINK__LOG__FORMAT".to_owned(), "json".to_owned()),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let c: C = config::parse("[database]\nurl = \"postgres://u:pw@h/db\"\n", env).expect("parses");
        assert_eq!((c.database.pool_size, c.log.format.as_str()), (3, "json"));
        assert!(!format!("{c:?}").contains("pw"), "the URL never prints");
        let bad = config::parse::<C>("[database]\nurl = \"x\"\ntypo = 1\n", Vec::new());
        assert!(bad.is_err(), "unknown keys are errors");
        let bad = config::parse::<C>("", vec![("ORIGINLINK__DATABASE".to_owned(), "x".to_owned())]);
        assert!(bad.is_err(), "an override names a section and a key");
    }
}
