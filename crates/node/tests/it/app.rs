//! The use cases driven directly, with no HTTP in between: what the JSON API and the console
//! both stand on. Approve runs on SQLite and on PostgreSQL.

use originlink_node::app::applications::{self, Apply, Document};
use originlink_node::app::{Kind, page};
use originlink_store::{ApplicationStatus, CertificateStatus, User, token_hash};

use crate::api::{Node, document, node, node_on};

async fn user(n: &Node, token: &str) -> User {
    n.state.store.user_by_token_hash(&token_hash(token)).await.expect("storage").expect("user")
}

async fn approve_through_the_app_layer(postgres: bool) {
    let n = node_on(postgres).await;
    let state = &n.state;
    let (exporter, other, officer) =
        (user(&n, &n.exporter_a).await, user(&n, &n.exporter_b).await, user(&n, &n.officer).await);

    let input = Apply {
        document: Document::Json(document(1)),
        self_assessment: None,
        replaces: None,
        back_to_back_of: None,
    };
    let draft = applications::apply(state, &exporter, input).await.expect("apply");
    assert_eq!(draft.status, ApplicationStatus::Draft);
    assert_eq!(Some(draft.company_id), exporter.company_id);

    // Not submitted yet: approving is a conflict with a code, and nothing is issued.
    let early = applications::approve(state, &officer, draft.id).await.expect_err("draft");
    assert_eq!((early.kind, early.code), (Kind::Conflict, "APPLICATION_NOT_SUBMITTED"));

    // Another company's exporter: the application does not exist for it.
    let hidden = applications::submit(state, &other, draft.id).await.expect_err("not theirs");
    assert_eq!(hidden.kind, Kind::NotFound);

    applications::submit(state, &exporter, draft.id).await.expect("submit");
    let cert = applications::approve(state, &officer, draft.id).await.expect("approve");
    assert_eq!(cert.number, format!("KH-{}-000001", n.year));
    assert_eq!((cert.version, cert.status), (1, CertificateStatus::Issued));
    assert_eq!(cert.application_id, draft.id);
    // Stored exactly as signed: the signed XML names the number and verifies under the trust
    // store of the authority's own certificate.
    let signed = String::from_utf8(cert.signed.clone()).expect("utf-8");
    assert!(signed.contains(&cert.number), "the signed document carries its number");
    assert!(signed.contains("<ds:Signature") || signed.contains("<Signature"), "signed");

    let approved = applications::get(state, &exporter, draft.id).await.expect("own application");
    assert_eq!((approved.status, approved.certificate_id), (ApplicationStatus::Approved, Some(cert.id)));
    // Approving twice issues nothing more.
    let again = applications::approve(state, &officer, draft.id).await.expect_err("already approved");
    assert_eq!(again.kind, Kind::Conflict);
    let officer_page = page(&officer, None, None).expect("page");
    assert_eq!(applications::certificates(state, &officer_page, None, None).await.expect("list").len(), 1);
    // The exporter of another company sees none of it.
    let other_page = page(&other, None, None).expect("page");
    assert!(applications::certificates(state, &other_page, None, None).await.expect("list").is_empty());
    assert_eq!(
        applications::certificate(state, &other, cert.id).await.expect_err("hidden").kind,
        Kind::NotFound
    );
    // Every step is in the audit chain, and the chain verifies.
    let events = state.store.audit_events(0, i64::MAX, 1000).await.expect("audit");
    assert!(events.iter().any(|e| e.action == "certificate.issued"), "{events:?}");
    state.store.verify_audit().await.expect("storage").expect("the audit chain verifies");
    assert_eq!(state.metrics.approvals.get(), 1);
}

#[tokio::test]
async fn approve_through_the_app_layer_on_sqlite() {
    approve_through_the_app_layer(false).await;
}

#[tokio::test]
async fn approve_through_the_app_layer_on_postgres() {
    approve_through_the_app_layer(true).await;
}

