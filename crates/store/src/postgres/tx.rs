//! The PostgreSQL side of the transaction interfaces: SQL text, parameter binding and row
//! access over an open transaction. Rows a rule changes are read `FOR UPDATE`, before the
//! audit head (locked last, by [`AuditTx::audit_head`]). Statements are prepared once per
//! transaction, so repeating one (an inbound batch, a multi-message enqueue) costs no extra
//! round trip.

use std::sync::LazyLock;

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Statement, Transaction};

use crate::audit::{AuditTx, Chain, EventRow};
use crate::declarations::{ActiveUse, DeclTx, Figures, Item};
use crate::inbox::{Found, Held, InboxTx};
use crate::issuance::{IssuanceTx, NewCertificate};
use crate::migrate::MigrateTx;
use crate::model::*;
use crate::notifications::NotifyTx;
use crate::outbox::OutboxTx;
use crate::received::ReceivedTx;
use crate::row::{self, Col, Row};
use crate::users::UsersTx;
use crate::verifications::{Request, VerificationsTx};
use crate::{Result, StoreError, timestamp};

/// Parameters of a statement.
pub(super) type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

pub(super) fn db(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    })
}

fn is_unique(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

impl Row for tokio_postgres::Row {
    fn col<T: Col>(&self, i: usize) -> Result<T> {
        self.try_get(i).map_err(db)
    }
}

/// The advisory lock class under which ledger updates serialize per certificate.
const LEDGER_LOCK_CLASS: i32 = 7243003;
/// The migration lock: a single 64-bit key (a key space apart from the two-key classes).
const MIGRATION_LOCK: i64 = 7243001;

/// One user as an administrator sees it (locked: `USER_BY_ID_LOCKED`).
pub(super) static USER_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM users u LEFT JOIN companies c ON c.id = u.company_id WHERE u.id = $1",
        row::USER_RECORD_COLS
    )
});

/// A session in force by its id's hash.
pub(super) static SESSION: LazyLock<String> = LazyLock::new(|| row::session_by_id("$1"));
static USER_BY_ID_LOCKED: LazyLock<String> = LazyLock::new(|| format!("{} FOR UPDATE OF u", *USER_BY_ID));
static APP_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM applications WHERE id = $1", row::APP_COLS));
static APP_BY_ID_LOCKED: LazyLock<String> = LazyLock::new(|| format!("{} FOR UPDATE", *APP_BY_ID));
pub(super) static CERT_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM certificates WHERE id = $1", row::cert_cols(row::CERT_COLS)));
static CERT_BY_ID_LOCKED: LazyLock<String> = LazyLock::new(|| format!("{} FOR UPDATE", *CERT_BY_ID));
/// Applications by id, locked in id order (a batch of approvals).
static APPS_LOCKED: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {} FROM applications WHERE id = ANY($1) ORDER BY id FOR UPDATE", row::APP_COLS)
});
/// Certificates by id, locked in id order.
static CERTS_LOCKED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM certificates WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        row::cert_cols(row::CERT_COLS)
    )
});
/// Certificates by id.
static CERTS_BY_IDS: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {} FROM certificates WHERE id = ANY($1)", row::cert_cols(row::CERT_COLS))
});
static RECEIVED_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM received_certificates WHERE id = $1", row::RECEIVED_COLS));
pub(super) static VERIFICATION_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM verification_requests WHERE id = $1", row::VERIFICATION_COLS));
static VERIFICATION_BY_ID_LOCKED: LazyLock<String> =
    LazyLock::new(|| format!("{} FOR UPDATE", *VERIFICATION_BY_ID));
static VERIFICATION_BY_MESSAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM verification_requests WHERE direction = $1 AND message_id = $2 FOR UPDATE",
        row::VERIFICATION_COLS
    )
});
static VERIFICATION_INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO verification_requests (direction, message_id, issuing_country, number, partner, \
         questions, deadline, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8) \
         ON CONFLICT (direction, message_id) DO NOTHING RETURNING {}",
        row::VERIFICATION_COLS
    )
});
static VERIFICATION_ANSWER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE verification_requests SET status = $1, outcome = $1, answer = $2, answered_at = $3 \
         WHERE id = $4 RETURNING {}",
        row::VERIFICATION_COLS
    )
});
static DEAD_LETTER: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM outbox WHERE id = $1 AND dead FOR UPDATE", row::OUTBOX_COLS));
static REVIVE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE outbox SET dead = FALSE, attempts = 0, next_attempt_at = $1, lease_until = NULL \
         WHERE id = $2 RETURNING {}",
        row::OUTBOX_COLS
    )
});
static LINE: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {} FROM declaration_lines WHERE declaration_id = $1 AND line_no = $2", row::LINE_COLS)
});

