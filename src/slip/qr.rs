//! The QR symbol of a payload: error correction M, alphanumeric mode (Base45 is exactly the QR
//! alphanumeric alphabet), version 8 at most. Encoded with the `qrcode` crate (the design card's
//! choice), with its own best-mask selection: that costs about 1 ms more per slip than fast_qr did
//! (1.3 against 0.3 ms, BENCHMARKS.md), which no one at the desk can notice.
use qrcode::{EcLevel, QrCode, Version};

pub const MAX_VERSION: i16 = 8;
/// Light modules around the symbol, as the QR standard asks.
pub const QUIET_ZONE: usize = 4;

/// A QR symbol as a square of dark/light modules (no quiet zone).
#[derive(Debug, Clone)]
pub struct Qr {
    pub width: usize,
    pub version: i16,
    dark: Vec<bool>,
}

impl Qr {
    /// Encodes `text` at level M; refuses anything that needs more than version 8.
    pub fn encode(text: &str) -> Result<Qr, String> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
            .map_err(|e| e.to_string())?;
        let version = match code.version() {
            Version::Normal(v) => v,
            Version::Micro(_) => return Err("micro QR".into()),
        };
        if version > MAX_VERSION {
            return Err(format!("QR version {version} > {MAX_VERSION}"));
        }
        Ok(Qr {
            width: code.width(),
            version,
            dark: code
                .to_colors()
                .into_iter()
                .map(|c| c == qrcode::Color::Dark)
                .collect(),
        })
    }

    /// Dark at column `x`, row `y` (false outside the symbol).
    pub fn dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.dark[y * self.width + x]
    }

    /// Runs of dark modules per row: `(row, first column, length)`.
    pub fn runs(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        (0..self.width).flat_map(move |y| {
            let mut out = Vec::new();
            let mut x = 0;
            while x < self.width {
                if self.dark(x, y) {
                    let start = x;
                    while x < self.width && self.dark(x, y) {
                        x += 1;
                    }
                    out.push((y, start, x - start));
                } else {
                    x += 1;
                }
            }
            out
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_the_length() {
        // QR M capacities (alphanumeric): version 7 holds 178 characters, version 8 holds 221.
        assert_eq!(Qr::encode(&"A".repeat(178)).unwrap().version, 7);
        assert_eq!(Qr::encode(&"A".repeat(179)).unwrap().version, 8);
        let v8 = Qr::encode(&"A".repeat(221)).unwrap();
        assert_eq!((v8.version, v8.width), (8, 49));
        assert!(Qr::encode(&"A".repeat(222)).is_err());
        // Finder pattern corners are dark.
        assert!(v8.dark(0, 0) && v8.dark(48, 0) && v8.dark(0, 48) && !v8.dark(7, 7));
    }
}
