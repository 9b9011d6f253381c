//! The records the store keeps and hands out, and the values callers pass in.

use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{Result, decimal_text};

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
        /// Rejected with a reason (final: a copy starts a new draft).
        Rejected = "rejected",
        /// Returned by an officer for correction, with a reason: the exporter edits it and
        /// submits it again.
        Returned = "returned",
        /// Withdrawn by the exporter (final).
        Withdrawn = "withdrawn",
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

/// A user as an administrator sees it: who, what role, which company, whether disabled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    /// Identifier.
    pub id: i64,
    /// Unique login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The exporter's company name; `None` for authority roles.
    pub company: Option<String>,
    /// Whether the user is disabled (its tokens do not authenticate).
    pub disabled: bool,
    /// Disabled at (RFC 3339), while disabled.
    pub disabled_at: Option<String>,
    /// Created at (RFC 3339).
    pub created_at: String,
    /// Whether the user has a console password.
    pub password_set: bool,
    /// Tokens not revoked.
    pub active_tokens: i64,
    /// Where notifications are e-mailed; `None`: not by e-mail.
    pub email: Option<String>,
}

/// What an administrator does to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    /// Disable: its tokens stop authenticating (they are kept, and work again once enabled).
    Disable,
    /// Enable a disabled user.
    Enable,
    /// Revoke every token of the user.
    RevokeTokens,
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

/// What signing in needs of a user: who, the password's hash (argon2id, PHC string; `None`
/// until one is set) and whether the user is disabled.
#[derive(Debug, Clone)]
pub struct Login {
    /// The user.
    pub user: User,
    /// The password's hash, PHC string.
    pub password_hash: Option<String>,
    /// Disabled users do not sign in.
    pub disabled: bool,
}

/// A new console session: the SHA-256 of its id (the id itself lives only in the person's
/// cookie), its user and its CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// SHA-256 of the session id.
    pub id_hash: [u8; 32],
    /// The user signed in.
    pub user_id: i64,
    /// The token every form of this session carries.
    pub csrf: String,
}

/// A session in force: not ended, its user not disabled. Expiry is the caller's rule.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user signed in.
    pub user: User,
    /// The token every form of this session carries.
    pub csrf: String,
    /// Started at (RFC 3339).
    pub created_at: String,
    /// Last used at (RFC 3339).
    pub last_seen_at: String,
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
    /// The rejection reason, or why it was returned for correction.
    pub reason: Option<String>,
    /// The certificate issued from it.
    pub certificate_id: Option<i64>,
    /// The status of that certificate now (`revoked`, `superseded`, …), so the application
    /// follows what became of it.
    pub certificate_status: Option<CertificateStatus>,
    /// The applicant company's name (`None` only for a row whose company is gone).
    pub company_name: Option<String>,
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
    /// The rejected or withdrawn application this draft copies (recorded in the audit event).
    pub copied_from: Option<i64>,
}

/// An exporter's edit of a draft or returned application: the parts given replace the stored
/// ones (checked by the caller like an application).
#[derive(Debug, Clone, Default)]
pub struct EditApplication {
    /// The new document with its format (`xml` or `json`).
    pub document: Option<(String, Vec<u8>)>,
    /// The new self-assessment input and its evaluated result, as JSON text.
    pub self_assessment: Option<(String, String)>,
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

/// Which applications a list returns, besides its [`Page`]: every field narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationFilter {
    /// Only these statuses (empty: any).
    pub statuses: Vec<ApplicationStatus>,
    /// Text in the applying company's name, the applying user's name or the number of the
    /// certificate issued from it (case-insensitive for ASCII letters).
    pub q: Option<String>,
    /// Created at or after this instant (RFC 3339 text, or a date `YYYY-MM-DD`).
    pub from: Option<String>,
    /// Created before this instant (RFC 3339 text, or a date `YYYY-MM-DD`).
    pub to: Option<String>,
    /// Oldest first (a queue): the page's `before` then means *after* that id.
    pub oldest_first: bool,
}

/// Which issued certificates a list returns, besides its [`Page`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateFilter {
    /// Only this status.
    pub status: Option<CertificateStatus>,
    /// Text in the number.
    pub number: Option<String>,
}

/// Which received certificates a list returns, besides its [`Page`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceivedFilter {
    /// Only this status.
    pub status: Option<ReceivedStatus>,
    /// Only from this country (ISO code, exact).
    pub issuing_country: Option<String>,
    /// Text in the number.
    pub number: Option<String>,
    /// Text in the exporter's name.
    pub exporter: Option<String>,
    /// Received on or after this day.
    pub from: Option<chrono::NaiveDate>,
    /// Received on or before this day.
    pub to: Option<chrono::NaiveDate>,
}

