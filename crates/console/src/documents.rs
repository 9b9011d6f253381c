//! What several roles look at: an application (laid out as the certificate's boxes, beside its
//! self-assessment and warnings, with the actions the person may take), the certificates with
//! their status history, and the documents to download.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use originlink_model as m;
use originlink_node::app::{self, applications};
use originlink_store::Role;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Shared;
use crate::auth::{Person, page_ctx, shown};

/// One box of the certificate as the officer knows it (Form D 1–12, RCEP alike).
#[derive(Debug, Serialize)]
pub(crate) struct Boxed {
    number: &'static str,
    label: &'static str,
    lines: Vec<String>,
}

/// One goods item row (boxes 5–10).
#[derive(Debug, Serialize)]
pub(crate) struct ItemRow {
    number: u32,
    marks: String,
    packages: String,
    description: String,
    hs: String,
    hs_description: String,
    criterion: String,
    quantity: String,
    fob: String,
    invoice: String,
}

fn party_lines(p: &m::Party) -> Vec<String> {
    let mut v = vec![p.name.clone()];
    v.extend(p.address.street.clone());
    let city = [p.address.city.clone(), p.address.postcode.clone()].into_iter().flatten().collect::<Vec<_>>();
    if !city.is_empty() {
        v.push(city.join(" "));
    }
    v.push(p.address.country.to_string());
    if let Some(id) = &p.id {
        v.push(id.clone());
    }
    v
}

/// Money as people read it: `USD 1,680.00`.
pub fn money(amount: &str, currency: &str) -> String {
    let (int, frac) = amount.split_once('.').unwrap_or((amount, ""));
    let (sign, digits) = int.strip_prefix('-').map(|d| ("-", d)).unwrap_or(("", int));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let frac = format!("{frac:0<2}");
    format!("{currency} {sign}{grouped}.{frac}")
}

pub(crate) fn boxes(c: &m::Certificate) -> (Vec<Boxed>, Vec<ItemRow>) {
    let t = &c.transport;
    let mut transport = vec![
        format!("Departure: {}", crate::views::human_date(&t.departure_date.to_string())),
        format!("Mode: {:?}", t.mode),
    ];
    transport.extend(t.vessel.clone().map(|v| format!("Vessel: {v}")));
    transport.push(format!("Port of loading: {}", t.port_of_loading.name));
    transport.push(format!("Port of discharge: {}", t.port_of_discharge.name));
    let boxes = vec![
        Boxed { number: "1", label: "box-exporter", lines: party_lines(&c.exporter) },
        Boxed { number: "2", label: "box-consignee", lines: party_lines(&c.consignee) },
        Boxed { number: "3", label: "box-transport", lines: transport },
        Boxed {
            number: "11",
            label: "box-declaration",
            lines: vec![
                format!(
                    "{}, {}",
                    c.declaration.place,
                    crate::views::human_date(&c.declaration.date.to_string())
                ),
                c.declaration.signatory.clone(),
                format!("{} → {} ({})", c.exporting_country, c.importing_country, c.agreement.code()),
            ],
        },
    ];
    let items = c
        .items
        .iter()
        .map(|i| ItemRow {
            number: i.number,
            marks: i.marks.clone(),
            packages: format!("{} {}", i.packages.count, i.packages.kind),
            description: i.description.clone(),
            hs: i.hs.dotted(),
            hs_description: i.hs.description().to_owned(),
            criterion: i.criterion.to_string(),
            quantity: format!("{} {}", i.quantity.value(), i.quantity.unit()),
            fob: i
                .fob
                .as_ref()
                .map(|f| money(&f.amount().to_string(), &f.currency().to_string()))
                .unwrap_or_default(),
            invoice: format!(
                "{}, {}",
                i.invoice.number,
                crate::views::human_date(&i.invoice.date.to_string())
            ),
        })
        .collect();
    (boxes, items)
}

