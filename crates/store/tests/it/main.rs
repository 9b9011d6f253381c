//! The storage contract: every test runs against SQLite (a temp file) and PostgreSQL (a fresh
//! database on 127.0.0.1:5432, dropped afterwards). PostgreSQL being unreachable is a failure,
//! never a skip: `scripts/setup.sh` installs and starts it. Stores are opened as the node opens
//! them: the audit chain keyed with a fixed test key, its checkpoint in a temp directory.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use originlink_store::postgres::PgStore;
use originlink_store::sqlite::SqliteStore;
use originlink_store::*;

mod migrations;

/// A store under test plus a way to tamper with it behind its back.
struct Db {
    store: Arc<dyn Store>,
    raw: Raw,
    /// The database (a SQLite path or a PostgreSQL URL), to open it again.
    url: String,
    /// The audit checkpoint file.
    checkpoint: std::path::PathBuf,
    _guard: Guard,
}

enum Raw {
    Sqlite(SqliteStore),
    Pg(PgStore),
}

enum Guard {
    Dir(std::path::PathBuf),
    PgDb(String, std::path::PathBuf),
}

impl Drop for Guard {
    fn drop(&mut self) {
        match self {
            Guard::Dir(d) => {
                let _ = std::fs::remove_dir_all(d);
            }
            Guard::PgDb(name, d) => {
                let _ = std::fs::remove_dir_all(d);
                let _ = std::process::Command::new("psql")
                    .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
                    .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .output();
            }
        }
    }
}

/// The fixed audit key of the tests.
fn test_key() -> AuditKey {
    AuditKey::new(&[7; 32])
}

/// The audit setup of the tests: the test key, the checkpoint in `dir`.
fn keyed(dir: &std::path::Path) -> AuditSetup {
    AuditSetup { key: Some(test_key()), checkpoint: Some(dir.join("audit.checkpoint")) }
}

impl Db {
    /// Another store on the same database, set up as `audit` says.
    async fn reopen(&self, audit: AuditSetup) -> Arc<dyn Store> {
        open_keyed(&self.url, 2, audit).await.expect("reopen")
    }

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
    let path = dir.join("node.db");
    let s = SqliteStore::open(&path).await.expect("open sqlite").with_audit(keyed(&dir));
    s.migrate().await.expect("migrate");
    s.checkpoint_audit().await.expect("checkpoint");
    Db {
        store: Arc::new(s.clone()),
        raw: Raw::Sqlite(s),
        url: path.display().to_string(),
        checkpoint: dir.join("audit.checkpoint"),
        _guard: Guard::Dir(dir),
    }
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
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let guard = Guard::PgDb(name.clone(), dir.clone());
    let url = format!("{base}/{name}");
    let s = PgStore::connect(&url, 8).await.expect("connect test database").with_audit(keyed(&dir));
    s.migrate().await.expect("migrate");
    s.checkpoint_audit().await.expect("checkpoint");
    Db {
        store: Arc::new(s.clone()),
        raw: Raw::Pg(s),
        url,
        checkpoint: dir.join("audit.checkpoint"),
        _guard: guard,
    }
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
    decision_statuses_are_written_with_the_decision,
    a_pending_line_is_linked_to_its_certificate_once,
    users_and_tokens,
    users_disabled_and_tokens_revoked_do_not_authenticate,
    console_sessions_passwords_and_invitations,
    notifications_are_kept_once_and_their_deliveries_settled,
    application_lifecycle,
    return_edit_resubmit_and_withdraw,
    lists_filter_in_sql,
    failed_signing_stores_nothing_and_keeps_numbers_gapless,
    a_batch_of_approvals_commits_each_on_its_own,
    amendment_supersedes_and_keeps_the_number,
    revoke_needs_issued,
    status_entries_and_lists,
    tenant_listing,
    back_to_back_needs_a_received_certificate,
    parallel_approvals_of_different_applications_are_gapless,
    parallel_approvals_of_one_application_one_wins,
    audit_tamper_change,
    audit_tamper_delete,
    audit_tamper_reorder,
    audit_tamper_truncate_tail,
    audit_verifies_in_pages,
    audit_row_past_the_head_is_named_and_stops_writes,
    audit_tail_deleted_with_the_head_moved_back_is_truncated,
    audit_recomputed_hashes_are_caught,
    audit_missing_head_is_named,
    audit_checkpoint_forged_or_missing_is_named,
    audit_unkeyed_history_then_keyed,
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
    quarantined_messages_keep_their_reason_and_never_fail_a_batch,
    invalid_received_is_stored_as_invalid,
    failing_batch_applies_nothing,
    inbound_serializes_and_received_lists,
    declarations_create_list_and_risk_order,
    claims_consume_and_partial_use,
    single_declaration_refuses_a_second_declaration,
    quantity_exceeded_denies_without_consuming,
    bad_decisions_change_nothing,
    redeciding_a_granted_line_gives_the_quantity_back,
    over_use_race_grants_exactly_what_is_there,
    single_declaration_race_one_declaration_wins,
    pending_lines_and_lines_using,
    revenue_sums_by_month_agreement_and_partner,
    pair_seen_needs_a_granted_line,
    verification_lifecycle_and_overdue,
    verification_messages_through_the_inbox,
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
    exporter_on(db.store.as_ref(), company).await
}

async fn exporter_on(store: &dyn Store, company: &str) -> (Company, User) {
    let c = store.create_company(&ctx(), company, "KH").await.expect("company");
    let u = store
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

/// A new application of `u` for company `c`, replacing nothing.
fn new_application(c: &Company, u: &User) -> NewApplication {
    NewApplication {
        company_id: c.id,
        created_by: u.id,
        format: "json".into(),
        document: b"{\"doc\":1}".to_vec(),
        self_assessment: None,
        assessment: None,
        replaces: None,
        back_to_back_of: None,
        copied_from: None,
    }
}

async fn submitted(db: &Db, c: &Company, u: &User) -> Application {
    let a = db.store.create_application(&ctx(), new_application(c, u)).await.expect("create application");
    db.store.transition(&ctx(), a.id, Transition::Submit).await.expect("submit")
}

fn code<T: std::fmt::Debug>(r: Result<T, StoreError>) -> &'static str {
    r.expect_err("must fail").code()
}

async fn assert_chain_ok(db: &Db) -> u64 {
    db.store.verify_audit().await.expect("read audit").expect("chain verifies")
}

async fn migrate_is_idempotent(db: Db) {
    assert_eq!(db.store.pending_migrations().await.expect("pending"), Vec::<i64>::new());
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

async fn users_disabled_and_tokens_revoked_do_not_authenticate(db: Db) {
    let (_, u) = exporter(&db, "Tonle Sap Fish").await;
    let old = token_hash("token-Tonle Sap Fish");
    let listed = db.store.list_users().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].company.as_deref(), Some("Tonle Sap Fish"));
    assert!(!listed[0].disabled);
    assert_eq!(listed[0].active_tokens, 1);

    let off = db.store.change_user(&ctx(), u.id, UserChange::Disable).await.expect("disable");
    assert!(off.disabled && off.disabled_at.is_some());
    assert_eq!(db.store.user_by_token_hash(&old).await.expect("lookup"), None, "disabled user");
    assert_eq!(code(db.store.change_user(&ctx(), u.id, UserChange::Disable).await), "USER_ALREADY_DISABLED");
    let on = db.store.change_user(&ctx(), u.id, UserChange::Enable).await.expect("enable");
    assert!(!on.disabled);
    assert_eq!(db.store.user_by_token_hash(&old).await.expect("lookup"), Some(u.clone()), "enabled again");
    assert_eq!(code(db.store.change_user(&ctx(), u.id, UserChange::Enable).await), "USER_NOT_DISABLED");

    let new = token_hash("token-new");
    let r = db.store.replace_token(&ctx(), u.id, &new).await.expect("new token");
    assert_eq!(r.active_tokens, 1);
    assert_eq!(db.store.user_by_token_hash(&old).await.expect("lookup"), None, "old token revoked");
    assert_eq!(db.store.user_by_token_hash(&new).await.expect("lookup"), Some(u.clone()));

    let r = db.store.change_user(&ctx(), u.id, UserChange::RevokeTokens).await.expect("revoke");
    assert_eq!(r.active_tokens, 0);
    assert_eq!(db.store.user_by_token_hash(&new).await.expect("lookup"), None, "revoked");
    assert_eq!(db.store.user(u.id).await.expect("user"), Some(r));
    assert_eq!(code(db.store.change_user(&ctx(), 999, UserChange::Disable).await), "NOT_FOUND");
    assert_eq!(code(db.store.replace_token(&ctx(), 999, &new).await), "NOT_FOUND");

    // company, user, then disabled, enabled, token issued, tokens revoked: all audited.
    assert_eq!(assert_chain_ok(&db).await, 6);
    let events = db.store.audit_events(2, 6, 10).await.expect("events");
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["user.disabled", "user.enabled", "user.token_issued", "user.tokens_revoked"]);
    assert!(events.iter().all(|e| !e.after.contains("token_hash")));
}

async fn notifications_are_kept_once_and_their_deliveries_settled(db: Db) {
    let (c, exporter) = exporter(&db, "Kampot Pepper").await;
    let customs = officer(&db).await;
    // E-mail addresses: set (audited), listed by role or company for enabled users only.
    let r = db.store.set_email(&ctx(), customs.id, Some("customs@moc.gov.kh".into())).await.expect("email");
    assert_eq!(r.email.as_deref(), Some("customs@moc.gov.kh"));
    db.store.set_email(&ctx(), exporter.id, Some("pepper@kampot.kh".into())).await.expect("email");
    assert_eq!(
        db.store.emails_of(Some(Role::CustomsOfficer), None).await.expect("emails"),
        ["customs@moc.gov.kh"]
    );
    assert_eq!(db.store.emails_of(None, Some(c.id)).await.expect("emails"), ["pepper@kampot.kh"]);
    assert!(db.store.emails_of(Some(Role::Admin), None).await.expect("emails").is_empty());
    db.store.change_user(&ctx(), exporter.id, UserChange::Disable).await.expect("disable");
    assert!(db.store.emails_of(None, Some(c.id)).await.expect("emails").is_empty(), "not a disabled user's");
    assert!(
        matches!(db.store.set_email(&ctx(), 999_999, None).await, Err(StoreError::NotFound)),
        "unknown user"
    );
    let events = db.store.audit_events(0, i64::MAX, 1000).await.expect("audit");
    assert!(events.iter().any(|e| e.action == "user.email_set" && e.after.contains("customs@moc.gov.kh")));

    // Stored once per key, the cursor moved with them.
    let at = ctx().at;
    let n = |key: &str, audience: &str, deliveries: Vec<NewDelivery>| NewNotification {
        key: key.into(),
        audience: audience.into(),
        kind: "received".into(),
        link: "/received/1".into(),
        args: "{}".into(),
        at,
        deliveries,
    };
    let mail = || vec![NewDelivery { channel: "email".into(), target: "customs@moc.gov.kh".into() }];
    assert_eq!(db.store.notifier_cursor().await.expect("cursor"), 0);
    let list = vec![
        n("audit:1:role:customs-officer", "role:customs-officer", mail()),
        n("audit:2:company:1", "company:1", vec![]),
    ];
    assert_eq!(db.store.add_notifications(Some(2), list.clone()).await.expect("add"), 2);
    assert_eq!(db.store.notifier_cursor().await.expect("cursor"), 2);
    assert_eq!(db.store.add_notifications(None, list).await.expect("again"), 0, "nothing twice");
    assert_eq!(db.store.notifier_cursor().await.expect("cursor"), 2, "no cursor: unmoved");
    let aud = ["role:customs-officer", "role:customs-officer"];
    let mine = db.store.notifications(aud, None, 10).await.expect("list");
    assert_eq!(mine.len(), 1);
    assert_eq!(db.store.notifications_after(aud, 0, 100).await.expect("after"), 1);
    assert_eq!(db.store.notifications_after(aud, mine[0].id, 100).await.expect("after"), 0);
    assert_eq!(db.store.notifications_after(aud, 0, 0).await.expect("capped"), 0, "counted up to the cap");
    assert!(db.store.notifications(aud, Some(mine[0].id), 10).await.expect("before").is_empty());
    assert_eq!(db.store.notifications_seen(customs.id).await.expect("seen"), 0);
    db.store.see_notifications(customs.id, mine[0].id).await.expect("see");
    db.store.see_notifications(customs.id, 0).await.expect("never back");
    assert_eq!(db.store.notifications_seen(customs.id).await.expect("seen"), mine[0].id);

    // The e-mail is due; a failure schedules it again, a success settles it.
    let due = db.store.due_deliveries(at, 10).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].channel.as_str(), due[0].notification.id), ("email", mine[0].id));
    let later = at + chrono::Duration::seconds(30);
    let failed = DeliveryOutcome::Failed { error: "refused".into(), retry_at: Some(later) };
    db.store.settle_delivery(due[0].id, at, failed).await.expect("failed");
    assert!(db.store.due_deliveries(at, 10).await.expect("due").is_empty());
    let again = db.store.due_deliveries(later, 10).await.expect("due");
    assert_eq!(again[0].attempts, 1);
    db.store.settle_delivery(again[0].id, later, DeliveryOutcome::Delivered).await.expect("delivered");
    assert!(db.store.due_deliveries(later + chrono::Duration::days(1), 10).await.expect("due").is_empty());
    // Given up: never due again.
    db.store.add_notifications(None, vec![n("dead:message/x", "role:admin", mail())]).await.expect("add");
    let due = db.store.due_deliveries(at, 10).await.expect("due");
    let gave_up = DeliveryOutcome::Failed { error: "refused".into(), retry_at: None };
    db.store.settle_delivery(due[0].id, at, gave_up).await.expect("gave up");
    assert!(db.store.due_deliveries(at + chrono::Duration::days(1), 10).await.expect("due").is_empty());
}

