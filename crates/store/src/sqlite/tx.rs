//! The SQLite side of the transaction interfaces: SQL text, parameter binding and row access
//! over the writer's open transaction. Every call completes synchronously (the rules run it
//! through `ready` in the parent module); the writer lock serializes everything, so nothing locks
//! rows.

use std::sync::LazyLock;

use rusqlite::{Connection, Params, Transaction, params};

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

/// One user as an administrator sees it.
pub(super) static USER_BY_ID: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM users u LEFT JOIN companies c ON c.id = u.company_id WHERE u.id = ?1",
        row::USER_RECORD_COLS
    )
});

/// A session in force by its id's hash.
pub(super) static SESSION: LazyLock<String> = LazyLock::new(|| row::session_by_id("?1"));

pub(super) fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn is_unique(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

impl Row for rusqlite::Row<'_> {
    fn col<T: Col>(&self, i: usize) -> Result<T> {
        self.get(i).map_err(db)
    }
}

/// Runs a (cached) statement; the number of rows changed.
pub(super) fn exec(c: &Connection, sql: &str, p: impl Params) -> Result<usize> {
    c.prepare_cached(sql).map_err(db)?.execute(p).map_err(db)
}

/// [`exec`], `None` when a unique constraint refuses the row.
fn exec_unique(c: &Connection, sql: &str, p: impl Params) -> Result<Option<usize>> {
    match c.prepare_cached(sql).map_err(db)?.execute(p) {
        Ok(n) => Ok(Some(n)),
        Err(e) if is_unique(&e) => Ok(None),
        Err(e) => Err(db(e)),
    }
}

