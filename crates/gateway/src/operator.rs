//! What the gateway's operator sees and does, written once for both front doors: the JSON
//! operator endpoints ([`crate::api`]) and the operator's web console (`originlink-console`).
//! Members with their queues, finding a message by id or by the certificate it is about,
//! dead letters and putting one back, the traffic of the last hour, the trust list in force.
//!
//! Nothing here knows HTTP; every list is bounded and every query reads an index.

use chrono::{DateTime, Duration, DurationRound as _, Utc};
use originlink_model::CountryCode;
use serde::Serialize;

use crate::queue::{QueueError, RecipientStats, Tracking};
use crate::state::Shared;

/// Minutes the traffic covers (the current one included).
pub const TRAFFIC_MINUTES: i64 = 60;
/// The most messages a search by certificate answers.
pub const SEARCH_LIMIT: usize = 50;
/// The most dead letters one list shows.
pub const DEAD_LIMIT: usize = 100;

/// Why an operator's request was not answered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// What was asked is not well formed: the field, a stable code, and what to do.
    #[error("{message}")]
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// Stable code.
        code: &'static str,
        /// What is wrong and what to do, in words.
        message: String,
    },
    /// The queue's database failed.
    #[error("storage: {0}")]
    Queue(#[from] QueueError),
}

impl Error {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { code, .. } => code,
            Error::Queue(_) => "QUEUE_UNAVAILABLE",
        }
    }
}

/// How a member gets its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The gateway's push worker delivers to its node.
    Push,
    /// Its node pulls (configured `pull_only`, or no usable node URL).
    Pull,
}

impl Mode {
    /// `push` or `pull`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Push => "push",
            Mode::Pull => "pull",
        }
    }
}

/// One member as the operator watches it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberStatus {
    /// Its country.
    pub country: String,
    /// Push or pull.
    pub mode: Mode,
    /// Its queue.
    #[serde(flatten)]
    pub stats: RecipientStats,
}

fn mode_of(s: &Shared, country: &str) -> Mode {
    // A push worker was started exactly for the members it wakes.
    if s.wake.contains_key(country) { Mode::Push } else { Mode::Pull }
}

/// Every member of the trust list in force, by country code, with its queue.
pub async fn members(s: &Shared) -> Result<Vec<MemberStatus>, Error> {
    let mut countries: Vec<String> =
        s.directory.get().members().iter().map(|c| c.as_str().to_owned()).collect();
    countries.sort();
    let mut out = Vec::with_capacity(countries.len());
    for country in countries {
        let stats = s.queue.recipient_stats(&country).await?;
        out.push(MemberStatus { mode: mode_of(s, &country), country, stats });
    }
    Ok(out)
}

/// How long a member may take nothing while its messages are retried before the operator is
/// told it is unreachable.
pub const UNREACHABLE_AFTER: Duration = Duration::minutes(15);

/// What needs the operator, from the members' queues: dead letters, and members whose
/// messages are being retried with no delivery for [`UNREACHABLE_AFTER`] (or ever).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Alert {
    /// Dead letters wait for the operator (retry or let go).
    DeadLetters {
        /// The member.
        country: String,
        /// How many.
        count: u64,
    },
    /// Nothing delivered for a while, and the last attempt failed.
    Unreachable {
        /// The member.
        country: String,
        /// Minutes since its last delivery (`None`: it never had one).
        minutes: Option<i64>,
        /// Messages waiting.
        pending: u64,
        /// Why the last attempt failed.
        error: String,
    },
}

/// The alerts of `members` at `now`, dead letters first.
pub fn alerts(members: &[MemberStatus], now: DateTime<Utc>) -> Vec<Alert> {
    let dead = members
        .iter()
        .filter(|m| m.stats.failed > 0)
        .map(|m| Alert::DeadLetters { country: m.country.clone(), count: m.stats.failed });
    let dark = members.iter().filter_map(|m| {
        let error = m.stats.retry_error.clone()?;
        let minutes = m.stats.last_delivered_at.map(|t| (now - t).num_minutes());
        let quiet = minutes.is_none_or(|x| x >= UNREACHABLE_AFTER.num_minutes());
        (m.stats.pending > 0 && quiet).then(|| Alert::Unreachable {
            country: m.country.clone(),
            minutes,
            pending: m.stats.pending,
            error,
        })
    });
    dead.chain(dark).collect()
}

