//! Importing customs: the pure core that turns an import declaration and the e-COs received
//! for it into decisions, ledger movements, duty, verification requests and a risk score.
//!
//! Architecture invariant: no IO, no clock, no database. Every instant ("now", "received at")
//! is a parameter; the node keeps the ledger rows and applies the movements this crate
//! computes in the same transaction that locks them. Amounts are exact decimals.
//!
//! # Layout
//! - [`declaration`]: `Declaration`, `Line`, `EcoRef`; the JSON reader (every problem with a
//!   code and a JSON pointer) and writer.
//! - [`reason`]: the stable reason codes (`docs/reason-codes.md`).
//! - [`policy`]: per-agreement, per-country policy: partial use, validity, late-proof and
//!   pending allowances, verification deadline.
//! - [`decide`]: `CertificateFacts`, `decide` one line with every reason that applies,
//!   `decide_declaration`, `is_candidate` for `PENDING` lines.
//! - [`ledger`]: remaining quantities, `consume` that never goes negative, utilization and
//!   its UNCL 1373 status code.
//! - [`tariff`]: tariff tables (CSV, `docs/tariffs.md`) and the compiled-in demo tables.
//! - [`duty`]: duty with and without preference, rounding, revenue totals.
//! - [`verification`]: verification requests, deadlines, the overdue list, denial.
//! - [`risk`]: risk rules, weights and thresholds, the score.

pub mod decide;
pub mod declaration;
pub mod duty;
pub mod ledger;
pub mod policy;
pub mod reason;
pub mod risk;
pub mod tariff;
pub mod verification;

pub use decide::{
    CertificateFacts, LineDecision, Outcome, VerificationStatus, decide, decide_declaration, is_candidate,
    normalize_id, normalize_name,
};
pub use declaration::{Declaration, EcoRef, Importer, Line};
pub use duty::{Duty, DutyError, Revenue, Totals, duty};
pub use ledger::{Consumption, ItemBalance, Ledger, LedgerError, Lodging, Utilization};
pub use policy::{CustomsPolicy, Policies};
pub use reason::{Reason, ReasonCode};
pub use risk::{LineFacts, Risk, RiskCode, RiskConfig, RiskHistory, RiskReason, RiskWeights, score};
pub use tariff::{Rate, Scheme, Specific, Tariff, TariffError};
pub use verification::{CertificateUse, VerificationRequest, VerificationState, View, apply_denial, overdue};
