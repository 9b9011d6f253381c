//! All CLI integration tests, in one test binary. Each module drives the real `originlink`
//! binary as a user would.

mod support;

mod formats;
mod node;
mod qualify;
mod trust;
