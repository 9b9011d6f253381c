//! What travels inside and around envelopes: batches, acknowledgements and the business
//! status payload (`status.update`), with the UNCL 1373 document status codes, and
//! [`check_message`]: the type-specific checks of a message (its header and its payload).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::envelope::{Envelope, MessageType};
use crate::error::ExchangeError;

/// The most envelopes in one batch request.
pub const MAX_BATCH: usize = 1000;
/// The largest batch request body, in bytes.
pub const MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// `POST /exchange/v1/messages`: envelopes, each kept byte for byte.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// The envelopes.
    pub messages: Vec<Box<RawValue>>,
}

impl Batch {
    /// Parses a batch body. Errors: `BATCH_TOO_LARGE`, `BATCH_MALFORMED`, `BATCH_EMPTY`.
    pub fn parse(body: &[u8]) -> Result<Batch, ExchangeError> {
        if body.len() > MAX_BATCH_BYTES {
            return Err(ExchangeError::new("BATCH_TOO_LARGE", None, format!("{} bytes", body.len())));
        }
        let b: Batch = serde_json::from_slice(body)
            .map_err(|e| ExchangeError::new("BATCH_MALFORMED", Some("messages"), e.to_string()))?;
        count(&b.messages)?;
        Ok(b)
    }

    /// Writes a batch of already-serialized envelopes.
    pub fn encode<'a>(envelopes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let mut out = b"{\"messages\":".to_vec();
        array(&mut out, envelopes);
        out.push(b'}');
        out
    }
}

/// Appends a JSON array of already-serialized values.
fn array<'a>(out: &mut Vec<u8>, values: impl IntoIterator<Item = &'a [u8]>) {
    out.push(b'[');
    for (i, v) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(v);
    }
    out.push(b']');
}

/// A batch holds 1 to [`MAX_BATCH`] envelopes: `BATCH_EMPTY`, `BATCH_TOO_LARGE`.
fn count(messages: &[Box<RawValue>]) -> Result<(), ExchangeError> {
    if messages.is_empty() {
        return Err(ExchangeError::new("BATCH_EMPTY", Some("messages"), "no messages"));
    }
    if messages.len() > MAX_BATCH {
        return Err(ExchangeError::new(
            "BATCH_TOO_LARGE",
            Some("messages"),
            format!("{} messages, at most {MAX_BATCH}", messages.len()),
        ));
    }
    Ok(())
}

/// `POST /exchange/v2/messages`: envelopes, each kept byte for byte, and the signed manifests
/// that list them ([`crate::manifest`]).
#[derive(Debug)]
pub struct BatchV2 {
    /// The manifests, parsed (not yet verified), in order.
    pub manifests: Vec<crate::manifest::Manifest>,
    /// The envelopes.
    pub messages: Vec<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchV2Wire {
    #[serde(default)]
    manifests: Vec<Box<RawValue>>,
    messages: Vec<Box<RawValue>>,
}

impl BatchV2 {
    /// Parses a version 2 batch body: the limits of [`Batch::parse`], at most one manifest per
    /// envelope, and the form of every manifest (`MANIFEST_MALFORMED` with the member in
    /// `field` as `manifests/<index>/<member>`).
    pub fn parse(body: &[u8]) -> Result<BatchV2, ExchangeError> {
        if body.len() > MAX_BATCH_BYTES {
            return Err(ExchangeError::new("BATCH_TOO_LARGE", None, format!("{} bytes", body.len())));
        }
        let b: BatchV2Wire = serde_json::from_slice(body)
            .map_err(|e| ExchangeError::new("BATCH_MALFORMED", Some("messages"), e.to_string()))?;
        count(&b.messages)?;
        if b.manifests.len() > b.messages.len() {
            return Err(ExchangeError::new(
                "BATCH_MALFORMED",
                Some("manifests"),
                format!(
                    "{} manifests for {} messages: at most one each",
                    b.manifests.len(),
                    b.messages.len()
                ),
            ));
        }
        let mut manifests = Vec::with_capacity(b.manifests.len());
        for (i, m) in b.manifests.iter().enumerate() {
            let m = crate::manifest::Manifest::parse(m.get().as_bytes()).map_err(|e| {
                let field = match e.field.as_deref() {
                    Some(f) if !f.is_empty() => format!("manifests/{i}/{f}"),
                    _ => format!("manifests/{i}"),
                };
                ExchangeError { field: Some(field), ..e }
            })?;
            manifests.push(m);
        }
        Ok(BatchV2 { manifests, messages: b.messages })
    }