async fn console_sessions_passwords_and_invitations(db: Db) {
    let (_, u) = exporter(&db, "Kampot Pepper").await;
    let login = db.store.login(&u.name).await.expect("login").expect("known name");
    assert_eq!((login.user.clone(), login.password_hash.clone(), login.disabled), (u.clone(), None, false));
    assert!(db.store.login("nobody").await.expect("login").is_none());

    // A password, then a session by the hash of its id.
    let r = db
        .store
        .set_password(&ctx(), u.id, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
        .await
        .expect("set");
    assert!(r.password_set);
    let login = db.store.login(&u.name).await.expect("login").expect("known");
    assert_eq!(login.password_hash.as_deref(), Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"));
    let (a, b) = (token_hash("session-a"), token_hash("session-b"));
    for id in [a, b] {
        let s = NewSession { id_hash: id, user_id: u.id, csrf: "csrf-token".into() };
        db.store.start_session(&ctx(), s).await.expect("start");
    }
    let s = db.store.session(&a).await.expect("session").expect("in force");
    assert_eq!((s.user, s.csrf.as_str()), (u.clone(), "csrf-token"));
    assert!(db.store.session(&token_hash("session-c")).await.expect("session").is_none(), "unknown id");
    db.store
        .touch_session(&a, Utc.with_ymd_and_hms(2026, 3, 1, 9, 45, 0).single().expect("time"))
        .await
        .expect("touch");
    let s = db.store.session(&a).await.expect("session").expect("in force");
    assert!(s.last_seen_at.starts_with("2026-03-01T09:45"), "{}", s.last_seen_at);

    // Signing out ends one session; disabling the user ends the rest.
    db.store.end_session(&ctx(), &a).await.expect("sign out");
    db.store.end_session(&ctx(), &a).await.expect("signing out twice does nothing");
    assert!(db.store.session(&a).await.expect("session").is_none(), "signed out");
    assert!(db.store.session(&b).await.expect("session").is_some());
    db.store.change_user(&ctx(), u.id, UserChange::Disable).await.expect("disable");
    assert!(db.store.session(&b).await.expect("session").is_none(), "disabled user");
    assert!(db.store.login(&u.name).await.expect("login").expect("known").disabled);
    db.store.change_user(&ctx(), u.id, UserChange::Enable).await.expect("enable");
    assert!(db.store.session(&b).await.expect("session").is_none(), "disabling ended it for good");

    // An invitation works once, before it expires, and ends the user's sessions.
    let c = token_hash("session-c");
    db.store
        .start_session(&ctx(), NewSession { id_hash: c, user_id: u.id, csrf: "x".into() })
        .await
        .expect("start");
    let (good, late) = (token_hash("invite-good"), token_hash("invite-late"));
    let until = Utc.with_ymd_and_hms(2026, 3, 8, 9, 30, 0).single().expect("time");
    db.store.invite(&ctx(), u.id, &good, until).await.expect("invite");
    let past = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).single().expect("time");
    db.store.invite(&ctx(), u.id, &late, past).await.expect("invite");
    assert_eq!(code(db.store.invite(&ctx(), 999, &token_hash("x"), until).await), "NOT_FOUND");
    assert_eq!(code(db.store.accept_invitation(&ctx(), &late, "h2").await), "INVITATION_INVALID", "expired");
    assert_eq!(
        code(db.store.accept_invitation(&ctx(), &token_hash("never"), "h2").await),
        "INVITATION_INVALID"
    );
    let r = db.store.accept_invitation(&ctx(), &good, "h2").await.expect("accept");
    assert_eq!(r.id, u.id);
    assert_eq!(
        db.store.login(&u.name).await.expect("login").expect("known").password_hash.as_deref(),
        Some("h2")
    );
    assert!(db.store.session(&c).await.expect("session").is_none(), "a new password ends the sessions");
    assert_eq!(code(db.store.accept_invitation(&ctx(), &good, "h3").await), "INVITATION_INVALID", "used");

    let head = assert_chain_ok(&db).await as i64;
    let events = db.store.audit_events(0, head, 100).await.expect("events");
    let actions: Vec<_> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "company.created",
            "user.created",
            "user.password_set",
            "user.signed_in",
            "user.signed_in",
            "user.signed_out",
            "user.disabled",
            "user.enabled",
            "user.signed_in",
            "user.invited",
            "user.invited",
            "user.password_set"
        ]
    );
    assert!(
        events.iter().all(|e| !e.after.contains("argon2") && !e.after.contains("h2")),
        "no hash in the log"
    );
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
    assert_eq!((a.certificate_status, a2.certificate_status), (None, Some(CertificateStatus::Issued)));
    db.store.revoke(&ctx(), cert.id, "error", no_messages()).await.expect("revoke");
    let a3 = db.store.list_applications(&Page::first(None, 10)).await.expect("list");
    assert_eq!(
        a3.iter().find(|x| x.id == a.id).expect("a").certificate_status,
        Some(CertificateStatus::Revoked)
    );
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

async fn return_edit_resubmit_and_withdraw(db: Db) {
    let (c, u) = exporter(&db, "Tonle Sap Fish").await;
    let a = submitted(&db, &c, &u).await;
    let edit =
        || EditApplication { document: Some(("xml".into(), b"<doc/>".to_vec())), self_assessment: None };
    assert_eq!(code(db.store.edit_application(&ctx(), a.id, edit()).await), "APPLICATION_NOT_EDITABLE");
    let back = Transition::Return { reason: "box 7: wrong HS code".into() };
    let r = db.store.transition(&ctx(), a.id, back.clone()).await.expect("return");
    assert_eq!((r.status, r.reason.as_deref()), (ApplicationStatus::Returned, Some("box 7: wrong HS code")));
    assert_eq!(code(db.store.transition(&ctx(), a.id, back.clone()).await), "APPLICATION_NOT_SUBMITTED");
    let e = db.store.edit_application(&ctx(), a.id, edit()).await.expect("edit");
    assert_eq!(
        (e.status, e.format.as_str(), e.document.as_slice()),
        (ApplicationStatus::Returned, "xml", &b"<doc/>"[..])
    );
    let sa = EditApplication {
        document: None,
        self_assessment: Some(("{}".into(), "{\"originating\":true}".into())),
    };
    let e = db.store.edit_application(&ctx(), a.id, sa).await.expect("edit self-assessment");
    assert_eq!(
        (e.document.as_slice(), e.assessment.as_deref()),
        (&b"<doc/>"[..], Some("{\"originating\":true}"))
    );
    let s = db.store.transition(&ctx(), a.id, Transition::Submit).await.expect("resubmit");
    assert_eq!((s.status, s.reason), (ApplicationStatus::Submitted, None));
    let w = db.store.transition(&ctx(), a.id, Transition::Withdraw).await.expect("withdraw submitted");
    assert_eq!(w.status, ApplicationStatus::Withdrawn);
    assert_eq!(code(db.store.transition(&ctx(), a.id, Transition::Withdraw).await), "APPLICATION_NOT_OPEN");
    assert_eq!(code(db.store.transition(&ctx(), a.id, Transition::Submit).await), "APPLICATION_NOT_DRAFT");
    assert_eq!(code(db.store.edit_application(&ctx(), a.id, edit()).await), "APPLICATION_NOT_EDITABLE");
    let b = submitted(&db, &c, &u).await;
    db.store.approve(&ctx(), b.id, &numbering(), signer("KH-2026")).await.expect("approve");
    assert_eq!(code(db.store.transition(&ctx(), b.id, Transition::Withdraw).await), "APPLICATION_NOT_OPEN");
    assert_eq!(code(db.store.edit_application(&ctx(), 999_999, edit()).await), "NOT_FOUND");
    let events = db.store.audit_events(0, i64::MAX, 1000).await.expect("events");
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    for action in ["application.returned", "application.edited", "application.withdrawn"] {
        assert!(actions.contains(&action), "{action} audited: {actions:?}");
    }
    let edited = events.iter().find(|e| e.action == "application.edited").expect("edited");
    assert!(edited.before.contains("\"status\":\"returned\"") && edited.before != edited.after);
    assert_chain_ok(&db).await;
}

