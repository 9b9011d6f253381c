//! The SQLite backend: one file in WAL mode, used from tokio's blocking pool through one
//! writer connection and a few read-only reader connections. Every write is a
//! `BEGIN IMMEDIATE` transaction on the writer, so writers queue instead of failing, and a
//! second process (`originlink audit verify`, another `node user add`) waits on the busy
//! timeout.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Row, Transaction, TransactionBehavior, params};

use chrono::{DateTime, Utc};

use crate::DecisionMessagesFn;
use crate::audit::{self, AuditEvent, PendingEvent};
use crate::declarations::{self, ActiveUse, DeclTx};
use crate::inbox::{self, Found, InboxTx};
use crate::{
    APP_COLS, CERT_COLS, DECL_COLS, DECL_LIST_COLS, LINE_COLS, OUTBOX_COLS, RECEIVED_COLS, STATUS_COLS,
    VERIFICATION_COLS, cert_cols,
};
use crate::{
    Application, ApplicationStatus, Applied, Certificate, CertificateStatus, Company, Ctx, Declaration,
    DeclarationLine, INCOMING, Inbound, InboxRecord, LedgerRow, LineDecision, MessagesFn, NewApplication,
    NewDeclaration, NewReceived, NewUser, NewVerification, Numbering, OUTGOING, OutMessage, OutboxRow, Page,
    ReceivedCertificate, ReceivedStatus, Refusal, Result, Role, SignFn, StatusEvent, Store, StoreError,
    Transition, User, Utilization, VerificationRequest, app_state, timestamp,
};

/// Schema migrations, in order. A migration is never edited once released; add a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (
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
    ),
    (
        2,
        r#"
ALTER TABLE received_certificates ADD COLUMN status TEXT NOT NULL DEFAULT 'valid';
ALTER TABLE received_certificates ADD COLUMN verdict TEXT;
ALTER TABLE received_certificates ADD COLUMN revoked_reason TEXT;
ALTER TABLE received_certificates ADD COLUMN message_id TEXT;
CREATE INDEX certificates_number ON certificates(number, version);
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  recipient TEXT NOT NULL,
  kind TEXT NOT NULL,
  cert_key TEXT,
  body BLOB NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  next_attempt_at TEXT NOT NULL,
  lease_until TEXT,
  last_error TEXT,
  dead INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox(next_attempt_at, seq) WHERE dead = 0;
CREATE INDEX outbox_dead ON outbox(seq) WHERE dead = 1;
CREATE TABLE inbox (
  message_id TEXT PRIMARY KEY,
  from_country TEXT NOT NULL,
  kind TEXT NOT NULL,
  state TEXT NOT NULL,
  received_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE inbox_held (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT NOT NULL UNIQUE REFERENCES inbox(message_id),
  cert_key TEXT NOT NULL,
  waits_for INTEGER NOT NULL,
  message TEXT NOT NULL,
  held_at TEXT NOT NULL
);
CREATE INDEX inbox_held_wait ON inbox_held(cert_key, waits_for);
CREATE TABLE certificate_statuses (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  number TEXT NOT NULL,
  version INTEGER NOT NULL,
  from_country TEXT NOT NULL,
  status TEXT NOT NULL,
  code TEXT NOT NULL,
  detail TEXT NOT NULL,
  message_id TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX certificate_statuses_cert ON certificate_statuses(number, version, id);
"#,
    ),
    (
        3,
        r#"
CREATE TABLE declarations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  number TEXT NOT NULL UNIQUE,
  importer TEXT NOT NULL,
  importing_country TEXT NOT NULL,
  declaration_date TEXT NOT NULL,
  document TEXT NOT NULL,
  risk_score INTEGER NOT NULL DEFAULT 0,
  risk TEXT NOT NULL DEFAULT 'null',
  created_by INTEGER NOT NULL REFERENCES users(id),
  created_at TEXT NOT NULL
);
CREATE INDEX declarations_risk ON declarations(risk_score, id);
CREATE TABLE declaration_lines (
  declaration_id INTEGER NOT NULL REFERENCES declarations(id),
  line_no INTEGER NOT NULL,
  eco_country TEXT,
  eco_number TEXT,
  exporter TEXT,
  outcome TEXT NOT NULL DEFAULT 'pending',
  reasons TEXT NOT NULL DEFAULT '[]',
  matched_item INTEGER,
  consumed TEXT,
  duty TEXT NOT NULL DEFAULT 'null',
  decided_at TEXT,
  PRIMARY KEY (declaration_id, line_no)
) WITHOUT ROWID;
CREATE INDEX declaration_lines_eco ON declaration_lines(eco_country, eco_number, outcome);
CREATE INDEX declaration_lines_decided ON declaration_lines(decided_at) WHERE decided_at IS NOT NULL;
CREATE INDEX declaration_lines_exporter ON declaration_lines(exporter, outcome) WHERE exporter IS NOT NULL;
CREATE TABLE ledger (
  issuing_country TEXT NOT NULL,
  number TEXT NOT NULL,
  item INTEGER NOT NULL,
  total TEXT NOT NULL,
  remaining TEXT NOT NULL,
  PRIMARY KEY (issuing_country, number, item)
) WITHOUT ROWID;
CREATE TABLE utilizations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  declaration_id INTEGER NOT NULL REFERENCES declarations(id),
  line_no INTEGER NOT NULL,
  issuing_country TEXT NOT NULL,
  number TEXT NOT NULL,
  item INTEGER NOT NULL,
  quantity TEXT NOT NULL,
  remaining_after TEXT NOT NULL,
  at TEXT NOT NULL,
  released_at TEXT
);
CREATE UNIQUE INDEX utilizations_line ON utilizations(declaration_id, line_no) WHERE released_at IS NULL;
CREATE INDEX utilizations_cert ON utilizations(issuing_country, number, item) WHERE released_at IS NULL;
CREATE TABLE verification_requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  direction TEXT NOT NULL,
  message_id TEXT NOT NULL,
  issuing_country TEXT NOT NULL,
  number TEXT NOT NULL,
  partner TEXT NOT NULL,
  questions TEXT NOT NULL,
  deadline TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'open',
  answer TEXT,
  outcome TEXT,
  created_at TEXT NOT NULL,
  answered_at TEXT,
  UNIQUE (direction, message_id)
);
CREATE INDEX verification_requests_open ON verification_requests(deadline) WHERE status = 'open';
CREATE INDEX verification_requests_cert ON verification_requests(issuing_country, status);
"#,
    ),
    (
        4,
        r#"
ALTER TABLE inbox ADD COLUMN reason TEXT;
CREATE INDEX inbox_quarantined ON inbox(updated_at) WHERE state = 'quarantined';
CREATE TABLE inbox_refused (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT NOT NULL,
  from_country TEXT NOT NULL,
  kind TEXT NOT NULL,
  via TEXT NOT NULL,
  code TEXT NOT NULL,
  reason TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE TABLE certificate_recipients (
  number TEXT NOT NULL,
  recipient TEXT NOT NULL,
  PRIMARY KEY (number, recipient)
) WITHOUT ROWID;
-- Who may report on a certificate of ours: the countries it was sent to. Those of the
-- messages still in the outbox are known; any other certificate issued before this migration
-- keeps accepting reports from every member ('*').
INSERT INTO certificate_recipients (number, recipient)
  SELECT DISTINCT substr(cert_key, instr(cert_key, '/') + 1), recipient FROM outbox
  WHERE cert_key IS NOT NULL AND instr(cert_key, '/') > 0
    AND kind IN ('certificate.issued', 'certificate.replaced', 'certificate.revoked');
INSERT INTO certificate_recipients (number, recipient)
  SELECT DISTINCT number, '*' FROM certificates
  WHERE number NOT IN (SELECT number FROM certificate_recipients);
"#,
    ),
];

