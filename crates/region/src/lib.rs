//! A whole region on one machine: keys, the signed trust list, a gateway and country nodes
//! (configuration files and SQLite databases with users), all under one directory. Used by
//! `originlink demo`, `originlink bench exchange` and the end-to-end tests, which start the
//! processes from the files written here.
//!
//! Architecture invariant: this crate only writes files and talks HTTPS; it starts nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use originlink_exchange::client::PeerClient;
use originlink_model::CountryCode;
use originlink_store::{Ctx, Role};
use originlink_trust::keystore::{self, AuthorityDir};
use originlink_trust::trustlist::{self, FORMAT, Gateway, Member, Node, TrustList};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One member of the demo region.
#[derive(Debug, Clone, Copy)]
pub struct Country {
    /// ISO code.
    pub code: &'static str,
    /// Authority id (also the node id).
    pub authority_id: &'static str,
    /// Authority name.
    pub authority: &'static str,
    /// City (place of issue).
    pub city: &'static str,
    /// Two exporters: (company, user).
    pub exporters: [(&'static str, &'static str); 2],
}

/// KH, TH, VN.
pub const COUNTRIES: [Country; 3] = [
    Country {
        code: "KH",
        authority_id: "KH-MOC",
        authority: "Ministry of Commerce",
        city: "Phnom Penh",
        exporters: [("Angkor Garment Co., Ltd.", "angkor"), ("Mekong Rice Export Co., Ltd.", "mekong")],
    },
    Country {
        code: "TH",
        authority_id: "TH-DFT",
        authority: "Department of Foreign Trade",
        city: "Bangkok",
        exporters: [
            ("Siam Furniture Public Co., Ltd.", "siam"),
            ("Chao Phraya Foods Co., Ltd.", "chaophraya"),
        ],
    },
    Country {
        code: "VN",
        authority_id: "VN-MOIT",
        authority: "Ministry of Industry and Trade",
        city: "Hanoi",
        exporters: [("Saigon Textile JSC", "saigon"), ("Red River Coffee JSC", "redriver")],
    },
];

/// What `setup` wrote, also saved as `region.json` (0600: it holds demo tokens).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Region {
    /// The directory.
    pub dir: PathBuf,
    /// Gateway URL.
    pub gateway_url: String,
    /// Gateway configuration file.
    pub gateway_config: PathBuf,
    /// The gateway operator's console (plain HTTP on loopback).
    #[serde(default)]
    pub gateway_console_url: Option<String>,
    /// The console's operators and their passwords (demo only).
    #[serde(default)]
    pub operators: BTreeMap<String, String>,
    /// Per country: its node.
    pub nodes: BTreeMap<String, NodeInfo>,
    /// The gateway's other replicas (same identity and database, their own listeners).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway_replicas: Vec<Replica>,
}

/// A further replica of a node or of the gateway: the same identity and database as the
/// first, its own listeners and configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Replica {
    /// Base URL of its exchange and API listener.
    pub url: String,
    /// Its configuration file.
    pub config: PathBuf,
    /// Its console (plain HTTP on loopback).
    pub console_url: String,
}

/// One node of the region.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Base URL.
    pub url: String,
    /// Configuration file.
    pub config: PathBuf,
    /// Its database URL.
    pub database: String,
    /// Tokens by user name.
    pub tokens: BTreeMap<String, String>,
    /// Exporter user names.
    pub exporters: Vec<String>,
    /// The console's URL (plain HTTP on loopback).
    #[serde(default)]
    pub console_url: Option<String>,
    /// Console passwords by user name (demo only).
    #[serde(default)]
    pub passwords: BTreeMap<String, String>,
    /// The node's other replicas (same identity and database, their own listeners).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<Replica>,
}

