//! The storage contract: every test runs against SQLite (a temp file) and PostgreSQL (a fresh
//! database on 127.0.0.1:5432, dropped afterwards). PostgreSQL being unreachable is a failure,
//! never a skip: `scripts/setup.sh` installs and starts it.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use originlink_store::postgres::PgStore;
use originlink_store::sqlite::SqliteStore;
use originlink_store::*;

/// A store under test plus a way to tamper with it behind its back.
struct Db {
    store: Arc<dyn Store>,
    raw: Raw,
    _guard: Guard,
}

enum Raw {
    Sqlite(SqliteStore),
    Pg(PgStore),
}

enum Guard {
    Dir(std::path::PathBuf),
    PgDb(String),
}

impl Drop for Guard {
    fn drop(&mut self) {
        match self {
            Guard::Dir(d) => {
                let _ = std::fs::remove_dir_all(d);
            }
            Guard::PgDb(name) => {
                let _ = std::process::Command::new("psql")
                    .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
                    .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .output();
            }
        }
    }
}

impl Db {
    async fn raw(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(s) => {
                s.execute_raw(sql).await.expect("raw sql");
            }
            Raw::Pg(s) => {
                s.execute_raw(sql).await.expect("raw sql");
            }
        }
    }
}

fn unique_name(prefix: &str) -> String {
    let mut r = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut r).expect("random");
    format!("{prefix}_{}_{}", std::process::id(), hex(&r))
}

async fn sqlite() -> Db {
    let dir = std::env::temp_dir().join(unique_name("originlink_store"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let s = SqliteStore::open(dir.join("node.db")).await.expect("open sqlite");
    s.migrate().await.expect("migrate");
    Db { store: Arc::new(s.clone()), raw: Raw::Sqlite(s), _guard: Guard::Dir(dir) }
}

/// The PostgreSQL server used by the tests (`ORIGINLINK_TEST_PG` overrides it).
fn pg_base() -> String {
    std::env::var("ORIGINLINK_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

async fn postgres() -> Db {
    let base = pg_base();
    let admin = PgStore::connect(&format!("{base}/postgres"), 1).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {base} ({e}); run scripts/setup.sh, which installs and starts it"
        )
    });
    let name = unique_name("originlink_test");
    admin.execute_raw(&format!("CREATE DATABASE {name}")).await.expect("create database");
    let guard = Guard::PgDb(name.clone());
    let s = PgStore::connect(&format!("{base}/{name}"), 8).await.expect("connect test database");
    s.migrate().await.expect("migrate");
    Db { store: Arc::new(s.clone()), raw: Raw::Pg(s), _guard: guard }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() { super::$name(super::sqlite().await).await }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() { super::$name(super::postgres().await).await }
            )*
        }
    };
}

contract!(
    migrate_is_idempotent,
    users_and_tokens,
    application_lifecycle,
    failed_signing_stores_nothing_and_keeps_numbers_gapless,
    amendment_supersedes_and_keeps_the_number,
    revoke_needs_issued,
    tenant_listing,
    back_to_back_needs_a_received_certificate,
    parallel_approvals_of_different_applications_are_gapless,
    parallel_approvals_of_one_application_one_wins,
    audit_tamper_change,
    audit_tamper_delete,
    audit_tamper_reorder,
    audit_tamper_truncate_tail,
    audit_verifies_in_pages,
    pages_walk_newest_first,
);

fn ctx() -> Ctx {
    Ctx::new("test", Utc.with_ymd_and_hms(2026, 3, 1, 9, 30, 0).single().expect("valid time"))
}

/// A signer for storage tests: the "signed" document names the number. (The node signs with
/// XML-DSig; storage only has to keep whatever bytes it is given.)
fn signer(prefix: &'static str) -> SignFn {
    Box::new(move |issue: &Issue| {
        let number = match (&issue.number, issue.seq) {
            (Some(n), _) => n.clone(),
            (None, Some(seq)) => format!("{prefix}-{seq:06}"),
            (None, None) => return Err("no number".into()),
        };
        Ok(Signed {
            number: number.clone(),
            bytes: format!("<signed n='{number}' v='{}'/>", issue.version).into(),
        })
    })
}

