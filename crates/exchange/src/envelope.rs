//! The signed envelope: what travels between nodes, through the gateway or directly.
//!
//! On the wire an envelope is one JSON object (see `docs/protocol.md`). The payload is carried
//! byte for byte, base64-encoded; `payload_sha256` is its SHA-256. The sending node signs the
//! envelope with its node key: a detached JWS (ES256 or RS256) over the RFC 8785 canonical
//! form of every member except `payload` and `signature`, **as the sender wrote them**: the
//! receiver canonicalises the members it received, never values it re-derived, so any form
//! the spec allows (`+00:00` or `z` in `created_at`, `"correlation_id": null`, `1.0` as a
//! version) verifies. The hash binds the payload to that signature, so a router can check the
//! whole envelope without reading the payload.
//!
//! Every member's form is checked before the signature: a form error is `ENVELOPE_MALFORMED`
//! (with the member in `field`), never a signature code.

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
    StatusList = "status.list": "The sender's signed certificate status list (its revoked and superseded certificates); to every member.",
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
    /// Whether `payload` was read (decoded and its hash checked). A router's parse
    /// ([`Envelope::parse_routed`]) leaves a document payload unread: the receiver checks it.
    pub payload_read: bool,
    /// What the signature covers: the RFC 8785 form of the members as written, without
    /// `payload` and `signature`.
    signed: Vec<u8>,
}

/// What [`Envelope::seal`] writes (members in the order of the spec).
#[derive(Serialize)]
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
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The members of an envelope, in the order the spec lists them. Any other member is refused.
pub const MEMBERS: &[&str] = &[
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

/// The members the signature does not cover.
const UNSIGNED: &[&str] = &["payload", "signature"];

fn malformed(field: &str, msg: impl ToString) -> ExchangeError {
    ExchangeError::new("ENVELOPE_MALFORMED", Some(field), msg)
}

/// A required string member.
fn req_str<'a>(obj: &'a Map<String, Value>, name: &str, field: &str) -> Result<&'a str, ExchangeError> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(malformed(field, format!("the member {name:?} is missing"))),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(malformed(field, format!("must be a string, not {}", json_kind(other)))),
    }
}

/// An optional string member: absent and `null` both mean "none".
fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
    field: &str,
) -> Result<Option<&'a str>, ExchangeError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(malformed(field, format!("must be a string or null, not {}", json_kind(other)))),
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Refuses members other than `allowed`, naming the first one found (`prefix/member`).
fn only_members(obj: &Map<String, Value>, allowed: &[&str], prefix: &str) -> Result<(), ExchangeError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => {
            let field = if prefix.is_empty() { k.clone() } else { format!("{prefix}/{k}") };
            Err(malformed(&field, format!("unknown member {k:?}; the members are {}", allowed.join(", "))))
        }
    }
}

fn country(obj: &Map<String, Value>, prefix: &str) -> Result<CountryCode, ExchangeError> {
    let field = format!("{prefix}/country");
    let c = req_str(obj, "country", &field)?;
    CountryCode::parse(c).map_err(|_| {
        malformed(&field, format!("{c:?} is not an assigned ISO 3166-1 alpha-2 code in upper case"))
    })
}

fn endpoint(obj: &Map<String, Value>, name: &str) -> Result<Endpoint, ExchangeError> {
    let m = match obj.get(name) {
        None | Some(Value::Null) => return Err(malformed(name, format!("the member {name:?} is missing"))),
        Some(Value::Object(m)) => m,
        Some(other) => return Err(malformed(name, format!("must be an object, not {}", json_kind(other)))),
    };
    only_members(m, &["country", "node"], name)?;
    let country = country(m, name)?;
    let node = opt_str(m, "node", &format!("{name}/node"))?.map(str::to_owned);
    Ok(Endpoint { country, node })
}