async fn lists_filter_in_sql(db: Db) {
    let (c1, u1) = exporter(&db, "Kampot Pepper_Co").await;
    let (c2, u2) = exporter(&db, "Battambang Rice").await;
    let draft = db
        .store
        .create_application(
            &ctx(),
            NewApplication {
                company_id: c1.id,
                created_by: u1.id,
                format: "json".into(),
                document: b"{}".to_vec(),
                self_assessment: None,
                assessment: None,
                replaces: None,
                back_to_back_of: None,
                copied_from: None,
            },
        )
        .await
        .expect("draft");
    let sub = submitted(&db, &c1, &u1).await;
    let other = submitted(&db, &c2, &u2).await;
    let cert = db.store.approve(&ctx(), other.id, &numbering(), signer("KH-2026")).await.expect("approve");
    let apps = |f: ApplicationFilter| {
        let store = db.store.clone();
        async move {
            let list = store.find_applications(&Page::first(None, 100), &f).await.expect("list");
            list.into_iter().map(|a| a.id).collect::<Vec<_>>()
        }
    };
    let open = vec![ApplicationStatus::Submitted, ApplicationStatus::Approved];
    assert_eq!(apps(ApplicationFilter { statuses: open, ..Default::default() }).await, [other.id, sub.id]);
    let drafts = ApplicationFilter { statuses: vec![ApplicationStatus::Draft], ..Default::default() };
    assert_eq!(apps(drafts).await, [draft.id]);
    let q = |q: &str| ApplicationFilter { q: Some(q.into()), ..Default::default() };
    assert_eq!(apps(q("kampot")).await, [sub.id, draft.id], "company name, any case");
    assert_eq!(apps(q("pepper_c")).await, [sub.id, draft.id]);
    assert_eq!(apps(q("pepperXc")).await, Vec::<i64>::new(), "_ is taken literally");
    assert_eq!(apps(q(&u2.name)).await, [other.id], "the applying user");
    assert_eq!(apps(q(&cert.number[3..])).await, [other.id], "the certificate number");
    let at = |from: &str, to: &str| ApplicationFilter {
        from: Some(from.into()),
        to: Some(to.into()),
        ..Default::default()
    };
    let day = ctx().at.date_naive();
    let next = day.succ_opt().expect("next day");
    assert_eq!(apps(at(&day.to_string(), &next.to_string())).await.len(), 3);
    assert!(apps(at(&next.to_string(), "9999")).await.is_empty());
    // The company still applies.
    let mine = db.store.find_applications(&Page::first(Some(c2.id), 100), &q("kampot")).await.expect("list");
    assert!(mine.is_empty());
    // A queue: oldest first, and its next page starts after the last id shown.
    let oldest = ApplicationFilter { oldest_first: true, ..Default::default() };
    let all = db.store.find_applications(&Page::first(None, 100), &oldest).await.expect("queue");
    let ids: Vec<i64> = all.iter().map(|a| a.id).collect();
    assert!(ids.len() == 3 && ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
    let page = Page { company_id: None, before: Some(ids[0]), limit: 1 };
    let next = db.store.find_applications(&page, &oldest).await.expect("queue page");
    assert_eq!(next.iter().map(|a| a.id).collect::<Vec<_>>(), [ids[1]], "after the first");

    let certs = |f: CertificateFilter| {
        let store = db.store.clone();
        async move { store.find_certificates(&Page::first(None, 100), &f).await.expect("list").len() }
    };
    let number = Some(cert.number.to_lowercase());
    assert_eq!(certs(CertificateFilter { status: Some(CertificateStatus::Issued), number }).await, 1);
    assert_eq!(certs(CertificateFilter { status: Some(CertificateStatus::Revoked), number: None }).await, 0);
    assert_eq!(certs(CertificateFilter { status: None, number: Some("KH-2027".into()) }).await, 0);

    db.store.insert_received(&ctx(), th("TH-2026-001", 1)).await.expect("received");
    let mut by_siam = th("TH-2026-002", 1);
    by_siam.exporter = Some("Siam Rice Exports Co., Ltd.".into());
    db.store.insert_received(&ctx(), by_siam).await.expect("received");
    let received = |f: ReceivedFilter| {
        let store = db.store.clone();
        async move {
            let list = store.find_received(&Page::first(None, 100), &f).await.expect("list");
            list.into_iter().map(|r| r.number).collect::<Vec<_>>()
        }
    };
    let by_number = ReceivedFilter { number: Some("-002".into()), ..Default::default() };
    assert_eq!(received(by_number).await, ["TH-2026-002"]);
    let th_valid = ReceivedFilter {
        status: Some(ReceivedStatus::Valid),
        issuing_country: Some("TH".into()),
        ..Default::default()
    };
    assert_eq!(received(th_valid).await.len(), 2);
    assert!(
        received(ReceivedFilter { issuing_country: Some("VN".into()), ..Default::default() })
            .await
            .is_empty()
    );
    let revoked = ReceivedFilter { status: Some(ReceivedStatus::Revoked), ..Default::default() };
    assert!(received(revoked).await.is_empty());
    // By the exporter's name (text in it, any case) and by the day received (ctx: 1 March).
    let by_exporter = ReceivedFilter { exporter: Some("siam rice".into()), ..Default::default() };
    assert_eq!(received(by_exporter).await, ["TH-2026-002"]);
    // Under three characters a search compares every row; a quote is text like any other.
    let short = ReceivedFilter { exporter: Some("CE".into()), ..Default::default() };
    assert_eq!(received(short).await, ["TH-2026-002"]);
    let quoted = ReceivedFilter { exporter: Some("rice\" OR \"".into()), ..Default::default() };
    assert!(received(quoted).await.is_empty());
    let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 3, d);
    let that_day = ReceivedFilter { from: day(1), to: day(1), ..Default::default() };
    assert_eq!(received(that_day).await.len(), 2, "the end day is included");
    assert!(received(ReceivedFilter { from: day(2), ..Default::default() }).await.is_empty());
    assert!(
        received(ReceivedFilter { to: chrono::NaiveDate::from_ymd_opt(2026, 2, 28), ..Default::default() })
            .await
            .is_empty()
    );

    let o = officer(&db).await;
    let a = declare(&db, &o, "IMP-100", vec![line(1, Some("TH-A"))]).await;
    let mut other_importer = new_decl("IMP-200", "Siem Reap Trading", &o, vec![]);
    other_importer.declaration_date = chrono::NaiveDate::from_ymd_opt(2026, 4, 15).expect("date");
    let b = db.store.create_declaration(&ctx(), other_importer).await.expect("declare");
    let decls = |f: DeclarationFilter, risk: bool| {
        let store = db.store.clone();
        async move {
            let list = store.find_declarations(&Page::first(None, 100), risk, &f).await.expect("list");
            list.into_iter().map(|d| d.id).collect::<Vec<_>>()
        }
    };
    for risk in [false, true] {
        let n = DeclarationFilter { number: Some("imp-2".into()), ..Default::default() };
        assert_eq!(decls(n, risk).await, [b.id]);
        let imp = DeclarationFilter { importer: Some("phnom".into()), ..Default::default() };
        assert_eq!(decls(imp, risk).await, [a.id]);
        let april = DeclarationFilter {
            from: Some("2026-04-01".into()),
            to: Some("2026-04-15".into()),
            ..Default::default()
        };
        assert_eq!(decls(april, risk).await, [b.id], "to is inclusive");
        let pending = DeclarationFilter { outcome: Some("pending".into()), ..Default::default() };
        assert_eq!(decls(pending, risk).await, [a.id]);
        let granted = DeclarationFilter { outcome: Some("granted".into()), ..Default::default() };
        assert!(decls(granted, risk).await.is_empty());
    }
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

async fn a_batch_of_approvals_commits_each_on_its_own(db: Db) {
    let (c, u) = exporter(&db, "Kampot Pepper").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(submitted(&db, &c, &u).await.id);
    }
    db.store.approve(&ctx(), ids[4], &numbering(), signer("KH-2026")).await.expect("approve");
    let before = assert_chain_ok(&db).await;
    let one = |id, sign| Approval { ctx: ctx(), id, numbering: numbering(), sign };
    let failing: SignFn = Box::new(|_| Err("key unavailable".into()));
    // Out of id order, with a signing failure, an approved application and an unknown one.
    let batch = vec![
        one(ids[2], signer("KH-2026")),
        one(ids[0], failing),
        one(ids[4], signer("KH-2026")),
        one(999_999, signer("KH-2026")),
        one(ids[1], signer("KH-2026")),
    ];
    let out = db.store.approve_batch(batch).await.expect("the transaction commits");
    let numbers: Vec<Result<String, &str>> =
        out.into_iter().map(|r| r.map(|c| c.number).map_err(|e| e.code())).collect();
    assert_eq!(
        numbers,
        [
            Ok("KH-2026-000002".into()),
            Err("SIGNING_FAILED"),
            Err("APPLICATION_NOT_SUBMITTED"),
            Err("NOT_FOUND"),
            Ok("KH-2026-000003".into()),
        ],
        "the refused ones give their numbers back"
    );
    for (id, why) in [(ids[0], "rolled back to its savepoint"), (ids[3], "not in the batch")] {
        let a = db.store.application(id).await.expect("get").expect("exists");
        assert_eq!(a.status, ApplicationStatus::Submitted, "{why}");
    }
    assert_eq!(assert_chain_ok(&db).await, before + 4, "two events for each of the two approved");
    let next = db.store.approve(&ctx(), ids[0], &numbering(), signer("KH-2026")).await.expect("approve");
    assert_eq!(next.number, "KH-2026-000004");

    // One application twice, and two replacements of one certificate: the batch sees what it
    // did before each, so only the first of each is approved.
    let twice = submitted(&db, &c, &u).await.id;
    let replacement = |old| NewApplication { replaces: Some(old), ..new_application(&c, &u) };
    let mut amends = Vec::new();
    for _ in 0..2 {
        let a = db.store.create_application(&ctx(), replacement(next.id)).await.expect("replacement");
        amends.push(db.store.transition(&ctx(), a.id, Transition::Submit).await.expect("submit").id);
    }
    let batch = vec![
        one(twice, signer("KH-2026")),
        one(amends[0], signer("KH-2026")),
        one(twice, signer("KH-2026")),
        one(amends[1], signer("KH-2026")),
    ];
    let out = db.store.approve_batch(batch).await.expect("the transaction commits");
    let got: Vec<Result<(String, i64), &str>> =
        out.into_iter().map(|r| r.map(|c| (c.number, c.version)).map_err(|e| e.code())).collect();
    assert_eq!(
        got,
        [
            Ok(("KH-2026-000005".into(), 1)),
            Ok(("KH-2026-000004".into(), 2)),
            Err("APPLICATION_NOT_SUBMITTED"),
            Err("CERTIFICATE_NOT_ISSUED"),
        ]
    );
    let old = db.store.certificate(next.id).await.expect("get").expect("exists");
    assert_eq!(old.status, CertificateStatus::Superseded);

    // A number found taken (the sequence moved back behind the store's back) fails the whole
    // batch: nothing of it is stored, the audit log does not move.
    let (a, b) = (submitted(&db, &c, &u).await.id, submitted(&db, &c, &u).await.id);
    db.raw("UPDATE number_sequences SET last = 4").await;
    let head = db.store.audit_head().await.expect("head");
    let failed = db.store.approve_batch(vec![one(a, signer("KH-2026")), one(b, signer("KH-2026"))]).await;
    assert_eq!(failed.map(drop).expect_err("the batch fails").code(), "CERTIFICATE_NUMBER_TAKEN");
    assert_eq!(db.store.audit_head().await.expect("head"), head);
    for id in [a, b] {
        let app = db.store.application(id).await.expect("get").expect("exists");
        assert_eq!((app.status, app.certificate_id), (ApplicationStatus::Submitted, None));
    }
    assert_chain_ok(&db).await;
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
        copied_from: None,
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

/// What a status list is made of (every revoked or superseded version, with when and why),
/// and the lists kept: the newest of each issuer only, this node's own audited.
async fn status_entries_and_lists(db: Db) {
    let (c, u) = exporter(&db, "Kep Crab").await;
    assert!(db.store.status_entries().await.expect("entries").is_empty());
    let a = submitted(&db, &c, &u).await;
    let v1 = db.store.approve(&ctx(), a.id, &numbering(), signer("KH-2026")).await.expect("approve");
    // The replacement: another application naming the certificate it replaces.
    let b = db
        .store
        .create_application(&ctx(), NewApplication { replaces: Some(v1.id), ..new_application(&c, &u) })
        .await
        .expect("amendment");
    db.store.transition(&ctx(), b.id, Transition::Submit).await.expect("submit");
    let v2 = db.store.approve(&ctx(), b.id, &numbering(), signer("KH-2026")).await.expect("approve");
    db.store.revoke(&ctx(), v2.id, "wrong invoice", no_messages()).await.expect("revoke");
    let at = timestamp(&ctx().at);
    let got: Vec<_> = db
        .store
        .status_entries()
        .await
        .expect("entries")
        .into_iter()
        .map(|e| (e.number, e.version, e.status, e.since, e.reason, e.superseded_by))
        .collect();
    assert_eq!(
        got,
        [
            (v1.number.clone(), 1, CertificateStatus::Superseded, at.clone(), None, Some(2)),
            (
                v1.number.clone(),
                2,
                CertificateStatus::Revoked,
                at.clone(),
                Some("wrong invoice".into()),
                None
            ),
        ]
    );
    let versions = db.store.certificate_versions(&v1.number).await.expect("versions");
    assert_eq!(versions.iter().map(|c| c.version).collect::<Vec<_>>(), [2, 1], "newest first");
    assert!(versions.iter().all(|c| !c.signed.is_empty() && c.status_at.as_deref() == Some(at.as_str())));

    let list = |issuer: &str, sequence: i64| StoredStatusList {
        issuer: issuer.into(),
        sequence,
        issued_at: at.clone(),
        next_update: at.clone(),
        signed: format!("{{\"sequence\":{sequence}}}").into_bytes(),
        stored_at: at.clone(),
    };
    assert!(db.store.put_status_list(&ctx(), &list("KH", 2), vec![]).await.expect("put"));
    assert!(
        !db.store.put_status_list(&ctx(), &list("KH", 2), vec![]).await.expect("same"),
        "the same sequence again"
    );
    assert!(!db.store.put_status_list(&ctx(), &list("KH", 1), vec![]).await.expect("older"), "an older list");
    assert!(db.store.put_status_list(&ctx(), &list("KH", 3), vec![]).await.expect("newer"));
    let kept = db.store.status_list("KH").await.expect("read").expect("kept");
    assert_eq!((kept.sequence, kept.signed), (3, b"{\"sequence\":3}".to_vec()));
    assert_eq!(db.store.status_list("TH").await.expect("read"), None);
    let all = db.store.status_lists().await.expect("all");
    assert_eq!((all.len(), all[0].sequence, all[0].signed.len()), (1, 3, 0), "without the lists");
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
        copied_from: None,
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

async fn broken(db: &Db) -> (i64, &'static str) {
    let b = db.store.verify_audit().await.expect("read audit").expect_err("chain must be broken");
    assert!(!b.detail.is_empty() && !b.advice().is_empty(), "{b:?}");
    (b.seq, b.reason)
}

async fn audit_tamper_change(db: Db) {
    some_history(&db).await;
    db.raw("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2").await;
    assert_eq!(broken(&db).await, (2, "AUDIT_HASH_MISMATCH"));
}

async fn audit_tamper_delete(db: Db) {
    some_history(&db).await;
    db.raw("DELETE FROM audit_events WHERE seq = 3").await;
    assert_eq!(broken(&db).await, (3, "AUDIT_SEQ_GAP"));
}

async fn audit_tamper_reorder(db: Db) {
    some_history(&db).await;
    db.raw("UPDATE audit_events SET seq = -1 WHERE seq = 2").await;
    db.raw("UPDATE audit_events SET seq = 2 WHERE seq = 3").await;
    db.raw("UPDATE audit_events SET seq = 3 WHERE seq = -1").await;
    assert_eq!(broken(&db).await, (2, "AUDIT_LINK_BROKEN"));
}

async fn audit_tamper_truncate_tail(db: Db) {
    some_history(&db).await;
    db.raw("DELETE FROM audit_events WHERE seq = 4").await;
    assert_eq!(broken(&db).await, (4, "AUDIT_HEAD_MISMATCH"));
}

async fn audit_verifies_in_pages(db: Db) {
    some_history(&db).await;
    for page in [1, 2, 3, 4, 5] {
        assert_eq!(db.store.verify_audit_in_pages(page).await.expect("read"), Ok(4), "page {page}");
    }
    db.raw("UPDATE audit_events SET after = '{}' WHERE seq = 4").await;
    for page in [1, 3, 1000] {
        let b = db.store.verify_audit_in_pages(page).await.expect("read").expect_err("broken");
        assert_eq!((b.seq, b.reason), (4, "AUDIT_HASH_MISMATCH"), "page {page}");
    }
}

/// Copies event `from` to position `to` (as raw SQL can), keeping its hashes.
async fn copy_event(db: &Db, from: i64, to: i64) {
    db.raw(&format!(
        "INSERT INTO audit_events (seq, at, actor, action, entity, before, after, prev_hash, hash) \
         SELECT {to}, at, actor, action, entity, before, after, prev_hash, hash FROM audit_events WHERE seq = {from}"
    ))
    .await;
}

/// Issue 11, defect 7: a row appended after the recorded head passed `audit verify` and then
/// made every write fail without saying why.
async fn audit_row_past_the_head_is_named_and_stops_writes(db: Db) {
    some_history(&db).await;
    copy_event(&db, 4, 5).await;
    assert_eq!(broken(&db).await, (5, "AUDIT_EVENTS_PAST_HEAD"));
    // The node does not write over it; its error names the problem (logged with the 503).
    let e = db.store.create_company(&ctx(), "After Co", "KH").await.expect_err("refused");
    assert!(e.to_string().contains("AUDIT_EVENTS_PAST_HEAD: event 5"), "{e}");
    assert_eq!(db.store.audit_head().await.expect("head").0, 4);
    // Removing the stray row lets the node write again.
    db.raw("DELETE FROM audit_events WHERE seq = 5").await;
    db.store.create_company(&ctx(), "After Co", "KH").await.expect("written");
    assert_eq!(assert_chain_ok(&db).await, 5);
}

/// Issue 11, defect 7: deleting the newest event and moving the head back passed.
async fn audit_tail_deleted_with_the_head_moved_back_is_truncated(db: Db) {
    some_history(&db).await;
    assert_eq!(db.store.checkpoint_audit().await.expect("checkpoint"), Some(4));
    let (_, hash3) =
        db.store.audit_events(2, 3, 1).await.expect("events").pop().map(|e| (e.seq, e.hash)).expect("3");
    db.raw("DELETE FROM audit_events WHERE seq = 4").await;
    db.raw(&format!("UPDATE audit_head SET seq = 3, hash = '{hash3}' WHERE id = 1")).await;
    let b = db.store.verify_audit().await.expect("read").expect_err("truncated");
    assert_eq!((b.seq, b.reason), (4, "AUDIT_TRUNCATED"));
    assert!(b.detail.contains("anchors event 4") && b.detail.contains("ends at event 3"), "{}", b.detail);
    // The node keeps writing, but the checkpoint is never moved over the gap: new events at 4
    // and 5 do not hide the deleted one.
    db.store.create_company(&ctx(), "Later Co", "KH").await.expect("written");
    db.store.create_company(&ctx(), "Later Co 2", "KH").await.expect("written");
    assert_eq!(db.store.checkpoint_audit().await.expect("checkpoint"), None);
    assert_eq!(broken(&db).await, (4, "AUDIT_CHECKPOINT_MISMATCH"));
}

/// Rewrites events from `from` on as someone without the node's audit key would: their
/// content edited at `edit`, every hash recomputed (plain SHA-256, or HMAC with `key`), and
/// the head moved to match.
async fn rewrite_chain(db: &Db, from: i64, edit: i64, key: Option<&AuditKey>) {
    let mut events = db.store.audit_events(0, i64::MAX, 1000).await.expect("events");
    let mut prev = if from == 1 { audit::GENESIS.to_owned() } else { events[from as usize - 2].hash.clone() };
    for e in events.iter_mut().filter(|e| e.seq >= from) {
        if e.seq == edit {
            e.actor = "mallory".into();
        }
        let c = audit::canonical(e.seq, &e.at, &e.actor, &e.action, &e.entity, &e.before, &e.after);
        let hash = audit::chain_hash(key, &prev, &c);
        db.raw(&format!(
            "UPDATE audit_events SET actor = '{}', prev_hash = '{prev}', hash = '{hash}' WHERE seq = {}",
            e.actor, e.seq
        ))
        .await;
        prev = hash;
    }
    db.raw(&format!("UPDATE audit_head SET hash = '{prev}' WHERE id = 1")).await;
}

/// Issue 11, defect 7: an edited event with every hash recomputed passed, because the chain had
/// no key.
async fn audit_recomputed_hashes_are_caught(db: Db) {
    some_history(&db).await;
    assert_eq!(db.store.checkpoint_audit().await.expect("checkpoint"), Some(4));
    // From the edited event on, as the old chain allowed.
    rewrite_chain(&db, 2, 2, None).await;
    assert_eq!(broken(&db).await, (2, "AUDIT_HASH_MISMATCH"));
    // With a guessed key.
    rewrite_chain(&db, 2, 2, Some(&AuditKey::new(&[8; 32]))).await;
    assert_eq!(broken(&db).await, (2, "AUDIT_HASH_MISMATCH"));
    // The whole chain rewritten without keys looks like an old unkeyed chain, but the
    // checkpoint outside the database knows the head it anchored.
    rewrite_chain(&db, 1, 2, None).await;
    assert_eq!(broken(&db).await, (4, "AUDIT_CHECKPOINT_MISMATCH"));
}

/// Issue 11, defect 7: a missing head made `audit verify` fail without naming the problem.
async fn audit_missing_head_is_named(db: Db) {
    some_history(&db).await;
    db.raw("DELETE FROM audit_head").await;
    assert_eq!(broken(&db).await, (4, "AUDIT_HEAD_MISSING"));
    let e = db.store.create_company(&ctx(), "Headless Co", "KH").await.expect_err("refused");
    assert!(e.to_string().contains("AUDIT_HEAD_MISSING"), "{e}");
}

async fn audit_checkpoint_forged_or_missing_is_named(db: Db) {
    some_history(&db).await;
    assert_eq!(db.store.checkpoint_audit().await.expect("checkpoint"), Some(4));
    let text = std::fs::read_to_string(&db.checkpoint).expect("checkpoint file");
    assert!(text.contains("\"seq\":4") && text.contains("hmac-sha256:"), "{text}");
    // Moved forward by hand: the MAC no longer matches.
    std::fs::write(&db.checkpoint, text.replace("\"seq\":4", "\"seq\":9")).expect("write");
    assert_eq!(broken(&db).await, (9, "AUDIT_CHECKPOINT_INVALID"));
    // Kept as evidence, never overwritten.
    assert_eq!(db.store.checkpoint_audit().await.expect("checkpoint"), None);
    // Checked with another audit key.
    std::fs::write(&db.checkpoint, &text).expect("write");
    let other = db
        .reopen(AuditSetup {
            key: Some(AuditKey::new(&[8; 32])),
            ..keyed(db.checkpoint.parent().expect("dir"))
        })
        .await;
    let b = other.verify_audit().await.expect("read").expect_err("wrong key");
    assert_eq!((b.seq, b.reason), (4, "AUDIT_CHECKPOINT_INVALID"));
    // Missing (another file than the one this store's background writer keeps): named, and
    // written anew at the next checkpoint.
    let dir = db.checkpoint.parent().expect("dir");
    let gone = db.reopen(AuditSetup { checkpoint: Some(dir.join("gone.checkpoint")), ..keyed(dir) }).await;
    let b = gone.verify_audit().await.expect("read").expect_err("missing");
    assert_eq!((b.seq, b.reason), (4, "AUDIT_CHECKPOINT_MISSING"));
    assert_eq!(gone.checkpoint_audit().await.expect("checkpoint"), Some(4));
    assert_eq!(gone.verify_audit().await.expect("read"), Ok(4));
}

/// A database written before audit keys: its unkeyed events stay valid as the start of the
/// chain; a keyed store appends keyed events after them; an unkeyed store may no longer append.
async fn audit_unkeyed_history_then_keyed(db: Db) {
    let old = db.reopen(AuditSetup::default()).await;
    exporter_on(old.as_ref(), "Old Co").await;
    assert_eq!(old.verify_audit().await.expect("read"), Ok(2));
    let events = old.audit_events(0, i64::MAX, 10).await.expect("events");
    assert!(events.iter().all(|e| !e.hash.starts_with(audit::KEYED)), "unkeyed");
    // The keyed store (the node after the upgrade) continues the chain with keyed hashes.
    exporter(&db, "New Co").await;
    assert_eq!(db.store.checkpoint_audit().await.expect("checkpoint"), Some(4));
    let v = db.store.check_audit(1000).await.expect("read").expect("intact");
    assert_eq!((v.events, v.keyed_from, v.checkpoint), (4, Some(3), Some(4)));
    // The unkeyed store can neither check nor extend the keyed chain.
    let b = old.verify_audit().await.expect("read").expect_err("needs the key");
    assert!((b.seq, b.reason, b.cannot_verify()) == (3, "AUDIT_KEY_REQUIRED", true), "{b:?}");
    let e = old.create_company(&ctx(), "Unkeyed Co", "KH").await.expect_err("refused");
    assert!(e.to_string().contains("AUDIT_KEY_REQUIRED"), "{e}");
    // Rewriting the keyed events as unkeyed ones is caught.
    rewrite_chain(&db, 3, 3, None).await;
    assert_eq!(broken(&db).await, (4, "AUDIT_CHECKPOINT_MISMATCH"));
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
    // The outbox as an admin lists it: pending and dead, each with its last error.
    db.store.enqueue(&ctx(), vec![msg("b2")]).await.expect("enqueue");
    db.store.outbox_failed("b2", "timed out", at(30), false).await.expect("failed");
    let listed = db.store.outbox_messages(10).await.expect("outbox");
    let seen: Vec<_> = listed
        .iter()
        .map(|m| (m.id.as_str(), m.dead, m.attempts, m.last_error.as_deref(), m.next_attempt_at.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("b1", true, 2, Some("HTTP 400"), timestamp(&at(20))),
            ("b2", false, 1, Some("timed out"), timestamp(&at(30)))
        ]
    );
    assert_eq!(db.store.outbox_messages(1).await.expect("outbox").len(), 1, "limit");
    db.store.outbox_delivered(&["b2".to_owned()]).await.expect("delivered");
    assert_eq!(db.store.outbox_messages(10).await.expect("outbox").len(), 1, "delivered leave the list");

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
    Inbound { message_id: id.into(), from_country: "TH".into(), kind, reply, quarantine: None }
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
    // Sent to TH: TH may report on it.
    let cert =
        db.store.approve(&ctx(), a.id, &numbering(), signer_sending("KH-2026")).await.expect("approve");
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
    // A certificate sent nowhere: nobody may report on it (issue 11, defect 6).
    let out = db
        .store
        .apply_inbound(
            &ctx_at(5),
            vec![status("s2", &cert.number, "used"), status("s3", "KH-UNKNOWN", "rejected")],
        )
        .await
        .expect("apply");
    assert_eq!(out, [Applied::Applied, Applied::Refused(STATUS_FROM_WRONG_PEER)]);
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
    assert!(db.store.certificate_statuses("KH-UNKNOWN").await.expect("statuses").is_empty());
    let events = db.store.audit_events(0, i64::MAX, 1000).await.expect("events");
    let entities: Vec<&str> =
        events.iter().filter(|e| e.action == "certificate.status").map(|e| e.entity.as_str()).collect();
    let mine = format!("certificate/{}", cert.id);
    assert_eq!(entities, [mine.as_str(), mine.as_str()]);
    assert_eq!(
        db.store.apply_inbound(&ctx(), vec![status("s1", &cert.number, "x")]).await.expect("apply"),
        [Applied::Duplicate]
    );
    assert_eq!(db.store.certificate_statuses(&cert.number).await.expect("statuses").len(), 2);
    // From a country it was not sent to: refused and recorded, nothing else (issue 11, defect 6).
    let mut from_vn = status("s4", &cert.number, "accepted");
    from_vn.from_country = "VN".into();
    let out =
        db.store.apply_inbound(&Ctx::new("exchange:gateway:hub", at(9)), vec![from_vn]).await.expect("apply");
    assert_eq!(out, [Applied::Refused(STATUS_FROM_WRONG_PEER)]);
    assert_eq!(db.store.certificate_statuses(&cert.number).await.expect("statuses").len(), 2);
    assert_eq!(db.store.inbox_len().await.expect("inbox"), 2, "a refused message is not in the inbox");
    let refused = db.store.refused(10).await.expect("refused");
    let seen: Vec<(&str, &str, &str)> =
        refused.iter().map(|r| (r.message_id.as_str(), r.from_country.as_str(), r.code.as_str())).collect();
    assert_eq!(seen, [("s4", "VN", STATUS_FROM_WRONG_PEER), ("s3", "TH", STATUS_FROM_WRONG_PEER)]);
    assert_eq!(
        (refused[0].via.as_str(), refused[0].kind.as_str()),
        ("exchange:gateway:hub", "status.update")
    );
    assert!(refused[0].reason.contains("was sent to TH"), "{}", refused[0].reason);
    assert_eq!(refused[0].at, timestamp(&at(9)));
    assert_chain_ok(&db).await;
}

/// Issue 11, defect 2: a message that can never be processed is quarantined with its reason,
/// not failed (which the sender would retry forever).
async fn quarantined_messages_keep_their_reason_and_never_fail_a_batch(db: Db) {
    // On arrival: applied as usual (stored invalid, the reply enqueued), its record quarantined.
    let mut cert = th("TH-Q", 1);
    cert.status = ReceivedStatus::Invalid;
    cert.verdict = Some("NOT_READABLE".into());
    let mut m = inbound("q1", InboundKind::Issued { certificate: cert }, vec![msg("q1-reply")]);
    m.quarantine = Some("XML_TOO_DEEP: nested deeper than the limit".into());
    assert_eq!(db.store.apply_inbound(&ctx(), vec![m.clone()]).await.expect("apply"), [Applied::Applied]);
    assert_eq!(db.store.quarantined_len().await.expect("count"), 1);
    let q = db.store.quarantined(10).await.expect("list");
    assert_eq!(
        (q[0].message_id.as_str(), q[0].kind.as_str(), q[0].state.as_str(), q[0].reason.as_deref()),
        ("q1", "certificate.issued", "quarantined", Some("XML_TOO_DEEP: nested deeper than the limit"))
    );
    assert_eq!(statuses_of(&db, "TH-Q").await, [(1, ReceivedStatus::Invalid)]);
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (1, 0));
    assert_eq!(db.store.apply_inbound(&ctx(), vec![m]).await.expect("apply"), [Applied::Duplicate]);
    // A quarantined replacement that waits is held first, quarantined when it lands (the held
    // JSON keeps the reason).
    let mut r2 = replaced("r2", "TH-R", 2);
    r2.quarantine = Some("NOT_READABLE: no".into());
    assert_eq!(db.store.apply_inbound(&ctx(), vec![r2]).await.expect("apply"), [Applied::Held]);
    // A held message that no longer reads back is quarantined when it is released, and the
    // batch that released it goes on.
    assert_eq!(
        db.store.apply_inbound(&ctx(), vec![revoked("x1", "TH-H", 1)]).await.expect("apply"),
        [Applied::Held]
    );
    db.raw("UPDATE inbox_held SET message = '{\"not\": \"a message\"}' WHERE message_id = 'x1'").await;
    let out = db
        .store
        .apply_inbound(&ctx_at(7), vec![issued("i1", "TH-H", 1), issued("i2", "TH-R", 1)])
        .await
        .expect("apply");
    assert_eq!(out, [Applied::Applied, Applied::Applied]);
    assert_eq!(db.store.held_len().await.expect("held"), 0);
    assert_eq!(statuses_of(&db, "TH-H").await, [(1, ReceivedStatus::Valid)], "the revocation did not apply");
    assert_eq!(statuses_of(&db, "TH-R").await, [(2, ReceivedStatus::Valid), (1, ReceivedStatus::Superseded)]);
    let q = db.store.quarantined(10).await.expect("list");
    let reasons: Vec<(&str, &str)> =
        q.iter().map(|r| (r.message_id.as_str(), r.reason.as_deref().unwrap_or(""))).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons.contains(&("r2", "NOT_READABLE: no")), "{reasons:?}");
    assert!(
        reasons.iter().any(|(id, why)| *id == "x1" && why.starts_with("HELD_UNREADABLE: ")),
        "{reasons:?}"
    );
    assert_eq!(db.store.quarantined_len().await.expect("count"), 3);
    let acts = actions(&db).await;
    assert_eq!(acts.iter().filter(|a| *a == "message.quarantined").count(), 3, "{acts:?}");
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

// ---- importing customs: declarations and the ledger ----

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

async fn officer(db: &Db) -> User {
    db.store
        .create_user(
            &ctx(),
            NewUser {
                name: "customs".into(),
                role: Role::CustomsOfficer,
                company_id: None,
                token_hash: token_hash("customs-token"),
            },
        )
        .await
        .expect("officer")
}

/// A line claiming `TH/number` (or `PENDING` when `number` is `None`).
fn line(line_no: i32, number: Option<&str>) -> NewLine {
    NewLine {
        line_no,
        eco_country: number.map(|_| "TH".into()),
        eco_number: number.map(str::to_owned),
        exporter: Some("Siam Exports".into()),
        agreement: Some("ATIGA".into()),
    }
}

fn new_decl(number: &str, importer: &str, by: &User, lines: Vec<NewLine>) -> NewDeclaration {
    NewDeclaration {
        number: number.into(),
        importer: importer.into(),
        importer_key: None,
        importing_country: "KH".into(),
        declaration_date: chrono::NaiveDate::from_ymd_opt(2026, 3, 1).expect("date"),
        document: format!("{{\"number\":\"{number}\"}}"),
        lines,
        created_by: by.id,
    }
}

async fn declare(db: &Db, by: &User, number: &str, lines: Vec<NewLine>) -> Declaration {
    db.store
        .create_declaration(&ctx(), new_decl(number, "Phnom Penh Imports", by, lines))
        .await
        .expect("declare")
}

fn claim(number: &str, item: i32, quantity: &str, total: &str, single: bool) -> Claim {
    Claim {
        issuing_country: "TH".into(),
        number: number.into(),
        item,
        quantity: dec(quantity),
        item_total: dec(total),
        single_declaration: single,
    }
}

fn granted(line_no: i32, c: Option<Claim>) -> LineDecision {
    LineDecision {
        line_no,
        outcome: LineOutcome::Granted,
        reasons: "[]".into(),
        matched_item: c.as_ref().map(|c| c.item),
        duty: "{\"preferential\":\"0\",\"mfn\":\"15\"}".into(),
        claim: c,
    }
}

fn denied(line_no: i32, code: &str) -> LineDecision {
    LineDecision {
        line_no,
        outcome: LineOutcome::Denied,
        reasons: format!("[{{\"code\":\"{code}\",\"detail\":\"\"}}]"),
        matched_item: None,
        duty: "{\"mfn\":\"15\"}".into(),
        claim: None,
    }
}

fn codes(l: &DeclarationLine) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&l.reasons).expect("reasons json");
    v.as_array().expect("array").iter().map(|r| r["code"].as_str().expect("code").to_owned()).collect()
}

