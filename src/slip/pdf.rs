//! PDF slips with pdf-writer: an A6 page per slip, or `--sheet`: A4 pages holding four A6 slips
//! (2 × 2, with cut marks). Text uses the embedded DejaVu font as a TrueType font with
//! WinAnsiEncoding; the QR is vector squares. The embedded font files are subsets of DejaVu
//! (assets/fonts/), so their names carry a subset tag (`ABCDEF+DejaVuSansCondensed`, PDF 1.7
//! §9.6.4), and each font has a ToUnicode map, so the text can be searched and copied
//! (`pdftotext` reads the slip back).
use super::Slip;
use super::font::{Face, Fonts};
use super::layout::{Op, Style, layout};
use ab_glyph::Font;
use pdf_writer::types::{SystemInfo, UnicodeCmap};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str};
use std::io::Write;

/// A6 and A4 in points.
pub const A6: (f32, f32) = (297.64, 419.53);
pub const A4: (f32, f32) = (595.28, 841.89);
/// Slips on one A4 sheet.
pub const PER_SHEET: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// One slip per A6 page.
    A6,
    /// Four slips per A4 page.
    A4Sheet,
}

/// Windows-1252 code of a character ('?' when it has none).
pub(crate) fn win_ansi(c: char) -> u8 {
    match c {
        ' '..='~' | '\u{A0}'..='\u{FF}' => c as u32 as u8,
        '…' => 0x85,
        '–' => 0x96,
        '—' => 0x97,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        _ => b'?',
    }
}

/// The character of a Windows-1252 code in 32..=255 (for the widths array).
fn win_ansi_char(code: u8) -> char {
    match code {
        0x85 => '…',
        0x91 => '‘',
        0x92 => '’',
        0x93 => '“',
        0x94 => '”',
        0x95 => '•',
        0x96 => '–',
        0x97 => '—',
        0x80..=0x9F => '?',
        c => char::from(c),
    }
}

pub(crate) fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("in memory");
    e.finish().expect("in memory")
}

/// Object ids, one after another (also for the office report's PDF).
pub(crate) struct Ids {
    pub(crate) next: i32,
}

impl Ids {
    pub(crate) fn next(&mut self) -> Ref {
        self.next += 1;
        Ref::new(self.next)
    }
}

/// Embeds the slips' two faces (DejaVu Sans Condensed, regular and bold) as `regular` and `bold`,
/// subset-named; the report's PDF uses the same two.
pub(crate) fn write_fonts(pdf: &mut Pdf, ids: &mut Ids, regular: Ref, bold: Ref) {
    let fonts = Fonts::get();
    write_font(
        pdf,
        ids,
        &fonts.regular,
        regular,
        b"DejaVuSansCondensed",
        false,
    );
    write_font(
        pdf,
        ids,
        &fonts.bold,
        bold,
        b"DejaVuSansCondensed-Bold",
        true,
    );
}

fn write_font(pdf: &mut Pdf, ids: &mut Ids, face: &Face, font_id: Ref, base: &[u8], bold: bool) {
    let descriptor = ids.next();
    let file = ids.next();
    let to_unicode = ids.next();
    let base = &subset_name(face.data, base);
    let upem = face.units_per_em;
    let widths = (32u8..=255).map(|code| face.advance(win_ansi_char(code), 1000.0));
    let mut f = pdf.indirect(font_id).dict();
    f.pair(Name(b"Type"), Name(b"Font"));
    f.pair(Name(b"Subtype"), Name(b"TrueType"));
    f.pair(Name(b"BaseFont"), Name(base));
    f.pair(Name(b"FirstChar"), 32);
    f.pair(Name(b"LastChar"), 255);
    f.insert(Name(b"Widths")).array().items(widths);
    f.pair(Name(b"Encoding"), Name(b"WinAnsiEncoding"));
    f.pair(Name(b"FontDescriptor"), descriptor);
    f.pair(Name(b"ToUnicode"), to_unicode);
    f.finish();
    let mut cmap = UnicodeCmap::<u8>::new(
        Name(b"Custom"),
        SystemInfo {
            registry: Str(b"Adobe"),
            ordering: Str(b"UCS"),
            supplement: 0,
        },
    );
    for code in 32u8..=255 {
        let c = win_ansi_char(code);
        if c != '?' || code == b'?' {
            cmap.pair(code, c);
        }
    }
    pdf.cmap(to_unicode, &cmap.finish());
    let (asc, desc) = face.ascent_descent();
    let scale = 1000.0 / upem;
    pdf.font_descriptor(descriptor)
        .name(Name(base))
        .flags(pdf_writer::types::FontFlags::NON_SYMBOLIC)
        .bbox(Rect::new(-1000.0, desc * scale, 1600.0, asc * scale))
        .italic_angle(face.font.italic_angle())
        .ascent(asc * scale)
        .descent(desc * scale)
        .cap_height(729.0) // DejaVu Sans: 1493 of 2048 units
        .stem_v(if bold { 140.0 } else { 80.0 })
        .font_file2(file);
    let data = deflate(face.data);
    pdf.stream(file, &data)
        .filter(Filter::FlateDecode)
        .pair(Name(b"Length1"), face.data.len() as i32);
}

