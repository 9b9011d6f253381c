//! `originlink node`: run the country node, migrate its database, add users.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use originlink_node::{Application, Config, SystemClock};
use originlink_store::{Ctx, Role, Store, UserChange, UserRecord};

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
    /// List the users: id, name, role, company, disabled, created, active tokens.
    List,
    /// Disable a user: its tokens answer 401 until it is enabled.
    Disable(NameArg),
    /// Enable a disabled user.
    Enable(NameArg),
    /// Issue a user a new token (printed once), revoking its others; `--revoke` only revokes.
    Token(TokenArgs),
    /// Set a user's console password, read from standard input (one line); their sessions end.
    Password(NameArg),
}

#[derive(Debug, clap::Args)]
struct NameArg {
    /// The user's login name.
    #[arg(long)]
    name: String,
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The user's login name.
    #[arg(long)]
    name: String,
    /// Revoke every token of the user and issue none.
    #[arg(long)]
    revoke: bool,
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
    /// Read the user's console password from standard input (one line); without it, an
    /// administrator invites the user from the console.
    #[arg(long)]
    password_stdin: bool,
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
    let path = a.config.unwrap_or_default();
    let path = path.as_path();
    let rt = runtime()?;
    match a.command {
        None => rt.block_on(serve(config, path)),
        Some(NodeCommand::Migrate) => rt.block_on(async {
            let store = open_store(&config).await?;
            store.migrate().await.context("migrating")?;
            store.checkpoint_audit().await.context("writing the audit checkpoint")?;
            eprintln!("migrated the {} database", store.backend());
            Ok(ExitCode::SUCCESS)
        }),
        Some(NodeCommand::User(UserArgs { command: UserCommand::List })) => rt.block_on(async {
            let store = open_migrated(&config, path).await?;
            let users = originlink_node::app::users::list(store.as_ref()).await.map_err(app_err)?;
            outln!(
                "{:<6} {:<24} {:<16} {:<24} {:<9} {:<7} created",
                "id",
                "name",
                "role",
                "company",
                "disabled",
                "tokens"
            );
            for u in users {
                outln!(
                    "{:<6} {:<24} {:<16} {:<24} {:<9} {:<7} {}",
                    u.id,
                    u.name,
                    u.role.as_str(),
                    u.company.as_deref().unwrap_or("-"),
                    if u.disabled { "yes" } else { "no" },
                    u.active_tokens,
                    u.created_at
                );
            }
            Ok(ExitCode::SUCCESS)
        }),
        Some(NodeCommand::User(UserArgs { command: UserCommand::Disable(n) })) => {
            rt.block_on(change_user(&config, path, &n.name, UserChange::Disable))
        }
        Some(NodeCommand::User(UserArgs { command: UserCommand::Enable(n) })) => {
            rt.block_on(change_user(&config, path, &n.name, UserChange::Enable))
        }
        Some(NodeCommand::User(UserArgs { command: UserCommand::Password(n) })) => rt.block_on(async {
            let store = open_migrated(&config, path).await?;
            let user = user_named(store.as_ref(), &n.name).await?;
            let password = read_password()?;
            originlink_node::app::sessions::set_password(store.as_ref(), &cli_ctx(), user.id, &password)
                .await
                .map_err(app_err)?;
            store.checkpoint_audit().await.context("writing the audit checkpoint")?;
            eprintln!(
                "set the console password of {} (id {}); their sessions have ended",
                user.name, user.id
            );
            Ok(ExitCode::SUCCESS)
        }),
        Some(NodeCommand::User(UserArgs { command: UserCommand::Token(t) })) if t.revoke => {
            rt.block_on(change_user(&config, path, &t.name, UserChange::RevokeTokens))
        }
        Some(NodeCommand::User(UserArgs { command: UserCommand::Token(t) })) => rt.block_on(async {
            let store = open_migrated(&config, path).await?;
            let user = user_named(store.as_ref(), &t.name).await?;
            let (user, token) = originlink_node::app::users::issue_token(store.as_ref(), &cli_ctx(), user.id)
                .await
                .map_err(app_err)?;
            store.checkpoint_audit().await.context("writing the audit checkpoint")?;
            eprintln!(
                "issued {} (id {}) a new token, its others revoked; the token below is shown once",
                user.name, user.id
            );
            outln!("{token}");
            Ok(ExitCode::SUCCESS)
        }),
        Some(NodeCommand::User(UserArgs { command: UserCommand::Add(u) })) => rt.block_on(async {
            let role = Role::parse(&u.role).context("unknown role")?;
            let store = open_migrated(&config, path).await?;
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
            if u.password_stdin {
                let password = read_password()?;
                originlink_node::app::sessions::set_password(store.as_ref(), &ctx, user.id, &password)
                    .await
                    .map_err(app_err)?;
            }
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

/// A password from standard input: the first line, without its line ending.
pub(crate) fn read_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// A node and, when `[console]` is configured, its console: bound, not yet serving.
pub(crate) struct Built {
    /// The node.
    pub app: Application,
    /// Its console.
    pub console: Option<originlink_console::Console>,
}

impl Built {
    /// Builds the node (keys, storage, listener) and its console's listener.
    /// `path` is the configuration file's, for the hint of a start error.
    pub(crate) async fn build(
        config: &Config,
        clock: std::sync::Arc<dyn originlink_node::Clock>,
        path: &Path,
    ) -> Result<Built> {
        let app = Application::build(config, clock).await.map_err(|e| start_err(e, path))?;
        let console = match &config.console {
            Some(c) => Some(
                originlink_console::Console::build(c, app.state().clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("console: {e} ({})", e.code()))?,
            ),
            None => None,
        };
        Ok(Built { app, console })
    }

    /// The console's URL, when there is one.
    pub(crate) fn console_url(&self) -> Option<String> {
        self.console.as_ref().map(|c| c.url())
    }

    /// Serves the node and its console until the node's handle stops both.
    pub(crate) async fn run(self) -> std::io::Result<()> {
        if let Some(c) = self.console {
            tokio::spawn(c.run_until_stopped(self.app.handle()));
        }
        self.app.run_until_stopped().await
    }
}

/// The acting "user" of the operator's command line.
fn cli_ctx() -> Ctx {
    Ctx::new("cli", originlink_node::Clock::now(&SystemClock))
}

/// A use case's error as the command line shows it: message and code.
fn app_err(e: originlink_node::app::Error) -> anyhow::Error {
    anyhow::anyhow!("{} ({})", e.message, e.code)
}

/// The user with this login name; `USER_NOT_FOUND` says how to list them.
async fn user_named(store: &dyn Store, name: &str) -> Result<UserRecord> {
    let users = originlink_node::app::users::list(store).await.map_err(app_err)?;
    users.into_iter().find(|u| u.name == name).with_context(|| {
        format!("no user named {name:?}; `originlink node user list --config …` lists them (USER_NOT_FOUND)")
    })
}

/// Disables or enables a user, or revokes its tokens, from the command line (audited as `cli`).
async fn change_user(config: &Config, path: &Path, name: &str, change: UserChange) -> Result<ExitCode> {
    let store = open_migrated(config, path).await?;
    let user = user_named(store.as_ref(), name).await?;
    let user = originlink_node::app::users::change(store.as_ref(), &cli_ctx(), None, user.id, change)
        .await
        .map_err(app_err)?;
    store.checkpoint_audit().await.context("writing the audit checkpoint")?;
    let what = match change {
        UserChange::Disable => "disabled",
        UserChange::Enable => "enabled",
        UserChange::RevokeTokens => "revoked every token of",
    };
    eprintln!("{what} {} (id {}); {} active token(s)", user.name, user.id, user.active_tokens);
    Ok(ExitCode::SUCCESS)
}

/// Opens the node's storage as the node does: with its audit key (created on first use) and
/// checkpoint.
async fn open_store(config: &Config) -> Result<std::sync::Arc<dyn Store>> {
    originlink_node::audit::open_store(config)
        .await
        .map_err(|e| anyhow::anyhow!("opening storage: {e} ({})", e.code()))
}

/// [`open_store`] for commands that use the schema: refused (`DATABASE_NOT_MIGRATED`, naming
/// `node migrate`) while migrations are pending, unless `[database] auto_migrate` applies them.
async fn open_migrated(config: &Config, path: &Path) -> Result<std::sync::Arc<dyn Store>> {
    originlink_node::audit::open_migrated(config).await.map_err(|e| start_err(e, path))
}

/// A start error as the command line shows it, with the exact migrate command when that is
/// what to do.
fn start_err(e: originlink_node::StartError, path: &Path) -> anyhow::Error {
    match e {
        originlink_node::StartError::NotMigrated { .. } => {
            anyhow::anyhow!("{e} ({}); run: originlink node migrate --config {}", e.code(), path.display())
        }
        e => anyhow::anyhow!("{e} ({})", e.code()),
    }
}

async fn serve(config: Config, path: &Path) -> Result<ExitCode> {
    originlink_node::init_logging(&config.log);
    let built = Built::build(&config, originlink_node::clock_for(&config), path).await?;
    let addr = built.app.addr();
    tracing::info!(%addr, storage = config.database.url.expose().split(':').next().unwrap_or(""), "node bound");
    if let Some(url) = built.console_url() {
        tracing::info!(%url, "console bound");
    }
    let stop = built.app.handle();
    crate::service::serve_until_signal("node", addr, stop, built.run()).await
}
