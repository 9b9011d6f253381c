//! Request extractors whose rejections are [`ApiError`]s: the signed-in user ([`Auth`], set by
//! the role guard of the route table), an `{id}` in the path ([`Id`]), a JSON body
//! ([`JsonBody`]), list pages ([`ListPage`]), body limits and media types.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use originlink_store::{Page, Role, User, token_hash};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::app::{self, AppState};

/// The signed-in user. The route table's guard ([`authorize`]) authenticates the bearer token
/// and checks the role before the handler runs, and hands the user on.
#[derive(Debug, Clone)]
pub struct Auth(pub User);

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // Only reachable unguarded through a route without roles: a bug in the table.
        parts.extensions.get::<User>().cloned().map(Auth).ok_or_else(ApiError::unauthenticated)
    }
}

/// The user whose bearer token the request carries; `None` without a valid one (unknown or
/// revoked token, disabled user: the store excludes them).
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Option<User>, ApiError> {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    else {
        return Ok(None);
    };
    Ok(state.store.user_by_token_hash(&token_hash(token)).await?)
}

/// The role guard of one route: 401 `UNAUTHENTICATED` without a valid token, 403
/// `ROLE_FORBIDDEN` for a role the route table does not list; otherwise the user goes on to
/// the handler as [`Auth`].
pub async fn authorize(
    state: &AppState,
    roles: &'static [Role],
    mut req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let user = match authenticate(state, req.headers()).await {
        Ok(Some(user)) => user,
        Ok(None) => return ApiError::unauthenticated().into_response(),
        Err(e) => return e.into_response(),
    };
    if !roles.contains(&user.role) {
        return ApiError::forbidden(user.role.as_str()).into_response();
    }
    req.extensions_mut().insert(user);
    next.run(req).await
}

/// The `{id}` of the path; anything but an integer is 404, as an id that does not exist.
#[derive(Debug, Clone, Copy)]
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<i64>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Id(id))
            .map_err(|_| ApiError::not_found())
    }
}

/// `?limit=&before=` of list endpoints: newest first, `before` is the last id of the
/// previous page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1 to 1000, default 100.
    #[serde(default)]
    pub limit: Option<i64>,
    /// Only ids below this one.
    #[serde(default)]
    pub before: Option<i64>,
}

/// The page a list request asks for, for the signed-in user (an exporter's pages hold its
/// company's records only). Rejections: 400 `INVALID_QUERY`.
#[derive(Debug, Clone)]
pub struct ListPage(pub Page);

impl<S: Send + Sync> FromRequestParts<S> for ListPage {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(q) = Query::<ListQuery>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_QUERY", e.body_text()))?;
        let Auth(user) = Auth::from_request_parts(parts, state).await?;
        Ok(ListPage(app::page(&user, q.limit, q.before)?))
    }
}

/// The query of a list endpoint with filters: `T` holds `limit`, `before` and the filters
/// (unknown parameters refused). Rejections: 400 `INVALID_QUERY`.
#[derive(Debug, Clone)]
pub struct ListOf<T>(pub Page, pub T);

/// What [`ListOf`] needs of its query.
pub trait Paged {
    /// `(limit, before)`.
    fn page(&self) -> (Option<i64>, Option<i64>);
}

impl<S: Send + Sync, T: DeserializeOwned + Paged + Send> FromRequestParts<S> for ListOf<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(q) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_QUERY", e.body_text()))?;
        let Auth(user) = Auth::from_request_parts(parts, state).await?;
        let (limit, before) = q.page();
        Ok(ListOf(app::page(&user, limit, before)?, q))
    }
}

/// A JSON body of type `T`: other media types are 415, unknown fields and bad values 400
/// with the field as a JSON pointer, a body over the limit 413.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = content_type(req.headers()) == "application/json";
        let body = Bytes::from_request(req, state).await.map_err(bytes_rejection)?;
        if !json {
            return Err(unsupported_media_type("application/json"));
        }
        parse_json(&body).map(JsonBody)
    }
}

/// Parses a JSON body; every refusal names the field it concerns as a JSON pointer
/// (`/items/2/qty`), found by `serde_path_to_error`, not guessed from the message.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| (json_pointer(e.path()), e.into_inner()))
        .and_then(|v| de.end().map(|()| v).map_err(|e| (String::new(), e)));
    parsed.map_err(|(pointer, inner)| {
        use serde_json::error::Category;
        let msg = inner.to_string();
        let code = match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => "MALFORMED_JSON",
            Category::Data if msg.contains("unknown field") => "UNKNOWN_FIELD",
            Category::Data if msg.contains("missing field") => "MISSING_FIELD",
            Category::Data => "INVALID_FIELD",
        };
        // A missing member is named by the message; the path is its parent's.
        let named = msg.split('`').nth(1).filter(|_| code == "MISSING_FIELD");
        let field = match (code, named) {
            ("MALFORMED_JSON", _) => pointer,
            (_, Some(member)) => format!("{}/{member}", pointer.trim_end_matches('/')),
            _ => pointer,
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, msg).field(if field.is_empty() {
            "/".to_owned()
        } else {
            field
        })
    })
}

/// `serde_path_to_error`'s path as a JSON pointer (RFC 6901): `` for the root, `/a/0/b`.
fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        out.push('/');
        match seg {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                out.push_str(&key.replace('~', "~0").replace('/', "~1"))
            }
            Segment::Unknown => out.push('?'),
        }
    }
    out
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
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default()
}
