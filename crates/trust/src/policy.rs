//! The verification policy on top of a cryptographically checked signature: the signer's
//! certificate chains to a trust anchor of the issuing country named in the document, has the
//! document-signing usage, was valid on the signing day and is not revoked.
//!
//! Validated chains are cached by (certificate SHA-256, trust-list version), so after the
//! first document of a signer the hot path is a hash lookup plus a few comparisons. The signer
//! certificate's public key is cached too, by the SHA-256 of its DER (`originlink_xmldsig::KeyCache`),
//! so XML verification does not parse the certificate again for every document.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveDate, Utc};
use originlink_model::CountryCode;

use crate::error::Result;
use crate::trustlist::{TrustList, decode_cert};
use crate::x509::Cert;

/// Why a document is invalid. Stable codes via [`InvalidReason::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidReason {
    /// The signed content changed after signing (digest mismatch).
    Tampered,
    /// The signature value does not verify with the signer's key.
    BadSignature,
    /// The certificate does not chain to a trust anchor of a member, or is not registered.
    UntrustedIssuer,
    /// The signer's (or an intermediate's) certificate is revoked, or the issuer's status list
    /// says the certificate itself is revoked.
    Revoked,
    /// A certificate of the chain was not valid on the signing day.
    CertNotValidAtSigning,
    /// The document's issuing country is not the country of the signer's trust anchor.
    CountryMismatch,
    /// The signature could cover something other than the whole document.
    SignatureWrapping,
    /// An algorithm (or key type) outside the allow-list.
    AlgorithmNotAllowed,
    /// The certificate is not a document-signing certificate (EKU, keyUsage, or a CA).
    WrongKeyUsage,
    /// The document is not signed.
    SignatureMissing,
    /// No certificate accompanies the signature.
    CertificateMissing,
    /// A certificate that does not parse.
    BadCertificate,
    /// The signature structure does not follow the format.
    Malformed,
    /// The signing day (issue date) is after the verification time.
    SigningTimeInFuture,
    /// The signed document does not say which country issued it, or when.
    DocumentIncomplete,
    /// The document is too large to verify.
    DocumentTooLarge,
    /// The issuer's status list says this version was replaced by a newer one.
    Superseded,
}

impl InvalidReason {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            InvalidReason::Tampered => "TAMPERED",
            InvalidReason::BadSignature => "BAD_SIGNATURE",
            InvalidReason::UntrustedIssuer => "UNTRUSTED_ISSUER",
            InvalidReason::Revoked => "REVOKED",
            InvalidReason::CertNotValidAtSigning => "CERT_NOT_VALID_AT_SIGNING",
            InvalidReason::CountryMismatch => "COUNTRY_MISMATCH",
            InvalidReason::SignatureWrapping => "SIGNATURE_WRAPPING",
            InvalidReason::AlgorithmNotAllowed => "ALGORITHM_NOT_ALLOWED",
            InvalidReason::WrongKeyUsage => "WRONG_KEY_USAGE",
            InvalidReason::SignatureMissing => "SIGNATURE_MISSING",
            InvalidReason::CertificateMissing => "CERTIFICATE_MISSING",
            InvalidReason::BadCertificate => "BAD_CERTIFICATE",
            InvalidReason::Malformed => "MALFORMED",
            InvalidReason::SigningTimeInFuture => "SIGNING_TIME_IN_FUTURE",
            InvalidReason::DocumentIncomplete => "DOCUMENT_INCOMPLETE",
            InvalidReason::DocumentTooLarge => "DOCUMENT_TOO_LARGE",
            InvalidReason::Superseded => "SUPERSEDED",
        }
    }

    /// From an `originlink-xmldsig` error code.
    pub fn from_xmldsig_code(code: &str) -> InvalidReason {
        match code {
            "TAMPERED" => InvalidReason::Tampered,
            "BAD_SIGNATURE" | "KEY_CERTIFICATE_MISMATCH" => InvalidReason::BadSignature,
            "SIGNATURE_WRAPPING" => InvalidReason::SignatureWrapping,
            "ALGORITHM_NOT_ALLOWED" | "BAD_KEY" => InvalidReason::AlgorithmNotAllowed,
            "SIGNATURE_MISSING" => InvalidReason::SignatureMissing,
            "CERTIFICATE_MISSING" => InvalidReason::CertificateMissing,
            "BAD_CERTIFICATE" => InvalidReason::BadCertificate,
            "DOCUMENT_TOO_LARGE" => InvalidReason::DocumentTooLarge,
            _ => InvalidReason::Malformed,
        }
    }
}

