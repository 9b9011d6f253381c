//! The audit checkpoint: the chain head anchored outside the database, in a small file the
//! node writes (by default `audit.checkpoint` in its key directory):
//!
//! ```json
//! {"format":"originlink-audit-checkpoint/1","seq":42,"hash":"hmac-sha256:…","at":"…","mac":"…"}
//! ```
//!
//! `seq`/`hash` are the head when it was written, `at` is the time of that event (the store
//! reads no clock), `mac` is HMAC-SHA256 over the JSON array `[format, seq, hash, at]` with a
//! key derived from the audit key ([`crate::audit::AuditKey`]). Whoever can edit the database
//! but not read the key can neither forge nor move it.
//!
//! It is written atomically (temporary file, fsync, rename, directory fsync) by
//! `write_current`: in the background after commits ([`crate::audit::CHECKPOINT_INTERVAL`]),
//! and when asked ([`crate::Store::checkpoint_audit`]: node start and shutdown, CLI writes). It
//! only ever moves forward along the chain: when the database head is behind it, or the event
//! it anchors has another hash, or the file is not valid, it is left as it is, as evidence, and
//! the refusal is logged; `originlink audit verify` reports it. A missing file is written anew.
//! With PostgreSQL every replica keeps its own checkpoint of the shared chain.

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::audit::{AuditKey, GENESIS};
use crate::{Result, Store, StoreError};

/// The format name in the file.
const FORMAT: &str = "originlink-audit-checkpoint/1";

/// A checkpoint: the chain head it anchors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The head's sequence number (0: the empty chain).
    pub seq: i64,
    /// The head's hash.
    pub hash: String,
    /// The time of the head event (empty for the empty chain).
    pub at: String,
}

/// A checkpoint file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The sequence number it claims, when it could be read.
    pub seq: Option<i64>,
    /// Why it cannot be used.
    pub why: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    format: String,
    seq: i64,
    hash: String,
    at: String,
    mac: String,
}

fn signed_bytes(seq: i64, hash: &str, at: &str) -> Vec<u8> {
    serde_json::to_vec(&(FORMAT, seq, hash, at)).unwrap_or_default()
}