fn numbering() -> Numbering {
    Numbering { issuer: "KH-MOC".into(), scope: "KH-MOC/2026".into() }
}

async fn exporter(db: &Db, company: &str) -> (Company, User) {
    let c = db.store.create_company(&ctx(), company, "KH").await.expect("company");
    let u = db
        .store
        .create_user(
            &ctx(),
            NewUser {
                name: format!("{company}-user"),
                role: Role::Exporter,
                company_id: Some(c.id),
                token_hash: token_hash(&format!("token-{company}")),
            },
        )
        .await
        .expect("user");
    (c, u)
}

async fn submitted(db: &Db, c: &Company, u: &User) -> Application {
    let a = db
        .store
        .create_application(
            &ctx(),
            NewApplication {
                company_id: c.id,
                created_by: u.id,
                format: "json".into(),
                document: b"{\"doc\":1}".to_vec(),
                self_assessment: None,
                assessment: None,
                replaces: None,
                back_to_back_of: None,
            },
        )
        .await
        .expect("create application");
    db.store.transition(&ctx(), a.id, Transition::Submit).await.expect("submit")
}

fn code<T: std::fmt::Debug>(r: Result<T, StoreError>) -> &'static str {
    r.expect_err("must fail").code()
}

async fn assert_chain_ok(db: &Db) -> u64 {
    db.store.verify_audit().await.expect("read audit").expect("chain verifies")
}

async fn migrate_is_idempotent(db: Db) {
    db.store.migrate().await.expect("second migrate");
    db.store.ping().await.expect("ping");
    assert_eq!(db.store.audit_head().await.expect("head"), (0, audit::GENESIS.to_owned()));
    assert_eq!(assert_chain_ok(&db).await, 0);
}

async fn users_and_tokens(db: Db) {
    let (c, u) = exporter(&db, "Angkor Rice").await;
    assert_eq!(u.company_id, Some(c.id));
    let found = db.store.user_by_token_hash(&token_hash("token-Angkor Rice")).await.expect("lookup");
    assert_eq!(found, Some(u.clone()));
    assert_eq!(db.store.user_by_token_hash(&token_hash("wrong")).await.expect("lookup"), None);
    assert_eq!(db.store.company_by_name("Angkor Rice").await.expect("by name"), Some(c));
    assert_eq!(code(db.store.create_company(&ctx(), "Angkor Rice", "KH").await), "COMPANY_EXISTS");
    let dup =
        NewUser { name: u.name.clone(), role: Role::Admin, company_id: None, token_hash: token_hash("x") };
    assert_eq!(code(db.store.create_user(&ctx(), dup).await), "USER_EXISTS");
    assert_eq!(assert_chain_ok(&db).await, 2);
}

async fn application_lifecycle(db: Db) {
    let (c, u) = exporter(&db, "Mekong Textiles").await;
    let a = submitted(&db, &c, &u).await;
    assert_eq!(a.status, ApplicationStatus::Submitted);
    assert_eq!(code(db.store.transition(&ctx(), a.id, Transition::Submit).await), "APPLICATION_NOT_DRAFT");
    let cert = db.store.approve(&ctx(), a.id, &numbering(), signer("KH-2026")).await.expect("approve");
    assert_eq!(
        (cert.number.as_str(), cert.version, cert.status),
        ("KH-2026-000001", 1, CertificateStatus::Issued)
    );
    assert_eq!(cert.signed, b"<signed n='KH-2026-000001' v='1'/>");
    let stored = db.store.certificate(cert.id).await.expect("get").expect("exists");
    assert_eq!(stored, cert);
    let a2 = db.store.application(a.id).await.expect("get").expect("exists");
    assert_eq!((a2.status, a2.certificate_id), (ApplicationStatus::Approved, Some(cert.id)));
    assert_eq!(
        code(db.store.approve(&ctx(), a.id, &numbering(), signer("KH-2026")).await),
        "APPLICATION_NOT_SUBMITTED"
    );
    let reject = Transition::Reject { reason: "late".into() };
    assert_eq!(code(db.store.transition(&ctx(), a.id, reject.clone()).await), "APPLICATION_NOT_SUBMITTED");
    let b = submitted(&db, &c, &u).await;
    let r = db.store.transition(&ctx(), b.id, reject).await.expect("reject");
    assert_eq!((r.status, r.reason.as_deref()), (ApplicationStatus::Rejected, Some("late")));
    assert_eq!(code(db.store.transition(&ctx(), 999_999, Transition::Submit).await), "NOT_FOUND");
    let events = db.store.audit_events(0, i64::MAX, 1000).await.expect("events");
    let approved = events.iter().find(|e| e.action == "application.approved").expect("approved event");
    assert_eq!(approved.before, "{\"status\":\"submitted\"}");
    assert_eq!(approved.actor, "test");
    assert_chain_ok(&db).await;
}

