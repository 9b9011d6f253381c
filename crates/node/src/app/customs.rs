//! Importing customs on the node: declarations decided line by line against received
//! certificates (the rules are `originlink_customs`), the utilization ledger (atomic in the
//! store), duty and revenue, and risk scoring. The status of each decided line goes back to
//! the issuing country as a `status.update`. When certificates arrive or a verification is
//! denied, the lines that were waiting for them (or used them) are decided again
//! ([`after_arrivals`]).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use originlink_customs::{
    CertificateFacts, Declaration, EcoRef, Ledger, LineFacts, Outcome, ReasonCode, RiskHistory,
    VerificationStatus,
};
use originlink_exchange::body::{BusinessStatus, Reason as WireReason, StatusBody, Utilized};
use originlink_exchange::{CertRef, MessageType};
use originlink_model::{CountryCode, agreement::PartialUse};
use originlink_store::{
    Claim, Ctx, DecisionMessagesFn, LineDecision as StoredDecision, LineOutcome, NewDeclaration, NewLine,
    OfficerNote, Page, Pair, ReceivedStatus, User,
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

/// A decision by hand: the line, the outcome an override imposes (`None`: the rules decide
/// again) and the officer's note.
pub(crate) struct ByHand {
    line_no: u32,
    outcome: Option<Outcome>,
    note: OfficerNote,
}

/// Decides `lines` (all when `None`) of a stored declaration, stores the decisions (the ledger
/// is updated atomically), scores the risk and sends the statuses back. `matched` gives the
/// certificate a `PENDING` line was matched to; `hand`, an officer's decision of one line.
pub(crate) async fn decide(
    state: &AppState,
    actor: &Ctx,
    id: i64,
    decl: &Declaration,
    only: Option<&[u32]>,
    matched: &BTreeMap<u32, (String, String)>,
    hand: Option<ByHand>,
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
        let mut d = originlink_customs::decide(line, decl, facts.map(|f| &f.facts), policies);
        if let Some(h) = hand.as_ref().filter(|h| h.line_no == line.line_no) {
            overrule(&mut d, line, facts.is_some(), h)?;
        }
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
    match hand {
        Some(h) => state.store.decide_lines_by_officer(actor, id, decisions, messages, h.note).await?,
        None => state.store.decide_lines_with(actor, id, decisions, messages).await?,
    };
    // The item each line matched, as stored (lines not decided now keep theirs).
    let matched_items: BTreeMap<u32, u32> = state
        .store
        .declaration(id)
        .await?
        .map(|d| d.lines)
        .unwrap_or_default()
        .iter()
        .filter_map(|l| Some((u32::try_from(l.line_no).ok()?, u32::try_from(l.matched_item?).ok()?)))
        .collect();
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
        let pair = Pair {
            exporter: &exporter,
            importer_key: &importer,
            importer_name: &decl.importer.name,
            other_than: id,
        };
        if state.store.pair_seen(pair).await? {
            history.known_pairs.insert((exporter, importer));
        }
    }
    let facts: Vec<LineFacts<'_>> = decl
        .lines
        .iter()
        .map(|line| {
            let key = key_of(line);
            let f = key.as_ref().and_then(|k| loaded.get(k)).and_then(|l| l.as_ref()).map(|l| &l.facts);
            LineFacts { line, certificate: f, matched_item: matched_items.get(&line.line_no).copied() }
        })
        .collect();
    let risk = originlink_customs::score(decl, &facts, &history, &state.customs.risk);
    state
        .store
        .set_risk(actor, id, i64::from(risk.score), &serde_json::to_string(&risk).unwrap_or_default())
        .await?;
    Ok(())
}