/// A node configured as KH but holding TH's keys would issue certificates every destination
/// refuses: it does not start, and says which keys it holds.
#[tokio::test]
async fn a_node_does_not_start_with_another_countrys_keys() {
    let dir = std::env::temp_dir().join(format!("originlink_keys_country_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let now = chrono::Utc::now();
    let keys =
        originlink_trust::keys::init_authority("TH", "Department of Foreign Trade", now.date_naive(), None)
            .expect("keys");
    originlink_trust::keystore::AuthorityDir(dir.join("keys")).write(&keys).expect("write keys");
    let toml = r#"
[server]
listen = "127.0.0.1:0"
[database]
url = "sqlite:node.db"
[authority]
id = "KH-MOC"
name = "Ministry of Commerce"
country = "KH"
keys = "keys"
number_pattern = "KH-{year}-{seq:6}"
"#;
    let config = originlink_node::Config::parse(toml, &dir, Vec::new()).expect("config");
    let err = originlink_node::AppState::build(&config, std::sync::Arc::new(originlink_node::SystemClock))
        .await
        .expect_err("TH keys on a KH node");
    assert_eq!(err.code(), "KEYS_COUNTRY_MISMATCH");
    assert!(err.to_string().contains("TH") && err.to_string().contains("KH"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The officer is warned, on the application itself, when the document's exporter is not the
/// applicant's company, and when the attached self-assessment says the good does not
/// originate or assessed another product than the document's goods.
#[tokio::test]
async fn an_officer_is_warned_about_a_self_assessment_that_does_not_support_the_application() {
    let n = node().await;
    let exporter = user(&n, &n.exporter_a).await;
    let apply = |self_assessment| Apply {
        document: Document::Json(document(2)),
        self_assessment,
        replaces: None,
        back_to_back_of: None,
    };
    // Furniture (HS 94.03) from non-originating furniture parts of the same heading worth
    // 90 % of the price: no change of heading, 10 % regional value content.
    let not_originating = serde_json::json!({
        "agreement": "ATIGA", "exporting_country": "KH",
        "product": { "hs": "9403.60" },
        "valuation": { "basis": "FOB", "value": "100.00", "currency": "USD" },
        "materials": [ { "name": "furniture parts", "hs": "9403.99", "value": "90.00", "status": "non-originating" } ]
    });
    let app = applications::apply(&n.state, &exporter, apply(Some(not_originating))).await.expect("apply");
    let codes: Vec<&str> = applications::warnings(&app).iter().map(|w| w.code).collect();
    // The test exporter's company ("Angkor Rice") is not the document's exporter either.
    assert_eq!(codes, ["EXPORTER_NOT_APPLICANT", "ASSESSMENT_NOT_ORIGINATING", "ASSESSMENT_OTHER_PRODUCT"]);
    // The document's own exporter (written with other case and punctuation) applying without
    // a self-assessment: nothing to warn about.
    let ctx = originlink_store::Ctx::new("test", chrono::Utc::now());
    let (owner, _) = originlink_node::add_user(
        n.state.store.as_ref(),
        &ctx,
        "agro",
        originlink_store::Role::Exporter,
        Some("ANGKOR AGRO EXPORTS CO LTD"),
        "KH",
    )
    .await
    .expect("exporter of the document's company");
    let plain = applications::apply(&n.state, &owner, apply(None)).await.expect("apply");
    assert_eq!(applications::warnings(&plain), []);
}

/// Console sign-in through the use cases, on the node's clock: a wrong name or password is
/// the same refusal; five wrong passwords make every try wait, the right one included, until
/// the pause is over; a session ends when idle 30 minutes, 12 hours after sign-in, or at
/// sign-out; a disabled user's session stops; oversized or unknown ids are no session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sessions_expire_and_wrong_passwords_wait() {
    use std::sync::Arc;

    use chrono::Duration;
    use originlink_node::app::sessions;
    use originlink_store::{Ctx, UserChange};

    let n = node().await;
    let at = |state: &originlink_node::AppState, later: Duration| {
        let mut s = state.clone();
        s.clock = Arc::new(originlink_node::FixedClock(state.clock.now() + later));
        s
    };
    let alice = user(&n, &n.exporter_a).await;
    let ctx = Ctx::new("test", n.state.clock.now());
    let password = "a long enough password";
    for (bad, code) in [("short", "PASSWORD_TOO_SHORT"), (&"x".repeat(257)[..], "PASSWORD_TOO_LONG")] {
        let e = sessions::set_password(n.state.store.as_ref(), &ctx, alice.id, bad).await.expect_err(code);
        assert_eq!((e.kind, e.code, e.field.as_deref()), (Kind::Invalid, code, Some("password")));
    }
    sessions::set_password(n.state.store.as_ref(), &ctx, alice.id, password).await.expect("password");

    // Wrong password and unknown name: one answer.
    for (name, pw) in [("alice", "not the password"), ("nobody", password)] {
        let e = sessions::sign_in(&n.state, name, pw).await.expect_err("refused");
        assert_eq!((e.kind, e.code), (Kind::Unauthenticated, "SIGN_IN_FAILED"), "{name}");
    }

    // A session: found by its id, never by another or an oversized one.
    let s = sessions::sign_in(&n.state, "alice", password).await.expect("signed in");
    assert_eq!(s.user, alice);
    let found = sessions::session(&n.state, &s.id).await.expect("storage").expect("in force");
    assert_eq!(found.csrf, s.csrf);
    assert!(sessions::session(&n.state, &"0".repeat(64)).await.expect("storage").is_none());
    assert!(sessions::session(&n.state, &"a".repeat(5000)).await.expect("storage").is_none());
    let again = sessions::sign_in(&n.state, "alice", password).await.expect("signed in again");
    assert_ne!(again.id, s.id, "every sign-in is a new session id");

    // Idle for 31 minutes: ended, for good.
    let idle = at(&n.state, Duration::minutes(31));
    assert!(sessions::session(&idle, &s.id).await.expect("storage").is_none(), "idle");
    assert!(sessions::session(&n.state, &s.id).await.expect("storage").is_none(), "ended when found idle");

    // Used every 25 minutes, still 12 hours after sign-in is too old (700 minutes in force,
    // 725 not).
    let mut used = Duration::zero();
    while used < Duration::hours(12) {
        used += Duration::minutes(25);
        let later = at(&n.state, used);
        let alive = sessions::session(&later, &again.id).await.expect("storage").is_some();
        assert_eq!(alive, used <= Duration::hours(12), "after {} minutes", used.num_minutes());
    }

    // Sign-out ends it; disabling ends the others.
    let third = sessions::sign_in(&n.state, "alice", password).await.expect("signed in");
    let fourth = sessions::sign_in(&n.state, "alice", password).await.expect("signed in");
    sessions::sign_out(&n.state, &alice, &third.id).await.expect("sign out");
    assert!(sessions::session(&n.state, &third.id).await.expect("storage").is_none(), "signed out");
    n.state.store.change_user(&ctx, alice.id, UserChange::Disable).await.expect("disable");
    assert!(sessions::session(&n.state, &fourth.id).await.expect("storage").is_none(), "disabled");
    let e = sessions::sign_in(&n.state, "alice", password).await.expect_err("disabled");
    assert_eq!(e.code, "SIGN_IN_FAILED", "a disabled user is refused like a wrong password");
    n.state.store.change_user(&ctx, alice.id, UserChange::Enable).await.expect("enable");

    // Five wrong passwords: the next try waits, the right password included, until it is over.
    for _ in 0..5 {
        sessions::sign_in(&n.state, "alice", "wrong password").await.expect_err("wrong");
    }
    let e = sessions::sign_in(&n.state, "alice", password).await.expect_err("throttled");
    assert_eq!((e.kind, e.code), (Kind::Throttled, "SIGN_IN_THROTTLED"));
    assert!(e.message.contains("Wait 30 seconds"), "{}", e.message);
    let later = at(&n.state, Duration::seconds(31));
    sessions::sign_in(&later, "alice", password).await.expect("the pause is over");
}
