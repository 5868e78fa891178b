//! Embedded kode wilayah Kemendagri (Kepmendagri 300.2.2-2138/2025) and look-ups by code and name.
//!
//! The tables are packed by `build.rs` into two gzip blobs; each is unpacked on first use. Data:
//! "Indonesian area data from idn-area-data by Fityan, ODbL 1.0" (see `data/wilayah/README.md`).
use std::io::Read;
use std::sync::OnceLock;

static SMALL_GZ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/wilayah_small.gz"));
static VILLAGES_BIN: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/wilayah_villages.bin"));
include!(concat!(env!("OUT_DIR"), "/wilayah_villages_index.rs"));

/// Level of a region code, by its number of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Provinsi,
    Kabupaten,
    Kecamatan,
    Desa,
}

impl Level {
    pub fn of_code(code: &str) -> Option<Level> {
        match code.len() {
            2 => Some(Level::Provinsi),
            4 => Some(Level::Kabupaten),
            6 => Some(Level::Kecamatan),
            10 => Some(Level::Desa),
            _ => None,
        }
    }
}

/// One region: its code (plain digits) and official name (upper case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub code: String,
    pub name: String,
}

/// A code retired by a split, with the current code of the same unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Legacy {
    pub code: String,
    pub name: String,
    pub successor: String,
}

struct Table {
    /// Sorted by code.
    rows: Vec<Region>,
}

impl Table {
    fn get(&self, code: &str) -> Option<&Region> {
        self.rows
            .binary_search_by(|r| r.code.as_str().cmp(code))
            .ok()
            .map(|i| &self.rows[i])
    }
    /// Rows whose code starts with `prefix` (they are contiguous because rows are sorted).
    fn children(&self, prefix: &str) -> &[Region] {
        let start = self.rows.partition_point(|r| r.code.as_str() < prefix);
        let end = start
            + self.rows[start..]
                .iter()
                .take_while(|r| r.code.starts_with(prefix))
                .count();
        &self.rows[start..end]
    }
}

struct Small {
    provinces: Table,
    regencies: Table,
    districts: Table,
    legacy_regencies: Vec<Legacy>,
    legacy_districts: Vec<Legacy>,
}

fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut s)
        .expect("embedded region table is valid gzip");
    s
}

fn small() -> &'static Small {
    static S: OnceLock<Small> = OnceLock::new();
    S.get_or_init(|| {
        let text = gunzip(SMALL_GZ);
        let (mut p, mut r, mut d, mut lr, mut ld) = (vec![], vec![], vec![], vec![], vec![]);
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            let region = || Region {
                code: f[1].to_string(),
                name: f[2].to_string(),
            };
            let legacy = || Legacy {
                code: f[1].to_string(),
                name: f[2].to_string(),
                successor: f[3].to_string(),
            };
            match f[0] {
                "P" => p.push(region()),
                "R" => r.push(region()),
                "D" => d.push(region()),
                "LR" => lr.push(legacy()),
                "LD" => ld.push(legacy()),
                _ => {}
            }
        }
        Small {
            provinces: Table { rows: p },
            regencies: Table { rows: r },
            districts: Table { rows: d },
            legacy_regencies: lr,
            legacy_districts: ld,
        }
    })
}

/// The villages of one province (unpacked on first use), or an empty table.
fn villages_of(province: &str) -> &'static Table {
    static PARTS: [OnceLock<Table>; 100] = [const { OnceLock::new() }; 100];
    static EMPTY: Table = Table { rows: Vec::new() };
    let Some(i) = VILLAGE_PARTS.iter().position(|(p, _, _)| *p == province) else {
        return &EMPTY;
    };
    PARTS[i].get_or_init(|| {
        let (_, start, len) = VILLAGE_PARTS[i];
        let text = gunzip(&VILLAGES_BIN[start..start + len]);
        Table {
            rows: decode_villages(province, &text),
        }
    })
}

