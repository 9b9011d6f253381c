//! Why the node could not start.

/// Why the node could not start. Stable codes via [`StartError::code`].
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The signing key or certificate could not be loaded.
    #[error("signing key: {0}")]
    Keys(#[from] originlink_trust::Error),
    /// The signing certificate is another country's than `[authority] country`: every
    /// certificate the node issued would be refused by its destination.
    #[error(
        "the signing certificate is {found}'s, the node is configured as {configured}: use the keys of {configured}, or set [authority] country = \"{found}\""
    )]
    KeysCountry {
        /// `[authority] country`.
        configured: String,
        /// The signing certificate's subject country (`?` when it has none).
        found: String,
    },
    /// The trust list or exchange configuration is not usable.
    #[error("exchange: {0}")]
    Exchange(String),
    /// The TLS certificate or key is not usable.
    #[error("tls: {0}")]
    Tls(String),
    /// A notification setting is not usable (a webhook secret file that cannot be read).
    #[error("notifications: {0}")]
    Notifications(String),
    /// Storage is not reachable.
    #[error("storage: {0}")]
    Store(#[from] originlink_store::StoreError),
    /// The database lacks schema migrations this release needs (a new database, or one an
    /// earlier release migrated), and `[database] auto_migrate` is off.
    #[error(
        "the database has migrations pending (version {}): run `originlink node migrate --config <this node's configuration>` first, or set [database] auto_migrate = true",
        pending.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
    )]
    NotMigrated {
        /// The versions not applied, in order.
        pending: Vec<i64>,
    },
    /// The listen address cannot be bound.
    #[error(transparent)]
    Bind(#[from] originlink_service::BindError),
}

impl StartError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            StartError::Keys(_) => "KEYS_UNAVAILABLE",
            StartError::KeysCountry { .. } => "KEYS_COUNTRY_MISMATCH",
            StartError::Exchange(_) => "EXCHANGE_INVALID",
            StartError::Tls(_) => "TLS_INVALID",
            StartError::Notifications(_) => "NOTIFICATIONS_INVALID",
            StartError::Store(_) => "STORAGE_UNAVAILABLE",
            StartError::NotMigrated { .. } => "DATABASE_NOT_MIGRATED",
            StartError::Bind(e) => e.code(),
        }
    }
}
