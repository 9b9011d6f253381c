//! What the browser tests share: a country node with its console served on loopback
//! ([`ConsoleNode`]), signing in through the sign-in page, a page check (axe-core and a
//! screenshot) that collects every failure of a test before failing it ([`Pages`]), a raw
//! HTTP/1.1 client for status codes and forged posts ([`http`]), and documents for setting
//! up applications through the app layer.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use chrono::{Datelike as _, Utc};
use originlink_browser::Browser;
use originlink_console::Console;
use originlink_exchange::server::Shutdown;
use originlink_node::app::{applications, sessions};
use originlink_node::config::ConsoleConfig;
use originlink_node::{AppState, Config, SystemClock};
use originlink_store::{Ctx, Role, User};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Every user's password (long enough for the node's rule).
pub const PASSWORD: &str = "rice paddy monsoon 42";

/// How long a test waits for a page to show something.
pub const WAIT: Duration = Duration::from_secs(15);

fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A signed trust list naming `country` (with its keys) and TH, under `dir`; the
/// `[exchange]` section that uses it (as the node's own API tests do).
fn exchange_section(dir: &std::path::Path, kh: &originlink_trust::keys::AuthorityKeys) -> String {
    use originlink_trust::trustlist::{self, FORMAT, Gateway, Member, TrustList};
    let now = Utc::now();
    let today = now.date_naive();
    let operator = originlink_trust::keys::init_operator("Test Operator", today).expect("operator");
    let gw = originlink_trust::keys::init_gateway("TEST-HUB", today).expect("gateway");
    let th =
        originlink_trust::keys::init_authority("TH", "Department of Foreign Trade", today, None).expect("TH");
    let member = |code: &str, authority: &str, k: &originlink_trust::keys::AuthorityKeys, port: u16| Member {
        country: originlink_model::CountryCode::parse(code).expect("country"),
        authorities: vec![authority.to_owned()],
        ca_certs: vec![trustlist::encode_cert(&k.ca.cert_der)],
        signing_certs: vec![trustlist::encode_cert(&k.signing.cert_der)],
        nodes: vec![trustlist::Node {
            url: format!("https://127.0.0.1:{port}"),
            tls_cert: trustlist::encode_cert(&k.tls.cert_der),
        }],
        agreements: vec!["ATIGA".into(), "RCEP".into()],
        valid_from: None,
        valid_until: None,
        revoked: vec![],
    };
    let list = TrustList {
        format: FORMAT.into(),
        sequence: 1,
        issued_at: now - chrono::Duration::minutes(5),
        next_update: now + chrono::Duration::days(30),
        members: vec![
            member("KH", "Ministry of Commerce", kh, 9),
            member("TH", "Department of Foreign Trade", &th, 10),
        ],
        gateways: vec![Gateway {
            id: "TEST-HUB".into(),
            url: "https://127.0.0.1:11".into(),
            tls_cert: trustlist::encode_cert(&gw.cert_der),
        }],
    };
    let signed = list.sign(&operator.key, &operator.cert_der).expect("sign trust list");
    std::fs::write(dir.join("trust-list.json"), signed).expect("write trust list");
    originlink_trust::keystore::write_cert(&dir.join("operator.crt"), &operator.cert_der).expect("operator");
    "[exchange]\ntrust_list = \"trust-list.json\"\noperator_cert = \"operator.crt\"\n".into()
}

/// A country node on SQLite in a temporary folder, its console served over plain HTTP on
/// 127.0.0.1, and its people, each with [`PASSWORD`]: alice (exporter, Angkor Rice), carol
/// (exporter, Bayon Foods), bob (issuing officer), erin (administrator). Dropping it stops
/// the console and removes the folder.
pub struct ConsoleNode {
    /// The node's use cases and state.
    pub state: AppState,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The console's address.
    pub addr: std::net::SocketAddr,
    /// The session cookie's name.
    pub cookie: String,
    /// The node's country.
    pub country: String,
    pub alice: User,
    pub carol: User,
    pub bob: User,
    pub erin: User,
    shutdown: Shutdown,
    dir: PathBuf,
}

