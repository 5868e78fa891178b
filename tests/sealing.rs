//! End to end (real binary, real `serve`, real SQLite files): a citizen's full NIK, phone and
//! e-mail never sit in the field kit's files in clear — before enrolment (holding key), after
//! enrolment (re-sealed to the district) and after sync — while the district server ends with
//! them. And retention: `purge` removes only what the server acknowledged (docs/sealing.md).
mod util;
use ikd_field::domain::validate::Input;
use util::Kit;
use util::server::Server;

/// The PIN is the process's (`keylock`): the tests that set it take turns.
static KEYLOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Synthetic citizens, every one with an e-mail.
fn people(seed: u64, n: usize) -> Vec<Input> {
    ikd_field::synth::citizens(seed, "1702", n)
        .into_iter()
        .enumerate()
        .map(|(i, mut p)| {
            if p.email.is_empty() {
                p.email = format!("warga.uji{seed}x{i}@contoh.id");
            }
            p
        })
        .collect()
}

/// The strings that must not be found: the full NIK, the phone as typed, in E.164 and its
/// national number alone (a substring of both), the e-mail.
fn secrets(p: &Input) -> Vec<String> {
    let e164 = ikd_field::domain::phone::normalize(&p.phone).unwrap();
    vec![
        p.nik.clone(),
        p.phone.clone(),
        e164.clone(),
        e164.trim_start_matches("+62").to_string(),
        p.email.clone(),
        p.email.to_lowercase(),
    ]
}

fn contains(hay: &[u8], needle: &str) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Scans the raw bytes of every file in the data directory (field.db, its -wal and -shm, keys,
/// config) and every value of every table through plain SQLite.
fn assert_nothing_in_clear(k: &Kit, people: &[Input], when: &str) {
    let mut files = 0;
    for entry in std::fs::read_dir(&k.dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            for p in people {
                for s in secrets(p) {
                    assert!(
                        !contains(&bytes, &s),
                        "{when}: {s} found in {}",
                        path.display()
                    );
                }
            }
        }
    }
    assert!(files >= 2, "{when}: the data directory has its files");
    let conn = rusqlite::Connection::open(k.dir.join("field.db")).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.contains(&"records".to_string()));
    let mut cells = 0;
    for t in &tables {
        let mut st = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = st.column_count();
        let mut rows = st.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                let bytes = match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                        b.to_vec()
                    }
                    other => format!("{other:?}").into_bytes(),
                };
                cells += 1;
                for p in people {
                    for s in secrets(p) {
                        assert!(!contains(&bytes, &s), "{when}: {s} in table {t}");
                    }
                }
            }
        }
    }
    assert!(cells > 0);
}

fn record(k: &Kit, p: &Input) -> serde_json::Value {
    let mut args = util::record_args(p);
    args.extend(["--email", &p.email]);
    k.json(&args)
}

