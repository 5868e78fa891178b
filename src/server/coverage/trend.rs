//! The office report's time figures: a period of local days, each region's live activations in
//! it and up to its end, the daily rate over the last 7 and 30 days, and the projection (when the
//! target is reached at the current rate; how many a day reach it by a chosen date). Read from
//! `live_by_village_hour` (kept by [`super::fold`]), so the same at every level and never a scan
//! of the records. Integer arithmetic; rates shown in hundredths.
use crate::args;
use crate::server::db::{self, Db};
use std::collections::BTreeMap;
use time::{Date, Duration, Month};

/// A period of local days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: Date,
    pub to: Date,
    /// A whole calendar month (named "Desember 2026").
    pub month: bool,
}

const MONTHS: [&str; 12] = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
];

/// `2026-12-31`.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(
        s.trim(),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

/// `31-12-2026`, as people write a date.
pub fn show_date(d: Date) -> String {
    format!("{:02}-{:02}-{:04}", d.day(), u8::from(d.month()), d.year())
}

impl Period {
    /// The month `2026-12`.
    pub fn month(text: &str) -> Option<Period> {
        let (y, m) = text.trim().split_once('-')?;
        let (y, m): (i32, u8) = (y.parse().ok()?, m.parse().ok()?);
        if !(2000..=2200).contains(&y) {
            return None;
        }
        let month = Month::try_from(m).ok()?;
        let from = Date::from_calendar_date(y, month, 1).ok()?;
        let to = Date::from_calendar_date(y, month, month.length(y)).ok()?;
        Some(Period {
            from,
            to,
            month: true,
        })
    }

    /// From `from` to `to` (both included); `None` when `to` is before `from`.
    pub fn range(from: Date, to: Date) -> Option<Period> {
        (from <= to).then_some(Period {
            from,
            to,
            month: false,
        })
    }

    /// The month of `day`.
    pub fn month_of(day: Date) -> Period {
        Period::month(&format!("{}-{:02}", day.year(), u8::from(day.month())))
            .expect("a real date's month")
    }

    /// "Desember 2026" or "01-12-2026 s.d. 15-12-2026".
    pub fn name(&self) -> String {
        if self.month {
            format!(
                "{} {}",
                MONTHS[usize::from(u8::from(self.from.month())) - 1],
                self.from.year()
            )
        } else {
            format!("{} s.d. {}", show_date(self.from), show_date(self.to))
        }
    }

    /// For file names: `2026-12` or `2026-12-01_2026-12-15`.
    pub fn slug(&self) -> String {
        if self.month {
            format!("{}-{:02}", self.from.year(), u8::from(self.from.month()))
        } else {
            format!("{}_{}", self.from, self.to)
        }
    }

    /// The query string that names this period on the dashboard.
    pub fn query(&self) -> String {
        if self.month {
            format!("bulan={}", self.slug())
        } else {
            format!("dari={}&sampai={}", self.from, self.to)
        }
    }

    /// The day the figures stand at: the period's last day, or `today` when the period has not
    /// ended yet.
    pub fn as_of(&self, today: Date) -> Date {
        self.to.min(today)
    }

    /// The first local day whose activations the figures of this period need, standing at
    /// `as_of` ([`Daily::trend`]: the period itself and the 30 days ending on `as_of`; the days
    /// after the period are counted too, and are later than both).
    pub fn needs_from(&self, as_of: Date) -> Date {
        self.from.min(as_of - Duration::days(29))
    }

    pub fn days(&self) -> Vec<Date> {
        let n = (self.to - self.from).whole_days();
        (0..=n).map(|i| self.from + Duration::days(i)).collect()
    }
}

/// Live activations of one village per local day (an hour whose time does not parse is in no
/// day: the cumulative, read from `live_by_village`, still counts it).
#[derive(Debug, Clone, Default)]
pub struct Daily {
    pub by_village: BTreeMap<String, BTreeMap<Date, u64>>,
}

/// Reads `live_by_village_hour` into local days, from local day `since` on (what [`Daily::trend`]
/// and [`Daily::series`] of a period need: [`Period::needs_from`]). The hours are UTC: from two
/// days before `since`, so a local day is read whole at any offset the configuration takes.
pub fn daily(conn: &mut Db<'_>, offset: time::UtcOffset, since: Date) -> db::Result<Daily> {
    let mut out = Daily::default();
    let from_hour = format!("{}T00", since - Duration::days(2));
    for r in conn.query_all(
        "SELECT village, hour, live FROM live_by_village_hour WHERE hour >= ?1 AND live <> 0",
        args![from_hour],
    )? {
        let (village, hour, live): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let live = live.max(0) as u64;
        if let Some(day) = super::load::local_day(&hour, offset) {
            *out.by_village
                .entry(village)
                .or_default()
                .entry(day)
                .or_default() += live;
        }
    }
    Ok(out)
}

