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

/// A parsed number pattern, e.g. `KH-{year}-{seq:6}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPattern {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Year,
    Seq(usize),
    Country,
    Issuer,
}

impl NumberPattern {
    /// Parses a pattern. It needs exactly one `{seq}` / `{seq:N}` (N ≤ 12).
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = vec![];
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if rest[..open].contains('}') {
                return Err("unopened `}`".into());
            }
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}').ok_or("unclosed `{`")? + open;
            let name = &rest[open + 1..close];
            parts.push(match name {
                "year" => Part::Year,
                "country" => Part::Country,
                "issuer" => Part::Issuer,
                "seq" => Part::Seq(1),
                _ => match name.strip_prefix("seq:").and_then(|n| n.parse::<usize>().ok()) {
                    Some(w) if (1..=12).contains(&w) => Part::Seq(w),
                    _ => return Err(format!("unknown placeholder {{{name}}}")),
                },
            });
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            if rest.contains('}') {
                return Err("unopened `}`".into());
            }
            parts.push(Part::Lit(rest.to_owned()));
        }
        if parts.iter().filter(|p| matches!(p, Part::Seq(_))).count() != 1 {
            return Err("needs exactly one {seq} or {seq:N}".into());
        }
        Ok(NumberPattern { parts })
    }

    fn render_with(&self, year: i32, country: &str, issuer: &str, seq: Option<i64>) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Year => out.push_str(&year.to_string()),
                Part::Country => out.push_str(country),
                Part::Issuer => out.push_str(issuer),
                Part::Seq(w) => match seq {
                    Some(n) => out.push_str(&format!("{n:0w$}", w = *w)),
                    None => out.push('#'),
                },
            }
        }
        out
    }

    /// The number for sequence value `seq`.
    pub fn render(&self, year: i32, country: &str, issuer: &str, seq: i64) -> String {
        self.render_with(year, country, issuer, Some(seq))
    }

    /// The sequence scope: numbers are gapless within it (a new year starts a new scope when
    /// the pattern has `{year}`).
    pub fn scope(&self, year: i32, country: &str, issuer: &str) -> String {
        format!("{issuer}|{}", self.render_with(year, country, issuer, None))
    }
}

/// Signs a document with the authority's key. Object-safe so the node can hold one
/// `Arc<dyn DocumentSigner>`.
pub trait DocumentSigner: Send + Sync + fmt::Debug {
    /// Returns the signed document, byte for byte.
    fn sign(&self, doc: &[u8]) -> Result<Vec<u8>, String>;
}

/// The product signer: the authority's document-signing key and certificate from the key
/// directory `originlink keys init` writes, through `originlink_trust::sign` (enveloped
/// XML-DSig in the UBL extension for XML).
#[derive(Debug)]
pub struct TrustSigner {
    key: originlink_trust::PrivateKey,
    chain: Vec<Vec<u8>>,
}

impl TrustSigner {
    /// Loads `signing.key` and `signing.crt` from the authority key directory, after checking
    /// that no key in it is readable by group or others.
    pub fn load(keys: &Path) -> Result<Self, originlink_trust::Error> {
        originlink_trust::keystore::check_key_dir(keys)?;
        let dir = originlink_trust::keystore::AuthorityDir(keys.to_owned());
        let key = originlink_trust::keystore::load_private_key(&dir.signing_key())?;
        let certs = originlink_trust::keystore::load_certs(&dir.signing_cert())?;
        Ok(TrustSigner { key, chain: certs.iter().map(|c| c.der().to_vec()).collect() })
    }
}

impl DocumentSigner for TrustSigner {
    fn sign(&self, doc: &[u8]) -> Result<Vec<u8>, String> {
        originlink_trust::sign(doc, &self.key, &self.chain).map_err(|e| e.to_string())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_render_and_scope() {
        let p = NumberPattern::parse("KH-{year}-{seq:6}").expect("valid");
        assert_eq!(p.render(2026, "KH", "KH-MOC", 123), "KH-2026-000123");
        assert_eq!(p.render(2026, "KH", "KH-MOC", 1_234_567), "KH-2026-1234567");
        assert_eq!(p.scope(2026, "KH", "KH-MOC"), "KH-MOC|KH-2026-#");
        assert_ne!(p.scope(2027, "KH", "KH-MOC"), p.scope(2026, "KH", "KH-MOC"));
        let q = NumberPattern::parse("{country}/{issuer}/{seq}").expect("valid");
        assert_eq!(q.render(2026, "TH", "DFT", 7), "TH/DFT/7");
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["KH-{year}", "{seq}{seq}", "{seq:0}", "{seq:13}", "{nope}{seq}", "{seq", "x}{seq}"] {
            assert!(NumberPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
