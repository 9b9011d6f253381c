//! The PostgreSQL connection pool of the node's store (`originlink-store`) and the gateway's
//! queue: `deadpool-postgres` over tokio-postgres (no TLS: the database is reached on a
//! trusted network or a socket). The first connection is opened at once, so a wrong URL or an
//! unreachable server fails at start; the others on first use; a connection that broke is
//! dropped when it comes back and replaced.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::Client;

/// The pool.
#[derive(Clone)]
pub struct PgPool {
    inner: Pool,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        write!(f, "PgPool({} connections)", self.max_size())
    }
}

/// A connection borrowed from the pool; it goes back when dropped.
#[allow(missing_debug_implementations)]
pub struct PgConn(deadpool_postgres::Object);

impl PgConn {
    /// The client.
    pub fn client(&mut self) -> &mut Client {
        &mut self.0
    }
}

/// Why no connection could be had.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The URL does not parse.
    #[error("bad database url: {0}")]
    Url(String),
    /// The server refused or could not be reached.
    #[error("postgres: {0}")]
    Connect(#[from] tokio_postgres::Error),
    /// The pool itself failed (closed, or timed out waiting for a slot).
    #[error("connection pool: {0}")]
    Pool(String),
}

impl From<deadpool_postgres::PoolError> for PoolError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => PoolError::Connect(e),
            e => PoolError::Pool(e.to_string()),
        }
    }
}

impl PgPool {
    /// Parses `url` and opens the first of up to `size` connections.
    pub async fn connect(url: &str, size: usize) -> Result<PgPool, PoolError> {
        let config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| PoolError::Url(e.to_string()))?;
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let inner = Pool::builder(manager)
            .max_size(size.max(1))
            .build()
            .map_err(|e| PoolError::Pool(e.to_string()))?;
        drop(inner.get().await?);
        Ok(PgPool { inner })
    }

    /// How many connections the pool may hold.
    pub fn max_size(&self) -> usize {
        self.inner.status().max_size
    }

    /// A connection, waiting for a free slot.
    pub async fn lease(&self) -> Result<PgConn, PoolError> {
        Ok(PgConn(self.inner.get().await?))
    }
}