async fn decide1(db: &Db, at: &Ctx, id: i64, d: LineDecision) -> (DeclarationLine, Option<Utilization>) {
    let mut out = db.store.decide_lines(at, id, vec![d]).await.expect("decide");
    assert_eq!(out.len(), 1);
    out.remove(0)
}

async fn remaining(db: &Db, number: &str, item: i32) -> Option<String> {
    db.store
        .ledger("TH", number)
        .await
        .expect("ledger")
        .into_iter()
        .find(|r| r.item == item)
        .map(|r| r.remaining)
}

async fn declarations_create_list_and_risk_order(db: Db) {
    let o = officer(&db).await;
    let a = declare(&db, &o, "D-1", vec![line(1, Some("TH-A")), line(2, None)]).await;
    assert_eq!(
        (a.number.as_str(), a.importing_country.as_str(), a.declaration_date.as_str()),
        ("D-1", "KH", "2026-03-01")
    );
    assert_eq!((a.risk_score, a.risk.as_str(), a.created_by), (0, "null", o.id));
    assert_eq!(a.document, "{\"number\":\"D-1\"}");
    assert_eq!(a.lines.len(), 2);
    assert!(a.lines.iter().all(|l| l.outcome == "pending" && l.reasons == "[]" && l.decided_at.is_none()));
    assert_eq!((a.lines[1].eco_country.as_deref(), a.lines[1].eco_number.as_deref()), (None, None));
    assert_eq!(db.store.declaration(a.id).await.expect("get"), Some(a.clone()));
    assert_eq!(db.store.declaration_by_number("D-1").await.expect("get"), Some(a.clone()));
    assert_eq!(db.store.declaration_by_number("D-404").await.expect("get"), None);
    let dup = new_decl("D-1", "x", &o, vec![]);
    assert_eq!(code(db.store.create_declaration(&ctx(), dup).await), "DECLARATION_EXISTS");
    let twice = new_decl("D-9", "x", &o, vec![line(1, None), line(1, None)]);
    assert_eq!(code(db.store.create_declaration(&ctx(), twice).await), "LINE_DUPLICATE");
    assert_eq!(db.store.declaration_by_number("D-9").await.expect("get"), None);

    let b = declare(&db, &o, "D-2", vec![line(1, None)]).await;
    let c = declare(&db, &o, "D-3", vec![]).await;
    let d = declare(&db, &o, "D-4", vec![]).await;
    let ids = |v: Vec<Declaration>| v.into_iter().map(|d| d.id).collect::<Vec<_>>();
    let newest = db.store.list_declarations(&Page::first(None, 10), false).await.expect("list");
    assert!(newest.iter().all(|d| d.document.is_empty()), "lists leave the documents out");
    assert_eq!(newest.iter().find(|x| x.id == a.id).expect("a").lines.len(), 2, "lists keep the lines");
    assert_eq!(ids(newest), [d.id, c.id, b.id, a.id]);

    db.store.set_risk(&ctx(), b.id, 70, "{\"reasons\":[\"BACK_TO_BACK\"]}").await.expect("risk");
    db.store.set_risk(&ctx(), a.id, 30, "{\"reasons\":[]}").await.expect("risk");
    db.store.set_risk(&ctx(), d.id, 30, "{\"reasons\":[]}").await.expect("risk");
    assert_eq!(code(db.store.set_risk(&ctx(), 999_999, 1, "{}").await), "NOT_FOUND");
    let got = db.store.declaration(b.id).await.expect("get").expect("exists");
    assert_eq!((got.risk_score, got.risk.as_str()), (70, "{\"reasons\":[\"BACK_TO_BACK\"]}"));
    let queue = db.store.list_declarations(&Page::first(None, 10), true).await.expect("queue");
    assert_eq!(ids(queue), [b.id, d.id, a.id, c.id], "risk desc, then id desc");
    // The queue pages with the last id of the previous page as the cursor.
    let mut seen = vec![];
    let mut page = Page::first(None, 1);
    loop {
        let got = db.store.list_declarations(&page, true).await.expect("queue page");
        let Some(last) = got.last() else { break };
        page.before = Some(last.id);
        seen.extend(got.iter().map(|d| d.id));
    }
    assert_eq!(seen, [b.id, d.id, a.id, c.id]);
    let first_two = Page { company_id: None, before: Some(c.id), limit: 10 };
    assert_eq!(ids(db.store.list_declarations(&first_two, false).await.expect("list")), [b.id, a.id]);
    let acts = actions(&db).await;
    assert_eq!(acts.iter().filter(|a| *a == "declaration.created").count(), 4);
    assert_eq!(acts.iter().filter(|a| *a == "declaration.risk_scored").count(), 3);
    assert_chain_ok(&db).await;
}

