//! The PostgreSQL queue, for gateways that run several replicas on one database: a small
//! fixed pool of `tokio-postgres` connections. A batch is one multi-row statement in one
//! transaction (arrays through `unnest`); claims lock with `FOR UPDATE SKIP LOCKED`, so
//! concurrent claimers (workers of several replicas, pulls) never wait for each other and
//! never get the same row.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use originlink_service::pgpool::{PgConn, PgPool, PoolError};
use tokio_postgres::Row;

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
  seq BIGINT GENERATED ALWAYS AS IDENTITY,
  id TEXT PRIMARY KEY,
  sender TEXT NOT NULL,
  recipient TEXT NOT NULL,
  kind TEXT NOT NULL,
  envelope BYTEA NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts INT NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  lease_until BIGINT NOT NULL DEFAULT 0,
  last_error TEXT,
  received_at BIGINT NOT NULL,
  delivered_at BIGINT
);
CREATE INDEX gateway_queue_due ON gateway_queue(recipient, next_attempt_at, seq) WHERE state = 'pending';
CREATE INDEX gateway_queue_dead ON gateway_queue(received_at, seq) WHERE state = 'failed';
"#,
    ),
    (2, super::V2_OPERATOR),
    (3, super::V3_RETENTION),
    (4, super::V4_MANIFESTS),
    // Envelopes are JSON with a base64 payload: lz4 compresses them at a small part of the
    // cost of PostgreSQL's default (pglz), which led the database's profile under load.
    (
        5,
        "ALTER TABLE gateway_queue ALTER COLUMN envelope SET COMPRESSION lz4; \
         ALTER TABLE gateway_manifests ALTER COLUMN body SET COMPRESSION lz4;",
    ),
];

fn db(e: tokio_postgres::Error) -> QueueError {
    QueueError::Backend(match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    })
}

#[derive(Clone)]
pub struct PgQueue {
    inner: Arc<PgPool>,
}

impl std::fmt::Debug for PgQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        write!(f, "PgQueue({} connections)", self.inner.max_size())
    }
}

fn pool_err(e: PoolError) -> QueueError {
    match e {
        PoolError::Url(u) => QueueError::Url(u),
        PoolError::Connect(e) => db(e),
        e @ PoolError::Pool(_) => QueueError::Backend(e.to_string()),
    }
}

const TRACK_COLS: &str = "id, sender, recipient, kind, state, attempts, last_error, received_at, delivered_at, \
     cert_country, cert_number, purged_at, manifest";

fn tracking_row(r: &Row) -> Result<Tracking> {
    let g = |e| db(e);
    let state: String = r.try_get(4).map_err(g)?;
    Ok(Tracking {
        id: r.try_get(0).map_err(g)?,
        from: r.try_get(1).map_err(g)?,
        to: r.try_get(2).map_err(g)?,
        kind: r.try_get(3).map_err(g)?,
        state: State::parse(&state).ok_or_else(|| QueueError::Backend(format!("unknown state {state:?}")))?,
        attempts: r.try_get::<_, i32>(5).map_err(g)?.max(0) as u32,
        error: r.try_get(6).map_err(g)?,
        received_at: from_micros(r.try_get(7).map_err(g)?),
        delivered_at: r.try_get::<_, Option<i64>>(8).map_err(g)?.map(from_micros),
        certificate: match (r.try_get(9).map_err(g)?, r.try_get(10).map_err(g)?) {
            (Some(country), Some(number)) => Some(CertificateRef { country, number }),
            _ => None,
        },
        purged_at: r.try_get::<_, Option<i64>>(11).map_err(g)?.map(from_micros),
        manifest: r.try_get(12).map_err(g)?,
    })
}

impl PgQueue {
    /// Connects the first connection now (so a wrong URL fails at start); the others on
    /// first use.
    pub async fn connect(url: &str, size: usize) -> Result<Self> {
        Ok(PgQueue { inner: Arc::new(PgPool::connect(url, size).await.map_err(pool_err)?) })
    }

    async fn lease(&self) -> Result<PgConn> {
        self.inner.lease().await.map_err(pool_err)
    }

