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
    node_urls: HashMap<CountryCode, Vec<String>>,
    gateways: Vec<(String, String, Cert)>,
    /// Every listed (URL, TLS certificate): replicas of one node or gateway may share a
    /// certificate under several URLs.
    urls: Vec<(String, Cert)>,
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
            urls: Vec::new(),
            members: list.members.iter().map(|m| m.country).collect(),
            sequence: list.sequence,
        };
        for m in &list.members {
            for n in &m.nodes {
                let cert = trustlist::decode_cert(&n.tls_cert).map_err(bad)?;
                let serial = cert.serial_hex();
                let revoked = m.revoked.iter().any(|r| r.serial == serial);
                let certs = d.node_certs.entry(m.country).or_default();
                if !certs.iter().any(|c| c.sha256() == cert.sha256()) {
                    certs.push(cert.clone());
                }
                let urls = d.node_urls.entry(m.country).or_default();
                if !urls.contains(&n.url) {
                    urls.push(n.url.clone());
                }
                d.urls.push((n.url.clone(), cert.clone()));
                d.add_identity(Entry {
                    peer: Peer::Node { country: m.country, url: n.url.clone() },
                    cert,
                    revoked,
                })?;
            }
        }
        for g in &list.gateways {
            let cert = trustlist::decode_cert(&g.tls_cert).map_err(bad)?;
            d.gateways.push((g.id.clone(), g.url.clone(), cert.clone()));
            d.urls.push((g.url.clone(), cert.clone()));
            d.add_identity(Entry {
                peer: Peer::Gateway { id: g.id.clone(), url: g.url.clone() },
                cert,
                revoked: false,
            })?;
        }
        Ok(d)
    }

    /// Records who a TLS certificate identifies. The endpoints (replicas) of one peer may share
    /// a certificate; one certificate listed for two peers (two members, a member and a
    /// gateway, two gateways) would let one speak as the other, so such a list is refused.
    fn add_identity(&mut self, e: Entry) -> Result<(), ExchangeError> {
        let who = |p: &Peer| match p {
            Peer::Node { country, .. } => format!("{country}'s node"),
            Peer::Gateway { id, .. } => format!("gateway {id}"),
        };
        match self.by_cert.get(e.cert.sha256()) {
            Some(had) if who(&had.peer) != who(&e.peer) => Err(ExchangeError::new(
                "TRUST_LIST_MALFORMED",
                None,
                format!(
                    "one TLS certificate (serial {}) is listed for both {} and {}",
                    e.cert.serial_hex(),
                    who(&had.peer),
                    who(&e.peer)
                ),
            )),
            Some(_) => Ok(()),
            None => {
                self.by_cert.insert(*e.cert.sha256(), e);
                Ok(())
            }
        }
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
        self.node_endpoints(country).first().map(String::as_str)
    }

    /// Every listed URL of `country`'s nodes (its replicas), in list order.
    pub fn node_endpoints(&self, country: CountryCode) -> &[String] {
        self.node_urls.get(&country).map(Vec::as_slice).unwrap_or_default()
    }

    /// Every listed URL of the gateway `id` (its replicas), in list order.
    pub fn gateway_endpoints(&self, id: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, u, _) in &self.gateways {
            if i == id && !out.contains(u) {
                out.push(u.clone());
            }
        }
        out
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
        self.urls.iter().filter(|(u, _)| u == url).map(|(_, c)| c.der().to_vec()).collect()
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

#[cfg(test)]
mod tests {
    use originlink_trust::trustlist::{FORMAT, Gateway, Member, Node};

    use super::*;

    /// Replicas share a certificate under several URLs; each URL keeps its pin, and every
    /// endpoint is listed once, in list order.
    #[test]
    fn replicas_are_endpoints_of_one_peer() {
        let today = Utc::now().date_naive();
        let cert = |id: &str| originlink_trust::keys::init_gateway(id, today).expect("keys").cert_der;
        let (kh, hub, other) = (cert("KH"), cert("HUB"), cert("OTHER"));
        let node = |url: &str| Node { url: url.into(), tls_cert: trustlist::encode_cert(&kh) };
        let gateway = |id: &str, url: &str, der: &[u8]| Gateway {
            id: id.into(),
            url: url.into(),
            tls_cert: trustlist::encode_cert(der),
        };
        let list = TrustList {
            format: FORMAT.into(),
            sequence: 1,
            issued_at: Utc::now(),
            next_update: Utc::now() + chrono::Duration::days(1),
            members: vec![Member {
                country: CountryCode::parse("KH").expect("cc"),
                authorities: vec![],
                ca_certs: vec![],
                signing_certs: vec![],
                nodes: vec![node("https://a:1"), node("https://b:1"), node("https://a:1")],
                agreements: vec![],
                valid_from: None,
                valid_until: None,
                revoked: vec![],
            }],
            gateways: vec![
                gateway("HUB", "https://g1:1", &hub),
                gateway("OTHER", "https://o:1", &other),
                gateway("HUB", "https://g2:1", &hub),
            ],
        };
        let d = Directory::new(&list).expect("directory");
        let kh_cc = CountryCode::parse("KH").expect("cc");
        assert_eq!(d.node_endpoints(kh_cc), ["https://a:1", "https://b:1"]);
        assert_eq!(d.node_url(kh_cc), Some("https://a:1"));
        assert_eq!(d.node_certs(kh_cc).len(), 1, "one certificate, however many endpoints");
        assert_eq!(d.gateway_endpoints("HUB"), ["https://g1:1", "https://g2:1"]);
        assert_eq!(d.certs_for_url("https://b:1"), vec![kh.clone()]);
        assert_eq!(d.certs_for_url("https://g2:1"), vec![hub.clone()]);
        assert!(d.certs_for_url("https://nowhere:1").is_empty());
        let peer = d.identify(Some(&hub), Utc::now()).expect("known");
        assert!(matches!(peer, Peer::Gateway { id, .. } if id == "HUB"));

        // One certificate for two peers would let one speak as the other: refused.
        let mut two_members = list.clone();
        let mut th = two_members.members[0].clone();
        th.country = CountryCode::parse("TH").expect("cc");
        two_members.members.push(th);
        let mut node_and_gateway = list.clone();
        node_and_gateway.gateways.push(gateway("KH-HUB", "https://k:1", &kh));
        let mut two_gateways = list.clone();
        two_gateways.gateways.push(gateway("OTHER-HUB", "https://x:1", &hub));
        for (bad, why) in [
            (two_members, "KH and TH"),
            (node_and_gateway, "a node and a gateway"),
            (two_gateways, "two gateways"),
        ] {
            let e = Directory::new(&bad).expect_err(why);
            assert_eq!(e.code, "TRUST_LIST_MALFORMED", "{why}");
            assert!(e.message.contains("listed for both"), "{why}: {}", e.message);
        }
    }
}