    /// Writes a version 2 batch of already-serialized manifests and envelopes.
    pub fn encode<'a, 'b>(
        manifests: impl IntoIterator<Item = &'a [u8]>,
        envelopes: impl IntoIterator<Item = &'b [u8]>,
    ) -> Vec<u8> {
        let mut out = b"{\"manifests\":".to_vec();
        array(&mut out, manifests);
        out.extend_from_slice(b",\"messages\":");
        array(&mut out, envelopes);
        out.push(b'}');
        out
    }
}

/// A manifest of a version 2 batch that vouched for nothing, with why (its envelopes were
/// checked by their own signatures).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRefusal {
    /// The manifest id.
    pub id: String,
    /// The error code.
    pub code: String,
    /// The member concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For people.
    pub message: String,
}

/// The technical outcome of one message at the receiver (ePhyto hub terms). Separate from the
/// business status that follows in a `status.update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// A gateway took the message into its durable queue; it will deliver it.
    Accepted,
    /// The recipient node stored it.
    Delivered,
    /// Stored, with warnings (e.g. held until an earlier message about the same certificate
    /// arrives).
    DeliveredWithWarnings,
    /// Stored, but its payload could not be read; a `status.update` "rejected" follows.
    NotReadable,
    /// Refused: the envelope itself is not acceptable (signature, sender, hash, recipient).
    /// Retrying the same bytes cannot succeed.
    Refused,
}

/// The acknowledgement of one message in a batch response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// The message id (empty when the envelope was too broken to have one).
    pub id: String,
    /// The outcome.
    pub result: Delivery,
    /// Whether this message had been received before (nothing was applied again).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// The error code, for `refused` and `not-readable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The envelope member concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Ack {
    /// A plain acknowledgement.
    pub fn ok(id: impl Into<String>, result: Delivery) -> Ack {
        Ack { id: id.into(), result, duplicate: false, code: None, field: None, message: None }
    }
    /// A refusal with the error's code and field.
    pub fn refused(id: impl Into<String>, e: &ExchangeError) -> Ack {
        Ack {
            id: id.into(),
            result: Delivery::Refused,
            duplicate: false,
            code: Some(e.code.to_owned()),
            field: e.field.clone(),
            message: Some(e.message.clone()),
        }
    }
}

/// The response to a batch: one acknowledgement per message, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    /// Acknowledgements.
    pub acks: Vec<Ack>,
    /// Version 2: the manifests that vouched for nothing, with why (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<ManifestRefusal>,
}

/// The business status of a certificate at the importing side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BusinessStatus {
    /// The certificate arrived and verified (UNCL 1373 code 43).
    Received,
    /// Accepted by customs for a declaration (1).
    Accepted,
    /// Accepted with warnings (44).
    AcceptedWithWarnings,
    /// Rejected, with reason codes (8).
    Rejected,
    /// Used by a declaration, quantities left (13: not exhausted by the declaration).
    UtilizedPartially,
    /// Used up by a declaration (12: exhausted by the declaration).
    UtilizedFully,
    /// The revocation was applied (41: validity revoked).
    Revoked,
    /// The replacement was applied (10: document currently valid, for the new version).
    Replaced,
}

impl BusinessStatus {
    /// The UNCL 1373 document status code.
    pub fn uncl1373(&self) -> &'static str {
        match self {
            BusinessStatus::Received => "43",
            BusinessStatus::Accepted => "1",
            BusinessStatus::AcceptedWithWarnings => "44",
            BusinessStatus::Rejected => "8",
            BusinessStatus::UtilizedPartially => "13",
            BusinessStatus::UtilizedFully => "12",
            BusinessStatus::Revoked => "41",
            BusinessStatus::Replaced => "10",
        }
    }
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            BusinessStatus::Received => "received",
            BusinessStatus::Accepted => "accepted",
            BusinessStatus::AcceptedWithWarnings => "accepted-with-warnings",
            BusinessStatus::Rejected => "rejected",
            BusinessStatus::UtilizedPartially => "utilized-partially",
            BusinessStatus::UtilizedFully => "utilized-fully",
            BusinessStatus::Revoked => "revoked",
            BusinessStatus::Replaced => "replaced",
        }
    }
}

/// A reason, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable code (a verification reason such as `TAMPERED`, or a customs reason code).
    pub code: String,
    /// For people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Quantities used by one declaration line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utilized {
    /// The certificate item number.
    pub item: u32,
    /// Quantity used (decimal text).
    pub quantity: String,
    /// UN/ECE Rec 20 unit.
    pub unit: String,
    /// Quantity left after this use.
    pub remaining: String,
}

