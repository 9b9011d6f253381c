//! Signing and verifying whole certificates of origin, UBL XML or edi3 JSON.
//!
//! - XML: enveloped XML-DSig by `originlink-xmldsig`, placed in the UBL extension.
//! - JSON: the edi3 object plus a top-level `"signature"` member: a detached JWS over the
//!   RFC 8785 canonical form of the object without that member ([`crate::jws::sign_json`]).
//!
//! The issuing country and the signing day come from the signed document itself (see
//! [`xml_facts`], [`json_facts`]); for XML they are read from the very DOM the signature was
//! verified over ([`facts_from_root`] through `originlink_xmldsig::verify_enveloped_with`).

use chrono::{DateTime, NaiveDate, Utc};
use originlink_formats::Format;
use originlink_model::CountryCode;
use originlink_xmldsig::FastVerify;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::jws::{self, JwsFailure};
use crate::keys::PrivateKey;
use crate::policy::{DocumentFacts, InvalidReason, Verdict, Verifier};
use crate::x509::Cert;

const CBC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";
const CAC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";

/// Input that is neither readable XML nor a JSON object: nothing to verify (CLI exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable document ({code}): {message}")]
pub struct Unreadable {
    /// `FORMAT_UNKNOWN`, `XML_MALFORMED`, `JSON_MALFORMED`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Signs a certificate of origin (format detected from the first byte). `chain_der` is the
/// signer's certificate first, then any intermediates.
pub fn sign(doc: &[u8], key: &PrivateKey, chain_der: &[Vec<u8>]) -> Result<Vec<u8>> {
    match originlink_formats::detect(doc) {
        Some(Format::Xml) => {
            let k = originlink_xmldsig::SigningKey::from_pkcs8(key.pkcs8_der())
                .map_err(|e| Error::Sign(format!("{} ({})", e, e.code())))?;
            originlink_xmldsig::sign_enveloped(
                doc,
                &k,
                chain_der,
                originlink_xmldsig::Placement::UblExtension,
            )
            .map_err(|e| Error::Sign(format!("{} ({})", e, e.code())))
        }
        Some(Format::Json) => jws::sign_json(doc, key, chain_der),
        None => Err(Error::Sign("neither XML (starts with '<') nor JSON (starts with '{')".into())),
    }
}

impl Verifier {
    /// Verifies a signed certificate of origin, XML or JSON, at time `now`.
    pub fn verify(&self, doc: &[u8], now: DateTime<Utc>) -> std::result::Result<Verdict, Unreadable> {
        match originlink_formats::detect(doc) {
            Some(Format::Xml) => self.verify_xml(doc, now),
            Some(Format::Json) => self.verify_json(doc, now),
            None => Err(Unreadable {
                code: "FORMAT_UNKNOWN",
                message: "neither XML (starts with '<') nor JSON (starts with '{')".into(),
            }),
        }
    }

    /// [`Verifier::verify`], and for a valid UBL certificate verified by the streaming pass,
    /// the [`SignedHeader`] that pass read on its way: what a receiving node checks against the
    /// envelope and stores, without parsing the document a second time. `None` when the
    /// document is JSON, not valid, or took the DOM path, or when a header element is missing
    /// or repeated: the caller then reads the document itself.
    pub fn verify_with_header(
        &self,
        doc: &[u8],
        now: DateTime<Utc>,
    ) -> std::result::Result<(Verdict, Option<SignedHeader>), Unreadable> {
        if originlink_formats::detect(doc) != Some(Format::Xml) {
            return self.verify(doc, now).map(|v| (v, None));
        }
        let (verdict, extra) = self.verify_xml_capturing(doc, now, &HEADER_PATHS)?;
        let header = match (&verdict, extra.as_slice()) {
            (Verdict::Valid(_), [Some(country), Some(n), Some(v), Some(i), Some(e)]) => {
                SignedHeader::read(country, n, v, i, e)
            }
            _ => None,
        };
        Ok((verdict, header))
    }

    /// Verifies a signed UBL document: XML-DSig structure, digest and signature first, then
    /// the policy.
    ///
    /// The streaming fast path (`originlink_xmldsig::verify_enveloped_fast`) checks the
    /// signature and picks up the issuing country and issue date in one pass over the bytes;
    /// whatever it is not sure about (unusual XML, any refusal other than a digest or signature
    /// mismatch, facts that are missing or repeated) goes through [`Verifier::verify_xml_reference`],
    /// which gives the same verdict.
    pub fn verify_xml(&self, xml: &[u8], now: DateTime<Utc>) -> std::result::Result<Verdict, Unreadable> {
        self.verify_xml_capturing(xml, now, &FACT_PATHS).map(|(v, _)| v)
    }

