//! PNG slips: the layout rasterised in 8-bit grey at thermal width (384 or 576 px, 203 dpi), text
//! anti-aliased with ab_glyph, QR modules whole pixels. Glyph bitmaps are cached per process, so
//! a batch of slips rasterises each letter once.
use super::font::Fonts;
use super::layout::{Layout, Op, Style, layout};
use super::{Paper, Slip};
use ab_glyph::{Font, point};
use std::collections::HashMap;
use std::sync::Mutex;

/// A grey canvas, 0 = black, 255 = white.
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

#[derive(Clone)]
struct Glyph {
    left: i32,
    top: i32,
    w: usize,
    h: usize,
    coverage: Vec<u8>,
}

type Key = (bool, u32, char);

fn glyph_cache() -> &'static Mutex<HashMap<Key, Option<Glyph>>> {
    static CACHE: std::sync::OnceLock<Mutex<HashMap<Key, Option<Glyph>>>> =
        std::sync::OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn rasterise(bold: bool, size: f32, c: char) -> Option<Glyph> {
    let face = Fonts::get().face(bold);
    let g = face
        .glyph(c)
        .with_scale_and_position(face.px_scale(size), point(0.0, 0.0));
    let outlined = face.font.outline_glyph(g)?;
    let b = outlined.px_bounds();
    let (w, h) = (b.width() as usize, b.height() as usize);
    let mut coverage = vec![0u8; w * h];
    outlined.draw(|x, y, v| {
        let i = y as usize * w + x as usize;
        if i < coverage.len() {
            coverage[i] = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    });
    Some(Glyph {
        left: b.min.x as i32,
        top: b.min.y as i32,
        w,
        h,
        coverage,
    })
}

impl Canvas {
    pub fn new(width: usize, height: usize) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![255; width * height],
        }
    }

    pub fn fill(&mut self, x0: i64, y0: i64, w: i64, h: i64) {
        let xs = x0.clamp(0, self.width as i64) as usize;
        let xe = (x0 + w).clamp(0, self.width as i64) as usize;
        for y in y0.max(0)..(y0 + h).min(self.height as i64) {
            let row = y as usize * self.width;
            self.pixels[row + xs..row + xe].fill(0);
        }
    }

    fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        let face = Fonts::get().face(bold);
        let mut cache = glyph_cache().lock().unwrap_or_else(|e| e.into_inner());
        let mut pen = x;
        for c in text.chars() {
            let key = (bold, size.to_bits(), c);
            let glyph = cache.entry(key).or_insert_with(|| rasterise(bold, size, c));
            if let Some(g) = glyph {
                self.blit(g, pen.round() as i64, y.round() as i64);
            }
            pen += face.advance(c, size);
        }
    }

    fn blit(&mut self, g: &Glyph, x: i64, baseline: i64) {
        let ox = x + i64::from(g.left);
        let oy = baseline + i64::from(g.top);
        for gy in 0..g.h {
            let py = oy + gy as i64;
            if py < 0 || py >= self.height as i64 {
                continue;
            }
            let row = py as usize * self.width;
            for gx in 0..g.w {
                let px = ox + gx as i64;
                let a = g.coverage[gy * g.w + gx];
                if a == 0 || px < 0 || px >= self.width as i64 {
                    continue;
                }
                let p = &mut self.pixels[row + px as usize];
                *p = ((u16::from(*p) * u16::from(255 - a)) / 255) as u8;
            }
        }
    }
}

/// Appends a row of 8-bit grey as 4-bit (high nibbles, two pixels a byte, first in the high
/// nibble), eight pixels at a time in a u64 (this loop was a visible share of encoding).
fn pack4(line: &[u8], out: &mut Vec<u8>) {
    let words = line.chunks_exact(8);
    let rest = words.remainder();
    for w in words {
        let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        // Per 16-bit lane (pixels 2k, 2k+1): high nibble of 2k, then high nibble of 2k+1.
        let mut x = (v & 0x00F0_00F0_00F0_00F0) | ((v >> 12) & 0x000F_000F_000F_000F);
        x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
        x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
        out.extend_from_slice(&(x as u32).to_le_bytes());
    }
    for pair in rest.chunks(2) {
        out.push((pair[0] & 0xF0) | pair.get(1).map_or(0, |b| b >> 4));
    }
}

/// Draws a layout (pixel units) onto a new canvas.
pub fn draw(slip: &Slip, l: &Layout) -> Canvas {
    let mut c = Canvas::new(l.width as usize, l.height as usize);
    for op in &l.ops {
        match op {
            Op::Text {
                x,
                y,
                size,
                bold,
                text,
            } => c.text(*x, *y, *size, *bold, text),
            Op::Rule {
                y,
                x0,
                x1,
                thickness,
            } => c.fill(
                *x0 as i64,
                *y as i64,
                (x1 - x0) as i64,
                thickness.round().max(1.0) as i64,
            ),
            Op::Qr { x, y, module } => {
                let m = *module as i64;
                for (row, col, len) in slip.qr.runs() {
                    c.fill(
                        *x as i64 + col as i64 * m,
                        *y as i64 + row as i64 * m,
                        len as i64 * m,
                        m,
                    );
                }
            }
        }
    }
    c
}

