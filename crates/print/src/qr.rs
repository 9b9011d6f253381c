//! The verification QR code, drawn as vector squares.

use qrcode::{EcLevel, QrCode};

use crate::PrintError;
use crate::draw::Op;

/// Horizontal runs of dark modules: `(column, row, length)`.
pub(crate) type Runs = Vec<(u32, u32, u32)>;

/// Modules of light margin around the symbol (ISO/IEC 18004 asks for 4).
pub(crate) const QUIET_ZONE: u32 = 4;

/// The dark modules of the QR code for `data`, as horizontal runs `(column, row, length)`
/// counted from the outer corner of the quiet zone, and the side of the whole symbol with its
/// quiet zone, in modules. Error correction level M (15 %): enough for a creased or stamped
/// paper, while a verification URL still fits a small symbol.
pub(crate) fn runs(data: &str) -> Result<(Runs, u32), PrintError> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| PrintError::QrTooLong(e.to_string()))?;
    let width = code.width();
    let dark: Vec<bool> = code.to_colors().into_iter().map(|c| c == qrcode::Color::Dark).collect();
    let mut runs = Vec::new();
    for row in 0..width {
        let mut col = 0;
        while col < width {
            if dark[row * width + col] {
                let start = col;
                while col < width && dark[row * width + col] {
                    col += 1;
                }
                runs.push(((start as u32) + QUIET_ZONE, row as u32 + QUIET_ZONE, (col - start) as u32));
            } else {
                col += 1;
            }
        }
    }
    Ok((runs, width as u32 + 2 * QUIET_ZONE))
}

/// The drawing operation for a QR code whose quiet zone's outer corner is at `(x, y)` and
/// whose whole side (quiet zone included) is `side` points.
pub(crate) fn op(data: &str, x: f32, y: f32, side: f32) -> Result<Op, PrintError> {
    let (runs, modules) = runs(data)?;
    Ok(Op::Modules { x, y, m: side / modules as f32, runs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_the_finder_pattern() {
        let (runs, side) = runs("http://127.0.0.1:8443/verify?n=KH-2026-000002&c=7K3M9-QX2VD").unwrap();
        // 60 bytes at level M needs version 4 (33 modules), plus 2 × 4 quiet modules.
        assert_eq!(side, 33 + 8);
        // The top-left finder pattern starts with a run of 7 dark modules inside the quiet zone.
        assert_eq!(runs[0], (4, 4, 7));
        assert!(runs.iter().all(|&(c, r, l)| c >= 4 && r >= 4 && c + l <= side - 4 && r < side - 4));
    }

    #[test]
    fn too_long_is_an_error_not_a_panic() {
        let e = runs(&"x".repeat(5000)).unwrap_err();
        assert_eq!(e.code(), "PRINT_QR_TOO_LONG");
    }
}
