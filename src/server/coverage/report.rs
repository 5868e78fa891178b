//! The rows of `server report`: the same figures as the dashboard, one line per region.
use super::{Area, Source};
use crate::domain::region::Level;
use crate::domain::target::hundredths_to_f64;
use serde::Serialize;

/// The levels of `server report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportLevel {
    Kabupaten,
    Kecamatan,
    Desa,
}

/// One line of `server report`, the same numbers the dashboard shows.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReportRow {
    pub level: Level,
    pub code: String,
    pub name: String,
    pub parent: String,
    pub wajib_ktp: Option<u64>,
    pub target: Option<u64>,
    pub live: u64,
    pub remaining: Option<u64>,
    /// Percent of the target reached, two decimals.
    pub percent_of_target: Option<f64>,
    /// Percent of wajib KTP activated, two decimals.
    pub percent_of_wajib_ktp: Option<f64>,
    pub conflicts: u64,
    pub target_source: Source,
}

impl ReportRow {
    pub const COLUMNS: [&'static str; 12] = [
        "level",
        "code",
        "name",
        "parent",
        "wajib_ktp",
        "target",
        "live",
        "remaining",
        "percent_of_target",
        "percent_of_wajib_ktp",
        "conflicts",
        "target_source",
    ];

    pub fn of(a: &Area) -> ReportRow {
        let f = &a.figures;
        ReportRow {
            level: a.level,
            code: a.code.clone(),
            name: a.name.clone(),
            parent: a.parent.clone(),
            wajib_ktp: f.wajib_ktp,
            target: f.target,
            live: f.live,
            remaining: f.remaining(),
            percent_of_target: f.of_target().map(hundredths_to_f64),
            percent_of_wajib_ktp: f.of_wajib_ktp().map(hundredths_to_f64),
            conflicts: f.conflicts,
            target_source: a.source,
        }
    }

    /// CSV cells: plain digits, a dot for decimals, empty where unknown.
    pub fn cells(&self) -> [String; 12] {
        let o = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let p = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
        let level = match self.level {
            Level::Provinsi => "provinsi",
            Level::Kabupaten => "kabupaten",
            Level::Kecamatan => "kecamatan",
            Level::Desa => "desa",
        };
        let source = match self.target_source {
            Source::Own => "own",
            Source::Children => "children",
            Source::None => "none",
        };
        [
            level.to_string(),
            self.code.clone(),
            self.name.clone(),
            self.parent.clone(),
            o(self.wajib_ktp),
            o(self.target),
            self.live.to_string(),
            o(self.remaining),
            p(self.percent_of_target),
            p(self.percent_of_wajib_ktp),
            self.conflicts.to_string(),
            source.to_string(),
        ]
    }
}
