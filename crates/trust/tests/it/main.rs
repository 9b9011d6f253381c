//! Integration tests of `originlink-trust`, in one test binary.

mod support;

mod jcs;
mod jws;
mod keys;
mod policy;
mod status;
mod stream_diff;
mod trust_list;
