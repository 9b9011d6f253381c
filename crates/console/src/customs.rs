//! The importing customs officer's pages (issue 16, first part): a received certificate read
//! as its boxes, with the verification verdict in words and what is left of each item; the
//! declarations, highest risk first; one declaration with each line's decision and every
//! reason in words; lodging a declaration by pasting or uploading its JSON.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::context;
use originlink_node::app::{self, applications, customs};
use originlink_store::Role;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Shared;
use crate::auth::{self, Person, page_ctx, redirect_with_flash, shown};
use crate::forms::{Errors, FormData};

/// Who these pages are for.
const CUSTOMS: &[Role] = &[Role::CustomsOfficer];

/// One item of a received certificate with what is left of it.
#[derive(Debug, Serialize)]
struct Remaining {
    number: u32,
    total: String,
    remaining: String,
    /// The item's unit (UN/ECE Rec 20), from the certificate.
    unit: String,
    /// `utilized-partially` or `utilized-fully` once a declaration used it.
    used: Option<&'static str>,
}

/// `GET /received/{id}`: the certificate as received.
pub async fn received(State(s): State<Shared>, person: Person, Path(id): Path<i64>) -> Response {
    if let Err(r) = person.require(&s, CUSTOMS) {
        return r;
    }
    let d = match applications::received_detail(&s.app, id).await {
        Ok(d) => d,
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let (boxes, items) = d.certificate.as_ref().map(crate::documents::boxes).unwrap_or_default();
    let remaining: Vec<Remaining> = d
        .remaining
        .iter()
        .map(|(n, (total, left))| Remaining {
            unit: d
                .certificate
                .as_ref()
                .and_then(|c| c.items.iter().find(|i| i.number == *n))
                .map(|i| i.quantity.unit().as_str().to_owned())
                .unwrap_or_default(),
            number: *n,
            total: total.clone(),
            remaining: left.clone(),
            used: match (total != left, left.parse::<originlink_model::Decimal>().is_ok_and(|d| d.is_zero()))
            {
                (false, _) => None,
                (true, true) => Some("utilized-fully"),
                (true, false) => Some("utilized-partially"),
            },
        })
        .collect();
    let title = s.views.messages().text("received-one-title", &[("number", d.record.number.clone())]);
    let ctx = context! {
        page => page_ctx(Some(&person), &title, "/certificates"),
        r => &d.record,
        boxes => boxes,
        items => items,
        remaining => remaining,
        checked_now => context! { verdict => d.checked_now.0, code => d.checked_now.1, detail => d.checked_now.2 },
    };
    shown(&s, &person, s.views.render("received.html", ctx))
}

/// `?number=&importer=&outcome=&before=` of the declarations page.
#[derive(Debug, Default, Deserialize)]
pub struct DeclQuery {
    #[serde(default)]
    number: Option<String>,
    #[serde(default)]
    importer: Option<String>,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    before: Option<i64>,
}

/// `GET /declarations`: highest risk first, with filters.
pub async fn declarations(State(s): State<Shared>, person: Person, Query(q): Query<DeclQuery>) -> Response {
    if let Err(r) = person.require(&s, CUSTOMS) {
        return r;
    }
    let empty = |v: &Option<String>| v.clone().filter(|t| !t.trim().is_empty());
    let query = customs::DeclarationQuery {
        number: empty(&q.number),
        importer: empty(&q.importer),
        outcome: empty(&q.outcome),
        ..Default::default()
    };
    let listed = match app::page(&person.user, Some(crate::exporter::PAGE_SIZE), q.before) {
        Ok(page) => customs::declarations(&s.app, &page, &query).await,
        Err(e) => Err(e),
    };
    let (rows, error) = match listed {
        Ok(rows) => (rows, None),
        Err(e) if e.kind == app::Kind::Invalid => (vec![], Some(s.views.error_text(&e))),
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|d| {
            let outcomes: Vec<String> = d.lines.iter().map(|l| l.outcome.clone()).collect();
            let risk: Value = serde_json::from_str(&d.risk).unwrap_or(Value::Null);
            let risk_codes: Vec<&str> =
                risk["reasons"].as_array().into_iter().flatten().filter_map(|r| r["code"].as_str()).collect();
            serde_json::json!({
                "id": d.id, "number": d.number, "importer": d.importer, "date": d.declaration_date,
                "risk": d.risk_score, "risk_codes": risk_codes, "lines": d.lines.len(), "outcomes": outcomes,
            })
        })
        .collect();
    let title = s.views.messages().text("declarations-title", &[]);
    let ctx = context! {
        page => page_ctx(Some(&person), &title, "/declarations"),
        rows => rows,
        q => context! { number => q.number, importer => q.importer, outcome => q.outcome },
        error => error,
        outcomes => ["granted", "denied", "pending", "not-claimed"],
    };
    shown(&s, &person, s.views.render("declarations.html", ctx))
}

/// One line as the officer reads it: the decision, each reason in words, the duty.
#[derive(Debug, Serialize)]
struct Line {
    line_no: i32,
    certificate: Option<String>,
    received_id: Option<i64>,
    outcome: String,
    reasons: Vec<(String, String, String)>,
    item: Option<i32>,
    consumed: Option<String>,
    duty: String,
}

/// `GET /declarations/{id}`: the declaration, each line's decision and its reasons in words.
pub async fn declaration(State(s): State<Shared>, person: Person, Path(id): Path<i64>) -> Response {
    if let Err(r) = person.require(&s, CUSTOMS) {
        return r;
    }
    let d = match customs::declaration(&s.app, id).await {
        Ok(d) => d,
        Err(e) => return s.views.error_page(Some(&person), &e),
    };
    let m = s.views.messages();
    let mut lines = Vec::with_capacity(d.lines.len());
    for l in &d.lines {
        let reasons: Vec<Value> = serde_json::from_str(&l.reasons).unwrap_or_default();
        let reasons = reasons
            .iter()
            .map(|r| {
                let code = r["code"].as_str().unwrap_or_default().to_owned();
                let words = m.text(&format!("reason-{code}"), &[]);
                (code, words, r["detail"].as_str().unwrap_or_default().to_owned())
            })
            .collect();
        let received_id = match (&l.eco_country, &l.eco_number) {
            (Some(c), Some(n)) => {
                applications::received_by_number(&s.app, c, n).await.ok().flatten().map(|r| r.id)
            }
            _ => None,
        };
        // What the importer pays, with the MFN duty beside it; or why it cannot be computed.
        let duty = customs::applicable_duty(l);
        let amount = |m: &Value| match (m["amount"].as_str(), m["currency"].as_str()) {
            (Some(a), Some(c)) => Some(crate::documents::money(a, c)),
            _ => None,
        };
        let duty = match (amount(&duty["due"]), amount(&duty["mfn"])) {
            (Some(due), Some(mfn)) => m.text("duty-due", &[("due", due), ("mfn", mfn)]),
            _ => duty["message"]
                .as_str()
                .map(|e| m.text("duty-unknown", &[("why", e.to_owned())]))
                .unwrap_or_default(),
        };
        lines.push(Line {
            line_no: l.line_no,
            certificate: l
                .eco_number
                .as_ref()
                .map(|n| format!("{} {n}", l.eco_country.clone().unwrap_or_default())),
            received_id,
            outcome: l.outcome.clone(),
            reasons,
            item: l.matched_item,
            consumed: l.consumed.clone(),
            duty,
        });
    }
    let risk: Value = serde_json::from_str(&d.risk).unwrap_or(Value::Null);
    let title = m.text("declaration-title", &[("number", d.number.clone())]);
    let ctx = context! {
        page => page_ctx(Some(&person), &title, "/declarations"),
        d => context! { number => d.number, importer => d.importer, date => d.declaration_date, risk_score => d.risk_score },
        id => d.id,
        risk => risk,
        lines => lines,
    };
    shown(&s, &person, s.views.render("declaration.html", ctx))
}

/// `?from=` of the new-declaration page: a received certificate whose items fill the lines.
#[derive(Debug, Default, Deserialize)]
pub struct FromCertificate {
    #[serde(default)]
    from: Option<i64>,
}

/// Most lines the form shows (a longer declaration is uploaded as JSON).
const MAX_FORM_LINES: usize = 50;

/// `GET /declarations/new`: the declaration as a form, its lines filled from a received
/// certificate (`?from=`: one line per item for what is left of it, the consignee as
/// importer, today's date); or its JSON, pasted or uploaded.
pub async fn new_declaration(
    State(s): State<Shared>,
    person: Person,
    Query(q): Query<FromCertificate>,
) -> Response {
    let mut values = BTreeMap::new();
    values.insert("declaration_date".to_owned(), s.app.clock.now().date_naive().to_string());
    let mut lines = 1;
    if let Some(id) = q.from {
        match applications::received_detail(&s.app, id).await {
            Ok(d) => {
                if let Some(c) = d.certificate.as_ref() {
                    lines = fill_from(&mut values, c, &d.remaining);
                }
            }
            Err(e) => return s.views.error_page(Some(&person), &e),
        }
    }
    declaration_form(
        &s,
        &person,
        StatusCode::OK,
        &Typed { values, lines, json: String::new() },
        &Errors::default(),
    )
}

/// What the declaration form shows: the values typed (or filled in), how many lines, the
/// JSON pasted.
struct Typed {
    values: BTreeMap<String, String>,
    lines: usize,
    json: String,
}

/// Fills the form from a received certificate: each item a line for what is left of it; the
/// officer completes the number and checks the rest. Returns the number of lines.
fn fill_from(
    v: &mut BTreeMap<String, String>,
    c: &originlink_model::Certificate,
    remaining: &BTreeMap<u32, (String, String)>,
) -> usize {
    let number = c.number.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_default();
    v.insert("importer_name".into(), c.consignee.name.clone());
    v.insert("importer_id".into(), c.consignee.id.clone().unwrap_or_default());
    for (i, it) in c.items.iter().enumerate().take(MAX_FORM_LINES) {
        let left = remaining
            .get(&it.number)
            .map(|(_, l)| l.clone())
            .unwrap_or_else(|| it.quantity.value().to_string());
        let mut set = |k: &str, val: String| {
            v.insert(format!("l{i}_{k}"), val);
        };
        set("hs_code", it.hs.dotted());
        set("description", it.description.clone());
        set("quantity", left);
        set("unit", it.quantity.unit().as_str().to_owned());
        if let Some(m) = &it.fob {
            set("value", m.amount_text());
            set("currency", m.currency().as_str().to_owned());
        }
        set("origin", it.origin_country.as_str().to_owned());
        set("agreement", c.agreement.code().to_owned());
        set("eco_country", c.exporting_country.as_str().to_owned());
        set("eco_number", number.clone());
        set("invoice", it.invoice.number.clone());
    }
    c.items.len().clamp(1, MAX_FORM_LINES)
}

/// The declaration's JSON from the form (the use case reads and checks it).
fn declaration_json(s: &Shared, v: &BTreeMap<String, String>, lines: usize) -> Value {
    let get = |k: &str| v.get(k).map(|x| x.trim().to_owned()).unwrap_or_default();
    let opt = |k: &str| Some(get(k)).filter(|x| !x.is_empty());
    let lines: Vec<Value> = (0..lines)
        .map(|i| {
            let f = |k: &str| get(&format!("l{i}_{k}"));
            let eco = if f("eco_number").is_empty() {
                serde_json::json!("PENDING")
            } else {
                serde_json::json!({ "issuing_country": f("eco_country"), "number": f("eco_number") })
            };
            serde_json::json!({
                "line_no": i + 1,
                "hs_code": f("hs_code"),
                "description": f("description"),
                "quantity": f("quantity"),
                "unit": f("unit"),
                "customs_value": { "amount": f("value"), "currency": f("currency") },
                "origin_country": f("origin"),
                "claimed_agreement": opt(&format!("l{i}_agreement")),
                "eco": eco,
                "invoice_number": opt(&format!("l{i}_invoice")),
            })
        })
        .collect();
    serde_json::json!({
        "number": get("number"),
        "importer": { "name": get("importer_name"), "id": opt("importer_id") },
        "importing_country": s.app.issuer.authority.country,
        "declaration_date": get("declaration_date"),
        "lines": lines,
    })
}

/// The form field a declaration problem's JSON pointer names (`/lines/0/eco/number` →
/// `l0_eco_number`); `None` for the declaration as a whole.
fn field_of(pointer: &str) -> Option<String> {
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let line_field = |f: &str| -> Option<&'static str> {
        Some(match f {
            "hs_code" => "hs_code",
            "description" => "description",
            "quantity" => "quantity",
            "unit" => "unit",
            "customs_value" => "value",
            "origin_country" => "origin",
            "claimed_agreement" => "agreement",
            "eco" => "eco_number",
            "invoice_number" => "invoice",
            _ => return None,
        })
    };
    match parts.as_slice() {
        ["number"] => Some("number".into()),
        ["importer", "id"] => Some("importer_id".into()),
        ["importer", ..] => Some("importer_name".into()),
        ["declaration_date"] => Some("declaration_date".into()),
        ["lines", i, "customs_value", "currency"] => Some(format!("l{i}_currency")),
        ["lines", i, "eco", "issuing_country"] => Some(format!("l{i}_eco_country")),
        ["lines", i, f, ..] => line_field(f).map(|f| format!("l{i}_{f}")),
        _ => None,
    }
}

