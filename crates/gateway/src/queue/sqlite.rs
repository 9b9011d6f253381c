//! The SQLite queue: one file in WAL mode, one connection used from tokio's blocking pool,
//! and the envelope bodies in append-only segment files beside it ([`super::segments`]), so
//! that the write-ahead log carries only the small rows of the queue's index and state.
//!
//! Durability: a batch's bodies are written and `fdatasync`ed before the rows naming them are
//! committed with `synchronous = FULL`, so every accepted batch is on disk before the gateway
//! answers. Throughput comes from batching, not from relaxing durability: a batch of
//! envelopes is one transaction, and batches that arrive while one is being committed are
//! committed together (group commit: one write and two syncs for all of them).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::segments::{BodyRef, Segments};
use super::{
    CertificateRef, Claimed, ManifestBody, MinuteCounts, NewMessage, NewOperatorSession, OperatorSession,
    Outcome, Queue, QueueError, RecipientStats, Result, Settle, State, Tracking, from_micros, lease_end,
    micros,
};

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE gateway_queue (
  id TEXT PRIMARY KEY,
  sender TEXT NOT NULL,
  recipient TEXT NOT NULL,
  kind TEXT NOT NULL,
  envelope BLOB NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_until INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  received_at INTEGER NOT NULL,
  delivered_at INTEGER
);
CREATE INDEX gateway_queue_due ON gateway_queue(recipient, next_attempt_at) WHERE state = 'pending';
CREATE INDEX gateway_queue_dead ON gateway_queue(received_at) WHERE state = 'failed';
"#,
    ),
    (2, super::V2_OPERATOR),
    (3, super::V3_RETENTION),
    (4, super::V4_MANIFESTS),
    (
        5,
        r#"
ALTER TABLE gateway_queue ADD COLUMN body_segment INTEGER;
ALTER TABLE gateway_queue ADD COLUMN body_offset INTEGER;
ALTER TABLE gateway_queue ADD COLUMN body_len INTEGER;
CREATE INDEX gateway_queue_segment ON gateway_queue(body_segment) WHERE body_segment IS NOT NULL;
"#,
    ),
];

/// Retention on SQLite: [`super::PURGE_SQL`], also forgetting where the body was (its segment
/// is deleted once no row names it).
const PURGE_SQL: &str = "UPDATE gateway_queue SET envelope = ?1, purged_at = ?2, body_segment = NULL, \
     body_offset = NULL, body_len = NULL WHERE id IN \
     (SELECT id FROM gateway_queue WHERE state = 'delivered' AND purged_at IS NULL AND delivered_at < ?3 \
     ORDER BY delivered_at LIMIT ?4)";

/// The connection and the segment files, used under one lock.
#[derive(Debug)]
struct Db {
    c: Connection,
    seg: Segments,
}

/// A batch waiting to be committed with the others that arrived meanwhile.
struct Job {
    messages: Vec<NewMessage>,
    manifests: Vec<ManifestBody>,
    at: i64,
    done: tokio::sync::oneshot::Sender<Result<Vec<bool>>>,
}

/// The SQLite queue.
#[derive(Clone)]
pub struct SqliteQueue {
    db: Arc<Mutex<Db>>,
    waiting: Arc<Mutex<Vec<Job>>>,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue").finish_non_exhaustive()
    }
}

fn db(e: rusqlite::Error) -> QueueError {
    QueueError::Backend(e.to_string())
}

impl From<rusqlite::Error> for QueueError {
    fn from(e: rusqlite::Error) -> Self {
        db(e)
    }
}

const TRACK_COLS: &str = "id, sender, recipient, kind, state, attempts, last_error, received_at, delivered_at, \
     cert_country, cert_number, purged_at, manifest";

fn tracking_row(r: &Row<'_>) -> rusqlite::Result<Tracking> {
    let state: String = r.get(4)?;
    Ok(Tracking {
        id: r.get(0)?,
        from: r.get(1)?,
        to: r.get(2)?,
        kind: r.get(3)?,
        state: State::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                4,
                rusqlite::types::Type::Text,
                format!("unknown state {state:?}").into(),
            )
        })?,
        attempts: r.get(5)?,
        error: r.get(6)?,
        received_at: from_micros(r.get(7)?),
        delivered_at: r.get::<_, Option<i64>>(8)?.map(from_micros),
        certificate: match (r.get::<_, Option<String>>(9)?, r.get::<_, Option<String>>(10)?) {
            (Some(country), Some(number)) => Some(CertificateRef { country, number }),
            _ => None,
        },
        purged_at: r.get::<_, Option<i64>>(11)?.map(from_micros),
        manifest: r.get(12)?,
    })
}

