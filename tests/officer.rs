//! The officer's command line in the officer's words: set-up that asks for the name on a
//! terminal, `petugas`, the team of the enrolment token, `void` that asks and confirms. The real
//! binary, on a real pseudo-terminal (`script`, util-linux) where it matters.
#[macro_use]
mod util;

use std::process::{Command, Stdio};
use util::server::Server;
use util::{BIN, Kit};

/// Records SITI AMINAH (a synthetic citizen) as #next on `k`.
fn record_siti(k: &Kit) {
    k.ok(&[
        "record",
        "--nik",
        "1702064107950003",
        "--name",
        "SITI AMINAH",
        "--phone",
        "081234567890",
        "--village",
        "1702061004",
        "--no-prompt",
    ]);
}

/// Runs `ikd-field --data-dir KIT ARGS` on a real pseudo-terminal (`script`, util-linux) with
/// `input` typed; its exit code and what the terminal showed.
fn on_terminal(k: &Kit, args: &str, input: &[u8]) -> (Option<i32>, String) {
    use std::io::Write as _;
    let cmdline = format!("{BIN} --data-dir {} {args}", k.dir.display());
    let mut child = Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `init` on a terminal asks for the officer's name (slips print it) and the team; `petugas`
/// changes them later, and the next record carries the new names.
#[test]
fn init_asks_for_the_officer_and_petugas_changes_it() {
    let k = Kit::empty();
    let (code, screen) = on_terminal(&k, "init", b"RATNA DEWI\nTIM KELILING 1\n");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("Nama petugas"), "{screen}");
    let device = k.json(&["device"]);
    assert_eq!(device["device"]["officer"], "RATNA DEWI", "{device}");
    assert_eq!(device["device"]["team"], "TIM KELILING 1", "{device}");

    let said = k.ok(&["petugas", "BUDI SANTOSO", "--tim", "TIM KELILING 2"]);
    assert!(said.contains("BUDI SANTOSO"), "{said}");
    record_siti(&k);
    let rec = &k.json(&["show", "1"])["record"];
    assert_eq!(rec["officer"], "BUDI SANTOSO");
    assert_eq!(rec["team"], "TIM KELILING 2");
    // A name the server would refuse changes nothing.
    let out = k.run(&["petugas", &"A".repeat(101)]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(k.json(&["device"])["device"]["officer"], "BUDI SANTOSO");
}

/// The team named on the enrolment token is the one the district knows the laptop by: new
/// records carry it, whatever the laptop was set up with.
#[test]
fn the_team_on_the_token_is_applied_at_enrolment() {
    let srv = Server::start();
    let token = srv.token("TIM KELILING 2");
    let k = Kit::empty();
    k.ok(&[
        "init",
        "--officer",
        "RATNA DEWI",
        "--team",
        "TIM LAMA",
        "--server",
        &srv.url,
        "--token",
        &token,
    ]);
    assert_eq!(k.json(&["device"])["device"]["team"], "TIM KELILING 2");
    record_siti(&k);
    assert_eq!(k.json(&["show", "1"])["record"]["team"], "TIM KELILING 2");
}

/// `void 1` on a terminal without `--reason` names the citizen, offers the short list and asks
/// yes/no; "t" changes nothing, "y" voids with the reason picked. Messages name records by `#`.
#[test]
fn void_on_a_terminal_asks_the_reason_and_confirms_with_the_name() {
    let k = Kit::new();
    record_siti(&k);
    let on_terminal = |input: &[u8]| {
        let (code, screen) = on_terminal(&k, "void 1", input);
        assert_eq!(code, Some(0), "{screen}");
        screen
    };
    // Without a terminal the reason is still required.
    let (_, err) = k.fails(&["void", "1"], 3);
    assert!(err.contains("--reason"), "{err}");
    let screen = on_terminal(b"2\nt\n");
    assert!(
        screen.contains("#1 — SITI AMINAH") && screen.contains("salah desa"),
        "{screen}"
    );
    assert!(screen.contains("Tidak jadi"), "{screen}");
    assert!(k.json(&["show", "1"])["record"]["voided_by"].is_null());
    let screen = on_terminal(b"2\ny\n");
    assert!(screen.contains("#1 (SITI AMINAH) dibatalkan"), "{screen}");
    let void = &k.json(&["show", "2"])["record"];
    assert_eq!(void["reason"], "salah desa");
    // Voiding again names the void by its number, not its id.
    let (_, err) = k.fails(&["void", "1", "--reason", "dobel"], 4);
    assert!(err.contains("sudah dibatalkan oleh #2"), "{err}");
}

/// Counts are citizens: after 3 activations and a void, `status` says 2 citizens (today and in
/// all), the records apart; `show` names the void and the voided record by number.
#[test]
fn status_counts_citizens_and_show_names_records_by_number() {
    let k = Kit::new();
    for nik in ["1702064107950003", "1702061203880007", "1702065505900011"] {
        k.ok(&[
            "record",
            "--nik",
            nik,
            "--name",
            "WARGA UJI",
            "--phone",
            "081234567890",
            "--village",
            "1702061004",
            "--no-prompt",
        ]);
    }
    k.ok(&["void", "1", "--reason", "dobel"]);
    let status = k.ok(&["status"]);
    assert!(
        status.contains("Warga diaktivasi: 2 · catatan di laptop: 4"),
        "{status}"
    );
    assert!(
        status.contains("Hari ini: 2 warga diaktivasi, 1 pembatalan"),
        "{status}"
    );
    let st = k.json(&["status"]);
    assert_eq!(
        (st["citizens"].as_i64(), st["today"]["activations"].as_i64()),
        (Some(2), Some(2))
    );
    let void = k.ok(&["show", "4"]);
    assert!(void.contains("Membatalkan  #1"), "{void}");
    let voided = k.ok(&["show", "1"]);
    assert!(voided.contains("Dibatalkan oleh  #4"), "{voided}");
}

/// Command-line mistakes are told in Indonesian with the right shape and where to look (clap
/// alone speaks English), exit 2; `--lang en` keeps English; help lists a command's own options
/// before the ones every command takes.
#[test]
fn command_line_mistakes_are_told_in_indonesian() {
    let k = Kit::new();
    let (_, err) = k.fails(&["void"], 2);
    assert!(
        err.contains("Isian wajib belum diberikan") && err.contains("ikd-field void --help"),
        "{err}"
    );
    let (_, err) = k.fails(&["statuss"], 2);
    assert!(
        err.contains("Perintah 'statuss' tidak dikenal. Maksudnya: status?"),
        "{err}"
    );
    let (_, err) = k.fails(&["list", "--status", "menungu"], 2);
    assert!(err.contains("pakai menunggu, terkirim"), "{err}");
    let (_, err) = k.fails(&["record", "--kertas", "58"], 2);
    assert!(err.contains("Opsi '--kertas' tidak dikenal"), "{err}");
    for english in [
        "error:",
        "required arguments",
        "unrecognized",
        "unexpected argument",
    ] {
        let (_, err) = k.fails(&["void"], 2);
        assert!(!err.contains(english), "{english:?} in {err}");
    }
    let (_, err) = k.fails(&["--lang", "en", "void"], 2);
    assert!(err.contains("required arguments"), "{err}");
    let (out, _) = k.fails(&["void", "--json"], 2);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["error"]["kind"], "usage", "{v}");
    let help = k.ok(&["void", "--help"]);
    let own = help.find("--reason").unwrap();
    let global = help.find("Opsi umum").unwrap();
    assert!(
        own < global && help[global..].contains("--data-dir"),
        "{help}"
    );
}

