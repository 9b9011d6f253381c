//! Durable storage of an OriginLink node, behind one interface ([`Store`]) with two
//! implementations: SQLite (the default: one file, WAL) and PostgreSQL (several stateless node
//! replicas may share one database).
//!
//! Every operation that changes state is one transaction that also appends the matching audit
//! event(s), so the audit chain and the data can never disagree. Certificate numbers are
//! allocated inside the approving transaction, which makes them gapless: a failed approval
//! rolls its number back.
//!
//! Architecture invariant: no HTTP here, no clock (callers pass "now" in [`Ctx`]), no keys
//! (signing is a callback handed to [`Store::approve`]) but the audit chain's HMAC key, which
//! the caller hands in ([`open_keyed`]); no key files are read here.
//!
//! # Layout
//! - [`audit`]: the keyed hash chain: canonical event bytes, hashing, appending and
//!   verification.
//! - [`checkpoint`]: the chain head anchored outside the database, in a MACed file.
//! - [`sqlite`], [`postgres`]: the two backends and their migrations.
//! - `inbox`: applying inbound exchange messages (dedup, holding out-of-order messages,
//!   releasing them), written once over a small per-backend interface.
//! - this file: the records, the [`Store`] trait, [`StoreError`], [`open`] and the audit
//!   events both backends append.
//!
//! # Exchange
//! The outbox ([`OutMessage`], [`OutboxRow`]) is transactional: messages are written in the
//! transaction of the state change that causes them ([`Signed::messages`], [`MessagesFn`]),
//! then claimed by a sender with a lease ([`Store::claim_outbox`]). Inbound messages
//! ([`Inbound`]) are applied in batches ([`Store::apply_inbound`]): deduplicated by message
//! id, held until the certificate version they need is present, and their replies enqueued
//! when (and only when) they are applied. Message bodies are opaque bytes here.
//!
//! # Importing customs
//! Declarations ([`NewDeclaration`], [`Declaration`]) are stored as submitted with one row per
//! line; the customs logic (elsewhere) decides each line and hands the decisions to
//! [`Store::decide_lines`], which applies them in one transaction together with the
//! utilization ledger: per certificate item, the remaining quantity (exact decimals, stored as
//! canonical text, computed in Rust) is locked, checked and reduced, so concurrent claims never
//! over-use an item. Verification requests ([`VerificationRequest`]) are kept in both
//! directions; the exchange delivers them as [`InboundKind::VerificationRequest`] /
//! [`InboundKind::VerificationResponse`].

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
pub use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub mod audit;
pub mod checkpoint;
mod declarations;
mod inbox;
pub mod postgres;
pub mod sqlite;

pub use audit::{AuditEvent, AuditKey, AuditSetup, Broken, Verified};

/// A result of a storage operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What went wrong in storage. [`StoreError::code`] is stable.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// The operation is not allowed in the record's current state (an invalid transition,
    /// a duplicate name, ...).
    #[error("{message}")]
    Conflict {
        /// Stable code, e.g. `APPLICATION_NOT_SUBMITTED`.
        code: &'static str,
        /// Human-readable detail.
        message: String,
    },
    /// The signing callback of an approval failed; nothing was stored.
    #[error("signing failed: {0}")]
    Sign(String),
    /// The database URL in the configuration is not usable.
    #[error("bad database url: {0}")]
    Url(String),
    /// The database failed.
    #[error("database: {0}")]
    Backend(String),
}

impl StoreError {
    /// The stable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::NotFound => "NOT_FOUND",
            StoreError::Conflict { code, .. } => code,
            StoreError::Sign(_) => "SIGNING_FAILED",
            StoreError::Url(_) => "DATABASE_URL_INVALID",
            StoreError::Backend(_) => "DATABASE_ERROR",
        }
    }
    pub(crate) fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        StoreError::Conflict { code, message: message.into() }
    }
}

/// Who acts, and when. Every state change carries one; it is what the audit log records.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The actor, e.g. `user:3 (alice)` or `cli`.
    pub actor: String,
    /// The time of the action (from the node's one clock).
    pub at: DateTime<Utc>,
}

impl Ctx {
    /// A context for `actor` at `at`.
    pub fn new(actor: impl Into<String>, at: DateTime<Utc>) -> Self {
        Ctx { actor: actor.into(), at }
    }
}

macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $s)] $v),* }
        impl $name {
            /// The stable text form, as stored and on the wire.
            pub fn as_str(&self) -> &'static str { match self { $($name::$v => $s),* } }
            /// Parses the stable text form.
            pub fn parse(s: &str) -> Option<Self> { match s { $($s => Some($name::$v),)* _ => None } }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

text_enum!(
    /// A user's role.
    Role {
        /// Applies for certificates for its company.
        Exporter = "exporter",
        /// Reviews, approves, rejects, revokes.
        IssuingOfficer = "issuing-officer",
        /// Importing customs (declarations arrive with a later issue).
        CustomsOfficer = "customs-officer",
        /// Users, companies and configuration.
        Admin = "admin",
    }
);

text_enum!(
    /// Where an application is in its lifecycle.
    ApplicationStatus {
        /// Created, editable, not yet seen by the authority.
        Draft = "draft",
        /// Waiting for an officer.
        Submitted = "submitted",
        /// Approved: a certificate was issued from it.
        Approved = "approved",
        /// Rejected with a reason.
        Rejected = "rejected",
    }
);

text_enum!(
    /// Where an issued certificate is in its lifecycle.
    CertificateStatus {
        /// Valid as issued.
        Issued = "issued",
        /// Replaced by a newer version.
        Superseded = "superseded",
        /// Revoked with a reason.
        Revoked = "revoked",
    }
);

/// A trading company (the tenant of exporter users).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Company {
    /// Identifier.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// ISO country code.
    pub country: String,
}

/// A user of the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Identifier.
    pub id: i64,
    /// Unique login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The company of an exporter; `None` for authority roles.
    pub company_id: Option<i64>,
}

/// A new user, with the SHA-256 of its API token (the token itself is never stored).
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Unique login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Company (required for exporters, refused for others by the caller).
    pub company_id: Option<i64>,
    /// SHA-256 of the API token.
    pub token_hash: [u8; 32],
}

/// An application for a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Application {
    /// Identifier.
    pub id: i64,
    /// The applying company (tenant).
    pub company_id: i64,
    /// Lifecycle status.
    pub status: ApplicationStatus,
    /// `xml` or `json`: the format the document came in.
    pub format: String,
    /// The document exactly as submitted (empty in list results).
    #[serde(skip)]
    pub document: Vec<u8>,
    /// The self-assessment input (the `qualify` request), as JSON text.
    pub self_assessment: Option<String>,
    /// The evaluated self-assessment result, as JSON text.
    pub assessment: Option<String>,
    /// For an amendment: the certificate this one replaces.
    pub replaces: Option<i64>,
    /// For a back-to-back application: the received certificate it is based on.
    pub back_to_back_of: Option<i64>,
    /// The rejection reason.
    pub reason: Option<String>,
    /// The certificate issued from it.
    pub certificate_id: Option<i64>,
    /// The creating user.
    pub created_by: i64,
    /// Created at (RFC 3339).
    pub created_at: String,
    /// Last changed at (RFC 3339).
    pub updated_at: String,
}

/// A new application.
#[derive(Debug, Clone)]
pub struct NewApplication {
    /// The applying company.
    pub company_id: i64,
    /// The creating user.
    pub created_by: i64,
    /// `xml` or `json`.
    pub format: String,
    /// The document exactly as submitted.
    pub document: Vec<u8>,
    /// The self-assessment input as JSON text.
    pub self_assessment: Option<String>,
    /// Its evaluated result as JSON text.
    pub assessment: Option<String>,
    /// The certificate this amendment replaces (checked: same company, issued).
    pub replaces: Option<i64>,
    /// The received certificate a back-to-back application is based on (checked: exists).
    pub back_to_back_of: Option<i64>,
}

