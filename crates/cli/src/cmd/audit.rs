//! `originlink audit verify`: check the node's hash-chained audit log.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

/// Check the node's audit log.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain; exit 0 when intact, 1 naming the first broken event.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The node's configuration.
    #[arg(long)]
    config: PathBuf,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let AuditCommand::Verify(v) = a.command;
    let config = super::node::load_config(Some(&v.config))?;
    super::node::runtime()?.block_on(async {
        let store = originlink_store::open(config.database.url.expose()).await.context("opening storage")?;
        match store.verify_audit().await.context("reading the audit log")? {
            Ok(n) => {
                outln!("audit chain intact: {n} events");
                Ok(ExitCode::SUCCESS)
            }
            Err(b) => {
                outln!("audit chain broken at event {}: {}", b.seq, b.reason);
                Ok(ExitCode::from(1))
            }
        }
    })
}