/// A region's time figures (the sum of its villages').
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trend {
    /// Live activations recorded in the period.
    pub in_period: u64,
    /// Live activations recorded after the period (the cumulative at its end leaves them out).
    pub after: u64,
    /// In the 7 and the 30 days ending on the day the figures stand at.
    pub last_7: u64,
    pub last_30: u64,
}

impl Daily {
    /// The figures of every village whose code starts with `prefix`.
    pub fn trend(&self, prefix: &str, period: &Period, as_of: Date) -> Trend {
        let mut t = Trend::default();
        let from_7 = as_of - Duration::days(6);
        let from_30 = as_of - Duration::days(29);
        // Sorted by code: the villages of a prefix are one run from the prefix on.
        for (_, days) in self
            .by_village
            .range(prefix.to_string()..)
            .take_while(|(v, _)| v.starts_with(prefix))
        {
            for (&day, &n) in days {
                if day >= period.from && day <= period.to {
                    t.in_period += n;
                }
                if day > period.to {
                    t.after += n;
                }
                if day >= from_7 && day <= as_of {
                    t.last_7 += n;
                }
                if day >= from_30 && day <= as_of {
                    t.last_30 += n;
                }
            }
        }
        t
    }

    /// Live activations of all villages per day of the period, for the chart.
    pub fn series(&self, period: &Period) -> Vec<(String, u64)> {
        let mut per: BTreeMap<Date, u64> = period.days().into_iter().map(|d| (d, 0)).collect();
        for days in self.by_village.values() {
            for (day, n) in days {
                if let Some(x) = per.get_mut(day) {
                    *x += n;
                }
            }
        }
        per.into_iter().map(|(d, n)| (d.to_string(), n)).collect()
    }
}

/// `count` a day over `days` days, in hundredths, half up (700 in 7 days → 10000 = 100,00).
pub fn rate_hundredths(count: u64, days: u64) -> u64 {
    if days == 0 {
        return 0;
    }
    (count * 200 + days) / (2 * days)
}

/// The projection for `remaining` activations from `as_of` on, at `last_7` a week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Projection {
    /// The day the target is reached at the current rate: `as_of` plus
    /// ceil(remaining ÷ (last_7 ÷ 7)) days; `None` with no activation in the last 7 days (or no
    /// target). Already reached: `as_of`.
    pub reached_on: Option<Date>,
    /// Activations a day from the day after `as_of` to `by` (included) to reach the target:
    /// ceil(remaining ÷ days); `None` when `by` is not after `as_of` (or no target).
    pub needed_per_day: Option<u64>,
}