/// Why a document cannot be verified here and now: nothing is known against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CannotVerifyReason {
    /// No trust list (or trust anchor) is available.
    TrustListMissing,
    /// The trust list is past its `next_update`.
    TrustListExpired,
    /// The trust list's `issued_at` is in the future (clock skew or a bad list).
    TrustListNotYetValid,
    /// The trust list is refused: unsigned, malformed, or signed by an unexpected key.
    TrustListUntrusted,
    /// No status list of the issuer is at hand, or the one at hand is stale or refused: the
    /// certificate may have been revoked or replaced since.
    StatusUnknown,
}

impl CannotVerifyReason {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            CannotVerifyReason::TrustListMissing => "TRUST_LIST_MISSING",
            CannotVerifyReason::TrustListExpired => "TRUST_LIST_EXPIRED",
            CannotVerifyReason::TrustListNotYetValid => "TRUST_LIST_NOT_YET_VALID",
            CannotVerifyReason::TrustListUntrusted => "TRUST_LIST_UNTRUSTED",
            CannotVerifyReason::StatusUnknown => "STATUS_UNKNOWN",
        }
    }
}

/// Who signed a valid document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// Issuing country (as in the document and the trust anchor).
    pub country: CountryCode,
    /// Subject of the signing certificate.
    pub subject: String,
    /// Its serial number (hex).
    pub serial: String,
    /// SHA-256 of its DER (hex).
    pub cert_sha256: String,
    /// Signature algorithm (`ES256`/`RS256` for JSON, the XML-DSig URI's short name for XML).
    pub algorithm: String,
}

/// The outcome of verifying a document. The three kinds are never mixed up: *invalid* is a
/// definite finding against the document; *cannot verify* says nothing about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Signed by a trusted, authorised, unrevoked certificate of the issuing country.
    Valid(Signer),
    /// Definitely not acceptable.
    Invalid {
        /// Why.
        reason: InvalidReason,
        /// Details for people.
        detail: String,
    },
    /// Not decidable with the trust information at hand.
    CannotVerify {
        /// Why.
        reason: CannotVerifyReason,
        /// Details for people.
        detail: String,
    },
}

impl Verdict {
    /// `VALID`, or the reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Verdict::Valid(_) => "VALID",
            Verdict::Invalid { reason, .. } => reason.code(),
            Verdict::CannotVerify { reason, .. } => reason.code(),
        }
    }
    /// An invalid verdict.
    pub fn invalid(reason: InvalidReason, detail: impl Into<String>) -> Verdict {
        Verdict::Invalid { reason, detail: detail.into() }
    }
    /// Whether valid.
    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid(_))
    }
}

/// What the policy needs from the signed document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentFacts {
    /// The issuing country named in the document.
    pub issuing_country: CountryCode,
    /// The signing day: the certificate's issue date (box 12).
    pub signing_date: NaiveDate,
}

/// One member's trust material, parsed.
#[derive(Debug)]
struct MemberTrust {
    country: CountryCode,
    anchors: Vec<Cert>,
    /// SHA-256 of the registered signing certificates; empty = any certificate the CA issued.
    allowed_signers: HashSet<[u8; 32]>,
    revoked: HashMap<String, Option<i64>>,
    valid_from: Option<i64>,
    valid_until: Option<i64>,
}