/// Which records a list returns: newest first, `limit` of them, ids below `before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Only this company's records (an exporter's view).
    pub company_id: Option<i64>,
    /// Only ids below this one (the cursor: the last id of the previous page).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

impl Page {
    /// The first `limit` records of `company_id` (or of everyone).
    pub fn first(company_id: Option<i64>, limit: i64) -> Self {
        Page { company_id, before: None, limit }
    }
}

/// A change to an application that needs no signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// draft → submitted.
    Submit,
    /// submitted → rejected, with a reason.
    Reject {
        /// Why.
        reason: String,
    },
}

/// An issued certificate: the signed bytes exactly as signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Certificate {
    /// Identifier.
    pub id: i64,
    /// The application it was issued from.
    pub application_id: i64,
    /// The exporter's company (tenant).
    pub company_id: i64,
    /// The issuing authority.
    pub issuer: String,
    /// The certificate number.
    pub number: String,
    /// 1 for an original, +1 per replacement (same number).
    pub version: i64,
    /// Lifecycle status.
    pub status: CertificateStatus,
    /// The certificate this version replaced.
    pub supersedes: Option<i64>,
    /// The signed document, byte for byte (empty in list results).
    #[serde(skip)]
    pub signed: Vec<u8>,
    /// SHA-256 of the signed document, hex.
    pub sha256: String,
    /// Issued at (RFC 3339).
    pub issued_at: String,
    /// The revocation reason.
    pub revoked_reason: Option<String>,
    /// The latest status the importing country reported for this version (`status.update`),
    /// if any; see [`Store::certificate_statuses`].
    pub remote_status: Option<String>,
}

/// What the signing callback of [`Store::approve`] is told to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The allocated sequence number (`None` for a replacement, which keeps its number).
    pub seq: Option<i64>,
    /// The number of the certificate being replaced, for a replacement.
    pub number: Option<String>,
    /// The version to issue.
    pub version: i64,
    /// The application being approved (its submitted document and format).
    pub application: Application,
}

/// What the signing callback returns.
#[derive(Debug, Clone)]
pub struct Signed {
    /// The certificate number written into the document.
    pub number: String,
    /// The signed document, byte for byte.
    pub bytes: Vec<u8>,
    /// Messages to send (e.g. `certificate.issued`), enqueued in the approving transaction.
    pub messages: Vec<OutMessage>,
}

/// The signing step of an approval. It runs inside the approving transaction: if it fails,
/// nothing is stored and no number is used up.
pub type SignFn = Box<dyn FnOnce(&Issue) -> Result<Signed, String> + Send>;

/// The messages of a revocation: called inside the revoking transaction with the revoked
/// certificate (status already `revoked`, reason set). Its messages are enqueued in the same
/// transaction; an `Err` rolls everything back ([`StoreError::Sign`]).
pub type MessagesFn = Box<dyn FnOnce(&Certificate) -> Result<Vec<OutMessage>, String> + Send>;

/// Builds the messages a set of line decisions causes, inside the deciding transaction.
pub type DecisionMessagesFn =
    Box<dyn FnOnce(&[(DeclarationLine, Option<Utilization>)]) -> Result<Vec<OutMessage>, String> + Send>;

/// A [`MessagesFn`] that sends nothing.
pub fn no_messages() -> MessagesFn {
    Box::new(|_| Ok(vec![]))
}

/// How approval numbers are allocated.
#[derive(Debug, Clone)]
pub struct Numbering {
    /// The issuing authority recorded on the certificate.
    pub issuer: String,
    /// The sequence scope: numbers are gapless per scope (e.g. `KH-MOC/2026`).
    pub scope: String,
}

text_enum!(
    /// What a received certificate is, as far as this node knows.
    ReceivedStatus {
        /// Verified, current.
        Valid = "valid",
        /// Failed verification (the reason code is in `verdict`); kept as received.
        Invalid = "invalid",
        /// Replaced by a newer version.
        Superseded = "superseded",
        /// Revoked by the issuing country.
        Revoked = "revoked",
    }
);

/// A certificate received from another country (filled by the exchange; used here as the
/// basis of back-to-back applications).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceivedCertificate {
    /// Identifier.
    pub id: i64,
    /// The issuing country.
    pub issuing_country: String,
    /// Its number.
    pub number: String,
    /// Its version.
    pub version: i64,
    /// The document exactly as received (empty in list results).
    #[serde(skip)]
    pub document: Vec<u8>,
    /// Received at (RFC 3339).
    pub received_at: String,
    /// Valid, invalid, superseded or revoked.
    pub status: ReceivedStatus,
    /// The verification reason code, for an invalid one.
    pub verdict: Option<String>,
    /// The revocation reason given by the issuing country.
    pub revoked_reason: Option<String>,
    /// The exchange message it came in.
    pub message_id: Option<String>,
}

/// A received certificate to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewReceived {
    /// The issuing country.
    pub issuing_country: String,
    /// Its number.
    pub number: String,
    /// Its version.
    pub version: i64,
    /// The document exactly as received (hex in JSON).
    #[serde(with = "hex_bytes")]
    pub document: Vec<u8>,
    /// [`ReceivedStatus::Valid`] or [`ReceivedStatus::Invalid`] (the verification outcome).
    pub status: ReceivedStatus,
    /// The verification reason code when invalid.
    pub verdict: Option<String>,
    /// The exchange message it came in ([`Store::apply_inbound`] fills it in).
    pub message_id: Option<String>,
}

impl NewReceived {
    /// A valid received certificate, not (yet) tied to a message.
    pub fn valid(issuing_country: &str, number: &str, version: i64, document: Vec<u8>) -> Self {
        NewReceived {
            issuing_country: issuing_country.to_owned(),
            number: number.to_owned(),
            version,
            document,
            status: ReceivedStatus::Valid,
            verdict: None,
            message_id: None,
        }
    }
}

/// A message to send, written in the same transaction as the state change that causes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutMessage {
    /// Message id (UUIDv7 text), unique in the outbox.
    pub id: String,
    /// The `to` country code, e.g. `TH` (the routing key).
    pub recipient: String,
    /// `certificate.issued`, `status.update`, ...
    pub kind: String,
    /// `KH/KH-2026-000001` (issuing country/number), for ordering and diagnostics.
    pub cert_key: Option<String>,
    /// The signed envelope, opaque here (hex in JSON).
    #[serde(with = "hex_bytes")]
    pub body: Vec<u8>,
}

/// A row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxRow {
    /// Position: the order messages were written in.
    pub seq: i64,
    /// Message id.
    pub id: String,
    /// The `to` country code.
    pub recipient: String,
    /// Message kind.
    pub kind: String,
    /// Issuing country/number, if about a certificate.
    pub cert_key: Option<String>,
    /// The signed envelope.
    #[serde(skip)]
    pub body: Vec<u8>,
    /// Failed attempts so far.
    pub attempts: i64,
    /// Written at (RFC 3339).
    pub created_at: String,
    /// Not sent before this instant (RFC 3339). While claimed, the end of the lease.
    pub next_attempt_at: String,
    /// The last delivery error.
    pub last_error: Option<String>,
    /// Given up on: waits for an operator ([`Store::retry_dead`]).
    pub dead: bool,
}

/// An inbound exchange message, already verified by the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbound {
    /// The message id (the deduplication key).
    pub message_id: String,
    /// The sending country.
    pub from_country: String,
    /// What it says.
    pub kind: InboundKind,
    /// `status.update` replies etc. to enqueue when (and only when) this message is applied.
    pub reply: Vec<OutMessage>,
    /// Why its payload can never be processed (it could not be read or verified), when so:
    /// the message is applied all the same (a certificate is stored invalid, its reply
    /// enqueued), but its inbox record is `quarantined` with this reason, for the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine: Option<String>,
}