async fn failed_signing_stores_nothing_and_keeps_numbers_gapless(db: Db) {
    let (c, u) = exporter(&db, "Siem Reap Silk").await;
    let a = submitted(&db, &c, &u).await;
    let head = db.store.audit_head().await.expect("head");
    let failing: SignFn = Box::new(|_| Err("key unavailable".into()));
    assert_eq!(code(db.store.approve(&ctx(), a.id, &numbering(), failing).await), "SIGNING_FAILED");
    assert_eq!(db.store.audit_head().await.expect("head"), head);
    assert_eq!(
        db.store.application(a.id).await.expect("get").expect("exists").status,
        ApplicationStatus::Submitted
    );
    assert!(db.store.list_certificates(&Page::first(None, 1000)).await.expect("list").is_empty());
    let cert = db.store.approve(&ctx(), a.id, &numbering(), signer("KH-2026")).await.expect("approve");
    assert_eq!(cert.number, "KH-2026-000001");
}

async fn amendment_supersedes_and_keeps_the_number(db: Db) {
    let (c, u) = exporter(&db, "Tonle Sap Fish").await;
    let a = submitted(&db, &c, &u).await;
    let v1 = db.store.approve(&ctx(), a.id, &numbering(), signer("KH-2026")).await.expect("approve");
    let amend = |replaces| NewApplication {
        company_id: c.id,
        created_by: u.id,
        format: "xml".into(),
        document: b"<x/>".to_vec(),
        self_assessment: None,
        assessment: None,
        replaces: Some(replaces),
        back_to_back_of: None,
    };
    let b = db.store.create_application(&ctx(), amend(v1.id)).await.expect("amendment");
    db.store.transition(&ctx(), b.id, Transition::Submit).await.expect("submit");
    let v2 =
        db.store.approve(&ctx(), b.id, &numbering(), signer("KH-2026")).await.expect("approve amendment");
    assert_eq!((v2.number.as_str(), v2.version, v2.supersedes), (v1.number.as_str(), 2, Some(v1.id)));
    let old = db.store.certificate(v1.id).await.expect("get").expect("exists");
    assert_eq!(old.status, CertificateStatus::Superseded);
    // A superseded certificate can be neither replaced again nor revoked.
    assert_eq!(code(db.store.create_application(&ctx(), amend(v1.id)).await), "CERTIFICATE_NOT_ISSUED");
    assert_eq!(code(db.store.revoke(&ctx(), v1.id, "x").await), "CERTIFICATE_NOT_ISSUED");
    // Another company cannot replace it: not found.
    let (c2, u2) = exporter(&db, "Other Co").await;
    let foreign = NewApplication { company_id: c2.id, created_by: u2.id, ..amend(v2.id) };
    assert_eq!(code(db.store.create_application(&ctx(), foreign).await), "NOT_FOUND");
    // The next original takes the next number: replacements use none.
    let n = submitted(&db, &c, &u).await;
    let v = db.store.approve(&ctx(), n.id, &numbering(), signer("KH-2026")).await.expect("approve");
    assert_eq!(v.number, "KH-2026-000002");
    assert_chain_ok(&db).await;
}

