//! Importing customs on the node: declarations decided line by line against received
//! certificates (the rules are `originlink_customs`), the utilization ledger (atomic in the
//! store), duty and revenue, verification requests through the exchange, and risk scoring.
//! The status of each decided line goes back to the issuing country as a `status.update`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use originlink_customs::{
    CertificateFacts, Declaration, EcoRef, Ledger, LineFacts, Outcome, RiskHistory, VerificationStatus,
};
use originlink_exchange::body::{BusinessStatus, Reason as WireReason, StatusBody, Utilized};
use originlink_exchange::{CertRef, MessageType};
use originlink_model::{CountryCode, agreement::PartialUse};
use originlink_store::{
    Claim, Ctx, DecisionMessagesFn, LineDecision as StoredDecision, LineOutcome, NewDeclaration, NewLine,
    NewVerification, ReceivedStatus, Role,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Auth;

use crate::api::{ApiResult, ListQuery, ctx, json_body, page, path_id, require};

fn country(s: &str) -> Option<CountryCode> {
    CountryCode::parse(s).ok()
}

/// What the decision needs about one received certificate, from the store.
struct Loaded {
    facts: CertificateFacts,
    version: i64,
}

async fn load_facts(state: &AppState, issuing: &str, number: &str) -> ApiResult<Option<Loaded>> {
    let versions = state.store.received_by_ref(issuing, number).await?;
    let Some(rec) = versions.into_iter().max_by_key(|r| r.version) else { return Ok(None) };
    let limits = originlink_formats::Limits::default();
    let cert = match originlink_formats::read(&rec.document, &limits) {
        Ok((_, cert)) => cert,
        // Stored as it arrived, but it does not read (its message was quarantined): nothing
        // can be decided on it, and the request that names it is answered so.
        Err(problems) => {
            let first = problems.first().map(|p| format!(": {} {}", p.code, p.message)).unwrap_or_default();
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "CERTIFICATE_NOT_READABLE",
                format!(
                    "certificate {issuing} {number} v{} was stored as received but cannot be read{first}",
                    rec.version
                ),
            ));
        }
    };
    let status = match rec.status {
        ReceivedStatus::Valid => VerificationStatus::Valid,
        // "Cannot verify" (the trust list was missing or outdated on arrival) says nothing
        // against the certificate: the line waits rather than being denied.
        ReceivedStatus::Invalid if rec.verdict.as_deref().is_some_and(|v| v.starts_with("TRUST_LIST_")) => {
            VerificationStatus::CannotVerify { reason: rec.verdict.clone().unwrap_or_default() }
        }
        ReceivedStatus::Invalid => {
            VerificationStatus::Invalid { reason: rec.verdict.clone().unwrap_or_else(|| "INVALID".into()) }
        }
        ReceivedStatus::Revoked => VerificationStatus::Revoked,
        ReceivedStatus::Superseded => VerificationStatus::Superseded,
    };
    let received_at = DateTime::parse_from_rfc3339(&rec.received_at)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|_| Utc::now());
    let uses = state.store.utilizations(issuing, number).await?;
    let ledger = Ledger::from_uses(
        &cert,
        uses.iter().map(|u| (u.declaration.as_str(), u.item as u32, u.quantity.parse().unwrap_or_default())),
    );
    let denied = state.store.list_verifications(Some("outgoing"), 10_000).await?.iter().any(|v| {
        v.issuing_country == issuing && v.number == number && v.outcome.as_deref() == Some("denied")
    });
    let mut facts = CertificateFacts::new(cert, received_at).with_status(status).with_ledger(ledger);
    facts.verification_denied = denied;
    Ok(Some(Loaded { facts, version: rec.version }))
}

