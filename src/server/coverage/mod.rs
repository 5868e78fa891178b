//! Coverage against targets: the one aggregation behind the dashboard and `server report`, so the
//! two always show the same numbers.
//!
//! * Arithmetic is in integers: a target percentage is kept in basis points (30 % = 3000), the
//!   target count is `ceil(wajib_ktp × bp / 10000)` (Rejang Lebong: 202,820 at 30 % → 60,846) and a
//!   percentage shown is rounded half up to hundredths (10,425 of 202,820 → 5.14 %).
//! * A region's wajib KTP and target come from its own row in the targets table; a kecamatan or
//!   regency without one adds up its children only when **every** child has a figure (a partial sum
//!   would look like a real target), otherwise it has none and is shown without a target.
//! * Live activations (kind `activation`, state `accepted`, not voided) are counted per village,
//!   per device and hour, and per village and hour (the report's periods, [`trend`]) in three
//!   small tables that [`fold`] brings up to date in the same transaction as each ingested batch;
//!   so a dashboard request reads aggregate rows, never the million records.
mod fold;
mod load;
mod report;
pub mod teams;
pub mod trend;

pub use crate::domain::target::{Target, hundredths_to_f64, percent_hundredths, percent_to_bp};
pub use crate::numfmt::{fmt_int, fmt_pct};
pub use fold::{fold, watermark};
pub use load::{DeviceActivity, coverage, device_activity, load};
pub use report::{Horizon, ReportLevel, ReportRow};

use crate::domain::region::{self, Level};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One region's numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub wajib_ktp: Option<u64>,
    pub target: Option<u64>,
    pub live: u64,
    /// Conflicts still to resolve (same NIK already activated by another record).
    pub conflicts: u64,
}

impl Figures {
    /// Activations still needed to reach the target (0 once reached).
    pub fn remaining(&self) -> Option<u64> {
        self.target.map(|t| t.saturating_sub(self.live))
    }
    /// Live activations as a share of the target, in hundredths of a percent (may pass 10000).
    pub fn of_target(&self) -> Option<u64> {
        percent_hundredths(self.live, self.target?)
    }
    /// Live activations as a share of wajib KTP, in hundredths of a percent.
    pub fn of_wajib_ktp(&self) -> Option<u64> {
        percent_hundredths(self.live, self.wajib_ktp?)
    }
}

/// Where a region's wajib KTP and target come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Its own row in the targets file.
    Own,
    /// The sum of its children's.
    Children,
    /// None known.
    None,
}

/// A regency, kecamatan or village with its figures.
#[derive(Debug, Clone, Serialize)]
pub struct Area {
    pub code: String,
    pub name: String,
    pub level: Level,
    /// Code of the region above (empty for a regency).
    pub parent: String,
    pub figures: Figures,
    pub source: Source,
    /// The target as written in the targets file, for a region with its own row.
    pub target_spec: Option<Target>,
}

/// One row of the targets table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRow {
    pub region_code: String,
    pub wajib_ktp: u64,
    pub target: Target,
}

/// What the aggregation reads from the database.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub targets: Vec<TargetRow>,
    /// Live activations per village code.
    pub live: BTreeMap<String, u64>,
    /// Conflicts to resolve per village code.
    pub conflicts: BTreeMap<String, u64>,
}

/// Every regency that has a target or an activation, with all its kecamatan and villages (those
/// with nothing yet included: they are where to go next), each list sorted by code.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    pub regencies: Vec<Area>,
    pub districts: Vec<Area>,
    pub villages: Vec<Area>,
}

fn name_of(code: &str) -> String {
    region::lookup(code)
        .map(|r| r.name.clone())
        .unwrap_or_else(|| format!("({code})"))
}