/// The words of a form field's label, with its line: "Line 2, Quantity".
fn label_of(s: &Shared, field: &str) -> String {
    let m = s.views.messages();
    let id = |f: &str| match f {
        "number" => "field-declaration-number",
        "declaration_date" => "field-declaration-date",
        "importer_name" => "field-importer-name",
        "importer_id" => "field-importer-id",
        "hs_code" => "field-hs",
        "description" => "field-description",
        "quantity" => "field-quantity",
        "unit" => "field-unit",
        "value" => "field-customs-value",
        "currency" => "field-currency",
        "origin" => "field-origin-country",
        "agreement" => "field-claimed-agreement",
        "eco_country" => "field-eco-country",
        "eco_number" => "field-eco-number",
        _ => "field-invoice-number",
    };
    match field.strip_prefix('l').and_then(|r| r.split_once('_')) {
        Some((i, f)) if i.parse::<usize>().is_ok() => {
            let n = i.parse::<usize>().unwrap_or_default() + 1;
            format!("{}, {}", m.text("declaration-line", &[("n", n.to_string())]), m.text(id(f), &[]))
        }
        _ => m.text(id(field), &[]),
    }
}

fn declaration_form(
    s: &Shared,
    person: &Person,
    status: StatusCode,
    typed: &Typed,
    errors: &Errors,
) -> Response {
    if let Err(r) = person.require(s, CUSTOMS) {
        return r;
    }
    let title = s.views.messages().text("new-declaration-title", &[]);
    let ctx = context! {
        page => page_ctx(Some(person), &title, "/declarations/new"),
        v => typed.values,
        lines => (0..typed.lines).collect::<Vec<_>>(),
        count => typed.lines,
        max_lines => MAX_FORM_LINES,
        text => typed.json,
        errors => errors.0.clone(),
        field_errors => errors.by_field(),
        agreements => ["ATIGA", "RCEP"],
    };
    s.views.render_status(status, "declaration_form.html", ctx)
}