/// How to set a region up.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Database URL per country (default: SQLite files in the directory). `{country}` is
    /// replaced by the lower-case code.
    pub database: Option<String>,
    /// Gateway database URL (default SQLite).
    pub gateway_database: Option<String>,
    /// Direct links: (from, to) pairs that bypass the gateway (both directions).
    pub direct: Vec<(String, String)>,
    /// Countries (default all three).
    pub countries: Vec<String>,
    /// Log level of the processes.
    pub log_level: Option<String>,
    /// Exchange batch size.
    pub batch: Option<usize>,
    /// Backoff base in milliseconds (tests use a short one).
    pub backoff_base_ms: Option<u64>,
    /// Largest backoff in milliseconds.
    pub backoff_max_ms: Option<u64>,
    /// Idle outbox poll interval in milliseconds.
    pub poll_ms: Option<u64>,
    /// `false`: the gateway relies on the mutual-TLS identity and leaves envelope signatures to
    /// the receiving node (a measurement aid; the default checks them).
    pub gateway_verify_signatures: Option<bool>,
    /// `[exchange] trust_list_refresh_s` of the nodes (default: the node's).
    pub trust_list_refresh_s: Option<u64>,
    /// Replicas of each node and of the gateway (default 1). More than one needs PostgreSQL
    /// databases: the replicas of a node share its database, the gateway's share the queue.
    /// Each is listed in the trust list as an endpoint, and senders fail over between them.
    pub replicas: usize,
    /// Services kept at exchange protocol version 1, as the previous version of OriginLink
    /// speaks it (`protocol = 1`): country codes, or `gateway`.
    pub protocol_v1: Vec<String>,
}

