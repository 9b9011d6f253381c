//! Signing keys (PKCS#8 DER in memory; files are the trust crate's business) and the public
//! keys of X.509 certificates.

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use x509_parser::oid_registry::{OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION};

use crate::error::Error;

/// XML-DSig `SignatureMethod` URI of ECDSA with SHA-256 (raw `r || s` signature value).
pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
/// XML-DSig `SignatureMethod` URI of RSASSA-PKCS1-v1_5 with SHA-256.
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// XML-DSig `DigestMethod` URI of SHA-256.
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
/// Exclusive C14N 1.0 without comments.
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// The enveloped-signature transform.
pub const ENVELOPED_SIGNATURE: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// A signature algorithm this crate signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// ECDSA over P-256 with SHA-256; the default.
    EcdsaP256Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048 to 8192 bit keys.
    RsaPkcs1Sha256,
}

impl SignatureAlgorithm {
    /// The XML-DSig `SignatureMethod` URI.
    pub fn uri(self) -> &'static str {
        match self {
            SignatureAlgorithm::EcdsaP256Sha256 => ECDSA_SHA256,
            SignatureAlgorithm::RsaPkcs1Sha256 => RSA_SHA256,
        }
    }

    pub(crate) fn from_uri(uri: &str) -> Option<Self> {
        match uri {
            ECDSA_SHA256 => Some(SignatureAlgorithm::EcdsaP256Sha256),
            RSA_SHA256 => Some(SignatureAlgorithm::RsaPkcs1Sha256),
            _ => None,
        }
    }
}

/// A private key to sign with, built from unencrypted PKCS#8 DER.
pub enum SigningKey {
    /// ECDSA P-256; signs `ecdsa-sha256` with the fixed-width `r || s` value XML-DSig wants.
    EcdsaP256(EcdsaKeyPair),
    /// RSA; signs `rsa-sha256` (PKCS#1 v1.5).
    Rsa(RsaKeyPair),
}

impl std::fmt::Debug for SigningKey {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SigningKey").field(&self.algorithm()).finish()
    }
}

impl SigningKey {
    /// Reads PKCS#8 DER and detects ECDSA P-256 or RSA.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, Error> {
        let rng = SystemRandom::new();
        if let Ok(k) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng) {
            return Ok(SigningKey::EcdsaP256(k));
        }
        match RsaKeyPair::from_pkcs8(der) {
            Ok(k) => Ok(SigningKey::Rsa(k)),
            Err(e) => Err(Error::BadKey(format!(
                "not an unencrypted PKCS#8 ECDSA P-256 or RSA 2048-8192 key ({e})"
            ))),
        }
    }

    /// The signature algorithm this key signs with.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        match self {
            SigningKey::EcdsaP256(_) => SignatureAlgorithm::EcdsaP256Sha256,
            SigningKey::Rsa(_) => SignatureAlgorithm::RsaPkcs1Sha256,
        }
    }

    /// The public key as in a certificate's `subjectPublicKey` BIT STRING (an uncompressed
    /// point, or a DER `RSAPublicKey`).
    pub fn public_key_bytes(&self) -> &[u8] {
        match self {
            SigningKey::EcdsaP256(k) => k.public_key().as_ref(),
            SigningKey::Rsa(k) => k.public_key().as_ref(),
        }
    }

    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let rng = SystemRandom::new();
        match self {
            SigningKey::EcdsaP256(k) => {
                k.sign(&rng, msg).map(|s| s.as_ref().to_vec()).map_err(|_| Error::SigningFailed)
            }
            SigningKey::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .map_err(|_| Error::SigningFailed)?;
                Ok(sig)
            }
        }
    }
}

/// The public key of a certificate, checked to be ECDSA P-256 or RSA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertKey {
    pub algorithm: SignatureAlgorithm,
    pub key: Vec<u8>,
}

pub(crate) fn certificate_key(der: &[u8]) -> Result<CertKey, Error> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::BadCertificate(format!("not DER X.509: {e}")))?;
    if !rest.is_empty() {
        return Err(Error::BadCertificate("trailing bytes after the certificate".into()));
    }
    let spki = cert.public_key();
    let key = spki.subject_public_key.data.to_vec();
    let oid = &spki.algorithm.algorithm;
    if *oid == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
        if curve.as_ref() != Some(&OID_EC_P256) {
            return Err(Error::AlgorithmNotAllowed("EC key on a curve other than P-256".into()));
        }
        Ok(CertKey { algorithm: SignatureAlgorithm::EcdsaP256Sha256, key })
    } else if *oid == OID_PKCS1_RSAENCRYPTION {
        Ok(CertKey { algorithm: SignatureAlgorithm::RsaPkcs1Sha256, key })
    } else {
        Err(Error::AlgorithmNotAllowed(format!("certificate key type {oid} is not ECDSA P-256 or RSA")))
    }
}

