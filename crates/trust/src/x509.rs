//! X.509 certificates as the policy needs them: parsed once, with the few facts it checks.

use ring::digest;
use ring::signature::{self, UnparsedPublicKey};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_PKCS1_RSAENCRYPTION, OID_PKCS1_SHA256WITHRSA,
    OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA, OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::{Error, Result};
use crate::keys::{DOC_SIGNING_EKU_DER, KeyAlgorithm};

/// A parsed certificate. Holds its DER; the facts are extracted once at parse time.
#[derive(Clone)]
pub struct Cert {
    der: Vec<u8>,
    sha256: [u8; 32],
    serial: Vec<u8>,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    subject_text: String,
    country: Option<String>,
    organization: Option<String>,
    not_before: i64,
    not_after: i64,
    is_ca: bool,
    /// basicConstraints pathLenConstraint, when a CA states one.
    path_len: Option<u32>,
    /// keyUsage allows keyCertSign (or no keyUsage extension).
    can_sign_certs: bool,
    /// keyUsage allows digitalSignature or nonRepudiation (or no keyUsage extension).
    can_sign_docs: bool,
    doc_signing_eku: bool,
    key_alg: Option<KeyAlgorithm>,
    key_bits: Vec<u8>,
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cert({}, serial {})", self.subject_text, self.serial_hex())
    }
}

impl PartialEq for Cert {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}
impl Eq for Cert {}

