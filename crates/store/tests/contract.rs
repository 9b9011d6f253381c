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
    outbox_is_written_with_approve_and_revoke,
    failed_callbacks_and_duplicate_ids_enqueue_nothing,
    claim_respects_lease_order_and_dead,
    concurrent_claimers_never_share_a_message,
    failed_backoff_dead_and_audited_retry,
    inbound_issued_applies_once,
    revocation_before_issuance_is_held_then_released,
    replacement_before_its_predecessor_is_held,
    status_updates_and_remote_status,
    invalid_received_is_stored_as_invalid,
    failing_batch_applies_nothing,
    inbound_serializes_and_received_lists,
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
            messages: vec![],
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
    assert_eq!(code(db.store.revoke(&ctx(), v1.id, "x", no_messages()).await), "CERTIFICATE_NOT_ISSUED");
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
    let r = db.store.revoke(&ctx(), cert.id, "issued in error", no_messages()).await.expect("revoke");
    assert_eq!(
        (r.status, r.revoked_reason.as_deref()),
        (CertificateStatus::Revoked, Some("issued in error"))
    );
    assert_eq!(r.signed, cert.signed, "signed bytes never change");
    assert_eq!(
        code(db.store.revoke(&ctx(), cert.id, "again", no_messages()).await),
        "CERTIFICATE_NOT_ISSUED"
    );
    assert_eq!(code(db.store.revoke(&ctx(), 424_242, "none", no_messages()).await), "NOT_FOUND");
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
        .insert_received(&ctx(), NewReceived::valid("TH", "TH-2026-000007", 1, b"<doc/>".to_vec()))
        .await
        .expect("received");
    assert_eq!(db.store.received(rec.id).await.expect("get"), Some(rec.clone()));
    assert_eq!(
        (rec.status, rec.verdict.as_deref(), rec.message_id.as_deref()),
        (ReceivedStatus::Valid, None, None)
    );
    let again = NewReceived::valid("TH", "TH-2026-000007", 1, vec![]);
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

// ---- exchange: outbox ----

/// `ctx().at` moved by `secs` seconds.
fn at(secs: i64) -> chrono::DateTime<Utc> {
    ctx().at + chrono::Duration::seconds(secs)
}

fn ctx_at(secs: i64) -> Ctx {
    Ctx::new("test", at(secs))
}

const LEASE: std::time::Duration = std::time::Duration::from_secs(60);

fn msg(id: &str) -> OutMessage {
    OutMessage {
        id: id.into(),
        recipient: "TH".into(),
        kind: "verification.request".into(),
        cert_key: None,
        body: format!("{{\"id\":\"{id}\"}}").into_bytes(),
    }
}

/// [`signer`] that also emits a `certificate.issued` message for the document it signs.
fn signer_sending(prefix: &'static str) -> SignFn {
    Box::new(move |issue: &Issue| {
        let mut s = signer(prefix)(issue)?;
        s.messages.push(OutMessage {
            id: format!("issued-{}-v{}", s.number, issue.version),
            recipient: "TH".into(),
            kind: "certificate.issued".into(),
            cert_key: Some(format!("KH/{}", s.number)),
            body: s.bytes.clone(),
        });
        Ok(s)
    })
}

fn revocation_message() -> MessagesFn {
    Box::new(|c: &Certificate| {
        assert_eq!(c.status, CertificateStatus::Revoked, "the callback sees the revoked certificate");
        Ok(vec![OutMessage {
            id: format!("revoked-{}-v{}", c.number, c.version),
            recipient: "TH".into(),
            kind: "certificate.revoked".into(),
            cert_key: Some(format!("KH/{}", c.number)),
            body: c.revoked_reason.clone().unwrap_or_default().into_bytes(),
        }])
    })
}

async fn claim_ids(db: &Db, now: i64, limit: i64) -> Vec<String> {
    db.store.claim_outbox(at(now), LEASE, limit).await.expect("claim").into_iter().map(|r| r.id).collect()
}

