//! The trust list: which countries are in the network, who may sign for each, where their
//! nodes are, what has been revoked. A JSON document signed by the network operator (see
//! `docs/security.md`, "Trust list"). A node accepts a list only when it is signed by an
//! operator key it was configured with.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use originlink_model::CountryCode;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::jws::{self, JwsFailure};
use crate::keys::PrivateKey;
use crate::x509::Cert;

/// The value of [`TrustList::format`].
pub const FORMAT: &str = "originlink-trust-list/1";

/// A trust list (the signed content; the `"signature"` member is not part of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustList {
    /// Always [`FORMAT`].
    pub format: String,
    /// Version: each list the operator publishes has a higher sequence number.
    pub sequence: u64,
    /// When the operator issued it.
    pub issued_at: DateTime<Utc>,
    /// When the next list is due. After this instant the list is outdated: documents cannot be
    /// verified against it (a verdict of *cannot verify*, never *invalid*).
    pub next_update: DateTime<Utc>,
    /// The members.
    pub members: Vec<Member>,
    /// The regional gateways (hubs) members may exchange through.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<Gateway>,
}

/// A regional gateway: it routes envelopes between member nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gateway {
    /// Its id, e.g. `ASW-HUB`.
    pub id: String,
    /// Base URL, e.g. `https://127.0.0.1:9443`.
    pub url: String,
    /// Its TLS certificate (base64 DER).
    pub tls_cert: String,
}

/// One member country of the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// ISO 3166-1 alpha-2 code of the issuing country.
    pub country: CountryCode,
    /// Names of its issuing authorities.
    pub authorities: Vec<String>,
    /// Its country CA certificates (base64 DER): the trust anchors for its documents.
    pub ca_certs: Vec<String>,
    /// The document-signing certificates it has registered (base64 DER). When not empty, only
    /// these may sign; during a key rotation both the old and the new one are listed.
    #[serde(default)]
    pub signing_certs: Vec<String>,
    /// Its nodes.
    #[serde(default)]
    pub nodes: Vec<Node>,
    /// Agreements it issues under (`ATIGA`, `RCEP`).
    #[serde(default)]
    pub agreements: Vec<String>,
    /// Membership starts (documents signed earlier are not trusted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<DateTime<Utc>>,
    /// Membership ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<DateTime<Utc>>,
    /// Revoked certificates of this member.
    #[serde(default)]
    pub revoked: Vec<Revoked>,
}

/// A node of a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Base URL, e.g. `https://127.0.0.1:8443`.
    pub url: String,
    /// Its TLS certificate (base64 DER).
    pub tls_cert: String,
}

/// A revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoked {
    /// Serial number, lower-case hex without leading zeros.
    pub serial: String,
    /// From when. Documents signed on an earlier day stay valid (e.g. a key retired in an
    /// orderly way); without it, every document signed with the certificate is invalid
    /// (key compromise of unknown date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Base64 DER, as certificates are stored in the list.
pub fn encode_cert(der: &[u8]) -> String {
    STANDARD.encode(der)
}

/// Parses a certificate stored in the list.
pub fn decode_cert(b64: &str) -> Result<Cert> {
    let der = STANDARD.decode(b64).map_err(|_| malformed("a certificate is not base64"))?;
    Cert::from_der(&der).map_err(|e| malformed(&e.to_string()))
}

fn malformed(msg: &str) -> Error {
    Error::TrustList { code: "TRUST_LIST_MALFORMED", message: msg.to_owned() }
}

impl TrustList {
    /// Signs the list with the operator's key; the output is the list with a `"signature"`
    /// member (detached JWS over its RFC 8785 canonical form, `x5c` = the operator certificate).
    pub fn sign(&self, key: &PrivateKey, operator_cert_der: &[u8]) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(self).map_err(|e| Error::Json(e.to_string()))?;
        jws::sign_json(&json, key, &[operator_cert_der.to_vec()])
    }

    /// Reads a signed list, accepting it only when it is signed by one of `operators` (matched
    /// by public key, so an operator certificate renewed over the same key still works).
    ///
    /// Error codes: `TRUST_LIST_MALFORMED`, `TRUST_LIST_UNSIGNED`, `TRUST_LIST_WRONG_KEY`,
    /// `TRUST_LIST_BAD_SIGNATURE`, `TRUST_LIST_NO_OPERATOR_KEY`.
    pub fn from_signed(bytes: &[u8], operators: &[Cert]) -> Result<TrustList> {
        let err = |code, message: String| Error::TrustList { code, message };
        if operators.is_empty() {
            return Err(err("TRUST_LIST_NO_OPERATOR_KEY", "no operator certificate configured".into()));
        }
        let signed = jws::split_signed_json(bytes).map_err(|e| malformed(&e.to_string()))?;
        let jws = match signed.jws {
            None => return Err(err("TRUST_LIST_UNSIGNED", "the list has no \"signature\" member".into())),
            Some(Err(JwsFailure::AlgorithmNotAllowed(a))) => {
                return Err(err("TRUST_LIST_BAD_SIGNATURE", format!("algorithm {a:?} not allowed")));
            }
            Some(Err(e)) => return Err(err("TRUST_LIST_BAD_SIGNATURE", format!("{e:?}"))),
            Some(Ok(j)) => j,
        };
        if let Some(first) = jws.x5c.first() {
            let c = Cert::from_der(first).map_err(|e| err("TRUST_LIST_BAD_SIGNATURE", e.to_string()))?;
            if !operators.iter().any(|o| o.public_key_bits() == c.public_key_bits()) {
                return Err(err(
                    "TRUST_LIST_WRONG_KEY",
                    format!("signed by {:?}, which is not a configured operator key", c.subject()),
                ));
            }
        }
        if !operators.iter().any(|o| jws.verify(&signed.canonical, o).is_ok()) {
            let code = if jws.x5c.is_empty() { "TRUST_LIST_WRONG_KEY" } else { "TRUST_LIST_BAD_SIGNATURE" };
            return Err(err(code, "the signature does not verify with the operator key".into()));
        }
        let list: TrustList =
            serde_json::from_value(signed.document).map_err(|e| malformed(&e.to_string()))?;
        if list.format != FORMAT {
            return Err(malformed(&format!("format {:?}, expected {FORMAT:?}", list.format)));
        }
        Ok(list)
    }

    /// The member for `country`.
    pub fn member(&self, country: CountryCode) -> Option<&Member> {
        self.members.iter().find(|m| m.country == country)
    }
}
