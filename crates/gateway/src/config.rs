//! The gateway's configuration: one TOML file, with `ORIGINLINK__SECTION__KEY` environment
//! variables overriding single keys (`ORIGINLINK__SERVER__LISTEN=127.0.0.1:0`), as for the
//! node. Unknown keys are errors. Relative paths are relative to the configuration file.
//!
//! ```toml
//! [server]
//! listen = "127.0.0.1:9443"
//! body_limit = 33554432              # largest batch request, bytes (413 above)
//!
//! [database]
//! url = "sqlite:gateway.db"          # or "postgres://user@host:5432/db"
//! pool_size = 8                      # PostgreSQL connections
//!
//! [gateway]
//! id = "ASW-HUB"                     # as listed in the trust list
//! tls_cert = "keys/tls.crt"          # written by `originlink keys gateway`
//! tls_key = "keys/tls.key"
//! trust_list = "trust-list.json"     # signed by the operator
//! operator_cert = "operator.crt"     # the list must verify against it
//! verify_signatures = true           # check every envelope's signature (or its batch's manifest)
//! protocol = 2                       # exchange protocol: 2 (manifests) or 1 (as the previous version)
//! push_batch = 256                   # envelopes per push request
//! max_attempts = 12                  # failed pushes before a message is dead
//! backoff_base_ms = 200
//! backoff_max_ms = 60000
//! push_timeout_ms = 30000            # one push request, connect to answer
//! pull_only = ["VN"]                 # members that pull (so do members without a node URL)
//! operator_token_sha256 = "…"        # optional: SHA-256 (hex) of the operator's bearer token
//!                                    # (`printf %s "$TOKEN" | sha256sum`); without it, the
//!                                    # operator endpoints (dead letters, tracking any
//!                                    # message) take only the gateway's own TLS certificate
//!
//! [console]                          # optional: the operator's web console
//! listen = "127.0.0.1:9444"          # plain HTTP on loopback only; else tls_cert and tls_key
//!
//! [log]
//! level = "info"
//! format = "text"                    # or "json"
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
    /// The queue's storage.
    pub database: DatabaseConfig,
    /// Identity, trust and delivery.
    pub gateway: GatewayConfig,
    /// The operator's web console (optional: without it the gateway serves its API only).
    /// Operators are added with `originlink gateway operator add`.
    #[serde(default)]
    pub console: Option<ConsoleConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest request body, in bytes; larger bodies get 413 `BATCH_TOO_LARGE`.
    #[serde(default = "default_body_limit")]
    pub body_limit: usize,
    /// `[server.limits]`: timeouts and the connection cap.
    #[serde(default)]
    pub limits: originlink_exchange::server::ServeLimits,
}

fn default_listen() -> String {
    "127.0.0.1:9443".into()
}
fn default_body_limit() -> usize {
    originlink_exchange::body::MAX_BATCH_BYTES
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

/// `[gateway]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// The gateway's id, as listed in the trust list.
    pub id: String,
    /// PEM certificate (the one the trust list pins for this gateway).
    pub tls_cert: PathBuf,
    /// PEM PKCS#8 private key (mode 0600).
    pub tls_key: PathBuf,
    /// The signed trust list (JSON).
    pub trust_list: PathBuf,
    /// The network operator's certificate (PEM); the list must be signed with it.
    pub operator_cert: PathBuf,
    /// Check each envelope's signature against the sender country's node certificates.
    #[serde(default = "yes")]
    pub verify_signatures: bool,
    /// The highest exchange protocol version spoken: 2 (batches with manifests, falling back
    /// to 1 for peers that answer the version 2 path 404), or 1 (only version 1, as the
    /// previous version of OriginLink: no version 2 endpoint, version 1 pushes).
    #[serde(default = "default_protocol")]
    pub protocol: u8,
    /// Envelopes per push request.
    #[serde(default = "default_push_batch")]
    pub push_batch: usize,
    /// Failed push attempts before a message becomes a dead letter.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Backoff scale of the first retry, milliseconds.
    #[serde(default = "default_backoff_base")]
    pub backoff_base_ms: u64,
    /// Largest backoff, milliseconds.
    #[serde(default = "default_backoff_max")]
    pub backoff_max_ms: u64,
    /// Time limit of one push request, milliseconds.
    #[serde(default = "default_push_timeout")]
    pub push_timeout_ms: u64,
    /// Members that pull their messages instead of being pushed to (members without a node
    /// URL pull too).
    #[serde(default)]
    pub pull_only: Vec<String>,
    /// SHA-256 (lower-case hex) of the operator's bearer token for the operator endpoints
    /// (`GET /exchange/v1/dead`, `POST /exchange/v1/dead/{id}/retry`, tracking any message),
    /// sent as `Authorization: Bearer <token>`. The token itself is never configured, stored or
    /// logged; the operator makes it (any long random string) and configures its hash
    /// (`printf %s "$TOKEN" | sha256sum`). Without it only the gateway's own TLS certificate,
    /// presented as client certificate, makes a caller the operator.
    #[serde(default)]
    pub operator_token_sha256: Option<String>,
    /// Hours a delivered message's body is kept after delivery (its tracking row stays for
    /// good); 0 purges it at the next sweep. Default 24.
    #[serde(default = "default_retention_hours")]
    pub retention_hours: u32,
}

fn default_retention_hours() -> u32 {
    24
}

fn yes() -> bool {
    true
}
fn default_protocol() -> u8 {
    2
}

