//! The audit log as a keyed hash chain, anchored outside the database.
//!
//! # The chain
//! Each event's hash covers the previous event's hash and the event's canonical bytes:
//! `HMAC-SHA256(audit key, prev_hash || canonical)`, stored as `hmac-sha256:<hex>`. The audit
//! key is a 32-byte node secret kept in a file beside the node's other keys (`audit.key`); the
//! store gets it from its caller ([`crate::open_keyed`]), never reads key files itself. Without
//! the key nobody can recompute a hash, so an edited event cannot be made to look intact.
//!
//! Events written before the chain was keyed (by a store opened without a key, e.g. an older
//! release) keep their plain hash `SHA-256(prev_hash || canonical)` as 64 hex digits. Such
//! events may only form the beginning of the chain: the first keyed event covers the last
//! plain hash, and an unkeyed event after a keyed one is broken. A store opened without a key
//! writes plain hashes and refuses to append after a keyed event (`AUDIT_KEY_REQUIRED`). A
//! store opened with a key always writes keyed hashes.
//!
//! The chain head (last sequence number and hash, table `audit_head`) is kept apart, so
//! deleting the newest event is caught; every row past the head is reported too.
//!
//! # The anchor
//! An attacker with write access to the database could still delete the newest events and
//! move the head back, or rewrite the whole chain with plain hashes. So the head is also
//! anchored outside the database, in a checkpoint file ([`crate::checkpoint`]), MACed with the
//! same key. Verification compares them: a database head behind the checkpoint is
//! `AUDIT_TRUNCATED`; an event at the checkpoint's position with another hash is
//! `AUDIT_CHECKPOINT_MISMATCH`.
//!
//! Canonical bytes: the JSON array `[seq, at, actor, action, entity, before, after]`, with
//! `before`/`after` as the exact stored text. Both backends store text exactly, so the bytes
//! hashed at append time are the bytes re-hashed at verification.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ring::hmac;
use serde::Serialize;

use crate::{Result, Store, StoreError, hex};

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The prefix of a keyed hash (`hmac-sha256:` and 64 hex digits).
pub const KEYED: &str = "hmac-sha256:";

/// The node's audit key: a 32-byte secret. It keys the chain and, through a key derived from
/// it, the checkpoint. `Debug` never shows it.
#[derive(Clone)]
pub struct AuditKey {
    chain: hmac::Key,
    checkpoint: hmac::Key,
}

impl AuditKey {
    /// The key from its 32 secret bytes.
    pub fn new(secret: &[u8; 32]) -> Self {
        let chain = hmac::Key::new(hmac::HMAC_SHA256, secret);
        // A separate key for checkpoints, so no chain hash can ever pass for a checkpoint MAC.
        let derived = hmac::sign(&chain, b"originlink audit checkpoint key v1");
        AuditKey { chain, checkpoint: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()) }
    }

    /// The MAC of checkpoint bytes, as hex.
    pub(crate) fn checkpoint_mac(&self, bytes: &[u8]) -> String {
        hex(hmac::sign(&self.checkpoint, bytes).as_ref())
    }

    /// Whether `mac_hex` is the MAC of `bytes` (compared in constant time).
    pub(crate) fn checkpoint_mac_ok(&self, bytes: &[u8], mac_hex: &str) -> bool {
        crate::unhex(mac_hex).is_some_and(|mac| hmac::verify(&self.checkpoint, bytes, &mac).is_ok())
    }
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

/// One audit event: who did what, when, with the state before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub actor: String,
    /// What, e.g. `application.approved`.
    pub action: String,
    /// On what, e.g. `application/12`.
    pub entity: String,
    /// The state before, as JSON text (`null` for a creation).
    pub before: String,
    /// The state after, as JSON text.
    pub after: String,
    /// The previous event's hash.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

/// An event about to be appended (the backend fills in seq and the hashes).
#[derive(Debug, Clone)]
pub(crate) struct PendingEvent {
    pub action: &'static str,
    pub entity: String,
    pub before: String,
    pub after: String,
}

