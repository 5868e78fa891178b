//! The report for the head of office (`server report`, the dashboard's `/laporan`): per region
//! with a total row, the period's activations and the cumulative, the daily rates and the
//! projection, per team, and the daily series; as Indonesian CSV, XLSX, a one-page PDF or JSON.
//! Every figure comes from `server::coverage` (the dashboard's numbers).
mod pdf;
mod xlsx;

use super::coverage::teams::{self, TeamFigures};
use super::coverage::trend::{self, Period};
use super::coverage::{self, Area, Figures, Horizon, ReportLevel, ReportRow, Source};
use super::db::{self, Db};
use crate::domain::region::Level;
use crate::tr;
use serde::Serialize;
use time::Date;

/// What to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub level: ReportLevel,
    pub period: Period,
    /// The date the target should be reached by (default: 31 December of the period's year).
    pub by: Date,
    /// The CSV of the teams instead of the regions.
    pub teams: bool,
}

/// The output formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
    Pdf,
    Json,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Pdf => "pdf",
            Format::Json => "json",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Pdf => "application/pdf",
            Format::Json => "application/json",
        }
    }
}

/// 31 December of `period`'s last year.
pub fn default_by(period: &Period) -> Date {
    Date::from_calendar_date(period.to.year(), time::Month::December, 31)
        .expect("31 December exists")
}

impl Request {
    /// From a dashboard query: `level=`, `bulan=2026-12` or `dari=…&sampai=…`, `sasaran=…`,
    /// `tabel=tim` (default: this month, 31 December). An error is the sentence to show.
    pub fn from_query(query: &str, today: Date) -> Result<Request, String> {
        let get = |k: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                .filter(|v| !v.is_empty())
        };
        let level = match get("level").unwrap_or("kecamatan") {
            "kabupaten" => ReportLevel::Kabupaten,
            "kecamatan" => ReportLevel::Kecamatan,
            "desa" => ReportLevel::Desa,
            _ => {
                return Err(tr!(
                    "Pakai level=kabupaten, level=kecamatan atau level=desa.",
                    "Use level=kabupaten, level=kecamatan or level=desa."
                ));
            }
        };
        let mut r = Request::new(
            level,
            get("bulan"),
            get("dari"),
            get("sampai"),
            get("sasaran"),
            today,
        )?;
        r.teams = get("tabel") == Some("tim");
        Ok(r)
    }

    /// From the parts (`server report --bulan … | --dari … --sampai …, --sasaran-tanggal …`).
    pub fn new(
        level: ReportLevel,
        month: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
        by: Option<&str>,
        today: Date,
    ) -> Result<Request, String> {
        // Both days win over a month (the page's form keeps the month filled in).
        let period = match (month, from, to) {
            (Some(m), None, None) => Period::month(m).ok_or_else(|| {
                tr!(
                    "Bulan '{}' salah; contoh: 2026-12.",
                    "Month '{}' is wrong; e.g. 2026-12.",
                    clip(m)
                )
            })?,
            (_, Some(a), Some(b)) => {
                let (Some(a), Some(b)) = (trend::parse_date(a), trend::parse_date(b)) else {
                    return Err(tr!(
                        "Tanggal salah; contoh: dari 2026-12-01 sampai 2026-12-15.",
                        "A date is wrong; e.g. from 2026-12-01 to 2026-12-15."
                    ));
                };
                Period::range(a, b).ok_or_else(|| {
                    tr!(
                        "Tanggal 'sampai' sebelum tanggal 'dari'.",
                        "The 'sampai' (to) date is before the 'dari' (from) date."
                    )
                })?
            }
            (None, None, None) => Period::month_of(today),
            _ => {
                return Err(tr!(
                    "Pilih satu: bulan (2026-12), atau dari dan sampai bersama (2026-12-01 dan 2026-12-15).",
                    "Choose one: a month (2026-12), or from and to together (2026-12-01 and 2026-12-15)."
                ));
            }
        };
        let by = match by {
            Some(s) => trend::parse_date(s).ok_or_else(|| {
                tr!(
                    "Tanggal sasaran '{}' salah; contoh: 2026-12-31.",
                    "Target date '{}' is wrong; e.g. 2026-12-31.",
                    clip(s)
                )
            })?,
            None => default_by(&period),
        };
        Ok(Request {
            level,
            period,
            by,
            teams: false,
        })
    }

    /// The query string for this request (links to the other formats).
    pub fn query(&self) -> String {
        format!(
            "level={}&{}&sasaran={}{}",
            level_name(self.level),
            self.period.query(),
            self.by,
            if self.teams { "&tabel=tim" } else { "" }
        )
    }

    /// `laporan-ikd-kecamatan-2026-12.pdf`.
    pub fn file_name(&self, format: Format) -> String {
        format!(
            "laporan-ikd-{}-{}.{}",
            if self.teams && format == Format::Csv {
                "tim"
            } else {
                level_name(self.level)
            },
            self.period.slug(),
            format.extension()
        )
    }
}