/// The villages of `province` from their packed text (see build.rs): `#KKCC` starts a
/// kecamatan, `SSSS<TAB>NAME` is a village of it, `<TAB>NAME` the village after the previous.
fn decode_villages(province: &str, text: &str) -> Vec<Region> {
    let mut rows = Vec::new();
    let mut kecamatan = String::new();
    let mut serial = 0u32;
    for line in text.lines() {
        if let Some(k) = line.strip_prefix('#') {
            kecamatan = format!("{province}{k}");
            continue;
        }
        let Some((s, name)) = line.split_once('\t') else {
            continue;
        };
        serial = if s.is_empty() {
            serial + 1
        } else {
            s.parse().unwrap_or(0)
        };
        rows.push(Region {
            code: format!("{kecamatan}{serial:04}"),
            name: name.to_string(),
        });
    }
    rows
}

/// Every province's village table (unpacks them all: for name search).
fn all_villages() -> impl Iterator<Item = &'static Table> {
    VILLAGE_PARTS.iter().map(|(p, _, _)| villages_of(p))
}

/// Removes the dots of a written code (`21.71.01.1002` → `2171011002`) and surrounding space.
pub fn normalize_code(input: &str) -> String {
    input
        .trim()
        .chars()
        .filter(|c| !matches!(c, '.' | ' ' | '-'))
        .collect()
}

/// Writes a code with dots, as on official documents: `21.71.01.1002`.
pub fn dotted(code: &str) -> String {
    let cuts = [2, 4, 6];
    let mut out = String::new();
    for (i, ch) in code.chars().enumerate() {
        if cuts.contains(&i) {
            out.push('.');
        }
        out.push(ch);
    }
    out
}

pub fn province(code: &str) -> Option<&'static Region> {
    small().provinces.get(code)
}
pub fn regency(code: &str) -> Option<&'static Region> {
    small().regencies.get(code)
}
pub fn district(code: &str) -> Option<&'static Region> {
    small().districts.get(code)
}
pub fn village(code: &str) -> Option<&'static Region> {
    villages_of(code.get(..2)?).get(code)
}
pub fn legacy_regency(code: &str) -> Option<&'static Legacy> {
    small().legacy_regencies.iter().find(|l| l.code == code)
}
pub fn legacy_district(code: &str) -> Option<&'static Legacy> {
    small().legacy_districts.iter().find(|l| l.code == code)
}

/// Any code of any level.
pub fn lookup(code: &str) -> Option<&'static Region> {
    match Level::of_code(code)? {
        Level::Provinsi => province(code),
        Level::Kabupaten => regency(code),
        Level::Kecamatan => district(code),
        Level::Desa => village(code),
    }
}

/// Direct children of a code (`""` gives the provinces).
pub fn children(code: &str) -> &'static [Region] {
    match code.len() {
        0 => &small().provinces.rows,
        2 => small().regencies.children(code),
        4 => small().districts.children(code),
        6 => villages_of(&code[..2]).children(code),
        _ => &[],
    }
}

/// The chain from province down to `code` (inclusive), for codes that exist.
pub fn path(code: &str) -> Vec<&'static Region> {
    [2, 4, 6, 10]
        .iter()
        .filter(|&&n| n <= code.len())
        .filter_map(|&n| lookup(&code[..n]))
        .collect()
}

/// Kind of a village from its code: the first of the last four digits.
pub fn village_kind(code: &str) -> &'static str {
    match code.as_bytes().get(6) {
        Some(b'1') => "kelurahan",
        Some(b'3') => "desa adat",
        _ => "desa",
    }
}

/// A hit of a name search.
#[derive(Debug, Clone)]
pub struct Hit {
    pub region: &'static Region,
    pub level: Level,
}

