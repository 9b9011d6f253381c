//! The HTTP API. Each handler checks, in this order: the token (401), the role (403), the
//! body (400/413/415/422), the record and its tenant (404: another company's records do not
//! exist for you), then the transition (409 with a code). Endpoints with failures of their own
//! have an error enum ([`CreateApplicationError`], [`RulesError`], [`CreateUserError`]) that
//! maps each variant to one status and code; the others fail only with request or storage
//! errors, as [`ApiError`].
//!
//! | route | roles |
//! |---|---|
//! | `POST /api/v1/applications` | exporter |
//! | `GET /api/v1/applications`, `…/{id}`, `…/{id}/document` | exporter (own), issuing officer |
//! | `POST /api/v1/applications/{id}/submit` | exporter (own) |
//! | `POST /api/v1/applications/{id}/approve`, `…/reject` | issuing officer |
//! | `GET /api/v1/certificates`, `…/{id}`, `…/{id}/document` | exporter (own), issuing officer |
//! | `POST /api/v1/certificates/{id}/revoke` | issuing officer |
//! | `POST /api/v1/qualify`, `GET /api/v1/rules` | any authenticated user |
//! | `POST /api/v1/users` | admin |

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use originlink_store::{
    Application, Certificate, Ctx, MessagesFn, NewApplication, Page, Role, SignFn, Transition, User,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, bytes_rejection, content_type, unsupported_media_type};
use crate::issue::Links;
use crate::metrics::{Metrics, track};

/// Builds the router with its state, body limit and request tracking.
pub fn router(state: AppState, body_limit: usize) -> Router {
    let mut router = Router::new();
    for op in crate::openapi::OPERATIONS {
        router = router.route(op.path, (op.handler)());
    }
    // The exchange endpoint (docs/protocol.md) is not part of the user API: peers authenticate
    // with their TLS certificate before it reads the body, and batches may be larger than a
    // user request (it applies its own limit).
    let exchange = Router::new()
        .route(originlink_exchange::MESSAGES_PATH, axum::routing::post(crate::exchange::inbound));
    router
        .layer(DefaultBodyLimit::max(body_limit))
        .merge(exchange)
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(from_fn_with_state(state.clone(), track))
        .with_state(state)
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn require(user: &User, roles: &[Role]) -> ApiResult<()> {
    if roles.contains(&user.role) { Ok(()) } else { Err(ApiError::forbidden(user.role.as_str())) }
}

/// Whether `user` may see a record of `company_id`. Exporters see their own company only;
/// the issuing authority sees everything it issues.
fn visible(user: &User, company_id: i64) -> bool {
    match user.role {
        Role::Exporter => user.company_id == Some(company_id),
        Role::IssuingOfficer => true,
        Role::CustomsOfficer | Role::Admin => false,
    }
}

fn tenant_filter(user: &User) -> Option<i64> {
    if user.role == Role::Exporter { user.company_id.or(Some(-1)) } else { None }
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

pub(crate) fn page(user: &User, q: Result<Query<ListQuery>, QueryRejection>) -> ApiResult<Page> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_QUERY", e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("INVALID_QUERY", "limit", "limit is 1 to 1000"));
    }
    Ok(Page { company_id: tenant_filter(user), before: q.before, limit })
}

pub(crate) fn ctx(state: &AppState, user: &User) -> Ctx {
    Ctx::new(format!("user:{} ({})", user.id, user.name), state.clock.now())
}

pub(crate) fn path_id(p: Result<Path<i64>, PathRejection>) -> ApiResult<i64> {
    p.map(|Path(id)| id).map_err(|_| ApiError::not_found())
}

/// Parses a JSON body of type `T`, refusing other media types and unknown fields.
pub(crate) fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<T> {
    let body = body.map_err(bytes_rejection)?;
    if content_type(headers) != "application/json" {
        return Err(unsupported_media_type("application/json"));
    }
    parse_json(&body)
}

