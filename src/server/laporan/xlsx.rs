//! The report as an Excel workbook (rust_xlsxwriter): numbers, percentages and dates typed as
//! such (Excel shows them in the reader's locale: `60.846`, `17,13%`, `31/12/2026` in
//! Indonesian), Indonesian headers. Sheets: Wilayah (the regions and the total), Tim, Harian
//! (the days of the period, with a column chart).
use super::Laporan;
use crate::server::coverage::ReportRow;
use crate::server::coverage::teams::reasons_text;
use crate::server::coverage::trend::show_date;
use rust_xlsxwriter::{Chart, ChartType, ExcelDateTime, Format, Workbook, Worksheet, XlsxError};
use time::Date;

fn date(d: Date) -> Result<ExcelDateTime, XlsxError> {
    ExcelDateTime::from_ymd(d.year() as u16, u8::from(d.month()), d.day())
}

struct Formats {
    title: Format,
    head: Format,
    int: Format,
    dec: Format,
    pct: Format,
    date: Format,
    bold_int: Format,
    bold: Format,
}

fn formats() -> Formats {
    Formats {
        title: Format::new().set_bold().set_font_size(14),
        head: Format::new()
            .set_bold()
            .set_text_wrap()
            .set_background_color("#E5E9EF"),
        int: Format::new().set_num_format("#,##0"),
        dec: Format::new().set_num_format("#,##0.00"),
        pct: Format::new().set_num_format("0.00%"),
        date: Format::new().set_num_format("dd/mm/yyyy"),
        bold_int: Format::new().set_bold().set_num_format("#,##0"),
        bold: Format::new().set_bold(),
    }
}

pub fn write(l: &Laporan) -> Result<Vec<u8>, XlsxError> {
    let f = formats();
    let mut wb = Workbook::new();
    regions(wb.add_worksheet(), l, &f)?;
    teams(wb.add_worksheet(), l, &f)?;
    daily(wb.add_worksheet(), l, &f)?;
    wb.save_to_buffer()
}

/// The title lines above each sheet's table; returns the table's first row.
fn title(ws: &mut Worksheet, l: &Laporan, f: &Formats, what: &str) -> Result<u32, XlsxError> {
    ws.write_string_with_format(0, 0, format!("Laporan aktivasi IKD — {what}"), &f.title)?;
    ws.write_string(
        1,
        0,
        format!(
            "Periode {} · angka per {} · dibuat {}",
            l.period_name,
            show_date(l.as_of),
            l.generated
        ),
    )?;
    Ok(3)
}

fn regions(ws: &mut Worksheet, l: &Laporan, f: &Formats) -> Result<(), XlsxError> {
    ws.set_name("Wilayah")?;
    let top = title(ws, l, f, &l.period_name)?;
    ws.write_string(2, 0, l.headline())?;
    for (c, h) in ReportRow::columns(l.target_date).iter().enumerate() {
        ws.write_string_with_format(top, c as u16, h, &f.head)?;
    }
    for (c, w) in [10, 14, 28, 24, 11, 11, 11, 11, 11, 9, 9, 11, 11, 13, 12, 9]
        .iter()
        .enumerate()
    {
        ws.set_column_width(c as u16, *w)?;
    }
    ws.set_freeze_panes(top + 1, 3)?;
    for (i, r) in l.rows.iter().chain([&l.total]).enumerate() {
        let row = top + 1 + i as u32;
        let total = r.code.is_empty();
        let int = if total { &f.bold_int } else { &f.int };
        let text = |ws: &mut Worksheet, c: u16, s: &str| -> Result<(), XlsxError> {
            if total {
                ws.write_string_with_format(row, c, s, &f.bold)?;
            } else {
                ws.write_string(row, c, s)?;
            }
            Ok(())
        };
        text(ws, 0, r.level_word())?;
        text(ws, 1, &crate::domain::region::dotted(&r.code))?;
        text(ws, 2, &r.name)?;
        text(ws, 3, &r.parent_name)?;
        let n =
            |ws: &mut Worksheet, c: u16, v: Option<u64>, fmt: &Format| -> Result<(), XlsxError> {
                if let Some(v) = v {
                    ws.write_number_with_format(row, c, v as f64, fmt)?;
                }
                Ok(())
            };
        n(ws, 4, r.wajib_ktp, int)?;
        n(ws, 5, r.target, int)?;
        n(ws, 6, Some(r.in_period), int)?;
        n(ws, 7, Some(r.live), int)?;
        n(ws, 8, r.remaining, int)?;
        for (c, v) in [(9, r.percent_of_target), (10, r.percent_of_wajib_ktp)] {
            if let Some(v) = v {
                ws.write_number_with_format(row, c, v / 100.0, &f.pct)?;
            }
        }
        ws.write_number_with_format(row, 11, r.rate_7_days, &f.dec)?;
        ws.write_number_with_format(row, 12, r.rate_30_days, &f.dec)?;
        if let Some(d) = r.figures.2.reached_on {
            ws.write_date_with_format(row, 13, &date(d)?, &f.date)?;
        }
        n(ws, 14, r.needed_per_day, int)?;
        n(ws, 15, Some(r.conflicts), int)?;
    }
    Ok(())
}