/// Finds regions whose name contains every word of `query` (case-insensitive), villages and
/// kecamatan first by closeness: an exact name first, then names that start with the query.
pub fn search(query: &str, limit: usize) -> Vec<Hit> {
    let q = query.trim().to_uppercase();
    let words: Vec<&str> = q.split_whitespace().collect();
    if words.is_empty() {
        return vec![];
    }
    let matches = |name: &str| words.iter().all(|w| name.contains(w));
    let mut hits: Vec<(u8, Hit)> = Vec::new();
    let s = small();
    let levels = all_villages().map(|t| (&t.rows[..], Level::Desa)).chain([
        (&s.districts.rows[..], Level::Kecamatan),
        (&s.regencies.rows[..], Level::Kabupaten),
        (&s.provinces.rows[..], Level::Provinsi),
    ]);
    for (rows, level) in levels {
        for r in rows.iter().filter(|r| matches(&r.name)) {
            let rank = if r.name == q {
                0
            } else if r.name.starts_with(&q) {
                1
            } else {
                2
            };
            hits.push((rank, Hit { region: r, level }));
        }
    }
    hits.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.region.code.cmp(&b.1.region.code)));
    hits.into_iter().take(limit).map(|(_, h)| h).collect()
}

/// Table sizes, for `wilayah` summaries and tests.
pub fn counts() -> [usize; 4] {
    let s = small();
    [
        s.provinces.rows.len(),
        s.regencies.rows.len(),
        s.districts.rows.len(),
        all_villages().map(|t| t.rows.len()).sum(),
    ]
}

/// A region's names from village up, for people: `KOTA PADANG, Kec. KOTA PADANG, KAB. …`.
pub fn place(village: &str) -> String {
    let names: Vec<String> = path(village)
        .iter()
        .rev()
        .take(3)
        .enumerate()
        .map(|(i, r)| match i {
            0 => format!("{} {}", village_kind(village).to_uppercase(), r.name),
            1 => format!("KEC. {}", r.name),
            _ => r.name.clone(),
        })
        .collect();
    if names.is_empty() {
        village.to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_villages_decode_to_their_codes() {
        let text = "#0101\n2001\tSATU\n\tDUA\n2015\tLIMA BELAS\n#0102\n1001\tKOTA\n";
        let got: Vec<(String, String)> = decode_villages("11", text)
            .into_iter()
            .map(|r| (r.code, r.name))
            .collect();
        let want = [
            ("1101012001", "SATU"),
            ("1101012002", "DUA"),
            ("1101012015", "LIMA BELAS"),
            ("1101021001", "KOTA"),
        ];
        assert_eq!(
            got,
            want.map(|(c, n)| (c.to_string(), n.to_string())).to_vec()
        );
        // The embedded table has every village of the official list.
        assert_eq!(all_villages().map(|t| t.rows.len()).sum::<usize>(), 83_762);
    }

    #[test]
    fn full_tables_are_embedded() {
        assert_eq!(counts(), [38, 514, 7285, 83762]);
        assert_eq!(small().legacy_regencies.len(), 26);
        assert_eq!(small().legacy_districts.len(), 594);
    }

    #[test]
    fn lookups_by_code() {
        assert_eq!(province("21").unwrap().name, "KEPULAUAN RIAU");
        assert_eq!(regency("2171").unwrap().name, "KOTA BATAM");
        assert_eq!(district("217101").unwrap().name, "BELAKANG PADANG");
        assert_eq!(village("2171011002").unwrap().name, "PEMPING");
        assert_eq!(village("1207281007").unwrap().name, "LUBUK PAKAM I,II");
        assert!(village("2171019999").is_none());
        assert_eq!(legacy_regency("9101").unwrap().successor, "9301");
        assert_eq!(legacy_district("910101").unwrap().successor, "930101");
    }

    #[test]
    fn codes_with_dots_and_paths() {
        assert_eq!(normalize_code(" 21.71.01.1002 "), "2171011002");
        assert_eq!(dotted("2171011002"), "21.71.01.1002");
        let p: Vec<_> = path("2171011002").iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            p,
            ["KEPULAUAN RIAU", "KOTA BATAM", "BELAKANG PADANG", "PEMPING"]
        );
        assert_eq!(village_kind("2171011002"), "kelurahan");
        assert!(children("1702").iter().all(|d| d.code.starts_with("1702")));
        assert_eq!(children("").len(), 38);
    }

    #[test]
    fn search_by_name() {
        let hits = search("pemping", 10);
        assert!(hits.iter().any(|h| h.region.code == "2171011002"));
        let hits = search("rejang lebong", 5);
        assert_eq!(hits[0].region.code, "1702");
        assert!(search("   ", 5).is_empty());
    }
}
