//! The gateway's metrics, kept and exposed by `prometheus-client` (OpenMetrics text at
//! `/metrics`). The queue depth (and the size of the SQLite queue's segment files) is read at
//! scrape time, so it survives restarts and is right across replicas.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A refusal's code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Code {
    code: &'static str,
}

/// A recipient country.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Recipient {
    recipient: String,
}

/// The gateway's metrics (counters since start; the queue depth from storage).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    accepted: Counter,
    duplicates: Counter,
    delivered: Counter,
    failed: Counter,
    retried: Counter,
    pulled: Counter,
    refused: Family<Code, Counter>,
    requests_refused: Family<Code, Counter>,
    push_seconds: Histogram,
    depth: Family<Recipient, Gauge>,
    segment_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            accepted: Counter::default(),
            duplicates: Counter::default(),
            delivered: Counter::default(),
            failed: Counter::default(),
            retried: Counter::default(),
            pulled: Counter::default(),
            refused: Family::default(),
            requests_refused: Family::default(),
            // 1 ms to ~33 s.
            push_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            depth: Family::default(),
            segment_bytes: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register("originlink_gateway_accepted", "Envelopes accepted into the queue", m.accepted.clone());
        r.register(
            "originlink_gateway_duplicates",
            "Envelopes acknowledged as duplicates (nothing stored)",
            m.duplicates.clone(),
        );
        r.register(
            "originlink_gateway_delivered",
            "Messages acknowledged by their recipient",
            m.delivered.clone(),
        );
        r.register("originlink_gateway_failed", "Messages that became dead letters", m.failed.clone());
        r.register(
            "originlink_gateway_retries",
            "Failed delivery attempts that will be retried",
            m.retried.clone(),
        );
        r.register("originlink_gateway_pulled", "Messages handed out to pulling nodes", m.pulled.clone());
        r.register("originlink_gateway_refused", "Envelopes refused, by code", m.refused.clone());
        r.register(
            "originlink_gateway_requests_refused",
            "Requests refused as a whole, by code",
            m.requests_refused.clone(),
        );
        r.register(
            "originlink_gateway_push_seconds",
            "Time from pushing a batch to a node to its acknowledgement",
            m.push_seconds.clone(),
        );
        r.register("originlink_gateway_queue_depth", "Pending messages per recipient", m.depth.clone());
        r.register(
            "originlink_gateway_segment_bytes",
            "Bytes of the SQLite queue's envelope segment files on disk (0 on PostgreSQL, which keeps bodies in its rows)",
            m.segment_bytes.clone(),
        );
        m
    }
}

impl Metrics {
    /// The media type of [`Metrics::render`].
    pub const CONTENT_TYPE: &'static str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

    /// Envelopes accepted into the queue (new ones).
    pub fn accepted(&self, n: u64) {
        self.accepted.inc_by(n);
    }
    /// Envelopes acknowledged as duplicates.
    pub fn duplicates(&self, n: u64) {
        self.duplicates.inc_by(n);
    }
    /// Messages the recipient acknowledged.
    pub fn delivered(&self, n: u64) {
        self.delivered.inc_by(n);
    }
    /// Messages that became dead letters.
    pub fn failed(&self, n: u64) {
        self.failed.inc_by(n);
    }
    /// Failed push attempts that will be retried.
    pub fn retried(&self, n: u64) {
        self.retried.inc_by(n);
    }
    /// Messages handed out by pull.
    pub fn pulled(&self, n: u64) {
        self.pulled.inc_by(n);
    }
    /// An envelope refused, by code.
    pub fn refused(&self, code: &'static str) {
        self.refused.get_or_create(&Code { code }).inc();
    }
    /// A whole request refused (4xx), by code.
    pub fn request_refused(&self, code: &'static str) {
        self.requests_refused.get_or_create(&Code { code }).inc();
    }
    /// How long one push of a batch took, answered or not.
    pub fn pushed(&self, seconds: f64) {
        self.push_seconds.observe(seconds);
    }

    /// The OpenMetrics text exposition, with the queue depth per recipient and the bytes of
    /// the segment files as read now.
    pub fn render(&self, depth: &[(String, u64)], segment_bytes: Option<u64>) -> String {
        self.segment_bytes.set(segment_bytes.map_or(0, |b| i64::try_from(b).unwrap_or(i64::MAX)));
        self.depth.clear();
        for (recipient, n) in depth {
            // Recipients are country codes (checked on the way in); keep them so.
            let recipient: String = recipient.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
            self.depth.get_or_create(&Recipient { recipient }).set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}
