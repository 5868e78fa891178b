//! Slip commands: `slip` (print or reprint confirmation slips), `verify` (check a slip from its
//! text or a photo) and `device` (this device's id and public key, for the district's key list).
use super::Ctx;
use crate::domain::Kind;
use crate::error::AppError;
use crate::field::datadir::DataDir;
use crate::field::records::Stored;
use crate::slip::{self, Format, Paper, Slip, escpos, pdf};
use crate::{output, tr};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Windows: raw ESC/POS to a printer by its name, through the spooler.
#[cfg(windows)]
mod spooler;

#[derive(clap::Args, Debug)]
pub struct SlipArgs {
    /// Nomor urut (#) atau id catatan; boleh beberapa atau rentang 3-10 / record number(s) or id(s), or a range 3-10
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<String>,
    /// Format keluaran / output format [default: slip.format in config.toml]
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Lebar kertas termal / thermal paper width: 58 or 80 [default: slip.paper]
    #[arg(long, value_parser = parse_paper)]
    pub paper: Option<u32>,
    /// Tulis ke berkas ini ("-" = layar) / write to this file ("-" = standard output)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// PDF: beberapa slip per lembar A4 / PDF: several slips per A4 sheet
    #[arg(long)]
    pub sheet: bool,
    /// escpos: kirim ke printer ini / send to this printer device, e.g. /dev/usb/lp0 (Windows: the printer's name, or \\.\COM3) [default: slip.printer]
    #[arg(long, value_name = "DEVICE")]
    pub printer: Option<PathBuf>,
    /// escpos: QR sebagai gambar (printer tanpa perintah QR) / QR as a bit image [default: slip.escpos_qr]
    #[arg(long)]
    pub raster: bool,
    /// escpos: huruf per baris / characters per line: 32 (58 mm), 42 or 48 (80 mm) [default: slip.columns]
    #[arg(long, value_name = "N")]
    pub columns: Option<usize>,
}

/// The ESC/POS options of config.toml's [slip] section.
pub fn escpos_options(c: &crate::config::SlipConfig) -> escpos::Options {
    escpos::Options {
        qr: c.escpos_qr,
        columns: (c.columns != 0).then_some(c.columns as usize),
    }
}

/// The office name printed at the top of slips: the one set on the desk's settings page, else
/// `[slip] office` of config.toml.
pub const M_OFFICE: &str = "slip.office";

pub fn office(ctx: &Ctx, dd: &DataDir) -> String {
    dd.store
        .meta(M_OFFICE)
        .ok()
        .flatten()
        .filter(|o| !o.trim().is_empty())
        .unwrap_or_else(|| ctx.config.slip.office.clone())
}

/// The columns asked for, checked against the paper (a usage error says which exist).
/// The thermal printer set on the desk's settings page (a printer's name on Windows, a device
/// on Linux), which new slips go to as raw ESC/POS; `None` when unset.
pub const M_PRINTER: &str = "slip.printer";

pub fn direct_printer(dd: &DataDir) -> Option<PathBuf> {
    dd.store
        .meta(M_PRINTER)
        .ok()
        .flatten()
        .filter(|p| !p.trim().is_empty())
        .map(|p| PathBuf::from(p.trim()))
}

pub fn check_columns(paper: Paper, columns: Option<usize>) -> Result<(), AppError> {
    escpos::layout(paper, columns)
        .map(|_| ())
        .map_err(|allowed| {
            AppError::usage(tr!(
                "Kertas {} mm tidak memakai {} huruf per baris; pilih {allowed}.",
                "{} mm paper does not take {} characters per line; choose {allowed}.",
                if paper == Paper::Mm58 { 58 } else { 80 },
                columns.unwrap_or(paper.columns())
            ))
        })
}

pub fn parse_paper(s: &str) -> Result<u32, String> {
    match s.trim_end_matches("mm") {
        "58" => Ok(58),
        "80" => Ok(80),
        _ => Err("58 / 80".into()),
    }
}

