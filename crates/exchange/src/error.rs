//! The one error of the exchange: a stable code, the field it concerns, a message.

use serde::Serialize;

/// A refusal or failure, as returned in acknowledgements and HTTP error bodies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ExchangeError {
    /// Stable code, e.g. `PAYLOAD_HASH_MISMATCH` (listed in `docs/protocol.md`).
    pub code: &'static str,
    /// The envelope member concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For people.
    pub message: String,
}

impl ExchangeError {
    /// A new error.
    pub fn new(code: &'static str, field: Option<&str>, message: impl ToString) -> Self {
        ExchangeError { code, field: field.map(str::to_owned), message: message.to_string() }
    }
}