/// `POST /declarations/new/form`: the declaration typed in the form. `Add a line` shows the
/// form again with one more line; lodging shows every problem at its field, or lodges it
/// and decides every line at once.
pub async fn lodge_form(State(s): State<Shared>, person: Person, form: FormData) -> Response {
    if let Err(r) = auth::may_post(&s, &person, CUSTOMS, &form) {
        return r;
    }
    let values: BTreeMap<String, String> = form
        .values()
        .into_iter()
        .filter(|(k, _)| !matches!(k.as_str(), "csrf" | "action" | "lines"))
        .collect();
    let lines = form.get("lines").and_then(|n| n.parse().ok()).unwrap_or(1usize).clamp(1, MAX_FORM_LINES);
    if form.get("action") == Some("add") {
        let typed = Typed { values, lines: (lines + 1).min(MAX_FORM_LINES), json: String::new() };
        return declaration_form(&s, &person, StatusCode::OK, &typed, &Errors::default());
    }
    let json = declaration_json(&s, &values, lines).to_string();
    let typed = Typed { values, lines, json: String::new() };
    let problems = customs::declaration_problems(json.as_bytes());
    let mut errors = Errors::default();
    let m = s.views.messages();
    for p in &problems {
        let field = field_of(&p.path).unwrap_or_else(|| "number".into());
        errors.add(&field, format!("{}: {}", label_of(&s, &field), p.message), p.code.clone());
    }
    if !errors.is_empty() {
        return declaration_form(&s, &person, StatusCode::UNPROCESSABLE_ENTITY, &typed, &errors);
    }
    match customs::declare(&s.app, &person.user, json.as_bytes()).await {
        Ok(d) => {
            let flash = m.text("flash-declared", &[("number", d.number.clone())]);
            redirect_with_flash(&s, &format!("/declarations/{}", d.id), &flash)
        }
        Err(e) if matches!(e.kind, app::Kind::Invalid | app::Kind::Conflict | app::Kind::Unprocessable) => {
            let field = e.field.as_deref().and_then(field_of).unwrap_or_else(|| "number".into());
            errors.add(field, s.views.error_text(&e), e.code);
            declaration_form(&s, &person, StatusCode::UNPROCESSABLE_ENTITY, &typed, &errors)
        }
        Err(e) => s.views.error_page(Some(&person), &e),
    }
}

