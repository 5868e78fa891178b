//! Crash test: `ikd-field record` processes are killed with SIGKILL at random moments, many
//! times. Every record whose command exited 0 must be in the database exactly once, no NIK may
//! appear twice, and `PRAGMA integrity_check` must say ok.
mod util;
use ikd_field::synth::{self, Rng};
use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};
use util::Kit;

#[test]
fn kill_9_at_random_moments_loses_no_acknowledged_record() {
    let k = Kit::new();
    let people = synth::citizens(99, "1702", 400);
    let mut rng = Rng::new(2026);
    let mut acknowledged: Vec<String> = Vec::new();
    let mut kills = 0;
    let mut next = 0usize;
    let started = Instant::now();
    // Bounded by count and by time, whichever first; at least 40 kills are required below.
    while next < people.len()
        && (kills < 60 || acknowledged.len() < 20)
        && started.elapsed() < Duration::from_secs(120)
    {
        let p = &people[next];
        let mut args = util::record_args(p);
        args.push("--no-prompt");
        let mut child = k
            .cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Half the time let it finish, otherwise kill it somewhere inside its run.
        let kill_after = if rng.below(2) == 0 {
            None
        } else {
            Some(Duration::from_micros(rng.below(40_000)))
        };
        let status = match kill_after {
            None => child.wait().unwrap(),
            Some(d) => {
                std::thread::sleep(d);
                match child.try_wait().unwrap() {
                    Some(s) => s,
                    None => {
                        child.kill().unwrap(); // SIGKILL
                        kills += 1;
                        child.wait().unwrap()
                    }
                }
            }
        };
        match status.code() {
            Some(0) => acknowledged.push(p.nik.clone()),
            // A killed run may have committed anyway: a retry is then refused as a duplicate.
            Some(4) => acknowledged.push(p.nik.clone()),
            None => {}
            Some(c) => panic!("unexpected exit code {c} for {}", p.nik),
        }
        // Move on after success, or after a killed attempt half the time (leaving it ambiguous).
        if status.code().is_some() || rng.below(2) == 0 {
            next += 1;
        }
    }
    assert!(kills >= 40, "only {kills} kills happened");

    let conn = rusqlite::Connection::open(k.dir.join("field.db")).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    // The laptop keeps only a keyed hash of each NIK (docs/sealing.md): count by that.
    let device = ikd_field::crypto::KeyPair::load(&k.dir.join("device.key")).unwrap();
    let tag_key = ikd_field::seal::tag_key(&device);
    let mut count: HashMap<Vec<u8>, i64> = HashMap::new();
    let mut stmt = conn.prepare("SELECT nik_tag FROM records").unwrap();
    for tag in stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap() {
        *count.entry(tag.unwrap()).or_default() += 1;
    }
    for nik in &acknowledged {
        assert_eq!(
            count.get(ikd_field::seal::nik_tag(&tag_key, nik).as_slice()),
            Some(&1),
            "acknowledged NIK {nik} must be present exactly once"
        );
    }
    assert!(count.values().all(|&n| n == 1), "no NIK twice");
    // Sequence numbers stay dense and unique; the audit log has one entry per record.
    let (n, max_seq, audits): (i64, i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), MAX(seq), (SELECT COUNT(*) FROM audit WHERE action = 'record') FROM records",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((n, max_seq, audits), (count.len() as i64, n, n));
    // The store still works after all that.
    k.json(&["status"]);
}