fn clip(s: &str) -> String {
    s.chars().take(20).collect()
}

pub fn level_name(level: ReportLevel) -> &'static str {
    match level {
        ReportLevel::Kabupaten => "kabupaten",
        ReportLevel::Kecamatan => "kecamatan",
        ReportLevel::Desa => "desa",
    }
}

/// A built report.
#[derive(Debug, Clone, Serialize)]
pub struct Laporan {
    pub level: ReportLevel,
    pub period_name: String,
    #[serde(serialize_with = "iso")]
    pub period_from: Date,
    #[serde(serialize_with = "iso")]
    pub period_to: Date,
    /// The day the figures stand at (the period's end, or today).
    #[serde(serialize_with = "iso")]
    pub as_of: Date,
    /// The target date of the projection.
    #[serde(serialize_with = "iso")]
    pub target_date: Date,
    /// When it was made, local time (`01-12-2026 10:30 WIB`).
    pub generated: String,
    pub rows: Vec<ReportRow>,
    pub total: ReportRow,
    /// Live activations of every region per day of the period.
    pub daily: Vec<(String, u64)>,
    pub teams: Vec<TeamFigures>,
    #[serde(skip)]
    pub request: Request,
}

fn iso<S: serde::Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

/// Reads everything in one snapshot and builds the report.
pub fn build(
    conn: &mut Db<'_>,
    offset: time::UtcOffset,
    now: time::OffsetDateTime,
    req: Request,
) -> db::Result<Laporan> {
    let h = Horizon {
        period: req.period,
        as_of: req.period.as_of(now.to_offset(offset).date()),
        by: req.by,
    };
    let mut tx = conn.begin(db::Mode::Read)?;
    let inputs = coverage::load(&mut tx)?;
    let daily = trend::daily(&mut tx, offset, req.period.needs_from(h.as_of))?;
    let teams = teams::teams(&mut tx, offset, &req.period)?;
    tx.commit()?;
    let cov = coverage::build(&inputs);
    let row = |a: &Area| ReportRow::of(a, &daily.trend(&a.code, &req.period, h.as_of), &h);
    let rows = cov.level(req.level).iter().map(row).collect();
    let total = ReportRow::of(
        &total_area(&cov.regencies),
        &daily.trend("", &req.period, h.as_of),
        &h,
    );
    Ok(Laporan {
        level: req.level,
        period_name: req.period.name(),
        period_from: req.period.from,
        period_to: req.period.to,
        as_of: h.as_of,
        target_date: req.by,
        generated: crate::timefmt::local_display(&crate::timefmt::stamp(now), offset),
        rows,
        total,
        daily: daily.series(&req.period),
        teams,
        request: req,
    })
}

/// The total row: the regencies added up (their target only when every one has one), as the
/// dashboard's totals card for a single regency.
fn total_area(regencies: &[Area]) -> Area {
    let all = |f: fn(&Figures) -> Option<u64>| -> Option<u64> {
        (!regencies.is_empty())
            .then(|| regencies.iter().map(|r| f(&r.figures)).sum::<Option<u64>>())
            .flatten()
    };
    let figures = Figures {
        wajib_ktp: all(|f| f.wajib_ktp),
        target: all(|f| f.target),
        live: regencies.iter().map(|r| r.figures.live).sum(),
        conflicts: regencies.iter().map(|r| r.figures.conflicts).sum(),
    };
    Area {
        code: String::new(),
        name: "JUMLAH".into(),
        level: Level::Provinsi,
        parent: String::new(),
        source: if figures.target.is_some() {
            Source::Children
        } else {
            Source::None
        },
        figures,
        target_spec: None,
    }
}

