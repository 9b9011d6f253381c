//! `originlink demo`: a whole region on this machine. Keys and a signed trust list, a gateway
//! and three country nodes (KH, TH, VN) as real HTTPS services with mutual TLS on loopback,
//! on SQLite files under `./demo-data/`, seeded with traders and certificates across the
//! pairs (one replaced, one revoked) and a few hundred more as history, most of them declared
//! at their destination. It prints a walk-through and runs until Ctrl-C;
//! `--quick` checks every expected state instead and exits.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use serde_json::{Value, json};

use originlink_region::{self as region, Api, Options, Region};

/// Run a demo region.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where keys, configurations and databases go (emptied first).
    #[arg(long, default_value = "demo-data")]
    dir: PathBuf,
    /// Run the scripted scenario, check every expected state, print a summary and exit
    /// (0 when everything is as expected).
    #[arg(long)]
    quick: bool,
    /// Only write the region (keys, trust list, configurations, databases with users) and exit;
    /// start the processes yourself with `originlink gateway` and `originlink node`.
    #[arg(long)]
    setup_only: bool,
    /// How many more certificates to issue across the six pairs as history (most of them
    /// declared at their destination), so that lists, queues and charts show something real
    /// (`--quick`: at most 24).
    #[arg(long, default_value_t = 300)]
    history: usize,
    /// A PostgreSQL server (e.g. `postgres://postgres@127.0.0.1:5432`) to keep the region on
    /// instead of SQLite: databases `originlink_demo_kh`, `_th`, `_vn` and `_gateway` are
    /// created there (dropped first when they exist: they are demo data).
    #[arg(long)]
    postgres: Option<String>,
    /// Replicas of each node and of the gateway (needs `--postgres`): the replicas of a node
    /// share its database, each has its own listeners, and every one is an endpoint in the
    /// trust list that senders fail over between.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    replicas: u8,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(demo(a))
}