/// Where one rendered slip (or a document of several) went.
#[derive(Debug, serde::Serialize)]
pub struct Printed {
    pub format: &'static str,
    /// File or printer device; `None` for standard output.
    pub to: Option<PathBuf>,
    pub records: Vec<String>,
}

/// Expands `3-10` ranges of sequence numbers; anything else is passed on as one id.
fn expand(ids: &[String]) -> Result<Vec<String>, AppError> {
    let mut out = Vec::new();
    for id in ids {
        // A UUID starts with 8 hex digits then '-': never read that as a range.
        let range = id.split_once('-').and_then(|(a, b)| {
            if a.len() >= 8 {
                return None;
            }
            let a: i64 = a.trim_start_matches('#').parse().ok()?;
            let b: i64 = b.trim_start_matches('#').parse().ok()?;
            Some((a, b))
        });
        match range {
            Some((a, b)) if a <= b && b - a < 10_000 => out.extend((a..=b).map(|n| n.to_string())),
            Some(_) => {
                return Err(AppError::usage(tr!(
                    "Rentang '{id}' tidak masuk akal (paling banyak 10.000 slip, dari kecil ke besar).",
                    "The range '{id}' makes no sense (at most 10,000 slips, low to high)."
                )));
            }
            None => out.push(id.clone()),
        }
    }
    Ok(out)
}

/// A slip is for a live activation: not for a void, nor for an activation since voided.
fn printable(s: &Stored) -> Result<(), AppError> {
    let r = &s.record;
    if r.kind == Kind::Void {
        return Err(AppError::invalid(tr!(
            "Catatan #{} adalah pembatalan; slip hanya untuk aktivasi.",
            "Record #{} is a void; slips are for activations only.",
            r.seq
        )));
    }
    if s.voided_by.is_some() {
        return Err(AppError::invalid(tr!(
            "Catatan #{} sudah dibatalkan; slipnya tidak dicetak lagi.",
            "Record #{} was voided; its slip is not printed again.",
            r.seq
        )));
    }
    Ok(())
}

fn io_error(path: &Path, e: std::io::Error) -> AppError {
    AppError::other(tr!(
        "Tidak bisa menulis ke {}: {e}",
        "Cannot write to {}: {e}",
        path.display()
    ))
}

/// Writes to a file (created or replaced), or to standard output for "-".
fn write_out(path: &Path, bytes: &[u8]) -> Result<Option<PathBuf>, AppError> {
    if path == Path::new("-") {
        let mut o = std::io::stdout().lock();
        o.write_all(bytes)
            .and_then(|_| o.flush())
            .map_err(|e| io_error(path, e))?;
        return Ok(None);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| io_error(path, e))?;
    Ok(Some(path.to_path_buf()))
}

