//! The good to assess, as domain types: every value here is already checked (see
//! [`crate::input`] for the JSON request that becomes a [`Good`]).

use originlink_model::{CountryCode, Currency, Decimal, HsCode};

use crate::rule::Rule;
use crate::settings::{Regime, RvcMethod};

/// A good with its bill of materials and the rule it must meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Good {
    /// ATIGA, RCEP or GENERIC.
    pub regime: Regime,
    /// Where the good is produced and exported from.
    pub exporting_country: CountryCode,
    /// The product.
    pub product: Product,
    /// The rule, and where it comes from.
    pub rule: RuleChoice,
    /// The RVC method the exporter chose, if any.
    pub method: Option<RvcMethod>,
    /// The value the RVC is computed on.
    pub valuation: Option<Valuation>,
    /// Costs other than materials (used by build-up).
    pub costs: Costs,
    /// The bill of materials.
    pub materials: Vec<Material>,
    /// The operations carried out in the exporting country, by name.
    pub operations: Vec<String>,
    /// Stated wholly obtained or produced in the exporting country.
    pub wholly_obtained: bool,
    /// GENERIC only: a de minimis share of the valuation, in percent.
    pub de_minimis_percent: Option<Decimal>,
}

/// The product being assessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Its HS 2022 code.
    pub hs: HsCode,
    /// A description, for the report.
    pub description: String,
    /// Its weight, for de minimis by weight.
    pub weight_kg: Option<Decimal>,
}

/// The rule of a good and where it was taken from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleChoice {
    /// The rule.
    pub rule: Rule,
    /// Where it comes from.
    pub origin: RuleOrigin,
}

/// Where a rule comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOrigin {
    /// Stated in the request.
    Given,
    /// A row of the agreement's PSR table: its range and legal source.
    Psr {
        /// The range of the row, as written (`8517.12`).
        range: String,
        /// The legal source of the row.
        source: String,
    },
    /// The agreement's general rule.
    General {
        /// The legal source.
        source: String,
    },
}

/// What the RVC is computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Valuation {
    /// FOB, EXW, NC or TV.
    pub basis: Basis,
    /// The value, greater than zero.
    pub value: Decimal,
    /// Its currency (materials are in the same currency).
    pub currency: Currency,
}

/// The valuation basis of the RVC denominator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basis {
    /// Free on board (ATIGA, RCEP).
    Fob,
    /// Ex-works price (MaxNOM rules).
    Exw,
    /// Net cost.
    NetCost,
    /// Transaction value.
    TransactionValue,
}

impl Basis {
    /// Parses `FOB`, `EXW`, `NC` or `TV`.
    pub fn parse(s: &str) -> Option<Basis> {
        Some(match s {
            "FOB" => Basis::Fob,
            "EXW" => Basis::Exw,
            "NC" => Basis::NetCost,
            "TV" => Basis::TransactionValue,
            _ => return None,
        })
    }
    /// `FOB`, `EXW`, `NC` or `TV`.
    pub fn code(&self) -> &'static str {
        match self {
            Basis::Fob => "FOB",
            Basis::Exw => "EXW",
            Basis::NetCost => "NC",
            Basis::TransactionValue => "TV",
        }
    }
}

/// Costs other than materials, each zero when not stated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Costs {
    /// Direct labour.
    pub direct_labour: Decimal,
    /// Direct overhead.
    pub direct_overhead: Decimal,
    /// Profit.
    pub profit: Decimal,
    /// Other costs.
    pub other: Decimal,
}

impl Costs {
    /// The sum of all costs.
    pub fn total(&self) -> Decimal {
        self.direct_labour + self.direct_overhead + self.profit + self.other
    }
}

/// One line of the bill of materials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Material {
    /// What it is.
    pub name: String,
    /// Its HS 2022 code.
    pub hs: HsCode,
    /// Its value (CIF, or earliest ascertainable price); unknown when not stated.
    pub value: Option<Decimal>,
    /// Where it comes from, if known.
    pub origin: Option<CountryCode>,
    /// Its origin status.
    pub status: Status,
    /// Its weight, for de minimis by weight.
    pub weight_kg: Option<Decimal>,
}

/// The origin status of a material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Originating (in the exporting country, or in another member by accumulation).
    Originating,
    /// Non-originating.
    NonOriginating,
    /// Origin not determined: counted as non-originating.
    Undetermined,
    /// ATIGA partial cumulation: an intermediate with this RVC, in percent.
    Partial {
        /// The material's own RVC, in percent.
        rvc: Decimal,
    },
}

impl Status {
    /// Whether tariff-change tests treat the material as originating (only `originating`
    /// does; a partial material is non-originating for them).
    pub fn is_originating(&self) -> bool {
        matches!(self, Status::Originating)
    }
}