/// The lines of declarations, grouped onto them (one query for all).
pub(super) async fn load_lines(c: &impl GenericClient, decls: &mut [Declaration]) -> Result<()> {
    if decls.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = decls.iter().map(|d| d.id).collect();
    let sql = format!(
        "SELECT {}, declaration_id FROM declaration_lines WHERE declaration_id = ANY($1) \
         ORDER BY declaration_id, line_no",
        row::LINE_COLS
    );
    let rows = c.query(&sql, &[&ids]).await.map_err(db)?;
    let mut by_id: std::collections::HashMap<i64, Vec<DeclarationLine>> = std::collections::HashMap::new();
    for r in &rows {
        by_id.entry(r.col(10)?).or_default().push(row::line(r)?);
    }
    for d in decls {
        d.lines = by_id.remove(&d.id).unwrap_or_default();
    }
    Ok(())
}

/// One declaration (`column` is `id` or `number`) with its lines.
pub(super) async fn declaration(
    c: &impl GenericClient,
    column: &str,
    key: &(dyn ToSql + Sync),
) -> Result<Option<Declaration>> {
    let sql = format!("SELECT {} FROM declarations WHERE {column} = $1", row::DECL_COLS);
    let Some(found) = c.query_opt(&sql, &[key]).await.map_err(db)? else { return Ok(None) };
    let mut d = [row::declaration(&found)?];
    load_lines(c, &mut d).await?;
    let [d] = d;
    Ok(Some(d))
}

/// A refused message, recorded.
pub(super) async fn refuse(c: &impl GenericClient, r: &Refusal) -> Result<()> {
    let sql = "INSERT INTO inbox_refused (message_id, from_country, kind, via, code, reason, at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7)";
    c.execute(sql, &[&r.message_id, &r.from_country, &r.kind, &r.via, &r.code, &r.reason, &r.at])
        .await
        .map_err(db)?;
    Ok(())
}

/// An open transaction, with the audit chain its events are appended to and the statements
/// prepared in it so far.
pub(super) struct PgTx<'a, 'b> {
    tx: &'a Transaction<'b>,
    chain: &'a Chain,
    prepared: Vec<(&'static str, Statement)>,
}

impl<'a, 'b> PgTx<'a, 'b> {
    pub(super) fn new(tx: &'a Transaction<'b>, chain: &'a Chain) -> Self {
        PgTx { tx, chain, prepared: Vec::new() }
    }

    /// `sql`, prepared once in this transaction.
    async fn statement(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some((_, st)) = self.prepared.iter().find(|(q, _)| *q == sql) {
            return Ok(st.clone());
        }
        let st = self.tx.prepare(sql).await.map_err(db)?;
        self.prepared.push((sql, st.clone()));
        Ok(st)
    }

    /// Takes the transaction-scoped advisory lock of each key of `class`, in the order given.
    pub(super) async fn advisory_locks(&mut self, class: i32, keys: &[String]) -> Result<()> {
        for key in keys {
            self.exec("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&class, key]).await?;
        }
        Ok(())
    }

    /// Runs a statement; the number of rows changed.
    async fn exec(&mut self, sql: &'static str, p: Params<'_>) -> Result<u64> {
        let st = self.statement(sql).await?;
        self.tx.execute(&st, p).await.map_err(db)
    }

    /// [`PgTx::exec`], `None` when a unique constraint refuses the row.
    async fn exec_unique(&mut self, sql: &'static str, p: Params<'_>) -> Result<Option<u64>> {
        let st = self.statement(sql).await?;
        match self.tx.execute(&st, p).await {
            Ok(n) => Ok(Some(n)),
            Err(e) if is_unique(&e) => Ok(None),
            Err(e) => Err(db(e)),
        }
    }

    /// Runs `st` once per parameter set, all sent before the first answer is awaited (the
    /// client pipelines them: one round trip for the lot); each result, in order. After a
    /// failure the transaction is aborted and the rest fail too.
    async fn pipelined<const N: usize>(
        &self,
        st: &Statement,
        params: &[[&(dyn ToSql + Sync); N]],
    ) -> Vec<std::result::Result<u64, tokio_postgres::Error>> {
        futures_util::future::join_all(params.iter().map(|p| self.tx.execute(st, p))).await
    }

    /// [`PgTx::pipelined`] for a statement answering one row each (`RETURNING id`).
    async fn pipelined_ids<const N: usize>(
        &self,
        st: &Statement,
        params: &[[&(dyn ToSql + Sync); N]],
    ) -> Vec<std::result::Result<i64, tokio_postgres::Error>> {
        let one = |p| async move { self.tx.query_one(st, p).await.and_then(|r| r.try_get(0)) };
        futures_util::future::join_all(params.iter().map(|p| one(&p[..]))).await
    }

    /// The rows of a query.
    async fn rows(&mut self, sql: &'static str, p: Params<'_>) -> Result<Vec<tokio_postgres::Row>> {
        let st = self.statement(sql).await?;
        self.tx.query(&st, p).await.map_err(db)
    }

    /// The first row of a query, read by `f`; `None` when there is none.
    async fn opt<T>(
        &mut self,
        sql: &'static str,
        p: Params<'_>,
        f: impl FnOnce(&tokio_postgres::Row) -> Result<T>,
    ) -> Result<Option<T>> {
        let st = self.statement(sql).await?;
        self.tx.query_opt(&st, p).await.map_err(db)?.as_ref().map(f).transpose()
    }

    /// The only row of a query, read by `f`.
    async fn one<T>(
        &mut self,
        sql: &'static str,
        p: Params<'_>,
        f: impl FnOnce(&tokio_postgres::Row) -> Result<T>,
    ) -> Result<T> {
        let st = self.statement(sql).await?;
        f(&self.tx.query_one(&st, p).await.map_err(db)?)
    }

    /// `RETURNING id` of an insert; `None` when a unique constraint refuses the row.
    async fn insert_id(&mut self, sql: &'static str, p: Params<'_>) -> Result<Option<i64>> {
        let st = self.statement(sql).await?;
        match self.tx.query_one(&st, p).await {
            Ok(r) => Ok(Some(r.col(0)?)),
            Err(e) if is_unique(&e) => Ok(None),
            Err(e) => Err(db(e)),
        }
    }
}

impl AuditTx for PgTx<'_, '_> {
    fn chain(&self) -> &Chain {
        self.chain
    }

