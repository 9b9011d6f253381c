//! `/api/v1/applications`, `/api/v1/certificates` and `/api/v1/received`: thin adapters over
//! [`crate::app::applications`]. Roles are checked by the route table's guard before these run.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use originlink_store::{Application, Certificate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::ApiError;
use super::extract::{
    Auth, Id, JsonBody, ListOf, Paged, bytes_rejection, content_type, parse_json, unsupported_media_type,
};
use crate::app::AppState;
use crate::app::applications::{self as uc, Apply, Document, Edit};

type ApiResult<T> = Result<T, ApiError>;

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
    certificate_status: Option<&'static str>,
    created_at: String,
    updated_at: String,
    warnings: Vec<uc::Warning>,
}

impl From<Application> for ApplicationView {
    fn from(a: Application) -> Self {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        let warnings = uc::warnings(&a);
        ApplicationView {
            warnings,
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
            certificate_status: a.certificate_status.map(|s| s.as_str()),
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
    /// Every status the importing country reported about this version, oldest first (one
    /// certificate only, not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    status_history: Option<Vec<Value>>,
    /// `partially` or `fully` after the importing country reported it utilized (latest
    /// report), else absent (one certificate only, not in lists).
    #[serde(skip_serializing_if = "Option::is_none")]
    utilization: Option<&'static str>,
}

impl CertificateView {
    /// The view of one certificate, with what the importing country reported about it.
    fn with_history(c: Certificate, statuses: Vec<originlink_store::StatusEvent>) -> Self {
        let version = c.version;
        let mine: Vec<_> = statuses.into_iter().filter(|s| s.version == version).collect();
        let utilization = mine.iter().rev().find_map(|s| match s.status.as_str() {
            "utilized-partially" => Some("partially"),
            "utilized-fully" => Some("fully"),
            _ => None,
        });
        let mut view = CertificateView::from(c);
        view.status_history = Some(mine.into_iter().map(status_view).collect());
        view.utilization = utilization;
        view
    }
}

/// A status an importing country reported, as the API shows it.
fn status_view(s: originlink_store::StatusEvent) -> Value {
    let detail = serde_json::from_str::<Value>(&s.detail).unwrap_or(Value::String(s.detail.clone()));
    serde_json::json!({
        "number": s.number, "version": s.version, "from_country": s.from_country,
        "status": s.status, "code": s.code, "detail": detail,
        "message_id": s.message_id, "at": s.at,
    })
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
            status_history: None,
            utilization: None,
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

/// A request body that is JSON of type `T`, or a UBL XML document as the whole body.
enum Either<T> {
    Json(T),
    Xml(Document),
}

/// Reads an application body by its media type: JSON (`T`) or UBL XML (UTF-8); anything
/// else is 415.
fn document_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Either<T>> {
    let body = body.map_err(bytes_rejection)?;
    match content_type(headers).as_str() {
        "application/json" => Ok(Either::Json(parse_json::<T>(&body)?)),
        "application/xml" | "text/xml" => String::from_utf8(body.to_vec())
            .map(|xml| Either::Xml(Document::Xml(xml)))
            .map_err(|_| ApiError::invalid("DOCUMENT_INVALID", "document", "XML must be UTF-8")),
        _ => Err(unsupported_media_type("application/json or application/xml")),
    }
}

/// A `document` member: UBL XML as a string, or an edi3 JSON object.
fn document_of(v: Value) -> Document {
    match v {
        Value::String(xml) => Document::Xml(xml),
        other => Document::Json(other),
    }
}

pub(crate) async fn create_application(
    State(state): State<AppState>,
    Auth(user): Auth,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let input = match document_body::<CreateApplication>(&headers, body)? {
        Either::Json(req) => Apply {
            document: document_of(req.document),
            self_assessment: req.self_assessment,
            replaces: req.replaces,
            back_to_back_of: req.back_to_back_of,
        },
        Either::Xml(document) => {
            Apply { document, self_assessment: None, replaces: None, back_to_back_of: None }
        }
    };
    let app = uc::apply(&state, &user, input).await?;
    Ok((StatusCode::CREATED, axum::Json(ApplicationView::from(app))).into_response())
}

/// `?limit=&before=` and the filters of a list (each list accepts those the route table names).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationsQuery {
    limit: Option<i64>,
    before: Option<i64>,
    status: Option<String>,
    q: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

impl Paged for ApplicationsQuery {
    fn page(&self) -> (Option<i64>, Option<i64>) {
        (self.limit, self.before)
    }
}

/// `?limit=&before=&status=&number=` of the issued certificates.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificatesQuery {
    limit: Option<i64>,
    before: Option<i64>,
    status: Option<String>,
    number: Option<String>,
}

impl Paged for CertificatesQuery {
    fn page(&self) -> (Option<i64>, Option<i64>) {
        (self.limit, self.before)
    }
}

/// `?limit=&before=&status=&issuing_country=&number=` of the received certificates.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceivedQuery {
    limit: Option<i64>,
    before: Option<i64>,
    status: Option<String>,
    issuing_country: Option<String>,
    number: Option<String>,
    exporter: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

impl Paged for ReceivedQuery {
    fn page(&self) -> (Option<i64>, Option<i64>) {
        (self.limit, self.before)
    }
}

pub(crate) async fn list_applications(
    State(state): State<AppState>,
    Auth(user): Auth,
    ListOf(page, q): ListOf<ApplicationsQuery>,
) -> ApiResult<Response> {
    let query =
        uc::ApplicationQuery { status: q.status, q: q.q, from: q.from, to: q.to, oldest_first: false };
    let apps = uc::list(&state, &user, &page, &query).await?;
    Ok(axum::Json(apps.into_iter().map(ApplicationView::from).collect::<Vec<_>>()).into_response())
}

pub(crate) async fn get_application(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
) -> ApiResult<Response> {
    Ok(axum::Json(ApplicationView::from(uc::get(&state, &user, id).await?)).into_response())
}

/// The document exactly as the exporter sent it (for the officer's review).
pub(crate) async fn application_document(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
) -> ApiResult<Response> {
    let app = uc::get(&state, &user, id).await?;
    let ct = if app.format == "xml" { "application/xml" } else { "application/json" };
    Ok(([(header::CONTENT_TYPE, ct)], app.document).into_response())
}

pub(crate) async fn submit_application(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
) -> ApiResult<Response> {
    Ok(axum::Json(ApplicationView::from(uc::submit(&state, &user, id).await?)).into_response())
}

pub(crate) async fn approve_application(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
) -> ApiResult<Response> {
    Ok(axum::Json(CertificateView::from(uc::approve(&state, &user, id).await?)).into_response())
}

/// Body of reject, return and revoke.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why (1 to 1000 characters).
    pub reason: String,
}

pub(crate) async fn reject_application(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
    JsonBody(r): JsonBody<Reason>,
) -> ApiResult<Response> {
    Ok(axum::Json(ApplicationView::from(uc::reject(&state, &user, id, &r.reason).await?)).into_response())
}

/// `PUT /api/v1/applications/{id}` with `Content-Type: application/json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditApplication {
    /// A new document: an edi3 JSON object, or UBL XML as a string.
    #[serde(default)]
    pub document: Option<Value>,
    /// A new self-assessment: a `qualify` request.
    #[serde(default)]
    pub self_assessment: Option<Value>,
}

