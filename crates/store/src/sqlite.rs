//! The SQLite backend: one file in WAL mode, used from tokio's blocking pool through one
//! writer connection and a few read-only reader connections. Every write is a
//! `BEGIN IMMEDIATE` transaction on the writer, so writers queue instead of failing, and a
//! second process (`originlink audit verify`, another `node user add`) waits on the busy
//! timeout.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use crate::audit::{self, AuditEvent, PendingEvent};
use crate::{APP_COLS, CERT_COLS};
use crate::{
    Application, ApplicationStatus, Certificate, CertificateStatus, Company, Ctx, NewApplication,
    NewReceived, NewUser, Numbering, Page, ReceivedCertificate, Result, Role, SignFn, Store, StoreError,
    Transition, User, app_state, cert_state, timestamp,
};

/// Schema migrations, in order. A migration is never edited once released; add a new one.
/// Later issues append here (outbox, inbox, declarations).
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
CREATE TABLE companies (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  country TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  company_id INTEGER REFERENCES companies(id),
  created_at TEXT NOT NULL
);
CREATE TABLE tokens (
  token_hash BLOB PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  created_at TEXT NOT NULL,
  revoked_at TEXT
);
CREATE TABLE received_certificates (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  issuing_country TEXT NOT NULL,
  number TEXT NOT NULL,
  version INTEGER NOT NULL,
  document BLOB NOT NULL,
  received_at TEXT NOT NULL,
  UNIQUE (issuing_country, number, version)
);
CREATE TABLE applications (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  company_id INTEGER NOT NULL REFERENCES companies(id),
  status TEXT NOT NULL,
  format TEXT NOT NULL,
  document BLOB NOT NULL,
  self_assessment TEXT,
  assessment TEXT,
  replaces INTEGER,
  back_to_back_of INTEGER REFERENCES received_certificates(id),
  reason TEXT,
  certificate_id INTEGER,
  created_by INTEGER NOT NULL REFERENCES users(id),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX applications_company ON applications(company_id);
CREATE TABLE certificates (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  application_id INTEGER NOT NULL UNIQUE REFERENCES applications(id),
  company_id INTEGER NOT NULL REFERENCES companies(id),
  issuer TEXT NOT NULL,
  number TEXT NOT NULL,
  version INTEGER NOT NULL,
  status TEXT NOT NULL,
  supersedes INTEGER REFERENCES certificates(id),
  signed BLOB NOT NULL,
  issued_at TEXT NOT NULL,
  revoked_reason TEXT,
  signed_sha256 TEXT NOT NULL,
  UNIQUE (issuer, number, version)
);
CREATE INDEX certificates_company ON certificates(company_id);
CREATE TABLE number_sequences (
  scope TEXT PRIMARY KEY,
  last INTEGER NOT NULL
);
CREATE TABLE audit_events (
  seq INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  entity TEXT NOT NULL,
  before TEXT NOT NULL,
  after TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE TABLE audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  seq INTEGER NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
"#,
)];

/// The list columns: the same as `APP_COLS`/`CERT_COLS`, without the (large) documents.
const APP_LIST_COLS: &str = "id, company_id, status, format, x'' AS document, self_assessment, assessment, \
     replaces, back_to_back_of, reason, certificate_id, created_by, created_at, updated_at";
const CERT_LIST_COLS: &str = "id, application_id, company_id, issuer, number, version, status, supersedes, \
     x'' AS signed, issued_at, revoked_reason, signed_sha256";

/// The SQLite store: one writer connection (writes queue on it, never fail busy) and a few
/// reader connections (WAL lets them read while the writer writes).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next: Arc<AtomicUsize>,
}

/// Reader connections per store.
const READERS: usize = 4;

