//! The origin criterion of an item: Form D box 8 or the RCEP criterion box.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ParseError;

/// A change-in-tariff-classification level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ctc {
    /// Change of chapter (2 digits).
    #[serde(rename = "CC")]
    Chapter,
    /// Change of heading (4 digits).
    #[serde(rename = "CTH")]
    Heading,
    /// Change of subheading (6 digits).
    #[serde(rename = "CTSH")]
    Subheading,
}

impl Ctc {
    /// `CC`, `CTH` or `CTSH`.
    pub fn code(&self) -> &'static str {
        match self {
            Ctc::Chapter => "CC",
            Ctc::Heading => "CTH",
            Ctc::Subheading => "CTSH",
        }
    }
}

/// The origin criterion as written on the certificate.
///
/// Written forms (ATIGA Form D box 8 and the RCEP box): `WO`, `PE`, `CC`, `CTH`, `CTSH`,
/// `CTC`, `40%` (or `RVC40`, `RVC 40%`), `RVC`, `CTSH + 35%`, `PC 25%`, `SP`, `CR`, `ACU`, `DMI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum OriginCriterion {
    /// Wholly obtained or produced.
    WhollyObtained,
    /// Produced entirely from originating materials.
    ProducedEntirely,
    /// A change in tariff classification at a given level (ATIGA writes the level).
    Ctc(Ctc),
    /// A change in tariff classification, level not written (RCEP `CTC`).
    CtcUnspecified,
    /// Regional value content; ATIGA writes the percentage, RCEP writes `RVC`.
    Rvc(Option<u8>),
    /// A tariff change together with an RVC, e.g. `CTSH + 35%`.
    CtcPlusRvc(Ctc, u8),
    /// ATIGA partial cumulation with the good's RVC, e.g. `PC 25%`.
    PartialCumulation(u8),
    /// A specific process (ATIGA `SP`).
    SpecificProcess,
    /// Chemical reaction (RCEP `CR`).
    ChemicalReaction,
    /// Accumulation (RCEP `ACU`).
    Accumulation,
    /// De minimis (RCEP `DMI`).
    DeMinimis,
}

impl OriginCriterion {
    /// Parses a written criterion. Error code `CRITERION_INVALID`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let norm: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
        let err = || ParseError::new("CRITERION_INVALID", s);
        let pct = |t: &str| -> Result<u8, ParseError> {
            let t = t.strip_suffix('%').unwrap_or(t);
            if t.is_empty() || t.len() > 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            match t.parse::<u8>() {
                Ok(n) if (1..=100).contains(&n) => Ok(n),
                _ => Err(err()),
            }
        };
        let ctc = |t: &str| match t {
            "CC" => Some(Ctc::Chapter),
            "CTH" => Some(Ctc::Heading),
            "CTSH" => Some(Ctc::Subheading),
            _ => None,
        };
        Ok(match norm.as_str() {
            "WO" => Self::WhollyObtained,
            "PE" => Self::ProducedEntirely,
            "CTC" => Self::CtcUnspecified,
            "RVC" => Self::Rvc(None),
            "SP" => Self::SpecificProcess,
            "CR" => Self::ChemicalReaction,
            "ACU" => Self::Accumulation,
            "DMI" => Self::DeMinimis,
            n => {
                if let Some(c) = ctc(n) {
                    Self::Ctc(c)
                } else if let Some(rest) = n.strip_prefix("PC") {
                    Self::PartialCumulation(pct(rest)?)
                } else if let Some((a, b)) = n.split_once('+') {
                    let c = ctc(a).ok_or_else(err)?;
                    Self::CtcPlusRvc(c, pct(b.strip_prefix("RVC").unwrap_or(b))?)
                } else if let Some(rest) = n.strip_prefix("RVC") {
                    Self::Rvc(Some(pct(rest)?))
                } else if n.ends_with('%') {
                    Self::Rvc(Some(pct(n)?))
                } else {
                    return Err(err());
                }
            }
        })
    }

    /// The kind, as named in `AgreementSettings::criteria`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::WhollyObtained => "WO",
            Self::ProducedEntirely => "PE",
            Self::Ctc(c) => c.code(),
            Self::CtcUnspecified => "CTC",
            Self::Rvc(_) => "RVC",
            Self::CtcPlusRvc(..) => "CTC+RVC",
            Self::PartialCumulation(_) => "PC",
            Self::SpecificProcess => "SP",
            Self::ChemicalReaction => "CR",
            Self::Accumulation => "ACU",
            Self::DeMinimis => "DMI",
        }
    }

    /// Whether the criterion rests on a regional value content, so FOB must be stated.
    pub fn uses_rvc(&self) -> bool {
        matches!(self, Self::Rvc(_) | Self::CtcPlusRvc(..) | Self::PartialCumulation(_))
    }
}

impl fmt::Display for OriginCriterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rvc(Some(p)) => write!(f, "{p}%"),
            Self::CtcPlusRvc(c, p) => write!(f, "{} + {p}%", c.code()),
            Self::PartialCumulation(p) => write!(f, "PC {p}%"),
            other => f.write_str(other.kind()),
        }
    }
}

impl TryFrom<String> for OriginCriterion {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}
impl From<OriginCriterion> for String {
    fn from(c: OriginCriterion) -> String {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_forms_round_trip() {
        for s in [
            "WO",
            "PE",
            "CC",
            "CTH",
            "CTSH",
            "CTC",
            "40%",
            "RVC",
            "CTSH + 35%",
            "PC 25%",
            "SP",
            "CR",
            "ACU",
            "DMI",
        ] {
            assert_eq!(OriginCriterion::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(OriginCriterion::parse("RVC40").unwrap(), OriginCriterion::Rvc(Some(40)));
        assert_eq!(OriginCriterion::parse("rvc 40%").unwrap(), OriginCriterion::Rvc(Some(40)));
        assert_eq!(
            OriginCriterion::parse("CTSH+RVC35").unwrap(),
            OriginCriterion::CtcPlusRvc(Ctc::Subheading, 35)
        );
    }

    #[test]
    fn refuses_nonsense() {
        for s in ["", "XX", "0%", "101%", "PC", "CTH + ", "+40%", "40", "RVC-5", "PC 1000%"] {
            assert!(OriginCriterion::parse(s).is_err(), "{s}");
        }
    }
}
