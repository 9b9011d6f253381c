//! The gateway operator's console in Chromium, served by a real gateway in this process (the
//! region's, KH and TH pulling so that nothing moves unless the test moves it): real
//! envelopes sent by KH's and TH's nodes through the gateway's API, TH pulling some of its
//! messages and refusing one. Then: a wrong password refused, signing in, the members with
//! their depths, a message found by certificate number and country, the dead letter retried
//! from the page (and a forged post without the CSRF token refused), the traffic chart's
//! figures equal to the JSON endpoint's, the trust list, signing out. Every page is checked
//! with axe-core and photographed into `target/console-shots/operator-*.png`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use axum::http::Method;
use chrono::Utc;
use originlink_browser::Browser;
use originlink_exchange::client::PeerClient;
use originlink_exchange::server::Shutdown;
use originlink_exchange::tls::Identity;
use originlink_exchange::{
    Ack, Batch, BusinessStatus, CertRef, Delivery, Endpoint, Envelope, ExchangeError, Header, MessageType,
    StatusBody,
};
use originlink_gateway::queue::State;
use originlink_model::CountryCode;
use serde_json::{Value, json};

use crate::support::{Pages, WAIT, click_and_wait, http, path, submit_sign_in};

const COOKIE: &str = originlink_console::operator::COOKIE;

/// The region's gateway with its operator's console, in this process; stopped and its folder
/// removed when dropped.
struct Hub {
    region: originlink_region::Region,
    queue: Arc<dyn originlink_gateway::queue::Queue>,
    console: String,
    console_addr: std::net::SocketAddr,
    stop: Shutdown,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.stop.trigger();
        let _ = std::fs::remove_dir_all(&self.region.dir);
    }
}