/// The tracking record of message `id` (any sender: this is the operator).
pub async fn track(s: &Shared, id: &str) -> Result<Option<Tracking>, Error> {
    let id = id.trim();
    if id.is_empty() || id.len() > 64 {
        return Err(Error::Invalid {
            field: "id",
            code: "MESSAGE_ID_INVALID",
            message: "Enter a message id, for example 0193a1c2-7b3e-7000-8000-000000000001.".into(),
        });
    }
    Ok(s.queue.track(id).await?)
}

/// Messages about certificate `number` issued by `country`, newest first (at most
/// [`SEARCH_LIMIT`]).
pub async fn by_certificate(s: &Shared, country: &str, number: &str) -> Result<Vec<Tracking>, Error> {
    let country = CountryCode::parse(&country.trim().to_ascii_uppercase()).map_err(|_| Error::Invalid {
        field: "country",
        code: "COUNTRY_INVALID",
        message: "Enter the issuing country as a two-letter code, for example KH.".into(),
    })?;
    let number = number.trim();
    if number.is_empty() || number.chars().count() > 64 {
        return Err(Error::Invalid {
            field: "number",
            code: "CERTIFICATE_NUMBER_INVALID",
            message: "Enter the certificate number as printed, for example KH-2026-000123.".into(),
        });
    }
    Ok(s.queue.by_certificate(country.as_str(), number, SEARCH_LIMIT).await?)
}

/// Dead letters, oldest first, at most `limit` (1 to 1000).
pub async fn dead(s: &Shared, limit: usize) -> Result<Vec<Tracking>, Error> {
    Ok(s.queue.dead(limit.clamp(1, 1000)).await?)
}

/// Puts dead letter `id` back in the queue and wakes its recipient's push worker: its
/// tracking record, or `None` when `id` is not a dead letter.
pub async fn retry(s: &Shared, id: &str) -> Result<Option<Tracking>, Error> {
    if !s.queue.retry(id, s.clock.now()).await? {
        return Ok(None);
    }
    tracing::info!(id = %id, "dead letter put back in the queue by the operator");
    let t = s.queue.track(id).await?;
    if let Some(n) = t.as_ref().and_then(|t| s.wake.get(&t.to)) {
        n.notify_one();
    }
    Ok(t)
}

/// The traffic of the last [`TRAFFIC_MINUTES`] minutes, one entry per minute, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// What `latency_*` measure: `delivered_at - received_at` of the messages delivered in
    /// the minute, their arithmetic mean and maximum, in milliseconds.
    pub latency: &'static str,
    /// The minutes.
    pub minutes: Vec<Minute>,
}

/// One minute of traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Minute {
    /// Its first instant (RFC 3339, UTC).
    pub minute: String,
    /// Messages accepted.
    pub received: u64,
    /// Messages delivered.
    pub delivered: u64,
    /// Mean delivery latency of the messages delivered, milliseconds (rounded).
    pub latency_mean_ms: Option<u64>,
    /// Largest delivery latency of the messages delivered, milliseconds (rounded).
    pub latency_max_ms: Option<u64>,
}

/// Traffic per minute over the last hour, counted in SQL over the queue's rows.
pub async fn traffic(s: &Shared) -> Result<Traffic, Error> {
    let now = s.clock.now();
    let this_minute = now.duration_trunc(Duration::minutes(1)).unwrap_or(now);
    let from = this_minute - Duration::minutes(TRAFFIC_MINUTES - 1);
    let until = this_minute + Duration::minutes(1);
    let rows = s.queue.traffic(from, until).await?;
    let ms = |us: i64| u64::try_from((us + 500) / 1000).unwrap_or(0);
    let mut rows = rows.into_iter().peekable();
    let mut minutes = Vec::with_capacity(TRAFFIC_MINUTES as usize);
    for i in 0..TRAFFIC_MINUTES {
        let at: DateTime<Utc> = from + Duration::minutes(i);
        let key = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match rows.next_if(|r| r.minute == at) {
            Some(r) => {
                let n = i64::try_from(r.delivered).unwrap_or(i64::MAX).max(1);
                let has = r.delivered > 0;
                minutes.push(Minute {
                    minute: key,
                    received: r.received,
                    delivered: r.delivered,
                    latency_mean_ms: has.then(|| ms(r.latency_sum_us / n)),
                    latency_max_ms: has.then(|| ms(r.latency_max_us)),
                });
            }
            None => minutes.push(Minute {
                minute: key,
                received: 0,
                delivered: 0,
                latency_mean_ms: None,
                latency_max_ms: None,
            }),
        }
    }
    Ok(Traffic { latency: "mean and max of delivered_at - received_at, ms", minutes })
}

