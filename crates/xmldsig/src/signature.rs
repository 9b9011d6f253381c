//! What a signature is, for signing and both verification paths alike: where it sits in the
//! document ([`Placement`]) and what a successful verification proved ([`Verified`]).
//!
//! The types live one level below `sign`, `verify` and `stream` so that none of those has to
//! import another for them.

use crate::keys::SignatureAlgorithm;

/// Where [`crate::sign_enveloped`] puts the `ds:Signature`, and where verification found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// UBL 2.4: first child of the root,
    /// `ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent/sig:UBLDocumentSignatures/sac:SignatureInformation/ds:Signature`
    /// (a new `ext:UBLExtension` is appended if the document already has `ext:UBLExtensions`).
    /// The result stays valid against the UBL 2.4 schema.
    UblExtension,
    /// Generic XML: last child of the root element. On verification, any child of the root.
    RootChild,
}

/// What a successful [`crate::verify_enveloped`] proves: this certificate's key signed the whole
/// document. Whether the certificate is trusted is for the caller (the trust crate) to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// DER of the certificate whose public key verified `SignatureValue`.
    pub signer_certificate_der: Vec<u8>,
    /// DER of the other certificates in `X509Data` (usually the chain), in document order.
    pub other_certificates_der: Vec<Vec<u8>>,
    /// The signature algorithm used.
    pub algorithm: SignatureAlgorithm,
    /// Namespace URI of the signed document's root element, if any.
    pub root_namespace: Option<String>,
    /// Local name of the signed document's root element.
    pub root_name: String,
    /// Where the `Signature` sits in the document.
    pub placement: Placement,
}
