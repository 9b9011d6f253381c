//! The library's error type. Every variant has a stable code (`code()`), so callers can
//! branch on it and scripts can match it.

use std::path::PathBuf;

/// What went wrong while handling keys, certificates, JSON signatures or the trust list.
/// Verification *outcomes* are not errors: they are a [`crate::Verdict`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key or certificate file could not be read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause (in the message, not chained: a chain would print it twice).
        cause: std::io::Error,
    },
    /// A private key file can be read by group or others.
    #[error(
        "{}: private key is readable by group or others (mode {mode:03o}); refusing to use it. \
         Fix with `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A private key that is not PEM PKCS#8 ECDSA P-256 or RSA 2048..8192.
    #[error("private key: {0}")]
    KeyInvalid(String),
    /// A certificate that does not parse, or PEM without one.
    #[error("certificate: {0}")]
    CertInvalid(String),
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(String),
    /// JSON that cannot be canonicalized (RFC 8785): not I-JSON, duplicate keys, …
    #[error("JSON: {0}")]
    Json(String),
    /// A JWS that does not parse or uses something we do not accept.
    #[error("JWS: {0}")]
    Jws(String),
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(String),
    /// A trust list that is malformed, unsigned or signed by an unexpected key.
    #[error("trust list ({code}): {message}")]
    TrustList {
        /// Stable code: `TRUST_LIST_UNSIGNED`, `TRUST_LIST_WRONG_KEY`, …
        code: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Io { .. } => "IO",
            Error::KeyPermissions { .. } => "KEY_PERMISSIONS",
            Error::KeyInvalid(_) => "KEY_INVALID",
            Error::CertInvalid(_) => "CERT_INVALID",
            Error::Generate(_) => "CERT_GENERATION",
            Error::Json(_) => "JSON_INVALID",
            Error::Jws(_) => "JWS_MALFORMED",
            Error::Sign(_) => "SIGN_FAILED",
            Error::TrustList { code, .. } => code,
        }
    }
}

/// Short for `Result<T, Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
