//! Certificate status for anyone: this node's signed status list (its revoked and superseded
//! certificates, published at once on a change and at least every
//! `[public] status_list_refresh_minutes`, sent to every member over the exchange), the
//! partners' lists it holds, what a number and check code tell the public, and the full check
//! of an uploaded signed file.
//!
//! Invariants:
//! - a wrong number and a wrong check code get the same answer, and every lookup counts
//!   against the client's rate limit, found or not;
//! - a verdict is never VALID without a status list in force for the issuer, and never INVALID
//!   because none is at hand: that is CANNOT_VERIFY `STATUS_UNKNOWN`;
//! - the public facts are the minimal ones (issuer, number, version, issue date, importing
//!   country, status) unless the issuer's policy (`[public] show_goods`) says otherwise.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use originlink_exchange::MessageType;
use originlink_model::CountryCode;
use originlink_store::{CertificateStatus, Ctx, StoredStatusList, timestamp};
use originlink_trust::statuslist::{self, DocumentId, Entry, EntryStatus, StatusList};
use originlink_trust::{CannotVerifyReason, InvalidReason, Verdict, Verifier};
use serde::Serialize;

use super::{AppState, Error, Kind, Result};
use crate::exchange::Trust;

/// The actor of status-list changes in the audit log and the outbox.
const ACTOR: &str = "system:status-list";

/// Whichever verifier the node trusts with: the trust list in force, or its own CA.
enum Trusted {
    List(Arc<Trust>),
    Local(Arc<Verifier>),
    None,
}

impl Trusted {
    fn of(state: &AppState) -> Trusted {
        match (&state.exchange, &state.public.local) {
            (Some(x), _) => Trusted::List(x.trust()),
            (None, Some(v)) => Trusted::Local(v.clone()),
            (None, None) => Trusted::None,
        }
    }

    fn verifier(&self) -> Option<&Verifier> {
        match self {
            Trusted::List(t) => Some(t.verifier()),
            Trusted::Local(v) => Some(v),
            Trusted::None => None,
        }
    }
}

/// Signs and keeps a new status list of this node's revoked and superseded certificates (the
/// next sequence number, in force for `[public] status_list_hours`), and sends it to every
/// other member over the exchange.
pub async fn publish(state: &AppState) -> Result<StoredStatusList> {
    let me = &state.issuer.authority.country;
    let issuer = CountryCode::parse(me).map_err(|_| Error::internal(format!("country {me:?}")))?;
    let now = state.clock.now();
    let rows = state.store.status_entries().await?;
    let prev = state.store.status_list(me).await?;
    let sequence = prev.as_ref().map(|p| p.sequence + 1).unwrap_or(1);
    let entries = rows
        .iter()
        .map(|r| Entry {
            number: r.number.clone(),
            version: u32::try_from(r.version).unwrap_or(u32::MAX),
            status: match r.status {
                CertificateStatus::Revoked => EntryStatus::Revoked,
                _ => EntryStatus::Superseded,
            },
            since: DateTime::parse_from_rfc3339(&r.since).map(|t| t.with_timezone(&Utc)).unwrap_or(now),
            reason: r.reason.clone(),
            superseded_by: r.superseded_by.and_then(|v| u32::try_from(v).ok()),
        })
        .collect();
    let hours = i64::from(state.public.config.status_list_hours.max(1));
    let list = StatusList {
        format: statuslist::FORMAT.into(),
        issuer,
        sequence: u64::try_from(sequence).unwrap_or(1),
        issued_at: now,
        next_update: now + Duration::hours(hours),
        entries,
    };
    let signed = state.issuer.signer.sign_status_list(&list).map_err(Error::internal)?;
    let row = StoredStatusList {
        issuer: me.clone(),
        sequence,
        issued_at: timestamp(&now),
        next_update: timestamp(&list.next_update),
        signed: signed.clone(),
        stored_at: timestamp(&now),
    };
    // One message per other member, written with the list in one transaction: a list kept is
    // a list sent, whatever stops the process.
    let mut messages = Vec::new();
    if let Some(x) = &state.exchange {
        for to in x.trust().countries().into_iter().filter(|c| *c != x.country) {
            let m = x
                .seal(MessageType::StatusList, to, None, None, "application/json", signed.clone(), now)
                .map_err(Error::internal)?;
            messages.push(m);
        }
    }
    if !state.store.put_status_list(&Ctx::new(ACTOR.to_owned(), now), &row, messages).await? {
        // Another process published the same sequence first: its list stands.
        return state.store.status_list(me).await?.ok_or_else(Error::not_found);
    }
    state.wake_exchange();
    tracing::info!(sequence, entries = rows.len(), "status list published");
    Ok(row)
}