impl Laporan {
    /// The report in `format`.
    pub fn render(&self, format: Format) -> Result<Vec<u8>, String> {
        match format {
            Format::Csv if self.request.teams => self.teams_csv().map_err(|e| e.to_string()),
            Format::Csv => self.csv().map_err(|e| e.to_string()),
            Format::Json => {
                let mut out = serde_json::to_vec_pretty(&Json {
                    ok: true,
                    report: self,
                })
                .map_err(|e| e.to_string())?;
                out.push(b'\n');
                Ok(out)
            }
            Format::Xlsx => xlsx::write(self).map_err(|e| e.to_string()),
            Format::Pdf => Ok(pdf::write(self)),
        }
    }

    /// Indonesian CSV: a UTF-8 BOM (Excel then reads UTF-8), `;` between cells, the decimal
    /// comma, Indonesian headers, one line per region and the total last; cells that a
    /// spreadsheet would run as a formula neutralised (`output::csv_cell`).
    pub fn csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut w = excel_csv();
        w.write_record(ReportRow::columns(self.target_date))?;
        for r in self.rows.iter().chain([&self.total]) {
            crate::output::csv_row(&mut w, r.cells())?;
        }
        w.into_inner().map_err(|e| e.into_error().into())
    }

    /// The teams as Indonesian CSV (as [`Laporan::csv`]).
    pub fn teams_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut w = excel_csv();
        w.write_record(TEAM_HEADS)?;
        for t in &self.teams {
            let per_day = t
                .per_field_day()
                .map(|h| format!("{},{:02}", h / 100, h % 100))
                .unwrap_or_default();
            crate::output::csv_row(
                &mut w,
                [
                    t.team.clone(),
                    t.officers.join(", "),
                    t.devices.to_string(),
                    t.in_period.to_string(),
                    t.field_days.to_string(),
                    per_day,
                    t.voids.to_string(),
                    teams::reasons_text(&t.reasons),
                ],
            )?;
        }
        w.into_inner().map_err(|e| e.into_error().into())
    }

    /// The one sentence a head of office needs.
    pub fn headline(&self) -> String {
        let (f, t, p) = &self.total.figures;
        let int = crate::numfmt::fmt_int;
        let Some(remaining) = f.remaining() else {
            return "Belum ada target: impor target agar proyeksi bisa dihitung.".into();
        };
        if remaining == 0 {
            return format!("Target {} sudah tercapai.", int(f.target.unwrap_or(0)));
        }
        let rate = crate::numfmt::fmt_pct(trend::rate_hundredths(t.last_7, 7));
        let when = match p.reached_on {
            Some(d) => format!(
                "dengan rata-rata {rate} aktivasi per hari (7 hari terakhir), sisa {} tercapai sekitar {} ({} hari lagi)",
                int(remaining),
                trend::show_date(d),
                int((d - self.as_of).whole_days().max(0) as u64)
            ),
            None => format!(
                "tidak ada aktivasi dalam 7 hari terakhir; sisa {} belum bisa diperkirakan",
                int(remaining)
            ),
        };
        let need = match p.needed_per_day {
            Some(n) => format!(
                "; agar tercapai pada {} perlu {} aktivasi per hari",
                trend::show_date(self.target_date),
                int(n)
            ),
            None => format!(
                "; tanggal sasaran {} sudah lewat",
                trend::show_date(self.target_date)
            ),
        };
        let mut s = format!("{when}{need}.");
        if let Some(c) = s.get(0..1) {
            s = c.to_uppercase() + &s[1..];
        }
        s
    }
}

/// A line of the report page's table: the cells as people read them (`60.846`, `17,13`, `—`).
#[derive(Debug, Serialize)]
pub struct PageRow {
    pub code: String,
    pub total: bool,
    pub cells: Vec<String>,
}

/// A figure that cannot be given (no target, no field day), on the dashboard too.
pub(crate) const NONE: &str = "—";