/// Applies an officer's decision to what the rules decided: the officer's reason is added
/// (`OFFICER_DECISION`) and, for an override, the outcome imposed. A line granted against a
/// certificate consumes its quantity from the item it matched (`OVERRIDE_NO_ITEM` when no
/// item has its HS subheading and unit).
fn overrule(
    d: &mut originlink_customs::LineDecision,
    line: &originlink_customs::Line,
    has_certificate: bool,
    h: &ByHand,
) -> Result<()> {
    let verb = if h.note.overridden { "overridden" } else { "re-decided" };
    let detail = format!("{verb} by the customs officer: {}", h.note.reason);
    match h.outcome {
        None => {}
        Some(_) if d.outcome == Outcome::NotClaimed => {
            return Err(Error::new(
                super::Kind::Conflict,
                "LINE_NOT_CLAIMED",
                format!("line {} claims no preference: there is nothing to grant or deny", line.line_no),
            ));
        }
        Some(Outcome::Granted) => {
            if has_certificate && d.matched_item.is_none() {
                return Err(Error::unprocessable(
                    "OVERRIDE_NO_ITEM",
                    format!(
                        "no item of the certificate has the HS subheading and unit of line {}: nothing to consume",
                        line.line_no
                    ),
                )
                .field("/outcome"));
            }
            d.outcome = Outcome::Granted;
            if has_certificate && d.consume.is_none() {
                d.consume = Some(line.quantity);
            }
        }
        Some(_) => {
            d.outcome = Outcome::Denied;
            d.consume = None;
        }
    }
    d.reasons.push(originlink_customs::Reason::new(ReasonCode::OfficerDecision, detail, None));
    Ok(())
}

/// Redecide or override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OfficerAction {
    /// Run the decision again now.
    Redecide,
    /// Impose an outcome.
    Override,
}

/// The outcome an override imposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideOutcome {
    /// Preference granted.
    Granted,
    /// Preference denied.
    Denied,
}

/// A customs officer's decision of one line.
#[derive(Debug, Clone)]
pub struct OfficerDecision {
    /// Redecide or override.
    pub action: OfficerAction,
    /// For an override: the outcome (required); for a re-decision: none.
    pub outcome: Option<OverrideOutcome>,
    /// Why (1 to 1000 characters; kept in the audit log).
    pub reason: String,
}

/// A customs officer re-decides line `line_no` of declaration `id` now (the rules run again
/// against what has arrived) or overrides its outcome; the reason is required
/// (`REASON_REQUIRED`), an override needs its outcome (`OUTCOME_REQUIRED`) and a re-decision
/// takes none (`OUTCOME_NOT_ALLOWED`). The decision, its ledger change and its audit event
/// (officer, before, after, reason) commit together with the status sent back to the
/// issuing country. Unknown declaration or line: `NOT_FOUND`.
pub async fn decide_line(
    state: &AppState,
    user: &User,
    id: i64,
    line_no: i32,
    input: OfficerDecision,
) -> Result<originlink_store::Declaration> {
    let reason = super::reason(&input.reason)?;
    let outcome = match (input.action, input.outcome) {
        (OfficerAction::Redecide, None) => None,
        (OfficerAction::Redecide, Some(_)) => {
            return Err(Error::invalid("OUTCOME_NOT_ALLOWED", "outcome", "a re-decision takes no outcome"));
        }
        (OfficerAction::Override, None) => {
            return Err(Error::invalid(
                "OUTCOME_REQUIRED",
                "outcome",
                "an override needs `granted` or `denied`",
            ));
        }
        (OfficerAction::Override, Some(OverrideOutcome::Granted)) => Some(Outcome::Granted),
        (OfficerAction::Override, Some(OverrideOutcome::Denied)) => Some(Outcome::Denied),
    };
    let stored = state.store.declaration(id).await?.ok_or_else(Error::not_found)?;
    let line = stored.lines.iter().find(|l| l.line_no == line_no).ok_or_else(Error::not_found)?;
    let decl = Declaration::from_json(stored.document.as_bytes())
        .map_err(|_| Error::internal(format!("stored declaration {id} does not read")))?;
    let no = u32::try_from(line_no).map_err(|_| Error::not_found())?;
    // A `PENDING` line linked to a certificate is decided against it.
    let mut matched = BTreeMap::new();
    if let (Some(c), Some(n)) = (&line.eco_country, &line.eco_number) {
        matched.insert(no, (c.clone(), n.clone()));
    }
    let hand = ByHand { line_no: no, outcome, note: OfficerNote { overridden: outcome.is_some(), reason } };
    let ctx = state.ctx(user);
    decide(state, &ctx, id, &decl, Some(&[no]), &matched, Some(hand)).await?;
    declaration(state, id).await
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

/// Every problem of a declaration's JSON, each with its code and JSON pointer; none when it
/// reads (what [`declare`] refuses with the first of them). For forms that show each problem
/// at its field.
pub fn declaration_problems(json: &[u8]) -> Vec<originlink_model::Problem> {
    Declaration::from_json(json).err().unwrap_or_default()
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
                importer_key: Some(originlink_customs::risk::importer_key(&decl)),
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
                            agreement: l.claimed_agreement.map(|a| a.code().to_owned()),
                        },
                        EcoRef::Pending => NewLine {
                            line_no: l.line_no as i32,
                            eco_country: None,
                            eco_number: None,
                            exporter: None,
                            agreement: l.claimed_agreement.map(|a| a.code().to_owned()),
                        },
                    })
                    .collect(),
                created_by: user.id,
            },
        )
        .await?;
    decide(state, &ctx, stored.id, &decl, None, &BTreeMap::new(), None).await?;
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

