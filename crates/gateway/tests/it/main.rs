//! All gateway integration tests, in one test binary: the queue contract on both backends
//! and the gateway over real HTTPS with mutual TLS.

mod support;

mod forms;
mod hostile;
mod http;
mod manifests;
mod queue;