/// The font's name with a subset tag: six capital letters taken from a hash of the embedded
/// file (so the same font file always gets the same tag), then '+'.
fn subset_name(data: &[u8], base: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(data);
    let mut name: Vec<u8> = hash[..6].iter().map(|b| b'A' + b % 26).collect();
    name.push(b'+');
    name.extend_from_slice(base);
    name
}

/// Draws one slip with its top-left corner at (`ox`, `oy`) in page coordinates, scaled by `s`.
fn draw_slip(c: &mut Content, slip: &Slip, style: &Style, ox: f32, oy: f32, s: f32) {
    let l = layout(slip, style);
    let px = |x: f32| ox + x * s;
    let py = |y: f32| oy - y * s;
    for op in &l.ops {
        match op {
            Op::Text {
                x,
                y,
                size,
                bold,
                text,
            } => {
                let bytes: Vec<u8> = text.chars().map(win_ansi).collect();
                c.begin_text()
                    .set_font(Name(if *bold { b"F2" } else { b"F1" }), size * s)
                    .next_line(px(*x), py(*y))
                    .show(Str(&bytes))
                    .end_text();
            }
            Op::Rule {
                y,
                x0,
                x1,
                thickness,
            } => {
                c.rect(px(*x0), py(*y + thickness), (x1 - x0) * s, thickness * s)
                    .fill_nonzero();
            }
            Op::Qr { x, y, module } => {
                let m = module * s;
                for (row, col, len) in slip.qr.runs() {
                    c.rect(
                        px(*x) + col as f32 * m,
                        py(*y) - (row + 1) as f32 * m,
                        len as f32 * m,
                        m,
                    );
                }
                c.fill_nonzero();
            }
        }
    }
}