    async fn audit_head(&mut self) -> Result<Option<(i64, String)>> {
        self.opt("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE", &[], row::pair).await
    }

    async fn insert_events(&mut self, rows: &[EventRow<'_>]) -> Result<Option<i64>> {
        let sql = "INSERT INTO audit_events (seq, at, actor, action, entity, before, after, prev_hash, hash) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        let st = self.statement(sql).await?;
        let params: Vec<[&(dyn ToSql + Sync); 9]> = rows
            .iter()
            .map(|e| {
                let ev = e.event;
                [
                    &e.seq,
                    &e.at,
                    &e.actor,
                    &ev.action,
                    &ev.entity,
                    &ev.before,
                    &ev.after,
                    &e.prev_hash,
                    &e.hash,
                ] as [&(dyn ToSql + Sync); 9]
            })
            .collect();
        let results = self.pipelined(&st, &params).await;
        for (e, r) in rows.iter().zip(results) {
            match r {
                Ok(_) => {}
                Err(err) if is_unique(&err) => return Ok(Some(e.seq)),
                Err(err) => return Err(db(err)),
            }
        }
        Ok(None)
    }

    async fn set_audit_head(&mut self, seq: i64, hash: &str) -> Result<()> {
        self.exec("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1", &[&seq, &hash]).await.map(drop)
    }
}

impl OutboxTx for PgTx<'_, '_> {
    async fn insert_message(&mut self, m: &OutMessage, at: &str) -> Result<bool> {
        let sql = "INSERT INTO outbox (id, recipient, kind, cert_key, body, created_at, next_attempt_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $6)";
        let p: Params<'_> = &[&m.id, &m.recipient, &m.kind, &m.cert_key, &m.body, &at];
        Ok(self.exec_unique(sql, p).await?.is_some())
    }

    async fn add_recipient(&mut self, number: &str, recipient: &str) -> Result<()> {
        let sql =
            "INSERT INTO certificate_recipients (number, recipient) VALUES ($1, $2) ON CONFLICT DO NOTHING";
        self.exec(sql, &[&number, &recipient]).await.map(drop)
    }

    async fn dead_letter(&mut self, id: &str) -> Result<Option<OutboxRow>> {
        self.opt(&DEAD_LETTER, &[&id], row::outbox).await
    }

    async fn revive(&mut self, id: &str, at: &str) -> Result<OutboxRow> {
        self.one(&REVIVE, &[&at, &id], row::outbox).await
    }
}

impl UsersTx for PgTx<'_, '_> {
    async fn insert_company(&mut self, name: &str, country: &str, at: &str) -> Result<Option<i64>> {
        let sql = "INSERT INTO companies (name, country, created_at) VALUES ($1, $2, $3) RETURNING id";
        self.insert_id(sql, &[&name, &country, &at]).await
    }

    async fn insert_user(&mut self, u: &NewUser, at: &str) -> Result<Option<i64>> {
        let sql =
            "INSERT INTO users (name, role, company_id, created_at) VALUES ($1, $2, $3, $4) RETURNING id";
        self.insert_id(sql, &[&u.name, &u.role.as_str(), &u.company_id, &at]).await
    }

    async fn insert_token(&mut self, hash: &[u8; 32], user_id: i64, at: &str) -> Result<()> {
        let sql = "INSERT INTO tokens (token_hash, user_id, created_at) VALUES ($1, $2, $3)";
        self.exec(sql, &[&&hash[..], &user_id, &at]).await.map(drop)
    }

