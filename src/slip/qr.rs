//! The QR symbol of a payload: error correction M, alphanumeric mode (Base45 is exactly the QR
//! alphanumeric alphabet), version 8 at most. Encoded with the `qrcode` crate (the design card's
//! choice) through its lower-level API: its segmentation, error correction and drawing, and its
//! eight masks, but the masks are scored here, on plain booleans, by the same four penalty rules
//! its `apply_best_mask` uses (a test checks the symbols are identical). Its own scoring was
//! 0.47 ms of a slip's 1.3 ms (BENCHMARKS.md, "QR encoder").
use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::{Color, EcLevel, Version};

pub const MAX_VERSION: i16 = 8;
/// Light modules around the symbol, as the QR standard asks.
pub const QUIET_ZONE: usize = 4;

/// The eight masks in the order the qrcode crate tries them (the first of equal scores wins).
const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

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
        let bits =
            qrcode::bits::encode_auto(text.as_bytes(), EcLevel::M).map_err(|e| e.to_string())?;
        let version = match bits.version() {
            Version::Normal(v) => v,
            Version::Micro(_) => return Err("micro QR".into()),
        };
        if version > MAX_VERSION {
            return Err(format!("QR version {version} > {MAX_VERSION}"));
        }
        let data = bits.into_bytes();
        let (data, ec) =
            qrcode::ec::construct_codewords(&data, Version::Normal(version), EcLevel::M)
                .map_err(|e| e.to_string())?;
        let mut canvas = Canvas::new(Version::Normal(version), EcLevel::M);
        canvas.draw_all_functional_patterns();
        canvas.draw_data(&data, &ec);
        let width = (17 + 4 * version) as usize;
        let mut best: Option<(u32, Vec<bool>)> = None;
        for mask in MASKS {
            let mut c = canvas.clone();
            c.apply_mask(mask);
            let dark: Vec<bool> = c
                .into_colors()
                .into_iter()
                .map(|m| m == Color::Dark)
                .collect();
            let score = penalty(&dark, width);
            if best.as_ref().is_none_or(|(b, _)| score < *b) {
                best = Some((score, dark));
            }
        }
        let (_, dark) = best.expect("eight masks");
        Ok(Qr {
            width,
            version,
            dark,
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

/// The QR penalty score of a masked symbol (ISO 18004 §7.8.3), computed as the qrcode crate
/// does: runs of five or more (N − 2 each), 2 × 2 blocks (3 each), finder-like 1:1:3:1:1 patterns
/// without four light modules on one side (40 each), and the dark/light balance.
fn penalty(dark: &[bool], w: usize) -> u32 {
    let at = |x: usize, y: usize| dark[y * w + x];
    let mut score = 0u32;
    for horizontal in [true, false] {
        let get = |i: usize, j: usize| if horizontal { at(j, i) } else { at(i, j) };
        for i in 0..w {
            // Runs.
            let mut run = 1;
            for j in 1..=w {
                if j < w && get(i, j) == get(i, j - 1) {
                    run += 1;
                } else {
                    if run >= 5 {
                        score += run - 2;
                    }
                    run = 1;
                }
            }
            // Finder-like patterns: dark light dark dark dark light dark, and no dark module in
            // the four before it or in the four after it (outside the symbol counts as light).
            const PATTERN: [bool; 7] = [true, false, true, true, true, false, true];
            for j in 0..w - 6 {
                if (0..7).any(|k| get(i, j + k) != PATTERN[k]) {
                    continue;
                }
                let before = (j.saturating_sub(4)..j).any(|k| get(i, k));
                let after = (j + 7..(j + 11).min(w)).any(|k| get(i, k));
                if !before || !after {
                    score += 40;
                }
            }
        }
    }
    // Blocks.
    for y in 0..w - 1 {
        for x in 0..w - 1 {
            let c = at(x, y);
            if at(x + 1, y) == c && at(x, y + 1) == c && at(x + 1, y + 1) == c {
                score += 3;
            }
        }
    }
    // Balance.
    let ratio = dark.iter().filter(|d| **d).count() * 200 / dark.len();
    score + ratio.abs_diff(100) as u32
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

    /// The mask scored here is the one the qrcode crate's own `apply_best_mask` picks: the
    /// symbols are identical, module for module.
    #[test]
    fn same_symbol_as_the_qrcode_crate() {
        let key = crate::crypto::KeyPair::from_seed([5; 32]);
        let mut texts: Vec<String> = crate::synth::citizens(3, "1702", 40)
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let id = format!("01936f5e-7a2b-7c3d-8e4f-{i:012}");
                crate::slip::payload::Payload::new(
                    &id,
                    &key.id(),
                    "2026-11-23T05:12:09.123Z",
                    &p.village,
                    &p.nik,
                    &p.name.to_uppercase(),
                )
                .unwrap()
                .sign(&key)
            })
            .collect();
        texts.extend(["A", "HELLO WORLD", "https://example.org/x?y=1"].map(String::from));
        texts.extend(
            (1..=221)
                .step_by(11)
                .map(|n| "AB1:".repeat(n)[..n].to_string()),
        );
        for t in &texts {
            let ours = Qr::encode(t).unwrap();
            let theirs = qrcode::QrCode::with_error_correction_level(t, EcLevel::M).unwrap();
            assert_eq!(ours.width, theirs.width(), "{t}");
            let same = (0..ours.width * ours.width)
                .all(|i| ours.dark[i] == (theirs[(i % ours.width, i / ours.width)] == Color::Dark));
            assert!(same, "different symbol for {t}");
        }
    }
}
