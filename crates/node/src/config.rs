//! The node's configuration: one TOML file, with `ORIGINLINK__SECTION__KEY` environment
//! variables overriding single keys (`ORIGINLINK__SERVER__LISTEN=127.0.0.1:0`). Unknown keys
//! are errors, so a typo never silently falls back to a default. Relative paths are relative
//! to the configuration file.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:8443"
//! body_limit = 1048576
//!
//! [database]
//! url = "sqlite:node.db"            # or "postgres://user@host:5432/db"
//! pool_size = 8                     # PostgreSQL connections
//!
//! [authority]
//! id = "KH-MOC"                     # the issuer recorded on certificates
//! name = "Ministry of Commerce"
//! country = "KH"
//! city = "Phnom Penh"
//! keys = "keys/KH"                  # written by `originlink keys init`
//! number_pattern = "KH-{year}-{seq:6}"
//! approvals_per_commit = 128        # group commit: approvals arriving together share a commit
//!
//! [tls]                             # optional: defaults to keys/tls.crt and keys/tls.key
//! cert = "keys/KH/tls.crt"
//! key = "keys/KH/tls.key"
//!
//! [audit]                           # optional: defaults to keys/audit.key and keys/audit.checkpoint
//! key = "keys/KH/audit.key"         # 32 random bytes (hex), created mode 0600 on first use
//! checkpoint = "keys/KH/audit.checkpoint"  # the chain head, anchored outside the database
//!
//! [console]                         # optional: the web console for people
//! listen = "127.0.0.1:8080"         # plain HTTP on loopback (behind a reverse proxy), or
//! tls_cert = "keys/KH/console.crt"  # HTTPS with its own certificate and key
//! tls_key = "keys/KH/console.key"
//! public_url = "https://console.moc.gov.kh"  # for links given to people (invitations)
//!
//! [log]
//! level = "info"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use originlink_service::config::{
    ConfigError, ConsoleConfig, DatabaseConfig, ENV_PREFIX, LogConfig, Secret,
};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// HTTP server.
    #[serde(default)]
    pub server: ServerConfig,
    /// Storage.
    pub database: DatabaseConfig,
    /// The issuing authority this node signs for.
    pub authority: AuthorityConfig,
    /// TLS certificate and key (default: the authority's `tls.crt` / `tls.key`).
    #[serde(default)]
    pub tls: TlsConfig,
    /// The audit chain's key and checkpoint (default: the authority's `audit.key` /
    /// `audit.checkpoint`).
    #[serde(default)]
    pub audit: AuditConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Exchange with other countries (optional: without it the node works alone).
    #[serde(default)]
    pub exchange: Option<ExchangeConfig>,
    /// Importing customs.
    #[serde(default)]
    pub customs: CustomsConfig,
    /// The clock.
    #[serde(default)]
    pub clock: ClockConfig,
    /// The web console for people (optional: without it the node serves the JSON API only).
    #[serde(default)]
    pub console: Option<ConsoleConfig>,
    /// How people are told what happened: e-mail through an SMTP relay, signed webhooks (in
    /// the console they always are).
    #[serde(default)]
    pub notifications: Option<NotificationsConfig>,
    /// What the node publishes for anyone: its certificate status list and the public
    /// verification page.
    #[serde(default)]
    pub public: PublicConfig,
}

/// `[public]`: the signed status list of this node's revoked and superseded certificates, and
/// the public verification page (`/verify` on the console's listener).
///
/// ```toml
/// [public]
/// status_list_hours = 24        # how long a list stays in force (its next_update)
/// status_list_refresh_minutes = 60   # a new list at least this often (and at once on a change)
/// verify_per_minute = 30        # public verifications per client address and minute
/// show_goods = false            # whether a number and check code show goods and parties
/// verify_url = "https://verify.moc.gov.kh"   # printed in QR codes; default: the console's
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublicConfig {
    /// Hours a status list stays in force (default 24).
    pub status_list_hours: u32,
    /// Minutes between lists when nothing changed (default 60).
    pub status_list_refresh_minutes: u32,
    /// Public verifications per client address per minute (default 30).
    pub verify_per_minute: u32,
    /// Whether a valid number and check code show the goods and parties too (the issuer's
    /// policy; default: only the minimal facts).
    pub show_goods: bool,
    /// The public verification page's base URL, which printed certificates' QR codes carry
    /// (default: `[console] public_url`, else the console's listener).
    pub verify_url: Option<String>,
}