    /// The tracking records `sql` selects ([`TRACK_COLS`]).
    async fn tracked(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Tracking>> {
        let mut g = self.lease().await?;
        let rows = g.client().query(sql, params).await.map_err(db)?;
        rows.iter().map(tracking_row).collect()
    }

    /// Runs raw SQL (tests use it; operators must not).
    pub async fn execute_raw(&self, sql: &str) -> Result<u64> {
        let mut g = self.lease().await?;
        g.client().execute(sql, &[]).await.map_err(db)
    }
}

macro_rules! client {
    ($g:ident) => {
        $g.client()
    };
}

#[async_trait::async_trait]
impl Queue for PgQueue {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate_at(&self, now: DateTime<Utc>) -> Result<()> {
        let mut g = self.lease().await?;
        let c = client!(g);
        let tx = c.transaction().await.map_err(db)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS gateway_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL); \
             LOCK TABLE gateway_migrations IN EXCLUSIVE MODE",
        )
        .await
        .map_err(db)?;
        let done: i64 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM gateway_migrations", &[])
            .await
            .map_err(db)?
            .get(0);
        for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > done) {
            tx.batch_execute(sql).await.map_err(db)?;
            tx.execute(
                "INSERT INTO gateway_migrations (version, applied_at) VALUES ($1, $2)",
                &[v, &now.to_rfc3339()],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    async fn ping(&self) -> Result<()> {
        let mut g = self.lease().await?;
        client!(g).simple_query("SELECT 1").await.map_err(db).map(|_| ())
    }

    async fn enqueue_with_manifests(
        &self,
        messages: Vec<NewMessage>,
        manifests: Vec<ManifestBody>,
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>> {
        let at = micros(now);
        let mut ids = Vec::with_capacity(messages.len());
        let mut senders = Vec::with_capacity(messages.len());
        let mut recipients = Vec::with_capacity(messages.len());
        let mut kinds = Vec::with_capacity(messages.len());
        let mut envelopes = Vec::with_capacity(messages.len());
        let mut cert_countries: Vec<Option<String>> = Vec::with_capacity(messages.len());
        let mut cert_numbers: Vec<Option<String>> = Vec::with_capacity(messages.len());
        let mut manifest_of: Vec<Option<String>> = Vec::with_capacity(messages.len());
        for m in messages {
            let (cc, cn) = m.certificate.map(|c| (Some(c.country), Some(c.number))).unwrap_or_default();
            cert_countries.push(cc);
            cert_numbers.push(cn);
            ids.push(m.id);
            senders.push(m.sender);
            recipients.push(m.recipient);
            kinds.push(m.kind);
            envelopes.push(m.envelope);
            manifest_of.push(m.manifest);
        }
        let (m_sha, m_body): (Vec<String>, Vec<String>) =
            manifests.into_iter().map(|m| (m.sha256, m.body)).unzip();
        let mut g = self.lease().await?;
        let c = client!(g);
        // One statement, one transaction: `WITH ORDINALITY` keeps batch order, so the first
        // occurrence of an id repeated within the batch is the one stored. The manifests go in
        // first, in the same statement.
        let rows = c
            .query(
                "WITH kept AS (INSERT INTO gateway_manifests (sha256, body, received_at) \
                   SELECT * FROM unnest($9::text[], $10::text[]) AS m(sha256, body) CROSS JOIN (SELECT $6::bigint) t \
                   ON CONFLICT (sha256) DO NOTHING) \
                 INSERT INTO gateway_queue (id, sender, recipient, kind, envelope, next_attempt_at, received_at, \
                 cert_country, cert_number, manifest) \
                 SELECT id, sender, recipient, kind, envelope, $6, $6, cc, cn, mf \
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[], $7::text[], $8::text[], $11::text[]) \
                   WITH ORDINALITY AS u(id, sender, recipient, kind, envelope, cc, cn, mf, n) ORDER BY n \
                 ON CONFLICT (id) DO NOTHING RETURNING id",
                &[
                    &ids,
                    &senders,
                    &recipients,
                    &kinds,
                    &envelopes,
                    &at,
                    &cert_countries,
                    &cert_numbers,
                    &m_sha,
                    &m_body,
                    &manifest_of,
                ],
            )
            .await
            .map_err(db)?;
        let mut stored: std::collections::HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
        Ok(ids.iter().map(|id| stored.remove(id)).collect())
    }

    async fn manifests(&self, sha256s: Vec<String>) -> Result<Vec<String>> {
        let mut g = self.lease().await?;
        let rows = client!(g)
            .query("SELECT body FROM gateway_manifests WHERE sha256 = ANY($1)", &[&sha256s])
            .await
            .map_err(db)?;
        rows.iter().map(|r| r.try_get(0).map_err(db)).collect()
    }

    async fn claim(
        &self,
        recipient: &str,
        max: usize,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<Claimed>> {
        let (now, until) = (micros(now), lease_end(now, lease));
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let mut g = self.lease().await?;
        let c = client!(g);
        let rows = c
            .query(
                "UPDATE gateway_queue q SET lease_until = $3, next_attempt_at = $3 FROM \
                 (SELECT id FROM gateway_queue WHERE recipient = $1 AND state = 'pending' AND next_attempt_at <= $2 \
                  ORDER BY next_attempt_at, seq LIMIT $4 FOR UPDATE SKIP LOCKED) d \
                 WHERE q.id = d.id RETURNING q.seq, q.id, q.sender, q.kind, q.envelope, q.attempts, q.manifest",
                &[&recipient, &now, &until, &max],
            )
            .await
            .map_err(db)?;
        let mut out: Vec<(i64, Claimed)> = Vec::with_capacity(rows.len());
        for r in rows {
            out.push((
                r.try_get(0).map_err(db)?,
                Claimed {
                    id: r.try_get(1).map_err(db)?,
                    sender: r.try_get(2).map_err(db)?,
                    kind: r.try_get(3).map_err(db)?,
                    envelope: r.try_get(4).map_err(db)?,
                    attempts: r.try_get::<_, i32>(5).map_err(db)?.max(0) as u32,
                    manifest: r.try_get(6).map_err(db)?,
                },
            ));
        }
        out.sort_by_key(|(seq, _)| *seq);
        Ok(out.into_iter().map(|(_, c)| c).collect())
    }

    async fn settle(
        &self,
        recipient: &str,
        outcomes: Vec<Settle>,
        max_attempts: u32,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let now = micros(now);
        let max_attempts = i32::try_from(max_attempts).unwrap_or(i32::MAX);
        let mut delivered: Vec<String> = Vec::new();
        let (mut f_ids, mut f_errs): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
        let (mut r_ids, mut r_errs, mut r_at): (Vec<String>, Vec<String>, Vec<i64>) =
            (Vec::new(), Vec::new(), Vec::new());
        for s in outcomes {
            match s.outcome {
                Outcome::Delivered => delivered.push(s.id),
                Outcome::Failed(e) => {
                    f_ids.push(s.id);
                    f_errs.push(e);
                }
                Outcome::Retry { error, at } => {
                    r_ids.push(s.id);
                    r_errs.push(error);
                    r_at.push(micros(at));
                }
            }
        }
        let mut g = self.lease().await?;
        let c = client!(g);
        let tx = c.transaction().await.map_err(db)?;
        let mut changed = 0u64;
        if !delivered.is_empty() {
            changed += tx
                .execute(
                    "UPDATE gateway_queue SET state = 'delivered', delivered_at = $3, lease_until = 0 \
                     WHERE id = ANY($1) AND recipient = $2 AND state = 'pending'",
                    &[&delivered, &recipient, &now],
                )
                .await
                .map_err(db)?;
        }
        if !f_ids.is_empty() {
            changed += tx
                .execute(
                    "UPDATE gateway_queue q SET state = 'failed', attempts = q.attempts + 1, last_error = u.err, \
                     lease_until = 0 FROM unnest($1::text[], $2::text[]) AS u(id, err) \
                     WHERE q.id = u.id AND q.recipient = $3 AND q.state = 'pending'",
                    &[&f_ids, &f_errs, &recipient],
                )
                .await
                .map_err(db)?;
        }
        if !r_ids.is_empty() {
            changed += tx
                .execute(
                    "UPDATE gateway_queue q SET attempts = q.attempts + 1, last_error = u.err, lease_until = 0, \
                     next_attempt_at = u.at, \
                     state = CASE WHEN q.attempts + 1 >= $4 THEN 'failed' ELSE 'pending' END \
                     FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(id, err, at) \
                     WHERE q.id = u.id AND q.recipient = $5 AND q.state = 'pending'",
                    &[&r_ids, &r_errs, &r_at, &max_attempts, &recipient],
                )
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(changed as usize)
    }

    async fn track(&self, id: &str) -> Result<Option<Tracking>> {
        let mut g = self.lease().await?;
        let c = client!(g);
        let row = c
            .query_opt(&format!("SELECT {TRACK_COLS} FROM gateway_queue WHERE id = $1"), &[&id])
            .await
            .map_err(db)?;
        row.as_ref().map(tracking_row).transpose()
    }

    async fn dead(&self, limit: usize) -> Result<Vec<Tracking>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {TRACK_COLS} FROM gateway_queue WHERE state = 'failed' ORDER BY received_at, seq LIMIT $1"
        );
        self.tracked(&sql, &[&limit]).await
    }

    async fn retry(&self, id: &str, now: DateTime<Utc>) -> Result<bool> {
        let now = micros(now);
        let mut g = self.lease().await?;
        let c = client!(g);
        let n = c
            .execute(
                "UPDATE gateway_queue SET state = 'pending', attempts = 0, next_attempt_at = $2, lease_until = 0 \
                 WHERE id = $1 AND state = 'failed'",
                &[&id, &now],
            )
            .await
            .map_err(db)?;
        Ok(n == 1)
    }

    async fn depth(&self) -> Result<Vec<(String, u64)>> {
        let mut g = self.lease().await?;
        let c = client!(g);
        let rows = c
            .query(
                "SELECT recipient, COUNT(*) FROM gateway_queue WHERE state = 'pending' GROUP BY recipient ORDER BY recipient",
                &[],
            )
            .await
            .map_err(db)?;
        Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1).max(0) as u64)).collect())
    }

    async fn recipient_stats(&self, recipient: &str) -> Result<RecipientStats> {
        let mut g = self.lease().await?;
        let r = client!(g).query_one(super::RECIPIENT_SQL, &[&recipient]).await.map_err(db)?;
        let row = (|| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?)))()
            .map_err(db)?;
        Ok(super::recipient_stats(row))
    }

    async fn by_certificate(&self, country: &str, number: &str, limit: usize) -> Result<Vec<Tracking>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {TRACK_COLS} FROM gateway_queue WHERE cert_number = $1 AND cert_country = $2 \
             ORDER BY received_at DESC, seq DESC LIMIT $3"
        );
        self.tracked(&sql, &[&number, &country, &limit]).await
    }

    async fn purge_delivered(
        &self,
        before: DateTime<Utc>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let (before, now, limit) = (micros(before), micros(now), i64::try_from(limit).unwrap_or(i64::MAX));
        let empty: Vec<u8> = Vec::new();
        let mut g = self.lease().await?;
        let c = client!(g);
        let n = c.execute(super::PURGE_SQL, &[&empty, &now, &before, &limit]).await.map_err(db)?;
        c.execute(super::PURGE_MANIFESTS_SQL, &[&before, &limit]).await.map_err(db)?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    async fn traffic(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<MinuteCounts>> {
        let Some((first, end)) = super::minute_range(from, until) else { return Ok(Vec::new()) };
        let mut g = self.lease().await?;
        let rows = client!(g).query(super::TRAFFIC_SQL, &[&first, &end]).await.map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(super::minute_counts((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                )))
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(db)
    }

    async fn set_operator(&self, name: &str, password_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        let now = micros(now);
        let mut g = self.lease().await?;
        let c = client!(g);
        let tx = c.transaction().await.map_err(db)?;
        let added = tx
            .execute(
                "INSERT INTO gateway_operators (name, password_hash, created_at, updated_at) \
                 VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO NOTHING",
                &[&name, &password_hash, &now],
            )
            .await
            .map_err(db)?
            == 1;
        if !added {
            tx.execute(
                "UPDATE gateway_operators SET password_hash = $2, updated_at = $3 WHERE name = $1",
                &[&name, &password_hash, &now],
            )
            .await
            .map_err(db)?;
            tx.execute("DELETE FROM gateway_operator_sessions WHERE operator = $1", &[&name])
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(added)
    }

    async fn operator_password(&self, name: &str) -> Result<Option<String>> {
        let mut g = self.lease().await?;
        let c = client!(g);
        let row = c
            .query_opt("SELECT password_hash FROM gateway_operators WHERE name = $1", &[&name])
            .await
            .map_err(db)?;
        row.map(|r| r.try_get(0).map_err(db)).transpose()
    }

    async fn start_operator_session(
        &self,
        session: NewOperatorSession<'_>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let now = micros(now);
        let mut g = self.lease().await?;
        let c = client!(g);
        c.execute(
            "INSERT INTO gateway_operator_sessions (id_hash, operator, csrf, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $4)",
            &[&session.id_hash, &session.operator, &session.csrf, &now],
        )
        .await
        .map_err(db)
        .map(|_| ())
    }

    async fn operator_session(&self, id_hash: &str) -> Result<Option<OperatorSession>> {
        let mut g = self.lease().await?;
        let c = client!(g);
        let row = c
            .query_opt(
                "SELECT operator, csrf, created_at, last_seen_at FROM gateway_operator_sessions WHERE id_hash = $1",
                &[&id_hash],
            )
            .await
            .map_err(db)?;
        row.map(|r| {
            Ok(OperatorSession {
                operator: r.try_get(0).map_err(db)?,
                csrf: r.try_get(1).map_err(db)?,
                created_at: from_micros(r.try_get(2).map_err(db)?),
                last_seen_at: from_micros(r.try_get(3).map_err(db)?),
            })
        })
        .transpose()
    }

    async fn touch_operator_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<()> {
        let now = micros(now);
        let mut g = self.lease().await?;
        let c = client!(g);
        c.execute(
            "UPDATE gateway_operator_sessions SET last_seen_at = $2 WHERE id_hash = $1",
            &[&id_hash, &now],
        )
        .await
        .map_err(db)
        .map(|_| ())
    }

    async fn end_operator_session(&self, id_hash: &str) -> Result<()> {
        let mut g = self.lease().await?;
        let c = client!(g);
        c.execute("DELETE FROM gateway_operator_sessions WHERE id_hash = $1", &[&id_hash])
            .await
            .map_err(db)
            .map(|_| ())
    }
}
