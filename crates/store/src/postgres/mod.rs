//! The PostgreSQL backend, for nodes that run several stateless replicas on one database.
//! A small fixed pool of `tokio-postgres` connections; each state change is one transaction
//! that locks the rows it changes (`FOR UPDATE`) and then the audit head, always in that
//! order, so concurrent approvals serialize without dead-locks. Outbox senders claim rows with
//! `FOR UPDATE SKIP LOCKED` on the same pool; inbound batches that touch the same certificate
//! serialize on transaction-scoped advisory locks (taken in key order, before any row). The
//! rules run over `tx::PgTx`; this file holds the pool and the reads.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use crate::audit::{self, AuditEvent};
use crate::inbox::InboxTx;
use crate::model::*;
use crate::row::{
    self, AUDIT_COLS, INBOX_COLS, OUTBOX_COLS, REFUSAL_COLS, Row, STATUS_COLS, USER_RECORD_COLS,
    VERIFICATION_COLS,
};
use crate::text::like_anywhere;
use crate::{Result, Store, StoreError, timestamp};
use crate::{declarations, inbox, issuance, migrate, notifications, outbox, received, users, verifications};
use originlink_service::pgpool::{PgConn, PgPool, PoolError};

mod tx;

use tx::{Params, PgTx, db};

/// The list columns: the same as `APP_COLS`/`CERT_COLS`/`RECEIVED_COLS`, without the (large)
/// documents.
const APP_LIST_COLS: &str = "id, company_id, status, format, '\\x'::bytea AS document, self_assessment, assessment, \
     replaces, back_to_back_of, reason, certificate_id, created_by, created_at, updated_at, \
     (SELECT k.status FROM certificates k WHERE k.id = certificate_id) AS certificate_status, \
     (SELECT c.name FROM companies c WHERE c.id = company_id) AS company_name";
const CERT_LIST_COLS: &str = "id, application_id, company_id, issuer, number, version, status, supersedes, \
     '\\x'::bytea AS signed, issued_at, revoked_reason, signed_sha256, status_at";
const RECEIVED_LIST_COLS: &str = "id, issuing_country, number, version, '\\x'::bytea AS document, received_at, \
     status, verdict, revoked_reason, message_id, exporter";

/// The advisory lock class under which inbound batches serialize per certificate (the
/// migration lock, 7243001, is a single 64-bit key: a separate key space).
const INBOX_LOCK_CLASS: i32 = 7243002;

/// The rows of a read, each read by `f`.
async fn all<T>(
    c: &impl GenericClient,
    sql: &str,
    p: Params<'_>,
    f: impl FnMut(&tokio_postgres::Row) -> Result<T>,
) -> Result<Vec<T>> {
    c.query(sql, p).await.map_err(db)?.iter().map(f).collect()
}

/// The first row of a read, read by `f`.
async fn opt<T>(
    c: &impl GenericClient,
    sql: &str,
    p: Params<'_>,
    f: impl FnOnce(&tokio_postgres::Row) -> Result<T>,
) -> Result<Option<T>> {
    c.query_opt(sql, p).await.map_err(db)?.as_ref().map(f).transpose()
}

/// The PostgreSQL store over the shared `deadpool-postgres` pool (`originlink_service::pgpool`).
#[derive(Clone)]
pub struct PgStore {
    inner: PgPool,
    audit: Arc<audit::Chain>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        write!(f, "PgStore({} connections)", self.inner.max_size())
    }
}

fn pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Url(u) => StoreError::Url(u),
        PoolError::Connect(e) => db(e),
        e @ PoolError::Pool(_) => StoreError::Backend(e.to_string()),
    }
}

impl PgStore {
    /// A pool of up to `size` connections to `url` (`postgres://user@host:port/db`). The first
    /// connection is opened at once, so a wrong URL or an unreachable server fails here; the
    /// others are opened on first use.
    pub async fn connect(url: &str, size: usize) -> Result<Self> {
        let inner = PgPool::connect(url, size).await.map_err(pool_err)?;
        Ok(PgStore { inner, audit: Arc::new(audit::Chain::default()) })
    }

    /// This store with its audit chain keyed and anchored as `setup` says.
    pub fn with_audit(mut self, setup: audit::AuditSetup) -> Self {
        self.audit = Arc::new(audit::Chain::new(setup));
        self
    }

    async fn lease(&self) -> Result<PgConn> {
        self.inner.lease().await.map_err(pool_err)
    }

