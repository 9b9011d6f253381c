//! Deciding declaration lines against the utilization ledger, written once for both backends
//! (like `inbox`: a backend implements [`DeclTx`] over its open transaction and calls
//! [`decide`], then appends the audit events it returns in the same transaction).
//!
//! Locking, in this order (so two deciding transactions never dead-lock): the declaration row,
//! then every certificate the decisions touch ([`DeclTx::lock_certificate`], in key order:
//! PostgreSQL takes a transaction-scoped advisory lock, which also covers items whose ledger
//! row does not exist yet, as the single-declaration check needs), then the ledger rows
//! themselves (`FOR UPDATE`), then the audit head. SQLite serializes all writers anyway.
//!
//! Quantities are exact decimals, stored as canonical text and computed here.

use crate::audit::{self, AuditTx, PendingEvent};
use crate::model::{
    Claim, ClaimRefusal, Ctx, DecisionMessagesFn, Declaration, DeclarationLine, LineDecision, LineOutcome,
    NewDeclaration, OfficerNote, Utilization,
};
use crate::outbox::{self, OutboxTx};
use crate::row::Row;
use crate::{Decimal, Result, StoreError, decimal_text, timestamp};

/// A consumption in force (not given back).
#[derive(Debug, Clone)]
pub(crate) struct ActiveUse {
    pub id: i64,
    pub issuing_country: String,
    pub number: String,
    pub item: i32,
    pub quantity: Decimal,
}

/// An item of a certificate in the ledger: (issuing country, number, item).
pub(crate) type Item<'a> = (&'a str, &'a str, i32);

impl ActiveUse {
    /// Reads `id, issuing_country, number, item, quantity` of a `utilizations` row.
    pub(crate) fn read<R: Row>(r: &R) -> Result<Self> {
        let quantity: String = r.col(4)?;
        Ok(ActiveUse {
            id: r.col(0)?,
            issuing_country: r.col(1)?,
            number: r.col(2)?,
            item: r.col(3)?,
            quantity: parse_decimal(&quantity)?,
        })
    }
}

