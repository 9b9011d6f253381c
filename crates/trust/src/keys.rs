//! Private keys and the certificates OriginLink issues: a country CA, an issuing authority's
//! document-signing certificate, a node's TLS certificate and the network operator's
//! trust-list signing certificate.
//!
//! Nothing here touches the filesystem; [`crate::keystore`] does.

use chrono::{Datelike, Days, NaiveDate};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair};

use crate::error::{Error, Result};

/// The extended-key-usage OID that marks a certificate as allowed to sign certificates of
/// origin: `2.25.287096106919468220838103242310886018551`, a UUID-derived OID (ITU-T X.667,
/// UUID `d7fcb2ec-a383-4006-aa95-2734a0fecdf7`) minted for OriginLink, so no registry is
/// needed and no other purpose can collide with it.
pub const DOC_SIGNING_EKU: &str = "2.25.287096106919468220838103242310886018551";

/// DER content octets of [`DOC_SIGNING_EKU`] (after tag and length).
pub(crate) const DOC_SIGNING_EKU_DER: &[u8] = &[
    0x69, 0x83, 0xaf, 0xfc, 0xd9, 0xbb, 0x94, 0xb8, 0x9a, 0x80, 0x8d, 0xaa, 0xca, 0xc9, 0xe6, 0xca, 0x87,
    0xfb, 0x9b, 0x77,
];

/// Key algorithms we generate, sign and verify with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256: the default.
    EcdsaP256,
    /// RSA PKCS#1 v1.5 with SHA-256, with the modulus size in bits (2048..=8192).
    Rsa(u32),
}

impl KeyAlgorithm {
    /// The JWS `alg` for this key.
    pub fn jws_alg(&self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ES256",
            KeyAlgorithm::Rsa(_) => "RS256",
        }
    }
    /// Short name for people: `ecdsa-p256`, `rsa-2048`.
    pub fn name(&self) -> String {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256".to_owned(),
            KeyAlgorithm::Rsa(bits) => format!("rsa-{bits}"),
        }
    }
}

enum Inner {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private key (PKCS#8), ECDSA P-256 or RSA. Its `Debug` never shows the key.
pub struct PrivateKey {
    pkcs8: Vec<u8>,
    inner: Inner,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey({})", self.algorithm().name())
    }
}

impl PrivateKey {
    /// A fresh ECDSA P-256 key.
    pub fn generate_p256() -> Result<Self> {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| Error::KeyInvalid("cannot generate an ECDSA P-256 key".into()))?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    /// A key from PKCS#8 DER (ECDSA P-256 or RSA 2048..8192 bits).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let rng = SystemRandom::new();
        let inner =
            if let Ok(k) = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng) {
                Inner::Ec(k)
            } else {
                match RsaKeyPair::from_pkcs8(der) {
                    Ok(k) => Inner::Rsa(k),
                    Err(e) => {
                        return Err(Error::KeyInvalid(format!(
                            "not a PKCS#8 ECDSA P-256 or RSA (2048..8192 bit) key: {e}"
                        )));
                    }
                }
            };
        Ok(PrivateKey { pkcs8: der.to_vec(), inner })
    }

    /// A key from PEM (`-----BEGIN PRIVATE KEY-----`, PKCS#8).
    pub fn from_pem(text: &str) -> Result<Self> {
        let p = pem::parse(text).map_err(|e| Error::KeyInvalid(format!("not PEM: {e}")))?;
        if p.tag() != "PRIVATE KEY" {
            return Err(Error::KeyInvalid(format!(
                "PEM label is {:?}; expected \"PRIVATE KEY\" (PKCS#8; convert with `openssl pkcs8 -topk8 -nocrypt`)",
                p.tag()
            )));
        }
        Self::from_pkcs8_der(p.contents())
    }

    /// The key as PEM PKCS#8.
    pub fn to_pem(&self) -> String {
        pem::encode(&pem::Pem::new("PRIVATE KEY", self.pkcs8.clone()))
    }

    /// The PKCS#8 DER bytes.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// Which algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match &self.inner {
            Inner::Ec(_) => KeyAlgorithm::EcdsaP256,
            Inner::Rsa(k) => KeyAlgorithm::Rsa(k.public().modulus_len() as u32 * 8),
        }
    }

    /// The public key bytes as in a certificate's subjectPublicKey (EC point, or RSAPublicKey).
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Ec(k) => k.public_key().as_ref().to_vec(),
            Inner::Rsa(k) => k.public_key().as_ref().to_vec(),
        }
    }

    /// Signs `msg` as JWS does: ES256 gives the fixed 64-byte `r || s`, RS256 PKCS#1 v1.5.
    pub fn sign_jws(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Ec(k) => k
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Sign("ECDSA signing failed".into())),
            Inner::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .map_err(|_| Error::Sign("RSA signing failed".into()))?;
                Ok(sig)
            }
        }
    }

    fn rcgen(&self) -> Result<KeyPair> {
        let alg = match self.algorithm() {
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
        };
        KeyPair::from_pkcs8_der_and_sign_algo(&self.pkcs8.as_slice().into(), alg)
            .map_err(|e| Error::KeyInvalid(e.to_string()))
    }
}