/// Parses a JSON body; every refusal names the field it concerns as a JSON pointer (`/items/2/qty`),
/// found by `serde_path_to_error`, not guessed from the message.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
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

/// An application as the API shows it (the document itself is not repeated).
#[derive(Debug, Serialize)]
pub struct ApplicationView {
    id: i64,
    company_id: i64,
    status: &'static str,
    format: String,
    self_assessment: Option<Value>,
    assessment: Option<Value>,
    replaces: Option<i64>,
    back_to_back_of: Option<i64>,
    reason: Option<String>,
    certificate_id: Option<i64>,
    created_at: String,
    updated_at: String,
}

impl From<Application> for ApplicationView {
    fn from(a: Application) -> Self {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        ApplicationView {
            id: a.id,
            company_id: a.company_id,
            status: a.status.as_str(),
            format: a.format,
            self_assessment: parse(a.self_assessment),
            assessment: parse(a.assessment),
            replaces: a.replaces,
            back_to_back_of: a.back_to_back_of,
            reason: a.reason,
            certificate_id: a.certificate_id,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// A certificate as the API shows it; the signed bytes are at `document`.
#[derive(Debug, Serialize)]
pub struct CertificateView {
    id: i64,
    application_id: i64,
    company_id: i64,
    issuer: String,
    number: String,
    version: i64,
    status: &'static str,
    supersedes: Option<i64>,
    issued_at: String,
    revoked_reason: Option<String>,
    sha256: String,
    document: String,
    remote_status: Option<String>,
}

impl From<Certificate> for CertificateView {
    fn from(c: Certificate) -> Self {
        CertificateView {
            sha256: c.sha256,
            document: format!("/api/v1/certificates/{}/document", c.id),
            id: c.id,
            application_id: c.application_id,
            company_id: c.company_id,
            issuer: c.issuer,
            number: c.number,
            version: c.version,
            status: c.status.as_str(),
            supersedes: c.supersedes,
            issued_at: c.issued_at,
            revoked_reason: c.revoked_reason,
            remote_status: c.remote_status,
        }
    }
}

/// `POST /api/v1/applications` with `Content-Type: application/json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApplication {
    /// The certificate: an edi3 JSON object, or UBL XML as a string.
    pub document: Value,
    /// Optional self-assessment: a `qualify` request, evaluated and stored with its result.
    #[serde(default)]
    pub self_assessment: Option<Value>,
    /// Amendment: the id of the issued certificate this one replaces.
    #[serde(default)]
    pub replaces: Option<i64>,
    /// Back-to-back: the id of the received certificate this one is based on.
    #[serde(default)]
    pub back_to_back_of: Option<i64>,
}

/// The glue every per-endpoint error enum needs: a shared `ApiError` (token, role, body) wraps
/// into its `Request` variant, and the enum answers through `ApiError`'s status and JSON body
/// (each enum's own `From<… > for ApiError` maps its variants to codes).
macro_rules! endpoint_error {
    ($name:ident) => {
        impl From<ApiError> for $name {
            fn from(e: ApiError) -> Self {
                $name::Request(e)
            }
        }

        impl IntoResponse for $name {
            fn into_response(self) -> Response {
                ApiError::from(self).into_response()
            }
        }
    };
}

/// Why `POST /api/v1/applications` failed. Each variant has one status and stable code.
#[derive(Debug, thiserror::Error)]
pub enum CreateApplicationError {
    /// Token, role, body limit, media type or JSON shape: already an API error.
    #[error("{}", .0.message)]
    Request(ApiError),
    /// The XML body is not UTF-8. 400 `DOCUMENT_INVALID`.
    #[error("XML must be UTF-8")]
    NotUtf8,
    /// `document` is neither an object nor a string. 400 `INVALID_FIELD`.
    #[error("document: an edi3 JSON object or a UBL XML string")]
    DocumentShape,
    /// Both `replaces` and `back_to_back_of`. 400 `CONFLICTING_FIELDS`.
    #[error("an application either replaces a certificate or is back-to-back, not both")]
    ConflictingFields,
    /// The document does not read or validate. 422 `DOCUMENT_INVALID`, first problem's field.
    #[error("the document is not a valid certificate: {} problems", .0.len())]
    Document(Vec<originlink_model::Problem>),
    /// The document is another country's export. 422 `EXPORTING_COUNTRY_MISMATCH`.
    #[error("this node issues for {0}")]
    ExportingCountry(String),
    /// The self-assessment cannot be evaluated. 422 with the rules engine's code and field.
    #[error("self-assessment: {0}")]
    SelfAssessment(originlink_rules::InputError),
    /// Storage: 404 for a replaced/back-to-back record that is not yours, 409 for one that
    /// cannot be replaced, 503 when storage is down.
    #[error(transparent)]
    Store(#[from] originlink_store::StoreError),
}

impl From<CreateApplicationError> for ApiError {
    fn from(e: CreateApplicationError) -> Self {
        use CreateApplicationError as E;
        let message = e.to_string();
        match e {
            E::Request(api) => api,
            E::NotUtf8 => ApiError::invalid("DOCUMENT_INVALID", "document", message),
            E::DocumentShape => ApiError::invalid("INVALID_FIELD", "document", message),
            E::ConflictingFields => ApiError::invalid("CONFLICTING_FIELDS", "back_to_back_of", message),
            E::Document(problems) => document_problems(&problems),
            E::ExportingCountry(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "EXPORTING_COUNTRY_MISMATCH", message)
                    .field("exporting_country")
            }
            E::SelfAssessment(input) => rules_error(input, "self_assessment"),
            E::Store(s) => ApiError::from(s),
        }
    }
}

endpoint_error!(CreateApplicationError);

pub(crate) async fn create_application(
    State(state): State<AppState>,
    Auth(user): Auth,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, CreateApplicationError> {
    use CreateApplicationError as E;
    require(&user, &[Role::Exporter])?;
    let company_id = user.company_id.ok_or_else(|| ApiError::forbidden("exporter without a company"))?;
    let body = body.map_err(bytes_rejection)?;
    let req = match content_type(&headers).as_str() {
        "application/json" => parse_json::<CreateApplication>(&body)?,
        "application/xml" | "text/xml" => CreateApplication {
            document: Value::String(String::from_utf8(body.to_vec()).map_err(|_| E::NotUtf8)?),
            self_assessment: None,
            replaces: None,
            back_to_back_of: None,
        },
        _ => return Err(unsupported_media_type("application/json or application/xml").into()),
    };
    if req.replaces.is_some() && req.back_to_back_of.is_some() {
        return Err(E::ConflictingFields);
    }
    let document = match &req.document {
        Value::String(xml) => xml.clone().into_bytes(),
        obj @ Value::Object(_) => obj.to_string().into_bytes(),
        _ => return Err(E::DocumentShape),
    };
    // Problems carry paths into the document as the client sent it (XPath or JSON pointer).
    let (format, cert) = originlink_formats::read_valid(&document, &originlink_formats::Limits::default())
        .map_err(E::Document)?;
    if cert.exporting_country.as_str() != state.issuer.authority.country {
        return Err(E::ExportingCountry(state.issuer.authority.country.clone()));
    }
    if let Some(original) = req.back_to_back_of {
        back_to_back_allowed(&state, original, &cert).await?;
    }
    let (self_assessment, assessment) = match &req.self_assessment {
        None => (None, None),
        Some(input) => {
            let bytes = input.to_string();
            let result = originlink_rules::parse_request(bytes.as_bytes())
                .and_then(|good| originlink_rules::qualify(&good))
                .map_err(E::SelfAssessment)?;
            (Some(bytes), Some(result.to_json().to_string()))
        }
    };
    let format = match format {
        originlink_formats::Format::Xml => "xml",
        originlink_formats::Format::Json => "json",
    };
    let app = state
        .store
        .create_application(
            &ctx(&state, &user),
            NewApplication {
                company_id,
                created_by: user.id,
                format: format.into(),
                document,
                self_assessment,
                assessment,
                replaces: req.replaces,
                back_to_back_of: req.back_to_back_of,
            },
        )
        .await?;
    Metrics::inc(&state.metrics.applications_created);
    tracing::info!(application = app.id, company = company_id, format, "application created");
    Ok((StatusCode::CREATED, axum::Json(ApplicationView::from(app))).into_response())
}

/// A back-to-back certificate re-exports goods received under another country's certificate:
/// the original must be one this node received and verified, and name the new exporter as its
/// consignee. Every other case (no such id, rejected or revoked, someone else's goods) is the
/// same 404, so the answer does not tell an exporter which received certificates exist.
async fn back_to_back_allowed(
    state: &AppState,
    original: i64,
    new: &originlink_model::Certificate,
) -> ApiResult<()> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no valid received certificate with this id names your company as its consignee",
        )
        .field("back_to_back_of")
    };
    let rec = state.store.received(original).await?.ok_or_else(not_found)?;
    if rec.status != originlink_store::ReceivedStatus::Valid {
        return Err(not_found());
    }
    let limits = originlink_formats::Limits::default();
    let (_, received) = originlink_formats::read(&rec.document, &limits).map_err(|_| not_found())?;
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    if norm(&received.consignee.name) != norm(&new.exporter.name) {
        return Err(not_found());
    }
    Ok(())
}

