//! Schema migrations: one `.sql` file per version and backend under `migrations/<backend>/`
//! (`V<n>__<name>.sql`, embedded at build time), applied in order by the one runner below.
//!
//! A migration is never edited once released; add a new one. Applied versions are recorded in
//! `schema_migrations(version)`, the table every release of the store has kept, so a database
//! created by any earlier release is recognised as it is: nothing is applied twice. The runner
//! works inside one transaction that the backend serializes (SQLite: `BEGIN IMMEDIATE`;
//! PostgreSQL: a transaction-scoped advisory lock, so replicas starting together wait for the
//! one that migrates).

use crate::Result;

/// One schema version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The version (1, 2, ...).
    pub version: i64,
    /// The SQL, as in its file.
    pub sql: &'static str,
}

macro_rules! migrations {
    ($dir:literal: $($v:literal => $file:literal),* $(,)?) => {
        &[$(Migration { version: $v, sql: include_str!(concat!("../migrations/", $dir, "/", $file)) }),*]
    };
}

/// The SQLite schema, in order.
pub(crate) const SQLITE: &[Migration] = migrations!("sqlite":
    1 => "V1__init.sql",
    2 => "V2__exchange.sql",
    3 => "V3__customs.sql",
    4 => "V4__recipients.sql",
    5 => "V5__importer_key.sql",
    6 => "V6__user_admin.sql",
    7 => "V7__console_sign_in.sql",
    8 => "V8__revenue_columns.sql",
    9 => "V9__notifications.sql",
    10 => "V10__received_exporter.sql",
    11 => "V11__status_lists.sql",
    12 => "V12__search_index.sql",
    13 => "V13__toast.sql",
    14 => "V14__outbox_bodies.sql",
);

/// The PostgreSQL schema (the same as SQLite's), in order.
pub(crate) const POSTGRES: &[Migration] = migrations!("postgres":
    1 => "V1__init.sql",
    2 => "V2__exchange.sql",
    3 => "V3__customs.sql",
    4 => "V4__recipients.sql",
    5 => "V5__importer_key.sql",
    6 => "V6__user_admin.sql",
    7 => "V7__console_sign_in.sql",
    8 => "V8__revenue_columns.sql",
    9 => "V9__notifications.sql",
    10 => "V10__received_exporter.sql",
    11 => "V11__status_lists.sql",
    12 => "V12__search_index.sql",
    13 => "V13__toast.sql",
    14 => "V14__outbox_bodies.sql",
);

/// What migrating needs from a backend's open transaction.
pub(crate) trait MigrateTx {
    /// Serializes migrating processes until the transaction ends.
    async fn lock_schema(&mut self) -> Result<()>;
    /// Creates `schema_migrations` if missing.
    async fn create_bookkeeping(&mut self) -> Result<()>;
    /// Whether `version` is recorded as applied.
    async fn applied(&mut self, version: i64) -> Result<bool>;
    /// Runs a migration's SQL (several statements).
    async fn run_sql(&mut self, sql: &str) -> Result<()>;
    /// Records `version` as applied.
    async fn record(&mut self, version: i64) -> Result<()>;
}

/// The versions of `migrations` that `applied` (the versions recorded) lacks, in order: a
/// database nobody migrated lacks them all.
pub(crate) fn pending(migrations: &[Migration], applied: &[i64]) -> Vec<i64> {
    migrations.iter().map(|m| m.version).filter(|v| !applied.contains(v)).collect()
}

/// Applies the migrations not yet recorded, in order, inside the caller's transaction.
pub(crate) async fn run<T: MigrateTx>(tx: &mut T, migrations: &[Migration]) -> Result<()> {
    tx.lock_schema().await?;
    tx.create_bookkeeping().await?;
    for m in migrations {
        if !tx.applied(m.version).await? {
            tx.run_sql(m.sql).await?;
            tx.record(m.version).await?;
        }
    }
    Ok(())
}
