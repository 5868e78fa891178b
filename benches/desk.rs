//! The officer's desk, as the browser uses it: how long the record page takes to load (the page,
//! its script and style, the state it asks for) and how long "Simpan & cetak" takes to answer
//! including the slip page, on a laptop that already holds a day's records. Targets (issue #18):
//! < 100 ms and < 200 ms on this machine.
//!
//! Baselines in the same run: the same page files from a plain static file server (Python's
//! `http.server`), and one `sqlite3` CLI process inserting one row (what any durable save costs
//! at least). `cargo bench --bench desk`; `IKD_BENCH_DESK` sets the number of saves (default 50).
mod bench_util;
#[path = "../tests/util/mod.rs"]
mod util;
use bench_util::{Row, env_n};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::BIN;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn main() {
    let saves = env_n("IKD_BENCH_DESK", 50);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("field");
    // A laptop with a day's work already on it (150 citizens).
    let mut dd =
        ikd_field::field::datadir::DataDir::init(&dir, "PETUGAS BENCH", "TIM BENCH").unwrap();
    let today = ikd_field::timefmt::today(time::UtcOffset::from_hms(7, 0, 0).unwrap());
    let people = ikd_field::synth::citizens(11, "1702", 150 + saves);
    let valid: Vec<_> = people[..150]
        .iter()
        .map(|p| ikd_field::domain::validate::activation(p, today).unwrap())
        .collect();
    dd.store.record_activations(&valid, &dd.identity).unwrap();
    drop(dd);

    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(&dir)
        .args(["desk", "--no-browser", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut url = String::new();
    while !url.contains("http://") {
        url.clear();
        out.read_line(&mut url).unwrap();
    }
    let url = url.trim().to_string();
    let base = url[..url.find("/?k=").unwrap()].to_string();
    let port = base.rsplit(':').next().unwrap();
    let cookie = format!("ikd_desk_{port}={}", &url[url.find("?k=").unwrap() + 3..]);
    let a = agent();
    let get = |path: &str| {
        let mut r = a
            .get(&format!("{base}{path}"))
            .header("cookie", &cookie)
            .call()
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.body_mut().read_to_string().unwrap()
    };
    let page = get("/");
    let at = page.find("name=\"desk-token\" content=\"").unwrap() + 27;
    let token = page[at..at + page[at..].find('"').unwrap()].to_string();
    let load = || {
        let t = Instant::now();
        for p in ["/", "/desk.css", "/desk.js", "/api/state"] {
            get(p);
        }
        t.elapsed()
    };
    load();
    let loads = 30;
    let ours_load: Duration = (0..loads).map(|_| load()).sum::<Duration>() / loads;

    // Baseline: the same files from a plain static server.
    let static_dir = tmp.path().join("static");
    std::fs::create_dir_all(&static_dir).unwrap();
    for p in ["index.html", "desk.css", "desk.js", "state.json"] {
        let body = match p {
            "index.html" => get("/"),
            "desk.css" => get("/desk.css"),
            "desk.js" => get("/desk.js"),
            _ => get("/api/state"),
        };
        std::fs::write(static_dir.join(p), body).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut py = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(&static_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 for the static baseline");
    let sbase = format!("http://127.0.0.1:{port}");
    let t0 = Instant::now();
    while a.get(&format!("{sbase}/desk.css")).call().is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(50));
    }
    let sload = || {
        let t = Instant::now();
        for p in ["/index.html", "/desk.css", "/desk.js", "/state.json"] {
            a.get(&format!("{sbase}{p}"))
                .call()
                .unwrap()
                .body_mut()
                .read_to_string()
                .unwrap();
        }
        t.elapsed()
    };
    let base_load: Duration = (0..loads).map(|_| sload()).sum::<Duration>() / loads;
    let _ = py.kill();
    let _ = py.wait();

    // Save & print: the save, then the slip page the browser opens.
    village(&a, &base, &cookie, &token);
    let mut total = Duration::ZERO;
    for p in &people[150..] {
        let body = serde_json::json!({
            "nik": p.nik, "name": p.name, "phone": p.phone, "email": p.email,
            "village": p.village, "young_ok": true,
        });
        let t = Instant::now();
        let mut r = a
            .post(&format!("{base}/api/save"))
            .header("cookie", &cookie)
            .header("x-desk-token", &token)
            .send_json(&body)
            .unwrap();
        let v: serde_json::Value = r.body_mut().read_json().unwrap();
        assert_eq!(r.status(), 200, "{v}");
        let slip = get(v["slip"].as_str().unwrap());
        total += t.elapsed();
        assert!(slip.contains("<svg"));
    }
    let ours_save = total / saves as u32;
    let _ = child.kill();
    let _ = child.wait();

    // Baseline: one sqlite3 process inserting one row durably.
    let db = tmp.path().join("base.db");
    Command::new("sqlite3")
        .arg(&db)
        .arg("PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        .output()
        .expect("sqlite3 CLI");
    let n = 20;
    let t = Instant::now();
    for i in 0..n {
        Command::new("sqlite3")
            .arg(&db)
            .arg(format!(
                "PRAGMA synchronous=FULL; INSERT INTO t (v) VALUES ('{i}');"
            ))
            .output()
            .unwrap();
    }
    let base_save = t.elapsed() / n;

    let rows = vec![
        Row {
            what: "record page load (page, style, script, state), mean of 30, keep-alive".into(),
            ours: format!("{:.1} ms", ms(ours_load)),
            baseline: format!(
                "{:.1} ms (the same files from Python's `http.server`)",
                ms(base_load)
            ),
            ratio: format!("{:.2}×", ms(ours_load) / ms(base_load)),
            target: "< 100 ms".into(),
            met: Some(ms(ours_load) < 100.0),
        },
        Row {
            what: format!(
                "\"Simpan & cetak\": save + the slip page, mean of {saves}, 150 records already"
            ),
            ours: format!("{:.1} ms", ms(ours_save)),
            baseline: format!(
                "{:.1} ms (one `sqlite3` process inserting one row)",
                ms(base_save)
            ),
            ratio: format!("{:.2}×", ms(ours_save) / ms(base_save)),
            target: "< 200 ms".into(),
            met: Some(ms(ours_save) < 200.0),
        },
    ];
    let body = format!(
        "### The officer's desk\n\nMeasured {} on {} by `cargo bench --bench desk` (release build, loopback).\n\n{}",
        bench_util::today(),
        bench_util::machine(),
        bench_util::table(&rows)
    );
    println!("{body}");
    bench_util::write_section("desk", &body);
}

fn village(a: &ureq::Agent, base: &str, cookie: &str, token: &str) {
    let r = a
        .post(&format!("{base}/api/village"))
        .header("cookie", cookie)
        .header("x-desk-token", token)
        .send_json(serde_json::json!({"code": "1702061004"}))
        .unwrap();
    assert_eq!(r.status(), 200);
}