impl SqliteQueue {
    /// Opens (creating) the database file.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let conn = tokio::task::spawn_blocking(move || -> Result<Db> {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| QueueError::Backend(e.to_string()))?;
            }
            originlink_service::create_private(&path)
                .map_err(|e| QueueError::Backend(format!("{}: {e}", path.display())))?;
            let c = Connection::open(&path).map_err(db)?;
            c.busy_timeout(Duration::from_secs(10)).map_err(db)?;
            c.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
            c.pragma_update(None, "synchronous", "FULL").map_err(db)?;
            // Envelopes are kilobytes each: a memory map and a larger page cache save copying
            // every page out of the kernel when they are read back to be pushed.
            c.pragma_update(None, "mmap_size", 268_435_456i64).map_err(db)?;
            c.pragma_update(None, "cache_size", -32_768i64).map_err(db)?;
            c.set_prepared_statement_cache_capacity(32);
            let seg = Segments::open(&segments_dir(&path))
                .map_err(|e| QueueError::Backend(format!("{}: {e}", segments_dir(&path).display())))?;
            Ok(Db { c, seg })
        })
        .await
        .map_err(|e| QueueError::Backend(e.to_string()))??;
        Ok(SqliteQueue { db: Arc::new(Mutex::new(conn)), waiting: Arc::default() })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T> {
        self.run_db(move |d| f(&mut d.c).map_err(db)).await
    }

    async fn run_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut d = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut d)
        })
        .await
        .map_err(|e| QueueError::Backend(e.to_string()))?
    }

    /// Runs raw SQL (tests use it to inspect or tamper; operators must not).
    pub async fn execute_raw(&self, sql: &str) -> Result<usize> {
        let sql = sql.to_owned();
        self.run(move |c| c.execute(&sql, [])).await
    }
}

