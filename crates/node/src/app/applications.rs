//! The issuing side: an exporter applies, the issuing officer approves (the certificate is
//! numbered, signed and stored, and its message to the importing country written, in one
//! transaction) or rejects; issued certificates are revoked; received certificates are listed.

use std::time::Instant;

use originlink_store::{
    Application, ApplicationFilter, ApplicationStatus, Approval, Certificate, CertificateFilter,
    CertificateStatus, EditApplication, MessagesFn, NewApplication, Page, ReceivedCertificate,
    ReceivedFilter, ReceivedStatus, SignFn, StatusEvent, Transition, User,
};
use serde_json::Value;

use super::{AppState, Error, Kind, Result, visible};
use crate::issue::Links;

/// The document of an application, as the exporter sent it.
#[derive(Debug, Clone)]
pub enum Document {
    /// UBL 2.4 XML.
    Xml(String),
    /// An edi3 JSON object.
    Json(Value),
}

/// What an exporter applies with.
#[derive(Debug, Clone)]
pub struct Apply {
    /// The certificate as the exporter wants it issued.
    pub document: Document,
    /// Optional self-assessment: a `qualify` request, evaluated and stored with its result.
    pub self_assessment: Option<Value>,
    /// Amendment: the id of the issued certificate this one replaces.
    pub replaces: Option<i64>,
    /// Back-to-back: the id of the received certificate this one is based on.
    pub back_to_back_of: Option<i64>,
}

/// Creates a draft application for the acting exporter's company. The document must read and
/// validate, be an export of this node's country, and (back-to-back) be based on a valid
/// received certificate naming the exporter as consignee.
pub async fn apply(state: &AppState, user: &User, input: Apply) -> Result<Application> {
    let company_id = user.company_id.ok_or_else(|| Error::forbidden("exporter without a company"))?;
    if input.replaces.is_some() && input.back_to_back_of.is_some() {
        return Err(Error::invalid(
            "CONFLICTING_FIELDS",
            "back_to_back_of",
            "an application either replaces a certificate or is back-to-back, not both",
        ));
    }
    let (format, document) = checked_document(state, &input.document, input.back_to_back_of).await?;
    let (self_assessment, assessment) = match &input.self_assessment {
        None => (None, None),
        Some(request) => checked_assessment(request).map(|(i, r)| (Some(i), Some(r)))?,
    };
    let app = state
        .store
        .create_application(
            &state.ctx(user),
            NewApplication {
                company_id,
                created_by: user.id,
                format: format.clone(),
                document,
                self_assessment,
                assessment,
                replaces: input.replaces,
                back_to_back_of: input.back_to_back_of,
                copied_from: None,
            },
        )
        .await?;
    state.metrics.applications_created.inc();
    tracing::info!(application = app.id, company = company_id, format, "application created");
    Ok(app)
}

/// The document as the exporter sent it, read and validated, an export of this node's
/// country and (back-to-back) based on `back_to_back_of`: its format and bytes.
async fn checked_document(
    state: &AppState,
    document: &Document,
    back_to_back_of: Option<i64>,
) -> Result<(String, Vec<u8>)> {
    let document = match document {
        Document::Xml(xml) => xml.clone().into_bytes(),
        Document::Json(obj @ Value::Object(_)) => obj.to_string().into_bytes(),
        Document::Json(_) => {
            return Err(Error::invalid(
                "INVALID_FIELD",
                "document",
                "document: an edi3 JSON object or a UBL XML string",
            ));
        }
    };
    // Problems carry paths into the document as the client sent it (XPath or JSON pointer).
    let (format, cert) = originlink_formats::read_valid(&document, &originlink_formats::Limits::default())
        .map_err(|p| document_problems(&p))?;
    let country = &state.issuer.authority.country;
    if cert.exporting_country.as_str() != country {
        return Err(Error::unprocessable(
            "EXPORTING_COUNTRY_MISMATCH",
            format!("this node issues for {country}"),
        )
        .field("exporting_country"));
    }
    if let Some(original) = back_to_back_of {
        back_to_back_allowed(state, original, &cert).await?;
    }
    let format = match format {
        originlink_formats::Format::Xml => "xml",
        originlink_formats::Format::Json => "json",
    };
    Ok((format.into(), document))
}

