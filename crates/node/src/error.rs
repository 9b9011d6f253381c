//! The one API error: an HTTP status and the JSON body `{code, message, field?}`. Every
//! rejection (auth, role, tenant, body, state) ends up here; 5xx causes are logged in full
//! and answered with a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use originlink_store::StoreError;
use serde::Serialize;

/// An API error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// The offending field (JSON pointer or model path), when there is one.
    pub field: Option<String>,
}

/// The JSON body of every error.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// Stable code.
    pub code: &'a str,
    /// Message.
    pub message: &'a str,
    /// Field, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None }
    }
    /// Names the offending field.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
    /// 404 `NOT_FOUND`: also the answer for another tenant's records.
    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such resource")
    }
    /// 401 `UNAUTHENTICATED`.
    pub fn unauthenticated() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "a valid bearer token is required")
    }
    /// 403 `ROLE_FORBIDDEN`.
    pub fn forbidden(role: &str) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "ROLE_FORBIDDEN", format!("the {role} role may not do this"))
    }
    /// 400 `INVALID_BODY` on `field`.
    pub fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message).field(field)
    }
    /// 500, cause logged, generic answer.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", "internal error")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found(),
            StoreError::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            StoreError::Sign(m) => {
                tracing::error!(error = %m, "signing failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "SIGNING_FAILED",
                    "the document could not be signed",
                )
            }
            e @ (StoreError::Backend(_) | StoreError::Url(_)) => {
                tracing::error!(error = %e, "storage failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "STORAGE_UNAVAILABLE",
                    "storage is unavailable",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { code: self.code, message: &self.message, field: self.field.as_deref() };
        (self.status, Json(body)).into_response()
    }
}
