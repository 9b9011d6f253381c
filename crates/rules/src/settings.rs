//! Per-agreement origin settings: general rule, de minimis, cumulation, RVC method and minimal
//! operations, each with its legal source. [`Regime`] adds `GENERIC` (an explicit rule, no
//! agreement) to the agreements of the model.

use std::fmt;

use originlink_model::{Agreement, CountryCode, Decimal};

/// What the rules of origin come from: an agreement of the model, or `GENERIC` (the rule is
/// given explicitly and nothing is assumed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Regime {
    /// ATIGA or RCEP.
    Agreement(Agreement),
    /// No agreement: the request states the rule (and any de minimis).
    Generic,
}

impl Regime {
    /// `ATIGA`, `RCEP` or `GENERIC` (case-insensitive).
    pub fn parse(s: &str) -> Option<Regime> {
        if s.eq_ignore_ascii_case("GENERIC") {
            return Some(Regime::Generic);
        }
        Agreement::parse(s).ok().map(Regime::Agreement)
    }
    /// `ATIGA`, `RCEP` or `GENERIC`.
    pub fn code(&self) -> &'static str {
        match self {
            Regime::Agreement(a) => a.code(),
            Regime::Generic => "GENERIC",
        }
    }
}

impl fmt::Display for Regime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// How the regional value content is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RvcMethod {
    /// Indirect: (value − non-originating materials) / value × 100.
    BuildDown,
    /// Direct: (originating materials + labour + overhead + profit + other) / value × 100.
    BuildUp,
}

impl RvcMethod {
    /// `build-down` or `build-up` (case-insensitive).
    pub fn parse(s: &str) -> Option<RvcMethod> {
        if s.eq_ignore_ascii_case("build-down") {
            Some(RvcMethod::BuildDown)
        } else if s.eq_ignore_ascii_case("build-up") {
            Some(RvcMethod::BuildUp)
        } else {
            None
        }
    }
    /// `build-down` or `build-up`.
    pub fn code(&self) -> &'static str {
        match self {
            RvcMethod::BuildDown => "build-down",
            RvcMethod::BuildUp => "build-up",
        }
    }
}

/// The minimal operations the request may name (`operations`). An agreement lists some of
/// them; any other name is a substantive operation.
pub const MINIMAL_OPERATION_NAMES: [&str; 12] = [
    "preservation",
    "facilitating-shipment",
    "packaging",
    "simple-cutting",
    "sorting",
    "marking",
    "dilution",
    "disassembly",
    "slaughtering",
    "simple-painting",
    "peeling",
    "simple-mixing",
];

/// ATIGA partial cumulation (Art. 30(2)): a material with an RVC in `[floor, threshold)`
/// counts as originating in proportion to its RVC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialCumulation {
    /// Below this RVC the material counts as wholly non-originating (20 %).
    pub floor: Decimal,
    /// At or above this RVC the material is originating in its own right (40 %).
    pub threshold: Decimal,
}

/// De minimis by weight for goods of a range of chapters (RCEP Art. 3.7(1)(b)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeightDeMinimis {
    /// Largest share of the good's weight, in percent.
    pub percent: Decimal,
    /// First and last chapter of the goods it applies to.
    pub chapters: (u8, u8),
}

/// The origin settings of one regime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginSettings {
    /// Which regime.
    pub regime: Regime,
    /// The rule for goods with no product-specific rule, if the agreement has one.
    pub general_rule: Option<&'static str>,
    /// De minimis by value: the non-originating materials failing a tariff change may be
    /// at most this share of the valuation, in percent.
    pub de_minimis_value_percent: Option<Decimal>,
    /// De minimis by weight, for some chapters.
    pub de_minimis_weight: Option<WeightDeMinimis>,
    /// Partial cumulation, where the agreement has it.
    pub partial_cumulation: Option<PartialCumulation>,
    /// The RVC method when neither the rule nor the request names one and the exporting
    /// country has no setting.
    pub default_method: RvcMethod,
    /// Each exporting country's own method (ATIGA Art. 29: a member state uses one method).
    pub method_by_country: Vec<(CountryCode, RvcMethod)>,
    /// The minimal operations the agreement lists (names from [`MINIMAL_OPERATION_NAMES`]).
    pub minimal_operations: &'static [&'static str],
    /// The box the certificate code goes into, for explanations.
    pub certificate_box: &'static str,
    /// Legal source of each setting, by setting name.
    pub sources: &'static [(&'static str, &'static str)],
}

