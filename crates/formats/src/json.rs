//! UN/CEFACT edi3 CertificateOfOrigin JSON. Mapping table: `docs/formats.md`.

use originlink_model::{Certificate, Problem};

use crate::Limits;

/// Writes a certificate as a edi3 JSON document (pretty-printed).
pub fn write(cert: &Certificate) -> String {
    let _ = cert;
    String::new()
}

/// Reads an edi3 JSON document. Refuses oversize input and unknown fields.
pub fn read(bytes: &[u8], limits: &Limits) -> Result<Certificate, Vec<Problem>> {
    let _ = (bytes, limits);
    Err(vec![Problem::new("NOT_READY", "/", "JSON reader under construction")])
}
