//! `originlink validate`: reads XML or JSON and lists every problem, code first.

use std::process::ExitCode;

use anyhow::Result;
use originlink_formats::{Limits, read};

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
    let problems = match read(&bytes, &limits) {
        Ok((_, cert)) => originlink_model::validate(&cert),
        Err(problems) => problems,
    };
    if problems.is_empty() {
        println!("valid");
        return Ok(ExitCode::SUCCESS);
    }
    // Unreadable documents (not XML/JSON at all, or too large) exit 2; readable but wrong, 1.
    let unreadable = problems.iter().any(|p| UNREADABLE.contains(&p.code.as_str()));
    for p in &problems {
        println!("{p}");
    }
    Ok(ExitCode::from(if unreadable { 2 } else { 1 }))
}

/// Problem codes that mean the input could not be read as a document at all.
pub(crate) const UNREADABLE: &[&str] = &[
    "FORMAT_UNKNOWN",
    "DOCUMENT_TOO_LARGE",
    "XML_MALFORMED",
    "JSON_MALFORMED",
    "XML_DTD_FORBIDDEN",
    "ENCODING",
];
