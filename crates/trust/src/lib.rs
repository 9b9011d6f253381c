//! Trust for OriginLink: keys and X.509 certificates, JSON signatures (JWS over RFC 8785),
//! the signed trust list, and the verification policy that turns a cryptographically sound
//! signature into a verdict: valid, invalid (with a reason code) or cannot verify.
//!
//! Architecture invariant: the clock is a parameter (`now`), never read here; key files are
//! touched only by [`keystore`]; XML canonicalization and XML-DSig live in
//! `originlink-xmldsig`, this crate only decides whom to trust.
//!
//! # Layout
//! - [`keys`]: private keys, certificate issuing (`keys init`, rotation, operator), the
//!   document-signing EKU.
//! - [`keystore`]: the one module that reads and writes key files (0600, refused if readable
//!   by others).
//! - [`x509`]: parsed certificates and chain links.
//! - [`jcs`]: RFC 8785 canonical JSON.
//! - [`jws`]: detached compact JWS (ES256, RS256) and signed JSON objects.
//! - [`trustlist`]: the trust list, its signing and its acceptance.
//! - [`policy`]: verdicts, the trust store, the chain cache, the policy itself.
//! - [`document`]: signing and verifying whole XML and JSON certificates.

pub mod document;
pub mod error;
pub mod jcs;
pub mod jws;
pub mod keys;
pub mod keystore;
pub mod policy;
pub mod statuslist;
pub mod trustlist;
pub mod x509;

pub use document::{SignedHeader, Unreadable, sign};
pub use error::{Error, Result};
pub use keys::{AuthorityKeys, DOC_SIGNING_EKU, Issued, KeyAlgorithm, PrivateKey};
pub use policy::{CannotVerifyReason, DocumentFacts, InvalidReason, Signer, TrustStore, Verdict, Verifier};
pub use trustlist::TrustList;
pub use x509::Cert;