/// `n` ports that are free now, for the services to bind later. They are picked below the
/// kernel's ephemeral range (32768 and up on Linux), where the kernel also takes the local
/// ports of outgoing connections and of port-0 binds: a port picked there could be taken by
/// any connection before the service binds it (seen in CI as "Address already in use"). Each
/// is tried by binding it; where none is found the kernel picks.
fn free_ports(n: usize) -> Result<Vec<u16>> {
    use std::hash::BuildHasher as _;
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let seed = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
    let mut held = Vec::with_capacity(n);
    let mut tried = 0u32;
    while held.len() < n {
        let candidate = if tried < 4 * SPAN {
            let offset = (seed.wrapping_add(u64::from(tried).wrapping_mul(7919)) % u64::from(SPAN)) as u32;
            u16::try_from(LOW + offset).unwrap_or(0)
        } else {
            0
        };
        tried += 1;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", candidate)) {
            held.push(l);
        }
    }
    Ok(held.iter().map(|l| l.local_addr().map(|a| a.port())).collect::<std::io::Result<_>>()?)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Writes keys, the trust list, configurations and databases with users under `dir` (which
/// is emptied first: it is demo data).
pub async fn setup(dir: &Path, opts: &Options) -> Result<Region> {
    if dir.exists() {
        if !dir.join("region.json").exists() && std::fs::read_dir(dir)?.next().is_some() {
            bail!("{} exists and is not a region directory; refusing to empty it", dir.display());
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    let dir = dir.canonicalize()?;
    let now = Utc::now();
    let today = now.date_naive();
    let countries: Vec<Country> = COUNTRIES
        .iter()
        .filter(|c| opts.countries.is_empty() || opts.countries.iter().any(|x| x == c.code))
        .copied()
        .collect();
    let replicas = opts.replicas.max(1);
    let postgres = |u: &Option<String>| u.as_deref().is_some_and(|u| u.starts_with("postgres"));
    if replicas > 1 && !(postgres(&opts.database) && postgres(&opts.gateway_database)) {
        bail!(
            "replicas share one database, so {replicas} replicas need PostgreSQL databases for the nodes and the gateway"
        );
    }
    // Per replica r: the gateway's port, then each node's.
    let stride = countries.len() + 1;
    let ports = free_ports(stride * replicas)?;
    let console_ports = free_ports(stride * replicas)?;
    let port = |r: usize, i: usize| ports[r * stride + i];
    let console = |r: usize, i: usize| format!("127.0.0.1:{}", console_ports[r * stride + i]);
    let gateway_console = console(0, countries.len());

    // Operator and gateway.
    let op_dir = dir.join("operator");
    keystore::create_private_dir(&op_dir)?;
    let operator = originlink_trust::keys::init_operator("OriginLink Demo Operator", today)?;
    keystore::write_private_key(&op_dir.join("operator.key"), &operator.key)?;
    keystore::write_cert(&op_dir.join("operator.crt"), &operator.cert_der)?;
    let gw_dir = dir.join("gateway");
    keystore::create_private_dir(&gw_dir)?;
    let gw = originlink_trust::keys::init_gateway("DEMO-HUB", today)?;
    keystore::write_private_key(&gw_dir.join("tls.key"), &gw.key)?;
    keystore::write_cert(&gw_dir.join("tls.crt"), &gw.cert_der)?;
    let gateway_url = format!("https://127.0.0.1:{}", port(0, 0));

    // Members.
    let mut members = Vec::new();
    let mut urls = BTreeMap::new();
    for (i, c) in countries.iter().enumerate() {
        let keys = originlink_trust::keys::init_authority(c.code, c.authority, today, None)?;
        let kdir = AuthorityDir(dir.join(c.code).join("keys"));
        kdir.write(&keys)?;
        let url = format!("https://127.0.0.1:{}", port(0, i + 1));
        urls.insert(c.code.to_owned(), url.clone());
        // Every replica is an endpoint of the member, under the node's one TLS identity.
        let tls_cert = trustlist::encode_cert(&keys.tls.cert_der);
        let nodes = (0..replicas)
            .map(|r| Node {
                url: format!("https://127.0.0.1:{}", port(r, i + 1)),
                tls_cert: tls_cert.clone(),
            })
            .collect();
        members.push(Member {
            country: CountryCode::parse(c.code).map_err(|e| anyhow::anyhow!("{e}"))?,
            authorities: vec![c.authority.to_owned()],
            ca_certs: vec![trustlist::encode_cert(&keys.ca.cert_der)],
            signing_certs: vec![trustlist::encode_cert(&keys.signing.cert_der)],
            nodes,
            agreements: vec!["ATIGA".into(), "RCEP".into()],
            valid_from: None,
            valid_until: None,
            revoked: vec![],
        });
    }
    let list = TrustList {
        format: FORMAT.into(),
        sequence: 1,
        issued_at: now - chrono::Duration::minutes(5),
        next_update: now + chrono::Duration::days(30),
        members,
        gateways: (0..replicas)
            .map(|r| Gateway {
                id: "DEMO-HUB".into(),
                url: format!("https://127.0.0.1:{}", port(r, 0)),
                tls_cert: trustlist::encode_cert(&gw.cert_der),
            })
            .collect(),
    };
    std::fs::write(dir.join("trust-list.json"), list.sign(&operator.key, &operator.cert_der)?)?;

    let log = opts.log_level.clone().unwrap_or_else(|| "warn".into());
    let gw_db = opts.gateway_database.clone().unwrap_or_else(|| "sqlite:gateway.db".into());
    let gateway_toml = |r: usize| {
        format!(
            "[server]\nlisten = \"127.0.0.1:{}\"\n\n[database]\nurl = \"{gw_db}\"\n\n[gateway]\nid = \"DEMO-HUB\"\n\
             tls_cert = \"tls.crt\"\ntls_key = \"tls.key\"\ntrust_list = \"../trust-list.json\"\n\
             operator_cert = \"../operator/operator.crt\"\n{}{}{}{}\n[console]\nlisten = \"{}\"\n\n\
             [log]\nlevel = \"{log}\"\n",
            port(r, 0),
            if opts.protocol_v1.iter().any(|s| s == "gateway") { "protocol = 1\n" } else { "" },
            opts.gateway_verify_signatures.map(|v| format!("verify_signatures = {v}\n")).unwrap_or_default(),
            opts.backoff_base_ms.map(|b| format!("backoff_base_ms = {b}\n")).unwrap_or_default(),
            opts.backoff_max_ms.map(|b| format!("backoff_max_ms = {b}\n")).unwrap_or_default(),
            console(r, countries.len()),
        )
    };
    let (gateway_config, gateway_replicas) = write_replicas(&gw_dir, "gateway", replicas, |r| {
        (gateway_toml(r), port(r, 0), console(r, countries.len()))
    })?;

    let operators = add_demo_operator(&gateway_config, now).await?;

    let mut nodes = BTreeMap::new();
    for (i, c) in countries.iter().enumerate() {
        let cdir = dir.join(c.code);
        let db = match &opts.database {
            Some(u) => u.replace("{country}", &c.code.to_ascii_lowercase()),
            None => "sqlite:node.db".into(),
        };
        let mut direct = String::new();
        for (a, b) in &opts.direct {
            let other = if a == c.code {
                Some(b)
            } else if b == c.code {
                Some(a)
            } else {
                None
            };
            if let Some(o) = other.and_then(|o| urls.get(o.as_str())) {
                let code = if a == c.code { b } else { a };
                direct.push_str(&format!("{code} = \"{o}\"\n"));
            }
        }
        let mut exchange = String::from(
            "[exchange]\ntrust_list = \"../trust-list.json\"\noperator_cert = \"../operator/operator.crt\"\n",
        );
        if let Some(b) = opts.batch {
            exchange.push_str(&format!("batch = {b}\n"));
        }
        if let Some(b) = opts.backoff_base_ms {
            exchange.push_str(&format!("backoff_base_ms = {b}\n"));
        }
        if let Some(b) = opts.backoff_max_ms {
            exchange.push_str(&format!("backoff_max_ms = {b}\n"));
        }
        if let Some(p) = opts.poll_ms {
            exchange.push_str(&format!("poll_ms = {p}\n"));
        }
        if let Some(r) = opts.trust_list_refresh_s {
            exchange.push_str(&format!("trust_list_refresh_s = {r}\n"));
        }
        if opts.protocol_v1.iter().any(|s| s == c.code) {
            exchange.push_str("protocol = 1\n");
        }
        if !direct.is_empty() {
            exchange.push_str(&format!("\n[exchange.direct]\n{direct}"));
        }
        let node_toml = |r: usize| {
            // Replica r of a node prefers replica r of the gateway (it fails over to the others):
            // with several replicas the load spreads, and a lost gateway replica is noticed.
            let exchange = match replicas {
                1 => exchange.clone(),
                n => exchange.replacen(
                    "[exchange]\n",
                    &format!("[exchange]\ngateway = \"https://127.0.0.1:{}\"\n", port(r % n, 0)),
                    1,
                ),
            };
            format!(
                "[server]\nlisten = \"127.0.0.1:{}\"\n\n[database]\nurl = \"{db}\"\n\n[authority]\nid = \"{}\"\n\
                 name = \"{}\"\ncountry = \"{}\"\ncity = \"{}\"\nkeys = \"keys\"\n\
                 number_pattern = \"{}-{{year}}-{{seq:6}}\"\n\n{exchange}\n[console]\nlisten = \"{}\"\n\n\
                 [log]\nlevel = \"{log}\"\n",
                port(r, i + 1),
                c.authority_id,
                c.authority,
                c.code,
                c.city,
                c.code,
                console(r, i),
            )
        };
        let (config, node_replicas) =
            write_replicas(&cdir, "node", replicas, |r| (node_toml(r), port(r, i + 1), console(r, i)))?;
        let cfg = originlink_node::Config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
        // Opened as the node opens it: its audit key (created here, in the key directory) keys
        // the users' events below.
        let store = originlink_node::audit::open_store(&cfg)
            .await
            .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
        store.migrate().await?;
        let ctx = Ctx::new("demo-setup", now);
        let mut tokens = BTreeMap::new();
        let mut passwords = BTreeMap::new();
        let lc = c.code.to_ascii_lowercase();
        let people = [
            (format!("{lc}-admin"), Role::Admin, None),
            (format!("{lc}-officer"), Role::IssuingOfficer, None),
            (format!("{lc}-customs"), Role::CustomsOfficer, None),
        ]
        .into_iter()
        .chain(c.exporters.iter().map(|(company, user)| (user.to_string(), Role::Exporter, Some(*company))));
        let mut exporters = Vec::new();
        for (name, role, company) in people {
            let (user, t) =
                originlink_node::add_user(store.as_ref(), &ctx, &name, role, company, c.code).await?;
            // Demo passwords, printed by `originlink demo`: never a real deployment's.
            let password = format!("{name}-demo-password");
            originlink_node::app::sessions::set_password(store.as_ref(), &ctx, user.id, &password)
                .await
                .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code))?;
            if role == Role::Exporter {
                exporters.push(name.clone());
            }
            tokens.insert(name.clone(), t);
            passwords.insert(name, password);
        }
        store.checkpoint_audit().await?;
        nodes.insert(
            c.code.to_owned(),
            NodeInfo {
                url: urls[c.code].clone(),
                config,
                database: db,
                tokens,
                exporters,
                console_url: Some(format!("http://{}", console(0, i))),
                passwords,
                replicas: node_replicas,
            },
        );
    }
    let region = Region {
        dir: dir.clone(),
        gateway_url,
        gateway_config,
        gateway_console_url: Some(format!("http://{gateway_console}")),
        operators,
        nodes,
        gateway_replicas,
    };
    write_private(&dir.join("region.json"), &serde_json::to_string_pretty(&region)?)?;
    Ok(region)
}

/// Writes the configuration of each replica of a service in `dir`: `{stem}.toml` for the
/// first, `{stem}-2.toml` … for the others. `of(r)` gives replica r's configuration, its port
/// and its console's address. The first's file, and the others as [`Replica`]s.
fn write_replicas(
    dir: &Path,
    stem: &str,
    replicas: usize,
    of: impl Fn(usize) -> (String, u16, String),
) -> Result<(PathBuf, Vec<Replica>)> {
    let (toml, _, _) = of(0);
    let first = dir.join(format!("{stem}.toml"));
    std::fs::write(&first, toml)?;
    let mut others = Vec::new();
    for r in 1..replicas {
        let (toml, port, console) = of(r);
        let config = dir.join(format!("{stem}-{}.toml", r + 1));
        std::fs::write(&config, toml)?;
        others.push(Replica {
            url: format!("https://127.0.0.1:{port}"),
            config,
            console_url: format!("http://{console}"),
        });
    }
    Ok((first, others))
}

/// The gateway's demo operator, `operator`, with its password (demo only, printed by
/// `originlink demo`), in the gateway's database (migrated here as the gateway does at start).
async fn add_demo_operator(config: &Path, now: DateTime<Utc>) -> Result<BTreeMap<String, String>> {
    let cfg = originlink_gateway::Config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let queue = originlink_gateway::queue::open(cfg.database.url.expose(), 1).await?;
    queue.migrate_at(now).await?;
    let (name, password) = ("operator".to_owned(), "operator-demo-password".to_owned());
    let hash = originlink_node::app::sessions::hash_password(&password)
        .await
        .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code))?;
    queue.set_operator(&name, &hash, now).await?;
    Ok(BTreeMap::from([(name, password)]))
}