fn document_problems(problems: &[originlink_model::Problem]) -> ApiError {
    let first = problems.first();
    let message =
        problems.iter().map(|p| format!("{} at {}: {}", p.code, p.path, p.message)).collect::<Vec<_>>();
    // A document past a hard bound is refused as a whole, under the bound's own code.
    let code = first
        .and_then(|p| originlink_formats::LIMIT_CODES.iter().find(|c| **c == p.code))
        .copied()
        .unwrap_or("DOCUMENT_INVALID");
    let e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message.join("; "));
    match first {
        Some(p) => e.field(format!("document{}", if p.path.starts_with('/') { &p.path } else { "" })),
        None => e,
    }
}

fn rules_error(e: originlink_rules::InputError, prefix: &str) -> ApiError {
    let field = if e.field.is_empty() { prefix.to_owned() } else { format!("{prefix}.{}", e.field) };
    let field = field.trim_start_matches('.').to_owned();
    let e2 = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code, e.message);
    if field.is_empty() { e2 } else { e2.field(field) }
}

pub(crate) async fn list_applications(
    State(state): State<AppState>,
    Auth(user): Auth,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::Exporter, Role::IssuingOfficer])?;
    let apps = state.store.list_applications(&page(&user, q)?).await?;
    Ok(axum::Json(apps.into_iter().map(ApplicationView::from).collect::<Vec<_>>()).into_response())
}

