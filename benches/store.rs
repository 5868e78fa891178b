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

/// Watches the one-writer-at-a-time lock of a PostgreSQL district database while a run goes on:
/// every 10 ms, whether a transaction holds the advisory lock and how many wait for it (from
/// `pg_locks`, this database only). Stop it to get (share of samples with the lock held, mean
/// sessions waiting).
struct LockWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(usize, usize, usize)>,
}

impl LockWatch {
    fn start(url: String) -> LockWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let q = c
                .prepare(
                    "SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted)
                     FROM pg_locks WHERE locktype = 'advisory'
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                )
                .unwrap();
            let (mut samples, mut held, mut waiting) = (0, 0, 0);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let row = c.query_one(&q, &[]).unwrap();
                let (h, w): (i64, i64) = (row.get(0), row.get(1));
                samples += 1;
                held += usize::from(h > 0);
                waiting += w as usize;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            (samples, held, waiting)
        });
        LockWatch { stop, thread }
    }

    fn stop(self) -> (f64, f64) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (samples, held, waiting) = self.thread.join().unwrap();
        let n = samples.max(1) as f64;
        (held as f64 / n, waiting as f64 / n)
    }
}

/// Median records/s of `reps` runs with `processes` servers (PostgreSQL when `pg`), and on
/// PostgreSQL the median run's lock figures ([`LockWatch`]).
fn rate(pg: bool, processes: usize, n: usize, reps: usize) -> (f64, Vec<f64>, Option<(f64, f64)>) {
    let mut rates = Vec::new();
    let mut locks = Vec::new();
    for rep in 0..reps {
        let mut run = || {
            let tmp = tempfile::tempdir().unwrap();
            let db = tmp.path().join("district.db");
            let servers: Vec<Server> = (0..processes)
                .map(|_| Server::start_on_db(&db, CONFIG))
                .collect();
            let batches = cut(&servers, n, 500 + rep as u64);
            let watch = match util::store::location(&db) {
                ikd_field::server::store::Location::Postgres(url) => Some(LockWatch::start(url)),
                _ => None,
            };
            let (stored, secs) = send_all(&servers, batches);
            if let Some((held, waiting)) = watch.map(LockWatch::stop) {
                println!(
                    "  writer lock held in {:.0} % of samples, {waiting:.2} sessions waiting on average",
                    held * 100.0
                );
                locks.push((stored as f64 / secs, held, waiting));
            }
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
    let median = sorted[sorted.len() / 2];
    let lock = locks.iter().find(|l| l.0 == median).map(|l| (l.1, l.2));
    (median, rates, lock)
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
    // The unavoidable work, in the same run: opening every record's seal on all cores.
    let b = bench_util::open_bound(n);
    let (bound, cores) = (b.rate, b.cores);
    println!(
        "bound: {n} sealed records opened in-process on {cores} cores at {bound:.0} rec/s ({:.0} by CPU time)",
        b.cpu_rate
    );
    for processes in [1usize, 2] {
        let (lite, lite_runs, _) = rate(false, processes, n, reps);
        let (pg, pg_runs, lock) = rate(true, processes, n, reps);
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
            ours: format!(
                "{pg:.0} rec/s on PostgreSQL (runs: {}; median run: the writer lock held in {:.0} % of 10 ms samples, {:.2} sessions waiting for it on average)",
                runs(&pg_runs),
                lock.map_or(0.0, |l| l.0 * 100.0),
                lock.map_or(0.0, |l| l.1)
            ),
            baseline: format!("{lite:.0} rec/s on SQLite (runs: {})", runs(&lite_runs)),
            ratio: format!("{:.2}×", pg / lite),
            target: if processes == 1 { "≥ 0.7×" } else { "—" }.into(),
            met: (processes == 1).then_some(pg / lite >= 0.7),
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
    for (store, rate) in [("SQLite", results[0].1), ("PostgreSQL", results[0].2)] {
        rows.push(Row {
            what: format!(
                "ingest on {store}, 1 process, against the bound: {n} sealed records opened in-process on all {cores} cores, nothing else (best of 3, same run)"
            ),
            ours: format!("{rate:.0} rec/s"),
            baseline: format!(
                "{bound:.0} rec/s (by CPU time, as on an idle machine: {:.0} rec/s)",
                b.cpu_rate
            ),
            ratio: format!("{:.2}×", rate / bound),
            target: "—".into(),
            met: None,
        });
    }
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
         0.13× SQLite). The lock figures of each PostgreSQL cell come from `pg_locks`, read          every 10 ms during the run (this database only): the share of samples in which a          transaction held the writer lock, and how many sessions waited for it. Held in nearly          every sample with one process, the lock — the one writer's transaction — is what          bounds ingest on PostgreSQL, and a second process can only add the work outside it;          what would lift it is in \"Ingest at the limit\" below. The bound rows are the          unavoidable work (opening every seal on all cores, in-process; see the sync          section).\n",
        bench_util::today(),
        bench_util::machine()
    );
    bench_util::write_section("store", &body);
}
