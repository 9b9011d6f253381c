//! `originlink convert`: UBL XML ⇄ edi3 JSON.

use std::process::ExitCode;

use anyhow::Result;
use originlink_formats::{Limits, is_unreadable, json, read, xml};

use crate::cmd::example::OutFormat;
use crate::io::read_input;

/// Convert a certificate between UBL XML and edi3 JSON.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The document, or `-` for standard input.
    file: String,
    /// Target format.
    #[arg(long, value_enum)]
    to: OutFormat,
    /// Largest document accepted, in bytes.
    #[arg(long, default_value_t = originlink_formats::DEFAULT_MAX_BYTES)]
    max_bytes: usize,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let limits = Limits { max_bytes: a.max_bytes };
    let bytes = read_input(&a.file, a.max_bytes)?;
    let cert = match read(&bytes, &limits) {
        Ok((_, cert)) => cert,
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            return Ok(ExitCode::from(if is_unreadable(&problems) { 2 } else { 1 }));
        }
    };
    let out = match a.to {
        OutFormat::Xml => xml::write_pretty(&cert),
        OutFormat::Json => json::write(&cert),
    };
    out!("{out}");
    Ok(ExitCode::SUCCESS)
}
