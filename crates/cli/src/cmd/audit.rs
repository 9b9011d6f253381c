//! `originlink audit verify`: check the node's keyed, hash-chained audit log.

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
    /// Recompute the keyed hash chain and compare its head with the checkpoint: exit 0 when
    /// intact; 1 naming the first broken event, the code and what to do; 3 when it cannot be
    /// checked (no audit key for a keyed chain); 2 when storage or the key cannot be read.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The node's configuration (its audit key and checkpoint: `[audit]`, default in the key
    /// directory).
    #[arg(long)]
    config: PathBuf,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let AuditCommand::Verify(v) = a.command;
    let config = super::node::load_config(Some(&v.config))?;
    let key_path = originlink_node::audit::key_path(&config);
    let checkpoint_path = originlink_node::audit::checkpoint_path(&config);
    // Never create the key here: a new key would only make a keyed chain look forged.
    let setup =
        originlink_node::audit::setup(&config, false).map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
    let keyed = setup.key.is_some();
    super::node::runtime()?.block_on(async {
        let store =
            originlink_store::open_keyed(config.database.url.expose(), 1, setup).await.context("opening storage")?;
        match store.check_audit(1000).await.context("reading the audit log")? {
            Ok(v) => {
                outln!("audit chain intact: {} events", v.events);
                match v.keyed_from {
                    Some(1) => outln!("  keyed with {}", key_path.display()),
                    Some(k) => outln!(
                        "  keyed with {} from event {k}; events 1 to {} were written before audit keys",
                        key_path.display(),
                        k - 1
                    ),
                    None if v.events > 0 => outln!(
                        "  not keyed: written before audit keys (the node keys every event it writes from now on)"
                    ),
                    None => {}
                }
                match v.checkpoint {
                    Some(seq) => outln!("  checkpoint at event {seq} ({})", checkpoint_path.display()),
                    None if !keyed => {
                        outln!("  no audit key at {}: the checkpoint was not checked", key_path.display())
                    }
                    None => {}
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(b) if b.cannot_verify() => {
                outln!("audit chain cannot be checked at event {}: {}", b.seq, b.reason);
                outln!("  found: {} (audit key {}: missing)", b.detail, key_path.display());
                outln!("  next: {}", b.advice());
                Ok(ExitCode::from(3))
            }
            Err(b) => {
                outln!("audit chain broken at event {}: {}", b.seq, b.reason);
                outln!("  found: {}", b.detail);
                outln!("  next: {}", b.advice());
                Ok(ExitCode::from(1))
            }
        }
    })
}