/// Decides `lines` (all when `None`) of a stored declaration, stores the decisions (the ledger
/// is updated atomically), scores the risk and sends the statuses back. `matched` gives the
/// certificate a `PENDING` line was matched to.
pub(crate) async fn decide(
    state: &AppState,
    actor: &Ctx,
    id: i64,
    decl: &Declaration,
    only: Option<&[u32]>,
    matched: &BTreeMap<u32, (String, String)>,
) -> ApiResult<()> {
    let mut loaded: BTreeMap<(String, String), Option<Loaded>> = BTreeMap::new();
    let key_of = |line: &originlink_customs::Line| match &line.eco {
        EcoRef::Issued { issuing_country, number } => {
            Some((issuing_country.as_str().to_owned(), number.as_str().to_owned()))
        }
        EcoRef::Pending => matched.get(&line.line_no).cloned(),
    };
    for line in &decl.lines {
        if let Some(k) = key_of(line).filter(|k| !loaded.contains_key(k)) {
            let l = load_facts(state, &k.0, &k.1).await?;
            loaded.insert(k, l);
        }
    }
    let tariff = originlink_customs::Tariff::builtin();
    let policies = &state.customs.policies;
    let mut decisions = Vec::new();
    // Per decided line with a certificate: where its status goes back to.
    let mut sent: BTreeMap<i32, Destination> = BTreeMap::new();
    for line in &decl.lines {
        if only.is_some_and(|o| !o.contains(&line.line_no)) {
            continue;
        }
        let key = key_of(line);
        let facts = key.as_ref().and_then(|k| loaded.get(k)).and_then(|l| l.as_ref());
        let d = originlink_customs::decide(line, decl, facts.map(|f| &f.facts), policies);
        let granted = d.outcome == Outcome::Granted;
        // Both figures are kept: the ledger may still refuse a granted line.
        let duty = match (
            originlink_customs::duty(decl, line, tariff, granted),
            originlink_customs::duty(decl, line, tariff, false),
        ) {
            (Ok(g), Ok(d)) => json!({"if_granted": g, "if_denied": d}),
            (Err(e), _) | (_, Err(e)) => json!({"error": e.code(), "message": e.to_string()}),
        };
        let claim = match (&d.consume, d.matched_item, facts, &key) {
            (Some(q), Some(item), Some(f), Some((c, n))) if granted => {
                let total = f
                    .facts
                    .certificate
                    .items
                    .iter()
                    .find(|i| i.number == item)
                    .map(|i| i.quantity.value())
                    .unwrap_or_default();
                let policy = policies.get(f.facts.certificate.agreement, decl.importing_country);
                Some(Claim {
                    issuing_country: c.clone(),
                    number: n.clone(),
                    item: item as i32,
                    quantity: q.value(),
                    item_total: total,
                    single_declaration: policy.partial_use == PartialUse::None,
                })
            }
            _ => None,
        };
        let outcome = match d.outcome {
            Outcome::Granted => LineOutcome::Granted,
            Outcome::Denied => LineOutcome::Denied,
            Outcome::Pending => LineOutcome::Pending,
            Outcome::NotClaimed => LineOutcome::NotClaimed,
        };
        decisions.push(StoredDecision {
            line_no: line.line_no as i32,
            outcome,
            reasons: serde_json::to_string(&d.reasons).unwrap_or_else(|_| "[]".into()),
            matched_item: d.matched_item.map(|i| i as i32),
            duty: duty.to_string(),
            claim,
        });
        if let (Some((c, n)), Some(f)) = (&key, facts) {
            let unit = line.quantity.unit().as_str().to_owned();
            sent.insert(
                d.line_no as i32,
                Destination { country: c.clone(), number: n.clone(), version: f.version, unit },
            );
        }
    }
    // The statuses back are sealed and written in the deciding transaction.
    let (exchange, declaration, at) = (state.exchange.clone(), decl.number.clone(), actor.at);
    let messages: DecisionMessagesFn = Box::new(move |stored| match exchange {
        Some(x) => status_messages(&x, &declaration, &sent, stored, at),
        None => Ok(vec![]),
    });
    state.store.decide_lines_with(actor, id, decisions, messages).await?;
    if let Some(x) = &state.exchange {
        x.wake.notify_one();
    }
    // Risk, over the whole declaration.
    let mut history = RiskHistory::default();
    for l in loaded.values().flatten() {
        let c = &l.facts.certificate;
        let n = state.store.denied_verifications(c.exporting_country.as_str()).await?;
        if n > 0 {
            history.denied_by_issuer.insert(originlink_customs::risk::issuer_key(c), n as u32);
        }
        let exporter = originlink_customs::risk::party_key(&c.exporter);
        let importer = originlink_customs::risk::importer_key(decl);
        if state.store.pair_seen(&exporter, &importer).await? {
            history.known_pairs.insert((exporter, importer));
        }
    }
    let facts: Vec<LineFacts<'_>> = decl
        .lines
        .iter()
        .map(|line| {
            let key = key_of(line);
            let f = key.as_ref().and_then(|k| loaded.get(k)).and_then(|l| l.as_ref()).map(|l| &l.facts);
            LineFacts { line, certificate: f, matched_item: None }
        })
        .collect();
    let risk = originlink_customs::score(decl, &facts, &history, &state.customs.risk);
    state
        .store
        .set_risk(actor, id, i64::from(risk.score), &serde_json::to_string(&risk).unwrap_or_default())
        .await?;
    Ok(())
}

