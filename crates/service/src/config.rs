//! One TOML configuration file with `ORIGINLINK__SECTION__KEY` environment variables
//! overriding single keys, secrets that never print, the `[database]` and `[log]` sections,
//! and the log subscriber. Unknown keys are errors, so a typo never falls back to a default.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The prefix of environment overrides.
pub const ENV_PREFIX: &str = "ORIGINLINK__";

/// A configuration error, with a stable code.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML (after environment overrides) is not a valid configuration.
    #[error("invalid configuration {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "CONFIG_UNREADABLE",
            ConfigError::Invalid { .. } => "CONFIG_INVALID",
        }
    }
}

/// A secret string (a database URL may hold a password): `Debug` hides it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite:PATH` (relative to the config file) or `postgres://…`.
    pub url: Secret,
    /// PostgreSQL connections per process (SQLite uses one writer connection).
    #[serde(default = "default_pool")]
    pub pool_size: usize,
    /// A node: apply pending schema migrations when it starts (and before `user` commands)
    /// instead of refusing to start with `DATABASE_NOT_MIGRATED`. Off by default, so a
    /// release's schema change happens when the operator runs `originlink node migrate`. The
    /// gateway always migrates its queue when it starts.
    #[serde(default)]
    pub auto_migrate: bool,
}

fn default_pool() -> usize {
    8
}

impl DatabaseConfig {
    /// Makes a relative SQLite path relative to `base` (the configuration file's folder) and
    /// checks the pool size.
    pub fn resolve(&mut self, base: &Path) -> Result<(), String> {
        let url = self.url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            let p = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
            if p.is_empty() {
                return Err("database.url: empty sqlite path".into());
            }
            let p = Path::new(p);
            let abs = if p.is_absolute() { p.to_owned() } else { base.join(p) };
            self.url = Secret::new(format!("sqlite:{}", abs.display()));
        }
        if !(1..=256).contains(&self.pool_size) {
            return Err("database.pool_size: 1 to 256".into());
        }
        Ok(())
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. `info` or `originlink_node=debug`.
    #[serde(default = "default_level")]
    pub level: String,
    /// `text` or `json`.
    #[serde(default = "default_format")]
    pub format: String,
}

fn default_level() -> String {
    "info".into()
}
fn default_format() -> String {
    "text".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { level: default_level(), format: default_format() }
    }
}

impl LogConfig {
    /// Checks the format.
    pub fn check(&self) -> Result<(), String> {
        if matches!(self.format.as_str(), "text" | "json") {
            Ok(())
        } else {
            Err("log.format: `text` or `json`".into())
        }
    }

    /// Installs the `tracing` subscriber (text or JSON lines on stderr).
    pub fn init(&self) {
        let filter = tracing_subscriber::EnvFilter::try_new(&self.level)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder =
            tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false);
        let _ = if self.format == "json" { builder.json().try_init() } else { builder.try_init() };
    }
}

/// Reads a configuration file, then [`parse`]s it with `env` and hands the result and the
/// file's folder to `resolve`.
pub fn load<T: DeserializeOwned>(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
    resolve: impl FnOnce(&mut T, &Path) -> Result<(), String>,
) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let base = path.parent().unwrap_or(Path::new("."));
    parse(&text, env)
        .and_then(|mut c| resolve(&mut c, base).map(|()| c))
        .map_err(|message| ConfigError::Invalid { path: path.to_owned(), message })
}

/// Parses TOML text with the `ORIGINLINK__SECTION__KEY` overrides from `env` applied (a
/// value that reads as a TOML number, boolean or array is one; anything else is text).
pub fn parse<T: DeserializeOwned>(
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, String> {
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let mut overrides: Vec<(String, String)> =
        env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
    overrides.sort();
    for (key, value) in overrides {
        let path: Vec<String> = key[ENV_PREFIX.len()..].split("__").map(|s| s.to_ascii_lowercase()).collect();
        if path.len() != 2 || path.iter().any(String::is_empty) {
            return Err(format!("{key}: overrides are ORIGINLINK__SECTION__KEY"));
        }
        let section = table
            .entry(path[0].clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("{key}: [{}] is not a section", path[0]))?;
        section.insert(path[1].clone(), env_value(&value));
    }
    toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| e.to_string())
}

/// An override's value: a TOML number, boolean or array when it parses as one, else text.
fn env_value(v: &str) -> toml::Value {
    match format!("x = {v}").parse::<toml::Table>() {
        Ok(mut t) => match t.remove("x") {
            Some(
                val @ (toml::Value::Integer(_)
                | toml::Value::Boolean(_)
                | toml::Value::Float(_)
                | toml::Value::Array(_)),
            ) => val,
            _ => toml::Value::String(v.to_owned()),
        },
        Err(_) => toml::Value::String(v.to_owned()),
    }
}

/// `[console]`: a web console, on its own listener (a node's console for people, the
/// gateway's for its operator). With `tls_cert` and `tls_key` it speaks HTTPS (no client
/// certificate is asked); without them, plain HTTP, which is allowed on a loopback address
/// only (behind a reverse proxy that terminates TLS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks one).
    pub listen: String,
    /// PEM certificate of the console's HTTPS listener.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of the console's HTTPS listener.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// The console's address as people reach it (behind a reverse proxy:
    /// `https://console.moc.gov.kh`), for the links it gives them (invitations). Default: the
    /// listener's scheme with the request's host.
    #[serde(default)]
    pub public_url: Option<String>,
}

impl ConsoleConfig {
    /// Resolves the key paths against `base` and checks the section: an http(s) public URL,
    /// certificate and key together, plain HTTP on a loopback address only.
    pub fn resolve(&mut self, base: &Path) -> Result<(), String> {
        let abs = |p: &Path| if p.is_absolute() { p.to_owned() } else { base.join(p) };
        self.tls_cert = self.tls_cert.as_deref().map(abs);
        self.tls_key = self.tls_key.as_deref().map(abs);
        if let Some(url) = &self.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(format!("console.public_url: {url:?} is not an http(s):// URL"));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), Some(_)) => Ok(()),
            (None, None) => {
                let loopback =
                    self.listen.parse::<std::net::SocketAddr>().is_ok_and(|a| a.ip().is_loopback())
                        || self.listen.starts_with("localhost:");
                if loopback {
                    Ok(())
                } else {
                    Err(format!(
                        "console.listen: {} is not a loopback address; plain HTTP is for a reverse proxy on this machine: set console.tls_cert and console.tls_key, or listen on 127.0.0.1",
                        self.listen
                    ))
                }
            }
            _ => Err("console: tls_cert and tls_key go together".into()),
        }
    }
}
