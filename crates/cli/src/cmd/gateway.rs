//! `originlink gateway --config gw.toml`: run the regional gateway (store-and-forward hub).
//! It binds first and prints `originlink gateway listening on https://ADDR` as the first
//! line of standard output, then serves and pushes until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use originlink_gateway::{Config, Gateway};
use originlink_service::SystemClock;

/// Run the regional gateway.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The gateway's configuration (TOML; `ORIGINLINK__SECTION__KEY` overrides).
    #[arg(long)]
    config: PathBuf,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let config = Config::load(&a.config).map_err(|e| anyhow::anyhow!("{} ({})", e, e.code()))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(serve(config))
}

async fn serve(config: Config) -> Result<ExitCode> {
    originlink_gateway::init_logging(&config.log);
    let gw = Gateway::build(&config, Arc::new(SystemClock))
        .await
        .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
    let addr = gw.addr();
    let stop = gw.shutdown_handle();
    crate::service::serve_until_signal("gateway", addr, stop, gw.run_until_stopped()).await
}
