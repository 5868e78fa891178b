//! The targets file: `kode_wilayah,wajib_ktp,target` (or the English `region_code` for the
//! first), one row per regency, kecamatan or desa; the columns may come in any order and other
//! columns (a name, a note) are ignored.
//!
//! * `kode_wilayah` / `region_code`: 4, 6 or 10 digits (dots allowed: `17.02.01.2001`) that exist in the kode
//!   wilayah tables.
//! * `wajib_ktp`: a whole number above 0 (`202820`, `202.820` or `202,820`).
//! * `target`: a share of wajib KTP (`30%`, `25,5 %`) or a count (`60846`, `60.846`); empty means
//!   `server.default_target_percent` from config.toml, fixed at import time.
//!
//! Every row is checked before anything is written; any bad row fails the whole import with
//! every problem listed by its line. A good file replaces the previous targets in one transaction.
//! A semicolon-separated file (as spreadsheets in an Indonesian locale save it) is read too.
use super::coverage::{Target, TargetRow};
use super::db::{self, Db, Mode};
use crate::args;
use crate::domain::region::{self, Level};
use crate::tr;
use serde::Serialize;

/// A row that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRow {
    /// Line in the file, from 1 (the header is line 1).
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            tr!("baris", "line"),
            self.line,
            self.message
        )
    }
}

/// A checked row and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub line: usize,
    pub row: TargetRow,
    /// The target cell was empty: the default percentage was used.
    pub defaulted: bool,
}

/// Parses and checks a whole targets file. `default_bp` is the default share in basis points.
pub fn parse(text: &str, default_bp: u32) -> Result<Vec<Parsed>, Vec<BadRow>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let first = text.lines().next().unwrap_or("");
    let delimiter = if first.contains(';') && !first.contains(',') {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut bad = Vec::new();
    let mut out: Vec<Parsed> = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut columns: Option<Columns> = None;
    for (i, rec) in reader.records().enumerate() {
        let fallback_line = i + 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e
                    .position()
                    .map(|p| line_at(text, p.byte() as usize))
                    .unwrap_or(fallback_line);
                bad.push(BadRow {
                    line,
                    message: tr!("CSV rusak: {e}", "broken CSV: {e}"),
                });
                continue;
            }
        };
        // From the byte offset: the reader's own line count skips blank lines.
        let line = rec
            .position()
            .map(|p| line_at(text, p.byte() as usize))
            .unwrap_or(fallback_line);
        if rec.iter().all(|c| c.is_empty()) {
            continue;
        }
        let Some(cols) = columns else {
            match Columns::of(&rec) {
                Ok(c) => columns = Some(c),
                Err(message) => {
                    bad.push(BadRow { line, message });
                    return Err(bad);
                }
            }
            continue;
        };
        // As many cells as the header (trailing empty ones a spreadsheet adds are fine): an
        // unquoted `202,820` in a comma file would otherwise shift the numbers silently.
        let cells: Vec<&str> = rec.iter().collect();
        let filled = cells
            .iter()
            .rposition(|c| !c.is_empty())
            .map_or(0, |i| i + 1);
        if rec.len() < cols.width || filled > cols.width {
            bad.push(BadRow {
                line,
                message: tr!(
                    "harus {} kolom seperti judulnya, ada {}",
                    "needs {} columns like its header, has {}",
                    cols.width,
                    rec.len().min(filled.max(cols.width))
                ),
            });
            continue;
        }
        match parse_row(
            &rec[cols.code],
            &rec[cols.wajib],
            &rec[cols.target],
            default_bp,
        ) {
            Ok((row, defaulted)) => {
                if let Some(&earlier) = seen.get(&row.region_code) {
                    bad.push(BadRow {
                        line,
                        message: tr!(
                            "kode {} sudah ada di baris {earlier}",
                            "code {} already given on line {earlier}",
                            row.region_code
                        ),
                    });
                    continue;
                }
                seen.insert(row.region_code.clone(), line);
                out.push(Parsed {
                    line,
                    row,
                    defaulted,
                });
            }
            Err(message) => bad.push(BadRow { line, message }),
        }
    }
    if columns.is_none() {
        bad.push(BadRow {
            line: 1,
            message: tr!(
                "berkas kosong: baris pertama harus judul kolom kode_wilayah,wajib_ktp,target",
                "empty file: the first line must be the header kode_wilayah,wajib_ktp,target"
            ),
        });
    } else if out.is_empty() && bad.is_empty() {
        bad.push(BadRow {
            line: 2,
            message: tr!("tidak ada baris target", "no target rows"),
        });
    }
    if bad.is_empty() { Ok(out) } else { Err(bad) }
}