/// Builds the three levels from the inputs (pure: the tests feed it by hand).
pub fn build(inputs: &Inputs) -> Coverage {
    let own: BTreeMap<&str, &TargetRow> = inputs
        .targets
        .iter()
        .map(|t| (t.region_code.as_str(), t))
        .collect();
    // Which regions to show: every regency touched by a target or a record, all of their
    // kecamatan and villages from the official table, and any stray code seen in the data.
    let mut regencies = BTreeSet::new();
    for code in own
        .keys()
        .copied()
        .chain(inputs.live.keys().map(String::as_str))
        .chain(inputs.conflicts.keys().map(String::as_str))
    {
        if code.len() >= 4 {
            regencies.insert(code[..4].to_string());
        }
    }
    let mut districts: BTreeSet<String> = BTreeSet::new();
    let mut villages: BTreeSet<String> = BTreeSet::new();
    for r in &regencies {
        for d in region::children(r) {
            districts.insert(d.code.clone());
            for v in region::children(&d.code) {
                villages.insert(v.code.clone());
            }
        }
    }
    for code in own
        .keys()
        .copied()
        .chain(inputs.live.keys().map(String::as_str))
        .chain(inputs.conflicts.keys().map(String::as_str))
    {
        if code.len() >= 6 {
            districts.insert(code[..6].to_string());
        }
        if code.len() == 10 {
            villages.insert(code.to_string());
        }
    }

    let village_areas: Vec<Area> = villages
        .iter()
        .map(|code| {
            let t = own.get(code.as_str());
            Area {
                code: code.clone(),
                name: name_of(code),
                level: Level::Desa,
                parent: code[..6].to_string(),
                figures: Figures {
                    wajib_ktp: t.map(|t| t.wajib_ktp),
                    target: t.map(|t| t.target.count(t.wajib_ktp)),
                    live: inputs.live.get(code).copied().unwrap_or(0),
                    conflicts: inputs.conflicts.get(code).copied().unwrap_or(0),
                },
                source: if t.is_some() {
                    Source::Own
                } else {
                    Source::None
                },
                target_spec: t.map(|t| t.target),
            }
        })
        .collect();
    let district_areas = roll_up(&districts, &village_areas, Level::Kecamatan, 4, &own);
    let regency_areas = roll_up(&regencies, &district_areas, Level::Kabupaten, 0, &own);
    Coverage {
        regencies: regency_areas,
        districts: district_areas,
        villages: village_areas,
    }
}

/// Areas for `codes` from their `children` (sorted by code): live and conflicts add up; wajib KTP
/// and target are the region's own row, else the children's sum when every child has one.
fn roll_up(
    codes: &BTreeSet<String>,
    children: &[Area],
    level: Level,
    parent_len: usize,
    own: &BTreeMap<&str, &TargetRow>,
) -> Vec<Area> {
    codes
        .iter()
        .map(|code| {
            let kids: Vec<&Area> = children.iter().filter(|c| c.parent == *code).collect();
            let live = kids.iter().map(|k| k.figures.live).sum();
            let conflicts = kids.iter().map(|k| k.figures.conflicts).sum();
            let all_known = !kids.is_empty()
                && kids
                    .iter()
                    .all(|k| k.figures.wajib_ktp.is_some() && k.figures.target.is_some());
            let (wajib_ktp, target, source, spec) = match own.get(code.as_str()) {
                Some(t) => (
                    Some(t.wajib_ktp),
                    Some(t.target.count(t.wajib_ktp)),
                    Source::Own,
                    Some(t.target),
                ),
                None if all_known => (
                    Some(kids.iter().filter_map(|k| k.figures.wajib_ktp).sum()),
                    Some(kids.iter().filter_map(|k| k.figures.target).sum()),
                    Source::Children,
                    None,
                ),
                None => (None, None, Source::None, None),
            };
            Area {
                code: code.clone(),
                name: name_of(code),
                level,
                parent: code[..parent_len].to_string(),
                figures: Figures {
                    wajib_ktp,
                    target,
                    live,
                    conflicts,
                },
                source,
                target_spec: spec,
            }
        })
        .collect()
}