/// Publishes a new list when none is kept or the kept one is older than
/// `[public] status_list_refresh_minutes`; otherwise nothing.
pub async fn refresh_if_due(state: &AppState) -> Result<Option<StoredStatusList>> {
    let now = state.clock.now();
    let refresh = Duration::minutes(i64::from(state.public.config.status_list_refresh_minutes.max(1)));
    let due = match state.store.status_list(&state.issuer.authority.country).await? {
        None => true,
        Some(l) => DateTime::parse_from_rfc3339(&l.issued_at)
            .map(|t| t.with_timezone(&Utc) + refresh <= now)
            .unwrap_or(true),
    };
    if due { publish(state).await.map(Some) } else { Ok(None) }
}

/// Publishes after a certificate was revoked or superseded; a failure is logged (the next
/// refresh publishes).
pub(crate) async fn changed(state: &AppState) {
    if let Err(e) = publish(state).await {
        tracing::warn!(error = %e, "publishing the status list failed; the next refresh retries");
    }
}

/// The signed status list kept for `issuer` (this node's own, or a partner's), byte for byte.
pub async fn signed_list(state: &AppState, issuer: &str) -> Result<StoredStatusList> {
    let issuer = issuer.trim().to_ascii_uppercase();
    if CountryCode::parse(&issuer).is_err() {
        return Err(Error::invalid("INVALID_QUERY", "issuer", "issuer: a country code such as KH"));
    }
    state.store.status_list(&issuer).await?.ok_or_else(Error::not_found)
}

/// Every status list kept (without the lists), for people.
pub async fn lists(state: &AppState) -> Result<Vec<StoredStatusList>> {
    Ok(state.store.status_lists().await?)
}

/// The status list kept for `issuer`, accepted under the trust policy at `now`; `Err(why)`
/// when none is at hand or it is refused.
async fn list_for(
    state: &AppState,
    trusted: &Trusted,
    issuer: CountryCode,
    now: DateTime<Utc>,
) -> Result<std::result::Result<StatusList, String>> {
    let Some(row) = state.store.status_list(issuer.as_str()).await? else {
        return Ok(Err(format!("this node holds no status list of {issuer}")));
    };
    let Some(v) = trusted.verifier() else {
        return Ok(Err("this node has no trust list to check status lists with".into()));
    };
    Ok(StatusList::verified(&row.signed, v, now)
        .map_err(|e| format!("{issuer}'s status list is refused: {e}")))
}

/// A certificate's status as the public sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PublicStatus {
    /// Issued and neither revoked nor replaced.
    Valid,
    /// Revoked by its issuer.
    Revoked {
        /// On that day.
        on: NaiveDate,
    },
    /// Replaced by a newer version.
    Superseded {
        /// The version that replaced it.
        by_version: Option<i64>,
        /// On that day.
        on: NaiveDate,
    },
}

/// The minimal facts of a certificate a valid number and check code show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicFacts {
    /// The issuing country.
    pub issuer: String,
    /// The issuing authority's name.
    pub authority: String,
    /// The certificate number.
    pub number: String,
    /// Its version.
    pub version: i64,
    /// The issue date (box 12).
    pub issue_date: Option<NaiveDate>,
    /// The importing country.
    pub importing_country: String,
    /// Valid, revoked or superseded.
    #[serde(flatten)]
    pub status: PublicStatus,
    /// Goods and parties, only when the issuer's policy shows them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<PublicDetails>,
}

/// Goods and parties, shown publicly only under the issuer's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicDetails {
    /// The exporter's name.
    pub exporter: String,
    /// The consignee's name.
    pub consignee: String,
    /// Each goods line: description, HS code, quantity.
    pub goods: Vec<(String, String, String)>,
}

/// What a public lookup found: `None` for a wrong number or a wrong check code alike.
pub type PublicAnswer = Option<PublicFacts>;