/// Which declarations a list returns, besides its [`Page`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeclarationFilter {
    /// Text in the declaration number.
    pub number: Option<String>,
    /// Text in the importer's name.
    pub importer: Option<String>,
    /// Declared on or after this date (`YYYY-MM-DD`).
    pub from: Option<String>,
    /// Declared on or before this date (`YYYY-MM-DD`).
    pub to: Option<String>,
    /// Only declarations with at least one line of this outcome (`pending`, `granted`,
    /// `denied`, `not-claimed`).
    pub outcome: Option<String>,
}

impl ApplicationFilter {
    /// The bound values both backends use: (status set, pattern, from, to).
    /// The statuses as an SQL condition on `a.status` the planner can use with the
    /// `applications(status, id)` index (the values are the enum's own names, never input), or
    /// `TRUE` for any status.
    pub(crate) fn status_condition(&self) -> String {
        if self.statuses.is_empty() {
            return "TRUE".into();
        }
        let list: Vec<String> = self.statuses.iter().map(|s| format!("'{}'", s.as_str())).collect();
        format!("a.status IN ({})", list.join(", "))
    }

    pub(crate) fn binds(&self) -> (Option<String>, Option<String>, Option<String>, Option<String>) {
        let statuses = crate::text::status_set(self.statuses.iter().map(|s| s.as_str()));
        (statuses, self.q.as_deref().map(crate::text::like_anywhere), self.from.clone(), self.to.clone())
    }
}

/// A change to an application that needs no signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// draft or returned → submitted.
    Submit,
    /// submitted → returned for correction, with a reason.
    Return {
        /// What to correct.
        reason: String,
    },
    /// draft, submitted or returned → withdrawn.
    Withdraw,
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
    /// When it was revoked or superseded (RFC 3339); `None` while issued.
    pub status_at: Option<String>,
    /// The latest status the importing country reported for this version (`status.update`),
    /// if any; see [`Store::certificate_statuses`](crate::Store::certificate_statuses).
    pub remote_status: Option<String>,
}

/// One of this node's certificate versions that is no longer good: what its status list says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusEntry {
    /// The certificate number.
    pub number: String,
    /// The version.
    pub version: i64,
    /// Revoked or superseded.
    pub status: CertificateStatus,
    /// Since when (RFC 3339).
    pub since: String,
    /// The revocation reason.
    pub reason: Option<String>,
    /// The version that replaced it, when superseded.
    pub superseded_by: Option<i64>,
}

/// A signed certificate status list as stored: this node's own (its country's), or a
/// partner's as received over the exchange. The newest of each issuer only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredStatusList {
    /// The issuing country.
    pub issuer: String,
    /// Its sequence number.
    pub sequence: i64,
    /// Issued at (RFC 3339).
    pub issued_at: String,
    /// When the next list is due (RFC 3339).
    pub next_update: String,
    /// The signed list, byte for byte.
    #[serde(skip)]
    pub signed: Vec<u8>,
    /// When this node stored it (RFC 3339).
    pub stored_at: String,
}

/// What the signing callback of [`Store::approve`](crate::Store::approve) is told to produce.
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
/// nothing is stored and no number is used up. The approvals of one batch are signed in
/// parallel, and one may be signed again with another number (when an approval before it in
/// its scope failed to sign and gave its number back): it must not depend on being called once.
pub type SignFn = Box<dyn Fn(&Issue) -> Result<Signed, String> + Send + Sync>;

/// The messages of a revocation: called inside the revoking transaction with the revoked
/// certificate (status already `revoked`, reason set). Its messages are enqueued in the same
/// transaction; an `Err` rolls everything back ([`StoreError::Sign`](crate::StoreError::Sign)).
pub type MessagesFn = Box<dyn FnOnce(&Certificate) -> Result<Vec<OutMessage>, String> + Send>;

/// Builds the messages a set of line decisions causes, inside the deciding transaction.
pub type DecisionMessagesFn =
    Box<dyn FnOnce(&[(DeclarationLine, Option<Utilization>)]) -> Result<Vec<OutMessage>, String> + Send>;

/// Decided lines as stored, each with the utilization it made (granted lines with a claim).
pub type Decided = Vec<(DeclarationLine, Option<Utilization>)>;

/// What [`crate::Store::decide_lines_noted`] applies in one transaction.
pub struct Decisions {
    /// The decisions, one per line.
    pub lines: Vec<LineDecision>,
    /// Builds the messages they cause (the statuses back to the issuing countries).
    pub messages: DecisionMessagesFn,
    /// The officer's note, when an officer decided by hand.
    pub note: Option<OfficerNote>,
}

impl fmt::Debug for Decisions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decisions")
            .field("lines", &self.lines)
            .field("note", &self.note)
            .finish_non_exhaustive()
    }
}

/// Why a customs officer decided a line by hand: recorded with the decision in its audit
/// event (`declaration.line_redecided` / `declaration.line_overridden`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficerNote {
    /// Re-decided (`false`: the rules ran again) or overridden (`true`: the officer chose).
    pub overridden: bool,
    /// The officer's reason (1–1000 characters, checked by the caller).
    pub reason: String,
}

/// A [`MessagesFn`] that sends nothing.
pub fn no_messages() -> MessagesFn {
    Box::new(|_| Ok(vec![]))
}

