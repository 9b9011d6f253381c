//! The notifier against real servers: e-mails through a real SMTP server (Python's
//! `aiosmtpd`, writing a maildir), webhook calls to an HTTP server here that checks their
//! signature, and the console's list of each person.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use originlink_node::app::applications::{self, Apply, Document};
use originlink_node::app::notifications;
use originlink_node::notify::{NotificationsConfig, Notifier, WebhookConfig};
use originlink_store::{Ctx, User, token_hash};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::{Node, document, node};

async fn user(n: &Node, token: &str) -> User {
    n.state.store.user_by_token_hash(&token_hash(token)).await.expect("storage").expect("user")
}

/// An application of `exporter`'s, submitted.
async fn submitted(n: &Node, exporter: &User) -> originlink_store::Application {
    let input = Apply {
        document: Document::Json(document(1)),
        self_assessment: None,
        replaces: None,
        back_to_back_of: None,
    };
    let draft = applications::apply(&n.state, exporter, input).await.expect("apply");
    applications::submit(&n.state, exporter, draft.id).await.expect("submit")
}

/// An SMTP server (`aiosmtpd`) delivering into `maildir`; killed when dropped.
struct Smtp(Child);

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

async fn smtp(maildir: &Path) -> (Smtp, String) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &addr, "-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m aiosmtpd (scripts/setup.sh installs it)");
    let server = Smtp(child);
    let start = Instant::now();
    while tokio::net::TcpStream::connect(&addr).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "aiosmtpd did not start on {addr}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (server, addr)
}

/// The messages in a maildir's `new/`, waiting up to 10 s for `count` of them.
async fn mails(maildir: &Path, count: usize) -> Vec<String> {
    let start = Instant::now();
    loop {
        let mut found: Vec<String> = std::fs::read_dir(maildir.join("new"))
            .map(|d| d.flatten().filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect())
            .unwrap_or_default();
        if found.len() >= count || start.elapsed() > Duration::from_secs(10) {
            found.sort();
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A webhook receiver: every request's signature header and body, answered 200.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<(String, String)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hooks/originlink", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else { continue };
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() < len {
                        continue;
                    }
                    let signature = head
                        .lines()
                        .find_map(|l| l.strip_prefix("x-originlink-signature:").map(|v| v.trim().to_owned()))
                        .unwrap_or_default();
                    let _ = tx.send((signature, body.to_owned()));
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                }
            });
        }
    });
    (url, rx)
}

/// A maildir for `aiosmtpd` to make (it makes `tmp/`, `new/` and `cur/` only when the
/// folder is not there).
fn maildir(n: &Node) -> PathBuf {
    n.dir.join("maildir")
}