    /// The rows of a read on a pooled connection.
    async fn all<T>(
        &self,
        sql: &str,
        p: Params<'_>,
        f: impl FnMut(&tokio_postgres::Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut c = self.lease().await?;
        all(c.client(), sql, p, f).await
    }

    /// The first row of a read on a pooled connection.
    async fn opt<T>(
        &self,
        sql: &str,
        p: Params<'_>,
        f: impl FnOnce(&tokio_postgres::Row) -> Result<T>,
    ) -> Result<Option<T>> {
        let mut c = self.lease().await?;
        opt(c.client(), sql, p, f).await
    }

    /// The one value of a read on a pooled connection.
    async fn value<T: row::Col>(&self, sql: &str, p: Params<'_>) -> Result<T> {
        let mut c = self.lease().await?;
        c.client().query_one(sql, p).await.map_err(db)?.col(0)
    }

    /// Runs raw SQL (tests use it to tamper with the audit log; operators must not).
    pub async fn execute_raw(&self, sql: &str) -> Result<u64> {
        let mut c = self.lease().await?;
        c.client().execute(sql, &[]).await.map_err(db)
    }
}

/// Runs `$body` with `$tx` (a [`PgTx`]) in a transaction on a pooled connection: committed
/// when it succeeds (then the audit checkpoint writer is told), rolled back otherwise.
macro_rules! in_tx {
    ($self:ident, |$tx:ident| $body:expr) => {{
        let mut conn = $self.lease().await?;
        let t = conn.client().transaction().await.map_err(db)?;
        let out: Result<_> = async {
            let $tx = &mut PgTx::new(&t, &$self.audit);
            $body
        }
        .await;
        match out {
            Ok(v) => {
                t.commit().await.map_err(db)?;
                $self.audit.after_commit(|| Arc::new($self.clone()));
                Ok(v)
            }
            Err(e) => {
                let _ = t.rollback().await;
                Err(e)
            }
        }
    }};
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<()> {
        in_tx!(self, |tx| migrate::run(tx, migrate::POSTGRES).await)
    }

    async fn pending_migrations(&self) -> Result<Vec<i64>> {
        let applied =
            match self.value::<bool>("SELECT to_regclass('schema_migrations') IS NOT NULL", &[]).await? {
                true => self.all("SELECT version FROM schema_migrations", &[], row::first).await?,
                false => vec![],
            };
        Ok(migrate::pending(migrate::POSTGRES, &applied))
    }

    async fn ping(&self) -> Result<()> {
        self.value::<i32>("SELECT 1", &[]).await.map(drop)
    }

    async fn create_company(&self, ctx: &Ctx, name: &str, country: &str) -> Result<Company> {
        in_tx!(self, |tx| users::create_company(tx, ctx, name, country).await)
    }

    async fn company_by_name(&self, name: &str) -> Result<Option<Company>> {
        self.opt("SELECT id, name, country FROM companies WHERE name = $1", &[&name], row::company).await
    }

    async fn create_user(&self, ctx: &Ctx, u: NewUser) -> Result<User> {
        in_tx!(self, |tx| users::create_user(tx, ctx, u).await)
    }

    async fn user_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<User>> {
        let sql = "SELECT u.id, u.name, u.role, u.company_id FROM tokens t JOIN users u ON u.id = t.user_id \
                   WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL";
        self.opt(sql, &[&&hash[..]], row::user).await
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let sql = format!(
            "SELECT {USER_RECORD_COLS} FROM users u LEFT JOIN companies c ON c.id = u.company_id ORDER BY u.id"
        );
        self.all(&sql, &[], row::user_record).await
    }

    async fn user(&self, id: i64) -> Result<Option<UserRecord>> {
        self.opt(&tx::USER_BY_ID, &[&id], row::user_record).await
    }

    async fn change_user(&self, ctx: &Ctx, id: i64, change: UserChange) -> Result<UserRecord> {
        in_tx!(self, |tx| users::change_user(tx, ctx, id, change).await)
    }

    async fn replace_token(&self, ctx: &Ctx, id: i64, hash: &[u8; 32]) -> Result<UserRecord> {
        in_tx!(self, |tx| users::replace_token(tx, ctx, id, hash).await)
    }

    async fn login(&self, name: &str) -> Result<Option<Login>> {
        let sql = format!("SELECT {} FROM users u WHERE u.name = $1", row::LOGIN_COLS);
        self.opt(&sql, &[&name], row::login).await
    }

    async fn start_session(&self, ctx: &Ctx, s: NewSession) -> Result<()> {
        in_tx!(self, |tx| users::start_session(tx, ctx, &s).await)
    }

    async fn session(&self, id_hash: &[u8; 32]) -> Result<Option<Session>> {
        self.opt(&tx::SESSION, &[&&id_hash[..]], row::session).await
    }

    async fn touch_session(&self, id_hash: &[u8; 32], at: DateTime<Utc>) -> Result<()> {
        let at = timestamp(&at);
        in_tx!(self, |tx| users::UsersTx::touch_session(tx, id_hash, &at).await)
    }

    async fn end_session(&self, ctx: &Ctx, id_hash: &[u8; 32]) -> Result<()> {
        in_tx!(self, |tx| users::end_session(tx, ctx, id_hash).await)
    }

    async fn set_password(&self, ctx: &Ctx, id: i64, hash: &str) -> Result<UserRecord> {
        in_tx!(self, |tx| users::set_password(tx, ctx, id, hash).await)
    }

    async fn invite(&self, ctx: &Ctx, id: i64, hash: &[u8; 32], expires_at: DateTime<Utc>) -> Result<()> {
        let until = timestamp(&expires_at);
        in_tx!(self, |tx| users::invite(tx, ctx, id, hash, &until).await)
    }

    async fn accept_invitation(&self, ctx: &Ctx, hash: &[u8; 32], password_hash: &str) -> Result<UserRecord> {
        in_tx!(self, |tx| users::accept_invitation(tx, ctx, hash, password_hash).await)
    }

    async fn set_email(&self, ctx: &Ctx, id: i64, email: Option<String>) -> Result<UserRecord> {
        in_tx!(self, |tx| notifications::set_email(tx, ctx, id, email.as_deref()).await)
    }

    async fn notifier_cursor(&self) -> Result<i64> {
        self.value("SELECT COALESCE((SELECT seq FROM notifier_cursor WHERE id = 1), 0)", &[]).await
    }

    async fn add_notifications(&self, cursor: Option<i64>, list: Vec<NewNotification>) -> Result<usize> {
        in_tx!(self, |tx| notifications::add(tx, cursor, &list).await)
    }

    async fn notifications(
        &self,
        audiences: [&str; 2],
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        let sql = format!(
            "SELECT {} FROM notifications n WHERE n.audience IN ($1, $2) AND n.id < $3 ORDER BY n.id DESC LIMIT $4",
            row::NOTIFICATION_COLS
        );
        let before = before.unwrap_or(i64::MAX);
        self.all(&sql, &[&audiences[0], &audiences[1], &before, &limit], |r| row::notification(r, 0)).await
    }

    async fn notifications_after(&self, audiences: [&str; 2], after: i64, cap: i64) -> Result<i64> {
        let sql = row::notifications_after_sql("$1", "$2", "$3", "$4");
        self.value(&sql, &[&audiences[0], &audiences[1], &after, &cap]).await
    }

    async fn notifications_seen(&self, user_id: i64) -> Result<i64> {
        let sql = "SELECT notifications_seen FROM users WHERE id = $1";
        self.opt(sql, &[&user_id], |r| r.col(0)).await.map(Option::unwrap_or_default)
    }

    async fn see_notifications(&self, user_id: i64, upto: i64) -> Result<()> {
        let sql = "UPDATE users SET notifications_seen = GREATEST(notifications_seen, $1) WHERE id = $2";
        let mut c = self.lease().await?;
        c.client().execute(sql, &[&upto, &user_id]).await.map_err(db).map(drop)
    }

    async fn due_deliveries(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Delivery>> {
        let sql = row::due_deliveries_sql("$1", "$2");
        self.all(&sql, &[&timestamp(&now), &limit], row::delivery).await
    }

    async fn settle_delivery(&self, id: i64, at: DateTime<Utc>, outcome: DeliveryOutcome) -> Result<()> {
        let at = timestamp(&at);
        let mut c = self.lease().await?;
        match outcome {
            DeliveryOutcome::Delivered => {
                let sql = "UPDATE notification_deliveries SET delivered_at = $1, attempts = attempts + 1 WHERE id = $2";
                c.client().execute(sql, &[&at, &id]).await
            }
            DeliveryOutcome::Failed { error, retry_at } => {
                let sql = "UPDATE notification_deliveries SET attempts = attempts + 1, last_error = $1, \
                           next_at = COALESCE($2, next_at), failed_at = CASE WHEN $2::text IS NULL THEN $3 END \
                           WHERE id = $4";
                let retry = retry_at.as_ref().map(timestamp);
                c.client().execute(sql, &[&error, &retry, &at, &id]).await
            }
        }
        .map_err(db)
        .map(drop)
    }

    async fn emails_of(&self, role: Option<Role>, company: Option<i64>) -> Result<Vec<String>> {
        let sql = "SELECT email FROM users WHERE email IS NOT NULL AND disabled_at IS NULL \
                   AND (role = $1 OR company_id = $2) ORDER BY id";
        let (role, company) = (role.map(|r| r.as_str()).unwrap_or(""), company.unwrap_or(-1));
        self.all(sql, &[&role, &company], |r| r.col(0)).await
    }

    async fn create_application(&self, ctx: &Ctx, a: NewApplication) -> Result<Application> {
        in_tx!(self, |tx| issuance::create_application(tx, ctx, &a).await)
    }

    async fn application(&self, id: i64) -> Result<Option<Application>> {
        let sql = format!("SELECT {} FROM applications WHERE id = $1", row::APP_COLS);
        self.opt(&sql, &[&id], row::application).await
    }

    async fn find_applications(&self, page: &Page, f: &ApplicationFilter) -> Result<Vec<Application>> {
        let (statuses, q, from, to) = f.binds();
        // As on SQLite: a page bound and a search as plain conditions, so that the planner starts
        // from the bound or the matching ids.
        let (before, order) =
            row::application_page(page.before.is_some(), f.oldest_first, "$2", "$2::BIGINT IS NULL");
        let status_cond = f.status_condition();
        let search = if q.is_some() {
            "a.id IN (SELECT c.application_id FROM certificates c WHERE c.number ILIKE $5 \
               UNION SELECT x.id FROM applications x WHERE x.company_id IN \
                 (SELECT k.id FROM companies k WHERE k.name ILIKE $5) \
               UNION SELECT x.id FROM applications x WHERE x.created_by IN \
                 (SELECT u.id FROM users u WHERE u.name ILIKE $5))"
        } else {
            "$5::TEXT IS NULL"
        };
        let sql = format!(
            "SELECT {APP_LIST_COLS} FROM applications a WHERE ($1::BIGINT IS NULL OR a.company_id = $1) \
             AND {before} AND {status_cond} AND ($4::TEXT IS NULL OR strpos($4, ',' || a.status || ',') > 0) AND {search} \
             AND ($6::TEXT IS NULL OR a.created_at >= $6) AND ($7::TEXT IS NULL OR a.created_at < $7) \
             ORDER BY a.id {order} LIMIT $3"
        );
        let p: [&(dyn ToSql + Sync); 7] =
            [&page.company_id, &page.before, &page.limit, &statuses, &q, &from, &to];
        self.all(&sql, &p, row::application).await
    }

    async fn transition(&self, ctx: &Ctx, id: i64, t: Transition) -> Result<Application> {
        in_tx!(self, |tx| issuance::transition(tx, ctx, id, &t).await)
    }

    async fn edit_application(&self, ctx: &Ctx, id: i64, e: EditApplication) -> Result<Application> {
        in_tx!(self, |tx| issuance::edit(tx, ctx, id, &e).await)
    }

    async fn approve_batch(&self, batch: Vec<Approval>) -> Result<Vec<Result<Certificate>>> {
        in_tx!(self, |tx| issuance::approve_batch(tx, batch).await)
    }

    async fn certificate(&self, id: i64) -> Result<Option<Certificate>> {
        self.opt(&tx::CERT_BY_ID, &[&id], row::certificate).await
    }

    async fn find_certificates(&self, page: &Page, f: &CertificateFilter) -> Result<Vec<Certificate>> {
        let (status, number) = (f.status.map(|s| s.as_str()), f.number.as_deref().map(like_anywhere));
        // A page bound and a search are plain conditions when asked, so that the planner walks
        // the primary key from the bound, or reads the trigram index (V12).
        let before = row::plain(page.before.is_some(), "id < $2", "$2::BIGINT IS NULL");
        let search = row::plain(number.is_some(), "number ILIKE $5", "$5::TEXT IS NULL");
        let sql = format!(
            "SELECT {} FROM certificates WHERE ($1::BIGINT IS NULL OR company_id = $1) \
             AND {before} AND ($4::TEXT IS NULL OR status = $4) \
             AND {search} ORDER BY id DESC LIMIT $3",
            row::cert_cols(CERT_LIST_COLS)
        );
        self.all(&sql, &[&page.company_id, &page.before, &page.limit, &status, &number], row::certificate)
            .await
    }

    async fn revoke(&self, ctx: &Ctx, id: i64, reason: &str, messages: MessagesFn) -> Result<Certificate> {
        in_tx!(self, |tx| issuance::revoke(tx, ctx, id, reason, messages).await)
    }

    async fn certificate_statuses(&self, number: &str) -> Result<Vec<StatusEvent>> {
        let sql = format!("SELECT {STATUS_COLS} FROM certificate_statuses WHERE number = $1 ORDER BY id");
        self.all(&sql, &[&number], row::status).await
    }

    async fn certificate_versions(&self, number: &str) -> Result<Vec<Certificate>> {
        let sql = format!(
            "SELECT {} FROM certificates WHERE number = $1 ORDER BY version DESC",
            row::cert_cols(row::CERT_COLS)
        );
        self.all(&sql, &[&number], row::certificate).await
    }

    async fn status_entries(&self) -> Result<Vec<StatusEntry>> {
        self.all(row::STATUS_ENTRIES, &[], row::status_entry).await
    }

    async fn put_status_list(
        &self,
        ctx: &Ctx,
        l: &StoredStatusList,
        messages: Vec<OutMessage>,
    ) -> Result<bool> {
        in_tx!(self, |tx| inbox::publish_status_list(tx, ctx, l, &messages).await)
    }

    async fn status_list(&self, issuer: &str) -> Result<Option<StoredStatusList>> {
        let sql = format!("SELECT {} FROM status_lists WHERE issuer = $1", row::STATUS_LIST_COLS);
        self.opt(&sql, &[&issuer], row::status_list).await
    }

    async fn status_lists(&self) -> Result<Vec<StoredStatusList>> {
        let cols = row::STATUS_LIST_META_COLS.replace("NULL AS", "NULL::bytea AS");
        self.all(&format!("SELECT {cols} FROM status_lists ORDER BY issuer"), &[], row::status_list).await
    }

    async fn insert_received(&self, ctx: &Ctx, r: NewReceived) -> Result<ReceivedCertificate> {
        in_tx!(self, |tx| received::insert(tx, ctx, &r).await)
    }

    async fn received(&self, id: i64) -> Result<Option<ReceivedCertificate>> {
        let sql = format!("SELECT {} FROM received_certificates WHERE id = $1", row::RECEIVED_COLS);
        self.opt(&sql, &[&id], row::received).await
    }

    async fn received_by_ref(&self, issuing_country: &str, number: &str) -> Result<Vec<ReceivedCertificate>> {
        let sql = format!(
            "SELECT {} FROM received_certificates WHERE issuing_country = $1 AND number = $2 \
             ORDER BY version DESC",
            row::RECEIVED_COLS
        );
        self.all(&sql, &[&issuing_country, &number], row::received).await
    }

    async fn find_received(&self, page: &Page, f: &ReceivedFilter) -> Result<Vec<ReceivedCertificate>> {
        let (status, number) = (f.status.map(|s| s.as_str()), f.number.as_deref().map(like_anywhere));
        let exporter = f.exporter.as_deref().map(like_anywhere);
        let (from, to) = row::received_days(f);
        let before = row::plain(page.before.is_some(), "id < $1", "$1::BIGINT IS NULL");
        let numbers = row::plain(number.is_some(), "number ILIKE $5", "$5::TEXT IS NULL");
        let exporters = row::plain(exporter.is_some(), "exporter ILIKE $6", "$6::TEXT IS NULL");
        let sql = format!(
            "SELECT {RECEIVED_LIST_COLS} FROM received_certificates WHERE {before} \
             AND ($3::TEXT IS NULL OR status = $3) AND ($4::TEXT IS NULL OR issuing_country = $4) \
             AND {numbers} AND {exporters} \
             AND ($7::TEXT IS NULL OR received_at >= $7) AND ($8::TEXT IS NULL OR received_at < $8) \
             ORDER BY id DESC LIMIT $2"
        );
        let p: [&(dyn ToSql + Sync); 8] =
            [&page.before, &page.limit, &status, &f.issuing_country, &number, &exporter, &from, &to];
        self.all(&sql, &p, row::received).await
    }

    async fn enqueue(&self, ctx: &Ctx, messages: Vec<OutMessage>) -> Result<()> {
        in_tx!(self, |tx| outbox::enqueue(tx, &messages, &timestamp(&ctx.at)).await)
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxRow>> {
        let until = outbox::lease_until(&now, lease)?;
        let now = timestamp(&now);
        // One statement, so one transaction: the rows are locked, skipped by concurrent
        // claimers (SKIP LOCKED), and leased before the lock is released.
        let sql = format!(
            "WITH due AS (SELECT seq FROM outbox WHERE NOT dead AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at, seq LIMIT $3 \
             FOR UPDATE SKIP LOCKED) \
             UPDATE outbox SET lease_until = $2, next_attempt_at = $2 WHERE seq IN (SELECT seq FROM due) \
             RETURNING {OUTBOX_COLS}"
        );
        Ok(outbox::claimed(self.all(&sql, &[&now, &until, &limit], row::outbox).await?))
    }

    async fn outbox_delivered(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut c = self.lease().await?;
        c.client().execute("DELETE FROM outbox WHERE id = ANY($1)", &[&ids]).await.map_err(db)?;
        Ok(())
    }

    async fn outbox_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        dead: bool,
    ) -> Result<()> {
        let mut c = self.lease().await?;
        let sql = "UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2, \
                   lease_until = NULL, dead = $3 WHERE id = $4";
        c.client().execute(sql, &[&error, &timestamp(&next_attempt_at), &dead, &id]).await.map_err(db)?;
        Ok(())
    }

    async fn outbox_messages(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        let sql = format!("SELECT {OUTBOX_COLS} FROM outbox ORDER BY seq LIMIT $1");
        self.all(&sql, &[&limit], row::outbox).await
    }

    async fn dead_letters(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        let sql = format!("SELECT {OUTBOX_COLS} FROM outbox WHERE dead ORDER BY seq LIMIT $1");
        self.all(&sql, &[&limit], row::outbox).await
    }

    async fn retry_dead(&self, ctx: &Ctx, id: &str) -> Result<OutboxRow> {
        in_tx!(self, |tx| outbox::retry_dead(tx, ctx, id).await)
    }

    async fn outbox_counts(&self) -> Result<(i64, i64)> {
        let sql =
            "SELECT (SELECT count(*) FROM outbox WHERE NOT dead), (SELECT count(*) FROM outbox WHERE dead)";
        let mut c = self.lease().await?;
        row::pair(&c.client().query_one(sql, &[]).await.map_err(db)?)
    }

    async fn apply_inbound(&self, ctx: &Ctx, batch: Vec<Inbound>) -> Result<Vec<Applied>> {
        if batch.is_empty() {
            return Ok(vec![]);
        }
        let batch = inbox::pack_ahead(batch).await?;
        in_tx!(self, |tx| {
            // Batches run concurrently on several connections (and replicas): serialize those
            // that touch the same certificate, so a message is never held after the version it
            // waits for committed. Sorted keys: no dead-lock between two batches.
            tx.advisory_locks(INBOX_LOCK_CLASS, &inbox::batch_keys(&batch)).await?;
            inbox::apply(tx, ctx, batch).await
        })
    }

    async fn inbox_len(&self) -> Result<i64> {
        self.value("SELECT count(*) FROM inbox", &[]).await
    }

    async fn held_len(&self) -> Result<i64> {
        self.value("SELECT count(*) FROM inbox_held", &[]).await
    }

    async fn record_refused(&self, refusals: Vec<Refusal>) -> Result<()> {
        if refusals.is_empty() {
            return Ok(());
        }
        in_tx!(self, |tx| {
            for r in &refusals {
                InboxTx::refuse(tx, r).await?;
            }
            Ok(())
        })
    }

    async fn refused(&self, limit: i64) -> Result<Vec<Refusal>> {
        let sql = format!("SELECT {REFUSAL_COLS} FROM inbox_refused ORDER BY seq DESC LIMIT $1");
        self.all(&sql, &[&limit], row::refusal).await
    }

    async fn quarantined(&self, limit: i64) -> Result<Vec<InboxRecord>> {
        let sql = format!(
            "SELECT {INBOX_COLS} FROM inbox \
             WHERE state = 'quarantined' ORDER BY updated_at COLLATE \"C\" DESC, message_id LIMIT $1"
        );
        self.all(&sql, &[&limit], row::inbox_record).await
    }

    async fn quarantined_len(&self) -> Result<i64> {
        self.value("SELECT count(*) FROM inbox WHERE state = 'quarantined'", &[]).await
    }

    async fn create_declaration(&self, ctx: &Ctx, d: NewDeclaration) -> Result<Declaration> {
        in_tx!(self, |tx| declarations::create(tx, ctx, &d).await)
    }

    async fn declaration(&self, id: i64) -> Result<Option<Declaration>> {
        let mut c = self.lease().await?;
        tx::declaration(c.client(), "id", &id).await
    }

    async fn declaration_by_number(&self, number: &str) -> Result<Option<Declaration>> {
        let mut c = self.lease().await?;
        tx::declaration(c.client(), "number", &number).await
    }

    async fn find_declarations(
        &self,
        page: &Page,
        order_by_risk: bool,
        f: &DeclarationFilter,
    ) -> Result<Vec<Declaration>> {
        let (after, order) = row::declaration_page(order_by_risk, "$1");
        // As on SQLite: a number searched among the numbers, not row by row in risk order.
        let number_cond = row::declaration_number(f.number.is_some(), "ILIKE $3", "$3::TEXT IS NULL");
        let rare = match &f.outcome {
            Some(o) => self.value::<i64>(&row::rare_outcome_sql("$1"), &[o]).await? < row::RARE_OUTCOME,
            None => false,
        };
        let outcome_cond = row::declaration_outcome(f.outcome.is_some(), rare, "$7", "$7::TEXT IS NULL");
        let sql = format!(
            "SELECT {} FROM declarations d WHERE ($1::BIGINT IS NULL OR {after}) \
             AND {number} AND ($4::TEXT IS NULL OR importer ILIKE $4) \
             AND ($5::TEXT IS NULL OR declaration_date >= $5) AND ($6::TEXT IS NULL OR declaration_date <= $6) \
             AND {outcome_cond} ORDER BY {order} LIMIT $2",
            row::DECL_LIST_COLS,
            number = number_cond
        );
        let (number, importer) =
            (f.number.as_deref().map(like_anywhere), f.importer.as_deref().map(like_anywhere));
        let p: [&(dyn ToSql + Sync); 7] =
            [&page.before, &page.limit, &number, &importer, &f.from, &f.to, &f.outcome];
        let mut c = self.lease().await?;
        let mut out = all(c.client(), &sql, &p, row::declaration).await?;
        tx::load_lines(c.client(), &mut out).await?;
        Ok(out)
    }

    async fn set_risk(&self, ctx: &Ctx, id: i64, score: i64, risk_json: &str) -> Result<()> {
        in_tx!(self, |tx| declarations::set_risk(tx, ctx, id, score, risk_json).await)
    }

    async fn link_pending_line(
        &self,
        ctx: &Ctx,
        declaration_id: i64,
        line_no: i32,
        issuing_country: &str,
        number: &str,
    ) -> Result<()> {
        let line = (declaration_id, line_no);
        in_tx!(self, |tx| declarations::link_pending_line(tx, ctx, line, issuing_country, number).await)
    }

    async fn decide_lines_noted(&self, ctx: &Ctx, id: i64, d: Decisions) -> Result<Decided> {
        let Decisions { lines, messages, note } = d;
        let note = note.as_ref();
        in_tx!(self, |tx| declarations::decide_with(tx, ctx, id, lines, messages, note).await)
    }

    async fn ledger(&self, issuing_country: &str, number: &str) -> Result<Vec<LedgerRow>> {
        let sql = "SELECT l.item, l.total, l.remaining, \
                   COALESCE((SELECT array_agg(DISTINCT d.number ORDER BY d.number) FROM utilizations u \
                   JOIN declarations d ON d.id = u.declaration_id WHERE u.issuing_country = l.issuing_country \
                   AND u.number = l.number AND u.item = l.item AND u.released_at IS NULL), '{}') \
                   FROM ledger l WHERE l.issuing_country = $1 AND l.number = $2 ORDER BY l.item";
        self.all(sql, &[&issuing_country, &number], |r| {
            let declarations = r.try_get(3).map_err(db)?;
            Ok(LedgerRow { item: r.col(0)?, total: r.col(1)?, remaining: r.col(2)?, declarations })
        })
        .await
    }

    async fn utilizations(&self, issuing_country: &str, number: &str) -> Result<Vec<Utilization>> {
        let sql = format!(
            "SELECT {} FROM utilizations u JOIN declarations d ON d.id = u.declaration_id \
             WHERE u.issuing_country = $1 AND u.number = $2 AND u.released_at IS NULL ORDER BY u.id",
            row::UTILIZATION_COLS
        );
        self.all(&sql, &[&issuing_country, &number], row::utilization).await
    }

    async fn lines_with_outcome(
        &self,
        country: &str,
        number: &str,
        outcome: &'static str,
    ) -> Result<LineRefs> {
        let sql = "SELECT declaration_id, line_no FROM declaration_lines \
                   WHERE eco_country = $1 AND eco_number = $2 AND outcome = $3 ORDER BY declaration_id, line_no";
        self.all(sql, &[&country, &number, &outcome], row::pair).await
    }

    async fn certificates_named(
        &self,
        certs: Vec<(String, String)>,
    ) -> Result<std::collections::HashSet<(String, String)>> {
        if certs.is_empty() {
            return Ok(Default::default());
        }
        let (countries, numbers): (Vec<String>, Vec<String>) = certs.into_iter().unzip();
        let sql = "SELECT DISTINCT l.eco_country, l.eco_number FROM unnest($1::text[], $2::text[]) AS u(c, n) \
                   JOIN declaration_lines l ON l.eco_country = u.c AND l.eco_number = u.n";
        let rows: Vec<(String, String)> = self.all(sql, &[&countries, &numbers], row::pair).await?;
        Ok(rows.into_iter().collect())
    }

    async fn revenue_groups(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<RevenueGroup>> {
        let (from, to) = (from.format("%Y-%m-%d").to_string(), to.format("%Y-%m-%d").to_string());
        let sql = row::revenue_groups_sql("$1", "$2", |x| format!("SUM({x})::bigint"));
        self.all(&sql, &[&from, &to], row::revenue_group).await
    }

    async fn lines_unsummed(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: usize,
    ) -> Result<Vec<(String, DeclarationLine)>> {
        let (from, to) = (from.format("%Y-%m-%d").to_string(), to.format("%Y-%m-%d").to_string());
        let sql = row::lines_unsummed_sql("$1", "$2", "$3");
        let limit = limit as i64;
        self.all(&sql, &[&from, &to, &limit], |r| Ok((r.col(10)?, row::line(r)?))).await
    }

    async fn pair_seen(&self, pair: Pair<'_>) -> Result<bool> {
        let sql = "SELECT EXISTS (SELECT 1 FROM declaration_lines l JOIN declarations d ON d.id = l.declaration_id \
                   WHERE l.exporter = $1 AND l.outcome = 'granted' AND d.id <> $4 \
                   AND (d.importer_key = $2 OR (d.importer_key IS NULL AND d.importer = $3)))";
        let p: Params<'_> = &[&pair.exporter, &pair.importer_key, &pair.importer_name, &pair.other_than];
        self.value(sql, p).await
    }

    async fn create_verification(
        &self,
        ctx: &Ctx,
        v: NewVerification,
        messages: Vec<OutMessage>,
    ) -> Result<VerificationRequest> {
        in_tx!(self, |tx| verifications::create(tx, ctx, &v, &messages).await)
    }

    async fn answer_verification(
        &self,
        ctx: &Ctx,
        id: i64,
        answer: &str,
        outcome: &str,
        messages: Vec<OutMessage>,
    ) -> Result<VerificationRequest> {
        in_tx!(self, |tx| verifications::answer(tx, ctx, id, (answer, outcome), &messages).await)
    }

    async fn record_verification_answer(
        &self,
        ctx: &Ctx,
        message_id_of_request: &str,
        answer: &str,
        outcome: &str,
    ) -> Result<VerificationRequest> {
        let mid = message_id_of_request;
        in_tx!(self, |tx| verifications::record_answer(tx, ctx, mid, (answer, outcome)).await)
    }

    async fn verification(&self, id: i64) -> Result<Option<VerificationRequest>> {
        self.opt(&tx::VERIFICATION_BY_ID, &[&id], row::verification).await
    }

    async fn list_verifications(
        &self,
        direction: Option<&str>,
        limit: i64,
    ) -> Result<Vec<VerificationRequest>> {
        let sql = format!(
            "SELECT {VERIFICATION_COLS} FROM verification_requests WHERE ($1::TEXT IS NULL OR direction = $1) \
             ORDER BY id DESC LIMIT $2"
        );
        self.all(&sql, &[&direction, &limit], row::verification).await
    }

    async fn overdue_verifications(&self, now: DateTime<Utc>) -> Result<Vec<VerificationRequest>> {
        let sql = format!(
            "SELECT {VERIFICATION_COLS} FROM verification_requests WHERE status = 'open' AND deadline < $1 \
             ORDER BY deadline, id"
        );
        self.all(&sql, &[&timestamp(&now)], row::verification).await
    }

    async fn denied_verifications(&self, issuing_country: &str) -> Result<i64> {
        let sql = "SELECT count(*) FROM verification_requests WHERE direction = 'outgoing' \
                   AND issuing_country = $1 AND status = 'denied'";
        self.value(sql, &[&issuing_country]).await
    }

    async fn audit_events(&self, after: i64, up_to: i64, limit: i64) -> Result<Vec<AuditEvent>> {
        let sql = format!(
            "SELECT {AUDIT_COLS} FROM audit_events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3"
        );
        self.all(&sql, &[&after, &up_to, &limit], row::audit_event).await
    }

    async fn audit_head_row(&self) -> Result<Option<(i64, String)>> {
        self.opt("SELECT seq, hash FROM audit_head WHERE id = 1", &[], row::pair).await
    }

    fn audit_chain(&self) -> &audit::Chain {
        &self.audit
    }
}
