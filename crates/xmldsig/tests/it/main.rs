//! Integration tests of originlink-xmldsig against independent tools (xmllint, xmlsec1,
//! openssl) and known attacks. One test binary, one module per concern.

mod c14n_xmllint;
mod common;
mod key_cache;
mod module_cycles;
mod roundtrip;
mod stream_diff;
mod tamper;
mod ubl_schema;
mod wrapping;
mod xmlsec_interop;