#[async_trait::async_trait]
impl Queue for SqliteQueue {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate_at(&self, now: DateTime<Utc>) -> Result<()> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute_batch("CREATE TABLE IF NOT EXISTS gateway_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")?;
            let done: i64 =
                tx.query_row("SELECT COALESCE(MAX(version), 0) FROM gateway_migrations", [], |r| r.get(0))?;
            for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > done) {
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO gateway_migrations (version, applied_at) VALUES (?1, ?2)",
                    params![v, now.to_rfc3339()],
                )?;
            }
            tx.commit()
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        self.run(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }

    async fn enqueue_with_manifests(
        &self,
        messages: Vec<NewMessage>,
        manifests: Vec<ManifestBody>,
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        let (done, answer) = tokio::sync::oneshot::channel();
        let job = Job { messages, manifests, at: micros(now), done };
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).push(job);
        let waiting = self.waiting.clone();
        // Whoever gets the connection first commits every batch waiting by then, this one
        // included unless an earlier holder already took it.
        self.run_db(move |d| {
            let jobs = std::mem::take(&mut *waiting.lock().unwrap_or_else(|p| p.into_inner()));
            if jobs.is_empty() {
                return Ok(());
            }
            let batches: Vec<_> = jobs.iter().map(|j| (&j.messages, &j.manifests, j.at)).collect();
            match commit_batches(d, &batches) {
                Ok(results) => {
                    for (job, r) in jobs.into_iter().zip(results) {
                        let _ = job.done.send(Ok(r));
                    }
                }
                Err(e) => {
                    for job in jobs {
                        let _ = job.done.send(Err(e.clone()));
                    }
                }
            }
            Ok(())
        })
        .await?;
        answer.await.map_err(|_| QueueError::Backend("the batch's commit was abandoned".into()))?
    }

    async fn segment_bytes(&self) -> Result<Option<u64>> {
        self.run_db(|d| {
            d.seg
                .bytes()
                .map(Some)
                .map_err(|e| QueueError::Backend(format!("{}: {e}", d.seg.dir().display())))
        })
        .await
    }

    async fn manifests(&self, sha256s: Vec<String>) -> Result<Vec<String>> {
        self.run(move |c| {
            let mut st = c.prepare_cached("SELECT body FROM gateway_manifests WHERE sha256 = ?1")?;
            let mut out = Vec::with_capacity(sha256s.len());
            for h in &sha256s {
                if let Some(b) = st.query_row(params![h], |r| r.get(0)).optional()? {
                    out.push(b);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn claim(
        &self,
        recipient: &str,
        max: usize,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<Claimed>> {
        let recipient = recipient.to_owned();
        let (now, until) = (micros(now), lease_end(now, lease));
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.run_db(move |d| {
            let tx = d.c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let rows: Vec<(i64, Claimed, Option<BodyRef>)> = {
                let mut st = tx.prepare_cached(
                    "UPDATE gateway_queue SET lease_until = ?3, next_attempt_at = ?3 WHERE rowid IN \
                     (SELECT rowid FROM gateway_queue WHERE recipient = ?1 AND state = 'pending' \
                      AND next_attempt_at <= ?2 ORDER BY next_attempt_at, rowid LIMIT ?4) \
                     RETURNING rowid, id, sender, kind, envelope, attempts, manifest, \
                     body_segment, body_offset, body_len",
                )?;
                st.query_map(params![recipient, now, until, max], |r| {
                    let at = match (r.get(7)?, r.get(8)?, r.get(9)?) {
                        (Some(segment), Some(offset), Some(len)) => Some(BodyRef { segment, offset, len }),
                        _ => None,
                    };
                    Ok((
                        r.get(0)?,
                        Claimed {
                            id: r.get(1)?,
                            sender: r.get(2)?,
                            kind: r.get(3)?,
                            envelope: r.get(4)?,
                            attempts: r.get(5)?,
                            manifest: r.get(6)?,
                        },
                        at,
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?
            };
            // Bodies come from their segments. One that is damaged or gone is a dead letter
            // with the reason, never sent as if it were the envelope, and never blocks the rest;
            // any other failure to read (a transient one) fails the claim, which is retried.
            let mut out = Vec::with_capacity(rows.len());
            for (seq, mut claimed, at) in rows {
                if let Some(at) = at {
                    match d.seg.read(at) {
                        Ok(body) => claimed.envelope = body,
                        Err(e) if !lost(&e) => {
                            return Err(QueueError::Backend(format!("{}: {e}", d.seg.dir().display())));
                        }
                        Err(e) => {
                            tx.prepare_cached(
                                "UPDATE gateway_queue SET state = 'failed', lease_until = 0, last_error = ?2 \
                                 WHERE id = ?1",
                            )?
                            .execute(params![
                                claimed.id,
                                format!(
                                    "the gateway's stored copy of this envelope cannot be read back ({e}); \
                                     retrying will not help: ask the sending node to send the message again"
                                )
                            ])?;
                            continue;
                        }
                    }
                }
                out.push((seq, claimed));
            }
            let mut rows = out;
            tx.commit()?;
            rows.sort_by_key(|(seq, _)| *seq);
            Ok(rows.into_iter().map(|(_, c)| c).collect())
        })
        .await
    }

    async fn settle(
        &self,
        recipient: &str,
        outcomes: Vec<Settle>,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let recipient = recipient.to_owned();
        let now = micros(now);
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut changed = 0;
            {
                let mut delivered = tx.prepare_cached(
                    "UPDATE gateway_queue SET state = 'delivered', delivered_at = ?3, lease_until = 0 \
                     WHERE id = ?1 AND recipient = ?2 AND state = 'pending'",
                )?;
                let mut failed = tx.prepare_cached(
                    "UPDATE gateway_queue SET state = 'failed', attempts = attempts + 1, last_error = ?3, \
                     lease_until = 0 WHERE id = ?1 AND recipient = ?2 AND state = 'pending'",
                )?;
                let mut retry = tx.prepare_cached(
                    "UPDATE gateway_queue SET attempts = attempts + 1, last_error = ?3, lease_until = 0, \
                     next_attempt_at = ?4, \
                     state = CASE WHEN attempts + 1 >= ?5 THEN 'failed' ELSE 'pending' END \
                     WHERE id = ?1 AND recipient = ?2 AND state = 'pending'",
                )?;
                for s in &outcomes {
                    changed += match &s.outcome {
                        Outcome::Delivered => delivered.execute(params![s.id, recipient, now])?,
                        Outcome::Failed(e) => failed.execute(params![s.id, recipient, e])?,
                        Outcome::Retry { error, at } => {
                            retry.execute(params![s.id, recipient, error, micros(*at), max_attempts])?
                        }
                    };
                }
            }
            tx.commit()?;
            Ok(changed)
        })
        .await
    }

    async fn track(&self, id: &str) -> Result<Option<Tracking>> {
        let id = id.to_owned();
        self.run(move |c| {
            c.prepare_cached(&format!("SELECT {TRACK_COLS} FROM gateway_queue WHERE id = ?1"))?
                .query_row([id], tracking_row)
                .optional()
        })
        .await
    }

    async fn dead(&self, limit: usize) -> Result<Vec<Tracking>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            c.prepare_cached(&format!(
                "SELECT {TRACK_COLS} FROM gateway_queue WHERE state = 'failed' ORDER BY received_at, rowid LIMIT ?1"
            ))?
            .query_map([limit], tracking_row)?
            .collect()
        })
        .await
    }

    async fn retry(&self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        let id = id.to_owned();
        let now = micros(now);
        self.run(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE gateway_queue SET state = 'pending', attempts = 0, next_attempt_at = ?2, lease_until = 0 \
                     WHERE id = ?1 AND state = 'failed'",
                )?
                .execute(params![id, now])?;
            Ok(n == 1)
        })
        .await
    }

    async fn depth(&self) -> Result<Vec<(String, u64)>> {
        self.run(|c| {
            c.prepare_cached(
                "SELECT recipient, COUNT(*) FROM gateway_queue WHERE state = 'pending' GROUP BY recipient ORDER BY recipient",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64)))?
            .collect()
        })
        .await
    }

    async fn recipient_stats(&self, recipient: &str) -> Result<RecipientStats> {
        let recipient = recipient.to_owned();
        self.run(move |c| {
            c.prepare_cached(super::RECIPIENT_SQL)?
                .query_row([recipient], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                .map(super::recipient_stats)
        })
        .await
    }

    async fn by_certificate(&self, country: &str, number: &str, limit: usize) -> Result<Vec<Tracking>> {
        let (country, number) = (country.to_owned(), number.to_owned());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            c.prepare_cached(&format!(
                "SELECT {TRACK_COLS} FROM gateway_queue WHERE cert_number = ?1 AND cert_country = ?2 \
                 ORDER BY received_at DESC, rowid DESC LIMIT ?3"
            ))?
            .query_map(params![number, country, limit], tracking_row)?
            .collect()
        })
        .await
    }

    async fn purge_delivered(
        &self,
        before: DateTime<Utc>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let (before, now, limit) = (micros(before), micros(now), i64::try_from(limit).unwrap_or(i64::MAX));
        self.run_db(move |d| {
            let n = d.c.prepare_cached(PURGE_SQL)?.execute(params![Vec::<u8>::new(), now, before, limit])?;
            d.c.prepare_cached(&super::PURGE_MANIFESTS_SQL.replace('$', "?"))?
                .execute(params![before, limit])?;
            // A segment no row names any more goes (the one being written stays).
            let mut segments =
                d.seg.list().map_err(|e| QueueError::Backend(format!("{}: {e}", d.seg.dir().display())))?;
            segments.retain(|id| !d.seg.is_current(*id));
            for id in segments {
                let named: bool = d
                    .c
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM gateway_queue WHERE body_segment = ?1)")?
                    .query_row([id], |r| r.get(0))?;
                if !named {
                    d.seg.remove(id).map_err(|e| QueueError::Backend(format!("segment {id}: {e}")))?;
                }
            }
            Ok(n)
        })
        .await
    }

    async fn traffic(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<MinuteCounts>> {
        let Some((first, end)) = super::minute_range(from, until) else { return Ok(Vec::new()) };
        self.run(move |c| {
            c.prepare_cached(super::TRAFFIC_SQL)?
                .query_map(params![first, end], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .map(|row| row.map(super::minute_counts))
                .collect()
        })
        .await
    }

    async fn set_operator(&self, name: &str, password_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        let (name, hash, now) = (name.to_owned(), password_hash.to_owned(), micros(now));
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let added = tx.execute(
                "INSERT INTO gateway_operators (name, password_hash, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?3) ON CONFLICT (name) DO NOTHING",
                params![name, hash, now],
            )? == 1;
            if !added {
                tx.execute(
                    "UPDATE gateway_operators SET password_hash = ?2, updated_at = ?3 WHERE name = ?1",
                    params![name, hash, now],
                )?;
                tx.execute("DELETE FROM gateway_operator_sessions WHERE operator = ?1", [&name])?;
            }
            tx.commit()?;
            Ok(added)
        })
        .await
    }

    async fn operator_password(&self, name: &str) -> Result<Option<String>> {
        let name = name.to_owned();
        self.run(move |c| {
            c.prepare_cached("SELECT password_hash FROM gateway_operators WHERE name = ?1")?
                .query_row([name], |r| r.get(0))
                .optional()
        })
        .await
    }

    async fn start_operator_session(
        &self,
        session: NewOperatorSession<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let NewOperatorSession { id_hash, operator, csrf } = session;
        let (h, o, t, now) = (id_hash.to_owned(), operator.to_owned(), csrf.to_owned(), micros(now));
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO gateway_operator_sessions (id_hash, operator, csrf, created_at, last_seen_at) \
                 VALUES (?1, ?2, ?3, ?4, ?4)",
            )?
            .execute(params![h, o, t, now])
            .map(|_| ())
        })
        .await
    }

    async fn operator_session(&self, id_hash: &str) -> Result<Option<OperatorSession>> {
        let h = id_hash.to_owned();
        self.run(move |c| {
            c.prepare_cached(
                "SELECT operator, csrf, created_at, last_seen_at FROM gateway_operator_sessions WHERE id_hash = ?1",
            )?
            .query_row([h], |r| {
                Ok(OperatorSession {
                    operator: r.get(0)?,
                    csrf: r.get(1)?,
                    created_at: from_micros(r.get(2)?),
                    last_seen_at: from_micros(r.get(3)?),
                })
            })
            .optional()
        })
        .await
    }

    async fn touch_operator_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<()> {
        let (h, now) = (id_hash.to_owned(), micros(now));
        self.run(move |c| {
            c.prepare_cached("UPDATE gateway_operator_sessions SET last_seen_at = ?2 WHERE id_hash = ?1")?
                .execute(params![h, now])
                .map(|_| ())
        })
        .await
    }

    async fn end_operator_session(&self, id_hash: &str) -> Result<()> {
        let h = id_hash.to_owned();
        self.run(move |c| {
            c.prepare_cached("DELETE FROM gateway_operator_sessions WHERE id_hash = ?1")?
                .execute([h])
                .map(|_| ())
        })
        .await
    }
}