impl Coverage {
    pub fn districts_of(&self, regency: &str) -> impl Iterator<Item = &Area> {
        self.districts.iter().filter(move |a| a.parent == regency)
    }
    pub fn villages_of(&self, district: &str) -> impl Iterator<Item = &Area> {
        self.villages.iter().filter(move |a| a.parent == district)
    }
    pub fn area(&self, code: &str) -> Option<&Area> {
        let list = match code.len() {
            4 => &self.regencies,
            6 => &self.districts,
            10 => &self.villages,
            _ => return None,
        };
        list.binary_search_by(|a| a.code.as_str().cmp(code))
            .ok()
            .map(|i| &list[i])
    }
    /// Villages with a target not yet reached, the most activations still needed first.
    pub fn where_next(&self, within: &str) -> Vec<&Area> {
        let mut v: Vec<&Area> = self
            .villages
            .iter()
            .filter(|a| a.code.starts_with(within) && a.figures.remaining().unwrap_or(0) > 0)
            .collect();
        v.sort_by(|a, b| {
            b.figures
                .remaining()
                .cmp(&a.figures.remaining())
                .then_with(|| a.code.cmp(&b.code))
        });
        v
    }
    /// How many villages have no target of their own (so cannot be ranked).
    pub fn villages_without_target(&self, within: &str) -> usize {
        self.villages
            .iter()
            .filter(|a| a.code.starts_with(within) && a.figures.target.is_none())
            .count()
    }
    pub fn level(&self, level: ReportLevel) -> &[Area] {
        match level {
            ReportLevel::Kabupaten => &self.regencies,
            ReportLevel::Kecamatan => &self.districts,
            ReportLevel::Desa => &self.villages,
        }
    }
}

/// An in-memory district database for unit tests, made by the server's own migrations (so it
/// cannot drift from the real schema).
#[cfg(test)]
pub(crate) fn test_db() -> rusqlite::Connection {
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    let list: Vec<&str> = crate::server::schema::MIGRATIONS
        .iter()
        .map(|m| m.sqlite)
        .collect();
    crate::sqlite::migrate(&mut conn, &list).unwrap();
    conn
}

#[cfg(test)]
mod tests {
    use super::load::{counts, local_day};
    use super::*;
    use crate::server::db::Db;
    use rusqlite::params;

    fn row(code: &str, wajib: u64, target: Target) -> TargetRow {
        TargetRow {
            region_code: code.into(),
            wajib_ktp: wajib,
            target,
        }
    }

    #[test]
    fn rejang_lebong_at_30_percent_needs_60846() {
        assert_eq!(Target::Percent(3000).count(202_820), 60_846);
        // The news: 10,425 of 202,820 recorded is 5.14 %.
        let f = Figures {
            wajib_ktp: Some(202_820),
            target: Some(60_846),
            live: 10_425,
            conflicts: 0,
        };
        assert_eq!(f.of_wajib_ktp(), Some(514));
        // 10425 / 60846 = 17.1334…%
        assert_eq!(f.of_target(), Some(1713));
        assert_eq!(f.remaining(), Some(50_421));
        assert_eq!(fmt_int(60_846), "60.846");
        assert_eq!(fmt_pct(1713), "17,13");
    }