    /// [`Verifier::verify_xml`] with `paths` captured by the streaming pass: the first two must
    /// be [`FACT_PATHS`]; the texts of the others come back (as the issuing country's code
    /// followed by them) when that pass verified the document, else nothing.
    fn verify_xml_capturing(
        &self,
        xml: &[u8],
        now: DateTime<Utc>,
        paths: &[originlink_xmldsig::CapturePath<'_>],
    ) -> std::result::Result<(Verdict, Vec<Option<String>>), Unreadable> {
        let limits = originlink_xmldsig::Limits::default();
        match originlink_xmldsig::verify_enveloped_fast(xml, &limits, Some(&self.keys), paths) {
            FastVerify::Verified(verified, mut captured) => {
                if let [Some(country), Some(date), ..] = captured.as_slice() {
                    let verdict = self.check_xml(&verified, facts_from_text(country, date), now);
                    captured.remove(1);
                    return Ok((verdict, captured));
                }
            }
            FastVerify::Rejected(e) => {
                let v = Verdict::invalid(InvalidReason::from_xmldsig_code(e.code()), e.to_string());
                return Ok((v, Vec::new()));
            }
            FastVerify::Unsure => {}
        }
        self.verify_xml_reference(xml, now).map(|v| (v, Vec::new()))
    }

    /// [`Verifier::verify_xml`] over a DOM only (`originlink_xmldsig::verify_enveloped_with`):
    /// the reference the fast path is tested against, and where it defers to.
    pub fn verify_xml_reference(
        &self,
        xml: &[u8],
        now: DateTime<Utc>,
    ) -> std::result::Result<Verdict, Unreadable> {
        let limits = originlink_xmldsig::Limits::default();
        // The facts are read from the very DOM that was verified: no second parse or scan.
        let (verified, facts) = match originlink_xmldsig::verify_enveloped_with(
            xml,
            &limits,
            Some(&self.keys),
            facts_from_root,
        ) {
            Ok(v) => v,
            Err(e) => {
                if e.code() == "MALFORMED" {
                    // Tell unreadable input from a malformed signature in well-formed XML.
                    well_formed(xml)?;
                }
                return Ok(Verdict::invalid(InvalidReason::from_xmldsig_code(e.code()), e.to_string()));
            }
        };
        Ok(self.check_xml(&verified, facts, now))
    }

    fn check_xml(
        &self,
        verified: &originlink_xmldsig::Verified,
        facts: std::result::Result<DocumentFacts, String>,
        now: DateTime<Utc>,
    ) -> Verdict {
        let facts = match facts {
            Ok(f) => f,
            Err(detail) => return Verdict::invalid(InvalidReason::DocumentIncomplete, detail),
        };
        let alg = match verified.algorithm {
            originlink_xmldsig::SignatureAlgorithm::EcdsaP256Sha256 => "ECDSA-SHA256",
            originlink_xmldsig::SignatureAlgorithm::RsaPkcs1Sha256 => "RSA-SHA256",
        };
        self.check(&verified.signer_certificate_der, &verified.other_certificates_der, &facts, alg, now)
    }

    /// Verifies a signed edi3 JSON document: the JWS over the canonical form first, then the
    /// policy.
    pub fn verify_json(&self, json: &[u8], now: DateTime<Utc>) -> std::result::Result<Verdict, Unreadable> {
        if json.len() > originlink_formats::DEFAULT_MAX_BYTES {
            return Ok(Verdict::invalid(
                InvalidReason::DocumentTooLarge,
                format!("{} bytes, limit {}", json.len(), originlink_formats::DEFAULT_MAX_BYTES),
            ));
        }
        let signed = jws::split_signed_json(json)
            .map_err(|e| Unreadable { code: "JSON_MALFORMED", message: e.to_string() })?;
        let jws = match signed.jws {
            None => return Ok(Verdict::invalid(InvalidReason::SignatureMissing, "no \"signature\" member")),
            Some(Err(JwsFailure::AlgorithmNotAllowed(a))) => {
                return Ok(Verdict::invalid(InvalidReason::AlgorithmNotAllowed, format!("JWS alg {a:?}")));
            }
            Some(Err(e)) => return Ok(Verdict::invalid(InvalidReason::Malformed, format!("{e:?}"))),
            Some(Ok(j)) => j,
        };
        let Some(first) = jws.x5c.first() else {
            return Ok(Verdict::invalid(InvalidReason::CertificateMissing, "the JWS header has no x5c"));
        };
        let signer = match Cert::from_der(first) {
            Ok(c) => c,
            Err(e) => return Ok(Verdict::invalid(InvalidReason::BadCertificate, e.to_string())),
        };
        if signer.key_algorithm().is_none() {
            return Ok(Verdict::invalid(
                InvalidReason::AlgorithmNotAllowed,
                "signer key is not P-256 or RSA",
            ));
        }
        if jws.verify(&signed.canonical, &signer).is_err() {
            return Ok(Verdict::invalid(
                InvalidReason::BadSignature,
                format!(
                    "the {} signature does not verify over the document: it was changed after signing, \
                     or signed with another key",
                    jws.alg
                ),
            ));
        }
        let facts = match json_facts(&signed.document) {
            Ok(f) => f,
            Err(detail) => return Ok(Verdict::invalid(InvalidReason::DocumentIncomplete, detail)),
        };
        Ok(self.check(first, &jws.x5c[1..], &facts, &jws.alg, now))
    }
}

fn well_formed(xml: &[u8]) -> std::result::Result<(), Unreadable> {
    let bad = |m: String| Unreadable { code: "XML_MALFORMED", message: m };
    let text = std::str::from_utf8(xml).map_err(|e| bad(format!("not UTF-8: {e}")))?;
    parse_bounded(text).map(|_| ()).map_err(bad)
}

/// The issuing country and signing day of a UBL CertificateOfOrigin: the text of
/// `cac:CertificateOfOriginApplication/cac:IssuingCountry/cbc:IdentificationCode` and of the
/// root's `cbc:IssueDate` (box 12, the issue date). Each must appear exactly once.
pub fn xml_facts(xml: &[u8]) -> std::result::Result<DocumentFacts, String> {
    let text = std::str::from_utf8(xml).map_err(|e| e.to_string())?;
    let doc = parse_bounded(text)?;
    facts_from_root(doc.root_element())
}

/// Parses untrusted XML under [`originlink_xmlbounds::Bounds::DEFAULT`] (checked first, in
/// linear time, so roxmltree never sees hostile nesting or attribute counts).
fn parse_bounded(text: &str) -> std::result::Result<roxmltree::Document<'_>, String> {
    let bounds = originlink_xmlbounds::Bounds::DEFAULT;
    originlink_xmlbounds::check(text.as_bytes(), &bounds).map_err(|e| format!("{}: {e}", e.code()))?;
    let opts = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: bounds.max_nodes as u32 };
    roxmltree::Document::parse_with_options(text, opts).map_err(|e| e.to_string())
}

