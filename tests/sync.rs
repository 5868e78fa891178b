//! End to end: the real binary as field kit and as district server (`serve` on 127.0.0.1, real
//! SQLite files on both sides). Enrol, record, sync, and check the records on the server.
mod netfault;
#[macro_use]
mod util;
use netfault::{FAST, Proxy, Server, enrolled_kit, local, record_many};
use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};
use util::{Kit, free_port};

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

both_stores! {
fn enrol_record_sync_then_nothing_new() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let k = enrolled_kit(&server, "batch_size = 25");
    let people = ikd_field::synth::citizens(1, "1702", 3);
    let mut ids: Vec<String> = (0..3)
        .map(|i| {
            k.record_synthetic(&people, i)["record"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ids.extend(record_many(&k, 2, 60));

    let st = k.json(&["status"]);
    assert_eq!(st["sync"]["pending"], 63);
    assert_eq!(st["sync"]["enrolment"]["server_url"], server.url.as_str());
    assert!(st["sync"]["last_sync"].is_null());

    let r = k.json(&["sync"]);
    assert_eq!(r["summary"]["accepted"], 63, "{r}");
    // The first batch at batch_size, the rest in one: batches grow after the first exchange.
    assert_eq!(
        (r["records"].as_u64(), r["batches"].as_u64()),
        (Some(63), Some(2))
    );
    assert_eq!(r["batch_records"], serde_json::json!([25, 38]), "{r}");
    assert_eq!(r["pending"], 0);
    // Bytes on the wire are far below one request per record.
    assert!(r["bytes_sent"].as_u64().unwrap() < 63 * 200, "{r}");

    assert_eq!(set(&server.ids()), set(&ids));
    assert_eq!(server.ids().len(), 63);
    assert_eq!(set(&local(&k, "synced")), set(&ids));
    let batches = server.stats()["batches"].clone();

    // Again: nothing is sent, the server sees no new batch.
    let again = k.json(&["sync"]);
    assert_eq!(
        (again["records"].as_u64(), again["batches"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(server.stats()["batches"], batches);
    let text = k.ok(&["sync"]);
    assert!(text.contains("Tidak ada yang perlu dikirim"), "{text}");

    // A new record later goes alone, with the Indonesian summary line.
    record_many(&k, 3, 1);
    let text = k.ok(&["sync"]);
    assert!(
        text.contains("Diterima server Dinas: 1 aktivasi, 0 pembatalan"),
        "{text}"
    );
    assert_eq!(server.ids().len(), 64);

    let st = k.json(&["status"]);
    assert_eq!(st["sync"]["pending"], 0);
    assert!(st["sync"]["last_sync"].is_string());
    let line = k.ok(&["status"]);
    assert!(
        line.contains(&server.url) && line.contains("menunggu: 0"),
        "{line}"
    );
    // The audit log names every answered batch.
    assert_eq!(
        k.count("SELECT COUNT(*) FROM audit WHERE action = 'sync_batch'"),
        3
    );
}
}

both_stores! {
fn one_bad_record_and_a_conflict_do_not_block_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let a = enrolled_kit(&server, "batch_size = 500");
    let b = enrolled_kit(&server, "batch_size = 500");
    let people = ikd_field::synth::citizens(5, "1702", 4);
    for i in 0..3 {
        a.record_synthetic(&people, i);
    }
    // Team B activates person 1 again (on another laptop), plus someone new.
    let dup = b.record_synthetic(&people, 1)["record"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    b.record_synthetic(&people, 3);
    // A record the server must refuse: written straight into B's database with a village that
    // does not exist (the CLI would not let an officer type it).
    {
        let dd = ikd_field::field::datadir::DataDir::open(&b.dir).unwrap();
        let district = ikd_field::field::sealing::district_key(&dd.store)
            .unwrap()
            .unwrap();
        let sealed = ikd_field::seal::seal(
            &district,
            &ikd_field::seal::Secrets {
                nik: "1702064107950099".into(),
                phone: "+6281234567899".into(),
                email: None,
            },
        )
        .unwrap();
        dd.store
            .conn()
            .execute(
                "INSERT INTO records (id, seq, device_id, officer, team, recorded_at, kind, village,
                                      nik_masked, name, sealed, sealed_to)
                 VALUES ('01900000-0000-7000-8000-00000000bad1', 99, ?1, 'X', 'Y',
                         '2026-11-23T01:00:00.000Z', 'activation', '1702069999',
                         '170206******0099', 'SALAH DESA', ?2, ?3)",
                rusqlite::params![
                    dd.identity.device_id,
                    sealed,
                    format!("district:{}", ikd_field::seal::key_id(&district))
                ],
            )
            .unwrap();
    }
    let ra = a.json(&["sync"]);
    assert_eq!(ra["summary"]["accepted"], 3);
    let rb = b.json(&["sync"]);
    assert_eq!(rb["summary"]["accepted"], 1, "{rb}");
    assert_eq!(rb["summary"]["conflict"], 1, "{rb}");
    assert_eq!(rb["summary"]["rejected"], 1, "{rb}");
    assert_eq!(rb["pending"], 0);
    let problems = rb["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2);
    let conflict = b.json(&["show", &dup]);
    assert_eq!(conflict["record"]["status"], "conflict");
    assert!(
        conflict["record"]["status_reason"]
            .as_str()
            .unwrap()
            .contains("conflict_with"),
        "{conflict}"
    );
    // On the officer's screen: what happened and what to do, no code and no record id.
    let shown = b.ok(&["show", &dup]);
    // Who activated the person first (team, officer, local time, desa) and what to do, by #.
    let desa = ikd_field::domain::region::village(&people[1].village)
        .unwrap()
        .name
        .clone();
    assert!(
        shown.contains("sudah diaktivasi oleh TIM UJI (PETUGAS UJI)")
            && shown.contains(&format!("di {desa}"))
            && shown.contains("batalkan catatan Anda: ikd-field void 1"),
        "{shown}"
    );
    assert!(
        !shown.contains("nik_already_activated") && !shown.contains("conflict_with"),
        "{shown}"
    );
    let text = b.json(&["show", "99"]);
    assert_eq!(text["record"]["status"], "rejected");
    // The server kept the conflicting record (flagged) and refused the bad one.
    assert_eq!(server.ids().len(), 5);
    // Nothing stays pending, so a rerun sends nothing.
    assert_eq!(b.json(&["sync"])["records"], 0);
}
}

both_stores! {
fn enrolment_refusals_and_an_unreachable_server() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let token = server.token();
    let a = Kit::new();
    a.ok(&["enrol", "--server", &server.url, "--token", &token]);
    // The same token again is refused with a clear message; exit 1.
    let b = Kit::new();
    let (_, err) = b.fails(&["enrol", "--server", &server.url, "--token", &token], 1);
    assert!(err.contains("sudah pernah dipakai"), "{err}");
    let (_, err) = b.fails(
        &["enrol", "--server", &server.url, "--token", "NOPE-NOPE"],
        1,
    );
    assert!(err.contains("tidak dikenal"), "{err}");
    // Not enrolled: sync says how to enrol.
    let (_, err) = b.fails(&["sync"], 2);
    assert!(err.contains("ikd-field enrol"), "{err}");
    // init --server with a dead address: the data dir is made, enrolment fails with exit 5.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let c = Kit::empty();
    let (_, err) = c.fails(
        &[
            "init",
            "--officer",
            "X",
            "--team",
            "Y",
            "--server",
            &dead,
            "--token",
            "T",
        ],
        5,
    );
    assert!(err.contains("sudah siap"), "{err}");
    assert!(c.dir.join("field.db").exists());
    // A server that went away: exit 5, nothing lost, records untouched.
    std::fs::write(a.dir.join("config.toml"), format!("[sync]\n{FAST}\n")).unwrap();
    record_many(&a, 9, 5);
    let (_, err) = a.fails(&["sync", "--server", &dead], 5);
    assert!(err.contains("Tidak ada yang hilang"), "{err}");
    assert_eq!(local(&a, "pending").len(), 5);
    let out = a.run(&["sync", "--server", &dead, "--lang", "en"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Nothing lost"));
    // The enrolled route still works afterwards.
    assert_eq!(a.json(&["sync"])["summary"]["accepted"], 5);
}
}

both_stores! {
fn a_revoked_device_is_refused_and_keeps_its_records() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let k = enrolled_kit(&server, FAST);
    record_many(&k, 11, 4);
    assert_eq!(k.json(&["sync"])["summary"]["accepted"], 4);
    record_many(&k, 12, 3);
    let device = k.json(&["status"])["device"]["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    server.admin_ok(&["revoke", &device]);
    let (_, err) = k.fails(&["sync"], 1);
    assert!(err.contains("dicabut"), "{err}");
    // A revoked key can never enrol again: the officer is not sent down that road.
    assert!(err.contains("jangan coba ikd-field enrol"), "{err}");
    assert_eq!(local(&k, "pending").len(), 3);
    assert_eq!(local(&k, "synced").len(), 4);
    assert_eq!(server.ids().len(), 4);
}
}

both_stores! {
fn to_file_then_import_then_online_sync_marks_records_synced() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let k = enrolled_kit(&server, "batch_size = 40");
    let ids = record_many(&k, 21, 100);
    let file = k.path("usb-batches.jsonl");
    let r = k.json(&["sync", "--to-file", file.to_str().unwrap()]);
    assert_eq!(
        (
            r["to_file"]["records"].as_u64(),
            r["to_file"]["batches"].as_u64()
        ),
        (Some(100), Some(3))
    );
    // Each line is a FileBatch: exactly what the HTTP request would carry.
    let text = String::from_utf8(util::read(&file)).unwrap();
    assert_eq!(text.lines().count(), 3);
    let line: ikd_field::protocol::FileBatch =
        serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line.device_id, k.json(&["status"])["device"]["device_id"]);
    // Records stay pending until an answer reaches the laptop.
    assert_eq!(local(&k, "pending").len(), 100);
    // Written again, the same batches come out byte for byte (nothing re-cut).
    let file2 = k.path("again.jsonl");
    k.json(&["sync", "--to-file", file2.to_str().unwrap()]);
    assert_eq!(util::read(&file2), util::read(&file));

    let out = server.admin(&["import", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(set(&server.ids()), set(&ids));

    // Online now: the server answers from its journal; every record ends up synced, none doubled.
    let r = k.json(&["sync"]);
    let s = &r["summary"];
    assert_eq!(
        s["accepted"].as_u64().unwrap() + s["duplicate"].as_u64().unwrap(),
        100,
        "{r}"
    );
    assert_eq!(local(&k, "synced").len(), 100);
    assert_eq!(server.ids().len(), 100);
}
}

both_stores! {
fn watch_waits_for_the_server_then_syncs_and_stops_on_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let k = enrolled_kit(&server, &format!("{FAST}\nwatch_interval_secs = 1"));
    record_many(&k, 31, 30);
    // The route goes through a proxy whose upstream is dead for now.
    let dead: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let proxy = Proxy::start(dead);
    let child = k
        .cmd(&["sync", "--watch", "--server", &proxy.url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until watch has tried the dead route at least twice, then bring the route up.
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy.requests.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(Instant::now() < deadline, "watch never checked the server");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(local(&k, "pending").len(), 30);
    proxy.set_upstream(server.addr);
    while local(&k, "synced").len() < 30 {
        assert!(Instant::now() < deadline, "watch never synced");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Ctrl-C: stops cleanly with exit 0.
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("diterima server Dinas: 30 aktivasi, 0 pembatalan"));
    assert_eq!(server.ids().len(), 30);
}
}

both_stores! {
fn a_laptop_restored_from_backup_resends_and_gets_duplicate() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let k = enrolled_kit(&server, "batch_size = 15");
    let ids = record_many(&k, 81, 40);
    // A backup taken before the sync (no process has the database open now).
    let backup = k.path("backup");
    std::fs::create_dir_all(&backup).unwrap();
    for f in std::fs::read_dir(&k.dir).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_file() {
            std::fs::copy(f.path(), backup.join(f.file_name())).unwrap();
        }
    }
    assert_eq!(k.json(&["sync"])["summary"]["accepted"], 40);
    // The disk dies; the laptop comes back from the backup, all 40 pending again, no journal.
    for side in ["field.db-wal", "field.db-shm"] {
        let _ = std::fs::remove_file(k.dir.join(side));
    }
    for f in std::fs::read_dir(&backup).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), k.dir.join(f.file_name())).unwrap();
    }
    assert_eq!(local(&k, "pending").len(), 40);
    let r = k.json(&["sync"]);
    assert_eq!(r["summary"]["duplicate"], 40, "{r}");
    assert_eq!(local(&k, "synced").len(), 40);
    assert_eq!(set(&server.ids()), set(&ids));
    assert_eq!(server.ids().len(), 40);
}
}

both_stores! {
fn voids_follow_their_records_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let k = enrolled_kit(&server, "batch_size = 4");
    record_many(&k, 91, 10);
    // #11 voids #2 (a later batch); #12 voids #10 (the batch right after its target's).
    k.ok(&["void", "2", "--reason", "salah orang"]);
    k.ok(&["void", "10", "--reason", "salah ketik"]);
    let r = k.json(&["sync"]);
    assert_eq!(r["summary"]["accepted"], 12, "{r}");
    let stats = server.stats();
    assert_eq!(
        (stats["voids"].as_u64(), stats["activations_live"].as_u64()),
        (Some(2), Some(8))
    );
    assert_eq!(local(&k, "synced").len(), 12);
}
}

both_stores! {
fn after_a_sync_record_warns_of_a_nik_another_team_activated() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let a = enrolled_kit(&server, "");
    let b = enrolled_kit(&server, "");
    let people = ikd_field::synth::citizens(95, "1702", 3);
    a.record_synthetic(&people, 0);
    a.record_synthetic(&people, 1);
    a.json(&["sync"]);
    // Team B syncs (nothing to send) and so gets the district's list of activated NIKs.
    let r = b.json(&["sync"]);
    assert_eq!(r["activated"], 2, "{r}");
    let dup = b.record_synthetic(&people, 1);
    assert!(dup["district_activated"].is_string(), "{dup}");
    let fresh = b.record_synthetic(&people, 2);
    assert!(fresh["district_activated"].is_null(), "{fresh}");
    // A later sync fetches only what is new.
    assert_eq!(b.json(&["sync"])["activated"], 1);
    // The text output says it in Indonesian.
    let c = enrolled_kit(&server, "");
    c.json(&["sync"]);
    let p = &people[0];
    let out = c.ok(&util::record_args(p));
    assert!(out.contains("kemungkinan sudah diaktivasi"), "{out}");
}
}

