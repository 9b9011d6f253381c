//! The node's side of the exchange (`docs/protocol.md`): sealing outgoing envelopes (written
//! to the outbox by the store in the same transaction as the change), the outbox worker that
//! pushes them to the gateway or a direct partner, the inbound endpoint that checks, verifies
//! and applies what arrives, and the pull worker for nodes that cannot accept connections.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use originlink_exchange::backoff::{self, Backoff};
use originlink_exchange::body::{
    Ack, Batch, BatchResponse, BusinessStatus, Delivery, MessageBody, Reason, RevokedBody, StatusBody,
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
use crate::metrics::Metrics;
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
        let via = match peer {
            Peer::Node { country, .. } => format!("exchange:{country}"),
            Peer::Gateway { id, .. } => format!("exchange:gateway:{id}"),
        };
        // Refused here, before the store: recorded for the operator (the store records its own).
        let mut refusals = Vec::new();
        for (i, r) in checked.into_iter().enumerate() {
            match r {
                Err(r) => {
                    acks[i] = Some(Ack::refused(r.id.clone(), &r.error));
                    refusals.push(r.record(&via, now));
                }
                Ok(inb) => {
                    slots.push(i);
                    inbound.push(inb);
                }
            }
        }
        let mut refused = refusals.len() as u64;
        if !refusals.is_empty() {
            for r in &refusals {
                tracing::warn!(
                    message = %r.message_id, from = %r.from_country, via = %r.via, code = %r.code,
                    reason = %r.reason, "inbound message refused"
                );
            }
            if let Err(e) = state.store.record_refused(refusals).await {
                tracing::warn!(error = %e, "recording refused messages failed");
            }
        }
        if !inbound.is_empty() {
            let ids: Vec<String> = inbound.iter().map(|m| m.message_id.clone()).collect();
            // Quarantined on arrival: the code and the reason go back in the acknowledgement.
            let quarantined: Vec<Option<String>> = inbound.iter().map(|m| m.quarantine.clone()).collect();
            // Who said what, to word a refusal by the store.
            let subjects: Vec<(String, String)> =
                inbound.iter().map(|m| (m.from_country.clone(), subject(&m.kind))).collect();
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
            let answered: Vec<Option<String>> = inbound
                .iter()
                .map(|m| match &m.kind {
                    InboundKind::VerificationResponse { request_message_id, .. } => {
                        Some(request_message_id.clone())
                    }
                    _ => None,
                })
                .collect();
            match state.store.apply_inbound(&Ctx::new(via, now), inbound).await {
                Ok(applied) => {
                    for (k, a) in applied.into_iter().enumerate() {
                        let (slot, id) = (slots[k], ids[k].clone());
                        let mut ack = match (a, &quarantined[k]) {
                            (Applied::Applied, Some(reason)) => {
                                Metrics::inc(&state.metrics.exchange_quarantined);
                                let (code, message) =
                                    reason.split_once(": ").unwrap_or(("NOT_READABLE", reason));
                                let mut ack = Ack::ok(id, Delivery::NotReadable);
                                ack.code = Some(code.to_owned());
                                ack.message = Some(message.to_owned());
                                ack
                            }
                            (Applied::Applied, None) => Ack::ok(id, Delivery::Delivered),
                            (Applied::Held, _) => Ack::ok(id, Delivery::DeliveredWithWarnings),
                            (Applied::Duplicate, _) => Ack::ok(id, Delivery::Delivered),
                            (Applied::Refused(code), _) => {
                                refused += 1;
                                let (from, what) = &subjects[k];
                                let message = match code {
                                    originlink_store::STATUS_FROM_WRONG_PEER => {
                                        format!("{what} was not sent to {from}: {from} may not report on it")
                                    }
                                    originlink_store::ANSWER_FROM_WRONG_PEER => {
                                        format!("{from} was not asked {what}: it may not answer it")
                                    }
                                    _ => format!("{from} may not send this about {what}"),
                                };
                                let e = ExchangeError::new(code, Some("from"), message);
                                tracing::warn!(message = %id, %from, code, "inbound message refused");
                                Ack::refused(id, &e)
                            }
                        };
                        ack.duplicate = a == Applied::Duplicate;
                        acks[slot] = Some(ack);
                        if a != Applied::Applied {
                            continue;
                        }
                        // Nothing to decide on a certificate that cannot be read.
                        if let (None, Some((c, n))) = (&quarantined[k], &touched[k]) {
                            let (state, c, n) = (state.clone(), c.clone(), n.clone());
                            tokio::spawn(async move { crate::customs::rematch(&state, &c, &n).await });
                        }
                        if let Some(request) = answered[k].clone() {
                            let state = state.clone();
                            tokio::spawn(async move { crate::customs::after_answer(&state, &request).await });
                        }
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
        state.metrics.exchange_refused.fetch_add(refused, std::sync::atomic::Ordering::Relaxed);
        acks.into_iter().flatten().collect()
    }

    /// [`Exchange::check`] and [`Exchange::to_inbound`] for a batch, on up to four threads,
    /// results in order. A check that panics (a bug) refuses its message: the sender keeps it
    /// as a dead letter rather than retrying it into the same panic.
    fn check_all(
        &self,
        peer: &Peer,
        raws: Vec<Vec<u8>>,
        now: DateTime<Utc>,
    ) -> Vec<Result<Inbound, Box<Refused>>> {
        let one = |raw: &Vec<u8>| {
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.check(peer, raw).and_then(|env| self.to_inbound(env, now))
            }));
            match checked {
                Ok(Ok(m)) => Ok(m),
                Ok(Err((id, e))) => Err(Refused::new(raw, id, e)),
                Err(_) => Err(Refused::new(
                    raw,
                    id_of(raw),
                    ExchangeError::new("INTERNAL_ERROR", None, "checking the message failed"),
                )),
            }
        };
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
                                Err(Refused::new(
                                    b"",
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

    /// What to apply for a checked envelope, authorised against what its sender may say (a
    /// certificate only from its issuing country); [`Inbound::quarantine`] says why its payload
    /// can never be processed, when so. (What the store knows authorises the rest: a status
    /// only from a country the certificate was sent to, an answer only from the country asked.)
    fn to_inbound(&self, env: Envelope, now: DateTime<Utc>) -> Result<Inbound, (String, ExchangeError)> {
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
        // What the type requires (header members, countries, payload): the same check the
        // gateway makes at its door.
        let body = originlink_exchange::check_message(&env).map_err(|e| (id.clone(), e))?;
        let (kind, reply, quarantine) = match (h.kind, body) {
            (MessageType::CertificateIssued | MessageType::CertificateReplaced, _) => {
                let cref = h
                    .certificate
                    .clone()
                    .ok_or_else(|| bad("ENVELOPE_MALFORMED", "no certificate".into()))?;
                if cref.country != from {
                    return Err(bad(
                        "ISSUER_MISMATCH",
                        format!("{from} cannot send a certificate issued by {}", cref.country),
                    ));
                }
                let Judged { status, verdict, quarantine } =
                    self.judge(&env.payload, &cref, now).map_err(|e| (id.clone(), e))?;
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
                (kind, reply(body, &cref)?, quarantine)
            }
            (MessageType::CertificateRevoked, MessageBody::Revoked(body)) => {
                let cref = h
                    .certificate
                    .clone()
                    .ok_or_else(|| bad("ENVELOPE_MALFORMED", "no certificate".into()))?;
                if cref.country != from {
                    return Err(bad("ISSUER_MISMATCH", format!("{from} cannot revoke for {}", cref.country)));
                }
                let kind = InboundKind::Revoked {
                    issuing_country: cref.country.as_str().to_owned(),
                    number: cref.number.clone(),
                    version: cref.version,
                    reason: body.reason,
                };
                (kind, reply(StatusBody::new(BusinessStatus::Revoked), &cref)?, None)
            }
            (MessageType::StatusUpdate, MessageBody::Status(body)) => {
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
                let kind = InboundKind::Status {
                    number: cref.number,
                    version: cref.version,
                    status: body.status.as_str().to_owned(),
                    code: body.code.clone(),
                    detail: String::from_utf8_lossy(&env.payload).into_owned(),
                };
                (kind, vec![], None)
            }
            (MessageType::VerificationRequest, MessageBody::VerificationRequest(body)) => {
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
                let kind = InboundKind::VerificationRequest {
                    request_message_id: id.clone(),
                    issuing_country: cref.country.as_str().to_owned(),
                    number: cref.number,
                    questions: serde_json::to_string(&body.questions).unwrap_or_default(),
                    deadline: body.deadline,
                };
                (kind, vec![], None)
            }
            (MessageType::VerificationResponse, MessageBody::VerificationResponse(body)) => {
                let request = h.correlation_id.clone().ok_or_else(|| {
                    (
                        id.clone(),
                        ExchangeError::new("ENVELOPE_MALFORMED", Some("correlation_id"), "names no request"),
                    )
                })?;
                let kind = InboundKind::VerificationResponse {
                    request_message_id: request,
                    answer: body.answer,
                    outcome: body.outcome,
                };
                (kind, vec![], None)
            }
            (other, _) => (
                InboundKind::Other {
                    kind: other.as_str().to_owned(),
                    detail: String::from_utf8_lossy(&env.payload).into_owned(),
                },
                vec![],
                None,
            ),
        };
        // No database text holds a NUL character (PostgreSQL refuses it): such a message could
        // never be stored, and would fail its whole batch at every retry.
        let texts: Vec<&str> = match &kind {
            InboundKind::Revoked { reason, .. } => vec![reason],
            InboundKind::Status { code, detail, .. } => vec![code, detail],
            InboundKind::VerificationResponse { answer, outcome, .. } => vec![answer, outcome],
            _ => vec![],
        };
        if texts.iter().any(|t| t.contains('\0')) {
            return Err((
                id,
                ExchangeError::new("ENVELOPE_MALFORMED", Some("payload"), "a text holds a NUL character"),
            ));
        }
        Ok(Inbound { message_id: id, from_country: from.as_str().to_owned(), kind, reply, quarantine })
    }

    /// Verifies a received certificate under the trust policy and checks that it is the one
    /// the envelope names. A document issued by another country than the envelope's
    /// certificate (and sender) names is refused (`ISSUER_MISMATCH`): a member relays no other
    /// country's certificate as its own. Otherwise the status to store, the reason when not
    /// valid, and why it is quarantined when it cannot be read.
    fn judge(&self, doc: &[u8], cref: &CertRef, now: DateTime<Utc>) -> Result<Judged, ExchangeError> {
        let verdict = match self.verifier.verify(doc, now) {
            Ok(v) => v,
            Err(u) => return Ok(Judged::unreadable(u.code, u.code, &u.message)),
        };
        let stored_code = |v: &Verdict| match v {
            Verdict::Valid(_) => "NOT_READABLE",
            other => other.code(),
        };
        let limits = originlink_formats::Limits::default();
        let c = match originlink_formats::read(doc, &limits) {
            Ok((_, c)) => c,
            Err(p) => {
                let first = p.first().map(|p| format!("{}: {}", p.code, p.message)).unwrap_or_default();
                let why = format!("{first} ({} problems reading it as a certificate)", p.len());
                return Ok(Judged::unreadable(stored_code(&verdict), "NOT_READABLE", &why));
            }
        };
        // The issuing country the document names (the verifier checked a valid one against
        // its signer's trust anchor) must be the envelope's, which is the sender's.
        let issuer = match &verdict {
            Verdict::Valid(signer) => signer.country,
            _ => c.exporting_country,
        };
        for named in [issuer, c.exporting_country] {
            if named != cref.country {
                return Err(ExchangeError::new(
                    "ISSUER_MISMATCH",
                    Some("certificate"),
                    format!(
                        "the envelope names {} as issuing country of {}, the document was issued by {named}",
                        cref.country, cref.number
                    ),
                ));
            }
        }
        match verdict {
            Verdict::Valid(_) => {}
            Verdict::Invalid { reason, detail } => return Ok(Judged::invalid(reason.code(), detail)),
            Verdict::CannotVerify { reason, detail } => return Ok(Judged::invalid(reason.code(), detail)),
        }
        let number = c.number.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_default();
        if number != cref.number || i64::from(c.version) != cref.version {
            return Ok(Judged::invalid(
                "REFERENCE_MISMATCH",
                format!(
                    "the envelope names {} v{}, the document is {number} v{}",
                    cref.number, cref.version, c.version
                ),
            ));
        }
        if c.importing_country != self.country {
            return Ok(Judged::invalid(
                "WRONG_IMPORTING_COUNTRY",
                format!("the certificate is for {}", c.importing_country),
            ));
        }
        Ok(Judged { status: ReceivedStatus::Valid, verdict: None, quarantine: None })
    }
}

/// What [`Exchange::judge`] found about a received certificate.
struct Judged {
    /// Valid or invalid.
    status: ReceivedStatus,
    /// The reason code and detail when invalid.
    verdict: Option<(String, String)>,
    /// `CODE: why` when the document cannot be read at all: its message is quarantined.
    quarantine: Option<String>,
}

impl Judged {
    fn invalid(code: &str, detail: String) -> Judged {
        Judged { status: ReceivedStatus::Invalid, verdict: Some((code.to_owned(), detail)), quarantine: None }
    }

    /// Stored invalid with `stored` as its verdict; quarantined as `code: why`.
    fn unreadable(stored: &str, code: &str, why: &str) -> Judged {
        Judged {
            status: ReceivedStatus::Invalid,
            verdict: Some((stored.to_owned(), why.to_owned())),
            quarantine: Some(format!("{code}: {why}")),
        }
    }
}

/// An inbound message refused before it reached the store.
pub(crate) struct Refused {
    id: String,
    from: String,
    kind: String,
    error: ExchangeError,
}

impl Refused {
    /// The refusal of `raw` (whose id, sending country and type are read as far as they are
    /// there, for the record).
    fn new(raw: &[u8], id: String, error: ExchangeError) -> Box<Refused> {
        #[derive(serde::Deserialize, Default)]
        struct From {
            #[serde(default)]
            country: Option<String>,
        }
        #[derive(serde::Deserialize, Default)]
        struct Head {
            #[serde(default)]
            from: Option<From>,
            #[serde(default, rename = "type")]
            kind: Option<String>,
        }
        let head: Head = serde_json::from_slice(raw).unwrap_or_default();
        let short = |s: Option<String>| s.unwrap_or_default().chars().take(64).collect::<String>();
        Box::new(Refused {
            id,
            from: short(head.from.and_then(|f| f.country)),
            kind: short(head.kind),
            error,
        })
    }

    /// What the operator sees of it.
    fn record(&self, via: &str, at: DateTime<Utc>) -> originlink_store::Refusal {
        originlink_store::Refusal {
            message_id: self.id.clone(),
            from_country: self.from.clone(),
            kind: self.kind.clone(),
            via: via.to_owned(),
            code: self.error.code.to_owned(),
            reason: match &self.error.field {
                Some(f) => format!("{f}: {}", self.error.message),
                None => self.error.message.clone(),
            },
            at: originlink_store::timestamp(&at),
        }
    }
}

/// What an inbound message is about, in words: for the refusal of one its sender may not send.
fn subject(kind: &InboundKind) -> String {
    match kind {
        InboundKind::Status { number, version, .. } => format!("certificate {number} v{version}"),
        InboundKind::VerificationResponse { request_message_id, .. } => {
            format!("verification request {request_message_id}")
        }
        other => other.kind().to_owned(),
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

/// `POST /exchange/v1/messages`: a batch pushed by a gateway or a direct partner. The sender
/// is identified from the TLS handshake before a byte of the body is read; the body is then
/// read up to the batch limit and the body deadline.
pub(crate) async fn inbound(
    State(state): State<AppState>,
    peer: Option<axum::Extension<PeerCert>>,
    req: axum::extract::Request,
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
    let (parts, body) = req.into_parts();
    let body = match originlink_exchange::server::read_body(
        &parts.headers,
        body,
        originlink_exchange::body::MAX_BATCH_BYTES,
    )
    .await
    {
        Ok(b) => b,
        Err((status, e)) => return refuse(status, e),
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
