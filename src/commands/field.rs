//! Field commands: init, record, list, show, void, status, export, purge.
use super::Ctx;
use crate::domain::validate::{self, Input, Valid};
use crate::domain::{Problem, SyncStatus, nik, region};
use crate::error::{AppError, Kind};
use crate::field::datadir::DataDir;
use crate::field::records::{Filter, Stored};
use crate::output::{self, Table};
use crate::{timefmt, tr};
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};
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
        println!("{}", seal_line(&seal));
    }
    Ok(())
}

#[derive(clap::Args, Debug, Default)]
pub struct RecordArgs {
    /// NIK, 16 digit
    #[arg(long)]
    pub nik: Option<String>,
    /// Nama lengkap sesuai KTP / full name as on the KTP
    #[arg(long)]
    pub name: Option<String>,
    /// Nomor HP / mobile number (0812…, +62 812…)
    #[arg(long)]
    pub phone: Option<String>,
    /// Kode desa/kelurahan, 10 digit / village code (see: ikd-field wilayah cari NAMA)
    #[arg(long)]
    pub village: Option<String>,
    /// E-mail (boleh kosong / optional)
    #[arg(long)]
    pub email: Option<String>,
    /// Jangan bertanya; gagal jika ada yang kosong / never prompt
    #[arg(long)]
    pub no_prompt: bool,
    /// Cetak slip sesudah mencatat (format dan printer dari config.toml) / print the slip after recording
    #[arg(long)]
    pub print: bool,
}

/// Asks for one value on the terminal; `None` at end of input.
fn ask(label: &str) -> Option<String> {
    eprint!("{label}: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_string()),
    }
}

fn label(field: &str) -> String {
    match field {
        "nik" => "NIK (16 digit)".into(),
        "name" => tr!("Nama (sesuai KTP)", "Name (as on the KTP)"),
        "phone" => tr!("Nomor HP", "Mobile number"),
        "village" => tr!("Kode desa/kelurahan (10 digit)", "Village code (10 digits)"),
        "email" => tr!("E-mail (boleh kosong)", "E-mail (optional)"),
        _ => field.into(),
    }
}

fn slot<'a>(input: &'a mut Input, field: &str) -> &'a mut String {
    match field {
        "nik" => &mut input.nik,
        "name" => &mut input.name,
        "phone" => &mut input.phone,
        "village" => &mut input.village,
        _ => &mut input.email,
    }
}

/// Validates, asking again on a terminal for the fields that are missing or wrong.
fn gather(ctx: &Ctx, a: &RecordArgs) -> Result<Valid, AppError> {
    let interactive = !a.no_prompt && !ctx.json && std::io::stdin().is_terminal();
    let mut input = Input {
        nik: a.nik.clone().unwrap_or_default(),
        name: a.name.clone().unwrap_or_default(),
        phone: a.phone.clone().unwrap_or_default(),
        village: a.village.clone().unwrap_or_default(),
        email: a.email.clone().unwrap_or_default(),
    };
    if interactive {
        for (field, given) in [
            ("nik", &a.nik),
            ("name", &a.name),
            ("phone", &a.phone),
            ("village", &a.village),
            ("email", &a.email),
        ] {
            if given.is_none() {
                *slot(&mut input, field) = ask(&label(field)).unwrap_or_default();
            }
        }
    }
    let today = timefmt::today(ctx.offset());
    let mut tries = 0;
    loop {
        match validate::activation(&input, today) {
            Ok(v) => return Ok(v),
            Err(problems) if interactive && tries < 3 => {
                tries += 1;
                for p in &problems {
                    eprintln!("  ✗ {p}");
                }
                for p in &problems {
                    *slot(&mut input, p.field) = ask(&label(p.field)).unwrap_or_default();
                }
            }
            Err(problems) => return Err(invalid(problems)),
        }
    }
}

fn invalid(problems: Vec<Problem>) -> AppError {
    AppError::new(
        Kind::Invalid,
        tr!(
            "Data belum benar, catatan TIDAK disimpan:",
            "The data is not right; the record was NOT saved:"
        ),
    )
    .problems(problems)
    .hint(tr!(
        "Perbaiki isian di atas lalu ulangi perintahnya.",
        "Fix the fields above and run the command again."
    ))
}

