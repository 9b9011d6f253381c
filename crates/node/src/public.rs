//! What the node publishes for anyone (a leaf: the node's state holds one, `app::status`
//! uses it): `[public]`, the per-client limit of public verifications, and a verifier over the
//! node's own CA for a node without an exchange.

use std::sync::Arc;

use originlink_trust::Verifier;

/// What the node publishes and how the public may ask: `[public]`, the per-client limit of
/// public verifications, and the node's own CA (verifying without an exchange).
#[derive(Debug)]
pub struct PublicSetup {
    /// `[public]`.
    pub config: crate::config::PublicConfig,
    /// Public verifications per client.
    pub limiter: crate::throttle::RateLimit,
    /// A verifier over this node's own CA, for a node without an exchange (`None` with one, or
    /// when the CA certificate cannot be read).
    pub local: Option<Arc<Verifier>>,
    /// The public verification page's base URL (`[public] verify_url`, else the console's
    /// public URL or listener), for QR codes printed through the JSON API.
    pub base: Option<String>,
}

impl PublicSetup {
    /// For `config`, with `ca` the authority's CA certificate file.
    pub fn new(
        config: crate::config::PublicConfig,
        ca: &std::path::Path,
        with_exchange: bool,
    ) -> PublicSetup {
        let local = (!with_exchange)
            .then(|| originlink_trust::keystore::load_certs(ca).ok())
            .flatten()
            .and_then(|cas| originlink_trust::TrustStore::from_cas(cas).ok())
            .map(|s| Arc::new(Verifier::new(s)));
        let limiter = crate::throttle::RateLimit::new(config.verify_per_minute.max(1));
        PublicSetup { base: config.verify_url.clone(), config, limiter, local }
    }
}
