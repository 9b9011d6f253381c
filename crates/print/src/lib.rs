//! Prints an issued certificate of origin as an A4 PDF laid out like the official form:
//! ATIGA Form D (boxes 1 to 13) or the RCEP certificate (boxes 1 to 16), goods flowing onto
//! continuation pages, the form's overleaf notes on the last page, and a QR code carrying the
//! verification URL beside the check code and the SHA-256 of the signed document.
//!
//! Fonts (Noto Sans, Noto Sans Khmer, Noto Sans Thai) are compiled in and embedded, subset,
//! in every PDF; text is shaped (Khmer subscripts and reordered vowels, Thai marks,
//! Vietnamese diacritics) and stays extractable: copying it or running `pdftotext` gives back
//! the original characters.
//!
//! ```
//! # use originlink_model::{sample::sample, Agreement, CountryCode, NaiveDate};
//! let cert = sample(Agreement::Atiga, CountryCode::parse("KH").unwrap(),
//!     CountryCode::parse("TH").unwrap(), NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), 3, 1);
//! let pdf = originlink_print::render(&cert, &originlink_print::PrintOptions {
//!     verify_url: "http://127.0.0.1:8443/verify?n=KH-2026-000002&c=7K3M9-QX2VD".into(),
//!     check_code: "7K3M9-QX2VD".into(),
//!     sha256_hex: "0".repeat(64),
//!     copy: None,
//! }).unwrap();
//! assert!(pdf.starts_with(b"%PDF-"));
//! ```

mod draw;
mod fonts;
mod form;
mod layout;
mod notes;
mod qr;

use originlink_model::Certificate;

/// What to print besides the certificate itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintOptions {
    /// Full verification URL the QR code carries, e.g.
    /// `http://127.0.0.1:8443/verify?n=KH-2026-000002&c=7K3M9-QX2VD`.
    pub verify_url: String,
    /// The check code printed beside the QR code (`7K3M9-QX2VD`).
    pub check_code: String,
    /// Lower-case hex SHA-256 of the signed document bytes, printed small under the check code.
    pub sha256_hex: String,
    /// `None` prints "ORIGINAL"; `Some(n)` prints "COPY n".
    pub copy: Option<u32>,
}

/// Why a certificate could not be printed. Every variant has a stable [`PrintError::code`].
#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    /// The certificate has no number or no certification: it is an application, not an
    /// issued certificate, and is not printed as one.
    #[error("the certificate is not issued (no {0})")]
    NotIssued(&'static str),
    /// The verification URL does not fit in a QR code.
    #[error("the verification URL does not fit in a QR code: {0}")]
    QrTooLong(String),
    /// An embedded font could not be read (a build defect).
    #[error("font: {0}")]
    Font(&'static str),
    /// The PDF writer failed.
    #[error("PDF: {0}")]
    Pdf(String),
    /// The signed document does not read as a certificate.
    #[error("the document does not read as a certificate: {0}")]
    Unreadable(String),
}

impl PrintError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            PrintError::NotIssued(_) => "PRINT_NOT_ISSUED",
            PrintError::QrTooLong(_) => "PRINT_QR_TOO_LONG",
            PrintError::Font(_) => "PRINT_FONT",
            PrintError::Pdf(_) => "PRINT_PDF",
            PrintError::Unreadable(_) => "DOCUMENT_UNREADABLE",
        }
    }
}

/// Renders an issued certificate as a PDF: the form (ATIGA Form D, or the RCEP certificate
/// when the agreement is RCEP), continuation pages for goods that do not fit on the first
/// page, and the overleaf notes on the last page. The same input gives the same bytes.
pub fn render(cert: &Certificate, opts: &PrintOptions) -> Result<Vec<u8>, PrintError> {
    let fonts = fonts::Fonts::load()?;
    let pages = form::pages(&fonts, cert, opts)?;
    let number = cert.number.as_ref().map(|n| n.as_str()).unwrap_or_default();
    draw::write_pdf(&pages, &fonts, &format!("Certificate of origin {number}"))
}

/// A signed certificate printed: the PDF, and what its QR code and check code say.
#[derive(Debug, Clone)]
pub struct Printed {
    /// The PDF.
    pub pdf: Vec<u8>,
    /// The certificate number.
    pub number: String,
    /// The check code (from the signed bytes).
    pub check_code: String,
    /// The verification URL the QR code carries.
    pub verify_url: String,
}

/// Prints a signed certificate (UBL XML or edi3 JSON, byte for byte as signed): the content
/// from the signed document, never from editable data; the check code and SHA-256 from its
/// bytes; the QR code to the verification page at `verify_base` (`https://verify.moc.gov.kh`).
pub fn render_signed(signed: &[u8], verify_base: &str, copy: Option<u32>) -> Result<Printed, PrintError> {
    let (_, cert) =
        originlink_formats::read(signed, &originlink_formats::Limits::default()).map_err(|p| {
            PrintError::Unreadable(
                p.first().map(|p| format!("{}: {}", p.code, p.message)).unwrap_or_default(),
            )
        })?;
    let number =
        cert.number.as_ref().map(|n| n.as_str().to_owned()).ok_or(PrintError::NotIssued("number"))?;
    let check_code = originlink_trust::statuslist::check_code(signed);
    let verify_url = verify_url(verify_base, &number, &check_code);
    let sha256_hex = hex(ring::digest::digest(&ring::digest::SHA256, signed).as_ref());
    let opts =
        PrintOptions { verify_url: verify_url.clone(), check_code: check_code.clone(), sha256_hex, copy };
    let pdf = render(&cert, &opts)?;
    Ok(Printed { pdf, number, check_code, verify_url })
}

/// The public verification URL of a certificate: `base` + `/verify?n=…&c=…` (what a QR code
/// carries, and what the verification page reads).
pub fn verify_url(base: &str, number: &str, check_code: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!("{}/verify?n={}&c={}", base.trim_end_matches('/'), enc(number), enc(check_code))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