/// The list columns: the same as `APP_COLS`/`CERT_COLS`, without the (large) documents.
const APP_LIST_COLS: &str = "id, company_id, status, format, x'' AS document, self_assessment, assessment, \
     replaces, back_to_back_of, reason, certificate_id, created_by, created_at, updated_at";
const CERT_LIST_COLS: &str = "id, application_id, company_id, issuer, number, version, status, supersedes, \
     x'' AS signed, issued_at, revoked_reason, signed_sha256";
const RECEIVED_LIST_COLS: &str = "id, issuing_country, number, version, x'' AS document, received_at, status, \
     verdict, revoked_reason, message_id";

/// The SQLite store: one writer connection (writes queue on it, never fail busy) and a few
/// reader connections (WAL lets them read while the writer writes).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Vec<Mutex<Connection>>>,
    next: Arc<AtomicUsize>,
    audit: Arc<audit::Chain>,
}

/// The writer's open transaction, with the audit chain its events are appended to. It derefs
/// to the transaction, so the code of a write uses it as one.
struct WriteTx<'t, 'c> {
    tx: &'t Transaction<'c>,
    chain: &'t audit::Chain,
}

impl<'c> std::ops::Deref for WriteTx<'_, 'c> {
    type Target = Transaction<'c>;
    fn deref(&self) -> &Transaction<'c> {
        self.tx
    }
}

/// Reader connections per store.
const READERS: usize = 4;

fn connection(path: &Path, read_only: bool) -> Result<Connection> {
    if !read_only && path.as_os_str() != ":memory:" {
        originlink_service::create_private(path)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", path.display())))?;
    }
    let c = Connection::open(path).map_err(db)?;
    c.busy_timeout(std::time::Duration::from_secs(10)).map_err(db)?;
    if !read_only {
        c.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
    }
    c.pragma_update(None, "synchronous", "NORMAL").map_err(db)?;
    c.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
    // Signed documents and envelopes are kilobytes each: read them through a memory map and a
    // larger page cache rather than copying every page out of the kernel on each read.
    c.pragma_update(None, "mmap_size", 268_435_456i64).map_err(db)?;
    c.pragma_update(None, "cache_size", -32_768i64).map_err(db)?;
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
        remote_status: r.get(12)?,
    })
}

fn received_row(r: &Row<'_>) -> rusqlite::Result<ReceivedCertificate> {
    let status: String = r.get(6)?;
    Ok(ReceivedCertificate {
        id: r.get(0)?,
        issuing_country: r.get(1)?,
        number: r.get(2)?,
        version: r.get(3)?,
        document: r.get(4)?,
        received_at: r.get(5)?,
        status: ReceivedStatus::parse(&status).ok_or_else(|| bad_value("status", &status))?,
        verdict: r.get(7)?,
        revoked_reason: r.get(8)?,
        message_id: r.get(9)?,
    })
}

fn outbox_row(r: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok(OutboxRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        recipient: r.get(2)?,
        kind: r.get(3)?,
        cert_key: r.get(4)?,
        body: r.get(5)?,
        attempts: r.get(6)?,
        created_at: r.get(7)?,
        next_attempt_at: r.get(8)?,
        last_error: r.get(9)?,
        dead: r.get(10)?,
    })
}

fn status_row(r: &Row<'_>) -> rusqlite::Result<StatusEvent> {
    Ok(StatusEvent {
        number: r.get(0)?,
        version: r.get(1)?,
        from_country: r.get(2)?,
        status: r.get(3)?,
        code: r.get(4)?,
        detail: r.get(5)?,
        message_id: r.get(6)?,
        at: r.get(7)?,
    })
}

fn decl_row(r: &Row<'_>) -> rusqlite::Result<Declaration> {
    Ok(Declaration {
        id: r.get(0)?,
        number: r.get(1)?,
        importer: r.get(2)?,
        importing_country: r.get(3)?,
        declaration_date: r.get(4)?,
        document: r.get(5)?,
        risk_score: r.get(6)?,
        risk: r.get(7)?,
        created_by: r.get(8)?,
        created_at: r.get(9)?,
        lines: vec![],
    })
}

fn line_row(r: &Row<'_>) -> rusqlite::Result<DeclarationLine> {
    Ok(DeclarationLine {
        line_no: r.get(0)?,
        eco_country: r.get(1)?,
        eco_number: r.get(2)?,
        exporter: r.get(3)?,
        outcome: r.get(4)?,
        reasons: r.get(5)?,
        matched_item: r.get(6)?,
        consumed: r.get(7)?,
        duty: r.get(8)?,
        decided_at: r.get(9)?,
    })
}

fn verification_row(r: &Row<'_>) -> rusqlite::Result<VerificationRequest> {
    Ok(VerificationRequest {
        id: r.get(0)?,
        direction: r.get(1)?,
        message_id: r.get(2)?,
        issuing_country: r.get(3)?,
        number: r.get(4)?,
        partner: r.get(5)?,
        questions: r.get(6)?,
        deadline: r.get(7)?,
        status: r.get(8)?,
        answer: r.get(9)?,
        outcome: r.get(10)?,
        created_at: r.get(11)?,
        answered_at: r.get(12)?,
    })
}