/// Verifies `sig` over `msg` with a certificate key; only the algorithm the key is for.
pub(crate) fn verify_with(key: &CertKey, alg: SignatureAlgorithm, msg: &[u8], sig: &[u8]) -> bool {
    if key.algorithm != alg {
        return false;
    }
    let params: &dyn signature::VerificationAlgorithm = match alg {
        SignatureAlgorithm::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_FIXED,
        SignatureAlgorithm::RsaPkcs1Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
    };
    signature::UnparsedPublicKey::new(params, &key.key).verify(msg, sig).is_ok()
}

/// Most certificates a [`KeyCache`] keeps; when full it starts over (a node sees a few hundred
/// signer certificates at most, so this only bounds memory against floods of new ones).
const KEY_CACHE_CAPACITY: usize = 4096;

/// The public keys of certificates already read, keyed by the SHA-256 of the certificate's DER,
/// so a signer's certificate is not parsed again for every document it signed.
///
/// What is cached depends on the DER bytes alone (the key and its algorithm, or that the key is
/// of a type we do not verify with), so a hit gives exactly what parsing those bytes would give:
/// different DER bytes (another certificate, even with the same subject and serial) have another
/// hash and are parsed. Certificates that do not parse are not cached. Safe to share between
/// threads; trust decisions stay with the caller, whatever is cached.
///
/// The streaming verifier also looks certificates up by their base64 text as it stands in
/// `X509Certificate` (whitespace included): a hit hands back the DER bytes and key that
/// decoding and parsing that very text gave before, found by an exact comparison of the whole
/// text (the map's hash only picks the bucket), so neither base64 nor SHA-256 runs again.
#[derive(Default)]
pub struct KeyCache {
    keys: std::sync::RwLock<std::collections::HashMap<[u8; 32], Option<CertKey>>>,
    by_text: std::sync::RwLock<std::collections::HashMap<Box<[u8]>, std::sync::Arc<CachedCert>>>,
}

/// A certificate the streaming verifier has read: its DER and public key.
#[derive(Debug)]
pub(crate) struct CachedCert {
    pub der: Vec<u8>,
    pub key: Option<CertKey>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache").field("len", &self.len()).finish()
    }
}

impl KeyCache {
    /// An empty cache.
    pub fn new() -> KeyCache {
        KeyCache::default()
    }

    /// How many certificates are cached.
    pub fn len(&self) -> usize {
        self.keys.read().map(|k| k.len()).unwrap_or(0)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The certificate whose base64 text (as in `X509Certificate`, whitespace included) is
    /// `text`: `None` if the text is not base64 or the DER not a certificate.
    pub(crate) fn by_text(
        &self,
        text: &str,
        decode: impl FnOnce(&str) -> Option<Vec<u8>>,
    ) -> Option<std::sync::Arc<CachedCert>> {
        if let Some(hit) = self.by_text.read().ok().and_then(|m| m.get(text.as_bytes()).cloned()) {
            return Some(hit);
        }
        let der = decode(text)?;
        let key = self.key(&der).ok()?;
        let entry = std::sync::Arc::new(CachedCert { der, key });
        if let Ok(mut m) = self.by_text.write() {
            if m.len() >= KEY_CACHE_CAPACITY {
                m.clear();
            }
            m.insert(text.as_bytes().into(), std::sync::Arc::clone(&entry));
        }
        Some(entry)
    }

    /// [`certificate_key`] through the cache; `Ok(None)` for a key type we do not verify with.
    pub(crate) fn key(&self, der: &[u8]) -> Result<Option<CertKey>, Error> {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
        if let Some(hit) = self.keys.read().ok().and_then(|k| k.get(&hash).cloned()) {
            return Ok(hit);
        }
        let key = certificate_key_or_unsupported(der)?;
        if let Ok(mut keys) = self.keys.write() {
            if keys.len() >= KEY_CACHE_CAPACITY {
                keys.clear();
            }
            keys.insert(hash, key.clone());
        }
        Ok(key)
    }
}

/// [`certificate_key`], with a key we cannot verify with (say a P-384 CA, which may still be
/// in the chain) as `Ok(None)`.
pub(crate) fn certificate_key_or_unsupported(der: &[u8]) -> Result<Option<CertKey>, Error> {
    match certificate_key(der) {
        Ok(key) => Ok(Some(key)),
        Err(Error::AlgorithmNotAllowed(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
