//! A small network for the tests: member nodes' keys, a gateway, an operator, a signed trust
//! list, a fake receiving node, and HTTP clients (pooled, and one-connection).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::IntoResponse;
use axum::routing::post;
use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use originlink_exchange::client::PeerClient;
use originlink_exchange::server::{PeerCert, Shutdown};
use originlink_exchange::tls::Identity;
use originlink_exchange::{
    Ack, Batch, BatchResponse, CertRef, Delivery, Endpoint, Envelope, ExchangeError, Header, MessageType,
    StatusBody,
};
use originlink_gateway::{Config, Gateway};
use originlink_model::CountryCode;
use originlink_service::{Clock, SystemClock};
use originlink_trust::keys::{self, Issued};
use originlink_trust::trustlist::{self, FORMAT, Gateway as GatewayEntry, Member, Node, Revoked, TrustList};
use originlink_trust::{Cert, PrivateKey};
use serde_json::Value;

pub fn unique(prefix: &str) -> String {
    let mut r = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut r).expect("random");
    format!("{prefix}_{}_{}", std::process::id(), r.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

pub fn tempdir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A key pair that can be turned into as many TLS identities as needed.
#[derive(Clone)]
pub struct Keys {
    pub cert_der: Vec<u8>,
    pkcs8: Vec<u8>,
}

impl Keys {
    pub fn from_issued(i: &Issued) -> Keys {
        Keys { cert_der: i.cert_der.clone(), pkcs8: i.key.pkcs8_der().to_vec() }
    }
    pub fn key(&self) -> PrivateKey {
        PrivateKey::from_pkcs8_der(&self.pkcs8).expect("key")
    }
    pub fn identity(&self) -> Identity {
        Identity::from_parts(vec![self.cert_der.clone()], self.key())
    }
    pub fn serial(&self) -> String {
        Cert::from_der(&self.cert_der).expect("cert").serial_hex()
    }
}

pub fn cc(s: &str) -> CountryCode {
    CountryCode::parse(s).expect("country")
}

fn node_keys(country: &str, today: NaiveDate) -> Keys {
    let k =
        keys::init_authority(country, &format!("{country} Authority"), today, None).expect("authority keys");
    Keys::from_issued(&k.tls)
}

/// Options of one test network.
#[derive(Debug, Clone)]
pub struct Options {
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub body_limit: usize,
    pub push_batch: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_attempts: 50,
            backoff_base_ms: 20,
            backoff_max_ms: 200,
            body_limit: 64 * 1024,
            push_batch: 64,
        }
    }
}

