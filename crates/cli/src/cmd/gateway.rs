//! `originlink gateway --config gw.toml`: run the regional gateway (store-and-forward hub).
//! It binds first and prints `originlink gateway listening on https://ADDR` as the first
//! line of standard output, then serves and pushes until SIGTERM or Ctrl-C. With a
//! `[console]` section it serves the operator's web console beside its API.
//!
//! `originlink gateway operator add NAME --password-stdin --config gw.toml` adds an operator
//! of that console, or sets an operator's password (ending their sessions).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use originlink_gateway::{Config, Gateway};
use originlink_service::{Clock, SystemClock};

/// Run the regional gateway, or manage its operators.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The gateway's configuration (TOML; `ORIGINLINK__SECTION__KEY` overrides).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<GatewayCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum GatewayCommand {
    /// Manage the operators of the gateway's console.
    Operator(OperatorArgs),
}

#[derive(Debug, clap::Args)]
struct OperatorArgs {
    #[command(subcommand)]
    command: OperatorCommand,
}

#[derive(Debug, clap::Subcommand)]
enum OperatorCommand {
    /// Add an operator, or set an operator's password (their sessions end); the password is
    /// read from standard input (one line).
    Add(AddArgs),
}

#[derive(Debug, clap::Args)]
struct AddArgs {
    /// The operator's sign-in name.
    name: String,
    /// Read the password from standard input (one line). Required: operators sign in with a
    /// password.
    #[arg(long)]
    password_stdin: bool,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let path = a.config.context("--config is required")?;
    let config = Config::load(&path).map_err(|e| anyhow::anyhow!("{} ({})", e, e.code()))?;
    let rt = super::node::runtime()?;
    match a.command {
        None => rt.block_on(serve(config)),
        Some(GatewayCommand::Operator(OperatorArgs { command: OperatorCommand::Add(add) })) => {
            rt.block_on(add_operator(&config, add))
        }
    }
}

async fn add_operator(config: &Config, add: AddArgs) -> Result<ExitCode> {
    anyhow::ensure!(
        add.password_stdin,
        "operators sign in with a password: pass --password-stdin and type it on standard input"
    );
    let password = super::node::read_password()?;
    let queue = originlink_gateway::queue::open(config.database.url.expose(), 1)
        .await
        .map_err(|e| anyhow::anyhow!("opening the gateway's database: {e} (STORAGE_UNAVAILABLE)"))?;
    let now = SystemClock.now();
    // The gateway migrates its database when it starts; so does this command.
    queue.migrate_at(now).await.map_err(|e| anyhow::anyhow!("migrating: {e} (STORAGE_UNAVAILABLE)"))?;
    let added =
        originlink_console::operator::sessions::set_password(queue.as_ref(), &add.name, &password, now)
            .await
            .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code))?;
    if added {
        eprintln!("added operator {}; they sign in to the gateway's console", add.name.trim());
    } else {
        eprintln!("set the password of operator {}; their sessions have ended", add.name.trim());
    }
    Ok(ExitCode::SUCCESS)
}

/// The gateway and, when `[console]` is configured, its operator's console: bound, not yet
/// serving.
pub(crate) struct Built {
    /// The gateway.
    pub gateway: Gateway,
    /// Its console.
    pub console: Option<originlink_console::Console>,
}

impl Built {
    /// Builds the gateway (keys, trust list, queue, listener) and its console's listener.
    pub(crate) async fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<Built> {
        let gateway =
            Gateway::build(config, clock).await.map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
        let console = match &config.console {
            Some(c) => Some(
                originlink_console::Console::operator(c, gateway.shared(), &config.gateway.id)
                    .await
                    .map_err(|e| anyhow::anyhow!("console: {e} ({})", e.code()))?,
            ),
            None => None,
        };
        Ok(Built { gateway, console })
    }

    /// The console's URL, when there is one.
    pub(crate) fn console_url(&self) -> Option<String> {
        self.console.as_ref().map(|c| c.url())
    }

    /// Serves the gateway and its console until the gateway's handle stops both.
    pub(crate) async fn run(self) -> std::io::Result<()> {
        if let Some(c) = self.console {
            tokio::spawn(c.run_until_stopped(self.gateway.shutdown_handle()));
        }
        self.gateway.run_until_stopped().await
    }
}

async fn serve(config: Config) -> Result<ExitCode> {
    originlink_gateway::init_logging(&config.log);
    let built = Built::build(&config, Arc::new(SystemClock)).await?;
    let addr = built.gateway.addr();
    if let Some(url) = built.console_url() {
        tracing::info!(%url, "operator console bound");
    }
    let stop = built.gateway.shutdown_handle();
    crate::service::serve_until_signal("gateway", addr, stop, built.run()).await
}
