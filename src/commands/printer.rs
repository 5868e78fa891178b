//! `printer test`: one page that prints the QR both ways a thermal printer can (the printer's own
//! QR command, and a bit image), then asks the officer which came out and keeps the answer in
//! config.toml (`[slip] escpos_qr`), once per laptop. `printer set` keeps an answer given
//! without a terminal.
use super::Ctx;
use super::slip::{check_columns, escpos_options};
use crate::config::{self, Config};
use crate::error::AppError;
use crate::slip::escpos::{self, Out, QrMode};
use crate::slip::{Paper, qr::Qr};
use crate::{output, tr};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

/// What the two test symbols hold (QR alphanumeric text, so they are small).
pub const TEXT_NATIVE: &str = "IKD-FIELD TES PRINTER A NATIVE";
pub const TEXT_RASTER: &str = "IKD-FIELD TES PRINTER B RASTER";

#[derive(clap::Args, Debug)]
pub struct PrinterArgs {
    #[command(subcommand)]
    pub command: PrinterCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum PrinterCommand {
    /// Cetak halaman uji (QR A: perintah printer, QR B: gambar) lalu simpan pilihannya / print a test page with both kinds of QR and keep the one that printed
    Test(TestArgs),
    /// Simpan jenis QR printer ini tanpa halaman uji / keep this printer's kind of QR
    Set(SetArgs),
}

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    /// Printer, mis. /dev/usb/lp0 (Windows: nama printer / the printer's name, or \\.\COM3) [default: slip.printer]
    #[arg(long, value_name = "DEVICE")]
    pub printer: Option<PathBuf>,
    /// Tulis ke berkas ini, bukan ke printer / write to this file instead of a printer
    #[arg(long, value_name = "FILE", conflicts_with = "printer")]
    pub out: Option<PathBuf>,
    /// Lebar kertas / paper width: 58 or 80 [default: slip.paper]
    #[arg(long, value_parser = super::slip::parse_paper)]
    pub paper: Option<u32>,
    /// Huruf per baris / characters per line: 32 (58 mm), 42 or 48 (80 mm) [default: slip.columns]
    #[arg(long, value_name = "N")]
    pub columns: Option<usize>,
}

#[derive(clap::Args, Debug)]
pub struct SetArgs {
    /// native: QR A tercetak / QR A printed; raster: hanya QR B / only QR B printed
    #[arg(value_parser = ["native", "raster"])]
    pub qr: String,
}

/// The test page: a ruler of the columns, then QR A (native) and QR B (raster), each labelled.
pub fn test_page(paper: Paper, columns: Option<usize>) -> Vec<u8> {
    let (dots, cols) = escpos::layout(paper, columns).unwrap_or((paper.dots(), paper.columns()));
    let mut o = Out(Vec::with_capacity(4096));
    o.start();
    o.cmd(&[0x1B, 0x61, 1]).cmd(&[0x1B, 0x45, 1]);
    o.line("TES PRINTER IKD").cmd(&[0x1B, 0x45, 0]);
    let mm = if paper == Paper::Mm58 { 58 } else { 80 };
    o.line(&format!("Kertas {mm} mm, {cols} huruf per baris"));
    let ruler: String = (1..=cols)
        .map(|i| char::from(b'0' + (i % 10) as u8))
        .collect();
    o.line(&ruler);
    o.line(&"-".repeat(cols));
    for (label, text, mode) in [
        ("QR A (perintah printer)", TEXT_NATIVE, QrMode::Native),
        ("QR B (gambar)", TEXT_RASTER, QrMode::Raster),
    ] {
        let qr = Qr::encode(text).expect("a short test text fits");
        o.cmd(&[0x1B, 0x61, 1]).line(label);
        o.qr(text, &qr, mode, dots);
        o.line(&"-".repeat(cols));
    }
    o.cmd(&[0x1B, 0x64, 3]).cmd(&escpos::CUT).cmd(&[3]);
    o.0
}

pub fn run(ctx: &Ctx, a: PrinterArgs, config_arg: Option<&Path>) -> Result<(), AppError> {
    let (path, _) = config::locate(config_arg, &ctx.data_dir);
    match a.command {
        PrinterCommand::Test(t) => test(ctx, t, &path),
        PrinterCommand::Set(s) => {
            let mode = QrMode::parse(&s.qr).unwrap_or_default();
            save(&path, mode, None)?;
            if ctx.json {
                output::ok(&Saved {
                    escpos_qr: mode.name(),
                    config: &path,
                });
            } else {
                eprintln!("{}", saved_message(mode, &path));
            }
            Ok(())
        }
    }
}