async fn claims_consume_and_partial_use(db: Db) {
    let o = officer(&db).await;
    let a = declare(&db, &o, "D-A", vec![line(1, Some("TH-C1")), line(2, Some("TH-C1"))]).await;
    let b = declare(&db, &o, "D-B", vec![line(1, Some("TH-C1"))]).await;
    assert!(db.store.ledger("TH", "TH-C1").await.expect("ledger").is_empty(), "no row before first use");

    let out = db
        .store
        .decide_lines(
            &ctx(),
            a.id,
            vec![
                granted(1, Some(claim("TH-C1", 1, "30.50", "100.000", false))),
                granted(2, Some(claim("TH-C1", 2, "5", "5", false))),
            ],
        )
        .await
        .expect("decide");
    let (l1, u1) = &out[0];
    assert_eq!(
        (l1.outcome.as_str(), l1.matched_item, l1.consumed.as_deref()),
        ("granted", Some(1), Some("30.5"))
    );
    assert_eq!(l1.decided_at.as_deref(), Some(timestamp(&ctx().at).as_str()));
    assert_eq!(l1.duty, "{\"preferential\":\"0\",\"mfn\":\"15\"}");
    assert_eq!(
        u1.as_ref().expect("utilization"),
        &Utilization {
            issuing_country: "TH".into(),
            number: "TH-C1".into(),
            item: 1,
            quantity: "30.5".into(),
            remaining_after: "69.5".into(),
            declaration: "D-A".into(),
        }
    );
    assert_eq!(out[1].1.as_ref().expect("utilization").remaining_after, "0", "an item used up exactly");

    // Partial use across declarations (policy allows it).
    let (l, u) = decide1(&db, &ctx(), b.id, granted(1, Some(claim("TH-C1", 1, "60", "100", false)))).await;
    assert_eq!((l.outcome.as_str(), u.expect("utilization").remaining_after.as_str()), ("granted", "9.5"));
    assert_eq!(
        db.store.ledger("TH", "TH-C1").await.expect("ledger"),
        [
            LedgerRow {
                item: 1,
                total: "100".into(),
                remaining: "9.5".into(),
                declarations: vec!["D-A".into(), "D-B".into()]
            },
            LedgerRow { item: 2, total: "5".into(), remaining: "0".into(), declarations: vec!["D-A".into()] },
        ]
    );
    let uses = db.store.utilizations("TH", "TH-C1").await.expect("uses");
    assert_eq!(
        uses.iter().map(|u| (u.declaration.as_str(), u.item, u.quantity.as_str())).collect::<Vec<_>>(),
        [("D-A", 1, "30.5"), ("D-A", 2, "5"), ("D-B", 1, "60")]
    );
    let stored = db.store.declaration(a.id).await.expect("get").expect("exists");
    assert_eq!(stored.lines[0], *l1);
    let acts = actions(&db).await;
    assert_eq!(acts.iter().filter(|a| *a == "ledger.consumed").count(), 3);
    assert_eq!(acts.iter().filter(|a| *a == "declaration.line_decided").count(), 3);
    assert_chain_ok(&db).await;
}