/// `POST /declarations/new` (multipart): the pasted text, or an uploaded file when one is
/// chosen; lodged, and every line decided at once.
pub async fn lodge(State(s): State<Shared>, person: Person, multipart: axum::extract::Multipart) -> Response {
    let parts = crate::forms::multipart_parts(multipart).await;
    if let Err(r) = auth::may_post(&s, &person, CUSTOMS, &crate::forms::csrf_of(&parts)) {
        return r;
    }
    let file = parts.get("file").filter(|f| !f.is_empty());
    let pasted =
        parts.get("declaration").map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
    let owned = file.map(|f| String::from_utf8_lossy(f).into_owned()).unwrap_or(pasted);
    let text = owned.as_str();
    match customs::declare(&s.app, &person.user, text.as_bytes()).await {
        Ok(d) => {
            let flash = s.views.messages().text("flash-declared", &[("number", d.number.clone())]);
            redirect_with_flash(&s, &format!("/declarations/{}", d.id), &flash)
        }
        Err(e) if matches!(e.kind, app::Kind::Invalid | app::Kind::Conflict | app::Kind::Unprocessable) => {
            let where_ =
                e.field.clone().filter(|f| !f.is_empty()).map(|f| format!(" ({f})")).unwrap_or_default();
            // The words, then what exactly is wrong (the reader's own message) and where.
            let said = s.views.error_text(&e);
            let words = if said == e.message {
                format!("{said}{where_}")
            } else {
                format!("{said} {}{where_}", e.message)
            };
            let mut errors = Errors::default();
            errors.add("declaration", words, e.code);
            let typed = Typed { values: BTreeMap::new(), lines: 1, json: text.to_owned() };
            declaration_form(&s, &person, StatusCode::UNPROCESSABLE_ENTITY, &typed, &errors)
        }
        Err(e) => s.views.error_page(Some(&person), &e),
    }
}

