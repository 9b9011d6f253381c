//! The signed envelope: what travels between nodes, through the gateway or directly.
//!
//! On the wire an envelope is one JSON object (see `docs/protocol.md`). The payload is carried
//! byte for byte, base64-encoded; `payload_sha256` is its SHA-256. The sending node signs the
//! envelope with its node key: a detached JWS (ES256 or RS256) over the RFC 8785 canonical
//! form of every member except `payload` and `signature`. The hash binds the payload to that
//! signature, so a router can check the whole envelope without reading the payload.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use originlink_model::CountryCode;
use originlink_trust::jws::{DetachedJws, JwsFailure};
use originlink_trust::{PrivateKey, x509::Cert};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ExchangeError;

/// The value of the `format` member.
pub const FORMAT: &str = "originlink-envelope/1";

/// The largest envelope accepted, in bytes (a certificate of 50 items signed is ~60 KB; the
/// limit leaves room for attachments of verification responses).
pub const MAX_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;

macro_rules! message_types {
    ($($v:ident = $s:literal: $doc:literal),* $(,)?) => {
        /// What a message is about.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum MessageType { $(#[doc = $doc] #[serde(rename = $s)] $v),* }
        impl MessageType {
            /// Every type, in protocol order.
            pub const ALL: &'static [MessageType] = &[$(MessageType::$v),*];
            /// The wire name.
            pub fn as_str(&self) -> &'static str { match self { $(MessageType::$v => $s),* } }
            /// Parses the wire name.
            pub fn parse(s: &str) -> Option<Self> { match s { $($s => Some(MessageType::$v),)* _ => None } }
        }
    };
}

message_types!(
    CertificateIssued = "certificate.issued": "A new certificate (version 1); the payload is the signed document.",
    CertificateReplaced = "certificate.replaced": "A new version of a certificate; the payload is the signed document.",
    CertificateRevoked = "certificate.revoked": "A certificate version is revoked; the payload is a JSON `{reason}`.",
    DeliveryAck = "delivery.ack": "Technical acknowledgement of a message (delivered / with warnings / not readable).",
    StatusUpdate = "status.update": "Business status of a certificate at the importing side.",
    VerificationRequest = "verification.request": "Importing customs asks the issuing country to verify a certificate.",
    VerificationResponse = "verification.response": "The issuing country answers a verification request.",
);

impl MessageType {
    /// Whether this type carries a certificate document as its payload.
    pub fn carries_certificate(&self) -> bool {
        matches!(self, MessageType::CertificateIssued | MessageType::CertificateReplaced)
    }
}

/// One end of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// ISO 3166-1 alpha-2 code of the member country.
    pub country: CountryCode,
    /// The node or authority id within the country (informative; routing is by country).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// Which certificate (and which version of it) a message is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertRef {
    /// The issuing country.
    pub country: CountryCode,
    /// The certificate number.
    pub number: String,
    /// The version (1 = original; each replacement +1).
    pub version: i64,
}

impl CertRef {
    /// `KH/KH-2026-000001`: the ordering key of the certificate (all versions).
    pub fn key(&self) -> String {
        format!("{}/{}", self.country, self.number)
    }
}

/// The envelope header: everything but the payload bytes and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Message id, a UUIDv7 (text).
    pub id: String,
    /// The message this one answers or belongs with (e.g. the certificate message a status
    /// update is about).
    pub correlation_id: Option<String>,
    /// Sender.
    pub from: Endpoint,
    /// Recipient.
    pub to: Endpoint,
    /// Message type.
    pub kind: MessageType,
    /// The certificate concerned, if any.
    pub certificate: Option<CertRef>,
    /// Media type of the payload: `application/xml` or `application/json`.
    pub payload_type: String,
    /// When the sender created the message.
    pub created_at: DateTime<Utc>,
}

/// A parsed envelope. [`Envelope::parse`] checks form and the payload hash; the signature is
/// checked with [`Envelope::verify_signature`] against the sender's node certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The header.
    pub header: Header,
    /// SHA-256 of the payload, lower-case hex.
    pub payload_sha256: String,
    /// The payload, byte for byte.
    pub payload: Vec<u8>,
    /// The detached JWS.
    pub signature: String,
    /// The envelope exactly as received or produced (what is stored and forwarded).
    pub raw: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    format: String,
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
    from: Endpoint,
    to: Endpoint,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificate: Option<CertRef>,
    payload_type: String,
    payload_sha256: String,
    created_at: String,
    payload: String,
    signature: String,
}