/// Sends bytes to a printer device (which must exist: it is never created). On Windows a
/// printer's name (no path) goes to the spooler as a RAW job instead.
pub fn write_printer(device: &Path, bytes: &[u8]) -> Result<Option<PathBuf>, AppError> {
    #[cfg(windows)]
    if spooler::is_printer_name(device) {
        return spool(device, bytes);
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(device)
        .map_err(|e| {
            AppError::other(tr!(
                "Printer {} tidak bisa dibuka: {e}",
                "Cannot open the printer {}: {e}",
                device.display()
            ))
            .hint(tr!(
                "Periksa kabel dan daya printer dan izin perangkatnya (grup lp), atau simpan ke berkas dengan --out slip.bin.",
                "Check the printer's cable, power and device permissions (group lp), or save to a file with --out slip.bin."
            ))
        })?;
    f.write_all(bytes)
        .and_then(|_| f.flush())
        .map_err(|e| io_error(device, e))?;
    Ok(Some(device.to_path_buf()))
}

/// Windows: `bytes` as a RAW job to the printer named `name` (as Windows lists it).
#[cfg(windows)]
fn spool(name: &Path, bytes: &[u8]) -> Result<Option<PathBuf>, AppError> {
    spooler::write(name.as_os_str(), bytes).map_err(|e| {
        let err = if spooler::is_unknown_printer(&e) {
            AppError::other(tr!(
                "Tidak ada printer bernama \"{}\" di Windows ini.",
                "There is no printer named \"{}\" on this Windows.",
                name.display()
            ))
        } else {
            AppError::other(tr!(
                "Printer {} tidak bisa dipakai: {e}",
                "Cannot print to {}: {e}",
                name.display()
            ))
        };
        err.hint(tr!(
            "Tulis nama printer persis seperti di Pengaturan > Printer & pemindai, port COM-nya (\\\\.\\COM3), atau simpan ke berkas dengan --out slip.bin.",
            "Give the printer's name exactly as in Settings > Printers & scanners, its COM port (\\\\.\\COM3), or save to a file with --out slip.bin."
        ))
    })?;
    Ok(Some(name.to_path_buf()))
}

/// What to render and where, resolved from the arguments and config.toml.
struct Plan {
    format: Format,
    paper: Paper,
    sheet: bool,
    out: Option<PathBuf>,
    printer: Option<PathBuf>,
    escpos: escpos::Options,
}

impl Plan {
    fn from_config(ctx: &Ctx) -> Plan {
        let c = &ctx.config.slip;
        Plan {
            format: c.format,
            paper: Paper::from_mm(c.paper).unwrap_or(Paper::Mm58),
            sheet: false,
            out: None,
            printer: c.printer.clone(),
            escpos: escpos_options(c),
        }
    }

    fn default_file(&self, dd: &DataDir, ctx: &Ctx, slips: &[Slip]) -> PathBuf {
        let dir = dd.path.join(&ctx.config.slip.dir);
        let ext = self.format.extension();
        match slips {
            [one] => dir.join(format!("slip-{:06}.{ext}", one.seq)),
            [first, .., last] if self.sheet => {
                dir.join(format!("sheet-{:06}-{:06}.{ext}", first.seq, last.seq))
            }
            [first, .., last] => dir.join(format!("slips-{:06}-{:06}.{ext}", first.seq, last.seq)),
            [] => dir.join(format!("slip.{ext}")),
        }
    }

    /// Renders and delivers; returns where each output went.
    fn run(&self, ctx: &Ctx, dd: &DataDir, slips: &[Slip]) -> Result<Vec<Printed>, AppError> {
        let records = |s: &[Slip]| s.iter().map(|s| s.record_id.clone()).collect::<Vec<_>>();
        let format = self.format.name();
        match self.format {
            // One document for all of them.
            Format::Pdf | Format::Escpos | Format::Text => {
                let bytes: Vec<u8> = match self.format {
                    Format::Pdf if self.sheet => pdf::render(slips, pdf::Page::A4Sheet),
                    Format::Pdf => pdf::render(slips, pdf::Page::A6),
                    _ => slips
                        .iter()
                        .flat_map(|s| slip::render(s, self.format, self.paper, &self.escpos))
                        .collect(),
                };
                let to = match (&self.out, &self.printer, self.format) {
                    (Some(p), _, _) => write_out(p, &bytes)?,
                    (None, Some(dev), Format::Escpos) => write_printer(dev, &bytes)?,
                    // Standard output carries the JSON answer under --json.
                    (None, _, Format::Text) if !ctx.json => write_out(Path::new("-"), &bytes)?,
                    _ => write_out(&self.default_file(dd, ctx, slips), &bytes)?,
                };
                Ok(vec![Printed {
                    format,
                    to,
                    records: records(slips),
                }])
            }
            // One file per slip.
            Format::Png | Format::Svg => {
                if slips.len() > 1 && self.out.is_some() {
                    return Err(AppError::usage(tr!(
                        "--out hanya untuk satu slip PNG/SVG; tanpa --out setiap slip disimpan di folder slip.",
                        "--out takes one PNG/SVG slip; without --out each slip is saved in the slips folder."
                    )));
                }
                let mut done = Vec::new();
                for s in slips {
                    let bytes = slip::render(s, self.format, self.paper, &self.escpos);
                    let path = match &self.out {
                        Some(p) => p.clone(),
                        None => self.default_file(dd, ctx, std::slice::from_ref(s)),
                    };
                    done.push(Printed {
                        format,
                        to: write_out(&path, &bytes)?,
                        records: vec![s.record_id.clone()],
                    });
                }
                Ok(done)
            }
        }
    }
}

/// True when a slip of this record was printed before (so this one is a reprint).
fn printed_before(dd: &DataDir, record_id: &str) -> bool {
    dd.store
        .conn()
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM audit WHERE record_id = ?1
             AND action IN ('print', 'reprint'))",
            [record_id],
            |r| r.get::<_, bool>(0),
        )
        .unwrap_or(false)
}