fn connection(path: &Path, read_only: bool) -> Result<Connection> {
    let c = Connection::open(path).map_err(db)?;
    c.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
    if !read_only {
        c.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
    }
    c.pragma_update(None, "synchronous", "NORMAL").map_err(db)?;
    c.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
    if read_only {
        c.pragma_update(None, "query_only", "ON").map_err(db)?;
    }
    Ok(c)
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn is_unique(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

fn bad_value(what: &str, v: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("unknown {what} {v:?} in database").into(),
    )
}

fn app_row(r: &Row<'_>) -> rusqlite::Result<Application> {
    let status: String = r.get(2)?;
    Ok(Application {
        id: r.get(0)?,
        company_id: r.get(1)?,
        status: ApplicationStatus::parse(&status).ok_or_else(|| bad_value("status", &status))?,
        format: r.get(3)?,
        document: r.get(4)?,
        self_assessment: r.get(5)?,
        assessment: r.get(6)?,
        replaces: r.get(7)?,
        back_to_back_of: r.get(8)?,
        reason: r.get(9)?,
        certificate_id: r.get(10)?,
        created_by: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
    })
}

fn cert_row(r: &Row<'_>) -> rusqlite::Result<Certificate> {
    let status: String = r.get(6)?;
    Ok(Certificate {
        id: r.get(0)?,
        application_id: r.get(1)?,
        company_id: r.get(2)?,
        issuer: r.get(3)?,
        number: r.get(4)?,
        version: r.get(5)?,
        status: CertificateStatus::parse(&status).ok_or_else(|| bad_value("status", &status))?,
        supersedes: r.get(7)?,
        signed: r.get(8)?,
        issued_at: r.get(9)?,
        revoked_reason: r.get(10)?,
        sha256: r.get(11)?,
    })
}

fn get_app(c: &Connection, id: i64) -> Result<Option<Application>> {
    c.query_row(&format!("SELECT {APP_COLS} FROM applications WHERE id = ?1"), [id], app_row)
        .optional()
        .map_err(db)
}

fn get_cert(c: &Connection, id: i64) -> Result<Option<Certificate>> {
    c.query_row(&format!("SELECT {CERT_COLS} FROM certificates WHERE id = ?1"), [id], cert_row)
        .optional()
        .map_err(db)
}

/// Appends events to the chain inside the caller's transaction.
fn append(tx: &Transaction<'_>, ctx: &Ctx, events: &[PendingEvent]) -> Result<()> {
    let (mut seq, mut prev): (i64, String) = tx
        .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(db)?;
    let at = timestamp(&ctx.at);
    for e in events {
        seq += 1;
        let hash = audit::chain_hash(
            &prev,
            &audit::canonical(seq, &at, &ctx.actor, e.action, &e.entity, &e.before, &e.after),
        );
        tx.execute(
            "INSERT INTO audit_events (seq, at, actor, action, entity, before, after, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![seq, at, ctx.actor, e.action, e.entity, e.before, e.after, prev, hash],
        )
        .map_err(db)?;
        prev = hash;
    }
    tx.execute("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1", params![seq, prev]).map_err(db)?;
    Ok(())
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
        })
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
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.run_writer(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
            let out = f(&tx)?;
            tx.commit().map_err(db)?;
            Ok(out)
        })
        .await
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
        self.write(|tx| {
            tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")
                .map_err(db)?;
            for (v, sql) in MIGRATIONS {
                let done: Option<i64> = tx
                    .query_row("SELECT version FROM schema_migrations WHERE version = ?1", [v], |r| r.get(0))
                    .optional()
                    .map_err(db)?;
                if done.is_none() {
                    tx.execute_batch(sql).map_err(db)?;
                    tx.execute("INSERT INTO schema_migrations (version) VALUES (?1)", [v]).map_err(db)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn ping(&self) -> Result<()> {
        self.run(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(db)).await
    }

    async fn create_company(&self, ctx: &Ctx, name: &str, country: &str) -> Result<Company> {
        let (ctx, name, country) = (ctx.clone(), name.to_owned(), country.to_owned());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO companies (name, country, created_at) VALUES (?1, ?2, ?3)",
                params![name, country, timestamp(&ctx.at)],
            )
            .map_err(|e| {
                if is_unique(&e) {
                    StoreError::conflict("COMPANY_EXISTS", format!("company {name:?} exists"))
                } else {
                    db(e)
                }
            })?;
            let id = tx.last_insert_rowid();
            let after = serde_json::json!({ "name": name, "country": country }).to_string();
            append(
                tx,
                &ctx,
                &[PendingEvent::new("company.created", format!("company/{id}"), "null".into(), after)],
            )?;
            Ok(Company { id, name, country })
        })
        .await
    }

    async fn company_by_name(&self, name: &str) -> Result<Option<Company>> {
        let name = name.to_owned();
        self.run(move |c| {
            c.query_row("SELECT id, name, country FROM companies WHERE name = ?1", [name], |r| {
                Ok(Company { id: r.get(0)?, name: r.get(1)?, country: r.get(2)? })
            })
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn create_user(&self, ctx: &Ctx, u: NewUser) -> Result<User> {
        let ctx = ctx.clone();
        self.write(move |tx| {
            let at = timestamp(&ctx.at);
            tx.execute(
                "INSERT INTO users (name, role, company_id, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![u.name, u.role.as_str(), u.company_id, at],
            )
            .map_err(|e| {
                if is_unique(&e) {
                    StoreError::conflict("USER_EXISTS", format!("user {:?} exists", u.name))
                } else {
                    db(e)
                }
            })?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO tokens (token_hash, user_id, created_at) VALUES (?1, ?2, ?3)",
                params![&u.token_hash[..], id, at],
            )
            .map_err(db)?;
            let after =
                serde_json::json!({ "name": u.name, "role": u.role.as_str(), "company_id": u.company_id })
                    .to_string();
            append(
                tx,
                &ctx,
                &[PendingEvent::new("user.created", format!("user/{id}"), "null".into(), after)],
            )?;
            Ok(User { id, name: u.name, role: u.role, company_id: u.company_id })
        })
        .await
    }

    async fn user_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<User>> {
        let hash = *hash;
        self.run(move |c| {
            c.query_row(
                "SELECT u.id, u.name, u.role, u.company_id FROM tokens t JOIN users u ON u.id = t.user_id \
                 WHERE t.token_hash = ?1 AND t.revoked_at IS NULL",
                [&hash[..]],
                |r| {
                    let role: String = r.get(2)?;
                    Ok(User {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        role: Role::parse(&role).ok_or_else(|| bad_value("role", &role))?,
                        company_id: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn create_application(&self, ctx: &Ctx, a: NewApplication) -> Result<Application> {
        let ctx = ctx.clone();
        self.write(move |tx| {
            if let Some(old) = a.replaces {
                match get_cert(tx, old)? {
                    Some(c) if c.company_id == a.company_id => {
                        if c.status != CertificateStatus::Issued {
                            return Err(StoreError::conflict(
                                "CERTIFICATE_NOT_ISSUED",
                                format!("certificate {old} is {}, only an issued one can be replaced", c.status),
                            ));
                        }
                    }
                    _ => return Err(StoreError::NotFound),
                }
            }
            if let Some(rec) = a.back_to_back_of {
                let found: Option<i64> = tx
                    .query_row("SELECT id FROM received_certificates WHERE id = ?1", [rec], |r| r.get(0))
                    .optional()
                    .map_err(db)?;
                if found.is_none() {
                    return Err(StoreError::NotFound);
                }
            }
            let at = timestamp(&ctx.at);
            tx.execute(
                "INSERT INTO applications (company_id, status, format, document, self_assessment, assessment, \
                 replaces, back_to_back_of, created_by, created_at, updated_at) \
                 VALUES (?1, 'draft', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                params![
                    a.company_id,
                    a.format,
                    a.document,
                    a.self_assessment,
                    a.assessment,
                    a.replaces,
                    a.back_to_back_of,
                    a.created_by,
                    at
                ],
            )
            .map_err(db)?;
            let id = tx.last_insert_rowid();
            let after = app_state(
                ApplicationStatus::Draft,
                &[
                    ("company_id", a.company_id.into()),
                    ("replaces", a.replaces.into()),
                    ("back_to_back_of", a.back_to_back_of.into()),
                ],
            );
            append(
                tx,
                &ctx,
                &[PendingEvent::new("application.created", format!("application/{id}"), "null".into(), after)],
            )?;
            get_app(tx, id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn application(&self, id: i64) -> Result<Option<Application>> {
        self.run(move |c| get_app(c, id)).await
    }

    async fn list_applications(&self, page: &Page) -> Result<Vec<Application>> {
        let page = *page;
        self.run(move |c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {APP_LIST_COLS} FROM applications WHERE (?1 IS NULL OR company_id = ?1) \
                     AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
                ))
                .map_err(db)?;
            let rows =
                st.query_map(params![page.company_id, page.before, page.limit], app_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn transition(&self, ctx: &Ctx, id: i64, t: Transition) -> Result<Application> {
        let ctx = ctx.clone();
        self.write(move |tx| {
            let app = get_app(tx, id)?.ok_or(StoreError::NotFound)?;
            let (from, to, action, reason) = match &t {
                Transition::Submit => {
                    (ApplicationStatus::Draft, ApplicationStatus::Submitted, "application.submitted", None)
                }
                Transition::Reject { reason } => (
                    ApplicationStatus::Submitted,
                    ApplicationStatus::Rejected,
                    "application.rejected",
                    Some(reason.clone()),
                ),
            };
            if app.status != from {
                return Err(crate::not_in_state(from, app.status));
            }
            tx.execute(
                "UPDATE applications SET status = ?1, reason = ?2, updated_at = ?3 WHERE id = ?4",
                params![to.as_str(), reason, timestamp(&ctx.at), id],
            )
            .map_err(db)?;
            let after = app_state(to, &[("reason", reason.into())]);
            append(
                tx,
                &ctx,
                &[PendingEvent::new(action, format!("application/{id}"), app_state(from, &[]), after)],
            )?;
            get_app(tx, id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn approve(&self, ctx: &Ctx, id: i64, numbering: &Numbering, sign: SignFn) -> Result<Certificate> {
        let (ctx, numbering) = (ctx.clone(), numbering.clone());
        self.write(move |tx| {
            let app = get_app(tx, id)?.ok_or(StoreError::NotFound)?;
            if app.status != ApplicationStatus::Submitted {
                return Err(crate::not_in_state(ApplicationStatus::Submitted, app.status));
            }
            let old = match app.replaces {
                Some(old) => {
                    let c = get_cert(tx, old)?.ok_or(StoreError::NotFound)?;
                    if c.status != CertificateStatus::Issued {
                        return Err(StoreError::conflict(
                            "CERTIFICATE_NOT_ISSUED",
                            format!("certificate {old} is {}, only an issued one can be replaced", c.status),
                        ));
                    }
                    Some(c)
                }
                None => None,
            };
            let issue = match &old {
                Some(c) => crate::Issue {
                    seq: None,
                    number: Some(c.number.clone()),
                    version: c.version + 1,
                    application: app.clone(),
                },
                None => {
                    let seq: i64 = tx
                        .query_row(
                            "INSERT INTO number_sequences (scope, last) VALUES (?1, 1) \
                             ON CONFLICT (scope) DO UPDATE SET last = last + 1 RETURNING last",
                            [&numbering.scope],
                            |r| r.get(0),
                        )
                        .map_err(db)?;
                    crate::Issue { seq: Some(seq), number: None, version: 1, application: app.clone() }
                }
            };
            let signed = sign(&issue).map_err(StoreError::Sign)?;
            let sha = crate::hex(ring::digest::digest(&ring::digest::SHA256, &signed.bytes).as_ref());
            let at = timestamp(&ctx.at);
            tx.execute(
                "INSERT INTO certificates (application_id, company_id, issuer, number, version, status, supersedes, \
                 signed, issued_at, signed_sha256) VALUES (?1, ?2, ?3, ?4, ?5, 'issued', ?6, ?7, ?8, ?9)",
                params![
                    id,
                    app.company_id,
                    numbering.issuer,
                    signed.number,
                    issue.version,
                    old.as_ref().map(|c| c.id),
                    signed.bytes,
                    at,
                    sha
                ],
            )
            .map_err(|e| {
                if is_unique(&e) {
                    StoreError::conflict("CERTIFICATE_NUMBER_TAKEN", format!("number {} is taken", signed.number))
                } else {
                    db(e)
                }
            })?;
            let cert_id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE applications SET status = 'approved', certificate_id = ?1, updated_at = ?2 WHERE id = ?3",
                params![cert_id, at, id],
            )
            .map_err(db)?;
            if let Some(c) = &old {
                tx.execute("UPDATE certificates SET status = 'superseded' WHERE id = ?1", [c.id]).map_err(db)?;
            }
            let events = crate::approval_events(
                id,
                cert_id,
                &signed.number,
                issue.version,
                &sha,
                old.as_ref().map(|c| c.id),
            );
            append(tx, &ctx, &events)?;
            get_cert(tx, cert_id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn certificate(&self, id: i64) -> Result<Option<Certificate>> {
        self.run(move |c| get_cert(c, id)).await
    }

    async fn list_certificates(&self, page: &Page) -> Result<Vec<Certificate>> {
        let page = *page;
        self.run(move |c| {
            let mut st = c
                .prepare(&format!(
                    "SELECT {CERT_LIST_COLS} FROM certificates WHERE (?1 IS NULL OR company_id = ?1) \
                     AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
                ))
                .map_err(db)?;
            let rows =
                st.query_map(params![page.company_id, page.before, page.limit], cert_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn revoke(&self, ctx: &Ctx, id: i64, reason: &str) -> Result<Certificate> {
        let (ctx, reason) = (ctx.clone(), reason.to_owned());
        self.write(move |tx| {
            let c = get_cert(tx, id)?.ok_or(StoreError::NotFound)?;
            if c.status != CertificateStatus::Issued {
                return Err(StoreError::conflict(
                    "CERTIFICATE_NOT_ISSUED",
                    format!("certificate {id} is {}, only an issued one can be revoked", c.status),
                ));
            }
            tx.execute(
                "UPDATE certificates SET status = 'revoked', revoked_reason = ?1 WHERE id = ?2",
                params![reason, id],
            )
            .map_err(db)?;
            append(
                tx,
                &ctx,
                &[PendingEvent::new(
                    "certificate.revoked",
                    format!("certificate/{id}"),
                    cert_state(CertificateStatus::Issued, &[]),
                    cert_state(CertificateStatus::Revoked, &[("reason", reason.into())]),
                )],
            )?;
            get_cert(tx, id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn insert_received(&self, ctx: &Ctx, r: NewReceived) -> Result<ReceivedCertificate> {
        let ctx = ctx.clone();
        self.write(move |tx| {
            let at = timestamp(&ctx.at);
            tx.execute(
                "INSERT INTO received_certificates (issuing_country, number, version, document, received_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![r.issuing_country, r.number, r.version, r.document, at],
            )
            .map_err(|e| {
                if is_unique(&e) {
                    StoreError::conflict("RECEIVED_EXISTS", format!("{} {} v{} exists", r.issuing_country, r.number, r.version))
                } else {
                    db(e)
                }
            })?;
            let id = tx.last_insert_rowid();
            let after = serde_json::json!({ "issuing_country": r.issuing_country, "number": r.number, "version": r.version })
                .to_string();
            append(tx, &ctx, &[PendingEvent::new("received.stored", format!("received/{id}"), "null".into(), after)])?;
            Ok(ReceivedCertificate {
                id,
                issuing_country: r.issuing_country,
                number: r.number,
                version: r.version,
                document: r.document,
                received_at: at,
            })
        })
        .await
    }

    async fn received(&self, id: i64) -> Result<Option<ReceivedCertificate>> {
        self.run(move |c| {
            c.query_row(
                "SELECT id, issuing_country, number, version, document, received_at FROM received_certificates WHERE id = ?1",
                [id],
                |r| {
                    Ok(ReceivedCertificate {
                        id: r.get(0)?,
                        issuing_country: r.get(1)?,
                        number: r.get(2)?,
                        version: r.get(3)?,
                        document: r.get(4)?,
                        received_at: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(db)
        })
        .await
    }

    async fn audit_events(&self, after: i64, up_to: i64, limit: i64) -> Result<Vec<AuditEvent>> {
        self.run(move |c| {
            let mut st = c
                .prepare(
                    "SELECT seq, at, actor, action, entity, before, after, prev_hash, hash FROM audit_events \
                     WHERE seq > ?1 AND seq <= ?2 ORDER BY seq LIMIT ?3",
                )
                .map_err(db)?;
            let rows = st
                .query_map(params![after, up_to, limit], |r| {
                    Ok(AuditEvent {
                        seq: r.get(0)?,
                        at: r.get(1)?,
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        entity: r.get(4)?,
                        before: r.get(5)?,
                        after: r.get(6)?,
                        prev_hash: r.get(7)?,
                        hash: r.get(8)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn audit_head(&self) -> Result<(i64, String)> {
        self.run(|c| {
            c.query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(db)
        })
        .await
    }
}
