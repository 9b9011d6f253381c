//! OASIS UBL 2.4 CertificateOfOrigin XML. Mapping table: `docs/formats.md` (section
//! "UBL 2.4 XML").
//!
//! - [`write`]: the certificate as a schema-valid UBL 2.4 instance (deterministic, UTF-8,
//!   compact: no whitespace between elements). This is the form that is signed and exchanged.
//!   It never writes `ext:UBLExtensions`; the signer adds it.
//! - [`write_pretty`]: the same document indented by 2 spaces, for people.
//! - [`read`]: the hardened reader. Size limit first (`DOCUMENT_TOO_LARGE`), UTF-8 only
//!   (`ENCODING`), no DTD (`XML_DTD_FORBIDDEN`: so no entity declaration, expansion or
//!   external entity), well-formedness (`XML_MALFORMED`), root `CertificateOfOrigin` in the
//!   UBL namespace (`XML_WRONG_ROOT`, `XML_WRONG_NAMESPACE`), then every field problem
//!   (`REQUIRED` and the model's codes) with an XPath. `ext:UBLExtensions` and any element
//!   the mapping does not use are skipped.
//! - [`xpath_for`]: the XPath of a model path, for problems found by
//!   `originlink_model::validate`.

use originlink_model::{Certificate, Problem};

use crate::Limits;

mod paths;
mod reader;
mod writer;

/// Namespace of the root element.
pub const NS_COO: &str = "urn:oasis:names:specification:ubl:schema:xsd:CertificateOfOrigin-2";
/// Namespace of UBL aggregate components (`cac:`).
pub const NS_CAC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";
/// Namespace of UBL basic components (`cbc:`).
pub const NS_CBC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";
/// `cbc:CustomizationID` written by OriginLink: names the mapping convention of `docs/formats.md`.
pub const CUSTOMIZATION_ID: &str = "urn:originlink:eco:ubl-2.4:1.0";

/// Writes a certificate as a compact UBL 2.4 CertificateOfOrigin document (UTF-8, with
/// declaration): the form that is signed and exchanged.
pub fn write(cert: &Certificate) -> String {
    writer::write(cert, false)
}

/// Writes the same document indented by 2 spaces, for people to read. Reading it back gives the
/// same certificate as reading [`write`]'s output.
pub fn write_pretty(cert: &Certificate) -> String {
    writer::write(cert, true)
}

/// Reads a UBL 2.4 CertificateOfOrigin document. Refuses DTDs, entities and oversize input.
/// On failure, every problem found.
pub fn read(bytes: &[u8], limits: &Limits) -> Result<Certificate, Vec<Problem>> {
    reader::read(bytes, limits)
}

/// Reads a UBL date (`xsd:date`): `YYYY-MM-DD`, optionally with a time zone (`Z`, `+07:00`,
/// `-05:00`; at most 14:00 either way), as the reader reads `cbc:IssueDate` and every other
/// date. The calendar date is kept as written, whatever the zone. `None` for anything else
/// (no surrounding whitespace either: trim first).
pub fn parse_date(s: &str) -> Option<originlink_model::NaiveDate> {
    reader::xsd_date(s)
}

/// The XPath of the UBL element that carries a model field, given the model's JSON-pointer
/// path as used by `originlink_model::validate` (e.g. `/items/2/fob` gives
/// `/CertificateOfOrigin/cac:CertificateOfOriginApplication/cac:Shipment/cac:GoodsItem[3]/cbc:FreeOnBoardValueAmount`).
/// Unknown paths give `/CertificateOfOrigin`.
pub fn xpath_for(model_path: &str) -> String {
    paths::xpath_for(model_path)
}