/// What an inbound message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InboundKind {
    /// `certificate.issued` (version 1 normally): stores a received certificate.
    Issued {
        /// The certificate.
        certificate: NewReceived,
    },
    /// `certificate.replaced`: version v; needs version v-1 present, else held. Applying it
    /// marks v-1 superseded.
    Replaced {
        /// The new version.
        certificate: NewReceived,
    },
    /// `certificate.revoked`: needs that version present, else held. Marks it revoked (even
    /// if superseded).
    Revoked {
        /// The issuing country.
        issuing_country: String,
        /// The number.
        number: String,
        /// The version revoked.
        version: i64,
        /// Why.
        reason: String,
    },
    /// `status.update` about one of our issued certificates.
    Status {
        /// Our certificate number.
        number: String,
        /// Its version.
        version: i64,
        /// The reported status (e.g. `accepted`, `rejected`, `used`).
        status: String,
        /// A reason code.
        code: String,
        /// Details, as JSON text.
        detail: String,
    },
    /// `verification.request`: the importing country asks us (the issuing side) about one of
    /// our certificates. Creates an `incoming` [`VerificationRequest`] (once per request id).
    VerificationRequest {
        /// The id of the request (what the response refers to).
        request_message_id: String,
        /// The issuing country of the certificate asked about.
        issuing_country: String,
        /// Its number.
        number: String,
        /// The questions, as JSON text.
        questions: String,
        /// The answer is due by then.
        deadline: DateTime<Utc>,
    },
    /// `verification.response`: the answer to one of our `outgoing` requests. Records the
    /// answer and outcome on it (an unknown or already answered request changes nothing).
    VerificationResponse {
        /// The id of the request answered.
        request_message_id: String,
        /// The answer, as text.
        answer: String,
        /// `confirmed` or `denied`.
        outcome: String,
    },
    /// Any other message: recorded in the inbox only.
    Other {
        /// The message kind.
        kind: String,
        /// Details, as text.
        detail: String,
    },
}

impl InboundKind {
    /// The message kind as on the wire, e.g. `certificate.issued`.
    pub fn kind(&self) -> &str {
        match self {
            InboundKind::Issued { .. } => "certificate.issued",
            InboundKind::Replaced { .. } => "certificate.replaced",
            InboundKind::Revoked { .. } => "certificate.revoked",
            InboundKind::Status { .. } => "status.update",
            InboundKind::VerificationRequest { .. } => "verification.request",
            InboundKind::VerificationResponse { .. } => "verification.response",
            InboundKind::Other { kind, .. } => kind,
        }
    }
}

/// What became of an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Applied {
    /// Applied now (its replies are enqueued).
    Applied,
    /// Stored until the certificate version it needs arrives.
    Held,
    /// Seen before (same message id, or the same certificate version from another message):
    /// nothing changed.
    Duplicate,
    /// Its sender may not say this (the code: [`STATUS_FROM_WRONG_PEER`],
    /// [`ANSWER_FROM_WRONG_PEER`]): nothing stored but the refusal ([`Store::refused`]).
    Refused(&'static str),
}

/// Refusal code: a `status.update` about a certificate from a country it was not sent to.
pub const STATUS_FROM_WRONG_PEER: &str = "STATUS_FROM_WRONG_PEER";
/// Refusal code: a `verification.response` from another country than the one asked.
pub const ANSWER_FROM_WRONG_PEER: &str = "ANSWER_FROM_WRONG_PEER";
/// The recipient recorded for certificates issued before recipients were recorded (schema
/// migration 4): any member may report on them.
pub const ANY_RECIPIENT: &str = "*";

/// An inbound message refused (its acknowledgement said `refused`), recorded for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The message id (empty when the envelope did not say).
    pub message_id: String,
    /// The sending country the envelope claims (empty when it did not say).
    pub from_country: String,
    /// The message type (empty when the envelope did not say).
    pub kind: String,
    /// Who delivered it, e.g. `exchange:KH` or `exchange:gateway:hub`.
    pub via: String,
    /// The refusal code, e.g. `ISSUER_MISMATCH`.
    pub code: String,
    /// Why, for people.
    pub reason: String,
    /// Refused at (RFC 3339).
    pub at: String,
}

/// An inbound message as the inbox records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InboxRecord {
    /// The message id.
    pub message_id: String,
    /// The sending country.
    pub from_country: String,
    /// The message type.
    pub kind: String,
    /// `applied`, `held`, `duplicate` or `quarantined`.
    pub state: String,
    /// Why it is quarantined.
    pub reason: Option<String>,
    /// Received at (RFC 3339).
    pub received_at: String,
    /// Last changed at (RFC 3339).
    pub updated_at: String,
}

/// A status reported by an importing country about one of our certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusEvent {
    /// Our certificate number.
    pub number: String,
    /// Its version.
    pub version: i64,
    /// The reporting country.
    pub from_country: String,
    /// The reported status.
    pub status: String,
    /// Its reason code.
    pub code: String,
    /// Details, as JSON text.
    pub detail: String,
    /// The message it came in.
    pub message_id: String,
    /// Applied at (RFC 3339).
    pub at: String,
}

text_enum!(
    /// The decision on a declaration line.
    LineOutcome {
        /// Not decided yet (e.g. its certificate has not arrived).
        Pending = "pending",
        /// Preference granted.
        Granted = "granted",
        /// Preference denied (the reasons say why).
        Denied = "denied",
        /// No preference claimed (MFN): nothing to decide, nothing consumed.
        NotClaimed = "not-claimed",
    }
);

/// A new import declaration.
#[derive(Debug, Clone)]
pub struct NewDeclaration {
    /// The declaration number (unique on this node).
    pub number: String,
    /// The importer.
    pub importer: String,
    /// The importing country (ISO code).
    pub importing_country: String,
    /// The declaration date.
    pub declaration_date: chrono::NaiveDate,
    /// The declaration JSON as submitted.
    pub document: String,
    /// Its lines (all start `pending`).
    pub lines: Vec<NewLine>,
    /// The creating user.
    pub created_by: i64,
}

/// A line of a new declaration.
#[derive(Debug, Clone, Default)]
pub struct NewLine {
    /// The line number (unique within the declaration).
    pub line_no: i32,
    /// The issuing country of the e-CO claimed.
    pub eco_country: Option<String>,
    /// The e-CO number claimed; `None` for `PENDING`.
    pub eco_number: Option<String>,
    /// The exporter named on the line (for [`Store::pair_seen`]).
    pub exporter: Option<String>,
}

/// A stored import declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Declaration {
    /// Identifier.
    pub id: i64,
    /// The declaration number.
    pub number: String,
    /// The importer.
    pub importer: String,
    /// The importing country.
    pub importing_country: String,
    /// The declaration date (`YYYY-MM-DD`).
    pub declaration_date: String,
    /// The declaration JSON as submitted (empty in list results).
    pub document: String,
    /// The risk score (0 until [`Store::set_risk`]).
    pub risk_score: i64,
    /// The risk assessment as JSON text (`null` until scored).
    pub risk: String,
    /// The creating user.
    pub created_by: i64,
    /// Created at (RFC 3339).
    pub created_at: String,
    /// The lines, by line number.
    pub lines: Vec<DeclarationLine>,
}

