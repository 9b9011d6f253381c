//! The exchange crate's tests, one binary: the envelope as an outside implementation meets it
//! ([`envelope`]); failover between a peer's endpoints ([`failover`]).

mod envelope;
mod failover;
