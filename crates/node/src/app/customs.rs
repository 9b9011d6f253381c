//! Importing customs on the node: declarations decided line by line against received
//! certificates (the rules are `originlink_customs`), the utilization ledger (atomic in the
//! store), duty and revenue, and risk scoring. The status of each decided line goes back to
//! the issuing country as a `status.update`. When certificates arrive or a verification is
//! denied, the lines that were waiting for them (or used them) are decided again
//! ([`after_arrivals`]).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use originlink_customs::{
    CertificateFacts, Declaration, EcoRef, Ledger, LineFacts, Outcome, RiskHistory, VerificationStatus,
};
use originlink_exchange::body::{BusinessStatus, Reason as WireReason, StatusBody, Utilized};
use originlink_exchange::{CertRef, MessageType};
use originlink_model::{CountryCode, agreement::PartialUse};
use originlink_store::{
    Claim, Ctx, DecisionMessagesFn, LineDecision as StoredDecision, LineOutcome, NewDeclaration, NewLine,
    Page, ReceivedStatus, User,
};
use serde::Serialize;
use serde_json::{Value, json};

use super::{AppState, Error, Result};
use crate::exchange::{Arrival, Exchange};

fn country(s: &str) -> Option<CountryCode> {
    CountryCode::parse(s).ok()
}

/// What the decision needs about one received certificate, from the store.
pub(crate) struct Loaded {
    pub(crate) facts: CertificateFacts,
    pub(crate) version: i64,
}