impl Drop for ConsoleNode {
    fn drop(&mut self) {
        self.shutdown.trigger();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl ConsoleNode {
    /// A KH node with an exchange to a TH member (never reached: nothing is delivered).
    pub async fn start() -> ConsoleNode {
        Self::start_with("KH", true).await
    }

    /// A node of `country` (`KH` or `TH`), with or without an `[exchange]`.
    pub async fn start_with(country: &str, exchange: bool) -> ConsoleNode {
        let dir = std::env::temp_dir().join(unique("originlink-console"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let now = Utc::now();
        let (authority_id, authority) = match country {
            "KH" => ("KH-MOC", "Ministry of Commerce"),
            _ => ("TH-DFT", "Department of Foreign Trade"),
        };
        let city = if country == "KH" { "Phnom Penh" } else { "Bangkok" };
        let keys =
            originlink_trust::keys::init_authority(country, authority, now.date_naive(), None).expect("keys");
        originlink_trust::keystore::AuthorityDir(dir.join("keys")).write(&keys).expect("write keys");
        let exchange =
            if exchange && country == "KH" { exchange_section(&dir, &keys) } else { String::new() };
        let toml = format!(
            r#"
[server]
listen = "127.0.0.1:0"
[database]
url = "sqlite:node.db"
[authority]
id = "{authority_id}"
name = "{authority}"
country = "{country}"
city = "{city}"
keys = "keys"
number_pattern = "{country}-{{year}}-{{seq:6}}"
{exchange}"#
        );
        let config = Config::parse(&toml, &dir, Vec::new()).expect("config");
        let store = originlink_store::open(config.database.url.expose()).await.expect("open store");
        store.migrate().await.expect("migrate");
        drop(store);
        let state = AppState::build(&config, Arc::new(SystemClock)).await.expect("state");
        let ctx = Ctx::new("test", now);
        let mut users = Vec::new();
        for (name, role, company) in [
            ("alice", Role::Exporter, Some("Angkor Rice")),
            ("carol", Role::Exporter, Some("Bayon Foods")),
            ("bob", Role::IssuingOfficer, None),
            ("erin", Role::Admin, None),
        ] {
            let (user, _token) =
                originlink_node::add_user(state.store.as_ref(), &ctx, name, role, company, country)
                    .await
                    .expect("add user");
            users.push(user);
        }
        // The four argon2id hashes at once.
        let set = |id: i64| {
            let (state, ctx) = (state.clone(), ctx.clone());
            tokio::spawn(async move {
                sessions::set_password(state.store.as_ref(), &ctx, id, PASSWORD).await.map(|_| ())
            })
        };
        let handles: Vec<_> = users.iter().map(|u| set(u.id)).collect();
        for h in handles {
            h.await.expect("join").expect("set password");
        }
        let console = Console::build(
            &ConsoleConfig { listen: "127.0.0.1:0".into(), tls_cert: None, tls_key: None, public_url: None },
            state.clone(),
        )
        .await
        .expect("console binds");
        let base = console.url();
        let addr = console.addr();
        let shutdown = Shutdown::default();
        tokio::spawn(console.run_until_stopped(shutdown.clone()));
        let mut users = users.into_iter();
        let mut next = || users.next().expect("user");
        ConsoleNode {
            state,
            base,
            addr,
            cookie: format!("__Host-originlink-{country}"),
            country: country.to_owned(),
            alice: next(),
            carol: next(),
            bob: next(),
            erin: next(),
            shutdown,
            dir,
        }
    }

    /// The node's folder (its keys under `keys/`).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The console's URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The certificate number pattern's year.
    pub fn year(&self) -> i32 {
        Utc::now().year()
    }

    /// A session for `name` through the use case (not the page): its id (the cookie's value)
    /// and CSRF token.
    pub async fn session(&self, name: &str) -> sessions::Started {
        sessions::sign_in(&self.state, name, PASSWORD).await.expect("sign in through the use case")
    }

    /// A draft application of `user` through the use case.
    pub async fn apply(&self, user: &User, document: Value, self_assessment: Option<Value>) -> i64 {
        let input = applications::Apply {
            document: applications::Document::Json(document),
            self_assessment,
            replaces: None,
            back_to_back_of: None,
        };
        applications::apply(&self.state, user, input).await.expect("apply").id
    }

    /// A submitted application of `user` through the use cases.
    pub async fn submitted(&self, user: &User, document: Value, self_assessment: Option<Value>) -> i64 {
        let id = self.apply(user, document, self_assessment).await;
        applications::submit(&self.state, user, id).await.expect("submit");
        id
    }

    /// An issued certificate of `user`'s application (approved by bob): (application id,
    /// certificate id, number).
    pub async fn issued(&self, user: &User, company: &str, seq: u32) -> (i64, i64, String) {
        let id = self.submitted(user, document(company, seq), None).await;
        let c = applications::approve(&self.state, &self.bob, id).await.expect("approve");
        (id, c.id, c.number)
    }

    /// The status of application `id` now.
    pub async fn status(&self, id: i64) -> String {
        applications::get(&self.state, &self.bob, id).await.expect("get").status.as_str().to_owned()
    }
}

/// A valid edi3 JSON application from KH to TH with one goods item, naming `company` as
/// exporter.
pub fn document(company: &str, seq: u32) -> Value {
    let mut cert = sample_cert(seq);
    cert.exporter.name = company.to_owned();
    serde_json::from_str(&originlink_formats::json::write(&cert)).expect("edi3 json")
}

fn sample_cert(seq: u32) -> originlink_model::Certificate {
    let kh = originlink_model::CountryCode::parse("KH").expect("KH");
    let th = originlink_model::CountryCode::parse("TH").expect("TH");
    let date = Utc::now().date_naive();
    let mut cert = originlink_model::sample::sample(originlink_model::Agreement::Atiga, kh, th, date, 1, seq);
    cert.number = None;
    cert.certification = None;
    cert
}

/// A self-assessment (`qualify` request) for the goods of [`document`]`(_, seq)` that finds
/// them not originating: one non-originating material of the product's own subheading worth
/// 95% of the FOB value (no tariff shift, no regional value content).
pub fn not_originating_assessment(seq: u32) -> Value {
    let cert = sample_cert(seq);
    let item = &cert.items[0];
    let fob = item.fob.as_ref().expect("sample FOB");
    let amount = fob.amount();
    let material = (amount * originlink_model::Decimal::new(95, 2)).round_dp(2);
    json!({
        "agreement": "ATIGA",
        "exporting_country": "KH",
        "product": { "hs": item.hs.dotted(), "description": item.description },
        "valuation": { "basis": "FOB", "value": amount.to_string(), "currency": fob.currency().to_string() },
        "materials": [
            { "name": "Imported parts", "hs": item.hs.dotted(), "value": material.to_string(), "origin": "CN", "status": "non-originating" }
        ]
    })
}

/// Signs `name` in through the sign-in page (from wherever the browser is) and waits for the
/// first page of their role.
pub async fn sign_in(b: &Browser, node: &ConsoleNode, name: &str, password: &str) -> anyhow::Result<()> {
    b.goto(&node.url("/sign-in")).await?;
    submit_sign_in(b, name, password).await?;
    b.wait_for_text("Sign out", WAIT).await.with_context(|| format!("{name} signs in"))
}

/// Fills and sends the sign-in form shown now.
pub async fn submit_sign_in(b: &Browser, name: &str, password: &str) -> anyhow::Result<()> {
    b.fill("User name", name).await?;
    b.fill("Password", password).await?;
    b.click_button("Sign in").await
}

/// The path (and query) of the page the browser shows.
pub async fn path(b: &Browser) -> String {
    let url = b.current_url().await.expect("current url");
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    rest.find('/').map_or_else(|| "/".to_owned(), |i| rest[i..].to_owned())
}

/// Clicks the button `text`, waits for the next page to replace this one, then for `then`
/// on it.
pub async fn click_and_wait(b: &Browser, text: &str, then: &str) -> anyhow::Result<()> {
    b.execute("window.__stale = true;", vec![]).await?;
    b.click_button(text).await?;
    let deadline = std::time::Instant::now() + WAIT;
    // A page being replaced can fail a read: try again until the deadline.
    while b.execute("return window.__stale === true;", vec![]).await.ok() != Some(json!(false)) {
        if std::time::Instant::now() >= deadline {
            let url = b.current_url().await.unwrap_or_default();
            bail!("clicking {text:?} on {url} loaded no new page within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.wait_for_text(then, WAIT).await.with_context(|| format!("after clicking {text:?}"))
}

/// The value of the form field with id `id` on the page shown now.
pub async fn field_value(b: &Browser, id: &str) -> String {
    let v = b
        .execute(
            "const e = document.getElementById(arguments[0]); return e ? e.value : null;",
            vec![json!(id)],
        )
        .await
        .expect("read a field");
    v.as_str().unwrap_or_else(|| panic!("no field with id {id:?}")).to_owned()
}

/// Each page a test visits: checked with axe-core (serious and critical violations) and
/// photographed into `target/console-shots/`. Failures are collected so that the test's
/// flow goes on; [`Pages::finish`] fails with all of them.
pub struct Pages {
    dir: PathBuf,
    failures: Vec<String>,
}

impl Pages {
    pub fn new() -> Pages {
        let dir = originlink_browser::workspace_root().expect("workspace root").join("target/console-shots");
        Pages { dir, failures: Vec::new() }
    }

    /// Checks the page shown now as `name`.
    pub async fn check(&mut self, b: &Browser, name: &str) {
        self.check_at(b, name, None).await;
    }

    /// Checks the page shown now as `name`, its screenshot scrolled to the element `selector`.
    pub async fn check_at(&mut self, b: &Browser, name: &str, selector: Option<&str>) {
        if let Some(sel) = selector {
            let js = "const e = document.querySelector(arguments[0]); if (e) e.scrollIntoView(); return !!e;";
            if b.execute(js, vec![json!(sel)]).await.ok() != Some(json!(true)) {
                self.failures.push(format!("{name}: nothing matches {sel:?} to scroll to"));
            }
        }
        let file = self.dir.join(format!("{}.png", name.replace(' ', "-")));
        if let Err(e) = b.screenshot(&file).await {
            self.failures.push(format!("screenshot of {name}: {e:#}"));
        }
        if let Err(e) = b.assert_accessible(name).await {
            self.failures.push(format!("{e:#}"));
        }
        // `CONSOLE_AXE_ALL=1`: every violation, minor and moderate ones too, on stderr.
        if std::env::var_os("CONSOLE_AXE_ALL").is_some() {
            let all = b.axe().await.unwrap_or_default();
            eprintln!("axe {name}: {} violation(s)", all.len());
            for v in all {
                eprintln!("axe {name}: {v}");
            }
        }
    }

    /// Fails with every accessibility problem found.
    pub fn finish(self) {
        assert!(self.failures.is_empty(), "accessibility:\n{}", self.failures.join("\n\n"));
    }
}

/// An answer of the raw client.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body byte for byte (a PDF), when not chunked.
    pub raw: Vec<u8>,
}

impl Resp {
    /// The first header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every `Set-Cookie` value.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// One HTTP/1.1 request to the console, on its own connection, with `cookie` (a whole
/// `Cookie` header value) and a urlencoded form body.
pub async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&[(&str, &str)]>,
) -> anyhow::Result<Resp> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(c) = cookie {
        req.push_str(&format!("Cookie: {c}\r\n"));
    }
    let body =
        form.map(|f| f.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&"));
    match &body {
        Some(b) => req.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        )),
        None => req.push_str("\r\n"),
    }
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else { bail!("no end of head in {text:?}") };
    let mut lines = head.split("\r\n");
    let status: u16 =
        lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).context("status")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").map_or(raw.len(), |i| i + 4);
    Ok(Resp { status, headers, body, raw: raw[at..].to_vec() })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A `Cookie` header carrying session `id` under `name`.
pub fn session_cookie(name: &str, id: &str) -> String {
    format!("{name}={id}")
}

/// A real SMTP server (Python's `aiosmtpd`, which `scripts/setup.sh` installs) writing what it
/// receives into a maildir; stopped when dropped.
pub struct Smtp {
    child: std::process::Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    maildir: PathBuf,
}

impl Smtp {
    /// Starts one on a free port, writing into `maildir` (which it makes: it must not exist).
    pub async fn start(maildir: &std::path::Path) -> anyhow::Result<Smtp> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &addr, "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("python3 -m aiosmtpd (scripts/setup.sh installs it)")?;
        let smtp = Smtp { child, addr, maildir: maildir.to_owned() };
        let start = std::time::Instant::now();
        while tokio::net::TcpStream::connect(&smtp.addr).await.is_err() {
            anyhow::ensure!(start.elapsed() < Duration::from_secs(20), "aiosmtpd did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(smtp)
    }

    /// The messages received, waiting up to 20 s for at least `count`.
    pub async fn mails(&self, count: usize) -> Vec<String> {
        let start = std::time::Instant::now();
        loop {
            let found: Vec<String> = std::fs::read_dir(self.maildir.join("new"))
                .map(|d| d.flatten().filter_map(|e| std::fs::read_to_string(e.path()).ok()).collect())
                .unwrap_or_default();
            if found.len() >= count || start.elapsed() > Duration::from_secs(20) {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
