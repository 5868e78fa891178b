//! `status`: what this laptop holds, for the officer (citizens activated, today, per desa) and
//! for scripts (`--json`): counts by state, sync, sealing and retention.
use super::Ctx;
use crate::domain::{SyncStatus, region};
use crate::error::AppError;
use crate::output::{self, Table};
use crate::{timefmt, tr};
use serde::Serialize;
use std::path::Path;

pub fn status(ctx: &Ctx) -> Result<(), AppError> {
    let dd = ctx.open()?;
    let counts = dd.store.counts_by_status()?;
    let offset = ctx.offset();
    let midnight = crate::timefmt::now()
        .to_offset(offset)
        .replace_time(time::Time::MIDNIGHT);
    let (today_act, today_void) = dd.store.counts_since(&timefmt::stamp(midnight))?;
    let villages = dd.store.activations_by_village()?;
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let citizens = dd.store.citizens_total()?;
    let seal = crate::field::sealing::status(&dd.store, &dd.path)?;
    let purged = dd.store.purged_total()?;
    if ctx.json {
        output::ok(&Status {
            device: &dd.identity,
            data_dir: &dd.path,
            total,
            citizens,
            by_status: counts.iter().map(|(s, n)| (s.as_str(), *n)).collect(),
            today: Today {
                activations: today_act,
                voids: today_void,
                date: timefmt::local_date(&timefmt::now_utc(), offset),
            },
            by_village: villages
                .iter()
                .map(|(v, n)| VillageCount {
                    village: v,
                    name: region::village(v).map(|r| r.name.as_str()),
                    activations: *n,
                })
                .collect(),
            sync: crate::field::enrolment::SyncState::load(&dd.store)?,
            seal: &seal,
            retention: Retention {
                days: ctx.config.field.retention_days,
                purged,
                after_sync: ctx.config.field.purge_after_sync,
            },
        });
        return Ok(());
    }
    println!(
        "{} {} · {} {}",
        tr!("Petugas", "Officer"),
        dd.identity.officer,
        tr!("tim", "team"),
        dd.identity.team
    );
    println!(
        "{}",
        crate::field::enrolment::SyncState::load(&dd.store)?.line(offset)
    );
    println!("{}", seal.describe());
    println!(
        "{}",
        tr!(
            "Warga diaktivasi: {citizens} · catatan di laptop: {total} (termasuk pembatalan)",
            "Citizens activated: {citizens} · records on this laptop: {total} (voids included)"
        )
    );
    for (s, n) in &counts {
        if *s == SyncStatus::Synced && purged > 0 {
            println!(
                "  {:<10} {n} ({})",
                s.label(),
                tr!(
                    "{purged} sudah dihapus dari laptop",
                    "{purged} purged from this laptop"
                )
            );
        } else {
            println!("  {:<10} {n}", s.label());
        }
    }
    println!(
        "{}",
        tr!(
            "Hari ini: {today_act} warga diaktivasi, {today_void} pembatalan",
            "Today: {today_act} citizens activated, {today_void} voids"
        )
    );
    if !villages.is_empty() {
        let mut t = Table::new([
            tr!("DESA", "VILLAGE"),
            tr!("KODE", "CODE"),
            tr!("AKTIVASI", "ACTIVATIONS"),
        ]);
        for (v, n) in &villages {
            t.row([region::place(v), region::dotted(v), n.to_string()]);
        }
        print!("{}", t.render());
    }
    Ok(())
}

#[derive(Serialize)]
struct Today {
    activations: i64,
    voids: i64,
    date: Option<String>,
}

#[derive(Serialize)]
struct VillageCount<'a> {
    village: &'a str,
    name: Option<&'a str>,
    activations: i64,
}

#[derive(Serialize)]
struct Retention {
    days: u32,
    purged: i64,
    after_sync: bool,
}

#[derive(Serialize)]
struct Status<'a> {
    device: &'a crate::field::store::Identity,
    data_dir: &'a Path,
    total: i64,
    /// Citizens activated (live activations, purged ones included): what the officer counts.
    citizens: i64,
    by_status: std::collections::BTreeMap<&'static str, i64>,
    today: Today,
    by_village: Vec<VillageCount<'a>>,
    sync: crate::field::enrolment::SyncState,
    seal: &'a crate::field::sealing::SealStatus,
    retention: Retention,
}