/// Preference granted and duty collected over the decided lines of the declarations dated in
/// a period: in all, per currency, and per month, agreement and partner.
#[derive(Debug, Clone, Serialize)]
pub struct RevenueReport {
    /// First declaration date.
    pub from: NaiveDate,
    /// Day after the last declaration date (exclusive).
    pub to: NaiveDate,
    /// Lines whose duty is in the sums.
    pub lines: u64,
    /// The sums per currency.
    pub revenue: originlink_customs::Revenue,
    /// The sums per month (of the declaration date), agreement claimed, partner (the issuing
    /// country of the certificate claimed) and currency, in that order.
    pub groups: Vec<RevenueGroup>,
    /// Whether every line of the period is in the sums.
    pub complete: bool,
    /// Lines whose duty could not be computed: listed, never silently left out.
    pub uncomputed: Vec<Value>,
    /// Lines not decided yet (`pending`: their certificate is awaited or cannot be verified
    /// yet): listed with their reasons, never silently left out; they count once decided.
    pub undecided: Vec<Value>,
    /// More lines are left out of the sums than the [`UNSUMMED_LISTED`] listed.
    pub more_unsummed: bool,
}

/// How many lines left out of the sums a report lists.
pub const UNSUMMED_LISTED: usize = 1000;

/// One month, agreement, partner and currency of a [`RevenueReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevenueGroup {
    /// `YYYY-MM`.
    pub month: String,
    /// The agreement claimed; `None`: no preference claimed (MFN).
    pub agreement: Option<String>,
    /// The issuing country of the certificate claimed; `None`: none named.
    pub partner: Option<String>,
    /// The sums and the lines summed (`preference_granted_total` = MFN − collected).
    #[serde(flatten)]
    pub totals: originlink_customs::Totals,
    /// The currency.
    pub currency: originlink_model::Currency,
}

fn revenue_group(g: originlink_store::RevenueGroup) -> Result<RevenueGroup> {
    let currency = originlink_model::Currency::parse(&g.currency)
        .map_err(|_| Error::internal(format!("unknown currency {:?} on a declaration line", g.currency)))?;
    let amount = |minor: i64| originlink_store::Decimal::new(minor, currency.minor_units());
    let (mfn, due) = (amount(g.mfn_minor), amount(g.due_minor));
    let totals = originlink_customs::Totals {
        preference_granted_total: mfn - due,
        duty_collected_total: due,
        mfn_total: mfn,
        lines: g.lines as u64,
    };
    Ok(RevenueGroup { month: g.month, agreement: g.agreement, partner: g.partner, totals, currency })
}