/// `GET /applications/{id}`
pub async fn application(State(s): State<Shared>, person: Person, Path(id): Path<i64>) -> Response {
    if let Err(r) = person.require(&s, &[Role::Exporter, Role::IssuingOfficer]) {
        return r;
    }
    let a = match applications::get(&s.app, &person.user, id).await {
        Ok(a) => a,
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let cert =
        originlink_formats::read(&a.document, &originlink_formats::Limits::default()).ok().map(|(_, c)| c);
    let (boxes, items) = cert.as_ref().map(boxes).unwrap_or_default();
    let assessment: Option<Value> = a.assessment.as_deref().and_then(|t| serde_json::from_str(t).ok());
    let request: Option<Value> = a.self_assessment.as_deref().and_then(|t| serde_json::from_str(t).ok());
    let warnings = applications::warnings(&a);
    let certificate = match a.certificate_id {
        Some(cid) => applications::certificate(&s.app, &person.user, cid).await.ok(),
        None => None,
    };
    let title = s.views.messages().text("application-title", &[("id", a.id.to_string())]);
    let ctx = context! {
        page => page_ctx(Some(&person), &title, ""),
        a => &a,
        boxes => boxes,
        items => items,
        assessment => assessment,
        request => request,
        warnings => warnings,
        certificate => certificate,
        officer => person.user.role == Role::IssuingOfficer,
        exporter => person.user.role == Role::Exporter,
    };
    shown(&s, &person, s.views.render("application.html", ctx))
}

/// `GET /applications/{id}/document`: the document as the exporter sent it.
pub async fn application_document(State(s): State<Shared>, person: Person, Path(id): Path<i64>) -> Response {
    if let Err(r) = person.require(&s, &[Role::Exporter, Role::IssuingOfficer]) {
        return r;
    }
    match applications::get(&s.app, &person.user, id).await {
        Ok(a) => download(a.document, &a.format, &format!("application-{}", a.id)),
        Err(e) => s.views.error_page(Some(&person), &e),
    }
}

fn download(bytes: Vec<u8>, format: &str, stem: &str) -> Response {
    let (mime, ext) = if format == "xml" { ("application/xml", "xml") } else { ("application/json", "json") };
    let disposition = format!("attachment; filename=\"{stem}.{ext}\"");
    ([(header::CONTENT_TYPE, mime.to_owned()), (header::CONTENT_DISPOSITION, disposition)], bytes)
        .into_response()
}

/// `?status=&number=&before=` of the certificates page.
#[derive(Debug, Default, Deserialize)]
pub struct CertQuery {
    #[serde(default)]
    status: Option<String>,
    /// Received certificates: the issuing country.
    #[serde(default)]
    issuer: Option<String>,
    /// Received certificates: text in the exporter's name.
    #[serde(default)]
    exporter: Option<String>,
    /// Received certificates: received on or after (`YYYY-MM-DD`).
    #[serde(default)]
    from: Option<String>,
    /// Received certificates: received on or before.
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    before: Option<i64>,
}

/// `GET /certificates`: the exporter's certificates, or every certificate issued here for an
/// officer; for customs, the certificates received from other members.
pub async fn certificates(State(s): State<Shared>, person: Person, Query(q): Query<CertQuery>) -> Response {
    if let Err(r) = person.require(&s, &[Role::Exporter, Role::IssuingOfficer, Role::CustomsOfficer]) {
        return r;
    }
    let page = match app::page(&person.user, Some(crate::exporter::PAGE_SIZE + 1), q.before) {
        Ok(p) => p,
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let status = q.status.as_deref().filter(|t| !t.is_empty());
    let number = q.number.as_deref().filter(|t| !t.trim().is_empty());
    let received = person.user.role == Role::CustomsOfficer;
    let rows: Result<Vec<Value>, app::Error> = if received {
        fn typed(t: &Option<String>) -> Option<&str> {
            t.as_deref().filter(|t| !t.trim().is_empty())
        }
        let query = applications::ReceivedQuery {
            status,
            issuing_country: typed(&q.issuer),
            number,
            exporter: typed(&q.exporter),
            from: typed(&q.from),
            to: typed(&q.to),
        };
        applications::received_list(&s.app, &page, query)
            .await
            .map(|r| r.into_iter().map(|c| serde_json::to_value(c).unwrap_or(Value::Null)).collect())
    } else {
        applications::certificates(&s.app, &page, status, number)
            .await
            .map(|r| r.into_iter().map(|c| serde_json::to_value(c).unwrap_or(Value::Null)).collect())
    };
    let (rows, error) = match rows {
        Ok(r) => (r, None),
        Err(e) if e.kind == app::Kind::Invalid => (vec![], Some(s.views.error_text(&e))),
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let more = rows.len() as i64 > crate::exporter::PAGE_SIZE;
    let rows: Vec<Value> = rows.into_iter().take(crate::exporter::PAGE_SIZE as usize).collect();
    let next = if more { rows.last().and_then(|r| r["id"].as_i64()) } else { None };
    let title_id = match person.user.role {
        Role::IssuingOfficer => "issued-title",
        Role::CustomsOfficer => "received-title",
        _ => "certificates-title",
    };
    let title = s.views.messages().text(title_id, &[]);
    let ctx = context! {
        page => page_ctx(Some(&person), &title, "/certificates"),
        rows => rows,
        received => received,
        q => context! { status => q.status, number => q.number, issuer => q.issuer, exporter => q.exporter, from => q.from, to => q.to },
        partners => crate::exporter::PARTNERS,
        error => error,
        next => next,
        statuses => if received { vec!["valid", "invalid", "superseded", "revoked"] } else { vec!["issued", "superseded", "revoked"] },
    };
    shown(&s, &person, s.views.render("certificates.html", ctx))
}

/// `GET /certificates/{id}`: the certificate, its boxes and its full status history.
pub async fn certificate(State(s): State<Shared>, person: Person, Path(id): Path<i64>) -> Response {
    if let Err(r) = person.require(&s, &[Role::Exporter, Role::IssuingOfficer]) {
        return r;
    }
    let (c, statuses) = match applications::certificate_with_statuses(&s.app, &person.user, id).await {
        Ok(x) => x,
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let doc =
        originlink_formats::read(&c.signed, &originlink_formats::Limits::default()).ok().map(|(_, d)| d);
    let (boxes, items) = doc.as_ref().map(boxes).unwrap_or_default();
    let mut history: Vec<HistoryItem> =
        statuses.iter().map(|e| history_item(s.views.messages(), e)).collect();
    history.reverse();
    let title = s.views.messages().text("certificate-title", &[("number", c.number.clone())]);
    let ctx = context! {
        page => page_ctx(Some(&person), &title, ""),
        c => &c,
        boxes => boxes,
        items => items,
        history => history,
        officer => person.user.role == Role::IssuingOfficer,
        exporter => person.user.role == Role::Exporter,
    };
    shown(&s, &person, s.views.render("certificate.html", ctx))
}

/// One report from an importing country, as people read it: the status, who and when, the
/// declaration, the quantities used and what is left, and the reasons in words.
#[derive(Debug, Serialize)]
struct HistoryItem {
    status: String,
    from_country: String,
    at: String,
    version: i64,
    declaration: Option<String>,
    utilized: Vec<String>,
    reasons: Vec<String>,
}

fn history_item(m: &crate::views::Messages, e: &originlink_store::StatusEvent) -> HistoryItem {
    let detail: Value = serde_json::from_str(&e.detail).unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let utilized = detail["utilized"]
        .as_array()
        .map(|u| {
            u.iter()
                .map(|x| {
                    let args = [
                        ("item", x["item"].to_string()),
                        ("used", text(&x["quantity"])),
                        ("unit", text(&x["unit"])),
                        ("left", text(&x["remaining"])),
                    ];
                    m.text("history-utilized", &args)
                })
                .collect()
        })
        .unwrap_or_default();
    let reasons = detail["reasons"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|x| match text(&x["message"]) {
                    words if words.is_empty() => text(&x["code"]),
                    words => format!("{words} ({})", text(&x["code"])),
                })
                .collect()
        })
        .unwrap_or_default();
    HistoryItem {
        status: e.status.clone(),
        from_country: e.from_country.clone(),
        at: e.at.clone(),
        version: e.version,
        declaration: detail["declaration"].as_str().map(str::to_owned),
        utilized,
        reasons,
    }
}

/// `GET /certificates/{id}/document`: the signed document, byte for byte.
/// `?copy=` of the printed certificate.
#[derive(Debug, Default, Deserialize)]
pub struct PrintQuery {
    #[serde(default)]
    copy: Option<String>,
}

/// `GET /certificates/{id}/pdf[?copy=N]`: the certificate printed from its signed document,
/// its QR code pointing to this console's public verification page.
pub async fn certificate_pdf(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    headers: axum::http::HeaderMap,
    Query(q): Query<PrintQuery>,
) -> Response {
    if let Err(r) = person.require(&s, &[Role::Exporter, Role::IssuingOfficer]) {
        return r;
    }
    let copy = match q.copy.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match c.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                let e = app::Error::invalid("INVALID_QUERY", "copy", "copy: a copy number from 1 to 99");
                return s.views.error_page(Some(&person), &e);
            }
        },
    };
    let base = s.base.url(&headers, "");
    match applications::certificate_pdf(&s.app, &person.user, id, copy, Some(&base)).await {
        Ok(p) => {
            let stem = match copy {
                Some(n) => format!("{}-copy-{n}", p.number),
                None => p.number.clone(),
            };
            let disposition = format!("attachment; filename=\"{}.pdf\"", stem.replace(['"', '/'], "_"));
            (
                [
                    (header::CONTENT_TYPE, "application/pdf".to_owned()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                p.pdf,
            )
                .into_response()
        }
        Err(e) => s.views.error_page(Some(&person), &e),
    }
}

pub async fn certificate_document(State(s): State<Shared>, person: Person, Path(id): Path<i64>) -> Response {
    if let Err(r) = person.require(&s, &[Role::Exporter, Role::IssuingOfficer]) {
        return r;
    }
    match applications::certificate(&s.app, &person.user, id).await {
        Ok(c) => {
            let format = if c.signed.starts_with(b"<") { "xml" } else { "json" };
            download(c.signed, format, &format!("{}-v{}", c.number, c.version))
        }
        Err(e) => s.views.error_page(Some(&person), &e),
    }
}
