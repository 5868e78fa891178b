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
