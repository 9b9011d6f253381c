//! Batch manifests (protocol version 2, `docs/protocol.md` "Batches with a manifest").
//!
//! A manifest is a small signed JSON object that lists the SHA-256 of each envelope a sender
//! puts in one batch, byte for byte as the envelope travels. It is signed like an envelope: a
//! detached JWS with the sender's node key over the RFC 8785 form of its members as written,
//! without `signature`. One verified manifest vouches for every envelope it lists: a router or
//! a receiver that finds an envelope's hash in a manifest it verified, from the envelope's own
//! `from` country, need not check that envelope's signature, which is what makes a batch cost
//! one public-key verification per hop instead of one per message.
//!
//! Envelopes keep their own signatures: each stays evidence on its own, and a gateway can pass
//! it to a member that speaks only version 1. An envelope no verified manifest lists is checked
//! by its own signature, as in version 1.
//!
//! Manifests travel with their envelopes from the sender to the final receiver: a gateway
//! stores the manifests of what it accepted and forwards, with each push, the manifests of the
//! envelopes in it. A forwarded manifest may list more envelopes than the push carries
//! (partial delivery): only the hashes matter.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use originlink_model::CountryCode;
use originlink_trust::{PrivateKey, x509::Cert};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::envelope::{Endpoint, parse_rfc3339, sha256_hex};
use crate::error::ExchangeError;

/// The value of a manifest's `format` member.
pub const FORMAT: &str = "originlink-manifest/1";

/// The most envelopes one manifest lists (a batch holds at most [`crate::body::MAX_BATCH`]).
pub const MAX_ENTRIES: usize = crate::body::MAX_BATCH;

/// The members of a manifest; any other is refused.
pub const MEMBERS: &[&str] = &["format", "id", "from", "created_at", "envelopes", "signature"];

/// A parsed manifest. [`Manifest::parse`] checks its form; [`Manifest::verify_signature`] its
/// signature against the sender's node certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The manifest id, a UUID.
    pub id: String,
    /// The sender: every envelope it vouches for must be from this country.
    pub from: Endpoint,
    /// When the sender made it.
    pub created_at: DateTime<Utc>,
    /// The SHA-256 (lower-case hex) of each envelope it lists.
    pub envelopes: Vec<String>,
    /// The detached JWS.
    pub signature: String,
    /// The manifest as written (what is stored and forwarded).
    pub raw: Vec<u8>,
    signed: Vec<u8>,
}

#[derive(Serialize)]
struct Wire<'a> {
    format: &'a str,
    id: &'a str,
    from: &'a Endpoint,
    created_at: String,
    envelopes: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    signature: &'a str,
}

fn malformed(field: &str, msg: impl ToString) -> ExchangeError {
    ExchangeError::new("MANIFEST_MALFORMED", Some(field), msg)
}

