//! Databases made by earlier releases open with today's migration runner: their schema, as the
//! released migrations (`migrations/<backend>/V<n>__*.sql`) left it, with the versions recorded
//! the way every release recorded them (`schema_migrations(version)`), is recognised as it is:
//! nothing applied is applied again, nothing stored is lost, and what is missing is applied.

use std::sync::Arc;

use originlink_store::postgres::PgStore;
use originlink_store::sqlite::SqliteStore;
use originlink_store::*;

use super::{Guard, ctx, pg_base, unique_name};

const SQLITE: [&str; 7] = [
    include_str!("../../migrations/sqlite/V1__init.sql"),
    include_str!("../../migrations/sqlite/V2__exchange.sql"),
    include_str!("../../migrations/sqlite/V3__customs.sql"),
    include_str!("../../migrations/sqlite/V4__recipients.sql"),
    include_str!("../../migrations/sqlite/V5__importer_key.sql"),
    include_str!("../../migrations/sqlite/V6__user_admin.sql"),
    include_str!("../../migrations/sqlite/V7__console_sign_in.sql"),
];

const POSTGRES: [&str; 7] = [
    include_str!("../../migrations/postgres/V1__init.sql"),
    include_str!("../../migrations/postgres/V2__exchange.sql"),
    include_str!("../../migrations/postgres/V3__customs.sql"),
    include_str!("../../migrations/postgres/V4__recipients.sql"),
    include_str!("../../migrations/postgres/V5__importer_key.sql"),
    include_str!("../../migrations/postgres/V6__user_admin.sql"),
    include_str!("../../migrations/postgres/V7__console_sign_in.sql"),
];

/// The schema of a release that had applied the first `applied` versions, with its
/// bookkeeping and one company stored, as SQL.
fn old_database(migrations: &[&str], applied: usize, bookkeeping: &str, blob: &str) -> String {
    let mut sql = String::new();
    for m in &migrations[..applied] {
        sql.push_str(m);
    }
    sql.push_str(bookkeeping);
    for v in 1..=applied {
        sql.push_str(&format!("INSERT INTO schema_migrations (version) VALUES ({v});\n"));
    }
    sql.push_str("INSERT INTO companies (name, country, created_at) VALUES ('Old Co', 'KH', '2026-01-01T00:00:00.000000Z');\n");
    if applied >= 3 {
        sql.push_str(OLD_DECLARATION);
    }
    if applied >= 2 {
        // A message waiting in the outbox, its envelope in its row (before V14 on SQLite).
        sql.push_str(&format!(
            "INSERT INTO outbox (id, recipient, kind, body, created_at, next_attempt_at) VALUES \
             ('old-message', 'TH', 'status.update', CAST('{OLD_ENVELOPE}' AS {blob}), \
             '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');\n"
        ));
    }
    if applied >= 1 {
        sql.push_str(OLD_CERTIFICATES);
    }
    sql
}

/// The envelope of the message an old release left in its outbox.
const OLD_ENVELOPE: &str = r#"{"old":"envelope"}"#;

/// Two versions of a certificate issued by a release before status lists (V11): version 1
/// superseded by version 2, then version 2 revoked (with no audit event: the backfill falls back
/// to the day each was issued).
const OLD_CERTIFICATES: &str = r#"
INSERT INTO users (name, role, created_at) VALUES ('old-officer', 'issuing-officer', '2026-01-01T00:00:00.000000Z');
INSERT INTO applications (company_id, status, format, document, created_by, created_at, updated_at) VALUES
  ((SELECT id FROM companies WHERE name = 'Old Co'), 'approved', 'json', '', (SELECT id FROM users WHERE name = 'old-officer'), '2026-01-02T00:00:00.000000Z', '2026-01-02T00:00:00.000000Z'),
  ((SELECT id FROM companies WHERE name = 'Old Co'), 'approved', 'json', '', (SELECT id FROM users WHERE name = 'old-officer'), '2026-01-03T00:00:00.000000Z', '2026-01-03T00:00:00.000000Z');
