//! What travels inside and around envelopes: batches, acknowledgements and the business
//! status payload (`status.update`), with the UNCL 1373 document status codes.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

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
        if b.messages.is_empty() {
            return Err(ExchangeError::new("BATCH_EMPTY", Some("messages"), "no messages"));
        }
        if b.messages.len() > MAX_BATCH {
            return Err(ExchangeError::new(
                "BATCH_TOO_LARGE",
                Some("messages"),
                format!("{} messages, at most {MAX_BATCH}", b.messages.len()),
            ));
        }
        Ok(b)
    }

    /// Writes a batch of already-serialized envelopes.
    pub fn encode<'a>(envelopes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let mut out = b"{\"messages\":[".to_vec();
        for (i, e) in envelopes.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(e);
        }
        out.extend_from_slice(b"]}");
        out
    }
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