pub(crate) async fn load_facts(state: &AppState, issuing: &str, number: &str) -> Result<Option<Loaded>> {
    let versions = state.store.received_by_ref(issuing, number).await?;
    let Some(rec) = versions.into_iter().max_by_key(|r| r.version) else { return Ok(None) };
    let limits = originlink_formats::Limits::default();
    let cert = match originlink_formats::read(&rec.document, &limits) {
        Ok((_, cert)) => cert,
        // Stored as it arrived, but it does not read (its message was quarantined): nothing
        // can be decided on it, and the request that names it is answered so.
        Err(problems) => {
            let first = problems.first().map(|p| format!(": {} {}", p.code, p.message)).unwrap_or_default();
            return Err(Error::unprocessable(
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
) -> Result<()> {
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
    state.wake_exchange();
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
    x: &Exchange,
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
pub fn applicable_duty(l: &originlink_store::DeclarationLine) -> Value {
    let v = serde_json::from_str::<Value>(&l.duty).unwrap_or(Value::Null);
    match l.outcome.as_str() {
        "granted" => v.get("if_granted").cloned().unwrap_or(v),
        _ => v.get("if_denied").cloned().unwrap_or(v),
    }
}

/// Importing customs lodges a declaration (`DECLARATION_INVALID` on the first problem's
/// path; `WRONG_IMPORTING_COUNTRY`; `DECLARATION_EXISTS`); every line is decided at once, the
/// risk scored and the statuses sent back to the issuing countries.
pub async fn declare(state: &AppState, user: &User, json: &[u8]) -> Result<originlink_store::Declaration> {
    let decl = Declaration::from_json(json).map_err(|problems| {
        let first = &problems[0];
        Error::unprocessable(
            "DECLARATION_INVALID",
            format!("{}: {} ({} problems)", first.code, first.message, problems.len()),
        )
        .field(&first.path)
    })?;
    if decl.importing_country.as_str() != state.issuer.authority.country {
        return Err(Error::unprocessable(
            "WRONG_IMPORTING_COUNTRY",
            format!("this node is customs of {}", state.issuer.authority.country),
        )
        .field("/importing_country"));
    }
    let ctx = state.ctx(user);
    let mut exporters = BTreeMap::new();
    for l in &decl.lines {
        if let EcoRef::Issued { issuing_country, number } = &l.eco
            && let Some(f) = load_facts(state, issuing_country.as_str(), number.as_str()).await?
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
    decide(state, &ctx, stored.id, &decl, None, &BTreeMap::new()).await?;
    declaration(state, stored.id).await
}

/// What the officer's queue is narrowed to, as the client asked.
#[derive(Debug, Clone, Default)]
pub struct DeclarationQuery {
    /// Text in the declaration number.
    pub number: Option<String>,
    /// Text in the importer's name.
    pub importer: Option<String>,
    /// Declared on or after this date (`YYYY-MM-DD`).
    pub from: Option<String>,
    /// Declared on or before this date (`YYYY-MM-DD`).
    pub to: Option<String>,
    /// Only declarations with a line of this outcome.
    pub outcome: Option<String>,
}

/// The officer's queue, highest risk first, narrowed by `query`.
pub async fn declarations(
    state: &AppState,
    page: &Page,
    query: &DeclarationQuery,
) -> Result<Vec<originlink_store::Declaration>> {
    let outcome = super::query_enum(
        query.outcome.as_deref(),
        "outcome",
        LineOutcome::parse,
        "pending, granted, denied, not-claimed",
    )?;
    let filter = originlink_store::DeclarationFilter {
        number: super::query_text(query.number.as_deref(), "number")?,
        importer: super::query_text(query.importer.as_deref(), "importer")?,
        from: super::query_date(query.from.as_deref(), "from")?.map(|d| d.to_string()),
        to: super::query_date(query.to.as_deref(), "to")?.map(|d| d.to_string()),
        outcome: outcome.map(|o| o.as_str().to_owned()),
    };
    Ok(state.store.find_declarations(page, true, &filter).await?)
}

/// One declaration with its decided lines.
pub async fn declaration(state: &AppState, id: i64) -> Result<originlink_store::Declaration> {
    state.store.declaration(id).await?.ok_or_else(Error::not_found)
}

/// Preference granted and duty collected over decided lines, per currency.
#[derive(Debug, Clone, Serialize)]
pub struct RevenueReport {
    /// First day.
    pub from: NaiveDate,
    /// Day after the last (exclusive).
    pub to: NaiveDate,
    /// Lines whose duty is in the sums.
    pub lines: usize,
    /// The sums.
    pub revenue: originlink_customs::Revenue,
    /// Whether every decided line is in the sums.
    pub complete: bool,
    /// Lines whose duty could not be computed: listed, never silently left out.
    pub uncomputed: Vec<Value>,
}

/// The revenue report for lines decided from `from` (inclusive) to `to` (exclusive).
pub async fn revenue(state: &AppState, from: NaiveDate, to: NaiveDate) -> Result<RevenueReport> {
    let at = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or_default();
    let lines = state.store.decided_lines_between(at(from), at(to)).await?;
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
    let revenue = originlink_customs::Revenue::of(duties.iter())
        .map_err(|e| Error::unprocessable(e.code(), e.to_string()))?;
    Ok(RevenueReport { from, to, lines: duties.len(), revenue, complete: uncomputed.is_empty(), uncomputed })
}

/// Acts on what the exchange applied: lines waiting for a certificate that arrived (or
/// using one that was revoked or replaced) are decided again, and a denied verification
/// denies the preference on every line that used its certificate. Run by whoever called
/// the exchange's `process`: the inbound endpoint and the pull worker.
pub async fn after_arrivals(state: &AppState, arrivals: &[Arrival]) {
    for a in arrivals {
        match a {
            Arrival::Certificate { issuing_country, number } => rematch(state, issuing_country, number).await,
            Arrival::Answer { request_message_id } => after_answer(state, request_message_id).await,
        }
    }
}

/// After the issuing country answered one of our verification requests: a denial denies the
/// preference on every line that used the certificate.
async fn after_answer(state: &AppState, request_message_id: &str) {
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
async fn rematch(state: &AppState, issuing: &str, number: &str) {
    if let Err(e) = rematch_inner(state, issuing, number).await {
        tracing::warn!(error = ?e, issuing, number, "re-deciding declaration lines failed");
    }
}

/// Lines of one declaration to decide again, and the certificates `PENDING` lines matched.
type Target = (Vec<u32>, BTreeMap<u32, (String, String)>);

async fn rematch_inner(state: &AppState, issuing: &str, number: &str) -> Result<()> {
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
async fn pending_declarations(state: &AppState) -> Result<Vec<originlink_store::Declaration>> {
    let mut out = Vec::new();
    let mut page = Page::first(None, 500);
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