impl PendingEvent {
    pub(crate) fn new(action: &'static str, entity: String, before: String, after: String) -> Self {
        PendingEvent { action, entity, before, after }
    }
}

/// The canonical bytes of an event.
pub fn canonical(
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    entity: &str,
    before: &str,
    after: &str,
) -> Vec<u8> {
    serde_json::to_vec(&(seq, at, actor, action, entity, before, after)).unwrap_or_default()
}

/// The hash of an event after `prev_hash`: keyed (`hmac-sha256:<hex>`) with a key, the plain
/// SHA-256 hex of unkeyed chains without one. The one rule for appending and verifying.
pub fn chain_hash(key: Option<&AuditKey>, prev_hash: &str, canonical: &[u8]) -> String {
    match key {
        Some(k) => {
            let mut ctx = hmac::Context::with_key(&k.chain);
            ctx.update(prev_hash.as_bytes());
            ctx.update(canonical);
            format!("{KEYED}{}", hex(ctx.sign().as_ref()))
        }
        None => {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(prev_hash.as_bytes());
            ctx.update(canonical);
            hex(ctx.finish().as_ref())
        }
    }
}

/// Whether `h` has the form of a chain hash: 64 lower-case hex digits, optionally keyed.
fn well_formed(h: &str) -> bool {
    let digits = h.strip_prefix(KEYED).unwrap_or(h);
    digits.len() == 64 && digits.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Why the chain is broken (or cannot be checked), naming the event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at event {seq}: {reason}: {detail}")]
pub struct Broken {
    /// The sequence number of the first broken event (for a missing tail: the first missing;
    /// for a missing head: the newest event).
    pub seq: i64,
    /// What is wrong, a stable code: `AUDIT_HASH_MISMATCH`, `AUDIT_LINK_BROKEN`,
    /// `AUDIT_SEQ_GAP`, `AUDIT_HEAD_MISMATCH`, `AUDIT_HEAD_MISSING`, `AUDIT_EVENTS_PAST_HEAD`,
    /// `AUDIT_TRUNCATED`, `AUDIT_CHECKPOINT_MISMATCH`, `AUDIT_CHECKPOINT_INVALID`,
    /// `AUDIT_CHECKPOINT_MISSING`, or `AUDIT_KEY_REQUIRED` (not broken: cannot be checked).
    pub reason: &'static str,
    /// What was found, for people.
    pub detail: String,
}

impl Broken {
    pub(crate) fn new(seq: i64, reason: &'static str, detail: impl Into<String>) -> Self {
        Broken { seq, reason, detail: detail.into() }
    }

    /// Whether the chain could not be checked at all (no audit key for keyed events), rather
    /// than found broken.
    pub fn cannot_verify(&self) -> bool {
        self.reason == "AUDIT_KEY_REQUIRED"
    }

    /// What the operator should do next.
    pub fn advice(&self) -> &'static str {
        match self.reason {
            "AUDIT_HASH_MISMATCH" => {
                "the event was changed after it was written, or its hash was recomputed without the \
                 node's audit key. Compare it with a backup and restore it; if audit.key was replaced, \
                 put the original key back"
            }
            "AUDIT_LINK_BROKEN" => {
                "events were reordered, replaced or inserted. Restore audit_events from a backup and \
                 find out who could write to the database"
            }
            "AUDIT_SEQ_GAP" => {
                "the event was deleted. Restore it from a backup and find out who could write to the \
                 database"
            }
            "AUDIT_HEAD_MISMATCH" => {
                "the newest events were deleted, or the head row edited. Restore the database from a \
                 backup"
            }
            "AUDIT_HEAD_MISSING" => {
                "the audit_head row was deleted; the node refuses to write until it is back. Restore \
                 it from a backup (it holds the newest event's seq and hash)"
            }
            "AUDIT_EVENTS_PAST_HEAD" => {
                "rows were added to audit_events after the recorded head; the node never writes them \
                 (it moves the head in the same transaction) and refuses to write while they are \
                 there. Keep a copy as evidence, then delete the rows from this seq on"
            }
            "AUDIT_TRUNCATED" => {
                "the newest events were deleted and the head moved back. Restore the database from a \
                 backup at least as new as the checkpoint"
            }
            "AUDIT_CHECKPOINT_MISMATCH" => {
                "the event anchored by the checkpoint is not the one the node wrote: the chain was \
                 rewritten. Restore the database from a backup"
            }
            "AUDIT_CHECKPOINT_INVALID" => {
                "the checkpoint file is damaged, forged, or was written with another audit key. Check \
                 that audit.key is this node's, then restore the checkpoint from a backup"
            }
            "AUDIT_CHECKPOINT_MISSING" => {
                "the checkpoint file is gone, so a truncated tail would go unnoticed. Restore it from \
                 a backup; otherwise the node writes a new one at its next write, anchoring the chain \
                 as it is now"
            }
            "AUDIT_KEY_REQUIRED" => {
                "the chain is keyed; check it with the node's audit key (`originlink audit verify \
                 --config node.toml` reads it from the key directory)"
            }
            _ => "restore the database from a backup",
        }
    }
}