async fn revoke_needs_issued(db: Db) {
    let (c, u) = exporter(&db, "Kampot Pepper").await;
    let a = submitted(&db, &c, &u).await;
    let cert = db.store.approve(&ctx(), a.id, &numbering(), signer("KH-2026")).await.expect("approve");
    let r = db.store.revoke(&ctx(), cert.id, "issued in error").await.expect("revoke");
    assert_eq!(
        (r.status, r.revoked_reason.as_deref()),
        (CertificateStatus::Revoked, Some("issued in error"))
    );
    assert_eq!(r.signed, cert.signed, "signed bytes never change");
    assert_eq!(code(db.store.revoke(&ctx(), cert.id, "again").await), "CERTIFICATE_NOT_ISSUED");
    assert_eq!(code(db.store.revoke(&ctx(), 424_242, "none").await), "NOT_FOUND");
    assert_chain_ok(&db).await;
}

async fn tenant_listing(db: Db) {
    let (c1, u1) = exporter(&db, "A Co").await;
    let (c2, u2) = exporter(&db, "B Co").await;
    let a1 = submitted(&db, &c1, &u1).await;
    let a2 = submitted(&db, &c2, &u2).await;
    db.store.approve(&ctx(), a2.id, &numbering(), signer("KH-2026")).await.expect("approve");
    let mine: Vec<i64> = db
        .store
        .list_applications(&Page::first(Some(c1.id), 1000))
        .await
        .expect("list")
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(mine, vec![a1.id]);
    assert_eq!(db.store.list_applications(&Page::first(None, 1000)).await.expect("list").len(), 2);
    assert!(db.store.list_certificates(&Page::first(Some(c1.id), 1000)).await.expect("list").is_empty());
    let listed = db.store.list_certificates(&Page::first(Some(c2.id), 1000)).await.expect("list");
    assert_eq!(listed.len(), 1);
    // Lists leave the documents out, but keep their hash.
    let full = db.store.certificate(listed[0].id).await.expect("get").expect("exists");
    assert!(listed[0].signed.is_empty() && !full.signed.is_empty());
    assert_eq!(listed[0].sha256, hex(ring::digest::digest(&ring::digest::SHA256, &full.signed).as_ref()));
    assert!(
        db.store
            .list_applications(&Page::first(None, 10))
            .await
            .expect("list")
            .iter()
            .all(|a| a.document.is_empty())
    );
}

async fn pages_walk_newest_first(db: Db) {
    let (c, u) = exporter(&db, "Many Co").await;
    let mut ids = vec![];
    for _ in 0..7 {
        ids.push(submitted(&db, &c, &u).await.id);
    }
    ids.reverse();
    let mut seen = vec![];
    let mut page = Page::first(Some(c.id), 3);
    loop {
        let got = db.store.list_applications(&page).await.expect("list");
        assert!(got.len() <= 3);
        let Some(last) = got.last() else { break };
        page.before = Some(last.id);
        seen.extend(got.iter().map(|a| a.id));
    }
    assert_eq!(seen, ids);
}

async fn back_to_back_needs_a_received_certificate(db: Db) {
    let (c, u) = exporter(&db, "Poipet Trading").await;
    let rec = db
        .store
        .insert_received(
            &ctx(),
            NewReceived {
                issuing_country: "TH".into(),
                number: "TH-2026-000007".into(),
                version: 1,
                document: b"<doc/>".to_vec(),
            },
        )
        .await
        .expect("received");
    assert_eq!(db.store.received(rec.id).await.expect("get"), Some(rec.clone()));
    let again = NewReceived {
        issuing_country: "TH".into(),
        number: "TH-2026-000007".into(),
        version: 1,
        document: vec![],
    };
    assert_eq!(code(db.store.insert_received(&ctx(), again).await), "RECEIVED_EXISTS");
    let b2b = |id| NewApplication {
        company_id: c.id,
        created_by: u.id,
        format: "json".into(),
        document: b"{}".to_vec(),
        self_assessment: None,
        assessment: None,
        replaces: None,
        back_to_back_of: Some(id),
    };
    let a = db.store.create_application(&ctx(), b2b(rec.id)).await.expect("back-to-back");
    assert_eq!(a.back_to_back_of, Some(rec.id));
    assert_eq!(code(db.store.create_application(&ctx(), b2b(rec.id + 100)).await), "NOT_FOUND");
}

