//! `verify` against zbarimg on a corpus made here: photo-like copies of slips (rotated 0–10°,
//! scaled 40–100 %, JPEG quality 30–90, noise, blur) and A4 sheets of four slips rendered at
//! 150 and 300 dpi (pdftoppm, as a scanner would), and SVG slips rendered at their natural size
//! (rsvg-convert). Every image zbarimg reads, `verify` must read too; the read rates of both are
//! printed (BENCHMARKS.md, "Reading slips back"). zbarimg (zbar-tools), pdftoppm (poppler-utils)
//! and rsvg-convert (librsvg2-bin) are outside tools: skipped when missing, a failure under
//! CI=true.
mod util;
use ikd_field::crypto::KeyPair;
use ikd_field::domain::{Kind, Record};
use ikd_field::slip::{Format, Paper, Slip};
use image::{GrayImage, Luma, imageops};
use std::path::{Path, PathBuf};
use util::{Kit, outside_tool};

/// Four slips of fixed synthetic records signed by a fixed key, their record ids and the key's
/// public half (hex) for `verify --key`.
fn fixed_slips() -> (Vec<Slip>, Vec<String>, String) {
    let key = KeyPair::from_seed([47; 32]);
    let people = ikd_field::synth::citizens(47, "1702", 4);
    let slips: Vec<Slip> = people
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let record = Record {
                id: format!("01936f5e-7a2b-7c3d-8e4f-12345678900{i}"),
                seq: i as i64 + 1,
                device_id: key.id(),
                officer: "PETUGAS UJI".into(),
                team: "TIM UJI".into(),
                recorded_at: format!("2026-11-23T0{i}:12:09.123Z"),
                kind: Kind::Activation,
                village: p.village.clone(),
                nik: p.nik.clone(),
                name: p.name.clone(),
                phone: p.phone.clone(),
                email: None,
                voids: None,
                reason: None,
                warnings: vec![],
            };
            let wib = time::UtcOffset::from_hms(7, 0, 0).unwrap();
            Slip::new(
                &record,
                &key,
                "DINAS KEPENDUDUKAN DAN PENCATATAN SIPIL",
                wib,
            )
            .unwrap()
        })
        .collect();
    let ids = slips.iter().map(|s| s.record_id.clone()).collect();
    (slips, ids, key.public_hex())
}

/// A small deterministic generator (the corpus is the same on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Rotates by `degrees` about the centre (bilinear), on a canvas large enough, filled with `bg`.
fn rotate(img: &GrayImage, degrees: f32, bg: u8) -> GrayImage {
    let (w, h) = (img.width() as f32, img.height() as f32);
    let (s, c) = degrees.to_radians().sin_cos();
    let nw = (w * c.abs() + h * s.abs()).ceil() as u32;
    let nh = (w * s.abs() + h * c.abs()).ceil() as u32;
    let (cx, cy, ncx, ncy) = (w / 2.0, h / 2.0, nw as f32 / 2.0, nh as f32 / 2.0);
    GrayImage::from_fn(nw, nh, |x, y| {
        let (dx, dy) = (x as f32 + 0.5 - ncx, y as f32 + 0.5 - ncy);
        let sx = c * dx + s * dy + cx - 0.5;
        let sy = -s * dx + c * dy + cy - 0.5;
        if sx < 0.0 || sy < 0.0 || sx >= w - 1.0 || sy >= h - 1.0 {
            return Luma([bg]);
        }
        let (x0, y0) = (sx.floor() as u32, sy.floor() as u32);
        let (fx, fy) = (sx - x0 as f32, sy - y0 as f32);
        let p = |x: u32, y: u32| img.get_pixel(x, y)[0] as f32;
        let top = p(x0, y0) * (1.0 - fx) + p(x0 + 1, y0) * fx;
        let bottom = p(x0, y0 + 1) * (1.0 - fx) + p(x0 + 1, y0 + 1) * fx;
        Luma([(top * (1.0 - fy) + bottom * fy).round() as u8])
    })
}

/// A photo-like copy of a slip image: on a darker table, rotated, scaled, blurred, with noise,
/// JPEG-compressed.
fn photo(
    slip: &GrayImage,
    degrees: f32,
    scale: f32,
    blur: f32,
    noise: f32,
    quality: u8,
    rng: &mut Lcg,
) -> Vec<u8> {
    let m = 40;
    let mut paper = GrayImage::from_pixel(slip.width() + 2 * m, slip.height() + 2 * m, Luma([250]));
    imageops::overlay(&mut paper, slip, m.into(), m.into());
    let turned = rotate(&paper, degrees, 110);
    let (w, h) = (
        (turned.width() as f32 * scale) as u32,
        (turned.height() as f32 * scale) as u32,
    );
    let mut img = imageops::resize(&turned, w, h, imageops::FilterType::Triangle);
    if blur > 0.0 {
        img = imageops::blur(&img, blur);
    }
    for p in img.pixels_mut() {
        let v = p[0] as f32 + (rng.next() - 0.5) * 2.0 * noise;
        p[0] = v.clamp(0.0, 255.0) as u8;
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, quality)
        .encode_image(&img)
        .unwrap();
    jpeg
}

fn zbar(file: &Path) -> Vec<String> {
    let out = std::process::Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("IKD1:"))
        .map(String::from)
        .collect()
}

