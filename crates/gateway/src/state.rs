//! What the gateway's front doors share: the queue, the members, the clock, the counters and
//! the push workers' wake-ups. The HTTP API ([`crate::api`]) and the operator's use cases
//! ([`crate::operator`]) take it; it knows neither.

use std::collections::HashMap;
use std::sync::Arc;

use originlink_service::Clock;
use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::queue::Queue;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The queue.
    pub queue: Arc<dyn Queue>,
    /// Who is who, from the trust list.
    pub directory: Arc<crate::members::Members>,
    /// The gateway's own TLS certificate (DER): presenting it makes a client the operator.
    pub own_cert: Arc<Vec<u8>>,
    /// SHA-256 of the operator's bearer token.
    pub operator_token_sha256: Option<[u8; 32]>,
    /// Check envelope signatures.
    pub verify_signatures: bool,
    /// The highest exchange protocol version served (1: no version 2 endpoint).
    pub protocol: u8,
    /// Largest request body.
    pub body_limit: usize,
    /// Failed attempts before a message is dead (for pull acknowledgements too).
    pub max_attempts: u32,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The push workers' wake-ups, by recipient country.
    pub wake: Arc<HashMap<String, Arc<Notify>>>,
    /// The one clock: every instant the handlers use.
    pub clock: Arc<dyn Clock>,
}
