//! `originlink bench exchange`: certificates per second and latency from the exporter node's
//! outbox to verified-and-stored at the importer node, through the gateway, with the three as
//! separate processes on durable SQLite (or PostgreSQL with `--postgres`).
//!
//! The certificates are real: sample certificates signed with the KH authority's key and
//! sealed into envelopes by KH's exchange code, before the clock starts. The bench then writes
//! them into KH's outbox (at `--rate` per second, or all at once), exactly as an approval's
//! transaction does, and reads TH's database for when each arrived. Issuance itself (numbering,
//! signing, the approval transaction) is measured by the node's approvals bench.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use originlink_model::{Agreement, CertificateNumber, CountryCode};
use originlink_region::{Options, Region};
use originlink_store::{Ctx, OutMessage, Page};

/// Exchange throughput and latency.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many certificates.
    #[arg(long, default_value_t = 5000)]
    certificates: usize,
    /// Certificates per second written to the outbox; default all at once (throughput).
    #[arg(long)]
    rate: Option<u64>,
    /// Working directory (emptied first).
    #[arg(long, default_value = "bench-exchange")]
    dir: PathBuf,
    /// Envelopes per batch between hops.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Let the gateway rely on the mutual-TLS identity of the sender instead of checking
    /// every envelope signature (the receiving node always checks them): shows what the
    /// gateway's per-envelope verification costs.
    #[arg(long)]
    gateway_trusts_tls: bool,
    /// Run the three on PostgreSQL instead of SQLite: the server's URL without a database
    /// (`postgres://postgres@127.0.0.1:5432`); the databases `originlink_bench_kh`, `_th` and
    /// `_gateway` are created afresh.
    #[arg(long, value_name = "SERVER")]
    postgres: Option<String>,
}

struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(args: &[&str], log: PathBuf) -> Result<Child> {
    let exe = std::env::current_exe()?;
    let log = std::fs::File::create(log)?;
    let mut child = std::process::Command::new(exe).args(args).stdout(Stdio::piped()).stderr(log).spawn()?;
    let out = child.stdout.take().context("stdout")?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)?;
    if !line.contains("listening on") {
        bail!("{args:?} did not start: {line}");
    }
    Ok(child)
}

pub fn run(a: Args) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    rt.block_on(bench(a))
}

fn path(p: &std::path::Path) -> Result<&str> {
    p.to_str().context("non-UTF-8 path")
}

