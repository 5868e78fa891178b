//! Dashboard response time with a million records on the district server.
//!
//! `cargo bench --bench dashboard` — fills a district database with `IKD_BENCH_RECORDS` synthetic
//! records (default 1,000,000; direct SQL in one transaction, folded into the aggregates as ingest
//! does), imports targets for every village, starts the real `ikd-field serve` on 127.0.0.1 and
//! times `GET /` (and a kecamatan page and the desa CSV) over HTTP, `IKD_BENCH_REQUESTS` times each
//! (default 30) after one warm-up request, each on a new connection (as a browser opening the
//! page) and on one kept-alive connection. The baseline is the same per-village and
//! per-device-day counts computed straight from the records table, without the aggregates. Also
//! measured: what keeping the aggregates costs one ingested batch of 500 records (`fold`).
//! Prints a table and rewrites the `dashboard` section of BENCHMARKS.md.
mod bench_util;
#[path = "../tests/util/mod.rs"]
mod util;
use bench_util::{Row, env_n};
use ikd_field::server::db::Db;
use ikd_field::server::fill::{self, Plan};
use ikd_field::server::store::Store;
use ikd_field::server::targets;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median and maximum of `n` timed calls of `f`.
fn timed(n: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut t: Vec<Duration> = (0..n.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed()
        })
        .collect();
    t.sort();
    (t[t.len() / 2], t[t.len() - 1])
}

fn new_db(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, rusqlite::Connection) {
    let db = dir.join(name);
    drop(Store::open(&db).unwrap());
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(Duration::from_secs(60)).unwrap();
    (db, conn)
}

