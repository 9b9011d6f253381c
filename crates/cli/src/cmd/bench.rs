//! `originlink bench verify`: verifications per second of a signed certificate on one core,
//! ECDSA P-256 and RSA-2048, against `openssl speed` measured in the same run.
//!
//! Shared machines are noisy, so the figure that matters is the ratio to the raw signature
//! verify rate of `openssl speed` taken minutes apart on the same core.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::Utc;
use originlink_model::{Agreement, CountryCode, sample};
use originlink_trust::trustlist::{self, FORMAT, Member, TrustList};
use originlink_trust::{Cert, Issued, PrivateKey, TrustStore, Verdict, Verifier, keys};

/// Measure performance.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BenchCommand {
    /// Verifications per second of a signed UBL certificate (ECDSA P-256, RSA-2048), with the
    /// ratio to `openssl speed`, sign rates, and an `xmlsec1 --verify` loop for context.
    Verify(VerifyArgs),
    /// Certificates per second and latency from the exporter node's outbox to verified at the
    /// importer node, through the gateway, as three processes on durable SQLite.
    Exchange(super::bench_exchange::Args),
    /// A node holding many certificates (`--certificates 1000000`): resident memory, list,
    /// search and document times, database size, `audit verify` time.
    Scale(super::bench_scale::Args),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// Seconds per measurement (also passed to `openssl speed -seconds`).
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Goods items in the sample certificate (1 gives the 6 KB certificate of the target).
    #[arg(long, default_value_t = 1)]
    items: usize,
    /// Skip `openssl speed`.
    #[arg(long)]
    no_openssl: bool,
    /// Skip the `xmlsec1 --verify` loop.
    #[arg(long)]
    no_xmlsec: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    match a.command {
        BenchCommand::Verify(a) => verify(a),
        BenchCommand::Exchange(a) => super::bench_exchange::run(a),
        BenchCommand::Scale(a) => super::bench_scale::run(a),
    }
}

struct Case {
    name: &'static str,
    authority: keys::AuthorityKeys,
}

struct Measured {
    verify: f64,
    xmldsig_only: f64,
    xmldsig_with_facts: f64,
    sign: f64,
    raw_verify: f64,
    size: usize,
}

