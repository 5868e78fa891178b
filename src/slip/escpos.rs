//! Raw ESC/POS for thermal printers, built by hand from the Epson command set (no driver, no C
//! library). Three layouts, as printers are sold: 58 mm (384 dots, 32 columns), 80 mm with
//! 48 columns (576 dots) and 80 mm with 42 columns (512 dots: Epson TM-T88 and the like). The
//! columns are of font A (12 × 24 dots); font B (9 × 17) is used only for the record id on 58 mm
//! paper, so the id is never split across lines.
//!
//! | bytes | command |
//! | --- | --- |
//! | `1C 2E` | FS . — leave Chinese (double-byte) mode, which many 58 mm clones start in; sent first and again after ESC @, which restores the printer's default mode |
//! | `1B 40` | ESC @ — initialise |
//! | `1B 74 10` | ESC t 16 — code page WPC1252 (text is sent in Windows-1252) |
//! | `1B 33 1E` | ESC 3 30 — line spacing 30 dots (24-dot characters and 6 dots between lines) |
//! | `1B 61 n` | ESC a — align: 0 left, 1 centre |
//! | `1B 45 n` | ESC E — bold on (1) / off (0) |
//! | `1B 4D n` | ESC M — font A (0) / font B (1) |
//! | `1D 21 n` | GS ! — character size: 0x11 double width and height, 0x01 double height, 0 normal |
//! | `1D 28 6B 04 00 31 41 32 00` | GS ( k fn 165 — QR model 2 |
//! | `1D 28 6B 03 00 31 43 n` | GS ( k fn 167 — module size n dots |
//! | `1D 28 6B 03 00 31 45 31` | GS ( k fn 169 — error correction M |
//! | `1D 28 6B pL pH 31 50 30 d…` | GS ( k fn 180 — store data (pL + 256·pH = len + 3) |
//! | `1D 28 6B 03 00 31 51 30` | GS ( k fn 181 — print the stored symbol |
//! | `1D 76 30 00 xL xH yL yH d…` | GS v 0 — raster bit image (for printers without QR support) |
//! | `1B 4A n` | ESC J — feed n dots (the quiet zone above and below a native QR) |
//! | `1B 64 n` | ESC d — feed n lines |
//! | `1D 56 42 n` | GS V 66 — feed n and partial cut |
use super::qr::{QUIET_ZONE, Qr};
use super::{INSTRUCTION, Paper, Slip, TITLE};

pub const LEAVE_CHINESE: [u8; 2] = [0x1C, 0x2E];
pub const INIT: [u8; 2] = [0x1B, 0x40];
pub const CUT: [u8; 3] = [0x1D, 0x56, 0x42];
pub const QR_PRINT: [u8; 8] = [0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x51, 0x30];
pub const RASTER: [u8; 4] = [0x1D, 0x76, 0x30, 0x00];
/// Line spacing in dots (ESC 3): font A is 24 dots high.
pub const LINE_SPACING: u8 = 30;
/// Font A cell width in dots.
pub const FONT_A_DOTS: usize = 12;

/// How the QR is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QrMode {
    /// The printer draws the QR itself (GS ( k): small, sharp; most current printers.
    #[default]
    Native,
    /// A bit image of the QR (GS v 0), for printers without the QR command.
    Raster,
}