async fn outbox_is_written_with_approve_and_revoke(db: Db) {
    let (c, u) = exporter(&db, "Outbox Co").await;
    let a = submitted(&db, &c, &u).await;
    let cert =
        db.store.approve(&ctx(), a.id, &numbering(), signer_sending("KH-2026")).await.expect("approve");
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (1, 0));
    let rows = db.store.claim_outbox(at(0), LEASE, 10).await.expect("claim");
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(
        (r.id.as_str(), r.recipient.as_str(), r.kind.as_str(), r.cert_key.as_deref()),
        ("issued-KH-2026-000001-v1", "TH", "certificate.issued", Some("KH/KH-2026-000001"))
    );
    assert_eq!((r.body.as_slice(), r.attempts, r.dead), (cert.signed.as_slice(), 0, false));
    assert_eq!(r.created_at, timestamp(&ctx().at));
    db.store.outbox_delivered(std::slice::from_ref(&r.id)).await.expect("delivered");
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (0, 0));

    let revoked =
        db.store.revoke(&ctx(), cert.id, "wrong origin", revocation_message()).await.expect("revoke");
    assert_eq!(revoked.status, CertificateStatus::Revoked);
    let rows = db.store.claim_outbox(at(0), LEASE, 10).await.expect("claim");
    assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["revoked-KH-2026-000001-v1"]);
    assert_eq!(rows[0].body, b"wrong origin");
    assert_chain_ok(&db).await;
}

async fn failed_callbacks_and_duplicate_ids_enqueue_nothing(db: Db) {
    let (c, u) = exporter(&db, "Atomic Co").await;
    let a = submitted(&db, &c, &u).await;
    let failing: SignFn = Box::new(|_| Err("key unavailable".into()));
    assert_eq!(code(db.store.approve(&ctx(), a.id, &numbering(), failing).await), "SIGNING_FAILED");
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (0, 0));

    // A message id already in the outbox fails the approval: no certificate, no number used.
    db.store.enqueue(&ctx(), vec![msg("issued-KH-2026-000001-v1")]).await.expect("enqueue");
    let head = db.store.audit_head().await.expect("head");
    assert_eq!(
        code(db.store.approve(&ctx(), a.id, &numbering(), signer_sending("KH-2026")).await),
        "MESSAGE_EXISTS"
    );
    assert_eq!(db.store.audit_head().await.expect("head"), head);
    assert!(db.store.list_certificates(&Page::first(None, 10)).await.expect("list").is_empty());
    db.raw("DELETE FROM outbox").await;
    let cert =
        db.store.approve(&ctx(), a.id, &numbering(), signer_sending("KH-2026")).await.expect("approve");
    assert_eq!(cert.number, "KH-2026-000001");
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (1, 0));

    // A failing revocation callback revokes nothing and sends nothing.
    let head = db.store.audit_head().await.expect("head");
    let failing: MessagesFn = Box::new(|_| Err("signer down".into()));
    assert_eq!(code(db.store.revoke(&ctx(), cert.id, "x", failing).await), "SIGNING_FAILED");
    let still = db.store.certificate(cert.id).await.expect("get").expect("exists");
    assert_eq!((still.status, still.revoked_reason), (CertificateStatus::Issued, None));
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (1, 0));
    assert_eq!(db.store.audit_head().await.expect("head"), head);

    // enqueue is all or nothing.
    assert_eq!(code(db.store.enqueue(&ctx(), vec![msg("fresh"), msg("fresh")]).await), "MESSAGE_EXISTS");
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (1, 0));
    assert_chain_ok(&db).await;
}

async fn claim_respects_lease_order_and_dead(db: Db) {
    let ids: Vec<String> = (1..=5).map(|i| format!("m{i}")).collect();
    db.store.enqueue(&ctx(), ids.iter().map(|i| msg(i)).collect()).await.expect("enqueue");
    assert!(db.store.claim_outbox(at(-1), LEASE, 10).await.expect("claim").is_empty(), "not due yet");
    let first = db.store.claim_outbox(at(0), LEASE, 2).await.expect("claim");
    assert_eq!(first.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["m1", "m2"]);
    assert!(first[0].seq < first[1].seq);
    assert_eq!(first[0].next_attempt_at, timestamp(&at(60)), "leased until now + lease");
    assert_eq!(claim_ids(&db, 0, 2).await, ["m3", "m4"]);
    assert_eq!(claim_ids(&db, 30, 10).await, ["m5"], "leased messages are skipped");
    assert!(claim_ids(&db, 59, 10).await.is_empty());
    db.store.outbox_delivered(&["m2".into(), "nope".into()]).await.expect("delivered");
    db.store.outbox_failed("m3", "refused", at(0), true).await.expect("dead");
    // Leases of m1 and m4 ran out at 60, m5's at 90: m1 and m4 again, in order.
    assert_eq!(claim_ids(&db, 60, 10).await, ["m1", "m4"]);
    assert_eq!(claim_ids(&db, 90, 10).await, ["m5"]);
    assert_eq!(claim_ids(&db, 10_000, 10).await, ["m1", "m4", "m5"], "the dead one is never claimed");
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (3, 1));
    db.store.outbox_delivered(&["m1".into(), "m4".into(), "m5".into()]).await.expect("delivered");
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (0, 1));
    assert!(claim_ids(&db, 100_000, 10).await.is_empty());
}