/// SHA-256, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The bytes the signature covers: the RFC 8785 canonical JSON of the header members plus
/// `format` and `payload_sha256`.
fn signed_bytes(w: &Wire) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("format".into(), Value::String(w.format.clone()));
    m.insert("id".into(), Value::String(w.id.clone()));
    if let Some(c) = &w.correlation_id {
        m.insert("correlation_id".into(), Value::String(c.clone()));
    }
    m.insert("from".into(), serde_json::to_value(&w.from).unwrap_or(Value::Null));
    m.insert("to".into(), serde_json::to_value(&w.to).unwrap_or(Value::Null));
    m.insert("type".into(), Value::String(w.kind.clone()));
    if let Some(c) = &w.certificate {
        m.insert("certificate".into(), serde_json::to_value(c).unwrap_or(Value::Null));
    }
    m.insert("payload_type".into(), Value::String(w.payload_type.clone()));
    m.insert("payload_sha256".into(), Value::String(w.payload_sha256.clone()));
    m.insert("created_at".into(), Value::String(w.created_at.clone()));
    originlink_trust::jcs::to_canonical(&Value::Object(m))
}

impl Envelope {
    /// Builds and signs an envelope with the sending node's key.
    pub fn seal(header: Header, payload: Vec<u8>, key: &PrivateKey) -> Result<Envelope, ExchangeError> {
        let payload_sha256 = sha256_hex(&payload);
        let mut w = Wire {
            format: FORMAT.into(),
            id: header.id.clone(),
            correlation_id: header.correlation_id.clone(),
            from: header.from.clone(),
            to: header.to.clone(),
            kind: header.kind.as_str().into(),
            certificate: header.certificate.clone(),
            payload_type: header.payload_type.clone(),
            payload_sha256: payload_sha256.clone(),
            created_at: timestamp(&header.created_at),
            payload: STANDARD.encode(&payload),
            signature: String::new(),
        };
        let signature = originlink_trust::jws::sign_detached(&signed_bytes(&w), key, &[])
            .map_err(|e| ExchangeError::new("ENVELOPE_SIGNING_FAILED", None, e.to_string()))?;
        w.signature = signature.clone();
        let raw =
            serde_json::to_vec(&w).map_err(|e| ExchangeError::new("ENVELOPE_SIGNING_FAILED", None, e))?;
        Ok(Envelope { header, payload_sha256, payload, signature, raw })
    }

    /// Parses an envelope: its form, every field, the payload hash. Does not check the
    /// signature (that needs the sender's certificate: [`Envelope::verify_signature`]).
    pub fn parse(raw: &[u8]) -> Result<Envelope, ExchangeError> {
        if raw.len() > MAX_ENVELOPE_BYTES {
            return Err(ExchangeError::new(
                "ENVELOPE_TOO_LARGE",
                None,
                format!("{} bytes, at most {MAX_ENVELOPE_BYTES}", raw.len()),
            ));
        }
        let w: Wire = serde_json::from_slice(raw).map_err(|e| {
            let field = field_of_serde_error(&e);
            ExchangeError::new("ENVELOPE_MALFORMED", field, e.to_string())
        })?;
        Self::from_wire(w, raw.to_vec())
    }

    /// [`Envelope::parse`] from an already-parsed JSON value (inside a batch).
    pub fn from_value(v: Value, raw: Vec<u8>) -> Result<Envelope, ExchangeError> {
        if raw.len() > MAX_ENVELOPE_BYTES {
            return Err(ExchangeError::new("ENVELOPE_TOO_LARGE", None, format!("{} bytes", raw.len())));
        }
        let w: Wire = serde_json::from_value(v).map_err(|e| {
            let field = field_of_serde_error(&e);
            ExchangeError::new("ENVELOPE_MALFORMED", field, e.to_string())
        })?;
        Self::from_wire(w, raw)
    }

