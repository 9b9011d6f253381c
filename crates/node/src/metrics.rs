//! Prometheus counters (hand-written text exposition) and the request middleware: logging,
//! counting, and turning a handler panic into a logged 500.
//! The log line names method, route, status and latency: never headers, so never a token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// The node's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; 5],
    request_micros: AtomicU64,
    /// Applications created.
    pub applications_created: AtomicU64,
    /// Applications approved (certificates signed and stored).
    pub approvals: AtomicU64,
    /// Applications rejected.
    pub rejections: AtomicU64,
    /// Certificates revoked.
    pub revocations: AtomicU64,
    /// Messages the next hop acknowledged (the outbox let go of them).
    pub exchange_sent: AtomicU64,
    /// Inbound messages refused (their sender may not say them, or they are not acceptable).
    pub exchange_refused: AtomicU64,
    /// Inbound messages quarantined on arrival (their payload can never be processed).
    pub exchange_quarantined: AtomicU64,
}

impl Metrics {
    fn record(&self, status: u16, micros: u64) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.requests[class].fetch_add(1, Ordering::Relaxed);
        self.request_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Adds one to `counter`.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP originlink_http_requests_total HTTP requests answered, by status class.\n");
        out.push_str("# TYPE originlink_http_requests_total counter\n");
        for (i, c) in self.requests.iter().enumerate() {
            out.push_str(&format!(
                "originlink_http_requests_total{{status=\"{}xx\"}} {}\n",
                i + 1,
                c.load(Ordering::Relaxed)
            ));
        }
        out.push_str("# HELP originlink_http_request_seconds_total Time spent answering requests.\n");
        out.push_str("# TYPE originlink_http_request_seconds_total counter\n");
        out.push_str(&format!(
            "originlink_http_request_seconds_total {:.6}\n",
            self.request_micros.load(Ordering::Relaxed) as f64 / 1e6
        ));
        for (name, help, c) in [
            ("originlink_applications_created_total", "Applications created.", &self.applications_created),
            ("originlink_exchange_sent_total", "Messages acknowledged by the next hop.", &self.exchange_sent),
            ("originlink_exchange_refused_total", "Inbound messages refused.", &self.exchange_refused),
            (
                "originlink_exchange_quarantined_total",
                "Inbound messages quarantined on arrival: their payload can never be processed.",
                &self.exchange_quarantined,
            ),
            (
                "originlink_approvals_total",
                "Applications approved: certificates signed and stored.",
                &self.approvals,
            ),
            ("originlink_rejections_total", "Applications rejected.", &self.rejections),
            ("originlink_revocations_total", "Certificates revoked.", &self.revocations),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                c.load(Ordering::Relaxed)
            ));
        }
        out
    }

    /// The gauges read from storage, appended to [`Metrics::render`]: inbound messages in
    /// quarantine now (kept across restarts, unlike the counters).
    pub fn render_stored(quarantined: i64) -> String {
        format!(
            "# HELP originlink_exchange_quarantined Inbound messages in quarantine: they can never be \
             processed and wait for the operator (GET /api/v1/exchange/quarantine).\n\
             # TYPE originlink_exchange_quarantined gauge\noriginlink_exchange_quarantined {quarantined}\n"
        )
    }
}

/// Counts and logs every request.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    // The handler runs in its own task so that a panic (a bug) answers a logged 500 instead
    // of dropping the connection.
    let res = match tokio::spawn(next.run(req)).await {
        Ok(res) => res,
        Err(e) => {
            tracing::error!(%method, %route, panic = e.is_panic(), "handler failed");
            crate::error::ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "internal error",
            )
            .into_response()
        }
    };
    let micros = start.elapsed().as_micros() as u64;
    state.metrics.record(res.status().as_u16(), micros);
    tracing::info!(%method, %route, status = res.status().as_u16(), micros, "request");
    res
}