async fn single_declaration_refuses_a_second_declaration(db: Db) {
    let o = officer(&db).await;
    let a = declare(&db, &o, "D-A", vec![line(1, Some("TH-S")), line(2, Some("TH-S"))]).await;
    let b = declare(&db, &o, "D-B", vec![line(1, Some("TH-S"))]).await;
    let (l, _) = decide1(&db, &ctx(), a.id, granted(1, Some(claim("TH-S", 1, "10", "100", true)))).await;
    assert_eq!(l.outcome, "granted");
    // The same declaration may use another item of it.
    let (l, _) = decide1(&db, &ctx(), a.id, granted(2, Some(claim("TH-S", 2, "10", "50", true)))).await;
    assert_eq!(l.outcome, "granted");
    // Another declaration may not, whatever the item and however much is left.
    let (l, u) = decide1(&db, &ctx(), b.id, granted(1, Some(claim("TH-S", 3, "1", "100", true)))).await;
    assert_eq!((l.outcome.as_str(), u, l.consumed.clone()), ("denied", None, None));
    assert_eq!(codes(&l), ["ALREADY_UTILIZED"]);
    assert!(l.reasons.contains("D-A"), "{}", l.reasons);
    assert_eq!(remaining(&db, "TH-S", 3).await.as_deref(), Some("100"));
    assert_eq!(db.store.utilizations("TH", "TH-S").await.expect("uses").len(), 2);
    // Without the policy, the second declaration is fine.
    let (l, _) = decide1(&db, &ctx(), b.id, granted(1, Some(claim("TH-S", 1, "1", "100", false)))).await;
    assert_eq!(l.outcome, "granted");
    assert_chain_ok(&db).await;
}

async fn quantity_exceeded_denies_without_consuming(db: Db) {
    let o = officer(&db).await;
    let a = declare(&db, &o, "D-A", vec![line(1, Some("TH-Q")), line(2, Some("TH-Q"))]).await;
    let mut d = granted(1, Some(claim("TH-Q", 1, "10.001", "10", false)));
    d.reasons = "[{\"code\":\"LATE_PROOF\",\"detail\":\"x\"}]".into();
    let (l, u) = decide1(&db, &ctx(), a.id, d).await;
    assert_eq!((l.outcome.as_str(), u, l.consumed.clone()), ("denied", None, None));
    assert_eq!(codes(&l), ["LATE_PROOF", "QUANTITY_EXCEEDED"], "the refusal is appended");
    assert!(l.reasons.contains("10.001 claimed, 10 remaining"), "{}", l.reasons);
    assert_eq!(remaining(&db, "TH-Q", 1).await.as_deref(), Some("10"));
    assert!(db.store.utilizations("TH", "TH-Q").await.expect("uses").is_empty());
    // Exactly what is left is fine; then nothing is.
    let (l, _) = decide1(&db, &ctx(), a.id, granted(2, Some(claim("TH-Q", 1, "10", "10", false)))).await;
    assert_eq!(l.outcome, "granted");
    let (l, _) = decide1(&db, &ctx(), a.id, granted(1, Some(claim("TH-Q", 1, "0.1", "10", false)))).await;
    assert_eq!(codes(&l), ["QUANTITY_EXCEEDED"]);
    // A denied decision with a claim consumes nothing.
    let mut d = denied(1, "HS_MISMATCH");
    d.claim = Some(claim("TH-Q", 2, "1", "5", false));
    let (l, u) = decide1(&db, &ctx(), a.id, d).await;
    assert_eq!((codes(&l), u), (vec!["HS_MISMATCH".to_owned()], None));
    assert_eq!(remaining(&db, "TH-Q", 2).await, None);
    assert_chain_ok(&db).await;
}

async fn bad_decisions_change_nothing(db: Db) {
    let o = officer(&db).await;
    let a = declare(&db, &o, "D-A", vec![line(1, Some("TH-X"))]).await;
    let head = db.store.audit_head().await.expect("head");
    let ok = || granted(1, Some(claim("TH-X", 1, "1", "10", false)));
    assert_eq!(code(db.store.decide_lines(&ctx(), a.id + 1000, vec![ok()]).await), "NOT_FOUND");
    assert_eq!(code(db.store.decide_lines(&ctx(), a.id, vec![ok(), granted(7, None)]).await), "NOT_FOUND");
    let mut bad = granted(1, None);
    bad.reasons = "{\"code\":\"X\"}".into();
    assert_eq!(code(db.store.decide_lines(&ctx(), a.id, vec![bad]).await), "LINE_DECISION_INVALID");
    let zero = granted(1, Some(claim("TH-X", 1, "0", "10", false)));
    assert_eq!(code(db.store.decide_lines(&ctx(), a.id, vec![zero]).await), "LINE_DECISION_INVALID");
    assert_eq!(code(db.store.decide_lines(&ctx(), a.id, vec![ok(), ok()]).await), "LINE_DECISION_INVALID");
    assert_eq!(db.store.audit_head().await.expect("head"), head);
    assert!(db.store.ledger("TH", "TH-X").await.expect("ledger").is_empty());
    let stored = db.store.declaration(a.id).await.expect("get").expect("exists");
    assert_eq!(stored.lines[0].outcome, "pending");
    // A granted line without a claim (nothing to consume) is fine.
    let (l, u) = decide1(&db, &ctx(), a.id, granted(1, None)).await;
    assert_eq!((l.outcome.as_str(), u), ("granted", None));
}

async fn redeciding_a_granted_line_gives_the_quantity_back(db: Db) {
    let o = officer(&db).await;
    let a = declare(&db, &o, "D-A", vec![line(1, Some("TH-R"))]).await;
    let b = declare(&db, &o, "D-B", vec![line(1, Some("TH-R"))]).await;
    decide1(&db, &ctx(), a.id, granted(1, Some(claim("TH-R", 1, "40", "100", true)))).await;
    assert_eq!(remaining(&db, "TH-R", 1).await.as_deref(), Some("60"));
    // Re-granting the same line does not consume twice.
    let (_, u) = decide1(&db, &ctx(), a.id, granted(1, Some(claim("TH-R", 1, "45", "100", true)))).await;
    assert_eq!(u.expect("utilization").remaining_after, "55");
    let (l, u) = decide1(&db, &ctx_at(60), a.id, denied(1, "VERIFICATION_DENIED")).await;
    assert_eq!((l.outcome.as_str(), l.consumed.clone(), u), ("denied", None, None));
    assert_eq!(codes(&l), ["VERIFICATION_DENIED"]);
    assert_eq!(l.decided_at, Some(timestamp(&at(60))));
    let rows = db.store.ledger("TH", "TH-R").await.expect("ledger");
    assert_eq!((rows[0].remaining.as_str(), rows[0].declarations.len()), ("100", 0));
    assert!(db.store.utilizations("TH", "TH-R").await.expect("uses").is_empty());
    // Released: another declaration may now use it under the single-declaration policy.
    let (l, u) = decide1(&db, &ctx(), b.id, granted(1, Some(claim("TH-R", 1, "100", "100", true)))).await;
    assert_eq!((l.outcome.as_str(), u.expect("utilization").remaining_after.as_str()), ("granted", "0"));
    let acts = actions(&db).await;
    assert_eq!(acts.iter().filter(|a| *a == "ledger.released").count(), 2);
    assert_chain_ok(&db).await;
}

