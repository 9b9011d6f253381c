//! The OriginLink exchange protocol (specified in `docs/protocol.md`): how certificates and
//! their statuses travel between country nodes, directly or through a regional gateway.
//!
//! Architecture invariant: no storage and no clock here. This crate knows the wire (envelopes,
//! batches, acknowledgements, status payloads), who is who (the [`Directory`] from the signed
//! trust list) and how to talk (mutual TLS, HTTP/1.1 with kept-alive connections). Durable
//! state (outbox, inbox, the gateway's queue) lives with the node and the gateway.
//!
//! # Layout
//! - [`envelope`]: the signed envelope: build and seal, parse, verify.
//! - [`body`]: batches, acknowledgements ([`body::Delivery`]), `status.update` payloads with
//!   UNCL 1373 codes, and [`body::check_message`], the per-type checks the gateway and the
//!   node share.
//! - [`directory`]: peers and their pinned certificates from the trust list.
//! - [`tls`]: rustls configurations for both sides of mutual TLS.
//! - [`client`]: the pooled HTTP/1.1 client a sender uses.
//! - [`failover`]: a peer's several endpoints (replicas), tried in turn.
//! - [`server`]: serving an axum router with the client certificate visible to handlers.
//! - [`manifest`]: the signed manifest of a batch (protocol version 2).
//! - [`id`]: UUIDv7 message ids. [`backoff`]: retry delays.

pub mod backoff;
pub mod body;
pub mod client;
pub mod directory;
pub mod envelope;
pub mod error;
pub mod failover;
pub mod id;
pub mod manifest;
pub mod server;
pub mod tls;

pub use body::{Ack, Batch, BatchResponse, BusinessStatus, Delivery, MessageBody, StatusBody, check_message};
pub use directory::{Directory, Peer};
pub use envelope::{CertRef, Endpoint, Envelope, Header, MessageType};
pub use error::ExchangeError;
pub use manifest::{Manifest, Vouched};

/// The path of the batch endpoint on nodes and gateways (protocol version 1: every envelope
/// checked by its own signature).
pub const MESSAGES_PATH: &str = "/exchange/v1/messages";

/// The path of the version 2 batch endpoint: envelopes with the signed manifests that list
/// them ([`manifest`]). A peer that answers it 404 or 405 speaks only version 1.
pub const MESSAGES_PATH_V2: &str = "/exchange/v2/messages";
