//! Duty per line, with and without preference, and revenue totals.
//!
//! Arithmetic is exact (`rust_decimal`). A rate's duty is
//! `customs value × ad valorem % / 100 + quantity × specific amount`, computed unrounded; the
//! MFN and the preferential duty are then each rounded **half-up** (away from zero) to the
//! currency's minor units. Only these final amounts are rounded, and the others derive from
//! them: `due` is the rounded preferential duty when preference is granted (never more than
//! MFN), else the rounded MFN duty; `preference_granted = mfn − due`.

use std::collections::BTreeMap;

use originlink_model::{Currency, Decimal, Money};
use rust_decimal::RoundingStrategy;
use serde::{Deserialize, Serialize};

use crate::declaration::{Declaration, Line};
use crate::tariff::{Rate, Scheme, Tariff};

/// The duty of one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duty {
    /// Duty at the MFN rate.
    pub mfn: Money,
    /// Duty at the claimed agreement's rate (the MFN duty when there is no preferential rate
    /// or no claim).
    pub preferential: Money,
    /// What the importer pays.
    pub due: Money,
    /// The duty forgone by granting the preference (`mfn − due`).
    pub preference_granted: Money,
}

/// Why a duty could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DutyError {
    /// No MFN rate for the country and subheading.
    #[error("no MFN rate for {country} {hs6}")]
    NoMfnRate {
        /// Importing country.
        country: String,
        /// The subheading.
        hs6: String,
    },
    /// A specific rate is in another currency than the line's customs value.
    #[error("the {scheme} specific rate is in {rate}, the line in {line}")]
    SpecificCurrency {
        /// The scheme.
        scheme: Scheme,
        /// The rate's currency.
        rate: Currency,
        /// The line's currency.
        line: Currency,
    },
    /// A specific rate is per another unit than the line's quantity.
    #[error("the {scheme} specific rate is per {rate}, the line in {line}")]
    SpecificUnit {
        /// The scheme.
        scheme: Scheme,
        /// The rate's unit.
        rate: String,
        /// The line's unit.
        line: String,
    },
    /// The amounts are beyond what exact decimals hold.
    #[error("the duty overflows")]
    Overflow,
}

impl DutyError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            DutyError::NoMfnRate { .. } => "TARIFF_NOT_FOUND",
            DutyError::SpecificCurrency { .. } => "SPECIFIC_RATE_CURRENCY",
            DutyError::SpecificUnit { .. } => "SPECIFIC_RATE_UNIT",
            DutyError::Overflow => "DUTY_OVERFLOW",
        }
    }
}

/// Rounds half-up (away from zero) to the currency's minor units.
/// The result always carries exactly the minor units (`0.00`, never `0`), so every amount of
/// a currency prints the same way.
pub fn round(amount: Decimal, currency: Currency) -> Decimal {
    let mut r = amount.round_dp_with_strategy(currency.minor_units(), RoundingStrategy::MidpointAwayFromZero);
    r.rescale(currency.minor_units());
    r
}

/// The unrounded duty of a rate on a line.
pub fn rate_amount(line: &Line, scheme: Scheme, rate: &Rate) -> Result<Decimal, DutyError> {
    let value = line.customs_value.amount();
    let ad_valorem = value
        .checked_mul(rate.ad_valorem_pct)
        .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
        .ok_or(DutyError::Overflow)?;
    let specific = match &rate.specific {
        None => Decimal::ZERO,
        Some(s) => {
            if s.currency != line.customs_value.currency() {
                return Err(DutyError::SpecificCurrency {
                    scheme,
                    rate: s.currency,
                    line: line.customs_value.currency(),
                });
            }
            if s.unit != line.quantity.unit() {
                return Err(DutyError::SpecificUnit {
                    scheme,
                    rate: s.unit.to_string(),
                    line: line.quantity.unit().to_string(),
                });
            }
            line.quantity.value().checked_mul(s.amount).ok_or(DutyError::Overflow)?
        }
    };
    ad_valorem.checked_add(specific).ok_or(DutyError::Overflow)
}

/// The duty of a line of `decl` under `tariff`; `granted` says whether the preference was
/// granted (see [`crate::decide`]).
pub fn duty(decl: &Declaration, line: &Line, tariff: &Tariff, granted: bool) -> Result<Duty, DutyError> {
    let country = decl.importing_country;
    let currency = line.customs_value.currency();
    let mfn_rate = tariff.rate(country, Scheme::Mfn, &line.hs_code).ok_or_else(|| DutyError::NoMfnRate {
        country: country.to_string(),
        hs6: line.hs_code.subheading().to_owned(),
    })?;
    let mfn = round(rate_amount(line, Scheme::Mfn, mfn_rate)?, currency);
    let preferential = match line
        .claimed_agreement
        .map(Scheme::Preferential)
        .and_then(|s| tariff.rate(country, s, &line.hs_code).map(|r| (s, r)))
    {
        Some((scheme, rate)) => round(rate_amount(line, scheme, rate)?, currency),
        None => mfn,
    };
    let due = if granted { preferential.min(mfn) } else { mfn };
    let money = |a: Decimal| Money::new(a, currency).map_err(|_| DutyError::Overflow);
    Ok(Duty {
        mfn: money(mfn)?,
        preferential: money(preferential)?,
        due: money(due)?,
        preference_granted: money(mfn - due)?,
    })
}

/// Totals of one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Sum of `preference_granted`.
    pub preference_granted_total: Decimal,
    /// Sum of `due`.
    pub duty_collected_total: Decimal,
    /// Sum of `mfn` (what would have been collected without any preference).
    pub mfn_total: Decimal,
    /// Number of lines.
    pub lines: u64,
}

/// Revenue totals per currency (amounts in different currencies are never added).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revenue {
    /// Totals per currency.
    pub per_currency: BTreeMap<Currency, Totals>,
}

impl Revenue {
    /// Adds one line's duty. `DUTY_OVERFLOW` when a total would leave the decimal range (the
    /// totals are then unchanged).
    pub fn add(&mut self, d: &Duty) -> Result<(), DutyError> {
        let t = self.per_currency.entry(d.due.currency()).or_default();
        let next = Totals {
            preference_granted_total: t
                .preference_granted_total
                .checked_add(d.preference_granted.amount())
                .ok_or(DutyError::Overflow)?,
            duty_collected_total: t
                .duty_collected_total
                .checked_add(d.due.amount())
                .ok_or(DutyError::Overflow)?,
            mfn_total: t.mfn_total.checked_add(d.mfn.amount()).ok_or(DutyError::Overflow)?,
            lines: t.lines + 1,
        };
        *t = next;
        Ok(())
    }

    /// The totals of many lines.
    pub fn of<'a>(duties: impl IntoIterator<Item = &'a Duty>) -> Result<Revenue, DutyError> {
        let mut r = Revenue::default();
        for d in duties {
            r.add(d)?;
        }
        Ok(r)
    }

    /// The totals of one currency.
    pub fn totals(&self, currency: Currency) -> Option<&Totals> {
        self.per_currency.get(&currency)
    }
}
