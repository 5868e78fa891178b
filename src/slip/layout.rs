//! Places a slip's text, rules and QR once, for PNG, SVG and PDF. Units are pixels for PNG/SVG
//! and points for PDF; y grows downwards and text y is the baseline.
use super::font::{Fonts, wrap};
use super::qr::QUIET_ZONE;
use super::{INSTRUCTION, Paper, Slip, TITLE};

/// Sizes of one kind of output.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub width: f32,
    pub margin: f32,
    pub title: f32,
    pub body: f32,
    pub small: f32,
    /// Largest QR module.
    pub max_module: f32,
    /// Whole-pixel modules (raster output: sharp edges, exact decoding).
    pub whole_modules: bool,
}

impl Style {
    /// A thermal-width raster: 384 px (58 mm) or 576 px (80 mm) at 203 dpi.
    pub fn raster(paper: Paper) -> Style {
        match paper {
            Paper::Mm58 => Style {
                width: 384.0,
                margin: 12.0,
                title: 26.0,
                body: 19.0,
                small: 15.0,
                max_module: 6.0,
                whole_modules: true,
            },
            Paper::Mm80 => Style {
                width: 576.0,
                margin: 16.0,
                title: 34.0,
                body: 25.0,
                small: 19.0,
                max_module: 8.0,
                whole_modules: true,
            },
        }
    }

    /// An A6 page (105 × 148 mm), in points.
    pub fn a6() -> Style {
        Style {
            width: 297.6,
            margin: 22.0,
            title: 15.0,
            body: 9.5,
            small: 7.5,
            max_module: 3.2,
            whole_modules: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        text: String,
    },
    Rule {
        y: f32,
        x0: f32,
        x1: f32,
        thickness: f32,
    },
    /// The QR's top-left dark-module corner and module size (the quiet zone is around it).
    Qr { x: f32, y: f32, module: f32 },
}

#[derive(Debug, Clone)]
pub struct Layout {
    pub width: f32,
    pub height: f32,
    pub ops: Vec<Op>,
}

struct Cursor<'a> {
    style: &'a Style,
    y: f32,
    ops: Vec<Op>,
}

impl Cursor<'_> {
    fn inner(&self) -> f32 {
        self.style.width - 2.0 * self.style.margin
    }

    /// Centred lines, wrapped.
    fn centred(&mut self, text: &str, size: f32, bold: bool) {
        let face = Fonts::get().face(bold);
        for line in wrap(face, text, size, self.inner()) {
            self.y += size * 1.2;
            let w = face.measure(&line, size);
            self.ops.push(Op::Text {
                x: ((self.style.width - w) / 2.0).max(self.style.margin),
                y: self.y,
                size,
                bold,
                text: line,
            });
        }
    }

    fn left(&mut self, x: f32, text: &str, size: f32, bold: bool, max: f32) {
        let face = Fonts::get().face(bold);
        for line in wrap(face, text, size, max) {
            self.y += size * 1.25;
            self.ops.push(Op::Text {
                x,
                y: self.y,
                size,
                bold,
                text: line,
            });
        }
    }

    fn rule(&mut self, gap: f32) {
        self.y += gap;
        self.ops.push(Op::Rule {
            y: self.y,
            x0: self.style.margin,
            x1: self.style.width - self.style.margin,
            thickness: (self.style.body / 10.0).max(1.0),
        });
        self.y += gap * 0.4;
    }
}

pub fn layout(slip: &Slip, style: &Style) -> Layout {
    let fonts = Fonts::get();
    let mut c = Cursor {
        style,
        y: style.margin * 0.6,
        ops: Vec::new(),
    };
    let (m, body, small) = (style.margin, style.body, style.small);
    c.centred(TITLE, style.title, true);
    c.centred(&slip.office, small, false);
    c.rule(small * 0.8);

    // The name, large, then label/value rows in two columns.
    c.left(m, "Nama", small, false, c.inner());
    c.left(m, &slip.name, body, true, c.inner());
    c.y += body * 0.25;
    let rows = slip.rows();
    let label_w = rows
        .iter()
        .map(|(l, _)| fonts.regular.measure(l, small))
        .fold(0.0, f32::max)
        + small;
    let value_x = m + label_w;
    for (label, value) in &rows {
        let top = c.y;
        c.left(value_x, value, body, false, c.inner() - label_w);
        c.ops.push(Op::Text {
            x: m,
            y: top + body * 1.25,
            size: small,
            bold: false,
            text: (*label).to_string(),
        });
    }
    c.left(
        m,
        &format!("ID {}", slip.record_id),
        small,
        false,
        c.inner(),
    );
    c.rule(small * 0.8);

    // The QR, centred, with its quiet zone.
    let total = (slip.qr.width + 2 * QUIET_ZONE) as f32;
    let mut module = (style.width / total).min(style.max_module);
    if style.whole_modules {
        module = module.floor().max(1.0);
    }
    let size = slip.qr.width as f32 * module;
    let mut x = (style.width - size) / 2.0;
    let mut y = c.y + QUIET_ZONE as f32 * module;
    if style.whole_modules {
        x = x.round();
        y = y.round();
    }
    c.ops.push(Op::Qr { x, y, module });
    c.y = y + size + QUIET_ZONE as f32 * module * 0.5;
    c.centred(INSTRUCTION, small, false);
    let height = c.y + m;
    Layout {
        width: style.width,
        height: if style.whole_modules {
            height.ceil()
        } else {
            height
        },
        ops: c.ops,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn everything_is_inside_the_page() {
        let s = slip(LONG_NAME);
        for style in [
            Style::raster(Paper::Mm58),
            Style::raster(Paper::Mm80),
            Style::a6(),
        ] {
            let l = layout(&s, &style);
            let fonts = Fonts::get();
            let mut has_qr = false;
            for op in &l.ops {
                match op {
                    Op::Text {
                        x,
                        y,
                        size,
                        bold,
                        text,
                    } => {
                        let w = fonts.face(*bold).measure(text, *size);
                        assert!(*x >= 0.0 && x + w <= l.width + 0.01, "{text} at {x}+{w}");
                        assert!(*y <= l.height, "{text}");
                    }
                    Op::Qr { x, y, module } => {
                        has_qr = true;
                        let q = QUIET_ZONE as f32 * module;
                        assert!(
                            *x - q >= -0.01 && x + s.qr.width as f32 * module + q <= l.width + 0.01
                        );
                        assert!(y + s.qr.width as f32 * module <= l.height);
                    }
                    Op::Rule { .. } => {}
                }
            }
            assert!(has_qr);
        }
        // A6 holds the whole slip.
        assert!(layout(&s, &Style::a6()).height <= 419.5);
    }
}
