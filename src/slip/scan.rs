//! Finding slip payloads in what `verify` is given: `IKD1:` text, a text file holding it, or a
//! PNG/JPEG photo or scan, whose QR codes are read with rqrr.
use super::payload::PREFIX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanError {
    /// Not an image we can read (nor text holding `IKD1:`).
    NotImage(String),
    /// An image with no readable QR code.
    NoQr,
    /// QR codes were found but none holds an `IKD1:` payload (their texts, cut short).
    NotIkd(Vec<String>),
}

/// The payload texts in a file's bytes: text holding `IKD1:` lines, or an image.
pub fn payloads_in(bytes: &[u8]) -> Result<Vec<String>, ScanError> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let found: Vec<String> = text
            .lines()
            .map(|l| l.trim_start().trim_end_matches(['\r', '\n']))
            .filter(|l| l.starts_with(PREFIX))
            .map(String::from)
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
    }
    let img = image::load_from_memory(bytes)
        .map_err(|e| ScanError::NotImage(e.to_string()))?
        .to_luma8();
    payloads_in_image(img)
}

/// QR payloads in a greyscale image; tries a reduced copy of big photos too.
pub fn payloads_in_image(img: image::GrayImage) -> Result<Vec<String>, ScanError> {
    let mut texts = decode(img.clone());
    // Phone photos are large and noisy; a smaller copy often reads better.
    let (w, h) = img.dimensions();
    if texts.is_empty() && w.max(h) > 1600 {
        let f = 1600.0 / w.max(h) as f32;
        let small = image::imageops::resize(
            &img,
            (w as f32 * f) as u32,
            (h as f32 * f) as u32,
            image::imageops::FilterType::Triangle,
        );
        texts = decode(small);
    }
    if texts.is_empty() {
        return Err(ScanError::NoQr);
    }
    let (ikd, other): (Vec<String>, Vec<String>) =
        texts.into_iter().partition(|t| t.starts_with(PREFIX));
    if ikd.is_empty() {
        return Err(ScanError::NotIkd(
            other.iter().map(|t| t.chars().take(40).collect()).collect(),
        ));
    }
    Ok(ikd)
}

fn decode(img: image::GrayImage) -> Vec<String> {
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let mut out: Vec<String> = Vec::new();
    for grid in prepared.detect_grids() {
        if let Ok((_, text)) = grid.decode()
            && !out.contains(&text)
        {
            out.push(text);
        }
    }
    out
}

#[cfg(test)]
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