/// Where a decided line's status goes: the certificate it used.
struct Destination {
    country: String,
    number: String,
    version: i64,
    unit: String,
}

/// The `status.update` of each decided line to the country that issued its certificate:
/// accepted, utilized (with quantities) or rejected (with the reason codes).
fn status_messages(
    x: &crate::exchange::Exchange,
    declaration: &str,
    sent: &BTreeMap<i32, Destination>,
    stored: &[(originlink_store::DeclarationLine, Option<originlink_store::Utilization>)],
    at: DateTime<Utc>,
) -> Result<Vec<originlink_store::OutMessage>, String> {
    let mut messages = Vec::new();
    for (line, util) in stored {
        let Some(dest) = sent.get(&line.line_no) else { continue };
        let Some(to) = country(&dest.country).filter(|to| *to != x.country) else { continue };
        let mut body = match line.outcome.as_str() {
            "granted" => match util {
                Some(u)
                    if u.remaining_after.parse::<rust_decimal::Decimal>().unwrap_or_default().is_zero() =>
                {
                    StatusBody::new(BusinessStatus::UtilizedFully)
                }
                Some(_) => StatusBody::new(BusinessStatus::UtilizedPartially),
                None => StatusBody::new(BusinessStatus::Accepted),
            },
            "denied" => {
                let mut b = StatusBody::new(BusinessStatus::Rejected);
                let reasons: Vec<originlink_customs::Reason> =
                    serde_json::from_str(&line.reasons).unwrap_or_default();
                b.reasons = reasons
                    .iter()
                    .map(|r| WireReason {
                        code: serde_json::to_value(r.code)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default(),
                        message: r.detail.clone(),
                    })
                    .collect();
                b
            }
            _ => continue,
        };
        body.declaration = Some(declaration.to_owned());
        if let Some(u) = util {
            body.utilized.push(Utilized {
                item: u.item as u32,
                quantity: u.quantity.clone(),
                unit: dest.unit.clone(),
                remaining: u.remaining_after.clone(),
            });
        }
        let cref = CertRef { country: to, number: dest.number.clone(), version: dest.version };
        messages.push(x.seal(
            MessageType::StatusUpdate,
            to,
            Some(cref),
            None,
            "application/json",
            body.to_json(),
            at,
        )?);
    }
    Ok(messages)
}

/// The duty figures that apply to a line given its outcome.
fn applicable_duty(l: &originlink_store::DeclarationLine) -> Value {
    let v = serde_json::from_str::<Value>(&l.duty).unwrap_or(Value::Null);
    match l.outcome.as_str() {
        "granted" => v.get("if_granted").cloned().unwrap_or(v),
        _ => v.get("if_denied").cloned().unwrap_or(v),
    }
}

