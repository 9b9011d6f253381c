//! The regional gateway as an operator runs it: `keys gateway`, `trust-list build --gateway`,
//! `originlink gateway --config`, real HTTPS with client certificates (curl), `kill -9` and a
//! restart that keeps every accepted message, SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{bin, run_text, tempdir};

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn ok(args: &[&str]) -> String {
    let (code, out, err) = run_text(args, b"");
    assert_eq!(code, 0, "originlink {args:?}: {err}");
    out
}

/// Keys for KH and TH, an operator, a gateway, a signed trust list and `gw.toml`.
fn setup(name: &str) -> PathBuf {
    let dir = tempdir(name);
    for (c, a) in [("KH", "Ministry of Commerce"), ("TH", "Department of Foreign Trade")] {
        ok(&["keys", "init", "--country", c, "--authority", a, "--out", path(&dir.join(c))]);
    }
    ok(&["keys", "operator", "--out", path(&dir.join("op"))]);
    let out = ok(&["keys", "gateway", "--id", "ASW-HUB", "--out", path(&dir.join("gw"))]);
    assert!(out.contains("ASW-HUB"), "{out}");
    let gw_cert = dir.join("gw/tls.crt");
    ok(&[
        "trust-list",
        "build",
        "--member",
        path(&dir.join("KH")),
        "--member",
        path(&dir.join("TH")),
        "--endpoint",
        "TH=https://127.0.0.1:1",
        "--endpoint",
        "KH=https://127.0.0.1:2",
        "--gateway",
        &format!("ASW-HUB=https://127.0.0.1:9443={}", path(&gw_cert)),
        "--operator-key",
        path(&dir.join("op/operator.key")),
        "--operator-cert",
        path(&dir.join("op/operator.crt")),
        "--out",
        path(&dir.join("trust-list.json")),
    ]);
    std::fs::write(
        dir.join("gw.toml"),
        r#"[server]
listen = "127.0.0.1:0"

[database]
url = "sqlite:data/gw.db"

[gateway]
id = "ASW-HUB"
tls_cert = "gw/tls.crt"
tls_key = "gw/tls.key"
trust_list = "trust-list.json"
operator_cert = "op/operator.crt"
backoff_base_ms = 50
push_timeout_ms = 2000
backoff_max_ms = 500

[log]
level = "info"
"#,
    )
    .expect("config");
    dir
}

struct Gw {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Gw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path) -> Gw {
    let mut child = bin()
        .args(["gateway", "--config", path(&dir.join("gw.toml"))])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gateway starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        for _ in lines {}
    });
    let first = rx.recv_timeout(Duration::from_secs(60)).expect("the gateway reports its address");
    let url = first
        .strip_prefix("originlink gateway listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    Gw { child, url, dir: dir.to_owned() }
}