/// `certificate.version`: a JSON number with an integer value (`1`, `1.0` and `1e0` are the
/// same number, as RFC 8259 §6 and RFC 8785 have it), 1..9999.
fn version(v: Option<&Value>) -> Result<i64, ExchangeError> {
    const FIELD: &str = "certificate/version";
    let n = match v {
        None | Some(Value::Null) => return Err(malformed(FIELD, "the member \"version\" is missing")),
        Some(Value::Number(n)) => n,
        Some(other) => {
            return Err(malformed(
                FIELD,
                format!("must be an integer (a JSON number such as 1), not {}", json_kind(other)),
            ));
        }
    };
    let f = n.as_f64().unwrap_or(f64::NAN);
    if !f.is_finite() || f.fract() != 0.0 {
        return Err(malformed(FIELD, format!("{n} is not an integer (a JSON number without a fraction)")));
    }
    if !(1.0..=9999.0).contains(&f) {
        return Err(malformed(FIELD, format!("must be an integer in 1..9999, not {n}")));
    }
    Ok(f as i64)
}

fn cert_ref(obj: &Map<String, Value>) -> Result<Option<CertRef>, ExchangeError> {
    let m = match obj.get("certificate") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(malformed(
                "certificate",
                format!("must be an object or null, not {}", json_kind(other)),
            ));
        }
    };
    only_members(m, &["country", "number", "version"], "certificate")?;
    let country = country(m, "certificate")?;
    let number = req_str(m, "number", "certificate/number")?;
    if number.is_empty() || number.chars().count() > 64 || number.chars().any(|ch| ch.is_control()) {
        return Err(malformed("certificate/number", "must be 1..64 characters, none a control character"));
    }
    let version = version(m.get("version"))?;
    Ok(Some(CertRef { country, number: number.to_owned(), version }))
}

/// Parses an RFC 3339 `date-time` (§5.6): `YYYY-MM-DD`, `T` or `t`, `hh:mm:ss`, optionally
/// `.` and one or more digits, then `Z`, `z` or `+hh:mm` / `-hh:mm`. Any such form is
/// accepted; the instant is what counts.
pub fn parse_rfc3339(s: &str) -> Result<DateTime<Utc>, String> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    let mut i = 19;
    let mut ok = shape;
    if ok && b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        ok = i > start;
    }
    if ok {
        let rest = &b[i..];
        ok = matches!(rest, [b'Z' | b'z'])
            || (rest.len() == 6
                && matches!(rest[0], b'+' | b'-')
                && rest[1..3].iter().all(u8::is_ascii_digit)
                && rest[3] == b':'
                && rest[4..6].iter().all(u8::is_ascii_digit));
    }
    if !ok {
        return Err(format!(
            "{s:?} is not an RFC 3339 date-time (YYYY-MM-DDThh:mm:ss[.fraction] then Z or ±hh:mm)"
        ));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 date-time: {e}"))
}

/// Whether `s` is 64 hexadecimal digits (either case).
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| c.is_ascii_hexdigit())
}

impl Envelope {
    /// Builds and signs an envelope with the sending node's key.
    pub fn seal(header: Header, payload: Vec<u8>, key: &PrivateKey) -> Result<Envelope, ExchangeError> {
        let failed = |e: String| ExchangeError::new("ENVELOPE_SIGNING_FAILED", None, e);
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
        // What is signed is exactly what a receiver canonicalises: the members as written.
        let Value::Object(obj) = serde_json::to_value(&w).map_err(|e| failed(e.to_string()))? else {
            return Err(failed("the envelope is not an object".into()));
        };
        let signed = signing_input(&obj);
        let signature =
            originlink_trust::jws::sign_detached(&signed, key, &[]).map_err(|e| failed(e.to_string()))?;
        w.signature = signature.clone();
        let raw = serde_json::to_vec(&w).map_err(|e| failed(e.to_string()))?;
        Ok(Envelope { header, payload_sha256, payload, signature, raw, signed, payload_read: true })
    }

    /// Parses an envelope: its form, every member, the payload hash, the form of the JWS.
    /// Does not check the signature (that needs the sender's certificate:
    /// [`Envelope::verify_signature`]).
    pub fn parse(raw: &[u8]) -> Result<Envelope, ExchangeError> {
        Self::parse_as(raw, true)
    }