/// The revenue report for the declarations dated from `from` (inclusive) to `to`
/// (exclusive), whenever their lines were decided: a line decided today for a declaration of
/// last month counts in last month's report. Summed by the database, exactly, in minor units.
pub async fn revenue(state: &AppState, from: NaiveDate, to: NaiveDate) -> Result<RevenueReport> {
    let groups: Vec<RevenueGroup> =
        state.store.revenue_groups(from, to).await?.into_iter().map(revenue_group).collect::<Result<_>>()?;
    let mut revenue = originlink_customs::Revenue::default();
    for g in &groups {
        let t = revenue.per_currency.entry(g.currency).or_default();
        let overflow = || Error::unprocessable("DUTY_OVERFLOW", "a revenue total is out of range");
        t.preference_granted_total =
            t.preference_granted_total.checked_add(g.totals.preference_granted_total).ok_or_else(overflow)?;
        t.duty_collected_total =
            t.duty_collected_total.checked_add(g.totals.duty_collected_total).ok_or_else(overflow)?;
        t.mfn_total = t.mfn_total.checked_add(g.totals.mfn_total).ok_or_else(overflow)?;
        t.lines += g.totals.lines;
    }
    let mut unsummed = state.store.lines_unsummed(from, to, UNSUMMED_LISTED + 1).await?;
    let more_unsummed = unsummed.len() > UNSUMMED_LISTED;
    unsummed.truncate(UNSUMMED_LISTED);
    let (mut uncomputed, mut undecided) = (Vec::new(), Vec::new());
    for (declaration, l) in &unsummed {
        if l.outcome == LineOutcome::Pending.as_str() {
            let reasons: Vec<originlink_customs::Reason> =
                serde_json::from_str(&l.reasons).unwrap_or_default();
            undecided.push(json!({
                "declaration": declaration,
                "line_no": l.line_no,
                "outcome": l.outcome,
                "reasons": reasons.iter().map(|r| r.code.code()).collect::<Vec<_>>(),
            }));
            continue;
        }
        let duty = applicable_duty(l);
        uncomputed.push(json!({
            "declaration": declaration,
            "line_no": l.line_no,
            "outcome": l.outcome,
            "reason": duty.get("error").or_else(|| duty.get("reason")).cloned()
                .unwrap_or_else(|| json!("the duty of this line could not be computed (no tariff rate or value)")),
        }));
    }
    let lines = groups.iter().map(|g| g.totals.lines).sum();
    let complete = unsummed.is_empty();
    Ok(RevenueReport { from, to, lines, revenue, groups, complete, uncomputed, undecided, more_unsummed })
}

/// Acts on what the exchange applied: lines waiting for a certificate that arrived (or
/// using one that was revoked or replaced) are decided again, and a denied verification
/// denies the preference on every line that used its certificate. Run by whoever called
/// the exchange's `process`: the inbound endpoint and the pull worker.
pub async fn after_arrivals(state: &AppState, arrivals: &[Arrival]) {
    // The declarations with undecided `PENDING` lines, read once for the whole batch (and only
    // if a certificate arrived), and kept current as lines are linked.
    let mut pending = None;
    // The certificates a line names, found with one lookup for the batch; on a failure every
    // one is looked at.
    let certs: Vec<(String, String)> = arrivals
        .iter()
        .filter_map(|a| match a {
            Arrival::Certificate { issuing_country, number } => {
                Some((issuing_country.clone(), number.clone()))
            }
            Arrival::Answer { .. } => None,
        })
        .collect();
    let named = match state.store.certificates_named(certs.clone()).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "looking up the lines naming arrived certificates failed");
            certs.into_iter().collect()
        }
    };
    for a in arrivals {
        match a {
            Arrival::Certificate { issuing_country, number } => {
                let is_named = named.contains(&(issuing_country.clone(), number.clone()));
                rematch(state, issuing_country, number, is_named, &mut pending).await
            }
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
        rematch(state, &v.issuing_country, &v.number, true, &mut None).await;
    }
}