impl Gw {
    /// curl, pinning the gateway's certificate, as `who` (a `keys init` directory) or anonymous.
    fn call(&self, method: &str, p: &str, who: Option<&str>, body: Option<&[u8]>) -> (u16, Value) {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "30", "--cacert", path(&self.dir.join("gw/tls.crt")), "-X", method]);
        cmd.args(["-w", "\n%{http_code}"]);
        if let Some(w) = who {
            cmd.args(["--cert", path(&self.dir.join(w).join("tls.crt"))]);
            cmd.args(["--key", path(&self.dir.join(w).join("tls.key"))]);
        }
        let body_file = self.dir.join("body.json");
        if let Some(b) = body {
            std::fs::write(&body_file, b).expect("body");
            cmd.args(["-H", "Content-Type: application/json", "--data-binary"]);
            cmd.arg(format!("@{}", path(&body_file)));
        }
        let out = cmd.arg(format!("{}{p}", self.url)).output().expect("curl runs");
        assert!(out.status.success(), "curl {method} {p}: {}", String::from_utf8_lossy(&out.stderr));
        let mut bytes = out.stdout;
        let nl = bytes.iter().rposition(|b| *b == b'\n').expect("status line");
        let status = String::from_utf8_lossy(&bytes[nl + 1..]).parse().expect("status code");
        bytes.truncate(nl);
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, v)
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill").args([sig, &self.child.id().to_string()]).status().expect("kill runs");
        assert!(st.success());
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "the gateway did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// An envelope from KH to TH signed with KH's node key, as a one-message batch.
fn batch_from_kh(dir: &Path) -> (String, Vec<u8>) {
    use originlink_exchange::{BusinessStatus, Endpoint, Envelope, Header, MessageType, StatusBody};
    let key = originlink_trust::keystore::load_private_key(&dir.join("KH/tls.key")).expect("KH key");
    let now = chrono::Utc::now();
    let header = Header {
        id: originlink_exchange::id::new_id(now),
        correlation_id: None,
        from: Endpoint { country: originlink_model::CountryCode::parse("KH").expect("KH"), node: None },
        to: Endpoint { country: originlink_model::CountryCode::parse("TH").expect("TH"), node: None },
        kind: MessageType::StatusUpdate,
        // A status names the certificate it is about, one the recipient issued
        // (docs/protocol.md, "Bodies"): without it the gateway refuses it at the door.
        certificate: Some(originlink_exchange::CertRef {
            country: originlink_model::CountryCode::parse("TH").expect("TH"),
            number: "TH-2026-000001".into(),
            version: 1,
        }),
        payload_type: "application/json".into(),
        created_at: now,
    };
    let e = Envelope::seal(header, StatusBody::new(BusinessStatus::Received).to_json(), &key).expect("seal");
    (e.header.id.clone(), originlink_exchange::Batch::encode([e.raw.as_slice()]))
}

