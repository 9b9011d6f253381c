//! The one error of the use cases: what went wrong in the user's terms (a [`Kind`], a stable
//! code, a message for people and the field it concerns). It knows nothing of HTTP: the JSON
//! API maps a kind to a status (`crate::http::error`), the console to a page.

use originlink_store::StoreError;

/// What kind of failure, as a front door needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The input is wrong (a field, a value, a combination). HTTP 400.
    Invalid,
    /// Who is acting is not established (a wrong name or password). HTTP 401.
    Unauthenticated,
    /// Too many attempts: wait before trying again. HTTP 429.
    Throttled,
    /// The acting user's role may not do this. HTTP 403.
    Forbidden,
    /// No such record, or not one the acting user may see. HTTP 404.
    NotFound,
    /// The record is not in a state that allows this. HTTP 409.
    Conflict,
    /// The input reads but cannot be accepted (a document, a rule). HTTP 422.
    Unprocessable,
    /// Storage is unavailable; try again. HTTP 503.
    Unavailable,
    /// A bug or a broken dependency (signing, randomness); logged in full. HTTP 500.
    Internal,
}

/// A use case's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    /// What kind.
    pub kind: Kind,
    /// Stable code.
    pub code: &'static str,
    /// For people.
    pub message: String,
    /// The field concerned (JSON pointer, model path or form field), when there is one.
    pub field: Option<String>,
}

/// The result of a use case.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with `code` and `message`.
    pub fn new(kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        Error { kind, code, message: message.into(), field: None }
    }
    /// Names the field concerned.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    /// `INVALID`-kind error on `field`.
    pub fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Error::new(Kind::Invalid, code, message).field(field)
    }
    /// `NOT_FOUND`: also the answer for another tenant's records.
    pub fn not_found() -> Self {
        Error::new(Kind::NotFound, "NOT_FOUND", "no such resource")
    }
    /// `ROLE_FORBIDDEN`.
    pub fn forbidden(role: &str) -> Self {
        Error::new(Kind::Forbidden, "ROLE_FORBIDDEN", format!("the {role} role may not do this"))
    }
    /// An unprocessable input with its own code.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Error::new(Kind::Unprocessable, code, message)
    }
    /// A failure that is not the user's: the cause is logged, the answer is generic.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Error::new(Kind::Internal, "INTERNAL", "internal error")
    }
    /// `EXCHANGE_NOT_CONFIGURED`: the use case needs the exchange and this node has none.
    pub fn no_exchange() -> Self {
        Error::new(Kind::Conflict, "EXCHANGE_NOT_CONFIGURED", "this node has no exchange")
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Error::not_found(),
            StoreError::Conflict { code, message } => Error::new(Kind::Conflict, code, message),
            StoreError::Sign(m) => {
                tracing::error!(error = %m, "signing failed");
                Error::new(Kind::Internal, "SIGNING_FAILED", "the document could not be signed")
            }
            e @ (StoreError::Backend(_) | StoreError::Url(_)) => {
                tracing::error!(error = %e, "storage failed");
                Error::new(Kind::Unavailable, "STORAGE_UNAVAILABLE", "storage is unavailable")
            }
        }
    }
}
