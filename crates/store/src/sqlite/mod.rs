//! The SQLite backend: one file in WAL mode, used from tokio's blocking pool through one
//! writer connection and a few read-only reader connections. Every write is a
//! `BEGIN IMMEDIATE` transaction on the writer, so writers queue instead of failing, and a
//! second process (`originlink audit verify`, another `node user add`) waits on the busy
//! timeout. The rules run over `tx::LiteTx`; this file holds the connections and the reads.

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, TransactionBehavior, params};

use crate::audit::{self, AuditEvent};
use crate::model::*;
use crate::row::{
    self, AUDIT_COLS, INBOX_COLS, REFUSAL_COLS, Row, STATUS_COLS, USER_RECORD_COLS, VERIFICATION_COLS,
};
use crate::text::like_anywhere;
use crate::{Result, Store, StoreError, timestamp};
use crate::{declarations, inbox, issuance, migrate, notifications, outbox, received, users, verifications};

mod tx;

use tx::{LiteTx, all, db, exec, one, opt};

/// [`row::OUTBOX_COLS`] on SQLite: the envelope is read from `outbox_bodies` (V14), where it
/// was written once, falling back to the row's own `body` (never set since V14 moved them).
/// A subquery, so it may stand in an `UPDATE … RETURNING`.
pub(crate) const OUTBOX_COLS_LITE: &str = "seq, id, recipient, kind, cert_key, \
     COALESCE((SELECT b.body FROM outbox_bodies b WHERE b.seq = outbox.seq), body), \
     attempts, created_at, next_attempt_at, last_error, dead";

/// Runs a future that never waits (a rule over [`LiteTx`], whose calls all complete
/// synchronously) to completion.
fn ready<T, F: Future<Output = Result<T>>>(f: F) -> Result<T> {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => Err(StoreError::Backend("a synchronous store operation waited".into())),
    }
}

/// The list columns: the same as `APP_COLS`/`CERT_COLS`/`RECEIVED_COLS`, without the (large)
/// documents.
const APP_LIST_COLS: &str = "id, company_id, status, format, x'' AS document, self_assessment, assessment, \
     replaces, back_to_back_of, reason, certificate_id, created_by, created_at, updated_at, \
     (SELECT k.status FROM certificates k WHERE k.id = certificate_id) AS certificate_status, \
     (SELECT c.name FROM companies c WHERE c.id = company_id) AS company_name";
const CERT_LIST_COLS: &str = "id, application_id, company_id, issuer, number, version, status, supersedes, \
     x'' AS signed, issued_at, revoked_reason, signed_sha256, status_at";
const RECEIVED_LIST_COLS: &str = "id, issuing_country, number, version, x'' AS document, received_at, status, \
     verdict, revoked_reason, message_id, exporter";

/// The SQLite store: one writer connection (writes queue on it, never fail busy) and a few
/// reader connections (WAL lets them read while the writer writes).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next: Arc<AtomicUsize>,
    audit: Arc<audit::Chain>,
}

/// The condition that finds `text` anywhere in a column, as parameter `?n`, and what to bind
/// to it: `row` is (the row's id, the column) as the query names them, `index` (the FTS5
/// trigram table, its column). Text of three characters or more is looked up in the index;
/// shorter text is compared with `LIKE` on every row; no text matches everything.
fn text_search(
    row: (&str, &str),
    index: (&str, &str),
    n: usize,
    text: Option<&str>,
) -> (String, Option<String>) {
    let Some(text) = text else {
        return (format!("?{n} IS NULL"), None);
    };
    match crate::text::trigram_match(index.1, text) {
        Some(m) => {
            (format!("{} IN (SELECT rowid FROM {} WHERE {} MATCH ?{n})", row.0, index.0, index.0), Some(m))
        }
        None => (format!("{} LIKE ?{n} ESCAPE '\\'", row.1), Some(like_anywhere(text))),
    }
}

/// Reader connections per store.
const READERS: usize = 4;

/// The page size of a new database, in bytes.
const PAGE_SIZE: i64 = 8192;

/// SQLite's page cache per connection, in KiB: with the writer, at most 40 MiB in all.
const CACHE_KIB: i64 = 8 * 1024;