#[test]
fn keys_gateway_writes_a_private_key_0600_and_never_overwrites() {
    let dir = tempdir("keys-gateway");
    let out = dir.join("gw");
    ok(&["keys", "gateway", "--id", "ASW-HUB", "--out", path(&out)]);
    let cert = std::fs::read_to_string(out.join("tls.crt")).expect("tls.crt");
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(out.join("tls.key")).expect("tls.key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let (code, _, err) = run_text(&["keys", "gateway", "--id", "ASW-HUB", "--out", path(&out)], b"");
    assert_ne!(code, 0, "an existing key is never overwritten");
    assert!(err.contains("tls.key"), "{err}");
    assert_eq!(std::fs::read_to_string(out.join("tls.crt")).expect("tls.crt"), cert);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gateway_serves_survives_kill_9_and_stops_on_sigterm() {
    let dir = setup("gateway-run");
    let gw = start(&dir);
    let (s, b) = gw.call("GET", "/healthz", None, None);
    assert_eq!((s, b.as_str()), (200, Some("ok\n")));
    let (id, batch) = batch_from_kh(&dir);
    let (s, b) = gw.call("POST", "/exchange/v1/messages", None, Some(&batch));
    assert_eq!((s, b["code"].as_str()), (401, Some("CLIENT_CERT_REQUIRED")), "{b}");
    let (s, b) = gw.call("POST", "/exchange/v1/messages", Some("KH"), Some(&batch));
    assert_eq!(s, 200, "{b}");
    assert_eq!(
        (b["acks"][0]["id"].as_str(), b["acks"][0]["result"].as_str()),
        (Some(id.as_str()), Some("accepted"))
    );

    // kill -9 right after the answer: the message was committed before it.
    gw.signal("-KILL");
    drop(gw);
    let mut gw = start(&dir);
    let (s, t) = gw.call("GET", &format!("/exchange/v1/messages/{id}"), Some("KH"), None);
    assert_eq!((s, t["state"].as_str(), t["to"].as_str()), (200, Some("pending"), Some("TH")), "{t}");
    // TH's node is not running: the gateway keeps trying.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, t) = gw.call("GET", &format!("/exchange/v1/messages/{id}"), Some("KH"), None);
        if t["attempts"].as_u64().unwrap_or(0) >= 1 {
            assert!(t["error"].is_string(), "{t}");
            break;
        }
        assert!(Instant::now() < deadline, "no delivery attempt recorded: {t}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (s, b) = gw.call("GET", &format!("/exchange/v1/messages/{id}"), Some("TH"), None);
    assert_eq!((s, b["code"].as_str()), (404, Some("NOT_FOUND")), "only the sender tracks");
    let (s, m) = gw.call("GET", "/metrics", None, None);
    assert_eq!(s, 200);
    assert!(m.as_str().unwrap_or("").contains("originlink_gateway_queue_depth{recipient=\"TH\"} 1"), "{m}");

    gw.signal("-TERM");
    let status = gw.wait_exit();
    assert!(status.success(), "SIGTERM is a clean stop: {status}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gateway_refuses_a_bad_configuration() {
    let dir = setup("gateway-badconf");
    let conf = dir.join("gw.toml");
    let text = std::fs::read_to_string(&conf).expect("config");
    std::fs::write(&conf, text.replace("[log]", "[log]\nverbose = true")).expect("config");
    let (code, out, err) = run_text(&["gateway", "--config", path(&conf)], b"");
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("CONFIG_INVALID") && err.contains("verbose"), "{err}");
    // A trust list that does not verify against the configured operator is refused at start.
    std::fs::write(&conf, text).expect("config");
    ok(&["keys", "operator", "--out", path(&dir.join("other"))]);
    let other = dir.join("other/operator.crt");
    let out = bin()
        .args(["gateway", "--config", path(&conf)])
        .env("ORIGINLINK__GATEWAY__OPERATOR_CERT", path(&other))
        .output()
        .expect("gateway runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("TRUST_LIST_INVALID") && err.contains("TRUST_LIST_WRONG_KEY"), "{err}");
    assert!(out.stdout.is_empty(), "nothing listened");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `gateway operator add NAME --password-stdin`: adds an operator whose password the
/// console's sign-in then accepts, or sets a new one (the old one stops working); a short
/// password and a missing `--password-stdin` are refused, each saying why.
#[test]
fn operator_add_sets_the_password_the_console_checks() {
    let dir = tempdir("gw-operator");
    std::fs::create_dir_all(&dir).expect("temp dir");
    // Managing operators reads only the database: keys and the trust list are not opened.
    std::fs::write(
        dir.join("gw.toml"),
        "[database]\nurl = \"sqlite:gw.db\"\n[gateway]\nid = \"ASW-HUB\"\ntls_cert = \"tls.crt\"\n\
         tls_key = \"tls.key\"\ntrust_list = \"trust-list.json\"\noperator_cert = \"operator.crt\"\n",
    )
    .expect("config");
    let config = dir.join("gw.toml");
    let add = |extra: &[&str], stdin: &[u8]| {
        let mut args = vec!["gateway", "operator", "add", "ops", "--config", path(&config)];
        args.extend_from_slice(extra);
        run_text(&args, stdin)
    };
    let (code, _, err) = add(&[], b"harbour lights at dawn\n");
    assert_ne!(code, 0);
    assert!(err.contains("--password-stdin"), "{err}");
    let (code, _, err) = add(&["--password-stdin"], b"short\n");
    assert_ne!(code, 0);
    assert!(err.contains("PASSWORD_TOO_SHORT"), "{err}");
    let (code, _, err) = add(&["--password-stdin"], b"harbour lights at dawn\n");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("added operator ops"), "{err}");
    let (code, _, err) = add(&["--password-stdin"], b"monsoon clouds over the river\n");
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("set the password of operator ops"), "{err}");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        use originlink_console::operator::sessions;
        let url = format!("sqlite:{}", dir.join("gw.db").display());
        let queue = originlink_gateway::queue::open(&url, 1).await.expect("the gateway's database");
        let throttle = originlink_node::app::sessions::Throttle::default();
        let now = chrono::Utc::now();
        let signed =
            sessions::sign_in(queue.as_ref(), &throttle, "ops", "monsoon clouds over the river", now);
        assert!(signed.await.is_ok(), "the new password signs in");
        let old = sessions::sign_in(queue.as_ref(), &throttle, "ops", "harbour lights at dawn", now).await;
        assert_eq!(old.map(|_| ()).unwrap_err().code, "SIGN_IN_FAILED", "the old one does not");
    });
    let _ = std::fs::remove_dir_all(&dir);
}
