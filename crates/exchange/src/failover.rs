//! Failover between the endpoints of one peer: a member's node replicas, or a gateway's. The
//! trust list names every endpoint of a peer; a sender keeps to the one that last answered
//! and moves to the next when it cannot be reached or says it is unavailable. This is what a
//! region would otherwise need a load balancer for.
//!
//! Moving a request to another endpoint is safe because every exchange request is
//! idempotent: a batch of envelopes is applied once per message id by whoever receives it
//! (`docs/protocol.md`, "Delivery"), so an endpoint that stored a batch and died before
//! answering and a second endpoint that stores it again leave one copy.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};

use crate::client::{ClientError, PeerClient};

/// The endpoints of one peer, tried in turn.
pub struct Failover {
    clients: Vec<Arc<PeerClient>>,
    current: AtomicUsize,
    /// Whether this sender may use protocol version 2 at all (its configuration).
    v2: AtomicBool,
    /// Until when the peer is taken to speak only version 1 (it answered 404 or 405 to the
    /// version 2 path).
    v1_until: Mutex<Option<Instant>>,
}

/// How long a peer that answered the version 2 path 404 or 405 is sent version 1 before it is
/// asked again (it may have been upgraded).
pub const V1_MEMORY: Duration = Duration::from_secs(600);

impl std::fmt::Debug for Failover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<&str> = self.clients.iter().map(|c| c.base()).collect();
        write!(f, "Failover({urls:?}, current {})", self.current.load(Ordering::Relaxed))
    }
}

/// Whether an answer means "this endpoint cannot serve now; another may" (its storage is
/// down, or a proxy in front of it found nothing behind).
pub fn unavailable(status: StatusCode) -> bool {
    matches!(status, StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT)
}

impl Failover {
    /// The endpoints in the order to try them first (the first is preferred until it fails);
    /// `None` without any.
    pub fn new(clients: Vec<Arc<PeerClient>>) -> Option<Failover> {
        (!clients.is_empty()).then(|| Failover {
            clients,
            current: AtomicUsize::new(0),
            v2: AtomicBool::new(true),
            v1_until: Mutex::new(None),
        })
    }

    /// [`Failover::new`] starting at an endpoint picked at random: senders that have no
    /// preference spread over the replicas.
    pub fn spread(clients: Vec<Arc<PeerClient>>) -> Option<Failover> {
        use std::hash::BuildHasher as _;
        let f = Failover::new(clients)?;
        let pick = std::collections::hash_map::RandomState::new().hash_one(f.clients.len());
        f.current.store(usize::try_from(pick % f.clients.len() as u64).unwrap_or(0), Ordering::Relaxed);
        Some(f)
    }

    /// Keeps this sender to protocol version 1 (`false`), as a node of the previous version
    /// would be; `true` (the default) tries version 2 first.
    pub fn allow_v2(self, allow: bool) -> Failover {
        self.v2.store(allow, Ordering::Relaxed);
        self
    }

    /// Whether to send the next batch as version 2 (with a manifest): allowed, and the peer
    /// has not answered the version 2 path 404 or 405 in the last [`V1_MEMORY`].
    pub fn speaks_v2(&self) -> bool {
        if !self.v2.load(Ordering::Relaxed) {
            return false;
        }
        let mut until = self.v1_until.lock().unwrap_or_else(|p| p.into_inner());
        match *until {
            Some(t) if Instant::now() < t => false,
            Some(_) => {
                *until = None;
                true
            }
            None => true,
        }
    }

    /// Records that the peer answered the version 2 path 404 or 405: it speaks version 1.
    pub fn heard_v1(&self) {
        tracing::info!(
            endpoint = self.base(),
            "peer speaks exchange protocol version 1 only; sending version 1"
        );
        *self.v1_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + V1_MEMORY);
    }

    /// The endpoint requests go to now.
    pub fn base(&self) -> &str {
        self.clients[self.current.load(Ordering::Relaxed) % self.clients.len()].base()
    }

    /// How many endpoints.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Never: a peer has at least one endpoint.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// [`PeerClient::request`] on the current endpoint; when it cannot be reached, times out
    /// or answers 502/503/504, on each other endpoint in turn. The first endpoint that answers
    /// otherwise becomes the current one. When none does, the last failure is returned.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let body = Bytes::from(body);
        let n = self.clients.len();
        let start = self.current.load(Ordering::Relaxed) % n;
        let mut last = None;
        for k in 0..n {
            let i = (start + k) % n;
            let client = &self.clients[i];
            let answer = client.request_bytes(method.clone(), path, None, body.clone()).await;
            let why = match &answer {
                Ok((s, _)) if !unavailable(*s) => {
                    if i != start {
                        self.current.store(i, Ordering::Relaxed);
                        tracing::info!(
                            endpoint = client.base(),
                            "peer endpoint answered; sending there from now on"
                        );
                    }
                    return answer;
                }
                Ok((s, _)) => format!("HTTP {s}"),
                Err(e) => e.to_string(),
            };
            if k + 1 < n {
                let next = self.clients[(i + 1) % n].base();
                tracing::warn!(endpoint = client.base(), error = %why, next, "peer endpoint unavailable; trying the next");
            }
            last = Some(answer);
        }
        last.unwrap_or(Err(ClientError::Timeout))
    }
}