impl Manifest {
    /// Lists `envelopes` (each byte for byte as it will travel) and signs the list with the
    /// sender's node key.
    pub fn seal<'a>(
        from: Endpoint,
        envelopes: impl IntoIterator<Item = &'a [u8]>,
        key: &PrivateKey,
        now: DateTime<Utc>,
    ) -> Result<Manifest, ExchangeError> {
        let failed = |e: String| ExchangeError::new("MANIFEST_SIGNING_FAILED", None, e);
        // As written: to the microsecond.
        let now = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
        let id = crate::id::new_id(now);
        let hashes: Vec<String> = envelopes.into_iter().map(sha256_hex).collect();
        let mut w = Wire {
            format: FORMAT,
            id: &id,
            from: &from,
            created_at: now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            envelopes: &hashes,
            signature: "",
        };
        let Value::Object(obj) = serde_json::to_value(&w).map_err(|e| failed(e.to_string()))? else {
            return Err(failed("the manifest is not an object".into()));
        };
        let signed = signing_input(&obj);
        let signature =
            originlink_trust::jws::sign_detached(&signed, key, &[]).map_err(|e| failed(e.to_string()))?;
        w.signature = &signature;
        let raw = serde_json::to_vec(&w).map_err(|e| failed(e.to_string()))?;
        Ok(Manifest { id: id.clone(), from, created_at: now, envelopes: hashes, signature, raw, signed })
    }

    /// Parses a manifest: its form and every member (`MANIFEST_MALFORMED` with the member in
    /// `field`, `MANIFEST_FORMAT_UNKNOWN` for another version). Does not check the signature.
    pub fn parse(raw: &[u8]) -> Result<Manifest, ExchangeError> {
        let v = originlink_trust::jcs::parse_strict(raw)
            .map_err(|e| malformed("", format!("not I-JSON: {e}")))?;
        let Value::Object(obj) = v else {
            return Err(malformed("", "a manifest is a JSON object"));
        };
        let s = |name: &str| match obj.get(name) {
            Some(Value::String(s)) => Ok(s.as_str()),
            None | Some(Value::Null) => Err(malformed(name, format!("the member {name:?} is missing"))),
            Some(other) => {
                Err(malformed(name, format!("must be a string, not {}", crate::envelope::json_kind(other))))
            }
        };
        let format = s("format")?;
        if format != FORMAT {
            return Err(ExchangeError::new(
                "MANIFEST_FORMAT_UNKNOWN",
                Some("format"),
                format!("{format:?}, expected {FORMAT:?}"),
            ));
        }
        if let Some(k) = obj.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
            return Err(malformed(
                k,
                format!("unknown member {k:?}; the members are {}", MEMBERS.join(", ")),
            ));
        }
        let id = s("id")?;
        if !crate::id::is_uuid(id) {
            return Err(malformed("id", format!("{id:?} is not a UUID")));
        }
        let from: Endpoint = match obj.get("from") {
            Some(v @ Value::Object(_)) => serde_json::from_value(v.clone())
                .map_err(|e| malformed("from", format!("not an endpoint ({{country, node}}): {e}")))?,
            _ => return Err(malformed("from", "must be an object {country, node}")),
        };
        let created_at = parse_rfc3339(s("created_at")?).map_err(|e| malformed("created_at", e))?;
        let Some(Value::Array(list)) = obj.get("envelopes") else {
            return Err(malformed("envelopes", "must be an array of SHA-256 hashes"));
        };
        if list.is_empty() || list.len() > MAX_ENTRIES {
            return Err(malformed(
                "envelopes",
                format!("lists 1..{MAX_ENTRIES} envelopes, not {}", list.len()),
            ));
        }
        let mut envelopes = Vec::with_capacity(list.len());
        for (i, h) in list.iter().enumerate() {
            match h {
                Value::String(h) if h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()) => {
                    envelopes.push(h.to_ascii_lowercase())
                }
                _ => {
                    return Err(malformed(
                        &format!("envelopes/{i}"),
                        "must be a SHA-256 in hexadecimal (64 digits)",
                    ));
                }
            }
        }
        let signature = s("signature")?.to_owned();
        crate::envelope::jws(&signature).map_err(|e| ExchangeError { code: rename(e.code), ..e })?;
        let signed = signing_input(&obj);
        Ok(Manifest { id: id.to_owned(), from, created_at, envelopes, signature, raw: raw.to_vec(), signed })
    }

    /// Checks the signature with one of the sender's node certificates:
    /// `MANIFEST_SIGNATURE_INVALID` otherwise.
    pub fn verify_signature(&self, sender_certs: &[&Cert]) -> Result<(), ExchangeError> {
        crate::envelope::verify_detached(&self.signature, &self.signed, sender_certs, self.from.country)
            .map_err(|e| ExchangeError { code: rename(e.code), ..e })
    }

    /// SHA-256 of the manifest as written: how a gateway names what it stored.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.raw)
    }
}

