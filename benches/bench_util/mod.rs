//! Shared by the benchmarks: machine description, a results table, and rewriting this
//! benchmark's section of BENCHMARKS.md (between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`).
#![allow(dead_code)]
use std::path::Path;

pub struct Row {
    pub what: String,
    pub ours: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    pub met: Option<bool>,
}

/// A whole number from the environment variable `key`, or `default`.
pub fn env_n(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0);
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!(
        "{cores} cores ({cpu}), {:.0} GiB RAM",
        mem_kb as f64 / 1024.0 / 1024.0
    )
}

pub fn today() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| what | ikd-field | baseline | ratio | target | met |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "—",
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.what, r.ours, r.baseline, r.ratio, r.target, met
        ));
    }
    s
}

/// Replaces the section `name` of BENCHMARKS.md (appending it if absent) with `body`.
pub fn write_section(name: &str, body: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
    let (open, close) = (
        format!("<!-- bench:{name} -->"),
        format!("<!-- /bench:{name} -->"),
    );
    let block = format!("{open}\n{}\n{close}", body.trim_end());
    let new = match (text.find(&open), text.find(&close)) {
        (Some(a), Some(b)) if b > a => {
            format!("{}{}{}", &text[..a], block, &text[b + close.len()..])
        }
        _ => format!("{}\n{}\n", text.trim_end(), block),
    };
    std::fs::write(&path, new).expect("write BENCHMARKS.md");
    println!("BENCHMARKS.md section '{name}' updated");
}

pub fn have(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The CPU time this thread has used, in seconds.
fn thread_cpu_secs() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// What [`open_bound`] measured.
pub struct Bound {
    /// Records opened per second of wall time on all cores (best round).
    pub rate: f64,
    /// The same from CPU time: cores ÷ CPU seconds per record — what an otherwise idle machine
    /// would do (the machine is shared, so the wall rate is lower).
    pub cpu_rate: f64,
    pub cores: usize,
}

/// The unavoidable work of ingest: opening `n` sealed records (one X25519 Diffie–Hellman each)
/// in-process on every core of this machine, with nothing else — no HTTP, JSON, validation or
/// database. The best of three rounds, so a burst of load from another process lowers the bound
/// less than it lowers the ingest runs it is compared with.
pub fn open_bound(n: usize) -> Bound {
    use ikd_field::seal::{OpenKey, Secrets, seal_many};
    let key = OpenKey::generate().unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    let secrets: Vec<Secrets> = ikd_field::synth::citizens(4242, "1702", n)
        .iter()
        .map(|p| {
            let v = ikd_field::domain::validate::activation(p, today).expect("synthetic is valid");
            Secrets {
                nik: v.nik.nik,
                phone: v.phone,
                email: v.email,
            }
        })
        .collect();
    let boxes: Vec<Vec<u8>> = seal_many(&key.public(), &secrets)
        .into_iter()
        .map(|b| b.expect("synthetic secrets seal"))
        .collect();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let chunk = boxes.len().div_ceil(cores);
    let (mut best, mut cpu_best) = (0f64, 0f64);
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let (opened, cpu): (usize, f64) = std::thread::scope(|s| {
            let parts: Vec<_> = boxes
                .chunks(chunk)
                .map(|part| {
                    let key = &key;
                    s.spawn(move || {
                        let start = thread_cpu_secs();
                        let n = part.iter().filter(|b| key.open(b).is_some()).count();
                        (n, thread_cpu_secs() - start)
                    })
                })
                .collect();
            parts
                .into_iter()
                .map(|h| h.join().unwrap())
                .fold((0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
        });
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(opened, boxes.len(), "every sealed record opens");
        best = best.max(opened as f64 / secs);
        cpu_best = cpu_best.max(opened as f64 / cpu * cores as f64);
    }
    Bound {
        rate: best,
        cpu_rate: cpu_best,
        cores,
    }
}