/// One approval of a batch ([`crate::Store::approve_batch`]).
pub struct Approval {
    /// Who approves, and when.
    pub ctx: Ctx,
    /// The submitted application.
    pub id: i64,
    /// How its number is allocated.
    pub numbering: Numbering,
    /// Its signing step.
    pub sign: SignFn,
}

impl fmt::Debug for Approval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Approval")
            .field("ctx", &self.ctx)
            .field("id", &self.id)
            .field("numbering", &self.numbering)
            .finish_non_exhaustive()
    }
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
    /// The exporter the certificate names (`None`: received before it was kept, or unreadable).
    pub exporter: Option<String>,
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
    /// The exchange message it came in ([`Store::apply_inbound`](crate::Store::apply_inbound)
    /// fills it in).
    pub message_id: Option<String>,
    /// The exporter the certificate names, when it reads.
    pub exporter: Option<String>,
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
            exporter: None,
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
    /// Given up on: waits for an operator ([`Store::retry_dead`](crate::Store::retry_dead)).
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
    /// `status.list`: the sender's signed certificate status list (already verified): kept
    /// when newer than the one kept for that issuer.
    StatusList {
        /// The issuing country (the sender).
        issuer: String,
        /// Its sequence number.
        sequence: i64,
        /// Issued at (RFC 3339).
        issued_at: String,
        /// Next update due (RFC 3339).
        next_update: String,
        /// The signed list (JSON text).
        signed: String,
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
            InboundKind::StatusList { .. } => "status.list",
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
    /// [`ANSWER_FROM_WRONG_PEER`]): nothing stored but the refusal
    /// ([`Store::refused`](crate::Store::refused)).
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
    /// The importer's normalized key (`originlink_customs::risk::importer_key`), compared by
    /// [`Store::pair_seen`](crate::Store::pair_seen).
    pub importer_key: Option<String>,
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

/// An exporter → importer pair, for [`Store::pair_seen`](crate::Store::pair_seen).
#[derive(Debug, Clone, Copy)]
pub struct Pair<'a> {
    /// The exporter's key, as stored on the lines.
    pub exporter: &'a str,
    /// The importer's normalized key.
    pub importer_key: &'a str,
    /// The importer's name as written: matched against declarations stored without a key.
    pub importer_name: &'a str,
    /// The declaration being scored, left out.
    pub other_than: i64,
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
    /// The exporter named on the line (for [`Store::pair_seen`](crate::Store::pair_seen)).
    pub exporter: Option<String>,
    /// The agreement whose preference the line claims (`None`: MFN).
    pub agreement: Option<String>,
}

/// The decided lines of one month, agreement, partner and currency, summed in the
/// currency's minor units (exact: every duty amount is rounded to the minor unit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevenueGroup {
    /// `YYYY-MM` of the declaration date.
    pub month: String,
    /// The agreement claimed (`None`: no preference claimed).
    pub agreement: Option<String>,
    /// The issuing country of the certificate claimed (`None`: no certificate named).
    pub partner: Option<String>,
    /// The currency.
    pub currency: String,
    /// Lines summed.
    pub lines: i64,
    /// Duty at the MFN rate, in minor units.
    pub mfn_minor: i64,
    /// Duty due, in minor units.
    pub due_minor: i64,
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
    /// The risk score (0 until [`Store::set_risk`](crate::Store::set_risk)).
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

/// Declaration lines as (declaration id, line number), in order.
pub type LineRefs = Vec<(i64, i32)>;

/// A notification to store, unless one with its `key` exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// What makes it unique (`audit:<seq>:<audience>`, `overdue:verification/<id>`, ...).
    pub key: String,
    /// Who is told: `role:<role>` or `company:<id>`.
    pub audience: String,
    /// What happened (a text id's suffix, e.g. `received`).
    pub kind: String,
    /// The console page it is about.
    pub link: String,
    /// The text's arguments, as a JSON object.
    pub args: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Its e-mails and webhook calls.
    pub deliveries: Vec<NewDelivery>,
}

/// An e-mail or webhook call of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// `email` or `webhook`.
    pub channel: String,
    /// The address or URL.
    pub target: String,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// Identifier (increasing).
    pub id: i64,
    /// Who is told.
    pub audience: String,
    /// What happened.
    pub kind: String,
    /// The console page it is about.
    pub link: String,
    /// The text's arguments, as a JSON object.
    pub args: String,
    /// When (RFC 3339).
    pub at: String,
}

/// A delivery due, with its notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Identifier.
    pub id: i64,
    /// `email` or `webhook`.
    pub channel: String,
    /// The address or URL.
    pub target: String,
    /// Failed attempts so far.
    pub attempts: i32,
    /// The notification.
    pub notification: Notification,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Delivered.
    Delivered,
    /// Failed; tried again at `retry_at`, or never again when `None`.
    Failed {
        /// Why.
        error: String,
        /// When to try again.
        retry_at: Option<DateTime<Utc>>,
    },
}
