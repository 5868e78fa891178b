//! The report on one A4 landscape page (pdf-writer, the slips' embedded DejaVu font with its
//! ToUnicode map, so the text can be searched, copied and read by `pdftotext`): the title with
//! the period, the date it was made, the projection sentence, the summary figures, a bar chart of
//! the period's days, the regions with the total, and the teams. Numbers written the Indonesian
//! way. Regions that do not fit (the desa of a whole regency) are left to the CSV and XLSX, and
//! the page says so.
use super::Laporan;
use crate::numfmt::{fmt_int, fmt_pct};
use crate::server::coverage::teams::reasons_text;
use crate::server::coverage::trend::{rate_hundredths, show_date};
use crate::slip::font::Fonts;
use crate::slip::pdf::{Ids, deflate, win_ansi, write_fonts};
use pdf_writer::{Content, Filter, Name, Pdf, Rect, Str};

const W: f32 = 841.89;
const H: f32 = 595.28;
const MARGIN: f32 = 28.0;

struct Page {
    c: Content,
}

impl Page {
    /// Text with its left edge at `x` and its baseline `y` points below the top of the page.
    fn text(&mut self, x: f32, y: f32, size: f32, bold: bool, text: &str) {
        let bytes: Vec<u8> = text.chars().map(win_ansi).collect();
        self.c
            .begin_text()
            .set_font(Name(if bold { b"F2" } else { b"F1" }), size)
            .next_line(x, H - y)
            .show(Str(&bytes))
            .end_text();
    }
    fn width(text: &str, size: f32, bold: bool) -> f32 {
        Fonts::get().face(bold).measure(text, size)
    }
    /// Text ending at `right`.
    fn right(&mut self, right: f32, y: f32, size: f32, bold: bool, text: &str) {
        let w = Page::width(text, size, bold);
        self.text(right - w, y, size, bold, text);
    }
    /// Text cut with "…" to fit `max` points.
    fn fit(text: &str, size: f32, bold: bool, max: f32) -> String {
        if Page::width(text, size, bold) <= max {
            return text.to_string();
        }
        let mut s: String = text.to_string();
        while !s.is_empty() && Page::width(&format!("{s}…"), size, bold) > max {
            s.pop();
        }
        format!("{s}…")
    }
    fn rule(&mut self, x0: f32, x1: f32, y: f32, gray: f32) {
        self.c
            .set_fill_gray(gray)
            .rect(x0, H - y, x1 - x0, 0.6)
            .fill_nonzero()
            .set_fill_gray(0.0);
    }
}

/// A table: columns as (header, width, right-aligned); rows of cells; bold rows marked.
fn table(
    p: &mut Page,
    top: f32,
    row_h: f32,
    cols: &[(&str, f32, bool)],
    rows: &[(Vec<String>, bool)],
) -> f32 {
    let size = (row_h * 0.78).min(8.5);
    let mut y = top;
    let mut x = MARGIN;
    for (head, w, right) in cols {
        let h = Page::fit(head, size, true, w - 4.0);
        if *right {
            p.right(x + w - 2.0, y, size, true, &h);
        } else {
            p.text(x, y, size, true, &h);
        }
        x += w;
    }
    p.rule(MARGIN, x, y + 2.5, 0.4);
    for (cells, bold) in rows {
        y += row_h;
        let mut x = MARGIN;
        for ((_, w, right), cell) in cols.iter().zip(cells) {
            let t = Page::fit(cell, size, *bold, w - 4.0);
            if *right {
                p.right(x + w - 2.0, y, size, *bold, &t);
            } else {
                p.text(x, y, size, *bold, &t);
            }
            x += w;
        }
        if *bold {
            p.rule(MARGIN, x, y - row_h + 2.5, 0.4);
        }
    }
    y
}