    async fn user_record(&mut self, id: i64) -> Result<Option<UserRecord>> {
        self.opt(&USER_BY_ID_LOCKED, &[&id], row::user_record).await
    }

    async fn set_disabled_at(&mut self, id: i64, at: Option<&str>) -> Result<()> {
        self.exec("UPDATE users SET disabled_at = $1 WHERE id = $2", &[&at, &id]).await.map(drop)
    }

    async fn revoke_tokens(&mut self, user_id: i64, at: &str) -> Result<i64> {
        let sql = "UPDATE tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL";
        Ok(self.exec(sql, &[&at, &user_id]).await? as i64)
    }

    async fn set_password_hash(&mut self, user_id: i64, hash: &str) -> Result<()> {
        self.exec("UPDATE users SET password_hash = $1 WHERE id = $2", &[&hash, &user_id]).await.map(drop)
    }

    async fn insert_session(&mut self, s: &NewSession, at: &str) -> Result<()> {
        let sql = "INSERT INTO sessions (id_hash, user_id, csrf, created_at, last_seen_at) VALUES ($1, $2, $3, $4, $4)";
        self.exec(sql, &[&&s.id_hash[..], &s.user_id, &s.csrf, &at]).await.map(drop)
    }

    async fn touch_session(&mut self, id_hash: &[u8; 32], at: &str) -> Result<()> {
        let sql = "UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2 AND ended_at IS NULL";
        self.exec(sql, &[&at, &&id_hash[..]]).await.map(drop)
    }

    async fn end_session(&mut self, id_hash: &[u8; 32], at: &str) -> Result<Option<i64>> {
        let sql =
            "UPDATE sessions SET ended_at = $1 WHERE id_hash = $2 AND ended_at IS NULL RETURNING user_id";
        self.opt(sql, &[&at, &&id_hash[..]], |r| r.col(0)).await
    }

    async fn end_user_sessions(&mut self, user_id: i64, at: &str) -> Result<i64> {
        let sql = "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL";
        Ok(self.exec(sql, &[&at, &user_id]).await? as i64)
    }

    async fn insert_invitation(&mut self, hash: &[u8; 32], user_id: i64, span: [&str; 2]) -> Result<()> {
        let [at, expires_at] = span;
        let sql =
            "INSERT INTO invitations (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
        self.exec(sql, &[&&hash[..], &user_id, &at, &expires_at]).await.map(drop)
    }

    async fn use_invitation(&mut self, hash: &[u8; 32], at: &str) -> Result<Option<i64>> {
        let sql = "UPDATE invitations SET used_at = $1 \
                   WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 RETURNING user_id";
        self.opt(sql, &[&at, &&hash[..]], |r| r.col(0)).await
    }
}

impl IssuanceTx for PgTx<'_, '_> {
    async fn application(&mut self, id: i64, lock: bool) -> Result<Option<Application>> {
        let sql = if lock { &APP_BY_ID_LOCKED } else { &APP_BY_ID };
        self.opt(sql, &[&id], row::application).await
    }

    async fn certificate(&mut self, id: i64, lock: bool) -> Result<Option<Certificate>> {
        let sql = if lock { &CERT_BY_ID_LOCKED } else { &CERT_BY_ID };
        self.opt(sql, &[&id], row::certificate).await
    }

    async fn received_exists(&mut self, id: i64) -> Result<bool> {
        let sql = "SELECT id FROM received_certificates WHERE id = $1";
        Ok(self.opt(sql, &[&id], |_| Ok(())).await?.is_some())
    }

    async fn insert_application(&mut self, a: &NewApplication, at: &str) -> Result<i64> {
        let sql = "INSERT INTO applications (company_id, status, format, document, self_assessment, assessment, \
                   replaces, back_to_back_of, created_by, created_at, updated_at) \
                   VALUES ($1, 'draft', $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id";
        let p: Params<'_> = &[
            &a.company_id,
            &a.format,
            &a.document,
            &a.self_assessment,
            &a.assessment,
            &a.replaces,
            &a.back_to_back_of,
            &a.created_by,
            &at,
        ];
        self.one(sql, p, row::first).await
    }

    async fn set_content(&mut self, id: i64, e: &EditApplication, at: &str) -> Result<()> {
        let (format, doc) = e.document.as_ref().map(|(f, d)| (f, d)).unzip();
        let (sa, asm) = e.self_assessment.as_ref().map(|(i, r)| (i, r)).unzip();
        let sql = "UPDATE applications SET format = COALESCE($1, format), document = COALESCE($2, document), \
                   self_assessment = COALESCE($3, self_assessment), assessment = COALESCE($4, assessment), \
                   updated_at = $5 WHERE id = $6";
        self.exec(sql, &[&format, &doc, &sa, &asm, &at, &id]).await.map(drop)
    }