async fn load_application(state: &AppState, user: &User, id: i64) -> ApiResult<Application> {
    match state.store.application(id).await? {
        Some(a) if visible(user, a.company_id) => Ok(a),
        _ => Err(ApiError::not_found()),
    }
}

pub(crate) async fn get_application(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::Exporter, Role::IssuingOfficer])?;
    let app = load_application(&state, &user, path_id(id)?).await?;
    Ok(axum::Json(ApplicationView::from(app)).into_response())
}

/// The document exactly as the exporter sent it (for the officer's review).
pub(crate) async fn application_document(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::Exporter, Role::IssuingOfficer])?;
    let app = load_application(&state, &user, path_id(id)?).await?;
    let ct = if app.format == "xml" { "application/xml" } else { "application/json" };
    Ok(([(header::CONTENT_TYPE, ct)], app.document).into_response())
}

pub(crate) async fn submit_application(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::Exporter])?;
    let app = load_application(&state, &user, path_id(id)?).await?;
    let app = state.store.transition(&ctx(&state, &user), app.id, Transition::Submit).await?;
    Ok(axum::Json(ApplicationView::from(app)).into_response())
}

pub(crate) async fn approve_application(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::IssuingOfficer])?;
    let app = load_application(&state, &user, path_id(id)?).await?;
    let links = match app.back_to_back_of {
        Some(r) => {
            let rec = state.store.received(r).await?.ok_or_else(ApiError::not_found)?;
            Links { back_to_back: Some((rec.issuing_country, rec.number)) }
        }
        None => Links::default(),
    };
    let ctx = ctx(&state, &user);
    let date = ctx.at.date_naive();
    let issuer = state.issuer.clone();
    let officer = user.name.clone();
    let exchange = state.exchange.clone();
    let now = ctx.at;
    let sign: SignFn = Box::new(move |issue| {
        let (mut signed, importing) = issuer.sign_issue_to(issue, date, &officer, &links)?;
        if let Some(x) = exchange.filter(|x| x.country != importing) {
            signed.messages.push(x.certificate_message(
                &signed.bytes,
                &signed.number,
                issue.version,
                importing,
                now,
            )?);
        }
        Ok(signed)
    });
    let cert = state.store.approve(&ctx, app.id, &state.issuer.numbering(date), sign).await?;
    if let Some(x) = &state.exchange {
        x.wake.notify_one();
    }
    Metrics::inc(&state.metrics.approvals);
    tracing::info!(application = app.id, certificate = cert.id, number = %cert.number, "certificate issued");
    Ok(axum::Json(CertificateView::from(cert)).into_response())
}