/// The trust list in force as the operator reads it.
#[derive(Debug, Clone, Serialize)]
pub struct TrustListView {
    /// Its sequence number.
    pub sequence: u64,
    /// When the operator issued it.
    pub issued_at: String,
    /// When the next list is due.
    pub next_update: String,
    /// Whether that is past.
    pub overdue: bool,
    /// Its members, by country code.
    pub members: Vec<TrustedMember>,
    /// Its gateways.
    pub gateways: Vec<TrustedNode>,
}

/// A member of the list.
#[derive(Debug, Clone, Serialize)]
pub struct TrustedMember {
    /// Its country.
    pub country: String,
    /// Its issuing authorities.
    pub authorities: Vec<String>,
    /// Push or pull, at this gateway.
    pub mode: Mode,
    /// Its nodes.
    pub nodes: Vec<TrustedNode>,
    /// The end of its membership, when the list sets one.
    pub valid_until: Option<String>,
}

/// A node or gateway of the list: its URL and the TLS certificate that identifies it.
#[derive(Debug, Clone, Serialize)]
pub struct TrustedNode {
    /// The gateway's id (gateways only).
    pub id: Option<String>,
    /// Its URL.
    pub url: String,
    /// SHA-256 of its TLS certificate (DER), hex in pairs.
    pub fingerprint: String,
    /// When the certificate expires (RFC 3339), when it can be read.
    pub not_after: Option<String>,
}

fn node_view(id: Option<String>, url: &str, cert_b64: &str) -> TrustedNode {
    let cert = originlink_trust::trustlist::decode_cert(cert_b64).ok();
    TrustedNode {
        id,
        url: url.to_owned(),
        fingerprint: cert
            .as_ref()
            .map(|c| c.sha256().iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":"))
            .unwrap_or_else(|| "unreadable".into()),
        not_after: cert
            .and_then(|c| DateTime::from_timestamp(c.not_after(), 0))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    }
}

/// The trust list in force.
pub fn trust_list(s: &Shared) -> TrustListView {
    let list = s.directory.list();
    let secs = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut members: Vec<TrustedMember> = list
        .members
        .iter()
        .map(|m| TrustedMember {
            country: m.country.as_str().to_owned(),
            authorities: m.authorities.clone(),
            mode: mode_of(s, m.country.as_str()),
            nodes: m.nodes.iter().map(|n| node_view(None, &n.url, &n.tls_cert)).collect(),
            valid_until: m.valid_until.map(secs),
        })
        .collect();
    members.sort_by(|a, b| a.country.cmp(&b.country));
    TrustListView {
        sequence: list.sequence,
        issued_at: secs(list.issued_at),
        next_update: secs(list.next_update),
        overdue: list.next_update < s.clock.now(),
        members,
        gateways: list.gateways.iter().map(|g| node_view(Some(g.id.clone()), &g.url, &g.tls_cert)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(
        country: &str,
        pending: u64,
        failed: u64,
        last: Option<i64>,
        retry: Option<&str>,
    ) -> MemberStatus {
        let now = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z").expect("time").with_timezone(&Utc);
        MemberStatus {
            country: country.into(),
            mode: Mode::Push,
            stats: RecipientStats {
                pending,
                failed,
                last_delivered_at: last.map(|m| now - Duration::minutes(m)),
                last_error: None,
                retry_error: retry.map(str::to_owned),
            },
        }
    }

    #[test]
    fn the_operator_is_told_of_dead_letters_and_of_members_that_take_nothing() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z").expect("time").with_timezone(&Utc);
        let members = [
            member("KH", 3, 0, Some(20), Some("connection refused")),
            member("TH", 3, 0, Some(5), Some("connection refused")),
            member("VN", 2, 1, None, Some("timed out")),
            member("SG", 0, 0, Some(600), Some("connection refused")),
            member("MY", 4, 0, Some(600), None),
        ];
        let alerts = alerts(&members, now);
        assert_eq!(
            alerts,
            [
                Alert::DeadLetters { country: "VN".into(), count: 1 },
                Alert::Unreachable {
                    country: "KH".into(),
                    minutes: Some(20),
                    pending: 3,
                    error: "connection refused".into()
                },
                Alert::Unreachable {
                    country: "VN".into(),
                    minutes: None,
                    pending: 2,
                    error: "timed out".into()
                },
            ],
            "TH delivered 5 minutes ago, SG has nothing waiting, MY's attempts have not failed"
        );
    }
}