/// The payload of a `status.update` (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// The status.
    pub status: BusinessStatus,
    /// Its UNCL 1373 code (redundant with `status`, for systems that speak codes).
    pub code: String,
    /// Why (for rejections; may be empty).
    #[serde(default)]
    pub reasons: Vec<Reason>,
    /// The import declaration concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration: Option<String>,
    /// Quantities used, for the utilized statuses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub utilized: Vec<Utilized>,
}

impl StatusBody {
    /// A status with its code and no details.
    pub fn new(status: BusinessStatus) -> StatusBody {
        StatusBody {
            status,
            code: status.uncl1373().to_owned(),
            reasons: Vec::new(),
            declaration: None,
            utilized: Vec::new(),
        }
    }
    /// Parses a status payload. `STATUS_MALFORMED` otherwise.
    pub fn parse(bytes: &[u8]) -> Result<StatusBody, ExchangeError> {
        serde_json::from_slice(bytes).map_err(|e| ExchangeError::new("STATUS_MALFORMED", Some("payload"), e))
    }
    /// JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The payload of a `certificate.revoked` (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedBody {
    /// Why.
    pub reason: String,
}

/// The payload of a `verification.request` (JSON
/// `{"questions": ["…", …], "deadline": "<RFC 3339>"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationRequestBody {
    /// What the importing side asks: 1 or more non-blank texts of at most 2,000 characters.
    pub questions: Vec<String>,
    /// When an answer is due.
    pub deadline: DateTime<Utc>,
}

/// The payload of a `verification.response` (JSON `{"outcome": "confirmed" | "denied",
/// "answer": "…"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationResponseBody {
    /// `confirmed` or `denied`.
    pub outcome: String,
    /// The answer, for people.
    pub answer: String,
}

/// What a message carries, by type, once [`check_message`] has accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageBody {
    /// `certificate.issued` / `certificate.replaced`: the payload is the signed document. Its
    /// content is judged by the recipient's verifier (a document that cannot be read is
    /// quarantined there, not refused), so it is not read here.
    Certificate,
    /// `certificate.revoked`.
    Revoked(RevokedBody),
    /// `status.update`.
    Status(StatusBody),
    /// `verification.request`.
    VerificationRequest(VerificationRequestBody),
    /// `verification.response`.
    VerificationResponse(VerificationResponseBody),
    /// `status.list`: the payload is the sender's signed status list. Its signature is checked
    /// by the recipient against the sender's document-signing keys, so only its form is read
    /// here.
    StatusList,
    /// `delivery.ack`: reserved in this version; its payload is not read.
    Reserved,
}

fn payload_error(field: &str, msg: impl ToString) -> ExchangeError {
    ExchangeError::new("PAYLOAD_MALFORMED", Some(field), msg)
}

/// The JSON payload of `env` as an object, parsed strictly (no duplicate member names), with
/// no string holding U+0000 (no database stores it) and only the members `allowed`.
fn json_payload(env: &Envelope, allowed: &[&str]) -> Result<Map<String, Value>, ExchangeError> {
    let kind = env.header.kind.as_str();
    if env.header.payload_type != "application/json" {
        return Err(ExchangeError::new(
            "ENVELOPE_MALFORMED",
            Some("payload_type"),
            format!("a {kind} payload is application/json"),
        ));
    }
    let v = originlink_trust::jcs::parse_strict(&env.payload)
        .map_err(|e| payload_error("payload", format!("not I-JSON: {e}")))?;
    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(has_nul),
            Value::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    if has_nul(&v) {
        return Err(payload_error("payload", "a text holds a NUL character (U+0000)"));
    }
    let Value::Object(m) = v else {
        return Err(payload_error("payload", format!("a {kind} payload is a JSON object")));
    };
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(payload_error(
            &format!("payload/{k}"),
            format!("unknown member {k:?}; the members are {}", allowed.join(", ")),
        ));
    }
    Ok(m)
}

fn payload_str<'a>(m: &'a Map<String, Value>, name: &str) -> Result<&'a str, ExchangeError> {
    let field = format!("payload/{name}");
    match m.get(name) {
        None | Some(Value::Null) => Err(payload_error(&field, format!("the member {name:?} is missing"))),
        Some(Value::String(s)) => Ok(s),
        Some(other) => {
            Err(payload_error(&field, format!("must be a string, not {}", crate::envelope::json_kind(other))))
        }
    }
}