/// The envelope codes of a JWS form error, as manifest codes.
fn rename(code: &'static str) -> &'static str {
    match code {
        "ENVELOPE_MALFORMED" => "MANIFEST_MALFORMED",
        "ENVELOPE_SIGNATURE_ALGORITHM_NOT_ALLOWED" => "MANIFEST_SIGNATURE_ALGORITHM_NOT_ALLOWED",
        "ENVELOPE_SIGNATURE_INVALID" => "MANIFEST_SIGNATURE_INVALID",
        other => other,
    }
}

fn signing_input(obj: &Map<String, Value>) -> Vec<u8> {
    crate::envelope::signing_input_without(obj, &["signature"])
}

/// What the manifests of one batch vouch for: the envelope hashes of the manifests that
/// verified, each with the country that signed it and which manifest listed it.
#[derive(Debug, Default, Clone)]
pub struct Vouched {
    by_hash: HashMap<String, (CountryCode, usize)>,
    /// Each manifest of the batch, in order: its id and, if it did not verify, why.
    pub outcomes: Vec<(String, Option<ExchangeError>)>,
    /// The verified manifests, in the order of the batch (the index [`Vouched::vouches`]
    /// gives), each with its SHA-256 ([`Manifest::sha256`]).
    pub verified: Vec<(Manifest, String)>,
}

impl Vouched {
    /// Verifies the manifests of a batch. `certs` gives a country's node certificates (empty
    /// for a non-member); `client` is the country of the node on the other end of the TLS
    /// connection (`None` for a gateway, which forwards manifests of every member). A manifest
    /// that does not verify vouches for nothing; its envelopes are checked by their own
    /// signatures.
    pub fn check(
        manifests: Vec<Manifest>,
        client: Option<CountryCode>,
        certs: impl Fn(CountryCode) -> Vec<Cert>,
    ) -> Vouched {
        let mut v = Vouched::default();
        for m in manifests {
            let outcome = match client {
                Some(c) if c != m.from.country => Err(ExchangeError::new(
                    "SENDER_MISMATCH",
                    Some("from"),
                    format!("the TLS client is a node of {c}, the manifest is from {}", m.from.country),
                )),
                _ => {
                    let certs = certs(m.from.country);
                    m.verify_signature(&certs.iter().collect::<Vec<_>>())
                }
            };
            match outcome {
                Ok(()) => {
                    let index = v.verified.len();
                    for h in &m.envelopes {
                        v.by_hash.entry(h.clone()).or_insert((m.from.country, index));
                    }
                    v.outcomes.push((m.id.clone(), None));
                    let sha256 = m.sha256();
                    v.verified.push((m, sha256));
                }
                Err(e) => v.outcomes.push((m.id.clone(), Some(e))),
            }
        }
        v
    }

    /// The verified manifest that lists the envelope with SHA-256 `hash` from `from`, if any.
    pub fn vouches(&self, hash: &str, from: CountryCode) -> Option<usize> {
        self.by_hash.get(hash).filter(|(c, _)| *c == from).map(|(_, i)| *i)
    }

    /// Whether no manifest verified.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// The manifests of a batch that vouched for nothing, for the answer.
pub fn refusals(v: &Vouched) -> Vec<crate::body::ManifestRefusal> {
    v.outcomes
        .iter()
        .filter_map(|(id, e)| {
            e.as_ref().map(|e| crate::body::ManifestRefusal {
                id: id.clone(),
                code: e.code.to_owned(),
                field: e.field.clone(),
                message: e.message.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (PrivateKey, Cert) {
        let issued = originlink_trust::keys::init_gateway("KH-NODE", Utc::now().date_naive()).unwrap();
        (issued.key, Cert::from_der(&issued.cert_der).unwrap())
    }

    #[test]
    fn sealed_manifests_parse_verify_and_vouch_only_for_their_sender() {
        let (k, c) = key();
        let kh = CountryCode::parse("KH").unwrap();
        let th = CountryCode::parse("TH").unwrap();
        let envs: Vec<&[u8]> = vec![b"{\"a\":1}", b"{\"b\":2}"];
        let m = Manifest::seal(Endpoint { country: kh, node: None }, envs.iter().copied(), &k, Utc::now())
            .unwrap();
        let p = Manifest::parse(&m.raw).unwrap();
        assert_eq!(p, m);
        p.verify_signature(&[&c]).unwrap();
        let v = Vouched::check(vec![p.clone()], Some(kh), |_| vec![c.clone()]);
        assert_eq!(v.vouches(&sha256_hex(envs[0]), kh), Some(0));
        assert_eq!(v.vouches(&sha256_hex(envs[0]), th), None, "a manifest vouches only for its sender");
        assert_eq!(v.vouches(&sha256_hex(b"{}"), kh), None);
        // A node may not pass on another country's manifest.
        let v = Vouched::check(vec![p.clone()], Some(th), |_| vec![c.clone()]);
        assert!(v.is_empty());
        assert_eq!(v.outcomes[0].1.as_ref().unwrap().code, "SENDER_MISMATCH");
        // A changed list does not verify.
        let tampered = String::from_utf8(m.raw.clone()).unwrap().replace(&m.envelopes[0], &sha256_hex(b"x"));
        let t = Manifest::parse(tampered.as_bytes()).unwrap();
        assert_eq!(t.verify_signature(&[&c]).unwrap_err().code, "MANIFEST_SIGNATURE_INVALID");
        let v = Vouched::check(vec![t], None, |_| vec![c.clone()]);
        assert!(v.is_empty());
    }

    #[test]
    fn malformed_manifests_name_their_member() {
        let bad = |s: &str| Manifest::parse(s.as_bytes()).unwrap_err();
        assert_eq!(bad("[]").code, "MANIFEST_MALFORMED");
        assert_eq!(bad(r#"{"format":"originlink-manifest/9"}"#).code, "MANIFEST_FORMAT_UNKNOWN");
        let e = bad(r#"{"format":"originlink-manifest/1","id":"x"}"#);
        assert_eq!((e.code, e.field.as_deref()), ("MANIFEST_MALFORMED", Some("id")));
        let e = bad(
            r#"{"format":"originlink-manifest/1","id":"01900000-0000-7000-8000-000000000000","from":{"country":"KH"},"created_at":"2026-12-03T00:00:00Z","envelopes":["zz"],"signature":"a..b"}"#,
        );
        assert_eq!(e.field.as_deref(), Some("envelopes/0"));
        let e = bad(r#"{"format":"originlink-manifest/1","extra":1}"#);
        assert_eq!(e.field.as_deref(), Some("extra"));
    }

    #[test]
    fn hostile_manifests_are_refused_in_bounded_time() {
        let head = r#"{"format":"originlink-manifest/1","id":"01900000-0000-7000-8000-000000000000","from":{"country":"KH"},"created_at":"2026-12-03T00:00:00Z","#;
        let hash = format!("\"{}\"", sha256_hex(b"x"));
        // More entries than a batch may hold.
        let many = vec![hash.as_str(); MAX_ENTRIES + 1].join(",");
        let e = Manifest::parse(format!(r#"{head}"envelopes":[{many}],"signature":"a..b"}}"#).as_bytes())
            .unwrap_err();
        assert_eq!((e.code, e.field.as_deref()), ("MANIFEST_MALFORMED", Some("envelopes")));
        assert!(e.message.contains(&MAX_ENTRIES.to_string()), "{}", e.message);
        // Exactly the most is fine.
        let (k, c) = key();
        let bodies: Vec<Vec<u8>> = (0..MAX_ENTRIES).map(|i| format!("{{\"n\":{i}}}").into_bytes()).collect();
        let kh = CountryCode::parse("KH").unwrap();
        let m = Manifest::seal(
            Endpoint { country: kh, node: None },
            bodies.iter().map(Vec::as_slice),
            &k,
            Utc::now(),
        )
        .unwrap();
        let p = Manifest::parse(&m.raw).unwrap();
        assert_eq!(p.envelopes.len(), MAX_ENTRIES);
        p.verify_signature(&[&c]).unwrap();
        // A member given twice (which would let two readers see two different lists).
        let e = Manifest::parse(
            format!(r#"{head}"envelopes":[{hash}],"envelopes":[{hash},{hash}],"signature":"a..b"}}"#)
                .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.code, "MANIFEST_MALFORMED");
        assert!(e.message.contains("duplicate"), "{}", e.message);
        // Deep nesting where an endpoint is expected: refused, not a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e =
            Manifest::parse(format!(r#"{head}"envelopes":[{hash}],"x":{deep}}}"#).as_bytes()).unwrap_err();
        assert_eq!(e.code, "MANIFEST_MALFORMED");
        let e = Manifest::parse(deep.as_bytes()).unwrap_err();
        assert_eq!(e.code, "MANIFEST_MALFORMED");
    }
}