impl Region {
    /// Reads `region.json` from a directory `setup` wrote.
    pub fn load(dir: &Path) -> Result<Region> {
        let text = std::fs::read_to_string(dir.join("region.json"))
            .with_context(|| format!("{} is not a region directory", dir.display()))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// A user-API client for `country`'s node (pinned to its TLS certificate).
    pub fn api(&self, country: &str) -> Result<Api> {
        self.replica_api(country, 0)
    }

    /// A user-API client for replica `r` of `country`'s node (0: the first).
    pub fn replica_api(&self, country: &str, r: usize) -> Result<Api> {
        let info = self.nodes.get(country).with_context(|| format!("no node for {country}"))?;
        let url = match r {
            0 => &info.url,
            r => {
                &info.replicas.get(r - 1).with_context(|| format!("{country} has no replica {}", r + 1))?.url
            }
        };
        let keys = self.dir.join(country).join("keys");
        let id = originlink_exchange::tls::Identity::load(&keys.join("tls.crt"), &keys.join("tls.key"))?;
        let pinned = vec![id.cert_der.clone()];
        let tls = originlink_exchange::tls::client_config(&id, pinned)?;
        Ok(Api {
            client: Arc::new(PeerClient::new(url, tls, Duration::from_secs(30))?),
            tokens: info.tokens.clone(),
        })
    }
}

/// A user-API client of one node.
#[derive(Debug, Clone)]
pub struct Api {
    client: Arc<PeerClient>,
    /// Tokens by user name.
    pub tokens: BTreeMap<String, String>,
}

impl Api {
    /// Calls the API as `user`; returns (status, JSON or text as a JSON string).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        user: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let token = self.tokens.get(user).with_context(|| format!("no user {user}"))?;
        let m = hyper::Method::from_bytes(method.as_bytes())?;
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (status, bytes) = self.client.request_with(m, path, Some(token), body).await?;
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status.as_u16(), v))
    }

    /// A GET as `user` that insists on a 2xx answer, the body byte for byte (a signed
    /// document).
    pub async fn bytes(&self, path: &str, user: &str) -> Result<Vec<u8>> {
        let token = self.tokens.get(user).with_context(|| format!("no user {user}"))?;
        let (status, bytes) =
            self.client.request_with(hyper::Method::GET, path, Some(token), Vec::new()).await?;
        if !status.is_success() {
            bail!("GET {path} as {user}: HTTP {status}");
        }
        Ok(bytes.to_vec())
    }

    /// [`Api::call`] that insists on a 2xx answer.
    pub async fn ok(&self, method: &str, path: &str, user: &str, body: Option<Value>) -> Result<Value> {
        let (s, v) = self.call(method, path, user, body).await?;
        if !(200..300).contains(&s) {
            bail!("{method} {path} as {user}: HTTP {s}: {v}");
        }
        Ok(v)
    }
}