INSERT INTO certificates (application_id, company_id, issuer, number, version, status, supersedes, signed, issued_at, revoked_reason, signed_sha256) VALUES
  ((SELECT MIN(id) FROM applications), (SELECT id FROM companies WHERE name = 'Old Co'), 'KH-MOC', 'KH-2026-000001', 1, 'superseded', NULL, '', '2026-01-02T00:00:00.000000Z', NULL, 'aa');
INSERT INTO certificates (application_id, company_id, issuer, number, version, status, supersedes, signed, issued_at, revoked_reason, signed_sha256) VALUES
  ((SELECT MAX(id) FROM applications), (SELECT id FROM companies WHERE name = 'Old Co'), 'KH-MOC', 'KH-2026-000001', 2, 'revoked',
   (SELECT MIN(id) FROM certificates), '', '2026-01-03T00:00:00.000000Z', 'wrong invoice', 'bb');
"#;

/// What the status list of a migrated database says of [`OLD_CERTIFICATES`].
async fn check_old_status(store: &dyn Store) {
    let got: Vec<_> = store
        .status_entries()
        .await
        .expect("V11")
        .into_iter()
        .map(|e| (e.number, e.version, e.status.as_str(), e.since, e.reason, e.superseded_by))
        .collect();
    let kh1 = "KH-2026-000001".to_owned();
    assert_eq!(
        got,
        [
            (kh1.clone(), 1, "superseded", "2026-01-02T00:00:00.000000Z".to_owned(), None, Some(2)),
            (
                kh1,
                2,
                "revoked",
                "2026-01-03T00:00:00.000000Z".to_owned(),
                Some("wrong invoice".to_owned()),
                None
            ),
        ]
    ); // V12 indexed the old numbers: a search by part of one finds both versions.
    let search = CertificateFilter { number: Some("2026-0000".into()), ..Default::default() };
    let found = store.find_certificates(&Page::first(None, 10), &search).await.expect("V12");
    assert_eq!(found.iter().map(|c| c.version).collect::<Vec<_>>(), [2, 1]);
}

/// A declaration decided by a release before revenue was summed in SQL (V8): a granted ATIGA
/// line on a TH certificate and a denied line claiming nothing.
const OLD_DECLARATION: &str = r#"
INSERT INTO users (name, role, created_at) VALUES ('old-customs', 'customs-officer', '2026-01-01T00:00:00.000000Z');
INSERT INTO declarations (number, importer, importing_country, declaration_date, document, created_by, created_at)
  VALUES ('OLD-1', 'Phnom Penh Imports', 'KH', '2026-01-15',
  '{"number":"OLD-1","lines":[{"line_no":1,"claimed_agreement":"ATIGA"},{"line_no":2}]}',
  (SELECT id FROM users WHERE name = 'old-customs'), '2026-01-15T00:00:00.000000Z');
INSERT INTO declaration_lines (declaration_id, line_no, eco_country, eco_number, outcome, duty) VALUES
  ((SELECT id FROM declarations WHERE number = 'OLD-1'), 1, 'TH', 'TH-1', 'granted',
   '{"if_granted":{"mfn":{"amount":"15.00","currency":"USD"},"due":{"amount":"2.50","currency":"USD"}},"if_denied":{"mfn":{"amount":"15.00","currency":"USD"},"due":{"amount":"15.00","currency":"USD"}}}'),
  ((SELECT id FROM declarations WHERE number = 'OLD-1'), 2, NULL, NULL, 'denied',
   '{"if_granted":{"mfn":{"amount":"4.00","currency":"USD"},"due":{"amount":"4.00","currency":"USD"}},"if_denied":{"mfn":{"amount":"4.00","currency":"USD"},"due":{"amount":"4.00","currency":"USD"}}}');
