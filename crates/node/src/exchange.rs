//! The node's side of the exchange (`docs/protocol.md`): sealing outgoing envelopes (written
//! to the outbox by the store in the same transaction as the change), the outbox worker that
//! pushes them to the gateway or a direct partner, the inbound endpoint that checks, verifies
//! and applies what arrives, and the pull worker for nodes that cannot accept connections.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use originlink_exchange::backoff::{self, Backoff};
use originlink_exchange::body::{
    Ack, Batch, BatchResponse, BusinessStatus, Delivery, Reason, RevokedBody, StatusBody,
};
use originlink_exchange::client::PeerClient;
use originlink_exchange::server::PeerCert;
use originlink_exchange::tls::Identity;
use originlink_exchange::{CertRef, Directory, Endpoint, Envelope, ExchangeError, Header, MessageType, Peer};
use originlink_model::CountryCode;
use originlink_store::{Applied, Ctx, Inbound, InboundKind, NewReceived, OutMessage, ReceivedStatus};
use originlink_trust::{TrustList, Verdict, Verifier};
use tokio::sync::Notify;

use crate::config::Config;
use crate::{AppState, StartError};

/// Everything the node needs to exchange with other members.
pub struct Exchange {
    /// This node's country.
    pub country: CountryCode,
    /// This node's id (the authority id).
    pub node_id: String,
    identity: Identity,
    directory: Directory,
    verifier: Verifier,
    gateway: Option<String>,
    direct: HashMap<CountryCode, String>,
    pull: bool,
    batch: usize,
    poll: Duration,
    backoff: Backoff,
    clients: std::sync::Mutex<HashMap<String, Arc<PeerClient>>>,
    /// Wakes the outbox worker when a message was written.
    pub wake: Notify,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Exchange({} {})", self.country, self.node_id)
    }
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
        let directory = Directory::new(&list).map_err(tls_err)?;
        let verifier = Verifier::new(originlink_trust::TrustStore::from_list(&list)?);
        let (Some(cert), Some(key)) = (&config.tls.cert, &config.tls.key) else {
            return Err(StartError::Tls("tls.cert and tls.key are required".into()));
        };
        let identity = Identity::load(cert, key)?;
        let country = CountryCode::parse(&config.authority.country).map_err(tls_err)?;
        let mut direct = HashMap::new();
        for (c, url) in &x.direct {
            direct.insert(CountryCode::parse(c).map_err(tls_err)?, url.clone());
        }
        let gateway = x.gateway.clone().or_else(|| directory.gateways().next().map(|(_, u, _)| u.to_owned()));
        Ok(Some(Exchange {
            country,
            node_id: config.authority.id.clone(),
            identity,
            directory,
            verifier,
            gateway,
            direct,
            pull: x.pull,
            batch: x.batch,
            poll: Duration::from_millis(x.poll_ms.max(1)),
            backoff: Backoff {
                base: Duration::from_millis(x.backoff_base_ms),
                max: Duration::from_millis(x.backoff_max_ms),
                max_attempts: x.max_attempts,
            },
            clients: std::sync::Mutex::new(HashMap::new()),
            wake: Notify::new(),
        }))
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

    /// Where messages for `to` go: a direct link if configured, else the gateway.
    fn route(&self, to: &str) -> Option<String> {
        let c = CountryCode::parse(to).ok()?;
        self.direct.get(&c).cloned().or_else(|| self.gateway.clone())
    }

    fn client(&self, url: &str) -> Result<Arc<PeerClient>, String> {
        let mut clients = self.clients.lock().map_err(|_| "client cache poisoned".to_owned())?;
        if let Some(c) = clients.get(url) {
            return Ok(c.clone());
        }
        let mut pinned = self.directory.certs_for_url(url);
        if pinned.is_empty() {
            // A direct link configured with another URL than the list's: pin the partner's
            // listed node certificates.
            if let Some((c, _)) = self.direct.iter().find(|(_, u)| u.as_str() == url) {
                pinned = self.directory.node_tls_certs(*c);
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

    /// Checks, verifies and applies a batch that arrived from `peer`.
    pub async fn process(self: &Arc<Self>, state: &AppState, peer: &Peer, raws: Vec<Vec<u8>>) -> Vec<Ack> {
        let now = state.clock.now();
        let n = raws.len();
        // Checking signatures and verifying certificates is CPU work: spread it over the
        // cores, off the async threads.
        let this = self.clone();
        let who = peer.clone();
        let checked = tokio::task::spawn_blocking(move || this.check_all(&who, raws, now)).await;
        let Ok(checked) = checked else { return Vec::new() };
        let mut acks: Vec<Option<Ack>> = vec![None; n];
        let mut inbound = Vec::new();
        let mut slots = Vec::new();
        let mut not_readable = Vec::new();
        for (i, r) in checked.into_iter().enumerate() {
            match r {
                Err((id, e)) => acks[i] = Some(Ack::refused(id, &e)),
                Ok((inb, readable)) => {
                    slots.push(i);
                    not_readable.push(!readable);
                    inbound.push(inb);
                }
            }
        }
        if !inbound.is_empty() {
            let ids: Vec<String> = inbound.iter().map(|m| m.message_id.clone()).collect();
            // What customs may have been waiting for: certificates that arrived, verifications
            // that were answered.
            let touched: Vec<Option<(String, String)>> = inbound
                .iter()
                .map(|m| match &m.kind {
                    InboundKind::Issued { certificate } | InboundKind::Replaced { certificate } => {
                        Some((certificate.issuing_country.clone(), certificate.number.clone()))
                    }
                    InboundKind::Revoked { issuing_country, number, .. } => {
                        Some((issuing_country.clone(), number.clone()))
                    }
                    _ => None,
                })
                .collect();
            let answered: Vec<String> = inbound
                .iter()
                .filter_map(|m| match &m.kind {
                    InboundKind::VerificationResponse { request_message_id, .. } => {
                        Some(request_message_id.clone())
                    }
                    _ => None,
                })
                .collect();
            let actor = match peer {
                Peer::Node { country, .. } => format!("exchange:{country}"),
                Peer::Gateway { id, .. } => format!("exchange:gateway:{id}"),
            };
            match state.store.apply_inbound(&Ctx::new(actor, now), inbound).await {
                Ok(applied) => {
                    for (k, a) in applied.into_iter().enumerate() {
                        let (slot, id) = (slots[k], ids[k].clone());
                        let mut ack = match a {
                            Applied::Applied if not_readable[k] => Ack::ok(id, Delivery::NotReadable),
                            Applied::Applied => Ack::ok(id, Delivery::Delivered),
                            Applied::Held => Ack::ok(id, Delivery::DeliveredWithWarnings),
                            Applied::Duplicate => Ack::ok(id, Delivery::Delivered),
                        };
                        ack.duplicate = a == Applied::Duplicate;
                        acks[slot] = Some(ack);
                        if let (Applied::Applied, Some((c, n))) = (a, &touched[k]) {
                            let (state, c, n) = (state.clone(), c.clone(), n.clone());
                            tokio::spawn(async move { crate::customs::rematch(&state, &c, &n).await });
                        }
                    }
                    for request in answered {
                        let state = state.clone();
                        tokio::spawn(async move { crate::customs::after_answer(&state, &request).await });
                    }
                    self.wake.notify_one();
                }
                Err(e) => {
                    tracing::error!(error = %e, "applying inbound messages failed");
                    // No ack: the sender retries the whole batch.
                    return Vec::new();
                }
            }
        }
        acks.into_iter().flatten().collect()
    }

    /// [`Exchange::check`] and [`Exchange::to_inbound`] for a batch, on up to four threads,
    /// results in order.
    #[allow(clippy::type_complexity)]
    fn check_all(
        &self,
        peer: &Peer,
        raws: Vec<Vec<u8>>,
        now: DateTime<Utc>,
    ) -> Vec<Result<(Inbound, bool), (String, ExchangeError)>> {
        let one = |raw: &Vec<u8>| self.check(peer, raw).and_then(|env| self.to_inbound(env, now));
        let threads = std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1).min(4);
        if threads < 2 || raws.len() < 8 {
            return raws.iter().map(one).collect();
        }
        let size = raws.len().div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = raws
                .chunks(size)
                .map(|c| (c.len(), s.spawn(move || c.iter().map(one).collect::<Vec<_>>())))
                .collect();
            handles
                .into_iter()
                .flat_map(|(len, h)| {
                    // A panicking check refuses its messages rather than shifting the others.
                    h.join().unwrap_or_else(|_| {
                        (0..len)
                            .map(|_| {
                                Err((
                                    String::new(),
                                    ExchangeError::new("INTERNAL_ERROR", None, "check failed"),
                                ))
                            })
                            .collect()
                    })
                })
                .collect()
        })
    }

    /// The envelope checks that need no database: form, hash, recipient, sender, signature.
    fn check(&self, peer: &Peer, raw: &[u8]) -> Result<Envelope, (String, ExchangeError)> {
        let env = Envelope::parse(raw).map_err(|e| (id_of(raw), e))?;
        let id = env.header.id.clone();
        let from = env.header.from.country;
        if env.header.to.country != self.country {
            return Err((
                id,
                ExchangeError::new(
                    "RECIPIENT_UNKNOWN",
                    Some("to"),
                    format!("this node is {}, the message is for {}", self.country, env.header.to.country),
                ),
            ));
        }
        if !self.directory.is_member(from) {
            return Err((
                id,
                ExchangeError::new("SENDER_UNKNOWN", Some("from"), format!("{from} is not a member")),
            ));
        }
        if let Peer::Node { country, .. } = peer
            && *country != from
        {
            {
                return Err((
                    id,
                    ExchangeError::new(
                        "SENDER_MISMATCH",
                        Some("from"),
                        format!("the TLS client is a node of {country}, the envelope says {from}"),
                    ),
                ));
            }
        }
        env.verify_signature(&self.directory.node_certs(from)).map_err(|e| (id, e))?;
        Ok(env)
    }

    /// What to apply for a checked envelope, and whether its payload was readable.
    fn to_inbound(
        &self,
        env: Envelope,
        now: DateTime<Utc>,
    ) -> Result<(Inbound, bool), (String, ExchangeError)> {
        let h = &env.header;
        let id = h.id.clone();
        let from = h.from.country;
        let bad = |code: &'static str, msg: String| {
            (id.clone(), ExchangeError::new(code, Some("certificate"), msg))
        };
        let reply =
            |status: StatusBody, cref: &CertRef| -> Result<Vec<OutMessage>, (String, ExchangeError)> {
                self.seal(
                    MessageType::StatusUpdate,
                    from,
                    Some(cref.clone()),
                    Some(id.clone()),
                    "application/json",
                    status.to_json(),
                    now,
                )
                .map(|m| vec![m])
                .map_err(|e| (id.clone(), ExchangeError::new("ENVELOPE_SIGNING_FAILED", None, e)))
            };
        let (kind, reply, readable) = match h.kind {
            MessageType::CertificateIssued | MessageType::CertificateReplaced => {
                let cref = h
                    .certificate
                    .clone()
                    .ok_or_else(|| bad("ENVELOPE_MALFORMED", "no certificate".into()))?;
                if cref.country != from {
                    return Err(bad(
                        "SENDER_MISMATCH",
                        format!("{from} cannot send a certificate issued by {}", cref.country),
                    ));
                }
                let (status, verdict, readable) = self.judge(&env.payload, &cref, now);
                let body = match &verdict {
                    None => StatusBody::new(BusinessStatus::Received),
                    Some((code, message)) => {
                        let mut b = StatusBody::new(BusinessStatus::Rejected);
                        b.reasons.push(Reason { code: code.clone(), message: message.clone() });
                        b
                    }
                };
                let certificate = NewReceived {
                    issuing_country: cref.country.as_str().to_owned(),
                    number: cref.number.clone(),
                    version: cref.version,
                    document: env.payload,
                    status,
                    verdict: verdict.map(|v| v.0),
                    message_id: Some(id.clone()),
                };
                let kind = if h.kind == MessageType::CertificateIssued {
                    InboundKind::Issued { certificate }
                } else {
                    InboundKind::Replaced { certificate }
                };
                (kind, reply(body, &cref)?, readable)
            }
            MessageType::CertificateRevoked => {
                let cref = h
                    .certificate
                    .clone()
                    .ok_or_else(|| bad("ENVELOPE_MALFORMED", "no certificate".into()))?;
                if cref.country != from {
                    return Err(bad("SENDER_MISMATCH", format!("{from} cannot revoke for {}", cref.country)));
                }
                let body: RevokedBody = serde_json::from_slice(&env.payload).map_err(|e| {
                    (id.clone(), ExchangeError::new("ENVELOPE_MALFORMED", Some("payload"), e.to_string()))
                })?;
                let kind = InboundKind::Revoked {
                    issuing_country: cref.country.as_str().to_owned(),
                    number: cref.number.clone(),
                    version: cref.version,
                    reason: body.reason,
                };
                (kind, reply(StatusBody::new(BusinessStatus::Revoked), &cref)?, true)
            }
            MessageType::StatusUpdate => {
                let cref = h
                    .certificate
                    .clone()
                    .ok_or_else(|| bad("ENVELOPE_MALFORMED", "no certificate".into()))?;
                if cref.country != self.country {
                    return Err(bad(
                        "RECIPIENT_UNKNOWN",
                        format!("{} did not issue {}", self.country, cref.number),
                    ));
                }
                let body = StatusBody::parse(&env.payload).map_err(|e| (id.clone(), e))?;
                let kind = InboundKind::Status {
                    number: cref.number,
                    version: cref.version,
                    status: body.status.as_str().to_owned(),
                    code: body.code.clone(),
                    detail: String::from_utf8_lossy(&env.payload).into_owned(),
                };
                (kind, vec![], true)
            }
            MessageType::VerificationRequest => {
                let cref = h
                    .certificate
                    .clone()
                    .ok_or_else(|| bad("ENVELOPE_MALFORMED", "no certificate".into()))?;
                if cref.country != self.country {
                    return Err(bad(
                        "RECIPIENT_UNKNOWN",
                        format!("{} did not issue {}", self.country, cref.number),
                    ));
                }
                let v: serde_json::Value = serde_json::from_slice(&env.payload).map_err(|e| {
                    (id.clone(), ExchangeError::new("ENVELOPE_MALFORMED", Some("payload"), e.to_string()))
                })?;
                let deadline = v["deadline"]
                    .as_str()
                    .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
                    .map(|d| d.with_timezone(&Utc))
                    .ok_or_else(|| {
                        (id.clone(), ExchangeError::new("ENVELOPE_MALFORMED", Some("payload"), "no deadline"))
                    })?;
                let kind = InboundKind::VerificationRequest {
                    request_message_id: id.clone(),
                    issuing_country: cref.country.as_str().to_owned(),
                    number: cref.number,
                    questions: v["questions"].to_string(),
                    deadline,
                };
                (kind, vec![], true)
            }
            MessageType::VerificationResponse => {
                let request = h.correlation_id.clone().ok_or_else(|| {
                    (
                        id.clone(),
                        ExchangeError::new("ENVELOPE_MALFORMED", Some("correlation_id"), "names no request"),
                    )
                })?;
                let v: serde_json::Value = serde_json::from_slice(&env.payload).map_err(|e| {
                    (id.clone(), ExchangeError::new("ENVELOPE_MALFORMED", Some("payload"), e.to_string()))
                })?;
                let kind = InboundKind::VerificationResponse {
                    request_message_id: request,
                    answer: v["answer"].as_str().unwrap_or_default().to_owned(),
                    outcome: v["outcome"].as_str().unwrap_or_default().to_owned(),
                };
                (kind, vec![], true)
            }
            other => (
                InboundKind::Other {
                    kind: other.as_str().to_owned(),
                    detail: String::from_utf8_lossy(&env.payload).into_owned(),
                },
                vec![],
                true,
            ),
        };
        Ok((Inbound { message_id: id, from_country: from.as_str().to_owned(), kind, reply }, readable))
    }

    /// Verifies a received certificate under the trust policy and checks that it is the one
    /// the envelope names. Returns its status, the reason when not valid, and whether it was
    /// readable at all.
    fn judge(
        &self,
        doc: &[u8],
        cref: &CertRef,
        now: DateTime<Utc>,
    ) -> (ReceivedStatus, Option<(String, String)>, bool) {
        let verdict = match self.verifier.verify(doc, now) {
            Ok(v) => v,
            Err(u) => return (ReceivedStatus::Invalid, Some((u.code.to_owned(), u.message)), false),
        };
        match verdict {
            Verdict::Valid(_) => {}
            Verdict::Invalid { reason, detail } => {
                return (ReceivedStatus::Invalid, Some((reason.code().to_owned(), detail)), true);
            }
            Verdict::CannotVerify { reason, detail } => {
                return (ReceivedStatus::Invalid, Some((reason.code().to_owned(), detail)), true);
            }
        }
        let limits = originlink_formats::Limits::default();
        match originlink_formats::read(doc, &limits) {
            Err(p) => (
                ReceivedStatus::Invalid,
                Some(("NOT_READABLE".into(), format!("{} problems reading the certificate", p.len()))),
                false,
            ),
            Ok((_, c)) => {
                let number = c.number.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_default();
                if number != cref.number || i64::from(c.version) != cref.version {
                    return (
                        ReceivedStatus::Invalid,
                        Some((
                            "REFERENCE_MISMATCH".into(),
                            format!(
                                "the envelope names {} v{}, the document is {number} v{}",
                                cref.number, cref.version, c.version
                            ),
                        )),
                        true,
                    );
                }
                if c.importing_country != self.country {
                    return (
                        ReceivedStatus::Invalid,
                        Some((
                            "WRONG_IMPORTING_COUNTRY".into(),
                            format!("the certificate is for {}", c.importing_country),
                        )),
                        true,
                    );
                }
                (ReceivedStatus::Valid, None, true)
            }
        }
    }
}