#[tokio::test]
async fn people_are_told_in_the_console_by_email_and_by_signed_webhook() {
    let n = node().await;
    let state = &n.state;
    let (exporter, officer) = (user(&n, &n.exporter_a).await, user(&n, &n.officer).await);
    let company = exporter.company_id.expect("an exporter's company");
    let ctx = Ctx::new("test", state.clock.now());
    notifications::set_email(state.store.as_ref(), &ctx, officer.id, Some("bob@moc.gov.kh"))
        .await
        .expect("email");
    notifications::set_email(state.store.as_ref(), &ctx, exporter.id, Some("alice@angkor-rice.kh"))
        .await
        .expect("email");
    let bad =
        notifications::set_email(state.store.as_ref(), &ctx, officer.id, Some("bob@x>\r\nRCPT TO:<eve@y.z"))
            .await
            .expect_err("refused");
    assert_eq!((bad.code, bad.field.as_deref()), ("EMAIL_INVALID", Some("email")));

    let maildir = maildir(&n);
    let (_smtp, relay) = smtp(&maildir).await;
    let (url, mut calls) = receiver().await;
    let secret = b"a shared secret of the trader system";
    let secret_file = n.dir.join("webhook.secret");
    std::fs::write(&secret_file, secret).expect("secret");
    let config = NotificationsConfig {
        interval_ms: None,
        smtp: Some(relay),
        from: Some("originlink@moc.gov.kh".into()),
        webhooks: vec![WebhookConfig {
            url: url.clone(),
            audience: format!("company:{company}"),
            secret_file,
        }],
        unreachable_minutes: None,
    };
    let notifier =
        Notifier::new(state.clone(), &config, Some("https://console.moc.gov.kh".into())).expect("notifier");

    // An application submitted, then approved.
    let draft = submitted(&n, &exporter).await;
    assert_eq!(notifications::unseen(state, &officer).await.expect("unseen"), 0, "not made yet");
    let (made, sent) = notifier.step().await.expect("step");
    assert_eq!((made, sent), (1, 1), "the officers are told, by e-mail too");
    assert_eq!(notifications::unseen(state, &officer).await.expect("unseen"), 1);
    assert_eq!(notifications::unseen(state, &exporter).await.expect("unseen"), 0, "not the exporter's");
    let cert = applications::approve(state, &officer, draft.id).await.expect("approve");
    let (made, sent) = notifier.step().await.expect("step");
    assert_eq!((made, sent), (1, 2), "the exporter's company is told: an e-mail and a webhook call");
    assert_eq!(notifier.step().await.expect("step"), (0, 0), "nothing twice");

    // In the console: the officer's list, seen once shown.
    let feed = notifications::feed(state, &officer, None, 30).await.expect("feed");
    assert_eq!(feed.unseen, 1);
    assert_eq!(feed.items.len(), 1);
    let item = &feed.items[0];
    assert!(item.unseen);
    assert_eq!(item.notification.link, format!("/applications/{}", draft.id));
    assert_eq!(item.text, format!("Application {} from Angkor Rice is waiting for review.", draft.id));
    assert_eq!(notifications::unseen(state, &officer).await.expect("unseen"), 0, "seen now");
    let again = notifications::feed(state, &officer, None, 30).await.expect("feed");
    assert!(!again.items[0].unseen);
    let exporter_feed = notifications::feed(state, &exporter, None, 30).await.expect("feed");
    assert_eq!(
        exporter_feed.items.iter().map(|i| i.text.as_str()).collect::<Vec<_>>(),
        [format!("Your application {} is approved: certificate {} is issued.", draft.id, cert.number)]
    );

    // The e-mails reached the SMTP server, each to its person, with the console's link.
    let mails = mails(&maildir, 2).await;
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let to_officer = mails.iter().find(|m| m.contains("To: <bob@moc.gov.kh>")).expect("the officer's e-mail");
    assert!(to_officer.contains("Subject: OriginLink KH: Application"), "{to_officer}");
    assert!(
        to_officer.contains(&format!("https://console.moc.gov.kh/applications/{}", draft.id)),
        "{to_officer}"
    );
    let to_exporter =
        mails.iter().find(|m| m.contains("To: <alice@angkor-rice.kh>")).expect("the exporter's e-mail");
    assert!(to_exporter.contains(&cert.number), "{to_exporter}");

    // The webhook call is signed: HMAC-SHA256 of "t.body" with the shared secret.
    let (header, body) =
        tokio::time::timeout(Duration::from_secs(5), calls.recv()).await.expect("a call").expect("call");
    let (t, v1) = header.split_once(",v1=").expect("t=…,v1=…");
    let t: i64 = t.strip_prefix("t=").expect("t=").parse().expect("seconds");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    assert_eq!(v1, originlink_node::notify::signature(&key, t, body.as_bytes()));
    let wrong = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"another secret");
    assert_ne!(v1, originlink_node::notify::signature(&wrong, t, body.as_bytes()));
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["kind"], "application-approved");
    assert_eq!(json["args"]["number"], cert.number.as_str());
    assert_eq!(json["country"], "KH");
}

