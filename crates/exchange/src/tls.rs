//! Mutual TLS between nodes and gateways (rustls, ring).
//!
//! Both sides pin certificates from the trust list instead of trusting a CA: a server asks
//! every client for a certificate and the application decides who it is
//! ([`crate::Directory::identify`]), so a refusal is an HTTP answer with a code rather than a
//! broken handshake; a client accepts a server only if it presents one of the certificates
//! the trust list gives for that URL. The handshake itself still proves that each side holds
//! the private key of the certificate it presents.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// A TLS identity: certificate chain and private key.
#[derive(Debug)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// The private key, for signing envelopes.
    pub signer: originlink_trust::PrivateKey,
    /// The end-entity certificate, DER.
    pub cert_der: Vec<u8>,
}

impl Identity {
    /// Loads `cert` (PEM) and `key` (PEM PKCS#8, 0600). The same key signs envelopes.
    pub fn load(cert: &Path, key: &Path) -> Result<Identity, originlink_trust::Error> {
        let certs = originlink_trust::keystore::load_certs(cert)?;
        let signer = originlink_trust::keystore::load_private_key(key)?;
        Ok(Self::from_parts(certs.iter().map(|c| c.der().to_vec()).collect(), signer))
    }

    /// From DER certificates (end-entity first) and a key.
    pub fn from_parts(chain: Vec<Vec<u8>>, signer: originlink_trust::PrivateKey) -> Identity {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signer.pkcs8_der().to_vec()));
        let cert_der = chain.first().cloned().unwrap_or_default();
        Identity { chain: chain.into_iter().map(CertificateDer::from).collect(), key, signer, cert_der }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side: asks for (but does not require) a client certificate.
pub fn server_config(id: &Identity) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = provider();
    let verifier = Arc::new(AnyClientCert { algs: provider.signature_verification_algorithms });
    let mut c = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(id.chain.clone(), id.key.clone_key())?;
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// The server side of a web page listener (the console): presents `id`, asks no client
/// certificate.
pub fn web_server_config(id: &Identity) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let mut c = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(id.chain.clone(), id.key.clone_key())?;
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// The client side: presents `id`, accepts only a server presenting one of `pinned` (DER).
pub fn client_config(
    id: &Identity,
    pinned: Vec<Vec<u8>>,
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    pinned_client(pinned, Some(id))
}

/// The client side without a client certificate (a person's tool on the user API, or a test
/// playing a stranger at the exchange endpoint): accepts only a server presenting one of
/// `pinned` (DER).
pub fn anonymous_client_config(pinned: Vec<Vec<u8>>) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    pinned_client(pinned, None)
}

fn pinned_client(
    pinned: Vec<Vec<u8>>,
    id: Option<&Identity>,
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = provider();
    let verifier = Arc::new(Pinned { certs: pinned, algs: provider.signature_verification_algorithms });
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut c = match id {
        Some(id) => builder.with_client_auth_cert(id.chain.clone(), id.key.clone_key())?,
        None => builder.with_no_client_auth(),
    };
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// The handshake-signature checks both verifiers share: the provider's algorithms, as rustls
/// itself does them. Pinning decides *which* certificate; these check that the peer holds its
/// key.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(message, cert, dss, &self.algs)
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(message, cert, dss, &self.algs)
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algs.supported_schemes()
        }
    };
}

/// Accepts any client certificate whose key signs the handshake; identity is decided by the
/// application against the trust list.
#[derive(Debug)]
struct AnyClientCert {
    algs: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    handshake_signatures!();
}

/// Accepts exactly the pinned server certificates, within their validity period.
#[derive(Debug)]
struct Pinned {
    certs: Vec<Vec<u8>>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.certs.iter().any(|c| c.as_slice() == end_entity.as_ref()) {
            return Err(rustls::Error::General(
                "server certificate is not the one the trust list pins".into(),
            ));
        }
        let cert = originlink_trust::x509::Cert::from_der(end_entity.as_ref())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let t = now.as_secs() as i64;
        if t < cert.not_before() || t > cert.not_after() {
            return Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired));
        }
        Ok(ServerCertVerified::assertion())
    }
    handshake_signatures!();
}

/// The client side for public HTTPS (a node's public endpoint, as any browser sees it): the
/// server's certificate must chain to one of the CA certificates in `roots_pem` and name the
/// host. Certificates of the bundle that cannot be read are skipped.
pub fn public_client_config(roots_pem: &str) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    use base64::Engine as _;
    let mut roots = rustls::RootCertStore::empty();
    for block in roots_pem.split("-----BEGIN CERTIFICATE-----").skip(1) {
        let Some((b64, _)) = block.split_once("-----END CERTIFICATE-----") else { continue };
        let b64: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(b64) {
            let _ = roots.add(CertificateDer::from(der));
        }
    }
    let mut c = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}
