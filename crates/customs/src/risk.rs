//! Risk scoring of a declaration: each rule that fires adds its weight once per declaration
//! (the detail names every line or certificate that triggered it). Weights and thresholds are
//! configuration ([`RiskConfig`], serde, with defaults).

use std::collections::{BTreeMap, BTreeSet};

use originlink_model::{Certificate, Decimal, Party};
use serde::{Deserialize, Serialize};

use crate::decide::{CertificateFacts, normalize_id, normalize_name};
use crate::declaration::{Declaration, Line};

/// A rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RiskCode {
    /// The certificate was issued retroactively (box 13 flag).
    RetroactiveIssuance,
    /// Back-to-back certificate.
    BackToBack,
    /// Third-party (third-country) invoicing.
    ThirdPartyInvoicing,
    /// The issuing authority has earlier denied verifications.
    IssuerDenied,
    /// The exporter has earlier denied verifications.
    ExporterDenied,
    /// Declared customs value differs from the certificate FOB (pro rata) beyond the ratio.
    ValueGap,
    /// After this declaration, the item is below the threshold share of its quantity.
    NearExhaustion,
    /// Issued long after shipment.
    LateIssuance,
    /// First declaration for this exporter → importer pair.
    FirstTimePair,
}

impl RiskCode {
    /// The stable wire form.
    pub fn code(&self) -> &'static str {
        match self {
            RiskCode::RetroactiveIssuance => "RETROACTIVE_ISSUANCE",
            RiskCode::BackToBack => "BACK_TO_BACK",
            RiskCode::ThirdPartyInvoicing => "THIRD_PARTY_INVOICING",
            RiskCode::IssuerDenied => "ISSUER_DENIED",
            RiskCode::ExporterDenied => "EXPORTER_DENIED",
            RiskCode::ValueGap => "VALUE_GAP",
            RiskCode::NearExhaustion => "NEAR_EXHAUSTION",
            RiskCode::LateIssuance => "LATE_ISSUANCE",
            RiskCode::FirstTimePair => "FIRST_TIME_PAIR",
        }
    }
}

/// Weight of each rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskWeights {
    /// [`RiskCode::RetroactiveIssuance`].
    pub retroactive_issuance: u32,
    /// [`RiskCode::BackToBack`].
    pub back_to_back: u32,
    /// [`RiskCode::ThirdPartyInvoicing`].
    pub third_party_invoicing: u32,
    /// [`RiskCode::IssuerDenied`].
    pub issuer_denied: u32,
    /// [`RiskCode::ExporterDenied`].
    pub exporter_denied: u32,
    /// [`RiskCode::ValueGap`].
    pub value_gap: u32,
    /// [`RiskCode::NearExhaustion`].
    pub near_exhaustion: u32,
    /// [`RiskCode::LateIssuance`].
    pub late_issuance: u32,
    /// [`RiskCode::FirstTimePair`].
    pub first_time_pair: u32,
}

impl Default for RiskWeights {
    fn default() -> Self {
        RiskWeights {
            retroactive_issuance: 20,
            back_to_back: 15,
            third_party_invoicing: 10,
            issuer_denied: 30,
            exporter_denied: 40,
            value_gap: 25,
            near_exhaustion: 15,
            late_issuance: 20,
            first_time_pair: 10,
        }
    }
}

impl RiskWeights {
    /// The weight of a rule.
    pub fn of(&self, code: RiskCode) -> u32 {
        match code {
            RiskCode::RetroactiveIssuance => self.retroactive_issuance,
            RiskCode::BackToBack => self.back_to_back,
            RiskCode::ThirdPartyInvoicing => self.third_party_invoicing,
            RiskCode::IssuerDenied => self.issuer_denied,
            RiskCode::ExporterDenied => self.exporter_denied,
            RiskCode::ValueGap => self.value_gap,
            RiskCode::NearExhaustion => self.near_exhaustion,
            RiskCode::LateIssuance => self.late_issuance,
            RiskCode::FirstTimePair => self.first_time_pair,
        }
    }
}

/// Weights and thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RiskConfig {
    /// Weight per rule.
    pub weights: RiskWeights,
    /// `VALUE_GAP` fires when |value − pro-rata FOB| / pro-rata FOB exceeds this (0.30 = 30 %).
    pub value_gap_ratio: Decimal,
    /// `NEAR_EXHAUSTION` fires when what is left of the item after this line is below this
    /// percent of the certified quantity (and the line does not take the whole item at once).
    pub near_exhaustion_pct: Decimal,
    /// `LATE_ISSUANCE` fires when the certificate was issued more than this many days after
    /// shipment.
    pub late_issuance_days: u32,
    /// `ISSUER_DENIED` / `EXPORTER_DENIED` fire from this many earlier denials.
    pub denied_min: u32,
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            weights: RiskWeights::default(),
            value_gap_ratio: Decimal::new(30, 2),
            near_exhaustion_pct: Decimal::from(10),
            late_issuance_days: 30,
            denied_min: 1,
        }
    }
}

/// What the node knows from earlier declarations and verifications. Keys are
/// [`party_key`]s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskHistory {
    /// Denied verifications per issuing authority (`issuer_key`).
    pub denied_by_issuer: BTreeMap<String, u32>,
    /// Denied verifications per exporter.
    pub denied_by_exporter: BTreeMap<String, u32>,
    /// Exporter → importer pairs seen on earlier declarations.
    pub known_pairs: BTreeSet<(String, String)>,
}

/// The key of a party in the history: its normalized id when it has one, else its normalized
/// name, prefixed with its country.
pub fn party_key(p: &Party) -> String {
    match &p.id {
        Some(id) if !normalize_id(id).is_empty() => format!("{}:id:{}", p.address.country, normalize_id(id)),
        _ => format!("{}:name:{}", p.address.country, normalize_name(&p.name)),
    }
}