/// Slips of a range leave voided records out and say which (`--sheet` printed nothing before);
/// one voided slip asked for alone says why not; `verify` on the laptop that voided a record
/// says the slip is void, though its signature is genuine.
#[test]
fn voided_slips_are_left_out_and_verify_says_dibatalkan() {
    let k = Kit::new();
    for (nik, name) in [
        ("1702064107950003", "SITI AMINAH"),
        ("1702061203880007", "BUDI SANTOSO"),
        ("1702065505900011", "RINA WATI"),
    ] {
        k.ok(&[
            "record",
            "--nik",
            nik,
            "--name",
            name,
            "--phone",
            "081234567890",
            "--village",
            "1702061004",
            "--no-prompt",
        ]);
    }
    let made = k.json(&[
        "slip",
        "2",
        "--format",
        "text",
        "--out",
        k.path("s2.txt").to_str().unwrap(),
    ]);
    let payload = made["slips"][0]["payload"].as_str().unwrap().to_string();
    k.ok(&["void", "2", "--reason", "salah desa"]);
    let sheet = k.path("hari-ini.pdf");
    let out = k.run(&["slip", "1-4", "--sheet", "--out", sheet.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Tidak dicetak (dibatalkan atau pembatalan): #2, #4"),
        "{err}"
    );
    let json = k.json(&["slip", "1-4", "--sheet", "--out", sheet.to_str().unwrap()]);
    assert_eq!(json["skipped"], serde_json::json!(["#2", "#4"]));
    let seqs: Vec<i64> = json["slips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 3]);
    let (_, err) = k.fails(&["slip", "2"], 3);
    assert!(
        err.contains("#2 sudah dibatalkan") && !err.contains('('),
        "{err}"
    );
    let said = k.ok(&["verify", &payload]);
    assert!(
        said.contains("SLIP DIBATALKAN") && said.contains("#2") && said.contains("salah desa"),
        "{said}"
    );
    assert_eq!(
        k.json(&["verify", &payload])["slips"][0]["voided"]["seq"],
        2
    );
}

/// `record --print` with no printer set up says plainly that nothing was printed and where the
/// file is, instead of a "written to" line that reads like success.
#[test]
fn record_print_without_a_printer_says_it_did_not_print() {
    let k = Kit::new();
    let out = k.run(&[
        "record",
        "--nik",
        "1702064107950003",
        "--name",
        "SITI AMINAH",
        "--phone",
        "081234567890",
        "--village",
        "1702061004",
        "--no-prompt",
        "--print",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Slip TIDAK dicetak") && err.contains("slip-000001.png"),
        "{err}"
    );
    assert!(k.dir.join("slips").join("slip-000001.png").exists());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("lahir 01-07-1995"), "{said}");
}

/// The admin's token hint is the whole command for the laptop (officer, team, server id), and
/// `init` over an existing folder points to `enrol` for an enrolment that failed.
#[test]
fn setup_hints_are_the_whole_command() {
    let srv = Server::start();
    let out = srv.admin(&["token", "--team", "TIM KELILING 3"]);
    let hint = String::from_utf8_lossy(&out.stderr);
    assert!(
        hint.contains(
            "init --officer \"NAMA PETUGAS\" --team \"TIM KELILING 3\" --server URL --token"
        ) && hint.contains("--expect-server-id"),
        "{hint}"
    );
    let k = Kit::new();
    let (_, err) = k.fails(&["init", "--officer", "A", "--team", "B"], 2);
    assert!(
        err.contains("ikd-field enrol --server URL --token TOKEN"),
        "{err}"
    );
}

/// `record` on a terminal: "n" at the summary saves nothing; the desa of the session is kept
/// (Enter takes it) and found by name; a NIK already activated on this laptop is refused right
/// after it is typed, before the name is asked.
#[test]
fn record_on_a_terminal_keeps_the_desa_and_refuses_a_duplicate_at_once() {
    let k = Kit::new();
    let on_terminal = |input: &[u8]| on_terminal(&k, "record", input);
    // The desa by name (the NIK's own kecamatan first in the list), then "n": nothing saved.
    let (code, screen) =
        on_terminal(b"1702114107950003\nsiti aminah\n081234567890\nsumber urip\n\n\nn\n");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("Tidak disimpan"), "{screen}");
    assert_eq!(k.json(&["list"])["count"], 0);
    // The desa is kept for the session: Enter takes it.
    let (code, screen) = on_terminal(b"1702114107950003\nsiti aminah\n081234567890\n\n\ny\n");
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("Enter: DESA SUMBER URIP"), "{screen}");
    assert_eq!(k.json(&["show", "1"])["record"]["village"], "1702112009");
    // The same NIK again: refused before the name is asked.
    let (code, screen) = on_terminal(b"1702114107950003\nbudi\n");
    assert_eq!(code, Some(4), "{screen}");
    assert!(
        screen.contains("catatan #1 atas nama SITI AMINAH"),
        "{screen}"
    );
    assert!(!screen.contains("Nama (sesuai KTP)"), "{screen}");
}