/// Parsed trust anchors: from a signed trust list, or a single country CA (`--ca`).
#[derive(Debug)]
pub struct TrustStore {
    version: u64,
    issued_at: Option<i64>,
    next_update: Option<i64>,
    members: Vec<MemberTrust>,
}

impl TrustStore {
    /// From a verified trust list. Certificates are parsed once, here.
    pub fn from_list(list: &TrustList) -> Result<TrustStore> {
        let mut members = Vec::with_capacity(list.members.len());
        for m in &list.members {
            let anchors = m.ca_certs.iter().map(|c| decode_cert(c)).collect::<Result<Vec<_>>>()?;
            let allowed_signers =
                m.signing_certs.iter().map(|c| decode_cert(c).map(|c| *c.sha256())).collect::<Result<_>>()?;
            let revoked = m
                .revoked
                .iter()
                .map(|r| {
                    (
                        r.serial.trim_start_matches('0').to_ascii_lowercase(),
                        r.revoked_at.map(|t| t.timestamp()),
                    )
                })
                .collect();
            members.push(MemberTrust {
                country: m.country,
                anchors,
                allowed_signers,
                revoked,
                valid_from: m.valid_from.map(|t| t.timestamp()),
                valid_until: m.valid_until.map(|t| t.timestamp()),
            });
        }
        Ok(TrustStore {
            version: list.sequence,
            issued_at: Some(list.issued_at.timestamp()),
            next_update: Some(list.next_update.timestamp()),
            members,
        })
    }

    /// From country CA certificates alone (no revocation information, never outdated). Each
    /// CA's country is the `C=` of its subject.
    pub fn from_cas(cas: Vec<Cert>) -> Result<TrustStore> {
        let mut members: Vec<MemberTrust> = Vec::new();
        for ca in cas {
            let country = ca.country().and_then(|c| CountryCode::parse(c).ok()).ok_or_else(|| {
                crate::Error::CertInvalid(format!("CA {:?} names no country (C=)", ca.subject()))
            })?;
            match members.iter_mut().find(|m| m.country == country) {
                Some(m) => m.anchors.push(ca),
                None => members.push(MemberTrust {
                    country,
                    anchors: vec![ca],
                    allowed_signers: HashSet::new(),
                    revoked: HashMap::new(),
                    valid_from: None,
                    valid_until: None,
                }),
            }
        }
        Ok(TrustStore { version: 0, issued_at: None, next_update: None, members })
    }

    /// The trust-list sequence (0 for CA-only stores).
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// What the cache keeps for a signer certificate.
#[derive(Debug, Clone)]
struct Chain {
    member: usize,
    /// Intersection of the validity periods of the chain, Unix seconds.
    not_before: i64,
    not_after: i64,
    /// Serials of the signer and any intermediates.
    serials: Vec<String>,
    subject: String,
    serial: String,
    sha256: String,
}

type ChainResult = std::result::Result<Chain, (InvalidReason, String)>;

/// Validated chains by trust-list sequence, then by the signer certificate's DER (compared
/// whole on a hit; no digest is computed per lookup).
type ChainCache = RwLock<HashMap<u64, HashMap<Box<[u8]>, Arc<ChainResult>>>>;

/// Applies the policy. Holds the trust store and the chain cache; share one per process.
#[derive(Debug)]
pub struct Verifier {
    store: std::result::Result<TrustStore, (CannotVerifyReason, String)>,
    cache: ChainCache,
    /// Public keys of signer certificates by SHA-256 of their DER, for `verify_xml`.
    pub(crate) keys: originlink_xmldsig::KeyCache,
}

const DAY: i64 = 86_400;

impl Verifier {
    /// A verifier over `store`.
    pub fn new(store: TrustStore) -> Verifier {
        Verifier { store: Ok(store), cache: RwLock::new(HashMap::new()), keys: Default::default() }
    }

    /// A verifier without trust material: every document that passes the cryptographic checks
    /// gets *cannot verify* with this reason.
    pub fn unavailable(reason: CannotVerifyReason, detail: impl Into<String>) -> Verifier {
        Verifier {
            store: Err((reason, detail.into())),
            cache: RwLock::new(HashMap::new()),
            keys: Default::default(),
        }
    }

