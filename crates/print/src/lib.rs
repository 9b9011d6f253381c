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
}

impl PrintError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            PrintError::NotIssued(_) => "PRINT_NOT_ISSUED",
            PrintError::QrTooLong(_) => "PRINT_QR_TOO_LONG",
            PrintError::Font(_) => "PRINT_FONT",
            PrintError::Pdf(_) => "PRINT_PDF",
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
