//! What an administrator oversees besides users and the exchange: the audit log (a page of it,
//! the check of the whole chain) and when the node's certificates expire.

use chrono::{DateTime, Utc};
use originlink_store::{AuditEvent, Broken, Verified};
use serde::Serialize;

use super::{AppState, Result};

/// One page of the audit log, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    /// The chain's head (its last event's number).
    pub head: i64,
    /// The events, newest first.
    pub events: Vec<AuditEvent>,
    /// The `before` of the next (older) page, when there is one.
    pub next: Option<i64>,
}

/// `size` events below `before` (newest first; the newest ones without it).
pub async fn audit_page(state: &AppState, before: Option<i64>, size: i64) -> Result<AuditPage> {
    let (head, _) = state.store.audit_head().await?;
    let up_to = before.map(|b| b - 1).unwrap_or(head).min(head);
    let after = (up_to - size).max(0);
    let mut events = state.store.audit_events(after, up_to, size).await?;
    events.reverse();
    Ok(AuditPage { head, events, next: (after > 0).then_some(after + 1) })
}

/// Checks the whole chain against its key and checkpoint, a thousand events at a time.
pub async fn verify_audit(state: &AppState) -> Result<std::result::Result<Verified, Broken>> {
    Ok(state.store.check_audit(1000).await?)
}

/// A certificate of the authority's key folder and when it expires.
#[derive(Debug, Clone, Serialize)]
pub struct KeyCertificate {
    /// The file's name (`signing.crt`, `tls.crt`, …).
    pub file: String,
    /// Its subject.
    pub subject: String,
    /// Its serial number, hex.
    pub serial: String,
    /// notAfter (RFC 3339).
    pub not_after: String,
    /// Days left at the node's clock (negative: expired).
    pub days_left: i64,
}

/// Every certificate (`*.crt`) in the authority's key folder, by file name; unreadable files
/// are left out.
pub fn key_certificates(state: &AppState) -> Vec<KeyCertificate> {
    let now = state.clock.now();
    let mut files: Vec<_> = std::fs::read_dir(&state.issuer.authority.keys)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "crt"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .filter_map(|path| {
            let certs = originlink_trust::keystore::load_certs(path).ok()?;
            let c = certs.first()?;
            let not_after = DateTime::<Utc>::from_timestamp(c.not_after(), 0).unwrap_or_default();
            Some(KeyCertificate {
                file: path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(),
                subject: c.subject().to_owned(),
                serial: c.serial_hex(),
                not_after: not_after.to_rfc3339(),
                days_left: (not_after - now).num_days(),
            })
        })
        .collect()
}