impl Default for PublicConfig {
    fn default() -> Self {
        PublicConfig {
            status_list_hours: 24,
            status_list_refresh_minutes: 60,
            verify_per_minute: 30,
            show_goods: false,
            verify_url: None,
        }
    }
}

/// `[customs]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomsConfig {
    /// `[customs.risk]`: weights and thresholds of the risk rules (see `docs/reason-codes.md`).
    #[serde(default)]
    pub risk: originlink_customs::RiskConfig,
}

/// `[clock]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockConfig {
    /// Days added to the wall clock (0 in production; drills and tests move time with it).
    #[serde(default)]
    pub offset_days: i64,
}

/// `[exchange]`: how this node talks to other members (see `docs/protocol.md`).
///
/// ```toml
/// [exchange]
/// trust_list = "trust-list.json"        # signed by the network operator
/// operator_cert = "operator.crt"
/// gateway = "https://127.0.0.1:9443"    # default: the first gateway of the trust list
/// direct = { TH = "https://127.0.0.1:8444" }  # bilateral links, no gateway
/// pull = false                          # true: fetch from the gateway instead of being pushed to
/// protocol = 2                          # 2: batches with manifests; 1: as the previous version
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// The signed trust list.
    pub trust_list: PathBuf,
    /// The operator certificate the trust list must be signed with.
    pub operator_cert: PathBuf,
    /// The gateway URL; default the first gateway in the trust list.
    #[serde(default)]
    pub gateway: Option<String>,
    /// Partners reached directly: country code → URL (its certificate comes from the trust list).
    #[serde(default)]
    pub direct: std::collections::BTreeMap<String, String>,
    /// Pull from the gateway instead of accepting pushes.
    #[serde(default)]
    pub pull: bool,
    /// Messages per batch.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Attempts before a message becomes a dead letter.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First retry delay scale, in milliseconds.
    #[serde(default = "default_backoff_base")]
    pub backoff_base_ms: u64,
    /// Largest retry delay, in milliseconds.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_ms: u64,
    /// How often an idle outbox worker looks for messages written by another process (a
    /// message written by this node wakes it at once), in milliseconds.
    #[serde(default = "default_poll")]
    pub poll_ms: u64,
    /// How often the node asks its gateway for a newer signed trust list, in seconds (0:
    /// never). A newer list that verifies is written over `trust_list` and put in force.
    #[serde(default = "default_trust_list_refresh")]
    pub trust_list_refresh_s: u64,
    /// The highest exchange protocol version spoken: 2 (batches with a signed manifest,
    /// falling back to 1 for a peer that answers the version 2 path 404), or 1 (only version
    /// 1, as the previous version of OriginLink: no version 2 endpoint, version 1 batches).
    #[serde(default = "default_protocol")]
    pub protocol: u8,
}

fn default_protocol() -> u8 {
    2
}

fn default_trust_list_refresh() -> u64 {
    300
}

fn default_poll() -> u64 {
    100
}

fn default_batch() -> usize {
    256
}
fn default_attempts() -> u32 {
    12
}
fn default_backoff_base() -> u64 {
    200
}
fn default_backoff_max() -> u64 {
    60_000
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port (reported in the log).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest request body, in bytes; larger bodies get 413.
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// `[server.limits]`: timeouts and the connection cap.
    #[serde(default)]
    pub limits: originlink_exchange::server::ServeLimits,
}

fn default_listen() -> String {
    "127.0.0.1:8443".into()
}
fn default_body_limit() -> usize {
    1024 * 1024
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            body_limit: default_body_limit(),
            limits: Default::default(),
        }
    }
}