/// The network: KH and TH push; VN pulls; LA's node certificate has expired; MM's node
/// certificate is revoked; SG is not a member. TH's node is a [`FakeNode`] on `th_port`;
/// KH's node URL is a closed port.
pub struct Net {
    pub dir: PathBuf,
    pub kh: Keys,
    pub th: Keys,
    pub vn: Keys,
    pub la: Keys,
    pub mm: Keys,
    pub sg: Keys,
    pub gw: Keys,
    pub th_port: u16,
    pub operator_token: String,
    pub config: Config,
    /// The operator who signs the list, and the list as signed at start.
    pub operator: Issued,
    pub list: TrustList,
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub const TOKEN: &str = "olk_operator_test_token_123";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl Net {
    pub fn new(db_url: &str, o: Options) -> Net {
        let dir = tempdir("originlink_gw");
        let today = Utc::now().date_naive();
        let kh = node_keys("KH", today);
        let th = node_keys("TH", today);
        let vn = node_keys("VN", today);
        let la = node_keys("LA", today - chrono::Days::new(800));
        let mm = node_keys("MM", today);
        let sg = node_keys("SG", today);
        let gw = Keys::from_issued(&keys::init_gateway("ASW-HUB", today).expect("gateway keys"));
        let operator = keys::init_operator("Test Operator", today).expect("operator");
        let th_port = free_port();
        let member = |country: &str, k: &Keys, url: String, revoked: Vec<Revoked>| Member {
            country: cc(country),
            authorities: vec![format!("{country} Authority")],
            ca_certs: vec![],
            signing_certs: vec![],
            nodes: vec![Node { url, tls_cert: trustlist::encode_cert(&k.cert_der) }],
            agreements: vec!["ATIGA".into()],
            valid_from: None,
            valid_until: None,
            revoked,
        };
        let list = TrustList {
            format: FORMAT.into(),
            sequence: 7,
            issued_at: Utc::now(),
            next_update: Utc::now() + chrono::Duration::days(30),
            members: vec![
                member("KH", &kh, "https://127.0.0.1:1".into(), vec![]),
                member("TH", &th, format!("https://127.0.0.1:{th_port}"), vec![]),
                member("VN", &vn, "https://127.0.0.1:2".into(), vec![]),
                member("LA", &la, "https://127.0.0.1:3".into(), vec![]),
                member(
                    "MM",
                    &mm,
                    "https://127.0.0.1:4".into(),
                    vec![Revoked { serial: mm.serial(), revoked_at: None, reason: None }],
                ),
            ],
            gateways: vec![GatewayEntry {
                id: "ASW-HUB".into(),
                url: "https://127.0.0.1:9443".into(),
                tls_cert: trustlist::encode_cert(&gw.cert_der),
            }],
        };
        let signed = list.sign(&operator.key, &operator.cert_der).expect("sign list");
        let list = TrustList::from_signed(&signed, &[Cert::from_der(&operator.cert_der).expect("cert")])
            .expect("the list verifies");
        std::fs::write(dir.join("trust-list.json"), signed).expect("write list");
        std::fs::write(dir.join("operator.crt"), keys::cert_to_pem(&operator.cert_der))
            .expect("operator cert");
        std::fs::write(dir.join("tls.crt"), keys::cert_to_pem(&gw.cert_der)).expect("gw cert");
        originlink_trust::keystore::write_private_key(&dir.join("tls.key"), &gw.key()).expect("gw key");
        let token_hash = ring::digest::digest(&ring::digest::SHA256, TOKEN.as_bytes())
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let toml = format!(
            r#"[server]
listen = "127.0.0.1:0"
body_limit = {body_limit}

[database]
url = "{db_url}"
pool_size = 4

[gateway]
id = "ASW-HUB"
tls_cert = "tls.crt"
tls_key = "tls.key"
trust_list = "trust-list.json"
operator_cert = "operator.crt"
push_batch = {push_batch}
max_attempts = {max_attempts}
backoff_base_ms = {base}
backoff_max_ms = {max}
push_timeout_ms = 5000
pull_only = ["VN", "LA", "MM"]
operator_token_sha256 = "{token_hash}"

[log]
level = "warn"
"#,
            body_limit = o.body_limit,
            push_batch = o.push_batch,
            max_attempts = o.max_attempts,
            base = o.backoff_base_ms,
            max = o.backoff_max_ms,
        );
        std::fs::write(dir.join("gw.toml"), &toml).expect("config");
        let config = Config::load_with_env(&dir.join("gw.toml"), Vec::new()).expect("config parses");
        Net { dir, kh, th, vn, la, mm, sg, gw, th_port, operator_token: TOKEN.into(), config, operator, list }
    }

    /// Writes `list` signed by `signer` over the gateway's trust list file.
    pub fn publish(&self, list: &TrustList, signer: &Issued) {
        let signed = list.sign(&signer.key, &signer.cert_der).expect("sign list");
        let tmp = self.dir.join("trust-list.json.new");
        std::fs::write(&tmp, signed).expect("write list");
        std::fs::rename(tmp, self.dir.join("trust-list.json")).expect("replace list");
    }

    /// A member entry for `country` with node certificate `k`.
    pub fn member(country: &str, k: &Keys) -> Member {
        Member {
            country: cc(country),
            authorities: vec![format!("{country} Authority")],
            ca_certs: vec![],
            signing_certs: vec![],
            nodes: vec![Node {
                url: "https://127.0.0.1:5".into(),
                tls_cert: trustlist::encode_cert(&k.cert_der),
            }],
            agreements: vec!["ATIGA".into()],
            valid_from: None,
            valid_until: None,
            revoked: vec![],
        }
    }

    /// Starts the gateway in this process, on the wall clock.
    pub async fn start(&self) -> Running {
        self.start_with_clock(Arc::new(SystemClock)).await
    }

    /// Starts the gateway in this process with `clock` as its time.
    pub async fn start_with_clock(&self, clock: Arc<dyn Clock>) -> Running {
        let gw = Gateway::build(&self.config, clock).await.expect("gateway builds");
        let addr = gw.addr();
        let stop = gw.shutdown_handle();
        let queue = gw.queue();
        let task = tokio::spawn(gw.run_until_stopped());
        Running { url: format!("https://{addr}"), addr, stop, queue, task: Some(task) }
    }

    /// A pooled client to the gateway with `who`'s identity.
    pub fn client(&self, gw: &Running, who: &Keys) -> PeerClient {
        let tls = originlink_exchange::tls::client_config(&who.identity(), vec![self.gw.cert_der.clone()])
            .expect("tls");
        PeerClient::new(&gw.url, tls, Duration::from_secs(10)).expect("client")
    }

    /// An envelope from `from` (signed with `key`) to `to`: a status update about a
    /// certificate `to` issued.
    pub fn envelope(&self, from: &str, to: &str, key: &PrivateKey) -> Envelope {
        let header = Header {
            id: originlink_exchange::id::new_id(Utc::now()),
            correlation_id: None,
            from: Endpoint { country: cc(from), node: Some(format!("{from}-NODE")) },
            to: Endpoint { country: cc(to), node: None },
            kind: MessageType::StatusUpdate,
            certificate: Some(CertRef { country: cc(to), number: format!("{to}-2026-000001"), version: 1 }),
            payload_type: "application/json".into(),
            created_at: Utc::now(),
        };
        let body = StatusBody::new(originlink_exchange::BusinessStatus::Received).to_json();
        Envelope::seal(header, body, key).expect("seal")
    }

    /// Starts the fake TH node (on `th_port`).
    pub async fn start_th(&self, mode: Mode) -> FakeNode {
        FakeNode::start(self.th_port, &self.th, self.gw.cert_der.clone(), mode).await
    }
}

/// A gateway running in this process; stopped when dropped.
pub struct Running {
    pub url: String,
    pub addr: std::net::SocketAddr,
    pub stop: Shutdown,
    pub queue: Arc<dyn originlink_gateway::queue::Queue>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    pub async fn stop(mut self) {
        self.stop.trigger();
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("served");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.trigger();
    }
}

/// What the fake node answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Deliver,
    Refuse(&'static str),
}

#[derive(Debug, Default)]
pub struct Received {
    /// Every envelope received, byte for byte (duplicates included).
    pub raw: Vec<Vec<u8>>,
    /// Ids applied once.
    pub applied: Vec<String>,
    /// Requests from a client that is not the gateway.
    pub strangers: usize,
    /// The manifests of version 2 pushes, byte for byte.
    pub manifests: Vec<Vec<u8>>,
}

#[derive(Clone)]
struct FakeState {
    mode: Arc<Mutex<Mode>>,
    got: Arc<Mutex<Received>>,
    gateway: Arc<Vec<u8>>,
}

/// A receiving node: checks the client is the gateway, records envelopes, acks by mode.
pub struct FakeNode {
    pub mode: Arc<Mutex<Mode>>,
    pub got: Arc<Mutex<Received>>,
    stop: Shutdown,
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.trigger();
    }
}