/// A stored declaration line and its decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeclarationLine {
    /// The line number.
    pub line_no: i32,
    /// The issuing country of the e-CO claimed.
    pub eco_country: Option<String>,
    /// The e-CO number claimed (`None`: `PENDING`).
    pub eco_number: Option<String>,
    /// The exporter named on the line.
    pub exporter: Option<String>,
    /// `pending`, `granted`, `denied` or `not-claimed` ([`LineOutcome`]).
    pub outcome: String,
    /// The reasons, as a JSON array.
    pub reasons: String,
    /// The certificate item the line was matched to.
    pub matched_item: Option<i32>,
    /// The quantity this line consumes from the ledger now (canonical decimal text).
    pub consumed: Option<String>,
    /// The duty figures, as JSON text (`null` until decided).
    pub duty: String,
    /// When the line was last decided (RFC 3339).
    pub decided_at: Option<String>,
}

/// What a line decision wants to consume from the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The issuing country of the certificate.
    pub issuing_country: String,
    /// Its number.
    pub number: String,
    /// The certificate item.
    pub item: i32,
    /// The quantity to consume (positive).
    pub quantity: Decimal,
    /// The certificate item's total quantity (initializes the ledger row on first use).
    pub item_total: Decimal,
    /// `true` when the agreement allows only ONE declaration per certificate (the `none`
    /// partial-use policy).
    pub single_declaration: bool,
}

/// The decision on one line, as the customs logic made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineDecision {
    /// The line.
    pub line_no: i32,
    /// The outcome. A claim is applied only to a `Granted` line.
    pub outcome: LineOutcome,
    /// The reasons, as a JSON array.
    pub reasons: String,
    /// The certificate item matched.
    pub matched_item: Option<i32>,
    /// The duty figures, as JSON text (stored as given, also when the ledger refuses).
    pub duty: String,
    /// What a granted line consumes.
    pub claim: Option<Claim>,
}

/// The ledger refused a claim: the line is stored `denied` with [`ClaimRefusal::reason`]
/// appended to its reasons, and nothing is consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimRefusal {
    /// Less is left of the item than the line claims.
    QuantityExceeded {
        /// What is left.
        remaining: Decimal,
    },
    /// Single-declaration policy: another declaration already used the certificate.
    AlreadyUtilized {
        /// That declaration's number.
        by: String,
    },
}

impl ClaimRefusal {
    /// The reason code: `QUANTITY_EXCEEDED` or `ALREADY_UTILIZED`.
    pub fn code(&self) -> &'static str {
        match self {
            ClaimRefusal::QuantityExceeded { .. } => "QUANTITY_EXCEEDED",
            ClaimRefusal::AlreadyUtilized { .. } => "ALREADY_UTILIZED",
        }
    }

    /// The reason appended to the line: `{"code": ..., "detail": ...}`.
    pub fn reason(&self, claimed: &Decimal) -> serde_json::Value {
        let detail = match self {
            ClaimRefusal::QuantityExceeded { remaining } => {
                format!("{} claimed, {} remaining", decimal_text(claimed), decimal_text(remaining))
            }
            ClaimRefusal::AlreadyUtilized { by } => format!("the certificate was used by declaration {by}"),
        };
        serde_json::json!({ "code": self.code(), "detail": detail })
    }
}

/// A consumption recorded in the ledger (what the status message back reports).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Utilization {
    /// The issuing country of the certificate.
    pub issuing_country: String,
    /// Its number.
    pub number: String,
    /// The item.
    pub item: i32,
    /// The quantity consumed (canonical decimal text).
    pub quantity: String,
    /// What is left of the item afterwards.
    pub remaining_after: String,
    /// The declaration number.
    pub declaration: String,
}

/// One item of a certificate in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerRow {
    /// The item.
    pub item: i32,
    /// The item's total quantity (canonical decimal text).
    pub total: String,
    /// What is left.
    pub remaining: String,
    /// The numbers of the declarations consuming from it now, sorted.
    pub declarations: Vec<String>,
}

/// A verification request to raise (we, the importing side, ask the issuing country).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVerification {
    /// The id of the request message (what the response will refer to).
    pub message_id: String,
    /// The issuing country of the certificate.
    pub issuing_country: String,
    /// Its number.
    pub number: String,
    /// The country asked (normally the issuing country).
    pub partner: String,
    /// The questions, as JSON text.
    pub questions: String,
    /// The answer is due by then.
    pub deadline: DateTime<Utc>,
}

/// A verification request, in either direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerificationRequest {
    /// Identifier.
    pub id: i64,
    /// `outgoing` (we asked) or `incoming` (we are asked).
    pub direction: String,
    /// The id of the request message.
    pub message_id: String,
    /// The issuing country of the certificate.
    pub issuing_country: String,
    /// Its number.
    pub number: String,
    /// The other country.
    pub partner: String,
    /// The questions, as JSON text.
    pub questions: String,
    /// The deadline (RFC 3339).
    pub deadline: String,
    /// `open`, `confirmed` or `denied` (`answered` is reserved).
    pub status: String,
    /// The answer.
    pub answer: Option<String>,
    /// `confirmed` or `denied`.
    pub outcome: Option<String>,
    /// Created at (RFC 3339).
    pub created_at: String,
    /// Answered at (RFC 3339).
    pub answered_at: Option<String>,
}

/// Verification direction: we asked.
pub const OUTGOING: &str = "outgoing";
/// Verification direction: we are asked.
pub const INCOMING: &str = "incoming";

/// Bytes as lower-case hex in JSON.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::hex(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        crate::unhex(&s).ok_or_else(|| D::Error::custom("invalid hex"))
    }
}