    #[test]
    fn other_hand_computed_targets() {
        // Kepri 2023: 1,470,195 wajib KTP at 25 % → 367,548.75 → 367,549 (a share is a minimum).
        assert_eq!(Target::Percent(2500).count(1_470_195), 367_549);
        // 4,480 activations after the first month: 0.30 % of wajib KTP, 1.22 % of the target.
        assert_eq!(percent_hundredths(4_480, 1_470_195), Some(30));
        assert_eq!(percent_hundredths(4_480, 367_549), Some(122));
        // Bandar Lampung: 90,000 of ~767,000 is 11.73 %.
        assert_eq!(percent_hundredths(90_000, 767_000), Some(1173));
        // An exact share has no rounding up: 1,000 at 30 % is 300; 1,001 at 30 % is 300.3 → 301.
        assert_eq!(Target::Percent(3000).count(1_000), 300);
        assert_eq!(Target::Percent(3000).count(1_001), 301);
        assert_eq!(Target::Percent(2550).count(200), 51);
        assert_eq!(Target::Count(60_846).count(1), 60_846);
        // Half up: 1 of 8 = 12.5 % exactly; 1 of 3 = 33.333… → 33.33; 2 of 3 → 66.67.
        assert_eq!(percent_hundredths(1, 8), Some(1250));
        assert_eq!(percent_hundredths(1, 3), Some(3333));
        assert_eq!(percent_hundredths(2, 3), Some(6667));
        assert_eq!(percent_hundredths(1, 0), None);
        // Past the target: remaining 0, percentage above 100.
        let f = Figures {
            wajib_ktp: Some(100),
            target: Some(30),
            live: 45,
            conflicts: 0,
        };
        assert_eq!((f.remaining(), f.of_target()), (Some(0), Some(15_000)));
        assert_eq!(percent_to_bp(30.0), Some(3000));
        assert_eq!(percent_to_bp(25.5), Some(2550));
        assert_eq!(percent_to_bp(0.0), None);
        assert_eq!(percent_to_bp(101.0), None);
        assert_eq!(fmt_int(0), "0");
        assert_eq!(fmt_int(999), "999");
        assert_eq!(fmt_int(1_000), "1.000");
        assert_eq!(fmt_int(1_470_195), "1.470.195");
        assert_eq!(fmt_pct(5), "0,05");
    }

    /// Rejang Lebong (1702) has 15 kecamatan; the first is 170206 KOTA PADANG.
    fn a_district_and_its_villages() -> (String, Vec<String>) {
        let d = region::children("1702")[0].code.clone();
        let v = region::children(&d)
            .iter()
            .map(|v| v.code.clone())
            .collect();
        (d, v)
    }

    #[test]
    fn a_kecamatan_adds_up_its_villages_only_when_all_have_targets() {
        let (d, villages) = a_district_and_its_villages();
        assert!(villages.len() >= 2);
        let mut inputs = Inputs::default();
        // Every village: 1,000 wajib KTP at 30 % (300 each), except the first at a count of 500.
        for (i, v) in villages.iter().enumerate() {
            let t = if i == 0 {
                Target::Count(500)
            } else {
                Target::Percent(3000)
            };
            inputs.targets.push(row(v, 1_000, t));
        }
        inputs.live.insert(villages[0].clone(), 120);
        inputs.live.insert(villages[1].clone(), 300);
        inputs.conflicts.insert(villages[1].clone(), 2);
        let c = build(&inputs);
        let n = villages.len() as u64;
        let k = c.area(&d).unwrap();
        assert_eq!(k.source, Source::Children);
        assert_eq!(k.figures.wajib_ktp, Some(1_000 * n));
        assert_eq!(k.figures.target, Some(500 + 300 * (n - 1)));
        assert_eq!(k.figures.live, 420);
        assert_eq!(k.figures.conflicts, 2);
        // The regency: other kecamatan have no targets, so no regency target either.
        let r = c.area("1702").unwrap();
        assert_eq!(r.figures.target, None);
        assert_eq!(r.source, Source::None);
        assert_eq!(r.figures.live, 420);
        assert_eq!(c.regencies.len(), 1);
        assert_eq!(c.districts.len(), 15);
        assert_eq!(c.villages.len(), 156);
        // Where next: village 0 needs 380, villages 2.. need 300, village 1 is done.
        let next = c.where_next("");
        assert_eq!(next[0].code, villages[0]);
        assert_eq!(next[0].figures.remaining(), Some(380));
        assert!(next.iter().all(|a| a.code != villages[1]));
        assert_eq!(next.len(), villages.len() - 1);
        assert_eq!(c.villages_without_target("1702"), 156 - villages.len());

        // Take one village's row away: the kecamatan no longer has a target.
        inputs.targets.remove(1);
        let c = build(&inputs);
        assert_eq!(c.area(&d).unwrap().figures.target, None);
        assert_eq!(c.area(&d).unwrap().figures.live, 420);
    }