async fn fake_messages(state: State<FakeState>, req: Request) -> axum::response::Response {
    fake_batch(state, req, false).await
}

async fn fake_messages_v2(state: State<FakeState>, req: Request) -> axum::response::Response {
    fake_batch(state, req, true).await
}

async fn fake_batch(State(s): State<FakeState>, req: Request, v2: bool) -> axum::response::Response {
    let peer = req.extensions().get::<PeerCert>().cloned().unwrap_or_default();
    let body = req.into_body().collect().await.expect("body").to_bytes();
    if peer.0.as_deref().map(Vec::as_slice) != Some(s.gateway.as_slice()) {
        s.got.lock().unwrap().strangers += 1;
        return (
            axum::http::StatusCode::FORBIDDEN,
            axum::Json(ExchangeError::new("CLIENT_CERT_UNKNOWN", None, "not the gateway")),
        )
            .into_response();
    }
    let (manifests, messages) = if v2 {
        let b = originlink_exchange::body::BatchV2::parse(&body).expect("the gateway sends batches");
        (b.manifests.into_iter().map(|m| m.raw).collect(), b.messages)
    } else {
        (Vec::new(), Batch::parse(&body).expect("the gateway sends batches").messages)
    };
    let mode = s.mode.lock().unwrap().clone();
    let mut got = s.got.lock().unwrap();
    got.manifests.extend(manifests);
    let mut acks = Vec::new();
    for raw in &messages {
        let bytes = raw.get().as_bytes().to_vec();
        let env = Envelope::parse(&bytes).expect("envelope");
        got.raw.push(bytes);
        let id = env.header.id.clone();
        acks.push(match &mode {
            Mode::Refuse(code) => {
                Ack::refused(id, &ExchangeError::new(code, Some("signature"), "refused by the test node"))
            }
            Mode::Deliver => {
                let mut a = Ack::ok(id.clone(), Delivery::Delivered);
                if got.applied.contains(&id) {
                    a.duplicate = true;
                } else {
                    got.applied.push(id);
                }
                a
            }
        });
    }
    axum::Json(BatchResponse { acks, manifests: Vec::new() }).into_response()
}