fn declaration_view(d: originlink_store::Declaration) -> Value {
    let lines: Vec<Value> = d
        .lines
        .into_iter()
        .map(|l| {
            json!({
                "line_no": l.line_no,
                "eco": match (&l.eco_country, &l.eco_number) {
                    (Some(c), Some(n)) => json!({"issuing_country": c, "number": n}),
                    _ => json!("PENDING"),
                },
                "outcome": l.outcome,
                "reasons": serde_json::from_str::<Value>(&l.reasons).unwrap_or(Value::Null),
                "matched_item": l.matched_item,
                "consumed": l.consumed,
                "duty": applicable_duty(&l),
                "decided_at": l.decided_at,
            })
        })
        .collect();
    json!({
        "id": d.id, "number": d.number, "importer": d.importer, "importing_country": d.importing_country,
        "declaration_date": d.declaration_date,
        "risk": { "score": d.risk_score, "reasons": serde_json::from_str::<Value>(&d.risk).map(|r| r["reasons"].clone()).unwrap_or(Value::Null) },
        "lines": lines, "created_at": d.created_at,
    })
}

/// `POST /api/v1/declarations`
pub(crate) async fn create_declaration(
    State(state): State<AppState>,
    Auth(user): Auth,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::CustomsOfficer])?;
    let body = body.map_err(crate::extract::bytes_rejection)?;
    if crate::extract::content_type(&headers) != "application/json" {
        return Err(crate::extract::unsupported_media_type("application/json"));
    }
    let decl = Declaration::from_json(&body).map_err(|problems| {
        let first = &problems[0];
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "DECLARATION_INVALID",
            format!("{}: {} ({} problems)", first.code, first.message, problems.len()),
        )
        .field(&first.path)
    })?;
    if decl.importing_country.as_str() != state.issuer.authority.country {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "WRONG_IMPORTING_COUNTRY",
            format!("this node is customs of {}", state.issuer.authority.country),
        )
        .field("/importing_country"));
    }
    let ctx = ctx(&state, &user);
    let mut exporters = BTreeMap::new();
    for l in &decl.lines {
        if let EcoRef::Issued { issuing_country, number } = &l.eco
            && let Some(f) = load_facts(&state, issuing_country.as_str(), number.as_str()).await?
        {
            exporters.insert(l.line_no, originlink_customs::risk::party_key(&f.facts.certificate.exporter));
        }
    }
    let stored = state
        .store
        .create_declaration(
            &ctx,
            NewDeclaration {
                number: decl.number.clone(),
                importer: decl.importer.name.clone(),
                importing_country: decl.importing_country.as_str().to_owned(),
                declaration_date: decl.declaration_date,
                document: String::from_utf8_lossy(&decl.to_json_bytes()).into_owned(),
                lines: decl
                    .lines
                    .iter()
                    .map(|l| match &l.eco {
                        EcoRef::Issued { issuing_country, number } => NewLine {
                            line_no: l.line_no as i32,
                            eco_country: Some(issuing_country.as_str().to_owned()),
                            eco_number: Some(number.as_str().to_owned()),
                            exporter: exporters.get(&l.line_no).cloned(),
                        },
                        EcoRef::Pending => NewLine {
                            line_no: l.line_no as i32,
                            eco_country: None,
                            eco_number: None,
                            exporter: None,
                        },
                    })
                    .collect(),
                created_by: user.id,
            },
        )
        .await?;
    decide(&state, &ctx, stored.id, &decl, None, &BTreeMap::new()).await?;
    let d = state.store.declaration(stored.id).await?.ok_or_else(ApiError::not_found)?;
    Ok((StatusCode::CREATED, axum::Json(declaration_view(d))).into_response())
}

/// `GET /api/v1/declarations`: the officer's queue, highest risk first.
pub(crate) async fn list_declarations(
    State(state): State<AppState>,
    Auth(user): Auth,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::CustomsOfficer])?;
    let list = state.store.list_declarations(&page(&user, q)?, true).await?;
    Ok(axum::Json(list.into_iter().map(declaration_view).collect::<Vec<_>>()).into_response())
}