/// Opens every pooled connection (PostgreSQL opens them lazily), so that racing tasks start
/// their transactions together instead of one by one behind connection set-up.
async fn warm_pool(db: &Db) {
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let s = db.store.clone();
            tokio::spawn(async move { s.list_declarations(&Page::first(None, 1), true).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("warm");
    }
}

async fn over_use_race_grants_exactly_what_is_there(db: Db) {
    let o = officer(&db).await;
    let mut ids = vec![];
    for i in 0..20 {
        ids.push(declare(&db, &o, &format!("D-{i:02}"), vec![line(1, Some("TH-RACE"))]).await.id);
    }
    warm_pool(&db).await;
    let mut tasks = vec![];
    for id in ids {
        let s = db.store.clone();
        tasks.push(tokio::spawn(async move {
            s.decide_lines(&ctx(), id, vec![granted(1, Some(claim("TH-RACE", 1, "7", "100", false)))]).await
        }));
    }
    let (mut won, mut lost) = (0, 0);
    for t in tasks {
        let out = t.await.expect("task").expect("decide");
        match out[0].0.outcome.as_str() {
            "granted" => won += 1,
            _ => {
                assert_eq!(codes(&out[0].0), ["QUANTITY_EXCEEDED"]);
                lost += 1;
            }
        }
    }
    assert_eq!((won, lost), (14, 6));
    assert_eq!(remaining(&db, "TH-RACE", 1).await.as_deref(), Some("2"));
    let uses = db.store.utilizations("TH", "TH-RACE").await.expect("uses");
    assert_eq!(uses.len(), 14);
    let total: Decimal = uses.iter().map(|u| dec(&u.quantity)).sum();
    assert_eq!(total, dec("98"));
    // remaining_after runs down 93, 86, ..., 2 without repeats: every claim saw the one before.
    let mut after: Vec<Decimal> = uses.iter().map(|u| dec(&u.remaining_after)).collect();
    after.sort();
    assert_eq!(after, (0..14).map(|i| Decimal::from(2 + 7 * i)).collect::<Vec<_>>());
    assert_chain_ok(&db).await;
}

async fn single_declaration_race_one_declaration_wins(db: Db) {
    let o = officer(&db).await;
    let mut ids = vec![];
    for i in 0..10 {
        ids.push(declare(&db, &o, &format!("D-{i:02}"), vec![line(1, Some("TH-ONE"))]).await.id);
    }
    warm_pool(&db).await;
    // Every declaration claims a different item: only a certificate-wide lock keeps them apart.
    let mut tasks = vec![];
    for (i, id) in ids.into_iter().enumerate() {
        let s = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let c = claim("TH-ONE", i as i32 + 1, "1", "10", true);
            s.decide_lines(&ctx(), id, vec![granted(1, Some(c))]).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        let out = t.await.expect("task").expect("decide");
        if out[0].0.outcome == "granted" {
            won += 1;
        } else {
            assert_eq!(codes(&out[0].0), ["ALREADY_UTILIZED"]);
        }
    }
    assert_eq!(won, 1);
    assert_eq!(db.store.utilizations("TH", "TH-ONE").await.expect("uses").len(), 1);
    assert_chain_ok(&db).await;
}

async fn pending_lines_and_lines_using(db: Db) {
    let o = officer(&db).await;
    let a = declare(
        &db,
        &o,
        "D-A",
        vec![line(1, Some("TH-P")), line(2, Some("TH-P")), line(3, None), line(4, Some("TH-Q"))],
    )
    .await;
    let b = declare(&db, &o, "D-B", vec![line(1, Some("TH-P"))]).await;
    assert_eq!(
        db.store.pending_lines_for("TH", "TH-P").await.expect("pending"),
        [(a.id, 1), (a.id, 2), (b.id, 1)]
    );
    assert_eq!(db.store.pending_lines_for("VN", "TH-P").await.expect("pending"), []);
    assert_eq!(db.store.lines_using("TH", "TH-P").await.expect("using"), []);
    db.store
        .decide_lines(
            &ctx(),
            a.id,
            vec![granted(1, Some(claim("TH-P", 1, "1", "10", false))), denied(2, "HS_MISMATCH")],
        )
        .await
        .expect("decide");
    decide1(&db, &ctx(), b.id, granted(1, Some(claim("TH-P", 1, "1", "10", false)))).await;
    assert_eq!(db.store.pending_lines_for("TH", "TH-P").await.expect("pending"), []);
    assert_eq!(db.store.lines_using("TH", "TH-P").await.expect("using"), [(a.id, 1), (b.id, 1)]);
    assert_eq!(db.store.pending_lines_for("TH", "TH-Q").await.expect("pending"), [(a.id, 4)]);
}

async fn a_pending_line_is_linked_to_its_certificate_once(db: Db) {
    let o = officer(&db).await;
    let a = declare(&db, &o, "D-L", vec![line(1, None), line(2, Some("TH-P"))]).await;
    assert_eq!(db.store.lines_using("TH", "TH-M").await.expect("using"), []);
    db.store.link_pending_line(&ctx(), a.id, 1, "TH", "TH-M").await.expect("linked");
    assert_eq!(db.store.pending_lines_for("TH", "TH-M").await.expect("pending"), [(a.id, 1)]);
    decide1(&db, &ctx(), a.id, granted(1, Some(claim("TH-M", 1, "1", "10", false)))).await;
    assert_eq!(db.store.lines_using("TH", "TH-M").await.expect("using"), [(a.id, 1)]);
    let again = db.store.link_pending_line(&ctx(), a.id, 1, "TH", "TH-N").await.expect_err("once");
    assert_eq!(again.code(), "LINE_NOT_PENDING");
    let named = db.store.link_pending_line(&ctx(), a.id, 2, "TH", "TH-N").await.expect_err("named");
    assert_eq!(named.code(), "LINE_NOT_PENDING");
    let unknown = db.store.link_pending_line(&ctx(), a.id, 9, "TH", "TH-N").await.expect_err("unknown");
    assert_eq!(unknown.code(), "NOT_FOUND");
    let d = db.store.declaration(a.id).await.expect("get").expect("exists");
    assert_eq!(
        (d.lines[0].eco_country.as_deref(), d.lines[0].eco_number.as_deref()),
        (Some("TH"), Some("TH-M"))
    );
    assert!(db.store.verify_audit().await.expect("audit").is_ok());
}

async fn decision_statuses_are_written_with_the_decision(db: Db) {
    let o = officer(&db).await;
    let a = declare(&db, &o, "D-S", vec![line(1, Some("TH-S"))]).await;
    // A failing message builder stores nothing: the line stays pending, nothing is consumed.
    let err = db
        .store
        .decide_lines_with(
            &ctx(),
            a.id,
            vec![granted(1, Some(claim("TH-S", 1, "4", "10", false)))],
            Box::new(|_| Err("no key".into())),
        )
        .await
        .expect_err("refused");
    assert_eq!(err.code(), "SIGNING_FAILED");
    let d = db.store.declaration(a.id).await.expect("get").expect("exists");
    assert_eq!(d.lines[0].outcome, "pending");
    assert_eq!(remaining(&db, "TH-S", 1).await, None);
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (0, 0));
    // A working one sees the stored lines (with the consumption) and its messages are queued.
    let out = db
        .store
        .decide_lines_with(
            &ctx(),
            a.id,
            vec![granted(1, Some(claim("TH-S", 1, "4", "10", false)))],
            Box::new(|stored| {
                assert_eq!(stored[0].1.as_ref().map(|u| u.remaining_after.as_str()), Some("6"));
                Ok(vec![msg("status-1")])
            }),
        )
        .await
        .expect("decided");
    assert_eq!(out[0].0.outcome, "granted");
    assert_eq!(db.store.outbox_counts().await.expect("counts"), (1, 0));
    assert!(db.store.verify_audit().await.expect("audit").is_ok());
}

/// A line decision with a duty as `originlink_customs::duty` writes it: MFN `mfn`, `pref` if
/// the preference is granted, in USD.
fn with_duty(mut d: LineDecision, mfn: &str, pref: &str) -> LineDecision {
    let duty = |due: &str| {
        serde_json::json!({
            "mfn": {"amount": mfn, "currency": "USD"},
            "preferential": {"amount": pref, "currency": "USD"},
            "due": {"amount": due, "currency": "USD"},
            "preference_granted": {"amount": "0.00", "currency": "USD"},
        })
    };
    d.duty = serde_json::json!({"if_granted": duty(pref), "if_denied": duty(mfn)}).to_string();
    d
}

async fn revenue_sums_by_month_agreement_and_partner(db: Db) {
    let o = officer(&db).await;
    let day = |m: u32, d: u32| chrono::NaiveDate::from_ymd_opt(2026, m, d).expect("date");
    let dated = |number: &str, date: chrono::NaiveDate, lines: Vec<NewLine>| {
        let mut d = new_decl(number, "Phnom Penh Imports", &o, lines);
        d.declaration_date = date;
        d
    };
    let mut rcep = line(2, Some("TH-D"));
    rcep.agreement = Some("RCEP".into());
    let mut vn = line(1, Some("VN-E"));
    vn.eco_country = Some("VN".into());
    let a = db
        .store
        .create_declaration(&ctx(), dated("D-A", day(3, 1), vec![line(1, Some("TH-D")), rcep, line(3, None)]))
        .await
        .expect("declare");
    let b = db.store.create_declaration(&ctx(), dated("D-B", day(3, 31), vec![vn])).await.expect("declare");
    let c = db.store.create_declaration(&ctx(), dated("D-C", day(4, 1), vec![line(1, Some("TH-F"))])).await;
    let c = c.expect("declare");
    // Decided in the reverse order of their dates, and days after.
    decide1(&db, &ctx_at(0), c.id, with_duty(granted(1, None), "10.00", "0.00")).await;
    decide1(&db, &ctx_at(0), b.id, with_duty(denied(1, "CO_EXPIRED"), "7.25", "1.00")).await;
    let claimed = granted(1, Some(claim("TH-D", 1, "1", "10", false)));
    decide1(&db, &ctx_at(86_400 * 30), a.id, with_duty(claimed, "15.00", "2.50")).await;
    decide1(&db, &ctx_at(86_400 * 31), a.id, with_duty(granted(2, None), "4.00", "1.00")).await;
    let groups = |from, to| {
        let s = db.store.clone();
        async move {
            s.revenue_groups(from, to)
                .await
                .expect("groups")
                .into_iter()
                .map(|g| (g.month, g.agreement, g.partner, g.lines, g.mfn_minor, g.due_minor))
                .collect::<Vec<_>>()
        }
    };
    let (atiga, rcep) = (Some("ATIGA".to_owned()), Some("RCEP".to_owned()));
    let (th, vn) = (Some("TH".to_owned()), Some("VN".to_owned()));
    assert_eq!(
        groups(day(3, 1), day(5, 1)).await,
        [
            ("2026-03".into(), atiga.clone(), th.clone(), 1, 1500, 250),
            ("2026-03".into(), atiga.clone(), vn.clone(), 1, 725, 725),
            ("2026-03".into(), rcep.clone(), th.clone(), 1, 400, 100),
            ("2026-04".into(), atiga.clone(), th.clone(), 1, 1000, 0),
        ],
        "granted lines owe the preferential duty, denied ones the MFN duty; pending ones are left out"
    );
    assert_eq!(
        groups(day(3, 2), day(4, 1)).await,
        [("2026-03".into(), atiga, vn, 1, 725, 725)],
        "end excluded"
    );
    let unsummed = db.store.lines_unsummed(day(3, 1), day(5, 1), 10).await.expect("unsummed");
    let unsummed: Vec<_> = unsummed.into_iter().map(|(n, l)| (n, l.line_no, l.outcome)).collect();
    assert_eq!(unsummed, [("D-A".into(), 3, "pending".into())]);
    // A line decided with a duty that could not be computed is listed, not summed.
    let mut broken = granted(1, None);
    broken.duty = "{\"error\":\"NO_MFN_RATE\"}".into();
    decide1(&db, &ctx_at(86_400 * 40), c.id, broken).await;
    let unsummed = db.store.lines_unsummed(day(3, 1), day(5, 1), 10).await.expect("unsummed");
    assert_eq!(
        unsummed.iter().map(|(n, l)| (n.as_str(), l.line_no)).collect::<Vec<_>>(),
        [("D-A", 3), ("D-C", 1)]
    );
    assert_eq!(db.store.lines_unsummed(day(3, 1), day(5, 1), 1).await.expect("limit").len(), 1);
    assert_eq!(groups(day(4, 1), day(5, 1)).await, []);
}

