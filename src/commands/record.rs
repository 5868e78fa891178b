//! `record`: one activation, from the command line or asked for field by field on a terminal
//! (each field checked as it is entered), saved durably, then its slip printed when asked.
use super::Ctx;
use crate::domain::validate::{self, Input, Valid};
use crate::domain::{Problem, nik, region};
use crate::error::{AppError, Kind};
use crate::field::records::Stored;
use crate::output;
use crate::{timefmt, tr};
use serde::Serialize;
use std::io::{BufRead, IsTerminal, Write};

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
pub(super) fn ask(label: &str) -> Option<String> {
    eprint!("{label}: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_string()),
    }
}

/// What was given on the command line; on a terminal the rest is asked field by field
/// (`record_prompt`), else it is checked as it is.
fn gather(
    ctx: &Ctx,
    dd: &crate::field::datadir::DataDir,
    a: &RecordArgs,
) -> Result<Option<Valid>, AppError> {
    let interactive = !a.no_prompt && !ctx.json && std::io::stdin().is_terminal();
    let input = Input {
        nik: a.nik.clone().unwrap_or_default(),
        name: a.name.clone().unwrap_or_default(),
        phone: a.phone.clone().unwrap_or_default(),
        village: a.village.clone().unwrap_or_default(),
        email: a.email.clone().unwrap_or_default(),
    };
    if interactive {
        return super::record_prompt::ask(ctx, dd, &input);
    }
    let today = timefmt::today(ctx.offset());
    validate::activation(&input, today)
        .map(Some)
        .map_err(invalid)
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
    let Some(valid) = gather(ctx, &dd, &a)? else {
        println!(
            "{}",
            tr!(
                "Tidak disimpan; tidak ada yang berubah.",
                "Not saved; nothing changed."
            )
        );
        return Ok(());
    };
    // Probably activated already by another team (the district's list from the last sync).
    let district = crate::field::activated::listed(&dd.store, &valid.nik.nik)?;
    let stored = Stored::new_pending(
        dd.store.record_activation(&valid, &dd.identity)?,
        crate::field::sealing::new_records_sealed_to(&dd.store)?,
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
            "✓ Tercatat #{} — {}",
            "✓ Recorded #{} — {}",
            rec.seq,
            timefmt::local_display(&rec.recorded_at, ctx.offset())
        )
    );
    println!(
        "  {} · NIK {} · {} · {} {}",
        rec.name,
        valid.nik.masked(),
        valid.nik.sex.label(),
        tr!("lahir", "born"),
        timefmt::id_date(valid.nik.birth_date)
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