/// `GET /api/v1/declarations/{id}`
pub(crate) async fn get_declaration(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::CustomsOfficer])?;
    let d = state.store.declaration(path_id(id)?).await?.ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(declaration_view(d)).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct RevenueQuery {
    from: NaiveDate,
    to: NaiveDate,
}

/// `GET /api/v1/revenue?from=YYYY-MM-DD&to=YYYY-MM-DD` (to exclusive): preference granted and
/// duty collected, per currency.
pub(crate) async fn revenue(
    State(state): State<AppState>,
    Auth(user): Auth,
    q: Result<Query<RevenueQuery>, QueryRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::CustomsOfficer, Role::Admin])?;
    let Query(q) = q.map_err(|e| ApiError::invalid("INVALID_QUERY", "from", e.body_text()))?;
    let at = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or_default();
    let lines = state.store.decided_lines_between(at(q.from), at(q.to)).await?;
    // A line whose duty could not be computed (no tariff rate, no customs value) is listed,
    // never silently left out of the sums: the report says it is incomplete.
    let mut duties: Vec<originlink_customs::Duty> = Vec::with_capacity(lines.len());
    let mut uncomputed = Vec::new();
    for (declaration, l) in &lines {
        let duty = applicable_duty(l);
        match serde_json::from_value(duty.clone()) {
            Ok(d) => duties.push(d),
            Err(_) => uncomputed.push(json!({
                "declaration": declaration,
                "line_no": l.line_no,
                "outcome": l.outcome,
                "reason": duty.get("error").or_else(|| duty.get("reason")).cloned()
                    .unwrap_or_else(|| json!("the duty of this line could not be computed (no tariff rate or value)")),
            })),
        }
    }
    let rev = originlink_customs::Revenue::of(duties.iter())
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
    Ok(axum::Json(json!({
        "from": q.from, "to": q.to, "lines": duties.len(), "revenue": rev,
        "complete": uncomputed.is_empty(), "uncomputed": uncomputed,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RaiseVerification {
    issuing_country: String,
    number: String,
    questions: Vec<String>,
    deadline_days: Option<u32>,
}

fn verification_view(v: originlink_store::VerificationRequest, now: DateTime<Utc>) -> Value {
    let overdue = v.status == "open"
        && DateTime::parse_from_rfc3339(&v.deadline).map(|d| d.with_timezone(&Utc) < now).unwrap_or(false);
    json!({
        "id": v.id, "direction": v.direction, "issuing_country": v.issuing_country, "number": v.number,
        "partner": v.partner, "questions": serde_json::from_str::<Value>(&v.questions).unwrap_or(Value::Null),
        "deadline": v.deadline, "status": v.status, "overdue": overdue, "answer": v.answer,
        "outcome": v.outcome, "created_at": v.created_at, "answered_at": v.answered_at,
    })
}

/// `POST /api/v1/verifications`: importing customs asks the issuing country.
pub(crate) async fn raise_verification(
    State(state): State<AppState>,
    Auth(user): Auth,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::CustomsOfficer])?;
    let r: RaiseVerification = json_body(&headers, body)?;
    let issuing = country(&r.issuing_country)
        .ok_or_else(|| ApiError::invalid("INVALID_FIELD", "issuing_country", "a country code"))?;
    if r.questions.is_empty() || r.questions.iter().any(|q| q.trim().is_empty() || q.len() > 2000) {
        return Err(ApiError::invalid(
            "QUESTIONS_REQUIRED",
            "questions",
            "1 or more questions of 1..2000 characters",
        ));
    }
    let loaded = load_facts(&state, &r.issuing_country, &r.number).await?.ok_or_else(ApiError::not_found)?;
    let x = state.exchange.clone().ok_or_else(|| {
        ApiError::new(StatusCode::CONFLICT, "EXCHANGE_NOT_CONFIGURED", "this node has no exchange")
    })?;
    let now = state.clock.now();
    let policy = state.customs.policies.get(loaded.facts.certificate.agreement, x.country);
    let days = r.deadline_days.unwrap_or(policy.verification_deadline_days);
    if !(1..=365).contains(&days) {
        return Err(ApiError::invalid("INVALID_FIELD", "deadline_days", "1 to 365"));
    }
    let deadline = now + chrono::Duration::days(i64::from(days));
    let payload =
        json!({"questions": r.questions, "deadline": deadline.to_rfc3339()}).to_string().into_bytes();
    let cref = CertRef { country: issuing, number: r.number.clone(), version: loaded.version };
    let m = x
        .seal(MessageType::VerificationRequest, issuing, Some(cref), None, "application/json", payload, now)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "SIGNING_FAILED", e))?;
    let v = state
        .store
        .create_verification(
            &ctx(&state, &user),
            NewVerification {
                message_id: m.id.clone(),
                issuing_country: r.issuing_country.clone(),
                number: r.number.clone(),
                partner: r.issuing_country.clone(),
                questions: serde_json::to_string(&r.questions).unwrap_or_default(),
                deadline,
            },
            vec![m],
        )
        .await?;
    x.wake.notify_one();
    Ok((StatusCode::CREATED, axum::Json(verification_view(v, now))).into_response())
}

