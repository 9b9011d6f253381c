//! `originlink node`: run the country node, migrate its database, add users.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use originlink_node::{Application, Config, SystemClock};
use originlink_store::{Ctx, Role};

/// Run the country node (HTTPS API), or manage it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The node's configuration (TOML; `ORIGINLINK__SECTION__KEY` overrides).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<NodeCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum NodeCommand {
    /// Create or upgrade the database schema (SQLite or PostgreSQL). Safe to run again.
    Migrate,
    /// Manage users.
    User(UserArgs),
}

#[derive(Debug, clap::Args)]
struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Add a user and print its API token (shown once; only its SHA-256 is stored).
    Add(AddArgs),
}

#[derive(Debug, clap::Args)]
struct AddArgs {
    /// Login name (unique).
    #[arg(long)]
    name: String,
    /// Role.
    #[arg(long, value_parser = ["exporter", "issuing-officer", "customs-officer", "admin"])]
    role: String,
    /// The exporter's company (created on first use). Exporters only.
    #[arg(long)]
    company: Option<String>,
}

/// Loads the configuration named by `--config`.
pub fn load_config(path: Option<&Path>) -> Result<Config> {
    let path = path.context("--config is required")?;
    Config::load(path).map_err(|e| anyhow::anyhow!("{} ({})", e, e.code()))
}

/// A tokio runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

pub fn run(a: Args) -> Result<ExitCode> {
    let config = load_config(a.config.as_deref())?;
    let rt = runtime()?;
    match a.command {
        None => rt.block_on(serve(config)),
        Some(NodeCommand::Migrate) => rt.block_on(async {
            let store = open_store(&config).await?;
            store.migrate().await.context("migrating")?;
            store.checkpoint_audit().await.context("writing the audit checkpoint")?;
            eprintln!("migrated the {} database", store.backend());
            Ok(ExitCode::SUCCESS)
        }),
        Some(NodeCommand::User(UserArgs { command: UserCommand::Add(u) })) => rt.block_on(async {
            let role = Role::parse(&u.role).context("unknown role")?;
            let store = open_store(&config).await?;
            let ctx = Ctx::new("cli", originlink_node::Clock::now(&SystemClock));
            let (user, token) = originlink_node::add_user(
                store.as_ref(),
                &ctx,
                &u.name,
                role,
                u.company.as_deref(),
                &config.authority.country,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{} ({})", e.message, e.code))?;
            store.checkpoint_audit().await.context("writing the audit checkpoint")?;
            eprintln!(
                "created user {} (id {}, {}{}); the token below is shown once",
                user.name,
                user.id,
                user.role,
                u.company.map(|c| format!(", company {c}")).unwrap_or_default()
            );
            outln!("{token}");
            Ok(ExitCode::SUCCESS)
        }),
    }
}

/// Opens the node's storage as the node does: with its audit key (created on first use) and
/// checkpoint.
async fn open_store(config: &Config) -> Result<std::sync::Arc<dyn originlink_store::Store>> {
    originlink_node::audit::open_store(config)
        .await
        .map_err(|e| anyhow::anyhow!("opening storage: {e} ({})", e.code()))
}

async fn serve(config: Config) -> Result<ExitCode> {
    originlink_node::init_logging(&config.log);
    let app = Application::build(&config, originlink_node::clock_for(&config))
        .await
        .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
    let addr = app.addr();
    tracing::info!(%addr, storage = config.database.url.expose().split(':').next().unwrap_or(""), "node bound");
    let stop = app.handle();
    crate::service::serve_until_signal("node", addr, stop, app.run_until_stopped()).await
}