/// An application document: a realistic ATIGA certificate from `from` to `to`.
pub fn application_document(
    from: &str,
    to: &str,
    seq: u32,
    items: usize,
    today: DateTime<Utc>,
) -> Result<Value> {
    let f = CountryCode::parse(from).map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = CountryCode::parse(to).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut cert = originlink_model::sample::sample(
        originlink_model::Agreement::Atiga,
        f,
        t,
        today.date_naive(),
        items,
        seq,
    );
    cert.number = None;
    cert.certification = None;
    Ok(serde_json::from_str(&originlink_formats::json::write(&cert))?)
}

/// Exporter `user` applies; the officer approves. Returns the certificate JSON.
pub async fn issue(api: &Api, country: &str, user: &str, doc: Value, replaces: Option<i64>) -> Result<Value> {
    let doc = as_exporter(doc, country, user);
    let mut body = serde_json::json!({ "document": doc });
    if let Some(bom) = bill_of_materials(&body["document"]) {
        body["self_assessment"] = bom;
    }
    if let Some(r) = replaces {
        body["replaces"] = r.into();
    }
    let app = api.ok("POST", "/api/v1/applications", user, Some(body)).await?;
    let id = app["id"].as_i64().context("application id")?;
    api.ok("POST", &format!("/api/v1/applications/{id}/submit"), user, None).await?;
    let officer = format!("{}-officer", country.to_ascii_lowercase());
    api.ok("POST", &format!("/api/v1/applications/{id}/approve"), &officer, None).await
}

