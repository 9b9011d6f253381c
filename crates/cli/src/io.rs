//! Reading input files for commands: a path or `-` for standard input, with a size cap so that
//! an oversized input is refused before it is read whole.

use std::io::{Read, Write};

use anyhow::{Context, Result, bail};

/// Reads `path` (or standard input for `-`), refusing more than `max` bytes.
pub fn read_input(path: &str, max: usize) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let cap = max as u64 + 1;
    if path == "-" {
        std::io::stdin().take(cap).read_to_end(&mut buf).context("reading standard input")?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("opening {path}"))?
            .take(cap)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {path}"))?;
    }
    if buf.len() > max {
        bail!("DOCUMENT_TOO_LARGE: {path} is larger than the limit of {max} bytes");
    }
    Ok(buf)
}

/// Writes command output to standard output. A closed pipe ends the process quietly with exit
/// 0 (the reader has all it wanted); any other write error exits 2 with a message.
pub fn stdout_write(args: std::fmt::Arguments<'_>) {
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        let _ = writeln!(std::io::stderr(), "error: writing to standard output: {e}");
        std::process::exit(2);
    }
}
