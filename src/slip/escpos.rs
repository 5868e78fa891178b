//! Raw ESC/POS for 58 mm (384 dots, 32 columns) and 80 mm (576 dots, 48 columns) thermal printers,
//! built by hand from the Epson command set (no driver, no C library):
//!
//! | bytes | command |
//! | --- | --- |
//! | `1B 40` | ESC @ — initialise |
//! | `1B 74 10` | ESC t 16 — code page WPC1252 (text is sent in Windows-1252) |
//! | `1B 61 n` | ESC a — align: 0 left, 1 centre |
//! | `1B 45 n` | ESC E — bold on (1) / off (0) |
//! | `1D 21 n` | GS ! — character size: 0x11 double width and height, 0 normal |
//! | `1D 28 6B 04 00 31 41 32 00` | GS ( k fn 165 — QR model 2 |
//! | `1D 28 6B 03 00 31 43 n` | GS ( k fn 167 — module size n dots |
//! | `1D 28 6B 03 00 31 45 31` | GS ( k fn 169 — error correction M |
//! | `1D 28 6B pL pH 31 50 30 d…` | GS ( k fn 180 — store data (pL + 256·pH = len + 3) |
//! | `1D 28 6B 03 00 31 51 30` | GS ( k fn 181 — print the stored symbol |
//! | `1D 76 30 00 xL xH yL yH d…` | GS v 0 — raster bit image (for printers without QR support) |
//! | `1B 64 n` | ESC d — feed n lines |
//! | `1D 56 42 n` | GS V 66 — feed n and partial cut |
use super::qr::QUIET_ZONE;
use super::{INSTRUCTION, Paper, Slip, TITLE};

pub const INIT: [u8; 2] = [0x1B, 0x40];
pub const CUT: [u8; 3] = [0x1D, 0x56, 0x42];
pub const QR_PRINT: [u8; 8] = [0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x51, 0x30];
pub const RASTER: [u8; 4] = [0x1D, 0x76, 0x30, 0x00];

/// How the QR is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QrMode {
    /// The printer draws the QR itself (GS ( k): small, sharp; most current printers.
    #[default]
    Native,
    /// A bit image of the QR (GS v 0), for printers without the QR command.
    Raster,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub qr: QrMode,
}

/// Windows-1252 for the printer's code page 16; anything else becomes '?'.
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

struct Out(Vec<u8>);

impl Out {
    fn cmd(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }
    fn line(&mut self, text: &str) -> &mut Self {
        self.0.extend(cp1252(text));
        self.0.push(b'\n');
        self
    }
}

pub fn render(slip: &Slip, paper: Paper, opts: &Options) -> Vec<u8> {
    let cols = paper.columns();
    let mut o = Out(Vec::with_capacity(1024));
    o.cmd(&INIT).cmd(&[0x1B, 0x74, 16]);
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
    for l in wrap(&format!("ID {}", slip.record_id), cols) {
        o.line(&l);
    }
    o.line(&"-".repeat(cols));
    o.cmd(&[0x1B, 0x61, 1]);
    let module: u8 = if paper == Paper::Mm58 { 6 } else { 8 };
    match opts.qr {
        QrMode::Native => {
            let data = slip.payload.as_bytes();
            let n = data.len() + 3;
            o.cmd(&[0x1D, 0x28, 0x6B, 0x04, 0x00, 0x31, 0x41, 0x32, 0x00])
                .cmd(&[0x1D, 0x28, 0x6B, 0x03, 0x00, 0x31, 0x43, module])
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
                .cmd(&QR_PRINT);
        }
        QrMode::Raster => raster_qr(&mut o, slip, usize::from(module)),
    }
    o.cmd(b"\n");
    for l in wrap(INSTRUCTION, cols) {
        o.line(&l);
    }
    o.cmd(&[0x1B, 0x64, 3]).cmd(&CUT).cmd(&[3]);
    o.0
}

/// GS v 0: the QR with its quiet zone, `module` dots per module, 1 bit per dot, MSB first.
fn raster_qr(o: &mut Out, slip: &Slip, module: usize) {
    let side = (slip.qr.width + 2 * QUIET_ZONE) * module;
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
            let dark = mx >= QUIET_ZONE
                && my >= QUIET_ZONE
                && slip.qr.dark(mx - QUIET_ZONE, my - QUIET_ZONE);
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
        for (paper, module, cols) in [(Paper::Mm58, 6, 32), (Paper::Mm80, 8, 48)] {
            let b = render(&s, paper, &Options::default());
            assert_eq!(&b[..2], &INIT, "starts with ESC @");
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
            // No text line is wider than the paper.
            let text: Vec<u8> = b[..store].to_vec();
            for line in text.split(|&c| c == b'\n').skip(1) {
                let printable = line.iter().filter(|c| **c >= 0x20).count();
                assert!(printable <= cols + 3, "{}", String::from_utf8_lossy(line));
            }
            assert!(find(&b, LONG_NAME.split(' ').next().unwrap().as_bytes()).is_some());
        }
    }

    #[test]
    fn raster_qr_is_a_bit_image_of_the_symbol() {
        let s = slip("BUDI SANTOSO");
        for (paper, module) in [(Paper::Mm58, 6usize), (Paper::Mm80, 8)] {
            let b = render(&s, paper, &Options { qr: QrMode::Raster });
            assert_eq!(&b[..2], &INIT);
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
}