fn saved_message(mode: QrMode, path: &Path) -> String {
    tr!(
        "✓ Disimpan di {}: escpos_qr = \"{}\". Slip berikutnya dicetak dengan QR jenis ini.",
        "✓ Saved in {}: escpos_qr = \"{}\". Slips from now on print this kind of QR.",
        path.display(),
        mode.name()
    )
}

fn test(ctx: &Ctx, t: TestArgs, config_path: &Path) -> Result<(), AppError> {
    let c = &ctx.config.slip;
    let paper = Paper::from_mm(t.paper.unwrap_or(c.paper)).unwrap_or(Paper::Mm58);
    let mut columns = escpos_options(c).columns;
    if t.paper.is_some_and(|p| p != c.paper) {
        columns = None;
    }
    if t.columns.is_some() {
        columns = t.columns;
    }
    check_columns(paper, columns)?;
    let page = test_page(paper, columns);
    let device = t.printer.clone().or_else(|| c.printer.clone());
    let to = match (&t.out, &device) {
        (Some(file), _) => {
            std::fs::write(file, &page).map_err(|e| {
                AppError::other(tr!(
                    "Tidak bisa menulis ke {}: {e}",
                    "Cannot write to {}: {e}",
                    file.display()
                ))
            })?;
            file.clone()
        }
        (None, Some(dev)) => {
            super::slip::write_printer(dev, &page)?;
            dev.clone()
        }
        (None, None) => {
            return Err(AppError::usage(tr!(
                "Printer belum ditentukan.",
                "No printer given."
            ))
            .hint(tr!(
                "Berikan --printer /dev/usb/lp0 (di Windows: nama printernya, mis. --printer POS-58) atau isi printer di bagian [slip] config.toml, atau --out halaman-uji.bin.",
                "Give --printer /dev/usb/lp0 (on Windows: the printer's name, e.g. --printer POS-58) or set printer in config.toml's [slip] section, or --out test-page.bin."
            )));
        }
    };
    let ask = !ctx.json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    if !ask {
        let how = tr!(
            "Halaman uji dikirim ke {}. Jika QR A tercetak: ikd-field printer set native. Jika hanya QR B: ikd-field printer set raster.",
            "Test page sent to {}. If QR A printed: ikd-field printer set native. If only QR B printed: ikd-field printer set raster.",
            to.display()
        );
        if ctx.json {
            output::ok(&TestSent {
                to: &to,
                escpos_qr: &c.escpos_qr,
                config: config_path,
                next: &how,
            });
        } else {
            eprintln!("{how}");
        }
        return Ok(());
    }
    eprintln!(
        "{}",
        tr!(
            "Halaman uji dikirim ke {}. Lihat kertasnya: ada dua kode QR, A dan B.",
            "Test page sent to {}. Look at the paper: there are two QR codes, A and B.",
            to.display()
        )
    );
    let stdin = std::io::stdin();
    loop {
        eprint!(
            "{}",
            tr!(
                "Kode QR mana yang tercetak? [A] QR A (atau keduanya)  [B] hanya QR B  [T] tidak ada: ",
                "Which QR code printed? [A] QR A (or both)  [B] only QR B  [N] neither: "
            )
        );
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line).unwrap_or(0) == 0 {
            return Ok(());
        }
        let mode = match line.trim().to_uppercase().as_str() {
            "A" => QrMode::Native,
            "B" => QrMode::Raster,
            "T" | "N" => {
                return Err(AppError::other(tr!(
                    "Tidak ada kode QR yang tercetak; pengaturan printer tidak diubah.",
                    "No QR code printed; the printer setting was not changed."
                ))
                .hint(tr!(
                    "Periksa kertas (sisi termal menghadap kepala cetak), kabel dan daya, lalu ulangi: ikd-field printer test.",
                    "Check the paper (thermal side towards the print head), cable and power, then again: ikd-field printer test."
                )));
            }
            _ => continue,
        };
        save(config_path, mode, Some((paper, columns, device.as_deref())))?;
        eprintln!("{}", saved_message(mode, config_path));
        return Ok(());
    }
}