impl Cert {
    /// Parses one DER certificate (trailing bytes refused).
    pub fn from_der(der: &[u8]) -> Result<Cert> {
        let (rest, x) = X509Certificate::from_der(der).map_err(|e| Error::CertInvalid(e.to_string()))?;
        if !rest.is_empty() {
            return Err(Error::CertInvalid("trailing bytes after the certificate".into()));
        }
        let first_str = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
            it.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
        };
        let subject = x.subject();
        let country = first_str(&mut subject.iter_country());
        let organization = first_str(&mut subject.iter_organization());
        let bc = x.basic_constraints().map_err(|e| Error::CertInvalid(e.to_string()))?;
        let ku = x.key_usage().map_err(|e| Error::CertInvalid(e.to_string()))?;
        let eku = x.extended_key_usage().map_err(|e| Error::CertInvalid(e.to_string()))?;
        let doc_signing_eku =
            eku.as_ref().is_some_and(|e| e.value.other.iter().any(|o| o.as_bytes() == DOC_SIGNING_EKU_DER));
        let spki = x.public_key();
        let key_alg = if spki.algorithm.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let p256 = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()) == Some(OID_EC_P256);
            p256.then_some(KeyAlgorithm::EcdsaP256)
        } else if spki.algorithm.algorithm == OID_PKCS1_RSAENCRYPTION {
            rsa_bits(&spki.subject_public_key.data).map(KeyAlgorithm::Rsa)
        } else {
            None
        };
        Ok(Cert {
            sha256: sha256(der),
            serial: x.raw_serial().to_vec(),
            subject: subject.as_raw().to_vec(),
            issuer: x.issuer().as_raw().to_vec(),
            subject_text: subject.to_string(),
            country,
            organization,
            not_before: x.validity().not_before.timestamp(),
            not_after: x.validity().not_after.timestamp(),
            is_ca: bc.as_ref().is_some_and(|b| b.value.ca),
            path_len: bc.as_ref().and_then(|b| b.value.path_len_constraint),
            can_sign_certs: ku.as_ref().is_none_or(|k| k.value.key_cert_sign()),
            can_sign_docs: ku
                .as_ref()
                .is_none_or(|k| k.value.digital_signature() || k.value.non_repudiation()),
            doc_signing_eku,
            key_alg,
            key_bits: spki.subject_public_key.data.to_vec(),
            der: der.to_vec(),
        })
    }

    /// Every certificate in PEM text (or a single DER certificate).
    pub fn parse_all(bytes: &[u8]) -> Result<Vec<Cert>> {
        if bytes.first() == Some(&0x30) {
            return Ok(vec![Cert::from_der(bytes)?]);
        }
        let pems = pem::parse_many(bytes).map_err(|e| Error::CertInvalid(format!("not PEM: {e}")))?;
        let certs: Vec<Cert> = pems
            .iter()
            .filter(|p| p.tag() == "CERTIFICATE")
            .map(|p| Cert::from_der(p.contents()))
            .collect::<Result<_>>()?;
        if certs.is_empty() {
            return Err(Error::CertInvalid("no CERTIFICATE in the PEM".into()));
        }
        Ok(certs)
    }

    /// DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// SHA-256 of the DER: the cache key and the identity used in trust lists.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }
    /// Serial number as lower-case hex without leading zero bytes.
    pub fn serial_hex(&self) -> String {
        let s: &[u8] = {
            let mut s = self.serial.as_slice();
            while s.len() > 1 && s[0] == 0 {
                s = &s[1..];
            }
            s
        };
        hex::encode(s)
    }
    /// The subject as text (`C=KH, O=…, CN=…`).
    pub fn subject(&self) -> &str {
        &self.subject_text
    }
    /// Subject country (C=), if any.
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }
    /// Subject organization (O=), if any.
    pub fn organization(&self) -> Option<&str> {
        self.organization.as_deref()
    }
    /// notBefore, Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }
    /// notAfter, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }
    /// basicConstraints cA, and allowed to sign certificates.
    pub fn is_ca(&self) -> bool {
        self.is_ca && self.can_sign_certs
    }
    /// How many intermediate CAs may follow this CA (None: no limit stated).
    pub fn path_len(&self) -> Option<u32> {
        self.path_len
    }
    /// An end-entity certificate that may sign certificates of origin: our EKU, a keyUsage
    /// that allows signatures, and not a CA.
    pub fn is_document_signer(&self) -> bool {
        self.doc_signing_eku && self.can_sign_docs && !self.is_ca
    }
    /// The key algorithm, when it is one we accept (P-256, RSA 2048..8192).
    pub fn key_algorithm(&self) -> Option<KeyAlgorithm> {
        self.key_alg
    }
    /// The subjectPublicKey bits (EC point, or RSAPublicKey DER).
    pub fn public_key_bits(&self) -> &[u8] {
        &self.key_bits
    }
    /// Whether `issuer` signed this certificate: names chain and the signature verifies with
    /// an allowed algorithm (ECDSA with SHA-256/384, RSA PKCS#1 with SHA-256/384/512).
    pub fn is_issued_by(&self, issuer: &Cert) -> bool {
        if self.issuer != issuer.subject {
            return false;
        }
        let (Ok((_, me)), Ok((_, them))) =
            (X509Certificate::from_der(&self.der), X509Certificate::from_der(&issuer.der))
        else {
            return false;
        };
        let alg = &me.signature_algorithm.algorithm;
        let allowed = [
            OID_SIG_ECDSA_WITH_SHA256,
            OID_SIG_ECDSA_WITH_SHA384,
            OID_PKCS1_SHA256WITHRSA,
            OID_PKCS1_SHA384WITHRSA,
            OID_PKCS1_SHA512WITHRSA,
        ];
        allowed.contains(alg) && me.verify_signature(Some(them.public_key())).is_ok()
    }

    /// Verifies a JWS signature (`ES256`: fixed `r || s`; `RS256`) made by this certificate's key.
    pub fn verify_jws(&self, alg: &str, msg: &[u8], sig: &[u8]) -> bool {
        let v: &dyn signature::VerificationAlgorithm = match (alg, self.key_alg) {
            ("ES256", Some(KeyAlgorithm::EcdsaP256)) => &signature::ECDSA_P256_SHA256_FIXED,
            ("RS256", Some(KeyAlgorithm::Rsa(_))) => &signature::RSA_PKCS1_2048_8192_SHA256,
            _ => return false,
        };
        UnparsedPublicKey::new(v, &self.key_bits).verify(msg, sig).is_ok()
    }
}

/// SHA-256.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Modulus size of an RSAPublicKey (SEQUENCE { INTEGER n, INTEGER e }), when 2048..=8192.
fn rsa_bits(der: &[u8]) -> Option<u32> {
    use x509_parser::der_parser::der::parse_der_sequence;
    let (_, seq) = parse_der_sequence(der).ok()?;
    let items = seq.as_sequence().ok()?;
    let n = items.first()?.as_slice().ok()?;
    let n = n.iter().position(|&b| b != 0).map(|i| &n[i..])?;
    let bits = (n.len() as u32 - 1) * 8 + (8 - n[0].leading_zeros());
    (2048..=8192).contains(&bits).then_some(bits)
}