/// What a successful check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The number of events checked.
    pub events: u64,
    /// The first keyed event (`None`: the chain has none, it was written without a key).
    pub keyed_from: Option<i64>,
    /// The event the checkpoint anchors (`None`: no checkpoint was checked).
    pub checkpoint: Option<i64>,
}

/// Checks a chain incrementally, event by event in seq order, so a long log is verified in
/// pages without holding it in memory.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    key: Option<AuditKey>,
    prev: String,
    expected_seq: i64,
    keyed_from: Option<i64>,
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck::new(None)
    }
}

impl ChainCheck {
    /// A check with the audit key (`None`: only unkeyed chains can be checked).
    pub fn new(key: Option<AuditKey>) -> Self {
        ChainCheck { key, prev: GENESIS.to_owned(), expected_seq: 1, keyed_from: None }
    }

    /// Checks the next event.
    pub fn feed(&mut self, e: &AuditEvent) -> Result<(), Broken> {
        if e.seq != self.expected_seq {
            // A deleted event shows as a gap; name the first missing position.
            let seq = self.expected_seq;
            return Err(Broken::new(
                seq,
                "AUDIT_SEQ_GAP",
                format!("event {seq} is missing; the next is {}", e.seq),
            ));
        }
        if e.prev_hash != self.prev {
            return Err(Broken::new(
                e.seq,
                "AUDIT_LINK_BROKEN",
                format!("its prev_hash is not the hash of event {}", e.seq - 1),
            ));
        }
        let keyed = e.hash.starts_with(KEYED);
        let key = match (keyed, &self.key) {
            (true, None) => {
                return Err(Broken::new(
                    e.seq,
                    "AUDIT_KEY_REQUIRED",
                    "the event has a keyed hash; no audit key given",
                ));
            }
            (true, Some(k)) => Some(k),
            (false, _) if self.keyed_from.is_some() => {
                return Err(Broken::new(
                    e.seq,
                    "AUDIT_HASH_MISMATCH",
                    "an unkeyed hash after keyed events: recomputed without the audit key",
                ));
            }
            (false, _) => None,
        };
        let c = canonical(e.seq, &e.at, &e.actor, &e.action, &e.entity, &e.before, &e.after);
        if chain_hash(key, &self.prev, &c) != e.hash {
            return Err(Broken::new(e.seq, "AUDIT_HASH_MISMATCH", "its hash does not match its content"));
        }
        if keyed && self.keyed_from.is_none() {
            self.keyed_from = Some(e.seq);
        }
        self.prev = e.hash.clone();
        self.expected_seq += 1;
        Ok(())
    }

    /// The newest event checked so far (0: none).
    pub fn last_seq(&self) -> i64 {
        self.expected_seq - 1
    }

    /// The first keyed event checked so far.
    pub fn keyed_from(&self) -> Option<i64> {
        self.keyed_from
    }

    /// Ends the check against the chain head; returns the number of events checked.
    pub fn finish(self, head: &(i64, String)) -> Result<u64, Broken> {
        let last = self.last_seq();
        if head.0 != last || head.1 != self.prev {
            // The newest events were removed (or the head was edited).
            return Err(Broken::new(
                last + 1,
                "AUDIT_HEAD_MISMATCH",
                format!("the head names event {} but the events end at {last}", head.0),
            ));
        }
        Ok(last as u64)
    }
}

