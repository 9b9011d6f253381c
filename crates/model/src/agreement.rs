//! Trade agreements and their settings. The settings are data (`agreements.json`, compiled
//! in) so that a deployment can read its own copy with different per-country practice.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::codes::CountryCode;
use crate::error::ParseError;

/// A preferential trade agreement OriginLink issues certificates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Agreement {
    /// ASEAN Trade in Goods Agreement (ATIGA), Form D.
    #[serde(rename = "ATIGA")]
    Atiga,
    /// Regional Comprehensive Economic Partnership.
    #[serde(rename = "RCEP")]
    Rcep,
}

impl Agreement {
    /// Every agreement.
    pub const ALL: [Agreement; 2] = [Agreement::Atiga, Agreement::Rcep];

    /// Parses `ATIGA` or `RCEP` (case-insensitive). Error code `AGREEMENT_UNKNOWN`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s.to_ascii_uppercase().as_str() {
            "ATIGA" => Ok(Agreement::Atiga),
            "RCEP" => Ok(Agreement::Rcep),
            _ => Err(ParseError::new("AGREEMENT_UNKNOWN", s)),
        }
    }
    /// `ATIGA` or `RCEP`.
    pub fn code(&self) -> &'static str {
        match self {
            Agreement::Atiga => "ATIGA",
            Agreement::Rcep => "RCEP",
        }
    }
    /// The built-in settings.
    pub fn settings(&self) -> &'static AgreementSettings {
        &BUILT_IN[self]
    }
}

impl fmt::Display for Agreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Whether one certificate may be used across several import declarations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartialUse {
    /// Several declarations may each use part of the quantities.
    Allowed,
    /// One declaration uses the certificate.
    None,
}

/// An agreement's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementSettings {
    /// Full name.
    pub name: String,
    /// Name of the certificate form.
    pub form: String,
    /// Parties to the agreement.
    pub members: Vec<CountryCode>,
    /// Validity from the issue date, in months.
    pub validity_months: u32,
    /// Origin-criterion kinds allowed in the criterion box (see `OriginCriterion::kind`).
    pub criteria: Vec<String>,
    /// Partial use across declarations.
    pub partial_use: PartialUse,
    /// Whether an item claimed under an RVC criterion must state its FOB value.
    pub fob_required_for_rvc: bool,
    /// Most items one certificate may carry.
    pub max_items: usize,
    /// Issued later than this many days after shipment, the certificate is retroactive.
    pub retroactive_after_days: u32,
    /// Retroactive issuance is allowed up to this many days after shipment.
    pub retroactive_max_days: u32,
    /// Default deadline for answering a verification request, in days.
    pub verification_deadline_days: u32,
    /// The legal source of each setting.
    #[serde(default)]
    pub sources: BTreeMap<String, String>,
}

impl AgreementSettings {
    /// Whether a country is a party.
    pub fn is_member(&self, c: CountryCode) -> bool {
        self.members.contains(&c)
    }
    /// Whether a criterion kind is allowed.
    pub fn allows_criterion(&self, kind: &str) -> bool {
        self.criteria.iter().any(|k| k == kind)
    }
}

static BUILT_IN: LazyLock<BTreeMap<Agreement, AgreementSettings>> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../agreements.json"))
        .expect("agreements.json is checked by a unit test")
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_settings_load() {
        let a = Agreement::Atiga.settings();
        assert_eq!(a.max_items, 50);
        assert!(a.is_member(CountryCode::parse("KH").unwrap()));
        assert!(!a.is_member(CountryCode::parse("CN").unwrap()));
        assert!(Agreement::Rcep.settings().is_member(CountryCode::parse("CN").unwrap()));
        assert!(Agreement::Rcep.settings().allows_criterion("CTC"));
        assert!(!Agreement::Atiga.settings().allows_criterion("CTC"));
    }

    #[test]
    fn parse() {
        assert_eq!(Agreement::parse("rcep").unwrap(), Agreement::Rcep);
        assert_eq!(Agreement::parse("NAFTA").unwrap_err().code, "AGREEMENT_UNKNOWN");
    }
}
