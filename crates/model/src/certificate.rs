//! The certificate of origin: ATIGA Form D boxes 1–13 and the RCEP certificate.
//!
//! Box numbers in the field docs are Form D's. Fields that only RCEP has say so.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::agreement::Agreement;
use crate::codes::{CountryCode, PackageKind};
use crate::criterion::OriginCriterion;
use crate::error::ParseError;
use crate::hs::HsCode;
use crate::money::{Money, Quantity};

/// A certificate number: 1 to 35 characters (UN/EDIFACT an..35) of letters, digits and
/// `-`, `/`, `.`, starting with a letter or digit. Error code `CERT_NUMBER_INVALID`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CertificateNumber(String);

impl CertificateNumber {
    /// Parses a certificate number.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = !s.is_empty()
            && s.len() <= 35
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'.'));
        if ok { Ok(CertificateNumber(s.to_owned())) } else { Err(ParseError::new("CERT_NUMBER_INVALID", s)) }
    }
    /// The number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CertificateNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl TryFrom<String> for CertificateNumber {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, ParseError> {
        Self::parse(&s)
    }
}
impl From<CertificateNumber> for String {
    fn from(c: CertificateNumber) -> String {
        c.0
    }
}

/// What kind of proof of origin the document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProofKind {
    /// A certificate of origin issued by an issuing authority.
    Certificate,
    /// RCEP: a declaration of origin by an approved exporter.
    ApprovedExporterDeclaration,
    /// RCEP: a declaration of origin by an exporter or producer.
    ExporterDeclaration,
}

impl ProofKind {
    /// Stable code used on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            ProofKind::Certificate => "certificate",
            ProofKind::ApprovedExporterDeclaration => "approved-exporter-declaration",
            ProofKind::ExporterDeclaration => "exporter-declaration",
        }
    }
    /// Parses the stable code. Error code `PROOF_KIND_UNKNOWN`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        match s {
            "certificate" => Ok(ProofKind::Certificate),
            "approved-exporter-declaration" => Ok(ProofKind::ApprovedExporterDeclaration),
            "exporter-declaration" => Ok(ProofKind::ExporterDeclaration),
            _ => Err(ParseError::new("PROOF_KIND_UNKNOWN", s)),
        }
    }
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Street and number.
    pub street: Option<String>,
    /// City or town.
    pub city: Option<String>,
    /// Postal code.
    pub postcode: Option<String>,
    /// Country.
    pub country: CountryCode,
}

/// A trader or authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// Registered name.
    pub name: String,
    /// Business or tax registration number, if any.
    pub id: Option<String>,
    /// Address.
    pub address: Address,
}

/// Box 3: means of transport and route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transport {
    /// Departure (shipment) date.
    pub departure_date: NaiveDate,
    /// Mode of transport.
    pub mode: TransportMode,
    /// Vessel name and voyage, or flight number.
    pub vessel: Option<String>,
    /// Port of loading.
    pub port_of_loading: Port,
    /// Port of discharge.
    pub port_of_discharge: Port,
}

/// A port or place, with its UN/LOCODE when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// UN/LOCODE, five characters (e.g. `KHPNH`).
    pub code: Option<String>,
    /// Name.
    pub name: String,
}

/// Mode of transport, UN/ECE Recommendation 19.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportMode {
    /// 1: maritime.
    Sea,
    /// 2: rail.
    Rail,
    /// 3: road.
    Road,
    /// 4: air.
    Air,
    /// 5: mail.
    Mail,
    /// 6: multimodal.
    Multimodal,
    /// 8: inland water.
    InlandWater,
}

impl TransportMode {
    /// The Rec 19 code.
    pub fn code(&self) -> u8 {
        match self {
            TransportMode::Sea => 1,
            TransportMode::Rail => 2,
            TransportMode::Road => 3,
            TransportMode::Air => 4,
            TransportMode::Mail => 5,
            TransportMode::Multimodal => 6,
            TransportMode::InlandWater => 8,
        }
    }
    /// From a Rec 19 code. Error code `TRANSPORT_MODE_UNKNOWN`.
    pub fn from_code(s: &str) -> Result<Self, ParseError> {
        Ok(match s {
            "1" => TransportMode::Sea,
            "2" => TransportMode::Rail,
            "3" => TransportMode::Road,
            "4" => TransportMode::Air,
            "5" => TransportMode::Mail,
            "6" => TransportMode::Multimodal,
            "8" => TransportMode::InlandWater,
            _ => return Err(ParseError::new("TRANSPORT_MODE_UNKNOWN", s)),
        })
    }
}

/// Box 7: number and kind of packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packages {
    /// How many.
    pub count: u32,
    /// What kind (UN/ECE Rec 21).
    pub kind: PackageKind,
}

