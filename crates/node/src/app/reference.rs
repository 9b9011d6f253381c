//! Reference use cases open to every signed-in user: evaluating a `qualify` request and
//! looking up the rule of origin for a product.

use serde_json::{Value, json};

use super::applications::rules_error;
use super::{Error, Kind, Result};

/// Evaluates a `qualify` request (docs/rules-of-origin.md) and returns the assessment.
pub fn qualify(request: &[u8]) -> Result<Value> {
    let assessment = originlink_rules::parse_request(request)
        .and_then(|good| originlink_rules::qualify(&good))
        .map_err(|e| rules_error(e, ""))?;
    Ok(assessment.to_json())
}

/// The rule an agreement applies to an HS code: the product-specific rule of the most
/// specific heading that covers it, else the agreement's general rule.
///
/// Errors: `AGREEMENT_UNKNOWN` (`agreement`), `HS_INVALID` (`hs`), `RULE_NOT_FOUND`.
pub fn rule(agreement: &str, hs: &str) -> Result<Value> {
    let agreement = originlink_model::Agreement::parse(agreement)
        .map_err(|e| Error::invalid("AGREEMENT_UNKNOWN", "agreement", e.to_string()))?;
    // Tables may be in an older edition (RCEP: HS 2012), so the code is checked for form only.
    let hs = originlink_model::HsCode::parse_syntax(hs)
        .map_err(|e| Error::invalid("HS_INVALID", "hs", e.to_string()))?;
    let table = originlink_rules::PsrTable::builtin(agreement);
    if let Some(row) = table.lookup(&hs) {
        return Ok(json!({
            "agreement": table.agreement,
            "hs": hs.dotted(),
            "matched": format!("{} {}", row.range.level_name(), row.range),
            "rule": row.rule.to_string(),
            "source": row.source,
        }));
    }
    let settings = originlink_rules::OriginSettings::builtin(originlink_rules::Regime::Agreement(agreement));
    let rule = settings.general_rule.ok_or_else(|| {
        Error::new(Kind::NotFound, "RULE_NOT_FOUND", format!("no rule covers {}", hs.dotted()))
    })?;
    Ok(json!({
        "agreement": table.agreement,
        "hs": hs.dotted(),
        "matched": "general rule (no product-specific rule)",
        "rule": rule,
        "source": settings.source("general_rule").unwrap_or(""),
    }))
}
