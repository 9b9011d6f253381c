//! Rules of origin: whether a good originates under ATIGA, RCEP or an explicit rule, computed
//! exactly from its bill of materials and explained line by line.
//!
//! Architecture invariant: this crate does no IO. The PSR tables are data files compiled in;
//! requests arrive as bytes or JSON values, answers leave as values and strings.
//!
//! # Layout
//! - [`rule`]: the rule tree ([`Rule`], [`Atom`], [`ClassRef`]) and its printer (`Display`).
//! - [`parse`]: [`parse_rule`], the parser of the rule language, with positioned errors.
//! - [`settings`]: [`Regime`] (ATIGA, RCEP, GENERIC) and its [`OriginSettings`]: general rule,
//!   de minimis, partial cumulation, RVC method, minimal operations, with legal sources.
//! - [`psr`]: [`PsrTable`], product-specific rules keyed by HS ranges (`psr/*.psr`).
//! - [`good`]: the domain input, a [`Good`] with its [`Material`]s.
//! - [`input`]: [`parse_request`], the `qualify` JSON request into a [`Good`].
//! - [`eval`]: [`qualify`], a [`Good`] into an [`Assessment`].
//! - [`code`]: [`certificate_code`], the Form D box 8 / RCEP criterion code.
//! - `report`: an [`Assessment`] as the `qualify` JSON output or as plain text
//!   ([`Assessment::to_json`], [`Assessment::render_text`]).
//!
//! # Qualifying a good
//! ```
//! let request = br#"{
//!   "agreement": "ATIGA", "exporting_country": "TH",
//!   "product": { "hs": "9403.60" },
//!   "valuation": { "basis": "FOB", "value": "100.00", "currency": "USD" },
//!   "materials": [ { "name": "sawn oak", "hs": "4407.91", "value": "50.00", "status": "non-originating" } ]
//! }"#;
//! let good = originlink_rules::parse_request(request).unwrap();
//! let a = originlink_rules::qualify(&good).unwrap();
//! assert!(a.originating);
//! assert_eq!(a.criterion.as_deref(), Some("RVC40")); // the ATIGA general rule, RVC first
//! assert_eq!(a.certificate_code.as_deref(), Some("40%"));
//! assert_eq!(a.rvc_percent().as_deref(), Some("50.0000"));
//! ```

pub mod code;
mod error;
pub mod eval;
pub mod good;
pub mod input;
pub mod parse;
pub mod psr;
mod report;
pub mod rule;
pub mod settings;

pub use code::certificate_code;
pub use error::{InputError, RuleError, TableError};
pub use eval::{
    AlternativeResult, Assessment, DeMinimisBasis, DeMinimisUse, MaterialResult, RvcFigures, qualify,
    qualify_with, rule_is_met,
};
pub use good::{Basis, Costs, Good, Material, Product, RuleChoice, RuleOrigin, Status, Valuation};
pub use input::{good_from_json, parse_request};
pub use parse::parse_rule;
pub use psr::{HsRange, PsrRow, PsrTable};
pub use rule::{AndWord, Atom, ClassRef, Ctc, OrWord, Rule, Rvc, RvcNotation};
pub use settings::{OriginSettings, Regime, RvcMethod};
