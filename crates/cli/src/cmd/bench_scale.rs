//! `originlink bench scale`: a node holding many certificates.
//!
//! Fills one node's database (SQLite, or PostgreSQL with `--postgres`) through the node's own
//! use cases: `--certificates` applications created, submitted and approved (numbered, written,
//! signed with the authority key, audited; approvals arrive together and share commits), half
//! as many certificates received from another member (signed by that member's key) and a
//! declaration for every fourth received one (the rules run, lines decided). Then it measures
//! the node as a separate process: resident memory while it serves the list, search and
//! document endpoints, their p50/p95 times, the database's size, and `audit verify` (its time
//! and peak memory).

use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use originlink_model::{Agreement, CertificateNumber, CountryCode};
use originlink_node::issue::DocumentSigner as _;
use originlink_node::{AppState, Config, SystemClock};
use originlink_region::{Options, Region};
use originlink_store::{Ctx, NewApplication, NewReceived, Transition, User};
use tokio::task::JoinSet;

/// A node with many certificates: memory, list/search/document times, size, audit verify.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Certificates issued by the node (half as many are received, a quarter of those declared).
    #[arg(long, default_value_t = 100_000)]
    certificates: usize,
    /// Working directory (emptied first).
    #[arg(long, default_value = "bench-scale")]
    dir: PathBuf,
    /// PostgreSQL server (e.g. `postgres://postgres@127.0.0.1:5432`): the node's database is a
    /// scratch database there, dropped afterwards. Default: SQLite in the directory.
    #[arg(long)]
    postgres: Option<String>,
    /// Requests per endpoint measured.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Approvals in flight while filling.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Keep the directory (and the PostgreSQL database) afterwards.
    #[arg(long)]
    keep: bool,
    /// Measure a directory filled by an earlier `--keep` run (with the same `--certificates`;
    /// migrated first) instead of filling a new one. SQLite only.
    #[arg(long, conflicts_with = "postgres")]
    reuse: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(bench(a))
}

async fn bench(a: Args) -> Result<ExitCode> {
    // One scratch database per node (`{country}` in the URL): each node's audit chain is keyed
    // with its own key.
    let name = format!("originlink_scale_{}", std::process::id());
    let databases = [format!("{name}_kh"), format!("{name}_th")];
    if let Some(base) = &a.postgres {
        for d in &databases {
            super::psql(&format!("{base}/postgres"), &format!("CREATE DATABASE {d}"))?;
        }
    }
    let out = measure(&a, a.postgres.as_ref().map(|b| format!("{b}/{name}_{{country}}"))).await;
    match &a.postgres {
        Some(base) if !a.keep => {
            for d in &databases {
                super::psql(&format!("{base}/postgres"), &format!("DROP DATABASE {d} WITH (FORCE)"))?;
            }
        }
        Some(_) => eprintln!("bench scale: kept the databases {}", databases.join(", ")),
        None => {}
    }
    out
}