/// Body of reject and revoke.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why (1 to 1000 characters).
    pub reason: String,
}

fn reason(r: Reason) -> ApiResult<String> {
    let t = r.reason.trim();
    if t.is_empty() || t.chars().count() > 1000 {
        return Err(ApiError::invalid(
            "REASON_REQUIRED",
            "reason",
            "a reason of 1 to 1000 characters is required",
        ));
    }
    Ok(t.to_owned())
}

pub(crate) async fn reject_application(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<i64>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::IssuingOfficer])?;
    let r = reason(json_body::<Reason>(&headers, body)?)?;
    let app = load_application(&state, &user, path_id(id)?).await?;
    let app = state.store.transition(&ctx(&state, &user), app.id, Transition::Reject { reason: r }).await?;
    Metrics::inc(&state.metrics.rejections);
    Ok(axum::Json(ApplicationView::from(app)).into_response())
}

async fn load_certificate(state: &AppState, user: &User, id: i64) -> ApiResult<Certificate> {
    match state.store.certificate(id).await? {
        Some(c) if visible(user, c.company_id) => Ok(c),
        _ => Err(ApiError::not_found()),
    }
}

pub(crate) async fn list_certificates(
    State(state): State<AppState>,
    Auth(user): Auth,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::Exporter, Role::IssuingOfficer])?;
    let certs = state.store.list_certificates(&page(&user, q)?).await?;
    Ok(axum::Json(certs.into_iter().map(CertificateView::from).collect::<Vec<_>>()).into_response())
}

pub(crate) async fn get_certificate(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::Exporter, Role::IssuingOfficer])?;
    let c = load_certificate(&state, &user, path_id(id)?).await?;
    Ok(axum::Json(CertificateView::from(c)).into_response())
}

pub(crate) async fn certificate_document(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::Exporter, Role::IssuingOfficer])?;
    let c = load_certificate(&state, &user, path_id(id)?).await?;
    let disposition = format!("attachment; filename=\"{}-v{}.xml\"", c.number.replace('/', "_"), c.version);
    Ok((
        [(header::CONTENT_TYPE, "application/xml".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        c.signed,
    )
        .into_response())
}

pub(crate) async fn revoke_certificate(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<i64>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::IssuingOfficer])?;
    let r = reason(json_body::<Reason>(&headers, body)?)?;
    let c = load_certificate(&state, &user, path_id(id)?).await?;
    let ctx = ctx(&state, &user);
    let (exchange, reason_for_peer, now) = (state.exchange.clone(), r.clone(), ctx.at);
    let messages: MessagesFn = Box::new(move |c| match exchange {
        Some(x) => x.revocation_message(c, &reason_for_peer, now),
        None => Ok(vec![]),
    });
    let c = state.store.revoke(&ctx, c.id, &r, messages).await?;
    if let Some(x) = &state.exchange {
        x.wake.notify_one();
    }
    Metrics::inc(&state.metrics.revocations);
    Ok(axum::Json(CertificateView::from(c)).into_response())
}

