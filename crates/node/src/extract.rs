//! Request extractors whose rejections are [`ApiError`]s: the bearer token, body limits,
//! media types.

use axum::extract::FromRequestParts;
use axum::extract::rejection::BytesRejection;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use originlink_store::{User, token_hash};

use crate::AppState;
use crate::error::ApiError;

/// The authenticated user, from `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct Auth(pub User);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|s| s.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthenticated)?;
        let user = state
            .store
            .user_by_token_hash(&token_hash(token))
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        Ok(Auth(user))
    }
}

/// Maps a body-read failure: over the limit is 413 `BODY_TOO_LARGE`.
pub fn bytes_rejection(b: BytesRejection) -> ApiError {
    if b.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE", "the request body is over the limit")
    } else {
        ApiError::new(StatusCode::BAD_REQUEST, "INVALID_BODY", b.body_text())
    }
}

/// 415 `UNSUPPORTED_MEDIA_TYPE`.
pub fn unsupported_media_type(expected: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
        format!("Content-Type must be {expected}"),
    )
}

/// The media type of a request, lower-cased, without parameters.
pub fn content_type(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}