/// A PDF of `slips`: one per A6 page, or four per A4 sheet.
pub fn render(slips: &[Slip], page: Page) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let mut ids = Ids { next: 0 };
    let catalog = ids.next();
    let tree = ids.next();
    let regular = ids.next();
    let bold = ids.next();
    let style = Style::a6();
    let groups: Vec<&[Slip]> = match page {
        Page::A6 => slips.chunks(1).collect(),
        Page::A4Sheet => slips.chunks(PER_SHEET).collect(),
    };
    let mut pages = Vec::new();
    for group in &groups {
        let page_id = ids.next();
        let content_id = ids.next();
        pages.push(page_id);
        let (w, h) = if page == Page::A6 { A6 } else { A4 };
        let mut c = Content::new();
        c.set_fill_gray(0.0);
        for (i, slip) in group.iter().enumerate() {
            let (cx, cy) = match page {
                Page::A6 => (0.0, h),
                Page::A4Sheet => ((i % 2) as f32 * A6.0, h - (i / 2) as f32 * A6.1),
            };
            let lh = layout(slip, &style).height;
            // Shrink only if a slip is taller than its cell.
            let s = (A6.1 / lh).min(1.0);
            draw_slip(
                &mut c,
                slip,
                &style,
                cx + (A6.0 - style.width * s) / 2.0,
                cy,
                s,
            );
        }
        if page == Page::A4Sheet {
            // Dashed cut lines between the four cells.
            c.set_stroke_gray(0.6)
                .set_line_width(0.5)
                .set_dash_pattern([3.0, 3.0], 0.0)
                .move_to(A6.0, 0.0)
                .line_to(A6.0, h)
                .move_to(0.0, h - A6.1)
                .line_to(w, h - A6.1)
                .stroke();
        }
        let data = deflate(&c.finish());
        pdf.stream(content_id, &data).filter(Filter::FlateDecode);
        let mut p = pdf.page(page_id);
        p.media_box(Rect::new(0.0, 0.0, w, h))
            .parent(tree)
            .contents(content_id);
        let mut resources = p.resources();
        let mut fonts = resources.fonts();
        fonts.pair(Name(b"F1"), regular);
        fonts.pair(Name(b"F2"), bold);
    }
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree)
        .kids(pages.iter().copied())
        .count(pages.len() as i32);
    write_fonts(&mut pdf, &mut ids, regular, bold);
    let info = ids.next();
    pdf.document_info(info)
        .title(pdf_writer::TextStr(super::TITLE))
        .producer(pdf_writer::TextStr("ikd-field"));
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn page_text(doc: &lopdf::Document, page: u32) -> String {
        let content = doc.get_page_content(doc.get_pages()[&page]).unwrap();
        String::from_utf8_lossy(&content).into_owned()
    }

    #[test]
    fn a6_parses_and_holds_the_slip() {
        let s = slip(LONG_NAME);
        let bytes = render(std::slice::from_ref(&s), Page::A6);
        assert!(bytes.starts_with(b"%PDF-"));
        let doc = lopdf::Document::load_mem(&bytes).unwrap();
        let pages = doc.get_pages();
        assert_eq!(pages.len(), 1);
        let page = doc.get_object(pages[&1]).unwrap().as_dict().unwrap();
        let mb = page.get(b"MediaBox").unwrap().as_array().unwrap();
        let w = mb[2].as_float().unwrap();
        assert!((w - A6.0).abs() < 0.1);
        let text = page_text(&doc, 1);
        assert!(text.contains("(BUKTI AKTIVASI IKD) Tj"), "{text}");
        assert!(text.contains(&s.masked_nik));
        let fonts = doc.get_page_fonts(pages[&1]).unwrap();
        assert_eq!(fonts.len(), 2);
        for f in fonts.values() {
            assert_eq!(f.get(b"Subtype").unwrap().as_name().unwrap(), b"TrueType");
            // A subset tag: six capitals and '+'.
            let base = f.get(b"BaseFont").unwrap().as_name().unwrap();
            assert!(base[..6].iter().all(u8::is_ascii_uppercase) && base[6] == b'+');
            assert!(base.ends_with(b"DejaVuSansCondensed") || base.ends_with(b"-Bold"));
            // A ToUnicode CMap that maps WinAnsi codes back to characters.
            let id = f.get(b"ToUnicode").unwrap().as_reference().unwrap();
            let mut cmap = doc.get_object(id).unwrap().as_stream().unwrap().clone();
            let _ = cmap.decompress();
            let text = String::from_utf8_lossy(&cmap.content).into_owned();
            assert!(
                text.contains("beginbfchar") || text.contains("beginbfrange"),
                "{text}"
            );
            assert!(text.contains("<C9> <00C9>"), "É maps to U+00C9: {text}");
        }
    }

    #[test]
    fn a4_sheet_holds_several_slips() {
        let slips: Vec<Slip> = ["ANI", "BUDI", "CICI", "DEDI", "EKO", "FIFI"]
            .iter()
            .map(|n| slip(n))
            .collect();
        let bytes = render(&slips, Page::A4Sheet);
        let doc = lopdf::Document::load_mem(&bytes).unwrap();
        assert_eq!(doc.get_pages().len(), 2);
        let first = page_text(&doc, 1);
        assert_eq!(first.matches("(BUKTI AKTIVASI IKD) Tj").count(), 4);
        for n in ["ANI", "BUDI", "CICI", "DEDI"] {
            assert!(first.contains(&format!("({n}) Tj")), "{n}");
        }
        assert_eq!(
            page_text(&doc, 2)
                .matches("(BUKTI AKTIVASI IKD) Tj")
                .count(),
            2
        );
        let page = doc
            .get_object(doc.get_pages()[&1])
            .unwrap()
            .as_dict()
            .unwrap();
        let mb = page.get(b"MediaBox").unwrap().as_array().unwrap();
        assert!((mb[3].as_float().unwrap() - A4.1).abs() < 0.1);
    }
}