#[derive(Debug, Deserialize)]
pub(crate) struct VerificationQuery {
    direction: Option<String>,
    overdue: Option<bool>,
}

/// `GET /api/v1/verifications?direction=incoming|outgoing&overdue=true`
pub(crate) async fn list_verifications(
    State(state): State<AppState>,
    Auth(user): Auth,
    q: Result<Query<VerificationQuery>, QueryRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::CustomsOfficer, Role::IssuingOfficer])?;
    let Query(q) = q.map_err(|e| ApiError::invalid("INVALID_QUERY", "direction", e.body_text()))?;
    let now = state.clock.now();
    let list = if q.overdue == Some(true) {
        state.store.overdue_verifications(now).await?
    } else {
        state.store.list_verifications(q.direction.as_deref(), 500).await?
    };
    Ok(axum::Json(list.into_iter().map(|v| verification_view(v, now)).collect::<Vec<_>>()).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Answer {
    answer: String,
    outcome: String,
}

/// `POST /api/v1/verifications/{id}/answer`: the issuing officer answers (confirmed/denied).
pub(crate) async fn answer_verification(
    State(state): State<AppState>,
    Auth(user): Auth,
    id: Result<Path<i64>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    require(&user, &[Role::IssuingOfficer])?;
    let Path(id) = id.map_err(|_| ApiError::invalid("INVALID_PATH", "id", "an integer id"))?;
    let a: Answer = json_body(&headers, body)?;
    if !matches!(a.outcome.as_str(), "confirmed" | "denied") {
        return Err(ApiError::invalid("INVALID_FIELD", "outcome", "confirmed or denied"));
    }
    if a.answer.trim().is_empty() || a.answer.len() > 10_000 {
        return Err(ApiError::invalid("ANSWER_REQUIRED", "answer", "1 to 10000 characters"));
    }
    let v = state.store.verification(id).await?.ok_or_else(ApiError::not_found)?;
    if v.direction != "incoming" {
        return Err(ApiError::not_found());
    }
    let x = state.exchange.clone().ok_or_else(|| {
        ApiError::new(StatusCode::CONFLICT, "EXCHANGE_NOT_CONFIGURED", "this node has no exchange")
    })?;
    let now = state.clock.now();
    let to = country(&v.partner).ok_or_else(ApiError::not_found)?;
    let cref = CertRef { country: x.country, number: v.number.clone(), version: 1 };
    let payload = json!({"outcome": a.outcome, "answer": a.answer}).to_string().into_bytes();
    let m = x
        .seal(
            MessageType::VerificationResponse,
            to,
            Some(cref),
            Some(v.message_id.clone()),
            "application/json",
            payload,
            now,
        )
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "SIGNING_FAILED", e))?;
    let v = state.store.answer_verification(&ctx(&state, &user), id, &a.answer, &a.outcome, vec![m]).await?;
    x.wake.notify_one();
    Ok(axum::Json(verification_view(v, now)).into_response())
}