/// One audit entry per slip, all in one transaction (one fsync for a sheet of hundreds).
fn audit(dd: &DataDir, done: &[Printed]) -> Result<(), AppError> {
    let conn = dd.store.conn();
    let db_err = |e| crate::sqlite::db_error(dd.store.path(), e);
    conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
    let res = audit_each(dd, done);
    match res {
        Ok(()) => conn.execute_batch("COMMIT").map_err(db_err),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn audit_each(dd: &DataDir, done: &[Printed]) -> Result<(), AppError> {
    for p in done {
        let to =
            p.to.as_ref()
                .map(|t| t.display().to_string())
                .unwrap_or_else(|| "stdout".into());
        for id in &p.records {
            let action = if printed_before(dd, id) {
                "reprint"
            } else {
                "print"
            };
            dd.store
                .audit(action, Some(id), &format!("{} {to}", p.format))?;
        }
    }
    Ok(())
}

/// Says where each slip went: to the printer, or only into a file (plainly not printed, when
/// printing was asked for: `record --print` without a printer set up).
fn tell(ctx: &Ctx, done: &[Printed], printer: Option<&Path>, asked_to_print: bool) {
    if ctx.json {
        return;
    }
    for p in done {
        let Some(to) = &p.to else {
            // Text went to the terminal already.
            continue;
        };
        if Some(to.as_path()) == printer {
            eprintln!(
                "{}",
                tr!(
                    "✓ Slip dikirim ke printer {}",
                    "✓ Slip sent to the printer {}",
                    to.display()
                )
            );
        } else if asked_to_print {
            eprintln!(
                "{}",
                tr!(
                    "! Slip TIDAK dicetak: belum ada printer yang disetel, jadi slip hanya disimpan sebagai berkas {} di {}. Cetak lewat desk (ikd-field) di browser, atau setel printer: ikd-field printer test.",
                    "! The slip was NOT printed: no printer is set up, so it was only saved as a {} file at {}. Print it from the desk (ikd-field) in the browser, or set up a printer: ikd-field printer test.",
                    p.format,
                    to.display()
                )
            );
        } else {
            eprintln!(
                "{}",
                tr!(
                    "✓ Slip ({}) ditulis ke {}",
                    "✓ Slip ({}) written to {}",
                    p.format,
                    to.display()
                )
            );
        }
    }
}

pub fn run(ctx: &Ctx, a: SlipArgs) -> Result<(), AppError> {
    let dd = ctx.open()?;
    let mut plan = Plan::from_config(ctx);
    if let Some(f) = a.format {
        plan.format = f;
    } else if a.sheet {
        plan.format = Format::Pdf;
    }
    if a.sheet && plan.format != Format::Pdf {
        return Err(AppError::usage(tr!(
            "--sheet hanya untuk --format pdf.",
            "--sheet is for --format pdf only."
        )));
    }
    if let Some(p) = a.paper {
        plan.paper = Paper::from_mm(p).unwrap_or(Paper::Mm58);
        // Columns in config.toml are for the configured paper; another paper takes its own.
        if p != ctx.config.slip.paper {
            plan.escpos.columns = None;
        }
    }
    if a.columns.is_some() {
        plan.escpos.columns = a.columns;
    }
    if plan.format == Format::Escpos {
        check_columns(plan.paper, plan.escpos.columns)?;
    }
    if a.raster {
        plan.escpos.qr = escpos::QrMode::Raster;
    }
    if a.printer.is_some() {
        plan.printer = a.printer;
    }
    plan.sheet = a.sheet;
    plan.out = a.out;
    let mut slips = Vec::new();
    let ids = expand(&a.ids)?;
    // Several slips at once (a range, a sheet): voided records and voids are left out and
    // named, not an error that prints nothing; one slip asked for alone says why not.
    let mut skipped = Vec::new();
    for id in &ids {
        let stored = dd.store.find(id)?;
        if let Err(e) = printable(&stored) {
            if ids.len() == 1 {
                return Err(e);
            }
            skipped.push(format!("#{}", stored.record.seq));
            continue;
        }
        slips.push(Slip::new(
            &stored.record,
            &dd.key,
            &office(ctx, &dd),
            ctx.offset(),
        )?);
    }
    if slips.is_empty() {
        return Err(AppError::invalid(tr!(
            "Tidak ada slip untuk dicetak: {} dibatalkan atau pembatalan.",
            "No slip to print: {} are voided or voids.",
            skipped.join(", ")
        )));
    }
    if !skipped.is_empty() && !ctx.json {
        eprintln!(
            "{}",
            tr!(
                "Tidak dicetak (dibatalkan atau pembatalan): {}",
                "Not printed (voided, or voids): {}",
                skipped.join(", ")
            )
        );
    }
    let done = plan.run(ctx, &dd, &slips)?;
    audit(&dd, &done)?;
    if ctx.json {
        output::ok(&Made {
            skipped: &skipped,
            outputs: &done,
            slips: slips
                .iter()
                .map(|s| MadeSlip {
                    record: &s.record_id,
                    seq: s.seq,
                    payload: &s.payload,
                    qr_version: s.qr.version,
                })
                .collect(),
        });
    }
    tell(ctx, &done, plan.printer.as_deref(), false);
    Ok(())
}

/// `record --print`: the new record's slip, in the configured format, to the configured place.
pub fn print_new(ctx: &Ctx, dd: &DataDir, stored: &Stored) -> Result<Vec<Printed>, AppError> {
    let mut plan = Plan::from_config(ctx);
    // A thermal printer set on the desk's settings page: raw ESC/POS straight to it.
    if let Some(printer) = direct_printer(dd) {
        plan.printer = Some(printer);
        plan.format = Format::Escpos;
    }
    let s = Slip::new(&stored.record, &dd.key, &office(ctx, dd), ctx.offset())?;
    let done = plan.run(ctx, dd, std::slice::from_ref(&s))?;
    audit(dd, &done)?;
    tell(ctx, &done, plan.printer.as_deref(), true);
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_ids() {
        let v = |a: &[&str]| expand(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(v(&["3-5", "#9"]).unwrap(), ["3", "4", "5", "#9"]);
        // A UUID (or its prefix) whose first groups are all digits stays an id.
        assert_eq!(v(&["01936135-7123"]).unwrap(), ["01936135-7123"]);
        assert!(v(&["5-3"]).is_err());
    }
}

/// `slip --json`: where each output went and what each slip's QR holds.
#[derive(serde::Serialize)]
struct Made<'a> {
    outputs: &'a [Printed],
    /// Records of the range left out: voided activations and voids (`#3`).
    skipped: &'a [String],
    slips: Vec<MadeSlip<'a>>,
}

#[derive(serde::Serialize)]
struct MadeSlip<'a> {
    record: &'a str,
    seq: i64,
    payload: &'a str,
    qr_version: i16,
}
