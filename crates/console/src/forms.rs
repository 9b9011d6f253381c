//! Posted forms: the fields as typed (names may repeat, rows are `item-1-hs`), and the errors
//! shown beside them.

use axum::extract::{Form, FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The fields of an `application/x-www-form-urlencoded` post, in order.
#[derive(Debug, Clone, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed; `None` when empty.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
    }

    /// The fields as a map for a template (what the person typed, to show again).
    pub fn values(&self) -> std::collections::BTreeMap<String, String> {
        self.0.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        match Form::<Vec<(String, String)>>::from_request(req, state).await {
            Ok(Form(fields)) => Ok(FormData(fields)),
            Err(e) => {
                Err((StatusCode::BAD_REQUEST, format!("The form could not be read: {}", e.body_text()))
                    .into_response())
            }
        }
    }
}

/// The parts of a `multipart/form-data` post by name (the last part of a name wins); a part
/// that breaks off ends the reading. The body limit bounds what is held.
pub async fn multipart_parts(
    mut multipart: axum::extract::Multipart,
) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut parts = std::collections::BTreeMap::new();
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        match field.bytes().await {
            Ok(b) => {
                parts.insert(name, b.to_vec());
            }
            Err(_) => break,
        }
    }
    parts
}

/// The CSRF field of multipart `parts`, as a form for [`crate::auth::csrf_ok`].
pub fn csrf_of(parts: &std::collections::BTreeMap<String, Vec<u8>>) -> FormData {
    let token = parts.get("csrf").map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
    FormData(vec![("csrf".into(), token)])
}

/// One error on a form: the field (its `id`, for the summary's link) and the words.
#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    /// The field's `id` in the page.
    pub field: String,
    /// What is wrong and what to do, in words.
    pub text: String,
    /// The stable code, in small print for support.
    pub code: String,
}

/// Errors on a form, by field.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Errors(pub Vec<FieldError>);

impl Errors {
    /// Adds an error on `field`.
    pub fn add(&mut self, field: impl Into<String>, text: impl Into<String>, code: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), text: text.into(), code: code.into() });
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors as a map field → error, for the fields' own messages.
    pub fn by_field(&self) -> std::collections::BTreeMap<String, FieldError> {
        self.0.iter().rev().map(|e| (e.field.clone(), e.clone())).collect()
    }
}
