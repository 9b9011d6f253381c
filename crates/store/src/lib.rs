//! Durable storage of an OriginLink node, behind one interface ([`Store`]) with two
//! implementations: SQLite (the default: one file, WAL) and PostgreSQL (several stateless node
//! replicas may share one database).
//!
//! Every operation that changes state is one transaction that also appends the matching audit
//! event(s), so the audit chain and the data can never disagree. Certificate numbers are
//! allocated inside the approving transaction, which makes them gapless: a failed approval
//! rolls its number back.
//!
//! Architecture invariant: no HTTP here, no clock (callers pass "now" in [`Ctx`]), no keys
//! (signing is a callback handed to [`Store::approve`]) but the audit chain's HMAC key, which
//! the caller hands in ([`open_keyed`]); no key files are read here. Every business rule is
//! written once, in its concern's module, over a small transaction interface each backend
//! implements; the backends hold only SQL text, parameter binding and row access.
//!
//! # Layout
//! - `model`: the records and the values callers pass in; `error`: [`StoreError`];
//!   `store`: the [`Store`] trait.
//! - The rules, by concern, each with its transaction interface and the audit events it
//!   appends: `users` (companies, users), `issuance` (applications, approval, revocation),
//!   `received` (received certificates), `outbox` (enqueue, dead letters), `inbox` (applying
//!   inbound exchange messages: dedup, holding out-of-order messages, releasing them),
//!   `declarations` (declarations and the utilization ledger), `verifications`.
//! - [`audit`]: the keyed hash chain: canonical event bytes, hashing, appending and
//!   verification; [`checkpoint`]: the chain head anchored outside the database.
//! - `row`: reading records out of either backend's rows (the shared column lists);
//!   `text`: the one text form of instants, hex, decimals and token hashes.
//! - `migrate`: the schema migrations (`migrations/<backend>/V<n>__<name>.sql`) and the one
//!   runner both backends use.
//! - [`sqlite`], [`postgres`]: the two backends: SQL, binding, connections.
//!
//! # Exchange
//! The outbox ([`OutMessage`], [`OutboxRow`]) is transactional: messages are written in the
//! transaction of the state change that causes them ([`Signed::messages`], [`MessagesFn`]),
//! then claimed by a sender with a lease ([`Store::claim_outbox`]). Inbound messages
//! ([`Inbound`]) are applied in batches ([`Store::apply_inbound`]): deduplicated by message
//! id, held until the certificate version they need is present, and their replies enqueued
//! when (and only when) they are applied. Message bodies are opaque bytes here.
//!
//! # Importing customs
//! Declarations ([`NewDeclaration`], [`Declaration`]) are stored as submitted with one row per
//! line; the customs logic (elsewhere) decides each line and hands the decisions to
//! [`Store::decide_lines`], which applies them in one transaction together with the
//! utilization ledger: per certificate item, the remaining quantity (exact decimals, stored as
//! canonical text, computed in Rust) is locked, checked and reduced, so concurrent claims never
//! over-use an item. Verification requests ([`VerificationRequest`]) are kept in both
//! directions; the exchange delivers them as [`InboundKind::VerificationRequest`] /
//! [`InboundKind::VerificationResponse`].

use std::sync::Arc;

pub use rust_decimal::Decimal;

pub mod audit;
pub mod checkpoint;
mod declarations;
mod error;
mod inbox;
mod issuance;
mod migrate;
mod model;
mod notifications;
mod outbox;
pub mod postgres;
mod received;
mod row;
pub mod sqlite;
mod store;
mod text;
mod users;
mod verifications;

pub use audit::{AuditEvent, AuditKey, AuditSetup, Broken, Verified};
pub use error::{Result, StoreError};
pub use model::*;
pub use store::Store;
pub(crate) use text::unhex;
pub use text::{decimal_text, hex, timestamp, token_hash};

/// Opens the store named by `url`: `sqlite:PATH` / a plain path, or `postgres://…` (with a
/// pool of 8 connections).
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    open_with(url, 8).await
}

/// [`open`] with `pool` PostgreSQL connections (SQLite uses one connection whatever `pool`).
/// The audit chain is unkeyed: see [`open_keyed`].
pub async fn open_with(url: &str, pool: usize) -> Result<Arc<dyn Store>> {
    open_keyed(url, pool, AuditSetup::default()).await
}

/// [`open_with`], with the audit chain keyed and anchored as `audit` says: events are appended
/// with keyed hashes, the checkpoint file is kept, and [`Store::check_audit`] checks both.
/// The node opens its store this way (`originlink_node::audit::open_store`).
pub async fn open_keyed(url: &str, pool: usize, audit: AuditSetup) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url, pool).await?.with_audit(audit)))
    } else {
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if path.is_empty() {
            return Err(StoreError::Url("empty sqlite path".into()));
        }
        Ok(Arc::new(sqlite::SqliteStore::open(path).await?.with_audit(audit)))
    }
}
