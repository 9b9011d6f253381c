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

use crate::audit::PendingEvent;
use crate::{
    Claim, ClaimRefusal, Decimal, DeclarationLine, LineDecision, LineOutcome, Result, StoreError,
    Utilization, decimal_text,
};

/// A consumption in force (not given back).
#[derive(Debug, Clone)]
pub(crate) struct ActiveUse {
    pub id: i64,
    pub issuing_country: String,
    pub number: String,
    pub item: i32,
    pub quantity: Decimal,
}

/// What deciding needs from a backend's open transaction.
pub(crate) trait DeclTx {
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
    async fn ledger_remaining(
        &mut self,
        country: &str,
        number: &str,
        item: i32,
        total: Option<&str>,
    ) -> Result<Option<String>>;
    /// Sets the remaining quantity of an item.
    async fn set_remaining(&mut self, country: &str, number: &str, item: i32, remaining: &str) -> Result<()>;
    /// The number of another declaration consuming from any item of the certificate.
    async fn other_user(
        &mut self,
        country: &str,
        number: &str,
        declaration_id: i64,
    ) -> Result<Option<String>>;
    /// Marks a consumption given back.
    async fn release_use(&mut self, use_id: i64, at: &str) -> Result<()>;
    /// Records a consumption.
    async fn insert_use(
        &mut self,
        declaration_id: i64,
        line_no: i32,
        u: &Utilization,
        at: &str,
    ) -> Result<()>;
    /// Stores a line's decision.
    async fn update_line(&mut self, declaration_id: i64, l: &DeclarationLine) -> Result<()>;
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

/// Decides `decisions` on declaration `declaration_id` inside the caller's transaction.
pub(crate) async fn decide<T: DeclTx>(
    tx: &mut T,
    declaration_id: i64,
    decisions: Vec<LineDecision>,
    at: &str,
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
                .ledger_remaining(&u.issuing_country, &u.number, u.item, None)
                .await?
                .ok_or_else(|| StoreError::Backend(format!("no ledger row for a use of {}", u.number)))?;
            let remaining = crate::parse_decimal(&stored)?;
            let after = remaining + u.quantity;
            tx.set_remaining(&u.issuing_country, &u.number, u.item, &decimal_text(&after)).await?;
            tx.release_use(u.id, at).await?;
            events.push(crate::ledger_event(
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
        tx.update_line(declaration_id, &line).await?;
        events.push(crate::line_decided_event(declaration_id, &before, &line, utilization.as_ref()));
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
        .ledger_remaining(&c.issuing_country, &c.number, c.item, Some(&total))
        .await?
        .ok_or_else(|| StoreError::Backend(format!("ledger row of {} not created", c.number)))?;
    let remaining = crate::parse_decimal(&stored)?;
    if c.single_declaration
        && let Some(by) = tx.other_user(&c.issuing_country, &c.number, declaration_id).await?
    {
        return Ok(Err(ClaimRefusal::AlreadyUtilized { by }));
    }
    if remaining < c.quantity {
        return Ok(Err(ClaimRefusal::QuantityExceeded { remaining }));
    }
    let after = remaining - c.quantity;
    tx.set_remaining(&c.issuing_country, &c.number, c.item, &decimal_text(&after)).await?;
    let u = Utilization {
        issuing_country: c.issuing_country.clone(),
        number: c.number.clone(),
        item: c.item,
        quantity: decimal_text(&c.quantity),
        remaining_after: decimal_text(&after),
        declaration: declaration.to_owned(),
    };
    tx.insert_use(declaration_id, line_no, &u, at).await?;
    events.push(crate::ledger_event(
        "ledger.consumed",
        (&c.issuing_country, &c.number, c.item),
        &remaining,
        &after,
        declaration,
        line_no,
    ));
    Ok(Ok(u))
}
