//! Integration tests of importing customs, in one test binary.

mod common;
mod decisions;
mod declaration;
mod duty;
mod ledger;
mod risk;
mod verification;