#[tokio::test]
async fn an_email_that_cannot_be_sent_is_kept_and_tried_again() {
    let n = node().await;
    let state = &n.state;
    let (exporter, officer) = (user(&n, &n.exporter_a).await, user(&n, &n.officer).await);
    let ctx = Ctx::new("test", state.clock.now());
    notifications::set_email(state.store.as_ref(), &ctx, officer.id, Some("bob@moc.gov.kh"))
        .await
        .expect("email");
    // Nothing listens there.
    let closed = format!("127.0.0.1:{}", free_port());
    let config = NotificationsConfig { smtp: Some(closed), ..Default::default() };
    let notifier = Notifier::new(state.clone(), &config, None).expect("notifier");
    submitted(&n, &exporter).await;
    assert_eq!(notifier.step().await.expect("step"), (1, 1));
    // Not due again at once; due again later, with the attempt counted.
    let now = state.clock.now();
    assert!(state.store.due_deliveries(now, 10).await.expect("due").is_empty());
    let later = state.store.due_deliveries(now + chrono::Duration::hours(2), 10).await.expect("due");
    assert_eq!(later.len(), 1);
    assert_eq!((later[0].attempts, later[0].target.as_str()), (1, "bob@moc.gov.kh"));
    // The console still lists it.
    assert_eq!(notifications::unseen(state, &officer).await.expect("unseen"), 1);
    // A webhook secret that cannot be read stops the notifier from being made.
    let missing = NotificationsConfig {
        webhooks: vec![WebhookConfig {
            url: "http://127.0.0.1:9/".into(),
            audience: "role:customs".into(),
            secret_file: n.dir.join("no-such-secret"),
        }],
        ..Default::default()
    };
    let e = Notifier::new(state.clone(), &missing, None).expect_err("no secret");
    assert!(e.to_string().contains("no-such-secret"), "{e}");
}

#[tokio::test]
async fn the_json_api_sets_addresses_and_lists_what_the_console_lists() {
    let n = node().await;
    let (exporter, officer) = (user(&n, &n.exporter_a).await, user(&n, &n.officer).await);
    let json = |v: serde_json::Value| Some(("application/json", v.to_string().into_bytes()));
    let path = format!("/api/v1/users/{}/email", officer.id);
    let r =
        n.call("PUT", &path, Some(&n.exporter_a), json(serde_json::json!({"email": "bob@moc.gov.kh"}))).await;
    assert_eq!(r.status, 403, "an administrator's task");
    let r = n.call("PUT", &path, Some(&n.admin), json(serde_json::json!({"email": "not an address"}))).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["code"].clone(), r.json()["field"].clone()),
        (400, "EMAIL_INVALID".into(), "email".into())
    );
    let r = n.call("PUT", &path, Some(&n.admin), json(serde_json::json!({"email": "bob@moc.gov.kh"}))).await;
    assert_eq!((r.status.as_u16(), r.json()["email"].clone()), (200, "bob@moc.gov.kh".into()));

    submitted(&n, &exporter).await;
    Notifier::new(n.state.clone(), &NotificationsConfig::default(), None)
        .expect("notifier")
        .step()
        .await
        .expect("step");
    let r = n.call("GET", "/api/v1/notifications", Some(&n.officer), None).await;
    assert_eq!(r.status, 200);
    let feed = r.json();
    assert_eq!(feed["unseen"], 1);
    assert_eq!(feed["items"][0]["kind"], "application-submitted");
    assert!(
        feed["items"][0]["text"].as_str().unwrap_or_default().contains("is waiting for review"),
        "{feed}"
    );
    // Listed once, seen: the console's count is down to none.
    assert_eq!(notifications::unseen(&n.state, &officer).await.expect("unseen"), 0);
    let r = n.call("GET", "/api/v1/notifications?before=x", Some(&n.officer), None).await;
    assert_eq!((r.status.as_u16(), r.json()["code"].clone()), (400, "INVALID_QUERY".into()));
    let r = n.call("GET", "/api/v1/notifications", Some(&n.exporter_a), None).await;
    assert_eq!(r.json()["items"], serde_json::json!([]), "nothing of the officers' for an exporter");
}

