//! All CLI integration tests, in one test binary. Each module drives the real `originlink`
//! binary as a user would.

mod support;

mod conformance;
mod customs;
mod exchange;
mod formats;
mod gateway;
mod hostile;
mod netns;
mod node;
mod qualify;
mod readme;
mod replicas;
mod trust;
