//! Finding slip payloads in what `verify` is given: `IKD1:` text, a text file holding it, or a
//! PNG/JPEG photo or scan. Images are read with rxing (a Rust port of ZXing: its port of
//! zxing-cpp's QR detector and decoder, which handles rotation, blur and small modules well),
//! step by step so that a QR-like region — three finder patterns from which a symbol grid could be
//! sampled — that does not decode is known too. Such a region is cropped, enlarged and tried
//! again; if it still does not read, it is reported, so a scan of a sheet never passes quietly
//! with slips missing.
use super::payload::PREFIX;
#[cfg(feature = "photos")]
use image::GrayImage;
#[cfg(feature = "photos")]
use image::imageops::{self, FilterType};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// Not an image we can read (nor text holding `IKD1:`).
    NotImage(String),
    /// An image with no QR code at all.
    NoQr,
    /// QR-like regions were seen but none could be read.
    Unreadable(usize),
    /// QR codes were found but none holds an `IKD1:` payload (their texts, cut short).
    NotIkd(Vec<String>),
    /// An image larger than [`MAX_SIDE`] a side, or whose decoding would take more than
    /// [`MAX_DECODE_BYTES`]: refused before it is decoded.
    TooLarge,
}

/// The widest and tallest image read, in pixels: a 48-megapixel phone photo (8000×6000) fits.
pub const MAX_SIDE: u32 = 10_000;
/// The most memory decoding one image may take. A file's size says little about this: a PNG
/// of 16000×16000 blank pixels is 280 KB and decodes to 256 MB (then a copy), so without this
/// bound one upload to the server's slip check would take more than half a gigabyte.
pub const MAX_DECODE_BYTES: u64 = 200 * 1024 * 1024;

/// What was read from a file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scan {
    /// Distinct `IKD1:` payloads, top to bottom then left to right.
    pub payloads: Vec<String>,
    /// QR-like regions that no decoder could read.
    pub unread: usize,
}

/// The payload texts in a file's bytes: text holding `IKD1:` lines, or an image.
pub fn payloads_in(bytes: &[u8]) -> Result<Vec<String>, ScanError> {
    scan(bytes).map(|s| s.payloads)
}

/// What a file holds: text with `IKD1:` lines, or an image read for QR codes.
pub fn scan(bytes: &[u8]) -> Result<Scan, ScanError> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let found: Vec<String> = text
            .lines()
            .map(|l| l.trim_start().trim_end_matches(['\r', '\n']))
            .filter(|l| l.starts_with(PREFIX))
            .map(String::from)
            .collect();
        if !found.is_empty() {
            return Ok(Scan {
                payloads: found,
                unread: 0,
            });
        }
    }
    #[cfg(feature = "photos")]
    {
        scan_image(decode(bytes)?)
    }
    // The field-only build reads no images (BENCHMARKS.md, "Footprint"): a photo of a slip is
    // checked with the full build, at the office.
    #[cfg(not(feature = "photos"))]
    Err(ScanError::NotImage(crate::tr!(
        "program ini hanya membaca teks IKD1:…; periksa foto slip dengan ikd-field versi lengkap di kantor Dinas",
        "this build reads IKD1:… text only; check a photo of a slip with the full ikd-field at the district office"
    )))
}

/// An image's bytes decoded to grey, within [`MAX_SIDE`] and [`MAX_DECODE_BYTES`] (looked at
/// before the pixels are decoded).
#[cfg(feature = "photos")]
fn decode(bytes: &[u8]) -> Result<GrayImage, ScanError> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ScanError::NotImage(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    match reader.decode() {
        Ok(img) => Ok(img.into_luma8()),
        Err(image::ImageError::Limits(_)) => Err(ScanError::TooLarge),
        Err(e) => Err(ScanError::NotImage(e.to_string())),
    }
}

/// A decoded symbol and where its centre is, in the coordinates of the image given.
#[cfg(feature = "photos")]
#[derive(Debug, Clone)]
struct Hit {
    text: String,
    x: f32,
    y: f32,
}

/// A QR-like region: the box around the centres of its three finder patterns, and the size of
/// one pattern (about seven modules), in the coordinates of the image given.
#[cfg(feature = "photos")]
#[derive(Debug, Clone, Copy)]
struct Region {
    x0: f32,
    y0: f32,
    x1: f32,
    y1: f32,
    pattern: f32,
}

