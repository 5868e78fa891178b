//! The dashboard's bar charts: inline SVG (no JavaScript, nothing fetched), one bar per day with
//! a tooltip, escaped text.
use crate::numfmt::fmt_int;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Day label `2026-11-23` → `23/11`.
fn short_day(day: &str) -> String {
    match (day.get(8..10), day.get(5..7)) {
        (Some(d), Some(m)) => format!("{d}/{m}"),
        _ => day.to_string(),
    }
}

/// A bar chart as inline SVG: one bar per `(day, count)`, each with a tooltip; with `axis`, the
/// largest value and the first and last day are written on it.
pub fn bar_chart(series: &[(String, u64)], width: u32, height: u32, axis: bool) -> String {
    let n = series.len().max(1) as f64;
    let max = series.iter().map(|s| s.1).max().unwrap_or(0);
    let (top, bottom, left) = if axis {
        (16.0, 18.0, 4.0)
    } else {
        (2.0, 2.0, 0.0)
    };
    let plot_w = f64::from(width) - left * 2.0;
    let plot_h = f64::from(height) - top - bottom;
    let slot = plot_w / n;
    let bar_w = (slot * 0.75).max(1.0);
    let total: u64 = series.iter().map(|s| s.1).sum();
    let mut svg = format!(
        "<svg class=\"chart{}\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{} aktivasi dalam {} hari\">",
        if axis { " full" } else { "" },
        fmt_int(total),
        series.len()
    );
    svg.push_str(&format!(
        "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{x2:.1}\" y2=\"{y:.1}\" stroke=\"#c5ccd6\" stroke-width=\"1\"/>",
        y = top + plot_h,
        x2 = left + plot_w
    ));
    for (i, (day, v)) in series.iter().enumerate() {
        let h = if max == 0 {
            0.0
        } else {
            (*v as f64 / max as f64 * plot_h).max(if *v > 0 { 1.0 } else { 0.0 })
        };
        let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
        let y = top + plot_h - h;
        svg.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\" fill=\"#0b6e4f\">\
             <title>{}: {}</title></rect>",
            esc(day),
            fmt_int(*v)
        ));
    }
    if axis && !series.is_empty() {
        let text = |x: f64, y: f64, anchor: &str, s: &str| {
            format!(
                "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"11\" fill=\"#5b6675\" text-anchor=\"{anchor}\">{}</text>",
                esc(s)
            )
        };
        svg.push_str(&text(
            left,
            11.0,
            "start",
            &format!("maks. {} per hari", fmt_int(max)),
        ));
        let base = f64::from(height) - 4.0;
        svg.push_str(&text(left, base, "start", &short_day(&series[0].0)));
        svg.push_str(&text(
            left + plot_w,
            base,
            "end",
            &short_day(&series[series.len() - 1].0),
        ));
    }
    svg.push_str("</svg>");
    svg
}