impl Checkpoint {
    /// The file's bytes, MACed with `key`.
    pub fn encode(&self, key: &AuditKey) -> Vec<u8> {
        let mac = key.checkpoint_mac(&signed_bytes(self.seq, &self.hash, &self.at));
        let form = FileForm {
            format: FORMAT.into(),
            seq: self.seq,
            hash: self.hash.clone(),
            at: self.at.clone(),
            mac,
        };
        let mut out = serde_json::to_vec(&form).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Reads the file's bytes, checking the MAC with `key`.
    pub fn decode(bytes: &[u8], key: &AuditKey) -> Result<Checkpoint, Invalid> {
        let form: FileForm = serde_json::from_slice(bytes)
            .map_err(|e| Invalid { seq: None, why: format!("not a checkpoint ({e})") })?;
        let seq = Some(form.seq);
        if form.format != FORMAT {
            return Err(Invalid { seq, why: format!("unknown format {:?}", form.format) });
        }
        if !key.checkpoint_mac_ok(&signed_bytes(form.seq, &form.hash, &form.at), &form.mac) {
            return Err(Invalid { seq, why: "its MAC does not match this node's audit key".into() });
        }
        Ok(Checkpoint { seq: form.seq, hash: form.hash, at: form.at })
    }
}

/// Reads the checkpoint at `path` (`None`: there is none).
pub fn read(path: &Path, key: &AuditKey) -> Result<Option<Checkpoint>, Invalid> {
    let unreadable = |e: std::io::Error| Invalid { seq: None, why: format!("cannot be read ({e})") };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    // A checkpoint is about 200 bytes; never read more than a little of whatever is there.
    let mut bytes = Vec::new();
    file.take(64 * 1024).read_to_end(&mut bytes).map_err(unreadable)?;
    Checkpoint::decode(&bytes, key).map(Some)
}

/// Replaces the file at `path` with `bytes` atomically: a temporary file beside it, written
/// and fsync'd, renamed over it, then the directory fsync'd. Readers see the old file or the
/// new one, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name =
        path.file_name().ok_or_else(|| std::io::Error::other("the checkpoint path has no file name"))?;
    let tmp = path.with_file_name(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Writes the checkpoint of `store`'s current head, when the store has a key and a checkpoint
/// file and the head moved on along the chain the file anchors. Returns the sequence number
/// anchored (`None`: nothing anchored, see the log). Only I/O failures are errors.
pub(crate) async fn write_current<S: Store + ?Sized>(store: &S) -> Result<Option<i64>> {
    let chain = store.audit_chain();
    let (Some(key), Some(path)) = (chain.key(), chain.checkpoint_path()) else {
        return Ok(None);
    };
    let _writing = chain.writing.lock().await;
    chain.note_write();
    let shown = path.display();
    let refuse = |code: &str, what: String| {
        let why = format!("audit chain: {code}: {what}; the checkpoint is kept as evidence");
        // The background writer retries every second while writes go on: say it once.
        if chain.note_refusal(Some(&why)) {
            tracing::error!(checkpoint = %shown, "{why}");
        }
        Ok(None)
    };
    let old = match read(path, key) {
        Ok(old) => old,
        Err(bad) => return refuse("AUDIT_CHECKPOINT_INVALID", bad.why),
    };
    let Some((seq, hash)) = store.audit_head_row().await? else {
        return refuse("AUDIT_HEAD_MISSING", "the audit_head row is missing".into());
    };
    let event_at = |s: i64| async move {
        match s {
            0 => Ok(Some((GENESIS.to_owned(), String::new()))),
            s => Ok::<_, StoreError>(
                store.audit_events(s - 1, s, 1).await?.into_iter().next().map(|e| (e.hash, e.at)),
            ),
        }
    };
    if let Some(cp) = &old {
        if cp.seq > seq {
            return refuse(
                "AUDIT_TRUNCATED",
                format!("it anchors event {} but the head is event {seq}", cp.seq),
            );
        }
        if event_at(cp.seq).await?.is_none_or(|(h, _)| h != cp.hash) {
            return refuse(
                "AUDIT_CHECKPOINT_MISMATCH",
                format!("event {} is not the one it anchors", cp.seq),
            );
        }
        if cp.seq == seq {
            chain.note_refusal(None);
            return Ok(Some(seq));
        }
    }
    let at = match event_at(seq).await? {
        Some((h, at)) if h == hash => at,
        _ => return refuse("AUDIT_HEAD_MISMATCH", format!("the head names event {seq}, which is not there")),
    };
    let bytes = Checkpoint { seq, hash, at }.encode(key);
    let target = path.to_owned();
    tokio::task::spawn_blocking(move || write_atomically(&target, &bytes))
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
        .map_err(|e| StoreError::Backend(format!("audit checkpoint {shown}: {e}")))?;
    chain.note_refusal(None);
    if old.is_none() {
        tracing::info!(checkpoint = %shown, seq, "audit checkpoint created");
    }
    Ok(Some(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("originlink-checkpoint-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn round_trip_and_every_change_is_refused() {
        let key = AuditKey::new(&[1; 32]);
        let cp = Checkpoint {
            seq: 4,
            hash: format!("hmac-sha256:{}", "ab".repeat(32)),
            at: "2026-03-01T09:30:00Z".into(),
        };
        let bytes = cp.encode(&key);
        assert_eq!(Checkpoint::decode(&bytes, &key), Ok(cp.clone()));
        let text = String::from_utf8(bytes.clone()).expect("utf-8");
        for forged in
            [text.replace("\"seq\":4", "\"seq\":3"), text.replace("09:30", "09:31"), text.replace("ab", "cd")]
        {
            let bad = Checkpoint::decode(forged.as_bytes(), &key).expect_err("forged");
            assert!(bad.why.contains("MAC"), "{bad:?}");
        }
        let other = Checkpoint::decode(&bytes, &AuditKey::new(&[2; 32])).expect_err("another key");
        assert_eq!(other.seq, Some(4));
        assert_eq!(Checkpoint::decode(b"{}", &key).expect_err("junk").seq, None);
    }

    #[test]
    fn written_atomically_and_read_back() {
        let d = dir("write");
        let key = AuditKey::new(&[1; 32]);
        let path = d.join("audit.checkpoint");
        assert_eq!(read(&path, &key), Ok(None));
        for seq in [1, 2] {
            let cp = Checkpoint { seq, hash: "00".repeat(32), at: String::new() };
            write_atomically(&path, &cp.encode(&key)).expect("write");
            assert_eq!(read(&path, &key), Ok(Some(cp)));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        }
        // Nothing is left behind but the file.
        let names: Vec<_> = fs::read_dir(&d).expect("dir").map(|e| e.expect("entry").file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("audit.checkpoint")]);
        assert!(write_atomically(&d.join("missing/audit.checkpoint"), b"x").is_err());
        let _ = fs::remove_dir_all(&d);
    }
}