/// The slip as a grey canvas at the paper's thermal width.
pub fn raster(slip: &Slip, paper: Paper) -> Canvas {
    draw(slip, &layout(slip, &Style::raster(paper)))
}

/// Encodes a canvas as a 4-bit greyscale PNG: 16 levels are plenty for anti-aliased black text
/// on white, and half the bytes of 8-bit make encoding ~40 % faster and files ~40 % smaller.
/// fdeflate ("Fast") with the Up filter suits a mostly white page.
pub fn encode(c: &Canvas) -> Vec<u8> {
    let row = c.width.div_ceil(2);
    let mut packed = Vec::with_capacity(row * c.height);
    for line in c.pixels.chunks_exact(c.width) {
        pack4(line, &mut packed);
    }
    let mut out = Vec::with_capacity(packed.len() / 6);
    let mut e = png::Encoder::new(&mut out, c.width as u32, c.height as u32);
    e.set_color(png::ColorType::Grayscale);
    e.set_depth(png::BitDepth::Four);
    e.set_compression(png::Compression::Fast);
    e.set_filter(png::Filter::Up);
    let mut w = e.write_header().expect("PNG header into memory");
    w.write_image_data(&packed).expect("PNG data into memory");
    w.finish().expect("PNG into memory");
    out
}

pub fn render(slip: &Slip, paper: Paper) -> Vec<u8> {
    encode(&raster(slip, paper))
}

/// The QR symbol alone as a PNG: `module` pixels per module, with the quiet zone (what
/// `qrencode -s MODULE -m 4 -o FILE` writes; used by the benchmark to compare like with like).
pub fn qr_only(qr: &super::qr::Qr, module: usize) -> Vec<u8> {
    let side = (qr.width + 2 * super::qr::QUIET_ZONE) * module;
    let mut c = Canvas::new(side, side);
    let q = (super::qr::QUIET_ZONE * module) as i64;
    let m = module as i64;
    for (row, col, len) in qr.runs() {
        c.fill(q + col as i64 * m, q + row as i64 * m, len as i64 * m, m);
    }
    encode(&c)
}

#[cfg(test)]
mod tests {
    use super::super::payload::Signed;
    use super::super::testing::*;
    use super::*;
    use image::imageops::{self, FilterType as Resize};

    fn decode_qr(img: image::GrayImage) -> Vec<String> {
        let mut p = rqrr::PreparedImage::prepare(img);
        p.detect_grids()
            .iter()
            .filter_map(|g| g.decode().ok().map(|(_, s)| s))
            .collect()
    }

    #[test]
    fn png_decodes_and_verifies_even_rescaled_and_blurred() {
        for paper in [Paper::Mm58, Paper::Mm80] {
            let s = slip(LONG_NAME);
            let png = render(&s, paper);
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            let img = image::load_from_memory(&png).unwrap().to_luma8();
            assert_eq!(img.width() as usize, paper.dots());
            let texts = decode_qr(img.clone());
            assert_eq!(texts, vec![s.payload.clone()]);
            Signed::decode(&texts[0])
                .unwrap()
                .verify(&key().public())
                .unwrap();

            // A photo-like copy: 70 % size, slightly blurred.
            let small = imageops::resize(
                &img,
                img.width() * 7 / 10,
                img.height() * 7 / 10,
                Resize::Triangle,
            );
            let blurred = imageops::blur(&small, 0.8);
            let texts = decode_qr(blurred);
            assert_eq!(texts, vec![s.payload.clone()], "{paper:?}");

            // A low-resolution scan: half size (3 px modules on 58 mm), lightly blurred.
            let half = imageops::resize(&img, img.width() / 2, img.height() / 2, Resize::Triangle);
            let texts = decode_qr(imageops::blur(&half, 0.5));
            assert_eq!(texts, vec![s.payload.clone()], "{paper:?} half");
        }
    }

    #[test]
    fn qr_only_decodes() {
        let s = slip("BUDI");
        let png = qr_only(&s.qr, 3);
        let img = image::load_from_memory(&png).unwrap().to_luma8();
        assert_eq!(img.width() as usize, (s.qr.width + 8) * 3);
        assert_eq!(decode_qr(img), vec![s.payload]);
    }

    #[test]
    fn packing_keeps_the_high_nibbles_in_order() {
        let line: Vec<u8> = (0..21u8).map(|i| i.wrapping_mul(37)).collect();
        let mut fast = Vec::new();
        pack4(&line, &mut fast);
        let slow: Vec<u8> = line
            .chunks(2)
            .map(|p| (p[0] & 0xF0) | p.get(1).map_or(0, |b| b >> 4))
            .collect();
        assert_eq!(fast, slow);
    }

    #[test]
    fn text_is_drawn() {
        let c = raster(&slip("BUDI"), Paper::Mm58);
        // The title band (above the first rule) has dark pixels.
        let dark = c.pixels[..c.width * 40]
            .iter()
            .filter(|&&p| p < 128)
            .count();
        assert!(dark > 200, "{dark}");
    }
}