/// The document with its exporter named as the applying user's company (as a real exporter
/// fills it in), so that the officer is not warned `EXPORTER_NOT_APPLICANT`. Unchanged when the
/// user is not one of the region's exporters or the document does not read.
fn as_exporter(doc: Value, country: &str, user: &str) -> Value {
    let company = COUNTRIES
        .iter()
        .filter(|c| c.code == country)
        .flat_map(|c| c.exporters.iter())
        .find(|(_, u)| *u == user)
        .map(|(company, _)| *company);
    let limits = originlink_formats::Limits::default();
    match (company, originlink_formats::read(doc.to_string().as_bytes(), &limits)) {
        (Some(company), Ok((_, mut cert))) => {
            cert.exporter.name = company.to_owned();
            serde_json::from_str(&originlink_formats::json::write(&cert)).unwrap_or(doc)
        }
        _ => doc,
    }
}

/// The bill of materials of the first good of an application document, as a `qualify`
/// request: realistic inputs per product (paddy for milled rice, cotton yarn for T-shirts,
/// frames and parts for bicycles, …), valued as shares of the good's FOB value.
pub fn bill_of_materials(doc: &Value) -> Option<Value> {
    let limits = originlink_formats::Limits::default();
    let (_, cert) = originlink_formats::read(doc.to_string().as_bytes(), &limits).ok()?;
    let item = cert.items.first()?;
    let fob = item.fob.as_ref()?;
    let value: f64 = fob.amount_text().parse().ok()?;
    let share = |p: f64| format!("{:.2}", value * p);
    let hs = item.hs.dotted();
    // (material, HS, share of FOB, originating?)
    let materials: &[(&str, &str, f64, bool)] = match &hs[..4] {
        "1006" => &[("paddy rice, grown and harvested locally", "1006.10", 0.55, true)],
        "6109" => {
            &[("combed cotton yarn", "5205.12", 0.35, false), ("sewing thread", "5204.11", 0.03, false)]
        }
        "8712" => {
            &[("frames and forks", "8714.91", 0.22, false), ("wheels and spokes", "8714.92", 0.12, false)]
        }
        "4011" => &[
            ("natural rubber, smoked sheets", "4001.21", 0.40, true),
            ("carbon black", "2803.00", 0.12, false),
        ],
        "0901" => &[("coffee cherries, grown locally", "0901.11", 0.60, true)],
        "6403" => {
            &[("leather uppers, cut", "6406.10", 0.28, false), ("rubber outer soles", "6406.20", 0.10, false)]
        }
        "1701" => &[("sugar cane, grown locally", "1212.93", 0.50, true)],
        "8516" => &[("heating elements", "8516.80", 0.18, false), ("thermostats", "9032.10", 0.07, false)],
        "9403" => &[("sawn rubberwood", "4407.29", 0.35, true), ("lacquer", "3208.10", 0.06, false)],
        _ => &[("farmed shrimp, raised locally", "0306.17", 0.70, true)],
    };
    Some(serde_json::json!({
        "agreement": "ATIGA",
        "exporting_country": cert.exporting_country.as_str(),
        "product": { "hs": hs },
        "valuation": { "basis": "FOB", "value": fob.amount_text(), "currency": fob.currency().as_str() },
        "materials": materials.iter().map(|(name, mhs, p, orig)| serde_json::json!({
            "name": name, "hs": mhs, "value": share(*p),
            "status": if *orig { "originating" } else { "non-originating" },
        })).collect::<Vec<_>>(),
    }))
}