    async fn set_status(&mut self, id: i64, to: (ApplicationStatus, Option<&str>), at: &str) -> Result<()> {
        let sql = "UPDATE applications SET status = $1, reason = $2, updated_at = $3 WHERE id = $4";
        self.exec(sql, &[&to.0.as_str(), &to.1, &at, &id]).await.map(drop)
    }

    async fn applications_locked(&mut self, ids: &[i64]) -> Result<Vec<Application>> {
        self.rows(&APPS_LOCKED, &[&ids]).await?.iter().map(row::application).collect()
    }

    async fn certificates_locked(&mut self, ids: &[i64]) -> Result<Vec<Certificate>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        self.rows(&CERTS_LOCKED, &[&ids]).await?.iter().map(row::certificate).collect()
    }

    async fn sequence_last(&mut self, scope: &str) -> Result<i64> {
        // Created at 0 and locked: the row lock on the sequence serializes allocation, and the
        // transaction that moves it decides every number it hands out.
        let sql = "INSERT INTO number_sequences (scope, last) VALUES ($1, 0) \
                   ON CONFLICT (scope) DO UPDATE SET last = number_sequences.last RETURNING last";
        self.one(sql, &[&scope], row::first).await
    }

    async fn set_sequence(&mut self, scope: &str, last: i64) -> Result<()> {
        let sql = "UPDATE number_sequences SET last = $2 WHERE scope = $1";
        self.exec(sql, &[&scope, &last]).await.map(drop)
    }

    async fn insert_certificates(&mut self, rows: &[NewCertificate<'_>]) -> Result<Result<Vec<i64>, usize>> {
        let sql = "INSERT INTO certificates (application_id, company_id, issuer, number, version, status, \
                   supersedes, signed, issued_at, signed_sha256) \
                   VALUES ($1, $2, $3, $4, $5, 'issued', $6, $7, $8, $9) RETURNING id";
        let st = self.statement(sql).await?;
        let params: Vec<[&(dyn ToSql + Sync); 9]> = rows
            .iter()
            .map(|c| {
                [
                    &c.application_id,
                    &c.company_id,
                    &c.issuer,
                    &c.number,
                    &c.version,
                    &c.supersedes,
                    &c.signed,
                    &c.issued_at,
                    &c.sha256,
                ] as [&(dyn ToSql + Sync); 9]
            })
            .collect();
        let mut ids = Vec::with_capacity(rows.len());
        for (i, r) in self.pipelined_ids(&st, &params).await.into_iter().enumerate() {
            match r {
                Ok(id) => ids.push(id),
                Err(e) if is_unique(&e) => return Ok(Err(i)),
                Err(e) => return Err(db(e)),
            }
        }
        Ok(Ok(ids))
    }

    async fn set_approved_many(&mut self, rows: &[(i64, i64, &str)]) -> Result<()> {
        let sql =
            "UPDATE applications SET status = 'approved', certificate_id = $1, updated_at = $2 WHERE id = $3";
        let st = self.statement(sql).await?;
        let params: Vec<[&(dyn ToSql + Sync); 3]> =
            rows.iter().map(|(app, cert, at)| [cert as &(dyn ToSql + Sync), at, app]).collect();
        for r in self.pipelined(&st, &params).await {
            r.map_err(db)?;
        }
        Ok(())
    }

    async fn certificates_by_ids(&mut self, ids: &[i64]) -> Result<Vec<Certificate>> {
        self.rows(&CERTS_BY_IDS, &[&ids]).await?.iter().map(row::certificate).collect()
    }

    async fn set_superseded(&mut self, certificate_id: i64, at: &str) -> Result<()> {
        let sql = "UPDATE certificates SET status = 'superseded', status_at = $2 WHERE id = $1";
        self.exec(sql, &[&certificate_id, &at]).await.map(drop)
    }

    async fn set_revoked(&mut self, certificate_id: i64, reason: &str, at: &str) -> Result<()> {
        let sql =
            "UPDATE certificates SET status = 'revoked', revoked_reason = $1, status_at = $3 WHERE id = $2";
        self.exec(sql, &[&reason, &certificate_id, &at]).await.map(drop)
    }
}

impl ReceivedTx for PgTx<'_, '_> {
    async fn insert_received(&mut self, r: &NewReceived, at: &str) -> Result<Option<i64>> {
        let sql = "INSERT INTO received_certificates (issuing_country, number, version, document, received_at, \
                   status, verdict, message_id, exporter) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                   ON CONFLICT (issuing_country, number, version) DO NOTHING RETURNING id";
        let status = r.status.as_str();
        let p: Params<'_> = &[
            &r.issuing_country,
            &r.number,
            &r.version,
            &r.document,
            &at,
            &status,
            &r.verdict,
            &r.message_id,
            &r.exporter,
        ];
        self.opt(sql, p, row::first).await
    }

