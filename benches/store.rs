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
//!
//! Issue #14 item 3 (two processes on one PostgreSQL database faster than one, on a machine with
//! more cores than this one) is simulated in the same run: each `serve` process in its own cgroup
//! v1 CPU quota (`/sys/fs/cgroup/cpu/ikd-bench-<pid>/`, `IKD_BENCH_STORE_CPU` CPUs each, default
//! 0.4, period `IKD_BENCH_STORE_CPU_PERIOD_US`, default 100,000 µs), PostgreSQL and the client
//! threads not limited, 1 process against 2. Needs root and the v1 cpu controller; without them
//! a note is printed and those rows are left out. `IKD_BENCH_STORE_ONLY=cpu` runs only those
//! rows (no bound, no unlimited rows), prints them and leaves BENCHMARKS.md alone;
//! `IKD_BENCH_STORE_ONLY=one` runs only the 1-process rates on both stores (for trying a change;
//! BENCHMARKS.md left alone).
mod bench_util;
#[path = "../tests/util/mod.rs"]
mod util;
use bench_util::{Row, env_n};
use std::path::{Path, PathBuf};
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

/// Watches the writer lock of a PostgreSQL district database while a run goes on: every 10 ms,
/// how many transactions hold it (batches take it shared and write side by side; other writes
/// alone) and how many wait for it (from `pg_locks`, this database only). Stop it to get (mean
/// transactions holding it, mean sessions waiting).
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
                     AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1
                     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                )
                .unwrap();
            let key = ikd_field::server::db::WRITER_LOCK;
            let (high, low) = (key >> 32, key & 0xffff_ffff);
            let (mut samples, mut held, mut waiting) = (0, 0, 0);
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let row = c.query_one(&q, &[&high, &low]).unwrap();
                let (h, w): (i64, i64) = (row.get(0), row.get(1));
                samples += 1;
                held += h as usize;
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

/// The cgroup v1 CPU controller's root, under which each limited `serve` gets its own group.
const CGROUP_CPU: &str = "/sys/fs/cgroup/cpu";

/// A CPU quota for `serve` processes: `quota_us` of CPU time in every `period_us` (so
/// `quota_us / period_us` CPUs), the same for each process, each in its own group.
#[derive(Clone, Copy)]
struct Cpu {
    quota_us: u64,
    period_us: u64,
}

impl Cpu {
    fn cpus(self) -> f64 {
        self.quota_us as f64 / self.period_us as f64
    }
}

/// One process in its own cgroup v1 CPU group, `/sys/fs/cgroup/cpu/ikd-bench-<pid>/`, limited to
/// [`Cpu`]; the group is removed on drop (once the process has exited: drop it after the process).
struct CpuLimit {
    dir: PathBuf,
}

impl CpuLimit {
    /// Makes the group, sets its period and quota, and moves the process (all its threads) in.
    fn apply(pid: u32, cpu: Cpu) -> std::io::Result<CpuLimit> {
        let dir = Path::new(CGROUP_CPU).join(format!("ikd-bench-{pid}"));
        std::fs::create_dir(&dir)?;
        // From here on, dropping it removes the group (whatever step below fails).
        let limit = CpuLimit { dir };
        std::fs::write(
            limit.dir.join("cpu.cfs_period_us"),
            cpu.period_us.to_string(),
        )?;
        std::fs::write(limit.dir.join("cpu.cfs_quota_us"), cpu.quota_us.to_string())?;
        std::fs::write(limit.dir.join("cgroup.procs"), pid.to_string())?;
        Ok(limit)
    }

    /// `nr_periods` and `nr_throttled` of the group's `cpu.stat` so far: periods in which it ran,
    /// and those in which it spent its quota and was stopped until the next.
    fn periods(&self) -> (u64, u64) {
        let stat = std::fs::read_to_string(self.dir.join("cpu.stat")).unwrap_or_default();
        let field = |name: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or(0)
        };
        (field("nr_periods "), field("nr_throttled "))
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        // The kernel may take a moment to let go of an exited process's group.
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}

