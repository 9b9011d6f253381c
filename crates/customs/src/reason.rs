//! Reason codes: why a line was denied or left pending. The codes are stable (they travel to
//! the issuing country and into reports); `docs/reason-codes.md` documents each one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A stable reason code. [`ReasonCode::code`] is the wire form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReasonCode {
    /// The line references a certificate this node has not received.
    CoNotReceived,
    /// The received certificate failed verification (the verification reason is the detail).
    CoInvalid,
    /// The certificate could not be verified yet (trust information unavailable): pending.
    CoNotVerified,
    /// The issuing country revoked the certificate.
    CoRevoked,
    /// A newer version replaced the certificate.
    CoSuperseded,
    /// The certificate's validity ended before the declaration date.
    CoExpired,
    /// The certificate is addressed to another importing country.
    WrongImportingCountry,
    /// The certificate's consignee is not the declaration's importer.
    ImporterMismatch,
    /// No certificate item has the line's 6-digit HS subheading.
    HsMismatch,
    /// Items with the subheading exist, but none in the line's unit.
    UnitMismatch,
    /// The matched item has some quantity left, but less than the line declares.
    QuantityExceeded,
    /// Nothing is left of the matched item, or (partial use `none`) another declaration
    /// already used the certificate.
    AlreadyUtilized,
    /// The line's invoice number is not the one on the certificate.
    InvoiceMismatch,
    /// The line claims another agreement than the certificate's.
    AgreementMismatch,
    /// The certificate was received later than the declaration date plus the allowance.
    LateProof,
    /// A verification of the certificate ended in denial.
    VerificationDenied,
    /// The line declares `PENDING`: the certificate is awaited.
    Pending,
    /// A customs officer re-decided or overrode the line (the detail is the officer's reason).
    OfficerDecision,
}

impl ReasonCode {
    /// Every code, in documentation order.
    pub const ALL: [ReasonCode; 18] = [
        ReasonCode::CoNotReceived,
        ReasonCode::CoInvalid,
        ReasonCode::CoNotVerified,
        ReasonCode::CoRevoked,
        ReasonCode::CoSuperseded,
        ReasonCode::CoExpired,
        ReasonCode::WrongImportingCountry,
        ReasonCode::ImporterMismatch,
        ReasonCode::HsMismatch,
        ReasonCode::UnitMismatch,
        ReasonCode::QuantityExceeded,
        ReasonCode::AlreadyUtilized,
        ReasonCode::InvoiceMismatch,
        ReasonCode::AgreementMismatch,
        ReasonCode::LateProof,
        ReasonCode::VerificationDenied,
        ReasonCode::Pending,
        ReasonCode::OfficerDecision,
    ];

    /// The stable wire form, e.g. `HS_MISMATCH`.
    pub fn code(&self) -> &'static str {
        match self {
            ReasonCode::CoNotReceived => "CO_NOT_RECEIVED",
            ReasonCode::CoInvalid => "CO_INVALID",
            ReasonCode::CoNotVerified => "CO_NOT_VERIFIED",
            ReasonCode::CoRevoked => "CO_REVOKED",
            ReasonCode::CoSuperseded => "CO_SUPERSEDED",
            ReasonCode::CoExpired => "CO_EXPIRED",
            ReasonCode::WrongImportingCountry => "WRONG_IMPORTING_COUNTRY",
            ReasonCode::ImporterMismatch => "IMPORTER_MISMATCH",
            ReasonCode::HsMismatch => "HS_MISMATCH",
            ReasonCode::UnitMismatch => "UNIT_MISMATCH",
            ReasonCode::QuantityExceeded => "QUANTITY_EXCEEDED",
            ReasonCode::AlreadyUtilized => "ALREADY_UTILIZED",
            ReasonCode::InvoiceMismatch => "INVOICE_MISMATCH",
            ReasonCode::AgreementMismatch => "AGREEMENT_MISMATCH",
            ReasonCode::LateProof => "LATE_PROOF",
            ReasonCode::VerificationDenied => "VERIFICATION_DENIED",
            ReasonCode::Pending => "PENDING",
            ReasonCode::OfficerDecision => "OFFICER_DECISION",
        }
    }

    /// Parses the wire form.
    pub fn parse(s: &str) -> Option<ReasonCode> {
        ReasonCode::ALL.into_iter().find(|c| c.code() == s)
    }

    /// Whether the code leaves the line pending instead of denying it.
    pub fn is_pending(&self) -> bool {
        matches!(self, ReasonCode::Pending | ReasonCode::CoNotVerified)
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One reason on a line decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// The stable code.
    pub code: ReasonCode,
    /// What was compared, for people (and the verification reason for `CO_INVALID`).
    pub detail: String,
    /// The declaration field concerned, as a JSON pointer (`/lines/2/quantity`), when one is.
    pub field: Option<String>,
}

impl Reason {
    /// A reason with a detail and an optional field.
    pub fn new(code: ReasonCode, detail: impl Into<String>, field: Option<String>) -> Self {
        Reason { code, detail: detail.into(), field }
    }
}
