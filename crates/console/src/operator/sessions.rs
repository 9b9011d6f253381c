//! The gateway operators' sign-in use cases, as people of a node sign in
//! (`originlink_node::app::sessions`), with the same rules and the same code for each of
//! them: argon2id password hashes ([`hash_password`], [`verify_password`]), the pause after
//! [`FREE_TRIES`] wrong passwords ([`Throttle`]), sessions ending after [`IDLE`] unused or
//! [`ABSOLUTE`] after sign-in ([`ended`]). Accounts and sessions live in the gateway's queue
//! database (`Queue::set_operator` and the session methods); only hashes are stored: the
//! password's PHC string, the SHA-256 of a session id. Nothing here knows HTTP.

use chrono::{DateTime, Utc};
use originlink_gateway::queue::{NewOperatorSession, Queue};
use originlink_node::app::sessions::{
    Throttle, ended, hash_password, random_hex, sign_in_failed, sign_in_throttled, verify_password,
};
use originlink_node::app::{Error, Kind, Result};

pub use originlink_node::app::sessions::{ABSOLUTE, FREE_TRIES, IDLE};

/// A session just started: the id for the cookie (never stored, never logged) and the CSRF
/// token of its forms.
#[derive(Debug, Clone)]
pub struct Started {
    /// The session id.
    pub id: String,
    /// Its CSRF token.
    pub csrf: String,
}

/// A session in force: who, and its CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    /// The operator's name.
    pub operator: String,
    /// The session's CSRF token.
    pub csrf: String,
}

fn storage(e: originlink_gateway::queue::QueueError) -> Error {
    tracing::error!(error = %e, "operator sessions: the queue's database failed");
    Error::new(
        Kind::Unavailable,
        "QUEUE_UNAVAILABLE",
        "The gateway's database is not answering. Try again in a minute.",
    )
}

fn id_hash(id: &str) -> String {
    originlink_store::hex(&originlink_store::token_hash(id))
}

/// Adds operator `name` or sets its password (ending its sessions): `true` when added.
pub async fn set_password(queue: &dyn Queue, name: &str, password: &str, now: DateTime<Utc>) -> Result<bool> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::invalid(
            "OPERATOR_NAME_INVALID",
            "name",
            "Choose a name of 1 to 64 characters, without spaces.",
        ));
    }
    let hash = hash_password(password).await?;
    queue.set_operator(name, &hash, now).await.map_err(storage)
}

/// Signs operator `name` in. A wrong name or password answers `SIGN_IN_FAILED`, the same for
/// both; after [`FREE_TRIES`] wrong passwords for a name every try waits
/// (`SIGN_IN_THROTTLED`, saying how long), the right password included.
pub async fn sign_in(
    queue: &dyn Queue,
    throttle: &Throttle,
    name: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<Started> {
    let key = name.trim().to_lowercase();
    if let Some(wait) = throttle.waiting(&key, now) {
        return Err(sign_in_throttled(wait));
    }
    let name = name.trim().to_owned();
    let stored = if name.is_empty() || name.len() > 64 {
        None
    } else {
        queue.operator_password(&name).await.map_err(storage)?
    };
    let password = password.to_owned();
    // An unknown name is checked against a dummy hash: the time taken tells nothing.
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, stored.as_deref()))
        .await
        .map_err(Error::internal)?;
    if !ok {
        throttle.failed(&key, now);
        tracing::info!(name = %key, "operator sign-in failed");
        return Err(sign_in_failed());
    }
    throttle.succeeded(&key);
    let (id, csrf) = (random_hex()?, random_hex()?);
    let hash = id_hash(&id);
    let session = NewOperatorSession { id_hash: &hash, operator: &name, csrf: &csrf };
    queue.start_operator_session(session, now).await.map_err(storage)?;
    tracing::info!(operator = %name, "operator signed in");
    Ok(Started { id, csrf })
}

/// The session whose id is `id`, when in force; an ended one is removed. A use more than a
/// minute after the last one is recorded.
pub async fn session(queue: &dyn Queue, id: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    let hash = id_hash(id);
    let Some(s) = queue.operator_session(&hash).await.map_err(storage)? else { return Ok(None) };
    if ended(s.created_at, s.last_seen_at, now) {
        queue.end_operator_session(&hash).await.map_err(storage)?;
        return Ok(None);
    }
    if now - s.last_seen_at > chrono::Duration::minutes(1) {
        queue.touch_operator_session(&hash, now).await.map_err(storage)?;
    }
    Ok(Some(Session { operator: s.operator, csrf: s.csrf }))
}

/// Ends session `id` (signing out).
pub async fn sign_out(queue: &dyn Queue, id: &str) -> Result<()> {
    queue.end_operator_session(&id_hash(id)).await.map_err(storage)
}