async fn concurrent_claimers_never_share_a_message(db: Db) {
    let n = 300;
    let ids: Vec<String> = (0..n).map(|i| format!("c{i:04}")).collect();
    for chunk in ids.chunks(100) {
        db.store.enqueue(&ctx(), chunk.iter().map(|i| msg(i)).collect()).await.expect("enqueue");
    }
    let mut tasks = vec![];
    for _ in 0..4 {
        let s = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = vec![];
            loop {
                let rows = s.claim_outbox(at(0), LEASE, 7).await.expect("claim");
                if rows.is_empty() {
                    return got;
                }
                got.extend(rows.into_iter().map(|r| r.id));
            }
        }));
    }
    let mut all = vec![];
    let mut busy = 0;
    for t in tasks {
        let got = t.await.expect("task");
        busy += usize::from(!got.is_empty());
        all.extend(got);
    }
    assert_eq!(all.len(), n, "every message claimed exactly once");
    all.sort();
    all.dedup();
    assert_eq!(all, ids);
    assert!(busy >= 1);
}

async fn failed_backoff_dead_and_audited_retry(db: Db) {
    db.store.enqueue(&ctx(), vec![msg("b1")]).await.expect("enqueue");
    assert_eq!(claim_ids(&db, 0, 10).await, ["b1"]);
    db.store.outbox_failed("b1", "connection refused", at(10), false).await.expect("failed");
    assert!(claim_ids(&db, 5, 10).await.is_empty(), "backoff respected (and the lease is cleared)");
    let again = db.store.claim_outbox(at(10), LEASE, 10).await.expect("claim");
    assert_eq!(
        (again[0].attempts, again[0].last_error.as_deref(), again[0].dead),
        (1, Some("connection refused"), false)
    );
    db.store.outbox_failed("b1", "HTTP 400", at(20), true).await.expect("dead");
    db.store.outbox_failed("unknown", "x", at(20), true).await.expect("unknown id is ignored");
    assert!(claim_ids(&db, 1_000_000, 10).await.is_empty());
    let dead = db.store.dead_letters(10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id.as_str(), dead[0].attempts, dead[0].dead), ("b1", 2, true));
    assert_eq!(dead[0].last_error.as_deref(), Some("HTTP 400"));
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (0, 1));

    assert_eq!(code(db.store.retry_dead(&ctx(), "nope").await), "NOT_FOUND");
    let head = db.store.audit_head().await.expect("head");
    let retried = db.store.retry_dead(&ctx_at(100), "b1").await.expect("retry");
    assert_eq!((retried.dead, retried.attempts), (false, 0));
    assert_eq!(retried.next_attempt_at, timestamp(&at(100)));
    assert_eq!(code(db.store.retry_dead(&ctx(), "b1").await), "NOT_FOUND", "no longer dead");
    assert_eq!(db.store.audit_head().await.expect("head").0, head.0 + 1);
    let events = db.store.audit_events(head.0, i64::MAX, 10).await.expect("events");
    assert_eq!((events[0].action.as_str(), events[0].entity.as_str()), ("message.retried", "message/b1"));
    assert!(events[0].before.contains("\"attempts\":2"), "{}", events[0].before);
    assert!(claim_ids(&db, 99, 10).await.is_empty());
    assert_eq!(claim_ids(&db, 100, 10).await, ["b1"]);
    assert!(db.store.dead_letters(10).await.expect("dead letters").is_empty());
    assert_chain_ok(&db).await;
}

// ---- exchange: inbox ----

fn th(number: &str, version: i64) -> NewReceived {
    NewReceived::valid("TH", number, version, format!("<th n='{number}' v='{version}'/>").into_bytes())
}

fn inbound(id: &str, kind: InboundKind, reply: Vec<OutMessage>) -> Inbound {
    Inbound { message_id: id.into(), from_country: "TH".into(), kind, reply }
}

fn issued(id: &str, number: &str, version: i64) -> Inbound {
    inbound(id, InboundKind::Issued { certificate: th(number, version) }, vec![])
}