/// A certificate with its private key.
#[derive(Debug)]
pub struct Issued {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its private key.
    pub key: PrivateKey,
}

impl Issued {
    /// The certificate as PEM.
    pub fn cert_pem(&self) -> String {
        cert_to_pem(&self.cert_der)
    }
}

/// PEM (`-----BEGIN CERTIFICATE-----`) for a DER certificate.
pub fn cert_to_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

/// What `keys init` creates for one issuing authority.
#[derive(Debug)]
pub struct AuthorityKeys {
    /// The country CA (trust anchor listed in the trust list).
    pub ca: Issued,
    /// The document-signing certificate, issued by the CA, with [`DOC_SIGNING_EKU`].
    pub signing: Issued,
    /// The node TLS certificate (server and client auth; `localhost`, `127.0.0.1`).
    pub tls: Issued,
}

/// How long each certificate lives, in days.
pub mod lifetime {
    /// Country CA: ten years.
    pub const CA_DAYS: u64 = 3653;
    /// Document-signing certificate: two years, rotated with overlap.
    pub const SIGNING_DAYS: u64 = 730;
    /// Node TLS certificate: one year.
    pub const TLS_DAYS: u64 = 365;
    /// Network operator's trust-list signing certificate: five years.
    pub const OPERATOR_DAYS: u64 = 1826;
}

/// Creates a country CA, a document-signing certificate and a node TLS certificate for
/// `authority` of `country`, valid from `today`. ECDSA P-256 keys are generated, except that
/// `signing_key`, when given (e.g. an RSA key), is used for the document-signing certificate.
pub fn init_authority(
    country: &str,
    authority: &str,
    today: NaiveDate,
    signing_key: Option<PrivateKey>,
) -> Result<AuthorityKeys> {
    check_country(country)?;
    let ca_key = PrivateKey::generate_p256()?;
    let mut ca_params = base_params(today, lifetime::CA_DAYS)?;
    ca_params.distinguished_name = dn(country, authority, &format!("{authority} Country CA {country}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_kp = ca_key.rcgen()?;
    let ca_cert = ca_params.self_signed(&ca_kp).map_err(gen_err)?;
    let issuer = Issuer::from_params(&ca_params, &ca_kp);

    let signing_key = match signing_key {
        Some(k) => k,
        None => PrivateKey::generate_p256()?,
    };
    let signing = issue_signing(&issuer, country, authority, today, lifetime::SIGNING_DAYS, signing_key)?;

    let tls_key = PrivateKey::generate_p256()?;
    let mut tls_params = base_params(today, lifetime::TLS_DAYS)?;
    tls_params.distinguished_name = dn(country, authority, &format!("{authority} node {country}"));
    tls_params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    tls_params.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    tls_params.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into().map_err(gen_err)?),
        SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
    ];
    let tls_cert = tls_params.signed_by(&tls_key.rcgen()?, &issuer).map_err(gen_err)?;

    Ok(AuthorityKeys {
        ca: Issued { cert_der: ca_cert.der().to_vec(), key: ca_key },
        signing,
        tls: Issued { cert_der: tls_cert.der().to_vec(), key: tls_key },
    })
}

/// Issues a new document-signing certificate from an existing CA: key rotation. The old
/// certificate stays valid until it expires and stays listed in the trust list, so documents
/// it signed keep verifying (overlap).
pub fn issue_signing_cert(
    ca_cert_der: &[u8],
    ca_key: &PrivateKey,
    authority: &str,
    from: NaiveDate,
    days: u64,
    key: PrivateKey,
) -> Result<Issued> {
    let ca = crate::x509::Cert::from_der(ca_cert_der)?;
    let country = ca
        .country()
        .ok_or_else(|| Error::CertInvalid("CA certificate has no country (C=) in its subject".into()))?
        .to_owned();
    let ca_kp = ca_key.rcgen()?;
    if ca_kp.public_key_raw() != ca.public_key_bits() {
        return Err(Error::KeyInvalid("the CA key does not belong to the CA certificate".into()));
    }
    let issuer = Issuer::from_ca_cert_der(&ca_cert_der.into(), &ca_kp).map_err(gen_err)?;
    issue_signing(&issuer, &country, authority, from, days, key)
}

