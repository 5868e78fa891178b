//! The embedded font: DejaVu Sans Condensed, regular and bold, subset to Latin-1 and a few
//! punctuation marks (assets/fonts/, Bitstream Vera licence beside it). Sizes are em sizes
//! (as in PDF), so PNG, SVG and PDF lay text out with the same metrics.
use ab_glyph::{Font, FontRef, GlyphId, PxScale};
use std::sync::OnceLock;

pub const REGULAR_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansCondensed.ttf");
pub const BOLD_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansCondensed-Bold.ttf");
/// The family name SVG output asks for (with generic fallbacks).
pub const FAMILY: &str = "DejaVu Sans Condensed";

pub struct Face {
    pub font: FontRef<'static>,
    pub units_per_em: f32,
    pub data: &'static [u8],
    /// Advances of U+0000..U+00FF in font units: a cmap lookup per character was most of the
    /// layout time.
    latin: [f32; 256],
}

impl Face {
    fn load(data: &'static [u8]) -> Face {
        let font = FontRef::try_from_slice(data).expect("embedded font parses");
        let units_per_em = font.units_per_em().unwrap_or(2048.0);
        let mut face = Face {
            font,
            units_per_em,
            data,
            latin: [0.0; 256],
        };
        for (i, a) in face.latin.iter_mut().enumerate() {
            let c = char::from(i as u8);
            *a = face.font.h_advance_unscaled(face_glyph(&face.font, c));
        }
        face
    }

    pub fn glyph(&self, c: char) -> GlyphId {
        let id = self.font.glyph_id(c);
        if id.0 == 0 {
            self.font.glyph_id('?')
        } else {
            id
        }
    }

    /// Advance of `c` at em size `size`.
    pub fn advance(&self, c: char, size: f32) -> f32 {
        self.font.h_advance_unscaled(self.glyph(c)) * size / self.units_per_em
    }

    /// Width of `text` at em size `size`.
    pub fn measure(&self, text: &str, size: f32) -> f32 {
        text.chars().map(|c| self.advance(c, size)).sum()
    }

    /// ab_glyph's pixel scale (ascent − descent) for an em size.
    pub fn px_scale(&self, size: f32) -> PxScale {
        PxScale::from(size * self.font.height_unscaled() / self.units_per_em)
    }

    /// Ascent and descent (negative) in font units.
    pub fn ascent_descent(&self) -> (f32, f32) {
        (self.font.ascent_unscaled(), self.font.descent_unscaled())
    }
}

/// The glyph of `c`, or of '?' when the font has none.
fn face_glyph(font: &FontRef<'static>, c: char) -> GlyphId {
    let id = font.glyph_id(c);
    if id.0 == 0 { font.glyph_id('?') } else { id }
}

pub struct Fonts {
    pub regular: Face,
    pub bold: Face,
}

impl Fonts {
    /// Parsed once per process, on first use (parsing is cheap and only the tables are read).
    pub fn get() -> &'static Fonts {
        static FONTS: OnceLock<Fonts> = OnceLock::new();
        FONTS.get_or_init(|| Fonts {
            regular: Face::load(REGULAR_TTF),
            bold: Face::load(BOLD_TTF),
        })
    }

    pub fn face(&self, bold: bool) -> &Face {
        if bold { &self.bold } else { &self.regular }
    }
}

/// True when `c` prints as itself in every slip format: it has a glyph in both embedded fonts
/// (PNG, SVG, PDF) and a code in Windows-1252 (the PDF's WinAnsi text, the printer's code page).
pub fn printable(c: char) -> bool {
    let in_1252 = matches!(c, ' '..='~' | '\u{A0}'..='\u{FF}' | '…' | '–' | '—' | '‘' | '’' | '“' | '”' | '•');
    let f = Fonts::get();
    in_1252 && f.regular.font.glyph_id(c).0 != 0 && f.bold.font.glyph_id(c).0 != 0
}

/// Splits `text` into lines no wider than `max`: at spaces, or inside a word that is too long.
pub fn wrap(face: &Face, text: &str, size: f32, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut width = 0.0;
    let space = face.advance(' ', size);
    for word in text.split_whitespace() {
        let w = face.measure(word, size);
        if !line.is_empty() && width + space + w <= max {
            line.push(' ');
            line.push_str(word);
            width += space + w;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if w <= max {
            line.push_str(word);
            width = w;
            continue;
        }
        // A word wider than the line: break it by characters.
        width = 0.0;
        for c in word.chars() {
            let a = face.advance(c, size);
            if width + a > max && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                width = 0.0;
            }
            line.push(c);
            width += a;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fonts_load_and_cover_names() {
        let f = Fonts::get();
        for c in "AZaz0-9.,'-ÉÑ…".chars() {
            assert_ne!(f.regular.font.glyph_id(c).0, 0, "{c}");
            assert_ne!(f.bold.font.glyph_id(c).0, 0, "{c}");
        }
        assert!(f.bold.measure("NAMA", 10.0) > f.regular.measure("NAMA", 10.0) * 0.9);
        // The Latin-1 table agrees with the font; other characters are looked up.
        for c in ['A', ' ', 'É', '…', '☃'] {
            let want = f.regular.font.h_advance_unscaled(f.regular.glyph(c)) * 12.0
                / f.regular.units_per_em;
            assert_eq!(f.regular.advance(c, 12.0), want, "{c}");
        }
    }

    #[test]
    fn printable_characters() {
        assert!("AZ az09 .,'-ÉÑÝ…".chars().all(printable));
        assert!(!"Ş☃王م\u{301}".chars().any(printable));
    }

    #[test]
    fn wrapping_respects_the_width() {
        let f = &Fonts::get().regular;
        let text = "MUHAMMAD ABDURRAHMAN WAHYUDI SETIAWAN NUGROHO PRAWIRADIREDJA KUSUMANEGARA";
        let lines = wrap(f, text, 20.0, 200.0);
        assert!(lines.len() > 2);
        assert!(lines.iter().all(|l| f.measure(l, 20.0) <= 200.0));
        assert_eq!(lines.join(" "), text);
        let long = wrap(f, &"W".repeat(80), 20.0, 200.0);
        assert!(long.len() > 1 && long.iter().all(|l| f.measure(l, 20.0) <= 200.0));
    }
}