fn bar_chart(p: &mut Page, x: f32, top: f32, w: f32, h: f32, series: &[(String, u64)]) {
    let max = series.iter().map(|s| s.1).max().unwrap_or(0);
    let n = series.len().max(1) as f32;
    let plot_top = top + 12.0;
    let plot_h = h - 24.0;
    let base = plot_top + plot_h;
    p.text(x, top + 6.0, 8.0, true, "Aktivasi per hari");
    p.right(
        x + w,
        top + 6.0,
        7.0,
        false,
        &format!("maks. {} per hari", fmt_int(max)),
    );
    let slot = w / n;
    let bar = (slot * 0.75).max(0.5);
    p.c.set_fill_rgb(0.043, 0.431, 0.31);
    for (i, (_, v)) in series.iter().enumerate() {
        if max == 0 || *v == 0 {
            continue;
        }
        let bh = (*v as f32 / max as f32 * plot_h).max(0.8);
        p.c.rect(x + slot * i as f32 + (slot - bar) / 2.0, H - base, bar, bh)
            .fill_nonzero();
    }
    p.c.set_fill_gray(0.0);
    p.rule(x, x + w, base, 0.5);
    let label = |d: &str| match (d.get(8..10), d.get(5..7)) {
        (Some(a), Some(b)) => format!("{a}/{b}"),
        _ => d.to_string(),
    };
    if let (Some(first), Some(last)) = (series.first(), series.last()) {
        p.text(x, base + 9.0, 7.0, false, &label(&first.0));
        p.right(x + w, base + 9.0, 7.0, false, &label(&last.0));
    }
}

pub fn write(l: &Laporan) -> Vec<u8> {
    let mut p = Page { c: Content::new() };
    p.c.set_fill_gray(0.0);
    let level = super::level_name(l.level);
    p.text(
        MARGIN,
        MARGIN + 12.0,
        16.0,
        true,
        &format!("Laporan Aktivasi IKD — {}", l.period_name),
    );
    p.text(
        MARGIN,
        MARGIN + 26.0,
        8.5,
        false,
        &format!(
            "Periode {} s.d. {} · angka per {} · per {level} · dibuat {}",
            show_date(l.period_from),
            show_date(l.period_to),
            show_date(l.as_of),
            l.generated
        ),
    );
    // The projection sentence, wrapped.
    let face = Fonts::get().face(true);
    let mut y = MARGIN + 42.0;
    for line in crate::slip::font::wrap(face, &l.headline(), 10.0, W - 2.0 * MARGIN) {
        p.text(MARGIN, y, 10.0, true, &line);
        y += 13.0;
    }
    // Summary figures (left) and the chart (right).
    let (f, t, pr) = &l.total.figures;
    let opt = |v: Option<u64>| v.map(fmt_int).unwrap_or_else(|| "—".into());
    let summary = [
        ("Wajib KTP", opt(f.wajib_ktp)),
        ("Target", opt(f.target)),
        ("Aktivasi kumulatif", fmt_int(f.live)),
        (
            "% target",
            f.of_target()
                .map(|h| format!("{} %", fmt_pct(h)))
                .unwrap_or("—".into()),
        ),
        ("Sisa ke target", opt(f.remaining())),
        ("Aktivasi periode ini", fmt_int(t.in_period)),
        (
            "Rata-rata per hari, 7 hari",
            fmt_pct(rate_hundredths(t.last_7, 7)),
        ),
        (
            "Rata-rata per hari, 30 hari",
            fmt_pct(rate_hundredths(t.last_30, 30)),
        ),
        (
            "Perkiraan target tercapai",
            pr.reached_on.map(show_date).unwrap_or("—".into()),
        ),
        (
            &*format!("Perlu per hari s.d. {}", show_date(l.target_date)),
            opt(pr.needed_per_day),
        ),
    ];
    let top = y + 2.0;
    for (i, (k, v)) in summary.iter().enumerate() {
        let yy = top + 11.0 * (i as f32 + 1.0);
        p.text(MARGIN, yy, 8.5, false, k);
        p.right(MARGIN + 230.0, yy, 8.5, true, v);
    }
    bar_chart(
        &mut p,
        MARGIN + 260.0,
        top,
        W - 2.0 * MARGIN - 260.0,
        118.0,
        &l.daily,
    );
    let y = top + 130.0;

    // The tables share what is left of the page.
    let teams: Vec<(Vec<String>, bool)> = l
        .teams
        .iter()
        .map(|t| {
            (
                vec![
                    t.team.clone(),
                    t.officers.join(", "),
                    fmt_int(t.in_period),
                    fmt_int(t.field_days),
                    t.per_field_day().map(fmt_pct).unwrap_or("—".into()),
                    fmt_int(t.voids),
                    String::new(),
                    reasons_text(&t.reasons),
                ],
                false,
            )
        })
        .collect();
    let region_row = |r: &crate::server::coverage::ReportRow| {
        let (f, t, pr) = &r.figures;
        (
            vec![
                r.name.clone(),
                opt(f.wajib_ktp),
                opt(f.target),
                fmt_int(t.in_period),
                fmt_int(f.live),
                f.of_target().map(fmt_pct).unwrap_or("—".into()),
                opt(f.remaining()),
                fmt_pct(rate_hundredths(t.last_7, 7)),
                pr.reached_on.map(show_date).unwrap_or("—".into()),
                opt(pr.needed_per_day),
                fmt_int(f.conflicts),
            ],
            r.code.is_empty(),
        )
    };
    let avail = H - MARGIN - y - 26.0;
    let wanted = (l.rows.len() + 1 + teams.len() + 2) as f32;
    let row_h = (avail / wanted).clamp(7.5, 11.0);
    let fit = ((avail / row_h) as usize).saturating_sub(teams.len() + 3);
    let mut regions: Vec<(Vec<String>, bool)> = l.rows.iter().take(fit).map(region_row).collect();
    let left_out = l.rows.len().saturating_sub(fit);
    regions.push(region_row(&l.total));
    let cols = [
        (level_title(level), 170.0, false),
        ("Wajib KTP", 60.0, true),
        ("Target", 52.0, true),
        ("Periode ini", 55.0, true),
        ("Kumulatif", 55.0, true),
        ("% target", 45.0, true),
        ("Sisa", 55.0, true),
        ("Per hari (7 hr)", 68.0, true),
        ("Tercapai sekitar", 80.0, true),
        ("Perlu per hari", 66.0, true),
        ("Konflik", 45.0, true),
    ];
    let mut y = table(&mut p, y, row_h, &cols, &regions);
    if left_out > 0 {
        y += row_h;
        p.text(
            MARGIN,
            y,
            7.5,
            false,
            &format!(
                "{left_out} wilayah lagi tidak muat di halaman ini: lihat laporan CSV atau XLSX (jumlahnya sudah termasuk)."
            ),
        );
    }
    let cols = [
        ("Tim", 130.0, false),
        ("Petugas", 180.0, false),
        ("Aktivasi", 55.0, true),
        ("Hari lapangan", 72.0, true),
        ("Per hari lapangan", 88.0, true),
        ("Batal", 40.0, true),
        ("", 8.0, false),
        ("Alasan pembatalan", 210.0, false),
    ];
    if teams.is_empty() {
        p.text(
            MARGIN,
            y + 2.0 * row_h,
            8.0,
            false,
            "Belum ada perangkat terdaftar.",
        );
    } else {
        table(&mut p, y + row_h * 1.6, row_h, &cols, &teams);
    }
    p.text(
        MARGIN,
        H - 14.0,
        7.0,
        false,
        &format!(
            "ikd-field · hanya angka agregat · aktivasi = tercatat dan tidak dibatalkan · waktu {}",
            l.generated.rsplit(' ').next().unwrap_or("")
        ),
    );
    finish(p.c, l)
}