/// What deciding needs from a backend's open transaction.
pub(crate) trait DeclTx {
    /// Inserts a declaration and its lines (all `pending`); `None` when its number exists.
    async fn insert_declaration(&mut self, d: &NewDeclaration, at: &str) -> Result<Option<i64>>;
    /// One declaration with its lines.
    async fn declaration(&mut self, id: i64) -> Result<Option<Declaration>>;
    /// The risk score and risk of a declaration, locked (where the backend locks).
    async fn lock_risk(&mut self, id: i64) -> Result<Option<(i64, String)>>;
    /// Records the risk score and risk of a declaration.
    async fn set_risk(&mut self, id: i64, score: i64, risk: &str) -> Result<()>;
    /// The e-CO number a line names (`Some(None)`: `PENDING`), locked (where the backend
    /// locks); `None` when there is no such line.
    async fn lock_line_eco(&mut self, declaration_id: i64, line_no: i32) -> Result<Option<Option<String>>>;
    /// Makes a line name a certificate.
    async fn link_line(&mut self, line: (i64, i32), country: &str, number: &str) -> Result<()>;
    /// Locks the declaration; its number, `None` if it does not exist.
    async fn lock_declaration(&mut self, id: i64) -> Result<Option<String>>;
    /// One line of a declaration.
    async fn line(&mut self, declaration_id: i64, line_no: i32) -> Result<Option<DeclarationLine>>;
    /// The consumption in force of a line.
    async fn active_use(&mut self, declaration_id: i64, line_no: i32) -> Result<Option<ActiveUse>>;
    /// Serializes on one certificate until the transaction ends.
    async fn lock_certificate(&mut self, key: &str) -> Result<()>;
    /// Locks and reads the remaining quantity of an item; with `total`, the row is created
    /// (remaining = total) when missing. `None`: no row (only without `total`).
    async fn ledger_remaining(&mut self, item: Item<'_>, total: Option<&str>) -> Result<Option<String>>;
    /// Sets the remaining quantity of an item.
    async fn set_remaining(&mut self, item: Item<'_>, remaining: &str) -> Result<()>;
    /// The number of another declaration consuming from any item of the certificate.
    async fn other_user(&mut self, cert: (&str, &str), declaration_id: i64) -> Result<Option<String>>;
    /// Marks a consumption given back.
    async fn release_use(&mut self, use_id: i64, at: &str) -> Result<()>;
    /// Records a consumption.
    async fn insert_use(&mut self, line: (i64, i32), u: &Utilization, at: &str) -> Result<()>;
    /// Stores a line's decision with its revenue figures.
    async fn update_line(&mut self, declaration_id: i64, l: &DeclarationLine, f: &Figures) -> Result<()>;
    /// Adds the line as stored now (decided, with a computed duty; otherwise nothing) to the
    /// daily revenue totals, `sign` times: -1 before its decision changes, +1 after.
    async fn count_revenue(&mut self, line: (i64, i32), sign: i64) -> Result<()>;
}

/// A line's duty as the revenue report sums it: the currency and the amounts in its minor
/// units. All `None` when the duty was not computed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Figures {
    pub currency: Option<String>,
    pub mfn_minor: Option<i64>,
    pub due_granted_minor: Option<i64>,
    pub due_denied_minor: Option<i64>,
}

impl Figures {
    /// Reads the duty JSON (`{"if_granted": Duty, "if_denied": Duty}`). Every amount carries
    /// exactly the currency's minor units (`originlink_customs::duty` rounds them so), so
    /// the digits without the point are the amount in minor units; the V8 migration reads
    /// stored lines the same way.
    pub(crate) fn of(duty: &str) -> Figures {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(duty) else { return Figures::default() };
        let minor = |case: &str, what: &str| -> Option<i64> {
            let a = v.get(case)?.get(what)?.get("amount")?.as_str()?;
            let scale = a.split_once('.').map_or(0, |(_, f)| f.len());
            let digits = a.replace('.', "");
            (scale <= 4 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok())?
        };
        let currency = v.get("if_granted").and_then(|g| g.get("mfn")?.get("currency")?.as_str());
        let f = Figures {
            currency: currency.map(str::to_owned),
            mfn_minor: minor("if_granted", "mfn"),
            due_granted_minor: minor("if_granted", "due"),
            due_denied_minor: minor("if_denied", "due"),
        };
        if f.currency.is_some()
            && f.mfn_minor.is_some()
            && f.due_granted_minor.is_some()
            && f.due_denied_minor.is_some()
        {
            f
        } else {
            Figures::default()
        }
    }
}

fn invalid(message: String) -> StoreError {
    StoreError::conflict("LINE_DECISION_INVALID", message)
}

fn cert_key(country: &str, number: &str) -> String {
    crate::inbox::cert_key(country, number)
}

/// Checks the decisions before anything is touched.
fn check(decisions: &[LineDecision]) -> Result<Vec<Vec<serde_json::Value>>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut reasons = Vec::with_capacity(decisions.len());
    for d in decisions {
        if !seen.insert(d.line_no) {
            return Err(invalid(format!("line {} is decided twice", d.line_no)));
        }
        match serde_json::from_str::<serde_json::Value>(&d.reasons) {
            Ok(serde_json::Value::Array(a)) => reasons.push(a),
            _ => return Err(invalid(format!("the reasons of line {} are not a JSON array", d.line_no))),
        }
        if serde_json::from_str::<serde_json::Value>(&d.duty).is_err() {
            return Err(invalid(format!("the duty of line {} is not JSON", d.line_no)));
        }
        if let Some(c) = &d.claim
            && (c.quantity <= Decimal::ZERO || c.item_total < Decimal::ZERO)
        {
            return Err(invalid(format!(
                "line {} claims {} of an item of {}",
                d.line_no, c.quantity, c.item_total
            )));
        }
    }
    Ok(reasons)
}

/// Creates a declaration. Duplicate number: `DECLARATION_EXISTS`; duplicate line number:
/// `LINE_DUPLICATE`.
pub(crate) async fn create<T: DeclTx + AuditTx>(
    tx: &mut T,
    ctx: &Ctx,
    d: &NewDeclaration,
) -> Result<Declaration> {
    check_declaration(d)?;
    let Some(id) = tx.insert_declaration(d, &timestamp(&ctx.at)).await? else {
        return Err(declaration_exists(&d.number));
    };
    audit::append(tx, ctx, &[declaration_created_event(id, d)]).await?;
    tx.declaration(id).await?.ok_or(StoreError::NotFound)
}

