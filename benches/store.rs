//! District store benchmark: ingest on PostgreSQL against SQLite, with one and with two `serve`
//! processes on the same database (release binary, real processes on 127.0.0.1).
//!
//! `cargo bench --bench store` — needs `IKD_TEST_POSTGRES` (`eval "$(scripts/postgres.sh)"`;
//! `scripts/bench.sh` does it). Signed gzip batches of 500 records from 16 devices are cut
//! beforehand (`IKD_BENCH_STORE_N` records, default 40,000; `IKD_BENCH_STORE_REPS` runs per
//! setting, default 3, the median is reported), then 16 client threads send them all at once, each
//! batch to one of the servers in turn; the time runs from the first request to the last answer
//! (server verify + validate + commit + signed answer; no client database). Each run starts on a
//! fresh, empty database. Prints a table and rewrites the `store` section of BENCHMARKS.md.
mod bench_util;
#[path = "../tests/util/mod.rs"]
mod util;
use bench_util::{Row, env_n};
use std::time::Instant;
use util::server::{Server, SignedBatch, TestDevice};

const DEVICES: usize = 16;
const PER_BATCH: usize = 500;
const CONFIG: &str = "[server]\nthreads = 8\nmax_batch_records = 5000\n";

/// Enrols the devices on `servers[0]` and cuts their batches of these citizens.
fn cut(servers: &[Server], n: usize, seed: u64) -> Vec<Vec<SignedBatch>> {
    let people = ikd_field::synth::citizens(seed, "1702", n);
    let per = n / DEVICES;
    (0..DEVICES)
        .map(|i| {
            let mut d = TestDevice::enrolled(&servers[0]);
            people[i * per..(i + 1) * per]
                .chunks(PER_BATCH)
                .map(|c| {
                    let recs: Vec<_> = c.iter().map(|p| d.record(p)).collect();
                    d.batch(&recs)
                })
                .collect()
        })
        .collect()
}

/// Sends every device's batches from its own thread, batch j of device i to server (i + j) mod
/// the number of servers; returns (records answered, seconds).
fn send_all(servers: &[Server], batches: Vec<Vec<SignedBatch>>) -> (usize, f64) {
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    let key = servers[0].public_key();
    let start = std::sync::Arc::new(std::sync::Barrier::new(batches.len() + 1));
    let threads: Vec<_> = batches
        .into_iter()
        .enumerate()
        .map(|(i, mine)| {
            let (urls, start) = (urls.clone(), std::sync::Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                let mut n = 0;
                for (j, b) in mine.iter().enumerate() {
                    let r = b
                        .send(&urls[(i + j) % urls.len()])
                        .expect("server reachable");
                    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                    assert!(r.signed_by(&key));
                    let a = r.json();
                    n += a["summary"]["accepted"].as_u64().unwrap() as usize
                        + a["summary"]["conflict"].as_u64().unwrap() as usize;
                }
                n
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    let n = threads.into_iter().map(|t| t.join().unwrap()).sum();
    (n, t.elapsed().as_secs_f64())
}

/// Median records/s of `reps` runs with `processes` servers (PostgreSQL when `pg`).
fn rate(pg: bool, processes: usize, n: usize, reps: usize) -> (f64, Vec<f64>) {
    let mut rates = Vec::new();
    for rep in 0..reps {
        let mut run = || {
            let tmp = tempfile::tempdir().unwrap();
            let db = tmp.path().join("district.db");
            let servers: Vec<Server> = (0..processes)
                .map(|_| Server::start_on_db(&db, CONFIG))
                .collect();
            let batches = cut(&servers, n, 500 + rep as u64);
            let (stored, secs) = send_all(&servers, batches);
            assert_eq!(servers[0].stats()["records"].as_u64(), Some(stored as u64));
            let r = stored as f64 / secs;
            println!(
                "{} × {processes}: {stored} records in {secs:.2} s = {r:.0} rec/s",
                if pg { "PostgreSQL" } else { "SQLite" }
            );
            rates.push(r);
        };
        if pg {
            util::store::on_postgres("bench store", run);
        } else {
            run();
        }
    }
    let mut sorted = rates.clone();
    sorted.sort_by(f64::total_cmp);
    (sorted[sorted.len() / 2], rates)
}

fn main() {
    assert!(
        std::env::var(ikd_field::server::pgtest::ENV).is_ok_and(|v| !v.is_empty()),
        "set {} first: eval \"$(scripts/postgres.sh)\" (scripts/bench.sh does it)",
        ikd_field::server::pgtest::ENV
    );
    let n = env_n("IKD_BENCH_STORE_N", 40_000) / (DEVICES * PER_BATCH) * (DEVICES * PER_BATCH);
    let reps = env_n("IKD_BENCH_STORE_REPS", 3).max(1);
    let pg_version = std::process::Command::new("psql")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "PostgreSQL".into());
    let mut rows = Vec::new();
    let mut results = Vec::new();
    for processes in [1usize, 2] {
        let (lite, lite_runs) = rate(false, processes, n, reps);
        let (pg, pg_runs) = rate(true, processes, n, reps);
        let runs = |v: &[f64]| {
            v.iter()
                .map(|r| format!("{r:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        rows.push(Row {
            what: format!(
                "ingest, {n} records in batches of {PER_BATCH} from {DEVICES} devices at once, {processes} `serve` process{} on one database; median of {reps} runs",
                if processes == 1 { "" } else { "es" }
            ),
            ours: format!("{pg:.0} rec/s on PostgreSQL (runs: {})", runs(&pg_runs)),
            baseline: format!("{lite:.0} rec/s on SQLite (runs: {})", runs(&lite_runs)),
            ratio: format!("{:.2}×", pg / lite),
            target: "—".into(),
            met: None,
        });
        results.push((processes, lite, pg));
    }
    rows.push(Row {
        what: "2 processes against 1, same database".into(),
        ours: format!("{:.2}× on PostgreSQL", results[1].2 / results[0].2),
        baseline: format!("{:.2}× on SQLite", results[1].1 / results[0].1),
        ratio: "—".into(),
        target: "—".into(),
        met: None,
    });
    let table = bench_util::table(&rows);
    println!("{table}");
    let body = format!(
        "### District store: PostgreSQL against SQLite\n\n\
         Measured {} on {} by `cargo bench --bench store` (release binary, real `serve` processes; \
         {pg_version} from the distribution's packages, default settings, on the same machine, \
         started by `scripts/postgres.sh`; SQLite WAL, `synchronous=FULL`, on the same disk).\n\n\
         {table}\n\
         Each server has 8 workers; the 16 devices send at once, each batch to the next server in \
         turn. Only the server's work is timed: the batches are cut and signed beforehand. On both \
         databases one write transaction runs at a time (SQLite's single writer; on PostgreSQL a \
         transaction-scoped advisory lock, so that NIK conflicts, the dashboard's aggregates and \
         `rowid` order are decided as on SQLite): a second process adds workers for the parts \
         outside the transaction (HTTP, gunzip, signature check, opening the seals, JSON \
         parsing, validation), not a second writer. Inside it, a batch costs a fixed dozen \
         statements whatever its size — its ids and NIKs read in two (`server/known.rs`), its \
         new records written in one `COPY` on PostgreSQL (one prepared INSERT per row on \
         SQLite, a function call each), the dashboard fold, the journalled answer — each a \
         round trip to PostgreSQL (before 2026-11-23 ingest made 3 statements per record, \
         0.13× SQLite).\n",
        bench_util::today(),
        bench_util::machine()
    );
    bench_util::write_section("store", &body);
}
