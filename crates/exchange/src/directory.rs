//! Who is who in the network, from the signed trust list: each node's and gateway's TLS
//! certificate (pinned: the exact certificate, not just its issuer), each node's URL, and
//! which certificates may sign a country's envelopes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use originlink_model::CountryCode;
use originlink_trust::trustlist::{self, TrustList};
use originlink_trust::x509::Cert;

use crate::error::ExchangeError;

/// A peer of the exchange, identified by its TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A member's node.
    Node {
        /// The member country.
        country: CountryCode,
        /// Its URL, as listed.
        url: String,
    },
    /// A regional gateway.
    Gateway {
        /// Its id.
        id: String,
        /// Its URL.
        url: String,
    },
}

#[derive(Debug, Clone)]
struct Entry {
    peer: Peer,
    cert: Cert,
    revoked: bool,
}

/// The directory built from one trust list.
#[derive(Debug, Clone)]
pub struct Directory {
    by_cert: HashMap<[u8; 32], Entry>,
    node_certs: HashMap<CountryCode, Vec<Cert>>,
    node_urls: HashMap<CountryCode, String>,
    gateways: Vec<(String, String, Cert)>,
    members: Vec<CountryCode>,
    sequence: u64,
}

impl Directory {
    /// Reads the list (already verified against the operator key by the caller).
    pub fn new(list: &TrustList) -> Result<Directory, ExchangeError> {
        let bad =
            |e: originlink_trust::Error| ExchangeError::new("TRUST_LIST_MALFORMED", None, e.to_string());
        let mut d = Directory {
            by_cert: HashMap::new(),
            node_certs: HashMap::new(),
            node_urls: HashMap::new(),
            gateways: Vec::new(),
            members: list.members.iter().map(|m| m.country).collect(),
            sequence: list.sequence,
        };
        for m in &list.members {
            for n in &m.nodes {
                let cert = trustlist::decode_cert(&n.tls_cert).map_err(bad)?;
                let serial = cert.serial_hex();
                let revoked = m.revoked.iter().any(|r| r.serial == serial);
                d.node_certs.entry(m.country).or_default().push(cert.clone());
                d.node_urls.entry(m.country).or_insert_with(|| n.url.clone());
                d.by_cert.insert(
                    *cert.sha256(),
                    Entry { peer: Peer::Node { country: m.country, url: n.url.clone() }, cert, revoked },
                );
            }
        }
        for g in &list.gateways {
            let cert = trustlist::decode_cert(&g.tls_cert).map_err(bad)?;
            d.gateways.push((g.id.clone(), g.url.clone(), cert.clone()));
            d.by_cert.insert(
                *cert.sha256(),
                Entry { peer: Peer::Gateway { id: g.id.clone(), url: g.url.clone() }, cert, revoked: false },
            );
        }
        Ok(d)
    }

    /// The trust list's sequence number.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Who presented this TLS client certificate (DER), checked at `now`.
    ///
    /// Codes: `CLIENT_CERT_REQUIRED` (none), `CLIENT_CERT_UNKNOWN` (not in the trust list),
    /// `CLIENT_CERT_EXPIRED`, `CLIENT_CERT_REVOKED`.
    pub fn identify(&self, der: Option<&[u8]>, now: DateTime<Utc>) -> Result<&Peer, ExchangeError> {
        let der = der.ok_or_else(|| {
            ExchangeError::new("CLIENT_CERT_REQUIRED", None, "a TLS client certificate is required")
        })?;
        let hash = ring::digest::digest(&ring::digest::SHA256, der);
        let mut key = [0u8; 32];
        key.copy_from_slice(hash.as_ref());
        let e = self.by_cert.get(&key).ok_or_else(|| {
            ExchangeError::new(
                "CLIENT_CERT_UNKNOWN",
                None,
                "the TLS client certificate is not in the trust list",
            )
        })?;
        let t = now.timestamp();
        if t < e.cert.not_before() || t > e.cert.not_after() {
            return Err(ExchangeError::new(
                "CLIENT_CERT_EXPIRED",
                None,
                "the TLS client certificate is outside its validity period",
            ));
        }
        if e.revoked {
            return Err(ExchangeError::new(
                "CLIENT_CERT_REVOKED",
                None,
                "the TLS client certificate is revoked",
            ));
        }
        Ok(&e.peer)
    }

    /// The certificates that may sign envelopes from `country` (its nodes' certificates).
    pub fn node_certs(&self, country: CountryCode) -> Vec<&Cert> {
        self.node_certs.get(&country).map(|v| v.iter().collect()).unwrap_or_default()
    }

    /// The first listed URL of `country`'s node.
    pub fn node_url(&self, country: CountryCode) -> Option<&str> {
        self.node_urls.get(&country).map(String::as_str)
    }

    /// The member countries, as listed.
    pub fn members(&self) -> &[CountryCode] {
        &self.members
    }

    /// Whether `country` is a member.
    pub fn is_member(&self, country: CountryCode) -> bool {
        self.members.contains(&country)
    }

    /// The gateways: (id, url, TLS certificate).
    pub fn gateways(&self) -> impl Iterator<Item = (&str, &str, &Cert)> {
        self.gateways.iter().map(|(i, u, c)| (i.as_str(), u.as_str(), c))
    }

    /// The TLS certificates a client may accept from the server at `url`: every node and
    /// gateway certificate listed with that URL.
    pub fn certs_for_url(&self, url: &str) -> Vec<Vec<u8>> {
        self.by_cert
            .values()
            .filter(|e| match &e.peer {
                Peer::Node { url: u, .. } | Peer::Gateway { url: u, .. } => u == url,
            })
            .map(|e| e.cert.der().to_vec())
            .collect()
    }

    /// Every TLS certificate in the list (a client talking to a configured URL not in the
    /// list still only accepts a listed certificate).
    pub fn all_tls_certs(&self) -> Vec<Vec<u8>> {
        self.by_cert.values().map(|e| e.cert.der().to_vec()).collect()
    }

    /// The TLS certificates of `country`'s nodes.
    pub fn node_tls_certs(&self, country: CountryCode) -> Vec<Vec<u8>> {
        self.node_certs(country).into_iter().map(|c| c.der().to_vec()).collect()
    }
}