/// [`xml_facts`] over an already parsed document's root element.
pub fn facts_from_root(root: roxmltree::Node<'_, '_>) -> std::result::Result<DocumentFacts, String> {
    let app = only(root, CAC, "CertificateOfOriginApplication")?;
    let country = only(only(app, CAC, "IssuingCountry")?, CBC, "IdentificationCode")?;
    let country = text_of(country)?;
    let date = text_of(only(root, CBC, "IssueDate")?)?;
    facts_from_text(&country, &date)
}

/// The element paths (below the root) [`facts_from_root`] reads, for the streaming verifier:
/// the issuing country's code, then the issue date.
const FACT_PATHS: [originlink_xmldsig::CapturePath<'static>; 2] = [
    &[(CAC, "CertificateOfOriginApplication"), (CAC, "IssuingCountry"), (CBC, "IdentificationCode")],
    &[(CBC, "IssueDate")],
];

/// What identifies a received certificate, read from its signed text by the streaming
/// verifier ([`Verifier::verify_with_header`]): each value is signed content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeader {
    /// The certificate number (`cbc:ID`, trimmed).
    pub number: String,
    /// Its version (`cbc:VersionID`).
    pub version: u32,
    /// The exporting (issuing) country.
    pub exporting_country: CountryCode,
    /// The importing country (the shipment's delivery address).
    pub importing_country: CountryCode,
    /// The exporter's name, as written.
    pub exporter: String,
}

impl SignedHeader {
    fn read(
        country: &str,
        number: &str,
        version: &str,
        importing: &str,
        exporter: &str,
    ) -> Option<SignedHeader> {
        let number = number.trim();
        let version = version.trim();
        // As the formats crate reads them: the version a whole number of at most ten digits,
        // the number a certificate number, the name not empty.
        if version.is_empty() || version.len() > 10 || !version.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if originlink_model::CertificateNumber::parse(number).is_err() || exporter.trim().is_empty() {
            return None;
        }
        Some(SignedHeader {
            number: number.to_owned(),
            version: version.parse().ok()?,
            exporting_country: CountryCode::parse(country.trim()).ok()?,
            importing_country: CountryCode::parse(importing.trim()).ok()?,
            exporter: exporter.to_owned(),
        })
    }
}

