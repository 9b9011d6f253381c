//! The model crate's tests, one binary: every cross-field validation rule ([`validate`]).

mod validate;