fn utilization_row(r: &Row<'_>) -> rusqlite::Result<Utilization> {
    Ok(Utilization {
        issuing_country: r.get(0)?,
        number: r.get(1)?,
        item: r.get(2)?,
        quantity: r.get(3)?,
        remaining_after: r.get(4)?,
        declaration: r.get(5)?,
    })
}

/// The lines of a declaration, by line number.
fn get_lines(c: &Connection, declaration_id: i64) -> Result<Vec<DeclarationLine>> {
    let mut st = c
        .prepare_cached(&format!(
            "SELECT {LINE_COLS} FROM declaration_lines WHERE declaration_id = ?1 ORDER BY line_no"
        ))
        .map_err(db)?;
    let rows = st.query_map([declaration_id], line_row).map_err(db)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
}

/// One declaration (`column` is `id` or `number`) with its lines.
fn get_declaration(c: &Connection, column: &str, key: &dyn rusqlite::ToSql) -> Result<Option<Declaration>> {
    let found = c
        .prepare_cached(&format!("SELECT {DECL_COLS} FROM declarations WHERE {column} = ?1"))
        .map_err(db)?
        .query_row([key], decl_row)
        .optional()
        .map_err(db)?;
    found
        .map(|mut d| {
            d.lines = get_lines(c, d.id)?;
            Ok(d)
        })
        .transpose()
}

fn get_verification(c: &Connection, id: i64) -> Result<Option<VerificationRequest>> {
    c.prepare_cached(&format!("SELECT {VERIFICATION_COLS} FROM verification_requests WHERE id = ?1"))
        .map_err(db)?
        .query_row([id], verification_row)
        .optional()
        .map_err(db)
}

fn get_app(c: &Connection, id: i64) -> Result<Option<Application>> {
    c.query_row(&format!("SELECT {APP_COLS} FROM applications WHERE id = ?1"), [id], app_row)
        .optional()
        .map_err(db)
}

fn get_cert(c: &Connection, id: i64) -> Result<Option<Certificate>> {
    c.prepare_cached(&format!("SELECT {} FROM certificates WHERE id = ?1", cert_cols(CERT_COLS)))
        .map_err(db)?
        .query_row([id], cert_row)
        .optional()
        .map_err(db)
}

fn get_received(c: &Connection, id: i64) -> Result<Option<ReceivedCertificate>> {
    c.prepare_cached(&format!("SELECT {RECEIVED_COLS} FROM received_certificates WHERE id = ?1"))
        .map_err(db)?
        .query_row([id], received_row)
        .optional()
        .map_err(db)
}