    /// The policy for a signature that has already verified cryptographically with the key of
    /// `signer_der`. `others` are certificates that came with the signature (possible
    /// intermediates). `now` is the verification time (injected, never read from the clock).
    pub fn check(
        &self,
        signer_der: &[u8],
        others: &[Vec<u8>],
        facts: &DocumentFacts,
        algorithm: &str,
        now: DateTime<Utc>,
    ) -> Verdict {
        let store = match &self.store {
            Ok(s) => s,
            Err((reason, detail)) => {
                return Verdict::CannotVerify { reason: *reason, detail: detail.clone() };
            }
        };
        let now_s = now.timestamp();
        if let Some(next) = store.next_update
            && now_s > next
        {
            return Verdict::CannotVerify {
                reason: CannotVerifyReason::TrustListExpired,
                detail: format!("trust list {} was due for replacement at {}", store.version, fmt_ts(next)),
            };
        }
        // Five minutes of clock skew are tolerated.
        if let Some(issued) = store.issued_at
            && now_s + 300 < issued
        {
            return Verdict::CannotVerify {
                reason: CannotVerifyReason::TrustListNotYetValid,
                detail: format!("trust list {} is issued at {}", store.version, fmt_ts(issued)),
            };
        }

        let cached = self
            .cache
            .read()
            .ok()
            .and_then(|c| c.get(&store.version).and_then(|m| m.get(signer_der)).cloned());
        let chain = match cached {
            Some(c) => c,
            None => {
                let c = Arc::new(build_chain(store, signer_der, others));
                if let Ok(mut w) = self.cache.write() {
                    w.entry(store.version).or_default().insert(signer_der.into(), Arc::clone(&c));
                }
                c
            }
        };
        let chain = match chain.as_ref() {
            Ok(c) => c,
            Err((reason, detail)) => return Verdict::Invalid { reason: *reason, detail: detail.clone() },
        };
        let member = &store.members[chain.member];
        if member.country != facts.issuing_country {
            return Verdict::invalid(
                InvalidReason::CountryMismatch,
                format!(
                    "the document names {} as issuing country, but the signer's trust anchor belongs to {}",
                    facts.issuing_country, member.country
                ),
            );
        }
        let day_start =
            facts.signing_date.and_hms_opt(0, 0, 0).map(|d| d.and_utc().timestamp()).unwrap_or(i64::MIN);
        let day_end = day_start.saturating_add(DAY);
        // A day of slack: the issue date is a local date, which can be ahead of UTC.
        if day_start > now_s + DAY {
            return Verdict::invalid(
                InvalidReason::SigningTimeInFuture,
                format!("issue date {} is after the verification time {}", facts.signing_date, fmt_ts(now_s)),
            );
        }
        if chain.not_before >= day_end || chain.not_after < day_start {
            return Verdict::invalid(
                InvalidReason::CertNotValidAtSigning,
                format!(
                    "signed on {}, but the certificate chain is valid from {} to {}",
                    facts.signing_date,
                    fmt_ts(chain.not_before),
                    fmt_ts(chain.not_after)
                ),
            );
        }
        if member.valid_from.is_some_and(|f| f >= day_end)
            || member.valid_until.is_some_and(|u| u < day_start)
        {
            return Verdict::invalid(
                InvalidReason::UntrustedIssuer,
                format!("{} was not a member of the network on {}", member.country, facts.signing_date),
            );
        }
        for serial in &chain.serials {
            if let Some(at) = member.revoked.get(serial) {
                let applies = at.is_none_or(|t| t < day_end);
                if applies {
                    let when = at.map(|t| format!(" since {}", fmt_ts(t))).unwrap_or_default();
                    return Verdict::invalid(
                        InvalidReason::Revoked,
                        format!("certificate serial {serial} is revoked{when}"),
                    );
                }
            }
        }
        Verdict::Valid(Signer {
            country: member.country,
            subject: chain.subject.clone(),
            serial: chain.serial.clone(),
            cert_sha256: chain.sha256.clone(),
            algorithm: algorithm.to_owned(),
        })
    }