/// After a certificate arrives: decide the lines waiting for it (named, or `PENDING` lines it
/// is a candidate for). After a verification is denied: re-decide the lines that used it.
async fn rematch(
    state: &AppState,
    issuing: &str,
    number: &str,
    named: bool,
    pending: &mut Option<Vec<originlink_store::Declaration>>,
) {
    if let Err(e) = rematch_inner(state, issuing, number, named, pending).await {
        tracing::warn!(error = ?e, issuing, number, "re-deciding declaration lines failed");
    }
}

/// Lines of one declaration to decide again, and the certificates `PENDING` lines matched.
type Target = (Vec<u32>, BTreeMap<u32, (String, String)>);

async fn rematch_inner(
    state: &AppState,
    issuing: &str,
    number: &str,
    named: bool,
    pending: &mut Option<Vec<originlink_store::Declaration>>,
) -> Result<()> {
    let actor = Ctx::new("customs:auto", state.clock.now());
    let mut targets: BTreeMap<i64, Target> = BTreeMap::new();
    // Lines denied because it had not arrived (or could not be verified yet): decided again
    // now that it is here (docs/reason-codes.md, `CO_NOT_RECEIVED`).
    let mut denied: BTreeMap<i64, Vec<i32>> = BTreeMap::new();
    // Only a certificate some line names can have lines pending on it, using it or denied
    // for want of it.
    if named {
        for (id, line) in state.store.pending_lines_for(issuing, number).await? {
            targets.entry(id).or_default().0.push(line as u32);
        }
        for (id, line) in state.store.lines_using(issuing, number).await? {
            targets.entry(id).or_default().0.push(line as u32);
        }
        for (id, line) in state.store.denied_lines_for(issuing, number).await? {
            denied.entry(id).or_default().push(line);
        }
    }
    for (id, lines) in denied {
        let Some(d) = state.store.declaration(id).await? else { continue };
        for l in d.lines.iter().filter(|l| lines.contains(&l.line_no) && awaited_certificate(l)) {
            targets.entry(id).or_default().0.push(l.line_no as u32);
        }
    }
    // PENDING lines this certificate is a candidate for (the certificate is read only when
    // there are such lines).
    let pending = match pending {
        Some(p) => p,
        None => pending.insert(pending_declarations(state).await?),
    };
    if pending.is_empty() {
        // Nothing waits for an unnamed certificate.
    } else if let Some(l) = load_facts(state, issuing, number).await? {
        for d in pending.iter_mut() {
            let Ok(decl) = Declaration::from_json(d.document.as_bytes()) else { continue };
            for sl in d.lines.iter_mut().filter(|x| x.outcome == "pending" && x.eco_number.is_none()) {
                let Some(line_ref) = decl.lines.iter().find(|x| x.line_no == sl.line_no as u32) else {
                    continue;
                };
                if originlink_customs::is_candidate(line_ref, &decl, &l.facts, &state.customs.policies) {
                    // Linked first, so later events about this certificate reach the line.
                    state.store.link_pending_line(&actor, d.id, sl.line_no, issuing, number).await?;
                    sl.eco_number = Some(number.to_owned());
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
        decide(state, &actor, id, &decl, Some(&lines), &matched, None).await?;
    }
    Ok(())
}

/// Whether a line was denied only for want of its certificate: it had not arrived
/// (`CO_NOT_RECEIVED`) or could not be verified yet (`CO_NOT_VERIFIED`).
fn awaited_certificate(l: &originlink_store::DeclarationLine) -> bool {
    let reasons: Vec<originlink_customs::Reason> = serde_json::from_str(&l.reasons).unwrap_or_default();
    reasons.iter().any(|r| matches!(r.code, ReasonCode::CoNotReceived | ReasonCode::CoNotVerified))
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