/// Where the three columns are, from the header: Indonesian or English names, in any order, any
/// other column (a name, a note) ignored.
#[derive(Debug, Clone, Copy)]
struct Columns {
    code: usize,
    wajib: usize,
    target: usize,
    /// Columns in the header.
    width: usize,
}

impl Columns {
    fn of(header: &csv::StringRecord) -> Result<Columns, String> {
        let names: Vec<String> = header
            .iter()
            .map(|c| c.trim().to_lowercase().replace([' ', '-'], "_"))
            .collect();
        let find = |accepted: &[&str]| names.iter().position(|n| accepted.contains(&n.as_str()));
        let code = find(&["kode_wilayah", "region_code", "kode"]);
        let wajib = find(&["wajib_ktp"]);
        let target = find(&["target", "sasaran"]);
        match (code, wajib, target) {
            (Some(code), Some(wajib), Some(target)) => Ok(Columns {
                code,
                wajib,
                target,
                width: names.len(),
            }),
            _ => Err(tr!(
                "baris pertama harus judul kolom dengan kode_wilayah, wajib_ktp dan target (kolom lain, mis. nama, diabaikan); tertulis: {}",
                "the first line must be a header with kode_wilayah (or region_code), wajib_ktp and target (other columns, e.g. a name, are ignored); found: {}",
                header.iter().collect::<Vec<_>>().join(",")
            )),
        }
    }
}