#[tokio::test]
async fn administrators_are_told_of_a_member_unreachable_and_of_a_dead_letter() {
    use std::sync::Arc;
    let n = crate::api::node_with(false, true).await;
    let (exporter, officer, admin) =
        (user(&n, &n.exporter_a).await, user(&n, &n.officer).await, user(&n, &n.admin).await);
    let draft = submitted(&n, &exporter).await;
    applications::approve(&n.state, &officer, draft.id).await.expect("approve");
    let queued = n.state.store.outbox_messages(10).await.expect("outbox");
    assert_eq!(queued.len(), 1, "the certificate for TH: {queued:?}");
    let later = |minutes: i64| {
        let mut s = n.state.clone();
        s.clock =
            Arc::new(originlink_node::FixedClock(n.state.clock.now() + chrono::Duration::minutes(minutes)));
        Notifier::new(s, &NotificationsConfig::default(), None).expect("notifier")
    };
    let state = n.state.clone();
    let told = |notifier: Notifier| {
        let (state, admin) = (state.clone(), admin.clone());
        async move {
            notifier.step().await.expect("step");
            let feed = notifications::feed(&state, &admin, None, 30).await.expect("feed");
            feed.items.into_iter().map(|i| i.text).collect::<Vec<_>>()
        }
    };
    // Never tried yet, then tried and failing for 10 minutes: nothing to tell.
    assert!(told(later(30)).await.is_empty());
    let id = &queued[0].id;
    n.state.store.outbox_failed(id, "connection refused", n.state.clock.now(), false).await.expect("failed");
    assert!(told(later(10)).await.is_empty(), "not yet the 15 minutes");
    let said = told(later(20)).await;
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with(
            "TH has taken no message for 20 minutes (1 attempts; last error: connection refused)"
        ),
        "{said:?}"
    );
    assert_eq!(told(later(40)).await.len(), 1, "once for the same message");
    // Given up: a dead letter.
    n.state.store.outbox_failed(id, "refused: NOT_A_MEMBER", n.state.clock.now(), true).await.expect("dead");
    let said = told(later(41)).await;
    assert_eq!(said.len(), 2, "{said:?}");
    assert!(said[0].contains("message to TH could not be delivered: refused: NOT_A_MEMBER"), "{said:?}");
}

#[tokio::test]
async fn text_typed_by_people_cannot_forge_an_email_or_its_headers() {
    let n = node().await;
    let state = &n.state;
    let (exporter, officer) = (user(&n, &n.exporter_a).await, user(&n, &n.officer).await);
    let ctx = Ctx::new("test", state.clock.now());
    notifications::set_email(state.store.as_ref(), &ctx, exporter.id, Some("alice@angkor-rice.kh"))
        .await
        .expect("email");
    let maildir = maildir(&n);
    let (_smtp, relay) = smtp(&maildir).await;
    let config = NotificationsConfig { smtp: Some(relay), ..Default::default() };
    let notifier = Notifier::new(state.clone(), &config, None).expect("notifier");
    let draft = submitted(&n, &exporter).await;
    // An officer's reason that tries to end the mail, start another and add a header.
    let reason = "wrong invoice\r\n.\r\nMAIL FROM:<eve@evil.example>\r\nRCPT TO:<eve@evil.example>\r\nBcc: eve@evil.example";
    match applications::reject(state, &officer, draft.id, reason).await {
        Ok(_) => {
            notifier.step().await.expect("step");
            let mails = mails(&maildir, 1).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            let mails_after = std::fs::read_dir(maildir.join("new")).map(|d| d.count()).unwrap_or_default();
            assert_eq!((mails.len(), mails_after), (1, 1), "one mail, to the exporter only: {mails:#?}");
            let mail = &mails[0];
            assert!(mail.contains("To: <alice@angkor-rice.kh>"), "{mail}");
            let headers = mail.split("\n\n").next().unwrap_or_default();
            assert!(!headers.lines().any(|l| l.starts_with("Bcc:")), "no header smuggled in: {mail}");
            assert!(mail.contains("MAIL FROM:<eve@evil.example>"), "the reason is kept, as text: {mail}");
            let subject = mail.lines().find(|l| l.starts_with("Subject:")).unwrap_or_default();
            assert!(subject.contains("rejected") && !subject.contains('\r'), "{subject}");
        }
        // Refused at the door: a reason with control characters is no reason.
        Err(e) => assert_eq!(e.field.as_deref(), Some("reason"), "{e:?}"),
    }
}
