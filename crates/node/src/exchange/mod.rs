//! The node's side of the exchange (`docs/protocol.md`):
//! - this file: [`Exchange`], loaded from the configuration, seals outgoing envelopes (the
//!   store writes them to the outbox in the same transaction as the change);
//! - [`inbound`]: checks, verifies and applies what arrives ([`Exchange::process`]), and says
//!   what arrived ([`Arrival`]) for the caller to act on;
//! - [`outbound`]: the outbox worker that pushes to the gateway or a direct partner;
//! - [`workers`]: starting the outbox workers and the pull worker (for nodes that cannot
//!   accept connections).
//!
//! The exchange knows storage, the clock and the counters ([`Env`]), never the use cases.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use originlink_exchange::backoff::Backoff;
use originlink_exchange::body::{Ack, RevokedBody};
use originlink_exchange::client::PeerClient;
use originlink_exchange::failover::Failover;
use originlink_exchange::tls::Identity;
use originlink_exchange::{CertRef, Directory, Endpoint, Envelope, ExchangeError, Header, MessageType, Peer};
use originlink_model::CountryCode;
use originlink_service::Clock;
use originlink_store::{OutMessage, Store};
use originlink_trust::{TrustList, Verifier};
use tokio::sync::Notify;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::start::StartError;

mod inbound;
mod outbound;
pub mod workers;

/// What the exchange works with besides itself: storage, the clock, the counters.
#[derive(Debug, Clone)]
pub struct Env {
    /// Storage (outbox, inbox, received certificates).
    pub store: Arc<dyn Store>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Counters.
    pub metrics: Arc<Metrics>,
}

/// Something that arrived and was applied that others may be waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// A version of a certificate (issued, replaced or revoked).
    Certificate {
        /// Its issuing country.
        issuing_country: String,
        /// Its number.
        number: String,
    },
    /// The answer to one of our verification requests.
    Answer {
        /// The id of the request's message.
        request_message_id: String,
    },
}

/// What [`Exchange::process`] did with a batch.
#[derive(Debug, Default)]
pub struct Processed {
    /// One acknowledgement per message, in order; empty when nothing could be stored (the
    /// sender retries the whole batch).
    pub acks: Vec<Ack>,
    /// What was applied that others may be waiting for.
    pub arrivals: Vec<Arrival>,
    /// The manifests that vouched for nothing, with why (version 2).
    pub manifests: Vec<originlink_exchange::body::ManifestRefusal>,
}

/// Everything the node needs to exchange with other members.
pub struct Exchange {
    /// This node's country.
    pub country: CountryCode,
    /// This node's id (the authority id).
    pub node_id: String,
    identity: Identity,
    /// The trust list in force, swapped whole when a newer signed list is loaded.
    trust: std::sync::RwLock<Arc<Trust>>,
    /// Where the trust list is read from, and the operator certificates that must sign it.
    trust_source: (std::path::PathBuf, Vec<originlink_trust::x509::Cert>),
    /// The gateway URL configured (`[exchange] gateway`), tried before the others listed for
    /// the same gateway.
    gateway: Option<String>,
    direct: HashMap<CountryCode, String>,
    pull: bool,
    batch: usize,
    poll: Duration,
    /// The highest exchange protocol version spoken (`[exchange] protocol`).
    pub protocol: u8,
    /// How often to ask the gateway for a newer trust list (`None`: never).
    trust_refresh: Option<Duration>,
    backoff: Backoff,
    clients: std::sync::Mutex<HashMap<String, Arc<PeerClient>>>,
    /// The failover client of each route (its endpoints, in order).
    routes: std::sync::Mutex<HashMap<Vec<String>, Arc<Failover>>>,
    /// Wakes the outbox worker when a message was written.
    pub wake: Notify,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Exchange({} {})", self.country, self.node_id)
    }
}

/// A trust list in force: who is who, and the verifier built from it.
pub struct Trust {
    /// The operator's sequence number of the list.
    pub sequence: u64,
    /// When the operator issued it.
    pub issued_at: DateTime<Utc>,
    /// When the next one is due (after it, received certificates cannot be verified).
    pub next_update: DateTime<Utc>,
    directory: Directory,
    verifier: Verifier,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trust(sequence {}, next update {})", self.sequence, self.next_update)
    }
}

impl Trust {
    /// The members, each with the URL of its node (`None`: it pulls).
    pub fn members(&self) -> Vec<(String, Option<String>)> {
        self.directory
            .members()
            .iter()
            .map(|c| (c.as_str().to_owned(), self.directory.node_url(*c).map(str::to_owned)))
            .collect()
    }

    /// The member countries.
    pub fn countries(&self) -> Vec<CountryCode> {
        self.directory.members().to_vec()
    }

