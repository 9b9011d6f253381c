//! The exchange crate's tests, one binary: the envelope as an outside implementation meets it
//! ([`envelope`]).

mod envelope;