/// The storage interface of a node. Both backends pass the same contract test suite
/// (`tests/contract.rs`).
#[async_trait::async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// Which backend: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
    /// Brings the schema up to date. Safe to run again, and concurrently.
    async fn migrate(&self) -> Result<()>;
    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;

    /// Creates a company. Duplicate name: `COMPANY_EXISTS`.
    async fn create_company(&self, ctx: &Ctx, name: &str, country: &str) -> Result<Company>;
    /// Finds a company by name.
    async fn company_by_name(&self, name: &str) -> Result<Option<Company>>;
    /// Creates a user and its token. Duplicate name: `USER_EXISTS`.
    async fn create_user(&self, ctx: &Ctx, user: NewUser) -> Result<User>;
    /// The user holding the token with this SHA-256, if any.
    async fn user_by_token_hash(&self, hash: &[u8; 32]) -> Result<Option<User>>;

    /// Creates an application in `draft`.
    async fn create_application(&self, ctx: &Ctx, app: NewApplication) -> Result<Application>;
    /// One application.
    async fn application(&self, id: i64) -> Result<Option<Application>>;
    /// A page of applications, newest first, without their documents.
    async fn list_applications(&self, page: &Page) -> Result<Vec<Application>>;
    /// Submit or reject. Invalid transition: `APPLICATION_NOT_DRAFT` / `APPLICATION_NOT_SUBMITTED`.
    async fn transition(&self, ctx: &Ctx, id: i64, t: Transition) -> Result<Application>;
    /// Approves a submitted application: allocates the number (or, for an amendment, keeps
    /// the replaced certificate's number with the next version), runs `sign`, stores the
    /// signed bytes, supersedes the replaced certificate. All in one transaction.
    async fn approve(&self, ctx: &Ctx, id: i64, numbering: &Numbering, sign: SignFn) -> Result<Certificate>;

    /// One certificate.
    async fn certificate(&self, id: i64) -> Result<Option<Certificate>>;
    /// A page of certificates, newest first, without their signed bytes.
    async fn list_certificates(&self, page: &Page) -> Result<Vec<Certificate>>;
    /// Revokes an issued certificate and enqueues the messages `messages` makes of it, in one
    /// transaction. Not issued: `CERTIFICATE_NOT_ISSUED`; `messages` failing: `SIGNING_FAILED`.
    async fn revoke(&self, ctx: &Ctx, id: i64, reason: &str, messages: MessagesFn) -> Result<Certificate>;
    /// The statuses importing countries reported about certificate `number`, all versions,
    /// oldest first.
    async fn certificate_statuses(&self, number: &str) -> Result<Vec<StatusEvent>>;

    /// Records a received certificate. Duplicate (country, number, version): `RECEIVED_EXISTS`.
    async fn insert_received(&self, ctx: &Ctx, rec: NewReceived) -> Result<ReceivedCertificate>;
    /// One received certificate.
    async fn received(&self, id: i64) -> Result<Option<ReceivedCertificate>>;
    /// All versions of a received certificate, newest first.
    async fn received_by_ref(&self, issuing_country: &str, number: &str) -> Result<Vec<ReceivedCertificate>>;
    /// A page of received certificates, newest first, without their documents
    /// (`page.company_id` does not apply: received certificates belong to no company).
    async fn list_received(&self, page: &Page) -> Result<Vec<ReceivedCertificate>>;

    /// Enqueues messages in one transaction (not audited: transport). Duplicate id:
    /// `MESSAGE_EXISTS`, and nothing is enqueued.
    async fn enqueue(&self, ctx: &Ctx, messages: Vec<OutMessage>) -> Result<()>;
    /// Claims up to `limit` due messages (not dead, `next_attempt_at <= now`, not leased):
    /// those due longest (by `next_attempt_at`, then `seq`), returned in `seq` order. Each is
    /// leased until `now + lease` (its `next_attempt_at` moves there too), so no other worker
    /// or replica takes it meanwhile; an expired lease makes it due again.
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease: std::time::Duration,
        limit: i64,
    ) -> Result<Vec<OutboxRow>>;
    /// Removes delivered messages (one transaction). Unknown ids are ignored.
    async fn outbox_delivered(&self, ids: &[String]) -> Result<()>;
    /// Records a failed attempt: `attempts + 1`, the error, the next attempt time, lease
    /// cleared, and `dead` (given up). Unknown id: ignored.
    async fn outbox_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
        dead: bool,
    ) -> Result<()>;
    /// Dead letters, oldest first.
    async fn dead_letters(&self, limit: i64) -> Result<Vec<OutboxRow>>;
    /// An operator retries a dead letter: due at `ctx.at` with no attempts; audited as
    /// `message.retried`. Not a dead letter: `NOT_FOUND`.
    async fn retry_dead(&self, ctx: &Ctx, id: &str) -> Result<OutboxRow>;
    /// (pending, dead) outbox messages.
    async fn outbox_counts(&self) -> Result<(i64, i64)>;

    /// Applies a batch of verified inbound messages in one transaction; one answer per
    /// message, in order. See [`Inbound`] and [`InboundKind`] for what each kind does.
    async fn apply_inbound(&self, ctx: &Ctx, batch: Vec<Inbound>) -> Result<Vec<Applied>>;
    /// Messages in the inbox (applied, held or duplicate-by-content).
    async fn inbox_len(&self) -> Result<i64>;
    /// Messages held until the certificate version they need arrives.
    async fn held_len(&self) -> Result<i64>;
    /// Records inbound messages refused before they reached the inbox (one transaction, not
    /// audited: transport, like [`Store::enqueue`]).
    async fn record_refused(&self, refusals: Vec<Refusal>) -> Result<()>;
    /// Refused inbound messages, newest first.
    async fn refused(&self, limit: i64) -> Result<Vec<Refusal>>;
    /// Inbound messages quarantined (they can never be processed), newest first.
    async fn quarantined(&self, limit: i64) -> Result<Vec<InboxRecord>>;
    /// How many inbound messages are quarantined.
    async fn quarantined_len(&self) -> Result<i64>;

    /// Creates a declaration; all lines start `pending`. Duplicate number:
    /// `DECLARATION_EXISTS`; duplicate line number: `LINE_DUPLICATE`.
    async fn create_declaration(&self, ctx: &Ctx, d: NewDeclaration) -> Result<Declaration>;
    /// One declaration with its lines.
    async fn declaration(&self, id: i64) -> Result<Option<Declaration>>;
    /// One declaration by number.
    async fn declaration_by_number(&self, number: &str) -> Result<Option<Declaration>>;
    /// A page of declarations with their lines, without documents: newest first, or (the
    /// officer's queue, `order_by_risk`) by risk score descending, then id descending. The
    /// cursor `page.before` is the last id of the previous page in either order;
    /// `page.company_id` does not apply.
    async fn list_declarations(&self, page: &Page, order_by_risk: bool) -> Result<Vec<Declaration>>;
    /// Records the risk score and its reasons (JSON). Unknown declaration: `NOT_FOUND`.
    async fn set_risk(&self, ctx: &Ctx, id: i64, score: i64, risk_json: &str) -> Result<()>;
    /// Links a line declared `PENDING` to the certificate it was matched to when that
    /// arrived, so later events about the certificate (a verification denial) reach it.
    /// Unknown line: `NOT_FOUND`; a line that already names a certificate: `LINE_NOT_PENDING`.
    async fn link_pending_line(
        &self,
        ctx: &Ctx,
        declaration_id: i64,
        line_no: i32,
        issuing_country: &str,
        number: &str,
    ) -> Result<()>;
    /// Decides lines of one declaration in ONE transaction, in the order given, with the
    /// ledger: a granted line first gives back what it consumed before; a `Granted` decision
    /// with a claim then consumes from the item's ledger row (created with the item total on
    /// first use), unless less is left than claimed (`QUANTITY_EXCEEDED`) or the claim is
    /// single-declaration and another declaration consumes from any item of the certificate
    /// (`ALREADY_UTILIZED`): then the line is stored `denied` with that reason appended and
    /// nothing is consumed. Returns per line the stored line and the consumption recorded.
    /// Unknown declaration or line: `NOT_FOUND`; a bad claim or reasons that are not a JSON
    /// array: `LINE_DECISION_INVALID`.
    async fn decide_lines(
        &self,
        ctx: &Ctx,
        declaration_id: i64,
        decisions: Vec<LineDecision>,
    ) -> Result<Vec<(DeclarationLine, Option<Utilization>)>> {
        self.decide_lines_with(ctx, declaration_id, decisions, Box::new(|_| Ok(vec![]))).await
    }
    /// [`Store::decide_lines`], with the messages the decisions cause (the statuses back to
    /// the issuing countries) built by `messages` from the stored lines and written to the
    /// outbox in the same transaction. If `messages` fails, nothing is stored
    /// (`SIGNING_FAILED`).
    async fn decide_lines_with(
        &self,
        ctx: &Ctx,
        declaration_id: i64,
        decisions: Vec<LineDecision>,
        messages: DecisionMessagesFn,
    ) -> Result<Vec<(DeclarationLine, Option<Utilization>)>>;
    /// The ledger of a certificate, by item.
    async fn ledger(&self, issuing_country: &str, number: &str) -> Result<Vec<LedgerRow>>;
    /// The consumptions in force from a certificate (the rows never given back), oldest first.
    async fn utilizations(&self, issuing_country: &str, number: &str) -> Result<Vec<Utilization>>;
    /// Lines still pending on certificate (issuing_country, number), as (declaration id,
    /// line), in order: for automatic matching when it arrives.
    async fn pending_lines_for(&self, issuing_country: &str, number: &str) -> Result<Vec<(i64, i32)>>;
    /// Granted lines that claim a certificate, as (declaration id, line): for
    /// `VERIFICATION_DENIED`.
    async fn lines_using(&self, issuing_country: &str, number: &str) -> Result<Vec<(i64, i32)>>;
    /// Decided (granted or denied) lines with `from <= decided_at < to`, with their
    /// declaration number, in declaration and line order: the caller sums the duty.
    async fn decided_lines_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(String, DeclarationLine)>>;
    /// Whether a granted line of an earlier declaration names this exporter → importer pair.
    async fn pair_seen(&self, exporter: &str, importer: &str) -> Result<bool>;

    /// Raises an `outgoing` verification request and enqueues its messages, in one
    /// transaction. Duplicate message id: `VERIFICATION_EXISTS`.
    async fn create_verification(
        &self,
        ctx: &Ctx,
        v: NewVerification,
        messages: Vec<OutMessage>,
    ) -> Result<VerificationRequest>;
    /// Answers an `incoming`, open request with `outcome` (`confirmed` or `denied`) and
    /// enqueues the response messages, in one transaction. Not open or not incoming:
    /// `VERIFICATION_NOT_OPEN`; another outcome: `VERIFICATION_OUTCOME_INVALID`.
    async fn answer_verification(
        &self,
        ctx: &Ctx,
        id: i64,
        answer: &str,
        outcome: &str,
        messages: Vec<OutMessage>,
    ) -> Result<VerificationRequest>;
    /// Records the response to one of our `outgoing` requests (by its message id). Unknown:
    /// `NOT_FOUND`; not open: `VERIFICATION_NOT_OPEN`.
    async fn record_verification_answer(
        &self,
        ctx: &Ctx,
        message_id_of_request: &str,
        answer: &str,
        outcome: &str,
    ) -> Result<VerificationRequest>;
    /// One verification request.
    async fn verification(&self, id: i64) -> Result<Option<VerificationRequest>>;
    /// Verification requests, newest first, of one direction or both.
    async fn list_verifications(
        &self,
        direction: Option<&str>,
        limit: i64,
    ) -> Result<Vec<VerificationRequest>>;
    /// Open requests (both directions) whose deadline is before `now`, oldest deadline first.
    async fn overdue_verifications(&self, now: DateTime<Utc>) -> Result<Vec<VerificationRequest>>;
    /// How many of our `outgoing` requests about certificates of this country were denied.
    async fn denied_verifications(&self, issuing_country: &str) -> Result<i64>;

    /// Audit events with `after < seq <= up_to`, in seq order, at most `limit` of them.
    async fn audit_events(&self, after: i64, up_to: i64, limit: i64) -> Result<Vec<AuditEvent>>;
    /// The chain head row: (last sequence number, its hash); `None` when the row is missing.
    async fn audit_head_row(&self) -> Result<Option<(i64, String)>>;
    /// The chain head: (last sequence number, its hash).
    async fn audit_head(&self) -> Result<(i64, String)> {
        self.audit_head_row().await?.ok_or_else(|| {
            StoreError::Backend("audit chain: AUDIT_HEAD_MISSING: the audit_head row is missing".into())
        })
    }
    /// How this store keys and anchors its audit chain ([`open_keyed`]).
    fn audit_chain(&self) -> &audit::Chain;
    /// Checks the audit chain in pages; on failure, names the first broken event. The head is
    /// read first, so events appended meanwhile are left for the next check.
    async fn verify_audit(&self) -> Result<Result<u64, Broken>> {
        self.verify_audit_in_pages(1000).await
    }
    /// [`Store::verify_audit`], reading `page` events at a time.
    async fn verify_audit_in_pages(&self, page: i64) -> Result<Result<u64, Broken>> {
        Ok(self.check_audit(page).await?.map(|v| v.events))
    }
    /// [`Store::verify_audit`] with what was found: every event (keyed with this store's audit
    /// key), the head, the rows past the head, and the head against the checkpoint file.
    async fn check_audit(&self, page: i64) -> Result<Result<Verified, Broken>> {
        audit::check(self, page).await
    }
    /// Writes the checkpoint of the current chain head now (a background writer also does, at
    /// most once per [`audit::CHECKPOINT_INTERVAL`] after commits): call it at start, at
    /// shutdown and after a short-lived command's writes. Returns the event anchored; `None`
    /// when the store has no key or checkpoint file, or the checkpoint was kept as evidence of
    /// damage (logged; [`Store::check_audit`] names it).
    async fn checkpoint_audit(&self) -> Result<Option<i64>> {
        checkpoint::write_current(self).await
    }
}