/// [`FACT_PATHS`] and then what [`SignedHeader`] holds: the number, the version, the importing
/// country and the exporter's name.
const HEADER_PATHS: [originlink_xmldsig::CapturePath<'static>; 6] = [
    FACT_PATHS[0],
    FACT_PATHS[1],
    &[(CBC, "ID")],
    &[(CBC, "VersionID")],
    &[
        (CAC, "CertificateOfOriginApplication"),
        (CAC, "Shipment"),
        (CAC, "Delivery"),
        (CAC, "DeliveryAddress"),
        (CAC, "Country"),
        (CBC, "IdentificationCode"),
    ],
    &[(CAC, "ExporterParty"), (CAC, "PartyName"), (CBC, "Name")],
];

/// The facts from the text of the issuing country's code and of the issue date.
fn facts_from_text(country: &str, date: &str) -> std::result::Result<DocumentFacts, String> {
    let country = country.trim();
    let issuing_country = CountryCode::parse(country)
        .map_err(|_| format!("issuing country {country:?} is not a country code"))?;
    let date = date.trim();
    let signing_date =
        issue_date(date).ok_or_else(|| format!("IssueDate {date:?} is not a date (YYYY-MM-DD[Z|±hh:mm])"))?;
    Ok(DocumentFacts { issuing_country, signing_date })
}

/// The signing day from the (trimmed) text of `cbc:IssueDate`: an `xsd:date`, with or without a
/// time zone (`2026-12-02`, `2026-12-02Z`, `2026-12-02+07:00`), read by the formats crate's UBL
/// reader and kept as the calendar date written; or, as before zones were read, whatever
/// chrono's `%Y-%m-%d` accepts. Shared by the DOM path and the streaming path, so that they
/// agree.
pub(crate) fn issue_date(date: &str) -> Option<NaiveDate> {
    originlink_formats::xml::parse_date(date).or_else(|| NaiveDate::parse_from_str(date, "%Y-%m-%d").ok())
}

/// The element's whole text as canonical XML sees it (text and CDATA joined, comments
/// dropped); an element child is refused.
fn text_of(n: roxmltree::Node<'_, '_>) -> std::result::Result<String, String> {
    let mut out = String::new();
    for c in n.children() {
        if c.is_element() {
            return Err(format!("{} must hold text only", n.tag_name().name()));
        }
        if c.is_text() {
            out.push_str(c.text().unwrap_or(""));
        }
    }
    Ok(out)
}

fn only<'a, 'i>(
    parent: roxmltree::Node<'a, 'i>,
    ns: &str,
    name: &str,
) -> std::result::Result<roxmltree::Node<'a, 'i>, String> {
    let mut it = parent.children().filter(|n| n.is_element() && n.has_tag_name((ns, name)));
    match (it.next(), it.next()) {
        (Some(n), None) => Ok(n),
        (None, _) => Err(format!("no {name} under {}", parent.tag_name().name())),
        (Some(_), Some(_)) => Err(format!("more than one {name} under {}", parent.tag_name().name())),
    }
}

/// The issuing country and signing day of an edi3 document, read by the formats crate:
/// the exporting (issuing) country and the box 12 issue date.
pub fn json_facts(doc: &Value) -> std::result::Result<DocumentFacts, String> {
    let bytes = serde_json::to_vec(doc).map_err(|e| e.to_string())?;
    let cert = originlink_formats::json::read(&bytes, &originlink_formats::Limits::default()).map_err(
        |problems| {
            let list: Vec<String> = problems.iter().take(5).map(|p| format!("{p:?}")).collect();
            format!("the signed document is not a readable edi3 certificate: {}", list.join("; "))
        },
    )?;
    let signing_date = cert.issue_date().ok_or("the signed document has no issue date (box 12)")?;
    Ok(DocumentFacts { issuing_country: cert.exporting_country, signing_date })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_dates_read_as_chrono_reads_them_plus_time_zones() {
        for s in [
            "2026-01-01",
            "0000-01-01",
            "9999-12-31",
            "2024-02-29",
            "2025-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-01-32",
            "2026-1-01",
            "2026-01-1",
            "+2026-01-01",
            "2026/01/01",
            "2026-01-0a",
            "20260-1-01",
            "",
        ] {
            assert_eq!(issue_date(s), NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(), "{s:?}");
        }
        let d = NaiveDate::from_ymd_opt(2026, 12, 2);
        for s in
            ["2026-12-02Z", "2026-12-02+07:00", "2026-12-02-05:00", "2026-12-02+14:00", "2026-12-02-00:00"]
        {
            assert_eq!(issue_date(s), d, "{s:?}");
        }
        for s in [
            "2026-12-02+15:00",
            "2026-12-02+14:01",
            "2026-12-02+07:60",
            "2026-12-02+0700",
            "2026-12-02+7:00",
            "2026-12-02 +07:00",
            "2026-12-02z",
            "2026-12-02T00:00:00Z",
            "2026-02-30+07:00",
        ] {
            assert_eq!(issue_date(s), None, "{s:?}");
        }
    }
}