pub(crate) async fn qualify(
    State(_state): State<AppState>,
    Auth(_user): Auth,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let body = body.map_err(bytes_rejection)?;
    if content_type(&headers) != "application/json" {
        return Err(unsupported_media_type("application/json"));
    }
    let _: Value = parse_json(&body)?;
    let assessment = originlink_rules::parse_request(&body)
        .and_then(|good| originlink_rules::qualify(&good))
        .map_err(|e| rules_error(e, ""))?;
    Ok(axum::Json(assessment.to_json()).into_response())
}

/// `GET /api/v1/rules` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesQuery {
    /// `ATIGA` or `RCEP`.
    pub agreement: String,
    /// An HS code (2 to 10 digits, dots allowed).
    pub hs: String,
}

/// Why `GET /api/v1/rules` failed.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// Token: already an API error.
    #[error("{}", .0.message)]
    Request(ApiError),
    /// Missing or unknown query parameters. 400 `INVALID_QUERY`.
    #[error("{0}")]
    Query(String),
    /// 400 `AGREEMENT_UNKNOWN`.
    #[error("{0}")]
    Agreement(String),
    /// 400 `HS_INVALID`.
    #[error("{0}")]
    Hs(String),
    /// The agreement has neither a product-specific nor a general rule for the code. 404
    /// `RULE_NOT_FOUND`.
    #[error("no rule covers {0}")]
    NotFound(String),
}

impl From<RulesError> for ApiError {
    fn from(e: RulesError) -> Self {
        let message = e.to_string();
        match e {
            RulesError::Request(api) => api,
            RulesError::Query(_) => ApiError::new(StatusCode::BAD_REQUEST, "INVALID_QUERY", message),
            RulesError::Agreement(_) => ApiError::invalid("AGREEMENT_UNKNOWN", "agreement", message),
            RulesError::Hs(_) => ApiError::invalid("HS_INVALID", "hs", message),
            RulesError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "RULE_NOT_FOUND", message),
        }
    }
}

endpoint_error!(RulesError);

pub(crate) async fn rules(
    State(_state): State<AppState>,
    auth: Result<Auth, ApiError>,
    q: Result<Query<RulesQuery>, QueryRejection>,
) -> Result<Response, RulesError> {
    auth.map_err(RulesError::Request)?;
    let Query(q) = q.map_err(|e| RulesError::Query(e.body_text()))?;
    let agreement =
        originlink_model::Agreement::parse(&q.agreement).map_err(|e| RulesError::Agreement(e.to_string()))?;
    // Tables may be in an older edition (RCEP: HS 2012), so the code is checked for form only.
    let hs = originlink_model::HsCode::parse_syntax(&q.hs).map_err(|e| RulesError::Hs(e.to_string()))?;
    let table = originlink_rules::PsrTable::builtin(agreement);
    if let Some(row) = table.lookup(&hs) {
        return Ok(axum::Json(serde_json::json!({
            "agreement": table.agreement,
            "hs": hs.dotted(),
            "matched": format!("{} {}", row.range.level_name(), row.range),
            "rule": row.rule.to_string(),
            "source": row.source,
        }))
        .into_response());
    }
    let settings = originlink_rules::OriginSettings::builtin(originlink_rules::Regime::Agreement(agreement));
    let rule = settings.general_rule.ok_or_else(|| RulesError::NotFound(hs.dotted()))?;
    Ok(axum::Json(serde_json::json!({
        "agreement": table.agreement,
        "hs": hs.dotted(),
        "matched": "general rule (no product-specific rule)",
        "rule": rule,
        "source": settings.source("general_rule").unwrap_or(""),
    }))
    .into_response())
}

