//! Packs the official kode wilayah tables (data/wilayah/*.csv, ODbL 1.0) into two compact gzip
//! blobs embedded in the binary: the small tables (provinces, regencies, kecamatan, legacy codes)
//! and the villages. Lines are `code<TAB>name` (legacy: `code<TAB>name<TAB>successor`); the parent
//! of a code is its prefix, so the parent columns are dropped.
use std::io::Write;
use std::path::Path;

/// The data rows of a CSV file (RFC 4180, header skipped), read with the `csv` crate so quoted
/// fields, embedded commas and `""` escapes are read as written.
fn rows(path: &Path) -> Vec<Vec<String>> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            r.iter().map(str::to_string).collect()
        })
        .collect()
}

fn gz(text: &str) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(text.as_bytes()).unwrap();
    enc.finish().unwrap()
}

/// `YYYY-MM-DD` of a count of days since 1970-01-01 (H. Hinnant's civil_from_days).
fn civil(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn main() {
    // The build's date (SOURCE_DATE_EPOCH for a reproducible build, else now): a laptop whose
    // clock says an earlier day is wrong, and `record` refuses to stamp records with it.
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    println!(
        "cargo:rustc-env=IKD_BUILD_DATE={}",
        civil(secs.div_euclid(86_400))
    );
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let dir = Path::new("data/wilayah");
    println!("cargo:rerun-if-changed=data/wilayah");
    let mut small = String::new();
    for (tag, file) in [
        ("P", "provinces.csv"),
        ("R", "regencies.csv"),
        ("D", "districts.csv"),
    ] {
        for r in rows(&dir.join(file)) {
            let name = r.last().unwrap();
            small.push_str(&format!("{tag}\t{}\t{}\n", r[0], name));
        }
    }
    for (tag, file) in [
        ("LR", "legacy_regencies.csv"),
        ("LD", "legacy_districts.csv"),
    ] {
        for r in rows(&dir.join(file)) {
            small.push_str(&format!("{tag}\t{}\t{}\t{}\n", r[0], r[2], r[5]));
        }
    }
    // Villages are packed per province (one gzip member each), so a look-up unpacks only the
    // province it needs; an index (province, offset, length) is generated as Rust source.
    // Within a province the codes are written as differences (a third smaller once gzipped):
    // `#KKCC` starts the villages of kecamatan PP.KK.CC, `SSSS<TAB>NAME` is village SSSS of
    // it, and `<TAB>NAME` is the village after the previous one (serial + 1). Decoded by
    // `domain::region::decode_villages`.
    let mut by_province: std::collections::BTreeMap<String, String> = Default::default();
    let mut last: Option<(String, u32)> = None;
    for r in rows(&dir.join("villages.csv")) {
        let code = &r[0];
        assert!(
            code.len() == 10 && code.bytes().all(|b| b.is_ascii_digit()),
            "village code {code}"
        );
        let (kecamatan, serial) = (&code[..6], code[6..].parse::<u32>().unwrap());
        let text = by_province.entry(code[..2].to_string()).or_default();
        match &last {
            Some((k, s)) if k == kecamatan && serial == s + 1 => {
                text.push_str(&format!("\t{}\n", r[2]));
            }
            Some((k, _)) if k == kecamatan => {
                text.push_str(&format!("{}\t{}\n", &code[6..], r[2]));
            }
            _ => {
                text.push_str(&format!("#{}\n{}\t{}\n", &kecamatan[2..], &code[6..], r[2]));
            }
        }
        last = Some((kecamatan.to_string(), serial));
    }
    let mut blob = Vec::new();
    let mut index = String::from(
        "/// (province code, offset, length) of each province's villages in the blob.\n",
    );
    index.push_str("const VILLAGE_PARTS: &[(&str, usize, usize)] = &[\n");
    for (prov, text) in &by_province {
        let part = gz(text);
        index.push_str(&format!(
            "    (\"{prov}\", {}, {}),\n",
            blob.len(),
            part.len()
        ));
        blob.extend(part);
    }
    index.push_str("];\n");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("wilayah_small.gz"), gz(&small)).unwrap();
    std::fs::write(out.join("wilayah_villages.bin"), blob).unwrap();
    std::fs::write(out.join("wilayah_villages_index.rs"), index).unwrap();
}