/// Opens the store named by `url`: `sqlite:PATH` / a plain path, or `postgres://…` (with a
/// pool of 8 connections).
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    open_with(url, 8).await
}

/// [`open`] with `pool` PostgreSQL connections (SQLite uses one connection whatever `pool`).
/// The audit chain is unkeyed: see [`open_keyed`].
pub async fn open_with(url: &str, pool: usize) -> Result<Arc<dyn Store>> {
    open_keyed(url, pool, AuditSetup::default()).await
}

/// [`open_with`], with the audit chain keyed and anchored as `audit` says: events are appended
/// with keyed hashes, the checkpoint file is kept, and [`Store::check_audit`] checks both.
/// The node opens its store this way (`originlink_node::audit::open_store`).
pub async fn open_keyed(url: &str, pool: usize, audit: AuditSetup) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url, pool).await?.with_audit(audit)))
    } else {
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if path.is_empty() {
            return Err(StoreError::Url("empty sqlite path".into()));
        }
        Ok(Arc::new(sqlite::SqliteStore::open(path).await?.with_audit(audit)))
    }
}

/// SHA-256 of an API token: what the store keeps instead of the token.
pub fn token_hash(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Lower-case hex, by the `hex` crate (kept as a `&[u8]` function: the name callers use).
pub fn hex(bytes: &[u8]) -> String {
    ::hex::encode(bytes)
}

/// The end of a lease of `lease` from `now`.
pub(crate) fn lease_until(now: &DateTime<Utc>, lease: std::time::Duration) -> Result<String> {
    chrono::Duration::from_std(lease)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .map(|t| timestamp(&t))
        .ok_or_else(|| StoreError::conflict("LEASE_INVALID", format!("a lease of {lease:?} is out of range")))
}

/// Parses lower- or upper-case hex.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs.map(|p| Some(nib(p[0])? << 4 | nib(p[1])?)).collect()
}

/// RFC 3339 with microseconds, the one text form of instants in both backends.
pub fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Columns of `applications` in the order both backends' row readers expect.
pub(crate) const APP_COLS: &str = "id, company_id, status, format, document, self_assessment, assessment, \
     replaces, back_to_back_of, reason, certificate_id, created_by, created_at, updated_at";
/// The latest reported status of a certificate row (select from `certificates`, unaliased).
pub(crate) const REMOTE_STATUS: &str = "(SELECT s.status FROM certificate_statuses s \
     WHERE s.number = certificates.number AND s.version = certificates.version ORDER BY s.id DESC LIMIT 1)";
/// Columns of `certificates` in the order both backends' row readers expect (with
/// [`REMOTE_STATUS`] appended by [`cert_cols`]).
pub(crate) const CERT_COLS: &str = "id, application_id, company_id, issuer, number, version, status, \
     supersedes, signed, issued_at, revoked_reason, signed_sha256";
/// Columns of `received_certificates` in the order both backends' row readers expect.
pub(crate) const RECEIVED_COLS: &str = "id, issuing_country, number, version, document, received_at, status, verdict, revoked_reason, message_id";
/// Columns of `outbox` in the order both backends' row readers expect.
pub(crate) const OUTBOX_COLS: &str =
    "seq, id, recipient, kind, cert_key, body, attempts, created_at, next_attempt_at, last_error, dead";
/// Columns of `certificate_statuses` in the order both backends' row readers expect.
pub(crate) const STATUS_COLS: &str = "number, version, from_country, status, code, detail, message_id, at";

/// `CERT_COLS` (or a list variant of it) plus the remote status.
pub(crate) fn cert_cols(cols: &str) -> String {
    format!("{cols}, {REMOTE_STATUS} AS remote_status")
}

/// The audit "before"/"after" state of an application.
pub(crate) fn app_state(status: ApplicationStatus, extra: &[(&str, serde_json::Value)]) -> String {
    let mut m = serde_json::Map::new();
    m.insert("status".into(), status.as_str().into());
    for (k, v) in extra {
        m.insert((*k).into(), v.clone());
    }
    serde_json::Value::Object(m).to_string()
}