fn connection(path: &Path, read_only: bool) -> Result<Connection> {
    if !read_only && path.as_os_str() != ":memory:" {
        originlink_service::create_private(path)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
    }
    let c = Connection::open(path).map_err(db)?;
    c.busy_timeout(Duration::from_secs(10)).map_err(db)?;
    if !read_only {
        // A new database gets 8 KiB pages (an existing one keeps its own): a signed certificate
        // row is about 2.7 KB deflated, so a 4 KiB page held one and wasted a third of itself;
        // an 8 KiB page holds three.
        c.pragma_update(None, "page_size", PAGE_SIZE).map_err(db)?;
        c.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
    }
    c.pragma_update(None, "synchronous", "NORMAL").map_err(db)?;
    c.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
    // Resident memory must not grow with the database: no memory map (every mapped page a
    // reader touched would count, per connection, up to the map's size) and a page cache of
    // CACHE_KIB per connection. The kernel's page cache still holds the hot pages.
    c.pragma_update(None, "mmap_size", 0i64).map_err(db)?;
    c.pragma_update(None, "cache_size", -CACHE_KIB).map_err(db)?;
    if read_only {
        c.pragma_update(None, "query_only", "ON").map_err(db)?;
    }
    // Every statement is prepared once per connection and kept.
    c.set_prepared_statement_cache_capacity(128);
    Ok(c)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, in WAL mode.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let (writer, readers) = tokio::task::spawn_blocking(move || -> Result<_> {
            // The writer first: it creates the file and switches it to WAL.
            let writer = connection(&path, false)?;
            let readers =
                (0..READERS).map(|_| connection(&path, true).map(Mutex::new)).collect::<Result<Vec<_>>>()?;
            Ok((writer, readers))
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;
        Ok(SqliteStore {
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(readers),
            next: Arc::new(AtomicUsize::new(0)),
            audit: Arc::new(audit::Chain::default()),
        })
    }

    /// This store with its audit chain keyed and anchored as `setup` says.
    pub fn with_audit(mut self, setup: audit::AuditSetup) -> Self {
        self.audit = Arc::new(audit::Chain::new(setup));
        self
    }

    /// Runs a read `f` on a reader connection on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (readers, next) = (self.readers.clone(), self.next.clone());
        tokio::task::spawn_blocking(move || {
            let mut guard = match readers.iter().find_map(|r| r.try_lock().ok()) {
                Some(g) => g,
                None => {
                    let i = next.fetch_add(1, Ordering::Relaxed) % readers.len();
                    readers[i].lock().unwrap_or_else(|p| p.into_inner())
                }
            };
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }

    /// Runs `f` on the writer connection on the blocking pool.
    async fn run_writer<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer, committed when `f` succeeds.
    /// After the commit the audit checkpoint writer is told ([`audit::Chain::after_commit`]).
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LiteTx<'_, '_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let chain = self.audit.clone();
        let out = self
            .run_writer(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
                let out = f(&mut LiteTx { tx: &tx, chain: &chain })?;
                tx.commit().map_err(db)?;
                Ok(out)
            })
            .await?;
        self.audit.after_commit(|| Arc::new(self.clone()));
        Ok(out)
    }

    /// A count.
    async fn count(&self, sql: &'static str) -> Result<i64> {
        self.run(move |c| one(c, sql, [], |r| row::first(r))).await
    }

    /// Runs raw SQL (tests use it to tamper with the audit log; operators must not).
    pub async fn execute_raw(&self, sql: &str) -> Result<usize> {
        let sql = sql.to_owned();
        self.run_writer(move |c| c.execute(&sql, []).map_err(db)).await
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<()> {
        self.write(|tx| ready(migrate::run(tx, migrate::SQLITE))).await
    }

    async fn pending_migrations(&self) -> Result<Vec<i64>> {
        let applied = self
            .run(|c| {
                let table =
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'";
                if one::<i64>(c, table, [], |r| row::first(r))? == 0 {
                    return Ok(vec![]);
                }
                all(c, "SELECT version FROM schema_migrations", [], |r| row::first(r))
            })
            .await?;
        Ok(migrate::pending(migrate::SQLITE, &applied))
    }

    async fn ping(&self) -> Result<()> {
        self.run(|c| one(c, "SELECT 1", [], |_| Ok(()))).await
    }

    async fn create_company(&self, ctx: &Ctx, name: &str, country: &str) -> Result<Company> {
        let (ctx, name, country) = (ctx.clone(), name.to_owned(), country.to_owned());
        self.write(move |tx| ready(users::create_company(tx, &ctx, &name, &country))).await
    }

    async fn company_by_name(&self, name: &str) -> Result<Option<Company>> {
        let name = name.to_owned();
        let sql = "SELECT id, name, country FROM companies WHERE name = ?1";
        self.run(move |c| opt(c, sql, [name], |r| row::company(r))).await
    }

    async fn create_user(&self, ctx: &Ctx, u: NewUser) -> Result<User> {
        let ctx = ctx.clone();
        self.write(move |tx| ready(users::create_user(tx, &ctx, u))).await
    }

    async fn user_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<User>> {
        let hash = *hash;
        let sql = "SELECT u.id, u.name, u.role, u.company_id FROM tokens t JOIN users u ON u.id = t.user_id \
                   WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL";
        self.run(move |c| opt(c, sql, [&hash[..]], |r| row::user(r))).await
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let sql = format!(
            "SELECT {USER_RECORD_COLS} FROM users u LEFT JOIN companies c ON c.id = u.company_id ORDER BY u.id"
        );
        self.run(move |c| all(c, &sql, [], |r| row::user_record(r))).await
    }

    async fn user(&self, id: i64) -> Result<Option<UserRecord>> {
        self.run(move |c| opt(c, &tx::USER_BY_ID, [id], |r| row::user_record(r))).await
    }

    async fn change_user(&self, ctx: &Ctx, id: i64, change: UserChange) -> Result<UserRecord> {
        let ctx = ctx.clone();
        self.write(move |tx| ready(users::change_user(tx, &ctx, id, change))).await
    }

    async fn replace_token(&self, ctx: &Ctx, id: i64, hash: &[u8; 32]) -> Result<UserRecord> {
        let (ctx, hash) = (ctx.clone(), *hash);
        self.write(move |tx| ready(users::replace_token(tx, &ctx, id, &hash))).await
    }

    async fn login(&self, name: &str) -> Result<Option<Login>> {
        let (name, sql) =
            (name.to_owned(), format!("SELECT {} FROM users u WHERE u.name = ?1", row::LOGIN_COLS));
        self.run(move |c| opt(c, &sql, [name], |r| row::login(r))).await
    }

    async fn start_session(&self, ctx: &Ctx, s: NewSession) -> Result<()> {
        let ctx = ctx.clone();
        self.write(move |tx| ready(users::start_session(tx, &ctx, &s))).await
    }

    async fn session(&self, id_hash: &[u8; 32]) -> Result<Option<Session>> {
        let hash = *id_hash;
        self.run(move |c| opt(c, &tx::SESSION, [&hash[..]], |r| row::session(r))).await
    }

    async fn touch_session(&self, id_hash: &[u8; 32], at: DateTime<Utc>) -> Result<()> {
        let (hash, at) = (*id_hash, timestamp(&at));
        self.write(move |tx| ready(users::UsersTx::touch_session(tx, &hash, &at))).await
    }

    async fn end_session(&self, ctx: &Ctx, id_hash: &[u8; 32]) -> Result<()> {
        let (ctx, hash) = (ctx.clone(), *id_hash);
        self.write(move |tx| ready(users::end_session(tx, &ctx, &hash))).await
    }

    async fn set_password(&self, ctx: &Ctx, id: i64, hash: &str) -> Result<UserRecord> {
        let (ctx, hash) = (ctx.clone(), hash.to_owned());
        self.write(move |tx| ready(users::set_password(tx, &ctx, id, &hash))).await
    }

    async fn invite(&self, ctx: &Ctx, id: i64, hash: &[u8; 32], expires_at: DateTime<Utc>) -> Result<()> {
        let (ctx, hash, until) = (ctx.clone(), *hash, timestamp(&expires_at));
        self.write(move |tx| ready(users::invite(tx, &ctx, id, &hash, &until))).await
    }

    async fn accept_invitation(&self, ctx: &Ctx, hash: &[u8; 32], password_hash: &str) -> Result<UserRecord> {
        let (ctx, hash, pw) = (ctx.clone(), *hash, password_hash.to_owned());
        self.write(move |tx| ready(users::accept_invitation(tx, &ctx, &hash, &pw))).await
    }

    async fn set_email(&self, ctx: &Ctx, id: i64, email: Option<String>) -> Result<UserRecord> {
        let ctx = ctx.clone();
        self.write(move |tx| ready(notifications::set_email(tx, &ctx, id, email.as_deref()))).await
    }

    async fn notifier_cursor(&self) -> Result<i64> {
        let sql = "SELECT COALESCE((SELECT seq FROM notifier_cursor WHERE id = 1), 0)";
        self.run(move |c| one(c, sql, [], |r| row::first(r))).await
    }

    async fn add_notifications(&self, cursor: Option<i64>, list: Vec<NewNotification>) -> Result<usize> {
        self.write(move |tx| ready(notifications::add(tx, cursor, &list))).await
    }

    async fn notifications(
        &self,
        audiences: [&str; 2],
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Notification>> {
        let [a, b] = audiences.map(str::to_owned);
        let sql = format!(
            "SELECT {} FROM notifications n WHERE n.audience IN (?1, ?2) AND n.id < ?3 ORDER BY n.id DESC LIMIT ?4",
            row::NOTIFICATION_COLS
        );
        let before = before.unwrap_or(i64::MAX);
        self.run(move |c| all(c, &sql, params![a, b, before, limit], |r| row::notification(r, 0))).await
    }

    async fn notifications_after(&self, audiences: [&str; 2], after: i64, cap: i64) -> Result<i64> {
        let [a, b] = audiences.map(str::to_owned);
        let sql = row::notifications_after_sql("?1", "?2", "?3", "?4");
        self.run(move |c| one(c, &sql, params![a, b, after, cap], |r| row::first(r))).await
    }

    async fn notifications_seen(&self, user_id: i64) -> Result<i64> {
        let sql = "SELECT notifications_seen FROM users WHERE id = ?1";
        self.run(move |c| opt(c, sql, [user_id], |r| row::first(r))).await.map(Option::unwrap_or_default)
    }

    async fn see_notifications(&self, user_id: i64, upto: i64) -> Result<()> {
        let sql = "UPDATE users SET notifications_seen = max(notifications_seen, ?1) WHERE id = ?2";
        self.run_writer(move |c| exec(c, sql, params![upto, user_id]).map(drop)).await
    }

    async fn due_deliveries(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Delivery>> {
        let sql = row::due_deliveries_sql("?1", "?2");
        let now = timestamp(&now);
        self.run(move |c| all(c, &sql, params![now, limit], |r| row::delivery(r))).await
    }

    async fn settle_delivery(&self, id: i64, at: DateTime<Utc>, outcome: DeliveryOutcome) -> Result<()> {
        let at = timestamp(&at);
        self.run_writer(move |c| {
            match outcome {
                DeliveryOutcome::Delivered => exec(
                    c,
                    "UPDATE notification_deliveries SET delivered_at = ?1, attempts = attempts + 1 WHERE id = ?2",
                    params![at, id],
                ),
                DeliveryOutcome::Failed { error, retry_at } => exec(
                    c,
                    "UPDATE notification_deliveries SET attempts = attempts + 1, last_error = ?1, \
                     next_at = COALESCE(?2, next_at), failed_at = CASE WHEN ?2 IS NULL THEN ?3 END WHERE id = ?4",
                    params![error, retry_at.as_ref().map(timestamp), at, id],
                ),
            }
            .map(drop)
        })
        .await
    }

    async fn emails_of(&self, role: Option<Role>, company: Option<i64>) -> Result<Vec<String>> {
        let sql = "SELECT email FROM users WHERE email IS NOT NULL AND disabled_at IS NULL \
                   AND (role = ?1 OR company_id = ?2) ORDER BY id";
        let (role, company) = (role.map(|r| r.as_str()).unwrap_or(""), company.unwrap_or(-1));
        self.run(move |c| all(c, sql, params![role, company], |r| row::first(r))).await
    }

    async fn create_application(&self, ctx: &Ctx, a: NewApplication) -> Result<Application> {
        let ctx = ctx.clone();
        self.write(move |tx| ready(issuance::create_application(tx, &ctx, &a))).await
    }

    async fn application(&self, id: i64) -> Result<Option<Application>> {
        self.run(move |c| opt(c, &tx::APP_BY_ID, [id], |r| row::application(r))).await
    }

    async fn find_applications(&self, page: &Page, f: &ApplicationFilter) -> Result<Vec<Application>> {
        let (page, (statuses, q, from, to)) = (*page, f.binds());
        // A page bound and a search are written as plain conditions, not `(? IS NULL OR …)`, so
        // that the planner walks the primary key from the bound, or from the matching ids,
        // instead of scanning every application (measured: 100 ms at 100,000 records).
        let (before, order) =
            row::application_page(page.before.is_some(), f.oldest_first, "?2", "?2 IS NULL");
        let status_cond = f.status_condition();
        let (numbers, number) =
            text_search(("c.id", "c.number"), ("certificate_search", "number"), 8, f.q.as_deref());
        let search = if q.is_some() {
            format!(
                "a.id IN (SELECT c.application_id FROM certificates c WHERE {numbers} \
               UNION SELECT x.id FROM applications x WHERE x.company_id IN \
                 (SELECT k.id FROM companies k WHERE k.name LIKE ?5 ESCAPE '\\') \
               UNION SELECT x.id FROM applications x WHERE x.created_by IN \
                 (SELECT u.id FROM users u WHERE u.name LIKE ?5 ESCAPE '\\'))"
            )
        } else {
            "?5 IS NULL AND ?8 IS NULL".to_owned()
        };
        self.run(move |c| {
            let sql = format!(
                "SELECT {APP_LIST_COLS} FROM applications a WHERE (?1 IS NULL OR a.company_id = ?1) \
                 AND {before} AND {status_cond} AND (?4 IS NULL OR instr(?4, ',' || a.status || ',') > 0) AND {search} \
                 AND (?6 IS NULL OR a.created_at >= ?6) AND (?7 IS NULL OR a.created_at < ?7) \
                 ORDER BY a.id {order} LIMIT ?3"
            );
            let p = params![page.company_id, page.before, page.limit, statuses, q, from, to, number];
            all(c, &sql, p, |r| row::application(r))
        })
        .await
    }

    async fn transition(&self, ctx: &Ctx, id: i64, t: Transition) -> Result<Application> {
        let ctx = ctx.clone();
        self.write(move |tx| ready(issuance::transition(tx, &ctx, id, &t))).await
    }

    async fn edit_application(&self, ctx: &Ctx, id: i64, e: EditApplication) -> Result<Application> {
        let ctx = ctx.clone();
        self.write(move |tx| ready(issuance::edit(tx, &ctx, id, &e))).await
    }

    async fn approve_batch(&self, batch: Vec<Approval>) -> Result<Vec<Result<Certificate>>> {
        self.write(move |tx| ready(issuance::approve_batch(tx, batch))).await
    }

    async fn certificate(&self, id: i64) -> Result<Option<Certificate>> {
        self.run(move |c| opt(c, &tx::CERT_BY_ID, [id], |r| row::certificate(r))).await
    }

    async fn find_certificates(&self, page: &Page, f: &CertificateFilter) -> Result<Vec<Certificate>> {
        let (page, status) = (*page, f.status.map(|s| s.as_str()));
        let (search, number) =
            text_search(("id", "number"), ("certificate_search", "number"), 5, f.number.as_deref());
        let before = row::plain(page.before.is_some(), "id < ?2", "?2 IS NULL");
        self.run(move |c| {
            let sql = format!(
                "SELECT {} FROM certificates WHERE (?1 IS NULL OR company_id = ?1) \
                 AND {before} AND (?4 IS NULL OR status = ?4) \
                 AND {search} ORDER BY id DESC LIMIT ?3",
                row::cert_cols(CERT_LIST_COLS)
            );
            let p = params![page.company_id, page.before, page.limit, status, number];
            all(c, &sql, p, |r| row::certificate(r))
        })
        .await
    }

    async fn revoke(&self, ctx: &Ctx, id: i64, reason: &str, messages: MessagesFn) -> Result<Certificate> {
        let (ctx, reason) = (ctx.clone(), reason.to_owned());
        self.write(move |tx| ready(issuance::revoke(tx, &ctx, id, &reason, messages))).await
    }

    async fn certificate_statuses(&self, number: &str) -> Result<Vec<StatusEvent>> {
        let number = number.to_owned();
        let sql = format!("SELECT {STATUS_COLS} FROM certificate_statuses WHERE number = ?1 ORDER BY id");
        self.run(move |c| all(c, &sql, [number], |r| row::status(r))).await
    }

    async fn certificate_versions(&self, number: &str) -> Result<Vec<Certificate>> {
        let number = number.to_owned();
        let sql = format!(
            "SELECT {} FROM certificates WHERE number = ?1 ORDER BY version DESC",
            row::cert_cols(row::CERT_COLS)
        );
        self.run(move |c| all(c, &sql, [number], |r| row::certificate(r))).await
    }

    async fn status_entries(&self) -> Result<Vec<StatusEntry>> {
        self.run(move |c| all(c, row::STATUS_ENTRIES, [], |r| row::status_entry(r))).await
    }

    async fn put_status_list(
        &self,
        ctx: &Ctx,
        l: &StoredStatusList,
        messages: Vec<OutMessage>,
    ) -> Result<bool> {
        let (ctx, l) = (ctx.clone(), l.clone());
        self.write(move |tx| ready(inbox::publish_status_list(tx, &ctx, &l, &messages))).await
    }

    async fn status_list(&self, issuer: &str) -> Result<Option<StoredStatusList>> {
        let issuer = issuer.to_owned();
        let sql = format!("SELECT {} FROM status_lists WHERE issuer = ?1", row::STATUS_LIST_COLS);
        self.run(move |c| opt(c, &sql, [issuer], |r| row::status_list(r))).await
    }

    async fn status_lists(&self) -> Result<Vec<StoredStatusList>> {
        let sql = format!("SELECT {} FROM status_lists ORDER BY issuer", row::STATUS_LIST_META_COLS);
        self.run(move |c| all(c, &sql, [], |r| row::status_list(r))).await
    }

    async fn insert_received(&self, ctx: &Ctx, r: NewReceived) -> Result<ReceivedCertificate> {
        let ctx = ctx.clone();
        self.write(move |tx| ready(received::insert(tx, &ctx, &r))).await
    }

    async fn received(&self, id: i64) -> Result<Option<ReceivedCertificate>> {
        self.run(move |c| opt(c, &tx::RECEIVED_BY_ID, [id], |r| row::received(r))).await
    }

    async fn received_by_ref(&self, issuing_country: &str, number: &str) -> Result<Vec<ReceivedCertificate>> {
        let (country, number) = (issuing_country.to_owned(), number.to_owned());
        let sql = format!(
            "SELECT {} FROM received_certificates WHERE issuing_country = ?1 AND number = ?2 \
             ORDER BY version DESC",
            row::RECEIVED_COLS
        );
        self.run(move |c| all(c, &sql, params![country, number], |r| row::received(r))).await
    }

    async fn find_received(&self, page: &Page, f: &ReceivedFilter) -> Result<Vec<ReceivedCertificate>> {
        let page = *page;
        let (status, country) = (f.status.map(|s| s.as_str()), f.issuing_country.clone());
        let index = "received_search";
        let (numbers, number) = text_search(("id", "number"), (index, "number"), 5, f.number.as_deref());
        let (exporters, exporter) =
            text_search(("id", "exporter"), (index, "exporter"), 6, f.exporter.as_deref());
        let (from, to) = row::received_days(f);
        let before = row::plain(page.before.is_some(), "id < ?1", "?1 IS NULL");
        let sql = format!(
            "SELECT {RECEIVED_LIST_COLS} FROM received_certificates WHERE {before} \
             AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR issuing_country = ?4) \
             AND {numbers} AND {exporters} \
             AND (?7 IS NULL OR received_at >= ?7) AND (?8 IS NULL OR received_at < ?8) ORDER BY id DESC LIMIT ?2"
        );
        let run = move |c: &mut Connection| {
            let p = params![page.before, page.limit, status, country, number, exporter, from, to];
            all(c, &sql, p, |r| row::received(r))
        };
        self.run(run).await
    }

    async fn enqueue(&self, ctx: &Ctx, messages: Vec<OutMessage>) -> Result<()> {
        let at = timestamp(&ctx.at);
        self.write(move |tx| ready(outbox::enqueue(tx, &messages, &at))).await
    }

    async fn claim_outbox(&self, now: DateTime<Utc>, lease: Duration, limit: i64) -> Result<Vec<OutboxRow>> {
        let until = outbox::lease_until(&now, lease)?;
        let now = timestamp(&now);
        let sql = format!(
            "UPDATE outbox SET lease_until = ?2, next_attempt_at = ?2 WHERE seq IN (\
             SELECT seq FROM outbox WHERE dead = 0 AND next_attempt_at <= ?1 \
             AND (lease_until IS NULL OR lease_until <= ?1) ORDER BY next_attempt_at, seq LIMIT ?3) \
             RETURNING {OUTBOX_COLS_LITE}"
        );
        let rows =
            self.write(move |tx| all(tx.tx, &sql, params![now, until, limit], |r| row::outbox(r))).await?;
        Ok(outbox::claimed(rows))
    }

    async fn outbox_delivered(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        self.write(move |tx| {
            ids.iter().try_for_each(|id| {
                exec(
                    tx.tx,
                    "DELETE FROM outbox_bodies WHERE seq = (SELECT seq FROM outbox WHERE id = ?1)",
                    [id],
                )?;
                exec(tx.tx, "DELETE FROM outbox WHERE id = ?1", [id]).map(drop)
            })
        })
        .await
    }

    async fn outbox_failed(&self, id: &str, error: &str, next: DateTime<Utc>, dead: bool) -> Result<()> {
        let (id, error, next) = (id.to_owned(), error.to_owned(), timestamp(&next));
        let sql = "UPDATE outbox SET attempts = attempts + 1, last_error = ?1, next_attempt_at = ?2, \
                   lease_until = NULL, dead = ?3 WHERE id = ?4";
        self.write(move |tx| exec(tx.tx, sql, params![error, next, dead, id]).map(drop)).await
    }

    async fn outbox_messages(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        let sql = format!("SELECT {OUTBOX_COLS_LITE} FROM outbox ORDER BY seq LIMIT ?1");
        self.run(move |c| all(c, &sql, [limit], |r| row::outbox(r))).await
    }

    async fn dead_letters(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        let sql = format!("SELECT {OUTBOX_COLS_LITE} FROM outbox WHERE dead = 1 ORDER BY seq LIMIT ?1");
        self.run(move |c| all(c, &sql, [limit], |r| row::outbox(r))).await
    }

    async fn retry_dead(&self, ctx: &Ctx, id: &str) -> Result<OutboxRow> {
        let (ctx, id) = (ctx.clone(), id.to_owned());
        self.write(move |tx| ready(outbox::retry_dead(tx, &ctx, &id))).await
    }

    async fn outbox_counts(&self) -> Result<(i64, i64)> {
        let sql = "SELECT (SELECT count(*) FROM outbox WHERE dead = 0), (SELECT count(*) FROM outbox WHERE dead = 1)";
        self.run(move |c| one(c, sql, [], |r| row::pair(r))).await
    }

    async fn apply_inbound(&self, ctx: &Ctx, batch: Vec<Inbound>) -> Result<Vec<Applied>> {
        if batch.is_empty() {
            return Ok(vec![]);
        }
        let ctx = ctx.clone();
        let batch = inbox::pack_ahead(batch).await?;
        self.write(move |tx| ready(inbox::apply(tx, &ctx, batch))).await
    }

    async fn inbox_len(&self) -> Result<i64> {
        self.count("SELECT count(*) FROM inbox").await
    }

    async fn held_len(&self) -> Result<i64> {
        self.count("SELECT count(*) FROM inbox_held").await
    }

    async fn record_refused(&self, refusals: Vec<Refusal>) -> Result<()> {
        if refusals.is_empty() {
            return Ok(());
        }
        self.write(move |tx| refusals.iter().try_for_each(|r| tx::refuse(tx.tx, r))).await
    }

    async fn refused(&self, limit: i64) -> Result<Vec<Refusal>> {
        let sql = format!("SELECT {REFUSAL_COLS} FROM inbox_refused ORDER BY seq DESC LIMIT ?1");
        self.run(move |c| all(c, &sql, [limit], |r| row::refusal(r))).await
    }

    async fn quarantined(&self, limit: i64) -> Result<Vec<InboxRecord>> {
        let sql = format!(
            "SELECT {INBOX_COLS} FROM inbox WHERE state = 'quarantined' \
             ORDER BY updated_at DESC, message_id LIMIT ?1"
        );
        self.run(move |c| all(c, &sql, [limit], |r| row::inbox_record(r))).await
    }

    async fn quarantined_len(&self) -> Result<i64> {
        self.count("SELECT count(*) FROM inbox WHERE state = 'quarantined'").await
    }

    async fn create_declaration(&self, ctx: &Ctx, d: NewDeclaration) -> Result<Declaration> {
        let ctx = ctx.clone();
        self.write(move |tx| ready(declarations::create(tx, &ctx, &d))).await
    }

    async fn declaration(&self, id: i64) -> Result<Option<Declaration>> {
        self.run(move |c| tx::declaration(c, "id", id)).await
    }

    async fn declaration_by_number(&self, number: &str) -> Result<Option<Declaration>> {
        let number = number.to_owned();
        self.run(move |c| tx::declaration(c, "number", number)).await
    }

    async fn find_declarations(
        &self,
        page: &Page,
        by_risk: bool,
        filter: &DeclarationFilter,
    ) -> Result<Vec<Declaration>> {
        let page = *page;
        let (number, importer) =
            (filter.number.as_deref().map(like_anywhere), filter.importer.as_deref().map(like_anywhere));
        let (from, to, outcome) = (filter.from.clone(), filter.to.clone(), filter.outcome.clone());
        let (after, order) = row::declaration_page(by_risk, "?1");
        // A number searched among the index of numbers, not row by row in risk order.
        let number_cond =
            row::declaration_number(filter.number.is_some(), "LIKE ?3 ESCAPE '\\'", "?3 IS NULL");
        self.run(move |c| {
            let rare = match &outcome {
                Some(o) => {
                    one(c, &row::rare_outcome_sql("?1"), [o], |r| r.get::<_, i64>(0).map_err(db))?
                        < row::RARE_OUTCOME
                }
                None => false,
            };
            let outcome_cond = row::declaration_outcome(outcome.is_some(), rare, "?7", "?7 IS NULL");
            let sql = format!(
                "SELECT {} FROM declarations d WHERE (?1 IS NULL OR {after}) \
                 AND {number} AND (?4 IS NULL OR importer LIKE ?4 ESCAPE '\\') \
                 AND (?5 IS NULL OR declaration_date >= ?5) AND (?6 IS NULL OR declaration_date <= ?6) \
                 AND {outcome_cond} ORDER BY {order} LIMIT ?2",
                row::DECL_LIST_COLS,
                number = number_cond
            );
            let p = params![page.before, page.limit, number, importer, from, to, outcome];
            let mut out = all(c, &sql, p, |r| row::declaration(r))?;
            for d in &mut out {
                d.lines = tx::lines(c, d.id)?;
            }
            Ok(out)
        })
        .await
    }

    async fn set_risk(&self, ctx: &Ctx, id: i64, score: i64, risk_json: &str) -> Result<()> {
        let (ctx, risk) = (ctx.clone(), risk_json.to_owned());
        self.write(move |tx| ready(declarations::set_risk(tx, &ctx, id, score, &risk))).await
    }

    async fn link_pending_line(
        &self,
        ctx: &Ctx,
        declaration_id: i64,
        line_no: i32,
        issuing_country: &str,
        number: &str,
    ) -> Result<()> {
        let (ctx, country, number) = (ctx.clone(), issuing_country.to_owned(), number.to_owned());
        let line = (declaration_id, line_no);
        self.write(move |tx| ready(declarations::link_pending_line(tx, &ctx, line, &country, &number))).await
    }

    async fn decide_lines_noted(&self, ctx: &Ctx, id: i64, d: Decisions) -> Result<Decided> {
        let ctx = ctx.clone();
        self.write(move |tx| {
            ready(declarations::decide_with(tx, &ctx, id, d.lines, d.messages, d.note.as_ref()))
        })
        .await
    }

    async fn ledger(&self, issuing_country: &str, number: &str) -> Result<Vec<LedgerRow>> {
        let (country, number) = (issuing_country.to_owned(), number.to_owned());
        self.run(move |c| {
            let sql = "SELECT item, total, remaining FROM ledger WHERE issuing_country = ?1 AND number = ?2 \
                       ORDER BY item";
            let mut rows = all(c, sql, params![country, number], |r| {
                Ok(LedgerRow { item: r.col(0)?, total: r.col(1)?, remaining: r.col(2)?, declarations: vec![] })
            })?;
            let sql = "SELECT DISTINCT d.number FROM utilizations u JOIN declarations d ON d.id = u.declaration_id \
                       WHERE u.issuing_country = ?1 AND u.number = ?2 AND u.item = ?3 AND u.released_at IS NULL \
                       ORDER BY d.number";
            for row in &mut rows {
                row.declarations = all(c, sql, params![country, number, row.item], |r| row::first(r))?;
            }
            Ok(rows)
        })
        .await
    }

    async fn utilizations(&self, issuing_country: &str, number: &str) -> Result<Vec<Utilization>> {
        let (country, number) = (issuing_country.to_owned(), number.to_owned());
        let sql = format!(
            "SELECT {} FROM utilizations u JOIN declarations d ON d.id = u.declaration_id \
             WHERE u.issuing_country = ?1 AND u.number = ?2 AND u.released_at IS NULL ORDER BY u.id",
            row::UTILIZATION_COLS
        );
        self.run(move |c| all(c, &sql, params![country, number], |r| row::utilization(r))).await
    }

    async fn revenue_groups(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<RevenueGroup>> {
        let (from, to) = (from.format("%Y-%m-%d").to_string(), to.format("%Y-%m-%d").to_string());
        let sql = row::revenue_groups_sql("?1", "?2", |x| format!("SUM({x})"));
        self.run(move |c| all(c, &sql, params![from, to], |r| row::revenue_group(r))).await
    }

    async fn lines_unsummed(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        limit: usize,
    ) -> Result<Vec<(String, DeclarationLine)>> {
        let (from, to) = (from.format("%Y-%m-%d").to_string(), to.format("%Y-%m-%d").to_string());
        let sql = row::lines_unsummed_sql("?1", "?2", "?3");
        let limit = limit as i64;
        self.run(move |c| all(c, &sql, params![from, to, limit], |r| Ok((r.col(10)?, row::line(r)?)))).await
    }

    async fn lines_with_outcome(
        &self,
        country: &str,
        number: &str,
        outcome: &'static str,
    ) -> Result<LineRefs> {
        let (country, number) = (country.to_owned(), number.to_owned());
        let sql = "SELECT declaration_id, line_no FROM declaration_lines \
                   WHERE eco_country = ?1 AND eco_number = ?2 AND outcome = ?3 ORDER BY declaration_id, line_no";
        self.run(move |c| all(c, sql, params![country, number, outcome], |r| row::pair(r))).await
    }

    async fn certificates_named(
        &self,
        certs: Vec<(String, String)>,
    ) -> Result<std::collections::HashSet<(String, String)>> {
        if certs.is_empty() {
            return Ok(Default::default());
        }
        let sql =
            "SELECT EXISTS (SELECT 1 FROM declaration_lines WHERE eco_country = ?1 AND eco_number = ?2)";
        self.run(move |c| {
            let mut named = std::collections::HashSet::new();
            for (country, number) in certs {
                if one(c, sql, params![country, number], |r| row::first::<_, i64>(r))? != 0 {
                    named.insert((country, number));
                }
            }
            Ok(named)
        })
        .await
    }

    async fn pair_seen(&self, pair: Pair<'_>) -> Result<bool> {
        let (exporter, key, name) =
            (pair.exporter.to_owned(), pair.importer_key.to_owned(), pair.importer_name.to_owned());
        let sql = "SELECT EXISTS (SELECT 1 FROM declaration_lines l JOIN declarations d ON d.id = l.declaration_id \
                   WHERE l.exporter = ?1 AND l.outcome = 'granted' AND d.id <> ?4 \
                   AND (d.importer_key = ?2 OR (d.importer_key IS NULL AND d.importer = ?3)))";
        self.run(move |c| one(c, sql, params![exporter, key, name, pair.other_than], |r| row::first(r))).await
    }

    async fn create_verification(
        &self,
        ctx: &Ctx,
        v: NewVerification,
        messages: Vec<OutMessage>,
    ) -> Result<VerificationRequest> {
        let ctx = ctx.clone();
        self.write(move |tx| ready(verifications::create(tx, &ctx, &v, &messages))).await
    }

    async fn answer_verification(
        &self,
        ctx: &Ctx,
        id: i64,
        answer: &str,
        outcome: &str,
        messages: Vec<OutMessage>,
    ) -> Result<VerificationRequest> {
        let (ctx, answer, outcome) = (ctx.clone(), answer.to_owned(), outcome.to_owned());
        self.write(move |tx| ready(verifications::answer(tx, &ctx, id, (&answer, &outcome), &messages))).await
    }

    async fn record_verification_answer(
        &self,
        ctx: &Ctx,
        message_id_of_request: &str,
        answer: &str,
        outcome: &str,
    ) -> Result<VerificationRequest> {
        let (ctx, mid, answer, outcome) =
            (ctx.clone(), message_id_of_request.to_owned(), answer.to_owned(), outcome.to_owned());
        self.write(move |tx| ready(verifications::record_answer(tx, &ctx, &mid, (&answer, &outcome)))).await
    }

    async fn verification(&self, id: i64) -> Result<Option<VerificationRequest>> {
        self.run(move |c| opt(c, &tx::VERIFICATION_BY_ID, [id], |r| row::verification(r))).await
    }

    async fn list_verifications(
        &self,
        direction: Option<&str>,
        limit: i64,
    ) -> Result<Vec<VerificationRequest>> {
        let direction = direction.map(str::to_owned);
        let sql = format!(
            "SELECT {VERIFICATION_COLS} FROM verification_requests WHERE (?1 IS NULL OR direction = ?1) \
             ORDER BY id DESC LIMIT ?2"
        );
        self.run(move |c| all(c, &sql, params![direction, limit], |r| row::verification(r))).await
    }

    async fn overdue_verifications(&self, now: DateTime<Utc>) -> Result<Vec<VerificationRequest>> {
        let now = timestamp(&now);
        let sql = format!(
            "SELECT {VERIFICATION_COLS} FROM verification_requests WHERE status = 'open' AND deadline < ?1 \
             ORDER BY deadline, id"
        );
        self.run(move |c| all(c, &sql, [now], |r| row::verification(r))).await
    }

    async fn denied_verifications(&self, issuing_country: &str) -> Result<i64> {
        let country = issuing_country.to_owned();
        let sql = "SELECT count(*) FROM verification_requests WHERE direction = 'outgoing' \
                   AND issuing_country = ?1 AND status = 'denied'";
        self.run(move |c| one(c, sql, [country], |r| row::first(r))).await
    }

    async fn audit_events(&self, after: i64, up_to: i64, limit: i64) -> Result<Vec<AuditEvent>> {
        let sql = format!(
            "SELECT {AUDIT_COLS} FROM audit_events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3"
        );
        self.run(move |c| all(c, &sql, params![after, up_to, limit], |r| row::audit_event(r))).await
    }

    async fn audit_head_row(&self) -> Result<Option<(i64, String)>> {
        self.run(|c| opt(c, "SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| row::pair(r))).await
    }

    fn audit_chain(&self) -> &audit::Chain {
        &self.audit
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn outbox_columns_on_sqlite_are_the_shared_ones_with_the_body_from_its_table() {
        let body = "COALESCE((SELECT b.body FROM outbox_bodies b WHERE b.seq = outbox.seq), body)";
        let lite: Vec<String> =
            super::OUTBOX_COLS_LITE.replace(body, "body").split(',').map(|c| c.trim().to_owned()).collect();
        let shared: Vec<String> = crate::row::OUTBOX_COLS.split(',').map(|c| c.trim().to_owned()).collect();
        assert_eq!(lite, shared);
    }
}
