//! The audit chain's files and opening storage with them.
//!
//! The store keys its audit chain with a 32-byte node secret and anchors the chain head in a
//! checkpoint file (`originlink_store::audit`, `originlink_store::checkpoint`); the node says
//! where they are (`[audit]`, default `audit.key` and `audit.checkpoint` in the authority's key
//! directory). The key is read through `originlink_trust::keystore`, like every key: created
//! with mode 0600 on first use, refused when group or others can read it.

use std::path::PathBuf;
use std::sync::Arc;

use originlink_store::{AuditKey, AuditSetup, Store};

use crate::{Config, StartError};

/// The audit key file.
pub fn key_path(config: &Config) -> PathBuf {
    config.audit.key.clone().unwrap_or_else(|| config.authority.keys.join("audit.key"))
}

/// The audit checkpoint file.
pub fn checkpoint_path(config: &Config) -> PathBuf {
    config.audit.checkpoint.clone().unwrap_or_else(|| config.authority.keys.join("audit.checkpoint"))
}

/// The store's audit setup: the key, and the checkpoint file. `create`: make the key when it
/// does not exist (a node, and the commands that write); otherwise a missing key leaves the
/// chain unkeyed, so `audit verify` can say what it cannot check.
pub fn setup(config: &Config, create: bool) -> Result<AuditSetup, originlink_trust::Error> {
    let path = key_path(config);
    let key = if create {
        Some(originlink_trust::keystore::load_or_create_secret(&path)?)
    } else if path.exists() {
        Some(originlink_trust::keystore::load_secret(&path)?)
    } else {
        None
    };
    Ok(AuditSetup { key: key.as_ref().map(AuditKey::new), checkpoint: Some(checkpoint_path(config)) })
}

/// Opens the node's storage with its audit key (created on first use) and checkpoint.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    let audit = setup(config, true)?;
    Ok(originlink_store::open_keyed(config.database.url.expose(), config.database.pool_size, audit).await?)
}

/// [`open_store`], for a node or a command that uses the schema: with `[database]
/// auto_migrate` the pending migrations are applied (and the checkpoint written); otherwise a
/// database with any pending is refused with `DATABASE_NOT_MIGRATED`, naming the command to
/// run (`originlink node migrate`).
pub async fn open_migrated(config: &Config) -> Result<Arc<dyn Store>, StartError> {
    let store = open_store(config).await?;
    if config.database.auto_migrate {
        store.migrate().await?;
        store.checkpoint_audit().await?;
        return Ok(store);
    }
    let pending = store.pending_migrations().await?;
    if !pending.is_empty() {
        return Err(StartError::NotMigrated { pending });
    }
    Ok(store)
}