/// The key of the issuing authority of a certificate (its box 12 authority; the exporting
/// country when not certified).
pub fn issuer_key(c: &Certificate) -> String {
    match &c.certification {
        Some(cert) => party_key(&cert.authority),
        None => format!("{}:name:", c.exporting_country),
    }
}

/// The importer's key, the same shape as [`party_key`].
pub fn importer_key(d: &Declaration) -> String {
    match &d.importer.id {
        Some(id) if !normalize_id(id).is_empty() => {
            format!("{}:id:{}", d.importing_country, normalize_id(id))
        }
        _ => format!("{}:name:{}", d.importing_country, normalize_name(&d.importer.name)),
    }
}

/// One line with what the decision found for it.
#[derive(Debug, Clone, Copy)]
pub struct LineFacts<'a> {
    /// The line.
    pub line: &'a Line,
    /// Its certificate, when received.
    pub certificate: Option<&'a CertificateFacts>,
    /// The matched item (see [`crate::LineDecision::matched_item`]).
    pub matched_item: Option<u32>,
}

/// One reason in a score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskReason {
    /// The rule.
    pub code: RiskCode,
    /// Its weight.
    pub weight: u32,
    /// What triggered it.
    pub detail: String,
}

/// A declaration's score (the sum of the weights) and its reasons.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    /// The score.
    pub score: u32,
    /// The rules that fired, in rule order.
    pub reasons: Vec<RiskReason>,
}

impl Risk {
    /// Whether a rule fired.
    pub fn has(&self, code: RiskCode) -> bool {
        self.reasons.iter().any(|r| r.code == code)
    }
}

/// Scores a declaration. `ledger` remaining quantities are those *before* this declaration.
pub fn score(
    decl: &Declaration,
    lines: &[LineFacts<'_>],
    history: &RiskHistory,
    config: &RiskConfig,
) -> Risk {
    let mut hits: BTreeMap<RiskCode, BTreeSet<String>> = BTreeMap::new();
    let mut hit = |code: RiskCode, what: String| {
        hits.entry(code).or_default().insert(what);
    };
    let importer = importer_key(decl);
    for lf in lines {
        let Some(facts) = lf.certificate else { continue };
        let c = &facts.certificate;
        let cert_name = format!(
            "{} {}",
            c.exporting_country,
            c.number.as_ref().map(|n| n.as_str()).unwrap_or("(no number)")
        );
        let line = format!("line {}", lf.line.line_no);
        if c.flags.issued_retroactively {
            hit(RiskCode::RetroactiveIssuance, cert_name.clone());
        }
        if c.flags.back_to_back.is_some() {
            hit(RiskCode::BackToBack, cert_name.clone());
        }
        if c.flags.third_party_invoicing.is_some() {
            hit(RiskCode::ThirdPartyInvoicing, cert_name.clone());
        }
        let issuer = issuer_key(c);
        if config.denied_min > 0
            && history.denied_by_issuer.get(&issuer).copied().unwrap_or(0) >= config.denied_min
        {
            hit(RiskCode::IssuerDenied, issuer);
        }
        let exporter = party_key(&c.exporter);
        if config.denied_min > 0
            && history.denied_by_exporter.get(&exporter).copied().unwrap_or(0) >= config.denied_min
        {
            hit(RiskCode::ExporterDenied, exporter.clone());
        }
        if !history.known_pairs.contains(&(exporter.clone(), importer.clone())) {
            hit(RiskCode::FirstTimePair, format!("{exporter} → {importer}"));
        }
        if let (Some(issued), dep) = (c.issue_date(), c.transport.departure_date) {
            let days = (issued - dep).num_days();
            if days > i64::from(config.late_issuance_days) {
                hit(RiskCode::LateIssuance, format!("{cert_name}: issued {days} days after shipment"));
            }
        }
        let Some(item) = lf.matched_item.and_then(|n| c.items.iter().find(|i| i.number == n)) else {
            continue;
        };
        let fob =
            item.fob.filter(|f| f.currency() == lf.line.customs_value.currency() && !f.amount().is_zero());
        if let Some(fob) = fob {
            // FOB covers the item's whole quantity; the line may take part of it.
            let expected = fob
                .amount()
                .checked_mul(lf.line.quantity.value())
                .and_then(|v| v.checked_div(item.quantity.value()));
            if let Some(expected) = expected.filter(|e| !e.is_zero()) {
                let gap = (lf.line.customs_value.amount() - expected).abs();
                if gap.checked_div(expected).is_some_and(|r| r > config.value_gap_ratio) {
                    hit(
                        RiskCode::ValueGap,
                        format!(
                            "{line}: declared {}, certificate FOB pro rata {}",
                            lf.line.customs_value.amount(),
                            expected.round_dp(2)
                        ),
                    );
                }
            }
        }
        let certified = item.quantity.value();
        let left = facts.ledger.remaining(item.number).unwrap_or(certified);
        if lf.line.quantity.value() < certified && lf.line.quantity.value() <= left {
            let after = left - lf.line.quantity.value();
            let pct = after.checked_mul(Decimal::ONE_HUNDRED).and_then(|v| v.checked_div(certified));
            if pct.is_some_and(|p| p < config.near_exhaustion_pct) {
                hit(
                    RiskCode::NearExhaustion,
                    format!("{line}: {} of {} left after it", after.normalize(), certified),
                );
            }
        }
    }
    let mut risk = Risk::default();
    for (code, what) in hits {
        let weight = config.weights.of(code);
        risk.score = risk.score.saturating_add(weight);
        risk.reasons.push(RiskReason {
            code,
            weight,
            detail: what.into_iter().collect::<Vec<_>>().join("; "),
        });
    }
    risk
}