#[cfg(feature = "photos")]
impl Region {
    fn contains(&self, x: f32, y: f32) -> bool {
        let m = self.pattern;
        x >= self.x0 - m && x <= self.x1 + m && y >= self.y0 - m && y <= self.y1 + m
    }
}

/// QR payloads in a greyscale image.
#[cfg(feature = "photos")]
pub fn payloads_in_image(img: GrayImage) -> Result<Vec<String>, ScanError> {
    scan_image(img).map(|s| s.payloads)
}

/// The slips in a greyscale image, and how many QR-like regions could not be read.
#[cfg(feature = "photos")]
pub fn scan_image(img: GrayImage) -> Result<Scan, ScanError> {
    let (hits, unread) = read_image(&img);
    if hits.is_empty() {
        return Err(if unread > 0 {
            ScanError::Unreadable(unread)
        } else {
            ScanError::NoQr
        });
    }
    let (ikd, other): (Vec<Hit>, Vec<Hit>) =
        hits.into_iter().partition(|h| h.text.starts_with(PREFIX));
    if ikd.is_empty() {
        return Err(ScanError::NotIkd(
            other
                .iter()
                .map(|h| h.text.chars().take(40).collect())
                .collect(),
        ));
    }
    Ok(Scan {
        payloads: ikd.into_iter().map(|h| h.text).collect(),
        unread,
    })
}

/// Every symbol that can be read, and the number of QR-like regions that could not.
#[cfg(feature = "photos")]
fn read_image(img: &GrayImage) -> (Vec<Hit>, usize) {
    let (w, h) = img.dimensions();
    let mut hits = Vec::new();
    let regions = decode_image(img, 1.0, &mut hits);
    // Phone photos are large and noisy; a smaller copy often reads better.
    if hits.is_empty() && w.max(h) > 1600 {
        let f = 1600.0 / w.max(h) as f32;
        let small = imageops::resize(
            img,
            (w as f32 * f) as u32,
            (h as f32 * f) as u32,
            FilterType::Triangle,
        );
        decode_image(&small, f, &mut hits);
    }
    // Small symbols (a slip rendered at its natural size): twice as large, smoothed.
    if hits.is_empty() && w.max(h) <= 1600 {
        let big = imageops::resize(img, w * 2, h * 2, FilterType::CatmullRom);
        decode_image(&big, 2.0, &mut hits);
    }
    // Regions that did not read: each cropped with a margin, enlarged, read again.
    let mut unread = 0;
    for r in &regions {
        if hits.iter().any(|h| r.contains(h.x, h.y)) {
            continue;
        }
        if !read_region(img, r, &mut hits) {
            unread += 1;
        }
    }
    hits.sort_by(|a, b| {
        let row = |h: &Hit| (h.y / 200.0) as i32;
        row(a).cmp(&row(b)).then(a.x.total_cmp(&b.x))
    });
    (hits, unread)
}

/// Tries a cropped, enlarged copy of one region; true when it read.
#[cfg(feature = "photos")]
fn read_region(img: &GrayImage, r: &Region, hits: &mut Vec<Hit>) -> bool {
    // From a pattern's centre to the symbol's edge is half a pattern; then the quiet zone.
    let m = r.pattern * 1.5;
    let x0 = (r.x0 - m).max(0.0) as u32;
    let y0 = (r.y0 - m).max(0.0) as u32;
    let x1 = ((r.x1 + m) as u32).min(img.width());
    let y1 = ((r.y1 + m) as u32).min(img.height());
    if x1 <= x0 + 8 || y1 <= y0 + 8 {
        return false;
    }
    let crop = imageops::crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image();
    let f = (800.0 / crop.width().max(crop.height()) as f32).max(1.0);
    let big = imageops::resize(
        &crop,
        (crop.width() as f32 * f) as u32,
        (crop.height() as f32 * f) as u32,
        FilterType::CatmullRom,
    );
    for candidate in [big.clone(), imageops::blur(&big, 1.5)] {
        let mut found = Vec::new();
        decode_image(&candidate, f, &mut found);
        if !found.is_empty() {
            for mut h in found {
                h.x += x0 as f32;
                h.y += y0 as f32;
                push(hits, h);
            }
            return true;
        }
    }
    false
}

#[cfg(feature = "photos")]
fn push(hits: &mut Vec<Hit>, hit: Hit) {
    if !hits.iter().any(|h| h.text == hit.text) {
        hits.push(hit);
    }
}