fn main() {
    let n = env_n("IKD_BENCH_RECORDS", 1_000_000);
    let requests = env_n("IKD_BENCH_REQUESTS", 30);
    let tmp = tempfile::tempdir().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let plan = |records: usize, seed: u64| Plan {
        seed,
        regency: "1702".into(),
        records,
        devices: 50,
        days: 60,
        now,
    };
    let mut rows = Vec::new();

    // 1. The district database with n records.
    let (db, conn) = new_db(tmp.path(), "district.db");
    let t = Instant::now();
    let filled = fill::fill(&mut Db::sqlite(&conn), &plan(n, 1)).unwrap();
    let fill_time = t.elapsed();
    println!(
        "filled {} records ({} live, {} conflicts, {} voids) in {:.1} s",
        filled.records,
        filled.live,
        filled.conflicts,
        filled.voids,
        fill_time.as_secs_f64()
    );
    let csv = fill::targets_csv(1, "1702", Some(("202820", "30%")));
    let parsed = targets::parse(&csv, 3000).unwrap();
    targets::import(&mut Db::sqlite(&conn), &parsed, "bench").unwrap();

    // 2. The dashboard over HTTP from the real server.
    let server = util::server::Server::start_on_db(&db, "[server]\nthreads = 2\n");
    let url = server.url.clone();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    // A new agent per request: a new TCP connection each time.
    let get = |path: &str| -> usize {
        let fresh: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let r = fresh.get(format!("{url}{path}")).call().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r.into_body().read_to_vec().unwrap().len()
    };
    let get_kept = |path: &str| -> usize {
        let r = agent.get(format!("{url}{path}")).call().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r.into_body().read_to_vec().unwrap().len()
    };
    let first_ms = {
        let s = Instant::now();
        get("/");
        s.elapsed()
    };
    let mut size = 0;
    let (index_med, index_max) = timed(requests, || size = get("/"));
    let (kec_med, kec_max) = timed(requests, || {
        get("/kecamatan/170209");
    });
    let (csv_med, csv_max) = timed(requests, || {
        get("/laporan.csv?level=desa");
    });
    get_kept("/");
    let (kept_med, kept_max) = timed(requests, || {
        get_kept("/");
    });
    drop(server);

    // 3. Baseline: the same counts straight from the records (what the aggregates replace).
    let (raw_med, raw_max) = timed(5, || {
        let mut st = conn
            .prepare(
                "SELECT village, COUNT(*) FROM records WHERE kind = 'activation'
                 AND state = 'accepted' AND voided_by IS NULL GROUP BY village",
            )
            .unwrap();
        let v: Vec<(String, i64)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!v.is_empty());
        let mut st = conn
            .prepare(
                "SELECT device_id, substr(recorded_at, 1, 10), COUNT(*) FROM records
                 WHERE kind = 'activation' AND state = 'accepted' AND voided_by IS NULL
                 GROUP BY 1, 2",
            )
            .unwrap();
        let d: Vec<(String, String, i64)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(!d.is_empty());
    });
    drop(conn);

    rows.push(Row {
        what: format!(
            "`GET /` (whole dashboard, {} KB HTML), {} records, new connection each, median of {requests} (max {:.1} ms; first request {:.0} ms)",
            size / 1024,
            filled.records,
            ms(index_max),
            ms(first_ms)
        ),
        ours: format!("{:.1} ms", ms(index_med)),
        baseline: format!(
            "{:.0} ms (its counts from the records table, no aggregates; max {:.0} ms)",
            ms(raw_med),
            ms(raw_max)
        ),
        ratio: format!("{:.3}×", ms(index_med) / ms(raw_med)),
        target: "well under 1 s".into(),
        met: Some(index_max < Duration::from_millis(250)),
    });
    rows.push(Row {
        what: format!(
            "`GET /` again, on one kept-alive connection, median of {requests} (max {:.1} ms)",
            ms(kept_max)
        ),
        ours: format!("{:.1} ms", ms(kept_med)),
        baseline: "—".into(),
        ratio: "—".into(),
        target: "well under 1 s".into(),
        met: Some(kept_max < Duration::from_millis(250)),
    });
    rows.push(Row {
        what: format!(
            "`GET /kecamatan/170209`, median of {requests} (max {:.1} ms)",
            ms(kec_max)
        ),
        ours: format!("{:.1} ms", ms(kec_med)),
        baseline: "—".into(),
        ratio: "—".into(),
        target: "well under 1 s".into(),
        met: Some(kec_max < Duration::from_millis(250)),
    });
    rows.push(Row {
        what: format!(
            "`GET /laporan.csv?level=desa` (= `server report`), median of {requests} (max {:.1} ms)",
            ms(csv_max)
        ),
        ours: format!("{:.1} ms", ms(csv_med)),
        baseline: "—".into(),
        ratio: "—".into(),
        target: "well under 1 s".into(),
        met: Some(csv_max < Duration::from_millis(250)),
    });

    // 4. What keeping the aggregates costs ingest: `fold` over one batch of 500 records (the
    //    last 500 of the million, folded again inside a transaction that is rolled back).
    let mut conn = rusqlite::Connection::open(&db).unwrap();
    let (fold_med, fold_max) = timed(requests, || {
        let tx = conn.transaction().unwrap();
        let mut db = Db::sqlite(&tx);
        let last = ikd_field::server::coverage::watermark(&mut db).unwrap();
        ikd_field::server::coverage::fold(&mut db, last - 500).unwrap();
        tx.rollback().unwrap();
    });
    rows.push(Row {
        what: format!(
            "keeping the aggregates for one ingested batch of 500 records (`coverage::fold`, in the batch's transaction), {} records in the DB, median of {requests} (max {:.2} ms)",
            filled.records,
            ms(fold_max)
        ),
        ours: format!("{:.2} ms", ms(fold_med)),
        baseline: "—".into(),
        ratio: "—".into(),
        target: "—".into(),
        met: None,
    });

    let table = bench_util::table(&rows);
    println!("{table}");
    let body = format!(
        "### District dashboard\n\n\
         Measured {} on {} by `cargo bench --bench dashboard` (release build; \
         `IKD_BENCH_RECORDS={n}`, `IKD_BENCH_REQUESTS={requests}`). The database is filled by \
         direct SQL in one transaction ({:.1} s for {} records: 50 devices, 60 days, synthetic \
         citizens of Rejang Lebong, 1 in 200 a conflict, 1 in 100 voided) with targets for the \
         regency and its 156 villages; the pages come from the real `ikd-field serve` over \
         loopback HTTP. A page reads the targets table and the aggregates (`live_by_village`, \
         `live_by_device_hour`) that ingest keeps up to date batch by batch, never the records \
         themselves. The baseline is what the same counts cost when read from the records table \
         (5 runs).\n\n{table}",
        bench_util::today(),
        bench_util::machine(),
        fill_time.as_secs_f64(),
        filled.records
    );
    bench_util::write_section("dashboard", &body);
}
