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
use crate::forms::FormData;

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

/// `GET /declarations/new`: paste the declaration's JSON, or start from a received
/// certificate (`?from=`): one line per item with what is left of it, the consignee as
/// importer, today's date.
pub async fn new_declaration(
    State(s): State<Shared>,
    person: Person,
    Query(q): Query<FromCertificate>,
) -> Response {
    let draft = match q.from {
        Some(id) => match applications::received_detail(&s.app, id).await {
            Ok(d) => d.certificate.as_ref().map(|c| draft_from(&s, c, &d.remaining)).unwrap_or_default(),
            Err(e) => return s.views.error_page(Some(&person), &e),
        },
        None => String::new(),
    };
    declaration_form(&s, &person, StatusCode::OK, &draft, None)
}

/// A declaration's JSON filled from a received certificate: each item as a line for what is
/// left of it; the officer completes the number and checks the rest.
fn draft_from(
    s: &Shared,
    c: &originlink_model::Certificate,
    remaining: &BTreeMap<u32, (String, String)>,
) -> String {
    let number = c.number.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_default();
    let lines: Vec<Value> = c
        .items
        .iter()
        .enumerate()
        .map(|(i, it)| {
            let left = remaining
                .get(&it.number)
                .map(|(_, l)| l.clone())
                .unwrap_or_else(|| it.quantity.value().to_string());
            let value = it.fob.as_ref().map(|m| (m.amount_text(), m.currency().as_str().to_owned()));
            serde_json::json!({
                "line_no": i + 1,
                "hs_code": it.hs.dotted(),
                "description": it.description,
                "quantity": left,
                "unit": it.quantity.unit().as_str(),
                "customs_value": value.map(|(a, c)| serde_json::json!({ "amount": a, "currency": c })),
                "origin_country": it.origin_country.as_str(),
                "claimed_agreement": c.agreement.code(),
                "eco": { "issuing_country": c.exporting_country.as_str(), "number": number },
                "invoice_number": it.invoice.number,
            })
        })
        .collect();
    let draft = serde_json::json!({
        "number": "",
        "importer": { "name": c.consignee.name, "id": c.consignee.id },
        "importing_country": c.importing_country.as_str(),
        "declaration_date": s.app.clock.now().date_naive().to_string(),
        "lines": lines,
    });
    serde_json::to_string_pretty(&draft).unwrap_or_default()
}

fn declaration_form(
    s: &Shared,
    person: &Person,
    status: StatusCode,
    text: &str,
    error: Option<(String, &str)>,
) -> Response {
    if let Err(r) = person.require(s, CUSTOMS) {
        return r;
    }
    let title = s.views.messages().text("new-declaration-title", &[]);
    let ctx = context! {
        page => page_ctx(Some(person), &title, "/declarations/new"),
        text => text,
        error => error.as_ref().map(|(t, c)| context! { text => t, code => c }),
    };
    s.views.render_status(status, "declaration_form.html", ctx)
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
            declaration_form(&s, &person, StatusCode::UNPROCESSABLE_ENTITY, text, Some((words, e.code)))
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