"#;

/// The revenue of [`OLD_DECLARATION`] as the migrated database sums it.
async fn check_old_revenue(store: &dyn Store) {
    let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).expect("date");
    let groups = store.revenue_groups(day(1, 1), day(2, 1)).await.expect("revenue");
    let got: Vec<_> = groups
        .iter()
        .map(|g| (g.agreement.as_deref(), g.partner.as_deref(), g.lines, g.mfn_minor, g.due_minor))
        .collect();
    assert_eq!(got, [(None, None, 1, 400, 400), (Some("ATIGA"), Some("TH"), 1, 1500, 250)], "{groups:?}");
    assert!(groups.iter().all(|g| g.month == "2026-01" && g.currency == "USD"));
}

/// The versions a database an old release migrated up to its `applied`th lacks.
fn pending_after(applied: usize) -> Vec<i64> {
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14].into_iter().skip(applied).collect()
}

/// What a reopened old database must show: the old company, every version recorded once, the
/// latest schema usable, a second migrate a no-op.
async fn check_reopened(store: &dyn Store) {
    store.migrate().await.expect("migrate an old database");
    let old = store.company_by_name("Old Co").await.expect("read").expect("the old company is kept");
    assert_eq!(old.country, "KH");
    // The latest schema is there (declarations: V3; refusals: V4) and writes are audited.
    let declarations = store.list_declarations(&Page::first(None, 10), false).await.expect("V3 tables");
    assert!(
        declarations.iter().all(|d| d.number == "OLD-1"),
        "only the old declaration, if any: {declarations:?}"
    );
    assert!(store.refused(10).await.expect("V4 tables").is_empty());
    // The message an old release left in the outbox is still sent, envelope and all.
    let waiting =
        store.claim_outbox(chrono::Utc::now(), std::time::Duration::from_secs(30), 10).await.expect("claim");
    let old = waiting.iter().find(|m| m.id == "old-message").expect("the old release's message");
    assert_eq!(old.body, OLD_ENVELOPE.as_bytes());
    store.outbox_delivered(std::slice::from_ref(&old.id)).await.expect("delivered");
    assert!(store.outbox_messages(10).await.expect("outbox").is_empty(), "gone once delivered");
    store.create_company(&ctx(), "New Co", "TH").await.expect("write after migrating");
    store.migrate().await.expect("migrate again");
    assert_eq!(store.verify_audit().await.expect("read audit").expect("chain verifies"), 1);
}

fn sqlite_versions(path: &std::path::Path) -> Vec<i64> {
    let c = rusqlite::Connection::open(path).expect("open");
    let mut st = c.prepare("SELECT version FROM schema_migrations ORDER BY version").expect("prepare");
    st.query_map([], |r| r.get(0)).expect("query").collect::<rusqlite::Result<_>>().expect("versions")
}