/// The payloads `verify` read and checked, or the error it gave.
fn verify(k: &Kit, file: &Path, key: &str) -> Result<Vec<String>, String> {
    let out = k.run(&["--json", "verify", file.to_str().unwrap(), "--key", key]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    if !out.status.success() {
        return Err(format!("{v}"));
    }
    assert_eq!(v["found"], v["checked"]);
    Ok(v["slips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["record_id"].as_str().unwrap().to_string())
        .collect())
}

struct Case {
    file: PathBuf,
    /// Record ids in the image.
    ids: Vec<String>,
}

#[test]
fn verify_reads_whatever_zbarimg_reads() {
    if !outside_tool("zbarimg", "zbar-tools")
        || !outside_tool("pdftoppm", "poppler-utils")
        || !outside_tool("rsvg-convert", "librsvg2-bin")
    {
        return;
    }
    let k = Kit::new();
    // Fixed records signed by a fixed key: the corpus (QR contents included) is the same on
    // every run, so a verdict does not depend on this run's random ids and times.
    let (slip_of, ids, key) = fixed_slips();
    let p = |n: &str| k.path(n);
    let write = |name: &str, i: usize, format: Format, paper: Paper| {
        let f = p(name);
        let opts = ikd_field::slip::escpos::Options::default();
        std::fs::write(
            &f,
            ikd_field::slip::render(&slip_of[i], format, paper, &opts),
        )
        .unwrap();
        f
    };
    let mut cases = Vec::new();

    // Photo-like copies of 58 and 80 mm PNG slips.
    let mut rng = Lcg(16);
    let mut slips = Vec::new();
    for (i, paper) in [(1, Paper::Mm58), (2, Paper::Mm80)] {
        let f = write(&format!("slip{i}.png"), i - 1, Format::Png, paper);
        slips.push((image::open(&f).unwrap().to_luma8(), ids[i - 1].clone()));
    }
    let mut n = 0;
    for degrees in [0.0, 3.0, 5.0, 7.5, 10.0] {
        for scale in [0.4, 0.55, 0.7, 1.0] {
            for quality in [30, 60, 90] {
                let (slip, id) = &slips[n % 2];
                let blur = [0.0, 0.7, 1.2][(rng.next() * 3.0) as usize % 3];
                let noise = rng.next() * 24.0;
                let file = p(&format!("photo{n:02}.jpg"));
                std::fs::write(
                    &file,
                    photo(slip, degrees, scale, blur, noise, quality, &mut rng),
                )
                .unwrap();
                cases.push(Case {
                    file,
                    ids: vec![id.clone()],
                });
                n += 1;
            }
        }
    }
    // A4 sheets of four slips, rendered as a scanner would at 150 and 300 dpi.
    let sheet = p("sheet.pdf");
    std::fs::write(
        &sheet,
        ikd_field::slip::pdf::render(&slip_of, ikd_field::slip::pdf::Page::A4Sheet),
    )
    .unwrap();
    for dpi in ["150", "300"] {
        let base = p(&format!("sheet{dpi}"));
        let ok = std::process::Command::new("pdftoppm")
            .args(["-r", dpi, "-gray", "-png", "-singlefile"])
            .arg(&sheet)
            .arg(&base)
            .status()
            .unwrap();
        assert!(ok.success());
        let png = base.with_extension("png");
        // And the same scan saved as a JPEG, as many scanners do.
        let jpg = p(&format!("sheet{dpi}.jpg"));
        let img = image::open(&png).unwrap().to_luma8();
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 70)
            .encode_image(&img)
            .unwrap();
        std::fs::write(&jpg, bytes).unwrap();
        for file in [png, jpg] {
            cases.push(Case {
                file,
                ids: ids.clone(),
            });
        }
    }

    // SVG slips rendered at their natural size (rsvg-convert, 96 dpi), 58 and 80 mm.
    for i in 1..=4 {
        for (paper, mm) in [(Paper::Mm58, 58), (Paper::Mm80, 80)] {
            let svg = write(&format!("slip{i}-{mm}.svg"), i - 1, Format::Svg, paper);
            let png = svg.with_extension("png");
            let ok = std::process::Command::new("rsvg-convert")
                .arg("-o")
                .arg(&png)
                .arg(&svg)
                .status()
                .unwrap();
            assert!(ok.success());
            cases.push(Case {
                file: png,
                ids: vec![ids[i - 1].clone()],
            });
        }
    }

    let (mut ours, mut theirs, mut missed) = (0, 0, Vec::new());
    for case in &cases {
        let z = zbar(&case.file);
        let v = verify(&k, &case.file, &key);
        let z_read = z.len() == case.ids.len();
        let v_read = v.as_ref().is_ok_and(|got| {
            let mut got = got.clone();
            got.sort();
            let mut want = case.ids.clone();
            want.sort();
            got == want
        });
        if !(z_read && v_read) {
            eprintln!(
                "{}: zbarimg {}/{}, verify {:?}",
                case.file.file_name().unwrap().to_string_lossy(),
                z.len(),
                case.ids.len(),
                v.as_ref().map(|g| g.len())
            );
        }
        theirs += usize::from(z_read);
        ours += usize::from(v_read);
        // Whatever zbarimg reads (even part of a sheet), verify reads too: the same records.
        let z_ids: Vec<String> = z
            .iter()
            .map(|t| {
                ikd_field::slip::payload::Signed::decode(t)
                    .unwrap()
                    .payload
                    .record_uuid()
            })
            .collect();
        let v_ids = v.clone().unwrap_or_default();
        if !z_ids.iter().all(|id| v_ids.contains(id)) {
            missed.push(format!(
                "{}: zbarimg {} verify {:?}",
                case.file.display(),
                z.len(),
                v
            ));
        }
    }
    eprintln!(
        "read rate: ikd-field verify {ours} of {}, zbarimg {theirs} of {}",
        cases.len(),
        cases.len()
    );
    assert!(missed.is_empty(), "verify missed:\n{}", missed.join("\n"));
}
