//! `originlink print`: a signed certificate as a printable A4 PDF, laid out like Form D (boxes
//! 1 to 13, overleaf notes last) or the RCEP form (boxes 1 to 16), filled from the signed
//! document, with a QR code to the issuer's public verification page carrying the number and
//! the check code, and the document's SHA-256 in small type.
//!
//! Prints the verification URL (what the QR code carries) on standard output. Exit 0 printed,
//! 2 unreadable input or usage.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::io::read_input;

/// Print a signed certificate of origin (XML or JSON) as a PDF with its verification QR code.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The signed document, or `-` for standard input.
    file: String,
    /// Where to write the PDF.
    #[arg(short, long)]
    output: PathBuf,
    /// The issuer's public verification page (its console, e.g. https://verify.moc.gov.kh):
    /// the QR code carries BASE/verify?n=NUMBER&c=CHECK-CODE.
    #[arg(long)]
    verify_base: String,
    /// Print copy N ("COPY N") instead of the original ("ORIGINAL").
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=99))]
    copy: Option<u32>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    if !(a.verify_base.starts_with("https://") || a.verify_base.starts_with("http://")) {
        anyhow::bail!("--verify-base: {:?} is not an http(s):// URL", a.verify_base);
    }
    let doc = read_input(&a.file, originlink_formats::DEFAULT_MAX_BYTES)?;
    let printed = originlink_print::render_signed(&doc, &a.verify_base, a.copy)
        .map_err(|e| anyhow::anyhow!("{}: {e}", e.code()))?;
    std::fs::write(&a.output, &printed.pdf).with_context(|| format!("writing {}", a.output.display()))?;
    outln!("{}", printed.verify_url);
    Ok(ExitCode::SUCCESS)
}