/// After the issuing country answered one of our verification requests: a denial denies the
/// preference on every line that used the certificate.
pub(crate) async fn after_answer(state: &AppState, request_message_id: &str) {
    let found = match state.store.list_verifications(Some("outgoing"), 10_000).await {
        Ok(list) => list.into_iter().find(|v| v.message_id == request_message_id),
        Err(e) => {
            tracing::warn!(error = %e, "reading verifications failed");
            return;
        }
    };
    if let Some(v) = found.filter(|v| v.outcome.as_deref() == Some("denied")) {
        rematch(state, &v.issuing_country, &v.number).await;
    }
}

/// After a certificate arrives: decide the lines waiting for it (named, or `PENDING` lines it
/// is a candidate for). After a verification is denied: re-decide the lines that used it.
pub(crate) async fn rematch(state: &AppState, issuing: &str, number: &str) {
    if let Err(e) = rematch_inner(state, issuing, number).await {
        tracing::warn!(error = ?e, issuing, number, "re-deciding declaration lines failed");
    }
}

/// Lines of one declaration to decide again, and the certificates `PENDING` lines matched.
type Target = (Vec<u32>, BTreeMap<u32, (String, String)>);

async fn rematch_inner(state: &AppState, issuing: &str, number: &str) -> ApiResult<()> {
    let actor = Ctx::new("customs:auto", state.clock.now());
    let mut targets: BTreeMap<i64, Target> = BTreeMap::new();
    for (id, line) in state.store.pending_lines_for(issuing, number).await? {
        targets.entry(id).or_default().0.push(line as u32);
    }
    for (id, line) in state.store.lines_using(issuing, number).await? {
        targets.entry(id).or_default().0.push(line as u32);
    }
    // PENDING lines this certificate is a candidate for.
    if let Some(l) = load_facts(state, issuing, number).await? {
        for d in pending_declarations(state).await? {
            let Ok(decl) = Declaration::from_json(d.document.as_bytes()) else { continue };
            for sl in d.lines.iter().filter(|x| x.outcome == "pending" && x.eco_number.is_none()) {
                let Some(line_ref) = decl.lines.iter().find(|x| x.line_no == sl.line_no as u32) else {
                    continue;
                };
                if originlink_customs::is_candidate(line_ref, &decl, &l.facts, &state.customs.policies) {
                    // Linked first, so later events about this certificate reach the line.
                    state.store.link_pending_line(&actor, d.id, sl.line_no, issuing, number).await?;
                    targets.entry(d.id).or_default().0.push(sl.line_no as u32);
                }
            }
        }
    }
    for (id, (lines, mut matched)) in targets {
        // Every line found here concerns this certificate: a `PENDING` line among them was
        // linked to it (now or earlier), and is decided against it.
        for l in &lines {
            matched.insert(*l, (issuing.to_owned(), number.to_owned()));
        }
        let Some(d) = state.store.declaration(id).await? else { continue };
        let Ok(decl) = Declaration::from_json(d.document.as_bytes()) else { continue };
        decide(state, &actor, id, &decl, Some(&lines), &matched).await?;
    }
    Ok(())
}

/// Declarations with a `PENDING` line still undecided (newest 5,000; PENDING lines expire
/// after the agreement's allowance anyway).
async fn pending_declarations(state: &AppState) -> ApiResult<Vec<originlink_store::Declaration>> {
    let mut out = Vec::new();
    let mut page = originlink_store::Page::first(None, 500);
    for _ in 0..10 {
        let list = state.store.list_declarations(&page, false).await?;
        let Some(last) = list.last() else { break };
        page.before = Some(last.id);
        for d in list {
            if d.lines.iter().any(|l| l.outcome == "pending" && l.eco_number.is_none()) {
                // Lists leave the document out; the decision needs it.
                if let Some(full) = state.store.declaration(d.id).await? {
                    out.push(full);
                }
            }
        }
    }
    Ok(out)
}