fn replaced(id: &str, number: &str, version: i64) -> Inbound {
    inbound(id, InboundKind::Replaced { certificate: th(number, version) }, vec![])
}

fn revoked(id: &str, number: &str, version: i64) -> Inbound {
    let kind = InboundKind::Revoked {
        issuing_country: "TH".into(),
        number: number.into(),
        version,
        reason: format!("revoked by {id}"),
    };
    inbound(id, kind, vec![])
}

async fn actions(db: &Db) -> Vec<String> {
    db.store.audit_events(0, i64::MAX, 10_000).await.expect("events").into_iter().map(|e| e.action).collect()
}

async fn statuses_of(db: &Db, number: &str) -> Vec<(i64, ReceivedStatus)> {
    db.store
        .received_by_ref("TH", number)
        .await
        .expect("by ref")
        .into_iter()
        .map(|r| (r.version, r.status))
        .collect()
}

async fn inbound_issued_applies_once(db: Db) {
    let mut m = issued("in-1", "TH-1", 1);
    m.reply = vec![msg("ack-1")];
    let out = db.store.apply_inbound(&ctx(), vec![m.clone()]).await.expect("apply");
    assert_eq!(out, [Applied::Applied]);
    let got = db.store.received_by_ref("TH", "TH-1").await.expect("by ref");
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].status, got[0].message_id.as_deref()), (ReceivedStatus::Valid, Some("in-1")));
    assert_eq!(got[0].document, b"<th n='TH-1' v='1'/>");
    assert_eq!(db.store.received(got[0].id).await.expect("get"), Some(got[0].clone()));
    assert_eq!(claim_ids(&db, 0, 10).await, ["ack-1"]);

    // The same message again, and the same certificate in another message: duplicates that
    // change nothing (no second reply either).
    let mut other = issued("in-1-again", "TH-1", 1);
    other.reply = vec![msg("ack-2")];
    let head = db.store.audit_head().await.expect("head");
    let out = db.store.apply_inbound(&ctx(), vec![m.clone(), other, m]).await.expect("apply");
    assert_eq!(out, [Applied::Duplicate, Applied::Duplicate, Applied::Duplicate]);
    assert_eq!(db.store.audit_head().await.expect("head"), head);
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (1, 0));
    assert_eq!(db.store.received_by_ref("TH", "TH-1").await.expect("by ref").len(), 1);
    assert_eq!(db.store.inbox_len().await.expect("inbox"), 2);
    assert_eq!(db.store.held_len().await.expect("held"), 0);
    assert_eq!(db.store.apply_inbound(&ctx(), vec![]).await.expect("empty"), []);
    assert_eq!(actions(&db).await.iter().filter(|a| *a == "received.stored").count(), 1);
    assert_chain_ok(&db).await;
}

async fn revocation_before_issuance_is_held_then_released(db: Db) {
    let mut rev = revoked("rev-1", "TH-9", 1);
    rev.reply = vec![msg("ack-rev")];
    assert_eq!(db.store.apply_inbound(&ctx(), vec![rev.clone()]).await.expect("apply"), [Applied::Held]);
    assert_eq!(db.store.held_len().await.expect("held"), 1);
    assert!(db.store.received_by_ref("TH", "TH-9").await.expect("by ref").is_empty());
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (0, 0), "no reply while held");
    assert_eq!(db.store.apply_inbound(&ctx(), vec![rev]).await.expect("apply"), [Applied::Duplicate]);
    assert_eq!(db.store.held_len().await.expect("held"), 1);

    let mut iss = issued("iss-1", "TH-9", 1);
    iss.reply = vec![msg("ack-iss")];
    assert_eq!(db.store.apply_inbound(&ctx(), vec![iss]).await.expect("apply"), [Applied::Applied]);
    assert_eq!(db.store.held_len().await.expect("held"), 0);
    let got = db.store.received_by_ref("TH", "TH-9").await.expect("by ref");
    assert_eq!(
        (got[0].status, got[0].revoked_reason.as_deref()),
        (ReceivedStatus::Revoked, Some("revoked by rev-1"))
    );
    assert_eq!(claim_ids(&db, 0, 10).await, ["ack-iss", "ack-rev"], "the held reply is enqueued on release");
    let acts = actions(&db).await;
    assert_eq!(acts, ["message.held", "received.stored", "received.revoked"]);
    // Held and released in one batch, too; a second revocation is a duplicate.
    let out = db
        .store
        .apply_inbound(
            &ctx(),
            vec![revoked("rev-2", "TH-10", 1), issued("iss-2", "TH-10", 1), revoked("rev-3", "TH-10", 1)],
        )
        .await
        .expect("apply");
    assert_eq!(out, [Applied::Held, Applied::Applied, Applied::Duplicate]);
    assert_eq!(statuses_of(&db, "TH-10").await, [(1, ReceivedStatus::Revoked)]);
    assert_eq!(db.store.inbox_len().await.expect("inbox"), 5);
    assert_eq!(db.store.held_len().await.expect("held"), 0);
    assert_chain_ok(&db).await;
}

