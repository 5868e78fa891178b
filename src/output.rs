//! Output for people (aligned tables, plain lines) and for scripts (`--json`: one stable object).
use crate::error::AppError;
use crate::tr;
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Prints `value` as pretty JSON on stdout.
pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("JSON: {e}"),
    }
}

/// A successful `--json` answer: `{"ok": true, …the fields of T}`. Every command's answer is a
/// typed struct printed through this, so its shape is written down once, in Rust.
#[derive(Serialize)]
pub struct Answer<'a, T: Serialize> {
    ok: bool,
    #[serde(flatten)]
    data: &'a T,
}

/// A failed command's `--json` answer: `{"ok": false, "error": {"kind", "message", "hint", …}}`.
#[derive(Serialize)]
pub struct Failed<'a> {
    pub ok: bool,
    pub error: &'a AppError,
}

/// Prints `{"ok": true, …data}` on stdout.
pub fn ok<T: Serialize>(data: &T) {
    json(&Answer { ok: true, data });
}

/// Prints `{"ok": true, …data}` on one line (JSON lines, for a command that answers repeatedly).
pub fn ok_line<T: Serialize>(data: &T) {
    match serde_json::to_string(&Answer { ok: true, data }) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("JSON: {e}"),
    }
}

/// A simple text table with aligned columns (by character count, so names with accents align).
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Table {
        Table {
            header: header.into_iter().map(Into::into).collect(),
            rows: vec![],
        }
    }

    /// Adds a row; control and text-direction characters in a cell (a device's name can carry
    /// an escape sequence) are shown as `?`, never sent to the terminal.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| {
                    let c: String = c.into();
                    if c.chars().any(crate::domain::validate::is_hidden_control) {
                        c.chars()
                            .map(|ch| {
                                if crate::domain::validate::is_hidden_control(ch) {
                                    '?'
                                } else {
                                    ch
                                }
                            })
                            .collect()
                    } else {
                        c
                    }
                })
                .collect(),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn render(&self) -> String {
        let cols = self.header.len();
        let mut width = vec![0usize; cols];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in row.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let line = |row: &Vec<String>| {
            let mut s = String::new();
            for (i, c) in row.iter().enumerate().take(cols) {
                if i + 1 == cols {
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    s.push_str(&" ".repeat(width[i] - c.chars().count() + 2));
                }
            }
            s.trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        out.push_str(&"-".repeat(width.iter().sum::<usize>() + 2 * cols.saturating_sub(1)));
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formulas_and_phones_stay_text_in_a_spreadsheet() {
        for (cell, want) in [
            ("=cmd|'/Ccalc'!A0@contoh.id", "'=cmd|'/Ccalc'!A0@contoh.id"),
            ("+6281234567890", "'+6281234567890"),
            ("-1+2", "'-1+2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("SITI AMINAH", "SITI AMINAH"),
            ("1702064107950003", "1702064107950003"),
            ("", ""),
        ] {
            assert_eq!(super::csv_cell(cell), want, "{cell:?}");
        }
    }

    #[test]
    fn escape_sequences_and_direction_overrides_never_reach_the_terminal() {
        let mut t = super::Table::new(["TIM"]);
        t.row(["\u{1b}[2J\u{1b}[31mTIM", "\u{202e}1 MIT"]);
        let s = t.render();
        assert!(!s.contains('\u{1b}') && !s.contains('\u{202e}'), "{s:?}");
        assert!(s.contains("?[2J?[31mTIM"), "{s:?}");
    }

    #[test]
    fn columns_align() {
        let mut t = super::Table::new(["#", "NAMA"]);
        t.row(["1", "SITI"]);
        t.row(["10", "ÉLODIE"]);
        let s = t.render();
        assert!(s.contains("1   SITI\n"), "{s}");
        assert!(s.contains("10  ÉLODIE\n"), "{s}");
    }
}

/// Creates (or truncates) `path` for writing, readable by its owner only (0600 on unix, the
/// owner alone in its DACL on Windows): exports hold personal data.
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    #[cfg(windows)]
    crate::crypto::owner_only::prepare(&mut o);
    let f = o.open(path)?;
    // An existing file keeps its mode on open: narrow it too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(windows)]
    crate::crypto::owner_only::restrict(&f)?;
    Ok(f)
}

/// Writes `text` to `path` + `.new` (owner-only when `private`, as [`create_private_file`]) and
/// syncs it; the caller renames it over `path` (several files can be staged, then renamed).
pub fn stage_file(path: &Path, text: &str, private: bool) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = if private {
        create_private_file(&tmp)?
    } else {
        std::fs::File::create(&tmp)?
    };
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(tmp)
}

