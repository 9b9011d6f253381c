//! The one error type of this crate, with stable machine-readable codes.

/// Why signing, verifying or canonicalizing failed.
///
/// Match on [`Error::code`] (stable, SCREAMING_SNAKE_CASE) rather than on the message text.
///
/// | code | meaning |
/// |---|---|
/// | `DOCUMENT_TOO_LARGE` | the input is larger than [`crate::Limits::max_bytes`] or has more nodes than [`crate::Limits::max_nodes`] |
/// | `MALFORMED` | not well-formed UTF-8 XML, a DTD, or a `Signature` that does not follow the XML-DSig structure (bad base64, missing elements, comments inside signature values, …) |
/// | `SIGNATURE_MISSING` | the document carries no `ds:Signature` |
/// | `SIGNATURE_WRAPPING` | the structure could make the signature cover something other than the document root: a second `Signature`, a second `Reference`, a `Reference` to a non-root element, duplicate IDs, an `Object`, a `Signature` outside the allowed places |
/// | `ALGORITHM_NOT_ALLOWED` | a canonicalization, transform, digest or signature algorithm outside the allow-list, or a key that does not fit the signature algorithm |
/// | `TAMPERED` | the digest of the signed content does not match `DigestValue`: the document was changed after signing |
/// | `BAD_SIGNATURE` | `SignatureValue` does not verify with the public key of any certificate in `X509Data` |
/// | `CERTIFICATE_MISSING` | no `X509Data/X509Certificate` in `KeyInfo` |
/// | `BAD_CERTIFICATE` | an `X509Certificate` is not valid base64 DER X.509, or its key is not ECDSA P-256 / RSA |
/// | `BAD_KEY` | the signing key is not an unencrypted PKCS#8 ECDSA P-256 or RSA (2048–8192 bit) key |
/// | `KEY_CERTIFICATE_MISMATCH` | the signer certificate given to [`crate::sign_enveloped`] is not for the signing key |
/// | `ALREADY_SIGNED` | [`crate::sign_enveloped`] was given a document that already carries a `ds:Signature` |
/// | `SIGNING_FAILED` | the crypto library refused to sign (should not happen with a valid key) |
/// | `NAMESPACE_URI_INVALID` | [`crate::sign_enveloped`] was given a document declaring a namespace URI that libxml2's C14N (xmlsec1) or ours cannot canonicalize: relative, not ASCII, not RFC 3986 (a space, `\|`, a bad `%` escape, …), or holding `&`, `<`, `"`, tab, CR or LF |
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("document too large: {0}")]
    DocumentTooLarge(String),
    #[error("malformed XML or signature: {0}")]
    Malformed(String),
    #[error("the document carries no XML signature")]
    SignatureMissing,
    #[error("signature wrapping suspected: {0}")]
    SignatureWrapping(String),
    #[error("algorithm not allowed: {0}")]
    AlgorithmNotAllowed(String),
    #[error("digest mismatch: the signed content was changed after signing")]
    Tampered,
    #[error("the signature value does not verify with the certificate's public key")]
    BadSignature,
    #[error("no X509Certificate in the signature's KeyInfo")]
    CertificateMissing,
    #[error("bad certificate: {0}")]
    BadCertificate(String),
    #[error("bad signing key: {0}")]
    BadKey(String),
    #[error("the signer certificate does not belong to the signing key")]
    KeyCertificateMismatch,
    #[error("the document is already signed")]
    AlreadySigned,
    #[error("signing failed")]
    SigningFailed,
    #[error("namespace URI {uri:?} cannot be signed: {reason}")]
    NamespaceUriInvalid {
        /// The URI as declared (entities decoded).
        uri: String,
        /// Why it is refused.
        reason: String,
    },
}

impl Error {
    /// The stable code of this error, for logs, verdicts and API bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Error::DocumentTooLarge(_) => "DOCUMENT_TOO_LARGE",
            Error::Malformed(_) => "MALFORMED",
            Error::SignatureMissing => "SIGNATURE_MISSING",
            Error::SignatureWrapping(_) => "SIGNATURE_WRAPPING",
            Error::AlgorithmNotAllowed(_) => "ALGORITHM_NOT_ALLOWED",
            Error::Tampered => "TAMPERED",
            Error::BadSignature => "BAD_SIGNATURE",
            Error::CertificateMissing => "CERTIFICATE_MISSING",
            Error::BadCertificate(_) => "BAD_CERTIFICATE",
            Error::BadKey(_) => "BAD_KEY",
            Error::KeyCertificateMismatch => "KEY_CERTIFICATE_MISMATCH",
            Error::AlreadySigned => "ALREADY_SIGNED",
            Error::SigningFailed => "SIGNING_FAILED",
            Error::NamespaceUriInvalid { .. } => "NAMESPACE_URI_INVALID",
        }
    }
}

pub(crate) fn malformed(msg: impl Into<String>) -> Error {
    Error::Malformed(msg.into())
}

pub(crate) fn wrapping(msg: impl Into<String>) -> Error {
    Error::SignatureWrapping(msg.into())
}

pub(crate) fn not_allowed(msg: impl Into<String>) -> Error {
    Error::AlgorithmNotAllowed(msg.into())
}