/// Edits a draft or returned application: JSON `{document?, self_assessment?}`, or a UBL XML
/// document as the whole body.
pub(crate) async fn edit_application(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let input = match document_body::<EditApplication>(&headers, body)? {
        Either::Json(req) => {
            Edit { document: req.document.map(document_of), self_assessment: req.self_assessment }
        }
        Either::Xml(document) => Edit { document: Some(document), self_assessment: None },
    };
    Ok(axum::Json(ApplicationView::from(uc::edit(&state, &user, id, input).await?)).into_response())
}

pub(crate) async fn withdraw_application(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
) -> ApiResult<Response> {
    Ok(axum::Json(ApplicationView::from(uc::withdraw(&state, &user, id).await?)).into_response())
}

pub(crate) async fn return_application(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
    JsonBody(r): JsonBody<Reason>,
) -> ApiResult<Response> {
    let app = uc::return_for_correction(&state, &user, id, &r.reason).await?;
    Ok(axum::Json(ApplicationView::from(app)).into_response())
}

pub(crate) async fn copy_application(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
) -> ApiResult<Response> {
    let app = uc::copy(&state, &user, id).await?;
    Ok((StatusCode::CREATED, axum::Json(ApplicationView::from(app))).into_response())
}

pub(crate) async fn list_certificates(
    State(state): State<AppState>,
    ListOf(page, q): ListOf<CertificatesQuery>,
) -> ApiResult<Response> {
    let certs = uc::certificates(&state, &page, q.status.as_deref(), q.number.as_deref()).await?;
    Ok(axum::Json(certs.into_iter().map(CertificateView::from).collect::<Vec<_>>()).into_response())
}