/// Verifies `events` (in seq order) of an unkeyed chain against the chain head. Returns the
/// number of events.
pub fn verify(events: &[AuditEvent], head: &(i64, String)) -> Result<u64, Broken> {
    let mut check = ChainCheck::default();
    for e in events {
        check.feed(e)?;
    }
    check.finish(head)
}

/// Hashes the events a backend appends after the head: the one appending rule both backends
/// use. Refuses a missing or malformed head, and an unkeyed store appending to a keyed chain.
pub(crate) struct Appender<'a> {
    key: Option<&'a AuditKey>,
    seq: i64,
    prev: String,
}

impl<'a> Appender<'a> {
    /// Starts after `head` (`None`: the head row is missing).
    pub(crate) fn after(chain: &'a Chain, head: Option<(i64, String)>) -> Result<Self> {
        let Some((seq, prev)) = head else {
            return Err(refusal("AUDIT_HEAD_MISSING", "the audit_head row is missing"));
        };
        if !well_formed(&prev) {
            return Err(refusal(
                "AUDIT_HEAD_MISMATCH",
                &format!("the head hash of event {seq} is malformed"),
            ));
        }
        if chain.key().is_none() && prev.starts_with(KEYED) {
            return Err(refusal("AUDIT_KEY_REQUIRED", "the chain is keyed and this store has no audit key"));
        }
        Ok(Appender { key: chain.key(), seq, prev })
    }

    /// The next event: `(seq, prev_hash, hash)`.
    pub(crate) fn next(&mut self, at: &str, actor: &str, e: &PendingEvent) -> (i64, String, String) {
        self.seq += 1;
        let c = canonical(self.seq, at, actor, e.action, &e.entity, &e.before, &e.after);
        let hash = chain_hash(self.key, &self.prev, &c);
        let prev = std::mem::replace(&mut self.prev, hash.clone());
        (self.seq, prev, hash)
    }

    /// The new head.
    pub(crate) fn head(&self) -> (i64, &str) {
        (self.seq, &self.prev)
    }
}