fn level_title(level: &str) -> &'static str {
    match level {
        "kabupaten" => "Kabupaten/kota",
        "desa" => "Desa/kelurahan",
        _ => "Kecamatan",
    }
}

fn finish(c: Content, l: &Laporan) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let mut ids = Ids { next: 0 };
    let (catalog, tree, page, content, regular, bold) = (
        ids.next(),
        ids.next(),
        ids.next(),
        ids.next(),
        ids.next(),
        ids.next(),
    );
    pdf.stream(content, &deflate(&c.finish()))
        .filter(Filter::FlateDecode);
    {
        let mut pg = pdf.page(page);
        pg.media_box(Rect::new(0.0, 0.0, W, H))
            .parent(tree)
            .contents(content);
        let mut res = pg.resources();
        let mut fonts = res.fonts();
        fonts.pair(Name(b"F1"), regular);
        fonts.pair(Name(b"F2"), bold);
    }
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page]).count(1);
    write_fonts(&mut pdf, &mut ids, regular, bold);
    let info = ids.next();
    pdf.document_info(info)
        .title(pdf_writer::TextStr(&format!(
            "Laporan Aktivasi IKD — {}",
            l.period_name
        )))
        .producer(pdf_writer::TextStr("ikd-field"));
    pdf.finish()
}