/// The laptop's clock, told to the binary by `IKD_FIELD_FAKE_NOW` (read by debug builds only).
/// A clock behind the build date, or behind the last server answer, refuses to record (nothing
/// saved, the fix named); a clock ahead is recorded and the server flags the record
/// (`clock_ahead`); retention counts from the server's acknowledgement, not the laptop's clock.
#[test]
fn a_wrong_laptop_clock_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    // No purge after each sync: the test purges by hand, with the real clock.
    let k = enrolled_kit(
        &server,
        &format!("{FAST}\n[field]\npurge_after_sync = false"),
    );
    let people = ikd_field::synth::citizens(61, "1702", 3);
    let at = |when: &str, args: &[&str]| {
        k.cmd(args)
            .env(ikd_field::timefmt::FAKE_NOW_ENV, when)
            .output()
            .unwrap()
    };
    let record = |i: usize| util::record_args(&people[i]);

    // A clock reset to 2019 (before this build was made): refused, nothing saved.
    let out = at("2019-01-01T08:00:00Z", &record(0));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Jam laptop salah") && err.contains("Atur tanggal"),
        "{err}"
    );
    assert_eq!(k.json(&["list"])["count"], 0);

    // A clock 30 days ahead: the laptop cannot tell; the server flags the record.
    let ahead =
        ikd_field::timefmt::stamp(time::OffsetDateTime::now_utc() + time::Duration::days(30));
    let out = at(&ahead, &record(0));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = at(&ahead, &["sync", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = server.admin_ok(&["export", "--format", "json"]);
    assert!(stored.contains("clock_ahead"), "{stored}");
    // Acknowledged by the server (its own time), so a purge with the real clock takes it,
    // although the laptop stamped the acknowledgement 30 days ahead of now.
    let purged = k.json(&["purge", "--older-than", "0"]);
    assert_eq!(purged["purge"]["records"], 1, "{purged}");

    // Behind the time of the server's last answer (two days): refused.
    let behind =
        ikd_field::timefmt::stamp(time::OffsetDateTime::now_utc() - time::Duration::days(2));
    let out = at(&behind, &record(1));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With the clock right, the same citizen is recorded.
    k.ok(&record(1));
}

/// One damaged row (a name that is not UTF-8 any more, as a failing disk leaves it) does not
/// block the sync of the good records: it is set aside as rejected (`damaged`), the others are
/// delivered, and a command that must read that row gives the damaged-database advice, not a
/// bare "invalid utf-8".
#[test]
fn a_damaged_row_is_set_aside_and_the_rest_syncs() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let k = enrolled_kit(&server, FAST);
    let ids = record_many(&k, 71, 5);
    {
        let db = rusqlite::Connection::open(k.dir.join("field.db")).unwrap();
        db.execute_batch(
            "DROP TRIGGER records_immutable;
             UPDATE records SET name = CAST(x'ff4c49' AS TEXT) WHERE seq = 3;",
        )
        .unwrap();
    }
    let r = k.json(&["sync"]);
    assert_eq!(r["summary"]["accepted"], 4, "{r}");
    assert_eq!(server.ids().len(), 4);
    assert!(!server.ids().contains(&ids[2]));
    let (_, err) = k.fails(&["list"], 1);
    assert!(err.contains("rusak") && err.contains("flashdisk"), "{err}");
    let db = rusqlite::Connection::open(k.dir.join("field.db")).unwrap();
    let (status, reason): (String, String) = db
        .query_row(
            "SELECT status, status_reason FROM records WHERE seq = 3",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(status, "rejected");
    assert!(reason.starts_with("damaged"), "{reason}");
}

/// What the officer reads when a sync or an enrolment fails is a sentence with the next step:
/// no HTTP status, no `os error`, no UUID, no UTC time stamp (they stay in `--json`).
#[test]
fn failure_messages_speak_plainly() {
    fn machine_text(err: &str) -> Option<String> {
        if err.contains("os error") {
            return Some("os error".into());
        }
        let words: Vec<&str> = err
            .split(|c: char| c.is_whitespace() || "(),:;".contains(c))
            .collect();
        for w in &words {
            let is_status = w.len() == 3
                && w.chars().all(|c| c.is_ascii_digit())
                && matches!(&w[..1], "4" | "5");
            let is_uuid = w.len() == 36 && w.matches('-').count() == 4;
            let is_stamp = w.len() >= 20 && w.as_bytes().get(10) == Some(&b'T') && w.ends_with('Z');
            if is_status || is_uuid || is_stamp {
                return Some(w.to_string());
            }
        }
        None
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let a = enrolled_kit(&server, FAST);
    let token = server.token();
    Kit::new().ok(&["enrol", "--server", &server.url, "--token", &token]);
    // A used token.
    let b = Kit::new();
    let (_, err) = b.fails(&["enrol", "--server", &server.url, "--token", &token], 1);
    assert_eq!(machine_text(&err), None, "{err}");
    // No server at all.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let (_, err) = b.fails(&["enrol", "--server", &dead, "--token", &token], 5);
    assert_eq!(machine_text(&err), None, "{err}");
    record_many(&a, 81, 2);
    let (_, err) = a.fails(&["sync", "--server", &dead], 5);
    assert_eq!(machine_text(&err), None, "{err}");
    assert!(err.contains("tidak ada sinyal"), "{err}");
    // A revoked laptop.
    let device = a.json(&["status"])["device"]["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    server.admin_ok(&["revoke", &device]);
    let (_, err) = a.fails(&["sync"], 1);
    assert_eq!(machine_text(&err), None, "{err}");
    // The precise reason is still there for scripts.
    let out = a.run(&["sync", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["details"]["code"], "device_revoked", "{v}");
}