#[test]
fn no_full_identifier_in_the_field_files_before_and_after_enrolment_and_sync() {
    let srv = Server::start();
    let k = Kit::new();
    let ppl = people(31, 6);

    // Before enrolment: sealed to the local holding key, and `status` says so.
    for p in &ppl[..4] {
        let r = record(&k, p);
        assert_eq!(r["record"]["nik"], ikd_field::domain::nik::mask(&p.nik));
        assert_eq!(r["record"]["sealed"], "holding");
    }
    assert!(k.dir.join("seal-holding.key").exists());
    let st = k.json(&["status"]);
    assert_eq!(st["seal"]["district_key_known"], false, "{st}");
    assert_eq!(st["seal"]["pending_seal"], 4);
    let text = k.ok(&["status"]);
    assert!(text.contains("4 catatan terkunci sementara"), "{text}");
    assert_nothing_in_clear(&k, &ppl, "before enrolment");
    // The duplicate warning still works, from the keyed hash.
    let mut again = util::record_args(&ppl[0]);
    again.push("--no-prompt");
    let (_, err) = k.fails(&again, 4);
    assert!(
        err.contains("sudah diaktivasi di laptop ini: catatan #1"),
        "{err}"
    );
    let first_id = k.json(&["show", "1"])["record"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!err.contains("UTC") && !err.contains(&first_id), "{err}");

    // Enrolment gives the district key: everything held is re-sealed, the holding key goes.
    k.ok(&[
        "enrol",
        "--server",
        &srv.url,
        "--token",
        &srv.token("TIM UJI"),
    ]);
    assert!(!k.dir.join("seal-holding.key").exists());
    let st = k.json(&["status"]);
    assert_eq!(st["seal"]["district_key_known"], true, "{st}");
    assert_eq!(st["seal"]["pending_seal"], 0);
    assert_eq!(st["seal"]["holding_key"], false);
    assert!(k.ok(&["status"]).contains("terkunci untuk server Dinas"));
    for p in &ppl[4..] {
        assert_eq!(record(&k, p)["record"]["sealed"], "district");
    }
    assert_nothing_in_clear(&k, &ppl, "after enrolment");
    assert_eq!(
        k.count("SELECT COUNT(*) FROM audit WHERE action = 'reseal'"),
        1
    );

    // Local views work with the masked NIK; phone and e-mail are not shown.
    let show = k.ok(&["show", "1"]);
    assert!(
        show.contains(&ikd_field::domain::nik::mask(&ppl[0].nik)),
        "{show}"
    );
    assert!(show.contains("terkunci untuk server Dinas"), "{show}");
    k.ok(&["void", "2", "--reason", "salah orang"]);
    let csv = k.ok(&["export"]);
    assert!(!csv.contains(&ppl[0].nik));

    // Sync: the server opens every seal and keeps the full values.
    let r = k.json(&["sync"]);
    assert_eq!(r["summary"]["accepted"], 7, "{r}");
    assert_nothing_in_clear(&k, &ppl, "after sync");
    // The same byte scan finds them in the district's files (the trusted store): the scanner
    // would have seen them on the laptop.
    let mut district = Vec::new();
    for suffix in ["", "-wal"] {
        let mut name = srv.db.as_os_str().to_owned();
        name.push(suffix);
        district.extend(std::fs::read(std::path::PathBuf::from(name)).unwrap_or_default());
    }
    assert!(ppl.iter().all(|p| contains(&district, &p.nik)));
    let on_server = srv.records();
    for p in &ppl {
        let rec = on_server
            .iter()
            .find(|r| r["nik"] == p.nik.as_str() && r["kind"] == "activation")
            .unwrap_or_else(|| panic!("{} not on the server", p.nik));
        assert_eq!(
            rec["phone"],
            ikd_field::domain::phone::normalize(&p.phone).unwrap()
        );
        assert_eq!(rec["email"], p.email.to_lowercase());
    }
}

#[test]
fn a_district_key_set_beforehand_means_no_holding_period() {
    let srv = Server::start();
    let key = srv.admin_ok(&["seal-key"]).trim().to_string();
    assert_eq!(key.len(), 64);
    let k = Kit::empty();
    k.ok(&[
        "init",
        "--officer",
        "P",
        "--team",
        "T",
        "--district-key",
        &key,
    ]);
    assert!(!k.dir.join("seal-holding.key").exists());
    let ppl = people(32, 2);
    assert_eq!(record(&k, &ppl[0])["record"]["sealed"], "district");
    let st = k.json(&["status"]);
    assert_eq!(
        (
            &st["seal"]["district_key_known"],
            &st["seal"]["pending_seal"]
        ),
        (&serde_json::json!(true), &serde_json::json!(0))
    );
    assert_nothing_in_clear(&k, &ppl, "pre-provisioned");
    k.ok(&["enrol", "--server", &srv.url, "--token", &srv.token("T")]);
    assert_eq!(k.json(&["sync"])["summary"]["accepted"], 1);

    // A laptop given another district's key refuses to enrol here, before spending the token.
    let other = ikd_field::seal::OpenKey::generate().unwrap().public_hex();
    let wrong = Kit::empty();
    wrong.ok(&[
        "init",
        "--officer",
        "P",
        "--team",
        "T",
        "--district-key",
        &other,
    ]);
    let token = srv.token("T");
    let (_, err) = wrong.fails(&["enrol", "--server", &srv.url, "--token", &token], 1);
    assert!(err.contains("disegel untuk kunci Dinas"), "{err}");
    let fresh = Kit::new();
    fresh.ok(&["enrol", "--server", &srv.url, "--token", &token]);
    // A malformed key is refused at init.
    let (_, err) = Kit::empty().fails(
        &[
            "init",
            "--officer",
            "P",
            "--team",
            "T",
            "--district-key",
            "abc",
        ],
        3,
    );
    assert!(err.contains("tidak sah"), "{err}");
}