async fn demo(a: Args) -> Result<ExitCode> {
    let mut opts = Options { replicas: usize::from(a.replicas), ..Options::default() };
    if let Some(server) = &a.postgres {
        let (nodes, gateway) =
            super::fresh_databases(server, "originlink_demo", &["kh", "th", "vn", "gateway"])?;
        opts.database = Some(nodes);
        opts.gateway_database = Some(gateway);
    } else if a.replicas > 1 {
        bail!("--replicas {} needs --postgres: the replicas of a node share one database", a.replicas);
    }
    let region = region::setup(&a.dir, &opts).await?;
    if a.setup_only {
        outln!("region written to {}", region.dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let stops = start(&region).await?;
    let history = if a.quick { a.history.min(24) } else { a.history };
    let outcome = match scenario(&region).await {
        Ok(summary) => seed_history(&region, history).await.map(|h| format!("{summary}\n{h}")),
        Err(e) => Err(e),
    };
    match (&outcome, a.quick) {
        (Ok(summary), true) => {
            outln!("{summary}");
            outln!("demo: every expected state reached");
        }
        (Err(e), true) => {
            eprintln!("demo: FAILED: {e:#}");
        }
        (Ok(summary), false) => {
            outln!("{summary}");
            walkthrough(&region);
            let _ = tokio::signal::ctrl_c().await;
            outln!("stopping");
        }
        (Err(e), false) => eprintln!("demo: the scripted scenario failed: {e:#}"),
    }
    for s in stops {
        s.trigger();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(if outcome.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// One GET of a console's public endpoint: status and body.
async fn public_get(url: &str) -> Result<(u16, Vec<u8>)> {
    let (s, b) = originlink_exchange::client::get_public(url, "", Duration::from_secs(10))
        .await
        .with_context(|| format!("GET {url}"))?;
    Ok((s.as_u16(), b.to_vec()))
}

/// The status lists at work: the issuer's public page answers for the replaced certificate's
/// two versions and the revoked one by number and check code, the issuer's signed list names
/// both, and every other member holds it (it travelled over the exchange). The revoked
/// certificate's signed document and the list are written under `check/` in the region's
/// folder, for `originlink verify --status-list` (README, "Anyone: check a certificate").
async fn status_lists(
    region: &Region,
    apis: &std::collections::BTreeMap<String, Api>,
    (from, first, replaced): (&str, &Value, &Value),
    (rfrom, rto, revoked): (&str, &str, &Value),
) -> Result<String> {
    let officer = format!("{}-officer", from.to_ascii_lowercase());
    let document = |v: &Value| v["id"].as_i64().map(|id| format!("/api/v1/certificates/{id}/document"));
    let console = region.nodes[from].console_url.clone().context("the issuer's console")?;
    let v1 = apis[from].bytes(&document(first).context("id")?, &officer).await?;
    let v2 = apis[from].bytes(&document(replaced).context("id")?, &officer).await?;
    let rofficer = format!("{}-officer", rfrom.to_ascii_lowercase());
    let rdoc = apis[rfrom].bytes(&document(revoked).context("id")?, &rofficer).await?;
    let rnumber = revoked["number"].as_str().context("number")?;
    let number = first["number"].as_str().context("number")?;
    for (doc, number, expect) in
        [(&v1, number, "superseded"), (&v2, number, "valid"), (&rdoc, rnumber, "revoked")]
    {
        let code = originlink_trust::statuslist::check_code(doc);
        let url = format!("{console}/public/v1/verify?number={number}&code={code}");
        let (s, body) = public_get(&url).await?;
        let v: Value = serde_json::from_slice(&body).with_context(|| format!("{url} answers JSON"))?;
        if s != 200 || v["certificate"]["status"] != expect {
            bail!("{url}: {s} {v}, expected {expect}");
        }
    }
    // A wrong code learns nothing.
    let (_, body) =
        public_get(&format!("{console}/public/v1/verify?number={rnumber}&code=00000-00000")).await?;
    if serde_json::from_slice::<Value>(&body)?["found"] != false {
        bail!("a wrong check code found {rnumber}");
    }
    // The issuer's list, signed, names both; every member holds it.
    let mut list = Vec::new();
    for (code, info) in &region.nodes {
        let url =
            format!("{}/public/v1/status-lists/{rfrom}", info.console_url.as_deref().context("console")?);
        list = eventually(&format!("{rfrom}'s status list at {code}"), 30, || async {
            let (s, body) = public_get(&url).await?;
            let v: Value = if s == 200 { serde_json::from_slice(&body)? } else { Value::Null };
            let entries = v["entries"].as_array().cloned().unwrap_or_default();
            let names = |n: &str, st: &str| entries.iter().any(|e| e["number"] == n && e["status"] == st);
            Ok((names(rnumber, "revoked") && names(number, "superseded")).then_some(body))
        })
        .await?;
    }
    let check = region.dir.join("check");
    std::fs::create_dir_all(&check)?;
    let ext = if rdoc.starts_with(b"<") { "xml" } else { "json" };
    std::fs::write(check.join(format!("{rnumber}.{ext}")), &rdoc)?;
    std::fs::write(check.join(format!("{rfrom}-status-list.json")), &list)?;
    Ok(format!(
        "{rfrom}'s signed status list names {rnumber} revoked and {number} v1 superseded, and every member \
         holds it ({rto} included); checked by number and check code: {number} v1 superseded, v2 valid, \
         {rnumber} revoked"
    ))
}

/// Starts the gateway and every node in this process (each its own HTTPS listener).
async fn start(region: &Region) -> Result<Vec<originlink_exchange::server::Shutdown>> {
    let mut stops = Vec::new();
    let gateways =
        std::iter::once(&region.gateway_config).chain(region.gateway_replicas.iter().map(|r| &r.config));
    for config in gateways {
        let gcfg = originlink_gateway::config::Config::load(config)?;
        let gw = super::gateway::Built::build(&gcfg, Arc::new(originlink_service::SystemClock))
            .await
            .with_context(|| format!("gateway {}", config.display()))?;
        stops.push(gw.gateway.shutdown_handle());
        tokio::spawn(gw.run());
    }
    for (code, info) in &region.nodes {
        for config in std::iter::once(&info.config).chain(info.replicas.iter().map(|r| &r.config)) {
            let cfg = originlink_node::Config::load(config)?;
            let built = super::node::Built::build(&cfg, Arc::new(originlink_node::SystemClock), config)
                .await
                .with_context(|| format!("node {code} ({})", config.display()))?;
            stops.push(built.app.handle());
            tokio::spawn(built.run());
        }
    }
    Ok(stops)
}

/// Polls `f` until it returns `Some`, for at most `secs`.
async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if Instant::now() > until {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The received record of `number` v`version` at `api`'s node, once it is there.
pub(crate) async fn received(api: &Api, customs: &str, number: &str, version: i64) -> Result<Option<Value>> {
    let list = api.ok("GET", "/api/v1/received?limit=200", customs, None).await?;
    Ok(list
        .as_array()
        .and_then(|l| l.iter().find(|r| r["number"] == number && r["version"] == version).cloned()))
}

async fn scenario(region: &Region) -> Result<String> {
    let started = Instant::now();
    let now = Utc::now();
    let apis: std::collections::BTreeMap<String, Api> =
        region.nodes.keys().map(|c| Ok((c.clone(), region.api(c)?))).collect::<Result<_>>()?;
    let pairs = [("KH", "TH"), ("KH", "VN"), ("TH", "VN"), ("VN", "KH"), ("TH", "KH"), ("VN", "TH")];
    let mut issued = Vec::new();
    for (i, (from, to)) in pairs.iter().enumerate() {
        let api = &apis[*from];
        let exporter = &region.nodes[*from].exporters[i % 2];
        let doc = region::application_document(from, to, i as u32 + 1, 2 + i % 3, now)?;
        let cert = region::issue(api, from, exporter, doc, None).await?;
        issued.push((from.to_string(), to.to_string(), exporter.clone(), cert));
    }
    // Each arrives, verified, and its status comes back.
    for (from, to, _, cert) in &issued {
        let number = cert["number"].as_str().context("number")?;
        let customs = format!("{}-customs", to.to_ascii_lowercase());
        let r =
            eventually(&format!("{number} at {to}"), 30, || received(&apis[to], &customs, number, 1)).await?;
        if r["status"] != "valid" {
            bail!("{number} arrived at {to} as {}: {}", r["status"], r["verdict"]);
        }
        let officer = format!("{}-officer", from.to_ascii_lowercase());
        let id = cert["id"].as_i64().context("id")?;
        eventually(&format!("the status of {number} back at {from}"), 30, || async {
            let c = apis[from].ok("GET", &format!("/api/v1/certificates/{id}"), &officer, None).await?;
            Ok((c["remote_status"] == "received").then_some(()))
        })
        .await?;
    }
    // Replace the first, revoke the second.
    let (from, to, exporter, first) = &issued[0];
    let doc = region::application_document(from, to, 1, 3, now)?;
    let replaced =
        region::issue(&apis[from], from, exporter, doc, Some(first["id"].as_i64().context("id")?)).await?;
    let number = first["number"].as_str().context("number")?.to_owned();
    let customs = format!("{}-customs", to.to_ascii_lowercase());
    eventually("the replacement", 30, || async {
        let v2 = received(&apis[to], &customs, &number, 2).await?;
        let v1 = received(&apis[to], &customs, &number, 1).await?;
        Ok(match (v2, v1) {
            (Some(a), Some(b)) if a["status"] == "valid" && b["status"] == "superseded" => Some(()),
            _ => None,
        })
    })
    .await?;
    let (rfrom, rto, _, second) = &issued[1];
    let rid = second["id"].as_i64().context("id")?;
    let officer = format!("{}-officer", rfrom.to_ascii_lowercase());
    apis[rfrom.as_str()]
        .ok(
            "POST",
            &format!("/api/v1/certificates/{rid}/revoke"),
            &officer,
            Some(json!({"reason": "issued on a wrong invoice"})),
        )
        .await?;
    let rnumber = second["number"].as_str().context("number")?.to_owned();
    let rcustoms = format!("{}-customs", rto.to_ascii_lowercase());
    eventually("the revocation", 30, || async {
        let r = received(&apis[rto.as_str()], &rcustoms, &rnumber, 1).await?;
        Ok(r.filter(|r| r["status"] == "revoked").map(|_| ()))
    })
    .await?;
    let status = status_lists(region, &apis, (from, first, &replaced), (rfrom, rto, second)).await?;
    // TH customs declares the goods of the VN → TH certificate: granted, duty computed, and VN
    // hears that it was used.
    let (vfrom, vto, _, vcert) = &issued[5];
    let vnumber = vcert["number"].as_str().context("number")?.to_owned();
    let vcustoms = format!("{}-customs", vto.to_ascii_lowercase());
    let rec =
        eventually("the certificate at TH", 30, || received(&apis[vto.as_str()], &vcustoms, &vnumber, 1))
            .await?;
    let doc =
        apis[vto.as_str()].ok("GET", rec["document"].as_str().context("link")?, &vcustoms, None).await?;
    let xml = doc.as_str().context("the document is XML text")?.as_bytes().to_vec();
    let (_, cert) = originlink_formats::read(&xml, &originlink_formats::Limits::default())
        .map_err(|p| anyhow::anyhow!("the received certificate does not read: {} problems", p.len()))?;
    let decl = region::declaration_for(&cert, "TH-IMP-DEMO-000001", now.date_naive());
    let d = apis[vto.as_str()].ok("POST", "/api/v1/declarations", &vcustoms, Some(decl)).await?;
    let lines = d["lines"].as_array().context("lines")?;
    if let Some(l) = lines.iter().find(|l| l["outcome"] != "granted") {
        bail!("declaration line {} was {}: {}", l["line_no"], l["outcome"], l["reasons"]);
    }
    let vid = vcert["id"].as_i64().context("id")?;
    let vofficer = format!("{}-officer", vfrom.to_ascii_lowercase());
    eventually("the utilization back at VN", 30, || async {
        let c =
            apis[vfrom.as_str()].ok("GET", &format!("/api/v1/certificates/{vid}"), &vofficer, None).await?;
        Ok(c["remote_status"].as_str().filter(|s| s.starts_with("utilized")).map(|_| ()))
    })
    .await?;
    // Every outbox drains.
    for (code, api) in &apis {
        let admin = format!("{}-admin", code.to_ascii_lowercase());
        eventually(&format!("{code}'s outbox to drain"), 30, || async {
            let s = api.ok("GET", "/api/v1/exchange", &admin, None).await?;
            Ok((s["outbox_pending"] == 0 && s["outbox_dead"] == 0 && s["held"] == 0).then_some(()))
        })
        .await?;
    }
    Ok(format!(
        "demo: {} certificates issued across {} pairs, all verified at their destination with the status back \
         at the issuer; {replaced} replaced (v2 valid, v1 superseded at {to}); {rnumber} revoked at {rto}; \
         {vnumber} used by TH customs on declaration TH-IMP-DEMO-000001 ({} lines granted, VN told); \
         {status}; outboxes empty ({:.1} s)",
        issued.len() + 1,
        pairs.len(),
        lines.len(),
        started.elapsed().as_secs_f64(),
        replaced = replaced["number"].as_str().unwrap_or_default(),
    ))
}

/// `count` certificates across the six pairs, issued by both exporters of each country, and
/// two of every three declared at their destination (every fifth claiming no preference),
/// so that the consoles' lists, queues, charts and notifications show something real.
async fn seed_history(region: &Region, count: usize) -> Result<String> {
    let started = Instant::now();
    let now = Utc::now();
    let apis: std::collections::BTreeMap<String, Api> =
        region.nodes.keys().map(|c| Ok((c.clone(), region.api(c)?))).collect::<Result<_>>()?;
    let pairs = [("KH", "TH"), ("KH", "VN"), ("TH", "VN"), ("VN", "KH"), ("TH", "KH"), ("VN", "TH")];
    // Eight at a time: the nodes sign each approval and send it on.
    let mut running = tokio::task::JoinSet::new();
    let mut issued = Vec::with_capacity(count);
    for i in 0..count {
        let (from, to) = pairs[i % pairs.len()];
        let api = apis[from].clone();
        let round = i / pairs.len();
        let exporter = region.nodes[from].exporters[round % 2].clone();
        let doc = region::application_document(from, to, 100 + i as u32, 1 + round % 3, now)?;
        running
            .spawn(async move { region::issue(&api, from, &exporter, doc, None).await.map(|c| (i, to, c)) });
        if running.len() >= 8
            && let Some(done) = running.join_next().await
        {
            issued.push(done??);
        }
    }
    while let Some(done) = running.join_next().await {
        issued.push(done??);
    }
    issued.sort_by_key(|(i, _, _)| *i);
    let mut declared = 0;
    for (i, to, cert) in issued.iter().filter(|(i, _, _)| (i / pairs.len()) % 3 != 2) {
        let number = cert["number"].as_str().context("number")?.to_owned();
        let customs = format!("{}-customs", to.to_ascii_lowercase());
        let api = &apis[*to];
        let path = format!("/api/v1/received?number={number}");
        let rec = eventually(&format!("{number} at {to}"), 60, || async {
            let list = api.ok("GET", &path, &customs, None).await?;
            Ok(list.as_array().and_then(|l| l.iter().find(|r| r["number"] == number.as_str()).cloned()))
        })
        .await?;
        let doc = api.ok("GET", rec["document"].as_str().context("link")?, &customs, None).await?;
        let xml = doc.as_str().context("the document is XML text")?.as_bytes().to_vec();
        let (_, c) = originlink_formats::read(&xml, &originlink_formats::Limits::default())
            .map_err(|p| anyhow::anyhow!("{number} does not read: {} problems", p.len()))?;
        let mut decl = region::declaration_for(&c, &format!("{to}-IMP-HIST-{i:06}"), now.date_naive());
        if (i / pairs.len()).is_multiple_of(5) {
            for l in decl["lines"].as_array_mut().into_iter().flatten() {
                l["claimed_agreement"] = Value::Null;
            }
        }
        api.ok("POST", "/api/v1/declarations", &customs, Some(decl)).await?;
        declared += 1;
    }
    Ok(format!(
        "history: {} more certificates across the six pairs, {declared} of them declared at their destination ({:.1} s)",
        issued.len(),
        started.elapsed().as_secs_f64()
    ))
}

fn walkthrough(region: &Region) {
    let kh = &region.nodes["KH"];
    let th = &region.nodes["TH"];
    let ca = |c: &str| region.dir.join(c).join("keys").join("ca.crt");
    outln!();
    outln!("The region is running (Ctrl-C stops it). Data: {}", region.dir.display());
    outln!("  gateway  {}", region.gateway_url);
    for r in &region.gateway_replicas {
        outln!("  gateway  {}  (replica; console {})", r.url, r.console_url);
    }
    for (code, n) in &region.nodes {
        outln!("  {code} node  {}", n.url);
        for r in &n.replicas {
            outln!("  {code} node  {}  (replica; console {})", r.url, r.console_url);
        }
    }
    outln!();
    outln!("Open a console in your browser and sign in (demo passwords):");
    if let Some(url) = &region.gateway_console_url {
        outln!("  gateway console  {url}");
        for (user, password) in &region.operators {
            outln!("      {user:<12} {password}");
        }
    }
    for (code, n) in &region.nodes {
        let Some(url) = &n.console_url else { continue };
        outln!("  {code} console  {url}");
        for (user, password) in &n.passwords {
            outln!("      {user:<12} {password}");
        }
    }
    let kh_console = kh.console_url.as_deref().unwrap_or("");
    let check = region.dir.join("check");
    let (list, op) = (region.dir.join("trust-list.json"), region.dir.join("operator").join("operator.crt"));
    outln!();
    outln!("Anyone can check a certificate, no sign-in: {kh_console}/verify");
    if let Ok(files) = std::fs::read_dir(&check) {
        let mut names: Vec<PathBuf> = files.filter_map(|f| f.ok().map(|f| f.path())).collect();
        names.sort();
        let is_list = |p: &&PathBuf| p.to_string_lossy().ends_with("status-list.json");
        if let (Some(doc), Some(status)) = (names.iter().find(|p| !is_list(p)), names.iter().find(is_list)) {
            outln!(
                "  # the revoked certificate, offline with KH's signed status list, then online: INVALID REVOKED"
            );
            outln!(
                "  originlink verify {} --trust-list {} --operator {} --status-list {}",
                doc.display(),
                list.display(),
                op.display(),
                status.display()
            );
            outln!(
                "  originlink verify {} --trust-list {} --operator {} --online {kh_console}",
                doc.display(),
                list.display(),
                op.display()
            );
        }
    }
    outln!();
    outln!("Tokens (demo only):");
    for (code, n) in &region.nodes {
        for (user, token) in &n.tokens {
            outln!("  {code} {user:<12} {token}");
        }
    }
    let exp = &kh.exporters[0];
    outln!();
    outln!("Try it (curl pins each node's own certificate):");
    outln!("  # an exporter in KH applies for a certificate to TH");
    outln!("  originlink example --agreement ATIGA --from KH --to TH --format json > app.json");
    outln!(
        "  curl --cacert {} -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' \\\n     \
         -d \"{{\\\"document\\\": $(cat app.json)}}\" {}/api/v1/applications",
        ca("KH").display(),
        kh.tokens[exp],
        kh.url
    );
    outln!(
        "  curl --cacert {} -X POST -H 'Authorization: Bearer {}' {}/api/v1/applications/ID/submit",
        ca("KH").display(),
        kh.tokens[exp],
        kh.url
    );
    outln!("  # the KH officer approves: the certificate is numbered, signed, stored and sent to TH");
    outln!(
        "  curl --cacert {} -X POST -H 'Authorization: Bearer {}' {}/api/v1/applications/ID/approve",
        ca("KH").display(),
        kh.tokens["kh-officer"],
        kh.url
    );
    outln!("  # TH customs sees it, verified");
    outln!(
        "  curl --cacert {} -H 'Authorization: Bearer {}' {}/api/v1/received",
        ca("TH").display(),
        th.tokens["th-customs"],
        th.url
    );
    outln!("  # and KH sees what TH reported");
    outln!(
        "  curl --cacert {} -H 'Authorization: Bearer {}' {}/api/v1/certificates/CERT_ID/statuses",
        ca("KH").display(),
        kh.tokens["kh-officer"],
        kh.url
    );
    outln!("  # TH customs files a declaration against a received certificate; each line is decided");
    outln!("  # (decl.json: the example in README, \"Customs officer: declarations, duty, verification\")");
    outln!(
        "  curl --cacert {} -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' --data @decl.json {}/api/v1/declarations",
        ca("TH").display(),
        th.tokens["th-customs"],
        th.url
    );
    outln!(
        "  curl --cacert {} -H 'Authorization: Bearer {}' {}/api/v1/declarations   # the queue, by risk",
        ca("TH").display(),
        th.tokens["th-customs"],
        th.url
    );
    outln!(
        "  # the exchange at a glance: curl --cacert {} -H 'Authorization: Bearer {}' {}/api/v1/exchange",
        ca("KH").display(),
        kh.tokens["kh-admin"],
        kh.url
    );
}