impl OriginSettings {
    /// The built-in settings of a regime. For `GENERIC` nothing is assumed: no general rule,
    /// no de minimis, no cumulation, no minimal operations.
    pub fn builtin(regime: Regime) -> OriginSettings {
        match regime {
            Regime::Agreement(Agreement::Atiga) => OriginSettings {
                regime,
                general_rule: Some("RVC40 or CTH"),
                de_minimis_value_percent: Some(Decimal::TEN),
                de_minimis_weight: None,
                partial_cumulation: Some(PartialCumulation {
                    floor: Decimal::from(20),
                    threshold: Decimal::from(40),
                }),
                default_method: RvcMethod::BuildDown,
                // No member's choice is confirmed from a legal text yet; a deployment adds them.
                method_by_country: Vec::new(),
                minimal_operations: &["preservation", "facilitating-shipment", "packaging"],
                certificate_box: "Form D box 8",
                sources: &[
                    ("general_rule", "ATIGA Art. 28(1): RVC not less than 40% or CTH, exporter's choice"),
                    ("de_minimis", "ATIGA Art. 33: 10% of FOB; the value still counts in any RVC"),
                    ("partial_cumulation", "ATIGA Art. 30(2): RVC from 20% to under 40% counts pro rata"),
                    ("method", "ATIGA Art. 29: direct or indirect formula, one per member state"),
                    ("minimal_operations", "ATIGA Art. 31: preservation, facilitating shipment, packaging"),
                ],
            },
            Regime::Agreement(Agreement::Rcep) => OriginSettings {
                regime,
                general_rule: None,
                de_minimis_value_percent: Some(Decimal::TEN),
                de_minimis_weight: Some(WeightDeMinimis { percent: Decimal::TEN, chapters: (50, 63) }),
                partial_cumulation: None,
                default_method: RvcMethod::BuildDown,
                method_by_country: Vec::new(),
                minimal_operations: &MINIMAL_OPERATION_NAMES,
                certificate_box: "RCEP certificate, origin conferring criterion",
                sources: &[
                    ("general_rule", "RCEP Art. 3.2: no general rule; every line has an Annex 3A PSR"),
                    ("de_minimis", "RCEP Art. 3.7: 10% of FOB, or for Chapters 50-63 10% of weight"),
                    ("method", "RCEP Art. 3.5: build-down or build-up"),
                    ("minimal_operations", "RCEP Art. 3.6 (a)-(k)"),
                ],
            },
            Regime::Generic => OriginSettings {
                regime,
                general_rule: None,
                de_minimis_value_percent: None,
                de_minimis_weight: None,
                partial_cumulation: None,
                default_method: RvcMethod::BuildDown,
                method_by_country: Vec::new(),
                minimal_operations: &[],
                certificate_box: "origin criterion",
                sources: &[],
            },
        }
    }

    /// The exporting country's RVC method, else the default.
    pub fn method_for(&self, country: CountryCode) -> RvcMethod {
        self.method_by_country.iter().find(|(c, _)| *c == country).map_or(self.default_method, |(_, m)| *m)
    }

    /// Whether the agreement lists `operation` as a minimal operation.
    pub fn is_minimal(&self, operation: &str) -> bool {
        self.minimal_operations.contains(&operation)
    }

    /// The legal source of a setting, if recorded.
    pub fn source(&self, setting: &str) -> Option<&'static str> {
        self.sources.iter().find(|(k, _)| *k == setting).map(|(_, v)| *v)
    }
}