/// Inserts messages into the outbox inside the caller's transaction.
fn enqueue_tx(c: &Connection, messages: &[OutMessage], at: &str) -> Result<()> {
    let mut st = c
        .prepare_cached(
            "INSERT INTO outbox (id, recipient, kind, cert_key, body, created_at, next_attempt_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        )
        .map_err(db)?;
    for m in messages {
        st.execute(params![m.id, m.recipient, m.kind, m.cert_key, m.body, at])
            .map_err(|e| if is_unique(&e) { crate::message_exists(&m.id) } else { db(e) })?;
        // Whom a certificate was sent to: who may report on it (`inbox`).
        if let Some((number, to)) = crate::sent_certificate(m) {
            c.prepare_cached(
                "INSERT INTO certificate_recipients (number, recipient) VALUES (?1, ?2) \
                 ON CONFLICT DO NOTHING",
            )
            .map_err(db)?
            .execute(params![number, to])
            .map_err(db)?;
        }
    }
    Ok(())
}

fn refuse_tx(c: &Connection, r: &Refusal) -> Result<()> {
    c.prepare_cached(
        "INSERT INTO inbox_refused (message_id, from_country, kind, via, code, reason, at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .map_err(db)?
    .execute(params![r.message_id, r.from_country, r.kind, r.via, r.code, r.reason, r.at])
    .map_err(db)?;
    Ok(())
}

/// [`InboxTx`] over the writer's open transaction; every call completes synchronously.
struct SqliteInbox<'a, 'c> {
    tx: &'a Transaction<'c>,
}

impl InboxTx for SqliteInbox<'_, '_> {
    async fn inbox_insert(
        &mut self,
        m: &Inbound,
        state: &str,
        reason: Option<&str>,
        at: &str,
    ) -> Result<bool> {
        let n = self
            .tx
            .prepare_cached(
                "INSERT INTO inbox (message_id, from_country, kind, state, reason, received_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) ON CONFLICT (message_id) DO NOTHING",
            )
            .map_err(db)?
            .execute(params![m.message_id, m.from_country, m.kind.kind(), state, reason, at])
            .map_err(db)?;
        Ok(n == 1)
    }

    async fn inbox_state(
        &mut self,
        message_id: &str,
        state: &str,
        reason: Option<&str>,
        at: &str,
    ) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE inbox SET state = ?1, reason = ?2, updated_at = ?3 WHERE message_id = ?4")
            .map_err(db)?
            .execute(params![state, reason, at, message_id])
            .map_err(db)?;
        Ok(())
    }

    async fn refuse(&mut self, r: &Refusal) -> Result<()> {
        refuse_tx(self.tx, r)
    }

    async fn sent_to(&mut self, number: &str) -> Result<Vec<String>> {
        self.tx
            .prepare_cached(
                "SELECT recipient FROM certificate_recipients WHERE number = ?1 ORDER BY recipient",
            )
            .map_err(db)?
            .query_map([number], |r| r.get(0))
            .map_err(db)?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(db)
    }

    async fn find_received(&mut self, country: &str, number: &str, version: i64) -> Result<Option<Found>> {
        self.tx
            .prepare_cached(
                "SELECT id, status FROM received_certificates \
                 WHERE issuing_country = ?1 AND number = ?2 AND version = ?3",
            )
            .map_err(db)?
            .query_row(params![country, number, version], |r| {
                let status: String = r.get(1)?;
                Ok(Found {
                    id: r.get(0)?,
                    status: ReceivedStatus::parse(&status).ok_or_else(|| bad_value("status", &status))?,
                })
            })
            .optional()
            .map_err(db)
    }

    async fn insert_received(&mut self, r: &NewReceived, at: &str) -> Result<Option<i64>> {
        self.tx
            .prepare_cached(
                "INSERT INTO received_certificates (issuing_country, number, version, document, received_at, \
                 status, verdict, message_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
                 ON CONFLICT (issuing_country, number, version) DO NOTHING RETURNING id",
            )
            .map_err(db)?
            .query_row(
                params![
                    r.issuing_country,
                    r.number,
                    r.version,
                    r.document,
                    at,
                    r.status.as_str(),
                    r.verdict,
                    r.message_id
                ],
                |row| row.get(0),
            )
            .optional()
            .map_err(db)
    }

    async fn set_received_status(
        &mut self,
        id: i64,
        status: ReceivedStatus,
        reason: Option<&str>,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE received_certificates SET status = ?1, revoked_reason = COALESCE(?2, revoked_reason) \
                 WHERE id = ?3",
            )
            .map_err(db)?
            .execute(params![status.as_str(), reason, id])
            .map_err(db)?;
        Ok(())
    }

    async fn hold(
        &mut self,
        message_id: &str,
        cert_key: &str,
        waits_for: i64,
        message: &str,
        at: &str,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO inbox_held (message_id, cert_key, waits_for, message, held_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(db)?
            .execute(params![message_id, cert_key, waits_for, message, at])
            .map_err(db)?;
        Ok(())
    }

    async fn take_held(&mut self, cert_key: &str, version: i64) -> Result<Vec<(String, String)>> {
        let mut st = self
            .tx
            .prepare_cached(
                "DELETE FROM inbox_held WHERE cert_key = ?1 AND waits_for = ?2 \
                 RETURNING seq, message_id, message",
            )
            .map_err(db)?;
        let mut rows = st
            .query_map(params![cert_key, version], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })
            .map_err(db)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(db)?;
        rows.sort_unstable_by_key(|r| r.0);
        Ok(rows.into_iter().map(|r| (r.1, r.2)).collect())
    }

    async fn insert_status(&mut self, s: &StatusEvent) -> Result<Option<i64>> {
        self.tx
            .prepare_cached(
                "INSERT INTO certificate_statuses (number, version, from_country, status, code, detail, \
                 message_id, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(db)?
            .execute(params![
                s.number,
                s.version,
                s.from_country,
                s.status,
                s.code,
                s.detail,
                s.message_id,
                s.at
            ])
            .map_err(db)?;
        self.tx
            .prepare_cached(
                "SELECT id FROM certificates WHERE number = ?1 AND version = ?2 ORDER BY id LIMIT 1",
            )
            .map_err(db)?
            .query_row(params![s.number, s.version], |r| r.get(0))
            .optional()
            .map_err(db)
    }

    async fn enqueue(&mut self, messages: &[OutMessage], at: &str) -> Result<()> {
        enqueue_tx(self.tx, messages, at)
    }

    async fn insert_verification(
        &mut self,
        direction: &str,
        v: &NewVerification,
        at: &str,
    ) -> Result<Option<VerificationRequest>> {
        self.tx
            .prepare_cached(&format!(
                "INSERT INTO verification_requests (direction, message_id, issuing_country, number, partner, \
                 questions, deadline, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'open', ?8) \
                 ON CONFLICT (direction, message_id) DO NOTHING RETURNING {VERIFICATION_COLS}"
            ))
            .map_err(db)?
            .query_row(
                params![
                    direction,
                    v.message_id,
                    v.issuing_country,
                    v.number,
                    v.partner,
                    v.questions,
                    timestamp(&v.deadline),
                    at
                ],
                verification_row,
            )
            .optional()
            .map_err(db)
    }

    async fn find_verification(
        &mut self,
        direction: &str,
        message_id: &str,
    ) -> Result<Option<VerificationRequest>> {
        self.tx
            .prepare_cached(&format!(
                "SELECT {VERIFICATION_COLS} FROM verification_requests WHERE direction = ?1 AND message_id = ?2"
            ))
            .map_err(db)?
            .query_row(params![direction, message_id], verification_row)
            .optional()
            .map_err(db)
    }

    async fn set_verification_answer(
        &mut self,
        id: i64,
        answer: &str,
        outcome: &str,
        at: &str,
    ) -> Result<VerificationRequest> {
        self.tx
            .prepare_cached(&format!(
                "UPDATE verification_requests SET status = ?1, outcome = ?1, answer = ?2, answered_at = ?3 \
                 WHERE id = ?4 RETURNING {VERIFICATION_COLS}"
            ))
            .map_err(db)?
            .query_row(params![outcome, answer, at, id], verification_row)
            .map_err(db)
    }
}

/// [`DeclTx`] over the writer's open transaction (the writer lock serializes everything, so
/// nothing needs locking beyond it).
struct SqliteDecl<'a, 'c> {
    tx: &'a Transaction<'c>,
}

impl DeclTx for SqliteDecl<'_, '_> {
    async fn lock_declaration(&mut self, id: i64) -> Result<Option<String>> {
        self.tx
            .prepare_cached("SELECT number FROM declarations WHERE id = ?1")
            .map_err(db)?
            .query_row([id], |r| r.get(0))
            .optional()
            .map_err(db)
    }

    async fn line(&mut self, declaration_id: i64, line_no: i32) -> Result<Option<DeclarationLine>> {
        self.tx
            .prepare_cached(&format!(
                "SELECT {LINE_COLS} FROM declaration_lines WHERE declaration_id = ?1 AND line_no = ?2"
            ))
            .map_err(db)?
            .query_row(params![declaration_id, line_no], line_row)
            .optional()
            .map_err(db)
    }

    async fn active_use(&mut self, declaration_id: i64, line_no: i32) -> Result<Option<ActiveUse>> {
        let found = self
            .tx
            .prepare_cached(
                "SELECT id, issuing_country, number, item, quantity FROM utilizations \
                 WHERE declaration_id = ?1 AND line_no = ?2 AND released_at IS NULL",
            )
            .map_err(db)?
            .query_row(params![declaration_id, line_no], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, String>(4)?))
            })
            .optional()
            .map_err(db)?;
        found
            .map(|(id, issuing_country, number, item, q)| {
                Ok(ActiveUse { id, issuing_country, number, item, quantity: crate::parse_decimal(&q)? })
            })
            .transpose()
    }

    async fn lock_certificate(&mut self, _key: &str) -> Result<()> {
        Ok(())
    }

    async fn ledger_remaining(
        &mut self,
        country: &str,
        number: &str,
        item: i32,
        total: Option<&str>,
    ) -> Result<Option<String>> {
        if let Some(total) = total {
            self.tx
                .prepare_cached(
                    "INSERT INTO ledger (issuing_country, number, item, total, remaining) \
                     VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT DO NOTHING",
                )
                .map_err(db)?
                .execute(params![country, number, item, total])
                .map_err(db)?;
        }
        self.tx
            .prepare_cached(
                "SELECT remaining FROM ledger WHERE issuing_country = ?1 AND number = ?2 AND item = ?3",
            )
            .map_err(db)?
            .query_row(params![country, number, item], |r| r.get(0))
            .optional()
            .map_err(db)
    }

    async fn set_remaining(&mut self, country: &str, number: &str, item: i32, remaining: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE ledger SET remaining = ?1 WHERE issuing_country = ?2 AND number = ?3 AND item = ?4",
            )
            .map_err(db)?
            .execute(params![remaining, country, number, item])
            .map_err(db)?;
        Ok(())
    }

    async fn other_user(
        &mut self,
        country: &str,
        number: &str,
        declaration_id: i64,
    ) -> Result<Option<String>> {
        self.tx
            .prepare_cached(
                "SELECT d.number FROM utilizations u JOIN declarations d ON d.id = u.declaration_id \
                 WHERE u.issuing_country = ?1 AND u.number = ?2 AND u.released_at IS NULL \
                 AND u.declaration_id <> ?3 ORDER BY u.id LIMIT 1",
            )
            .map_err(db)?
            .query_row(params![country, number, declaration_id], |r| r.get(0))
            .optional()
            .map_err(db)
    }

    async fn release_use(&mut self, use_id: i64, at: &str) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE utilizations SET released_at = ?1 WHERE id = ?2")
            .map_err(db)?
            .execute(params![at, use_id])
            .map_err(db)?;
        Ok(())
    }

    async fn insert_use(
        &mut self,
        declaration_id: i64,
        line_no: i32,
        u: &Utilization,
        at: &str,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO utilizations (declaration_id, line_no, issuing_country, number, item, quantity, \
                 remaining_after, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(db)?
            .execute(params![
                declaration_id,
                line_no,
                u.issuing_country,
                u.number,
                u.item,
                u.quantity,
                u.remaining_after,
                at
            ])
            .map_err(db)?;
        Ok(())
    }

    async fn update_line(&mut self, declaration_id: i64, l: &DeclarationLine) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE declaration_lines SET outcome = ?1, reasons = ?2, matched_item = ?3, consumed = ?4, \
                 duty = ?5, decided_at = ?6 WHERE declaration_id = ?7 AND line_no = ?8",
            )
            .map_err(db)?
            .execute(params![
                l.outcome,
                l.reasons,
                l.matched_item,
                l.consumed,
                l.duty,
                l.decided_at,
                declaration_id,
                l.line_no
            ])
            .map_err(db)?;
        Ok(())
    }
}