async fn bench(a: Args) -> Result<ExitCode> {
    let n = a.certificates;
    let mut opts = Options {
        countries: vec!["KH".into(), "TH".into()],
        batch: Some(a.batch),
        poll_ms: Some(2),
        gateway_verify_signatures: a.gateway_trusts_tls.then_some(false),
        log_level: Some("warn".into()),
        ..Options::default()
    };
    if let Some(server) = &a.postgres {
        let (nodes, gateway) = super::fresh_databases(server, "originlink_bench", &["kh", "th", "gateway"])?;
        opts.database = Some(nodes);
        opts.gateway_database = Some(gateway);
    }
    let region = originlink_region::setup(&a.dir, &opts).await?;
    eprintln!("bench exchange: sealing {n} signed certificates …");
    let messages = prepare(&region, n).await?;
    let procs = Procs(vec![
        spawn(&["gateway", "--config", path(&region.gateway_config)?], region.dir.join("gateway.log"))?,
        spawn(&["node", "--config", path(&region.nodes["KH"].config)?], region.dir.join("KH.log"))?,
        spawn(&["node", "--config", path(&region.nodes["TH"].config)?], region.dir.join("TH.log"))?,
    ]);
    let kh = originlink_store::open(&db(&region, &opts, "KH")).await?;
    let th = originlink_store::open(&db(&region, &opts, "TH")).await?;
    eprintln!("bench exchange: KH node → gateway → TH node, {n} certificates, rate {:?}", a.rate);

    // Write into KH's outbox, remembering when each certificate was written.
    let started = Instant::now();
    let t0 = Utc::now();
    let mut written: HashMap<String, DateTime<Utc>> = HashMap::with_capacity(n);
    let ctx = Ctx::new("bench", t0);
    let chunk = match a.rate {
        Some(r) => (r as usize / 100).max(1),
        None => 1000,
    };
    let mut next = Instant::now();
    for (i, part) in messages.chunks(chunk).enumerate() {
        if a.rate.is_some() {
            tokio::time::sleep_until(next.into()).await;
            next = started + Duration::from_millis(10 * (i as u64 + 1));
        }
        let at = Utc::now();
        for (number, _) in part {
            written.insert(number.clone(), at);
        }
        kh.enqueue(&ctx, part.iter().map(|(_, m)| m.clone()).collect()).await?;
    }
    let write_s = started.elapsed().as_secs_f64();

    // Wait for every certificate at TH.
    let deadline = Instant::now() + Duration::from_secs(600);
    let received = loop {
        let all = received_at(th.as_ref()).await?;
        if all.len() >= n {
            break all;
        }
        if Instant::now() > deadline {
            bail!("only {} of {n} certificates arrived", all.len());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut latencies: Vec<f64> = Vec::with_capacity(n);
    let mut last = t0;
    let mut lost = 0usize;
    for (number, at) in &written {
        match received.get(number) {
            Some(r) => {
                latencies.push((*r - *at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
                last = last.max(*r);
            }
            None => lost += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct =
        |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)).copied();
    let span = (last - t0).num_microseconds().unwrap_or(1) as f64 / 1e6;
    let stored = count_events(th.as_ref(), "received.stored").await?;
    let duplicated = stored.saturating_sub(received.len()) + received.len().saturating_sub(n);
    let invalid = received_invalid(th.as_ref()).await?;
    drop(procs);
    if invalid > 0 {
        bail!("{invalid} certificates arrived but did not verify");
    }
    eprintln!(
        "bench exchange: outbox written in {write_s:.2} s; last arrival {span:.2} s after the first write"
    );
    outln!(
        "certificates_per_s={:.0} p50_ms={:.1} p99_ms={:.1} lost={lost} duplicated={duplicated}",
        n as f64 / span,
        pct(0.50).unwrap_or(0.0),
        pct(0.99).unwrap_or(0.0),
    );
    let _ = kh;
    Ok(if lost == 0 && duplicated == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn db(region: &Region, opts: &Options, country: &str) -> String {
    match &opts.database {
        Some(url) => url.replace("{country}", &country.to_ascii_lowercase()),
        None => format!("sqlite:{}", region.dir.join(country).join("node.db").display()),
    }
}

/// Signs `n` certificates with KH's authority key and seals each into its envelope.
async fn prepare(region: &Region, n: usize) -> Result<Vec<(String, OutMessage)>> {
    let cfg = originlink_node::Config::load(&region.nodes["KH"].config)?;
    let now = Utc::now();
    let x = originlink_node::exchange::Exchange::load(&cfg, now)?.context("KH has no exchange")?;
    let signer = originlink_node::issue::TrustSigner::load(&cfg.authority.keys)?;
    let (kh, th) = (country("KH")?, country("TH")?);
    let x = Arc::new(x);
    let signer = Arc::new(signer);
    let workers = std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1);
    let mut handles = Vec::new();
    for w in 0..workers {
        let (x, signer) = (x.clone(), signer.clone());
        handles.push(std::thread::spawn(move || -> Result<Vec<(String, OutMessage)>> {
            use originlink_node::issue::DocumentSigner as _;
            let mut out = Vec::new();
            for i in (w..n).step_by(workers) {
                let mut cert =
                    originlink_model::sample::sample(Agreement::Atiga, kh, th, now.date_naive(), 1, i as u32);
                let number = format!("KH-B{}-{:07}", now.format("%y%m%d%H%M"), i + 1);
                cert.number = Some(CertificateNumber::parse(&number).map_err(|e| anyhow::anyhow!("{e}"))?);
                let xml = originlink_formats::xml::write(&cert);
                let signed = signer.sign(xml.as_bytes()).map_err(|e| anyhow::anyhow!(e))?;
                let m =
                    x.certificate_message(&signed, &number, 1, th, now).map_err(|e| anyhow::anyhow!(e))?;
                out.push((number, m));
            }
            Ok(out)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for h in handles {
        all.extend(h.join().map_err(|_| anyhow::anyhow!("a signing thread panicked"))??);
    }
    Ok(all)
}

async fn received_at(store: &dyn originlink_store::Store) -> Result<HashMap<String, DateTime<Utc>>> {
    let mut out = HashMap::new();
    let mut page = Page::first(None, 5000);
    loop {
        let list = store.list_received(&page).await?;
        let Some(last) = list.last() else { break };
        page.before = Some(last.id);
        for r in list {
            let at = DateTime::parse_from_rfc3339(&r.received_at)?.with_timezone(&Utc);
            out.insert(r.number, at);
        }
    }
    Ok(out)
}

async fn received_invalid(store: &dyn originlink_store::Store) -> Result<usize> {
    let mut bad = 0;
    let mut page = Page::first(None, 5000);
    loop {
        let list = store.list_received(&page).await?;
        let Some(last) = list.last() else { break };
        page.before = Some(last.id);
        bad += list.iter().filter(|r| r.status != originlink_store::ReceivedStatus::Valid).count();
    }
    Ok(bad)
}

async fn count_events(store: &dyn originlink_store::Store, action: &str) -> Result<usize> {
    let (head, _) = store.audit_head().await?;
    let mut after = i64::MIN;
    let mut n = 0;
    loop {
        let page = store.audit_events(after, head, 5000).await?;
        n += page.iter().filter(|e| e.action == action).count();
        match page.last() {
            Some(l) if page.len() == 5000 => after = l.seq,
            _ => return Ok(n),
        }
    }
}

fn country(c: &str) -> Result<CountryCode> {
    CountryCode::parse(c).map_err(|e| anyhow::anyhow!("{e}"))
}
