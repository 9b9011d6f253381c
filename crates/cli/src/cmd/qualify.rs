//! `originlink qualify`: whether a good originates, from its bill of materials, explained.
//! The request and the `--json` answer are those of `docs/rules-of-origin.md`.

use std::process::ExitCode;

use anyhow::Result;

use crate::io::read_input;

/// Largest request accepted, in bytes.
const MAX_BYTES: usize = 8 * 1024 * 1024;

/// Assess whether a good originates (exit 0 originates, 1 does not, 2 bad input).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The qualify request (JSON), or `-` for standard input.
    file: String,
    /// Print the answer as JSON instead of an explanation.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let bytes = read_input(&a.file, MAX_BYTES)?;
    let assessment = match originlink_rules::parse_request(&bytes).and_then(|g| originlink_rules::qualify(&g))
    {
        Ok(assessment) => assessment,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if a.json {
        outln!("{}", assessment.to_json_string());
    } else {
        out!("{}", assessment.render_text());
    }
    Ok(if assessment.originating { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