async fn replacement_before_its_predecessor_is_held(db: Db) {
    let out = db
        .store
        .apply_inbound(
            &ctx(),
            vec![replaced("r3", "TH-5", 3), revoked("x3", "TH-5", 3), replaced("r2", "TH-5", 2)],
        )
        .await
        .expect("apply");
    assert_eq!(out, [Applied::Held, Applied::Held, Applied::Held]);
    assert_eq!(db.store.held_len().await.expect("held"), 3);
    assert!(statuses_of(&db, "TH-5").await.is_empty());
    // Version 1 lands: v2, then v3, then the revocation of v3 follow, in that order.
    let out = db.store.apply_inbound(&ctx(), vec![issued("i1", "TH-5", 1)]).await.expect("apply");
    assert_eq!(out, [Applied::Applied]);
    assert_eq!(db.store.held_len().await.expect("held"), 0);
    assert_eq!(
        statuses_of(&db, "TH-5").await,
        [(3, ReceivedStatus::Revoked), (2, ReceivedStatus::Superseded), (1, ReceivedStatus::Superseded)]
    );
    let acts = actions(&db).await;
    assert_eq!(acts.iter().filter(|a| *a == "received.superseded").count(), 2);
    assert_eq!(acts.iter().filter(|a| *a == "received.revoked").count(), 1);
    assert_eq!(acts.iter().filter(|a| *a == "message.held").count(), 3);
    // A replacement of a revoked version leaves it revoked.
    db.store.apply_inbound(&ctx(), vec![replaced("r4", "TH-5", 4)]).await.expect("apply");
    assert_eq!(
        statuses_of(&db, "TH-5").await[..2],
        [(4, ReceivedStatus::Valid), (3, ReceivedStatus::Revoked)]
    );
    assert_chain_ok(&db).await;
}

async fn status_updates_and_remote_status(db: Db) {
    let (c, u) = exporter(&db, "Status Co").await;
    let a = submitted(&db, &c, &u).await;
    let cert = db.store.approve(&ctx(), a.id, &numbering(), signer("KH-2026")).await.expect("approve");
    assert_eq!(cert.remote_status, None);
    let status = |id: &str, number: &str, s: &str| {
        let kind = InboundKind::Status {
            number: number.into(),
            version: 1,
            status: s.into(),
            code: format!("{}_CODE", s.to_uppercase()),
            detail: "{\"declaration\":\"D-1\"}".into(),
        };
        inbound(id, kind, vec![])
    };
    let out =
        db.store.apply_inbound(&ctx(), vec![status("s1", &cert.number, "accepted")]).await.expect("apply");
    assert_eq!(out, [Applied::Applied]);
    let got = db.store.certificate(cert.id).await.expect("get").expect("exists");
    assert_eq!(got.remote_status.as_deref(), Some("accepted"));
    db.store
        .apply_inbound(
            &ctx_at(5),
            vec![status("s2", &cert.number, "used"), status("s3", "KH-UNKNOWN", "rejected")],
        )
        .await
        .expect("apply");
    let listed = db.store.list_certificates(&Page::first(None, 10)).await.expect("list");
    assert_eq!(listed[0].remote_status.as_deref(), Some("used"));
    let history = db.store.certificate_statuses(&cert.number).await.expect("statuses");
    assert_eq!(history.iter().map(|s| s.status.as_str()).collect::<Vec<_>>(), ["accepted", "used"]);
    assert_eq!(
        history[1],
        StatusEvent {
            number: cert.number.clone(),
            version: 1,
            from_country: "TH".into(),
            status: "used".into(),
            code: "USED_CODE".into(),
            detail: "{\"declaration\":\"D-1\"}".into(),
            message_id: "s2".into(),
            at: timestamp(&at(5)),
        }
    );
    assert_eq!(db.store.certificate_statuses("KH-UNKNOWN").await.expect("statuses").len(), 1);
    let events = db.store.audit_events(0, i64::MAX, 1000).await.expect("events");
    let entities: Vec<&str> =
        events.iter().filter(|e| e.action == "certificate.status").map(|e| e.entity.as_str()).collect();
    let mine = format!("certificate/{}", cert.id);
    assert_eq!(entities, [mine.as_str(), mine.as_str(), "certificate-number/KH-UNKNOWN/1"]);
    assert_eq!(
        db.store.apply_inbound(&ctx(), vec![status("s1", &cert.number, "x")]).await.expect("apply"),
        [Applied::Duplicate]
    );
    assert_eq!(db.store.certificate_statuses(&cert.number).await.expect("statuses").len(), 2);
    assert_chain_ok(&db).await;
}