fn issue_signing(
    issuer: &Issuer<'_, &KeyPair>,
    country: &str,
    authority: &str,
    from: NaiveDate,
    days: u64,
    key: PrivateKey,
) -> Result<Issued> {
    let mut p = base_params(from, days)?;
    p.distinguished_name = dn(country, authority, &format!("{authority} document signing {from}"));
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment];
    // rcgen's EKU type holds arcs as u64; our UUID arc is 128-bit, so the extension is built here.
    let mut eku = vec![0x30, (DOC_SIGNING_EKU_DER.len() + 2) as u8, 0x06, DOC_SIGNING_EKU_DER.len() as u8];
    eku.extend_from_slice(DOC_SIGNING_EKU_DER);
    p.custom_extensions = vec![CustomExtension::from_oid_content(&[2, 5, 29, 37], eku)];
    p.use_authority_key_identifier_extension = true;
    let cert = p.signed_by(&key.rcgen()?, issuer).map_err(gen_err)?;
    Ok(Issued { cert_der: cert.der().to_vec(), key })
}

/// Creates the network operator's self-signed trust-list signing certificate.
pub fn init_operator(name: &str, today: NaiveDate) -> Result<Issued> {
    let key = PrivateKey::generate_p256()?;
    let mut p = base_params(today, lifetime::OPERATOR_DAYS)?;
    let mut d = DistinguishedName::new();
    d.push(DnType::OrganizationName, name);
    d.push(DnType::CommonName, format!("{name} trust list signing"));
    p.distinguished_name = d;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = p.self_signed(&key.rcgen()?).map_err(gen_err)?;
    Ok(Issued { cert_der: cert.der().to_vec(), key })
}

/// Creates a regional gateway's self-signed TLS certificate (server and client auth;
/// `localhost`, `127.0.0.1`). Peers pin it through the trust list, so no CA is involved.
pub fn init_gateway(id: &str, today: NaiveDate) -> Result<Issued> {
    let key = PrivateKey::generate_p256()?;
    let mut p = base_params(today, lifetime::TLS_DAYS)?;
    let mut d = DistinguishedName::new();
    d.push(DnType::OrganizationName, id);
    d.push(DnType::CommonName, format!("{id} gateway"));
    p.distinguished_name = d;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    p.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into().map_err(gen_err)?),
        SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
    ];
    let cert = p.self_signed(&key.rcgen()?).map_err(gen_err)?;
    Ok(Issued { cert_der: cert.der().to_vec(), key })
}

fn check_country(country: &str) -> Result<()> {
    originlink_model::CountryCode::parse(country)
        .map(|_| ())
        .map_err(|_| Error::Generate(format!("{country:?} is not an ISO 3166-1 alpha-2 country code")))
}

fn dn(country: &str, authority: &str, cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CountryName, country);
    d.push(DnType::OrganizationName, authority);
    d.push(DnType::CommonName, cn);
    d
}

fn base_params(from: NaiveDate, days: u64) -> Result<CertificateParams> {
    let until = from
        .checked_add_days(Days::new(days))
        .ok_or_else(|| Error::Generate("validity end out of range".into()))?;
    let mut p = CertificateParams::default();
    for d in [from, until] {
        if !(1950..=9999).contains(&d.year()) {
            return Err(Error::Generate(format!("date {d} out of range")));
        }
    }
    p.not_before = rcgen::date_time_ymd(from.year(), from.month() as u8, from.day() as u8);
    p.not_after = rcgen::date_time_ymd(until.year(), until.month() as u8, until.day() as u8);
    let mut serial = [0u8; 16];
    SystemRandom::new().fill(&mut serial).map_err(|_| Error::Generate("no randomness".into()))?;
    serial[0] &= 0x7f; // positive
    serial[0] |= 0x40; // and 16 bytes long, never stripped
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(p)
}

fn gen_err(e: rcgen::Error) -> Error {
    Error::Generate(e.to_string())
}
