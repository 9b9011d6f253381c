//! Integration tests of `originlink-trust`, in one test binary.

mod support;

mod jcs;
mod jws;
mod keys;
mod policy;
mod stream_diff;
mod trust_list;
