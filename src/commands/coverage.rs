//! `ikd-field server targets import|show` and `ikd-field server report`: coverage targets and the
//! report for the head of office (a period, CSV/XLSX/PDF/JSON), the same numbers the dashboard
//! shows (`server::coverage` computes both; `server::laporan` writes the report).
use super::Ctx;
use crate::error::AppError;
use crate::output::{self, Table};
use crate::server::coverage::{self, ReportLevel, Target, fmt_int, fmt_pct};
use crate::server::laporan::{self, Format, Request};
use crate::server::targets;
use crate::{timefmt, tr};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct TargetsArgs {
    #[command(subcommand)]
    pub command: TargetsCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum TargetsCommand {
    /// Impor target dari CSV kode_wilayah,wajib_ktp,target (mengganti semua) / import targets
    /// from a CSV (replaces all)
    Import {
        /// Berkas CSV / CSV file: kode_wilayah (or region_code),wajib_ktp,target (target: 30% or
        /// 60846); other columns, e.g. a name, are ignored
        file: PathBuf,
    },
    /// Tampilkan target yang berlaku / show the targets in force
    Show,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Tingkat / level
    #[arg(long, value_enum, default_value = "kecamatan")]
    pub level: ReportLevel,
    /// Bulan laporan, mis. 2026-12 [bawaan: bulan ini] / the report's month [default: this month]
    #[arg(long, value_name = "YYYY-MM", conflicts_with_all = ["dari", "sampai"])]
    pub bulan: Option<String>,
    /// Awal periode / first day of the period
    #[arg(long, value_name = "YYYY-MM-DD", requires = "sampai")]
    pub dari: Option<String>,
    /// Akhir periode (termasuk) / last day of the period (included)
    #[arg(long, value_name = "YYYY-MM-DD", requires = "dari")]
    pub sampai: Option<String>,
    /// Tanggal target harus tercapai [bawaan: 31 Desember] / date the target should be reached
    /// by [default: 31 December of the period's year]
    #[arg(long = "sasaran-tanggal", value_name = "YYYY-MM-DD")]
    pub sasaran_tanggal: Option<String>,
    /// Format [bawaan: dari akhiran --out, atau csv] / format [default: from the --out
    /// extension, else csv]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// CSV per tim, bukan per wilayah / the teams' CSV instead of the regions'
    #[arg(long)]
    pub tim: bool,
    /// Berkas tujuan / output file [default: stdout]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn targets(ctx: &Ctx, db: Option<PathBuf>, a: TargetsArgs) -> Result<(), AppError> {
    match a.command {
        TargetsCommand::Import { file } => import(ctx, db, &file),
        TargetsCommand::Show => show(ctx, db),
    }
}

fn import(ctx: &Ctx, db: Option<PathBuf>, file: &std::path::Path) -> Result<(), AppError> {
    let text = std::fs::read(file).map_err(|e| {
        AppError::usage(tr!(
            "Berkas target {} tidak bisa dibaca: {e}",
            "Cannot read the targets file {}: {e}",
            file.display()
        ))
    })?;
    let text = String::from_utf8(text).map_err(|_| {
        AppError::invalid(tr!(
            "{} bukan teks UTF-8; simpan ulang sebagai \"CSV UTF-8\"",
            "{} is not UTF-8 text; save it again as \"CSV UTF-8\"",
            file.display()
        ))
    })?;
    let percent = ctx.config.server.default_target_percent;
    let default_bp = coverage::percent_to_bp(percent).unwrap_or(3000);
    let rows = match targets::parse(&text, default_bp) {
        Ok(rows) => rows,
        Err(bad) => {
            let list: Vec<String> = bad.iter().map(|b| format!("  - {b}")).collect();
            return Err(AppError::invalid(tr!(
                "{}: {} baris salah; tidak ada yang diimpor, target lama tetap berlaku.\n{}",
                "{}: {} bad rows; nothing was imported, the previous targets stay.\n{}",
                file.display(),
                bad.len(),
                list.join("\n")
            ))
            .hint(tr!(
                "Perbaiki baris-baris itu lalu impor lagi. Format: kode_wilayah,wajib_ktp,target — mis. 1702,202820,30% (kolom lain seperti nama boleh ada)",
                "Fix those lines and import again. Format: kode_wilayah,wajib_ktp,target — e.g. 1702,202820,30% (other columns such as a name may stay)"
            ))
            .details(json!({"file": file.display().to_string(), "bad_rows": bad})));
        }
    };
    let (_, store) = ctx.server_db(db)?;
    let done = store
        .db()
        .and_then(|mut db| targets::import(&mut db, &rows, &timefmt::now_utc()))
        .map_err(|e| store.err(e))?;
    if ctx.json {
        output::ok(&Imported {
            file: file.display().to_string(),
            imported: &done,
        });
        return Ok(());
    }
    println!(
        "{}",
        tr!(
            "Target diimpor dari {}: {} baris ({} kabupaten/kota, {} kecamatan, {} desa/kelurahan); {} target lama diganti.",
            "Targets imported from {}: {} rows ({} regencies, {} kecamatan, {} villages); {} previous targets replaced.",
            file.display(),
            done.rows,
            done.regencies,
            done.districts,
            done.villages,
            done.replaced
        )
    );
    if !done.defaulted_lines.is_empty() {
        let shown: Vec<String> = done
            .defaulted_lines
            .iter()
            .take(20)
            .map(|l| l.to_string())
            .collect();
        let more = if done.defaulted_lines.len() > 20 {
            " …"
        } else {
            ""
        };
        println!(
            "{}",
            tr!(
                "{} baris tanpa target memakai {} % bawaan (server.default_target_percent): baris {}{more}",
                "{} rows without a target use the default {} % (server.default_target_percent): lines {}{more}",
                done.defaulted_lines.len(),
                fmt_pct(u64::from(default_bp)),
                shown.join(", ")
            )
        );
    }
    Ok(())
}

fn show(ctx: &Ctx, db: Option<PathBuf>) -> Result<(), AppError> {
    let (_, store) = ctx.server_db(db)?;
    let inputs = store
        .db()
        .and_then(|mut db| coverage::load(&mut db))
        .map_err(|e| store.err(e))?;
    if ctx.json {
        let rows: Vec<_> = inputs
            .targets
            .iter()
            .map(|t| TargetOut {
                region_code: &t.region_code,
                wajib_ktp: t.wajib_ktp,
                target: t.target,
                target_count: t.target.count(t.wajib_ktp),
            })
            .collect();
        output::ok(&Targets { targets: rows });
        return Ok(());
    }
    if inputs.targets.is_empty() {
        println!(
            "{}",
            tr!(
                "Belum ada target. Impor dengan: ikd-field server targets import target.csv",
                "No targets yet. Import them with: ikd-field server targets import targets.csv"
            )
        );
        return Ok(());
    }
    let mut t = Table::new([
        tr!("KODE", "CODE"),
        tr!("NAMA", "NAME"),
        "WAJIB KTP".to_string(),
        tr!("TARGET", "TARGET"),
        tr!("JUMLAH", "COUNT"),
    ]);
    for r in &inputs.targets {
        t.row([
            crate::domain::region::dotted(&r.region_code),
            crate::domain::region::lookup(&r.region_code)
                .map(|x| x.name.clone())
                .unwrap_or_default(),
            fmt_int(r.wajib_ktp),
            match r.target {
                Target::Percent(bp) => format!("{} %", fmt_pct(u64::from(bp))),
                Target::Count(c) => fmt_int(c),
            },
            fmt_int(r.target.count(r.wajib_ktp)),
        ]);
    }
    print!("{}", t.render());
    Ok(())
}

pub fn report(ctx: &Ctx, db: Option<PathBuf>, a: ReportArgs) -> Result<(), AppError> {
    let offset = ctx.offset();
    let now = timefmt::now();
    let mut req = Request::new(
        a.level,
        a.bulan.as_deref(),
        a.dari.as_deref(),
        a.sampai.as_deref(),
        a.sasaran_tanggal.as_deref(),
        now.to_offset(offset).date(),
    )
    .map_err(AppError::usage)?;
    req.teams = a.tim;
    let by_extension = a.out.as_ref().and_then(|p| {
        let ext = p.extension()?.to_str()?.to_ascii_lowercase();
        [Format::Csv, Format::Xlsx, Format::Pdf, Format::Json]
            .into_iter()
            .find(|f| f.extension() == ext)
    });
    let format = if ctx.json {
        Format::Json
    } else {
        a.format.or(by_extension).unwrap_or(Format::Csv)
    };
    if a.out.is_none()
        && matches!(format, Format::Xlsx | Format::Pdf)
        && std::io::IsTerminal::is_terminal(&std::io::stdout())
    {
        return Err(AppError::usage(tr!(
            "Laporan {} tidak bisa ditampilkan di layar: tulis ke berkas dengan --out {}",
            "A {} report cannot be shown on a terminal: write it to a file with --out {}",
            format.extension().to_uppercase(),
            req.file_name(format)
        )));
    }
    let (_, store) = ctx.server_db(db)?;
    let laporan = store
        .db()
        .and_then(|mut db| laporan::build(&mut db, offset, now, req))
        .map_err(|e| store.err(e))?;
    let body = laporan.render(format).map_err(AppError::other)?;
    let io_err = |e: std::io::Error| {
        AppError::other(tr!(
            "Gagal menulis laporan: {e}",
            "Cannot write the report: {e}"
        ))
    };
    match &a.out {
        Some(p) => {
            std::fs::write(p, &body).map_err(io_err)?;
            eprintln!(
                "{}",
                tr!(
                    "Laporan {} ({}) ditulis ke {}: {} wilayah dan jumlahnya, {} tim.",
                    "Report for {} ({}) written to {}: {} regions and their total, {} teams.",
                    laporan.period_name,
                    format.extension().to_uppercase(),
                    p.display(),
                    laporan.rows.len(),
                    laporan.teams.len()
                )
            );
            if format != Format::Json {
                eprintln!("{}", laporan.headline());
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&body).map_err(io_err)?;
            out.flush().map_err(io_err)?;
        }
    }
    Ok(())
}

// The `--json` answers of these commands (each printed as `{"ok": true, …}`).

#[derive(serde::Serialize)]
struct Imported<'a> {
    file: String,
    imported: &'a crate::server::targets::Imported,
}

#[derive(serde::Serialize)]
struct TargetOut<'a> {
    region_code: &'a str,
    wajib_ktp: u64,
    target: Target,
    target_count: u64,
}

#[derive(serde::Serialize)]
struct Targets<'a> {
    targets: Vec<TargetOut<'a>>,
}