/// Appends events to the chain inside the caller's transaction (hashed by
/// [`audit::Appender`]).
fn append(tx: &WriteTx<'_, '_>, ctx: &Ctx, events: &[PendingEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let head: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")
        .map_err(db)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(db)?;
    let mut links = audit::Appender::after(tx.chain, head)?;
    let at = timestamp(&ctx.at);
    for e in events {
        let (seq, prev, hash) = links.next(&at, &ctx.actor, e);
        tx.prepare_cached(
            "INSERT INTO audit_events (seq, at, actor, action, entity, before, after, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(db)?
        .execute(params![seq, at, ctx.actor, e.action, e.entity, e.before, e.after, prev, hash])
        .map_err(|e| if is_unique(&e) { audit::past_head(seq) } else { db(e) })?;
    }
    let (seq, hash) = links.head();
    tx.prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")
        .map_err(db)?
        .execute(params![seq, hash])
        .map_err(db)?;
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
        f: impl FnOnce(&WriteTx<'_, '_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let chain = self.audit.clone();
        let out = self
            .run_writer(move |c| {
                let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
                let out = f(&WriteTx { tx: &tx, chain: &chain })?;
                tx.commit().map_err(db)?;
                Ok(out)
            })
            .await?;
        self.audit.after_commit(|| Arc::new(self.clone()));
        Ok(out)
    }

    /// (declaration id, line) of the lines with `outcome` that claim a certificate.
    async fn line_refs(
        &self,
        issuing_country: &str,
        number: &str,
        outcome: &'static str,
    ) -> Result<Vec<(i64, i32)>> {
        let (country, number) = (issuing_country.to_owned(), number.to_owned());
        self.run(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT declaration_id, line_no FROM declaration_lines \
                     WHERE eco_country = ?1 AND eco_number = ?2 AND outcome = ?3 ORDER BY declaration_id, line_no",
                )
                .map_err(db)?;
            let rows = st.query_map(params![country, number, outcome], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
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
            enqueue_tx(tx, &signed.messages, &at)?;
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
                .prepare_cached(&format!(
                    "SELECT {} FROM certificates WHERE (?1 IS NULL OR company_id = ?1) \
                     AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3",
                    cert_cols(CERT_LIST_COLS)
                ))
                .map_err(db)?;
            let rows =
                st.query_map(params![page.company_id, page.before, page.limit], cert_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn revoke(&self, ctx: &Ctx, id: i64, reason: &str, messages: MessagesFn) -> Result<Certificate> {
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
            let revoked = get_cert(tx, id)?.ok_or(StoreError::NotFound)?;
            let out = messages(&revoked).map_err(StoreError::Sign)?;
            enqueue_tx(tx, &out, &timestamp(&ctx.at))?;
            append(tx, &ctx, &[crate::revocation_event(id, &reason)])?;
            Ok(revoked)
        })
        .await
    }

    async fn certificate_statuses(&self, number: &str) -> Result<Vec<StatusEvent>> {
        let number = number.to_owned();
        self.run(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {STATUS_COLS} FROM certificate_statuses WHERE number = ?1 ORDER BY id"
                ))
                .map_err(db)?;
            let rows = st.query_map([number], status_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn insert_received(&self, ctx: &Ctx, r: NewReceived) -> Result<ReceivedCertificate> {
        let ctx = ctx.clone();
        self.write(move |tx| {
            let at = timestamp(&ctx.at);
            let id = inbox::ready(SqliteInbox { tx }.insert_received(&r, &at))??.ok_or_else(|| {
                StoreError::conflict(
                    "RECEIVED_EXISTS",
                    format!("{} {} v{} exists", r.issuing_country, r.number, r.version),
                )
            })?;
            append(tx, &ctx, &[crate::received_event(id, &r)])?;
            get_received(tx, id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn received(&self, id: i64) -> Result<Option<ReceivedCertificate>> {
        self.run(move |c| get_received(c, id)).await
    }

    async fn received_by_ref(&self, issuing_country: &str, number: &str) -> Result<Vec<ReceivedCertificate>> {
        let (country, number) = (issuing_country.to_owned(), number.to_owned());
        self.run(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {RECEIVED_COLS} FROM received_certificates WHERE issuing_country = ?1 AND number = ?2 \
                     ORDER BY version DESC"
                ))
                .map_err(db)?;
            let rows = st.query_map(params![country, number], received_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn list_received(&self, page: &Page) -> Result<Vec<ReceivedCertificate>> {
        let page = *page;
        self.run(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {RECEIVED_LIST_COLS} FROM received_certificates WHERE (?1 IS NULL OR id < ?1) \
                     ORDER BY id DESC LIMIT ?2"
                ))
                .map_err(db)?;
            let rows = st.query_map(params![page.before, page.limit], received_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn enqueue(&self, ctx: &Ctx, messages: Vec<OutMessage>) -> Result<()> {
        let at = timestamp(&ctx.at);
        self.write(move |tx| enqueue_tx(tx, &messages, &at)).await
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxRow>> {
        let until = crate::lease_until(&now, lease)?;
        let now = timestamp(&now);
        self.write(move |tx| {
            let mut st = tx
                .prepare_cached(&format!(
                    "UPDATE outbox SET lease_until = ?2, next_attempt_at = ?2 WHERE seq IN (\
                     SELECT seq FROM outbox WHERE dead = 0 AND next_attempt_at <= ?1 \
                     AND (lease_until IS NULL OR lease_until <= ?1) ORDER BY next_attempt_at, seq LIMIT ?3) \
                     RETURNING {OUTBOX_COLS}"
                ))
                .map_err(db)?;
            let mut rows = st
                .query_map(params![now, until, limit], outbox_row)
                .map_err(db)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db)?;
            rows.sort_unstable_by_key(|r| r.seq);
            Ok(rows)
        })
        .await
    }

    async fn outbox_delivered(&self, ids: &[String]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        self.write(move |tx| {
            let mut st = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1").map_err(db)?;
            for id in &ids {
                st.execute([id]).map_err(db)?;
            }
            Ok(())
        })
        .await
    }

    async fn outbox_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        dead: bool,
    ) -> Result<()> {
        let (id, error, next) = (id.to_owned(), error.to_owned(), timestamp(&next_attempt_at));
        self.write(move |tx| {
            tx.prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?1, next_attempt_at = ?2, \
                 lease_until = NULL, dead = ?3 WHERE id = ?4",
            )
            .map_err(db)?
            .execute(params![error, next, dead, id])
            .map_err(db)?;
            Ok(())
        })
        .await
    }

    async fn dead_letters(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        self.run(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {OUTBOX_COLS} FROM outbox WHERE dead = 1 ORDER BY seq LIMIT ?1"
                ))
                .map_err(db)?;
            let rows = st.query_map([limit], outbox_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn retry_dead(&self, ctx: &Ctx, id: &str) -> Result<OutboxRow> {
        let (ctx, id) = (ctx.clone(), id.to_owned());
        self.write(move |tx| {
            let sql = format!("SELECT {OUTBOX_COLS} FROM outbox WHERE id = ?1 AND dead = 1");
            let before =
                tx.query_row(&sql, [&id], outbox_row).optional().map_err(db)?.ok_or(StoreError::NotFound)?;
            let after = tx
                .query_row(
                    &format!(
                        "UPDATE outbox SET dead = 0, attempts = 0, next_attempt_at = ?1, lease_until = NULL \
                         WHERE id = ?2 RETURNING {OUTBOX_COLS}"
                    ),
                    params![timestamp(&ctx.at), id],
                    outbox_row,
                )
                .map_err(db)?;
            append(tx, &ctx, &[crate::retried_event(&before)])?;
            Ok(after)
        })
        .await
    }

    async fn outbox_counts(&self) -> Result<(i64, i64)> {
        self.run(|c| {
            c.query_row(
                "SELECT (SELECT count(*) FROM outbox WHERE dead = 0), (SELECT count(*) FROM outbox WHERE dead = 1)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(db)
        })
        .await
    }

    async fn apply_inbound(&self, ctx: &Ctx, batch: Vec<Inbound>) -> Result<Vec<Applied>> {
        if batch.is_empty() {
            return Ok(vec![]);
        }
        let ctx = ctx.clone();
        self.write(move |tx| {
            let at = timestamp(&ctx.at);
            let (answers, events) =
                inbox::ready(inbox::apply_batch(&mut SqliteInbox { tx }, &at, &ctx.actor, batch))??;
            append(tx, &ctx, &events)?;
            Ok(answers)
        })
        .await
    }

    async fn inbox_len(&self) -> Result<i64> {
        self.run(|c| c.query_row("SELECT count(*) FROM inbox", [], |r| r.get(0)).map_err(db)).await
    }

    async fn held_len(&self) -> Result<i64> {
        self.run(|c| c.query_row("SELECT count(*) FROM inbox_held", [], |r| r.get(0)).map_err(db)).await
    }

    async fn record_refused(&self, refusals: Vec<Refusal>) -> Result<()> {
        if refusals.is_empty() {
            return Ok(());
        }
        self.write(move |tx| refusals.iter().try_for_each(|r| refuse_tx(tx, r))).await
    }

    async fn refused(&self, limit: i64) -> Result<Vec<Refusal>> {
        self.run(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT message_id, from_country, kind, via, code, reason, at FROM inbox_refused \
                     ORDER BY seq DESC LIMIT ?1",
                )
                .map_err(db)?;
            let rows = st
                .query_map([limit], |r| {
                    Ok(Refusal {
                        message_id: r.get(0)?,
                        from_country: r.get(1)?,
                        kind: r.get(2)?,
                        via: r.get(3)?,
                        code: r.get(4)?,
                        reason: r.get(5)?,
                        at: r.get(6)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn quarantined(&self, limit: i64) -> Result<Vec<InboxRecord>> {
        self.run(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT message_id, from_country, kind, state, reason, received_at, updated_at FROM inbox \
                     WHERE state = 'quarantined' ORDER BY updated_at DESC, message_id LIMIT ?1",
                )
                .map_err(db)?;
            let rows = st
                .query_map([limit], |r| {
                    Ok(InboxRecord {
                        message_id: r.get(0)?,
                        from_country: r.get(1)?,
                        kind: r.get(2)?,
                        state: r.get(3)?,
                        reason: r.get(4)?,
                        received_at: r.get(5)?,
                        updated_at: r.get(6)?,
                    })
                })
                .map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn quarantined_len(&self) -> Result<i64> {
        self.run(|c| {
            c.query_row("SELECT count(*) FROM inbox WHERE state = 'quarantined'", [], |r| r.get(0))
                .map_err(db)
        })
        .await
    }

    async fn create_declaration(&self, ctx: &Ctx, d: NewDeclaration) -> Result<Declaration> {
        crate::check_declaration(&d)?;
        let ctx = ctx.clone();
        self.write(move |tx| {
            let at = timestamp(&ctx.at);
            tx.execute(
                "INSERT INTO declarations (number, importer, importing_country, declaration_date, document, \
                 created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    d.number,
                    d.importer,
                    d.importing_country,
                    d.declaration_date.format("%Y-%m-%d").to_string(),
                    d.document,
                    d.created_by,
                    at
                ],
            )
            .map_err(|e| if is_unique(&e) { crate::declaration_exists(&d.number) } else { db(e) })?;
            let id = tx.last_insert_rowid();
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT INTO declaration_lines (declaration_id, line_no, eco_country, eco_number, exporter) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .map_err(db)?;
                for l in &d.lines {
                    st.execute(params![id, l.line_no, l.eco_country, l.eco_number, l.exporter]).map_err(db)?;
                }
            }
            append(tx, &ctx, &[crate::declaration_created_event(id, &d)])?;
            get_declaration(tx, "id", &id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn declaration(&self, id: i64) -> Result<Option<Declaration>> {
        self.run(move |c| get_declaration(c, "id", &id)).await
    }

    async fn declaration_by_number(&self, number: &str) -> Result<Option<Declaration>> {
        let number = number.to_owned();
        self.run(move |c| get_declaration(c, "number", &number)).await
    }

    async fn list_declarations(&self, page: &Page, order_by_risk: bool) -> Result<Vec<Declaration>> {
        let page = *page;
        self.run(move |c| {
            let sql = if order_by_risk {
                format!(
                    "SELECT {DECL_LIST_COLS} FROM declarations WHERE (?1 IS NULL OR (risk_score, id) < \
                     (SELECT risk_score, id FROM declarations WHERE id = ?1)) \
                     ORDER BY risk_score DESC, id DESC LIMIT ?2"
                )
            } else {
                format!(
                    "SELECT {DECL_LIST_COLS} FROM declarations WHERE (?1 IS NULL OR id < ?1) \
                     ORDER BY id DESC LIMIT ?2"
                )
            };
            let mut st = c.prepare_cached(&sql).map_err(db)?;
            let mut out = st
                .query_map(params![page.before, page.limit], decl_row)
                .map_err(db)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db)?;
            for d in &mut out {
                d.lines = get_lines(c, d.id)?;
            }
            Ok(out)
        })
        .await
    }

    async fn set_risk(&self, ctx: &Ctx, id: i64, score: i64, risk_json: &str) -> Result<()> {
        let (ctx, risk) = (ctx.clone(), risk_json.to_owned());
        self.write(move |tx| {
            let (old_score, old_risk): (i64, String) = tx
                .query_row("SELECT risk_score, risk FROM declarations WHERE id = ?1", [id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(db)?
                .ok_or(StoreError::NotFound)?;
            tx.execute(
                "UPDATE declarations SET risk_score = ?1, risk = ?2 WHERE id = ?3",
                params![score, risk, id],
            )
            .map_err(db)?;
            append(tx, &ctx, &[crate::risk_event(id, (old_score, &old_risk), score, &risk)])
        })
        .await
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
        self.write(move |tx| {
            let eco: Option<Option<String>> = tx
                .query_row(
                    "SELECT eco_number FROM declaration_lines WHERE declaration_id = ?1 AND line_no = ?2",
                    params![declaration_id, line_no],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            match eco {
                None => return Err(StoreError::NotFound),
                Some(Some(_)) => return Err(crate::line_not_pending(declaration_id, line_no)),
                Some(None) => {}
            }
            tx.execute(
                "UPDATE declaration_lines SET eco_country = ?1, eco_number = ?2 \
                 WHERE declaration_id = ?3 AND line_no = ?4",
                params![country, number, declaration_id, line_no],
            )
            .map_err(db)?;
            append(tx, &ctx, &[crate::line_linked_event(declaration_id, line_no, &country, &number)])
        })
        .await
    }

    async fn decide_lines_with(
        &self,
        ctx: &Ctx,
        declaration_id: i64,
        decisions: Vec<LineDecision>,
        messages: DecisionMessagesFn,
    ) -> Result<Vec<(DeclarationLine, Option<Utilization>)>> {
        let ctx = ctx.clone();
        self.write(move |tx| {
            let at = timestamp(&ctx.at);
            let (out, events) =
                inbox::ready(declarations::decide(&mut SqliteDecl { tx }, declaration_id, decisions, &at))??;
            append(tx, &ctx, &events)?;
            enqueue_tx(tx, &messages(&out).map_err(StoreError::Sign)?, &at)?;
            Ok(out)
        })
        .await
    }

    async fn ledger(&self, issuing_country: &str, number: &str) -> Result<Vec<LedgerRow>> {
        let (country, number) = (issuing_country.to_owned(), number.to_owned());
        self.run(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT item, total, remaining FROM ledger WHERE issuing_country = ?1 AND number = ?2 \
                     ORDER BY item",
                )
                .map_err(db)?;
            let mut rows = st
                .query_map(params![country, number], |r| {
                    Ok(LedgerRow { item: r.get(0)?, total: r.get(1)?, remaining: r.get(2)?, declarations: vec![] })
                })
                .map_err(db)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(db)?;
            let mut users = c
                .prepare_cached(
                    "SELECT DISTINCT d.number FROM utilizations u JOIN declarations d ON d.id = u.declaration_id \
                     WHERE u.issuing_country = ?1 AND u.number = ?2 AND u.item = ?3 AND u.released_at IS NULL \
                     ORDER BY d.number",
                )
                .map_err(db)?;
            for row in &mut rows {
                row.declarations = users
                    .query_map(params![country, number, row.item], |r| r.get(0))
                    .map_err(db)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(db)?;
            }
            Ok(rows)
        })
        .await
    }

    async fn utilizations(&self, issuing_country: &str, number: &str) -> Result<Vec<Utilization>> {
        let (country, number) = (issuing_country.to_owned(), number.to_owned());
        self.run(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT u.issuing_country, u.number, u.item, u.quantity, u.remaining_after, d.number \
                     FROM utilizations u JOIN declarations d ON d.id = u.declaration_id \
                     WHERE u.issuing_country = ?1 AND u.number = ?2 AND u.released_at IS NULL ORDER BY u.id",
                )
                .map_err(db)?;
            let rows = st.query_map(params![country, number], utilization_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn pending_lines_for(&self, issuing_country: &str, number: &str) -> Result<Vec<(i64, i32)>> {
        self.line_refs(issuing_country, number, "pending").await
    }

    async fn lines_using(&self, issuing_country: &str, number: &str) -> Result<Vec<(i64, i32)>> {
        self.line_refs(issuing_country, number, "granted").await
    }

    async fn decided_lines_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, DeclarationLine)>> {
        let (from, to) = (timestamp(&from), timestamp(&to));
        self.run(move |c| {
            let cols = LINE_COLS.split(", ").map(|col| format!("l.{col}")).collect::<Vec<_>>().join(", ");
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {cols}, d.number FROM declaration_lines l JOIN declarations d ON d.id = l.declaration_id \
                     WHERE l.decided_at >= ?1 AND l.decided_at < ?2 AND l.outcome <> 'pending' \
                     ORDER BY l.declaration_id, l.line_no"
                ))
                .map_err(db)?;
            let rows = st.query_map(params![from, to], |r| Ok((r.get(10)?, line_row(r)?))).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn pair_seen(&self, exporter: &str, importer: &str) -> Result<bool> {
        let (exporter, importer) = (exporter.to_owned(), importer.to_owned());
        self.run(move |c| {
            c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM declaration_lines l JOIN declarations d ON d.id = l.declaration_id \
                 WHERE l.exporter = ?1 AND l.outcome = 'granted' AND d.importer = ?2)",
            )
            .map_err(db)?
            .query_row(params![exporter, importer], |r| r.get(0))
            .map_err(db)
        })
        .await
    }

    async fn create_verification(
        &self,
        ctx: &Ctx,
        v: NewVerification,
        messages: Vec<OutMessage>,
    ) -> Result<VerificationRequest> {
        let ctx = ctx.clone();
        self.write(move |tx| {
            let at = timestamp(&ctx.at);
            let created = inbox::ready(SqliteInbox { tx }.insert_verification(OUTGOING, &v, &at))??
                .ok_or_else(|| {
                    StoreError::conflict(
                        "VERIFICATION_EXISTS",
                        format!("verification {} exists", v.message_id),
                    )
                })?;
            enqueue_tx(tx, &messages, &at)?;
            append(tx, &ctx, &[crate::verification_created_event(&created)])?;
            Ok(created)
        })
        .await
    }

    async fn answer_verification(
        &self,
        ctx: &Ctx,
        id: i64,
        answer: &str,
        outcome: &str,
        messages: Vec<OutMessage>,
    ) -> Result<VerificationRequest> {
        crate::check_outcome(outcome)?;
        let (ctx, answer, outcome) = (ctx.clone(), answer.to_owned(), outcome.to_owned());
        self.write(move |tx| {
            let at = timestamp(&ctx.at);
            let before = get_verification(tx, id)?.ok_or(StoreError::NotFound)?;
            if before.direction != INCOMING || before.status != "open" {
                return Err(crate::verification_not_open(&before));
            }
            let after =
                inbox::ready(SqliteInbox { tx }.set_verification_answer(id, &answer, &outcome, &at))??;
            enqueue_tx(tx, &messages, &at)?;
            append(tx, &ctx, &[crate::verification_answered_event(&before, &after)])?;
            Ok(after)
        })
        .await
    }

    async fn record_verification_answer(
        &self,
        ctx: &Ctx,
        message_id_of_request: &str,
        answer: &str,
        outcome: &str,
    ) -> Result<VerificationRequest> {
        crate::check_outcome(outcome)?;
        let (ctx, mid, answer, outcome) =
            (ctx.clone(), message_id_of_request.to_owned(), answer.to_owned(), outcome.to_owned());
        self.write(move |tx| {
            let at = timestamp(&ctx.at);
            match inbox::ready(inbox::record_answer(&mut SqliteInbox { tx }, &mid, &answer, &outcome, &at))??
            {
                Ok((before, after)) => {
                    append(tx, &ctx, &[crate::verification_answered_event(&before, &after)])?;
                    Ok(after)
                }
                Err(Some(v)) => Err(crate::verification_not_open(&v)),
                Err(None) => Err(StoreError::NotFound),
            }
        })
        .await
    }

    async fn verification(&self, id: i64) -> Result<Option<VerificationRequest>> {
        self.run(move |c| get_verification(c, id)).await
    }

    async fn list_verifications(
        &self,
        direction: Option<&str>,
        limit: i64,
    ) -> Result<Vec<VerificationRequest>> {
        let direction = direction.map(str::to_owned);
        self.run(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {VERIFICATION_COLS} FROM verification_requests WHERE (?1 IS NULL OR direction = ?1) \
                     ORDER BY id DESC LIMIT ?2"
                ))
                .map_err(db)?;
            let rows = st.query_map(params![direction, limit], verification_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn overdue_verifications(&self, now: DateTime<Utc>) -> Result<Vec<VerificationRequest>> {
        let now = timestamp(&now);
        self.run(move |c| {
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT {VERIFICATION_COLS} FROM verification_requests WHERE status = 'open' AND deadline < ?1 \
                     ORDER BY deadline, id"
                ))
                .map_err(db)?;
            let rows = st.query_map([now], verification_row).map_err(db)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
        })
        .await
    }

    async fn denied_verifications(&self, issuing_country: &str) -> Result<i64> {
        let country = issuing_country.to_owned();
        self.run(move |c| {
            c.prepare_cached(
                "SELECT count(*) FROM verification_requests WHERE direction = 'outgoing' \
                 AND issuing_country = ?1 AND status = 'denied'",
            )
            .map_err(db)?
            .query_row([country], |r| r.get(0))
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

    async fn audit_head_row(&self) -> Result<Option<(i64, String)>> {
        self.run(|c| {
            c.query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(db)
        })
        .await
    }

    fn audit_chain(&self) -> &audit::Chain {
        &self.audit
    }
}