/// Writes the choice into config.toml's [slip] section, keeping the rest of the file (comments
/// too) as it is; the result is checked like any config before it replaces the old file.
fn save(
    path: &Path,
    mode: QrMode,
    printer: Option<(Paper, Option<usize>, Option<&Path>)>,
) -> Result<(), AppError> {
    let old = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(AppError::other(tr!(
                "Berkas konfigurasi {} tidak bisa dibaca: {e}",
                "Cannot read the configuration file {}: {e}",
                path.display()
            )));
        }
    };
    // A TOML basic string: JSON's string escapes (\", \\, \n, \uXXXX…) are a subset of TOML's.
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut keys = vec![("escpos_qr", quoted(mode.name()))];
    if let Some((paper, columns, device)) = printer {
        let mm = if paper == Paper::Mm58 { 58 } else { 80 };
        keys.push(("paper", mm.to_string()));
        keys.push(("columns", columns.unwrap_or(0).to_string()));
        if let Some(dev) = device {
            keys.push(("printer", quoted(&dev.display().to_string())));
        }
    }
    let text = set_slip_keys(&old, &keys);
    Config::parse(&text, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| AppError::other(e.to_string()))?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            AppError::other(tr!(
                "Tidak bisa menulis {}: {e}",
                "Cannot write {}: {e}",
                path.display()
            ))
        })
}

/// `key = value` lines set in the `[slip]` table of a TOML text: an existing line of the key is
/// replaced, a missing key goes under the table's header, a missing table is added at the end.
/// Every other line, comments included, is kept. (A line editor rather than a TOML editing
/// crate: the binary has to stay under 8 MB; the result is parsed as a whole before it is used.)
fn set_slip_keys(text: &str, keys: &[(&str, String)]) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let header = |l: &str| l.trim_start().starts_with('[');
    let Some(start) = lines
        .iter()
        .position(|l| l.split('#').next().unwrap_or("").trim() == "[slip]")
    else {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str("[slip]\n");
        for (k, v) in keys {
            out.push_str(&format!("{k} = {v}\n"));
        }
        return out;
    };
    for (k, v) in keys {
        let end = lines[start + 1..]
            .iter()
            .position(|l| header(l))
            .map_or(lines.len(), |i| start + 1 + i);
        let is_key = |l: &str| {
            l.trim_start()
                .strip_prefix(k)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        };
        let line = format!("{k} = {v}");
        match (start + 1..end).find(|&i| is_key(&lines[i])) {
            Some(i) => lines[i] = line,
            None => lines.insert(start + 1, line),
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saving_keeps_the_rest_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "# mine\nlang = \"id\"\n\n[slip]\n# kept\npaper = 58\n",
        )
        .unwrap();
        save(&path, QrMode::Raster, None).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# mine") && text.contains("# kept"), "{text}");
        let c = Config::parse(&text, &path).unwrap();
        assert_eq!((c.slip.escpos_qr.name(), c.slip.paper), ("raster", 58));
        let lp = Path::new("/dev/usb/lp0");
        save(
            &path,
            QrMode::Native,
            Some((Paper::Mm80, Some(42), Some(lp))),
        )
        .unwrap();
        let c = Config::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
        assert_eq!(c.slip.escpos_qr.name(), "native");
        assert_eq!((c.slip.paper, c.slip.columns), (80, 42));
        assert_eq!(
            c.slip.printer.as_deref(),
            Some(std::path::Path::new("/dev/usb/lp0"))
        );
        // The sample config.toml: only the [slip] values change.
        let sample = include_str!("../../config.toml");
        std::fs::write(&path, sample).unwrap();
        save(&path, QrMode::Raster, None).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), sample.lines().count());
        let c = Config::parse(&text, &path).unwrap();
        assert_eq!(c.slip.escpos_qr.name(), "raster");
        assert_eq!(c.sync.batch_size, 500);
        // A file without [slip] gets one.
        std::fs::write(&path, "lang = \"en\"\n[sync]\nbatch_size = 7\n").unwrap();
        save(&path, QrMode::Raster, Some((Paper::Mm58, None, None))).unwrap();
        let c = Config::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
        assert_eq!((c.slip.escpos_qr.name(), c.sync.batch_size), ("raster", 7));
        // No file yet: one is made.
        let fresh = dir.path().join("sub/config.toml");
        save(&fresh, QrMode::Raster, None).unwrap();
        assert!(std::fs::read_to_string(&fresh).unwrap().contains("raster"));
    }
}

/// `printer set --json`: the profile saved and where.
#[derive(serde::Serialize)]
struct Saved<'a> {
    escpos_qr: &'a str,
    config: &'a std::path::Path,
}

/// `printer test --json` (no terminal to ask on): where the page went and what to do next.
#[derive(serde::Serialize)]
struct TestSent<'a, Q: serde::Serialize> {
    to: &'a std::path::Path,
    escpos_qr: &'a Q,
    config: &'a std::path::Path,
    next: &'a str,
}