/// `POST /declarations/{id}/lines/{line}/decision`: re-decide a line now, or override its
/// outcome, with a reason (audited; the status goes back to the issuing country).
pub async fn decide(
    State(s): State<Shared>,
    person: Person,
    Path((id, line)): Path<(i64, i32)>,
    form: FormData,
) -> Response {
    let back = format!("/declarations/{id}");
    let action = async {
        let (action, outcome) = match form.get("action").unwrap_or_default() {
            "override-granted" => (customs::OfficerAction::Override, Some(customs::OverrideOutcome::Granted)),
            "override-denied" => (customs::OfficerAction::Override, Some(customs::OverrideOutcome::Denied)),
            _ => (customs::OfficerAction::Redecide, None),
        };
        let reason = form.get("reason").unwrap_or_default().to_owned();
        let d = customs::decide_line(
            &s.app,
            &person.user,
            id,
            line,
            customs::OfficerDecision { action, outcome, reason },
        )
        .await?;
        let flash = s
            .views
            .messages()
            .text("flash-line-decided", &[("line", line.to_string()), ("number", d.number)]);
        Ok(auth::Done { to: back.clone(), flash })
    };
    auth::post_action(&s, &person, CUSTOMS, &form, &back, action).await
}

/// `POST /received/{id}/verify`: asks the issuing country about this certificate; the
/// questions one per line.
pub async fn raise_verification(
    State(s): State<Shared>,
    person: Person,
    Path(id): Path<i64>,
    form: FormData,
) -> Response {
    let back = format!("/received/{id}");
    let action = async {
        let r = applications::received(&s.app, id).await?;
        let questions =
            form.get("questions").unwrap_or_default().lines().map(str::trim).filter(|q| !q.is_empty());
        let raise = app::verifications::Raise {
            issuing_country: r.issuing_country.clone(),
            number: r.number.clone(),
            questions: questions.map(str::to_owned).collect(),
            deadline_days: form.text("deadline_days").and_then(|d| d.parse().ok()),
        };
        let v = app::verifications::raise(&s.app, &person.user, raise).await?;
        let flash = s.views.messages().text("flash-verification-raised", &[("number", v.number)]);
        Ok(auth::Done { to: "/verifications".into(), flash })
    };
    auth::post_action(&s, &person, CUSTOMS, &form, &back, action).await
}