/// `[authority]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorityConfig {
    /// Issuer id recorded on certificates and used for numbering, e.g. `KH-MOC`.
    pub id: String,
    /// The authority's name, written in box 12.
    pub name: String,
    /// Its country (the exporting country of everything it issues).
    pub country: String,
    /// Place of issue.
    #[serde(default)]
    pub city: Option<String>,
    /// Key directory written by `originlink keys init` (`signing.key`, `signing.crt`, …).
    pub keys: PathBuf,
    /// Number pattern: literal text with `{year}`, `{seq:N}` (zero-padded to N digits),
    /// `{country}`, `{issuer}`. Exactly one `{seq…}`.
    #[serde(default = "default_pattern")]
    pub number_pattern: String,
    /// Approvals arriving together share one commit, at most this many (group commit; 1:
    /// each approval commits alone).
    #[serde(default = "default_approvals_per_commit")]
    pub approvals_per_commit: usize,
}

fn default_pattern() -> String {
    "{country}-{year}-{seq:6}".into()
}

/// By default at most this many approvals share one transaction: a transaction holding the
/// sequence row for a few tens of milliseconds at most.
pub const APPROVALS_PER_COMMIT: usize = 128;

fn default_approvals_per_commit() -> usize {
    APPROVALS_PER_COMMIT
}

/// `[tls]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM PKCS#8 private key (mode 0600).
    pub key: Option<PathBuf>,
}

/// `[audit]`: the files that key and anchor the audit chain (`originlink_store::audit`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The audit key: a 32-byte node secret (64 hex digits), created with mode 0600 when
    /// missing and refused when group or others can read it. Back it up with the keys: without
    /// it the chain cannot be checked.
    pub key: Option<PathBuf>,
    /// The checkpoint: the chain head, MACed with the audit key, rewritten as the head moves.
    /// Keep it outside the database's reach (the default is the key directory).
    pub checkpoint: Option<PathBuf>,
}

impl Config {
    /// Loads `path` with overrides from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_env(path, std::env::vars())
    }

    /// Loads `path` with overrides from `env` (the testable core of [`Config::load`]).
    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        originlink_service::config::load(path, env, Config::resolve)
    }

    /// Parses TOML text, applies `env` overrides and resolves paths against `base`.
    pub fn parse(
        text: &str,
        base: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, String> {
        let mut cfg: Config = originlink_service::config::parse(text, env)?;
        cfg.resolve(base)?;
        Ok(cfg)
    }

    fn resolve(&mut self, base: &Path) -> Result<(), String> {
        let abs = |p: &Path| if p.is_absolute() { p.to_owned() } else { base.join(p) };
        self.authority.keys = abs(&self.authority.keys);
        self.tls.cert =
            Some(self.tls.cert.as_deref().map(abs).unwrap_or_else(|| self.authority.keys.join("tls.crt")));
        self.tls.key =
            Some(self.tls.key.as_deref().map(abs).unwrap_or_else(|| self.authority.keys.join("tls.key")));
        self.audit.key =
            Some(self.audit.key.as_deref().map(abs).unwrap_or_else(|| self.authority.keys.join("audit.key")));
        self.audit.checkpoint = Some(
            self.audit
                .checkpoint
                .as_deref()
                .map(abs)
                .unwrap_or_else(|| self.authority.keys.join("audit.checkpoint")),
        );
        self.database.resolve(base)?;
        if let Some(c) = &mut self.console {
            c.resolve(base)?;
        }
        if let Some(x) = &mut self.exchange {
            x.trust_list = abs(&x.trust_list);
            x.operator_cert = abs(&x.operator_cert);
            if !(1..=2).contains(&x.protocol) {
                return Err(format!("exchange.protocol: 1 or 2, not {}", x.protocol));
            }
            if !(1..=1000).contains(&x.batch) {
                return Err("exchange.batch: 1 to 1000".into());
            }
            for (country, url) in &x.direct {
                originlink_model::CountryCode::parse(country)
                    .map_err(|_| format!("exchange.direct: {country:?} is not a country code"))?;
                if !url.starts_with("https://") {
                    return Err(format!("exchange.direct.{country}: an https:// URL"));
                }
            }
        }
        crate::numbering::NumberPattern::parse(&self.authority.number_pattern)
            .map_err(|e| format!("authority.number_pattern: {e}"))?;
        if !(1..=10_000).contains(&self.authority.approvals_per_commit) {
            return Err("authority.approvals_per_commit: 1 to 10000 (1: each approval commits alone)".into());
        }
        self.log.check()?;
        Ok(())
    }
}