/// The audit "before"/"after" state of a certificate.
pub(crate) fn cert_state(status: CertificateStatus, extra: &[(&str, serde_json::Value)]) -> String {
    let mut m = serde_json::Map::new();
    m.insert("status".into(), status.as_str().into());
    for (k, v) in extra {
        m.insert((*k).into(), v.clone());
    }
    serde_json::Value::Object(m).to_string()
}

/// The audit events of an approval, the same on every backend: the application approved,
/// the certificate issued and, for a replacement, the old certificate superseded.
pub(crate) fn approval_events(
    application_id: i64,
    certificate_id: i64,
    number: &str,
    version: i64,
    sha256: &str,
    superseded: Option<i64>,
) -> Vec<audit::PendingEvent> {
    let mut events = vec![
        audit::PendingEvent::new(
            "application.approved",
            format!("application/{application_id}"),
            app_state(ApplicationStatus::Submitted, &[]),
            app_state(ApplicationStatus::Approved, &[("certificate_id", certificate_id.into())]),
        ),
        audit::PendingEvent::new(
            "certificate.issued",
            format!("certificate/{certificate_id}"),
            "null".into(),
            cert_state(
                CertificateStatus::Issued,
                &[("number", number.into()), ("version", version.into()), ("sha256", sha256.into())],
            ),
        ),
    ];
    if let Some(old) = superseded {
        events.push(audit::PendingEvent::new(
            "certificate.superseded",
            format!("certificate/{old}"),
            cert_state(CertificateStatus::Issued, &[]),
            cert_state(CertificateStatus::Superseded, &[("superseded_by", certificate_id.into())]),
        ));
    }
    events
}

/// The audit event of a revocation by this node.
pub(crate) fn revocation_event(certificate_id: i64, reason: &str) -> audit::PendingEvent {
    audit::PendingEvent::new(
        "certificate.revoked",
        format!("certificate/{certificate_id}"),
        cert_state(CertificateStatus::Issued, &[]),
        cert_state(CertificateStatus::Revoked, &[("reason", reason.into())]),
    )
}

/// The audit event of a received certificate stored: `received.stored`, or
/// `received.rejected` for one that failed verification (it is kept all the same).
pub(crate) fn received_event(id: i64, r: &NewReceived) -> audit::PendingEvent {
    let action = if r.status == ReceivedStatus::Invalid { "received.rejected" } else { "received.stored" };
    let after = serde_json::json!({
        "issuing_country": r.issuing_country,
        "number": r.number,
        "version": r.version,
        "status": r.status.as_str(),
        "verdict": r.verdict,
        "message_id": r.message_id,
    });
    audit::PendingEvent::new(action, format!("received/{id}"), "null".into(), after.to_string())
}

/// The audit event of a received certificate changing status (superseded by a newer version,
/// or revoked by its issuer).
pub(crate) fn received_status_event(
    id: i64,
    from: ReceivedStatus,
    to: ReceivedStatus,
    extra: &[(&str, serde_json::Value)],
) -> audit::PendingEvent {
    let action = match to {
        ReceivedStatus::Revoked => "received.revoked",
        _ => "received.superseded",
    };
    let state = |s: ReceivedStatus, extra: &[(&str, serde_json::Value)]| {
        let mut m = serde_json::Map::new();
        m.insert("status".into(), s.as_str().into());
        for (k, v) in extra {
            m.insert((*k).into(), v.clone());
        }
        serde_json::Value::Object(m).to_string()
    };
    audit::PendingEvent::new(action, format!("received/{id}"), state(from, &[]), state(to, extra))
}

/// The audit event of a status reported about one of our certificates (`certificate_id` is
/// `None` when no such certificate is stored here); `None` for a message of another kind.
pub(crate) fn status_event(certificate_id: Option<i64>, m: &Inbound) -> Option<audit::PendingEvent> {
    let InboundKind::Status { number, version, status, code, detail } = &m.kind else {
        return None;
    };
    let entity = match certificate_id {
        Some(id) => format!("certificate/{id}"),
        None => format!("certificate-number/{number}/{version}"),
    };
    let after = serde_json::json!({
        "number": number,
        "version": version,
        "from_country": m.from_country,
        "status": status,
        "code": code,
        "detail": detail,
        "message_id": m.message_id,
    });
    Some(audit::PendingEvent::new("certificate.status", entity, "null".into(), after.to_string()))
}

/// The audit event of an inbound message held until the version it needs arrives.
pub(crate) fn held_event(m: &Inbound, cert_key: &str, waits_for: i64) -> audit::PendingEvent {
    let after = serde_json::json!({
        "kind": m.kind.kind(),
        "from_country": m.from_country,
        "cert_key": cert_key,
        "waits_for_version": waits_for,
    });
    audit::PendingEvent::new(
        "message.held",
        format!("message/{}", m.message_id),
        "null".into(),
        after.to_string(),
    )
}

/// The audit event of an inbound message quarantined: it was `from` (`None`: it arrived so)
/// and can never be processed, for `reason`.
pub(crate) fn quarantined_event(message_id: &str, from: Option<&str>, reason: &str) -> audit::PendingEvent {
    let before = match from {
        Some(state) => serde_json::json!({ "state": state }).to_string(),
        None => "null".into(),
    };
    let after = serde_json::json!({ "state": inbox::QUARANTINED, "reason": reason });
    audit::PendingEvent::new(
        "message.quarantined",
        format!("message/{message_id}"),
        before,
        after.to_string(),
    )
}

/// `(number, recipient)` when `m` carries a certificate (issued, replaced, revoked) to its
/// recipient: whom the certificate was sent to, who may then report on it.
pub(crate) fn sent_certificate(m: &OutMessage) -> Option<(&str, &str)> {
    if !matches!(m.kind.as_str(), "certificate.issued" | "certificate.replaced" | "certificate.revoked") {
        return None;
    }
    let (_, number) = m.cert_key.as_deref()?.split_once('/')?;
    Some((number, m.recipient.as_str()))
}

/// The audit event of an operator retrying a dead letter.
pub(crate) fn retried_event(before: &OutboxRow) -> audit::PendingEvent {
    let b = serde_json::json!({
        "dead": true,
        "attempts": before.attempts,
        "last_error": before.last_error,
        "recipient": before.recipient,
        "kind": before.kind,
    });
    let a = serde_json::json!({ "dead": false, "attempts": 0 });
    audit::PendingEvent::new(
        "message.retried",
        format!("message/{}", before.id),
        b.to_string(),
        a.to_string(),
    )
}

/// The conflict for a message id already in the outbox.
pub(crate) fn message_exists(id: &str) -> StoreError {
    StoreError::conflict("MESSAGE_EXISTS", format!("message {id} is already in the outbox"))
}

/// The conflict for an application that is not in the state a transition needs.
pub(crate) fn not_in_state(expected: ApplicationStatus, actual: ApplicationStatus) -> StoreError {
    let code = match expected {
        ApplicationStatus::Draft => "APPLICATION_NOT_DRAFT",
        ApplicationStatus::Submitted => "APPLICATION_NOT_SUBMITTED",
        ApplicationStatus::Approved => "APPLICATION_NOT_APPROVED",
        ApplicationStatus::Rejected => "APPLICATION_NOT_REJECTED",
    };
    StoreError::conflict(code, format!("the application is {actual}, this needs it {expected}"))
}

/// The canonical text of a decimal (no trailing zeros): how amounts are stored.
pub fn decimal_text(d: &Decimal) -> String {
    d.normalize().to_string()
}

/// Parses a stored decimal.
pub(crate) fn parse_decimal(s: &str) -> Result<Decimal> {
    s.parse::<Decimal>().map_err(|e| StoreError::Backend(format!("stored decimal {s:?} unreadable: {e}")))
}