fn teams(ws: &mut Worksheet, l: &Laporan, f: &Formats) -> Result<(), XlsxError> {
    ws.set_name("Tim")?;
    let top = title(ws, l, f, "per tim")?;
    let heads = super::TEAM_HEADS;
    for (c, h) in heads.iter().enumerate() {
        ws.write_string_with_format(top, c as u16, *h, &f.head)?;
    }
    for (c, w) in [22, 30, 10, 12, 10, 12, 11, 40].iter().enumerate() {
        ws.set_column_width(c as u16, *w)?;
    }
    for (i, t) in l.teams.iter().enumerate() {
        let row = top + 1 + i as u32;
        ws.write_string(row, 0, &t.team)?;
        ws.write_string(row, 1, t.officers.join(", "))?;
        ws.write_number_with_format(row, 2, t.devices as f64, &f.int)?;
        ws.write_number_with_format(row, 3, t.in_period as f64, &f.int)?;
        ws.write_number_with_format(row, 4, t.field_days as f64, &f.int)?;
        if let Some(h) = t.per_field_day() {
            ws.write_number_with_format(row, 5, h as f64 / 100.0, &f.dec)?;
        }
        ws.write_number_with_format(row, 6, t.voids as f64, &f.int)?;
        ws.write_string(row, 7, reasons_text(&t.reasons))?;
    }
    Ok(())
}

fn daily(ws: &mut Worksheet, l: &Laporan, f: &Formats) -> Result<(), XlsxError> {
    ws.set_name("Harian")?;
    let top = title(ws, l, f, "aktivasi per hari")?;
    ws.write_string_with_format(top, 0, "Tanggal", &f.head)?;
    ws.write_string_with_format(top, 1, "Aktivasi", &f.head)?;
    ws.set_column_width(0, 12)?;
    for (i, (day, n)) in l.daily.iter().enumerate() {
        let row = top + 1 + i as u32;
        if let Some(d) = super::trend::parse_date(day) {
            ws.write_date_with_format(row, 0, &date(d)?, &f.date)?;
        }
        ws.write_number_with_format(row, 1, *n as f64, &f.int)?;
    }
    if !l.daily.is_empty() {
        let last = top + l.daily.len() as u32;
        let mut chart = Chart::new(ChartType::Column);
        chart
            .add_series()
            .set_categories(("Harian", top + 1, 0, last, 0))
            .set_values(("Harian", top + 1, 1, last, 1))
            .set_name("Aktivasi per hari");
        chart
            .title()
            .set_name(&format!("Aktivasi per hari, {}", l.period_name));
        chart.legend().set_hidden();
        ws.insert_chart(top, 3, &chart)?;
    }
    Ok(())
}