async fn parallel_approvals_of_different_applications_are_gapless(db: Db) {
    let (c, u) = exporter(&db, "Busy Exporter").await;
    let mut ids = vec![];
    for _ in 0..50 {
        ids.push(submitted(&db, &c, &u).await.id);
    }
    let mut tasks = vec![];
    for id in ids {
        let s = db.store.clone();
        tasks.push(tokio::spawn(async move { s.approve(&ctx(), id, &numbering(), signer("KH-2026")).await }));
    }
    let mut numbers = vec![];
    for t in tasks {
        numbers.push(t.await.expect("task").expect("approve").number);
    }
    numbers.sort();
    let expected: Vec<String> = (1..=50).map(|i| format!("KH-2026-{i:06}")).collect();
    assert_eq!(numbers, expected);
    assert_chain_ok(&db).await;
}

async fn parallel_approvals_of_one_application_one_wins(db: Db) {
    let (c, u) = exporter(&db, "Contended").await;
    let a = submitted(&db, &c, &u).await;
    let mut tasks = vec![];
    for _ in 0..10 {
        let s = db.store.clone();
        tasks.push(tokio::spawn(
            async move { s.approve(&ctx(), a.id, &numbering(), signer("KH-2026")).await },
        ));
    }
    let (mut won, mut lost) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(cert) => {
                won += 1;
                assert_eq!(cert.number, "KH-2026-000001");
            }
            Err(e) => {
                assert_eq!(e.code(), "APPLICATION_NOT_SUBMITTED");
                lost += 1;
            }
        }
    }
    assert_eq!((won, lost), (1, 9));
    assert_eq!(db.store.list_certificates(&Page::first(None, 1000)).await.expect("list").len(), 1);
    assert_chain_ok(&db).await;
}

/// Four events to tamper with.
async fn some_history(db: &Db) {
    let (c, u) = exporter(db, "History Co").await;
    submitted(db, &c, &u).await;
    assert_eq!(assert_chain_ok(db).await, 4);
}

async fn broken(db: &Db) -> Broken {
    db.store.verify_audit().await.expect("read audit").expect_err("chain must be broken")
}

async fn audit_tamper_change(db: Db) {
    some_history(&db).await;
    db.raw("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2").await;
    assert_eq!(broken(&db).await, Broken { seq: 2, reason: "AUDIT_HASH_MISMATCH" });
}

async fn audit_tamper_delete(db: Db) {
    some_history(&db).await;
    db.raw("DELETE FROM audit_events WHERE seq = 3").await;
    assert_eq!(broken(&db).await, Broken { seq: 3, reason: "AUDIT_SEQ_GAP" });
}

async fn audit_tamper_reorder(db: Db) {
    some_history(&db).await;
    db.raw("UPDATE audit_events SET seq = -1 WHERE seq = 2").await;
    db.raw("UPDATE audit_events SET seq = 2 WHERE seq = 3").await;
    db.raw("UPDATE audit_events SET seq = 3 WHERE seq = -1").await;
    assert_eq!(broken(&db).await, Broken { seq: 2, reason: "AUDIT_LINK_BROKEN" });
}

async fn audit_tamper_truncate_tail(db: Db) {
    some_history(&db).await;
    db.raw("DELETE FROM audit_events WHERE seq = 4").await;
    assert_eq!(broken(&db).await, Broken { seq: 4, reason: "AUDIT_HEAD_MISMATCH" });
}

async fn audit_verifies_in_pages(db: Db) {
    some_history(&db).await;
    for page in [1, 2, 3, 4, 5] {
        assert_eq!(db.store.verify_audit_in_pages(page).await.expect("read"), Ok(4), "page {page}");
    }
    db.raw("UPDATE audit_events SET after = '{}' WHERE seq = 4").await;
    for page in [1, 3, 1000] {
        let b = db.store.verify_audit_in_pages(page).await.expect("read").expect_err("broken");
        assert_eq!(b, Broken { seq: 4, reason: "AUDIT_HASH_MISMATCH" }, "page {page}");
    }
}