/// What appending to the chain needs from a backend's open transaction.
pub(crate) trait AuditTx {
    /// The chain the transaction appends to (its key).
    fn chain(&self) -> &Chain;
    /// The head row, `(seq, hash)`, locked for update where the backend locks: the head lock
    /// is taken last and orders all appenders.
    async fn audit_head(&mut self) -> Result<Option<(i64, String)>>;
    /// Inserts events; `Some(seq)` when that seq is taken (a row past the head).
    async fn insert_events(&mut self, rows: &[EventRow<'_>]) -> Result<Option<i64>>;
    /// Moves the head.
    async fn set_audit_head(&mut self, seq: i64, hash: &str) -> Result<()>;
}

/// One event as inserted.
#[derive(Debug)]
pub(crate) struct EventRow<'a> {
    pub seq: i64,
    pub at: &'a str,
    pub actor: &'a str,
    pub event: &'a PendingEvent,
    pub prev_hash: String,
    pub hash: String,
}

/// Appends `events` inside the caller's transaction, after the head, and moves the head: how
/// every change is audited in the transaction that makes it.
pub(crate) async fn append<T: AuditTx>(tx: &mut T, ctx: &crate::Ctx, events: &[PendingEvent]) -> Result<()> {
    let each: Vec<(&crate::Ctx, &PendingEvent)> = events.iter().map(|e| (ctx, e)).collect();
    append_each(tx, &each).await
}

/// [`append`] with each event's own actor and time (a batch of approvals): one read of the
/// head, the events, one move of the head.
pub(crate) async fn append_each<T: AuditTx>(
    tx: &mut T,
    events: &[(&crate::Ctx, &PendingEvent)],
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let head = tx.audit_head().await?;
    let ats: Vec<String> = events.iter().map(|(ctx, _)| crate::timestamp(&ctx.at)).collect();
    let mut links = Appender::after(tx.chain(), head)?;
    let rows: Vec<EventRow<'_>> = events
        .iter()
        .zip(&ats)
        .map(|((ctx, e), at)| {
            let (seq, prev_hash, hash) = links.next(at, &ctx.actor, e);
            EventRow { seq, at, actor: &ctx.actor, event: e, prev_hash, hash }
        })
        .collect();
    let (seq, hash) = links.head();
    let hash = hash.to_owned();
    if let Some(taken) = tx.insert_events(&rows).await? {
        return Err(past_head(taken));
    }
    tx.set_audit_head(seq, &hash).await
}

/// The error of an append refused because the chain is damaged: storage is unavailable (503)
/// until an operator repairs it, and the log says why.
fn refusal(code: &str, what: &str) -> StoreError {
    StoreError::Backend(format!(
        "audit chain: {code}: {what}; refusing to write. Run `originlink audit verify --config node.toml`"
    ))
}

/// The error of an append whose event already exists: a row past the recorded head.
fn past_head(seq: i64) -> StoreError {
    refusal("AUDIT_EVENTS_PAST_HEAD", &format!("event {seq} exists past the recorded head"))
}

/// What keys and anchors a store's audit chain: the audit key and the checkpoint file.
#[derive(Debug, Clone, Default)]
pub struct AuditSetup {
    /// The audit key (`None`: unkeyed, as stores were before keys; such a store cannot append
    /// to a keyed chain).
    pub key: Option<AuditKey>,
    /// The checkpoint file (`None`: no anchor). Only written and checked with a key.
    pub checkpoint: Option<PathBuf>,
}

/// Checkpoints are written at most this often by the background writer (explicit
/// [`crate::Store::checkpoint_audit`] calls, e.g. at shutdown, are not limited).
///
/// Why not after every commit: a checkpoint is an fsync'd file write (temp file, fsync,
/// rename, directory fsync), several milliseconds, while an approval on SQLite takes about one
/// (its commits are not fsync'd, `synchronous=NORMAL`). Writing one after each commit would cost
/// more than the commit itself and contend with the database's own I/O. Once a second costs
/// nothing measurable, and the anchor lags the head by at most a second: events committed in
/// the last second before a crash are not anchored yet, and a checkpoint lagging the head is
/// never an error. The node also writes it at start and at shutdown, and the CLI after its own
/// writes.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// A store's audit chain setup plus the state of its checkpoint writer. Shared by the store's
/// clones.
#[derive(Debug, Default)]
pub struct Chain {
    setup: AuditSetup,
    /// Serializes checkpoint writes in this process.
    pub(crate) writing: tokio::sync::Mutex<()>,
    /// A background write is scheduled.
    scheduled: AtomicBool,
    /// When the last checkpoint write started.
    last_write: std::sync::Mutex<Option<Instant>>,
    /// Why the last checkpoint write was refused, if it was (logged once, not every second).
    refused: std::sync::Mutex<Option<String>>,
}

impl Chain {
    /// A chain keyed and anchored as `setup` says.
    pub fn new(setup: AuditSetup) -> Self {
        Chain { setup, ..Chain::default() }
    }

    /// The audit key.
    pub fn key(&self) -> Option<&AuditKey> {
        self.setup.key.as_ref()
    }

    /// The checkpoint file, when there is one and a key to MAC it with.
    pub fn checkpoint_path(&self) -> Option<&std::path::Path> {
        self.setup.key.as_ref().and(self.setup.checkpoint.as_deref())
    }

