//! Field-database benchmarks against the `sqlite3` CLI, and the release binary's size.
//!
//! `cargo bench --bench field` — prints a table of ratios and rewrites the `field` section of
//! BENCHMARKS.md. `IKD_BENCH_N` sets the bulk size (default 20,000), `IKD_BENCH_COLD` the number
//! of cold processes (default 40).
mod bench_util;
#[path = "../tests/util/mod.rs"]
mod util;
use bench_util::{Row, env_n};
use ikd_field::domain::validate;
use ikd_field::field::datadir::DataDir;
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::BIN;

fn sql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn main() {
    assert!(
        bench_util::have("sqlite3"),
        "the sqlite3 CLI is needed as the baseline"
    );
    let n = env_n("IKD_BENCH_N", 20_000);
    let cold = env_n("IKD_BENCH_COLD", 40);
    let tmp = tempfile::tempdir().unwrap();
    let today = ikd_field::timefmt::today(time::UtcOffset::from_hms(7, 0, 0).unwrap());
    let people = ikd_field::synth::citizens(5, "1702", n);
    let mut rows = Vec::new();

    // 1. Bulk insert: validate + store N records in one transaction, vs the sqlite3 CLI inserting
    //    the same rows (same schema, indexes and triggers, WAL, synchronous=FULL) in one transaction.
    let mut dd = DataDir::init(&tmp.path().join("ours"), "BENCH", "BENCH").unwrap();
    // The baseline database: a copy of a fresh field database, so the schema is identical.
    let base_dir = tmp.path().join("base");
    DataDir::init(&base_dir, "BENCH", "BENCH").unwrap();
    let t = Instant::now();
    let valid: Vec<_> = people
        .iter()
        .map(|p| validate::activation(p, today).unwrap())
        .collect();
    let stored = dd.store.record_activations(&valid, &dd.identity).unwrap();
    let ours = t.elapsed();
    assert!(stored.iter().all(|r| r.is_ok()));
    // The baseline inserts the rows exactly as stored: masked NIK, keyed NIK hash and sealed box
    // (the full NIK, phone and e-mail are only in the box), read back from our database.
    let mut sql = String::from("PRAGMA synchronous=FULL;\nBEGIN;\n");
    let stored_rows = stored_rows(&tmp.path().join("ours").join("field.db"));
    assert_eq!(stored_rows.len(), stored.len());
    for row in &stored_rows {
        writeln!(
            sql,
            "INSERT INTO records (id, seq, device_id, officer, team, recorded_at, kind, village, nik_masked, nik_tag, name, sealed, sealed_to, warnings) VALUES ({row});"
        )
        .unwrap();
    }
    sql.push_str("COMMIT;\n");
    let sql_path = tmp.path().join("bulk.sql");
    std::fs::write(&sql_path, &sql).unwrap();
    let t = Instant::now();
    let st = Command::new("sqlite3")
        .arg(base_dir.join("field.db"))
        .stdin(std::fs::File::open(&sql_path).unwrap())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    let base = t.elapsed();
    assert!(st.success());
    let (ours_rate, base_rate) = (n as f64 / ours.as_secs_f64(), n as f64 / base.as_secs_f64());
    rows.push(Row {
        what: format!("bulk insert, {n} records in one transaction (validate + store + audit)"),
        ours: format!("{ours_rate:.0} rec/s"),
        baseline: format!("{base_rate:.0} rec/s (`sqlite3` CLI, same rows and schema)"),
        ratio: format!("{:.2}×", ours_rate / base_rate),
        target: "≥ 0.5×".into(),
        met: Some(ours_rate / base_rate >= 0.5),
    });

    // 2. One cold `ikd-field record` process vs one `sqlite3` process inserting one row.
    let k = tmp.path().join("cold");
    let run = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("--data-dir")
            .arg(&k)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["init", "--officer", "BENCH", "--team", "BENCH"]);
    let print_flag = record_print_flag();
    let extra = ikd_field::synth::citizens(77, "1702", cold);
    let mut ours_total = Duration::ZERO;
    for p in &extra {
        let mut args = util::record_args(p);
        args.push("--no-prompt");
        args.extend(print_flag.iter().map(|s| s.as_str()));
        let t = Instant::now();
        run(&args);
        ours_total += t.elapsed();
    }
    let base_db = base_dir.join("field.db");
    let sealed_len = sealed_len(&tmp.path().join("ours").join("field.db"));
    let mut base_total = Duration::ZERO;
    for (i, p) in extra.iter().enumerate() {
        // A row as `record` stores it: masked NIK, a keyed hash and a sealed box of the same sizes.
        let stmt = format!(
            "PRAGMA synchronous=FULL; INSERT INTO records (id, seq, device_id, officer, team, recorded_at, kind, village, nik_masked, nik_tag, name, sealed, sealed_to, warnings) VALUES ('cold-{i}', {}, 'x', 'B', 'B', '2026-01-01T00:00:00.000Z', 'activation', {}, {}, randomblob(32), {}, randomblob({}), 'district:0123456789abcdef', '[]');",
            1_000_000 + i,
            sql_quote(&p.village),
            sql_quote(&format!("{}******{}", &p.nik[..6], &p.nik[12..])),
            sql_quote(&p.name),
            sealed_len,
        );
        let t = Instant::now();
        let st = Command::new("sqlite3")
            .arg(&base_db)
            .arg(&stmt)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        base_total += t.elapsed();
        assert!(st.success());
    }
    let (o, b) = (
        ours_total.as_secs_f64() * 1000.0 / cold as f64,
        base_total.as_secs_f64() * 1000.0 / cold as f64,
    );
    let what = if print_flag.is_empty() {
        "one cold `ikd-field record` process".to_string()
    } else {
        format!(
            "one cold `ikd-field record {}` process (record + PNG slip)",
            print_flag.join(" ")
        )
    };
    rows.push(Row {
        what: format!("{what}, mean of {cold}"),
        ours: format!("{o:.1} ms"),
        baseline: format!("{b:.1} ms (one `sqlite3` insert process)"),
        ratio: format!("{:.2}×", o / b),
        target: "≤ 3×".into(),
        met: Some(o / b <= 3.0),
    });

    // 7. Size of the release binary (stripped by the release profile).
    let size = std::fs::metadata(BIN).map(|m| m.len()).unwrap_or(0);
    rows.push(Row {
        what: "release binary size (LTO, opt-level s, stripped)".into(),
        ours: format!("{:.2} MB", size as f64 / 1e6),
        baseline: "—".into(),
        ratio: "—".into(),
        target: "≤ 8 MB".into(),
        met: Some(size as f64 <= 8e6),
    });

    // 8. Size of the field-only build (`cargo build --profile field --no-default-features`, which
    // scripts/bench.sh makes first): what the laptops carry.
    let field_only = concat!(env!("CARGO_MANIFEST_DIR"), "/target/field/ikd-field");
    if let Ok(m) = std::fs::metadata(field_only) {
        let size = m.len() as f64;
        rows.push(Row {
            what: "field-only binary size (no server, no photo reader; profile field: opt-level z, stripped)".into(),
            ours: format!("{:.2} MB", size / 1e6),
            baseline: "—".into(),
            ratio: "—".into(),
            target: "≤ 5 MB".into(),
            met: Some(size <= 5e6),
        });
    }

    let table = bench_util::table(&rows);
    println!("\n{table}");
    bench_util::write_section(
        "field",
        &format!(
            "### Field database and binary\n\nMeasured {} on {} by `cargo bench --bench field` (N = {n}).\n\n{table}",
            bench_util::today(),
            bench_util::machine()
        ),
    );
}

/// Every stored record as the SQL values of an INSERT (blobs as `X'…'`), in `seq` order.
fn stored_rows(db: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut st = conn
        .prepare(
            "SELECT quote(id) || ', ' || seq || ', ' || quote(device_id) || ', ' || quote(officer)
                    || ', ' || quote(team) || ', ' || quote(recorded_at) || ', ' || quote(kind)
                    || ', ' || quote(village) || ', ' || quote(nik_masked) || ', '
                    || quote(nik_tag) || ', ' || quote(name) || ', ' || quote(sealed) || ', '
                    || quote(sealed_to) || ', ' || quote(warnings)
             FROM records ORDER BY seq",
        )
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// The mean size of a stored sealed box.
fn sealed_len(db: &std::path::Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT CAST(avg(length(sealed)) AS INTEGER) FROM records",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// `--print --format png` once `record --print` exists, so the cold run includes the PNG slip.
fn record_print_flag() -> Vec<String> {
    let help = Command::new(BIN)
        .args(["record", "--help"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&help.stdout).contains("--print") {
        vec!["--print".into()]
    } else {
        vec![]
    }
}