/// [`stage_file`], then renamed over `path`: a reader sees the old file or the new, never half.
pub fn replace_file(path: &Path, text: &str, private: bool) -> std::io::Result<()> {
    let tmp = stage_file(path, text, private)?;
    std::fs::rename(&tmp, path)
}

/// A CSV cell as a spreadsheet must not run it: a cell starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return is a formula (or becomes one) in Excel and LibreOffice, so it gets a
/// leading `'`, which they show as text and do not print (OWASP's advice against CSV
/// injection). A phone number `+6281…` is kept as the text it is instead of becoming a number.
pub fn csv_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Writes one CSV row with every cell made [`csv_cell`]-safe.
pub fn csv_row<W: Write, C: AsRef<str>>(
    w: &mut csv::Writer<W>,
    cells: impl IntoIterator<Item = C>,
) -> csv::Result<()> {
    w.write_record(cells.into_iter().map(|c| csv_cell(c.as_ref()).into_owned()))
}

/// The export formats of `export` and `server export`.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum ExportFormat {
    Csv,
    Json,
}

enum ExportSink {
    Csv(Box<csv::Writer<BufWriter<Box<dyn Write>>>>),
    Json(BufWriter<Box<dyn Write>>),
}

/// A streamed export to a file or stdout: CSV (a header, then one row per record) or a JSON
/// array written one element at a time, so memory stays flat for any number of records.
pub struct Export {
    sink: ExportSink,
    /// Records written so far.
    pub n: usize,
}

fn export_io_err(e: std::io::Error) -> AppError {
    AppError::other(tr!(
        "Gagal menulis ekspor: {e}",
        "Cannot write the export: {e}"
    ))
}

impl Export {
    /// Creates `out` (stdout when None) and writes the start: the CSV header or `[`.
    pub fn start(
        out: Option<&Path>,
        format: ExportFormat,
        csv_header: &[&str],
    ) -> Result<Export, AppError> {
        Export::start_as(out, format, csv_header, false)
    }

    /// [`Export::start`]; `for_excel` makes the CSV what a spreadsheet set to Indonesian opens
    /// in columns: `;` between cells and a UTF-8 byte-order mark.
    pub fn start_as(
        out: Option<&Path>,
        format: ExportFormat,
        csv_header: &[&str],
        for_excel: bool,
    ) -> Result<Export, AppError> {
        let w: Box<dyn Write> = match out {
            Some(p) => Box::new(create_private_file(p).map_err(export_io_err)?),
            None => Box::new(std::io::stdout().lock()),
        };
        let mut w = BufWriter::new(w);
        let sink = match format {
            ExportFormat::Csv => {
                if for_excel {
                    w.write_all("\u{feff}".as_bytes()).map_err(export_io_err)?;
                }
                let mut c = csv::WriterBuilder::new()
                    .delimiter(if for_excel { b';' } else { b',' })
                    .from_writer(w);
                c.write_record(csv_header)
                    .map_err(|e| AppError::other(e.to_string()))?;
                ExportSink::Csv(Box::new(c))
            }
            ExportFormat::Json => {
                write!(w, "[").map_err(export_io_err)?;
                ExportSink::Json(w)
            }
        };
        Ok(Export { sink, n: 0 })
    }

    /// Writes one record: `cells(record)` as a CSV row, or `record` as a JSON element.
    pub fn row<T: Serialize, I, C>(
        &mut self,
        record: T,
        cells: impl FnOnce(T) -> I,
    ) -> Result<(), AppError>
    where
        I: IntoIterator<Item = C>,
        C: AsRef<str>,
    {
        let first = self.n == 0;
        self.n += 1;
        match &mut self.sink {
            ExportSink::Csv(c) => {
                csv_row(c, cells(record)).map_err(|e| AppError::other(e.to_string()))
            }
            ExportSink::Json(w) => {
                let sep = if first { "\n" } else { ",\n" };
                let line =
                    serde_json::to_string(&record).map_err(|e| AppError::other(e.to_string()))?;
                write!(w, "{sep}{line}").map_err(export_io_err)
            }
        }
    }

    /// Writes the end (`]` for JSON) and flushes; returns the number of records.
    pub fn finish(self) -> Result<usize, AppError> {
        let mut w = match self.sink {
            ExportSink::Csv(mut c) => {
                c.flush().map_err(export_io_err)?;
                c.into_inner().map_err(|e| export_io_err(e.into_error()))?
            }
            ExportSink::Json(mut w) => {
                writeln!(w, "\n]").map_err(export_io_err)?;
                w
            }
        };
        w.flush().map_err(export_io_err)?;
        Ok(self.n)
    }
}