    /// [`Envelope::parse`] for a router that passes the envelope on: the same checks, except
    /// that an XML payload (a certificate document, which only its recipient reads) is not
    /// decoded and its hash is not checked here; the recipient checks both. `payload` is then
    /// empty and `payload_read` false. JSON payloads are read, as the router checks them.
    pub fn parse_routed(raw: &[u8]) -> Result<Envelope, ExchangeError> {
        Self::parse_as(raw, false)
    }

    fn parse_as(raw: &[u8], read_documents: bool) -> Result<Envelope, ExchangeError> {
        if raw.len() > MAX_ENVELOPE_BYTES {
            return Err(ExchangeError::new(
                "ENVELOPE_TOO_LARGE",
                None,
                format!("{} bytes, at most {MAX_ENVELOPE_BYTES}", raw.len()),
            ));
        }
        // Strict: a duplicate member name is refused (a signer and a reader that picked
        // different duplicates would see different envelopes).
        let v = originlink_trust::jcs::parse_strict(raw)
            .map_err(|e| ExchangeError::new("ENVELOPE_MALFORMED", None, format!("not I-JSON: {e}")))?;
        Self::read(v, raw.to_vec(), read_documents)
    }

    /// [`Envelope::parse`] from an already-parsed JSON value (parsed without duplicate member
    /// names); `raw` is the envelope as received.
    pub fn from_value(v: Value, raw: Vec<u8>) -> Result<Envelope, ExchangeError> {
        Self::read(v, raw, true)
    }

    fn read(v: Value, raw: Vec<u8>, read_documents: bool) -> Result<Envelope, ExchangeError> {
        if raw.len() > MAX_ENVELOPE_BYTES {
            return Err(ExchangeError::new("ENVELOPE_TOO_LARGE", None, format!("{} bytes", raw.len())));
        }
        let Value::Object(obj) = v else {
            return Err(ExchangeError::new("ENVELOPE_MALFORMED", None, "an envelope is a JSON object"));
        };
        // The version first: another version may have other members.
        let format = req_str(&obj, "format", "format")?;
        if format != FORMAT {
            return Err(ExchangeError::new(
                "ENVELOPE_FORMAT_UNKNOWN",
                Some("format"),
                format!("{format:?}, expected {FORMAT:?}"),
            ));
        }
        only_members(&obj, MEMBERS, "")?;
        let id = req_str(&obj, "id", "id")?;
        if !crate::id::is_uuid(id) {
            return Err(malformed("id", format!("{id:?} is not a UUID (8-4-4-4-12 hexadecimal digits)")));
        }
        let correlation_id = opt_str(&obj, "correlation_id", "correlation_id")?;
        if let Some(c) = correlation_id.filter(|c| !crate::id::is_uuid(c)) {
            return Err(malformed("correlation_id", format!("{c:?} is not a UUID")));
        }
        let from = endpoint(&obj, "from")?;
        let to = endpoint(&obj, "to")?;
        let kind_text = req_str(&obj, "type", "type")?;
        let kind = MessageType::parse(kind_text).ok_or_else(|| {
            ExchangeError::new(
                "MESSAGE_TYPE_UNKNOWN",
                Some("type"),
                format!("{kind_text:?} is not a message type"),
            )
        })?;
        let certificate = cert_ref(&obj)?;
        let payload_type = req_str(&obj, "payload_type", "payload_type")?;
        if !matches!(payload_type, "application/xml" | "application/json") {
            return Err(malformed(
                "payload_type",
                format!("{payload_type:?}: application/xml or application/json"),
            ));
        }
        let stated_sha256 = req_str(&obj, "payload_sha256", "payload_sha256")?;
        if !is_sha256_hex(stated_sha256) {
            return Err(malformed("payload_sha256", "must be 64 hexadecimal digits (SHA-256)"));
        }
        let created_at = parse_rfc3339(req_str(&obj, "created_at", "created_at")?)
            .map_err(|e| malformed("created_at", e))?;
        let encoded = req_str(&obj, "payload", "payload")?;
        let read = read_documents || payload_type != "application/xml";
        let payload = if read {
            STANDARD
                .decode(encoded.as_bytes())
                .map_err(|e| malformed("payload", format!("not base64 (RFC 4648 §4, padded): {e}")))?
        } else {
            Vec::new()
        };
        let signature = req_str(&obj, "signature", "signature")?.to_owned();
        jws(&signature)?;
        let payload_sha256 = if read { sha256_hex(&payload) } else { stated_sha256.to_ascii_lowercase() };
        if read && !payload_sha256.eq_ignore_ascii_case(stated_sha256) {
            return Err(ExchangeError::new(
                "PAYLOAD_HASH_MISMATCH",
                Some("payload_sha256"),
                "the payload's SHA-256 is not the one the envelope states".to_owned(),
            ));
        }
        let header = Header {
            id: id.to_owned(),
            correlation_id: correlation_id.map(str::to_owned),
            from,
            to,
            kind,
            certificate,
            payload_type: payload_type.to_owned(),
            created_at,
        };
        let signed = signing_input(&obj);
        Ok(Envelope { header, payload_sha256, payload, signature, raw, signed, payload_read: read })
    }

