//! Counters for `/metrics` (Prometheus text format). The queue depth is read from the
//! database at scrape time, so it survives restarts and is right across replicas.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The gateway's counters (since start).
#[derive(Debug, Default)]
pub struct Metrics {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    pulled: AtomicU64,
    refused: Mutex<BTreeMap<&'static str, u64>>,
    requests_refused: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Envelopes accepted into the queue (new ones).
    pub fn accepted(&self, n: u64) {
        self.accepted.fetch_add(n, Ordering::Relaxed);
    }
    /// Envelopes acknowledged as duplicates.
    pub fn duplicates(&self, n: u64) {
        self.duplicates.fetch_add(n, Ordering::Relaxed);
    }
    /// Messages the recipient acknowledged.
    pub fn delivered(&self, n: u64) {
        self.delivered.fetch_add(n, Ordering::Relaxed);
    }
    /// Messages that became dead letters.
    pub fn failed(&self, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
    }
    /// Failed push attempts that will be retried.
    pub fn retried(&self, n: u64) {
        self.retried.fetch_add(n, Ordering::Relaxed);
    }
    /// Messages handed out by pull.
    pub fn pulled(&self, n: u64) {
        self.pulled.fetch_add(n, Ordering::Relaxed);
    }
    /// An envelope refused, by code.
    pub fn refused(&self, code: &'static str) {
        *self.refused.lock().unwrap_or_else(|p| p.into_inner()).entry(code).or_default() += 1;
    }
    /// A whole request refused (4xx), by code.
    pub fn request_refused(&self, code: &'static str) {
        *self.requests_refused.lock().unwrap_or_else(|p| p.into_inner()).entry(code).or_default() += 1;
    }

    /// The Prometheus text exposition, with the queue depth per recipient.
    pub fn render(&self, depth: &[(String, u64)]) -> String {
        let mut s = String::new();
        let counter = |s: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            &mut s,
            "originlink_gateway_accepted_total",
            "Envelopes accepted into the queue.",
            self.accepted.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "originlink_gateway_duplicates_total",
            "Envelopes acknowledged as duplicates (nothing stored).",
            self.duplicates.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "originlink_gateway_delivered_total",
            "Messages acknowledged by their recipient.",
            self.delivered.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "originlink_gateway_failed_total",
            "Messages that became dead letters.",
            self.failed.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "originlink_gateway_retries_total",
            "Failed delivery attempts that will be retried.",
            self.retried.load(Ordering::Relaxed),
        );
        counter(
            &mut s,
            "originlink_gateway_pulled_total",
            "Messages handed out to pulling nodes.",
            self.pulled.load(Ordering::Relaxed),
        );
        let labelled = |s: &mut String, name: &str, help: &str, m: &Mutex<BTreeMap<&'static str, u64>>| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter");
            for (code, v) in m.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                let _ = writeln!(s, "{name}{{code=\"{code}\"}} {v}");
            }
        };
        labelled(&mut s, "originlink_gateway_refused_total", "Envelopes refused, by code.", &self.refused);
        labelled(
            &mut s,
            "originlink_gateway_requests_refused_total",
            "Requests refused as a whole, by code.",
            &self.requests_refused,
        );
        let _ = writeln!(
            s,
            "# HELP originlink_gateway_queue_depth Pending messages per recipient.\n# TYPE originlink_gateway_queue_depth gauge"
        );
        for (recipient, n) in depth {
            // Recipients are country codes (checked on the way in); escape anyway.
            let r: String = recipient.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
            let _ = writeln!(s, "originlink_gateway_queue_depth{{recipient=\"{r}\"}} {n}");
        }
        s
    }
}
