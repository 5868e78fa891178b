//! End-to-end: the real binary records, lists, voids and exports in a temporary data directory.
mod util;
use ikd_field::synth;
use util::Kit;

fn people(n: usize) -> Vec<ikd_field::domain::validate::Input> {
    synth::citizens(1, "1702", n)
}

#[test]
fn commands_before_init_say_to_run_init() {
    let k = Kit::empty();
    for cmd in [
        &["list"][..],
        &["status"],
        &["record", "--nik", "1"],
        &["export"],
    ] {
        let (_, err) = k.fails(cmd, 2);
        assert!(err.contains("ikd-field init"), "{err}");
    }
    let v =
        serde_json::from_str::<serde_json::Value>(&k.fails(&["status", "--json"], 2).0).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "usage");
}

#[test]
fn init_creates_key_0600_and_refuses_to_overwrite() {
    let k = Kit::new();
    let key = k.dir.join("device.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let before = util::read(&key);
    k.fails(&["init"], 2);
    assert_eq!(util::read(&key), before, "key must not change");
    let st = k.json(&["status"]);
    assert_eq!(st["device"]["officer"], "PETUGAS UJI");
    assert_eq!(st["device"]["device_id"].as_str().unwrap().len(), 16);
}

#[test]
fn record_list_show_status_export() {
    let k = Kit::new();
    let p = people(3);
    for i in 0..3 {
        let a = k.record_synthetic(&p, i);
        assert_eq!(a["ok"], true);
        assert_eq!(a["record"]["seq"], i as i64 + 1);
        assert_eq!(a["record"]["status"], "pending");
        // The laptop keeps the masked NIK only (the full one is sealed: docs/sealing.md).
        assert_eq!(
            a["record"]["nik"],
            ikd_field::domain::nik::mask(&p[i].nik).as_str()
        );
    }
    let listed = k.json(&["list"]);
    assert_eq!(listed["count"], 3);
    let id = listed["records"][1]["id"].as_str().unwrap().to_string();
    // By sequence number and by id.
    assert_eq!(k.json(&["show", "2"])["record"]["id"], id.as_str());
    assert_eq!(k.json(&["show", &id])["record"]["seq"], 2);
    let text = k.ok(&["show", "2"]);
    assert!(
        text.contains(&p[1].name) && !text.contains(&p[1].nik),
        "masked NIK in text:\n{text}"
    );
    assert_eq!(k.json(&["list", "--status", "synced"])["count"], 0);
    assert_eq!(
        k.json(&["list", "--village", &p[0].village])["records"][0]["village"],
        p[0].village.as_str()
    );

    let st = k.json(&["status"]);
    assert_eq!(st["total"], 3);
    assert_eq!(st["by_status"]["pending"], 3);
    assert_eq!(st["today"]["activations"], 3);

    let csv_path = k.path("out.csv");
    k.ok(&[
        "export",
        "--format",
        "csv",
        "--out",
        csv_path.to_str().unwrap(),
    ]);
    let csv = String::from_utf8(util::read(&csv_path)).unwrap();
    assert_eq!(csv.lines().count(), 4);
    // For Excel set to Indonesian: a byte-order mark, `;`, Indonesian names, local time first.
    let csv = csv.strip_prefix('\u{feff}').expect("UTF-8 BOM");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    assert_eq!(&header[0], "no");
    assert_eq!(&header[1], "waktu_lokal");
    assert_eq!(&header[4], "nik_tersamar");
    let first = reader.records().next().unwrap().unwrap();
    assert_eq!(&first[0], "1");
    assert!(first[1].ends_with("WIB"), "{:?}", &first[1]);
    assert_eq!(&first[2], "aktivasi");
    assert_eq!(&first[9], "menunggu");
    assert!(csv.contains(&ikd_field::domain::nik::mask(&p[2].nik)) && !csv.contains(&p[2].nik));
    let json = k.ok(&["export", "--format", "json"]);
    let arr: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(arr.len(), 3);
    assert_eq!(arr[0]["seq"], 1);
}

#[test]
fn invalid_input_exit_3_names_every_field_with_an_example() {
    let k = Kit::new();
    let (_, err) = k.fails(
        &[
            "record",
            "--nik",
            "123456789012345",
            "--name",
            "B4DI",
            "--phone",
            "021-555-1234",
            "--village",
            "9999999999",
        ],
        3,
    );
    for needle in [
        "NIK",
        "16 digit",
        "Nama",
        "Nomor HP",
        "Desa/kelurahan",
        "contoh",
        "TIDAK disimpan",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    let (out, _) = k.fails(
        &[
            "record",
            "--json",
            "--nik",
            "1702067201900001",
            "--name",
            "X",
            "--phone",
            "0841234567",
            "--village",
            "1702061004",
        ],
        3,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let codes: Vec<&str> = v["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["nik_day", "phone_not_mobile"]);
    // English on request.
    let (_, err) = k.fails(
        &[
            "--lang",
            "en",
            "record",
            "--nik",
            "12",
            "--name",
            "A",
            "--phone",
            "0812345678",
            "--village",
            "1702061004",
        ],
        3,
    );
    assert!(
        err.contains("must have 16 digits") && err.contains("example"),
        "{err}"
    );
    // Nothing was stored.
    assert_eq!(k.json(&["status"])["total"], 0);
}

#[test]
fn missing_fields_without_a_terminal_are_refused_not_prompted() {
    let k = Kit::new();
    let (_, err) = k.fails(&["record", "--nik", "1702064107950003"], 3);
    assert!(
        err.contains("nama belum diisi") && err.contains("nomor HP belum diisi"),
        "{err}"
    );
}

#[test]
fn duplicate_nik_exit_4_with_earlier_record_then_void_allows_again() {
    let k = Kit::new();
    let p = people(1);
    let first = k.record_synthetic(&p, 0);
    let first_id = first["record"]["id"].as_str().unwrap();
    let args = util::record_args(&p[0]);
    let (_, err) = k.fails(&args, 4);
    // Named by its number and the citizen's name; the id stays in the details.
    assert!(err.contains("#1") && !err.contains(first_id), "{err}");
    let mut j = args.to_vec();
    j.push("--json");
    let (out, _) = k.fails(&j, 4);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["details"]["earlier_id"], first_id);

    // Void is a new record; the old one is untouched except that it is now voided.
    k.fails(&["void", "1", "--reason", "  "], 3);
    let v = k.json(&["void", "1", "--reason", "salah ketik nama"]);
    assert_eq!(v["record"]["kind"], "void");
    assert_eq!(v["record"]["voids"], first_id);
    assert_eq!(v["record"]["seq"], 2);
    let old = k.json(&["show", "1"]);
    assert_eq!(old["record"]["name"], p[0].name.as_str());
    assert_eq!(old["record"]["voided_by"], v["record"]["id"]);
    k.fails(&["void", "1", "--reason", "lagi"], 4);
    k.fails(&["void", "2", "--reason", "batal pembatalan"], 3);
    // The person can now be recorded again.
    assert_eq!(k.json(&args[..])["record"]["seq"], 3);
    k.fails(&["show", "99"], 2);
}

#[test]
fn wilayah_lookup_and_search() {
    let k = Kit::empty();
    let v = k.json(&["wilayah", "17.02.06.1004"]);
    let path: Vec<&str> = v["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        path,
        [
            "BENGKULU",
            "KABUPATEN REJANG LEBONG",
            "KOTA PADANG",
            "KOTA PADANG"
        ]
    );
    let v = k.json(&["wilayah", "1702"]);
    assert_eq!(
        v["children"].as_array().unwrap().len(),
        15,
        "Rejang Lebong has 15 kecamatan"
    );
    let v = k.json(&["wilayah", "cari", "pemping"]);
    assert_eq!(v["results"][0]["code"], "2171011002");
    let (_, err) = k.fails(&["wilayah", "9101"], 3);
    assert!(
        err.contains("9301"),
        "legacy code names its successor: {err}"
    );
    let out = k.ok(&["wilayah", "cari", "belakang", "padang"]);
    assert!(out.contains("217101"), "{out}");
}

#[test]
fn broken_config_names_the_line() {
    let k = Kit::new();
    std::fs::write(
        k.dir.join("config.toml"),
        "lang = \"id\"\n[sync]\nbatch_size = 500\ntimeout_secs = \"lama\"\n",
    )
    .unwrap();
    let (_, err) = k.fails(&["status"], 2);
    assert!(
        err.contains("baris 4") && err.contains("timeout_secs"),
        "{err}"
    );
    std::fs::write(k.dir.join("config.toml"), "lang = \"en\"\n").unwrap();
    assert!(k.ok(&["status"]).contains("Citizens activated: 0"));
    let bad = k.path("bad.toml");
    std::fs::write(&bad, "[slip]\npaper = 57\n").unwrap();
    let (_, err) = k.fails(&["--config", bad.to_str().unwrap(), "status"], 2);
    assert!(err.contains("slip.paper"), "{err}");
    let (_, err) = k.fails(
        &["--config", k.path("nope.toml").to_str().unwrap(), "status"],
        2,
    );
    assert!(!err.is_empty());
}

#[test]
fn corrupt_or_unreadable_database_is_a_clear_error_not_a_panic() {
    let k = Kit::new();
    k.record_synthetic(&people(1), 0);
    let db = k.dir.join("field.db");
    // Overwrite the header and the first pages with garbage.
    let mut bytes = util::read(&db);
    for b in bytes.iter_mut().take(4096) {
        *b = 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    let _ = std::fs::remove_file(k.dir.join("field.db-wal"));
    let _ = std::fs::remove_file(k.dir.join("field.db-shm"));
    let (_, err) = k.fails(&["list"], 1);
    assert!(
        err.contains("rusak") && err.contains("Jangan hapus"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    let (out, _) = k.fails(&["list", "--json"], 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);

    // A data directory whose database is a directory: also an error, not a panic.
    let k2 = Kit::new();
    std::fs::remove_file(k2.dir.join("field.db")).unwrap();
    std::fs::create_dir(k2.dir.join("field.db")).unwrap();
    let (_, err) = k2.fails(&["status"], 1);
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn records_survive_in_the_file_with_wal_and_full_sync() {
    let k = Kit::new();
    let p = people(5);
    for i in 0..5 {
        k.record_synthetic(&p, i);
    }
    let conn = rusqlite::Connection::open(k.dir.join("field.db")).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(k.count("SELECT COUNT(*) FROM records"), 5);
    assert_eq!(
        k.count("SELECT COUNT(*) FROM audit WHERE action = 'record'"),
        5
    );
    let seqs: Vec<i64> = conn
        .prepare("SELECT seq FROM records ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
}

#[test]
fn demo_runs_end_to_end() {
    let k = Kit::empty();
    let keep = k.path("demo");
    let v = k.json(&["demo", "--citizens", "12", "--keep", keep.to_str().unwrap()]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["recorded"], 12);
    assert_eq!(v["integrity"], "ok");
    // Slips written and one verified; every record on the server once; a second sync sends nothing.
    assert_eq!(v["slip_verified"], true);
    let pngs = std::fs::read_dir(keep.join("field/slips")).unwrap().count();
    assert_eq!(pngs, 12 + 1, "12 PNG slips and the A4 PDF");
    assert_eq!(v["sync"]["summary"]["accepted"], 12);
    assert_eq!(v["second_sync_batches"], 0);
    assert_eq!(v["server_stats"]["stats"]["records"], 12);
    assert!(
        v["dashboard"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    // The field database agrees: everything synced.
    let field = util::Kit {
        tmp: tempfile::tempdir().unwrap(),
        dir: keep.join("field"),
    };
    assert_eq!(field.json(&["status"])["by_status"]["synced"], 12);
}

/// On a terminal, `record` asks for each missing field and checks it as it is entered (a wrong
/// one is asked again at once), with line editing (an arrow key moves the cursor, it does not
/// insert escape bytes), and saves only after the summary and a yes. `script` (util-linux)
/// gives the binary a real pseudo-terminal.
#[test]
fn prompts_on_a_terminal_and_asks_again_for_a_wrong_field() {
    use std::io::Write;
    let k = Kit::new();
    let cmdline = format!("{} --data-dir {} record", util::BIN, k.dir.display());
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    // The NIK typed with a digit missing, fixed with ← and the digit; a landline (refused at
    // once), then the mobile; the village by code; no e-mail; "y" to save.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"170206410795003\x1b[D0\nsiti aminah\n021555\n0812 3456 7890\n1702061004\n\ny\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(
        screen.contains("NIK (16 digit):") && screen.contains("bukan nomor HP"),
        "{screen}"
    );
    // What the NIK says, before the name is asked; the summary before saving.
    let facts = screen.find("lahir 01-07-1995").expect("NIK facts shown");
    assert!(
        facts < screen.find("Nama (sesuai KTP)").unwrap(),
        "{screen}"
    );
    assert!(
        screen.contains("Simpan?") && !screen.contains("error:"),
        "{screen}"
    );
    let rec = &k.json(&["show", "1"])["record"];
    assert_eq!(rec["name"], "SITI AMINAH");
    // The phone typed on the second try is the one sealed (here under the holding key, as the
    // kit is not enrolled: open it with that key to check).
    let holding = ikd_field::crypto::load_secret(&k.dir.join("seal-holding.key")).unwrap();
    let sealed: Vec<u8> = rusqlite::Connection::open(k.dir.join("field.db"))
        .unwrap()
        .query_row("SELECT sealed FROM records WHERE seq = 1", [], |r| r.get(0))
        .unwrap();
    let opened = ikd_field::seal::OpenKey::from_bytes(holding)
        .open(&sealed)
        .unwrap();
    assert_eq!(opened.phone, "+6281234567890");
    assert_eq!(rec["phone"], "");
}

/// A laptop is not set up under an officer or team name the district server would refuse (over
/// 100 characters, or hidden control and text-direction characters): its records could never be
/// delivered. Nothing is created; the message names the field.
#[test]
fn init_refuses_names_the_server_would_refuse() {
    let long = "A".repeat(101);
    for (officer, team) in [
        (long.as_str(), "TIM 1"),
        ("BUDI", "\u{202e}1 MIT"),
        ("BUDI\u{1b}[2J", "TIM 1"),
    ] {
        let k = Kit::empty();
        let out = k.run(&["init", "--officer", officer, "--team", team]);
        assert_eq!(out.status.code(), Some(3), "{officer:?} {team:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("Nama petugas") || err.contains("Tim:"),
            "{err}"
        );
        assert!(!k.dir.join("field.db").exists());
    }
    let k = Kit::empty();
    k.ok(&["init", "--officer", &"B".repeat(100), "--team", "TIM 1"]);
}

/// A reader that goes away (`ikd-field status | head -1`, a closed pipe) ends the command
/// quietly with the shell's SIGPIPE code, never a panic or a backtrace.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let k = Kit::new();
    for args in [&["status"][..], &["list"], &["wilayah", "cari", "desa"]] {
        // A pipe whose reading end is closed before the command starts: its first write fails.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = k
            .cmd(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
    }
}

/// The officer's own words work: Indonesian command names (`catat`, `daftar`, `batal`,
/// `ringkasan`…) and the status words the list itself prints (`menunggu`).
#[test]
fn indonesian_command_names_and_status_words() {
    let k = Kit::new();
    let people = people(2);
    let mut args = util::record_args(&people[0]);
    args[0] = "catat";
    k.ok(&args);
    let listed = k.json(&["daftar", "--status", "menunggu"]);
    assert_eq!(listed["count"], 1, "{listed}");
    assert_eq!(k.json(&["daftar", "--status", "Terkirim"])["count"], 0);
    k.ok(&["batal", "1", "--reason", "salah ketik"]);
    assert_eq!(k.json(&["ringkasan"])["by_status"]["pending"], 2);
    let (_, err) = k.fails(&["daftar", "--status", "hilang"], 2);
    assert!(
        err.contains("menunggu, terkirim, konflik atau ditolak"),
        "{err}"
    );
}