    fn from_wire(w: Wire, raw: Vec<u8>) -> Result<Envelope, ExchangeError> {
        let bad = |field: &str, msg: String| ExchangeError::new("ENVELOPE_MALFORMED", Some(field), msg);
        if w.format != FORMAT {
            return Err(ExchangeError::new(
                "ENVELOPE_FORMAT_UNKNOWN",
                Some("format"),
                format!("{:?}, expected {FORMAT:?}", w.format),
            ));
        }
        if !crate::id::is_uuid(&w.id) {
            return Err(bad("id", format!("{:?} is not a UUID", w.id)));
        }
        if let Some(c) = w.correlation_id.as_ref().filter(|c| !crate::id::is_uuid(c)) {
            return Err(bad("correlation_id", format!("{c:?} is not a UUID")));
        }
        let kind = MessageType::parse(&w.kind).ok_or_else(|| {
            ExchangeError::new(
                "MESSAGE_TYPE_UNKNOWN",
                Some("type"),
                format!("{:?} is not a message type", w.kind),
            )
        })?;
        if let Some(c) = &w.certificate {
            if c.number.is_empty() || c.number.len() > 64 || c.number.chars().any(|ch| ch.is_control()) {
                return Err(bad("certificate/number", "must be 1..64 printable characters".into()));
            }
            if !(1..=9999).contains(&c.version) {
                return Err(bad("certificate/version", format!("{} is not in 1..9999", c.version)));
            }
        } else if kind.carries_certificate() || kind == MessageType::CertificateRevoked {
            return Err(bad(
                "certificate",
                format!("a {} message needs a certificate reference", kind.as_str()),
            ));
        }
        if !matches!(w.payload_type.as_str(), "application/xml" | "application/json") {
            return Err(bad(
                "payload_type",
                format!("{:?}: application/xml or application/json", w.payload_type),
            ));
        }
        let created_at = DateTime::parse_from_rfc3339(&w.created_at)
            .map_err(|e| bad("created_at", format!("not RFC 3339: {e}")))?
            .with_timezone(&Utc);
        let payload =
            STANDARD.decode(w.payload.as_bytes()).map_err(|_| bad("payload", "not base64".into()))?;
        let payload_sha256 = sha256_hex(&payload);
        if payload_sha256 != w.payload_sha256 {
            return Err(ExchangeError::new(
                "PAYLOAD_HASH_MISMATCH",
                Some("payload_sha256"),
                "the payload's SHA-256 is not the one the envelope states".to_owned(),
            ));
        }
        let header = Header {
            id: w.id.clone(),
            correlation_id: w.correlation_id.clone(),
            from: w.from.clone(),
            to: w.to.clone(),
            kind,
            certificate: w.certificate.clone(),
            payload_type: w.payload_type.clone(),
            created_at,
        };
        let signature = w.signature.clone();
        // The signed bytes are recomputed from the wire members at verification time.
        Ok(Envelope { header, payload_sha256, payload, signature, raw })
    }

    /// The canonical bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let h = &self.header;
        signed_bytes(&Wire {
            format: FORMAT.into(),
            id: h.id.clone(),
            correlation_id: h.correlation_id.clone(),
            from: h.from.clone(),
            to: h.to.clone(),
            kind: h.kind.as_str().into(),
            certificate: h.certificate.clone(),
            payload_type: h.payload_type.clone(),
            payload_sha256: self.payload_sha256.clone(),
            created_at: timestamp(&h.created_at),
            payload: String::new(),
            signature: String::new(),
        })
    }

    /// Checks the signature with one of the sender's node certificates (during a key
    /// rotation a country lists two). `ENVELOPE_SIGNATURE_INVALID` otherwise.
    pub fn verify_signature(&self, sender_certs: &[&Cert]) -> Result<(), ExchangeError> {
        let jws = DetachedJws::parse(&self.signature).map_err(|e| match e {
            JwsFailure::AlgorithmNotAllowed(a) => ExchangeError::new(
                "ENVELOPE_SIGNATURE_ALGORITHM_NOT_ALLOWED",
                Some("signature"),
                format!("algorithm {a:?} is not allowed"),
            ),
            other => {
                ExchangeError::new("ENVELOPE_SIGNATURE_INVALID", Some("signature"), format!("{other:?}"))
            }
        })?;
        let bytes = self.signed_bytes();
        if sender_certs.iter().any(|c| jws.verify(&bytes, c).is_ok()) {
            Ok(())
        } else {
            Err(ExchangeError::new(
                "ENVELOPE_SIGNATURE_INVALID",
                Some("signature"),
                format!(
                    "the signature does not verify with a node certificate of {}",
                    self.header.from.country
                ),
            ))
        }
    }
}

fn field_of_serde_error(e: &serde_json::Error) -> Option<&'static str> {
    let msg = e.to_string();
    const FIELDS: &[&str] = &[
        "format",
        "id",
        "correlation_id",
        "from",
        "to",
        "type",
        "certificate",
        "payload_type",
        "payload_sha256",
        "created_at",
        "payload",
        "signature",
    ];
    FIELDS.iter().find(|f| msg.contains(&format!("`{f}`"))).copied()
}
