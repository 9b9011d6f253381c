//! The exporter's pages: the applications with their state, a new application by form (with a
//! bill of materials and the self-assessment explained) or by upload (UBL XML or edi3 JSON),
//! editing a draft or a returned application, submit, withdraw, start again from a closed one,
//! and asking for a replacement of an issued certificate.
//!
//! The form is read into the model's `Certificate` and written as edi3 JSON; the use case
//! (`app::applications::apply`) checks it exactly as it checks a document sent to the API.

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use originlink_model as m;
use originlink_node::app::{self, applications, users};
use originlink_store::Role;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Shared;
use crate::auth::{self, Done, Person, page_ctx, redirect_with_flash, shown};
use crate::forms::{Errors, FormData};

/// Goods item rows on the form.
pub const ITEM_ROWS: usize = 3;
/// Material rows of the bill of materials.
pub const MATERIAL_ROWS: usize = 6;

/// `?status=&q=&from=&to=&before=` of a list page.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    before: Option<i64>,
}

/// Rows a list page shows.
pub const PAGE_SIZE: i64 = 50;

/// `GET /applications`: the exporter's applications (an officer's: everything submitted),
/// newest first, with filters.
pub async fn applications(State(s): State<Shared>, person: Person, Query(q): Query<ListQuery>) -> Response {
    if let Err(r) = person.require(&s, &[Role::Exporter, Role::IssuingOfficer]) {
        return r;
    }
    let empty = |v: &Option<String>| v.clone().filter(|t| !t.trim().is_empty());
    let query = applications::ApplicationQuery {
        status: empty(&q.status),
        q: empty(&q.q),
        from: empty(&q.from),
        to: empty(&q.to),
        oldest_first: false,
    };
    let listed = match app::page(&person.user, Some(PAGE_SIZE + 1), q.before) {
        Ok(page) => applications::list(&s.app, &person.user, &page, &query).await,
        Err(e) => Err(e),
    };
    let (rows, error) = match listed {
        Ok(rows) => (rows, None),
        Err(e) if e.kind == app::Kind::Invalid => (vec![], Some(s.views.error_text(&e))),
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let more = rows.len() as i64 > PAGE_SIZE;
    let rows: Vec<_> = rows.into_iter().take(PAGE_SIZE as usize).collect();
    let next = if more { rows.last().map(|a| a.id) } else { None };
    let title = s.views.messages().text("applications-title", &[]);
    let ctx = context! {
        page => page_ctx(Some(&person), &title, "/applications"),
        rows => rows,
        q => context! { status => q.status, q => q.q, from => q.from, to => q.to },
        filtered => query.status.is_some() || query.q.is_some() || query.from.is_some() || query.to.is_some(),
        error => error,
        next => next,
        first => q.before.is_none(),
        statuses => ["draft", "submitted", "returned", "approved", "rejected", "withdrawn"],
    };
    shown(&s, &person, s.views.render("applications.html", ctx))
}

/// What the form holds after reading: the certificate when it reads, the self-assessment
/// request and its result when a bill of materials was entered, and every error by field.
struct Read {
    cert: Option<m::Certificate>,
    request: Option<Value>,
    assessment: Option<Value>,
    errors: Errors,
}

/// The form's values for a fresh application: the company as exporter, today's date.
fn fresh_values(s: &Shared, company: &str) -> std::collections::BTreeMap<String, String> {
    let today = s.app.clock.now().date_naive();
    let a = &s.app.issuer.authority;
    let mut v = std::collections::BTreeMap::new();
    v.insert("agreement".into(), "ATIGA".into());
    v.insert("exporter_name".into(), company.to_owned());
    v.insert("exporter_city".into(), a.city.clone().unwrap_or_default());
    v.insert("currency".into(), "USD".into());
    v.insert("transport_mode".into(), "1".into());
    v.insert("departure_date".into(), today.to_string());
    v.insert("declaration_place".into(), a.city.clone().unwrap_or_default());
    v.insert("declaration_date".into(), today.to_string());
    for i in 1..=ITEM_ROWS {
        v.insert(format!("item-{i}-invoice_date"), today.to_string());
    }
    v
}

async fn company_name(s: &Shared, person: &Person) -> String {
    match users::get(s.app.store.as_ref(), person.user.id).await {
        Ok(u) => u.company.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// `GET /applications/new`: the form.
pub async fn new_form(State(s): State<Shared>, person: Person) -> Response {
    if let Err(r) = person.require(&s, &[Role::Exporter]) {
        return r;
    }
    let company = company_name(&s, &person).await;
    form_page(&s, &person, StatusCode::OK, None, fresh_values(&s, &company), &Errors::default(), None)
}

#[allow(clippy::too_many_arguments)]
fn form_page(
    s: &Shared,
    person: &Person,
    status: StatusCode,
    editing: Option<i64>,
    values: std::collections::BTreeMap<String, String>,
    errors: &Errors,
    assessment: Option<&Value>,
) -> Response {
    let msgs = s.views.messages();
    let title = match editing {
        Some(id) => msgs.text("edit-title", &[("id", id.to_string())]),
        None => msgs.text("new-title", &[]),
    };
    let ctx = context! {
        page => page_ctx(Some(person), &title, if editing.is_none() { "/applications/new" } else { "" }),
        v => values,
        errors => errors.0.clone(),
        field_errors => errors.by_field(),
        items => (1..=ITEM_ROWS).collect::<Vec<_>>(),
        materials => (1..=MATERIAL_ROWS).collect::<Vec<_>>(),
        assessment => assessment,
        action => match editing { Some(id) => format!("/applications/{id}/edit"), None => "/applications/new".into() },
        editing => editing,
        countries => PARTNERS,
        modes => [("1", "mode-sea"), ("4", "mode-air"), ("3", "mode-road"), ("2", "mode-rail")],
        hs_results => Vec::<(String, String)>::new(),
        looked_up => false,
    };
    s.views.render_status(status, "application_form.html", ctx)
}

fn hs_lookup(q: Option<String>) -> Vec<(String, String)> {
    let Some(q) = q.filter(|q| q.trim().len() >= 2) else { return vec![] };
    m::Nomenclature::hs2022()
        .search(&q, 20)
        .into_iter()
        .map(|e| (format!("{}.{}", &e.code[..4], &e.code[4..]), e.description.to_owned()))
        .collect()
}

/// The countries an application may name as importing country.
pub const PARTNERS: &[&str] =
    &["AU", "BN", "CN", "ID", "JP", "KH", "KR", "LA", "MM", "MY", "NZ", "PH", "SG", "TH", "VN"];

/// `POST /applications/new`: `action=check` shows the self-assessment, `action=lookup` the
/// HS codes matching `hs_query`, `action=save` creates the draft.
pub async fn new_posted(State(s): State<Shared>, person: Person, form: FormData) -> Response {
    if let Err(r) = auth::may_post(&s, &person, &[Role::Exporter], &form) {
        return r;
    }
    posted(&s, &person, form, None).await
}

async fn posted(s: &Shared, person: &Person, form: FormData, editing: Option<i64>) -> Response {
    let action = form.get("action").unwrap_or("save").to_owned();
    if action == "lookup" {
        return lookup_page(s, person, form, editing);
    }
    let read = read_form(s, &form);
    let values = form.values();
    if action == "check" || !read.errors.is_empty() {
        let status = if read.errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
        return form_page(s, person, status, editing, values, &read.errors, read.assessment.as_ref());
    }
    let Some(cert) = read.cert else {
        return form_page(s, person, StatusCode::BAD_REQUEST, editing, values, &read.errors, None);
    };
    let document = applications::Document::Json(
        serde_json::from_str(&originlink_formats::json::write(&cert)).unwrap_or(Value::Null),
    );
    let result = match editing {
        None => {
            let input = applications::Apply {
                document,
                self_assessment: read.request,
                replaces: form.get("replaces").and_then(|r| r.parse().ok()),
                back_to_back_of: None,
            };
            applications::apply(&s.app, &person.user, input).await
        }
        Some(id) => {
            let input = applications::Edit { document: Some(document), self_assessment: read.request };
            applications::edit(&s.app, &person.user, id, input).await
        }
    };
    match result {
        Ok(a) => {
            let flash = s.views.messages().text("flash-draft-saved", &[("id", a.id.to_string())]);
            redirect_with_flash(s, &format!("/applications/{}", a.id), &flash)
        }
        Err(e) if matches!(e.kind, app::Kind::Invalid | app::Kind::Unprocessable | app::Kind::Conflict) => {
            let mut errors = Errors::default();
            errors.add(form_field(e.field.as_deref().unwrap_or("")), s.views.error_text(&e), e.code);
            form_page(
                s,
                person,
                StatusCode::UNPROCESSABLE_ENTITY,
                editing,
                values,
                &errors,
                read.assessment.as_ref(),
            )
        }
        Err(e) => s.views.error_page(Some(person), &e),
    }
}

fn lookup_page(s: &Shared, person: &Person, form: FormData, editing: Option<i64>) -> Response {
    let q = form.text("hs_query");
    let msgs = s.views.messages();
    let title = msgs.text("new-title", &[]);
    let ctx = context! {
        page => page_ctx(Some(person), &title, "/applications/new"),
        v => form.values(),
        errors => Vec::<()>::new(),
        field_errors => std::collections::BTreeMap::<String, String>::new(),
        items => (1..=ITEM_ROWS).collect::<Vec<_>>(),
        materials => (1..=MATERIAL_ROWS).collect::<Vec<_>>(),
        assessment => None::<Value>,
        action => match editing { Some(id) => format!("/applications/{id}/edit"), None => "/applications/new".into() },
        editing => editing,
        countries => PARTNERS,
        modes => [("1", "mode-sea"), ("4", "mode-air"), ("3", "mode-road"), ("2", "mode-rail")],
        hs_results => hs_lookup(q),
        looked_up => true,
    };
    s.views.render("application_form.html", ctx)
}

/// A use case's field (a model path such as `items[0].hs`, or a JSON pointer) as the form's
/// field id.
fn form_field(field: &str) -> String {
    let f = field.trim_start_matches('/').replace('/', ".");
    let index = |s: &str| -> Option<usize> {
        let start = s.find(['[', '.'])? + 1;
        s[start..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
    };
    let last = f.rsplit(['.', ']']).find(|p| !p.is_empty()).unwrap_or("").to_owned();
    if (f.starts_with("items") || f.starts_with("goods"))
        && let Some(i) = index(&f)
    {
        let key = match last.as_str() {
            "hs" | "hs_code" => "hs",
            "quantity" | "value" => "quantity",
            "fob" | "fob_value" => "fob",
            "criterion" | "origin_criterion" => "criterion",
            _ => "description",
        };
        return format!("item-{}-{key}", i + 1);
    }
    if f.contains("materials")
        && let Some(i) = index(&f[f.find("materials").unwrap_or(0)..])
    {
        let key = if ["hs", "value", "origin", "status", "name"].contains(&last.as_str()) {
            last
        } else {
            "name".into()
        };
        return format!("material-{}-{key}", i + 1);
    }
    match last.as_str() {
        "importing_country" => "importing_country".into(),
        "exporting_country" => "exporter_name".into(),
        "agreement" => "agreement".into(),
        _ if f.contains("consignee") => "consignee_name".into(),
        _ if f.contains("transport") => "departure_date".into(),
        _ => "agreement".into(),
    }
}

/// Reads the form into a certificate and, when materials were entered, a self-assessment.
fn read_form(s: &Shared, f: &FormData) -> Read {
    let msgs = s.views.messages();
    let mut errors = Errors::default();
    let need = |errors: &mut Errors, field: &str| -> Option<String> {
        let v = f.text(field);
        if v.is_none() {
            errors.add(field, msgs.text(&format!("need-{}", field_kind(field)), &[]), "REQUIRED");
        }
        v
    };
    let country = s.app.issuer.authority.country.clone();
    let agreement = need(&mut errors, "agreement").and_then(|a| m::Agreement::parse(&a).ok());
    let importing = need(&mut errors, "importing_country").and_then(|c| m::CountryCode::parse(&c).ok());
    let exporter_name = need(&mut errors, "exporter_name");
    let consignee_name = need(&mut errors, "consignee_name");
    let currency = f.text("currency").unwrap_or_else(|| "USD".into());
    let date = |errors: &mut Errors, field: &str| -> Option<m::NaiveDate> {
        let v = f.text(field)?;
        match m::NaiveDate::parse_from_str(&v, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                errors.add(field, msgs.text("bad-date", &[]), "DATE_INVALID");
                None
            }
        }
    };
    let departure = date(&mut errors, "departure_date");
    if departure.is_none() && f.text("departure_date").is_none() {
        errors.add("departure_date", msgs.text("need-date", &[]), "REQUIRED");
    }
    let declaration_date =
        date(&mut errors, "declaration_date").unwrap_or_else(|| s.app.clock.now().date_naive());
    let mode =
        m::TransportMode::from_code(f.get("transport_mode").unwrap_or("1")).unwrap_or(m::TransportMode::Sea);
    let loading = need(&mut errors, "loading_port");
    let discharge = need(&mut errors, "discharge_port");
    let signatory = need(&mut errors, "declaration_signatory");

    let mut items = Vec::new();
    for i in 1..=ITEM_ROWS {
        let key = |k: &str| format!("item-{i}-{k}");
        let filled = ["description", "hs", "quantity", "fob"].iter().any(|k| f.text(&key(k)).is_some());
        if !filled {
            continue;
        }
        let description = need(&mut errors, &key("description"));
        let hs = need(&mut errors, &key("hs")).and_then(|h| match m::HsCode::parse(&h) {
            Ok(h) => Some(h),
            Err(_) => {
                errors.add(key("hs"), msgs.text("bad-hs", &[("hs", h)]), "HS_UNKNOWN");
                None
            }
        });
        let unit = f.text(&key("unit")).unwrap_or_else(|| "C62".into());
        let quantity =
            need(&mut errors, &key("quantity")).and_then(|q| match m::Quantity::parse(&q, &unit) {
                Ok(q) => Some(q),
                Err(_) => {
                    errors.add(key("quantity"), msgs.text("bad-quantity", &[]), "QUANTITY_INVALID");
                    None
                }
            });
        let fob = need(&mut errors, &key("fob")).and_then(|v| match m::Money::parse(&v, &currency) {
            Ok(v) => Some(v),
            Err(_) => {
                errors.add(key("fob"), msgs.text("bad-amount", &[]), "AMOUNT_INVALID");
                None
            }
        });
        let criterion_text =
            f.text(&key("criterion")).or_else(|| (i == 1).then(|| assessed_code(s, f)).flatten());
        let criterion = match criterion_text {
            Some(c) => match m::OriginCriterion::parse(&c) {
                Ok(c) => Some(c),
                Err(_) => {
                    errors.add(key("criterion"), msgs.text("bad-criterion", &[]), "CRITERION_INVALID");
                    None
                }
            },
            None => {
                errors.add(key("criterion"), msgs.text("need-criterion", &[]), "REQUIRED");
                None
            }
        };
        let packages = f.text(&key("packages")).and_then(|p| p.parse::<u32>().ok()).unwrap_or(1);
        let kind = m::PackageKind::parse(&f.text(&key("package_kind")).unwrap_or_else(|| "CT".into()))
            .unwrap_or_else(|_| m::PackageKind::parse("CT").expect("CT is a package kind"));
        let invoice_number = need(&mut errors, &key("invoice_number"));
        let invoice_date = date(&mut errors, &key("invoice_date"));
        if let (
            Some(description),
            Some(hs),
            Some(quantity),
            Some(fob),
            Some(criterion),
            Some(number),
            Some(idate),
            Some(c),
        ) = (
            description,
            hs,
            quantity,
            fob,
            criterion,
            invoice_number,
            invoice_date,
            m::CountryCode::parse(&country).ok(),
        ) {
            items.push(m::Item {
                number: items.len() as u32 + 1,
                marks: f.text(&key("marks")).unwrap_or_else(|| "N/M".into()),
                packages: m::Packages { count: packages.max(1), kind },
                description,
                hs,
                criterion,
                origin_country: c,
                quantity,
                gross_weight: None,
                fob: Some(fob),
                invoice: m::Invoice { number, date: idate },
            });
        }
    }
    if items.is_empty() && !errors.0.iter().any(|e| e.field.starts_with("item-")) {
        errors.add("item-1-description", msgs.text("need-item", &[]), "ITEMS_REQUIRED");
    }

    let (request, assessment) = assessment(s, f, agreement, &mut errors);

    let exporting = m::CountryCode::parse(&country).ok();
    let cert = match (
        agreement,
        importing,
        exporter_name,
        consignee_name,
        departure,
        loading,
        discharge,
        signatory,
        exporting,
    ) {
        (
            Some(agreement),
            Some(importing),
            Some(exporter),
            Some(consignee),
            Some(departure),
            Some(loading),
            Some(discharge),
            Some(signatory),
            Some(exporting),
        ) if errors.is_empty() => {
            let address = |city: Option<String>, street: Option<String>, country: m::CountryCode| {
                m::Address { street, city, postcode: None, country }
            };
            let cert = m::Certificate {
                agreement,
                kind: m::ProofKind::Certificate,
                number: None,
                reference: f
                    .text("reference")
                    .unwrap_or_else(|| format!("WEB-{}", s.app.clock.now().format("%Y%m%d%H%M%S"))),
                version: 1,
                replaces: None,
                exporting_country: exporting,
                importing_country: importing,
                exporter: m::Party {
                    name: exporter,
                    id: f.text("exporter_id"),
                    address: address(f.text("exporter_city"), f.text("exporter_street"), exporting),
                },
                producer: None,
                consignee: m::Party {
                    name: consignee,
                    id: f.text("consignee_id"),
                    address: address(f.text("consignee_city"), f.text("consignee_street"), importing),
                },
                transport: m::Transport {
                    departure_date: departure,
                    mode,
                    vessel: f.text("vessel"),
                    port_of_loading: m::Port { code: None, name: loading },
                    port_of_discharge: m::Port { code: None, name: discharge },
                },
                items,
                declaration: m::Declaration {
                    place: f
                        .text("declaration_place")
                        .unwrap_or_else(|| s.app.issuer.authority.city.clone().unwrap_or_default()),
                    date: declaration_date,
                    signatory,
                },
                certification: None,
                official_use: None,
                flags: m::Flags::default(),
                approved_exporter: None,
                remarks: f.text("remarks"),
            };
            for p in m::validate(&cert) {
                errors.add(form_field(&p.path), p.message.clone(), p.code);
            }
            Some(cert)
        }
        _ => None,
    };
    Read { cert, request, assessment, errors }
}

fn field_kind(field: &str) -> &str {
    field.rsplit('-').next().unwrap_or(field)
}

/// The criterion the self-assessment found (for item 1 when the exporter left it empty).
fn assessed_code(s: &Shared, f: &FormData) -> Option<String> {
    let agreement = f.text("agreement").and_then(|a| m::Agreement::parse(&a).ok());
    let mut errors = Errors::default();
    let (_, result) = assessment(s, f, agreement, &mut errors);
    let r = result?;
    (r["originating"] == Value::Bool(true))
        .then(|| r["certificate_code"].as_str().map(str::to_owned))
        .flatten()
}

/// The bill of materials as a `qualify` request for goods item 1, and its result; nothing
/// when no material was entered.
fn assessment(
    s: &Shared,
    f: &FormData,
    agreement: Option<m::Agreement>,
    errors: &mut Errors,
) -> (Option<Value>, Option<Value>) {
    let mut materials = Vec::new();
    for j in 1..=MATERIAL_ROWS {
        let key = |k: &str| format!("material-{j}-{k}");
        let Some(name) = f.text(&key("name")) else { continue };
        let mut mat = json!({ "name": name, "status": f.text(&key("status")).unwrap_or_else(|| "non-originating".into()) });
        for k in ["hs", "value", "origin"] {
            if let Some(v) = f.text(&key(k)) {
                mat[k] = Value::String(v);
            }
        }
        materials.push(mat);
    }
    if materials.is_empty() {
        return (None, None);
    }
    let mut request = json!({
        "agreement": agreement.map(|a| a.code()).unwrap_or("ATIGA"),
        "exporting_country": s.app.issuer.authority.country,
        "product": {
            "hs": f.text("item-1-hs").unwrap_or_default(),
            "description": f.text("item-1-description").unwrap_or_default(),
        },
        "valuation": {
            "basis": "FOB",
            "value": f.text("item-1-fob").unwrap_or_default(),
            "currency": f.text("currency").unwrap_or_else(|| "USD".into()),
        },
        "materials": materials,
    });
    if let Some(ops) = f.text("operations") {
        request["operations"] =
            Value::Array(ops.split(',').map(|o| Value::String(o.trim().to_owned())).collect());
    }
    match app::reference::qualify(request.to_string().as_bytes()) {
        Ok(result) => (Some(request), Some(result)),
        Err(e) => {
            let field = e.field.as_deref().unwrap_or("");
            let field = if field.contains("materials") {
                form_field(field)
            } else if field.contains("valuation") {
                "item-1-fob".into()
            } else if field.contains("product") {
                "item-1-hs".into()
            } else {
                "material-1-name".into()
            };
            errors.add(field, s.views.error_text(&e), e.code);
            (Some(request), None)
        }
    }
}

/// `GET /applications/upload`
pub async fn upload_page(State(s): State<Shared>, person: Person) -> Response {
    if let Err(r) = person.require(&s, &[Role::Exporter]) {
        return r;
    }
    upload_form(&s, &person, StatusCode::OK, None)
}

fn upload_form(s: &Shared, person: &Person, status: StatusCode, error: Option<(String, &str)>) -> Response {
    let title = s.views.messages().text("upload-title", &[]);
    let ctx = context! {
        page => page_ctx(Some(person), &title, ""),
        error => error.as_ref().map(|(text, code)| context! { text => text, code => code }),
    };
    s.views.render_status(status, "upload.html", ctx)
}

/// `POST /applications/upload`: a UBL XML or edi3 JSON file (multipart), with the CSRF token.
pub async fn upload(State(s): State<Shared>, person: Person, multipart: Multipart) -> Response {
    if let Err(r) = person.require(&s, &[Role::Exporter]) {
        return r;
    }
    let mut parts = crate::forms::multipart_parts(multipart).await;
    let (file, bom) =
        (parts.remove("document").unwrap_or_default(), parts.remove("bill_of_materials").unwrap_or_default());
    if !auth::csrf_ok(&person, &crate::forms::csrf_of(&parts)) {
        return auth::csrf_refused(&s, Some(&person));
    }
    let msgs = s.views.messages();
    if file.is_empty() {
        return upload_form(
            &s,
            &person,
            StatusCode::BAD_REQUEST,
            Some((msgs.text("upload-empty", &[]), "DOCUMENT_REQUIRED")),
        );
    }
    let document = match originlink_formats::detect(&file) {
        Some(originlink_formats::Format::Xml) => {
            applications::Document::Xml(String::from_utf8_lossy(&file).into_owned())
        }
        Some(originlink_formats::Format::Json) => match serde_json::from_slice(&file) {
            Ok(v) => applications::Document::Json(v),
            Err(_) => {
                return upload_form(
                    &s,
                    &person,
                    StatusCode::BAD_REQUEST,
                    Some((msgs.text("upload-unreadable", &[]), "DOCUMENT_UNREADABLE")),
                );
            }
        },
        None => {
            return upload_form(
                &s,
                &person,
                StatusCode::BAD_REQUEST,
                Some((msgs.text("upload-unreadable", &[]), "DOCUMENT_UNREADABLE")),
            );
        }
    };
    // The bill of materials, when one is uploaded too: a `qualify` request (the self-assessment).
    let self_assessment = if bom.is_empty() {
        None
    } else {
        match serde_json::from_slice::<Value>(&bom) {
            Ok(v @ Value::Object(_)) => Some(v),
            _ => {
                let text = msgs.text("upload-bom-unreadable", &[]);
                let code = "BILL_OF_MATERIALS_UNREADABLE";
                return upload_form(&s, &person, StatusCode::BAD_REQUEST, Some((text, code)));
            }
        }
    };
    let input = applications::Apply { document, self_assessment, replaces: None, back_to_back_of: None };
    match applications::apply(&s.app, &person.user, input).await {
        Ok(a) => redirect_with_flash(
            &s,
            &format!("/applications/{}", a.id),
            &msgs.text("flash-draft-saved", &[("id", a.id.to_string())]),
        ),
        Err(e) if e.kind != app::Kind::Internal && e.kind != app::Kind::Unavailable => {
            let where_ = e.field.clone().map(|f| format!(" ({f})")).unwrap_or_default();
            upload_form(
                &s,
                &person,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some((format!("{}{where_}", s.views.error_text(&e)), e.code)),
            )
        }
        Err(e) => s.views.error_page(Some(&person), &e),
    }
}

/// The form's values from a stored application (for editing).
fn values_of(cert: &m::Certificate, request: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    let mut v = std::collections::BTreeMap::new();
    let mut put = |k: String, val: String| {
        v.insert(k, val);
    };
    put("agreement".into(), cert.agreement.code().into());
    put("importing_country".into(), cert.importing_country.to_string());
    put("reference".into(), cert.reference.clone());
    put("exporter_name".into(), cert.exporter.name.clone());
    put("exporter_id".into(), cert.exporter.id.clone().unwrap_or_default());
    put("exporter_street".into(), cert.exporter.address.street.clone().unwrap_or_default());
    put("exporter_city".into(), cert.exporter.address.city.clone().unwrap_or_default());
    put("consignee_name".into(), cert.consignee.name.clone());
    put("consignee_id".into(), cert.consignee.id.clone().unwrap_or_default());
    put("consignee_street".into(), cert.consignee.address.street.clone().unwrap_or_default());
    put("consignee_city".into(), cert.consignee.address.city.clone().unwrap_or_default());
    put("departure_date".into(), cert.transport.departure_date.to_string());
    put("transport_mode".into(), cert.transport.mode.code().to_string());
    put("vessel".into(), cert.transport.vessel.clone().unwrap_or_default());
    put("loading_port".into(), cert.transport.port_of_loading.name.clone());
    put("discharge_port".into(), cert.transport.port_of_discharge.name.clone());
    put("declaration_place".into(), cert.declaration.place.clone());
    put("declaration_date".into(), cert.declaration.date.to_string());
    put("declaration_signatory".into(), cert.declaration.signatory.clone());
    put("remarks".into(), cert.remarks.clone().unwrap_or_default());
    if let Some(fob) = cert.items.first().and_then(|i| i.fob.as_ref()) {
        put("currency".into(), fob.currency().to_string());
    }
    for (n, it) in cert.items.iter().take(ITEM_ROWS).enumerate() {
        let k = |f: &str| format!("item-{}-{f}", n + 1);
        put(k("description"), it.description.clone());
        put(k("hs"), it.hs.dotted());
        put(k("quantity"), it.quantity.value().to_string());
        put(k("unit"), it.quantity.unit().to_string());
        put(k("fob"), it.fob.as_ref().map(|f| f.amount().to_string()).unwrap_or_default());
        put(k("criterion"), it.criterion.to_string());
        put(k("packages"), it.packages.count.to_string());
        put(k("package_kind"), it.packages.kind.to_string());
        put(k("marks"), it.marks.clone());
        put(k("invoice_number"), it.invoice.number.clone());
        put(k("invoice_date"), it.invoice.date.to_string());
    }
    if let Some(mats) = request.and_then(|r| r["materials"].as_array()) {
        for (j, mat) in mats.iter().take(MATERIAL_ROWS).enumerate() {
            for key in ["name", "hs", "value", "origin", "status"] {
                if let Some(t) = mat[key].as_str() {
                    put(format!("material-{}-{key}", j + 1), t.to_owned());
                }
            }
        }
    }
    v
}

/// `GET /applications/{id}/edit`: the form, filled from the stored document.
pub async fn edit_form(State(s): State<Shared>, person: Person, Path(id): Path<i64>) -> Response {
    if let Err(r) = person.require(&s, &[Role::Exporter]) {
        return r;
    }
    let a = match applications::get(&s.app, &person.user, id).await {
        Ok(a) => a,
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let Ok((_, cert)) = originlink_formats::read(&a.document, &originlink_formats::Limits::default()) else {
        return upload_form(&s, &person, StatusCode::OK, None);
    };
    let request: Option<Value> = a.self_assessment.as_deref().and_then(|r| serde_json::from_str(r).ok());
    let assessment: Option<Value> = a.assessment.as_deref().and_then(|r| serde_json::from_str(r).ok());
    form_page(
        &s,
        &person,
        StatusCode::OK,
        Some(id),
        values_of(&cert, request.as_ref()),
        &Errors::default(),
        assessment.as_ref(),
    )
}

/// `POST /applications/{id}/edit`
pub async fn edit_posted(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    form: FormData,
) -> Response {
    if let Err(r) = auth::may_post(&s, &person, &[Role::Exporter], &form) {
        return r;
    }
    posted(&s, &person, form, Some(id)).await
}

/// The application's page after a change, with `flash` (its text id) about application `id`.
fn to_application(s: &Shared, flash: &str, id: i64) -> Done {
    Done {
        to: format!("/applications/{id}"),
        flash: s.views.messages().text(flash, &[("id", id.to_string())]),
    }
}

/// `POST /applications/{id}/submit`
pub async fn submit(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    form: FormData,
) -> Response {
    let action = async {
        Ok(to_application(&s, "flash-submitted", applications::submit(&s.app, &person.user, id).await?.id))
    };
    auth::post_action(&s, &person, &[Role::Exporter], &form, &format!("/applications/{id}"), action).await
}

/// `POST /applications/{id}/withdraw`
pub async fn withdraw(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    form: FormData,
) -> Response {
    let action = async {
        Ok(to_application(&s, "flash-withdrawn", applications::withdraw(&s.app, &person.user, id).await?.id))
    };
    auth::post_action(&s, &person, &[Role::Exporter], &form, &format!("/applications/{id}"), action).await
}

/// `POST /applications/{id}/copy`: a new draft from a rejected or withdrawn application.
pub async fn copy(State(s): State<Shared>, person: Person, Path(id): Path<i64>, form: FormData) -> Response {
    let action = async {
        Ok(to_application(&s, "flash-copied", applications::copy(&s.app, &person.user, id).await?.id))
    };
    auth::post_action(&s, &person, &[Role::Exporter], &form, &format!("/applications/{id}"), action).await
}

/// `POST /certificates/{id}/replace`: a new draft replacing an issued certificate (its
/// document to correct), which the officer then approves as the next version.
pub async fn replace(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    form: FormData,
) -> Response {
    if let Err(r) = auth::may_post(&s, &person, &[Role::Exporter], &form) {
        return r;
    }
    let c = match applications::certificate(&s.app, &person.user, id).await {
        Ok(c) => c,
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let a = match applications::get(&s.app, &person.user, c.application_id).await {
        Ok(a) => a,
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let document = match a.format.as_str() {
        "xml" => applications::Document::Xml(String::from_utf8_lossy(&a.document).into_owned()),
        _ => applications::Document::Json(serde_json::from_slice(&a.document).unwrap_or(Value::Null)),
    };
    let self_assessment = a.self_assessment.as_deref().and_then(|r| serde_json::from_str(r).ok());
    let input =
        applications::Apply { document, self_assessment, replaces: Some(c.id), back_to_back_of: None };
    match applications::apply(&s.app, &person.user, input).await {
        Ok(new) => {
            let text = s
                .views
                .messages()
                .text("flash-replacement", &[("id", new.id.to_string()), ("number", c.number.clone())]);
            redirect_with_flash(&s, &format!("/applications/{}/edit", new.id), &text)
        }
        Err(e)
            if e.kind == app::Kind::Conflict
                || e.kind == app::Kind::Invalid
                || e.kind == app::Kind::Unprocessable =>
        {
            redirect_with_flash(&s, &format!("/certificates/{id}"), &s.views.error_text(&e))
        }
        Err(e) => s.views.error_page(Some(&person), &e),
    }
}
