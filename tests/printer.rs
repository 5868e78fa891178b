//! ESC/POS read back by an interpreter written here (not the renderer's code): a cheap 58 mm
//! clone that starts in Chinese double-byte mode (and returns to it on ESC @), with font A
//! (12 × 24 dots) and font B (9 × 17). The real binary prints slips and the `printer test` page;
//! the interpreter lays them out dot row by dot row and the tests check the column widths, the
//! QR's quiet zone, that `FS .` comes first, and that the QR holds the slip's `IKD1:` text
//! (the raster image decoded with a real decoder).
mod util;
use util::{Kit, read};

const QUIET: usize = 4;

#[derive(Debug, Clone)]
enum Item {
    Text {
        top: usize,
        height: usize,
        width: usize,
        chars: usize,
        font_b: bool,
        text: String,
    },
    Qr {
        top: usize,
        left: usize,
        side: usize,
        module: usize,
        text: String,
        native: bool,
    },
}

#[derive(Debug, Default)]
struct Page {
    items: Vec<Item>,
    /// Text bytes that arrived while the printer was in Chinese double-byte mode.
    in_chinese: Vec<u8>,
    cuts: usize,
}

fn qr_modules(text: &str) -> usize {
    qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M)
        .unwrap()
        .width()
}

/// Decodes a 1-bit raster (1 = dark) with rqrr, on a white margin.
fn decode_bits(bits: &[Vec<bool>]) -> String {
    let (h, w) = (bits.len(), bits[0].len());
    let m = 40;
    let img = image::GrayImage::from_fn((w + 2 * m) as u32, (h + 2 * m) as u32, |x, y| {
        let (x, y) = (x as usize, y as usize);
        let dark = x >= m && y >= m && x < w + m && y < h + m && bits[y - m][x - m];
        image::Luma([if dark { 0 } else { 255 }])
    });
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR in the raster image");
    grids[0].decode().expect("raster QR decodes").1
}

/// Prints the pending text line at `y`; returns its height (0 when there was none).
fn flush(
    page: &mut Page,
    line: &mut Vec<u8>,
    y: usize,
    font_b: bool,
    wmul: usize,
    hmul: usize,
) -> usize {
    if line.is_empty() {
        return 0;
    }
    let (cw, ch) = if font_b { (9, 17) } else { (12, 24) };
    let text: String = line.iter().map(|&c| char::from(c)).collect();
    let height = ch * hmul;
    page.items.push(Item::Text {
        top: y,
        height,
        width: line.len() * cw * wmul,
        chars: line.len(),
        font_b,
        text,
    });
    line.clear();
    height
}