/// `None` when `serve` processes can be limited with [`CpuLimit`] here (tried on a short-lived
/// `sleep`), else why not.
fn cgroup_unavailable(cpu: Cpu) -> Option<String> {
    if !Path::new(CGROUP_CPU).join("cpu.cfs_quota_us").exists() {
        return Some(format!("no cgroup v1 cpu controller at {CGROUP_CPU}"));
    }
    let mut child = match std::process::Command::new("sleep").arg("30").spawn() {
        Ok(c) => c,
        Err(e) => return Some(format!("cannot start `sleep` to try it: {e}")),
    };
    let limit = CpuLimit::apply(child.id(), cpu);
    let _ = child.kill();
    let _ = child.wait();
    match limit {
        Ok(limit) => {
            drop(limit);
            None
        }
        Err(e) => Some(format!("cannot make a cgroup under {CGROUP_CPU}: {e}")),
    }
}

/// What [`rate`] measured: the median records/s of the runs, every run's rate, and the median
/// run's writer-lock figures on PostgreSQL ([`LockWatch`]) and, with CPU-limited servers, the
/// share of their CPU periods in which they spent the quota and were stopped.
struct Measured {
    median: f64,
    runs: Vec<f64>,
    lock: Option<(f64, f64)>,
    throttled: Option<f64>,
}

