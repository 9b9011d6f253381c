//! A small PostgreSQL connection pool (tokio-postgres, no TLS: the database is reached on a
//! trusted network or a socket): a fixed number of slots, the first connection opened at
//! once so a wrong URL fails at start, the others on first use, a broken connection replaced
//! when it is next leased. Used by the node's `PgStore` (`originlink-store`) and by the
//! gateway's queue.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{MappedMutexGuard, Mutex, MutexGuard};
use tokio_postgres::{Client, NoTls};

/// The pool.
pub struct PgPool {
    url: String,
    clients: Vec<Mutex<Option<Client>>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for PgPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        write!(f, "PgPool({} connections)", self.clients.len())
    }
}

/// A connection borrowed from the pool; it goes back when dropped.
#[allow(missing_debug_implementations)]
pub struct PgConn<'a>(MappedMutexGuard<'a, Client>);

impl PgConn<'_> {
    /// The client.
    pub fn client(&mut self) -> &mut Client {
        &mut self.0
    }
}

async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!(error = %e, "postgres connection closed");
        }
    });
    Ok(client)
}

impl PgPool {
    /// Parses `url` (an error is a bad URL, as text) and opens the first of `size` connections.
    pub async fn connect(url: &str, size: usize) -> Result<PgPool, PoolError> {
        let _: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| PoolError::Url(e.to_string()))?;
        let first = connect(url).await.map_err(PoolError::Connect)?;
        let mut clients = vec![Mutex::new(Some(first))];
        for _ in 1..size.max(1) {
            clients.push(Mutex::new(None));
        }
        Ok(PgPool { url: url.to_owned(), clients, next: AtomicUsize::new(0) })
    }

    /// How many connections at most.
    pub fn size(&self) -> usize {
        self.clients.len()
    }

    /// A free connection, or the next one in turn once it is free; (re)connected if needed.
    pub async fn lease(&self) -> Result<PgConn<'_>, PoolError> {
        let mut guard = None;
        for slot in &self.clients {
            if let Ok(g) = slot.try_lock() {
                guard = Some(g);
                break;
            }
        }
        let mut g: MutexGuard<'_, Option<Client>> = match guard {
            Some(g) => g,
            None => {
                let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
                self.clients[i].lock().await
            }
        };
        if g.as_ref().is_none_or(|c| c.is_closed()) {
            *g = Some(connect(&self.url).await.map_err(PoolError::Connect)?);
        }
        MutexGuard::try_map(g, Option::as_mut).map(PgConn).map_err(|_| PoolError::Empty)
    }
}

/// Why the pool could not start or lend a connection.
#[derive(Debug)]
pub enum PoolError {
    /// The URL does not parse.
    Url(String),
    /// Connecting failed.
    Connect(tokio_postgres::Error),
    /// A slot had no connection (not reachable: leasing connects an empty slot).
    Empty,
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolError::Url(e) => write!(f, "bad database url: {e}"),
            PoolError::Connect(e) => match e.as_db_error() {
                Some(d) => write!(f, "{}: {}", d.code().code(), d.message()),
                None => write!(f, "{e}"),
            },
            PoolError::Empty => f.write_str("pool slot without a connection"),
        }
    }
}