fn interpret(b: &[u8], dots: usize) -> Page {
    let mut page = Page::default();
    let (mut chinese, mut font_b, mut wmul, mut hmul, mut align) = (true, false, 1, 1, 0u8);
    let default_spacing = 34;
    let mut spacing = default_spacing;
    let mut y = 0usize;
    let mut line: Vec<u8> = Vec::new();
    let (mut module, mut stored) = (3usize, String::new());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            0x1C => {
                match b[i + 1] {
                    0x2E => chinese = false,
                    0x26 => chinese = true,
                    c => panic!("FS {c:#x}"),
                }
                i += 2;
            }
            0x1B => {
                let n = b.get(i + 2).copied().unwrap_or(0);
                match b[i + 1] {
                    0x40 => {
                        (chinese, font_b, wmul, hmul, align) = (true, false, 1, 1, 0);
                        spacing = default_spacing;
                        i += 2;
                        continue;
                    }
                    0x74 | 0x45 => {}
                    0x33 => spacing = usize::from(n),
                    0x61 => align = n,
                    0x4D => font_b = n & 1 == 1,
                    0x4A => {
                        flush(&mut page, &mut line, y, font_b, wmul, hmul);
                        y += usize::from(n);
                    }
                    0x64 => {
                        let h = flush(&mut page, &mut line, y, font_b, wmul, hmul);
                        y += h.max(spacing) * usize::from(n.max(1));
                    }
                    c => panic!("ESC {c:#x}"),
                }
                i += 3;
            }
            0x1D => match b[i + 1] {
                0x21 => {
                    wmul = usize::from(b[i + 2] >> 4) + 1;
                    hmul = usize::from(b[i + 2] & 0xF) + 1;
                    i += 3;
                }
                0x56 => {
                    page.cuts += 1;
                    i += 4;
                }
                0x28 if b[i + 2] == 0x6B => {
                    let len = usize::from(b[i + 3]) + 256 * usize::from(b[i + 4]);
                    let p = &b[i + 5..i + 5 + len];
                    assert_eq!(p[0], 0x31, "cn 49: QR");
                    match p[1] {
                        0x41 | 0x45 => {}
                        0x43 => module = usize::from(p[2]),
                        0x50 => stored = String::from_utf8(p[3..].to_vec()).unwrap(),
                        0x51 => {
                            assert!(line.is_empty(), "QR printed after pending text");
                            let side = qr_modules(&stored) * module;
                            let left = if align == 1 { (dots - side) / 2 } else { 0 };
                            page.items.push(Item::Qr {
                                top: y,
                                left,
                                side,
                                module,
                                text: stored.clone(),
                                native: true,
                            });
                            y += side;
                        }
                        f => panic!("GS ( k fn {f:#x}"),
                    }
                    i += 5 + len;
                }
                0x76 if b[i + 2] == 0x30 => {
                    let row_bytes = usize::from(b[i + 4]) + 256 * usize::from(b[i + 5]);
                    let rows = usize::from(b[i + 6]) + 256 * usize::from(b[i + 7]);
                    let data = &b[i + 8..i + 8 + row_bytes * rows];
                    let bits: Vec<Vec<bool>> = (0..rows)
                        .map(|r| {
                            (0..row_bytes * 8)
                                .map(|x| data[r * row_bytes + x / 8] & (0x80 >> (x % 8)) != 0)
                                .collect()
                        })
                        .collect();
                    let dark: Vec<(usize, usize)> = (0..rows)
                        .flat_map(|r| (0..row_bytes * 8).map(move |x| (x, r)))
                        .filter(|&(x, r)| bits[r][x])
                        .collect();
                    let (x0, x1) = (
                        dark.iter().map(|d| d.0).min().unwrap(),
                        dark.iter().map(|d| d.0).max().unwrap(),
                    );
                    let (y0, y1) = (
                        dark.iter().map(|d| d.1).min().unwrap(),
                        dark.iter().map(|d| d.1).max().unwrap(),
                    );
                    assert_eq!(x1 - x0, y1 - y0, "a square symbol");
                    let text = decode_bits(&bits);
                    let side = x1 - x0 + 1;
                    let image_left = if align == 1 {
                        (dots - row_bytes * 8) / 2
                    } else {
                        0
                    };
                    page.items.push(Item::Qr {
                        top: y + y0,
                        left: image_left + x0,
                        side,
                        module: side / qr_modules(&text),
                        text,
                        native: false,
                    });
                    y += rows;
                    i += 8 + row_bytes * rows;
                }
                c => panic!("GS {c:#x}"),
            },
            b'\n' => {
                let h = flush(&mut page, &mut line, y, font_b, wmul, hmul);
                y += h.max(spacing);
                i += 1;
            }
            c if c >= 0x20 => {
                if chinese {
                    page.in_chinese.push(c);
                }
                line.push(c);
                i += 1;
            }
            c => panic!("unexpected control byte {c:#x} at {i}"),
        }
    }
    page
}

/// Checks every line and QR of a page against its width; returns the QR texts in order.
fn check_page(b: &[u8], dots: usize, cols: usize) -> (Page, Vec<String>) {
    assert_eq!(&b[..2], &[0x1C, 0x2E], "FS . comes first");
    let page = interpret(b, dots);
    assert!(
        page.in_chinese.is_empty(),
        "text sent in Chinese mode: {}",
        String::from_utf8_lossy(&page.in_chinese)
    );
    assert_eq!(page.cuts, 1);
    let mut qrs = Vec::new();
    for (n, item) in page.items.iter().enumerate() {
        match item {
            Item::Text {
                width,
                chars,
                font_b,
                text,
                ..
            } => {
                assert!(
                    *width <= dots,
                    "{text:?} is {width} dots wide, paper {dots}"
                );
                if !font_b {
                    assert!(*chars <= cols, "{text:?}: {chars} > {cols} columns");
                }
            }
            Item::Qr {
                top,
                left,
                side,
                module,
                text,
                ..
            } => {
                let q = QUIET * module;
                assert!(*left >= q && left + side + q <= dots, "side quiet zone");
                let above = page.items[..n]
                    .iter()
                    .rev()
                    .map(|it| match it {
                        Item::Text { top, height, .. } => top + height,
                        Item::Qr { top, side, .. } => top + side,
                    })
                    .next();
                if let Some(bottom) = above {
                    assert!(
                        top - bottom >= q,
                        "gap above the QR {} dots, quiet zone {q}",
                        top - bottom
                    );
                }
                let below = page.items[n + 1..]
                    .iter()
                    .map(|it| match it {
                        Item::Text { top, .. } | Item::Qr { top, .. } => *top,
                    })
                    .next();
                if let Some(next) = below {
                    assert!(next - (top + side) >= q, "gap below the QR");
                }
                qrs.push(text.clone());
            }
        }
    }
    (page, qrs)
}