    async fn received(&mut self, id: i64) -> Result<Option<ReceivedCertificate>> {
        self.opt(&RECEIVED_BY_ID, &[&id], row::received).await
    }
}

impl VerificationsTx for PgTx<'_, '_> {
    async fn open_request(&mut self, dir: &str, v: &NewVerification, at: &str) -> Result<Option<Request>> {
        let deadline = timestamp(&v.deadline);
        let p: Params<'_> =
            &[&dir, &v.message_id, &v.issuing_country, &v.number, &v.partner, &v.questions, &deadline, &at];
        self.opt(&VERIFICATION_INSERT, p, row::verification).await
    }

    async fn find_verification(&mut self, dir: &str, message_id: &str) -> Result<Option<Request>> {
        self.opt(&VERIFICATION_BY_MESSAGE, &[&dir, &message_id], row::verification).await
    }

    async fn lock_verification(&mut self, id: i64) -> Result<Option<Request>> {
        self.opt(&VERIFICATION_BY_ID_LOCKED, &[&id], row::verification).await
    }

    async fn set_verification_answer(&mut self, id: i64, answer: (&str, &str), at: &str) -> Result<Request> {
        self.one(&VERIFICATION_ANSWER, &[&answer.1, &answer.0, &at, &id], row::verification).await
    }
}

impl InboxTx for PgTx<'_, '_> {
    async fn inbox_insert(&mut self, m: &Inbound, state: (&str, Option<&str>), at: &str) -> Result<bool> {
        let sql = "INSERT INTO inbox (message_id, from_country, kind, state, reason, received_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (message_id) DO NOTHING";
        let p: Params<'_> = &[&m.message_id, &m.from_country, &m.kind.kind(), &state.0, &state.1, &at];
        Ok(self.exec(sql, p).await? == 1)
    }

    async fn inbox_state(&mut self, id: &str, state: (&str, Option<&str>), at: &str) -> Result<()> {
        let sql = "UPDATE inbox SET state = $1, reason = $2, updated_at = $3 WHERE message_id = $4";
        self.exec(sql, &[&state.0, &state.1, &at, &id]).await.map(drop)
    }

    async fn refuse(&mut self, r: &Refusal) -> Result<()> {
        refuse(self.tx, r).await
    }

    async fn sent_to(&mut self, number: &str) -> Result<Vec<String>> {
        let sql =
            "SELECT recipient FROM certificate_recipients WHERE number = $1 ORDER BY recipient COLLATE \"C\"";
        self.rows(sql, &[&number]).await?.iter().map(row::first).collect()
    }

    async fn find_received(&mut self, country: &str, number: &str, version: i64) -> Result<Option<Found>> {
        let sql = "SELECT id, status FROM received_certificates \
                   WHERE issuing_country = $1 AND number = $2 AND version = $3 FOR UPDATE";
        let found = self.opt(sql, &[&country, &number, &version], row::received_status).await?;
        Ok(found.map(|(id, status)| Found { id, status }))
    }

    async fn set_received_status(&mut self, id: i64, to: ReceivedStatus, reason: Option<&str>) -> Result<()> {
        let sql = "UPDATE received_certificates SET status = $1, revoked_reason = COALESCE($2, revoked_reason) \
                   WHERE id = $3";
        self.exec(sql, &[&to.as_str(), &reason, &id]).await.map(drop)
    }

    async fn hold(&mut self, h: &Held<'_>) -> Result<()> {
        let sql = "INSERT INTO inbox_held (message_id, cert_key, waits_for, message, held_at) \
                   VALUES ($1, $2, $3, $4, $5)";
        self.exec(sql, &[&h.message_id, &h.cert_key, &h.waits_for, &h.message, &h.at]).await.map(drop)
    }

    async fn take_held(&mut self, cert_key: &str, version: i64) -> Result<Vec<(String, String)>> {
        let sql = "DELETE FROM inbox_held WHERE cert_key = $1 AND waits_for = $2 RETURNING seq, message_id, message";
        let rows = self.rows(sql, &[&cert_key, &version]).await?;
        let mut rows =
            rows.iter().map(|r| Ok((r.col::<i64>(0)?, r.col(1)?, r.col(2)?))).collect::<Result<Vec<_>>>()?;
        rows.sort_unstable_by_key(|r| r.0);
        Ok(rows.into_iter().map(|r| (r.1, r.2)).collect())
    }

    async fn insert_status(&mut self, s: &StatusEvent) -> Result<Option<i64>> {
        let sql = "INSERT INTO certificate_statuses (number, version, from_country, status, code, detail, \
                   message_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let p: Params<'_> =
            &[&s.number, &s.version, &s.from_country, &s.status, &s.code, &s.detail, &s.message_id, &s.at];
        self.exec(sql, p).await?;
        let sql = "SELECT id FROM certificates WHERE number = $1 AND version = $2 ORDER BY id LIMIT 1";
        self.opt(sql, &[&s.number, &s.version], row::first).await
    }

