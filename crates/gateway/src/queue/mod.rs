//! The durable queue: one row per message, keyed by the message id (which deduplicates), with
//! the envelope exactly as received. Two backends behind [`Queue`]: [`sqlite`] (one WAL file,
//! one writer connection, `synchronous = FULL`) and [`postgres`] (a connection pool, claims
//! with `FOR UPDATE SKIP LOCKED`). One contract suite (`tests/it/queue.rs`) runs on both.
//!
//! A message is `pending` until it is `delivered` (the recipient acknowledged it) or `failed`
//! (refused by the recipient, or out of attempts: a dead letter, which the operator may put
//! back with [`Queue::retry`]). Claims lease rows: a claimed row is not due again until its
//! lease ends (`next_attempt_at` is moved to the lease end), so a worker that dies mid-push
//! loses nothing: the message comes back when the lease runs out.
//!
//! Instants are passed in by callers (no clock here) and stored as microseconds since the
//! Unix epoch.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub mod postgres;
pub mod sqlite;

/// A storage failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The database URL is not usable.
    #[error("database url: {0}")]
    Url(String),
    /// The database failed.
    #[error("database: {0}")]
    Backend(String),
}

/// Results of the queue.
pub type Result<T, E = QueueError> = std::result::Result<T, E>;

/// A message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The message id (UUID text).
    pub id: String,
    /// `from.country`.
    pub sender: String,
    /// `to.country`: where it is routed.
    pub recipient: String,
    /// The message type (wire name).
    pub kind: String,
    /// The envelope, byte for byte as received.
    pub envelope: Vec<u8>,
}

/// A claimed (leased) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The message id.
    pub id: String,
    /// `from.country`.
    pub sender: String,
    /// The message type.
    pub kind: String,
    /// The envelope as received.
    pub envelope: Vec<u8>,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// What happened to a claimed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The recipient has it (`delivered`, `delivered-with-warnings`, `not-readable`, a
    /// duplicate): done.
    Delivered,
    /// The recipient refused it: dead now, with the reason.
    Failed(String),
    /// The attempt failed (transport, HTTP status): try again at `at`, unless this was the
    /// last allowed attempt, in which case the message is dead.
    Retry {
        /// Why.
        error: String,
        /// When to try again.
        at: DateTime<Utc>,
    },
}

/// The outcome of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settle {
    /// The message id.
    pub id: String,
    /// Its outcome.
    pub outcome: Outcome,
}

/// A message's delivery state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for (another) delivery attempt, or leased to one.
    Pending,
    /// The recipient acknowledged it.
    Delivered,
    /// A dead letter.
    Failed,
}

impl State {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Delivered => "delivered",
            State::Failed => "failed",
        }
    }
    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<State> {
        match s {
            "pending" => Some(State::Pending),
            "delivered" => Some(State::Delivered),
            "failed" => Some(State::Failed),
            _ => None,
        }
    }
}

/// What the tracking API shows of a message (never its envelope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tracking {
    /// The message id.
    pub id: String,
    /// `from.country`.
    pub from: String,
    /// `to.country`.
    pub to: String,
    /// The message type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its state.
    pub state: State,
    /// Failed attempts.
    pub attempts: u32,
    /// The last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the gateway accepted it.
    #[serde(serialize_with = "rfc3339")]
    pub received_at: DateTime<Utc>,
    /// When the recipient acknowledged it.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rfc3339_opt")]
    pub delivered_at: Option<DateTime<Utc>>,
}

fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

fn rfc3339_opt<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

/// The queue, on either backend.
#[async_trait::async_trait]
pub trait Queue: Send + Sync + fmt::Debug {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Creates or upgrades the schema, recording `now` as when each step was applied.
    /// Idempotent.
    async fn migrate_at(&self, now: DateTime<Utc>) -> Result<()>;

    /// [`Queue::migrate_at`] on the wall clock (tools and tests; the gateway passes its
    /// injected clock).
    async fn migrate(&self) -> Result<()> {
        self.migrate_at(originlink_service::Clock::now(&originlink_service::SystemClock)).await
    }

    /// A cheap round trip.
    async fn ping(&self) -> Result<()>;

    /// Stores a whole batch in ONE transaction, committed (durably) before it returns. For
    /// each message, in order: `true` if it was stored, `false` if its id was already known
    /// (also when it appears twice in the batch): nothing is stored again.
    async fn enqueue(&self, messages: Vec<NewMessage>, now: DateTime<Utc>) -> Result<Vec<bool>>;

    /// Leases up to `max` due pending messages for `recipient` until `now + lease`, oldest
    /// due first. Rows leased by others are skipped, never waited for.
    async fn claim(
        &self,
        recipient: &str,
        max: usize,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<Claimed>>;

    /// Records outcomes in ONE transaction. Only pending messages of `recipient` change (a
    /// stale outcome for a message settled meanwhile, or another recipient's, is ignored).
    /// `Retry` and `Failed` count an attempt; a `Retry` that reaches `max_attempts` fails the
    /// message. Returns how many messages changed.
    async fn settle(
        &self,
        recipient: &str,
        outcomes: Vec<Settle>,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<usize>;

    /// The tracking record of a message.
    async fn track(&self, id: &str) -> Result<Option<Tracking>>;

    /// Dead letters, oldest first.
    async fn dead(&self, limit: usize) -> Result<Vec<Tracking>>;

    /// Puts a dead letter back in the queue (pending, attempts 0, due now). `false` if `id`
    /// is not a dead letter.
    async fn retry(&self, id: &str, now: DateTime<Utc>) -> Result<bool>;

    /// Pending messages per recipient.
    async fn depth(&self) -> Result<Vec<(String, u64)>>;
}

/// Opens the queue at `url` (`sqlite:PATH` or `postgres://…`); does not migrate.
pub async fn open(url: &str, pool_size: usize) -> Result<Arc<dyn Queue>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgQueue::connect(url, pool_size).await?))
    } else {
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if path.is_empty() {
            return Err(QueueError::Url("empty sqlite path".into()));
        }
        Ok(Arc::new(sqlite::SqliteQueue::open(path).await?))
    }
}

pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::UNIX_EPOCH)
}

pub(crate) fn lease_end(now: DateTime<Utc>, lease: Duration) -> i64 {
    micros(now).saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX))
}