/// The first row of a (cached) query, read by `f`.
pub(super) fn opt<T>(
    c: &Connection,
    sql: &str,
    p: impl Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Option<T>> {
    let mut st = c.prepare_cached(sql).map_err(db)?;
    let mut rows = st.query(p).map_err(db)?;
    rows.next().map_err(db)?.map(f).transpose()
}

/// The only row of a (cached) query, read by `f`.
pub(super) fn one<T>(
    c: &Connection,
    sql: &str,
    p: impl Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<T> {
    opt(c, sql, p, f)?.ok_or_else(|| db(rusqlite::Error::QueryReturnedNoRows))
}

/// Every row of a (cached) query, read by `f`.
pub(super) fn all<T>(
    c: &Connection,
    sql: &str,
    p: impl Params,
    mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut st = c.prepare_cached(sql).map_err(db)?;
    let mut rows = st.query(p).map_err(db)?;
    let mut out = vec![];
    while let Some(r) = rows.next().map_err(db)? {
        out.push(f(r)?);
    }
    Ok(out)
}

pub(super) static APP_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM applications WHERE id = ?1", row::APP_COLS));
pub(super) static CERT_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM certificates WHERE id = ?1", row::cert_cols(row::CERT_COLS)));
pub(super) static RECEIVED_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM received_certificates WHERE id = ?1", row::RECEIVED_COLS));
pub(super) static VERIFICATION_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} FROM verification_requests WHERE id = ?1", row::VERIFICATION_COLS));

/// The lines of a declaration, by line number.
pub(super) fn lines(c: &Connection, declaration_id: i64) -> Result<Vec<DeclarationLine>> {
    let sql = format!(
        "SELECT {} FROM declaration_lines WHERE declaration_id = ?1 ORDER BY line_no",
        row::LINE_COLS
    );
    all(c, &sql, [declaration_id], |r| row::line(r))
}

/// One declaration (`column` is `id` or `number`) with its lines.
pub(super) fn declaration(
    c: &Connection,
    column: &str,
    key: impl rusqlite::ToSql,
) -> Result<Option<Declaration>> {
    let sql = format!("SELECT {} FROM declarations WHERE {column} = ?1", row::DECL_COLS);
    let Some(mut d) = opt(c, &sql, [key], |r| row::declaration(r))? else { return Ok(None) };
    d.lines = lines(c, d.id)?;
    Ok(Some(d))
}

/// A refused message, recorded.
pub(super) fn refuse(c: &Connection, r: &Refusal) -> Result<()> {
    let sql = "INSERT INTO inbox_refused (message_id, from_country, kind, via, code, reason, at) \
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    exec(c, sql, params![r.message_id, r.from_country, r.kind, r.via, r.code, r.reason, r.at]).map(drop)
}

/// The writer's open transaction, with the audit chain its events are appended to.
pub(super) struct LiteTx<'t, 'c> {
    pub(super) tx: &'t Transaction<'c>,
    pub(super) chain: &'t Chain,
}

impl AuditTx for LiteTx<'_, '_> {
    fn chain(&self) -> &Chain {
        self.chain
    }

    async fn audit_head(&mut self) -> Result<Option<(i64, String)>> {
        opt(self.tx, "SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| row::pair(r))
    }

    async fn insert_events(&mut self, rows: &[EventRow<'_>]) -> Result<Option<i64>> {
        let sql = "INSERT INTO audit_events (seq, at, actor, action, entity, before, after, prev_hash, hash) \
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
        for e in rows {
            let ev = e.event;
            let p =
                params![e.seq, e.at, e.actor, ev.action, ev.entity, ev.before, ev.after, e.prev_hash, e.hash];
            if exec_unique(self.tx, sql, p)?.is_none() {
                return Ok(Some(e.seq));
            }
        }
        Ok(None)
    }

    async fn set_audit_head(&mut self, seq: i64, hash: &str) -> Result<()> {
        exec(self.tx, "UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1", params![seq, hash]).map(drop)
    }
}

impl OutboxTx for LiteTx<'_, '_> {
    async fn insert_message(&mut self, m: &OutMessage, at: &str) -> Result<bool> {
        // The envelope goes to `outbox_bodies` (V14), written once; the row claims update stays small.
        let sql = "INSERT INTO outbox (id, recipient, kind, cert_key, body, created_at, next_attempt_at) \
                   VALUES (?1, ?2, ?3, ?4, X'', ?5, ?5)";
        if exec_unique(self.tx, sql, params![m.id, m.recipient, m.kind, m.cert_key, at])?.is_none() {
            return Ok(false);
        }
        exec(self.tx, "INSERT INTO outbox_bodies (seq, body) VALUES (last_insert_rowid(), ?1)", [&m.body])?;
        Ok(true)
    }

    async fn add_recipient(&mut self, number: &str, recipient: &str) -> Result<()> {
        let sql =
            "INSERT INTO certificate_recipients (number, recipient) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
        exec(self.tx, sql, params![number, recipient]).map(drop)
    }

    async fn dead_letter(&mut self, id: &str) -> Result<Option<OutboxRow>> {
        let sql = format!("SELECT {} FROM outbox WHERE id = ?1 AND dead = 1", super::OUTBOX_COLS_LITE);
        opt(self.tx, &sql, [id], |r| row::outbox(r))
    }

    async fn revive(&mut self, id: &str, at: &str) -> Result<OutboxRow> {
        let sql = format!(
            "UPDATE outbox SET dead = 0, attempts = 0, next_attempt_at = ?1, lease_until = NULL \
             WHERE id = ?2 RETURNING {}",
            super::OUTBOX_COLS_LITE
        );
        one(self.tx, &sql, params![at, id], |r| row::outbox(r))
    }
}

impl UsersTx for LiteTx<'_, '_> {
    async fn insert_company(&mut self, name: &str, country: &str, at: &str) -> Result<Option<i64>> {
        let sql = "INSERT INTO companies (name, country, created_at) VALUES (?1, ?2, ?3)";
        Ok(exec_unique(self.tx, sql, params![name, country, at])?.map(|_| self.tx.last_insert_rowid()))
    }

    async fn insert_user(&mut self, u: &NewUser, at: &str) -> Result<Option<i64>> {
        let sql = "INSERT INTO users (name, role, company_id, created_at) VALUES (?1, ?2, ?3, ?4)";
        let p = params![u.name, u.role.as_str(), u.company_id, at];
        Ok(exec_unique(self.tx, sql, p)?.map(|_| self.tx.last_insert_rowid()))
    }

    async fn insert_token(&mut self, hash: &[u8; 32], user_id: i64, at: &str) -> Result<()> {
        let sql = "INSERT INTO tokens (token_hash, user_id, created_at) VALUES (?1, ?2, ?3)";
        exec(self.tx, sql, params![&hash[..], user_id, at]).map(drop)
    }

    async fn user_record(&mut self, id: i64) -> Result<Option<UserRecord>> {
        opt(self.tx, &USER_BY_ID, [id], |r| row::user_record(r))
    }

    async fn set_disabled_at(&mut self, id: i64, at: Option<&str>) -> Result<()> {
        exec(self.tx, "UPDATE users SET disabled_at = ?1 WHERE id = ?2", params![at, id]).map(drop)
    }

    async fn revoke_tokens(&mut self, user_id: i64, at: &str) -> Result<i64> {
        let sql = "UPDATE tokens SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL";
        Ok(exec(self.tx, sql, params![at, user_id])? as i64)
    }

    async fn set_password_hash(&mut self, user_id: i64, hash: &str) -> Result<()> {
        exec(self.tx, "UPDATE users SET password_hash = ?1 WHERE id = ?2", params![hash, user_id]).map(drop)
    }

    async fn insert_session(&mut self, s: &NewSession, at: &str) -> Result<()> {
        let sql = "INSERT INTO sessions (id_hash, user_id, csrf, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?4)";
        exec(self.tx, sql, params![&s.id_hash[..], s.user_id, s.csrf, at]).map(drop)
    }

    async fn touch_session(&mut self, id_hash: &[u8; 32], at: &str) -> Result<()> {
        let sql = "UPDATE sessions SET last_seen_at = ?1 WHERE id_hash = ?2 AND ended_at IS NULL";
        exec(self.tx, sql, params![at, &id_hash[..]]).map(drop)
    }

    async fn end_session(&mut self, id_hash: &[u8; 32], at: &str) -> Result<Option<i64>> {
        let sql =
            "UPDATE sessions SET ended_at = ?1 WHERE id_hash = ?2 AND ended_at IS NULL RETURNING user_id";
        opt(self.tx, sql, params![at, &id_hash[..]], |r| r.col(0))
    }

    async fn end_user_sessions(&mut self, user_id: i64, at: &str) -> Result<i64> {
        let sql = "UPDATE sessions SET ended_at = ?1 WHERE user_id = ?2 AND ended_at IS NULL";
        Ok(exec(self.tx, sql, params![at, user_id])? as i64)
    }

    async fn insert_invitation(&mut self, hash: &[u8; 32], user_id: i64, span: [&str; 2]) -> Result<()> {
        let [at, expires_at] = span;
        let sql =
            "INSERT INTO invitations (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)";
        exec(self.tx, sql, params![&hash[..], user_id, at, expires_at]).map(drop)
    }

    async fn use_invitation(&mut self, hash: &[u8; 32], at: &str) -> Result<Option<i64>> {
        let sql = "UPDATE invitations SET used_at = ?1 \
                   WHERE token_hash = ?2 AND used_at IS NULL AND expires_at > ?1 RETURNING user_id";
        opt(self.tx, sql, params![at, &hash[..]], |r| r.col(0))
    }
}

impl IssuanceTx for LiteTx<'_, '_> {
    async fn application(&mut self, id: i64, _lock: bool) -> Result<Option<Application>> {
        opt(self.tx, &APP_BY_ID, [id], |r| row::application(r))
    }

    async fn certificate(&mut self, id: i64, _lock: bool) -> Result<Option<Certificate>> {
        opt(self.tx, &CERT_BY_ID, [id], |r| row::certificate(r))
    }

    async fn received_exists(&mut self, id: i64) -> Result<bool> {
        Ok(opt(self.tx, "SELECT id FROM received_certificates WHERE id = ?1", [id], |r| {
            row::first::<_, i64>(r)
        })?
        .is_some())
    }

    async fn insert_application(&mut self, a: &NewApplication, at: &str) -> Result<i64> {
        let sql = "INSERT INTO applications (company_id, status, format, document, self_assessment, assessment, \
                   replaces, back_to_back_of, created_by, created_at, updated_at) \
                   VALUES (?1, 'draft', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)";
        let (doc, sa, asm) = (&a.document, &a.self_assessment, &a.assessment);
        exec(
            self.tx,
            sql,
            params![a.company_id, a.format, doc, sa, asm, a.replaces, a.back_to_back_of, a.created_by, at],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    async fn set_content(&mut self, id: i64, e: &EditApplication, at: &str) -> Result<()> {
        let (format, doc) = e.document.as_ref().map(|(f, d)| (f, d)).unzip();
        let (sa, asm) = e.self_assessment.as_ref().map(|(i, r)| (i, r)).unzip();
        let sql = "UPDATE applications SET format = COALESCE(?1, format), document = COALESCE(?2, document), \
                   self_assessment = COALESCE(?3, self_assessment), assessment = COALESCE(?4, assessment), \
                   updated_at = ?5 WHERE id = ?6";
        exec(self.tx, sql, params![format, doc, sa, asm, at, id]).map(drop)
    }

    async fn set_status(&mut self, id: i64, to: (ApplicationStatus, Option<&str>), at: &str) -> Result<()> {
        let sql = "UPDATE applications SET status = ?1, reason = ?2, updated_at = ?3 WHERE id = ?4";
        exec(self.tx, sql, params![to.0.as_str(), to.1, at, id]).map(drop)
    }

    async fn applications_locked(&mut self, ids: &[i64]) -> Result<Vec<Application>> {
        // The writer lock serializes everything: read them in id order.
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(opt(self.tx, &APP_BY_ID, [id], |r| row::application(r))?);
        }
        Ok(out)
    }

    async fn certificates_locked(&mut self, ids: &[i64]) -> Result<Vec<Certificate>> {
        self.certificates_by_ids(ids).await
    }

    async fn sequence_last(&mut self, scope: &str) -> Result<i64> {
        let sql = "INSERT INTO number_sequences (scope, last) VALUES (?1, 0) \
                   ON CONFLICT (scope) DO UPDATE SET last = last RETURNING last";
        one(self.tx, sql, [scope], |r| row::first(r))
    }

    async fn set_sequence(&mut self, scope: &str, last: i64) -> Result<()> {
        exec(self.tx, "UPDATE number_sequences SET last = ?2 WHERE scope = ?1", params![scope, last])
            .map(drop)
    }

    async fn insert_certificates(&mut self, rows: &[NewCertificate<'_>]) -> Result<Result<Vec<i64>, usize>> {
        let sql = "INSERT INTO certificates (application_id, company_id, issuer, number, version, status, supersedes, \
                   signed, issued_at, signed_sha256) VALUES (?1, ?2, ?3, ?4, ?5, 'issued', ?6, ?7, ?8, ?9)";
        let mut ids = Vec::with_capacity(rows.len());
        for (i, c) in rows.iter().enumerate() {
            let p = params![
                c.application_id,
                c.company_id,
                c.issuer,
                c.number,
                c.version,
                c.supersedes,
                c.signed,
                c.issued_at,
                c.sha256
            ];
            if exec_unique(self.tx, sql, p)?.is_none() {
                return Ok(Err(i));
            }
            ids.push(self.tx.last_insert_rowid());
        }
        Ok(Ok(ids))
    }

    async fn set_approved_many(&mut self, rows: &[(i64, i64, &str)]) -> Result<()> {
        let sql =
            "UPDATE applications SET status = 'approved', certificate_id = ?1, updated_at = ?2 WHERE id = ?3";
        for (id, certificate_id, at) in rows {
            exec(self.tx, sql, params![certificate_id, at, id])?;
        }
        Ok(())
    }

    async fn certificates_by_ids(&mut self, ids: &[i64]) -> Result<Vec<Certificate>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.extend(opt(self.tx, &CERT_BY_ID, [id], |r| row::certificate(r))?);
        }
        Ok(out)
    }

    async fn set_superseded(&mut self, certificate_id: i64, at: &str) -> Result<()> {
        let sql = "UPDATE certificates SET status = 'superseded', status_at = ?2 WHERE id = ?1";
        exec(self.tx, sql, params![certificate_id, at]).map(drop)
    }

    async fn set_revoked(&mut self, certificate_id: i64, reason: &str, at: &str) -> Result<()> {
        let sql =
            "UPDATE certificates SET status = 'revoked', revoked_reason = ?1, status_at = ?3 WHERE id = ?2";
        exec(self.tx, sql, params![reason, certificate_id, at]).map(drop)
    }
}

impl ReceivedTx for LiteTx<'_, '_> {
    async fn insert_received(&mut self, r: &NewReceived, at: &str) -> Result<Option<i64>> {
        let sql = "INSERT INTO received_certificates (issuing_country, number, version, document, received_at, \
                   status, verdict, message_id, exporter) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                   ON CONFLICT (issuing_country, number, version) DO NOTHING RETURNING id";
        let (country, status) = (&r.issuing_country, r.status.as_str());
        opt(
            self.tx,
            sql,
            params![
                country,
                r.number,
                r.version,
                r.document,
                at,
                status,
                r.verdict,
                r.message_id,
                r.exporter
            ],
            |r| row::first(r),
        )
    }

    async fn received(&mut self, id: i64) -> Result<Option<ReceivedCertificate>> {
        opt(self.tx, &RECEIVED_BY_ID, [id], |r| row::received(r))
    }
}

impl VerificationsTx for LiteTx<'_, '_> {
    async fn open_request(&mut self, dir: &str, v: &NewVerification, at: &str) -> Result<Option<Request>> {
        let sql = format!(
            "INSERT INTO verification_requests (direction, message_id, issuing_country, number, partner, \
             questions, deadline, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', ?8) \
             ON CONFLICT (direction, message_id) DO NOTHING RETURNING {}",
            row::VERIFICATION_COLS
        );
        let (deadline, q) = (timestamp(&v.deadline), &v.questions);
        let p = params![dir, v.message_id, v.issuing_country, v.number, v.partner, q, deadline, at];
        opt(self.tx, &sql, p, |r| row::verification(r))
    }

    async fn find_verification(&mut self, dir: &str, message_id: &str) -> Result<Option<Request>> {
        let sql = format!(
            "SELECT {} FROM verification_requests WHERE direction = ?1 AND message_id = ?2",
            row::VERIFICATION_COLS
        );
        opt(self.tx, &sql, [dir, message_id], |r| row::verification(r))
    }

    async fn lock_verification(&mut self, id: i64) -> Result<Option<Request>> {
        opt(self.tx, &VERIFICATION_BY_ID, [id], |r| row::verification(r))
    }

    async fn set_verification_answer(&mut self, id: i64, answer: (&str, &str), at: &str) -> Result<Request> {
        let sql = format!(
            "UPDATE verification_requests SET status = ?1, outcome = ?1, answer = ?2, answered_at = ?3 \
             WHERE id = ?4 RETURNING {}",
            row::VERIFICATION_COLS
        );
        one(self.tx, &sql, params![answer.1, answer.0, at, id], |r| row::verification(r))
    }
}

impl InboxTx for LiteTx<'_, '_> {
    async fn inbox_insert(&mut self, m: &Inbound, state: (&str, Option<&str>), at: &str) -> Result<bool> {
        let sql = "INSERT INTO inbox (message_id, from_country, kind, state, reason, received_at, updated_at) \
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (message_id) DO NOTHING";
        Ok(exec(self.tx, sql, params![m.message_id, m.from_country, m.kind.kind(), state.0, state.1, at])?
            == 1)
    }

    async fn inbox_state(&mut self, id: &str, state: (&str, Option<&str>), at: &str) -> Result<()> {
        let sql = "UPDATE inbox SET state = ?1, reason = ?2, updated_at = ?3 WHERE message_id = ?4";
        exec(self.tx, sql, params![state.0, state.1, at, id]).map(drop)
    }

    async fn refuse(&mut self, r: &Refusal) -> Result<()> {
        refuse(self.tx, r)
    }

    async fn sent_to(&mut self, number: &str) -> Result<Vec<String>> {
        let sql = "SELECT recipient FROM certificate_recipients WHERE number = ?1 ORDER BY recipient";
        all(self.tx, sql, [number], |r| row::first(r))
    }

    async fn find_received(&mut self, country: &str, number: &str, version: i64) -> Result<Option<Found>> {
        let sql = "SELECT id, status FROM received_certificates \
                   WHERE issuing_country = ?1 AND number = ?2 AND version = ?3";
        let found = opt(self.tx, sql, params![country, number, version], |r| row::received_status(r))?;
        Ok(found.map(|(id, status)| Found { id, status }))
    }

    async fn set_received_status(&mut self, id: i64, to: ReceivedStatus, reason: Option<&str>) -> Result<()> {
        let sql = "UPDATE received_certificates SET status = ?1, revoked_reason = COALESCE(?2, revoked_reason) \
                   WHERE id = ?3";
        exec(self.tx, sql, params![to.as_str(), reason, id]).map(drop)
    }

    async fn hold(&mut self, h: &Held<'_>) -> Result<()> {
        let sql = "INSERT INTO inbox_held (message_id, cert_key, waits_for, message, held_at) \
                   VALUES (?1, ?2, ?3, ?4, ?5)";
        exec(self.tx, sql, params![h.message_id, h.cert_key, h.waits_for, h.message, h.at]).map(drop)
    }

    async fn take_held(&mut self, cert_key: &str, version: i64) -> Result<Vec<(String, String)>> {
        let sql = "DELETE FROM inbox_held WHERE cert_key = ?1 AND waits_for = ?2 RETURNING seq, message_id, message";
        let mut rows: Vec<(i64, String, String)> =
            all(self.tx, sql, params![cert_key, version], |r| Ok((r.col(0)?, r.col(1)?, r.col(2)?)))?;
        rows.sort_unstable_by_key(|r| r.0);
        Ok(rows.into_iter().map(|r| (r.1, r.2)).collect())
    }

    async fn insert_status(&mut self, s: &StatusEvent) -> Result<Option<i64>> {
        let sql = "INSERT INTO certificate_statuses (number, version, from_country, status, code, detail, \
                   message_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
        exec(
            self.tx,
            sql,
            params![s.number, s.version, s.from_country, s.status, s.code, s.detail, s.message_id, s.at],
        )?;
        let sql = "SELECT id FROM certificates WHERE number = ?1 AND version = ?2 ORDER BY id LIMIT 1";
        opt(self.tx, sql, params![s.number, s.version], |r| row::first(r))
    }

    async fn put_status_list(&mut self, l: &StoredStatusList) -> Result<bool> {
        let sql = row::PUT_STATUS_LIST.replace('$', "?");
        let p = params![l.issuer, l.sequence, l.issued_at, l.next_update, l.signed, l.stored_at];
        Ok(exec(self.tx, &sql, p)? > 0)
    }
}

impl DeclTx for LiteTx<'_, '_> {
    async fn insert_declaration(&mut self, d: &NewDeclaration, at: &str) -> Result<Option<i64>> {
        let sql = "INSERT INTO declarations (number, importer, importing_country, declaration_date, document, \
                   created_by, created_at, importer_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
        let date = d.declaration_date.format("%Y-%m-%d").to_string();
        let (number, importer, key) = (&d.number, &d.importer, &d.importer_key);
        let p = params![number, importer, d.importing_country, date, d.document, d.created_by, at, key];
        if exec_unique(self.tx, sql, p)?.is_none() {
            return Ok(None);
        }
        let id = self.tx.last_insert_rowid();
        let mut st = self
            .tx
            .prepare_cached(
                "INSERT INTO declaration_lines (declaration_id, line_no, eco_country, eco_number, exporter, \
                 declared_on, agreement) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(db)?;
        for l in &d.lines {
            let p = params![id, l.line_no, l.eco_country, l.eco_number, l.exporter, date, l.agreement];
            st.execute(p).map_err(db)?;
        }
        Ok(Some(id))
    }

    async fn declaration(&mut self, id: i64) -> Result<Option<Declaration>> {
        declaration(self.tx, "id", id)
    }

    async fn lock_risk(&mut self, id: i64) -> Result<Option<(i64, String)>> {
        opt(self.tx, "SELECT risk_score, risk FROM declarations WHERE id = ?1", [id], |r| row::pair(r))
    }

    async fn set_risk(&mut self, id: i64, score: i64, risk: &str) -> Result<()> {
        let sql = "UPDATE declarations SET risk_score = ?1, risk = ?2 WHERE id = ?3";
        exec(self.tx, sql, params![score, risk, id]).map(drop)
    }

    async fn lock_line_eco(&mut self, declaration_id: i64, line_no: i32) -> Result<Option<Option<String>>> {
        let sql = "SELECT eco_number FROM declaration_lines WHERE declaration_id = ?1 AND line_no = ?2";
        opt(self.tx, sql, params![declaration_id, line_no], |r| row::first(r))
    }

    async fn link_line(&mut self, line: (i64, i32), country: &str, number: &str) -> Result<()> {
        let (declaration_id, line_no) = line;
        let sql = "UPDATE declaration_lines SET eco_country = ?1, eco_number = ?2 \
                   WHERE declaration_id = ?3 AND line_no = ?4";
        exec(self.tx, sql, params![country, number, declaration_id, line_no]).map(drop)
    }

    async fn lock_declaration(&mut self, id: i64) -> Result<Option<String>> {
        opt(self.tx, "SELECT number FROM declarations WHERE id = ?1", [id], |r| row::first(r))
    }

    async fn line(&mut self, declaration_id: i64, line_no: i32) -> Result<Option<DeclarationLine>> {
        let sql = format!(
            "SELECT {} FROM declaration_lines WHERE declaration_id = ?1 AND line_no = ?2",
            row::LINE_COLS
        );
        opt(self.tx, &sql, params![declaration_id, line_no], |r| row::line(r))
    }

    async fn active_use(&mut self, declaration_id: i64, line_no: i32) -> Result<Option<ActiveUse>> {
        let sql = "SELECT id, issuing_country, number, item, quantity FROM utilizations \
                   WHERE declaration_id = ?1 AND line_no = ?2 AND released_at IS NULL";
        opt(self.tx, sql, params![declaration_id, line_no], |r| ActiveUse::read(r))
    }

    async fn lock_certificate(&mut self, _key: &str) -> Result<()> {
        Ok(())
    }

    async fn ledger_remaining(&mut self, item: Item<'_>, total: Option<&str>) -> Result<Option<String>> {
        let (country, number, item) = item;
        if let Some(total) = total {
            let sql = "INSERT INTO ledger (issuing_country, number, item, total, remaining) \
                       VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT DO NOTHING";
            exec(self.tx, sql, params![country, number, item, total])?;
        }
        let sql = "SELECT remaining FROM ledger WHERE issuing_country = ?1 AND number = ?2 AND item = ?3";
        opt(self.tx, sql, params![country, number, item], |r| row::first(r))
    }

    async fn set_remaining(&mut self, item: Item<'_>, remaining: &str) -> Result<()> {
        let sql = "UPDATE ledger SET remaining = ?1 WHERE issuing_country = ?2 AND number = ?3 AND item = ?4";
        exec(self.tx, sql, params![remaining, item.0, item.1, item.2]).map(drop)
    }

    async fn other_user(&mut self, cert: (&str, &str), declaration_id: i64) -> Result<Option<String>> {
        let (country, number) = cert;
        let sql = "SELECT d.number FROM utilizations u JOIN declarations d ON d.id = u.declaration_id \
                   WHERE u.issuing_country = ?1 AND u.number = ?2 AND u.released_at IS NULL \
                   AND u.declaration_id <> ?3 ORDER BY u.id LIMIT 1";
        opt(self.tx, sql, params![country, number, declaration_id], |r| row::first(r))
    }

    async fn release_use(&mut self, use_id: i64, at: &str) -> Result<()> {
        exec(self.tx, "UPDATE utilizations SET released_at = ?1 WHERE id = ?2", params![at, use_id]).map(drop)
    }

    async fn insert_use(&mut self, line: (i64, i32), u: &Utilization, at: &str) -> Result<()> {
        let (declaration_id, line_no) = line;
        let sql = "INSERT INTO utilizations (declaration_id, line_no, issuing_country, number, item, quantity, \
                   remaining_after, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
        let (country, rest) = (&u.issuing_country, &u.remaining_after);
        exec(self.tx, sql, params![declaration_id, line_no, country, u.number, u.item, u.quantity, rest, at])
            .map(drop)
    }

    async fn count_revenue(&mut self, (declaration_id, line_no): (i64, i32), sign: i64) -> Result<()> {
        exec(self.tx, &row::count_revenue_sql("?1", "?2", "?3"), params![declaration_id, line_no, sign])
            .map(drop)
    }

    async fn update_line(&mut self, declaration_id: i64, l: &DeclarationLine, f: &Figures) -> Result<()> {
        let sql = "UPDATE declaration_lines SET outcome = ?1, reasons = ?2, matched_item = ?3, consumed = ?4, \
                   duty = ?5, decided_at = ?6, currency = ?9, mfn_minor = ?10, due_granted_minor = ?11, \
                   due_denied_minor = ?12 WHERE declaration_id = ?7 AND line_no = ?8";
        let p = params![
            l.outcome,
            l.reasons,
            l.matched_item,
            l.consumed,
            l.duty,
            l.decided_at,
            declaration_id,
            l.line_no,
            f.currency,
            f.mfn_minor,
            f.due_granted_minor,
            f.due_denied_minor
        ];
        exec(self.tx, sql, p).map(drop)
    }
}

impl NotifyTx for LiteTx<'_, '_> {
    async fn insert_notification(&mut self, n: &NewNotification) -> Result<Option<i64>> {
        let sql = "INSERT OR IGNORE INTO notifications (key, audience, kind, link, args, at) \
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
        let p = params![n.key, n.audience, n.kind, n.link, n.args, timestamp(&n.at)];
        Ok((exec(self.tx, sql, p)? == 1).then(|| self.tx.last_insert_rowid()))
    }

    async fn insert_delivery(&mut self, notification: i64, d: &NewDelivery, at: &str) -> Result<()> {
        let sql = "INSERT INTO notification_deliveries (notification_id, channel, target, next_at) \
                   VALUES (?1, ?2, ?3, ?4)";
        exec(self.tx, sql, params![notification, d.channel, d.target, at]).map(drop)
    }

    async fn set_cursor(&mut self, seq: i64) -> Result<()> {
        let sql =
            "INSERT INTO notifier_cursor (id, seq) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET seq = ?1";
        exec(self.tx, sql, params![seq]).map(drop)
    }

    async fn set_email_address(&mut self, user_id: i64, email: Option<&str>) -> Result<()> {
        exec(self.tx, "UPDATE users SET email = ?1 WHERE id = ?2", params![email, user_id]).map(drop)
    }
}

impl MigrateTx for LiteTx<'_, '_> {
    async fn lock_schema(&mut self) -> Result<()> {
        // `BEGIN IMMEDIATE` already holds the one write lock.
        Ok(())
    }

    async fn create_bookkeeping(&mut self) -> Result<()> {
        let sql = "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)";
        self.tx.execute_batch(sql).map_err(db)
    }

    async fn applied(&mut self, version: i64) -> Result<bool> {
        let sql = "SELECT version FROM schema_migrations WHERE version = ?1";
        Ok(opt(self.tx, sql, [version], |r| row::first::<_, i64>(r))?.is_some())
    }

    async fn run_sql(&mut self, sql: &str) -> Result<()> {
        self.tx.execute_batch(sql).map_err(db)
    }

    async fn record(&mut self, version: i64) -> Result<()> {
        exec(self.tx, "INSERT INTO schema_migrations (version) VALUES (?1)", [version]).map(drop)
    }
}