/// Whether a body's read failed because the body is damaged or gone (for good), not for a
/// passing reason.
fn lost(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{InvalidData, NotFound, UnexpectedEof};
    matches!(e.kind(), InvalidData | NotFound | UnexpectedEof)
}

/// The segment directory of the queue at `path`: `<path>-segments`, beside SQLite's own
/// `-wal` and `-shm` files.
pub fn segments_dir(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("-segments");
    p.into()
}

/// Commits `batches` in one transaction: the bodies of the messages not yet known are
/// appended to the segment (one write, one sync) before their rows are inserted. For each
/// batch, whether each message was stored.
fn commit_batches(
    d: &mut Db,
    batches: &[(&Vec<NewMessage>, &Vec<ManifestBody>, i64)],
) -> Result<Vec<Vec<bool>>> {
    let Db { c, seg } = d;
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Which messages are new: not stored already, and not an earlier copy in these batches.
    let mut new: Vec<Vec<bool>> = Vec::with_capacity(batches.len());
    {
        let mut known = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM gateway_queue WHERE id = ?1)")?;
        let mut seen = std::collections::HashSet::new();
        for (messages, _, _) in batches {
            let mut flags = Vec::with_capacity(messages.len());
            for m in messages.iter() {
                let stored: bool = known.query_row([&m.id], |r| r.get(0))?;
                flags.push(!stored && seen.insert(m.id.as_str()));
            }
            new.push(flags);
        }
    }
    let fresh = batches.iter().zip(&new).flat_map(|((messages, _, _), flags)| {
        messages.iter().zip(flags).filter(|(_, n)| **n).map(|(m, _)| m)
    });
    let refs = seg
        .append(fresh.map(|m| m.envelope.as_slice()))
        .map_err(|e| QueueError::Backend(format!("{}: {e}", seg.dir().display())))?;
    let mut refs = refs.into_iter();
    {
        let mut manifest = tx.prepare_cached(
            "INSERT INTO gateway_manifests (sha256, body, received_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (sha256) DO NOTHING",
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO gateway_queue (id, sender, recipient, kind, envelope, next_attempt_at, received_at, \
                 cert_country, cert_number, manifest, body_segment, body_offset, body_len) \
                 VALUES (?1, ?2, ?3, ?4, X'', ?5, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for ((messages, manifests, at), flags) in batches.iter().zip(&new) {
            for m in manifests.iter() {
                manifest.execute(params![m.sha256, m.body, at])?;
            }
            for (m, _) in messages.iter().zip(flags).filter(|(_, n)| **n) {
                let at_ =
                    refs.next().ok_or_else(|| QueueError::Backend("segment references ran out".into()))?;
                let (cc, cn) = match &m.certificate {
                    Some(c) => (Some(c.country.as_str()), Some(c.number.as_str())),
                    None => (None, None),
                };
                insert.execute(params![
                    m.id,
                    m.sender,
                    m.recipient,
                    m.kind,
                    at,
                    cc,
                    cn,
                    m.manifest,
                    at_.segment,
                    at_.offset,
                    at_.len
                ])?;
            }
        }
    }
    tx.commit()?;
    Ok(new)
}
