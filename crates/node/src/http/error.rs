//! The one API error: an HTTP status and the JSON body `{code, message, field?}`. Every
//! rejection (auth, role, body) and every use case's [`app::Error`] ends up here; 5xx causes
//! are logged in full and answered with a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app::{self, Kind};

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

impl From<app::Error> for ApiError {
    fn from(e: app::Error) -> Self {
        let status = match e.kind {
            Kind::Invalid => StatusCode::BAD_REQUEST,
            Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
            Kind::Throttled => StatusCode::TOO_MANY_REQUESTS,
            Kind::Forbidden => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::Conflict => StatusCode::CONFLICT,
            Kind::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // A 5xx says no more than its code: the cause was logged where it happened.
        let message = match e.kind {
            Kind::Internal if e.code == "INTERNAL" => "internal error".to_owned(),
            _ => e.message,
        };
        ApiError { status, code: e.code, message, field: e.field }
    }
}

impl From<originlink_store::StoreError> for ApiError {
    fn from(e: originlink_store::StoreError) -> Self {
        app::Error::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { code: self.code, message: &self.message, field: self.field.as_deref() };
        (self.status, Json(body)).into_response()
    }
}