/// Records a risk score. Unknown declaration: `NOT_FOUND`.
pub(crate) async fn set_risk<T: DeclTx + AuditTx>(
    tx: &mut T,
    ctx: &Ctx,
    id: i64,
    score: i64,
    risk: &str,
) -> Result<()> {
    let (old_score, old_risk) = tx.lock_risk(id).await?.ok_or(StoreError::NotFound)?;
    tx.set_risk(id, score, risk).await?;
    audit::append(tx, ctx, &[risk_event(id, (old_score, &old_risk), score, risk)]).await
}

/// Links a `PENDING` line to a certificate. Unknown line: `NOT_FOUND`; not pending:
/// `LINE_NOT_PENDING`.
pub(crate) async fn link_pending_line<T: DeclTx + AuditTx>(
    tx: &mut T,
    ctx: &Ctx,
    (declaration_id, line_no): (i64, i32),
    issuing_country: &str,
    number: &str,
) -> Result<()> {
    match tx.lock_line_eco(declaration_id, line_no).await? {
        None => return Err(StoreError::NotFound),
        Some(Some(_)) => return Err(line_not_pending(declaration_id, line_no)),
        Some(None) => {}
    }
    tx.link_line((declaration_id, line_no), issuing_country, number).await?;
    audit::append(tx, ctx, &[line_linked_event(declaration_id, line_no, issuing_country, number)]).await
}

/// [`decide`], audited (with the officer's note when an officer decided by hand), with the
/// messages the decisions cause enqueued in the same transaction.
pub(crate) async fn decide_with<T: DeclTx + AuditTx + OutboxTx>(
    tx: &mut T,
    ctx: &Ctx,
    declaration_id: i64,
    decisions: Vec<LineDecision>,
    messages: DecisionMessagesFn,
    note: Option<&OfficerNote>,
) -> Result<Vec<(DeclarationLine, Option<Utilization>)>> {
    let at = timestamp(&ctx.at);
    let (out, events) = decide(tx, declaration_id, decisions, &at, note).await?;
    audit::append(tx, ctx, &events).await?;
    outbox::enqueue(tx, &messages(&out).map_err(StoreError::Sign)?, &at).await?;
    Ok(out)
}

/// Decides `decisions` on declaration `declaration_id` inside the caller's transaction.
async fn decide<T: DeclTx>(
    tx: &mut T,
    declaration_id: i64,
    decisions: Vec<LineDecision>,
    at: &str,
    note: Option<&OfficerNote>,
) -> Result<(Vec<(DeclarationLine, Option<Utilization>)>, Vec<PendingEvent>)> {
    let mut reasons = check(&decisions)?;
    let number = tx.lock_declaration(declaration_id).await?.ok_or(StoreError::NotFound)?;
    let mut current = Vec::with_capacity(decisions.len());
    let mut keys = vec![];
    for d in &decisions {
        let line = tx.line(declaration_id, d.line_no).await?.ok_or(StoreError::NotFound)?;
        let used = tx.active_use(declaration_id, d.line_no).await?;
        if let Some(u) = &used {
            keys.push(cert_key(&u.issuing_country, &u.number));
        }
        if let (LineOutcome::Granted, Some(c)) = (d.outcome, &d.claim) {
            keys.push(cert_key(&c.issuing_country, &c.number));
        }
        current.push((line, used));
    }
    keys.sort_unstable();
    keys.dedup();
    for k in &keys {
        tx.lock_certificate(k).await?;
    }

    let mut out = Vec::with_capacity(decisions.len());
    let mut events = vec![];
    for ((d, (before, used)), mut reasons) in decisions.into_iter().zip(current).zip(reasons.drain(..)) {
        if let Some(u) = used {
            let stored = tx
                .ledger_remaining((&u.issuing_country, &u.number, u.item), None)
                .await?
                .ok_or_else(|| StoreError::Backend(format!("no ledger row for a use of {}", u.number)))?;
            let remaining = parse_decimal(&stored)?;
            let after = remaining + u.quantity;
            tx.set_remaining((&u.issuing_country, &u.number, u.item), &decimal_text(&after)).await?;
            tx.release_use(u.id, at).await?;
            events.push(ledger_event(
                "ledger.released",
                (&u.issuing_country, &u.number, u.item),
                &remaining,
                &after,
                &number,
                d.line_no,
            ));
        }
        let mut outcome = d.outcome;
        let mut utilization = None;
        if let (LineOutcome::Granted, Some(c)) = (d.outcome, &d.claim) {
            match consume(tx, declaration_id, &number, d.line_no, c, at, &mut events).await? {
                Ok(u) => utilization = Some(u),
                Err(refusal) => {
                    outcome = LineOutcome::Denied;
                    reasons.push(refusal.reason(&c.quantity));
                }
            }
        }
        let line = DeclarationLine {
            outcome: outcome.as_str().to_owned(),
            reasons: serde_json::Value::Array(reasons).to_string(),
            matched_item: d.matched_item,
            consumed: utilization.as_ref().map(|u| u.quantity.clone()),
            duty: d.duty,
            decided_at: Some(at.to_owned()),
            ..before.clone()
        };
        tx.count_revenue((declaration_id, before.line_no), -1).await?;
        tx.update_line(declaration_id, &line, &Figures::of(&line.duty)).await?;
        tx.count_revenue((declaration_id, line.line_no), 1).await?;
        events.push(line_decided_event(declaration_id, &before, &line, utilization.as_ref(), note));
        out.push((line, utilization));
    }
    Ok((out, events))
}