/// Checks a certificate number and check code for anyone, counted against `client`'s limit
/// (`[public] verify_per_minute`; over it: 429 `TOO_MANY_REQUESTS`). A number this node did
/// not issue, or a code that matches no version of it, is `None`, the same answer.
pub async fn lookup(state: &AppState, client: &str, number: &str, code: &str) -> Result<PublicAnswer> {
    let now = state.clock.now();
    if let Err(wait) = state.public.limiter.check(client, now) {
        return Err(Error::new(
            Kind::Throttled,
            "TOO_MANY_REQUESTS",
            format!("too many checks from this address: try again in {} seconds", wait.num_seconds().max(1)),
        ));
    }
    let number = number.trim();
    let (Some(code), true) = (statuslist::normalize_check_code(code), (1..=64).contains(&number.len()))
    else {
        return Ok(None);
    };
    let versions = state.store.certificate_versions(number).await?;
    let Some(c) = versions.into_iter().find(|c| statuslist::check_code(&c.signed) == code) else {
        return Ok(None);
    };
    let day = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.date_naive())
            .unwrap_or_else(|| now.date_naive())
    };
    let status = match c.status {
        CertificateStatus::Issued => PublicStatus::Valid,
        CertificateStatus::Revoked => PublicStatus::Revoked { on: day(&c.status_at) },
        CertificateStatus::Superseded => {
            let newer = state.store.certificate_versions(number).await?;
            let by = newer.iter().filter(|n| n.supersedes == Some(c.id)).map(|n| n.version).max();
            PublicStatus::Superseded { by_version: by, on: day(&c.status_at) }
        }
    };
    let limits = originlink_formats::Limits::default();
    let doc = originlink_formats::read(&c.signed, &limits).ok().map(|(_, d)| d);
    let details = doc.as_ref().filter(|_| state.public.config.show_goods).map(|d| PublicDetails {
        exporter: d.exporter.name.clone(),
        consignee: d.consignee.name.clone(),
        goods: d
            .items
            .iter()
            .map(|i| (i.description.clone(), i.hs.to_string(), i.quantity.to_string()))
            .collect(),
    });
    Ok(Some(PublicFacts {
        issuer: state.issuer.authority.country.clone(),
        authority: state.issuer.authority.name.clone(),
        number: c.number.clone(),
        version: c.version,
        issue_date: doc.as_ref().and_then(|d| d.issue_date()),
        importing_country: doc.as_ref().map(|d| d.importing_country.as_str().to_owned()).unwrap_or_default(),
        status,
        details,
    }))
}

/// One step of a file's verification, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `signature`, `issuer`, `signing_key`, `status`.
    pub check: &'static str,
    /// `pass`, `fail`, `unknown` (could not be decided) or `not_checked` (an earlier step
    /// failed).
    pub outcome: &'static str,
    /// In words.
    pub detail: String,
}

/// The verdict on an uploaded signed certificate, every check in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileCheck {
    /// `VALID`, `INVALID` or `CANNOT_VERIFY`.
    pub verdict: &'static str,
    /// `VALID` or the reason code (`REVOKED`, `SUPERSEDED`, `STATUS_UNKNOWN`, `TAMPERED` …).
    pub code: &'static str,
    /// Why, in words.
    pub detail: String,
    /// Signature, issuer trusted, signing key valid at signing, status current.
    pub steps: Vec<Step>,
    /// Which certificate the file says it is, when it reads.
    pub issuer: Option<String>,
    /// Its number.
    pub number: Option<String>,
    /// Its version.
    pub version: Option<u32>,
    /// Its issue date.
    pub issue_date: Option<NaiveDate>,
    /// Its importing country.
    pub importing_country: Option<String>,
    /// The check code of the file (what is printed beside its QR code).
    pub check_code: String,
}

/// Verifies a signed certificate (XML or JSON) under the trust policy with the trust list and
/// the status lists this node holds.
pub async fn verify_file(state: &AppState, doc: Vec<u8>) -> Result<FileCheck> {
    let now = state.clock.now();
    let trusted = Trusted::of(state);
    let id = statuslist::identify(&doc);
    let verdict = match trusted.verifier() {
        None => Ok(Verdict::CannotVerify {
            reason: CannotVerifyReason::TrustListMissing,
            detail: "this node has no trust list or CA certificate to verify with".into(),
        }),
        Some(v) => v.verify(&doc, now),
    };
    let verdict = match verdict {
        Ok(v) => v,
        Err(u) => {
            return Err(Error::invalid(
                "DOCUMENT_UNREADABLE",
                "file",
                format!(
                    "the file is not a signed certificate this page can read ({}: {})",
                    u.code, u.message
                ),
            ));
        }
    };
    let signature_verdict = verdict.clone();
    let verdict = match &id {
        Ok(id) if verdict.is_valid() => {
            let list = list_for(state, &trusted, id.issuer, now).await?;
            statuslist::with_status(verdict, id, list.as_ref().map_err(String::as_str), now)
        }
        _ => verdict,
    };
    Ok(file_check(&doc, id.ok(), &signature_verdict, &verdict))
}

/// A verdict on a document already verified, with the status list this node holds for its
/// issuer taken into account (what customs sees on a received certificate).
pub async fn with_status(state: &AppState, doc: &[u8], verdict: Verdict) -> Result<Verdict> {
    let now = state.clock.now();
    let Ok(id) = statuslist::identify(doc) else { return Ok(verdict) };
    if !verdict.is_valid() {
        return Ok(verdict);
    }
    let trusted = Trusted::of(state);
    let list = list_for(state, &trusted, id.issuer, now).await?;
    Ok(statuslist::with_status(verdict, &id, list.as_ref().map_err(String::as_str), now))
}