    async fn put_status_list(&mut self, l: &StoredStatusList) -> Result<bool> {
        let p: Params<'_> = &[&l.issuer, &l.sequence, &l.issued_at, &l.next_update, &l.signed, &l.stored_at];
        Ok(self.exec(row::PUT_STATUS_LIST, p).await? > 0)
    }
}

impl DeclTx for PgTx<'_, '_> {
    async fn insert_declaration(&mut self, d: &NewDeclaration, at: &str) -> Result<Option<i64>> {
        let sql = "INSERT INTO declarations (number, importer, importing_country, declaration_date, document, \
                   created_by, created_at, importer_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
        let date = d.declaration_date.format("%Y-%m-%d").to_string();
        let key = &d.importer_key;
        let p: Params<'_> =
            &[&d.number, &d.importer, &d.importing_country, &date, &d.document, &d.created_by, &at, key];
        let Some(id) = self.insert_id(sql, p).await? else { return Ok(None) };
        let sql = "INSERT INTO declaration_lines (declaration_id, line_no, eco_country, eco_number, exporter, \
                   declared_on, agreement) VALUES ($1, $2, $3, $4, $5, $6, $7)";
        for l in &d.lines {
            let p: Params<'_> =
                &[&id, &l.line_no, &l.eco_country, &l.eco_number, &l.exporter, &date, &l.agreement];
            self.exec(sql, p).await?;
        }
        Ok(Some(id))
    }

    async fn declaration(&mut self, id: i64) -> Result<Option<Declaration>> {
        declaration(self.tx, "id", &id).await
    }

    async fn lock_risk(&mut self, id: i64) -> Result<Option<(i64, String)>> {
        self.opt("SELECT risk_score, risk FROM declarations WHERE id = $1 FOR UPDATE", &[&id], row::pair)
            .await
    }

    async fn set_risk(&mut self, id: i64, score: i64, risk: &str) -> Result<()> {
        let sql = "UPDATE declarations SET risk_score = $1, risk = $2 WHERE id = $3";
        self.exec(sql, &[&score, &risk, &id]).await.map(drop)
    }

    async fn lock_line_eco(&mut self, declaration_id: i64, line_no: i32) -> Result<Option<Option<String>>> {
        let sql =
            "SELECT eco_number FROM declaration_lines WHERE declaration_id = $1 AND line_no = $2 FOR UPDATE";
        self.opt(sql, &[&declaration_id, &line_no], row::first).await
    }

    async fn link_line(&mut self, line: (i64, i32), country: &str, number: &str) -> Result<()> {
        let (declaration_id, line_no) = line;
        let sql = "UPDATE declaration_lines SET eco_country = $1, eco_number = $2 \
                   WHERE declaration_id = $3 AND line_no = $4";
        self.exec(sql, &[&country, &number, &declaration_id, &line_no]).await.map(drop)
    }

    async fn lock_declaration(&mut self, id: i64) -> Result<Option<String>> {
        self.opt("SELECT number FROM declarations WHERE id = $1 FOR UPDATE", &[&id], row::first).await
    }

    async fn line(&mut self, declaration_id: i64, line_no: i32) -> Result<Option<DeclarationLine>> {
        self.opt(&LINE, &[&declaration_id, &line_no], row::line).await
    }

    async fn active_use(&mut self, declaration_id: i64, line_no: i32) -> Result<Option<ActiveUse>> {
        let sql = "SELECT id, issuing_country, number, item, quantity FROM utilizations \
                   WHERE declaration_id = $1 AND line_no = $2 AND released_at IS NULL";
        self.opt(sql, &[&declaration_id, &line_no], ActiveUse::read).await
    }