/// An import declaration claiming ATIGA preference for every item of a received certificate,
/// in full.
pub fn declaration_for(cert: &originlink_model::Certificate, number: &str, date: chrono::NaiveDate) -> Value {
    let cnum = cert.number.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_default();
    let lines: Vec<Value> = cert
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            serde_json::json!({
                "line_no": i + 1,
                "hs_code": it.hs.dotted(),
                "description": it.description,
                "quantity": it.quantity.value().to_string(),
                "unit": it.quantity.unit().as_str(),
                "customs_value": {
                    "amount": it.fob.as_ref().map(|m| m.amount_text()).unwrap_or_else(|| "100.00".into()),
                    "currency": it.fob.as_ref().map(|m| m.currency().as_str().to_owned()).unwrap_or_else(|| "USD".into()),
                },
                "origin_country": it.origin_country.as_str(),
                "claimed_agreement": "ATIGA",
                "eco": { "issuing_country": cert.exporting_country.as_str(), "number": cnum },
                "invoice_number": it.invoice.number,
            })
        })
        .collect();
    serde_json::json!({
        "number": number,
        "importer": { "name": cert.consignee.name, "id": cert.consignee.id },
        "importing_country": cert.importing_country.as_str(),
        "declaration_date": date.format("%Y-%m-%d").to_string(),
        "lines": lines,
    })
}