pub fn record(ctx: &Ctx, a: RecordArgs) -> Result<(), AppError> {
    let mut dd = ctx.open()?;
    let valid = gather(ctx, &a)?;
    // Probably activated already by another team (the district's list from the last sync).
    let district = crate::field::activated::listed(&dd.store, &valid.nik.nik)?;
    let stored = Stored::new_pending(
        dd.store.record_activation(&valid, &dd.identity)?,
        sealed_label(&dd)?,
    );
    let rec = &stored.record;
    // The record is safe; a printing problem is reported but does not undo it.
    let print = || {
        a.print
            .then(|| super::slip::print_new(ctx, &dd, &stored))
            .transpose()
    };
    if ctx.json {
        let slip = print();
        let (slip, slip_error) = match slip {
            Ok(s) => (s, None),
            Err(e) => (None, Some(e)),
        };
        output::ok(&Recorded {
            record: &stored,
            slip,
            slip_error,
            nik_info: NikInfo {
                sex: valid.nik.sex,
                birth_date: nik::iso_date(valid.nik.birth_date),
                masked: valid.nik.masked(),
            },
            warnings: &valid.warnings,
            district_activated: district.as_deref(),
        });
        return Ok(());
    }
    println!(
        "{}",
        tr!(
            "✓ Tercatat #{} — id {}",
            "✓ Recorded #{} — id {}",
            rec.seq,
            rec.id
        )
    );
    println!(
        "  {} · NIK {} · {} · {} {}",
        rec.name,
        valid.nik.masked(),
        valid.nik.sex.label(),
        tr!("lahir", "born"),
        nik::iso_date(valid.nik.birth_date)
    );
    println!("  {}", region::place(&rec.village));
    for w in &valid.warnings {
        println!("  ! {}", w.message);
    }
    if let Some(as_of) = &district {
        println!(
            "  ! {}",
            tr!(
                "NIK ini kemungkinan sudah diaktivasi tim lain (daftar server Dinas per {}); server akan menandainya sebagai konflik bila benar.",
                "This NIK was probably activated already by another team (district list as of {}); the server flags it as a conflict if so.",
                timefmt::local_display(as_of, ctx.offset())
            )
        );
    }
    if let Err(e) = print() {
        eprintln!(
            "{}\n{e}",
            tr!(
                "! Catatan tersimpan, tetapi slip gagal dicetak; cetak ulang dengan: ikd-field slip {}",
                "! The record is saved, but the slip failed to print; reprint with: ikd-field slip {}",
                rec.seq
            )
        );
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Saring status / filter by status: pending, synced, conflict, rejected
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
    print!("{}", describe(&s, ctx.offset()));
    Ok(())
}

/// Where a record written now is sealed to: `district` or `holding` (see field/sealing.rs).
fn sealed_label(dd: &DataDir) -> Result<&'static str, AppError> {
    Ok(
        match crate::field::sealing::district_key(&dd.store)?.is_some() {
            true => "district",
            false => "holding",
        },
    )
}

/// What `show` says in place of the sealed phone and e-mail.
fn sealed_note(sealed: &str) -> String {
    match sealed {
        "district" => tr!(
            "tersegel untuk server Dinas (tidak terbaca di laptop ini)",
            "sealed for the district server (not readable on this laptop)"
        ),
        "holding" => tr!(
            "tersegel, menunggu kunci Dinas (pendaftaran perangkat)",
            "sealed, waiting for the district key (device enrolment)"
        ),
        _ => tr!(
            "belum tersegel (data versi lama)",
            "not sealed yet (data of an older version)"
        ),
    }
}

/// The sealing line of `init` and `status`.
pub fn seal_line(s: &crate::field::sealing::SealStatus) -> String {
    match (&s.district_key_id, s.pending_seal) {
        (Some(id), 0) => tr!(
            "Segel: kunci Dinas {id}; NIK lengkap, HP dan e-mail tersegel untuk server Dinas.",
            "Seal: district key {id}; full NIK, phone and e-mail are sealed for the district server."
        ),
        (Some(id), n) => tr!(
            "Segel: kunci Dinas {id}; {n} catatan BELUM tersegel untuk Dinas (kunci sementara hilang?).",
            "Seal: district key {id}; {n} records NOT sealed for the district yet (holding key lost?)."
        ),
        (None, n) => tr!(
            "Segel: kunci Dinas belum diketahui; {n} catatan menunggu segel (disegel dengan kunci sementara di laptop sampai perangkat didaftarkan: ikd-field enrol).",
            "Seal: district key not known yet; {n} records pending seal (held under a local holding key until the device is enrolled: ikd-field enrol)."
        ),
    }
}