    #[test]
    fn an_own_row_wins_over_the_sum_of_children() {
        let (d, villages) = a_district_and_its_villages();
        let inputs = Inputs {
            targets: vec![
                row("1702", 202_820, Target::Percent(3000)),
                row(&d, 10_000, Target::Count(2_000)),
                row(&villages[0], 400, Target::Percent(5000)),
            ],
            live: [(villages[0].clone(), 150), (villages[1].clone(), 7)]
                .into_iter()
                .collect(),
            conflicts: BTreeMap::new(),
        };
        let c = build(&inputs);
        let r = c.area("1702").unwrap();
        assert_eq!(
            (r.figures.target, r.figures.live, r.source),
            (Some(60_846), 157, Source::Own)
        );
        assert_eq!(r.figures.of_target(), Some(26)); // 157/60846 = 0.258 %
        let k = c.area(&d).unwrap();
        assert_eq!(
            (k.figures.target, k.figures.remaining()),
            (Some(2_000), Some(1_843))
        );
        let v = c.area(&villages[0]).unwrap();
        assert_eq!(
            (v.figures.target, v.figures.remaining()),
            (Some(200), Some(50))
        );
        assert_eq!(v.figures.of_target(), Some(7500));
        // Only the village with its own row can be ranked.
        assert_eq!(c.where_next("1702").len(), 1);
        let day = time::macros::date!(2026 - 12 - 01);
        let h = Horizon {
            period: trend::Period::month_of(day),
            as_of: day,
            by: day,
        };
        let rows: Vec<ReportRow> = c
            .level(ReportLevel::Kabupaten)
            .iter()
            .map(|a| ReportRow::of(a, &trend::Trend::default(), &h))
            .collect();
        assert_eq!(rows[0].percent_of_target, Some(0.26));
        assert_eq!(rows[0].cells()[9], "0,26");
        assert_eq!(rows[0].cells()[4], "202820");
        assert_eq!(rows[0].cells()[1], "17.02");
    }

    #[test]
    fn local_days_follow_the_offset() {
        let wib = time::UtcOffset::from_hms(7, 0, 0).unwrap();
        assert_eq!(
            local_day("2026-11-23T16", wib).unwrap().to_string(),
            "2026-11-23"
        );
        assert_eq!(
            local_day("2026-11-23T17", wib).unwrap().to_string(),
            "2026-11-24"
        );
        assert!(local_day("junk", wib).is_none());
    }