/// `[notifications]`: how people are told.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Milliseconds between steps (default 1000).
    #[serde(default)]
    pub interval_ms: Option<u64>,
    /// The SMTP relay, `host:port` (plain SMTP to a relay the operator runs, e.g. the local
    /// MTA; no e-mail is sent without it).
    #[serde(default)]
    pub smtp: Option<String>,
    /// The sender address of the e-mails.
    #[serde(default)]
    pub from: Option<String>,
    /// Webhooks of trader systems and others.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// Administrators are told when a member has not taken a message for this many minutes
    /// (default 15).
    #[serde(default)]
    pub unreachable_minutes: Option<u32>,
}

/// `[[notifications.webhooks]]`: where the notifications of one audience are posted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL (HTTPS checked against the system's CA certificates).
    pub url: String,
    /// Whose notifications: `company:<id>` or `role:<role>`.
    pub audience: String,
    /// A file holding the shared secret the calls are signed with (never logged).
    pub secret_file: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[database]
url = "sqlite:data/node.db"
[authority]
id = "KH-MOC"
name = "Ministry of Commerce"
country = "KH"
keys = "keys"
"#;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = Config::parse(MIN, Path::new("/etc/ol"), env(&[])).expect("valid");
        assert_eq!(c.server.listen, "127.0.0.1:8443");
        assert_eq!(c.server.body_limit, 1024 * 1024);
        assert_eq!(c.database.url.expose(), "sqlite:/etc/ol/data/node.db");
        assert_eq!(c.tls.cert.as_deref(), Some(Path::new("/etc/ol/keys/tls.crt")));
        assert_eq!(c.audit.key.as_deref(), Some(Path::new("/etc/ol/keys/audit.key")));
        assert_eq!(c.audit.checkpoint.as_deref(), Some(Path::new("/etc/ol/keys/audit.checkpoint")));
        assert_eq!(c.authority.number_pattern, "{country}-{year}-{seq:6}");
    }

    #[test]
    fn env_overrides_single_keys_with_types() {
        let e = env(&[
            ("ORIGINLINK__SERVER__LISTEN", "127.0.0.1:0"),
            ("ORIGINLINK__SERVER__BODY_LIMIT", "2048"),
            ("ORIGINLINK__DATABASE__URL", "postgres://u@h/db"),
            ("OTHER", "x"),
        ]);
        let c = Config::parse(MIN, Path::new("/x"), e).expect("valid");
        assert_eq!((c.server.listen.as_str(), c.server.body_limit), ("127.0.0.1:0", 2048));
        assert_eq!(c.database.url.expose(), "postgres://u@h/db");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let bad = format!("{MIN}\n[server]\nlisten_port = 3\n");
        assert!(Config::parse(&bad, Path::new("/x"), env(&[])).unwrap_err().contains("listen_port"));
        let e = env(&[("ORIGINLINK__SERVER__NOPE", "1")]);
        assert!(Config::parse(MIN, Path::new("/x"), e).unwrap_err().contains("nope"));
        let e = env(&[("ORIGINLINK__AUTHORITY__NUMBER_PATTERN", "KH-{year}")]);
        assert!(Config::parse(MIN, Path::new("/x"), e).unwrap_err().contains("number_pattern"));
        let e = env(&[("ORIGINLINK__SERVER", "1")]);
        assert!(Config::parse(MIN, Path::new("/x"), e).is_err());
        for n in ["0", "10001"] {
            let e = env(&[("ORIGINLINK__AUTHORITY__APPROVALS_PER_COMMIT", n)]);
            assert!(
                Config::parse(MIN, Path::new("/x"), e).unwrap_err().contains("approvals_per_commit"),
                "{n}"
            );
        }
        let e = env(&[("ORIGINLINK__AUTHORITY__APPROVALS_PER_COMMIT", "1")]);
        assert_eq!(Config::parse(MIN, Path::new("/x"), e).expect("valid").authority.approvals_per_commit, 1);
    }

    #[test]
    fn secrets_do_not_print() {
        let c =
            Config::parse(MIN, Path::new("/x"), env(&[("ORIGINLINK__DATABASE__URL", "postgres://u:pw@h/d")]))
                .expect("valid");
        assert!(!format!("{c:?}").contains("pw"));
    }
}