async fn pair_seen_needs_a_granted_line(db: Db) {
    let seen = |exporter: &'static str, key: &'static str, name: &'static str, other_than: i64| {
        let store = db.store.clone();
        async move {
            let pair = Pair { exporter, importer_key: key, importer_name: name, other_than };
            store.pair_seen(pair).await.expect("seen")
        }
    };
    let o = officer(&db).await;
    // Stored without a key (as before schema version 5): compared by the name as written.
    assert!(!seen("Siam Exports", "KH:name:phnom penh imports", "Phnom Penh Imports", 0).await);
    let a = declare(&db, &o, "D-A", vec![line(1, Some("TH-1")), line(2, Some("TH-1"))]).await;
    decide1(&db, &ctx(), a.id, denied(1, "HS_MISMATCH")).await;
    assert!(
        !seen("Siam Exports", "KH:name:phnom penh imports", "Phnom Penh Imports", 0).await,
        "denied lines do not count"
    );
    decide1(&db, &ctx(), a.id, granted(2, None)).await;
    assert!(seen("Siam Exports", "KH:name:phnom penh imports", "Phnom Penh Imports", 0).await);
    assert!(!seen("Siam Exports", "KH:name:phnom penh imports", "Phnom Penh Imports", a.id).await, "itself");
    assert!(!seen("Siam Exports", "KH:name:other", "Other Importer", 0).await);
    assert!(!seen("Other Exporter", "KH:name:phnom penh imports", "Phnom Penh Imports", 0).await);
    // With a key: the key decides, whatever the name's spelling.
    let mut d = new_decl("D-B", "PHNOM PENH IMPORTS CO., LTD.", &o, vec![line(1, Some("TH-2"))]);
    d.importer_key = Some("KH:name:phnom penh imports".into());
    d.lines[0].exporter = Some("Lanna Exports".into());
    let b = db.store.create_declaration(&ctx(), d).await.expect("declare");
    decide1(&db, &ctx(), b.id, granted(1, None)).await;
    assert!(seen("Lanna Exports", "KH:name:phnom penh imports", "Phnom Penh Imports Co Ltd", 0).await);
    assert!(
        !seen("Lanna Exports", "KH:name:other", "PHNOM PENH IMPORTS CO., LTD.", 0).await,
        "the key, not the name"
    );
}

// ---- importing customs: verification requests ----

fn new_verification(id: &str, deadline_secs: i64) -> NewVerification {
    NewVerification {
        message_id: id.into(),
        issuing_country: "TH".into(),
        number: "TH-V".into(),
        partner: "TH".into(),
        questions: "[\"Show the bill of materials\"]".into(),
        deadline: at(deadline_secs),
    }
}

async fn verification_lifecycle_and_overdue(db: Db) {
    let v = db
        .store
        .create_verification(&ctx(), new_verification("vr-1", 100), vec![msg("vr-1")])
        .await
        .expect("raise");
    assert_eq!(
        (v.direction.as_str(), v.status.as_str(), v.partner.as_str(), v.deadline.clone()),
        ("outgoing", "open", "TH", timestamp(&at(100)))
    );
    assert_eq!((v.answer.clone(), v.outcome.clone(), v.answered_at.clone()), (None, None, None));
    assert_eq!(db.store.verification(v.id).await.expect("get"), Some(v.clone()));
    assert_eq!(claim_ids(&db, 0, 10).await, ["vr-1"], "the request envelope is in the outbox");
    assert_eq!(
        code(db.store.create_verification(&ctx(), new_verification("vr-1", 5), vec![]).await),
        "VERIFICATION_EXISTS"
    );
    let head = db.store.audit_head().await.expect("head");
    assert_eq!(
        code(db.store.create_verification(&ctx(), new_verification("vr-2", 50), vec![msg("vr-1")]).await),
        "MESSAGE_EXISTS"
    );
    assert_eq!(db.store.audit_head().await.expect("head"), head, "nothing created when the message fails");
    let w = db.store.create_verification(&ctx(), new_verification("vr-2", 50), vec![]).await.expect("raise");

    // Overdue by the injected clock: deadline strictly before now, oldest first.
    let overdue = |secs: i64| {
        let s = db.store.clone();
        async move {
            s.overdue_verifications(at(secs))
                .await
                .expect("overdue")
                .into_iter()
                .map(|v| v.id)
                .collect::<Vec<_>>()
        }
    };
    assert!(overdue(50).await.is_empty());
    assert_eq!(overdue(51).await, [w.id]);
    assert_eq!(overdue(1_000_000).await, [w.id, v.id]);

    // Our own request cannot be answered here; the response is recorded.
    assert_eq!(
        code(db.store.answer_verification(&ctx(), v.id, "x", "confirmed", vec![]).await),
        "VERIFICATION_NOT_OPEN"
    );
    assert_eq!(
        code(db.store.record_verification_answer(&ctx(), "vr-1", "x", "maybe").await),
        "VERIFICATION_OUTCOME_INVALID"
    );
    assert_eq!(code(db.store.record_verification_answer(&ctx(), "nope", "x", "denied").await), "NOT_FOUND");
    let done = db
        .store
        .record_verification_answer(&ctx_at(200), "vr-1", "No records kept", "denied")
        .await
        .expect("answer");
    assert_eq!(
        (done.status.as_str(), done.outcome.as_deref(), done.answer.as_deref(), done.answered_at.clone()),
        ("denied", Some("denied"), Some("No records kept"), Some(timestamp(&at(200))))
    );
    assert_eq!(
        code(db.store.record_verification_answer(&ctx(), "vr-1", "x", "confirmed").await),
        "VERIFICATION_NOT_OPEN"
    );
    assert_eq!(overdue(1_000_000).await, [w.id], "an answered request is not overdue");
    assert_eq!(db.store.denied_verifications("TH").await.expect("denied"), 1);
    assert_eq!(db.store.denied_verifications("VN").await.expect("denied"), 0);
    let listed = db.store.list_verifications(Some("outgoing"), 10).await.expect("list");
    assert_eq!(listed.iter().map(|v| v.id).collect::<Vec<_>>(), [w.id, v.id]);
    assert!(db.store.list_verifications(Some("incoming"), 10).await.expect("list").is_empty());
    assert_eq!(db.store.list_verifications(None, 1).await.expect("list").len(), 1);
    assert_eq!(db.store.verification(999_999).await.expect("get"), None);
    let acts = actions(&db).await;
    assert_eq!(acts, ["verification.created", "verification.created", "verification.answered"]);
    assert_chain_ok(&db).await;
}

async fn verification_messages_through_the_inbox(db: Db) {
    let request = |mid: &str, request_id: &str| {
        inbound(
            mid,
            InboundKind::VerificationRequest {
                request_message_id: request_id.into(),
                issuing_country: "KH".into(),
                number: "KH-2026-000001".into(),
                questions: "[\"q\"]".into(),
                deadline: at(90 * 86_400),
            },
            vec![],
        )
    };
    // Held messages are kept as JSON: the new kinds survive the round trip.
    let json = serde_json::to_string(&request("m1", "req-1")).expect("json");
    assert_eq!(serde_json::from_str::<Inbound>(&json).expect("back"), request("m1", "req-1"));

    let out = db
        .store
        .apply_inbound(&ctx(), vec![request("m1", "req-1"), request("m1", "req-1"), request("m2", "req-1")])
        .await
        .expect("apply");
    assert_eq!(out, [Applied::Applied, Applied::Duplicate, Applied::Duplicate]);
    let incoming = db.store.list_verifications(Some("incoming"), 10).await.expect("list");
    assert_eq!(incoming.len(), 1);
    let v = &incoming[0];
    assert_eq!(
        (v.message_id.as_str(), v.partner.as_str(), v.number.as_str(), v.status.as_str(), v.deadline.clone()),
        ("req-1", "TH", "KH-2026-000001", "open", timestamp(&at(90 * 86_400)))
    );
    assert_eq!(
        code(db.store.answer_verification(&ctx(), v.id, "ok", "answered", vec![]).await),
        "VERIFICATION_OUTCOME_INVALID"
    );
    let answered = db
        .store
        .answer_verification(&ctx(), v.id, "Origin confirmed", "confirmed", vec![msg("resp-1")])
        .await
        .expect("answer");
    assert_eq!(
        (answered.status.as_str(), answered.answer.as_deref()),
        ("confirmed", Some("Origin confirmed"))
    );
    assert_eq!(claim_ids(&db, 0, 10).await, ["resp-1"]);
    assert_eq!(
        code(db.store.answer_verification(&ctx(), v.id, "again", "denied", vec![]).await),
        "VERIFICATION_NOT_OPEN"
    );
    assert_eq!(code(db.store.answer_verification(&ctx(), 999_999, "x", "denied", vec![]).await), "NOT_FOUND");

    // Responses to our own requests.
    let ours =
        db.store.create_verification(&ctx(), new_verification("req-out", 100), vec![]).await.expect("raise");
    let response = |mid: &str, request_id: &str, outcome: &str| {
        let kind = InboundKind::VerificationResponse {
            request_message_id: request_id.into(),
            answer: format!("answer in {mid}"),
            outcome: outcome.into(),
        };
        inbound(mid, kind, vec![])
    };
    // From another country than the one asked: refused, the request stays open (issue 11,
    // defect 6).
    let mut wrong = response("w1", "req-out", "confirmed");
    wrong.from_country = "VN".into();
    assert_eq!(
        db.store.apply_inbound(&ctx_at(20), vec![wrong]).await.expect("apply"),
        [Applied::Refused(ANSWER_FROM_WRONG_PEER)]
    );
    assert_eq!(db.store.verification(ours.id).await.expect("get").expect("exists").status, "open");
    assert_eq!(db.store.refused(10).await.expect("refused")[0].code, ANSWER_FROM_WRONG_PEER);
    let out = db
        .store
        .apply_inbound(
            &ctx_at(30),
            vec![
                response("r1", "req-out", "denied"),
                response("r1", "req-out", "denied"),
                response("r2", "req-out", "confirmed"),
                response("r3", "req-unknown", "confirmed"),
            ],
        )
        .await
        .expect("apply");
    assert_eq!(out, [Applied::Applied, Applied::Duplicate, Applied::Duplicate, Applied::Applied]);
    let got = db.store.verification(ours.id).await.expect("get").expect("exists");
    assert_eq!(
        (got.status.as_str(), got.answer.as_deref(), got.answered_at.clone()),
        ("denied", Some("answer in r1"), Some(timestamp(&at(30))))
    );
    assert_eq!(db.store.denied_verifications("TH").await.expect("denied"), 1);
    // The incoming request ("req-1") has the same id space as nothing of ours: a response to it
    // matches no outgoing request.
    let out = db.store.apply_inbound(&ctx(), vec![response("r4", "req-1", "denied")]).await.expect("apply");
    assert_eq!(out, [Applied::Applied]);
    assert_eq!(db.store.verification(v.id).await.expect("get").expect("exists").status, "confirmed");
    let acts = actions(&db).await;
    assert_eq!(
        acts,
        [
            "verification.created",
            "verification.answered",
            "verification.created",
            "verification.answered",
            "verification.unmatched",
            "verification.unmatched",
        ]
    );
    assert_eq!(db.store.inbox_len().await.expect("inbox"), 6);
    assert_chain_ok(&db).await;
}
mod scratch;