fn id_of(raw: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
        .filter(|s| originlink_exchange::id::is_uuid(s))
        .unwrap_or_default()
}

fn refuse(status: StatusCode, e: ExchangeError) -> Response {
    (status, axum::Json(serde_json::json!({"code": e.code, "message": e.message, "field": e.field})))
        .into_response()
}

/// `POST /exchange/v1/messages`: a batch pushed by a gateway or a direct partner.
pub(crate) async fn inbound(
    State(state): State<AppState>,
    peer: Option<axum::Extension<PeerCert>>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Some(x) = state.exchange.clone() else {
        return refuse(
            StatusCode::NOT_FOUND,
            ExchangeError::new("EXCHANGE_NOT_CONFIGURED", None, "this node has no [exchange] configuration"),
        );
    };
    let der = peer.and_then(|p| p.0.0.clone());
    let now = state.clock.now();
    let peer = match x.directory.identify(der.as_deref().map(Vec::as_slice), now) {
        Ok(p) => p.clone(),
        Err(e) if e.code == "CLIENT_CERT_REQUIRED" => return refuse(StatusCode::UNAUTHORIZED, e),
        Err(e) => return refuse(StatusCode::FORBIDDEN, e),
    };
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                ExchangeError::new("BATCH_TOO_LARGE", None, "the batch is larger than 32 MiB"),
            );
        }
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                ExchangeError::new("BATCH_MALFORMED", None, e.body_text()),
            );
        }
    };
    let batch = match Batch::parse(&body) {
        Ok(b) => b,
        Err(e) if e.code == "BATCH_TOO_LARGE" => return refuse(StatusCode::PAYLOAD_TOO_LARGE, e),
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let raws = batch.messages.iter().map(|m| m.get().as_bytes().to_vec()).collect();
    let acks = x.process(&state, &peer, raws).await;
    if acks.is_empty() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            ExchangeError::new("STORAGE_UNAVAILABLE", None, "the messages could not be stored; retry"),
        );
    }
    axum::Json(BatchResponse { acks }).into_response()
}