/// `POST /api/v1/users` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Unique login name.
    pub name: String,
    /// `exporter`, `issuing-officer`, `customs-officer` or `admin`.
    pub role: String,
    /// The exporter's company (created on first use).
    #[serde(default)]
    pub company: Option<String>,
}

/// Why `POST /api/v1/users` failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// Token, role, body: already an API error.
    #[error("{}", .0.message)]
    Request(ApiError),
    /// 400 `ROLE_UNKNOWN`.
    #[error("exporter, issuing-officer, customs-officer or admin")]
    Role,
    /// The company rule (400 `COMPANY_REQUIRED_FOR_EXPORTER`), a duplicate (409
    /// `USER_EXISTS`), storage down (503), no randomness (500).
    #[error(transparent)]
    Add(#[from] crate::AddUserError),
}

impl From<CreateUserError> for ApiError {
    fn from(e: CreateUserError) -> Self {
        let message = e.to_string();
        match e {
            CreateUserError::Request(api) => api,
            CreateUserError::Role => ApiError::invalid("ROLE_UNKNOWN", "role", message),
            CreateUserError::Add(crate::AddUserError::Store(s)) => ApiError::from(s),
            CreateUserError::Add(e @ crate::AddUserError::Company(_)) => {
                ApiError::invalid(e.code(), "company", message)
            }
            CreateUserError::Add(e @ crate::AddUserError::Random) => ApiError::internal(e),
            CreateUserError::Add(crate::AddUserError::Invalid { code, field, message }) => {
                ApiError::invalid(code, field, message)
            }
        }
    }
}

endpoint_error!(CreateUserError);

pub(crate) async fn create_user(
    State(state): State<AppState>,
    Auth(user): Auth,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, CreateUserError> {
    require(&user, &[Role::Admin])?;
    let req: CreateUser = json_body(&headers, body)?;
    let role = Role::parse(&req.role).ok_or(CreateUserError::Role)?;
    let name = req.name.as_str();
    let country = state.issuer.authority.country.clone();
    let (created, token) = crate::add_user(
        state.store.as_ref(),
        &ctx(&state, &user),
        name,
        role,
        req.company.as_deref(),
        &country,
    )
    .await?;
    tracing::info!(user = created.id, role = %created.role, "user created");
    Ok((StatusCode::CREATED, axum::Json(serde_json::json!({ "user": created, "token": token })))
        .into_response())
}

/// `GET /healthz`: 200 `{"status": "ok", "storage", "quarantined"}` while the node serves and
/// its storage answers. `quarantined` counts the inbound messages that can never be processed
/// (`GET /api/v1/exchange/quarantine`): the node stays up and serves around them, so they do
/// not make it unhealthy, but anything above 0 wants the operator.
pub(crate) async fn healthz(State(state): State<AppState>) -> ApiResult<Response> {
    state.store.ping().await?;
    let quarantined = state.store.quarantined_len().await?;
    Ok(axum::Json(serde_json::json!({
        "status": "ok", "storage": state.store.backend(), "quarantined": quarantined,
    }))
    .into_response())
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = state.metrics.render();
    // The counters do not depend on storage; the stored gauges are left out while it fails.
    match state.store.quarantined_len().await {
        Ok(n) => text.push_str(&Metrics::render_stored(n)),
        Err(e) => tracing::warn!(error = %e, "metrics: counting quarantined messages failed"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

pub(crate) async fn openapi() -> Response {
    axum::Json(crate::openapi::document()).into_response()
}

async fn no_route() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route")
}

async fn no_method() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "method not allowed on this route")
}

pub(crate) async fn certificate_statuses(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::Exporter, Role::IssuingOfficer])?;
    let c = load_certificate(&state, &user, path_id(id)?).await?;
    let statuses = state.store.certificate_statuses(&c.number).await?;
    let view: Vec<Value> = statuses
        .into_iter()
        .map(|s| {
            let detail = serde_json::from_str::<Value>(&s.detail).unwrap_or(Value::String(s.detail.clone()));
            serde_json::json!({
                "number": s.number, "version": s.version, "from_country": s.from_country,
                "status": s.status, "code": s.code, "detail": detail,
                "message_id": s.message_id, "at": s.at,
            })
        })
        .collect();
    Ok(axum::Json(view).into_response())
}