/// The column heads of the teams table, in the CSV and the XLSX.
pub(crate) const TEAM_HEADS: [&str; 8] = [
    "Tim",
    "Petugas",
    "Perangkat",
    "Aktivasi periode ini",
    "Hari lapangan",
    "Aktivasi per hari lapangan",
    "Pembatalan",
    "Alasan pembatalan",
];

impl Laporan {
    /// The regions and the total for the report page.
    pub fn page_rows(&self) -> Vec<PageRow> {
        use crate::numfmt::{fmt_int, fmt_pct};
        let opt = |v: Option<u64>| v.map(fmt_int).unwrap_or_else(|| NONE.into());
        let show = |r: &ReportRow| {
            let (f, t, p) = &r.figures;
            PageRow {
                code: r.code.clone(),
                total: r.code.is_empty(),
                cells: vec![
                    r.name.clone(),
                    opt(f.target),
                    fmt_int(t.in_period),
                    fmt_int(f.live),
                    f.of_target().map(fmt_pct).unwrap_or_else(|| NONE.into()),
                    opt(f.remaining()),
                    fmt_pct(trend::rate_hundredths(t.last_7, 7)),
                    fmt_pct(trend::rate_hundredths(t.last_30, 30)),
                    p.reached_on
                        .map(trend::show_date)
                        .unwrap_or_else(|| NONE.into()),
                    opt(p.needed_per_day),
                ],
            }
        };
        self.rows.iter().chain([&self.total]).map(show).collect()
    }

    /// The teams for the report page.
    pub fn team_rows(&self) -> Vec<Vec<String>> {
        use crate::numfmt::{fmt_int, fmt_pct};
        self.teams
            .iter()
            .map(|t| {
                vec![
                    t.team.clone(),
                    t.officers.join(", "),
                    fmt_int(t.in_period),
                    fmt_int(t.field_days),
                    t.per_field_day()
                        .map(fmt_pct)
                        .unwrap_or_else(|| NONE.into()),
                    fmt_int(t.voids),
                    teams::reasons_text(&t.reasons),
                ]
            })
            .collect()
    }
}

/// A CSV writer for Excel in an Indonesian locale: a UTF-8 byte-order mark, then `;` between
/// cells.
fn excel_csv() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(b"\xEF\xBB\xBF".to_vec())
}

#[derive(Serialize)]
struct Json<'a> {
    ok: bool,
    #[serde(flatten)]
    report: &'a Laporan,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn requests_from_a_query() {
        let today = date!(2026 - 12 - 05);
        let r = Request::from_query("", today).unwrap();
        assert_eq!(r.period, Period::month("2026-12").unwrap());
        assert_eq!(
            (r.level, r.by),
            (ReportLevel::Kecamatan, date!(2026 - 12 - 31))
        );
        let r = Request::from_query(
            "level=desa&dari=2026-11-03&sampai=2026-11-17&sasaran=2027-03-31",
            today,
        )
        .unwrap();
        assert_eq!(r.period.name(), "03-11-2026 s.d. 17-11-2026");
        assert_eq!(r.by, date!(2027 - 03 - 31));
        assert_eq!(
            r.file_name(Format::Pdf),
            "laporan-ikd-desa-2026-11-03_2026-11-17.pdf"
        );
        assert_eq!(Request::from_query(&r.query(), today).unwrap(), r);
        assert!(Request::from_query("bulan=2026-13", today).is_err());
        // The form sends the month it showed with the two days typed in: the days win.
        let r = Request::from_query("bulan=2026-11&dari=2026-11-03&sampai=2026-11-04", today);
        assert_eq!(r.unwrap().period.days().len(), 2);
        assert!(Request::from_query("bulan=2026-11&sampai=2026-11-04", today).is_err());
        let t = Request::from_query("tabel=tim&bulan=2026-11", today).unwrap();
        assert!(t.teams);
        assert_eq!(t.file_name(Format::Csv), "laporan-ikd-tim-2026-11.csv");
        assert_eq!(Request::from_query(&t.query(), today).unwrap(), t);
        assert!(Request::from_query("dari=2026-11-03", today).is_err());
        assert!(Request::from_query("dari=2026-11-17&sampai=2026-11-03", today).is_err());
        assert!(Request::from_query("level=provinsi", today).is_err());
    }
}