/// The line (from 1) of the record starting at byte `offset` of `text` (the reader may point at
/// blank lines it skipped before the record).
fn line_at(text: &str, offset: usize) -> usize {
    let bytes = text.as_bytes();
    let mut offset = offset.min(bytes.len());
    while offset < bytes.len() && matches!(bytes[offset], b'\n' | b'\r') {
        offset += 1;
    }
    bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

fn parse_row(
    code: &str,
    wajib: &str,
    target: &str,
    default_bp: u32,
) -> Result<(TargetRow, bool), String> {
    let code_n = region::normalize_code(code);
    if !code_n.chars().all(|c| c.is_ascii_digit()) || code_n.is_empty() {
        return Err(tr!(
            "region_code '{code}' bukan kode wilayah (4, 6 atau 10 digit)",
            "region_code '{code}' is not a region code (4, 6 or 10 digits)"
        ));
    }
    match Level::of_code(&code_n) {
        Some(Level::Kabupaten | Level::Kecamatan | Level::Desa) => {}
        _ => {
            return Err(tr!(
                "region_code '{code}' harus kode kabupaten/kota (4 digit), kecamatan (6) atau desa/kelurahan (10)",
                "region_code '{code}' must be a regency (4 digits), kecamatan (6) or village (10) code"
            ));
        }
    }
    if region::lookup(&code_n).is_none() {
        return Err(tr!(
            "kode wilayah {} tidak ada di tabel Kemendagri; cari dengan: ikd-field wilayah cari NAMA",
            "region code {} is not in the Kemendagri tables; find it with: ikd-field wilayah cari NAME",
            region::dotted(&code_n)
        ));
    }
    let wajib_ktp = match whole_number(wajib) {
        Some(n) if n > 0 => n,
        Some(_) => {
            return Err(tr!(
                "wajib_ktp harus lebih dari 0",
                "wajib_ktp must be above 0"
            ));
        }
        None => {
            return Err(tr!(
                "wajib_ktp '{wajib}' bukan bilangan bulat (contoh: 202820)",
                "wajib_ktp '{wajib}' is not a whole number (e.g. 202820)"
            ));
        }
    };
    let (t, defaulted) = if target.is_empty() {
        (Target::Percent(default_bp), true)
    } else if let Some(p) = target.strip_suffix('%') {
        match basis_points(p.trim()) {
            Some(bp) if (1..=10_000).contains(&bp) => (Target::Percent(bp), false),
            _ => {
                return Err(tr!(
                    "target '{target}': persentase harus di atas 0 dan paling banyak 100 (contoh: 30%)",
                    "target '{target}': a percentage must be above 0 and at most 100 (e.g. 30%)"
                ));
            }
        }
    } else {
        match whole_number(target) {
            Some(0) => {
                return Err(tr!(
                    "target harus lebih dari 0",
                    "the target must be above 0"
                ));
            }
            Some(n) if n > wajib_ktp => {
                return Err(tr!(
                    "target {n} lebih besar dari wajib_ktp {wajib_ktp}",
                    "target {n} is larger than wajib_ktp {wajib_ktp}"
                ));
            }
            Some(n) => (Target::Count(n), false),
            None => {
                return Err(tr!(
                    "target '{target}' harus persentase (30%) atau jumlah (60846)",
                    "target '{target}' must be a percentage (30%) or a count (60846)"
                ));
            }
        }
    };
    Ok((
        TargetRow {
            region_code: code_n,
            wajib_ktp,
            target: t,
        },
        defaulted,
    ))
}

/// `202820`, `202.820`, `202,820` or `202 820` (groups of three after the first) → 202820.
fn whole_number(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.chars().all(|c| c.is_ascii_digit()) {
        return s.parse().ok().filter(|&n: &u64| n < 1_000_000_000_000);
    }
    let sep = s.chars().find(|c| !c.is_ascii_digit())?;
    if !matches!(sep, '.' | ',' | ' ' | '_') {
        return None;
    }
    let groups: Vec<&str> = s.split(sep).collect();
    let ok = groups[0].len() <= 3
        && !groups[0].is_empty()
        && groups[1..]
            .iter()
            .all(|g| g.len() == 3 && g.chars().all(|c| c.is_ascii_digit()))
        && groups[0].chars().all(|c| c.is_ascii_digit());
    if !ok {
        return None;
    }
    groups
        .concat()
        .parse()
        .ok()
        .filter(|&n: &u64| n < 1_000_000_000_000)
}

/// `30` → 3000, `25.5` or `25,5` → 2550, `12.25` → 1225 (at most two decimals).
fn basis_points(s: &str) -> Option<u32> {
    let s = s.replace(',', ".");
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    if int.is_empty()
        || int.len() > 3
        || frac.len() > 2
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let int: u32 = int.parse().ok()?;
    let frac: u32 = format!("{frac:0<2}").parse().ok()?;
    Some(int * 100 + frac)
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    pub rows: usize,
    pub replaced: usize,
    pub regencies: usize,
    pub districts: usize,
    pub villages: usize,
    /// Lines whose target was empty and took the default percentage.
    pub defaulted_lines: Vec<usize>,
}

/// Replaces the targets table with `rows` in one transaction.
pub fn import(conn: &mut Db<'_>, rows: &[Parsed], now: &str) -> db::Result<Imported> {
    let mut tx = conn.begin(Mode::Write)?;
    let replaced = tx.execute("DELETE FROM targets", args![])? as usize;
    for p in rows {
        let (count, bp) = match p.row.target {
            Target::Count(c) => (Some(c as i64), None),
            Target::Percent(b) => (None, Some(i64::from(b))),
        };
        tx.execute(
            "INSERT INTO targets (region_code, wajib_ktp, target_count, target_bp, source, line,
                                  imported_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            args![
                p.row.region_code,
                p.row.wajib_ktp as i64,
                count,
                bp,
                if p.defaulted { "default" } else { "file" },
                p.line as i64,
                now
            ],
        )?;
    }
    tx.commit()?;
    let at = |n: usize| rows.iter().filter(|p| p.row.region_code.len() == n).count();
    Ok(Imported {
        rows: rows.len(),
        replaced,
        regencies: at(4),
        districts: at(6),
        villages: at(10),
        defaulted_lines: rows
            .iter()
            .filter(|p| p.defaulted)
            .map(|p| p.line)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bad: &[BadRow]) -> Vec<usize> {
        bad.iter().map(|b| b.line).collect()
    }

    #[test]
    fn good_file_with_every_form_of_target() {
        let text = "\u{feff}region_code,wajib_ktp,target\n\
                    1702,\"202,820\",30%\n\
                    17.02.09,10.000,2500\n\
                    \n\
                    1702091012,800,\n\
                    1702091013 , 900 ,\"25,5 %\"\n";
        let rows = parse(text, 3000).unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|p| {
                (
                    p.line,
                    p.row.region_code.as_str(),
                    p.row.wajib_ktp,
                    p.row.target,
                    p.defaulted,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (2, "1702", 202_820, Target::Percent(3000), false),
                (3, "170209", 10_000, Target::Count(2500), false),
                (5, "1702091012", 800, Target::Percent(3000), true),
                (6, "1702091013", 900, Target::Percent(2550), false),
            ]
        );
        assert_eq!(rows[0].row.target.count(202_820), 60_846);
    }

    #[test]
    fn semicolons_from_a_spreadsheet() {
        let rows = parse("region_code;wajib_ktp;target\n1702;202820;30%\n", 3000).unwrap();
        assert_eq!(rows[0].row.wajib_ktp, 202_820);
    }

    #[test]
    fn indonesian_headers_any_order_and_a_name_column() {
        // The admin's own sheet, saved from Excel in an Indonesian locale: a name column, the
        // columns in another order, a note at the end, trailing empty cells.
        let text = "No;Kode_Wilayah;Nama Wilayah;Target;Wajib KTP;Catatan\n\
                    1;17.02;KAB. REJANG LEBONG;30%;202.820;\n\
                    2;1702091012;TALANG RIMBO LAMA;;800;baru;;\n";
        let rows = parse(text, 2500).unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|p| {
                (
                    p.line,
                    p.row.region_code.as_str(),
                    p.row.wajib_ktp,
                    p.row.target,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (2, "1702", 202_820, Target::Percent(3000)),
                (3, "1702091012", 800, Target::Percent(2500)),
            ]
        );
        // English names still work, with a name column too.
        let rows = parse(
            "region_code,name,wajib_ktp,target\n1702,REJANG,202820,60846\n",
            3000,
        )
        .unwrap();
        assert_eq!(rows[0].row.target, Target::Count(60_846));
    }

    #[test]
    fn extra_columns_keep_the_all_or_nothing_check() {
        // Line 3: an unquoted 202,820 in a comma file makes a cell more than the header, which
        // would shift the numbers: refused. Line 4: a cell short. Line 5: a bad code.
        let text = "kode_wilayah,nama,wajib_ktp,target\n\
                    1702,REJANG LEBONG,202820,30%\n\
                    170209,CURUP,10,000,2500\n\
                    1702091012,TALANG,800\n\
                    9999,X,100,10%\n";
        let bad = parse(text, 3000).unwrap_err();
        assert_eq!(lines(&bad), vec![3, 4, 5], "{bad:#?}");
        assert!(bad[0].message.contains("harus 4 kolom") || bad[0].message.contains("needs 4"));
        // A header without one of the three is refused on line 1, naming the Indonesian header.
        let bad = parse("kode_wilayah,nama,target\n1702,X,30%\n", 3000).unwrap_err();
        assert_eq!(lines(&bad), vec![1]);
        assert!(bad[0].message.contains("kode_wilayah") && bad[0].message.contains("wajib_ktp"));
    }

    #[test]
    fn every_bad_row_is_reported_by_its_line() {
        let text = "region_code,wajib_ktp,target\n\
                    1702,202820,30%\n\
                    9999,100,10%\n\
                    170209,abc,10%\n\
                    170209,0,10%\n\
                    1702091012,800,120%\n\
                    1702091012,800,900\n\
                    1702091013,800,lots\n\
                    1702,100,10%\n\
                    17,100,10%\n\
                    1702091023,800\n\
                    1702091025,800,0\n";
        let bad = parse(text, 3000).unwrap_err();
        assert_eq!(
            lines(&bad),
            vec![3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
            "{bad:#?}"
        );
        assert!(bad[0].message.contains("99.99"), "{}", bad[0].message);
        assert!(bad[6].message.contains("2"), "{}", bad[6].message);
        assert!(bad[8].message.contains('3'), "{}", bad[8].message);
    }

    #[test]
    fn header_is_required() {
        let bad = parse("1702,202820,30%\n", 3000).unwrap_err();
        assert_eq!(lines(&bad), vec![1]);
        let bad = parse("", 3000).unwrap_err();
        assert_eq!(lines(&bad), vec![1]);
        let bad = parse("region_code,wajib_ktp,target\n", 3000).unwrap_err();
        assert_eq!(lines(&bad), vec![2]);
    }

    #[test]
    fn numbers() {
        assert_eq!(whole_number("202820"), Some(202_820));
        assert_eq!(whole_number("202.820"), Some(202_820));
        assert_eq!(whole_number("1,470,195"), Some(1_470_195));
        assert_eq!(whole_number("20.28"), None);
        assert_eq!(whole_number("-5"), None);
        assert_eq!(whole_number("1e5"), None);
        assert_eq!(basis_points("30"), Some(3000));
        assert_eq!(basis_points("25,5"), Some(2550));
        assert_eq!(basis_points("12.25"), Some(1225));
        assert_eq!(basis_points("12.255"), None);
        assert_eq!(basis_points(""), None);
    }
}