    /// Inserts a bare record (what ingest stores, minus what the dashboard does not read).
    fn put(
        conn: &rusqlite::Connection,
        id: &str,
        kind: &str,
        village: &str,
        state: &str,
        voids: Option<&str>,
    ) {
        conn.execute(
            "INSERT INTO records (id, device_id, seq, kind, recorded_at, village, district,
                 regency, nik, name, phone, officer, team, voids, content_hash, batch_id,
                 received_at, state)
             VALUES (?1, 'dev-x', 1, ?2, '2026-11-23T03:04:05.000Z', ?3, substr(?3, 1, 6),
                 substr(?3, 1, 4), 'n', 'N', 'p', 'P', 'T', ?5, 'h', 'b', 'r', ?4)",
            params![id, kind, village, state, voids],
        )
        .unwrap();
    }

    /// A void as ingest does it: the void record, then its target marked.
    fn void(conn: &rusqlite::Connection, id: &str, target: &str) {
        let village: String = conn
            .query_row("SELECT village FROM records WHERE id = ?1", [target], |r| {
                r.get(0)
            })
            .unwrap();
        put(conn, id, "void", &village, "accepted", Some(target));
        conn.execute(
            "UPDATE records SET voided_by = ?2 WHERE id = ?1",
            params![target, id],
        )
        .unwrap();
    }

    fn recount(conn: &rusqlite::Connection) -> (BTreeMap<String, u64>, u64) {
        let v = counts(
            &mut Db::sqlite(conn),
            "SELECT village, COUNT(*) FROM records WHERE kind = 'activation'
             AND state = 'accepted' AND voided_by IS NULL GROUP BY village",
        )
        .unwrap();
        let total = v.values().sum();
        (v, total)
    }

    fn kept(conn: &rusqlite::Connection) -> (BTreeMap<String, u64>, u64) {
        let v = load(&mut Db::sqlite(conn)).unwrap().live;
        let hours: i64 = conn
            .query_row(
                "SELECT coalesce(SUM(live), 0) FROM live_by_device_hour",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            hours as u64,
            v.values().sum::<u64>(),
            "device-hour total differs"
        );
        let by_village_hour = counts(
            &mut Db::sqlite(conn),
            "SELECT village, SUM(live) FROM live_by_village_hour GROUP BY village
             HAVING SUM(live) <> 0",
        )
        .unwrap();
        assert_eq!(by_village_hour, v, "village-hour totals differ");
        let total = v.values().sum();
        (v, total)
    }

    /// The folded aggregates equal a count over the records: after a bulk fill (activations,
    /// conflicts, voids), after a batch voiding earlier records (one of them a conflict, which
    /// was never counted) and adding one it voids itself, and after a second fill on top.
    #[test]
    fn fold_keeps_the_aggregates_equal_to_the_records() {
        let mut conn = test_db();
        let plan = crate::server::fill::Plan {
            seed: 7,
            regency: "1702".into(),
            records: 3_000,
            devices: 5,
            days: 10,
            now: time::macros::datetime!(2026-11-23 09:00 UTC),
        };
        let filled = crate::server::fill::fill(&mut Db::sqlite(&conn), &plan).unwrap();
        assert!(filled.conflicts > 0 && filled.voids > 0, "{filled:?}");
        assert_eq!(kept(&conn), recount(&conn));
        assert_eq!(kept(&conn).1, filled.live);

        conn.execute(
            "INSERT INTO devices (id, public_key, officer, team, enrolled_at) VALUES ('dev-x', 'kx', 'P', 'T', 'x')",
            [],
        )
        .unwrap();
        let live: Vec<String> = conn
            .prepare("SELECT id FROM records WHERE kind = 'activation' AND state = 'accepted' AND voided_by IS NULL LIMIT 2")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let conflict: String = conn
            .query_row(
                "SELECT id FROM records WHERE state = 'conflict' LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let tx = conn.transaction().unwrap();
        let mark = watermark(&mut Db::sqlite(&tx)).unwrap();
        void(&tx, "v1", &live[0]);
        void(&tx, "v2", &live[1]);
        void(&tx, "v3", &conflict);
        put(&tx, "new1", "activation", "1702091012", "accepted", None);
        put(&tx, "new2", "activation", "1702091012", "accepted", None);
        void(&tx, "v4", "new2");
        fold(&mut Db::sqlite(&tx), mark).unwrap();
        tx.commit().unwrap();
        assert_eq!(kept(&conn), recount(&conn));
        assert_eq!(kept(&conn).1, filled.live - 2 + 1);

        let more = crate::server::fill::fill(
            &mut Db::sqlite(&conn),
            &crate::server::fill::Plan {
                seed: 8,
                ..plan.clone()
            },
        )
        .unwrap();
        assert_eq!(kept(&conn), recount(&conn));
        assert_eq!(kept(&conn).1, filled.live - 1 + more.live);

        // Per device and day over the last 12 days adds up to the same total.
        let wib = time::UtcOffset::from_hms(7, 0, 0).unwrap();
        let devs = device_activity(
            &mut Db::sqlite(&conn),
            wib,
            plan.now.to_offset(wib).date(),
            12,
        )
        .unwrap();
        assert_eq!(devs.len(), 11);
        let total: u64 = devs.iter().map(|d| d.live).sum();
        let per_day: u64 = devs
            .iter()
            .flat_map(|d| d.per_day.iter().map(|x| x.1))
            .sum();
        assert_eq!((total, per_day), (kept(&conn).1, kept(&conn).1));
        // Conflicts to resolve, per village (the voided one no longer counts).
        let c = coverage(&mut Db::sqlite(&conn)).unwrap();
        assert_eq!(
            c.regencies[0].figures.conflicts,
            filled.conflicts - 1 + more.conflicts
        );
        assert_eq!(c.regencies[0].figures.live, kept(&conn).1);
    }

    /// The migration counts the records already there; a time with an offset lands in its UTC
    /// hour.
    #[test]
    fn the_migration_counts_records_already_there() {
        let conn = test_db();
        conn.execute(
            "INSERT INTO devices (id, public_key, officer, team, enrolled_at) VALUES ('dev-x', 'kx', 'P', 'T', 'x')",
            [],
        )
        .unwrap();
        put(&conn, "a", "activation", "1702091012", "accepted", None);
        put(&conn, "b", "activation", "1702091012", "accepted", None);
        conn.execute(
            "UPDATE records SET recorded_at = '2026-11-23T01:00:00.000+07:00' WHERE id = 'a'",
            [],
        )
        .unwrap();
        put(&conn, "c", "activation", "1702091013", "conflict", None);
        let m = crate::server::schema::COVERAGE;
        let backfill = &m[m.find("INSERT INTO live_by_village").unwrap()..];
        conn.execute_batch(backfill).unwrap();
        let m6 = crate::server::schema::MIGRATIONS[5].sqlite;
        conn.execute_batch(&m6[m6.find("INSERT INTO live_by_village_hour").unwrap()..])
            .unwrap();
        assert_eq!(kept(&conn), recount(&conn));
        assert_eq!(load(&mut Db::sqlite(&conn)).unwrap().live["1702091012"], 2);
        let hours: Vec<String> = conn
            .prepare("SELECT hour FROM live_by_device_hour ORDER BY hour")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(hours, ["2026-11-22T18", "2026-11-23T03"]);
    }

    /// Every statement of `fold` reads only the batch's rows (a rowid range), whatever the
    /// planner would like: a full scan here would cost seconds per batch on a big district.
    #[test]
    fn fold_reads_only_the_batch() {
        let conn = test_db();
        for sql in super::fold::fold_sql() {
            let select = &sql[sql.find("SELECT").unwrap()..sql.find("ON CONFLICT").unwrap()];
            let mut st = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {select}"))
                .unwrap();
            let plan: Vec<String> = st
                .query_map([0i64], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let text = plan.join(" | ");
            assert!(
                plan.iter().any(|l| l.contains("rowid>?")),
                "no rowid range in: {text}"
            );
            for l in plan.iter().filter(|l| l.starts_with("SCAN")) {
                assert!(
                    l.contains("rowid>?") || l.contains("TEMP"),
                    "full scan: {text}"
                );
            }
        }
    }

    /// The same on PostgreSQL, where the live test matches a partial index over every live
    /// activation (`records_live_nik`) that the planner once walked, filtering by rowid: each
    /// statement of `fold` reads the batch's rows by the rowid range and removes no others.
    #[test]
    fn fold_reads_only_the_batch_on_postgres() {
        use crate::server::db::Mode;
        use crate::server::store::{Location, Store};
        let name = "fold_reads_only_the_batch_on_postgres";
        let Some(pg) = crate::server::pgtest::TestDatabase::create(name) else {
            return;
        };
        let store = Store::open(Location::Postgres(pg.url.clone())).unwrap();
        let mut db = store.db().unwrap();
        // 5,000 live activations already stored (a district after a few days), the statistics
        // taken when there were 10 (as in a busy hour, before autovacuum comes round: the
        // planner then thinks the partial index tiny), then a batch of 10 (5 activations, 5 voids
        // of stored ones) being written.
        let row = |range: &str, kind: &str, voids: &str| {
            format!(
                "INSERT INTO records (id, device_id, seq, kind, recorded_at, village, district,
                                      regency, nik, name, phone, officer, team, voids,
                                      content_hash, batch_id, received_at, state)
                 SELECT 'r' || i, 'dev', i, '{kind}', '2026-11-23T0' || (i % 10) || ':00:00Z',
                        '17020' || lpad((10000 + i % 7)::text, 5, '0'), '170201', '1702',
                        lpad(i::text, 16, '0'), 'x', 'x', 'x', 'x', {voids}, 'h', 'b' || (i / 500),
                        '2026-11-23T10:00:00Z', 'accepted'
                 FROM generate_series({range}) AS i"
            )
        };
        db.batch(&format!(
            "INSERT INTO devices (id, public_key, officer, team, enrolled_at)
             VALUES ('dev', 'k', 'x', 'x', '2026-11-23T00:00:00Z');
             ALTER TABLE records SET (autovacuum_enabled = false);
             {}",
            row("1, 5000", "activation", "NULL")
        ))
        .unwrap();
        let mut tx = db.begin(Mode::Ingest).unwrap();
        let mark = super::fold::watermark(&mut tx).unwrap();
        tx.batch(&format!(
            "{}; {}; UPDATE records SET voided_by = 'r' || (seq + 5000) WHERE seq BETWEEN 6 AND 10",
            row("5001, 5005", "activation", "NULL"),
            row("5006, 5010", "void", "'r' || (i - 5000)")
        ))
        .unwrap();
        // As planned on a table never analysed, then analysed (each plan run and undone).
        for analyse in [false, true] {
            if analyse {
                tx.batch("ANALYZE records").unwrap();
            }
            for sql in super::fold::fold_sql_postgres() {
                let sql = sql.replace("?1", &mark.to_string());
                tx.batch("SAVEPOINT plan").unwrap();
                let plan: Vec<String> = tx
                    .query_all(&format!("EXPLAIN (ANALYZE, COSTS OFF) {sql}"), &[])
                    .unwrap()
                    .into_iter()
                    .map(|r| r.get::<String>(0).unwrap())
                    .collect();
                tx.batch("ROLLBACK TO SAVEPOINT plan").unwrap();
                let text = plan.join("\n");
                assert!(
                    !text.contains("records_live_nik"),
                    "analysed {analyse}: {text}"
                );
                assert!(
                    !text.contains("Seq Scan on records"),
                    "analysed {analyse}: {text}"
                );
                for line in plan.iter().filter(|l| l.contains("Rows Removed by")) {
                    let removed: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
                    assert!(removed <= 10, "analysed {analyse}: {text}");
                }
            }
        }
        // What is folded: the 5 new activations in, the 5 stored ones voided out (the 5,000
        // were stored without a fold, so only the batch shows).
        super::fold(&mut tx, mark).unwrap();
        let village = |i: i64| format!("17020{:05}", 10000 + i % 7);
        let mut want: BTreeMap<String, i64> = BTreeMap::new();
        for i in 5001..=5005 {
            *want.entry(village(i)).or_default() += 1;
        }
        for i in 6..=10 {
            *want.entry(village(i)).or_default() -= 1;
        }
        want.retain(|_, n| *n != 0);
        let got: BTreeMap<String, i64> = tx
            .query_all(
                "SELECT village, live FROM live_by_village WHERE live <> 0",
                &[],
            )
            .unwrap()
            .into_iter()
            .map(|r| (r.get(0).unwrap(), r.get(1).unwrap()))
            .collect();
        assert!(!want.is_empty());
        assert_eq!(got, want);
    }
}
