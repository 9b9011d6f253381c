//! The node's metrics, kept and exposed by `prometheus-client` (OpenMetrics text at
//! `/metrics`): counters of what happened, latency histograms (requests, approvals,
//! deliveries) so operators see distributions rather than averages, and gauges of the
//! exchange's queues, read from storage when scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of the request counter and histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusClass {
    /// `2xx`, `4xx` …
    pub status: &'static str,
}

/// The node's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// HTTP requests answered, by status class.
    pub requests: Family<StatusClass, Counter>,
    /// Time to answer a request, by status class.
    pub request_seconds: Family<StatusClass, Histogram, fn() -> Histogram>,
    /// Applications created.
    pub applications_created: Counter,
    /// Console sign-ins refused (wrong name or password).
    pub sign_ins_failed: Counter,
    /// Applications approved (certificates signed and stored).
    pub approvals: Counter,
    /// Time to approve: load, number, sign, store, enqueue.
    pub approval_seconds: Histogram,
    /// Applications rejected.
    pub rejections: Counter,
    /// Certificates revoked.
    pub revocations: Counter,
    /// Messages the next hop acknowledged (the outbox let go of them).
    pub exchange_sent: Counter,
    /// Time from sending a batch to the next hop's acknowledgement.
    pub delivery_seconds: Histogram,
    /// Inbound envelopes whose sender was proven by a verified manifest of their batch.
    pub exchange_by_manifest: Counter,
    /// Inbound envelopes whose sender was proven by their own signature (version 1, or no
    /// verified manifest listed them).
    pub exchange_by_signature: Counter,
    /// Inbound messages refused (their sender may not say them, or they are not acceptable).
    pub exchange_refused: Counter,
    /// Inbound messages quarantined on arrival (their payload can never be processed).
    pub exchange_quarantined: Counter,
    /// Outgoing messages waiting to be delivered (read from storage when scraped).
    pub outbox_pending: Gauge,
    /// Outgoing messages given up on.
    pub outbox_dead: Gauge,
    /// Inbound messages held for an earlier version.
    pub inbox_held: Gauge,
    /// Inbound messages in quarantine now (kept across restarts, unlike the counters).
    pub quarantined: Gauge,
}

fn latency() -> Histogram {
    // 0.5 ms to ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency),
            applications_created: Counter::default(),
            sign_ins_failed: Counter::default(),
            approvals: Counter::default(),
            approval_seconds: latency(),
            rejections: Counter::default(),
            revocations: Counter::default(),
            exchange_sent: Counter::default(),
            delivery_seconds: latency(),
            exchange_by_manifest: Counter::default(),
            exchange_by_signature: Counter::default(),
            exchange_refused: Counter::default(),
            exchange_quarantined: Counter::default(),
            outbox_pending: Gauge::default(),
            outbox_dead: Gauge::default(),
            inbox_held: Gauge::default(),
            quarantined: Gauge::default(),
        };
        let r = &mut m.registry;
        r.register("originlink_http_requests", "HTTP requests answered, by status class", m.requests.clone());
        r.register("originlink_http_request_seconds", "Time to answer a request", m.request_seconds.clone());
        r.register("originlink_applications_created", "Applications created", m.applications_created.clone());
        r.register("originlink_sign_ins_failed", "Console sign-ins refused", m.sign_ins_failed.clone());
        r.register(
            "originlink_approvals",
            "Applications approved: certificates signed and stored",
            m.approvals.clone(),
        );
        r.register(
            "originlink_approval_seconds",
            "Time to approve: number, sign, store and enqueue",
            m.approval_seconds.clone(),
        );
        r.register("originlink_rejections", "Applications rejected", m.rejections.clone());
        r.register("originlink_revocations", "Certificates revoked", m.revocations.clone());
        r.register(
            "originlink_exchange_sent",
            "Messages acknowledged by the next hop",
            m.exchange_sent.clone(),
        );
        r.register(
            "originlink_exchange_delivery_seconds",
            "Time from sending a batch to the next hop's acknowledgement",
            m.delivery_seconds.clone(),
        );
        r.register(
            "originlink_exchange_envelopes_by_manifest",
            "Inbound envelopes whose sender a verified manifest of their batch proved (one signature per batch)",
            m.exchange_by_manifest.clone(),
        );
        r.register(
            "originlink_exchange_envelopes_by_signature",
            "Inbound envelopes whose sender their own signature proved",
            m.exchange_by_signature.clone(),
        );
        r.register("originlink_exchange_refused", "Inbound messages refused", m.exchange_refused.clone());
        r.register(
            "originlink_exchange_quarantined_arrivals",
            "Inbound messages quarantined on arrival: their payload can never be processed",
            m.exchange_quarantined.clone(),
        );
        r.register(
            "originlink_exchange_outbox_pending",
            "Outgoing messages waiting to be delivered",
            m.outbox_pending.clone(),
        );
        r.register(
            "originlink_exchange_outbox_dead",
            "Outgoing messages given up on (dead letters)",
            m.outbox_dead.clone(),
        );
        r.register(
            "originlink_exchange_held",
            "Inbound messages held for an earlier version",
            m.inbox_held.clone(),
        );
        r.register(
            "originlink_exchange_quarantined",
            "Inbound messages in quarantine: they can never be processed and wait for the operator \
             (GET /api/v1/exchange/quarantine)",
            m.quarantined.clone(),
        );
        m
    }
}

impl Metrics {
    /// The media type of [`Metrics::render`].
    pub const CONTENT_TYPE: &'static str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

    /// Records one answered request.
    pub fn record(&self, status: u16, seconds: f64) {
        let status = match status / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        };
        let class = StatusClass { status };
        self.requests.get_or_create(&class).inc();
        self.request_seconds.get_or_create(&class).observe(seconds);
    }

    /// Sets the queue gauges (read from storage when scraped).
    pub fn set_queues(&self, outbox_pending: i64, outbox_dead: i64, held: i64, quarantined: i64) {
        self.outbox_pending.set(outbox_pending);
        self.outbox_dead.set(outbox_dead);
        self.inbox_held.set(held);
        self.quarantined.set(quarantined);
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}