impl FakeNode {
    pub async fn start(port: u16, keys: &Keys, gateway: Vec<u8>, mode: Mode) -> FakeNode {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind fake node");
        let state = FakeState {
            mode: Arc::new(Mutex::new(mode)),
            got: Arc::new(Mutex::new(Received::default())),
            gateway: Arc::new(gateway),
        };
        let router = Router::new()
            .route(originlink_exchange::MESSAGES_PATH, post(fake_messages))
            .route(originlink_exchange::MESSAGES_PATH_V2, post(fake_messages_v2))
            .with_state(state.clone());
        let tls = originlink_exchange::tls::server_config(&keys.identity()).expect("tls");
        let stop = Shutdown::default();
        tokio::spawn(originlink_exchange::server::serve(listener, tls, router, stop.clone()));
        FakeNode { mode: state.mode, got: state.got, stop }
    }

    pub fn applied(&self) -> Vec<String> {
        self.got.lock().unwrap().applied.clone()
    }
}

/// Polls `f` until it is true (10 s at most).
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < end {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Posts a batch of envelopes with a pooled client; returns status and JSON.
pub async fn post_batch(c: &PeerClient, envs: &[&[u8]]) -> (u16, Value) {
    let (status, body) = c
        .request(hyper::Method::POST, originlink_exchange::MESSAGES_PATH, Batch::encode(envs.iter().copied()))
        .await
        .expect("request");
    (status.as_u16(), serde_json::from_slice(&body).unwrap_or(Value::Null))
}

pub async fn call(c: &PeerClient, method: hyper::Method, path: &str, body: &[u8]) -> (u16, Value) {
    let (status, bytes) = c.request(method, path, body.to_vec()).await.expect("request");
    (
        status.as_u16(),
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
    )
}

/// A TLS connection to the gateway as `who` (`None`: no client certificate), for tests that
/// write raw bytes.
pub async fn tls_connect(
    addr: std::net::SocketAddr,
    who: Option<&Keys>,
    gw: &Keys,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tls = match who {
        Some(k) => {
            originlink_exchange::tls::client_config(&k.identity(), vec![gw.cert_der.clone()]).expect("tls")
        }
        None => originlink_exchange::tls::anonymous_client_config(vec![gw.cert_der.clone()]).expect("tls"),
    };
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name");
    tokio_rustls::TlsConnector::from(tls).connect(name, tcp).await
}

/// Exactly one TLS connection: every request goes over it, so a connection the server
/// closed shows as an error instead of being silently replaced.
pub struct OneConn {
    send: SendRequest<Full<Bytes>>,
    host: String,
}

impl OneConn {
    /// Connects as `who` (`None`: no client certificate).
    pub async fn connect(addr: std::net::SocketAddr, who: Option<&Keys>, gw: &Keys) -> OneConn {
        let stream = tls_connect(addr, who, gw).await.expect("tls handshake");
        let (send, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("http handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        OneConn { send, host: addr.to_string() }
    }

    /// One request on this connection; panics if the connection is gone.
    pub async fn request(&mut self, method: hyper::Method, path: &str, body: Vec<u8>) -> (u16, Value) {
        self.request_with(method, path, body, &[]).await
    }

    pub async fn request_with(
        &mut self,
        method: hyper::Method,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        self.send.ready().await.expect("the connection is still open");
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.host)
            .header(hyper::header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(Bytes::from(body))).expect("request");
        let resp = self.send.send_request(req).await.expect("the connection carries the request");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into())),
        )
    }

    pub async fn post(&mut self, body: Vec<u8>) -> (u16, Value) {
        self.request(hyper::Method::POST, originlink_exchange::MESSAGES_PATH, body).await
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

/// A fresh database for one test, removed when dropped.
pub struct TestDb {
    pub url: String,
    dir: Option<PathBuf>,
    pg_name: Option<String>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
        if let Some(name) = &self.pg_name {
            let _ = std::process::Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
                .arg(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .output();
        }
    }
}

pub fn sqlite_db() -> TestDb {
    let dir = tempdir("originlink_gwq");
    TestDb { url: format!("sqlite:{}", dir.join("gw.db").display()), dir: Some(dir), pg_name: None }
}

/// The PostgreSQL server used by the tests (`ORIGINLINK_TEST_PG` overrides it). Unreachable
/// is a failure, never a skip.
pub async fn pg_db() -> TestDb {
    let base =
        std::env::var("ORIGINLINK_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let admin = originlink_gateway::queue::postgres::PgQueue::connect(&format!("{base}/postgres"), 1)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is not reachable at {base} ({e}); run scripts/setup.sh"));
    let name = unique("originlink_gwtest");
    admin.execute_raw(&format!("CREATE DATABASE {name}")).await.expect("create database");
    TestDb { url: format!("{base}/{name}"), dir: None, pg_name: Some(name) }
}
