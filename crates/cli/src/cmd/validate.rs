//! `originlink validate`: reads XML or JSON and lists every problem, code first.

use std::process::ExitCode;

use anyhow::Result;
use originlink_formats::{Limits, is_unreadable, read_valid};

use crate::io::read_input;

/// Validate a certificate (XML or JSON, auto-detected).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The document, or `-` for standard input.
    file: String,
    /// Largest document accepted, in bytes.
    #[arg(long, default_value_t = originlink_formats::DEFAULT_MAX_BYTES)]
    max_bytes: usize,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let limits = Limits { max_bytes: a.max_bytes };
    let bytes = read_input(&a.file, a.max_bytes)?;
    let problems = match read_valid(&bytes, &limits) {
        Ok(_) => {
            outln!("valid");
            return Ok(ExitCode::SUCCESS);
        }
        Err(problems) => problems,
    };
    for p in &problems {
        outln!("{p}");
    }
    // Unreadable documents (not a certificate at all, or too large) exit 2; readable but wrong, 1.
    Ok(ExitCode::from(if is_unreadable(&problems) { 2 } else { 1 }))
}