    /// Notes that a checkpoint write starts now.
    pub(crate) fn note_write(&self) {
        *self.last_write.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// Notes the outcome of a checkpoint write (`Some`: refused, why); true when it differs
    /// from the last one, i.e. worth logging.
    pub(crate) fn note_refusal(&self, why: Option<&str>) -> bool {
        let mut last = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        let changed = last.as_deref() != why;
        *last = why.map(str::to_owned);
        changed
    }

    /// Called by the backends after every committed write transaction: schedules a background
    /// checkpoint write, at most one per [`CHECKPOINT_INTERVAL`], unless one is scheduled. The
    /// writer reads the committed head itself, so the call costs nothing on the write path.
    pub(crate) fn after_commit(&self, store: impl FnOnce() -> Arc<dyn Store>) {
        if self.checkpoint_path().is_none() || self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.scheduled.store(false, Ordering::Release);
            return;
        };
        let since = self.last_write.lock().unwrap_or_else(|p| p.into_inner()).map(|t| t.elapsed());
        let wait = since.map_or(Duration::ZERO, |s| CHECKPOINT_INTERVAL.saturating_sub(s));
        let store = store();
        rt.spawn(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            // Cleared before the head is read: a commit from now on schedules another write.
            store.audit_chain().scheduled.store(false, Ordering::Release);
            if let Err(e) = crate::checkpoint::write_current(store.as_ref()).await {
                tracing::warn!(error = %e, "audit checkpoint not written");
            }
        });
    }
}

