//! What went wrong in storage.

/// A result of a storage operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What went wrong in storage. [`StoreError::code`] is stable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// The operation is not allowed in the record's current state (an invalid transition,
    /// a duplicate name, ...).
    #[error("{message}")]
    Conflict {
        /// Stable code, e.g. `APPLICATION_NOT_SUBMITTED`.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// The signing callback of an approval failed; nothing was stored.
    #[error("signing failed: {0}")]
    Sign(String),
    /// The database URL in the configuration is not usable.
    #[error("bad database url: {0}")]
    Url(String),
    /// The database failed.
    #[error("database: {0}")]
    Backend(String),
}

impl StoreError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::NotFound => "NOT_FOUND",
            StoreError::Conflict { code, .. } => code,
            StoreError::Sign(_) => "SIGNING_FAILED",
            StoreError::Url(_) => "DATABASE_URL_INVALID",
            StoreError::Backend(_) => "DATABASE_ERROR",
        }
    }
    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        StoreError::Conflict { code, message: message.into() }
    }
}