/// Every officer-facing command's error paths, in Indonesian: no HTTP status code, `os error`,
/// record id (UUID), UTC timestamp or English parser phrase reaches the officer's screen.
#[test]
fn error_paths_speak_the_officers_language() {
    let mut srv = Server::start();
    let token = srv.token("TIM 1");
    let k = Kit::new();
    let fresh = Kit::empty();
    record_siti(&k);
    k.ok(&["void", "1", "--reason", "dobel"]);
    let mut said = Vec::new();
    let mut run = |kit: &Kit, args: &[&str]| {
        let out = kit.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        said.push((
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    };
    run(
        &k,
        &[
            "record",
            "--nik",
            "12345",
            "--name",
            "B4DI",
            "--phone",
            "021555",
            "--village",
            "17",
            "--no-prompt",
        ],
    );
    run(&k, &["void", "1", "--reason", "lagi"]);
    run(&k, &["void", "99", "--reason", "x"]);
    run(&k, &["show", "99"]);
    run(&k, &["slip", "1"]);
    run(&k, &["slip", "2"]);
    run(&k, &["verify", "IKD1:RUSAK"]);
    run(&k, &["sync"]);
    run(&k, &["list", "--status", "hilang"]);
    run(&k, &["petugas", &"A".repeat(120)]);
    run(&k, &["init", "--officer", "A", "--team", "B"]);
    run(&k, &["void"]);
    run(&k, &["kirim", "--bogus"]);
    run(&fresh, &["status"]);
    run(
        &k,
        &["enrol", "--server", &srv.url, "--token", "salah-token-0000"],
    );
    let url = srv.url.clone();
    srv.kill9();
    run(&k, &["enrol", "--server", &url, "--token", &token]);
    let uuid = |t: &str| {
        t.split(|c: char| !c.is_ascii_hexdigit() && c != '-')
            .any(|w| w.len() == 36 && w.matches('-').count() == 4)
    };
    let utc = |t: &str| {
        t.as_bytes().windows(13).any(|w| {
            w[..4].iter().all(u8::is_ascii_digit) && w[4] == b'-' && w[7] == b'-' && w[10] == b'T'
        })
    };
    let status_code = |t: &str| {
        [
            " 400", " 401", " 403", " 404", " 409", " 410", " 413", " 429", " 500", " 503",
        ]
        .iter()
        .any(|c| t.contains(&format!("{c} ")) || t.contains(&format!("({})", c.trim())))
    };
    for (cmd, err) in &said {
        assert!(!err.trim().is_empty(), "{cmd}: said nothing");
        for machine in [
            "os error",
            "error:",
            "Usage:",
            "For more information",
            "required arguments",
        ] {
            assert!(!err.contains(machine), "{cmd}: {machine:?} in {err}");
        }
        assert!(!uuid(err), "{cmd}: a record id in {err}");
        assert!(!utc(err), "{cmd}: a UTC timestamp in {err}");
        assert!(!status_code(err), "{cmd}: an HTTP status in {err}");
    }
}

/// Checking a slip at the office: `server devices --keys-file` writes the district's device
/// keys, and `verify --keys` on any machine (no laptop data) says the slip is genuine, and
/// refuses it with a keys file of another district.
#[test]
fn the_office_checks_slips_with_the_keys_file() {
    let srv = Server::start();
    let token = srv.token("TIM 1");
    let laptop = Kit::empty();
    laptop.ok(&[
        "init",
        "--officer",
        "RATNA DEWI",
        "--team",
        "TIM 1",
        "--server",
        &srv.url,
        "--token",
        &token,
    ]);
    record_siti(&laptop);
    let made = laptop.json(&[
        "slip",
        "1",
        "--format",
        "text",
        "--out",
        laptop.path("s.txt").to_str().unwrap(),
    ]);
    let payload = made["slips"][0]["payload"].as_str().unwrap().to_string();
    let keys = srv.tmp.path().join("kunci-perangkat.txt");
    let said = srv.admin_ok(&["devices", "--keys-file", keys.to_str().unwrap()]);
    assert!(said.contains("Kunci 1 perangkat"), "{said}");
    let text = std::fs::read_to_string(&keys).unwrap();
    assert!(text.contains("# RATNA DEWI / TIM 1"), "{text}");
    let office = Kit::empty();
    let ok = office.ok(&["verify", "--keys", keys.to_str().unwrap(), &payload]);
    assert!(ok.contains("SLIP SAH"), "{ok}");
    // Another district's keys do not vouch for it.
    let wrong = office.path("lain.txt");
    std::fs::write(
        &wrong,
        format!(
            "{}\n",
            ikd_field::crypto::KeyPair::from_seed([9; 32]).public_hex()
        ),
    )
    .unwrap();
    let out = office.run(&["verify", "--keys", wrong.to_str().unwrap(), &payload]);
    assert!(!out.status.success());
}

/// A double-clicked `ikd-field.exe` (no command) whose `config.toml` is broken shows the error and
/// keeps its window open until Enter, instead of closing before the officer can read it. With a
/// command (a script or a typed command line) the error does not wait.
#[test]
fn a_double_click_that_fails_before_the_desk_waits_for_enter() {
    let k = Kit::empty();
    std::fs::create_dir_all(&k.dir).unwrap();
    std::fs::write(k.dir.join("config.toml"), "[sync\nurl = \"x\"\n").unwrap();
    let (code, screen) = on_terminal(&k, "", b"\n");
    assert_eq!(code, Some(2), "{screen}");
    assert!(screen.contains("config.toml"), "{screen}");
    assert!(
        screen.contains("Tekan Enter untuk menutup jendela ini."),
        "{screen}"
    );
    let (code, screen) = on_terminal(&k, "status", b"\n");
    assert_eq!(code, Some(2), "{screen}");
    assert!(!screen.contains("Tekan Enter"), "{screen}");
}
