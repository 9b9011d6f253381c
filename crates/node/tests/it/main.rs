//! The node's tests, one binary: the JSON API in-process ([`api`]), the use cases driven
//! directly with no HTTP ([`app`]), and the module layout ([`module_cycles`]).

mod api;
mod app;
mod customs;
mod module_cycles;
mod notify;