impl Hub {
    async fn start() -> anyhow::Result<Hub> {
        let dir = std::env::temp_dir().join(format!(
            "originlink-console-operator-{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        let options =
            originlink_region::Options { countries: vec!["KH".into(), "TH".into()], ..Default::default() };
        let region = originlink_region::setup(&dir, &options).await.context("region set-up")?;
        // Both members pull: no push worker moves a message behind the test's back.
        let env = [("ORIGINLINK__GATEWAY__PULL_ONLY".to_owned(), r#"["KH", "TH"]"#.to_owned())];
        let config = originlink_gateway::Config::load_with_env(&region.gateway_config, env)?;
        let gateway = originlink_gateway::Gateway::build(&config, Arc::new(originlink_service::SystemClock))
            .await
            .map_err(|e| anyhow::anyhow!("gateway: {e}"))?;
        let console = originlink_console::Console::operator(
            config.console.as_ref().context("the region gives its gateway a console")?,
            gateway.shared(),
            &config.gateway.id,
        )
        .await?;
        ensure!(Some(console.url()) == region.gateway_console_url, "the console where the region says");
        let (url, console_addr, queue, stop) =
            (console.url(), console.addr(), gateway.queue(), gateway.shutdown_handle());
        tokio::spawn(console.run_until_stopped(stop.clone()));
        tokio::spawn(gateway.run_until_stopped());
        Ok(Hub { region, queue, console: url, console_addr, stop })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.console)
    }

    /// A client of the gateway's API with the TLS identity in `keys` (`tls.crt`, `tls.key`).
    fn client(&self, keys: &Path) -> anyhow::Result<PeerClient> {
        let id = Identity::load(&keys.join("tls.crt"), &keys.join("tls.key"))?;
        let gw = originlink_trust::keystore::load_certs(&self.region.dir.join("gateway/tls.crt"))?;
        let tls = originlink_exchange::tls::client_config(&id, vec![gw[0].der().to_vec()])?;
        Ok(PeerClient::new(&self.region.gateway_url, tls, Duration::from_secs(10))?)
    }

    /// `country`'s node's client and key (its node TLS key signs its envelopes).
    fn node(&self, country: &str) -> anyhow::Result<(PeerClient, originlink_trust::PrivateKey)> {
        let keys = self.region.dir.join(country).join("keys");
        let key = originlink_trust::keystore::load_private_key(&keys.join("tls.key"))?;
        Ok((self.client(&keys)?, key))
    }
}

fn cc(c: &str) -> CountryCode {
    CountryCode::parse(c).expect("country")
}

/// A status update from `from` to `to` about `to`'s certificate `number`, sealed by `key`.
fn status_update(from: &str, to: &str, number: &str, key: &originlink_trust::PrivateKey) -> Envelope {
    let header = Header {
        id: originlink_exchange::id::new_id(Utc::now()),
        correlation_id: None,
        from: Endpoint { country: cc(from), node: Some(format!("{from}-NODE")) },
        to: Endpoint { country: cc(to), node: None },
        kind: MessageType::StatusUpdate,
        certificate: Some(CertRef { country: cc(to), number: number.to_owned(), version: 1 }),
        payload_type: "application/json".into(),
        created_at: Utc::now(),
    };
    Envelope::seal(header, StatusBody::new(BusinessStatus::Received).to_json(), key).expect("seal")
}

async fn call(c: &PeerClient, method: Method, path: &str, body: Vec<u8>) -> anyhow::Result<Value> {
    let (status, bytes) = c.request(method, path, body).await?;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    ensure!(status.is_success(), "{path}: {status} {v}");
    Ok(v)
}

/// What the page's charts say per minute, as the JSON endpoint says it.
const CHART_JS: &str = r#"
const by = {};
for (const g of document.querySelectorAll('#throughput g.minute')) {
  by[g.dataset.minute] = { minute: g.dataset.minute, received: +g.dataset.received, delivered: +g.dataset.delivered };
}
for (const g of document.querySelectorAll('#latency g.minute')) {
  const m = by[g.dataset.minute] || (by[g.dataset.minute] = { minute: g.dataset.minute });
  m.latency_mean_ms = g.dataset.latencyMean === '' ? null : +g.dataset.latencyMean;
  m.latency_max_ms = g.dataset.latencyMax === '' ? null : +g.dataset.latencyMax;
}
return Object.values(by).sort((a, b) => a.minute < b.minute ? -1 : 1);
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_watches_members_finds_a_message_retries_a_dead_letter_and_reads_the_traffic() {
    let hub = Hub::start().await.expect("the gateway and its console start");
    let password = hub.region.operators["operator"].clone();

    // KH's node sends five status updates to TH, TH's node two to KH: real envelopes through
    // the gateway's API.
    let (kh, kh_key) = hub.node("KH").expect("KH's node");
    let (th, th_key) = hub.node("TH").expect("TH's node");
    let to_th: Vec<Envelope> =
        (1..=5).map(|n| status_update("KH", "TH", &format!("TH-2026-00000{n}"), &kh_key)).collect();
    let to_kh: Vec<Envelope> =
        (1..=2).map(|n| status_update("TH", "KH", &format!("KH-2026-00000{n}"), &th_key)).collect();
    // KH's go under its signed manifest (protocol version 2), TH's one by one (version 1).
    let manifest = originlink_exchange::Manifest::seal(
        Endpoint { country: cc("KH"), node: None },
        to_th.iter().map(|e| e.raw.as_slice()),
        &kh_key,
        Utc::now(),
    )
    .expect("a manifest");
    let v2 = originlink_exchange::body::BatchV2::encode(
        [manifest.raw.as_slice()],
        to_th.iter().map(|e| e.raw.as_slice()),
    );
    let v1 = Batch::encode(to_kh.iter().map(|e| e.raw.as_slice()));
    for (client, path, body) in
        [(&kh, originlink_exchange::MESSAGES_PATH_V2, v2), (&th, originlink_exchange::MESSAGES_PATH, v1)]
    {
        let answer = call(client, Method::POST, path, body).await.unwrap();
        assert!(
            answer["acks"].as_array().is_some_and(|a| a.iter().all(|a| a["result"] == "accepted")),
            "{answer}"
        );
    }
    // TH pulls three: it takes two and refuses the first, a dead letter.
    let pulled = call(&th, Method::POST, "/exchange/v1/pull", br#"{"max":3}"#.to_vec()).await.unwrap();
    let ids: Vec<String> = pulled["messages"]
        .as_array()
        .expect("a batch")
        .iter()
        .map(|m| m["id"].as_str().expect("an id").to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    let dead_id = ids[0].clone();
    let refusal =
        ExchangeError::new("ENVELOPE_SIGNATURE_INVALID", Some("signature"), "refused by the test node");
    let acks = vec![
        Ack::refused(&ids[0], &refusal),
        Ack::ok(&ids[1], Delivery::Delivered),
        Ack::ok(&ids[2], Delivery::Delivered),
    ];
    let acked = json!({ "acks": acks }).to_string().into_bytes();
    assert_eq!(call(&th, Method::POST, "/exchange/v1/pull/ack", acked).await.unwrap()["settled"], 3);
    let waiting = to_th.iter().map(|e| &e.header).find(|h| !ids.contains(&h.id)).expect("one still waits");

    // The console's answers carry its security headers; nothing is served without a session.
    let r = http(hub.console_addr, "GET", "/sign-in", None, None).await.unwrap();
    assert!(r.header("content-security-policy").is_some_and(|c| c.contains("default-src 'none'")), "{r:?}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    let login =
        r.set_cookies().into_iter().find(|c| c.starts_with(&format!("{COOKIE}-login="))).unwrap_or_default();
    assert!(
        login.contains("HttpOnly") && login.contains("Secure") && login.contains("SameSite=Strict"),
        "{login}"
    );
    let r = http(hub.console_addr, "GET", "/dead", None, None).await.unwrap();
    assert_eq!((r.status, r.header("location")), (303, Some("/sign-in?next=/dead")));

    let b = Browser::start().await.expect("chromium starts");
    let mut pages = Pages::new();

    // A wrong password is refused; the right one signs in.
    b.goto(&hub.url("/")).await.unwrap();
    b.wait_for_text("User name", WAIT).await.unwrap();
    submit_sign_in(&b, "operator", "not the password").await.unwrap();
    b.wait_for_text("The user name or the password is not right.", WAIT).await.unwrap();
    assert!(!b.text().await.unwrap().contains("Sign out"));
    pages.check(&b, "operator-sign-in-refused").await;
    submit_sign_in(&b, "operator", &password).await.unwrap();
    b.wait_for_text("Members and their queues", WAIT).await.unwrap();
    let session = b.cookie(COOKIE).await.unwrap().expect("a session cookie");
    assert!(session.http_only && session.secure, "{session:?}");

    // Members: each with its depth, mode, last delivery and dead letters.
    let depth =
        |c: &str| format!("return document.querySelector('#member-{c} [data-pending]').dataset.pending;");
    assert_eq!(b.execute(&depth("TH"), vec![]).await.unwrap(), json!("2"));
    assert_eq!(b.execute(&depth("KH"), vec![]).await.unwrap(), json!("2"));
    let text = b.text().await.unwrap();
    assert!(text.contains("Cambodia (KH)") && text.contains("Thailand (TH)"), "{text}");
    assert!(text.contains("Pulls from the gateway"), "{text}");
    assert!(text.contains("refused by the recipient: ENVELOPE_SIGNATURE_INVALID"), "TH's last error: {text}");
    assert!(text.contains("Never"), "KH never had a delivery: {text}");
    assert!(text.contains("Needs your attention"), "{text}");
    assert!(
        text.contains("Thailand: one dead letter waits for you to retry it or let it go."),
        "the dead letter is pointed out: {text}"
    );
    pages.check(&b, "operator-members").await;

    // A message found by its certificate number and issuing country, then its page.
    b.click_link("Find a message").await.unwrap();
    b.wait_for_text("By certificate", WAIT).await.unwrap();
    let number = &waiting.certificate.as_ref().expect("a certificate").number;
    b.fill("Certificate number", number).await.unwrap();
    b.fill("Issuing country", "XX1").await.unwrap();
    click_and_wait(&b, "Find messages about this certificate", "There is a problem").await.unwrap();
    assert_eq!(crate::support::field_value(&b, "number").await, *number, "what was typed is kept");
    pages.check(&b, "operator-find-errors").await;
    b.fill("Issuing country", "th").await.unwrap();
    click_and_wait(&b, "Find messages about this certificate", "Messages found").await.unwrap();
    let text = b.text().await.unwrap();
    assert!(text.contains(&waiting.id) && text.contains(&format!("{number} (TH)")), "{text}");
    pages.check(&b, "operator-find").await;
    b.click_link(&waiting.id).await.unwrap();
    b.wait_for_text("never what it carries", WAIT).await.unwrap();
    let text = b.text().await.unwrap();
    assert!(
        text.to_lowercase().contains("waiting") && text.contains("Cambodia (KH) → Thailand (TH)"),
        "{text}"
    );
    assert!(!text.contains("\"status\""), "no payload on the page: {text}");
    assert!(
        text.contains(&format!("The sender's signed manifest for its batch, SHA-256 {}", manifest.sha256())),
        "KH's manifest vouched for it: {text}"
    );
    assert_eq!(path(&b).await, format!("/messages/{}", waiting.id));
    pages.check(&b, "operator-message").await;

    // The dead letter: a post without the session's CSRF token changes nothing; Retry does.
    b.click_link("Dead letters").await.unwrap();
    b.wait_for_text(&dead_id, WAIT).await.unwrap();
    pages.check(&b, "operator-dead").await;
    let cookie = format!("{COOKIE}={}", session.value);
    let forged = http(
        hub.console_addr,
        "POST",
        &format!("/dead/{dead_id}/retry"),
        Some(&cookie),
        Some(&[("csrf", "forged")]),
    )
    .await
    .unwrap();
    assert_eq!(forged.status, 403, "{forged:?}");
    assert_eq!(hub.queue.track(&dead_id).await.unwrap().expect("kept").state, State::Failed);
    click_and_wait(&b, &format!("Retry message {dead_id}"), "is back in the queue for TH").await.unwrap();
    assert_eq!(hub.queue.track(&dead_id).await.unwrap().expect("kept").state, State::Pending);
    assert!(b.text().await.unwrap().contains("No dead letters"));
    pages.check(&b, "operator-dead-retried").await;

    // Traffic: the chart's figures are the JSON endpoint's (read again if a minute turned).
    let operator = hub.client(&hub.region.dir.join("gateway")).expect("the gateway's own identity");
    let mut compared = false;
    for _ in 0..3 {
        let before = call(&operator, Method::GET, "/exchange/v1/traffic", Vec::new()).await.unwrap();
        b.goto(&hub.url("/traffic")).await.unwrap();
        b.wait_for_text("Traffic over the last hour", WAIT).await.unwrap();
        let chart = b.execute(CHART_JS, vec![]).await.unwrap();
        let after = call(&operator, Method::GET, "/exchange/v1/traffic", Vec::new()).await.unwrap();
        if before != after {
            continue;
        }
        let minutes = after["minutes"].as_array().expect("minutes");
        assert_eq!(minutes.len(), 60);
        assert_eq!(&chart, &after["minutes"], "the chart draws the endpoint's figures");
        let received: u64 = minutes.iter().map(|m| m["received"].as_u64().unwrap_or(0)).sum();
        let delivered: u64 = minutes.iter().map(|m| m["delivered"].as_u64().unwrap_or(0)).sum();
        assert_eq!((received, delivered), (7, 2), "{after}");
        compared = true;
        break;
    }
    assert!(compared, "the traffic kept changing between two reads");
    assert!(b.text().await.unwrap().contains("7 messages received and 2 delivered"));
    pages.check(&b, "operator-traffic").await;

    // The trust list in force, with each node's certificate fingerprint.
    b.click_link("Trust list").await.unwrap();
    b.wait_for_text("Next list due", WAIT).await.unwrap();
    let kh_cert = originlink_trust::keystore::load_certs(&hub.region.dir.join("KH/keys/tls.crt")).unwrap();
    let fingerprint: Vec<String> = kh_cert[0].sha256().iter().map(|b| format!("{b:02X}")).collect();
    let text = b.text().await.unwrap();
    assert!(text.contains(&fingerprint.join(":")), "KH's node fingerprint: {text}");
    assert!(text.contains("DEMO-HUB") && text.contains("Ministry of Commerce"), "{text}");
    pages.check(&b, "operator-trust-list").await;

    // Signing out ends the session.
    click_and_wait(&b, "Sign out", "User name").await.unwrap();
    let r = http(hub.console_addr, "GET", "/", Some(&cookie), None).await.unwrap();
    assert_eq!((r.status, r.header("location")), (303, Some("/sign-in")), "the old session is gone");

    b.close().await.unwrap();
    pages.finish();
}

/// The operators' sign-in rules on the gateway's clock, as a node's people have them: a wrong
/// name and a wrong password refused alike, a pause after five wrong passwords (the right one
/// included), sessions ending after 30 minutes unused or 12 hours after sign-in, signing out,
/// and a new password ending every session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_sessions_expire_pause_and_end() {
    use originlink_console::operator::sessions::{self, ABSOLUTE, FREE_TRIES, IDLE};
    use originlink_node::app::sessions::Throttle;

    let dir = std::env::temp_dir().join(format!("originlink-operator-sessions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite:{}", dir.join("gw.db").display());
    let queue = originlink_gateway::queue::open(&url, 1).await.expect("open");
    queue.migrate().await.expect("migrate");
    let q = queue.as_ref();
    // Whole seconds: the queue keeps microseconds.
    let t0 = chrono::DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now");
    let minutes = |m: i64| t0 + chrono::Duration::minutes(m);
    let pw = "harbour lights at dawn";
    assert!(sessions::set_password(q, "ops", pw, t0).await.expect("added"));
    assert_eq!(
        sessions::set_password(q, "two words", pw, t0).await.unwrap_err().code,
        "OPERATOR_NAME_INVALID"
    );

    let throttle = Throttle::default();
    let nobody = sessions::sign_in(q, &throttle, "nobody", pw, t0).await.unwrap_err();
    let wrong = sessions::sign_in(q, &throttle, "ops", "not the password", t0).await.unwrap_err();
    assert_eq!(
        (nobody.code, nobody.message.as_str()),
        (wrong.code, wrong.message.as_str()),
        "the same refusal"
    );
    for _ in 1..FREE_TRIES {
        sessions::sign_in(q, &throttle, "ops", "not the password", t0).await.unwrap_err();
    }
    let paused = sessions::sign_in(q, &throttle, "OPS", pw, t0).await.unwrap_err();
    assert_eq!(paused.code, "SIGN_IN_THROTTLED", "even the right password waits");
    let s = sessions::sign_in(q, &throttle, "ops", pw, minutes(1)).await.expect("after the pause");

    // Used every 20 minutes it lives until 12 hours after sign-in, not a minute more.
    let mut at = 1;
    while minutes(at + 20) - minutes(1) <= ABSOLUTE {
        at += 20;
        assert!(sessions::session(q, &s.id, minutes(at)).await.expect("read").is_some(), "at {at} min");
    }
    assert!(
        sessions::session(q, &s.id, minutes(1) + ABSOLUTE + chrono::Duration::minutes(1))
            .await
            .expect("read")
            .is_none()
    );
    // Unused for more than 30 minutes it has ended.
    let s = sessions::sign_in(q, &throttle, "ops", pw, t0).await.expect("sign in");
    let idle = t0 + IDLE + chrono::Duration::seconds(1);
    assert!(sessions::session(q, &s.id, idle).await.expect("read").is_none());
    assert!(sessions::session(q, &s.id, t0).await.expect("read").is_none(), "ended for good");
    // Signing out, and a new password, end sessions.
    let s = sessions::sign_in(q, &throttle, "ops", pw, t0).await.expect("sign in");
    let session = sessions::session(q, &s.id, t0).await.expect("read").expect("in force");
    assert_eq!((session.operator.as_str(), session.csrf.as_str()), ("ops", s.csrf.as_str()));
    sessions::sign_out(q, &s.id).await.expect("sign out");
    assert!(sessions::session(q, &s.id, t0).await.expect("read").is_none());
    let s = sessions::sign_in(q, &throttle, "ops", pw, t0).await.expect("sign in");
    assert!(!sessions::set_password(q, "ops", "monsoon clouds over the river", t0).await.expect("set"));
    assert!(sessions::session(q, &s.id, t0).await.expect("read").is_none(), "a new password ends it");
    assert!(sessions::session(q, &"x".repeat(200), t0).await.expect("read").is_none(), "oversized id");
    let _ = std::fs::remove_dir_all(&dir);
}
