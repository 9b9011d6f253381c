//! The e-CO document model: the certificate of origin (ATIGA Form D and RCEP), its strong
//! types and its validation.
//!
//! Architecture invariant: this crate does no IO and knows nothing of XML, JSON wire shapes,
//! HTTP or SQL. Wire formats live in `originlink-formats` and convert explicitly.
//!
//! # Layout
//! - [`codes`]: `CountryCode`, `Currency`, `UnitCode`, `PackageKind` (code lists).
//! - [`hs`]: `HsCode` and the compiled-in HS 2022 [`Nomenclature`].
//! - [`money`]: exact decimals: `Money`, `Quantity`, `parse_decimal`.
//! - [`criterion`]: the origin criterion (box 8).
//! - [`agreement`]: `Agreement` and its `AgreementSettings` (data).
//! - [`certificate`]: the `Certificate` and its parts, box by box.
//! - [`validate`]: cross-field validation returning every `Problem`.
//! - [`sample`]: deterministic realistic certificates.

pub mod agreement;
pub mod certificate;
pub mod codes;
mod codes_data;
pub mod criterion;
mod error;
pub mod hs;
pub mod money;
pub mod sample;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod validate;

pub use agreement::{Agreement, AgreementSettings, PartialUse};
pub use certificate::*;
pub use chrono::NaiveDate;
pub use codes::{CountryCode, Currency, PackageKind, UnitCode};
pub use criterion::{Ctc, OriginCriterion};
pub use error::ParseError;
pub use hs::{HsCode, HsEntry, Nomenclature};
pub use money::{Money, Quantity, parse_decimal};
pub use rust_decimal::Decimal;
pub use validate::{Problem, validate, validate_with};