/// Checks the whole chain of `store`, reading `page` events at a time: every event, the head,
/// the rows past the head, and the head against the checkpoint.
pub(crate) async fn check<S: Store + ?Sized>(store: &S, page: i64) -> Result<Result<Verified, Broken>> {
    let chain = store.audit_chain();
    let page_size = page.max(1);
    // The checkpoint first. It only ever anchors a head that was committed before it was
    // written, so read before the head it is never ahead of an intact database, whatever
    // commits meanwhile.
    let anchored = match (chain.key(), chain.checkpoint_path()) {
        (Some(key), Some(path)) => match crate::checkpoint::read(path, key) {
            Ok(c) => c,
            Err(bad) => {
                return Ok(Err(Broken::new(
                    bad.seq.unwrap_or(0),
                    "AUDIT_CHECKPOINT_INVALID",
                    format!("{}: {}", path.display(), bad.why),
                )));
            }
        },
        _ => None,
    };
    let head = store.audit_head_row().await?;
    // Without a head, check every event there is.
    let up_to = head.as_ref().map_or(i64::MAX, |h| h.0);
    let mut walk = ChainCheck::new(chain.key().cloned());
    let mut after = i64::MIN;
    loop {
        let page = store.audit_events(after, up_to, page_size).await?;
        for e in &page {
            if let Err(b) = walk.feed(e) {
                return Ok(Err(b));
            }
        }
        match page.last() {
            Some(last) if page.len() as i64 == page_size => after = last.seq,
            _ => break,
        }
    }
    let Some(head) = head else {
        let newest = walk.last_seq();
        return Ok(Err(Broken::new(
            newest,
            "AUDIT_HEAD_MISSING",
            format!("the audit_head row is missing; the events end at {newest}"),
        )));
    };
    let keyed_from = walk.keyed_from();
    let events = match walk.finish(&head) {
        Ok(n) => n,
        Err(b) => return Ok(Err(b)),
    };
    if let Some(stray) = store.audit_events(head.0, i64::MAX, 1).await?.first() {
        // A commit between the two reads adds events and moves the head together: read the
        // head again before calling the rows stray.
        let now = store.audit_head_row().await?;
        if now.is_none_or(|h| h.0 < stray.seq) {
            return Ok(Err(Broken::new(
                stray.seq,
                "AUDIT_EVENTS_PAST_HEAD",
                format!("the recorded head is event {}, yet event {} exists", head.0, stray.seq),
            )));
        }
    }
    let path = chain.checkpoint_path().map(|p| p.display().to_string()).unwrap_or_default();
    match &anchored {
        Some(cp) if cp.seq > head.0 => {
            return Ok(Err(Broken::new(
                head.0 + 1,
                "AUDIT_TRUNCATED",
                format!(
                    "the checkpoint {path} anchors event {} ({}); the database ends at event {}",
                    cp.seq, cp.at, head.0
                ),
            )));
        }
        Some(cp) => {
            let found = match cp.seq {
                0 => Some(GENESIS.to_owned()),
                s => store.audit_events(s - 1, s, 1).await?.into_iter().next().map(|e| e.hash),
            };
            if found.as_deref() != Some(cp.hash.as_str()) {
                return Ok(Err(Broken::new(
                    cp.seq,
                    "AUDIT_CHECKPOINT_MISMATCH",
                    format!("the checkpoint {path} anchors another hash for event {} ({})", cp.seq, cp.at),
                )));
            }
        }
        None if chain.checkpoint_path().is_some() && head.0 > 0 => {
            return Ok(Err(Broken::new(
                head.0,
                "AUDIT_CHECKPOINT_MISSING",
                format!("no checkpoint at {path}; the database has {} events", head.0),
            )));
        }
        None => {}
    }
    Ok(Ok(Verified { events, keyed_from, checkpoint: anchored.map(|c| c.seq) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> AuditKey {
        AuditKey::new(&[b; 32])
    }

    fn chain_with(key: Option<&AuditKey>, n: i64) -> (Vec<AuditEvent>, (i64, String)) {
        let mut prev = GENESIS.to_owned();
        let mut out = vec![];
        for seq in 1..=n {
            let (at, actor, action, entity) = ("2026-01-01T00:00:00Z", "a", "x.created", format!("x/{seq}"));
            let h = chain_hash(key, &prev, &canonical(seq, at, actor, action, &entity, "null", "{}"));
            out.push(AuditEvent {
                seq,
                at: at.into(),
                actor: actor.into(),
                action: action.into(),
                entity,
                before: "null".into(),
                after: "{}".into(),
                prev_hash: prev.clone(),
                hash: h.clone(),
            });
            prev = h;
        }
        (out, (n, prev))
    }

    fn chain(n: i64) -> (Vec<AuditEvent>, (i64, String)) {
        chain_with(None, n)
    }

    fn check_with(
        key: Option<&AuditKey>,
        events: &[AuditEvent],
        head: &(i64, String),
    ) -> Result<u64, Broken> {
        let mut c = ChainCheck::new(key.cloned());
        for e in events {
            c.feed(e)?;
        }
        c.finish(head)
    }

    fn what(r: Result<u64, Broken>) -> (i64, &'static str) {
        let b = r.expect_err("broken");
        (b.seq, b.reason)
    }

    /// Recomputes the hashes from `from` on, as someone holding `key` (or none) would.
    fn rehash(events: &mut [AuditEvent], from: usize, key: Option<&AuditKey>) -> (i64, String) {
        for i in from..events.len() {
            let prev = if i == 0 { GENESIS.to_owned() } else { events[i - 1].hash.clone() };
            let e = &events[i];
            let h = chain_hash(
                key,
                &prev,
                &canonical(e.seq, &e.at, &e.actor, &e.action, &e.entity, &e.before, &e.after),
            );
            events[i].prev_hash = prev;
            events[i].hash = h;
        }
        let last = events.last().expect("events");
        (last.seq, last.hash.clone())
    }

    #[test]
    fn intact_chain_verifies() {
        let (ev, head) = chain(5);
        assert_eq!(verify(&ev, &head), Ok(5));
        assert_eq!(verify(&[], &(0, GENESIS.into())), Ok(0));
        let k = key(1);
        let (ev, head) = chain_with(Some(&k), 5);
        assert!(ev.iter().all(|e| e.hash.starts_with(KEYED) && well_formed(&e.hash)));
        assert_eq!(check_with(Some(&k), &ev, &head), Ok(5));
    }

    #[test]
    fn each_kind_of_damage_names_the_event() {
        let (ev, head) = chain(5);
        let mut changed = ev.clone();
        changed[2].after = "{\"status\":\"x\"}".into();
        assert_eq!(what(verify(&changed, &head)), (3, "AUDIT_HASH_MISMATCH"));
        let mut deleted = ev.clone();
        deleted.remove(1);
        assert_eq!(what(verify(&deleted, &head)), (2, "AUDIT_SEQ_GAP"));
        let mut tail = ev.clone();
        tail.pop();
        assert_eq!(what(verify(&tail, &head)), (5, "AUDIT_HEAD_MISMATCH"));
        let mut swapped = ev.clone();
        swapped.swap(1, 2);
        swapped[1].seq = 2;
        swapped[2].seq = 3;
        assert_eq!(what(verify(&swapped, &head)), (2, "AUDIT_LINK_BROKEN"));
    }

    #[test]
    fn a_keyed_chain_cannot_be_recomputed_without_the_key() {
        let k = key(1);
        let (ev, _) = chain_with(Some(&k), 4);
        for (forger, from) in [(None, 1), (Some(key(2)), 1), (Some(key(2)), 0)] {
            let mut forged = ev.clone();
            forged[1].actor = "mallory".into();
            let head = rehash(&mut forged, from, forger.as_ref());
            let expect = if from == 0 { 1 } else { 2 };
            assert_eq!(
                what(check_with(Some(&k), &forged, &head)),
                (expect, "AUDIT_HASH_MISMATCH"),
                "{forger:?}"
            );
        }
        // Without the key a keyed chain cannot be checked at all.
        let (ev, head) = chain_with(Some(&k), 2);
        assert_eq!(what(check_with(None, &ev, &head)), (1, "AUDIT_KEY_REQUIRED"));
    }

    #[test]
    fn unkeyed_events_may_only_come_first() {
        let k = key(1);
        // Two unkeyed events, then two keyed ones: an upgraded database.
        let (mut ev, _) = chain(4);
        let head = rehash(&mut ev, 2, Some(&k));
        let mut c = ChainCheck::new(Some(k.clone()));
        for e in &ev {
            c.feed(e).expect("intact");
        }
        assert_eq!(c.keyed_from(), Some(3));
        assert_eq!(c.finish(&head), Ok(4));
        // An unkeyed event after a keyed one was recomputed without the key.
        let mut downgraded = ev.clone();
        let head = rehash(&mut downgraded, 3, None);
        assert_eq!(what(check_with(Some(&k), &downgraded, &head)), (4, "AUDIT_HASH_MISMATCH"));
    }

    #[test]
    fn appending_follows_the_same_rule() {
        let k = key(1);
        let keyed = Chain::new(AuditSetup { key: Some(k.clone()), checkpoint: None });
        let e = PendingEvent::new("x.created", "x/1".into(), "null".into(), "{}".into());
        let mut a = Appender::after(&keyed, Some((0, GENESIS.into()))).expect("head");
        let (seq, prev, hash) = a.next("2026-01-01T00:00:00Z", "a", &e);
        assert_eq!((seq, prev.as_str()), (1, GENESIS));
        let (expected, _) = chain_with(Some(&k), 1);
        assert_eq!(hash, expected[0].hash);
        assert_eq!(a.head(), (1, hash.as_str()));
        // An unkeyed store refuses to append to a keyed chain; nobody appends after a bad head.
        let unkeyed = Chain::default();
        let refused = |r: Result<Appender<'_>>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused(Appender::after(&unkeyed, Some((1, hash)))).contains("AUDIT_KEY_REQUIRED"));
        assert!(refused(Appender::after(&keyed, None)).contains("AUDIT_HEAD_MISSING"));
        assert!(refused(Appender::after(&keyed, Some((1, "x".into())))).contains("AUDIT_HEAD_MISMATCH"));
        assert!(past_head(7).to_string().contains("AUDIT_EVENTS_PAST_HEAD: event 7"));
    }

    #[test]
    fn every_code_has_advice_and_the_key_is_not_printed() {
        for code in [
            "AUDIT_HASH_MISMATCH",
            "AUDIT_LINK_BROKEN",
            "AUDIT_SEQ_GAP",
            "AUDIT_HEAD_MISMATCH",
            "AUDIT_HEAD_MISSING",
            "AUDIT_EVENTS_PAST_HEAD",
            "AUDIT_TRUNCATED",
            "AUDIT_CHECKPOINT_MISMATCH",
            "AUDIT_CHECKPOINT_INVALID",
            "AUDIT_CHECKPOINT_MISSING",
            "AUDIT_KEY_REQUIRED",
        ] {
            let b = Broken::new(1, code, "");
            assert_ne!(b.advice(), Broken::new(1, "OTHER", "").advice(), "{code}");
        }
        assert_eq!(format!("{:?}", key(7)), "AuditKey(..)");
    }
}
