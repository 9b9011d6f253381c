//! `originlink sign`: sign a certificate of origin (UBL XML with XML-DSig, edi3 JSON with a
//! detached JWS).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use originlink_trust::keystore;

use crate::io::read_input;

/// Sign a certificate of origin: XML or JSON in, signed out.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The document, or `-` for standard input.
    file: String,
    /// Private key (PEM PKCS#8, mode 0600).
    #[arg(long)]
    key: PathBuf,
    /// Signing certificate (PEM; intermediates may follow it in the same file).
    #[arg(long)]
    cert: PathBuf,
    /// Write here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let doc = read_input(&a.file, originlink_formats::DEFAULT_MAX_BYTES)?;
    let key = keystore::load_private_key(&a.key)?;
    let chain: Vec<Vec<u8>> = keystore::load_certs(&a.cert)?.iter().map(|c| c.der().to_vec()).collect();
    let signed = originlink_trust::sign(&doc, &key, &chain)?;
    match a.out {
        Some(p) => std::fs::write(&p, &signed).with_context(|| format!("writing {}", p.display()))?,
        None => std::io::stdout().write_all(&signed).context("writing standard output")?,
    }
    Ok(ExitCode::SUCCESS)
}