fn default_push_batch() -> usize {
    256
}
fn default_max_attempts() -> u32 {
    12
}
fn default_backoff_base() -> u64 {
    200
}
fn default_backoff_max() -> u64 {
    60_000
}
fn default_push_timeout() -> u64 {
    30_000
}

impl Config {
    /// Loads `path` with overrides from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with_env(path, std::env::vars())
    }

    /// Loads `path` with overrides from `env`.
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
        let g = &mut self.gateway;
        g.tls_cert = abs(&g.tls_cert);
        g.tls_key = abs(&g.tls_key);
        g.trust_list = abs(&g.trust_list);
        g.operator_cert = abs(&g.operator_cert);
        self.database.resolve(base)?;
        if let Some(c) = &mut self.console {
            c.resolve(base)?;
        }
        if self.server.body_limit < 1024 {
            return Err("server.body_limit: at least 1024".into());
        }
        if g.id.is_empty() {
            return Err("gateway.id: empty".into());
        }
        if !(1..=originlink_exchange::body::MAX_BATCH).contains(&g.push_batch) {
            return Err(format!("gateway.push_batch: 1 to {}", originlink_exchange::body::MAX_BATCH));
        }
        if !(1..=2).contains(&g.protocol) {
            return Err(format!("gateway.protocol: 1 or 2, not {}", g.protocol));
        }
        if g.max_attempts == 0 {
            return Err("gateway.max_attempts: at least 1".into());
        }
        if g.backoff_base_ms == 0 || g.backoff_max_ms < g.backoff_base_ms {
            return Err("gateway.backoff_base_ms: at least 1 and at most backoff_max_ms".into());
        }
        if g.push_timeout_ms == 0 {
            return Err("gateway.push_timeout_ms: at least 1".into());
        }
        for c in &mut g.pull_only {
            *c = c.to_ascii_uppercase();
            originlink_model::CountryCode::parse(c).map_err(|_| format!("gateway.pull_only: {c:?}"))?;
        }
        if let Some(h) = &mut g.operator_token_sha256 {
            *h = h.to_ascii_lowercase();
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("gateway.operator_token_sha256: 64 hexadecimal digits".into());
            }
        }
        if self.log.check().is_err() {
            return Err("log.format: `text` or `json`".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[database]
url = "sqlite:data/gw.db"
[gateway]
id = "ASW-HUB"
tls_cert = "keys/tls.crt"
tls_key = "keys/tls.key"
trust_list = "trust-list.json"
operator_cert = "/etc/operator.crt"
"#;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = Config::parse(MIN, Path::new("/srv/gw"), env(&[])).expect("valid");
        assert_eq!(c.server.listen, "127.0.0.1:9443");
        assert_eq!(c.server.body_limit, 32 * 1024 * 1024);
        assert_eq!(c.database.url.expose(), "sqlite:/srv/gw/data/gw.db");
        assert_eq!(c.gateway.tls_key, Path::new("/srv/gw/keys/tls.key"));
        assert_eq!(c.gateway.operator_cert, Path::new("/etc/operator.crt"));
        let g = &c.gateway;
        assert!(g.verify_signatures);
        assert_eq!(
            (g.push_batch, g.max_attempts, g.backoff_base_ms, g.backoff_max_ms),
            (256, 12, 200, 60_000)
        );
        assert!(g.pull_only.is_empty() && g.operator_token_sha256.is_none());
    }

    #[test]
    fn env_overrides_with_types_and_arrays() {
        let e = env(&[
            ("ORIGINLINK__SERVER__LISTEN", "127.0.0.1:0"),
            ("ORIGINLINK__GATEWAY__PUSH_BATCH", "16"),
            ("ORIGINLINK__GATEWAY__VERIFY_SIGNATURES", "false"),
            ("ORIGINLINK__GATEWAY__PULL_ONLY", r#"["vn", "LA"]"#),
            ("ORIGINLINK__DATABASE__URL", "postgres://u:pw@h/db"),
        ]);
        let c = Config::parse(MIN, Path::new("/x"), e).expect("valid");
        assert_eq!(c.server.listen, "127.0.0.1:0");
        assert_eq!(c.gateway.push_batch, 16);
        assert!(!c.gateway.verify_signatures);
        assert_eq!(c.gateway.pull_only, ["VN", "LA"]);
        assert!(!format!("{c:?}").contains("pw"), "the database URL does not print");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        let bad = format!("{MIN}\n[server]\nport = 3\n");
        assert!(Config::parse(&bad, Path::new("/x"), env(&[])).unwrap_err().contains("port"));
        for (k, v, needle) in [
            ("ORIGINLINK__GATEWAY__NOPE", "1", "nope"),
            ("ORIGINLINK__GATEWAY__PUSH_BATCH", "0", "push_batch"),
            ("ORIGINLINK__GATEWAY__PULL_ONLY", r#"["XX1"]"#, "pull_only"),
            ("ORIGINLINK__GATEWAY__OPERATOR_TOKEN_SHA256", "abc", "operator_token_sha256"),
            ("ORIGINLINK__GATEWAY__BACKOFF_MAX_MS", "10", "backoff"),
            ("ORIGINLINK__LOG__FORMAT", "xml", "log.format"),
        ] {
            let err = Config::parse(MIN, Path::new("/x"), env(&[(k, v)])).unwrap_err();
            assert!(err.contains(needle), "{k}={v}: {err}");
        }
    }
}