fn set_config(k: &Kit, toml: &str) {
    std::fs::write(k.dir.join("config.toml"), toml).unwrap();
}

fn ids(k: &Kit, status: &str) -> Vec<String> {
    k.json(&["list", "--status", status])["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn purge_removes_only_what_the_server_acknowledged() {
    let srv = Server::start();
    let ppl = people(33, 6);
    let a = Kit::new();
    a.ok(&[
        "enrol",
        "--server",
        &srv.url,
        "--token",
        &srv.token("TIM UJI"),
    ]);
    set_config(&a, "[field]\npurge_after_sync = false\n");
    for p in &ppl[..4] {
        record(&a, p);
    }
    assert_eq!(a.json(&["sync"])["summary"]["accepted"], 4);
    // Another team activates person 0 again: a conflict on that laptop, kept there.
    let b = Kit::new();
    b.ok(&[
        "enrol",
        "--server",
        &srv.url,
        "--token",
        &srv.token("TIM UJI"),
    ]);
    record(&b, &ppl[0]);
    record(&b, &ppl[5]);
    let rb = b.json(&["sync"]);
    assert_eq!(
        (&rb["summary"]["conflict"], &rb["summary"]["accepted"]),
        (&serde_json::json!(1), &serde_json::json!(1))
    );
    // The automatic purge after sync ran with the default 7 days: nothing old enough.
    assert_eq!(rb["purge"]["records"], 0, "{rb}");
    assert_eq!(b.count("SELECT COUNT(*) FROM records"), 2);
    // One more on A, not sent: pending.
    let pending = record(&a, &ppl[4])["record"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before_audit = a.count("SELECT COUNT(*) FROM audit");
    let before_status = a.json(&["status"]);

    // Dry run: says what would go, changes nothing.
    let dry = a.json(&["purge", "--dry-run", "--older-than", "0"]);
    assert_eq!(
        (&dry["purge"]["records"], &dry["purge"]["dry_run"]),
        (&serde_json::json!(4), &serde_json::json!(true))
    );
    assert_eq!(a.count("SELECT COUNT(*) FROM records"), 5);
    assert_eq!(a.count("SELECT COUNT(*) FROM audit"), before_audit);
    // The default retention keeps records acknowledged minutes ago.
    assert_eq!(a.json(&["purge"])["purge"]["records"], 0);
    let text = a.ok(&["purge", "--older-than", "0"]);
    assert!(text.contains("Dihapus dari laptop: 4 catatan"), "{text}");
    assert_eq!(a.count("SELECT COUNT(*) FROM records"), 1);
    assert_eq!(ids(&a, "pending"), [pending]);
    assert!(ids(&a, "synced").is_empty());
    // Counts and the audit trail stay; the purge is audited.
    let after = a.json(&["status"]);
    assert_eq!(after["total"], before_status["total"]);
    assert_eq!(after["by_status"], before_status["by_status"]);
    assert_eq!(after["by_village"], before_status["by_village"]);
    assert_eq!(after["retention"]["purged"], 4);
    assert_eq!(
        a.count("SELECT COUNT(*) FROM audit WHERE action = 'record'"),
        5
    );
    assert_eq!(
        a.count("SELECT COUNT(*) FROM audit WHERE action = 'purge'"),
        1
    );
    // The batch that carried them has no body left (its sealed boxes are gone too).
    assert_eq!(
        a.count("SELECT COUNT(*) FROM outbox_batches WHERE length(body) > 0"),
        0
    );
    assert!(a.ok(&["status"]).contains("4 sudah dihapus dari laptop"));
    // The pending record is still sent and acknowledged after the purge.
    assert_eq!(a.json(&["sync"])["summary"]["accepted"], 1);

    // On B the conflict stays however old; the accepted one goes.
    let p = b.json(&["purge", "--older-than", "0"]);
    assert_eq!(p["purge"]["records"], 1);
    assert_eq!(p["purge"]["kept_follow_up"], 1);
    assert_eq!(ids(&b, "conflict").len(), 1);
}

/// A laptop enrolled before sealing existed has no district key (the old enrolment answer had
/// none): its records wait under the holding key, `sync` says so and how to fix it, and once
/// `field.district_seal_key` is set they are re-sealed and delivered.
#[test]
fn an_enrolled_laptop_without_the_district_key_is_told_and_recovers() {
    let srv = Server::start();
    let k = Kit::new();
    k.ok(&["enrol", "--server", &srv.url, "--token", &srv.token("T")]);
    // What an upgraded laptop looks like: enrolled, but no district sealing key stored.
    let db = rusqlite::Connection::open(k.dir.join("field.db")).unwrap();
    db.execute(
        "DELETE FROM meta WHERE key = ?1",
        [ikd_field::field::store::M_DISTRICT_SEAL],
    )
    .unwrap();
    drop(db);
    let ppl = people(41, 2);
    assert_eq!(record(&k, &ppl[0])["record"]["sealed"], "holding");
    let out = k.run(&["sync", "--lang", "en"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 records are not sealed for the district yet") && err.contains("seal-key"),
        "{err}"
    );
    assert!(srv.records().is_empty());
    assert_eq!(k.json(&["status"])["seal"]["pending_seal"], 1);

    // The fix the warning names: the district key from the server, in config.toml.
    let key = srv.admin_ok(&["seal-key"]).trim().to_string();
    set_config(&k, &format!("[field]\ndistrict_seal_key = \"{key}\"\n"));
    let r = k.json(&["sync"]);
    assert_eq!(r["summary"]["accepted"], 1, "{r}");
    assert_eq!(k.json(&["status"])["seal"]["pending_seal"], 0);
    assert_nothing_in_clear(&k, &ppl, "after the key was set");
}

/// A thief's copy of a laptop locked with the officer's PIN (issue #17, item 11): the commands
/// refuse without the PIN, and a script over the copied folder finds no key that reproduces the
/// stored NIK hashes — so the masked NIK and its hash no longer give the NIK by a search over
/// birth dates. The control: the same script with the right PIN finds it, so the check is real.
#[test]
fn a_copied_laptop_locked_with_a_pin_gives_no_nik() {
    use base64::Engine;
    let _turn = KEYLOCK.lock().unwrap_or_else(|e| e.into_inner());
    use ikd_field::crypto::KeyPair;
    let k = Kit::new();
    let ppl = people(41, 3);
    for p in &ppl {
        let mut args = util::record_args(p);
        args.push("--no-prompt");
        k.ok(&args);
    }
    let mut c = k.cmd(&["pin", "--stdin"]);
    c.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"kopi pagi 7\n").unwrap();
    assert!(child.wait_with_output().unwrap().status.success());

    // The thief copies the folder.
    let stolen = tempfile::tempdir().unwrap();
    for f in ["field.db", "device.key", "seal-holding.key"] {
        std::fs::copy(k.dir.join(f), stolen.path().join(f)).unwrap();
    }
    let thief = Kit {
        dir: stolen.path().to_path_buf(),
        tmp: tempfile::tempdir().unwrap(),
    };
    let (_, err) = thief.fails(&["list"], 2);
    assert!(err.contains("PIN"), "{err}");
    let mut wrong = thief.cmd(&["list"]);
    wrong.env("IKD_FIELD_PIN", "kopi pagi 8");
    let out = wrong.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PIN salah"));

    // What the copy holds: the first citizen's stored hash, and every 32-byte value the key
    // files could be read as (hex as written before; each base64 field of the locked form).
    let db = rusqlite::Connection::open(stolen.path().join("field.db")).unwrap();
    let stored: Vec<u8> = db
        .query_row("SELECT nik_tag FROM records WHERE seq = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let file = std::fs::read_to_string(stolen.path().join("device.key")).unwrap();
    assert!(file.starts_with("ikd-key-v2 argon2id"), "{file}");
    let mut candidates: Vec<[u8; 32]> = Vec::new();
    for field in file.split_whitespace() {
        let bytes = hex::decode(field)
            .ok()
            .or_else(|| {
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(field)
                    .ok()
            })
            .unwrap_or_default();
        for w in bytes.windows(32) {
            candidates.push(w.try_into().unwrap());
        }
    }
    let tag_of = |seed: [u8; 32]| {
        let key = ikd_field::seal::tag_key(&KeyPair::from_seed(seed));
        ikd_field::seal::nik_tag(&key, &ppl[0].nik).to_vec()
    };
    assert!(!candidates.is_empty());
    assert!(
        candidates.iter().all(|c| tag_of(*c) != stored),
        "the copied key file gives the NIK hash key without the PIN"
    );
    // With the PIN, the same search finds it.
    ikd_field::keylock::set_pin(Some("kopi pagi 7"));
    let seed = ikd_field::crypto::load_secret(&stolen.path().join("device.key")).unwrap();
    ikd_field::keylock::set_pin(None);
    assert_eq!(tag_of(seed), stored);
    // And the officer, with the PIN, works as before.
    let mut with_pin = k.cmd(&["list", "--json"]);
    with_pin.env("IKD_FIELD_PIN", "kopi pagi 7");
    let out = with_pin.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PIN change interrupted between its two renames (power cut, Ctrl+C) does not strand the
/// laptop: the next open with the new PIN finishes it. A first `pin` interrupted before the
/// holding key was locked does not leave that key in clear: the next open locks it.
#[test]
fn an_interrupted_pin_change_is_finished_at_the_next_open() {
    use ikd_field::{crypto, keylock};
    let _turn = KEYLOCK.lock().unwrap_or_else(|e| e.into_inner());
    let k = Kit::new();
    let ppl = people(43, 2);
    for p in &ppl {
        let mut args = util::record_args(p);
        args.push("--no-prompt");
        k.ok(&args);
    }
    let (device, holding) = (k.dir.join("device.key"), k.dir.join("seal-holding.key"));
    let with_pin = |pin: &str, args: &[&str]| {
        let mut c = k.cmd(args);
        c.env("IKD_FIELD_PIN", pin);
        c.output().unwrap()
    };

    // 1. The first `pin` stopped after the device key: the holding key is still in clear.
    keylock::set_pin(None);
    let seed = crypto::load_secret(&device).unwrap();
    std::fs::write(&device, keylock::lock(&seed, "kopi pagi 1").unwrap()).unwrap();
    assert!(!keylock::is_locked(
        &std::fs::read_to_string(&holding).unwrap()
    ));
    assert!(with_pin("kopi pagi 1", &["status"]).status.success());
    assert!(
        keylock::is_locked(&std::fs::read_to_string(&holding).unwrap()),
        "the holding key stayed in clear"
    );

    // 2. A change from PIN 1 to PIN 2 stopped after the device key's rename: the holding key's
    //    new form is staged beside it, the old one is still under PIN 1.
    keylock::set_pin(Some("kopi pagi 1"));
    let hold_secret = crypto::load_secret(&holding).unwrap();
    std::fs::write(&device, keylock::lock(&seed, "kopi pagi 2").unwrap()).unwrap();
    std::fs::write(
        k.dir.join("seal-holding.key.new"),
        keylock::lock(&hold_secret, "kopi pagi 2").unwrap(),
    )
    .unwrap();
    keylock::set_pin(None);
    let out = with_pin("kopi pagi 2", &["list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!k.dir.join("seal-holding.key.new").exists());
    keylock::set_pin(Some("kopi pagi 2"));
    assert_eq!(crypto::load_secret(&holding).unwrap(), hold_secret);
    keylock::set_pin(None);
    // The old PIN opens nothing now.
    assert_eq!(with_pin("kopi pagi 1", &["status"]).status.code(), Some(2));
}