impl QrMode {
    pub fn parse(s: &str) -> Option<QrMode> {
        match s {
            "native" => Some(QrMode::Native),
            "raster" => Some(QrMode::Raster),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            QrMode::Native => "native",
            QrMode::Raster => "raster",
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub qr: QrMode,
    /// Characters per line in font A: 32 (58 mm), 42 or 48 (80 mm); `None`: the paper's usual
    /// count (32 on 58 mm, 48 on 80 mm).
    pub columns: Option<usize>,
}

/// The column counts a paper width is sold with.
pub fn columns_for(paper: Paper) -> &'static [usize] {
    match paper {
        Paper::Mm58 => &[32],
        Paper::Mm80 => &[48, 42],
    }
}

/// The printable width in dots and the columns of a layout, or which columns the paper takes.
pub fn layout(paper: Paper, columns: Option<usize>) -> Result<(usize, usize), String> {
    let cols = columns.unwrap_or(paper.columns());
    if !columns_for(paper).contains(&cols) {
        let allowed: Vec<String> = columns_for(paper).iter().map(|c| c.to_string()).collect();
        return Err(allowed.join(" / "));
    }
    Ok((cols * FONT_A_DOTS, cols))
}

/// QR module size in dots: 6 on 58 mm and 8 on 80 mm paper, smaller only if the symbol and its
/// quiet zone would not fit the line.
pub fn module_dots(qr: &Qr, dots: usize) -> usize {
    let usual = if dots > 384 { 8 } else { 6 };
    (dots / (qr.width + 2 * QUIET_ZONE)).clamp(3, usual)
}

/// Windows-1252 for the printer's code page 16. Names are checked to be Latin-1 before they are
/// stored; anything else that reached here (never a name) becomes '?'.
fn cp1252(text: &str) -> Vec<u8> {
    text.chars()
        .flat_map(|c| -> Vec<u8> {
            match c {
                ' '..='~' => vec![c as u8],
                '\u{A0}'..='\u{FF}' => vec![c as u32 as u8],
                '…' => vec![0x85],
                '–' => vec![0x96],
                '—' => vec![0x97],
                '‘' | '’' => vec![b'\''],
                '“' | '”' => vec![b'"'],
                _ => vec![b'?'],
            }
        })
        .collect()
}

/// Lines of at most `cols` characters, broken at spaces where possible.
fn wrap(text: &str, cols: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let (ll, wl) = (line.chars().count(), word.chars().count());
        if ll > 0 && ll + 1 + wl <= cols {
            line.push(' ');
            line.push_str(word);
            continue;
        }
        if ll > 0 {
            lines.push(std::mem::take(&mut line));
        }
        let chars: Vec<char> = word.chars().collect();
        for (i, part) in chars.chunks(cols).enumerate() {
            if i > 0 {
                lines.push(std::mem::take(&mut line));
            }
            line = part.iter().collect();
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// ESC/POS bytes being written.
pub struct Out(pub Vec<u8>);

impl Out {
    pub fn cmd(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }
    pub fn line(&mut self, text: &str) -> &mut Self {
        self.0.extend(cp1252(text));
        self.0.push(b'\n');
        self
    }
    /// FS ., ESC @, FS . again, code page 1252, line spacing: every page starts so.
    pub fn start(&mut self) -> &mut Self {
        self.cmd(&LEAVE_CHINESE)
            .cmd(&INIT)
            .cmd(&LEAVE_CHINESE)
            .cmd(&[0x1B, 0x74, 16])
            .cmd(&[0x1B, 0x33, LINE_SPACING])
    }
    /// Feeds `dots` dot rows (ESC J, at most 255 a command).
    pub fn feed_dots(&mut self, mut dots: usize) -> &mut Self {
        while dots > 0 {
            let n = dots.min(255);
            self.cmd(&[0x1B, 0x4A, n as u8]);
            dots -= n;
        }
        self
    }
    /// The QR of `text` centred, with a quiet zone of four modules all round (a raster image
    /// carries its own; the printer's native symbol has none, so dots are fed above and below).
    pub fn qr(&mut self, text: &str, qr: &Qr, mode: QrMode, dots: usize) -> &mut Self {
        let module = module_dots(qr, dots);
        self.cmd(&[0x1B, 0x61, 1]);
        match mode {
            QrMode::Native => {
                let data = text.as_bytes();
                let n = data.len() + 3;
                self.feed_dots(QUIET_ZONE * module)
                    .cmd(&[0x1D, 0x28, 0x6B, 0x04, 0x00, 0x31, 0x41, 0x32, 0x00])
                    .cmd(&[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x43, module as u8])
                    .cmd(&[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x45, 0x31])
                    .cmd(&[
                        0x1D,
                        0x28,
                        0x6B,
                        (n % 256) as u8,
                        (n / 256) as u8,
                        0x31,
                        0x50,
                        0x30,
                    ])
                    .cmd(data)
                    .cmd(&QR_PRINT)
                    .feed_dots(QUIET_ZONE * module);
            }
            QrMode::Raster => raster_qr(self, qr, module),
        }
        self
    }
}

pub fn render(slip: &Slip, paper: Paper, opts: &Options) -> Vec<u8> {
    let (dots, cols) = layout(paper, opts.columns).unwrap_or((paper.dots(), paper.columns()));
    let mut o = Out(Vec::with_capacity(1024));
    o.start();
    // Header, centred: title double size and bold, office normal.
    o.cmd(&[0x1B, 0x61, 1]).cmd(&[0x1B, 0x45, 1]);
    o.cmd(&[0x1D, 0x21, if cols >= 36 { 0x11 } else { 0x01 }]);
    o.line(TITLE).cmd(&[0x1D, 0x21, 0]).cmd(&[0x1B, 0x45, 0]);
    for l in wrap(&slip.office, cols) {
        o.line(&l);
    }
    o.line(&"-".repeat(cols));
    // Name in bold, then label/value rows, left aligned.
    o.cmd(&[0x1B, 0x61, 0]).line("Nama").cmd(&[0x1B, 0x45, 1]);
    for l in wrap(&slip.name, cols) {
        o.line(&l);
    }
    o.cmd(&[0x1B, 0x45, 0]);
    let label_w = 10;
    for (label, value) in slip.rows() {
        for (i, l) in wrap(&value, cols - label_w).iter().enumerate() {
            let label = if i == 0 { label } else { "" };
            o.line(&format!("{label:<label_w$}{l}"));
        }
    }
    // The record id on one line: in font B where font A is too wide for it (58 mm).
    let id = format!("ID {}", slip.record_id);
    if id.len() <= cols {
        o.line(&id);
    } else {
        o.cmd(&[0x1B, 0x4D, 1]).line(&id).cmd(&[0x1B, 0x4D, 0]);
    }
    o.line(&"-".repeat(cols));
    o.qr(&slip.payload, &slip.qr, opts.qr, dots);
    for l in wrap(INSTRUCTION, cols) {
        o.line(&l);
    }
    o.cmd(&[0x1B, 0x64, 3]).cmd(&CUT).cmd(&[3]);
    o.0
}

/// GS v 0: the QR with its quiet zone, `module` dots per module, 1 bit per dot, MSB first.
fn raster_qr(o: &mut Out, qr: &Qr, module: usize) {
    let side = (qr.width + 2 * QUIET_ZONE) * module;
    let row_bytes = side.div_ceil(8);
    o.cmd(&RASTER).cmd(&[
        (row_bytes % 256) as u8,
        (row_bytes / 256) as u8,
        (side % 256) as u8,
        (side / 256) as u8,
    ]);
    let mut row = vec![0u8; row_bytes];
    for y in 0..side {
        row.fill(0);
        for x in 0..side {
            let (mx, my) = (x / module, y / module);
            let dark =
                mx >= QUIET_ZONE && my >= QUIET_ZONE && qr.dark(mx - QUIET_ZONE, my - QUIET_ZONE);
            if dark {
                row[x / 8] |= 0x80 >> (x % 8);
            }
        }
        o.cmd(&row);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn native_qr_for_both_widths() {
        let s = slip(LONG_NAME);
        for (paper, module) in [(Paper::Mm58, 6), (Paper::Mm80, 8)] {
            let b = render(&s, paper, &Options::default());
            assert_eq!(&b[..2], &LEAVE_CHINESE, "starts with FS .");
            assert_eq!(&b[2..6], &[0x1B, 0x40, 0x1C, 0x2E], "ESC @ then FS . again");
            let store = find(&b, &[0x1D, 0x28, 0x6B]).expect("GS ( k");
            assert_eq!(
                &b[store..store + 9],
                &[0x1D, 0x28, 0x6B, 4, 0, 0x31, 0x41, 0x32, 0]
            );
            assert!(find(&b, &[0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x43, module]).is_some());
            assert!(find(&b, &[0x1D, 0x28, 0x6B, 3, 0, 0x31, 0x45, 0x31]).is_some());
            // Stored data = payload, with its length in pL pH.
            let at = find(&b, &[0x31, 0x50, 0x30]).unwrap();
            let n = usize::from(b[at - 2]) + 256 * usize::from(b[at - 1]);
            assert_eq!(&b[at + 3..at + n], s.payload.as_bytes());
            let print = find(&b, &QR_PRINT).unwrap();
            assert!(print > at);
            // Cut at the end, after the QR.
            let cut = find(&b, &CUT).unwrap();
            assert!(cut > print && cut + 4 == b.len());
            // Line widths and the quiet zone: tests/printer.rs interprets the whole page.
            assert!(find(&b, LONG_NAME.split(' ').next().unwrap().as_bytes()).is_some());
        }
    }

    #[test]
    fn raster_qr_is_a_bit_image_of_the_symbol() {
        let s = slip("BUDI SANTOSO");
        for (paper, module) in [(Paper::Mm58, 6usize), (Paper::Mm80, 8)] {
            let opts = Options {
                qr: QrMode::Raster,
                columns: None,
            };
            let b = render(&s, paper, &opts);
            assert_eq!(&b[..2], &LEAVE_CHINESE);
            assert!(find(&b, &[0x1D, 0x28, 0x6B]).is_none());
            let at = find(&b, &RASTER).expect("GS v 0");
            let p = &b[at + 4..];
            let row_bytes = usize::from(p[0]) + 256 * usize::from(p[1]);
            let rows = usize::from(p[2]) + 256 * usize::from(p[3]);
            let side = (s.qr.width + 2 * QUIET_ZONE) * module;
            assert_eq!((row_bytes, rows), (side.div_ceil(8), side));
            assert!(side <= paper.dots());
            let bits = &p[4..4 + row_bytes * rows];
            let dot = |x: usize, y: usize| bits[y * row_bytes + x / 8] & (0x80 >> (x % 8)) != 0;
            for (mx, my) in [(0, 0), (3, 3), (7, 7), (s.qr.width - 1, 0)] {
                let (x, y) = (
                    (mx + QUIET_ZONE) * module + 1,
                    (my + QUIET_ZONE) * module + 1,
                );
                assert_eq!(dot(x, y), s.qr.dark(mx, my), "module {mx},{my}");
            }
            assert!(!dot(0, 0));
            assert!(find(&b, &CUT).unwrap() > at);
        }
    }

    #[test]
    fn text_goes_out_in_cp1252() {
        assert_eq!(cp1252("JOSÉ…☃"), vec![b'J', b'O', b'S', 0xC9, 0x85, b'?']);
        assert_eq!(
            wrap("AAAA BBBB CCCCCCCCCC", 8),
            vec!["AAAA", "BBBB", "CCCCCCCC", "CC"]
        );
    }

    #[test]
    fn layouts_as_printers_are_sold() {
        assert_eq!(layout(Paper::Mm58, None), Ok((384, 32)));
        assert_eq!(layout(Paper::Mm80, None), Ok((576, 48)));
        assert_eq!(layout(Paper::Mm80, Some(42)), Ok((504, 42)));
        assert_eq!(layout(Paper::Mm58, Some(42)), Err("32".to_string()));
        assert_eq!(layout(Paper::Mm80, Some(40)), Err("48 / 42".to_string()));
        let s = slip(LONG_NAME);
        // The QR and its quiet zone fit every layout; 42 columns keep 8-dot modules.
        for (paper, cols, module) in [
            (Paper::Mm58, 32, 6),
            (Paper::Mm80, 48, 8),
            (Paper::Mm80, 42, 8),
        ] {
            let (dots, _) = layout(paper, Some(cols)).unwrap();
            assert_eq!(module_dots(&s.qr, dots), module, "{cols}");
            assert!((s.qr.width + 2 * QUIET_ZONE) * module <= dots);
        }
    }
}
