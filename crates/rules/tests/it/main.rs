//! Integration tests of the rules engine, in one test binary.

mod cases;
mod engine;
mod input;
mod language;
mod properties;
mod tables;