/// The type-specific checks of a message, in one place for the gateway (which refuses at its
/// door what the recipient would refuse) and the node: the header members its type needs and
/// the consistency of its countries, then its payload. Certificate documents are not read here
/// (see [`MessageBody::Certificate`]).
///
/// Codes: `ENVELOPE_MALFORMED` (`certificate` or `correlation_id` missing, `payload_type`
/// not JSON for a JSON body), `ISSUER_MISMATCH` (a `certificate.*` message about a certificate
/// of another country than `from`), `RECIPIENT_UNKNOWN` (field `certificate`: a status or a
/// verification request about a certificate the recipient did not issue), `PAYLOAD_MALFORMED`
/// (the payload is not the type's body; `field` is `payload` or `payload/<member>`).
pub fn check_message(env: &Envelope) -> Result<MessageBody, ExchangeError> {
    let h = &env.header;
    let kind = h.kind;
    let cert = || {
        h.certificate.as_ref().ok_or_else(|| {
            ExchangeError::new(
                "ENVELOPE_MALFORMED",
                Some("certificate"),
                format!("a {} message needs a certificate reference", kind.as_str()),
            )
        })
    };
    let issued_by_sender = |c: &crate::CertRef| {
        if c.country == h.from.country {
            Ok(())
        } else {
            Err(ExchangeError::new(
                "ISSUER_MISMATCH",
                Some("certificate"),
                format!(
                    "{} cannot send a {} about a certificate of {}",
                    h.from.country,
                    kind.as_str(),
                    c.country
                ),
            ))
        }
    };
    let issued_by_recipient = |c: &crate::CertRef| {
        if c.country == h.to.country {
            Ok(())
        } else {
            Err(ExchangeError::new(
                "RECIPIENT_UNKNOWN",
                Some("certificate"),
                format!(
                    "{} did not issue {}: a {} goes to the issuing country",
                    h.to.country,
                    c.number,
                    kind.as_str()
                ),
            ))
        }
    };
    match kind {
        MessageType::CertificateIssued | MessageType::CertificateReplaced => {
            issued_by_sender(cert()?)?;
            Ok(MessageBody::Certificate)
        }
        MessageType::CertificateRevoked => {
            issued_by_sender(cert()?)?;
            let m = json_payload(env, &["reason"])?;
            Ok(MessageBody::Revoked(RevokedBody { reason: payload_str(&m, "reason")?.to_owned() }))
        }
        MessageType::StatusUpdate => {
            issued_by_recipient(cert()?)?;
            json_payload(env, &["status", "code", "reasons", "declaration", "utilized"])?;
            let body = serde_json::from_slice::<StatusBody>(&env.payload)
                .map_err(|e| payload_error("payload", format!("not a status body: {e}")))?;
            Ok(MessageBody::Status(body))
        }
        MessageType::VerificationRequest => {
            issued_by_recipient(cert()?)?;
            let m = json_payload(env, &["questions", "deadline"])?;
            let questions = match m.get("questions") {
                Some(Value::Array(a)) if !a.is_empty() => a
                    .iter()
                    .map(|q| match q {
                        Value::String(s) if !s.trim().is_empty() && s.chars().count() <= 2000 => {
                            Ok(s.clone())
                        }
                        _ => Err(()),
                    })
                    .collect::<Result<Vec<_>, ()>>()
                    .ok(),
                _ => None,
            }
            .ok_or_else(|| {
                payload_error(
                    "payload/questions",
                    "1 or more questions, each a non-blank string of at most 2000 characters",
                )
            })?;
            let deadline = crate::envelope::parse_rfc3339(payload_str(&m, "deadline")?)
                .map_err(|e| payload_error("payload/deadline", e))?;
            Ok(MessageBody::VerificationRequest(VerificationRequestBody { questions, deadline }))
        }
        MessageType::VerificationResponse => {
            if h.correlation_id.is_none() {
                return Err(ExchangeError::new(
                    "ENVELOPE_MALFORMED",
                    Some("correlation_id"),
                    "a verification.response names the id of the request it answers",
                ));
            }
            let m = json_payload(env, &["outcome", "answer"])?;
            let outcome = payload_str(&m, "outcome")?;
            if !matches!(outcome, "confirmed" | "denied") {
                return Err(payload_error("payload/outcome", format!("{outcome:?}: confirmed or denied")));
            }
            let answer = payload_str(&m, "answer")?;
            Ok(MessageBody::VerificationResponse(VerificationResponseBody {
                outcome: outcome.to_owned(),
                answer: answer.to_owned(),
            }))
        }
        MessageType::StatusList => {
            let m = json_payload(
                env,
                &["format", "issuer", "sequence", "issued_at", "next_update", "entries", "signature"],
            )?;
            let issuer = payload_str(&m, "issuer")?;
            if issuer != h.from.country.as_str() {
                return Err(ExchangeError::new(
                    "ISSUER_MISMATCH",
                    Some("payload/issuer"),
                    format!("{} cannot send the status list of {issuer}", h.from.country),
                ));
            }
            Ok(MessageBody::StatusList)
        }
        MessageType::DeliveryAck => Ok(MessageBody::Reserved),
    }
}
