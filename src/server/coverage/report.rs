//! The rows of `server report`: the dashboard's figures for a period, one line per region, and
//! their cells in the Indonesian CSV (`;`, decimal comma, Indonesian headers).
use super::trend::{Projection, Trend, project, rate_hundredths, show_date};
use super::{Area, Figures, Source};
use crate::domain::region::Level;
use crate::domain::target::hundredths_to_f64;
use serde::Serialize;
use time::Date;

/// The levels of `server report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportLevel {
    Kabupaten,
    Kecamatan,
    Desa,
}

/// Where a report stands: its period's last day (or today), and the date the admin wants the
/// target reached by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    pub period: super::trend::Period,
    pub as_of: Date,
    pub by: Date,
}

/// One line of `server report`: the same numbers the dashboard shows (for a period still running,
/// `live` is the dashboard's live count; for a period that ended, the count at its end).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReportRow {
    pub level: Level,
    /// Empty for the total row.
    pub code: String,
    pub name: String,
    pub parent: String,
    /// The name of the region above (the kecamatan of a desa, the regency of a kecamatan).
    pub parent_name: String,
    pub wajib_ktp: Option<u64>,
    pub target: Option<u64>,
    /// Live activations recorded up to the end of the period (the cumulative).
    pub live: u64,
    /// Live activations recorded in the period.
    pub in_period: u64,
    pub remaining: Option<u64>,
    /// Percent of the target reached, two decimals.
    pub percent_of_target: Option<f64>,
    /// Percent of wajib KTP activated, two decimals.
    pub percent_of_wajib_ktp: Option<f64>,
    /// Live activations a day over the last 7 and 30 days (to `as_of`), two decimals.
    pub rate_7_days: f64,
    pub rate_30_days: f64,
    /// The day the target is reached at the 7-day rate (`YYYY-MM-DD`).
    pub target_reached_on: Option<String>,
    /// Activations a day needed to reach the target by the target date.
    pub needed_per_day: Option<u64>,
    pub conflicts: u64,
    pub target_source: Source,
    #[serde(skip)]
    pub figures: (Figures, Trend, Projection),
}

impl ReportRow {
    /// The CSV header, in Indonesian (`by` names the target date).
    pub fn columns(by: Date) -> Vec<String> {
        [
            "Tingkat",
            "Kode",
            "Nama",
            "Wilayah induk",
            "Wajib KTP",
            "Target",
            "Aktivasi periode ini",
            "Aktivasi kumulatif",
            "Sisa ke target",
            "% target",
            "% wajib KTP",
            "Rata-rata per hari (7 hari)",
            "Rata-rata per hari (30 hari)",
            "Perkiraan target tercapai",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            format!("Perlu per hari s.d. {}", show_date(by)),
            "Konflik".to_string(),
        ])
        .collect()
    }

    pub fn of(a: &Area, trend: &Trend, h: &Horizon) -> ReportRow {
        let f = Figures {
            live: a.figures.live.saturating_sub(trend.after),
            ..a.figures
        };
        let p = project(f.remaining(), trend.last_7, h.as_of, h.by);
        ReportRow {
            level: a.level,
            code: a.code.clone(),
            name: a.name.clone(),
            parent: a.parent.clone(),
            parent_name: crate::domain::region::lookup(&a.parent)
                .map(|r| r.name.clone())
                .unwrap_or_default(),
            wajib_ktp: f.wajib_ktp,
            target: f.target,
            live: f.live,
            in_period: trend.in_period,
            remaining: f.remaining(),
            percent_of_target: f.of_target().map(hundredths_to_f64),
            percent_of_wajib_ktp: f.of_wajib_ktp().map(hundredths_to_f64),
            rate_7_days: hundredths_to_f64(rate_hundredths(trend.last_7, 7)),
            rate_30_days: hundredths_to_f64(rate_hundredths(trend.last_30, 30)),
            target_reached_on: p.reached_on.map(|d| d.to_string()),
            needed_per_day: p.needed_per_day,
            conflicts: f.conflicts,
            target_source: a.source,
            figures: (f, *trend, p),
        }
    }

    /// "kabupaten", "kecamatan", "desa"; "JUMLAH" for the total row.
    pub fn level_word(&self) -> &'static str {
        if self.code.is_empty() {
            return "JUMLAH";
        }
        match self.level {
            Level::Provinsi => "provinsi",
            Level::Kabupaten => "kabupaten",
            Level::Kecamatan => "kecamatan",
            Level::Desa => "desa",
        }
    }

    /// The Indonesian CSV cells: whole numbers in plain digits, decimals with a comma, dates
    /// `31-12-2026`, empty where unknown.
    pub fn cells(&self) -> Vec<String> {
        let (f, t, p) = &self.figures;
        let o = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let dec = |h: u64| format!("{},{:02}", h / 100, h % 100);
        let pct = |v: Option<u64>| v.map(dec).unwrap_or_default();
        vec![
            self.level_word().to_string(),
            crate::domain::region::dotted(&self.code),
            self.name.clone(),
            self.parent_name.clone(),
            o(self.wajib_ktp),
            o(self.target),
            self.in_period.to_string(),
            self.live.to_string(),
            o(self.remaining),
            pct(f.of_target()),
            pct(f.of_wajib_ktp()),
            dec(rate_hundredths(t.last_7, 7)),
            dec(rate_hundredths(t.last_30, 30)),
            p.reached_on.map(show_date).unwrap_or_default(),
            o(p.needed_per_day),
            self.conflicts.to_string(),
        ]
    }
}