/// `reps` runs with `processes` servers (PostgreSQL when `pg`), each server limited to `cpu`
/// when given.
fn rate(pg: bool, processes: usize, n: usize, reps: usize, cpu: Option<Cpu>) -> Measured {
    let mut rates = Vec::new();
    let mut locks = Vec::new();
    for rep in 0..reps {
        let mut run = || {
            let tmp = tempfile::tempdir().unwrap();
            let db = tmp.path().join("district.db");
            // Declared before the servers so that, dropped in reverse order even on a panic,
            // the groups go after the processes in them.
            let mut limits = Vec::new();
            let servers: Vec<Server> = (0..processes)
                .map(|_| Server::start_on_db(&db, CONFIG))
                .collect();
            if let Some(cpu) = cpu {
                for s in &servers {
                    let pid = s.pid().expect("server running");
                    limits.push(CpuLimit::apply(pid, cpu).unwrap_or_else(|e| {
                        panic!("cgroup for serve {pid} under {CGROUP_CPU}: {e}")
                    }));
                }
            }
            let batches = cut(&servers, n, 500 + rep as u64);
            let watch = match util::store::location(&db) {
                ikd_field::server::store::Location::Postgres(url) => Some(LockWatch::start(url)),
                _ => None,
            };
            let periods = |limits: &[CpuLimit]| {
                limits
                    .iter()
                    .map(CpuLimit::periods)
                    .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
            };
            let before = periods(&limits);
            let (stored, secs) = send_all(&servers, batches);
            let after = periods(&limits);
            let throttled = (!limits.is_empty())
                .then(|| (after.1 - before.1) as f64 / (after.0 - before.0).max(1) as f64);
            let r = stored as f64 / secs;
            if let Some((held, waiting)) = watch.map(LockWatch::stop) {
                println!(
                    "  on average {held:.2} transactions writing at once, {waiting:.2} sessions waiting"
                );
                locks.push((r, held, waiting, throttled));
            }
            if let Some(t) = throttled {
                println!("  serve throttled in {:.0} % of its CPU periods", t * 100.0);
            }
            assert_eq!(servers[0].stats()["records"].as_u64(), Some(stored as u64));
            println!(
                "{} × {processes}{}: {stored} records in {secs:.2} s = {r:.0} rec/s",
                if pg { "PostgreSQL" } else { "SQLite" },
                cpu.map_or(String::new(), |c| format!(" ({:.2} CPU each)", c.cpus()))
            );
            rates.push(r);
            drop(servers);
            drop(limits);
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
    let at_median = locks.iter().find(|l| l.0 == median);
    Measured {
        median,
        runs: rates,
        lock: at_median.map(|l| (l.1, l.2)),
        throttled: at_median.and_then(|l| l.3),
    }
}

/// The runs' rates as the table gives them: "6951, 6888, 5644".
fn runs(v: &[f64]) -> String {
    v.iter()
        .map(|r| format!("{r:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "ingest, N records … P `serve` process(es) on one database"
fn setting(n: usize, processes: usize) -> String {
    format!(
        "ingest, {n} records in batches of {PER_BATCH} from {DEVICES} devices at once, {processes} `serve` process{} on one database",
        if processes == 1 { "" } else { "es" }
    )
}

/// The rows of 1 against 2 CPU-limited `serve` processes on one PostgreSQL database (issue #14
/// item 3 on a machine with more cores, simulated), and the sentence of the section saying how.
fn cpu_limited_rows(n: usize, reps: usize, cpu: Cpu) -> (Vec<Row>, String) {
    if let Some(why) = cgroup_unavailable(cpu) {
        println!("note: CPU-limited rows skipped: {why} (they need root and cgroup v1)");
        return (
            Vec::new(),
            format!(
                " The CPU-limited rows (each `serve` in its own cgroup v1 CPU quota) were not \
                 measured in this run: {why}."
            ),
        );
    }
    let (one, two) = (
        rate(true, 1, n, reps, Some(cpu)),
        rate(true, 2, n, reps, Some(cpu)),
    );
    let q = cpu.cpus();
    let mut rows = Vec::new();
    for (processes, m) in [(1usize, &one), (2, &two)] {
        rows.push(Row {
            what: format!(
                "{}, PostgreSQL, serve processes each limited to {q:.2} CPU (cgroup v1 cpu quota); median of {reps} runs",
                setting(n, processes)
            ),
            ours: format!(
                "{:.0} rec/s on PostgreSQL (runs: {}; median run: on average {:.2} transactions writing at once and {:.2} sessions waiting, in 10 ms samples; serve throttled in {:.0} % of its CPU periods)",
                m.median,
                runs(&m.runs),
                m.lock.map_or(0.0, |l| l.0),
                m.lock.map_or(0.0, |l| l.1),
                m.throttled.map_or(0.0, |t| t * 100.0)
            ),
            baseline: "—".into(),
            ratio: "—".into(),
            target: "—".into(),
            met: None,
        });
    }
    let ratio = two.median / one.median;
    rows.push(Row {
        what: "2 processes against 1 (CPU-limited serve), same PostgreSQL database".into(),
        ours: format!("{:.0} rec/s with 2", two.median),
        baseline: format!("{:.0} rec/s with 1", one.median),
        ratio: format!("{ratio:.2}×"),
        target: "> 1.3×".into(),
        met: Some(ratio > 1.3),
    });
    let text = format!(
        " The CPU-limited rows stand for a machine with more cores than this one (issue #14 \
         item 3), simulated: each `serve` process is put, once started, in its own cgroup v1 \
         CPU group (`/sys/fs/cgroup/cpu/ikd-bench-<pid>/`, `cpu.cfs_quota_us` = {}, \
         `cpu.cfs_period_us` = {}: {q:.2} CPU each, `IKD_BENCH_STORE_CPU`), while PostgreSQL \
         and the 16 client threads are not limited. Two processes then use at most {:.2} of \
         the 2 cores, leaving PostgreSQL the rest, so a second process brings a second \
         machine's worth of `serve` CPU and the ratio shows whether that adds throughput. The share of CPU periods in which the `serve` processes \
         spent their quota and were stopped comes from each group's `cpu.stat`; near 100 % \
         means `serve`'s CPU is the limit. One artefact of the simulation: a process that \
         spends its quota is stopped until the next period even inside a transaction, which a \
         real core would not do; with one writer at a time (before issue #14) a second process \
         then shortened each transaction too, so the ratio showed the writer lock only where \
         one process was seldom throttled (a larger `IKD_BENCH_STORE_CPU`). Batches cut as for the rows above, a fresh database per run; \
         `IKD_BENCH_STORE_ONLY=cpu` runs only these rows.",
        cpu.quota_us,
        cpu.period_us,
        2.0 * q
    );
    (rows, text)
}

fn main() {
    assert!(
        std::env::var(ikd_field::server::pgtest::ENV).is_ok_and(|v| !v.is_empty()),
        "set {} first: eval \"$(scripts/postgres.sh)\" (scripts/bench.sh does it)",
        ikd_field::server::pgtest::ENV
    );
    let n = env_n("IKD_BENCH_STORE_N", 40_000) / (DEVICES * PER_BATCH) * (DEVICES * PER_BATCH);
    let reps = env_n("IKD_BENCH_STORE_REPS", 3).max(1);
    let cpus: f64 = std::env::var("IKD_BENCH_STORE_CPU")
        .ok()
        .filter(|v| !v.is_empty())
        .map_or(0.4, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("IKD_BENCH_STORE_CPU={v:?}: CPUs, e.g. 0.4"))
        });
    let period_us = env_n("IKD_BENCH_STORE_CPU_PERIOD_US", 100_000).clamp(1_000, 1_000_000) as u64;
    // The kernel takes no quota under 1 ms.
    let cpu = Cpu {
        quota_us: ((cpus * period_us as f64).round() as u64).max(1_000),
        period_us,
    };
    let only = std::env::var("IKD_BENCH_STORE_ONLY").unwrap_or_default();
    if only == "one" {
        let lite = rate(false, 1, n, reps, None).median;
        let pg = rate(true, 1, n, reps, None).median;
        println!(
            "1 process: {pg:.0} rec/s on PostgreSQL, {lite:.0} rec/s on SQLite: {:.2}×",
            pg / lite
        );
        println!("IKD_BENCH_STORE_ONLY=one: BENCHMARKS.md left as it is");
        return;
    }
    let only_cpu = match only.as_str() {
        "" => false,
        "cpu" => true,
        other => panic!("IKD_BENCH_STORE_ONLY={other:?}: only \"cpu\" and \"one\" are known"),
    };
    if only_cpu {
        let (rows, text) = cpu_limited_rows(n, reps, cpu);
        println!("{}", bench_util::table(&rows));
        println!("{}", text.trim());
        println!("IKD_BENCH_STORE_ONLY=cpu: BENCHMARKS.md left as it is");
        return;
    }
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
        let lite = rate(false, processes, n, reps, None);
        let pg = rate(true, processes, n, reps, None);
        let (lite_runs, pg_runs, lock) = (lite.runs, pg.runs, pg.lock);
        let (lite, pg) = (lite.median, pg.median);
        rows.push(Row {
            what: format!("{}; median of {reps} runs", setting(n, processes)),
            ours: format!(
                "{pg:.0} rec/s on PostgreSQL (runs: {}; median run: on average {:.2} transactions writing at once and {:.2} sessions waiting, in 10 ms samples)",
                runs(&pg_runs),
                lock.map_or(0.0, |l| l.0),
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
    let (cpu_rows, cpu_text) = cpu_limited_rows(n, reps, cpu);
    rows.extend(cpu_rows);
    let table = bench_util::table(&rows);
    println!("{table}");
    let body = format!(
        "### District store: PostgreSQL against SQLite\n\n\
         Measured {} on {} by `cargo bench --bench store` (release binary, real `serve` processes; \
         {pg_version} from the distribution's packages, default settings, on the same machine, \
         started by `scripts/postgres.sh`; SQLite WAL, `synchronous=FULL`, on the same disk).\n\n\
         {table}\n\
         Each server has 8 workers; the 16 devices send at once, each batch to the next server in \
         turn. Only the server's work is timed: the batches are cut and signed beforehand. On \
         SQLite one write transaction runs at a time (its single writer): a second process adds \
         workers for the parts outside the transaction (HTTP, gunzip, signature check, opening \
         the seals, JSON parsing, validation), not a second writer. On PostgreSQL batches write \
         side by side (since issue #14: the writer lock taken shared, a NIK's one live \
         activation kept by a unique index, see ARCHITECTURE.md), in one process and across \
         several. A batch costs a fixed dozen statements whatever its size — its ids and NIKs \
         read in two (`server/known.rs`), its new records written in one `COPY` on PostgreSQL \
         (one prepared INSERT per row on SQLite, a function call each), the dashboard fold, the \
         journalled answer — each a round trip to PostgreSQL. The lock figures of each \
         PostgreSQL cell come from `pg_locks`, read every 10 ms during the run (this database \
         only): how many transactions held the writer lock (batches, shared) and how many \
         sessions waited for it. The bound rows are the \
         unavoidable work (opening every seal on all cores, in-process; see the sync \
         section).{cpu_text}\n",
        bench_util::today(),
        bench_util::machine()
    );
    bench_util::write_section("store", &body);
}