/// `?from=&to=` of the revenue page (`YYYY-MM-DD`, both included).
#[derive(Debug, Default, Deserialize)]
pub struct Period {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    /// `month` (default), `agreement` or `partner`.
    #[serde(default)]
    by: Option<String>,
}

/// The period asked for: this month so far by default; `to` is included.
fn period(s: &Shared, p: &Period) -> app::Result<(chrono::NaiveDate, chrono::NaiveDate)> {
    let today = s.app.clock.now().date_naive();
    let first = chrono::Datelike::with_day0(&today, 0).unwrap_or(today);
    let from = app::query_date(p.from.as_deref().filter(|t| !t.is_empty()), "from")?.unwrap_or(first);
    let to = app::query_date(p.to.as_deref().filter(|t| !t.is_empty()), "to")?.unwrap_or(today);
    Ok((from, to))
}

/// One row of figures (a currency, a month, an agreement or a partner, in one currency), and
/// its bars on the chart.
#[derive(Serialize)]
struct FigureRow {
    /// What the row is of: a currency, a month, an agreement or a partner.
    key: String,
    currency: String,
    lines: u64,
    mfn: String,
    collected: String,
    granted: String,
    mfn_width: u32,
    collected_width: u32,
}

/// Rows of figures, each bar's width a share of the biggest MFN duty in its currency
/// (amounts in different currencies share no scale).
fn figure_rows(
    rows: Vec<(String, originlink_model::Currency, originlink_customs::Totals)>,
) -> Vec<FigureRow> {
    use originlink_model::Decimal;
    let mut biggest: BTreeMap<originlink_model::Currency, Decimal> = BTreeMap::new();
    for (_, c, t) in &rows {
        let b = biggest.entry(*c).or_default();
        *b = (*b).max(t.mfn_total);
    }
    let width = |c: &originlink_model::Currency, v: Decimal| -> u32 {
        let b = biggest.get(c).copied().unwrap_or_default();
        if b.is_zero() {
            return 0;
        }
        (v / b * Decimal::new(300, 0)).round().to_string().parse().unwrap_or(0)
    };
    rows.into_iter()
        .map(|(key, c, t)| {
            let (cur, money) =
                (c.to_string(), |v: Decimal| crate::documents::money(&v.to_string(), &c.to_string()));
            FigureRow {
                key,
                currency: cur,
                lines: t.lines,
                mfn: money(t.mfn_total),
                collected: money(t.duty_collected_total),
                granted: money(t.preference_granted_total),
                mfn_width: width(&c, t.mfn_total),
                collected_width: width(&c, t.duty_collected_total),
            }
        })
        .collect()
}