pub fn project(remaining: Option<u64>, last_7: u64, as_of: Date, by: Date) -> Projection {
    let Some(remaining) = remaining else {
        return Projection {
            reached_on: None,
            needed_per_day: None,
        };
    };
    let reached_on = if remaining == 0 {
        Some(as_of)
    } else if last_7 == 0 {
        None
    } else {
        let days = (remaining * 7).div_ceil(last_7);
        i64::try_from(days)
            .ok()
            .filter(|&d| d < 365 * 200)
            .and_then(|d| as_of.checked_add(Duration::days(d)))
    };
    let left = (by - as_of).whole_days();
    let needed_per_day = (left > 0).then(|| remaining.div_ceil(left as u64));
    Projection {
        reached_on,
        needed_per_day,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn periods_and_their_names() {
        let p = Period::month("2026-12").unwrap();
        assert_eq!(
            (p.from, p.to),
            (date!(2026 - 12 - 01), date!(2026 - 12 - 31))
        );
        assert_eq!(p.name(), "Desember 2026");
        assert_eq!(p.slug(), "2026-12");
        assert_eq!(Period::month("2028-02").unwrap().to, date!(2028 - 02 - 29));
        assert!(Period::month("2026-13").is_none() && Period::month("12-2026").is_none());
        let r = Period::range(date!(2026 - 11 - 03), date!(2026 - 11 - 17)).unwrap();
        assert_eq!(r.name(), "03-11-2026 s.d. 17-11-2026");
        assert_eq!(r.slug(), "2026-11-03_2026-11-17");
        assert_eq!(r.days().len(), 15);
        assert!(Period::range(date!(2026 - 11 - 17), date!(2026 - 11 - 03)).is_none());
        assert_eq!(p.as_of(date!(2026 - 12 - 10)), date!(2026 - 12 - 10));
        assert_eq!(p.as_of(date!(2027 - 01 - 10)), date!(2026 - 12 - 31));
    }

    /// The sentence by hand: at ~100 a day, 60,846 to go from 1 December.
    #[test]
    fn projection_by_hand() {
        let as_of = date!(2026 - 12 - 01);
        // 700 in the last 7 days = 100 a day: 60,846 ÷ 100 = 608.46 → 609 days → 2028-08-01.
        let p = project(Some(60_846), 700, as_of, date!(2026 - 12 - 31));
        assert_eq!(p.reached_on, Some(date!(2028 - 08 - 01)));
        // 30 days left in December (2 … 31): 60,846 ÷ 30 = 2,028.2 → 2,029 a day.
        assert_eq!(p.needed_per_day, Some(2_029));
        assert_eq!(rate_hundredths(700, 7), 10_000);
        assert_eq!(rate_hundredths(100, 7), 1_429); // 14.2857… → 14,29
        assert_eq!(rate_hundredths(1, 30), 3); // 0.0333… → 0,03
        // 3 in the last week, 10 to go: ceil(70 / 3) = 24 days.
        let p = project(Some(10), 3, as_of, as_of);
        assert_eq!(p.reached_on, Some(date!(2026 - 12 - 25)));
        assert_eq!(p.needed_per_day, None, "no day left");
        // Nothing lately: no date. Reached: today, nothing needed a day.
        assert_eq!(project(Some(10), 0, as_of, as_of).reached_on, None);
        let done = project(Some(0), 0, as_of, date!(2026 - 12 - 31));
        assert_eq!(
            (done.reached_on, done.needed_per_day),
            (Some(as_of), Some(0))
        );
        assert_eq!(project(None, 5, as_of, as_of).reached_on, None);
    }

    #[test]
    fn trend_sums_villages_by_prefix_and_day() {
        let mut d = Daily::default();
        let mut put = |v: &str, day: Date, n: u64| {
            *d.by_village
                .entry(v.into())
                .or_default()
                .entry(day)
                .or_default() += n;
        };
        put("1702061001", date!(2026 - 11 - 30), 5); // before December
        put("1702061001", date!(2026 - 12 - 01), 7);
        put("1702061002", date!(2026 - 12 - 05), 11);
        put("1702071001", date!(2026 - 12 - 05), 13); // another kecamatan
        put("1702061002", date!(2027 - 01 - 02), 17); // after the period
        let p = Period::month("2026-12").unwrap();
        let as_of = date!(2026 - 12 - 05);
        let t = d.trend("170206", &p, as_of);
        assert_eq!(
            (t.in_period, t.after, t.last_7, t.last_30),
            (18, 17, 23, 23)
        );
        let all = d.trend("", &p, as_of);
        assert_eq!((all.in_period, all.last_7), (31, 36));
        let s = d.series(&p);
        assert_eq!(s.len(), 31);
        assert_eq!(s[0], ("2026-12-01".to_string(), 7));
        assert_eq!(s[4].1, 24);
    }

    /// The report reads only the hours its figures need ([`Period::needs_from`]), and its
    /// figures are those of reading every hour: for periods past, running and to come, east and
    /// west of UTC, with activations from a year before to the day after.
    #[test]
    fn daily_reads_from_the_day_the_figures_need() {
        let conn = crate::server::coverage::test_db();
        let start = time::macros::datetime!(2025-11-20 00:00 UTC);
        let mut put = conn
            .prepare("INSERT INTO live_by_village_hour (village, hour, live) VALUES (?1, ?2, ?3)")
            .unwrap();
        // Every 7 hours for 380 days, in two villages; one hour a void took back to 0.
        for k in 0..(380 * 24 / 7) {
            let t = start + Duration::hours(7 * k);
            let hour = format!("{}T{:02}", t.date(), t.hour());
            let village = if k % 3 == 0 {
                "1702061001"
            } else {
                "1702071002"
            };
            put.execute(rusqlite::params![village, hour, k % 5])
                .unwrap();
        }
        drop(put);
        let mut db = crate::server::db::Db::sqlite(&conn);
        let long_ago = date!(2000 - 01 - 01);
        let offsets = [
            time::UtcOffset::from_hms(7, 0, 0).unwrap(),
            time::UtcOffset::from_hms(9, 0, 0).unwrap(),
            time::UtcOffset::from_hms(-5, 0, 0).unwrap(),
        ];
        let periods = [
            Period::month("2026-11").unwrap(),
            Period::month("2026-02").unwrap(),
            Period::range(date!(2026 - 11 - 28), date!(2026 - 12 - 03)).unwrap(),
            Period::month("2027-01").unwrap(),
        ];
        for offset in offsets {
            let all = daily(&mut db, offset, long_ago).unwrap();
            for p in &periods {
                for today in [date!(2026 - 11 - 25), date!(2026 - 12 - 02)] {
                    let as_of = p.as_of(today);
                    let since = p.needs_from(as_of);
                    let some = daily(&mut db, offset, since).unwrap();
                    let first = some.by_village.values().flat_map(|d| d.keys()).min();
                    assert!(first.is_some_and(|d| *d >= since - Duration::days(3)));
                    for prefix in ["", "170206", "170207"] {
                        assert_eq!(
                            some.trend(prefix, p, as_of),
                            all.trend(prefix, p, as_of),
                            "{p:?} {as_of} {offset}"
                        );
                    }
                    assert_eq!(some.series(p), all.series(p));
                }
            }
        }
    }
}
