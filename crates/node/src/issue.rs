//! Issuing: the certificate number pattern, the document that gets signed, and the signer.
//!
//! What is signed is always the UBL 2.4 XML written from the application's document, with the
//! number, version, box 12 certification and (for amendments / back-to-back) the references
//! filled in. Those bytes, exactly as the signer returns them, are what the store keeps.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use originlink_model::{Address, CertificateNumber, CertificateRef, Certification, CountryCode, Party};
use originlink_store::{Issue, Signed};

use crate::config::AuthorityConfig;
pub use crate::numbering::NumberPattern;

/// Signs a document with the authority's key. Object-safe so the node can hold one
/// `Arc<dyn DocumentSigner>`.
pub trait DocumentSigner: Send + Sync + fmt::Debug {
    /// Returns the signed document, byte for byte.
    fn sign(&self, doc: &[u8]) -> Result<Vec<u8>, String>;
    /// Returns the signed status list (JWS with the same key and certificate chain).
    fn sign_status_list(&self, list: &originlink_trust::statuslist::StatusList) -> Result<Vec<u8>, String>;
}

/// The product signer: the authority's document-signing key and certificate from the key
/// directory `originlink keys init` writes, through `originlink_trust::sign` (enveloped
/// XML-DSig in the UBL extension for XML).
#[derive(Debug)]
pub struct TrustSigner {
    key: originlink_trust::PrivateKey,
    chain: Vec<Vec<u8>>,
    country: Option<String>,
}

impl TrustSigner {
    /// Loads `signing.key` and `signing.crt` from the authority key directory, after checking
    /// that no key in it is readable by group or others.
    pub fn load(keys: &Path) -> Result<Self, originlink_trust::Error> {
        originlink_trust::keystore::check_key_dir(keys)?;
        let dir = originlink_trust::keystore::AuthorityDir(keys.to_owned());
        let key = originlink_trust::keystore::load_private_key(&dir.signing_key())?;
        let certs = originlink_trust::keystore::load_certs(&dir.signing_cert())?;
        let country = certs.first().and_then(|c| c.country()).map(str::to_owned);
        Ok(TrustSigner { key, chain: certs.iter().map(|c| c.der().to_vec()).collect(), country })
    }

    /// The country of the signing certificate's subject (`C=`): the only country whose
    /// certificates this key can issue so that a destination accepts them.
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }
}

impl DocumentSigner for TrustSigner {
    fn sign(&self, doc: &[u8]) -> Result<Vec<u8>, String> {
        originlink_trust::sign(doc, &self.key, &self.chain).map_err(|e| e.to_string())
    }

    fn sign_status_list(&self, list: &originlink_trust::statuslist::StatusList) -> Result<Vec<u8>, String> {
        let json = serde_json::to_vec(list).map_err(|e| e.to_string())?;
        originlink_trust::jws::sign_json(&json, &self.key, &self.chain).map_err(|e| e.to_string())
    }
}

/// Everything an approval needs besides the application: who issues, with what, when.
#[derive(Debug, Clone)]
pub struct Issuer {
    /// The authority's configuration.
    pub authority: AuthorityConfig,
    /// The number pattern.
    pub pattern: NumberPattern,
    /// The signer.
    pub signer: Arc<dyn DocumentSigner>,
}

/// References an approval writes into the document besides the number.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// The received certificate of a back-to-back application.
    pub back_to_back: Option<(String, String)>,
}

impl Issuer {
    /// The numbering for approvals made on `date`.
    pub fn numbering(&self, date: NaiveDate) -> originlink_store::Numbering {
        originlink_store::Numbering {
            issuer: self.authority.id.clone(),
            scope: self.pattern.scope(date.year(), &self.authority.country, &self.authority.id),
        }
    }

    /// Builds and signs the certificate for `issue` (runs inside the approving transaction).
    pub fn sign_issue(
        &self,
        issue: &Issue,
        date: NaiveDate,
        officer: &str,
        links: &Links,
    ) -> Result<Signed, String> {
        self.sign_issue_to(issue, date, officer, links).map(|(s, _)| s)
    }

    /// [`Issuer::sign_issue`], also returning the importing country (where the exchange sends it).
    pub fn sign_issue_to(
        &self,
        issue: &Issue,
        date: NaiveDate,
        officer: &str,
        links: &Links,
    ) -> Result<(Signed, CountryCode), String> {
        let number = match (&issue.number, issue.seq) {
            (Some(n), _) => n.clone(),
            (None, Some(seq)) => {
                self.pattern.render(date.year(), &self.authority.country, &self.authority.id, seq)
            }
            (None, None) => return Err("no number allocated".into()),
        };
        let number = CertificateNumber::parse(&number).map_err(|e| format!("number {number:?}: {e}"))?;
        let limits = originlink_formats::Limits::default();
        let (_, mut cert) = originlink_formats::read(&issue.application.document, &limits)
            .map_err(|p| format!("stored application no longer reads: {} problems", p.len()))?;
        let country = CountryCode::parse(&self.authority.country).map_err(|e| e.to_string())?;
        cert.number = Some(number.clone());
        cert.version = u32::try_from(issue.version).map_err(|_| "version out of range")?;
        cert.replaces =
            if issue.version > 1 { Some(CertificateRef { country, number: number.clone() }) } else { None };
        if let Some((c, n)) = &links.back_to_back {
            cert.flags.back_to_back = Some(CertificateRef {
                country: CountryCode::parse(c).map_err(|e| e.to_string())?,
                number: CertificateNumber::parse(n).map_err(|e| e.to_string())?,
            });
        }
        let city = self.authority.city.clone();
        cert.certification = Some(Certification {
            authority: Party {
                name: self.authority.name.clone(),
                id: Some(self.authority.id.clone()),
                address: Address { street: None, city: city.clone(), postcode: None, country },
            },
            place: city.unwrap_or_else(|| self.authority.country.clone()),
            date,
            officer: officer.to_owned(),
        });
        let xml = originlink_formats::xml::write(&cert);
        let bytes = self.signer.sign(xml.as_bytes())?;
        Ok((
            Signed { number: number.as_str().to_owned(), bytes, messages: Vec::new() },
            cert.importing_country,
        ))
    }
}