/// A received certificate as the API shows it; the bytes as received are at `document`.
fn received_view(r: originlink_store::ReceivedCertificate) -> Value {
    serde_json::json!({
        "id": r.id, "issuing_country": r.issuing_country, "number": r.number, "version": r.version,
        "status": r.status.as_str(), "verdict": r.verdict, "revoked_reason": r.revoked_reason,
        "received_at": r.received_at, "document": format!("/api/v1/received/{}/document", r.id),
    })
}

pub(crate) async fn list_received(
    State(state): State<AppState>,
    Auth(user): Auth,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::CustomsOfficer, Role::IssuingOfficer])?;
    let list = state.store.list_received(&page(&user, q)?).await?;
    Ok(axum::Json(list.into_iter().map(received_view).collect::<Vec<_>>()).into_response())
}

pub(crate) async fn get_received(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::CustomsOfficer, Role::IssuingOfficer])?;
    let r = state.store.received(path_id(id)?).await?.ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(received_view(r)).into_response())
}

pub(crate) async fn received_document(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::CustomsOfficer, Role::IssuingOfficer])?;
    let r = state.store.received(path_id(id)?).await?.ok_or_else(ApiError::not_found)?;
    let ct = if r.document.first() == Some(&b'{') { "application/json" } else { "application/xml" };
    Ok(([(header::CONTENT_TYPE, ct)], r.document).into_response())
}

pub(crate) async fn exchange_status(State(state): State<AppState>, Auth(user): Auth) -> ApiResult<Response> {
    require(&user, &[Role::Admin])?;
    let (pending, dead) = state.store.outbox_counts().await?;
    let inbox = state.store.inbox_len().await?;
    let held = state.store.held_len().await?;
    let quarantined = state.store.quarantined_len().await?;
    Ok(axum::Json(serde_json::json!({
        "configured": state.exchange.is_some(),
        "outbox_pending": pending, "outbox_dead": dead, "inbox": inbox, "held": held,
        "quarantined": quarantined,
    }))
    .into_response())
}

/// `GET /api/v1/exchange/quarantine`: inbound messages that can never be processed (newest
/// first, at most 500), with the reason.
pub(crate) async fn quarantined(State(state): State<AppState>, Auth(user): Auth) -> ApiResult<Response> {
    require(&user, &[Role::Admin])?;
    Ok(axum::Json(state.store.quarantined(500).await?).into_response())
}

/// `GET /api/v1/exchange/refused`: inbound messages refused, with the code (newest first, at
/// most 500).
pub(crate) async fn refused(State(state): State<AppState>, Auth(user): Auth) -> ApiResult<Response> {
    require(&user, &[Role::Admin])?;
    Ok(axum::Json(state.store.refused(500).await?).into_response())
}

pub(crate) async fn dead_letters(State(state): State<AppState>, Auth(user): Auth) -> ApiResult<Response> {
    require(&user, &[Role::Admin])?;
    Ok(axum::Json(state.store.dead_letters(500).await?).into_response())
}

pub(crate) async fn retry_dead(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::Admin])?;
    let Path(id) = id.map_err(|_| ApiError::invalid("INVALID_PATH", "id", "a message id"))?;
    let row = state.store.retry_dead(&ctx(&state, &user), &id).await?;
    if let Some(x) = &state.exchange {
        x.wake.notify_one();
    }
    Ok(axum::Json(row).into_response())
}