/// Box 10: the invoice an item is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// Invoice number.
    pub number: String,
    /// Invoice date.
    pub date: NaiveDate,
}

/// One goods line: boxes 5 to 10.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Box 5: item number, 1, 2, 3 …
    pub number: u32,
    /// Box 6: marks and numbers on packages.
    pub marks: String,
    /// Box 7: packages.
    pub packages: Packages,
    /// Box 7: description of goods.
    pub description: String,
    /// Box 7: HS code (6 digits for RCEP; national 8–10 digits accepted for ATIGA).
    pub hs: HsCode,
    /// Box 8: origin criterion.
    pub criterion: OriginCriterion,
    /// RCEP country of origin (for ATIGA: the member where the goods originate).
    pub origin_country: CountryCode,
    /// Box 9: quantity.
    pub quantity: Quantity,
    /// Box 9: gross weight, if stated.
    pub gross_weight: Option<Quantity>,
    /// Box 9: FOB value (required when the criterion uses an RVC).
    pub fob: Option<Money>,
    /// Box 10: invoice.
    pub invoice: Invoice,
}

/// Box 11: the exporter's declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    /// Place where it was signed.
    pub place: String,
    /// Date it was signed.
    pub date: NaiveDate,
    /// Name of the authorised signatory.
    pub signatory: String,
}

/// Box 12: certification by the issuing authority. Present once issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certification {
    /// The issuing authority.
    pub authority: Party,
    /// Place of issue.
    pub place: String,
    /// Issue date.
    pub date: NaiveDate,
    /// The certifying officer.
    pub officer: String,
}

/// Box 4: for official use by the importing customs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficialUse {
    /// Whether preferential treatment was given.
    pub preference_given: bool,
    /// Reason, when not given.
    pub reason: Option<String>,
}

/// A trade fair where the goods are exhibited (box 13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exhibition {
    /// Name of the exhibition.
    pub name: String,
    /// Where it takes place.
    pub place: String,
}

/// A reference to a certificate: issuing country and number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CertificateRef {
    /// Issuing country.
    pub country: CountryCode,
    /// Certificate number.
    pub number: CertificateNumber,
}

/// Box 13 flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    /// Third-country (ATIGA) or third-party (RCEP) invoicing, with the invoicing party.
    pub third_party_invoicing: Option<Party>,
    /// Goods sent to an exhibition.
    pub exhibition: Option<Exhibition>,
    /// Back-to-back certificate, with the original it was made from.
    pub back_to_back: Option<CertificateRef>,
    /// De minimis applied.
    pub de_minimis: bool,
    /// Accumulation applied.
    pub accumulation: bool,
    /// ATIGA partial cumulation applied.
    pub partial_cumulation: bool,
    /// Issued retroactively.
    pub issued_retroactively: bool,
}

/// An electronic certificate of origin, or an application for one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    /// The agreement it claims preference under.
    pub agreement: Agreement,
    /// Certificate, or (RCEP) a declaration of origin.
    pub kind: ProofKind,
    /// Unique number, assigned at issue; `None` on an application.
    pub number: Option<CertificateNumber>,
    /// The exporter's own application reference.
    pub reference: String,
    /// Version: 1, then one more for each amendment or replacement.
    pub version: u32,
    /// The certificate this one replaces (amend/replace).
    pub replaces: Option<CertificateRef>,
    /// Exporting and issuing country.
    pub exporting_country: CountryCode,
    /// Importing country.
    pub importing_country: CountryCode,
    /// Box 1: exporter.
    pub exporter: Party,
    /// RCEP: producer, when known and not the exporter.
    pub producer: Option<Party>,
    /// Box 2: consignee (importer).
    pub consignee: Party,
    /// Box 3: transport and route.
    pub transport: Transport,
    /// Boxes 5–10: goods.
    pub items: Vec<Item>,
    /// Box 11: exporter's declaration.
    pub declaration: Declaration,
    /// Box 12: certification, once issued.
    pub certification: Option<Certification>,
    /// Box 4: official use by the importing customs.
    pub official_use: Option<OfficialUse>,
    /// Box 13 flags.
    pub flags: Flags,
    /// RCEP: the approved exporter's authorization code.
    pub approved_exporter: Option<String>,
    /// Remarks.
    pub remarks: Option<String>,
}

impl Certificate {
    /// The issue date, once certified.
    pub fn issue_date(&self) -> Option<NaiveDate> {
        self.certification.as_ref().map(|c| c.date)
    }

    /// Last day the certificate is valid (inclusive), once issued.
    pub fn valid_until(&self) -> Option<NaiveDate> {
        let months = self.agreement.settings().validity_months;
        self.issue_date()
            .and_then(|d| d.checked_add_months(chrono::Months::new(months)))
            .and_then(|d| d.pred_opt())
    }
}