/// Columns of `declarations` in the order both backends' row readers expect.
pub(crate) const DECL_COLS: &str = "id, number, importer, importing_country, declaration_date, document, \
     risk_score, risk, created_by, created_at";
/// The list variant of [`DECL_COLS`]: without the document.
pub(crate) const DECL_LIST_COLS: &str = "id, number, importer, importing_country, declaration_date, \
     '' AS document, risk_score, risk, created_by, created_at";
/// Columns of `declaration_lines` in the order both backends' row readers expect.
pub(crate) const LINE_COLS: &str =
    "line_no, eco_country, eco_number, exporter, outcome, reasons, matched_item, consumed, duty, decided_at";
/// Columns of `verification_requests` in the order both backends' row readers expect.
pub(crate) const VERIFICATION_COLS: &str = "id, direction, message_id, issuing_country, number, partner, \
     questions, deadline, status, answer, outcome, created_at, answered_at";

/// Checks a new declaration: line numbers distinct.
pub(crate) fn check_declaration(d: &NewDeclaration) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for l in &d.lines {
        if !seen.insert(l.line_no) {
            return Err(StoreError::conflict(
                "LINE_DUPLICATE",
                format!("line {} appears twice in declaration {}", l.line_no, d.number),
            ));
        }
    }
    Ok(())
}

/// The conflict for a declaration number already stored.
pub(crate) fn declaration_exists(number: &str) -> StoreError {
    StoreError::conflict("DECLARATION_EXISTS", format!("declaration {number} exists"))
}

/// The audit event of a declaration created.
pub(crate) fn declaration_created_event(id: i64, d: &NewDeclaration) -> audit::PendingEvent {
    let lines: Vec<serde_json::Value> = d
        .lines
        .iter()
        .map(|l| {
            serde_json::json!({
                "line_no": l.line_no,
                "eco_country": l.eco_country,
                "eco_number": l.eco_number,
            })
        })
        .collect();
    let after = serde_json::json!({
        "number": d.number,
        "importer": d.importer,
        "importing_country": d.importing_country,
        "declaration_date": d.declaration_date.format("%Y-%m-%d").to_string(),
        "lines": lines,
    });
    audit::PendingEvent::new(
        "declaration.created",
        format!("declaration/{id}"),
        "null".into(),
        after.to_string(),
    )
}

/// The audit event of a risk score recorded.
pub(crate) fn risk_event(id: i64, before: (i64, &str), score: i64, risk: &str) -> audit::PendingEvent {
    let state = |score: i64, risk: &str| {
        let risk: serde_json::Value = serde_json::from_str(risk).unwrap_or_else(|_| risk.into());
        serde_json::json!({ "risk_score": score, "risk": risk }).to_string()
    };
    audit::PendingEvent::new(
        "declaration.risk_scored",
        format!("declaration/{id}"),
        state(before.0, before.1),
        state(score, risk),
    )
}

/// The audit event of a `PENDING` line matched to a certificate.
pub(crate) fn line_linked_event(
    declaration_id: i64,
    line_no: i32,
    issuing_country: &str,
    number: &str,
) -> audit::PendingEvent {
    audit::PendingEvent::new(
        "declaration.line_matched",
        format!("declaration/{declaration_id}/line/{line_no}"),
        serde_json::json!({ "eco": "PENDING" }).to_string(),
        serde_json::json!({ "eco": { "issuing_country": issuing_country, "number": number } }).to_string(),
    )
}

/// The refusal of linking a line that is not `PENDING`.
pub(crate) fn line_not_pending(declaration_id: i64, line_no: i32) -> StoreError {
    StoreError::conflict(
        "LINE_NOT_PENDING",
        format!("line {line_no} of declaration {declaration_id} already names a certificate"),
    )
}

fn line_state(l: &DeclarationLine) -> serde_json::Value {
    let reasons: serde_json::Value =
        serde_json::from_str(&l.reasons).unwrap_or_else(|_| l.reasons.clone().into());
    serde_json::json!({
        "outcome": l.outcome,
        "reasons": reasons,
        "matched_item": l.matched_item,
        "consumed": l.consumed,
    })
}

/// The audit event of a line decided (with the consumption it recorded, if any).
pub(crate) fn line_decided_event(
    declaration_id: i64,
    before: &DeclarationLine,
    after: &DeclarationLine,
    used: Option<&Utilization>,
) -> audit::PendingEvent {
    let mut a = line_state(after);
    if let (Some(u), Some(m)) = (used, a.as_object_mut()) {
        m.insert(
            "utilization".into(),
            serde_json::json!({
                "issuing_country": u.issuing_country,
                "number": u.number,
                "item": u.item,
                "quantity": u.quantity,
                "remaining_after": u.remaining_after,
            }),
        );
    }
    audit::PendingEvent::new(
        "declaration.line_decided",
        format!("declaration/{declaration_id}/line/{}", after.line_no),
        line_state(before).to_string(),
        a.to_string(),
    )
}

/// The audit event of a ledger row changing: consumed by, or given back from, a line.
pub(crate) fn ledger_event(
    action: &'static str,
    (country, number, item): (&str, &str, i32),
    before: &Decimal,
    after: &Decimal,
    declaration: &str,
    line_no: i32,
) -> audit::PendingEvent {
    let state = |remaining: &Decimal| serde_json::json!({ "remaining": decimal_text(remaining) });
    let mut a = state(after);
    if let Some(m) = a.as_object_mut() {
        m.insert("declaration".into(), declaration.into());
        m.insert("line_no".into(), line_no.into());
    }
    audit::PendingEvent::new(
        action,
        format!("ledger/{country}/{number}/{item}"),
        state(before).to_string(),
        a.to_string(),
    )
}

fn verification_state(v: &VerificationRequest) -> String {
    serde_json::json!({
        "direction": v.direction,
        "message_id": v.message_id,
        "issuing_country": v.issuing_country,
        "number": v.number,
        "partner": v.partner,
        "deadline": v.deadline,
        "status": v.status,
        "outcome": v.outcome,
    })
    .to_string()
}

/// The audit event of a verification request created (either direction).
pub(crate) fn verification_created_event(v: &VerificationRequest) -> audit::PendingEvent {
    audit::PendingEvent::new(
        "verification.created",
        format!("verification/{}", v.id),
        "null".into(),
        verification_state(v),
    )
}

/// The audit event of a verification request answered (either direction).
pub(crate) fn verification_answered_event(
    before: &VerificationRequest,
    after: &VerificationRequest,
) -> audit::PendingEvent {
    audit::PendingEvent::new(
        "verification.answered",
        format!("verification/{}", after.id),
        verification_state(before),
        verification_state(after),
    )
}

/// The audit event of a verification response that matches no open request of ours.
pub(crate) fn verification_unmatched_event(m: &Inbound, request_message_id: &str) -> audit::PendingEvent {
    let after = serde_json::json!({
        "from_country": m.from_country,
        "request_message_id": request_message_id,
    });
    audit::PendingEvent::new(
        "verification.unmatched",
        format!("message/{}", m.message_id),
        "null".into(),
        after.to_string(),
    )
}

/// Checks a verification outcome.
pub(crate) fn check_outcome(outcome: &str) -> Result<()> {
    match outcome {
        "confirmed" | "denied" => Ok(()),
        _ => Err(StoreError::conflict(
            "VERIFICATION_OUTCOME_INVALID",
            format!("outcome {outcome:?}: confirmed or denied"),
        )),
    }
}

/// The conflict for a verification request that is not open (or not of the right direction).
pub(crate) fn verification_not_open(v: &VerificationRequest) -> StoreError {
    StoreError::conflict(
        "VERIFICATION_NOT_OPEN",
        format!("verification {} is {} ({}), this needs it open", v.id, v.status, v.direction),
    )
}