async fn sqlite_made_by(applied: usize) {
    let dir = std::env::temp_dir().join(unique_name("originlink_migrate"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _guard = Guard::Dir(dir.clone());
    let path = dir.join("node.db");
    {
        let c = rusqlite::Connection::open(&path).expect("create the old database");
        let bookkeeping = "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY);\n";
        c.execute_batch(&old_database(&SQLITE, applied, bookkeeping, "BLOB")).expect("old schema");
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.expect("open"));
    assert_eq!(store.pending_migrations().await.expect("pending"), pending_after(applied));
    check_reopened(store.as_ref()).await;
    if applied >= 3 {
        check_old_revenue(store.as_ref()).await;
    }
    check_old_status(store.as_ref()).await;
    assert_eq!(sqlite_versions(&path), vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    // V14 moved the waiting envelope to its own table; delivering it deleted it there too.
    let c = rusqlite::Connection::open(&path).expect("open");
    let left: i64 = c.query_row("SELECT count(*) FROM outbox_bodies", [], |r| r.get(0)).expect("count");
    assert_eq!(left, 0);
}

async fn postgres_made_by(applied: usize) {
    let base = pg_base();
    let admin = PgStore::connect(&format!("{base}/postgres"), 1).await.expect("PostgreSQL is reachable");
    let name = unique_name("originlink_migrate");
    admin.execute_raw(&format!("CREATE DATABASE {name}")).await.expect("create database");
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _guard = Guard::PgDb(name.clone(), dir);
    let url = format!("{base}/{name}");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
    let conn = tokio::spawn(connection);
    let bookkeeping = "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY);\n";
    client.batch_execute(&old_database(&POSTGRES, applied, bookkeeping, "BYTEA")).await.expect("old schema");
    let store = PgStore::connect(&url, 2).await.expect("connect");
    assert_eq!(store.pending_migrations().await.expect("pending"), pending_after(applied));
    check_reopened(&store).await;
    if applied >= 3 {
        check_old_revenue(&store).await;
    }
    check_old_status(&store).await;
    let versions: Vec<i64> = client
        .query("SELECT version FROM schema_migrations ORDER BY version", &[])
        .await
        .expect("versions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    drop((client, store));
    let _ = conn.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_fully_migrated_by_an_old_release_is_not_migrated_again() {
    sqlite_made_by(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_made_by_the_first_console_release_sums_its_old_revenue() {
    sqlite_made_by(7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_made_by_the_first_console_release_sums_its_old_revenue() {
    postgres_made_by(7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_made_before_importer_keys_gets_them() {
    sqlite_made_by(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_partly_migrated_by_an_old_release_gets_only_the_rest() {
    sqlite_made_by(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_fully_migrated_by_an_old_release_is_not_migrated_again() {
    postgres_made_by(5).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_made_before_importer_keys_gets_them() {
    postgres_made_by(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_partly_migrated_by_an_old_release_gets_only_the_rest() {
    postgres_made_by(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_migrating_together_apply_each_version_once() {
    let base = pg_base();
    let admin = PgStore::connect(&format!("{base}/postgres"), 1).await.expect("PostgreSQL is reachable");
    let name = unique_name("originlink_migrate");
    admin.execute_raw(&format!("CREATE DATABASE {name}")).await.expect("create database");
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _guard = Guard::PgDb(name.clone(), dir);
    let url = format!("{base}/{name}");
    let fresh = PgStore::connect(&url, 1).await.expect("connect");
    assert_eq!(
        fresh.pending_migrations().await.expect("pending"),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
        "never migrated"
    );
    let mut replicas = vec![];
    for _ in 0..4 {
        let url = url.clone();
        replicas.push(tokio::spawn(async move {
            let s = PgStore::connect(&url, 1).await.expect("connect");
            s.migrate().await
        }));
    }
    for r in replicas {
        r.await.expect("join").expect("every replica's migrate succeeds");
    }
    let s = PgStore::connect(&url, 1).await.expect("connect");
    check_reopened_empty(&s).await;
}

/// A store migrated from nothing: empty, usable.
async fn check_reopened_empty(store: &dyn Store) {
    store.migrate().await.expect("migrate again");
    assert_eq!(store.pending_migrations().await.expect("pending"), Vec::<i64>::new());
    assert_eq!(store.company_by_name("Old Co").await.expect("read"), None);
    assert_eq!(store.audit_head().await.expect("head"), (0, audit::GENESIS.to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_never_migrated_has_every_version_pending() {
    let dir = std::env::temp_dir().join(unique_name("originlink_migrate"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _guard = Guard::Dir(dir.clone());
    let store = SqliteStore::open(dir.join("node.db")).await.expect("open");
    assert_eq!(
        store.pending_migrations().await.expect("pending"),
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    );
    store.migrate().await.expect("migrate");
    assert_eq!(store.pending_migrations().await.expect("pending"), Vec::<i64>::new());
}