    async fn lock_certificate(&mut self, key: &str) -> Result<()> {
        self.exec("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&LEDGER_LOCK_CLASS, &key])
            .await
            .map(drop)
    }

    async fn ledger_remaining(&mut self, item: Item<'_>, total: Option<&str>) -> Result<Option<String>> {
        let (country, number, item) = item;
        if let Some(total) = total {
            let sql = "INSERT INTO ledger (issuing_country, number, item, total, remaining) \
                       VALUES ($1, $2, $3, $4, $4) ON CONFLICT DO NOTHING";
            self.exec(sql, &[&country, &number, &item, &total]).await?;
        }
        let sql = "SELECT remaining FROM ledger WHERE issuing_country = $1 AND number = $2 AND item = $3 FOR UPDATE";
        self.opt(sql, &[&country, &number, &item], row::first).await
    }

    async fn set_remaining(&mut self, item: Item<'_>, remaining: &str) -> Result<()> {
        let sql = "UPDATE ledger SET remaining = $1 WHERE issuing_country = $2 AND number = $3 AND item = $4";
        self.exec(sql, &[&remaining, &item.0, &item.1, &item.2]).await.map(drop)
    }

    async fn other_user(&mut self, cert: (&str, &str), declaration_id: i64) -> Result<Option<String>> {
        let (country, number) = cert;
        let sql = "SELECT d.number FROM utilizations u JOIN declarations d ON d.id = u.declaration_id \
                   WHERE u.issuing_country = $1 AND u.number = $2 AND u.released_at IS NULL \
                   AND u.declaration_id <> $3 ORDER BY u.id LIMIT 1";
        self.opt(sql, &[&country, &number, &declaration_id], row::first).await
    }

    async fn release_use(&mut self, use_id: i64, at: &str) -> Result<()> {
        self.exec("UPDATE utilizations SET released_at = $1 WHERE id = $2", &[&at, &use_id]).await.map(drop)
    }

    async fn insert_use(&mut self, line: (i64, i32), u: &Utilization, at: &str) -> Result<()> {
        let (declaration_id, line_no) = line;
        let sql = "INSERT INTO utilizations (declaration_id, line_no, issuing_country, number, item, quantity, \
                   remaining_after, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let p: Params<'_> = &[
            &declaration_id,
            &line_no,
            &u.issuing_country,
            &u.number,
            &u.item,
            &u.quantity,
            &u.remaining_after,
            &at,
        ];
        self.exec(sql, p).await.map(drop)
    }

    async fn count_revenue(&mut self, (declaration_id, line_no): (i64, i32), sign: i64) -> Result<()> {
        let sql = row::count_revenue_sql("$1", "$2", "$3::bigint");
        self.tx.execute(&sql, &[&declaration_id, &line_no, &sign]).await.map_err(db).map(drop)
    }

    async fn update_line(&mut self, declaration_id: i64, l: &DeclarationLine, f: &Figures) -> Result<()> {
        let sql = "UPDATE declaration_lines SET outcome = $1, reasons = $2, matched_item = $3, consumed = $4, \
                   duty = $5, decided_at = $6, currency = $9, mfn_minor = $10, due_granted_minor = $11, \
                   due_denied_minor = $12 WHERE declaration_id = $7 AND line_no = $8";
        let p: Params<'_> = &[
            &l.outcome,
            &l.reasons,
            &l.matched_item,
            &l.consumed,
            &l.duty,
            &l.decided_at,
            &declaration_id,
            &l.line_no,
            &f.currency,
            &f.mfn_minor,
            &f.due_granted_minor,
            &f.due_denied_minor,
        ];
        self.exec(sql, p).await.map(drop)
    }
}

impl NotifyTx for PgTx<'_, '_> {
    async fn insert_notification(&mut self, n: &NewNotification) -> Result<Option<i64>> {
        let sql = "INSERT INTO notifications (key, audience, kind, link, args, at) VALUES ($1, $2, $3, $4, $5, $6) \
                   ON CONFLICT (key) DO NOTHING RETURNING id";
        let at = timestamp(&n.at);
        self.opt(sql, &[&n.key, &n.audience, &n.kind, &n.link, &n.args, &at], |r| r.col(0)).await
    }

    async fn insert_delivery(&mut self, notification: i64, d: &NewDelivery, at: &str) -> Result<()> {
        let sql = "INSERT INTO notification_deliveries (notification_id, channel, target, next_at) \
                   VALUES ($1, $2, $3, $4)";
        self.exec(sql, &[&notification, &d.channel, &d.target, &at]).await.map(drop)
    }

    async fn set_cursor(&mut self, seq: i64) -> Result<()> {
        let sql =
            "INSERT INTO notifier_cursor (id, seq) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET seq = $1";
        self.exec(sql, &[&seq]).await.map(drop)
    }

    async fn set_email_address(&mut self, user_id: i64, email: Option<&str>) -> Result<()> {
        self.exec("UPDATE users SET email = $1 WHERE id = $2", &[&email, &user_id]).await.map(drop)
    }
}

impl MigrateTx for PgTx<'_, '_> {
    async fn lock_schema(&mut self) -> Result<()> {
        // Replicas may start together: one migrates, the others wait on this lock.
        self.exec("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map(drop)
    }

    async fn create_bookkeeping(&mut self) -> Result<()> {
        let sql = "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)";
        self.tx.batch_execute(sql).await.map_err(db)
    }

    async fn applied(&mut self, version: i64) -> Result<bool> {
        let sql = "SELECT version FROM schema_migrations WHERE version = $1";
        Ok(self.opt(sql, &[&version], |_| Ok(())).await?.is_some())
    }

    async fn run_sql(&mut self, sql: &str) -> Result<()> {
        self.tx.batch_execute(sql).await.map_err(db)
    }

    async fn record(&mut self, version: i64) -> Result<()> {
        self.exec("INSERT INTO schema_migrations (version) VALUES ($1)", &[&version]).await.map(drop)
    }
}