/// A received certificate's document verified now, status included.
pub async fn check_document(state: &AppState, doc: &[u8]) -> Result<Verdict> {
    let now = state.clock.now();
    let trusted = Trusted::of(state);
    let Some(v) = trusted.verifier() else {
        return Ok(Verdict::CannotVerify {
            reason: CannotVerifyReason::TrustListMissing,
            detail: "this node has no trust list".into(),
        });
    };
    let verdict = match v.verify(doc, now) {
        Ok(v) => v,
        Err(u) => {
            return Ok(Verdict::invalid(InvalidReason::Malformed, format!("{}: {}", u.code, u.message)));
        }
    };
    with_status(state, doc, verdict).await
}

/// The steps in words from the verdict on the signature alone and the final one.
fn file_check(doc: &[u8], id: Option<DocumentId>, signature: &Verdict, last: &Verdict) -> FileCheck {
    use InvalidReason as R;
    let step = |check, outcome, detail: &str| Step { check, outcome, detail: detail.to_owned() };
    let (code, detail) = match last {
        Verdict::Valid(s) => ("VALID", format!("signed by {} ({}) for {}", s.subject, s.serial, s.country)),
        Verdict::Invalid { reason, detail } => (reason.code(), detail.clone()),
        Verdict::CannotVerify { reason, detail } => (reason.code(), detail.clone()),
    };
    let mut steps = Vec::with_capacity(4);
    match signature {
        Verdict::Valid(s) => {
            steps.push(step("signature", "pass", "the signature covers the whole document and verifies"));
            steps.push(step(
                "issuer",
                "pass",
                &format!("signed by a registered key of {}'s issuing authority", s.country),
            ));
            steps.push(step(
                "signing_key",
                "pass",
                &format!("the signing certificate {} was valid and unrevoked on the issue date", s.serial),
            ));
            let (outcome, words) = match last {
                Verdict::Valid(_) => (
                    "pass",
                    "the issuer's current status list does not list it: neither revoked nor replaced"
                        .to_owned(),
                ),
                Verdict::CannotVerify { detail, .. } => ("unknown", detail.clone()),
                Verdict::Invalid { detail, .. } => ("fail", detail.clone()),
            };
            steps.push(step("status", outcome, &words));
        }
        Verdict::Invalid { reason, detail } => {
            let at = match reason {
                R::UntrustedIssuer | R::CountryMismatch | R::WrongKeyUsage | R::DocumentIncomplete => 1,
                R::Revoked | R::CertNotValidAtSigning | R::SigningTimeInFuture => 2,
                _ => 0,
            };
            let names = ["signature", "issuer", "signing_key", "status"];
            for (i, name) in names.iter().enumerate() {
                steps.push(match i.cmp(&at) {
                    std::cmp::Ordering::Less => step(name, "pass", "passed"),
                    std::cmp::Ordering::Equal => step(name, "fail", detail),
                    std::cmp::Ordering::Greater => {
                        step(name, "not_checked", "not checked: an earlier check failed")
                    }
                });
            }
        }
        Verdict::CannotVerify { detail, .. } => {
            steps.push(step("signature", "pass", "the signature verifies over the document"));
            steps.push(step("issuer", "unknown", detail));
            steps.push(step("signing_key", "not_checked", "not checked without a trust list"));
            steps.push(step("status", "not_checked", "not checked without a trust list"));
        }
    }
    let verdict = match last {
        Verdict::Valid(_) => "VALID",
        Verdict::Invalid { .. } => "INVALID",
        Verdict::CannotVerify { .. } => "CANNOT_VERIFY",
    };
    FileCheck {
        verdict,
        code,
        detail,
        steps,
        issuer: id.as_ref().map(|i| i.issuer.as_str().to_owned()),
        number: id.as_ref().map(|i| i.number.clone()),
        version: id.as_ref().map(|i| i.version),
        issue_date: id.as_ref().and_then(|i| i.issue_date),
        importing_country: id.as_ref().map(|i| i.importing_country.as_str().to_owned()),
        check_code: statuslist::check_code(doc),
    }
}

/// What an outsider needs to verify offline: the signed trust list this node holds and the
/// operator certificates (PEM) that must have signed it. Without an exchange: 404.
pub fn published_trust(state: &AppState) -> Result<(Vec<u8>, String)> {
    let x = state.exchange.as_ref().ok_or_else(Error::not_found)?;
    x.published_trust().map_err(Error::internal)
}