    /// The bytes the signature covers: the RFC 8785 canonical form of the envelope as it was
    /// written, without `payload` and `signature`.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.signed
    }

    /// Checks the signature with one of the sender's node certificates (during a key
    /// rotation a country lists two). `ENVELOPE_SIGNATURE_INVALID` otherwise.
    pub fn verify_signature(&self, sender_certs: &[&Cert]) -> Result<(), ExchangeError> {
        verify_detached(&self.signature, &self.signed, sender_certs, self.header.from.country)
    }
}

/// Verifies the detached JWS `signature` over `signed` with any of `sender_certs` (the node
/// certificates of `country`): an envelope's or a manifest's signature. Its errors are an
/// envelope's codes (a manifest renames them).
pub(crate) fn verify_detached(
    signature: &str,
    signed: &[u8],
    sender_certs: &[&Cert],
    country: CountryCode,
) -> Result<(), ExchangeError> {
    let jws = jws(signature)?;
    if sender_certs.iter().any(|c| jws.verify(signed, c).is_ok()) {
        Ok(())
    } else {
        Err(ExchangeError::new(
            "ENVELOPE_SIGNATURE_INVALID",
            Some("signature"),
            format!("the signature does not verify with a node certificate of {country}"),
        ))
    }
}

/// The canonical bytes (RFC 8785) of the members of `obj` except `unsigned`, as they were
/// written: what an envelope's or a manifest's signature covers.
pub(crate) fn signing_input_without(obj: &Map<String, Value>, unsigned: &[&str]) -> Vec<u8> {
    let m: Map<String, Value> = obj
        .iter()
        .filter(|(k, _)| !unsigned.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    originlink_trust::jcs::to_canonical(&Value::Object(m))
}

/// The canonical bytes of the envelope members the signature covers, as they were written.
fn signing_input(obj: &Map<String, Value>) -> Vec<u8> {
    signing_input_without(obj, UNSIGNED)
}

/// The form of the JWS: a format error is `ENVELOPE_MALFORMED`, a refused `alg` its own code.
pub(crate) fn jws(token: &str) -> Result<DetachedJws, ExchangeError> {
    DetachedJws::parse(token).map_err(|e| match e {
        JwsFailure::AlgorithmNotAllowed(a) => ExchangeError::new(
            "ENVELOPE_SIGNATURE_ALGORITHM_NOT_ALLOWED",
            Some("signature"),
            format!("algorithm {a:?} is not allowed (ES256 or RS256)"),
        ),
        JwsFailure::Malformed(m) => {
            malformed("signature", format!("not a detached JWS in compact form (header..signature): {m}"))
        }
        JwsFailure::BadSignature => ExchangeError::new(
            "ENVELOPE_SIGNATURE_INVALID",
            Some("signature"),
            "the signature does not verify",
        ),
    })
}
