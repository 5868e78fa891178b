//! The office report's teams: per team, the live activations of a period, the days its devices
//! recorded any (field days), and the voids recorded in the period with their reasons.
use super::trend::Period;
use crate::args;
use crate::server::db::{self, Db};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One team's figures for a period.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct TeamFigures {
    pub team: String,
    pub devices: usize,
    pub officers: Vec<String>,
    /// Live activations recorded in the period by the team's devices.
    pub in_period: u64,
    /// Local days of the period on which the team recorded at least one live activation.
    pub field_days: u64,
    /// Voids recorded in the period.
    pub voids: u64,
    /// The voids' reasons with their counts, the most frequent first.
    pub reasons: Vec<(String, u64)>,
}

impl TeamFigures {
    /// Activations per field day, in hundredths (half up); `None` without a field day.
    pub fn per_field_day(&self) -> Option<u64> {
        (self.field_days > 0)
            .then(|| super::trend::rate_hundredths(self.in_period, self.field_days))
    }
}

/// Every team with an enrolled field device, by name.
pub fn teams(
    conn: &mut Db<'_>,
    offset: time::UtcOffset,
    period: &Period,
) -> db::Result<Vec<TeamFigures>> {
    let mut teams: BTreeMap<String, TeamFigures> = BTreeMap::new();
    let mut team_of: BTreeMap<String, String> = BTreeMap::new();
    let mut officers: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in conn.query_all(
        "SELECT id, team, officer FROM devices WHERE relay = 0 ORDER BY team, officer",
        args![],
    )? {
        let (id, team, officer): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let t = teams.entry(team.clone()).or_default();
        t.team = team.clone();
        t.devices += 1;
        officers.entry(team.clone()).or_default().insert(officer);
        team_of.insert(id, team);
    }
    let mut days: BTreeSet<(String, time::Date)> = BTreeSet::new();
    for r in conn.query_all(
        "SELECT device_id, hour, live FROM live_by_device_hour WHERE live > 0",
        args![],
    )? {
        let (device, hour, live): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let (Some(team), Some(day)) = (team_of.get(&device), super::load::local_day(&hour, offset))
        else {
            continue;
        };
        if day < period.from || day > period.to {
            continue;
        }
        if let Some(t) = teams.get_mut(team) {
            t.in_period += live.max(0) as u64;
            days.insert((team.clone(), day));
        }
    }
    for (team, _) in &days {
        if let Some(t) = teams.get_mut(team) {
            t.field_days += 1;
        }
    }
    // Voids by time (a partial index): a day of margin on each side for any stored offset, then
    // each one's local day checked.
    let wide_from = (period.from - time::Duration::days(2)).to_string();
    let wide_to = (period.to + time::Duration::days(2)).to_string();
    let mut reasons: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for r in conn.query_all(
        "SELECT v.recorded_at, v.device_id, coalesce(v.reason, '') FROM records v
         WHERE v.kind = 'void' AND v.recorded_at >= ?1 AND v.recorded_at < ?2",
        args![wide_from, wide_to],
    )? {
        let (at, device, reason): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let Some(day) = crate::timefmt::parse(&at).map(|t| t.to_offset(offset).date()) else {
            continue;
        };
        let Some(team) = team_of.get(&device) else {
            continue;
        };
        if day < period.from || day > period.to {
            continue;
        }
        if let Some(t) = teams.get_mut(team) {
            t.voids += 1;
            let reason = match reason.trim() {
                "" => "(tanpa alasan)".to_string(),
                r => r.to_string(),
            };
            *reasons
                .entry(team.clone())
                .or_default()
                .entry(reason)
                .or_default() += 1;
        }
    }
    Ok(teams
        .into_values()
        .map(|mut t| {
            t.officers = officers
                .remove(&t.team)
                .unwrap_or_default()
                .into_iter()
                .collect();
            let mut r: Vec<(String, u64)> = reasons
                .remove(&t.team)
                .unwrap_or_default()
                .into_iter()
                .collect();
            r.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            t.reasons = r;
            t
        })
        .collect())
}

/// "salah ketik (3), ganda (1)".
pub fn reasons_text(reasons: &[(String, u64)]) -> String {
    reasons
        .iter()
        .map(|(r, n)| format!("{r} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}
