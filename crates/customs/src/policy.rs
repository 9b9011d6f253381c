//! Customs policy per agreement and importing country: what the decision needs from the
//! agreement (validity, partial use, verification deadline) plus what `agreements.json` does
//! not carry (the late-proof and pending allowances), with per-country overrides.

use std::collections::BTreeMap;

use originlink_model::{Agreement, AgreementSettings, CountryCode, PartialUse};
use serde::{Deserialize, Serialize};

/// Days after the declaration date within which a certificate referenced by number may still
/// arrive. 0: the proof must be held when the declaration is filed (ATIGA and RCEP both ask
/// for it; RCEP admits late proof only for force majeure or valid cause, which an officer
/// grants case by case).
pub const DEFAULT_LATE_PROOF_DAYS: u32 = 0;

/// Days after the declaration date within which a certificate may arrive for a line declared
/// `PENDING` (Cambodian practice lets declarants enter PENDING and amend later; the period is
/// not published, so this is a setting).
pub const DEFAULT_PENDING_DAYS: u32 = 30;

/// The policy one decision applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomsPolicy {
    /// Whether several declarations may share a certificate.
    pub partial_use: PartialUse,
    /// Validity from the issue date, in months (the last valid day is the day before the
    /// same date `validity_months` later).
    pub validity_months: u32,
    /// Default deadline of a verification request, in days.
    pub verification_deadline_days: u32,
    /// Allowance for a certificate referenced by number: see [`DEFAULT_LATE_PROOF_DAYS`].
    pub late_proof_days: u32,
    /// Allowance for a line declared `PENDING`: see [`DEFAULT_PENDING_DAYS`].
    pub pending_days: u32,
}

impl CustomsPolicy {
    /// The policy from an agreement's settings and this crate's defaults.
    pub fn from_settings(s: &AgreementSettings) -> Self {
        CustomsPolicy {
            partial_use: s.partial_use,
            validity_months: s.validity_months,
            verification_deadline_days: s.verification_deadline_days,
            late_proof_days: DEFAULT_LATE_PROOF_DAYS,
            pending_days: DEFAULT_PENDING_DAYS,
        }
    }
}

/// Policies per agreement, with overrides per importing country.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    /// The default per agreement.
    pub agreements: BTreeMap<Agreement, CustomsPolicy>,
    /// Per importing country, per agreement: replaces the default.
    #[serde(default)]
    pub countries: BTreeMap<CountryCode, BTreeMap<Agreement, CustomsPolicy>>,
}

impl Policies {
    /// The built-in agreement settings, no country overrides.
    pub fn builtin() -> Self {
        let agreements =
            Agreement::ALL.iter().map(|a| (*a, CustomsPolicy::from_settings(a.settings()))).collect();
        Policies { agreements, countries: BTreeMap::new() }
    }

    /// Sets the policy of one agreement in one importing country.
    pub fn with_country(mut self, country: CountryCode, agreement: Agreement, policy: CustomsPolicy) -> Self {
        self.countries.entry(country).or_default().insert(agreement, policy);
        self
    }

    /// The policy for an agreement in an importing country: the country's override, else the
    /// agreement's default, else the built-in settings.
    pub fn get(&self, agreement: Agreement, importing: CountryCode) -> CustomsPolicy {
        self.countries
            .get(&importing)
            .and_then(|m| m.get(&agreement))
            .or_else(|| self.agreements.get(&agreement))
            .cloned()
            .unwrap_or_else(|| CustomsPolicy::from_settings(agreement.settings()))
    }
}

impl Default for Policies {
    fn default() -> Self {
        Policies::builtin()
    }
}