/// A record as a block of labelled lines.
pub fn describe(s: &Stored, offset: time::UtcOffset) -> String {
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
                st = format!("{st}: {reason}");
            }
            st
        }),
    ];
    if let Some(t) = &r.voids {
        lines.push((tr!("Membatalkan", "Voids"), t.clone()));
        lines.push((
            tr!("Alasan", "Reason"),
            r.reason.clone().unwrap_or_default(),
        ));
    }
    if let Some(v) = &s.voided_by {
        lines.push((tr!("Dibatalkan oleh", "Voided by"), v.clone()));
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
pub struct VoidArgs {
    /// Nomor urut (#) atau id catatan yang dibatalkan / record to void
    pub id: String,
    /// Alasan pembatalan / why
    #[arg(long)]
    pub reason: String,
}

pub fn void(ctx: &Ctx, a: VoidArgs) -> Result<(), AppError> {
    let mut dd = ctx.open()?;
    let reason = a.reason.trim();
    if reason.is_empty() {
        return Err(AppError::invalid(tr!(
            "Alasan pembatalan wajib diisi (--reason \"...\").",
            "A reason is required (--reason \"...\")."
        )));
    }
    let target = dd.store.find(&a.id)?;
    if target.record.kind != crate::domain::Kind::Activation {
        return Err(AppError::invalid(tr!(
            "Catatan #{} adalah pembatalan; yang bisa dibatalkan hanya aktivasi.",
            "Record #{} is a void; only activations can be voided.",
            target.record.seq
        )));
    }
    if let Some(by) = &target.voided_by {
        return Err(AppError::new(
            Kind::Duplicate,
            tr!(
                "Catatan #{} sudah dibatalkan oleh {by}.",
                "Record #{} was already voided by {by}.",
                target.record.seq
            ),
        ));
    }
    let v = dd.store.record_void(&target, reason, &dd.identity)?;
    if ctx.json {
        output::ok(&OneRecord {
            record: &Stored::new_pending(v, sealed_label(&dd)?),
        });
    } else {
        println!(
            "{}",
            tr!(
                "✓ Catatan #{} dibatalkan oleh catatan baru #{} ({}). Catatan lama tidak diubah.",
                "✓ Record #{} voided by the new record #{} ({}). The old record is unchanged.",
                target.record.seq,
                v.seq,
                v.id
            )
        );
    }
    Ok(())
}

pub fn status(ctx: &Ctx) -> Result<(), AppError> {
    let dd = ctx.open()?;
    let counts = dd.store.counts_by_status()?;
    let offset = ctx.offset();
    let midnight = time::OffsetDateTime::now_utc()
        .to_offset(offset)
        .replace_time(time::Time::MIDNIGHT);
    let (today_act, today_void) = dd.store.counts_since(&timefmt::stamp(midnight))?;
    let villages = dd.store.activations_by_village()?;
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let seal = crate::field::sealing::status(&dd.store, &dd.path)?;
    let purged = dd.store.purged_total()?;
    if ctx.json {
        output::ok(&Status {
            device: &dd.identity,
            data_dir: &dd.path,
            total,
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
        "{} {} · {} {} · {} {}",
        tr!("Perangkat", "Device"),
        dd.identity.device_id,
        tr!("petugas", "officer"),
        dd.identity.officer,
        tr!("tim", "team"),
        dd.identity.team
    );
    println!(
        "{}",
        crate::field::enrolment::SyncState::load(&dd.store)?.line(offset)
    );
    println!("{}", seal_line(&seal));
    println!("{}", tr!("Catatan: {total}", "Records: {total}"));
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
            "Hari ini: {today_act} aktivasi, {today_void} pembatalan",
            "Today: {today_act} activations, {today_void} voids"
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
    let p = crate::field::retention::purge(
        &dd.store,
        days,
        time::OffsetDateTime::now_utc(),
        a.dry_run,
    )?;
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
pub const CSV_HEADER: [&str; 17] = [
    "id",
    "seq",
    "device_id",
    "officer",
    "team",
    "recorded_at",
    "kind",
    "village",
    "nik_masked",
    "name",
    "sealed",
    "voids",
    "reason",
    "warnings",
    "status",
    "status_reason",
    "voided_by",
];

pub fn export(ctx: &Ctx, a: ExportArgs) -> Result<(), AppError> {
    let dd = ctx.open()?;
    let mut export = output::Export::start(a.out.as_deref(), a.format, &CSV_HEADER)?;
    dd.store.for_each(|s| {
        export.row(s, |s| {
            let r = s.record;
            [
                r.id,
                r.seq.to_string(),
                r.device_id,
                r.officer,
                r.team,
                r.recorded_at,
                r.kind.as_str().into(),
                r.village,
                r.nik,
                r.name,
                s.sealed.to_string(),
                r.voids.unwrap_or_default(),
                r.reason.unwrap_or_default(),
                r.warnings.join(";"),
                s.status.as_str().into(),
                s.status_reason.unwrap_or_default(),
                s.voided_by.unwrap_or_default(),
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
struct NikInfo {
    sex: crate::domain::nik::Sex,
    birth_date: String,
    masked: String,
}

#[derive(Serialize)]
struct Recorded<'a> {
    record: &'a Stored,
    /// Where the slip went (`record --print`), or why printing failed (the record is saved).
    slip: Option<Vec<super::slip::Printed>>,
    slip_error: Option<AppError>,
    nik_info: NikInfo,
    warnings: &'a [crate::domain::Problem],
    /// The district already lists this NIK as activated by another team (a warning).
    district_activated: Option<&'a str>,
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
    by_status: std::collections::BTreeMap<&'static str, i64>,
    today: Today,
    by_village: Vec<VillageCount<'a>>,
    sync: crate::field::enrolment::SyncState,
    seal: &'a crate::field::sealing::SealStatus,
    retention: Retention,
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
