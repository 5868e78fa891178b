//! Slip benchmarks: PNG slips per second in-process, and the time per QR code against the
//! `qrencode` CLI on the same payloads.
//!
//! `cargo bench --bench slip` — prints a table and rewrites the `slip` section of BENCHMARKS.md.
//! `IKD_BENCH_SLIPS` sets the number of slips (default 3,000), `IKD_BENCH_QRENCODE` the number of
//! `qrencode` runs (default 300). Needs `qrencode` (`apt-get install qrencode`).
mod bench_util;
use bench_util::{Row, env_n};
use ikd_field::crypto::KeyPair;
use ikd_field::domain::{Kind, Record};
use ikd_field::slip::{Paper, Slip, png, qr::Qr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Synthetic records (never real people) signed by one device key.
fn records(key: &KeyPair, n: usize) -> Vec<Record> {
    ikd_field::synth::citizens(9, "1702", n)
        .into_iter()
        .enumerate()
        .map(|(i, p)| Record {
            id: uuid::Uuid::now_v7().to_string(),
            seq: i as i64 + 1,
            device_id: key.id(),
            officer: "PETUGAS BENCH".into(),
            team: "TIM BENCH".into(),
            recorded_at: ikd_field::timefmt::now_utc(),
            kind: Kind::Activation,
            village: p.village,
            nik: p.nik,
            name: p.name.to_uppercase(),
            phone: p.phone,
            email: None,
            voids: None,
            reason: None,
            warnings: vec![],
        })
        .collect()
}

/// Wall clock and this thread's CPU time (from /proc/thread-self/schedstat, in ns; the wall
/// clock stands in where that file is missing).
struct Clock {
    wall: Instant,
    cpu: Option<u64>,
}

fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Clock {
    fn start() -> Clock {
        Clock {
            cpu: thread_cpu_ns(),
            wall: Instant::now(),
        }
    }
    /// (wall seconds, CPU seconds)
    fn stop(&self) -> (f64, f64) {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = match (self.cpu, thread_cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e9,
            _ => wall,
        };
        (wall, cpu)
    }
}

fn per_ms(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1000.0 / n as f64
}

fn main() {
    assert!(
        bench_util::have("qrencode"),
        "the qrencode CLI is the baseline: apt-get install qrencode"
    );
    let n = env_n("IKD_BENCH_SLIPS", 3000);
    let q = env_n("IKD_BENCH_QRENCODE", 300).min(n);
    let key = KeyPair::from_seed([42; 32]);
    let recs = records(&key, n);
    let offset = time::UtcOffset::from_hms(7, 0, 0).unwrap();
    let office = "DINAS KEPENDUDUKAN DAN PENCATATAN SIPIL KABUPATEN REJANG LEBONG";
    let mut rows = Vec::new();

    // 1. Whole PNG slips in-process: sign, QR, layout, rasterise, PNG-encode. One warm-up slip
    //    first (fonts parsed, first glyphs cached), as in any process that prints more than one.
    //    The machine is shared (other builds run beside it), so the rate is given by this thread's
    //    CPU time (Linux schedstat) as well as by the wall clock, best of 3 rounds each.
    let warm = Slip::new(&recs[0], &key, office, offset).unwrap();
    std::hint::black_box(png::render(&warm, Paper::Mm58));
    let mut bytes = 0usize;
    let mut payloads = Vec::with_capacity(n);
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let c = Clock::start();
        for r in &recs {
            let s = Slip::new(r, &key, office, offset).unwrap();
            let png = png::render(&s, Paper::Mm58);
            if round == 0 {
                bytes += png.len();
                payloads.push(s.payload);
            }
        }
        let (wall, cpu) = c.stop();
        walls.push(wall);
        cpus.push(cpu);
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let (wall_rate, cpu_rate) = (n as f64 / best(&walls), n as f64 / best(&cpus));
    rows.push(Row {
        what: format!(
            "PNG slips in-process, one thread (sign + QR + layout + raster + PNG, 58 mm, {n} slips, mean {:.1} KB), best of 3 rounds",
            bytes as f64 / n as f64 / 1024.0
        ),
        ours: format!(
            "{cpu_rate:.0} slips/s by CPU time ({:.3} ms each); {wall_rate:.0} slips/s by wall clock",
            1000.0 / cpu_rate
        ),
        baseline: "—".into(),
        ratio: "—".into(),
        target: "≥ 1,000 slips/s".into(),
        met: Some(cpu_rate >= 1000.0),
    });

    // Where a slip's time goes, stage by stage (same records; CPU time).
    let slips: Vec<Slip> = recs
        .iter()
        .map(|r| Slip::new(r, &key, office, offset).unwrap())
        .collect();
    let mut us = [0.0f64; 4];
    for (r, s) in recs.iter().zip(&slips) {
        let c = Clock::start();
        let p = ikd_field::slip::payload::Payload::new(
            &r.id,
            &r.device_id,
            &r.recorded_at,
            &r.village,
            &r.nik,
            &r.name,
        )
        .unwrap();
        std::hint::black_box(p.sign(&key));
        us[0] += c.stop().1;
        let c = Clock::start();
        std::hint::black_box(Qr::encode(&s.payload).unwrap());
        us[1] += c.stop().1;
        let c = Clock::start();
        let canvas = png::raster(s, Paper::Mm58);
        us[2] += c.stop().1;
        let c = Clock::start();
        std::hint::black_box(png::encode(&canvas));
        us[3] += c.stop().1;
    }
    let [sign, qr_us, raster_us, encode_us] = us.map(|t| t * 1e6 / n as f64);
    rows.push(Row {
        what: "where a PNG slip's time goes (µs of CPU per slip)".into(),
        ours: format!(
            "sign {sign:.0} · QR {qr_us:.0} · layout + raster {raster_us:.0} · PNG encode {encode_us:.0}"
        ),
        baseline: "—".into(),
        ratio: "—".into(),
        target: "—".into(),
        met: None,
    });

    // 2. One QR code as a PNG file, same payloads and geometry (level M, 6 px modules, 4-module
    //    quiet zone): in-process encode + PNG + write, against one `qrencode` run per payload.
    let tmp = tempfile::tempdir().unwrap();
    let t = Instant::now();
    for (i, p) in payloads.iter().enumerate().take(q) {
        let qr = Qr::encode(p).unwrap();
        std::fs::write(
            tmp.path().join(format!("ours-{i}.png")),
            png::qr_only(&qr, 6),
        )
        .unwrap();
    }
    let ours = per_ms(t.elapsed(), q);
    let chars = payloads.iter().take(q).map(|p| p.len()).sum::<usize>() / q;
    let versions: Vec<i16> = payloads
        .iter()
        .take(q)
        .map(|p| Qr::encode(p).unwrap().version)
        .collect();
    let (vmin, vmax) = (
        versions.iter().min().unwrap(),
        versions.iter().max().unwrap(),
    );
    let t = Instant::now();
    for (i, p) in payloads.iter().enumerate().take(q) {
        let st = Command::new("qrencode")
            .args(["-l", "M", "-s", "6", "-m", "4", "-o"])
            .arg(tmp.path().join(format!("qrencode-{i}.png")))
            .arg(p)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    }
    let theirs = per_ms(t.elapsed(), q);
    // What part of that is only starting a process.
    let t = Instant::now();
    for _ in 0..q {
        Command::new("true").status().unwrap();
    }
    let spawn = per_ms(t.elapsed(), q);
    let net = (theirs - spawn).max(0.001);
    rows.push(Row {
        what: format!(
            "one QR code → PNG file (level M, 6 px modules), {q} slip payloads, mean {chars} chars, QR versions {vmin}–{vmax}"
        ),
        ours: format!("{ours:.3} ms (in-process)"),
        baseline: format!("{theirs:.3} ms (`qrencode` CLI, one run per QR)"),
        ratio: format!("{:.1}× faster", theirs / ours),
        target: "faster than qrencode".into(),
        met: Some(ours < theirs),
    });
    rows.push(Row {
        what: format!(
            "the same, `qrencode` less the cost of starting a process (`true`: {spawn:.3} ms)"
        ),
        ours: format!("{ours:.3} ms"),
        baseline: format!("{net:.3} ms (`qrencode` work only, estimated)"),
        ratio: format!("{:.1}×", net / ours),
        target: "—".into(),
        met: None,
    });

    let table = bench_util::table(&rows);
    println!("\n{table}");
    bench_util::write_section(
        "slip",
        &format!(
            "### QR slips\n\nMeasured {} on {} by `cargo bench --bench slip` (release profile; \
             {n} slips, {q} `qrencode` runs, qrencode {}; needs `apt-get install qrencode`).\n\n{table}\n\
             The slips are synthetic records (`synth::citizens`), each signed, encoded (QR 8-M at most), \
             laid out and written as a 4-bit greyscale PNG at 384 px (58 mm, 203 dpi). The machine is \
             shared with other builds, so the rate is also given by the thread's CPU time. `qrencode` \
             can only be run once per QR, so its time includes starting a process; the last row takes \
             that out (the time to run `true`) for a like-for-like estimate of its encoding work. \
             `IKD_BENCH_SLIPS` and `IKD_BENCH_QRENCODE` change the counts.",
            bench_util::today(),
            bench_util::machine(),
            qrencode_version()
        ),
    );
}

fn qrencode_version() -> String {
    Command::new("qrencode")
        .arg("-V")
        .output()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stderr).into_owned()
                + &String::from_utf8_lossy(&o.stdout);
            s.split_whitespace()
                .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
                .unwrap_or("?")
                .to_string()
        })
        .unwrap_or_else(|_| "?".into())
}