/// Consumes `c` from the ledger, or says why not.
async fn consume<T: DeclTx>(
    tx: &mut T,
    declaration_id: i64,
    declaration: &str,
    line_no: i32,
    c: &Claim,
    at: &str,
    events: &mut Vec<PendingEvent>,
) -> Result<Result<Utilization, ClaimRefusal>> {
    let total = decimal_text(&c.item_total);
    let stored = tx
        .ledger_remaining((&c.issuing_country, &c.number, c.item), Some(&total))
        .await?
        .ok_or_else(|| StoreError::Backend(format!("ledger row of {} not created", c.number)))?;
    let remaining = parse_decimal(&stored)?;
    if c.single_declaration
        && let Some(by) = tx.other_user((&c.issuing_country, &c.number), declaration_id).await?
    {
        return Ok(Err(ClaimRefusal::AlreadyUtilized { by }));
    }
    if remaining < c.quantity {
        return Ok(Err(ClaimRefusal::QuantityExceeded { remaining }));
    }
    let after = remaining - c.quantity;
    tx.set_remaining((&c.issuing_country, &c.number, c.item), &decimal_text(&after)).await?;
    let u = Utilization {
        issuing_country: c.issuing_country.clone(),
        number: c.number.clone(),
        item: c.item,
        quantity: decimal_text(&c.quantity),
        remaining_after: decimal_text(&after),
        declaration: declaration.to_owned(),
    };
    tx.insert_use((declaration_id, line_no), &u, at).await?;
    events.push(ledger_event(
        "ledger.consumed",
        (&c.issuing_country, &c.number, c.item),
        &remaining,
        &after,
        declaration,
        line_no,
    ));
    Ok(Ok(u))
}

/// Parses a stored decimal.
pub(crate) fn parse_decimal(s: &str) -> Result<Decimal> {
    s.parse::<Decimal>().map_err(|e| StoreError::Backend(format!("stored decimal {s:?} unreadable: {e}")))
}

/// Checks a new declaration: line numbers distinct.
fn check_declaration(d: &NewDeclaration) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for l in &d.lines {
        if !seen.insert(l.line_no) {
            return Err(StoreError::conflict(
                "LINE_DUPLICATE",
                format!("line {} appears twice in declaration {}", l.line_no, d.number),
            ));
        }
    }
    Ok(())
}

/// The conflict for a declaration number already stored.
fn declaration_exists(number: &str) -> StoreError {
    StoreError::conflict("DECLARATION_EXISTS", format!("declaration {number} exists"))
}