    /// How many signer chains are cached (for tests and metrics).
    pub fn cached_chains(&self) -> usize {
        self.cache.read().map(|c| c.values().map(HashMap::len).sum()).unwrap_or(0)
    }

    /// How many certificates' public keys are cached for XML verification (for tests and metrics).
    pub fn cached_keys(&self) -> usize {
        self.keys.len()
    }
}

fn build_chain(store: &TrustStore, signer_der: &[u8], others: &[Vec<u8>]) -> ChainResult {
    let signer = Cert::from_der(signer_der).map_err(|e| (InvalidReason::BadCertificate, e.to_string()))?;
    if signer.key_algorithm().is_none() {
        return Err((
            InvalidReason::AlgorithmNotAllowed,
            "signer key is not ECDSA P-256 or RSA 2048..8192".into(),
        ));
    }
    if !signer.is_document_signer() {
        return Err((
            InvalidReason::WrongKeyUsage,
            format!(
                "{:?} is not a document-signing certificate (needs extended key usage {} and a \
                 signature key usage, and must not be a CA)",
                signer.subject(),
                crate::keys::DOC_SIGNING_EKU
            ),
        ));
    }
    let intermediates: Vec<Cert> =
        others.iter().filter_map(|d| Cert::from_der(d).ok()).filter(|c| c.is_ca()).collect();
    let mut path = vec![signer.clone()];
    let mut found = None;
    'walk: for _ in 0..4 {
        let current = path.last().unwrap_or(&signer);
        for (i, m) in store.members.iter().enumerate() {
            for a in &m.anchors {
                if a.is_ca() && current.is_issued_by(a) {
                    found = Some((i, a.clone()));
                    break 'walk;
                }
            }
        }
        match intermediates.iter().find(|c| !path.contains(c) && current.is_issued_by(c)) {
            Some(next) => path.push(next.clone()),
            None => break,
        }
    }
    let Some((member, anchor)) = found else {
        return Err((
            InvalidReason::UntrustedIssuer,
            format!("{:?} does not chain to a trust anchor of any member", signer.subject()),
        ));
    };
    // path = signer, then intermediates; each CA above may allow only so many below it.
    let intermediates_below = |ca_index: usize| path.len().saturating_sub(ca_index + 1) as u32;
    let anchor_ok = anchor.path_len().is_none_or(|n| n >= intermediates_below(0));
    let inter_ok = (1..path.len()).all(|i| path[i].path_len().is_none_or(|n| n >= intermediates_below(i)));
    if !anchor_ok || !inter_ok {
        return Err((
            InvalidReason::UntrustedIssuer,
            "the chain is longer than a CA's path length allows".into(),
        ));
    }
    let m = &store.members[member];
    if !m.allowed_signers.is_empty() && !m.allowed_signers.contains(signer.sha256()) {
        return Err((
            InvalidReason::UntrustedIssuer,
            format!(
                "{:?} is not a registered document-signing certificate of {}",
                signer.subject(),
                m.country
            ),
        ));
    }
    let not_before = path.iter().chain([&anchor]).map(Cert::not_before).max().unwrap_or(i64::MAX);
    let not_after = path.iter().chain([&anchor]).map(Cert::not_after).min().unwrap_or(i64::MIN);
    Ok(Chain {
        member,
        not_before,
        not_after,
        serials: path.iter().map(Cert::serial_hex).map(|s| s.trim_start_matches('0').to_owned()).collect(),
        subject: signer.subject().to_owned(),
        serial: signer.serial_hex(),
        sha256: hex::encode(signer.sha256()),
    })
}

fn fmt_ts(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0).map(|d| d.to_rfc3339()).unwrap_or_else(|| t.to_string())
}