/// Reads every symbol of one image whose coordinates are `scale` times the original's, as
/// rxing's QrReader does (finder patterns, their plausible sets, a sampled grid, the decoder);
/// adds what it read (in original coordinates) and returns the regions that did not decode.
#[cfg(feature = "photos")]
fn decode_image(img: &GrayImage, scale: f32, hits: &mut Vec<Hit>) -> Vec<Region> {
    use rxing::common::DetectorRXingResult;
    use rxing::qrcode::cpp_port::decoder::Decode;
    use rxing::qrcode::cpp_port::detector::{
        FindFinderPatterns, GenerateFinderPatternSets, SampleQR,
    };
    let (w, h) = img.dimensions();
    let Ok(source) = rxing::Luma8LuminanceSource::new(img.as_raw().clone(), w, h) else {
        return Vec::new();
    };
    let bitmap = rxing::BinaryBitmap::new(rxing::common::HybridBinarizer::new(source));
    let bits = bitmap.get_black_matrix();
    let mut patterns = FindFinderPatterns(bits, true, 0);
    let mut used = Vec::new();
    let mut failed = Vec::new();
    for set in GenerateFinderPatternSets(&mut patterns) {
        let three = [set.bl, set.tl, set.tr];
        if three.iter().any(|p| used.contains(p)) {
            continue;
        }
        let Ok(grid) = SampleQR(bits, &set) else {
            continue;
        };
        match Decode(grid.getBits()) {
            Ok(d) if d.isValid() => {
                used.extend(three);
                push(
                    hits,
                    Hit {
                        text: d.text(),
                        x: three.iter().map(|p| p.p.x).sum::<f32>() / 3.0 / scale,
                        y: three.iter().map(|p| p.p.y).sum::<f32>() / 3.0 / scale,
                    },
                );
            }
            _ => failed.push(three),
        }
    }
    // Sets that did not decode, sharing no pattern with a symbol that did nor with each other
    // (the same three patterns are often tried in several combinations).
    let mut regions = Vec::new();
    for three in failed {
        if three.iter().any(|p| used.contains(p)) {
            continue;
        }
        used.extend(three);
        let xs = three.map(|p| p.p.x / scale);
        let ys = three.map(|p| p.p.y / scale);
        regions.push(Region {
            x0: xs.iter().copied().fold(f32::MAX, f32::min),
            y0: ys.iter().copied().fold(f32::MAX, f32::min),
            x1: xs.iter().copied().fold(f32::MIN, f32::max),
            y1: ys.iter().copied().fold(f32::MIN, f32::max),
            pattern: three.iter().map(|p| p.size as f32).sum::<f32>() / 3.0 / scale,
        });
    }
    regions
}

#[cfg(all(test, feature = "photos"))]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn text_images_and_junk() {
        let s = slip("BUDI SANTOSO");
        let text = format!("  {}\n", s.payload);
        assert_eq!(
            payloads_in(text.as_bytes()).unwrap(),
            vec![s.payload.clone()]
        );
        let png = super::super::png::render(&s, super::super::Paper::Mm58);
        assert_eq!(payloads_in(&png).unwrap(), vec![s.payload.clone()]);
        assert!(matches!(payloads_in(b"hello"), Err(ScanError::NotImage(_))));
        let blank = image::GrayImage::from_pixel(200, 200, image::Luma([255]));
        assert_eq!(payloads_in_image(blank), Err(ScanError::NoQr));
        // A QR that is not a slip.
        let other = super::super::qr::Qr::encode("https://example.org").unwrap();
        let img = image::load_from_memory(&super::super::png::qr_only(&other, 4))
            .unwrap()
            .to_luma8();
        assert!(matches!(payloads_in_image(img), Err(ScanError::NotIkd(_))));
    }

    /// A JPEG "photo": the slip enlarged 1.5×, blurred, on a grey background, compressed.
    #[test]
    fn a_jpeg_photo_of_a_slip() {
        use image::imageops;
        let s = slip(LONG_NAME);
        let png = super::super::png::render(&s, super::super::Paper::Mm58);
        let img = image::load_from_memory(&png).unwrap().to_luma8();
        let big = imageops::resize(
            &img,
            img.width() * 3 / 2,
            img.height() * 3 / 2,
            imageops::FilterType::Triangle,
        );
        let mut photo = image::GrayImage::from_pixel(800, 1300, image::Luma([170]));
        imageops::overlay(&mut photo, &imageops::blur(&big, 1.2), 110, 60);
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 75)
            .encode_image(&photo)
            .unwrap();
        assert_eq!(payloads_in(&jpeg).unwrap(), vec![s.payload.clone()]);
    }
}