pub(crate) async fn get_certificate(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
) -> ApiResult<Response> {
    let (c, statuses) = uc::certificate_with_statuses(&state, &user, id).await?;
    Ok(axum::Json(CertificateView::with_history(c, statuses)).into_response())
}

/// `?copy=` of a certificate's PDF.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdfQuery {
    copy: Option<u32>,
}

/// The certificate printed: an A4 PDF from the signed document, with its QR code.
pub(crate) async fn certificate_pdf(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
    q: Result<axum::extract::Query<PdfQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let axum::extract::Query(q) = q.map_err(|e| ApiError::invalid("INVALID_QUERY", "copy", e.body_text()))?;
    let printed = uc::certificate_pdf(&state, &user, id, q.copy, None).await?;
    let name = match q.copy {
        Some(n) => format!("{}-copy-{n}.pdf", printed.number.replace('/', "_")),
        None => format!("{}.pdf", printed.number.replace('/', "_")),
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        printed.pdf,
    )
        .into_response())
}

pub(crate) async fn certificate_document(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
) -> ApiResult<Response> {
    let c = uc::certificate(&state, &user, id).await?;
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
    Id(id): Id,
    JsonBody(r): JsonBody<Reason>,
) -> ApiResult<Response> {
    Ok(axum::Json(CertificateView::from(uc::revoke(&state, &user, id, &r.reason).await?)).into_response())
}

pub(crate) async fn certificate_statuses(
    State(state): State<AppState>,
    Auth(user): Auth,
    Id(id): Id,
) -> ApiResult<Response> {
    let statuses = uc::statuses(&state, &user, id).await?;
    Ok(axum::Json(statuses.into_iter().map(status_view).collect::<Vec<_>>()).into_response())
}

/// A received certificate as the API shows it; the bytes as received are at `document`.
fn received_view(r: originlink_store::ReceivedCertificate) -> Value {
    serde_json::json!({
        "id": r.id, "issuing_country": r.issuing_country, "number": r.number, "version": r.version,
        "status": r.status.as_str(), "verdict": r.verdict, "revoked_reason": r.revoked_reason, "exporter": r.exporter,
        "received_at": r.received_at, "document": format!("/api/v1/received/{}/document", r.id),
    })
}

pub(crate) async fn list_received(
    State(state): State<AppState>,
    ListOf(page, q): ListOf<ReceivedQuery>,
) -> ApiResult<Response> {
    let query = uc::ReceivedQuery {
        status: q.status.as_deref(),
        issuing_country: q.issuing_country.as_deref(),
        number: q.number.as_deref(),
        exporter: q.exporter.as_deref(),
        from: q.from.as_deref(),
        to: q.to.as_deref(),
    };
    let list = uc::received_list(&state, &page, query).await?;
    Ok(axum::Json(list.into_iter().map(received_view).collect::<Vec<_>>()).into_response())
}

/// One received certificate: the list's fields, plus the exporter, the consignee and every
/// goods item with its quantity and what is left of it.
pub(crate) async fn get_received(State(state): State<AppState>, Id(id): Id) -> ApiResult<Response> {
    let d = uc::received_detail(&state, id).await?;
    let mut view = received_view(d.record);
    let (verdict, code, detail) = &d.checked_now;
    view["checked_now"] = serde_json::json!({"verdict": verdict, "code": code, "detail": detail});
    if let Some(c) = &d.certificate {
        let party = |p: &originlink_model::Party| serde_json::json!({"name": p.name, "country": p.address.country.as_str()});
        let goods: Vec<Value> = c
            .items
            .iter()
            .map(|i| {
                let (total, remaining) = d.remaining.get(&i.number).cloned().unwrap_or_default();
                serde_json::json!({
                    "item": i.number, "hs": i.hs.dotted(), "description": i.description,
                    "quantity": total, "unit": i.quantity.unit().as_str(), "remaining": remaining,
                    "origin_criterion": i.criterion.to_string(),
                })
            })
            .collect();
        view["agreement"] = c.agreement.code().into();
        view["exporter"] = party(&c.exporter);
        view["consignee"] = party(&c.consignee);
        view["goods"] = Value::Array(goods);
    }
    Ok(axum::Json(view).into_response())
}

pub(crate) async fn received_document(State(state): State<AppState>, Id(id): Id) -> ApiResult<Response> {
    let r = uc::received(&state, id).await?;
    let ct = if r.document.first() == Some(&b'{') { "application/json" } else { "application/xml" };
    Ok(([(header::CONTENT_TYPE, ct)], r.document).into_response())
}