async fn measure(a: &Args, pg: Option<String>) -> Result<ExitCode> {
    let backend = if pg.is_some() { "postgres" } else { "sqlite" };
    let opts = Options {
        countries: vec!["KH".into(), "TH".into()],
        database: pg.clone(),
        log_level: Some("warn".into()),
        ..Options::default()
    };
    let n = a.certificates;
    let (region, events) = if a.reuse {
        let region = Region::load(&a.dir)?;
        let migrate = ["node", "migrate", "--config", path(&region.nodes["KH"].config)?];
        let (secs, _) = timed_peak(&migrate)?;
        println!("bench scale migrate backend={backend} seconds={secs:.1}");
        let cfg = Config::load(&region.nodes["KH"].config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let store = originlink_store::open(cfg.database.url.expose()).await?;
        let events = store.audit_head().await?.0;
        (region, events)
    } else {
        let region = originlink_region::setup(&a.dir, &opts).await?;
        standalone(&region.nodes["KH"].config)?;
        let events = fill(a, &region, backend).await?;
        (region, events)
    };
    let kh = &region.nodes["KH"];

    let size = match &pg {
        Some(url) => {
            let url = url.replace("{country}", "kh");
            super::psql(&url, "SELECT pg_database_size(current_database())")?.trim().parse::<u64>()?
        }
        None => ["node.db", "node.db-wal"]
            .iter()
            .map(|f| std::fs::metadata(region.dir.join("KH").join(f)).map_or(0, |m| m.len()))
            .sum(),
    };
    println!(
        "bench scale size backend={backend} bytes={size} mb={:.0} bytes_per_issued={:.0}",
        size as f64 / 1e6,
        size as f64 / n as f64
    );

    let (secs, peak) = timed_peak(&["audit", "verify", "--config", path(&kh.config)?])?;
    println!(
        "bench scale audit_verify backend={backend} events={events} seconds={secs:.1} peak_rss_mb={:.0}",
        peak as f64 / 1e6
    );

    serve(a, &region, backend, n).await?;
    if !a.keep {
        let _ = std::fs::remove_dir_all(&a.dir);
    }
    Ok(ExitCode::SUCCESS)
}

/// Fills KH's database through the node's use cases; the audit events it holds.
async fn fill(a: &Args, region: &Region, backend: &str) -> Result<i64> {
    let kh = &region.nodes["KH"];
    let cfg = Config::load(&kh.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let n = a.certificates;
    eprintln!("bench scale: filling KH's {backend} database with {n} issued certificates …");
    let started = Instant::now();
    let state = AppState::build(&cfg, Arc::new(SystemClock)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let users = Users::of(&state, kh).await?;
    let issued_s = issue(&state, &users, n, a.concurrency).await?;
    let received = n / 2;
    let (received_s, declared, declared_s) = receive(&state, region, &users, received).await?;
    state.store.checkpoint_audit().await?;
    let events = state.store.audit_head().await?.0;
    drop(state);
    let fill_s = started.elapsed().as_secs_f64();
    println!(
        "bench scale fill backend={backend} issued={n} issued_per_s={:.0} received={received} received_per_s={:.0} \
         declarations={declared} declarations_per_s={:.0} audit_events={events} seconds={fill_s:.0}",
        n as f64 / issued_s,
        received as f64 / received_s,
        declared as f64 / declared_s
    );
    Ok(events)
}

/// Removes the `[exchange]` section of a node configuration: the node stands alone, so its
/// certificates queue no messages for a gateway that is not running.
fn standalone(config: &Path) -> Result<()> {
    let text = std::fs::read_to_string(config)?;
    let (Some(from), Some(to)) = (text.find("[exchange]"), text.find("[console]")) else {
        bail!("{} has no [exchange] section before [console]", config.display());
    };
    std::fs::write(config, format!("{}{}", &text[..from], &text[to..]))?;
    Ok(())
}

fn path(p: &Path) -> Result<&str> {
    p.to_str().context("non-UTF-8 path")
}

/// The users acting in the fill.
struct Users {
    exporter: User,
    officer: User,
    customs: User,
}

impl Users {
    async fn of(state: &AppState, kh: &originlink_region::NodeInfo) -> Result<Users> {
        let user = |name: String| async move {
            let token = kh.tokens.get(&name).with_context(|| format!("no user {name}"))?;
            state
                .store
                .user_by_token_hash(&originlink_store::token_hash(token))
                .await?
                .context("no such user")
        };
        let exporter = kh.exporters.first().context("no exporter")?.clone();
        Ok(Users {
            exporter: user(exporter).await?,
            officer: user("kh-officer".into()).await?,
            customs: user("kh-customs".into()).await?,
        })
    }
}

fn country(c: &str) -> Result<CountryCode> {
    CountryCode::parse(c).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `n` applications created, submitted and approved, `concurrency` at a time; the seconds.
async fn issue(state: &AppState, users: &Users, n: usize, concurrency: usize) -> Result<f64> {
    let (kh, th) = (country("KH")?, country("TH")?);
    let date = Utc::now().date_naive();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    let company = users.exporter.company_id.context("the exporter has a company")?;
    for i in 0..n {
        while tasks.len() >= concurrency {
            tasks.join_next().await.context("a task")???;
        }
        let (state, exporter, officer) = (state.clone(), users.exporter.clone(), users.officer.clone());
        tasks.spawn(async move {
            let mut cert = originlink_model::sample::sample(Agreement::Atiga, kh, th, date, 2, i as u32);
            cert.number = None;
            cert.certification = None;
            let ctx = Ctx::new(format!("user:{} ({})", exporter.id, exporter.name), Utc::now());
            let app = NewApplication {
                company_id: company,
                created_by: exporter.id,
                format: "json".into(),
                document: originlink_formats::json::write(&cert).into_bytes(),
                self_assessment: None,
                assessment: None,
                replaces: None,
                back_to_back_of: None,
                copied_from: None,
            };
            let app = state.store.create_application(&ctx, app).await?;
            state.store.transition(&ctx, app.id, Transition::Submit).await?;
            originlink_node::app::applications::approve(&state, &officer, app.id)
                .await
                .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code))?;
            anyhow::Ok(())
        });
        if i > 0 && i % 50_000 == 0 {
            eprintln!("bench scale: {i} issued, {:.0}/s", i as f64 / started.elapsed().as_secs_f64());
        }
    }
    while let Some(t) = tasks.join_next().await {
        t??;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// `n` certificates received from TH (signed by TH's key on two threads), and a declaration
/// for every fourth; (seconds receiving, declarations, seconds declaring).
async fn receive(state: &AppState, region: &Region, users: &Users, n: usize) -> Result<(f64, usize, f64)> {
    let th_cfg = Config::load(&region.nodes["TH"].config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let signer = Arc::new(originlink_node::issue::TrustSigner::load(&th_cfg.authority.keys)?);
    let (kh, th) = (country("KH")?, country("TH")?);
    let date = Utc::now().date_naive();
    let started = Instant::now();
    let (send, mut docs) =
        tokio::sync::mpsc::channel::<Result<(usize, originlink_model::Certificate, Vec<u8>)>>(256);
    let workers = std::thread::available_parallelism().map_or(1, |p| p.get());
    for w in 0..workers {
        let (send, signer) = (send.clone(), signer.clone());
        std::thread::spawn(move || {
            for i in (w..n).step_by(workers) {
                let one = (|| {
                    let mut cert =
                        originlink_model::sample::sample(Agreement::Atiga, th, kh, date, 2, i as u32);
                    let number = format!("TH-{}-{:07}", date.format("%Y"), i + 1);
                    cert.number =
                        Some(CertificateNumber::parse(&number).map_err(|e| anyhow::anyhow!("{e}"))?);
                    let xml = originlink_formats::xml::write(&cert);
                    let signed = signer.sign(xml.as_bytes()).map_err(|e| anyhow::anyhow!(e))?;
                    Ok((i, cert, signed))
                })();
                if send.blocking_send(one).is_err() {
                    return;
                }
            }
        });
    }
    drop(send);
    let ctx = Ctx::new("member:TH", Utc::now());
    let mut to_declare = Vec::new();
    let mut tasks = JoinSet::new();
    while let Some(doc) = docs.recv().await {
        let (i, cert, signed) = doc?;
        while tasks.len() >= 16 {
            tasks.join_next().await.context("a task")???;
        }
        let number = cert.number.as_ref().map(|c| c.as_str().to_owned()).context("numbered")?;
        let mut rec = NewReceived::valid("TH", &number, 1, signed);
        rec.exporter = Some(cert.exporter.name.clone());
        let (store, ctx) = (state.store.clone(), ctx.clone());
        tasks.spawn(
            async move { store.insert_received(&ctx, rec).await.map(drop).map_err(anyhow::Error::from) },
        );
        if i % 4 == 0 {
            to_declare.push((i, cert));
        }
    }
    while let Some(t) = tasks.join_next().await {
        t??;
    }
    let received_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let declared = to_declare.len();
    for chunk in to_declare.chunks(16) {
        let mut tasks = JoinSet::new();
        for (i, cert) in chunk {
            let decl = originlink_region::declaration_for(cert, &format!("KH-IMP-{i:07}"), date);
            let (state, customs) = (state.clone(), users.customs.clone());
            tasks.spawn(async move {
                originlink_node::app::customs::declare(&state, &customs, decl.to_string().as_bytes())
                    .await
                    .map(drop)
                    .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code))
            });
        }
        while let Some(t) = tasks.join_next().await {
            t??;
        }
    }
    Ok((received_s, declared, started.elapsed().as_secs_f64()))
}

/// Runs `originlink ARGS` to the end: its seconds and its peak resident memory (bytes, from
/// `VmHWM`, read while it runs).
fn timed_peak(args: &[&str]) -> Result<(f64, u64)> {
    let started = Instant::now();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut peak = 0;
    loop {
        peak = peak.max(proc_kb(child.id(), "VmHWM:").unwrap_or(0) * 1024);
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("originlink {args:?} failed: {status}");
            }
            return Ok((started.elapsed().as_secs_f64(), peak));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A `/proc/PID/status` figure in kB.
fn proc_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches(" kB").trim().parse().ok()
}

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the node and measures its endpoints and its memory.
async fn serve(a: &Args, region: &Region, backend: &str, n: usize) -> Result<()> {
    let kh = &region.nodes["KH"];
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["node", "--config", path(&kh.config)?])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(region.dir.join("KH.log"))?)
        .spawn()?;
    let out = child.stdout.take().context("stdout")?;
    let node = Node(child);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)?;
    if !line.contains("listening on") {
        bail!("the node did not start: {line}");
    }
    let pid = node.0.id();
    let rss = || proc_kb(pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0;
    println!("bench scale memory backend={backend} phase=started rss_mb={:.0}", rss());
    let api = region.api("KH")?;
    let officer = "kh-officer";
    let customs = "kh-customs";
    let exporter = kh.exporters.first().context("exporter")?.as_str();
    let year = Utc::now().format("%Y").to_string();
    let mut rng = Lcg(0x2545_f491_4f6c_dd1d);
    let r = a.requests;
    let pick = |rng: &mut Lcg, max: usize| rng.next() as usize % max.max(1) + 1;
    type Path = Box<dyn FnMut(&mut Lcg) -> String>;
    let mut cases: Vec<(&str, &str, Path)> = vec![
        ("certificates, first page", officer, Box::new(|_| "/api/v1/certificates?limit=50".into())),
        (
            "certificates, a page deep in the list",
            officer,
            Box::new(move |rng| format!("/api/v1/certificates?limit=50&before={}", pick(rng, n))),
        ),
        (
            "certificates, search by whole number",
            officer,
            Box::new(move |rng| format!("/api/v1/certificates?number=KH-{year}-{:06}", pick(rng, n))),
        ),
        (
            "certificates, search by part of a number",
            officer,
            Box::new(move |rng| format!("/api/v1/certificates?number={:06}", pick(rng, n))),
        ),
        (
            "certificate document",
            officer,
            Box::new(move |rng| format!("/api/v1/certificates/{}/document", pick(rng, n))),
        ),
        (
            "applications, search",
            exporter,
            Box::new(move |rng| format!("/api/v1/applications?q={}", pick(rng, n))),
        ),
        ("received, first page", customs, Box::new(|_| "/api/v1/received?limit=50".into())),
        (
            "received, search by number",
            customs,
            Box::new(move |rng| format!("/api/v1/received?number={:07}", pick(rng, n / 2))),
        ),
        (
            "received document",
            customs,
            Box::new(move |rng| format!("/api/v1/received/{}/document", pick(rng, n / 2))),
        ),
        ("declarations, first page", customs, Box::new(|_| "/api/v1/declarations?limit=50".into())),
    ];
    let mut peak: f64 = rss();
    for (name, user, path) in &mut cases {
        let mut times = Vec::with_capacity(r);
        for _ in 0..r {
            let p = path(&mut rng);
            let t = Instant::now();
            let (status, _) = api.call("GET", &p, user, None).await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            if status != 200 {
                bail!("GET {p} as {user}: HTTP {status}");
            }
        }
        times.sort_by(f64::total_cmp);
        let q = |f: f64| times[((times.len() as f64 * f) as usize).min(times.len() - 1)];
        peak = peak.max(rss());
        println!(
            "bench scale endpoint backend={backend} case=\"{name}\" requests={r} p50_ms={:.1} p95_ms={:.1} max_ms={:.1} rss_mb={:.0}",
            q(0.5),
            q(0.95),
            times.last().copied().unwrap_or(0.0),
            rss()
        );
    }
    let hwm = proc_kb(pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
    println!(
        "bench scale memory backend={backend} phase=served rss_mb={:.0} peak_rss_mb={hwm:.0}",
        rss().max(peak)
    );
    Ok(())
}

/// A small deterministic generator: the same requests in every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}
