//! Field commands: init, record, list, show, void, status, export, purge.
use super::Ctx;
use crate::domain::{SyncStatus, nik, region};
use crate::error::AppError;
use crate::field::datadir::DataDir;
use crate::field::records::{Filter, Stored};
use crate::output::{self, Table};
use crate::{timefmt, tr};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Nama petugas / officer name
    #[arg(long)]
    pub officer: Option<String>,
    /// Nama tim / team name
    #[arg(long)]
    pub team: Option<String>,
    /// Langsung daftar ke server Dinas / enrol with this district server right away
    #[arg(long, requires = "token")]
    pub server: Option<String>,
    /// Token sekali pakai dari admin Dinas / one-time enrolment token
    #[arg(long, requires = "server")]
    pub token: Option<String>,
    /// Id server dari admin: daftar hanya bila cocok / the server id from the admin: enrol
    /// only with that server (see enrol --expect-server-id)
    #[arg(long, value_name = "ID", requires = "server")]
    pub expect_server_id: Option<String>,
    /// Kunci segel Dinas (64 heks) bila sudah diketahui / the district's sealing key, if known
    /// (ikd-field server seal-key) [default: config field.district_seal_key]
    #[arg(long, value_name = "HEX")]
    pub district_key: Option<String>,
}

pub fn init(ctx: &Ctx, a: InitArgs) -> Result<(), AppError> {
    let officer = a
        .officer
        .or_else(|| ctx.config.field.officer.clone())
        .unwrap_or_default();
    let team = a
        .team
        .or_else(|| ctx.config.field.team.clone())
        .unwrap_or_default();
    // On a terminal, a missing officer's name is asked for (slips print it), and the team with
    // it; scripts (`--json`, no terminal) go on without.
    let interactive = !ctx.json && std::io::IsTerminal::is_terminal(&std::io::stdin());
    let (officer, team) = if officer.trim().is_empty() && interactive {
        let officer =
            super::record::ask(&tr!("Nama petugas", "Officer's name")).unwrap_or_default();
        let team = if team.trim().is_empty() {
            super::record::ask(&tr!("Nama tim (boleh kosong)", "Team name (may be empty)"))
                .unwrap_or_default()
        } else {
            team
        };
        (officer, team)
    } else {
        (officer, team)
    };
    let district_key = a
        .district_key
        .clone()
        .or_else(|| ctx.config.field.district_seal_key.clone())
        .unwrap_or_default();
    let expect = a
        .expect_server_id
        .as_deref()
        .map(crate::client::pin::ExpectedServer::parse)
        .transpose()?;
    // The server refuses longer names or hidden characters at enrolment and in every record:
    // a laptop set up with one could never deliver its records.
    let checked: Vec<_> = [
        crate::domain::validate::label("officer", &officer),
        crate::domain::validate::label("team", &team),
    ]
    .into_iter()
    .collect();
    let problems: Vec<crate::domain::Problem> =
        checked.iter().filter_map(|r| r.clone().err()).collect();
    if !problems.is_empty() {
        return Err(AppError::invalid(tr!(
            "Nama petugas atau tim tidak bisa dipakai; folder data belum dibuat.",
            "The officer or team name cannot be used; the data folder was not set up."
        ))
        .problems(problems));
    }
    let (officer, team) = (officer.trim().to_string(), team.trim().to_string());
    let dd = DataDir::init_with(&ctx.data_dir, &officer, &team, Some(&district_key))?;
    if let (Some(server), Some(token)) = (&a.server, &a.token) {
        let e =
            super::sync::enrol_device(ctx, &dd, server, token, expect.as_ref()).map_err(|e| {
                AppError {
                    message: tr!(
                        "Folder data {} sudah siap, tetapi pendaftaran ke server gagal: {}",
                        "The data directory {} is ready, but enrolment failed: {}",
                        dd.path.display(),
                        e.message
                    ),
                    ..e
                }
            })?;
        super::sync::print_enrolled(ctx, &dd, &e);
        return Ok(());
    }
    let id = &dd.identity;
    let seal = crate::field::sealing::status(&dd.store, &dd.path)?;
    if ctx.json {
        output::ok(&Initialised {
            data_dir: &dd.path,
            device: id,
            seal: &seal,
        });
    } else {
        println!(
            "{}",
            tr!(
                "Siap. Folder data: {}\n  Perangkat: {}\n  Petugas:   {}\n  Tim:       {}\nCatat aktivasi dengan: ikd-field record",
                "Ready. Data directory: {}\n  Device:  {}\n  Officer: {}\n  Team:    {}\nRecord activations with: ikd-field record",
                dd.path.display(),
                id.device_id,
                id.officer,
                id.team
            )
        );
        println!("{}", seal.describe());
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Saring status: menunggu, terkirim, konflik, ditolak / filter by status: pending, synced,
    /// conflict, rejected
    #[arg(long)]
    pub status: Option<SyncStatus>,
    /// Saring kode desa / filter by village code
    #[arg(long)]
    pub village: Option<String>,
    /// Paling banyak / at most N rows
    #[arg(long)]
    pub limit: Option<usize>,
}

pub fn list(ctx: &Ctx, a: ListArgs) -> Result<(), AppError> {
    let dd = ctx.open()?;
    let filter = Filter {
        status: a.status,
        village: a.village.as_deref().map(region::normalize_code),
        limit: a.limit,
    };
    let rows = dd.store.list(&filter)?;
    if ctx.json {
        output::ok(&Listed {
            count: rows.len(),
            records: &rows,
        });
        return Ok(());
    }
    if rows.is_empty() {
        println!("{}", tr!("Belum ada catatan.", "No records."));
        return Ok(());
    }
    let mut t = Table::new([
        "#",
        &tr!("WAKTU", "TIME"),
        &tr!("NAMA", "NAME"),
        "NIK",
        &tr!("DESA", "VILLAGE"),
        "STATUS",
        "ID",
    ]);
    for s in &rows {
        let r = &s.record;
        let mut status = s.status.label();
        if r.kind == crate::domain::Kind::Void {
            status = format!(
                "{status} ({} #{})",
                tr!("batal", "void"),
                void_target_seq(&dd, r)
            );
        } else if s.voided_by.is_some() {
            status = format!("{status} ({})", tr!("dibatalkan", "voided"));
        }
        t.row([
            r.seq.to_string(),
            timefmt::local_display(&r.recorded_at, ctx.offset()),
            r.name.clone(),
            nik::mask(&r.nik),
            region::village(&r.village)
                .map(|v| v.name.clone())
                .unwrap_or_else(|| r.village.clone()),
            status,
            r.id.clone(),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

fn void_target_seq(dd: &DataDir, r: &crate::domain::Record) -> String {
    r.voids
        .as_deref()
        .and_then(|t| dd.store.find(t).ok())
        .map(|s| s.record.seq.to_string())
        .unwrap_or_else(|| "?".into())
}

#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// Nomor urut (#) atau id catatan / record number (#) or id
    pub id: String,
}

pub fn show(ctx: &Ctx, a: ShowArgs) -> Result<(), AppError> {
    let dd = ctx.open()?;
    let s = dd.store.find(&a.id)?;
    if ctx.json {
        output::ok(&OneRecord { record: &s });
        return Ok(());
    }
    // Other records are named by their number on this laptop, not their id.
    let number = |id: &str| {
        dd.store
            .find(id)
            .map(|o| format!("#{}", o.record.seq))
            .unwrap_or_else(|_| id.to_string())
    };
    print!("{}", describe(&s, ctx.offset(), &number));
    Ok(())
}

/// What `show` says in place of the sealed phone and e-mail.
fn sealed_note(sealed: &str) -> String {
    match sealed {
        "district" => tr!(
            "terkunci untuk server Dinas (tidak terbaca di laptop ini)",
            "locked for the district server (not readable on this laptop)"
        ),
        "holding" => tr!(
            "terkunci sementara di laptop, sampai laptop didaftarkan ke server Dinas",
            "locked on this laptop for now, until it is enrolled with the district server"
        ),
        _ => tr!(
            "belum terkunci (data versi lama)",
            "not locked yet (data of an older version)"
        ),
    }
}

/// A record as a block of labelled lines; `number` names another record (`#3`) by its id.
pub fn describe(s: &Stored, offset: time::UtcOffset, number: &dyn Fn(&str) -> String) -> String {
    let r = &s.record;
    let mut lines = vec![
        (tr!("Catatan", "Record"), format!("#{} {}", r.seq, r.id)),
        (
            tr!("Jenis", "Kind"),
            match r.kind {
                crate::domain::Kind::Activation => tr!("aktivasi IKD", "IKD activation"),
                crate::domain::Kind::Void => tr!("pembatalan", "void"),
            },
        ),
        (
            tr!("Waktu", "Time"),
            timefmt::local_display(&r.recorded_at, offset),
        ),
        (tr!("Nama", "Name"), r.name.clone()),
        ("NIK".into(), nik::mask(&r.nik)),
        (tr!("HP, e-mail", "Phone, e-mail"), sealed_note(s.sealed)),
        (
            tr!("Desa", "Village"),
            format!(
                "{} ({})",
                region::place(&r.village),
                region::dotted(&r.village)
            ),
        ),
        (
            tr!("Petugas", "Officer"),
            format!("{} / {}", r.officer, r.team),
        ),
        (tr!("Perangkat", "Device"), r.device_id.clone()),
        ("Status".into(), {
            let mut st = s.status.label();
            if let Some(reason) = &s.status_reason {
                st = format!(
                    "{st}: {}",
                    crate::domain::record::plain_reason(reason, r.seq, offset)
                );
            }
            st
        }),
    ];
    if let Some(t) = &r.voids {
        lines.push((tr!("Membatalkan", "Voids"), number(t)));
        lines.push((
            tr!("Alasan", "Reason"),
            r.reason.clone().unwrap_or_default(),
        ));
    }
    if let Some(v) = &s.voided_by {
        lines.push((tr!("Dibatalkan oleh", "Voided by"), number(v)));
    }
    if !r.warnings.is_empty() {
        lines.push((tr!("Peringatan", "Warnings"), r.warnings.join(", ")));
    }
    let w = lines
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    lines
        .iter()
        .map(|(k, v)| format!("{k}{}  {v}\n", " ".repeat(w - k.chars().count())))
        .collect()
}

#[derive(clap::Args, Debug)]
pub struct PurgeArgs {
    /// Hanya tampilkan yang akan dihapus / only show what would go
    #[arg(long)]
    pub dry_run: bool,
    /// Hapus yang diterima server lebih dari N hari lalu / acknowledged more than DAYS days ago
    /// [default: config field.retention_days]
    #[arg(long, value_name = "DAYS")]
    pub older_than: Option<u32>,
}

pub fn purge(ctx: &Ctx, a: PurgeArgs) -> Result<(), AppError> {
    let dd = ctx.open()?;
    let days = a.older_than.unwrap_or(ctx.config.field.retention_days);
    let p = crate::field::retention::purge(&dd.store, days, crate::timefmt::now(), a.dry_run)?;
    if ctx.json {
        output::ok(&Purged { purge: &p });
    } else {
        println!("{}", p.describe());
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// csv atau json
    #[arg(long, default_value = "csv")]
    pub format: ExportFormat,
    /// Tulis ke berkas / write to a file [default: standard output]
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub use crate::output::ExportFormat;

/// The field export's columns. The laptop has no full NIK, phone or e-mail to export: `nik_masked`
/// and `sealed` (district, holding) stand in their place (docs/sealing.md).
/// The laptop's CSV, for people: Indonesian column names, local time first (a record made at
/// 05:30 WIB belongs to that day), words not codes; the id, device and UTC time at the end for
/// whoever matches it with the server. JSON (`--format json`) stays the machine form.
pub const CSV_HEADER: [&str; 18] = [
    "no",
    "waktu_lokal",
    "jenis",
    "nama",
    "nik_tersamar",
    "kode_desa",
    "desa",
    "petugas",
    "tim",
    "status",
    "keterangan",
    "membatalkan_no",
    "dibatalkan_oleh_no",
    "alasan",
    "peringatan",
    "id",
    "perangkat",
    "waktu_utc",
];

pub fn export(ctx: &Ctx, a: ExportArgs) -> Result<(), AppError> {
    let dd = ctx.open()?;
    let offset = ctx.offset();
    // Record ids → numbers, for the void columns.
    let mut seq_of = std::collections::HashMap::new();
    dd.store.for_each(|s| {
        seq_of.insert(s.record.id.clone(), s.record.seq);
        Ok(())
    })?;
    let number = |id: Option<String>| {
        id.map(|i| seq_of.get(&i).map(|n| n.to_string()).unwrap_or(i))
            .unwrap_or_default()
    };
    let mut export = output::Export::start_as(a.out.as_deref(), a.format, &CSV_HEADER, true)?;
    dd.store.for_each(|s| {
        export.row(s, |s| {
            let r = s.record;
            [
                r.seq.to_string(),
                timefmt::local_display(&r.recorded_at, offset),
                match r.kind {
                    crate::domain::Kind::Activation => "aktivasi".to_string(),
                    crate::domain::Kind::Void => "pembatalan".to_string(),
                },
                r.name,
                r.nik,
                r.village.clone(),
                region::village(&r.village)
                    .map(|v| v.name.clone())
                    .unwrap_or_default(),
                r.officer,
                r.team,
                s.status.label(),
                s.status_reason
                    .as_deref()
                    .map(|why| crate::domain::record::plain_reason(why, r.seq, offset))
                    .unwrap_or_default(),
                number(r.voids),
                number(s.voided_by),
                r.reason.unwrap_or_default(),
                r.warnings.join("; "),
                r.id,
                r.device_id,
                r.recorded_at,
            ]
        })
    })?;
    let n = export.finish()?;
    dd.store
        .audit("export", None, &format!("{n} records as {:?}", a.format))?;
    if let Some(p) = &a.out {
        if ctx.json {
            output::ok(&Exported {
                records: n,
                file: p,
            });
        } else {
            eprintln!(
                "{}",
                tr!(
                    "✓ {n} catatan ditulis ke {}",
                    "✓ {n} records written to {}",
                    p.display()
                )
            );
        }
    }
    Ok(())
}

// The `--json` answers of these commands (each printed as `{"ok": true, …}`).

#[derive(Serialize)]
struct Initialised<'a> {
    data_dir: &'a Path,
    device: &'a crate::field::store::Identity,
    seal: &'a crate::field::sealing::SealStatus,
}

#[derive(Serialize)]
struct Listed<'a> {
    count: usize,
    records: &'a [Stored],
}

#[derive(Serialize)]
struct OneRecord<'a> {
    record: &'a Stored,
}

#[derive(Serialize)]
struct Purged<'a> {
    purge: &'a crate::field::retention::Purge,
}

#[derive(Serialize)]
struct Exported<'a> {
    records: usize,
    file: &'a Path,
}