/// The audit event of a declaration created.
fn declaration_created_event(id: i64, d: &NewDeclaration) -> PendingEvent {
    let lines: Vec<serde_json::Value> = d
        .lines
        .iter()
        .map(|l| {
            serde_json::json!({
                "line_no": l.line_no,
                "eco_country": l.eco_country,
                "eco_number": l.eco_number,
            })
        })
        .collect();
    let after = serde_json::json!({
        "number": d.number,
        "importer": d.importer,
        "importing_country": d.importing_country,
        "declaration_date": d.declaration_date.format("%Y-%m-%d").to_string(),
        "lines": lines,
    });
    PendingEvent::new("declaration.created", format!("declaration/{id}"), "null".into(), after.to_string())
}

/// The audit event of a risk score recorded.
fn risk_event(id: i64, before: (i64, &str), score: i64, risk: &str) -> PendingEvent {
    let state = |score: i64, risk: &str| {
        let risk: serde_json::Value = serde_json::from_str(risk).unwrap_or_else(|_| risk.into());
        serde_json::json!({ "risk_score": score, "risk": risk }).to_string()
    };
    PendingEvent::new(
        "declaration.risk_scored",
        format!("declaration/{id}"),
        state(before.0, before.1),
        state(score, risk),
    )
}

/// The audit event of a `PENDING` line matched to a certificate.
fn line_linked_event(declaration_id: i64, line_no: i32, issuing_country: &str, number: &str) -> PendingEvent {
    PendingEvent::new(
        "declaration.line_matched",
        format!("declaration/{declaration_id}/line/{line_no}"),
        serde_json::json!({ "eco": "PENDING" }).to_string(),
        serde_json::json!({ "eco": { "issuing_country": issuing_country, "number": number } }).to_string(),
    )
}

/// The refusal of linking a line that is not `PENDING`.
fn line_not_pending(declaration_id: i64, line_no: i32) -> StoreError {
    StoreError::conflict(
        "LINE_NOT_PENDING",
        format!("line {line_no} of declaration {declaration_id} already names a certificate"),
    )
}

fn line_state(l: &DeclarationLine) -> serde_json::Value {
    let reasons: serde_json::Value =
        serde_json::from_str(&l.reasons).unwrap_or_else(|_| l.reasons.clone().into());
    serde_json::json!({
        "outcome": l.outcome,
        "reasons": reasons,
        "matched_item": l.matched_item,
        "consumed": l.consumed,
    })
}

/// The audit event of a line decided (with the consumption it recorded, if any).
fn line_decided_event(
    declaration_id: i64,
    before: &DeclarationLine,
    after: &DeclarationLine,
    used: Option<&Utilization>,
    note: Option<&OfficerNote>,
) -> PendingEvent {
    let mut a = line_state(after);
    if let (Some(n), Some(m)) = (note, a.as_object_mut()) {
        m.insert("officer_reason".into(), n.reason.clone().into());
    }
    if let (Some(u), Some(m)) = (used, a.as_object_mut()) {
        m.insert(
            "utilization".into(),
            serde_json::json!({
                "issuing_country": u.issuing_country,
                "number": u.number,
                "item": u.item,
                "quantity": u.quantity,
                "remaining_after": u.remaining_after,
            }),
        );
    }
    let action = match note {
        None => "declaration.line_decided",
        Some(OfficerNote { overridden: false, .. }) => "declaration.line_redecided",
        Some(OfficerNote { overridden: true, .. }) => "declaration.line_overridden",
    };
    PendingEvent::new(
        action,
        format!("declaration/{declaration_id}/line/{}", after.line_no),
        line_state(before).to_string(),
        a.to_string(),
    )
}

/// The audit event of a ledger row changing: consumed by, or given back from, a line.
fn ledger_event(
    action: &'static str,
    (country, number, item): (&str, &str, i32),
    before: &Decimal,
    after: &Decimal,
    declaration: &str,
    line_no: i32,
) -> PendingEvent {
    let state = |remaining: &Decimal| serde_json::json!({ "remaining": decimal_text(remaining) });
    let mut a = state(after);
    if let Some(m) = a.as_object_mut() {
        m.insert("declaration".into(), declaration.into());
        m.insert("line_no".into(), line_no.into());
    }
    PendingEvent::new(
        action,
        format!("ledger/{country}/{number}/{item}"),
        state(before).to_string(),
        a.to_string(),
    )
}