fn verify(a: VerifyArgs) -> Result<ExitCode> {
    let secs = Duration::from_secs(a.seconds.max(1));
    let now = Utc::now();
    let today = now.date_naive();
    let kh = CountryCode::parse("KH").map_err(|e| anyhow::anyhow!("{e}"))?;
    let th = CountryCode::parse("TH").map_err(|e| anyhow::anyhow!("{e}"))?;
    let cert = sample::sample(Agreement::Atiga, kh, th, today, a.items.max(1), 0);
    let doc = originlink_formats::xml::write(&cert).into_bytes();

    let cases = [
        Case {
            name: "ECDSA P-256",
            authority: keys::init_authority("KH", "Ministry of Commerce", today, None)?,
        },
        Case {
            name: "RSA-2048",
            authority: keys::init_authority("KH", "Ministry of Commerce", today, Some(rsa_key(2048)?))?,
        },
    ];

    let mut results = Vec::new();
    for c in &cases {
        results.push(measure(c, &doc, now, secs)?);
    }
    let openssl = if a.no_openssl { None } else { Some(openssl_speed(a.seconds.max(1))?) };
    let xmlsec = if a.no_xmlsec { None } else { xmlsec_loop(&cases, &doc, secs).ok() };

    outln!("Signature benchmark: one core, {} s per measurement", secs.as_secs());
    outln!(
        "document: ATIGA certificate, {} goods items, {} bytes unsigned, {} / {} bytes signed (ECDSA / RSA)",
        a.items,
        doc.len(),
        results[0].size,
        results[1].size
    );
    outln!();
    outln!(
        "{:<12} {:>14} {:>12} {:>16} {:>16} {:>14} {:>10}",
        "algorithm",
        "ours verify/s",
        "ours sign/s",
        "ring raw verify/s",
        "openssl verify/s",
        "openssl sign/s",
        "ratio"
    );
    for (i, (c, r)) in cases.iter().zip(&results).enumerate() {
        let (ov, os) = match &openssl {
            Some(o) => o[i],
            None => (f64::NAN, f64::NAN),
        };
        outln!(
            "{:<12} {:>14.0} {:>12.0} {:>16.0} {:>16.0} {:>14.0} {:>10.2}",
            c.name,
            r.verify,
            r.sign,
            r.raw_verify,
            ov,
            os,
            r.verify / ov
        );
    }
    outln!();
    for (c, r) in cases.iter().zip(&results) {
        outln!(
            "breakdown {:<12} xmldsig verify_enveloped (streaming fast path, certificate parsed each time) {:>7.0}/s ({:.0} µs); DOM reference path with key cache + facts from its DOM {:>7.0}/s ({:.0} µs); whole verify {:.0} µs, of which the bare signature {:.0} µs",
            c.name,
            r.xmldsig_only,
            1e6 / r.xmldsig_only,
            r.xmldsig_with_facts,
            1e6 / r.xmldsig_with_facts,
            1e6 / r.verify,
            1e6 / r.raw_verify
        );
    }
    outln!();
    outln!("ratio = ours verify/s ÷ openssl verify/s (target ≥ 0.80 for ECDSA P-256).");
    outln!(
        "ours verify = one streaming pass (tokenize + exclusive C14N into SHA-256 + facts) + signature verify + trust policy"
    );
    outln!("(chain cached per certificate hash and trust-list version); sign = the whole XML-DSig signing.");
    match xmlsec {
        Some((ec, rsa)) => outln!(
            "context: `xmlsec1 --verify --trusted-pem ca.crt`, one process per document: {ec:.0}/s (ECDSA), {rsa:.0}/s (RSA)"
        ),
        None if !a.no_xmlsec => outln!("context: xmlsec1 loop not measured (xmlsec1 missing or it failed)"),
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}

fn rsa_key(bits: u32) -> Result<PrivateKey> {
    let out = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", &format!("rsa_keygen_bits:{bits}")])
        .output()
        .context("running openssl genpkey")?;
    if !out.status.success() {
        bail!("openssl genpkey failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(PrivateKey::from_pem(&String::from_utf8_lossy(&out.stdout))?)
}

fn verifier_for(a: &keys::AuthorityKeys, now: chrono::DateTime<Utc>) -> Result<Verifier> {
    let list = TrustList {
        format: FORMAT.into(),
        sequence: 1,
        issued_at: now - chrono::Duration::hours(1),
        next_update: now + chrono::Duration::days(30),
        members: vec![Member {
            country: CountryCode::parse("KH").map_err(|e| anyhow::anyhow!("{e}"))?,
            authorities: vec!["Ministry of Commerce".into()],
            ca_certs: vec![trustlist::encode_cert(&a.ca.cert_der)],
            signing_certs: vec![trustlist::encode_cert(&a.signing.cert_der)],
            nodes: vec![],
            agreements: vec!["ATIGA".into()],
            valid_from: None,
            valid_until: None,
            revoked: vec![],
        }],
        gateways: vec![],
    };
    Ok(Verifier::new(TrustStore::from_list(&list)?))
}

/// Runs `f` repeatedly for `d`; returns calls per second.
fn rate(d: Duration, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < d {
        for _ in 0..16 {
            f()?;
        }
        n += 16;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn measure(c: &Case, doc: &[u8], now: chrono::DateTime<Utc>, d: Duration) -> Result<Measured> {
    let signing: &Issued = &c.authority.signing;
    let chain = [signing.cert_der.clone()];
    let signed = originlink_trust::sign(doc, &signing.key, &chain)?;
    let verifier = verifier_for(&c.authority, now)?;
    match verifier.verify_xml(&signed, now)? {
        Verdict::Valid(_) => {}
        other => bail!("{}: the benchmark document does not verify: {other:?}", c.name),
    }
    let verify = rate(d, || {
        let v = verifier.verify_xml(std::hint::black_box(&signed), now)?;
        if !v.is_valid() {
            bail!("verdict changed: {v:?}");
        }
        Ok(())
    })?;
    let limits = originlink_xmldsig::Limits::default();
    let xmldsig_only = rate(d, || {
        std::hint::black_box(originlink_xmldsig::verify_enveloped(std::hint::black_box(&signed), &limits)?);
        Ok(())
    })?;
    // The DOM reference path `verify_xml` falls back to (`verify_xml_reference`) before the
    // policy: the signature with the signer's key cached, the facts read from the verified DOM.
    let keys = originlink_xmldsig::KeyCache::new();
    let xmldsig_with_facts = rate(d, || {
        let (_, f) = originlink_xmldsig::verify_enveloped_with(
            std::hint::black_box(&signed),
            &limits,
            Some(&keys),
            originlink_trust::document::facts_from_root,
        )?;
        if f.is_err() {
            bail!("the issuing country and date were not read from the benchmark document");
        }
        Ok(())
    })?;
    let sign = rate(d, || {
        std::hint::black_box(originlink_trust::sign(doc, &signing.key, &chain)?);
        Ok(())
    })?;
    // The bare signature operation on a short message, as openssl speed measures it.
    let cert = Cert::from_der(&signing.cert_der)?;
    let alg = signing.key.algorithm().jws_alg();
    let msg = [7u8; 32];
    let sig = signing.key.sign_jws(&msg)?;
    let raw_verify = rate(d, || {
        if !cert.verify_jws(alg, std::hint::black_box(&msg), &sig) {
            bail!("raw verify failed");
        }
        Ok(())
    })?;
    Ok(Measured { verify, xmldsig_only, xmldsig_with_facts, sign, raw_verify, size: signed.len() })
}

/// `openssl speed -seconds S ecdsap256 rsa2048`: (verify/s, sign/s) for ECDSA then RSA.
fn openssl_speed(seconds: u64) -> Result<[(f64, f64); 2]> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", &seconds.to_string(), "ecdsap256", "rsa2048"])
        .stderr(Stdio::null())
        .output()
        .context("running openssl speed")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let row = |needle: &str| -> Result<(f64, f64)> {
        let line = text
            .lines()
            .find(|l| l.contains(needle))
            .with_context(|| format!("no {needle:?} in openssl speed output"))?;
        let nums: Vec<f64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        match nums.as_slice() {
            [.., sign, verify] => Ok((*verify, *sign)),
            _ => bail!("cannot read {line:?}"),
        }
    };
    Ok([row("ecdsa (nistp256)")?, row("rsa 2048 bits")?])
}

fn xmlsec_loop(cases: &[Case], doc: &[u8], d: Duration) -> Result<(f64, f64)> {
    let dir = std::env::temp_dir().join(format!("originlink-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut rates = Vec::new();
    for c in cases {
        let s = &c.authority.signing;
        let signed = originlink_trust::sign(doc, &s.key, std::slice::from_ref(&s.cert_der))?;
        let f = dir.join(format!("{}.xml", c.name.replace(' ', "_")));
        let ca = dir.join(format!("{}-ca.pem", c.name.replace(' ', "_")));
        std::fs::write(&f, &signed)?;
        std::fs::write(&ca, keys::cert_to_pem(&c.authority.ca.cert_der))?;
        xmlsec_once(&ca, &f)?;
        rates.push(rate(d, || xmlsec_once(&ca, &f))?);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok((rates[0], rates[1]))
}

fn xmlsec_once(ca: &Path, file: &PathBuf) -> Result<()> {
    let st = Command::new("xmlsec1")
        .arg("--verify")
        .arg("--trusted-pem")
        .arg(ca)
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("xmlsec1 --verify failed");
    }
    Ok(())
}