/// Runs the outbox worker (and the pull worker when configured) until `stop` fires.
pub fn spawn_workers(state: AppState, stop: tokio::sync::watch::Receiver<bool>) {
    let Some(x) = state.exchange.clone() else { return };
    if x.pull {
        tokio::spawn(pull_loop(state.clone(), x.clone(), stop.clone()));
    }
    // Two workers, so one batch can be on the wire while the next is being claimed; leases
    // keep them from taking the same messages.
    tokio::spawn(outbox_loop(state.clone(), x.clone(), stop.clone()));
    tokio::spawn(outbox_loop(state, x, stop));
}

async fn outbox_loop(state: AppState, x: Arc<Exchange>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let lease = Duration::from_secs(30);
    loop {
        if *stop.borrow() {
            return;
        }
        let now = state.clock.now();
        let rows = match state.store.claim_outbox(now, lease, (x.batch * 4) as i64).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "claiming the outbox failed");
                Vec::new()
            }
        };
        if rows.is_empty() {
            tokio::select! {
                _ = x.wake.notified() => {}
                _ = tokio::time::sleep(x.poll) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        let mut groups: HashMap<Option<String>, Vec<originlink_store::OutboxRow>> = HashMap::new();
        for r in rows {
            groups.entry(x.route(&r.recipient)).or_default().push(r);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (url, rows) in groups {
            let (state, x) = (state.clone(), x.clone());
            tasks.spawn(async move { send_group(&state, &x, url, rows).await });
        }
        while tasks.join_next().await.is_some() {}
    }
}

async fn send_group(
    state: &AppState,
    x: &Exchange,
    url: Option<String>,
    rows: Vec<originlink_store::OutboxRow>,
) {
    let Some(url) = url else {
        fail_all(state, x, &rows, "NO_ROUTE: no gateway and no direct link for the recipient").await;
        return;
    };
    let client = match x.client(&url) {
        Ok(c) => c,
        Err(e) => {
            fail_all(state, x, &rows, &e).await;
            return;
        }
    };
    for chunk in rows.chunks(x.batch) {
        let body = Batch::encode(chunk.iter().map(|r| r.body.as_slice()));
        let answer = client.request(hyper::Method::POST, originlink_exchange::MESSAGES_PATH, body).await;
        let resp = match answer {
            Ok((s, b)) if s == StatusCode::OK => match serde_json::from_slice::<BatchResponse>(&b) {
                Ok(r) => r,
                Err(e) => {
                    fail_all(state, x, chunk, &format!("unreadable answer: {e}")).await;
                    continue;
                }
            },
            Ok((s, b)) => {
                let msg = format!("HTTP {s}: {}", String::from_utf8_lossy(&b[..b.len().min(300)]));
                fail_all(state, x, chunk, &msg).await;
                continue;
            }
            Err(e) => {
                fail_all(state, x, chunk, &e.to_string()).await;
                continue;
            }
        };
        let by_id: HashMap<&str, &Ack> = resp.acks.iter().map(|a| (a.id.as_str(), a)).collect();
        let mut done = Vec::new();
        for r in chunk {
            match by_id.get(r.id.as_str()) {
                Some(a) if a.result == Delivery::Refused => {
                    let why = format!(
                        "{}: {}",
                        a.code.as_deref().unwrap_or("REFUSED"),
                        a.message.as_deref().unwrap_or_default()
                    );
                    tracing::warn!(message = %r.id, %why, "message refused; dead letter");
                    if let Err(e) = state.store.outbox_failed(&r.id, &why, state.clock.now(), true).await {
                        tracing::warn!(error = %e, "recording a refusal failed");
                    }
                }
                Some(_) => done.push(r.id.clone()),
                None => fail_all(state, x, std::slice::from_ref(r), "no acknowledgement in the answer").await,
            }
        }
        if let Err(e) = state.store.outbox_delivered(&done).await {
            // The lease expires and they are sent again; the receiver deduplicates.
            tracing::warn!(error = %e, "recording deliveries failed");
        }
        state.metrics.exchange_sent.fetch_add(done.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn fail_all(state: &AppState, x: &Exchange, rows: &[originlink_store::OutboxRow], why: &str) {
    let now = state.clock.now();
    for r in rows {
        let attempts = u32::try_from(r.attempts).unwrap_or(u32::MAX).saturating_add(1);
        let dead = x.backoff.is_dead(attempts);
        let delay = x.backoff.delay(attempts.saturating_sub(1), backoff::jitter());
        let next = now + chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::seconds(60));
        if let Err(e) = state.store.outbox_failed(&r.id, why, next, dead).await {
            tracing::warn!(error = %e, "recording a failed attempt failed");
        }
    }
    tracing::debug!(count = rows.len(), %why, "delivery attempt failed");
}

async fn pull_loop(state: AppState, x: Arc<Exchange>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(url) = x.gateway.clone() else {
        tracing::error!("exchange.pull is set but there is no gateway");
        return;
    };
    let gateway_peer = Peer::Gateway { id: "gateway".into(), url: url.clone() };
    loop {
        if *stop.borrow() {
            return;
        }
        let mut idle = true;
        match x.client(&url) {
            Err(e) => tracing::warn!(error = %e, "pull: no client"),
            Ok(client) => {
                let req = serde_json::json!({"max": x.batch}).to_string().into_bytes();
                match client.request(hyper::Method::POST, "/exchange/v1/pull", req).await {
                    Ok((s, b)) if s == StatusCode::OK => {
                        if let Ok(batch) = Batch::parse(&b) {
                            idle = false;
                            let raws = batch.messages.iter().map(|m| m.get().as_bytes().to_vec()).collect();
                            let acks = x.process(&state, &gateway_peer, raws).await;
                            if !acks.is_empty() {
                                let body = serde_json::to_vec(&serde_json::json!({ "acks": acks }))
                                    .unwrap_or_default();
                                if let Err(e) =
                                    client.request(hyper::Method::POST, "/exchange/v1/pull/ack", body).await
                                {
                                    tracing::warn!(error = %e, "pull: acknowledging failed");
                                }
                            }
                        }
                    }
                    Ok((s, _)) => tracing::warn!(status = %s, "pull refused"),
                    Err(e) => tracing::debug!(error = %e, "pull failed"),
                }
            }
        }
        if idle {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}
