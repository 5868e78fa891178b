//! Reading the aggregation's inputs (targets and the maintained counts) and the devices'
//! activity from the district database.
use super::{Coverage, Inputs, TargetRow, build};
use crate::args;
use crate::domain::target::Target;
use crate::server::db::{self, Db};
use serde::Serialize;
use std::collections::BTreeMap;

/// Reads the aggregation's inputs: the targets and the maintained per-village counts.
pub fn load(conn: &mut Db<'_>) -> db::Result<Inputs> {
    let mut targets = Vec::new();
    let rows = conn.query_all(
        "SELECT region_code, wajib_ktp, target_count, target_bp FROM targets ORDER BY region_code",
        args![],
    )?;
    for r in rows {
        let count: Option<i64> = r.get(2)?;
        let bp: Option<i64> = r.get(3)?;
        targets.push(TargetRow {
            region_code: r.get(0)?,
            wajib_ktp: r.get::<i64>(1)?.max(0) as u64,
            target: match (count, bp) {
                (Some(c), _) => Target::Count(c.max(0) as u64),
                (None, b) => Target::Percent(b.unwrap_or(0).clamp(0, 10_000) as u32),
            },
        });
    }
    let live = counts(
        conn,
        "SELECT village, live FROM live_by_village WHERE live > 0",
    )?;
    let conflicts = counts(
        conn,
        &format!(
            "SELECT r.village, COUNT(*) FROM records r WHERE {} GROUP BY r.village",
            crate::server::schema::OPEN_CONFLICT
        ),
    )?;
    Ok(Inputs {
        targets,
        live,
        conflicts,
    })
}

pub(super) fn counts(conn: &mut Db<'_>, sql: &str) -> db::Result<BTreeMap<String, u64>> {
    conn.query_all(sql, args![])?
        .iter()
        .map(|r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?.max(0) as u64)))
        .collect()
}

/// Reads (one snapshot: the targets and both counts agree) and builds in one go.
pub fn coverage(conn: &mut Db<'_>) -> db::Result<Coverage> {
    let mut tx = conn.begin(db::Mode::Read)?;
    let inputs = load(&mut tx)?;
    tx.commit()?;
    Ok(build(&inputs))
}

/// One enrolled device's activity, for the team table and its chart.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceActivity {
    pub id: String,
    pub officer: String,
    pub team: String,
    pub last_sync_at: Option<String>,
    pub revoked: bool,
    pub live: u64,
    /// Live activations per local day, oldest first, for the `days` days ending today.
    pub per_day: Vec<(String, u64)>,
}

/// Devices with their live activations per local day over the `days` days ending on `today`
/// (in `offset`'s local time), by team, officer and id.
pub fn device_activity(
    conn: &mut Db<'_>,
    offset: time::UtcOffset,
    today: time::Date,
    days: u16,
) -> db::Result<Vec<DeviceActivity>> {
    let first = today - time::Duration::days(i64::from(days.max(1)) - 1);
    let dates: Vec<time::Date> = (0..days.max(1))
        .map(|i| first + time::Duration::days(i64::from(i)))
        .collect();
    let mut devices: Vec<DeviceActivity> = conn
        .query_all(
            "SELECT id, officer, team, last_sync_at, revoked_at IS NOT NULL FROM devices
             ORDER BY team, officer, id",
            args![],
        )?
        .iter()
        .map(|r| {
            Ok(DeviceActivity {
                id: r.get(0)?,
                officer: r.get(1)?,
                team: r.get(2)?,
                last_sync_at: r.get(3)?,
                revoked: r.get(4)?,
                live: 0,
                per_day: dates.iter().map(|d| (d.to_string(), 0)).collect(),
            })
        })
        .collect::<db::Result<_>>()?;
    let index: BTreeMap<String, usize> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.clone(), i))
        .collect();
    let rows = conn.query_all(
        "SELECT device_id, hour, live FROM live_by_device_hour WHERE live > 0",
        args![],
    )?;
    for r in rows {
        let (device, hour, live): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let Some(&i) = index.get(&device) else {
            continue;
        };
        let live = live.max(0) as u64;
        devices[i].live += live;
        if let Some(day) = local_day(&hour, offset)
            && day >= first
            && day <= today
        {
            let k = (day - first).whole_days() as usize;
            devices[i].per_day[k].1 += live;
        }
    }
    Ok(devices)
}

/// The local date of a UTC hour bucket `2026-11-23T17`.
pub(super) fn local_day(hour: &str, offset: time::UtcOffset) -> Option<time::Date> {
    let t = crate::timefmt::parse(&format!("{hour}:00:00Z"))?;
    Some(t.to_offset(offset).date())
}