/// The report's groups summed by month, agreement or partner (and currency), in that order.
fn grouped_by(
    report: &customs::RevenueReport,
    by: &str,
    none: &str,
) -> Vec<(String, originlink_model::Currency, originlink_customs::Totals)> {
    let mut sums: BTreeMap<(String, originlink_model::Currency), originlink_customs::Totals> =
        BTreeMap::new();
    for g in &report.groups {
        let key = match by {
            "agreement" => g.agreement.clone().unwrap_or_else(|| none.to_owned()),
            "partner" => g.partner.clone().unwrap_or_else(|| none.to_owned()),
            _ => g.month.clone(),
        };
        let t = sums.entry((key, g.currency)).or_default();
        // The use case has summed these same figures per currency without overflowing.
        t.mfn_total = t.mfn_total.saturating_add(g.totals.mfn_total);
        t.duty_collected_total = t.duty_collected_total.saturating_add(g.totals.duty_collected_total);
        t.preference_granted_total =
            t.preference_granted_total.saturating_add(g.totals.preference_granted_total);
        t.lines += g.totals.lines;
    }
    sums.into_iter().map(|((k, c), t)| (k, c, t)).collect()
}

/// The revenue report of the period asked for, for a customs officer; `Err` is the page
/// to answer instead.
async fn report(
    s: &Shared,
    person: &Person,
    p: &Period,
) -> Result<(chrono::NaiveDate, chrono::NaiveDate, customs::RevenueReport), Response> {
    person.require(s, CUSTOMS)?;
    let (from, to) = period(s, p).map_err(|e| s.views.error_page(Some(person), &e))?;
    // `to` is included; the use case takes the day after.
    let report = customs::revenue(&s.app, from, to.succ_opt().unwrap_or(to)).await;
    report.map(|r| (from, to, r)).map_err(|e| s.views.error_page(Some(person), &e))
}

/// `GET /revenue`: preference granted against MFN duty over a period: totals per currency,
/// then by month, agreement or partner as a chart (SVG, drawn here) and a table, with what
/// could not be counted listed.
pub async fn revenue(State(s): State<Shared>, person: Person, Query(p): Query<Period>) -> Response {
    let (from, to, report) = match report(&s, &person, &p).await {
        Ok(x) => x,
        Err(page) => return page,
    };
    let by = match p.by.as_deref() {
        Some("agreement") => "agreement",
        Some("partner") => "partner",
        _ => "month",
    };
    let totals = report.revenue.per_currency.iter().map(|(c, t)| (c.to_string(), *c, t.clone())).collect();
    let none = s.views.messages().text(&format!("revenue-no-{by}"), &[]);
    let title = s.views.messages().text("revenue-title", &[]);
    let ctx = context! {
        page => page_ctx(Some(&person), &title, "/revenue"),
        from => from.to_string(),
        to => to.to_string(),
        by => by,
        totals => figure_rows(totals),
        rows => figure_rows(grouped_by(&report, by, &none)),
        complete => report.complete,
        undecided => report.undecided.len(),
        uncomputed => report.uncomputed.len(),
        more => report.more_unsummed,
    };
    shown(&s, &person, s.views.render("revenue.html", ctx))
}

/// `GET /revenue.csv`: the figures of the period, one line per month, agreement, partner and
/// currency.
pub async fn revenue_csv(State(s): State<Shared>, person: Person, Query(p): Query<Period>) -> Response {
    use axum::response::IntoResponse;
    let (from, to, report) = match report(&s, &person, &p).await {
        Ok(x) => x,
        Err(page) => return page,
    };
    let mut csv = String::from(
        "month,agreement,partner,currency,lines,mfn_total,duty_collected_total,preference_granted_total\n",
    );
    for g in &report.groups {
        let t = &g.totals;
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            g.month,
            g.agreement.as_deref().unwrap_or(""),
            g.partner.as_deref().unwrap_or(""),
            g.currency,
            t.lines,
            t.mfn_total,
            t.duty_collected_total,
            t.preference_granted_total
        ));
    }
    let disposition = format!("attachment; filename=\"revenue-{from}-{to}.csv\"");
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response()
}