/// A self-assessment (a `qualify` request) evaluated: the request and its result as JSON text.
fn checked_assessment(request: &Value) -> Result<(String, String)> {
    let bytes = request.to_string();
    let result = originlink_rules::parse_request(bytes.as_bytes())
        .and_then(|good| originlink_rules::qualify(&good))
        .map_err(|e| rules_error(e, "self_assessment"))?;
    Ok((bytes, result.to_json().to_string()))
}

/// What an exporter edits: the parts given replace the stored ones.
#[derive(Debug, Clone, Default)]
pub struct Edit {
    /// A new document, checked like [`apply`]'s.
    pub document: Option<Document>,
    /// A new self-assessment, evaluated like [`apply`]'s.
    pub self_assessment: Option<Value>,
}

/// The exporter edits its draft, or an application returned for correction, with the same
/// checks as [`apply`]. Nothing to change: `EDIT_EMPTY`; another state: `APPLICATION_NOT_EDITABLE`.
pub async fn edit(state: &AppState, user: &User, id: i64, input: Edit) -> Result<Application> {
    let app = get(state, user, id).await?;
    if input.document.is_none() && input.self_assessment.is_none() {
        return Err(Error::invalid("EDIT_EMPTY", "document", "give a document, a self_assessment or both"));
    }
    let document = match &input.document {
        Some(d) => Some(checked_document(state, d, app.back_to_back_of).await?),
        None => None,
    };
    let self_assessment = input.self_assessment.as_ref().map(checked_assessment).transpose()?;
    let edit = EditApplication { document, self_assessment };
    Ok(state.store.edit_application(&state.ctx(user), app.id, edit).await?)
}

/// The exporter withdraws its draft, submitted or returned application (final).
pub async fn withdraw(state: &AppState, user: &User, id: i64) -> Result<Application> {
    let app = get(state, user, id).await?;
    Ok(state.store.transition(&state.ctx(user), app.id, Transition::Withdraw).await?)
}

/// The issuing officer returns a submitted application to the exporter for correction.
pub async fn return_for_correction(
    state: &AppState,
    user: &User,
    id: i64,
    reason: &str,
) -> Result<Application> {
    let reason = super::reason(reason)?;
    let app = get(state, user, id).await?;
    Ok(state.store.transition(&state.ctx(user), app.id, Transition::Return { reason }).await?)
}

/// The exporter starts again from a rejected or withdrawn application: a new draft with its
/// document, self-assessment and links (the decision on the old one stays on record). Other
/// states: `APPLICATION_NOT_CLOSED`.
pub async fn copy(state: &AppState, user: &User, id: i64) -> Result<Application> {
    let old = get(state, user, id).await?;
    if !matches!(old.status, ApplicationStatus::Rejected | ApplicationStatus::Withdrawn) {
        return Err(Error::new(
            Kind::Conflict,
            "APPLICATION_NOT_CLOSED",
            format!("the application is {}, only a rejected or withdrawn one is copied", old.status),
        ));
    }
    let app = state
        .store
        .create_application(
            &state.ctx(user),
            NewApplication {
                company_id: old.company_id,
                created_by: user.id,
                format: old.format,
                document: old.document,
                self_assessment: old.self_assessment,
                assessment: old.assessment,
                replaces: old.replaces,
                back_to_back_of: old.back_to_back_of,
                copied_from: Some(old.id),
            },
        )
        .await?;
    state.metrics.applications_created.inc();
    Ok(app)
}