fn texts(page: &Page) -> Vec<String> {
    page.items
        .iter()
        .filter_map(|i| match i {
            Item::Text { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn slips_in_every_layout_read_back() {
    let k = Kit::new();
    let people = ikd_field::synth::citizens(41, "1702", 2);
    k.record_synthetic(&people, 0);
    let o = |n: &str| k.path(n).to_str().unwrap().to_string();
    for (paper, columns, dots, cols) in [
        ("58", None, 384, 32),
        ("80", None, 576, 48),
        ("80", Some("42"), 504, 42),
    ] {
        for raster in [false, true] {
            let out = o("s.bin");
            let mut args = vec!["slip", "1", "--format", "escpos", "--paper", paper];
            args.extend(["--out", &out]);
            if let Some(c) = columns {
                args.extend(["--columns", c]);
            }
            if raster {
                args.push("--raster");
            }
            let j = k.json(&args);
            let payload = j["slips"][0]["payload"].as_str().unwrap();
            let id = j["slips"][0]["record"].as_str().unwrap();
            let b = read(&k.path("s.bin"));
            let (page, qrs) = check_page(&b, dots, cols);
            assert_eq!(qrs, [payload], "{paper} mm {cols} columns raster={raster}");
            let lines = texts(&page);
            assert!(
                lines.iter().any(|l| l.contains(id)),
                "record id on one line: {lines:?}"
            );
            let name = people[0].name.to_uppercase();
            assert!(lines.iter().any(|l| l.contains(&name)), "{lines:?}");
            let native = page
                .items
                .iter()
                .any(|i| matches!(i, Item::Qr { native: true, .. }));
            assert_eq!(native, !raster);
        }
    }
    // 42 columns are an 80 mm layout only.
    let (_, err) = k.fails(
        &[
            "slip",
            "1",
            "--format",
            "escpos",
            "--paper",
            "58",
            "--columns",
            "42",
        ],
        2,
    );
    assert!(err.contains("32"), "{err}");
}

#[test]
fn printer_test_prints_both_and_the_choice_is_kept() {
    let k = Kit::new();
    let people = ikd_field::synth::citizens(43, "1702", 1);
    k.record_synthetic(&people, 0);
    // No printer configured and none given: says how.
    let (_, err) = k.fails(&["printer", "test"], 2);
    assert!(err.contains("--printer"), "{err}");

    let page_path = k.path("test.bin");
    let page = page_path.to_str().unwrap();
    // Without a terminal: prints both, says how to keep the answer, changes nothing.
    let j = k.json(&["printer", "test", "--out", page]);
    assert!(
        j["next"].as_str().unwrap().contains("printer set raster"),
        "{j}"
    );
    let b = read(&page_path);
    let (p, qrs) = check_page(&b, 384, 32);
    assert_eq!(
        qrs,
        [
            ikd_field::commands::printer::TEXT_NATIVE,
            ikd_field::commands::printer::TEXT_RASTER
        ]
    );
    let kinds: Vec<bool> = p
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Qr { native, .. } => Some(*native),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, [true, false], "QR A native, QR B raster");
    // The ruler shows the columns exactly.
    assert!(
        texts(&p)
            .iter()
            .any(|l| l.len() == 32 && l.starts_with("1234567890"))
    );
    let b80 = k.path("t80.bin");
    k.ok(&[
        "printer",
        "test",
        "--paper",
        "80",
        "--columns",
        "42",
        "--out",
        b80.to_str().unwrap(),
    ]);
    check_page(&read(&b80), 504, 42);

    // The officer's answer is kept in config.toml and used by the next slip.
    k.ok(&["printer", "set", "raster"]);
    let cfg = std::fs::read_to_string(k.dir.join("config.toml")).unwrap();
    assert!(cfg.contains("escpos_qr = \"raster\""), "{cfg}");
    let slip = k.path("s.bin");
    k.ok(&[
        "slip",
        "1",
        "--format",
        "escpos",
        "--out",
        slip.to_str().unwrap(),
    ]);
    let b = read(&slip);
    assert!(b.windows(4).any(|w| w == [0x1D, 0x76, 0x30, 0x00]));
    assert!(!b.windows(3).any(|w| w == [0x1D, 0x28, 0x6B]));
    k.ok(&["printer", "set", "native"]);
    k.ok(&[
        "slip",
        "1",
        "--format",
        "escpos",
        "--out",
        slip.to_str().unwrap(),
    ]);
    assert!(read(&slip).windows(3).any(|w| w == [0x1D, 0x28, 0x6B]));
}
