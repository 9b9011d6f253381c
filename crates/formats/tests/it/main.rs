//! The formats crate's tests, one binary: edi3 JSON ([`json`]) and UBL 2.4 XML ([`xml`]).

mod json;
mod xml;