/// A back-to-back certificate re-exports goods received under another country's certificate:
/// the original must be one this node received and verified, and name the new exporter as its
/// consignee. Every other case (no such id, rejected or revoked, someone else's goods) is the
/// same not-found, so the answer does not tell an exporter which received certificates exist.
async fn back_to_back_allowed(
    state: &AppState,
    original: i64,
    new: &originlink_model::Certificate,
) -> Result<()> {
    let not_found = || {
        Error::new(
            Kind::NotFound,
            "NOT_FOUND",
            "no valid received certificate with this id names your company as its consignee",
        )
        .field("back_to_back_of")
    };
    let rec = state.store.received(original).await?.ok_or_else(not_found)?;
    if rec.status != ReceivedStatus::Valid {
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

/// A document that does not read or validate: every problem in the message, the first one's
/// path as the field. A document past a hard bound is refused under the bound's own code.
pub fn document_problems(problems: &[originlink_model::Problem]) -> Error {
    let first = problems.first();
    let message =
        problems.iter().map(|p| format!("{} at {}: {}", p.code, p.path, p.message)).collect::<Vec<_>>();
    let code = first
        .and_then(|p| originlink_formats::LIMIT_CODES.iter().find(|c| **c == p.code))
        .copied()
        .unwrap_or("DOCUMENT_INVALID");
    let e = Error::unprocessable(code, message.join("; "));
    match first {
        Some(p) => e.field(format!("document{}", if p.path.starts_with('/') { &p.path } else { "" })),
        None => e,
    }
}

/// A `qualify` request the rules engine cannot evaluate, its field under `prefix`.
pub fn rules_error(e: originlink_rules::InputError, prefix: &str) -> Error {
    let field = if e.field.is_empty() { prefix.to_owned() } else { format!("{prefix}.{}", e.field) };
    let field = field.trim_start_matches('.').to_owned();
    let e2 = Error::unprocessable(e.code, e.message);
    if field.is_empty() { e2 } else { e2.field(field) }
}

/// Something the issuing officer should look at before approving: the application can still
/// be approved, but an officer who approves it should know.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// Stable code: `EXPORTER_NOT_APPLICANT`, `ASSESSMENT_NOT_ORIGINATING`,
    /// `ASSESSMENT_OTHER_PRODUCT`, `ASSESSMENT_OTHER_AGREEMENT`.
    pub code: &'static str,
    /// For people: what differs, and where.
    pub message: String,
    /// The field concerned.
    pub field: &'static str,
}

/// What the officer is warned about for an application: a document whose exporter is not the
/// applicant's company, and an attached self-assessment that says the good does not
/// originate, assessed another product (no goods item of the document in its HS subheading)
/// or another agreement than the document's.
pub fn warnings(app: &Application) -> Vec<Warning> {
    let mut out = Vec::new();
    let cert =
        originlink_formats::read(&app.document, &originlink_formats::Limits::default()).ok().map(|(_, c)| c);
    // Names as people write them: case, spaces and punctuation do not count.
    let norm = |s: &str| {
        s.chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    if let (Some(cert), Some(company)) = (&cert, &app.company_name)
        && norm(&cert.exporter.name) != norm(company)
    {
        out.push(Warning {
            code: "EXPORTER_NOT_APPLICANT",
            message: format!(
                "the document names {:?} as exporter, the application comes from {company:?}",
                cert.exporter.name
            ),
            field: "document.exporter",
        });
    }
    let Some(assessment) = app.assessment.as_deref().and_then(|a| serde_json::from_str::<Value>(a).ok())
    else {
        return out;
    };
    if assessment["originating"] == Value::Bool(false) {
        out.push(Warning {
            code: "ASSESSMENT_NOT_ORIGINATING",
            message: format!(
                "the attached self-assessment finds the good does not originate under {}",
                assessment["agreement"].as_str().unwrap_or("the agreement")
            ),
            field: "assessment",
        });
    }
    let Some(cert) = cert else { return out };
    if let Some(hs) = assessment["product"]["hs"].as_str()
        && let Ok(hs) = originlink_model::HsCode::parse_syntax(hs)
        && !cert.items.iter().any(|i| {
            i.hs.subheading().starts_with(hs.subheading()) || hs.subheading().starts_with(i.hs.subheading())
        })
    {
        let listed: Vec<String> = cert.items.iter().map(|i| i.hs.dotted()).collect();
        out.push(Warning {
            code: "ASSESSMENT_OTHER_PRODUCT",
            message: format!(
                "the self-assessment is for HS {}, the document's goods are HS {}",
                hs.dotted(),
                listed.join(", ")
            ),
            field: "assessment.product.hs",
        });
    }
    if let Some(agreement) = assessment["agreement"].as_str()
        && agreement != cert.agreement.code()
    {
        out.push(Warning {
            code: "ASSESSMENT_OTHER_AGREEMENT",
            message: format!(
                "the self-assessment is under {agreement}, the document under {}",
                cert.agreement.code()
            ),
            field: "assessment.agreement",
        });
    }
    out
}

/// What a list of applications is narrowed to, as the client asked.
#[derive(Debug, Clone, Default)]
pub struct ApplicationQuery {
    /// Statuses, comma-separated. Absent: everything for an exporter, everything but drafts
    /// for an officer.
    pub status: Option<String>,
    /// Text in the company's name, the applying user's name or the certificate number.
    pub q: Option<String>,
    /// Created on or after this date (`YYYY-MM-DD`).
    pub from: Option<String>,
    /// Created on or before this date (`YYYY-MM-DD`).
    pub to: Option<String>,
    /// Oldest first (the officer's queue); the page's `before` then means after.
    pub oldest_first: bool,
}

const APPLICATION_STATUSES: &str = "draft, submitted, approved, rejected, returned, withdrawn";

/// Applications the acting user may see, one page, narrowed by `query`. An officer's list
/// leaves drafts out unless `status` asks for them.
pub async fn list(
    state: &AppState,
    user: &User,
    page: &Page,
    query: &ApplicationQuery,
) -> Result<Vec<Application>> {
    let statuses = match query.status.as_deref() {
        Some(list) => list
            .split(',')
            .map(|s| {
                ApplicationStatus::parse(s.trim()).ok_or_else(|| {
                    Error::invalid(
                        "INVALID_QUERY",
                        "status",
                        format!("status: one or more of {APPLICATION_STATUSES}"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?,
        None if user.role == originlink_store::Role::IssuingOfficer => [
            ApplicationStatus::Submitted,
            ApplicationStatus::Returned,
            ApplicationStatus::Approved,
            ApplicationStatus::Rejected,
            ApplicationStatus::Withdrawn,
        ]
        .to_vec(),
        None => vec![],
    };
    let from = super::query_date(query.from.as_deref(), "from")?;
    let to = super::query_date(query.to.as_deref(), "to")?;
    let filter = ApplicationFilter {
        statuses,
        q: super::query_text(query.q.as_deref(), "q")?,
        from: from.map(|d| d.to_string()),
        // Created before the next day: `to` is inclusive.
        to: to.and_then(|d| d.succ_opt()).map(|d| d.to_string()),
        oldest_first: query.oldest_first,
    };
    Ok(state.store.find_applications(page, &filter).await?)
}

/// One application the acting user may see.
pub async fn get(state: &AppState, user: &User, id: i64) -> Result<Application> {
    match state.store.application(id).await? {
        Some(a) if visible(user, a.company_id) => Ok(a),
        _ => Err(Error::not_found()),
    }
}

/// The exporter submits its draft to the issuing authority.
pub async fn submit(state: &AppState, user: &User, id: i64) -> Result<Application> {
    let app = get(state, user, id).await?;
    Ok(state.store.transition(&state.ctx(user), app.id, Transition::Submit).await?)
}

/// The issuing officer rejects a submitted application with a reason.
pub async fn reject(state: &AppState, user: &User, id: i64, reason: &str) -> Result<Application> {
    let reason = super::reason(reason)?;
    let app = get(state, user, id).await?;
    let app = state.store.transition(&state.ctx(user), app.id, Transition::Reject { reason }).await?;
    state.metrics.rejections.inc();
    Ok(app)
}

/// The issuing officer approves: in one transaction the next number is allocated, the
/// certificate written from the application's document is signed with the authority key and
/// stored exactly as signed, and (when the importing country is another member) its
/// `certificate.issued` message is sealed into the outbox. The outbox worker is woken after.
/// Approvals arriving together share one commit ([`super::group_commit`]).
pub async fn approve(state: &AppState, user: &User, id: i64) -> Result<Certificate> {
    let started = Instant::now();
    let app = get(state, user, id).await?;
    let links = match app.back_to_back_of {
        Some(r) => {
            let rec = state.store.received(r).await?.ok_or_else(Error::not_found)?;
            Links { back_to_back: Some((rec.issuing_country, rec.number)) }
        }
        None => Links::default(),
    };
    let ctx = state.ctx(user);
    let date = ctx.at.date_naive();
    let (issuer, officer, exchange, now) =
        (state.issuer.clone(), user.name.clone(), state.exchange.clone(), ctx.at);
    let sign: SignFn = Box::new(move |issue| {
        let (mut signed, importing) = issuer.sign_issue_to(issue, date, &officer, &links)?;
        if let Some(x) = exchange.as_ref().filter(|x| x.country != importing) {
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
    let numbering = state.issuer.numbering(date);
    let approval = Approval { ctx, id: app.id, numbering, sign };
    let cert = state.approvals.approve(&state.store, approval).await?;
    state.wake_exchange();
    if cert.supersedes.is_some() {
        super::status::changed(state).await;
    }
    state.metrics.approvals.inc();
    state.metrics.approval_seconds.observe(started.elapsed().as_secs_f64());
    tracing::info!(application = app.id, certificate = cert.id, number = %cert.number, "certificate issued");
    Ok(cert)
}

/// Issued certificates the acting user may see, one page, with this `status` (`issued`,
/// `superseded`, `revoked`) and text in the `number`.
pub async fn certificates(
    state: &AppState,
    page: &Page,
    status: Option<&str>,
    number: Option<&str>,
) -> Result<Vec<Certificate>> {
    let filter = CertificateFilter {
        status: super::query_enum(status, "status", CertificateStatus::parse, "issued, superseded, revoked")?,
        number: super::query_text(number, "number")?,
    };
    Ok(state.store.find_certificates(page, &filter).await?)
}

/// One issued certificate the acting user may see.
pub async fn certificate(state: &AppState, user: &User, id: i64) -> Result<Certificate> {
    match state.store.certificate(id).await? {
        Some(c) if visible(user, c.company_id) => Ok(c),
        _ => Err(Error::not_found()),
    }
}

/// The issuing officer revokes an issued certificate with a reason; the importing country is
/// told in the same transaction.
pub async fn revoke(state: &AppState, user: &User, id: i64, reason: &str) -> Result<Certificate> {
    let reason = super::reason(reason)?;
    let c = certificate(state, user, id).await?;
    let ctx = state.ctx(user);
    let (exchange, reason_for_peer, now) = (state.exchange.clone(), reason.clone(), ctx.at);
    let messages: MessagesFn = Box::new(move |c| match exchange {
        Some(x) => x.revocation_message(c, &reason_for_peer, now),
        None => Ok(vec![]),
    });
    let c = state.store.revoke(&ctx, c.id, &reason, messages).await?;
    state.wake_exchange();
    state.metrics.revocations.inc();
    super::status::changed(state).await;
    Ok(c)
}

/// Issued certificate `id` (one the acting user may see) printed as an A4 PDF from its signed
/// document: `copy` `None` is the original, `Some(n)` copy n (1 to 99); the QR code carries
/// the verification page at `verify_base`, or at `[public] verify_url` when `None`.
pub async fn certificate_pdf(
    state: &AppState,
    user: &User,
    id: i64,
    copy: Option<u32>,
    verify_base: Option<&str>,
) -> Result<originlink_print::Printed> {
    if copy.is_some_and(|n| !(1..=99).contains(&n)) {
        return Err(Error::invalid("INVALID_QUERY", "copy", "copy: a copy number from 1 to 99"));
    }
    let c = certificate(state, user, id).await?;
    let base = verify_base.map(str::to_owned).or_else(|| state.public.base.clone()).ok_or_else(|| {
        Error::new(
            Kind::Conflict,
            "VERIFY_URL_UNKNOWN",
            "set [public] verify_url (the public verification page printed certificates point to)",
        )
    })?;
    let signed = c.signed;
    tokio::task::spawn_blocking(move || originlink_print::render_signed(&signed, &base, copy))
        .await
        .map_err(Error::internal)?
        .map_err(|e| match e {
            originlink_print::PrintError::Unreadable(m) => Error::unprocessable("DOCUMENT_UNREADABLE", m),
            other => Error::internal(other),
        })
}

/// One issued certificate the acting user may see, with what importing countries reported
/// about it (all versions), oldest first.
pub async fn certificate_with_statuses(
    state: &AppState,
    user: &User,
    id: i64,
) -> Result<(Certificate, Vec<StatusEvent>)> {
    let c = certificate(state, user, id).await?;
    let statuses = state.store.certificate_statuses(&c.number).await?;
    Ok((c, statuses))
}

/// What importing countries reported about a certificate (all versions), oldest first.
pub async fn statuses(state: &AppState, user: &User, id: i64) -> Result<Vec<StatusEvent>> {
    let c = certificate(state, user, id).await?;
    Ok(state.store.certificate_statuses(&c.number).await?)
}

/// What a list of received certificates is narrowed by (each optional, as typed).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceivedQuery<'a> {
    /// `valid`, `invalid`, `superseded` or `revoked`.
    pub status: Option<&'a str>,
    /// The issuing country (ISO code).
    pub issuing_country: Option<&'a str>,
    /// Text in the number.
    pub number: Option<&'a str>,
    /// Text in the exporter's name.
    pub exporter: Option<&'a str>,
    /// Received on or after (`YYYY-MM-DD`).
    pub from: Option<&'a str>,
    /// Received on or before (`YYYY-MM-DD`).
    pub to: Option<&'a str>,
}

/// Certificates received from other members, one page, narrowed as `q` says (each field's
/// problem on its name: `INVALID_QUERY`).
pub async fn received_list(
    state: &AppState,
    page: &Page,
    q: ReceivedQuery<'_>,
) -> Result<Vec<ReceivedCertificate>> {
    let ReceivedQuery { status, issuing_country, number, .. } = q;
    let filter = ReceivedFilter {
        status: super::query_enum(
            status,
            "status",
            ReceivedStatus::parse,
            "valid, invalid, superseded, revoked",
        )?,
        issuing_country: super::query_text(issuing_country, "issuing_country")?.map(|c| c.to_uppercase()),
        number: super::query_text(number, "number")?,
        exporter: super::query_text(q.exporter, "exporter")?,
        from: super::query_date(q.from, "from")?,
        to: super::query_date(q.to, "to")?,
    };
    Ok(state.store.find_received(page, &filter).await?)
}

/// The newest version received of certificate `number` issued by `country`, if any.
pub async fn received_by_number(
    state: &AppState,
    country: &str,
    number: &str,
) -> Result<Option<ReceivedCertificate>> {
    Ok(state.store.received_by_ref(country, number).await?.into_iter().max_by_key(|r| r.version))
}

/// One received certificate.
pub async fn received(state: &AppState, id: i64) -> Result<ReceivedCertificate> {
    state.store.received(id).await?.ok_or_else(Error::not_found)
}

/// A received certificate as customs reads it: the record, the document's parties and goods
/// (when it reads), and what is left of each item after the declarations that used it.
#[derive(Debug, Clone)]
pub struct ReceivedDetail {
    /// The stored record.
    pub record: ReceivedCertificate,
    /// The certificate as read (`None`: it does not read; its message was quarantined).
    pub certificate: Option<originlink_model::Certificate>,
    /// Per item number: (total, remaining), from the utilization ledger; items never used are
    /// whole.
    pub remaining: std::collections::BTreeMap<u32, (String, String)>,
    /// The document verified now, with the issuer's status list this node holds:
    /// (`VALID` | `INVALID` | `CANNOT_VERIFY`, `VALID` or the reason code, why).
    pub checked_now: (&'static str, &'static str, String),
}

/// One received certificate with its goods, parties and remaining quantities.
pub async fn received_detail(state: &AppState, id: i64) -> Result<ReceivedDetail> {
    let record = received(state, id).await?;
    let certificate = originlink_formats::read(&record.document, &originlink_formats::Limits::default())
        .ok()
        .map(|(_, c)| c);
    let mut remaining = std::collections::BTreeMap::new();
    if let Some(c) = &certificate {
        for item in &c.items {
            let total = item.quantity.value().to_string();
            remaining.insert(item.number, (total.clone(), total));
        }
    }
    for row in state.store.ledger(&record.issuing_country, &record.number).await? {
        remaining.insert(row.item as u32, (row.total, row.remaining));
    }
    let checked_now = match super::status::check_document(state, &record.document).await? {
        originlink_trust::Verdict::Valid(s) => ("VALID", "VALID", format!("signed by {}", s.subject)),
        originlink_trust::Verdict::Invalid { reason, detail } => ("INVALID", reason.code(), detail),
        originlink_trust::Verdict::CannotVerify { reason, detail } => {
            ("CANNOT_VERIFY", reason.code(), detail)
        }
    };
    Ok(ReceivedDetail { record, certificate, remaining, checked_now })
}
