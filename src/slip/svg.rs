//! SVG slips: the same layout as PNG, as text and one path for the QR. Sized in millimetres at
//! 8 px/mm (203 dpi), so a 58 mm slip prints 48 mm wide. The font is named, not embedded (each
//! line keeps its laid-out width with `textLength`).
use super::font::{FAMILY, Fonts};
use super::layout::{Op, Style, layout};
use super::{Paper, Slip};
use std::fmt::Write;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

pub fn render(slip: &Slip, paper: Paper) -> String {
    let l = layout(slip, &Style::raster(paper));
    let mut s = String::with_capacity(8 * 1024);
    let _ = write!(
        s,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{w_mm}mm" height="{h_mm}mm" viewBox="0 0 {w} {h}">
<title>{title}</title>
<rect width="100%" height="100%" fill="#fff"/>
<g font-family="'{FAMILY}', 'DejaVu Sans', Arial, sans-serif" fill="#000">
"##,
        w = l.width,
        h = l.height,
        w_mm = l.width / 8.0,
        h_mm = l.height / 8.0,
        title = escape(&format!("{} #{}", super::TITLE, slip.seq)),
    );
    for op in &l.ops {
        match op {
            Op::Text {
                x,
                y,
                size,
                bold,
                text,
            } => {
                let weight = if *bold { r#" font-weight="bold""# } else { "" };
                // The font is not embedded: textLength holds each line to the width it was laid
                // out for, whatever font the viewer substitutes.
                let w = Fonts::get().face(*bold).measure(text, *size);
                let _ = writeln!(
                    s,
                    r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}"{weight} textLength="{w:.1}" lengthAdjust="spacingAndGlyphs">{}</text>"#,
                    escape(text)
                );
            }
            Op::Rule {
                y,
                x0,
                x1,
                thickness,
            } => {
                let _ = writeln!(
                    s,
                    r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{thickness:.1}"/>"#,
                    x1 - x0
                );
            }
            Op::Qr { x, y, module } => {
                let _ = write!(
                    s,
                    r#"<path transform="translate({x} {y}) scale({module})" d=""#
                );
                for (row, col, len) in slip.qr.runs() {
                    let _ = write!(s, "M{col} {row}h{len}v1h-{len}z");
                }
                let _ = writeln!(s, r#""/>"#);
            }
        }
    }
    s.push_str("</g>\n</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn svg_has_the_text_and_the_qr() {
        let s = slip("SITI AMINAH & ANAK <X>");
        let svg = render(&s, Paper::Mm58);
        assert!(svg.starts_with("<?xml") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(r#"lengthAdjust="spacingAndGlyphs">BUKTI AKTIVASI IKD</text>"#));
        assert!(svg.contains("SITI AMINAH &amp; ANAK &lt;X&gt;"));
        assert!(svg.contains(&s.masked_nik));
        assert!(svg.contains(&s.record_id));
        assert_eq!(svg.matches("<path").count(), 1);
        assert!(svg.contains(r#"width="48mm""#));
    }
}