async fn invalid_received_is_stored_as_invalid(db: Db) {
    let mut cert = th("TH-BAD", 1);
    cert.status = ReceivedStatus::Invalid;
    cert.verdict = Some("SIGNATURE_INVALID".into());
    let m = inbound("bad-1", InboundKind::Issued { certificate: cert }, vec![]);
    assert_eq!(db.store.apply_inbound(&ctx(), vec![m]).await.expect("apply"), [Applied::Applied]);
    let got = db.store.received_by_ref("TH", "TH-BAD").await.expect("by ref");
    assert_eq!(
        (got[0].status, got[0].verdict.as_deref(), got[0].message_id.as_deref()),
        (ReceivedStatus::Invalid, Some("SIGNATURE_INVALID"), Some("bad-1"))
    );
    let events = db.store.audit_events(0, i64::MAX, 10).await.expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].action.as_str(), events[0].entity.as_str()),
        ("received.rejected", &*format!("received/{}", got[0].id))
    );
    assert!(events[0].after.contains("SIGNATURE_INVALID"));
    // Other messages are recorded in the inbox only.
    let other = inbound(
        "v-1",
        InboundKind::Other { kind: "verification.request".into(), detail: "{}".into() },
        vec![msg("v-1-reply")],
    );
    assert_eq!(db.store.apply_inbound(&ctx(), vec![other]).await.expect("apply"), [Applied::Applied]);
    assert_eq!(db.store.inbox_len().await.expect("inbox"), 2);
    assert_eq!(db.store.audit_head().await.expect("head").0, 1);
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (1, 0));
    assert_chain_ok(&db).await;
}

async fn failing_batch_applies_nothing(db: Db) {
    db.store.enqueue(&ctx(), vec![msg("taken")]).await.expect("enqueue");
    let mut bad = issued("f2", "TH-F", 2);
    bad.reply = vec![msg("taken")];
    let batch = vec![issued("f1", "TH-F", 1), revoked("f0", "TH-G", 1), bad];
    assert_eq!(code(db.store.apply_inbound(&ctx(), batch).await), "MESSAGE_EXISTS");
    assert_eq!(db.store.inbox_len().await.expect("inbox"), 0);
    assert_eq!(db.store.held_len().await.expect("held"), 0);
    assert!(db.store.received_by_ref("TH", "TH-F").await.expect("by ref").is_empty());
    assert_eq!(db.store.audit_head().await.expect("head").0, 0);
    assert_eq!(
        db.store.apply_inbound(&ctx(), vec![issued("f1", "TH-F", 1)]).await.expect("apply"),
        [Applied::Applied]
    );
    assert_chain_ok(&db).await;
}

async fn inbound_serializes_and_received_lists(db: Db) {
    // Held messages are stored as JSON: every kind must survive the round trip.
    let mut m = issued("j1", "TH-J", 1);
    m.reply = vec![msg("r1")];
    let json = serde_json::to_string(&m).expect("json");
    assert!(json.contains(&hex(b"<th n='TH-J' v='1'/>")), "bytes as hex: {json}");
    assert_eq!(serde_json::from_str::<Inbound>(&json).expect("back"), m);
    for i in 1..=5 {
        db.store
            .apply_inbound(&ctx(), vec![issued(&format!("l{i}"), &format!("TH-L{i}"), 1)])
            .await
            .expect("apply");
    }
    let mut seen = vec![];
    let mut page = Page::first(None, 2);
    loop {
        let got = db.store.list_received(&page).await.expect("list");
        let Some(last) = got.last() else { break };
        assert!(got.iter().all(|r| r.document.is_empty()));
        page.before = Some(last.id);
        seen.extend(got.into_iter().map(|r| r.number));
    }
    assert_eq!(seen, ["TH-L5", "TH-L4", "TH-L3", "TH-L2", "TH-L1"]);
}
