//! Exclusive XML canonicalization and enveloped XML-DSig for OriginLink documents.
//!
//! Signs and verifies one kind of signature: enveloped, over the whole document, exclusive
//! C14N, SHA-256, ECDSA P-256 (default) or RSA PKCS#1 v1.5, signer certificate in `X509Data`.
//! Verification enforces a strict structural policy that defeats signature wrapping; see
//! `docs/security.md`. Whether the signer is *trusted* (chain, usage, revocation, country) is
//! decided elsewhere (the trust crate) from [`Verified`].
//!
//! # Layout
//! - `xml`: parsing under [`Limits`] (no DTD), source-prefix helpers.
//! - `c14n`: exclusive C14N 1.0 over the DOM ([`canonicalize_exclusive`]).
//! - `keys`: [`SigningKey`], algorithm URIs, certificate public keys (via `x509-parser`).
//! - `signature`: the types signing and both verification paths share, [`Placement`] and
//!   [`Verified`].
//! - `sign`: [`sign_enveloped`].
//! - `verify`: [`verify_enveloped`] (and [`verify_enveloped_with`], which lets the caller read
//!   the verified DOM) and the policy.
//! - `stream`: [`verify_enveloped_fast`], the one-pass streaming verifier (no DOM) that
//!   [`verify_enveloped`] tries first; it answers with a [`FastVerify`], and on
//!   [`FastVerify::Unsure`] `verify` runs the DOM path. It imports neither `sign` nor `verify`.
//! - `error`: [`Error`] with stable codes.
//!
//! Module imports go one way (`verify` → `stream` → `signature`, `c14n`, `keys`, `xml`,
//! `error`; `sign` → `signature`, `c14n`, `keys`, `xml`, `nsuri`, `error`); the test
//! `module_imports_have_no_cycles` (tests/it) keeps it so.
//!
//! Invariants: no IO, no panics on any input, nothing is fetched (no URI other than the
//! document itself is ever dereferenced).

mod c14n;
mod error;
mod keys;
mod nsuri;
mod sign;
mod signature;
mod stream;
mod verify;
mod xml;

#[cfg(test)]
mod vector_tests;

pub use c14n::{canonicalize_exclusive, canonicalize_exclusive_with};
pub use error::Error;
pub use keys::{
    ECDSA_SHA256, ENVELOPED_SIGNATURE, EXC_C14N, KeyCache, RSA_SHA256, SHA256, SignatureAlgorithm, SigningKey,
};
/// The XML tree type [`verify_enveloped_with`] hands to its reader.
pub use roxmltree;
pub use sign::sign_enveloped;
pub use signature::{Placement, Verified};
pub use stream::{CapturePath, FastVerify, MAX_CAPTURES, verify_enveloped_fast};
pub use verify::{verify_enveloped, verify_enveloped_with};
pub use xml::{DSIG_NS, Limits};

/// Namespaces of the UBL 2.4 signature extension.
pub mod ubl {
    /// `ext:` CommonExtensionComponents.
    pub const EXT_NS: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2";
    /// `sig:` CommonSignatureComponents.
    pub const SIG_NS: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonSignatureComponents-2";
    /// `sac:` SignatureAggregateComponents.
    pub const SAC_NS: &str = "urn:oasis:names:specification:ubl:schema:xsd:SignatureAggregateComponents-2";
}

/// Test support (differential tests and fuzz targets), not part of the API.
#[doc(hidden)]
pub mod testing {
    use crate::c14n::{ExcC14n, canonicalize_document, canonicalize_subtree};
    use crate::xml::{Limits, is_ds, parse};

    pub use crate::stream::canonical_for_tests as fast_canonical;

    /// The DOM path's canonical bytes for the same things [`fast_canonical`] returns: the whole
    /// document without its first `ds:Signature`, and that signature's first `SignedInfo`.
    pub fn dom_canonical(xml: &[u8]) -> Result<(Vec<u8>, Option<Vec<u8>>), crate::Error> {
        let doc = parse(xml, &Limits::default())?;
        let sig = doc.descendants().find(|n| is_ds(*n, "Signature"));
        let opts = ExcC14n { exclude: sig.map(|s| s.id()), ..ExcC14n::default() };
        let mut out = Vec::new();
        canonicalize_document(&doc, &opts, &mut out)?;
        let si = match sig.and_then(|s| s.children().find(|n| is_ds(*n, "SignedInfo"))) {
            Some(si) => {
                let mut v = Vec::new();
                canonicalize_subtree(si, &ExcC14n::default(), &mut v)?;
                Some(v)
            }
            None => None,
        };
        Ok((out, si))
    }
}
