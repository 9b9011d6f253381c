//! `originlink verify`: the verdict on a signed certificate of origin.
//!
//! Exit codes: 0 valid, 1 invalid, 3 cannot verify (trust list missing, outdated or refused;
//! with a status source: the issuer's status list missing, stale or refused), 2 unreadable
//! input or usage.
//!
//! With `--status-list FILE` (offline) or `--online URL` (a node's public endpoint) the
//! issuer's signed status list decides too: a revoked or superseded certificate is INVALID
//! `REVOKED` / `SUPERSEDED`; no list in force is CANNOT_VERIFY `STATUS_UNKNOWN`. Without
//! either, only the signature and its trust are checked, and the VALID line says so.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Utc};
use originlink_trust::statuslist::{self, StatusList};
use originlink_trust::{CannotVerifyReason, Cert, TrustList, TrustStore, Verdict, Verifier, keystore};

use crate::io::read_input;

/// Verify a signed certificate of origin (XML or JSON) against a trust list or a country CA.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The signed document, or `-` for standard input.
    file: String,
    #[command(flatten)]
    trust: TrustArgs,
    /// Verification time (RFC 3339); default now.
    #[arg(long)]
    at: Option<DateTime<Utc>>,
    #[command(flatten)]
    status: StatusArgs,
}

/// Where the issuer's certificate status list comes from.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The issuer's signed status list (JSON), checked offline.
    #[arg(long, conflicts_with = "online")]
    status_list: Option<PathBuf>,
    /// A node's public endpoint (its console, e.g. https://verify.moc.gov.kh): the issuer's
    /// status list is fetched from URL/public/v1/status-lists/ISSUER.
    #[arg(long)]
    online: Option<String>,
    /// CA certificates (PEM) an `--online` HTTPS endpoint must chain to (default: the
    /// system's, /etc/ssl/certs/ca-certificates.crt).
    #[arg(long, requires = "online")]
    online_ca: Option<PathBuf>,
}

impl StatusArgs {
    /// Whether a status source was given.
    fn given(&self) -> bool {
        self.status_list.is_some() || self.online.is_some()
    }

    /// The signed status list of `issuer`, or why there is none.
    fn fetch(&self, issuer: &str) -> std::result::Result<Vec<u8>, String> {
        if let Some(path) = &self.status_list {
            return std::fs::read(path).map_err(|e| format!("status list {}: {e}", path.display()));
        }
        let Some(base) = &self.online else { return Err("no status source".into()) };
        let url = format!("{}/public/v1/status-lists/{issuer}", base.trim_end_matches('/'));
        let ca =
            self.online_ca.clone().unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
        let roots = if url.starts_with("https://") {
            std::fs::read_to_string(&ca).map_err(|e| format!("CA certificates {}: {e}", ca.display()))?
        } else {
            String::new()
        };
        let rt =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let got = rt.block_on(originlink_exchange::client::get_public(
            &url,
            &roots,
            std::time::Duration::from_secs(20),
        ));
        match got {
            Ok((s, body)) if s.is_success() => Ok(body.to_vec()),
            Ok((s, _)) if s.as_u16() == 404 => {
                Err(format!("{url}: no status list of {issuer} is published there"))
            }
            Ok((s, _)) => Err(format!("{url}: answered {s}")),
            Err(e) => Err(format!("{url}: {e}")),
        }
    }
}

/// Where trust comes from: a signed trust list (with the operator certificate that must have
/// signed it), or country CA certificates.
#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// Signed trust list (JSON). Needs --operator.
    #[arg(long, requires = "operator", required_unless_present = "ca", conflicts_with = "ca")]
    trust_list: Option<PathBuf>,
    /// Country CA certificate(s) (PEM) to trust directly, without a trust list.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The network operator's certificate: the only key the trust list may be signed with.
    #[arg(long)]
    operator: Option<PathBuf>,
}

impl TrustArgs {
    /// A verifier for these arguments. A missing, unreadable or refused trust list is not an
    /// error: it gives a verifier whose verdicts are *cannot verify*.
    pub fn verifier(&self) -> Result<Verifier> {
        if let Some(ca) = &self.ca {
            if !ca.exists() {
                return Ok(Verifier::unavailable(
                    CannotVerifyReason::TrustListMissing,
                    format!("CA certificate {} not found", ca.display()),
                ));
            }
            return Ok(Verifier::new(TrustStore::from_cas(keystore::load_certs(ca)?)?));
        }
        let (Some(tl), Some(op)) = (&self.trust_list, &self.operator) else {
            anyhow::bail!("give --trust-list with --operator, or --ca");
        };
        let operators = keystore::load_certs(op)?;
        Ok(match load_list(tl, &operators) {
            Ok(list) => Verifier::new(TrustStore::from_list(&list)?),
            Err((reason, detail)) => Verifier::unavailable(reason, detail),
        })
    }
}

fn load_list(path: &Path, operators: &[Cert]) -> Result<TrustList, (CannotVerifyReason, String)> {
    let bytes = std::fs::read(path)
        .map_err(|e| (CannotVerifyReason::TrustListMissing, format!("trust list {}: {e}", path.display())))?;
    TrustList::from_signed(&bytes, operators).map_err(|e| {
        (CannotVerifyReason::TrustListUntrusted, format!("trust list {} refused: {e}", path.display()))
    })
}

/// Prints a verdict (one line, code first) and returns its exit code.
pub fn report(v: &Verdict) -> ExitCode {
    match v {
        Verdict::Valid(s) => {
            outln!(
                "VALID issued by {} signed by \"{}\" serial {} ({})",
                s.country,
                s.subject,
                s.serial,
                s.algorithm
            );
            ExitCode::SUCCESS
        }
        Verdict::Invalid { reason, detail } => {
            outln!("INVALID {} {detail}", reason.code());
            ExitCode::from(1)
        }
        Verdict::CannotVerify { reason, detail } => {
            outln!("CANNOT_VERIFY {} {detail}", reason.code());
            ExitCode::from(3)
        }
    }
}

pub fn run(a: Args) -> Result<ExitCode> {
    let doc = read_input(&a.file, originlink_formats::DEFAULT_MAX_BYTES)?;
    let verifier = a.trust.verifier()?;
    let now = a.at.unwrap_or_else(Utc::now);
    let verdict = verifier.verify(&doc, now)?;
    if !a.status.given() {
        if let Verdict::Valid(s) = &verdict {
            outln!(
                "VALID issued by {} signed by \"{}\" serial {} ({}); status not checked: give --status-list or --online",
                s.country,
                s.subject,
                s.serial,
                s.algorithm
            );
            return Ok(ExitCode::SUCCESS);
        }
        return Ok(report(&verdict));
    }
    if !verdict.is_valid() {
        return Ok(report(&verdict));
    }
    let verdict = match statuslist::identify(&doc) {
        Err(why) => Verdict::CannotVerify { reason: CannotVerifyReason::StatusUnknown, detail: why },
        Ok(id) => {
            let list = a.status.fetch(id.issuer.as_str()).and_then(|bytes| {
                StatusList::verified(&bytes, &verifier, now).map_err(|e| format!("status list refused: {e}"))
            });
            statuslist::with_status(verdict, &id, list.as_ref().map_err(String::as_str), now)
        }
    };
    Ok(report(&verdict))
}
