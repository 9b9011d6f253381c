//! JWS compact serialization with a detached payload (RFC 7515 §7.2 and Appendix F):
//! `BASE64URL(header) + ".." + BASE64URL(signature)`; the payload is supplied by the
//! verifier. `ES256` (ECDSA P-256, fixed `r || s`) by default; `RS256` for RSA keys.
//!
//! The protected header carries `alg` and `x5c` (the signer's certificate first, base64 DER),
//! and nothing we do not understand: `crit`, `jku`, `x5u`, `jwk`, `b64` and other members are
//! refused, so a header can never point the verifier at a key of the attacker's choosing.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::jcs;
use crate::keys::PrivateKey;
use crate::x509::Cert;

/// Signs `payload` and returns the compact JWS with the payload detached.
pub fn sign_detached(payload: &[u8], key: &PrivateKey, chain_der: &[Vec<u8>]) -> Result<String> {
    let mut h = Map::new();
    h.insert("alg".into(), Value::String(key.algorithm().jws_alg().into()));
    if !chain_der.is_empty() {
        let x5c = chain_der.iter().map(|c| Value::String(STANDARD.encode(c))).collect();
        h.insert("x5c".into(), Value::Array(x5c));
    }
    let header = URL_SAFE_NO_PAD.encode(jcs::to_canonical(&Value::Object(h)));
    let input = signing_input(&header, payload);
    let sig = key.sign_jws(&input)?;
    Ok(format!("{header}..{}", URL_SAFE_NO_PAD.encode(sig)))
}

/// A parsed detached JWS, not yet verified.
#[derive(Debug, Clone)]
pub struct DetachedJws {
    header_b64: String,
    /// The `alg` header: `ES256` or `RS256`.
    pub alg: String,
    /// The `x5c` certificates, signer first. Empty when the header has none.
    pub x5c: Vec<Vec<u8>>,
    signature: Vec<u8>,
}

/// Why a JWS was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwsFailure {
    /// Not a compact detached JWS, or a header we do not accept.
    Malformed(String),
    /// `alg` other than ES256 / RS256 (`none` included).
    AlgorithmNotAllowed(String),
    /// The signature does not verify with the key.
    BadSignature,
}

impl DetachedJws {
    /// Parses `header..signature`. An attached payload is refused (this format is detached).
    pub fn parse(token: &str) -> Result<DetachedJws, JwsFailure> {
        let m = |s: &str| JwsFailure::Malformed(s.to_owned());
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(m("not a compact JWS (three dot-separated parts)"));
        };
        if !p.is_empty() {
            return Err(m("payload must be detached (empty middle part)"));
        }
        let hb = URL_SAFE_NO_PAD.decode(h).map_err(|_| m("header is not base64url"))?;
        let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| m("signature is not base64url"))?;
        let header = jcs::parse_strict(&hb).map_err(|e| JwsFailure::Malformed(format!("header: {e}")))?;
        let Value::Object(obj) = header else { return Err(m("header is not a JSON object")) };
        let mut alg = None;
        let mut x5c = Vec::new();
        for (k, v) in &obj {
            match (k.as_str(), v) {
                ("alg", Value::String(a)) => alg = Some(a.clone()),
                ("typ" | "kid", Value::String(_)) => {}
                ("x5c", Value::Array(certs)) => {
                    for c in certs {
                        let Value::String(c) = c else { return Err(m("x5c entries must be strings")) };
                        x5c.push(STANDARD.decode(c).map_err(|_| m("x5c entry is not base64"))?);
                    }
                }
                (other, _) => {
                    return Err(JwsFailure::Malformed(format!("header member {other:?} not accepted")));
                }
            }
        }
        let alg = alg.ok_or_else(|| m("header has no alg"))?;
        if alg != "ES256" && alg != "RS256" {
            return Err(JwsFailure::AlgorithmNotAllowed(alg));
        }
        Ok(DetachedJws { header_b64: h.to_owned(), alg, x5c, signature: sig })
    }

    /// Verifies the signature over `payload` with `cert`'s key.
    pub fn verify(&self, payload: &[u8], cert: &Cert) -> Result<(), JwsFailure> {
        let input = signing_input(&self.header_b64, payload);
        if cert.verify_jws(&self.alg, &input, &self.signature) {
            Ok(())
        } else {
            Err(JwsFailure::BadSignature)
        }
    }
}

fn signing_input(header_b64: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(header_b64.len() + 1 + payload.len() * 4 / 3 + 4);
    v.extend_from_slice(header_b64.as_bytes());
    v.push(b'.');
    v.extend_from_slice(URL_SAFE_NO_PAD.encode(payload).as_bytes());
    v
}

/// The member of a signed JSON object that holds its JWS. It is removed before the object
/// is canonicalized, so the signature covers every other member.
pub const SIGNATURE_MEMBER: &str = "signature";

/// Signs a JSON object: returns it with a `"signature"` member holding a detached JWS over
/// the RFC 8785 canonical form of the object without that member. Pretty-printed.
pub fn sign_json(json: &[u8], key: &PrivateKey, chain_der: &[Vec<u8>]) -> Result<Vec<u8>> {
    let v = jcs::parse_strict(json)?;
    let Value::Object(mut obj) = v else {
        return Err(Error::Json("a signed JSON document must be an object".into()));
    };
    if obj.contains_key(SIGNATURE_MEMBER) {
        return Err(Error::Json(format!("already has a {SIGNATURE_MEMBER:?} member")));
    }
    let payload = jcs::to_canonical(&Value::Object(obj.clone()));
    let token = sign_detached(&payload, key, chain_der)?;
    obj.insert(SIGNATURE_MEMBER.into(), Value::String(token));
    let mut out = serde_json::to_vec_pretty(&Value::Object(obj)).map_err(|e| Error::Json(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

/// A signed JSON object, split into what was signed and its signature (not yet verified).
#[derive(Debug)]
pub struct SignedJson {
    /// The object without its `"signature"` member.
    pub document: Value,
    /// Its canonical bytes: the JWS payload.
    pub canonical: Vec<u8>,
    /// The signature; `None` when the object has no `"signature"` member.
    pub jws: Option<Result<DetachedJws, JwsFailure>>,
}

/// Splits a signed JSON object. `Err` only when the bytes are not a JSON object at all.
pub fn split_signed_json(json: &[u8]) -> Result<SignedJson> {
    let v = jcs::parse_strict(json)?;
    let Value::Object(mut obj) = v else { return Err(Error::Json("not a JSON object".into())) };
    let jws = obj.remove(SIGNATURE_MEMBER).map(|s| match s {
        Value::String(t) => DetachedJws::parse(&t),
        _ => Err(JwsFailure::Malformed(format!("{SIGNATURE_MEMBER:?} must be a string"))),
    });
    let document = Value::Object(obj);
    let canonical = jcs::to_canonical(&document);
    Ok(SignedJson { document, canonical, jws })
}
