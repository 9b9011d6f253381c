//! Inbound: checking, verifying and applying what arrives from a gateway or a direct
//! partner. [`Exchange::process`] returns the acknowledgements and what arrived that others
//! may be waiting for ([`Arrival`]); the caller acts on the latter (customs decides again).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use originlink_exchange::body::{Ack, BusinessStatus, Delivery, MessageBody, Reason, StatusBody};
use originlink_exchange::{CertRef, Envelope, ExchangeError, Manifest, MessageType, Peer, Vouched};
use originlink_store::{Applied, Ctx, Inbound, InboundKind, NewReceived, OutMessage, ReceivedStatus};
use originlink_trust::Verdict;

use super::{Arrival, Env, Exchange, Processed};

/// How the senders of a batch's envelopes were proven.
#[derive(Debug, Default)]
struct Tally {
    manifest: AtomicU64,
    signature: AtomicU64,
}

impl Exchange {
    /// Checks, verifies and applies a batch that arrived from `peer`, with the manifests that
    /// came with it (protocol version 2; none for version 1): an envelope that a verified
    /// manifest of its sender lists is not checked by its own signature again.
    pub async fn process(
        self: &Arc<Self>,
        env: &Env,
        peer: &Peer,
        raws: Vec<Vec<u8>>,
        manifests: Vec<Manifest>,
    ) -> Processed {
        let now = env.clock.now();
        let n = raws.len();
        let mut arrivals = Vec::new();
        // Checking signatures and verifying certificates is CPU work: spread it over the
        // cores, off the async threads.
        let this = self.clone();
        let who = peer.clone();
        let tally = Arc::new(Tally::default());
        let counts = tally.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let vouched = this.vouch(&who, manifests);
            let checked = this.check_all(&who, raws, &vouched, &counts, now);
            (vouched, checked)
        })
        .await;
        let Ok((vouched, checked)) = checked else { return Processed::default() };
        env.metrics.exchange_by_manifest.inc_by(tally.manifest.load(Ordering::Relaxed));
        env.metrics.exchange_by_signature.inc_by(tally.signature.load(Ordering::Relaxed));
        let refused_manifests = originlink_exchange::manifest::refusals(&vouched);
        for m in &refused_manifests {
            tracing::warn!(manifest = %m.id, code = %m.code, reason = %m.message, "manifest refused; its envelopes are checked one by one");
        }
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
            if let Err(e) = env.store.record_refused(refusals).await {
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
            match env.store.apply_inbound(&Ctx::new(via, now), inbound).await {
                Ok(applied) => {
                    for (k, a) in applied.into_iter().enumerate() {
                        let (slot, id) = (slots[k], ids[k].clone());
                        let mut ack = match (a, &quarantined[k]) {
                            (Applied::Applied, Some(reason)) => {
                                env.metrics.exchange_quarantined.inc();
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
                            arrivals
                                .push(Arrival::Certificate { issuing_country: c.clone(), number: n.clone() });
                        }
                        if let Some(request) = answered[k].clone() {
                            arrivals.push(Arrival::Answer { request_message_id: request });
                        }
                    }
                    self.wake.notify_one();
                }
                Err(e) => {
                    tracing::error!(error = %e, "applying inbound messages failed");
                    // No ack: the sender retries the whole batch.
                    return Processed::default();
                }
            }
        }
        env.metrics.exchange_refused.inc_by(refused);
        Processed { acks: acks.into_iter().flatten().collect(), arrivals, manifests: refused_manifests }
    }

    /// [`Exchange::check`] and [`Exchange::to_inbound`] for a batch, on up to four threads,
    /// results in order. A check that panics (a bug) refuses its message: the sender keeps it
    /// as a dead letter rather than retrying it into the same panic.
    fn check_all(
        &self,
        peer: &Peer,
        raws: Vec<Vec<u8>>,
        vouched: &Vouched,
        tally: &Tally,
        now: DateTime<Utc>,
    ) -> Vec<Result<Inbound, Box<Refused>>> {
        let one = |raw: &Vec<u8>| {
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.check(peer, raw, vouched, tally).and_then(|env| self.to_inbound(env, now))
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

    /// Verifies the manifests of a batch from `peer` (a node may pass on only its own; a
    /// gateway forwards every member's).
    fn vouch(&self, peer: &Peer, manifests: Vec<Manifest>) -> Vouched {
        if manifests.is_empty() {
            return Vouched::default();
        }
        let trust = self.trust();
        let client = match peer {
            Peer::Node { country, .. } => Some(*country),
            Peer::Gateway { .. } => None,
        };
        Vouched::check(manifests, client, |c| trust.directory.node_certs(c).into_iter().cloned().collect())
    }

    /// The envelope checks that need no database: form, hash, recipient, sender, signature
    /// (or a verified manifest of its sender that lists it).
    fn check(
        &self,
        peer: &Peer,
        raw: &[u8],
        vouched: &Vouched,
        tally: &Tally,
    ) -> Result<Envelope, (String, ExchangeError)> {
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
        let trust = self.trust();
        if !trust.directory.is_member(from) {
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
        let listed = !vouched.is_empty()
            && vouched.vouches(&originlink_exchange::envelope::sha256_hex(raw), from).is_some();
        if listed {
            tally.manifest.fetch_add(1, Ordering::Relaxed);
        } else {
            env.verify_signature(&trust.directory.node_certs(from)).map_err(|e| (id, e))?;
            tally.signature.fetch_add(1, Ordering::Relaxed);
        }
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
                let Judged { status, verdict, quarantine, exporter } =
                    self.judge(&env.payload, &cref, now).map_err(|e| (id.clone(), e))?;
                let body = match &verdict {
                    // A new version that verified answers `replaced` (UNCL 1373 code 10: this
                    // version is the valid one), a first version `received`.
                    None if h.kind == MessageType::CertificateReplaced => {
                        StatusBody::new(BusinessStatus::Replaced)
                    }
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
                    exporter,
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
            (MessageType::StatusList, MessageBody::StatusList) => {
                // Accepted only when signed by a registered document-signing key of its
                // issuer, which `check_message` made sure is the sender.
                let list = originlink_trust::statuslist::StatusList::verified(
                    &env.payload,
                    self.trust().verifier(),
                    now,
                )
                .map_err(|e| (id.clone(), ExchangeError::new(e.code(), Some("payload"), e.to_string())))?;
                let signed = String::from_utf8(env.payload.clone()).map_err(|_| {
                    (id.clone(), ExchangeError::new("PAYLOAD_MALFORMED", Some("payload"), "not UTF-8"))
                })?;
                let kind = InboundKind::StatusList {
                    issuer: list.issuer.as_str().to_owned(),
                    sequence: i64::try_from(list.sequence).unwrap_or(i64::MAX),
                    issued_at: originlink_store::timestamp(&list.issued_at),
                    next_update: originlink_store::timestamp(&list.next_update),
                    signed,
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
        let mut exporter = None;
        let mut judged = self.judge_read(doc, cref, now, &mut exporter)?;
        judged.exporter = exporter;
        Ok(judged)
    }

    /// [`Exchange::judge`], setting `exporter` once the document reads.
    fn judge_read(
        &self,
        doc: &[u8],
        cref: &CertRef,
        now: DateTime<Utc>,
        exporter: &mut Option<String>,
    ) -> Result<Judged, ExchangeError> {
        // The streaming verifier reads what is checked here on its way through a valid UBL
        // certificate; only otherwise is the document read in full (one parse, not two).
        let (verdict, header) = match self.trust().verifier.verify_with_header(doc, now) {
            Ok(v) => v,
            Err(u) => return Ok(Judged::unreadable(u.code, u.code, &u.message)),
        };
        let stored_code = |v: &Verdict| match v {
            Verdict::Valid(_) => "NOT_READABLE",
            other => other.code(),
        };
        let c = match header {
            Some(h) => h,
            None => match originlink_formats::read(doc, &originlink_formats::Limits::default()) {
                Ok((_, c)) => originlink_trust::SignedHeader {
                    number: c.number.as_ref().map(|n| n.as_str().to_owned()).unwrap_or_default(),
                    version: c.version,
                    exporting_country: c.exporting_country,
                    importing_country: c.importing_country,
                    exporter: c.exporter.name,
                },
                Err(p) => {
                    let first = p.first().map(|p| format!("{}: {}", p.code, p.message)).unwrap_or_default();
                    let why = format!("{first} ({} problems reading it as a certificate)", p.len());
                    return Ok(Judged::unreadable(stored_code(&verdict), "NOT_READABLE", &why));
                }
            },
        };
        *exporter = Some(c.exporter.clone());
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
        let number = &c.number;
        if *number != cref.number || i64::from(c.version) != cref.version {
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
        Ok(Judged { status: ReceivedStatus::Valid, verdict: None, quarantine: None, exporter: None })
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
    /// The exporter the certificate names, when it reads (customs search by it).
    exporter: Option<String>,
}

impl Judged {
    fn invalid(code: &str, detail: String) -> Judged {
        Judged {
            status: ReceivedStatus::Invalid,
            verdict: Some((code.to_owned(), detail)),
            quarantine: None,
            exporter: None,
        }
    }

    /// Stored invalid with `stored` as its verdict; quarantined as `code: why`.
    fn unreadable(stored: &str, code: &str, why: &str) -> Judged {
        Judged {
            status: ReceivedStatus::Invalid,
            verdict: Some((stored.to_owned(), why.to_owned())),
            quarantine: Some(format!("{code}: {why}")),
            exporter: None,
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