    /// The verifier built from this list (documents and status lists are verified with it).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    fn from_list(list: &TrustList) -> Result<Trust, String> {
        Ok(Trust {
            sequence: list.sequence,
            issued_at: list.issued_at,
            next_update: list.next_update,
            directory: Directory::new(list).map_err(|e| e.to_string())?,
            verifier: Verifier::new(
                originlink_trust::TrustStore::from_list(list).map_err(|e| e.to_string())?,
            ),
        })
    }
}

/// What reloading the trust list did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// A newer list is in force (its sequence).
    Loaded(u64),
    /// The file holds the list in force, or an older one: nothing changed.
    Unchanged(u64),
}

fn tls_err(e: impl std::fmt::Display) -> StartError {
    StartError::Exchange(e.to_string())
}

impl Exchange {
    /// Loads the trust list (checked against the operator certificate) and the node identity.
    pub fn load(config: &Config, now: DateTime<Utc>) -> Result<Option<Exchange>, StartError> {
        let Some(x) = &config.exchange else { return Ok(None) };
        let operators = originlink_trust::keystore::load_certs(&x.operator_cert)?;
        let bytes = std::fs::read(&x.trust_list)
            .map_err(|e| tls_err(format!("trust list {}: {e}", x.trust_list.display())))?;
        let list = TrustList::from_signed(&bytes, &operators)?;
        if list.next_update < now {
            tracing::warn!(next_update = %list.next_update, "the trust list is outdated; received certificates cannot be verified");
        }
        let trust = Trust::from_list(&list).map_err(tls_err)?;
        let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) else {
            return Err(StartError::Tls("tls.cert and tls.key are required".into()));
        };
        let identity = Identity::load(cert, key)?;
        let country = CountryCode::parse(&config.authority.country).map_err(tls_err)?;
        let mut direct = HashMap::new();
        for (c, url) in &x.direct {
            direct.insert(CountryCode::parse(c).map_err(tls_err)?, url.clone());
        }
        let gateway = x.gateway.clone();
        Ok(Some(Exchange {
            country,
            node_id: config.authority.id.clone(),
            identity,
            trust: std::sync::RwLock::new(Arc::new(trust)),
            trust_source: (x.trust_list.clone(), operators),
            gateway,
            direct,
            pull: x.pull,
            batch: x.batch,
            poll: Duration::from_millis(x.poll_ms.max(1)),
            protocol: x.protocol,
            trust_refresh: (x.trust_list_refresh_s > 0).then(|| Duration::from_secs(x.trust_list_refresh_s)),
            backoff: Backoff {
                base: Duration::from_millis(x.backoff_base_ms),
                max: Duration::from_millis(x.backoff_max_ms),
                max_attempts: x.max_attempts,
            },
            clients: std::sync::Mutex::new(HashMap::new()),
            routes: std::sync::Mutex::new(HashMap::new()),
            wake: Notify::new(),
        }))
    }

    /// The trust list in force.
    pub fn trust(&self) -> Arc<Trust> {
        self.trust.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What an outsider needs to verify offline: the signed trust list as this node holds it
    /// (its file, byte for byte) and the operator certificates (PEM) that must have signed it.
    pub fn published_trust(&self) -> Result<(Vec<u8>, String), String> {
        let (path, operators) = &self.trust_source;
        let bytes = std::fs::read(path).map_err(|e| format!("trust list {}: {e}", path.display()))?;
        let pem = operators.iter().map(|c| originlink_trust::keys::cert_to_pem(c.der())).collect();
        Ok((bytes, pem))
    }

    /// Reads the trust list file again and puts it in force when it is validly signed by the
    /// operator and newer (a higher sequence) than the one in force. A list that does not
    /// verify is refused with the reason, and the one in force stays; an older or the same one
    /// changes nothing. Peer connections are rebuilt, so new pins apply at once.
    pub fn reload_trust_list(&self) -> Result<Reload, String> {
        let (path, operators) = &self.trust_source;
        let bytes = std::fs::read(path).map_err(|e| format!("trust list {}: {e}", path.display()))?;
        let list = TrustList::from_signed(&bytes, operators)
            .map_err(|e| format!("trust list {}: {e}", path.display()))?;
        let current = self.trust().sequence;
        if list.sequence <= current {
            return Ok(Reload::Unchanged(current));
        }
        let trust = Trust::from_list(&list)?;
        *self.trust.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(trust);
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.routes.lock().unwrap_or_else(|p| p.into_inner()).clear();
        tracing::info!(from = current, to = list.sequence, next_update = %list.next_update, "trust list reloaded");
        Ok(Reload::Loaded(list.sequence))
    }

    /// Asks the gateway for its copy of the signed trust list; when it verifies and is newer
    /// than the one in force, writes it over the trust list file (beside it, then renamed) and
    /// puts it in force. `Ok(None)`: nothing newer.
    pub async fn fetch_trust_list(&self) -> Result<Option<u64>, String> {
        let Some(client) = self.gateway_route()? else { return Ok(None) };
        let url = client.base().to_owned();
        let (status, body) = client
            .request(hyper::Method::GET, "/exchange/v1/trust-list", Vec::new())
            .await
            .map_err(|e| format!("asking {url} for the trust list: {e}"))?;
        if status != hyper::StatusCode::OK {
            return Err(format!("{url} answered {status} for the trust list"));
        }
        let (path, operators) = &self.trust_source;
        let list = TrustList::from_signed(&body, operators)
            .map_err(|e| format!("the trust list from {url} does not verify: {e}"))?;
        if list.sequence <= self.trust().sequence {
            return Ok(None);
        }
        let next = path.with_extension("fetched");
        std::fs::write(&next, &body)
            .and_then(|()| std::fs::rename(&next, path))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        match self.reload_trust_list()? {
            Reload::Loaded(seq) => Ok(Some(seq)),
            Reload::Unchanged(_) => Ok(None),
        }
    }

    /// How often to ask the gateway for a newer trust list.
    pub(crate) fn trust_refresh(&self) -> Option<Duration> {
        self.trust_refresh.filter(|_| !self.gateway_urls().is_empty())
    }

    /// The trust list file (its modification time says when to reload).
    pub(crate) fn trust_list_path(&self) -> &std::path::Path {
        &self.trust_source.0
    }

    /// Who a TLS client is: a member's node or gateway of the trust list (by its certificate,
    /// valid at `now`); `CLIENT_CERT_REQUIRED` without one.
    pub fn identify(&self, der: Option<&[u8]>, now: DateTime<Utc>) -> Result<Peer, ExchangeError> {
        self.trust().directory.identify(der, now).cloned()
    }

    fn me(&self) -> Endpoint {
        Endpoint { country: self.country, node: Some(self.node_id.clone()) }
    }

    /// Seals one envelope into an outbox message.
    #[allow(clippy::too_many_arguments)]
    pub fn seal(
        &self,
        kind: MessageType,
        to: CountryCode,
        certificate: Option<CertRef>,
        correlation_id: Option<String>,
        payload_type: &str,
        payload: Vec<u8>,
        now: DateTime<Utc>,
    ) -> Result<OutMessage, String> {
        let id = originlink_exchange::id::new_id(now);
        let cert_key = certificate.as_ref().map(CertRef::key);
        let header = Header {
            id: id.clone(),
            correlation_id,
            from: self.me(),
            to: Endpoint { country: to, node: None },
            kind,
            certificate,
            payload_type: payload_type.to_owned(),
            created_at: now,
        };
        let env = Envelope::seal(header, payload, &self.identity.signer).map_err(|e| e.to_string())?;
        Ok(OutMessage {
            id,
            recipient: to.as_str().to_owned(),
            kind: kind.as_str().to_owned(),
            cert_key,
            body: env.raw,
        })
    }

    /// The signed manifest of a batch of this node's envelopes (protocol version 2).
    pub fn manifest<'a>(
        &self,
        envelopes: impl IntoIterator<Item = &'a [u8]>,
        now: DateTime<Utc>,
    ) -> Result<originlink_exchange::Manifest, ExchangeError> {
        originlink_exchange::Manifest::seal(self.me(), envelopes, &self.identity.signer, now)
    }

    /// The `certificate.issued` / `certificate.replaced` message for a signed certificate
    /// addressed to `importing`.
    pub fn certificate_message(
        &self,
        signed: &[u8],
        number: &str,
        version: i64,
        importing: CountryCode,
        now: DateTime<Utc>,
    ) -> Result<OutMessage, String> {
        let kind =
            if version > 1 { MessageType::CertificateReplaced } else { MessageType::CertificateIssued };
        let payload_type = if signed.first() == Some(&b'{') { "application/json" } else { "application/xml" };
        let cref = CertRef { country: self.country, number: number.to_owned(), version };
        self.seal(kind, importing, Some(cref), None, payload_type, signed.to_vec(), now)
    }

    /// The `certificate.revoked` message for an issued certificate.
    pub fn revocation_message(
        &self,
        cert: &originlink_store::Certificate,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutMessage>, String> {
        let limits = originlink_formats::Limits::default();
        let (_, doc) = originlink_formats::read(&cert.signed, &limits)
            .map_err(|p| format!("the stored certificate no longer reads ({} problems)", p.len()))?;
        if doc.importing_country == self.country {
            return Ok(vec![]);
        }
        let body =
            serde_json::to_vec(&RevokedBody { reason: reason.to_owned() }).map_err(|e| e.to_string())?;
        let cref = CertRef { country: self.country, number: cert.number.clone(), version: cert.version };
        Ok(vec![self.seal(
            MessageType::CertificateRevoked,
            doc.importing_country,
            Some(cref),
            None,
            "application/json",
            body,
            now,
        )?])
    }

    /// Where messages for `to` go, every endpoint in the order to try them: a direct link if
    /// configured (then the partner's other listed endpoints, when the link is one of them),
    /// else the gateway's endpoints. `None`: nowhere.
    fn route(&self, to: &str) -> Option<Vec<String>> {
        let c = CountryCode::parse(to).ok()?;
        let Some(url) = self.direct.get(&c) else {
            let urls = self.gateway_urls();
            return (!urls.is_empty()).then_some(urls);
        };
        let mut urls = vec![url.clone()];
        let trust = self.trust();
        let listed = trust.directory.node_endpoints(c);
        if listed.contains(url) {
            urls.extend(listed.iter().filter(|u| *u != url).cloned());
        }
        Some(urls)
    }

    /// The gateway's endpoints: the configured URL first, then every other URL the trust list
    /// gives the same gateway (its replicas). Without a configured URL, the first listed
    /// gateway's endpoints.
    fn gateway_urls(&self) -> Vec<String> {
        let trust = self.trust();
        let d = &trust.directory;
        let id = match &self.gateway {
            Some(url) => d.gateways().find(|(_, u, _)| u == url).map(|(i, _, _)| i.to_owned()),
            None => d.gateways().next().map(|(i, _, _)| i.to_owned()),
        };
        let mut urls: Vec<String> = self.gateway.iter().cloned().collect();
        for u in id.map(|id| d.gateway_endpoints(&id)).unwrap_or_default() {
            if !urls.contains(&u) {
                urls.push(u);
            }
        }
        urls
    }

    /// The failover client of the gateway (`None`: no gateway).
    fn gateway_route(&self) -> Result<Option<Arc<Failover>>, String> {
        let urls = self.gateway_urls();
        if urls.is_empty() {
            return Ok(None);
        }
        self.failover(&urls).map(Some)
    }

    /// One client over the endpoints `urls` (kept until the trust list changes). An endpoint
    /// the trust list has no certificate for is left out; with none left, the reason.
    fn failover(&self, urls: &[String]) -> Result<Arc<Failover>, String> {
        if let Some(f) = self.routes.lock().map_err(|_| "route cache poisoned".to_owned())?.get(urls) {
            return Ok(f.clone());
        }
        let mut clients = Vec::new();
        let mut refused = None;
        for url in urls {
            match self.client(url) {
                Ok(c) => clients.push(c),
                Err(e) => refused = Some(e),
            }
        }
        // A configured URL (the gateway, a direct link) is tried first; listed endpoints
        // alone are spread over.
        let configured =
            |u: &String| self.gateway.as_ref() == Some(u) || self.direct.values().any(|d| d == u);
        let f = match urls.first() {
            Some(u) if configured(u) => Failover::new(clients),
            _ => Failover::spread(clients),
        };
        let f = f.ok_or_else(|| refused.unwrap_or_else(|| "NO_ROUTE: no endpoint".into()))?;
        let f = Arc::new(f.allow_v2(self.protocol >= 2));
        self.routes.lock().map_err(|_| "route cache poisoned".to_owned())?.insert(urls.to_vec(), f.clone());
        Ok(f)
    }

    fn client(&self, url: &str) -> Result<Arc<PeerClient>, String> {
        let mut clients = self.clients.lock().map_err(|_| "client cache poisoned".to_owned())?;
        if let Some(c) = clients.get(url) {
            return Ok(c.clone());
        }
        let trust = self.trust();
        let mut pinned = trust.directory.certs_for_url(url);
        if pinned.is_empty() {
            // A direct link configured with another URL than the list's: pin the partner's
            // listed node certificates.
            if let Some((c, _)) = self.direct.iter().find(|(_, u)| u.as_str() == url) {
                pinned = trust.directory.node_tls_certs(*c);
            }
        }
        if pinned.is_empty() {
            return Err(format!("NO_ROUTE: the trust list has no certificate for {url}"));
        }
        let tls =
            originlink_exchange::tls::client_config(&self.identity, pinned).map_err(|e| e.to_string())?;
        let c = Arc::new(PeerClient::new(url, tls, Duration::from_secs(30)).map_err(|e| e.to_string())?);
        clients.insert(url.to_owned(), c.clone());
        Ok(c)
    }
}
