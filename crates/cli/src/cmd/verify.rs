//! `originlink verify`: the verdict on a signed certificate of origin.
//!
//! Exit codes: 0 valid, 1 invalid, 3 cannot verify (trust list missing, outdated or refused),
//! 2 unreadable input or usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use chrono::{DateTime, Utc};
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
    Ok(report(&verdict))
}
