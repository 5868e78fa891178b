//! Two `ikd-field serve` processes on ONE PostgreSQL database, laptops sending to both at once:
//! the district stays correct whatever the writers' interleaving. The guard for letting more than
//! one writer run at a time on PostgreSQL (today one write transaction at a time, an advisory
//! lock: `server::db`). PostgreSQL only (`IKD_TEST_POSTGRES`; a skip note without it, a failure
//! under `CI=true`, as every PostgreSQL test).
//!
//! One run on one fresh database, in two phases, each checked the same way after it ends:
//!
//! 1. Activations: 8 enrolled devices, each in its own thread, send a batch per round, the rounds
//!    started together (a barrier), device d's batch of round r to server (d + r) mod 2. Many
//!    citizens are recorded by 2 or 4 devices in the same round (neighbouring devices, so on both
//!    servers at the same moment). Per NIK exactly one record is answered `accepted` and is live
//!    in the database; every other activation of it is answered `conflict`
//!    (`nik_already_activated`, naming the accepted one); every record is answered once, and the
//!    database holds what the answers said.
//! 2. Voids and replays, again concurrently through both servers: devices void some of their
//!    accepted records; some targets are voided twice at once through the two servers (one void
//!    accepted, the other rejected `already_voided`); another device activates a voided citizen
//!    again in the same moment (accepted or `conflict` with the voided record, never two live);
//!    every batch of phase 1 is sent again through the other server and gets its journalled
//!    answer, byte for byte.
//!
//! After each phase: the dashboard's aggregates (`live_by_village`, `live_by_device_hour`,
//! `live_by_village_hour`) equal a recount of the records table (also the report's total and
//! `server stats` on both servers), and two cursor readers that paged while the batches went in
//! missed nothing and saw nothing twice: a laptop's activated list (`POST /v1/activated` from
//! `next`, through both servers, against the NIK prefixes of the live activations) and the
//! forwarder's `Store::records_after` (against the records stored). No timing is asserted.
mod util;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ikd_field::domain::Record;
use ikd_field::domain::validate::Input;
use ikd_field::protocol::{self, ActivatedResponse, BatchResponse, Outcome, RecordResult};
use ikd_field::server::store::{Location, Store};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::Duration;
use util::server::{Server, SignedBatch, TestDevice};

/// [`util::server::TEST_CONFIG`] without the per-device rate limit: the activated-list reader
/// asks again and again.
const CONFIG: &str = "[server]
threads = 4
max_body_bytes = 2097152
max_decompressed_bytes = 8388608
max_batch_records = 1000
device_requests_per_minute = 0
";

const DEVICES: usize = 8;
const ROUNDS: usize = 24;
/// Per device and round: citizens only this device records…
const OWN: usize = 10;
/// …citizens it records with the next device…
const PAIRED: usize = 5;
/// …and citizens it records with the next three.
const FOURFOLD: usize = 2;
/// Rounds of voids (phase 2).
const VOID_ROUNDS: usize = 3;
/// Every how many of its accepted records a device voids.
const VOID_EVERY: usize = 4;

/// A batch as sent and as answered.
struct Sent {
    batch: SignedBatch,
    /// The answer's bytes (uncompressed: no `Accept-Encoding`) and signature.
    body: Vec<u8>,
    signature: Option<String>,
    answer: BatchResponse,
}

/// Sends `batch` to `url`; asserts a 200 signed by the district key and an answer that names
/// each record of the batch once, in order, with a summary that adds up.
fn send(batch: &SignedBatch, url: &str, key: &[u8; 32]) -> Sent {
    let r = batch.send(url).expect("server reachable");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.signed_by(key), "answer not signed by the district key");
    assert_eq!(r.encoding, None);
    let answer: BatchResponse = serde_json::from_slice(&r.body).expect("a batch answer");
    assert_eq!(answer.batch_id, batch.batch_id);
    let ids: Vec<&str> = answer.results.iter().map(|x| x.id.as_str()).collect();
    let sent: Vec<&str> = batch.records.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(ids, sent, "each record answered once, in order");
    let n = |o: Outcome| answer.results.iter().filter(|x| x.status == o).count();
    let s = &answer.summary;
    assert_eq!(
        (s.accepted, s.duplicate, s.conflict, s.rejected),
        (
            n(Outcome::Accepted),
            n(Outcome::Duplicate),
            n(Outcome::Conflict),
            n(Outcome::Rejected)
        )
    );
    Sent {
        batch: batch.clone(),
        body: r.body,
        signature: r.signature,
        answer,
    }
}

/// Sends `sent`'s batch again through `url`: the journalled answer, byte for byte.
fn resend(sent: &Sent, url: &str) {
    let r = sent.batch.send(url).expect("server reachable");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.body == sent.body,
        "a batch sent again got another answer:\n{}\nfirst:\n{}",
        String::from_utf8_lossy(&r.body),
        String::from_utf8_lossy(&sent.body)
    );
    assert_eq!(r.signature, sent.signature);
}

/// Each device's batches, one per round, sent from one thread per device, round by round
/// started together; batch r of device d through `urls[(d + r) % 2]`, after the batches of
/// `extra[d][r]` (other devices' batches the thread carries) through the same server.
fn send_rounds(
    urls: &[String; 2],
    key: [u8; 32],
    batches: Vec<Vec<SignedBatch>>,
    extra: Vec<Vec<Vec<SignedBatch>>>,
) -> (Vec<Vec<Sent>>, Vec<Vec<Sent>>) {
    let start = Arc::new(Barrier::new(batches.len()));
    let threads: Vec<_> = batches
        .into_iter()
        .zip(extra)
        .enumerate()
        .map(|(d, (mine, extra))| {
            let (urls, start) = (urls.clone(), Arc::clone(&start));
            std::thread::spawn(move || {
                let (mut own, mut carried) = (Vec::new(), Vec::new());
                let mut failed = None;
                for (r, b) in mine.iter().enumerate() {
                    start.wait();
                    // After a failed round this thread still meets the others at the barrier
                    // (they would wait for it forever), and fails at the end.
                    if failed.is_some() {
                        continue;
                    }
                    let url = &urls[(d + r) % 2];
                    let round = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        let c: Vec<Sent> = extra
                            .get(r)
                            .into_iter()
                            .flatten()
                            .map(|x| send(x, url, &key))
                            .collect();
                        (c, send(b, url, &key))
                    }));
                    match round {
                        Ok((c, o)) => {
                            carried.extend(c);
                            own.push(o);
                        }
                        Err(e) => failed = Some(e),
                    }
                }
                if let Some(e) = failed {
                    std::panic::resume_unwind(e);
                }
                (own, carried)
            })
        })
        .collect();
    let joined: Vec<_> = threads.into_iter().map(|t| t.join()).collect();
    joined
        .into_iter()
        .map(|j| j.unwrap_or_else(|e| std::panic::resume_unwind(e)))
        .unzip()
}

/// Asserts two counts by key are the same, naming the keys that differ.
fn assert_same_counts(what: &str, got: &BTreeMap<String, i64>, want: &BTreeMap<String, i64>) {
    let keys: BTreeSet<&String> = got.keys().chain(want.keys()).collect();
    let differ: Vec<String> = keys
        .into_iter()
        .filter(|k| got.get(*k) != want.get(*k))
        .map(|k| format!("{k}: {:?} (expected {:?})", got.get(k), want.get(k)))
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: {} keys differ, e.g.\n{}",
        differ.len(),
        differ[..differ.len().min(20)].join("\n")
    );
}

/// How many times each item comes (a multiset, for comparison).
fn counts<T: ToString>(items: impl IntoIterator<Item = T>) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for i in items {
        *m.entry(i.to_string()).or_insert(0) += 1;
    }
    m
}

/// [`counts`] of NIK prefixes, in hex.
fn prefix_counts(prefixes: impl IntoIterator<Item = [u8; 3]>) -> BTreeMap<String, i64> {
    counts(prefixes.into_iter().map(hex::encode))
}

/// The two cursor readers, paging while batches go in.
struct Readers {
    stop: Arc<AtomicBool>,
    /// The activated list through both servers (and the device that asks): NIK prefixes.
    activated: JoinHandle<(TestDevice, Read<[u8; 3]>)>,
    /// `Store::records_after`: record ids.
    forward: JoinHandle<Read<String>>,
}

/// What a cursor reader read, in order; where it stopped; how many pages it asked for.
struct Read<T> {
    items: Vec<T>,
    cursor: i64,
    pages: usize,
}

/// One page of the activated list from `since`, through `url`, checked and decoded.
fn activated_page(dev: &TestDevice, url: &str, key: &[u8; 32], since: i64) -> ActivatedResponse {
    let r = dev.activated(url, since);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.signed_by(key),
        "activated list not signed by the district key"
    );
    let a: ActivatedResponse = serde_json::from_value(r.json()).expect("an activated list");
    assert_eq!(a.since, since);
    assert_eq!(a.prefix_bytes, protocol::NIK_PREFIX_BYTES);
    assert!(
        a.next >= since,
        "the cursor went back: {} after {since}",
        a.next
    );
    assert_eq!(a.next == since, a.count == 0);
    a
}

fn prefixes(a: &ActivatedResponse) -> Vec<[u8; 3]> {
    let bytes = B64.decode(&a.prefixes).expect("base64 prefixes");
    assert_eq!(bytes.len(), a.count * protocol::NIK_PREFIX_BYTES);
    bytes
        .chunks(protocol::NIK_PREFIX_BYTES)
        .map(|c| c.try_into().unwrap())
        .collect()
}

impl Readers {
    /// Starts both readers from these cursors.
    fn start(
        urls: &[String; 2],
        key: [u8; 32],
        db_url: &str,
        dev: TestDevice,
        (activated_from, forward_from): (i64, i64),
    ) -> Readers {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, urls) = (Arc::clone(&stop), urls.clone());
        let activated = std::thread::spawn(move || {
            let (mut seen, mut cursor, mut pages) = (Vec::new(), activated_from, 0);
            loop {
                // Read before asking: the last request is made after the load stopped.
                let stopping = flag.load(Ordering::SeqCst);
                let a = activated_page(&dev, &urls[pages % 2], &key, cursor);
                pages += 1;
                seen.extend(prefixes(&a));
                cursor = a.next;
                if !a.more {
                    if stopping {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(15));
                }
            }
            (
                dev,
                Read {
                    items: seen,
                    cursor,
                    pages,
                },
            )
        });
        let (flag, db_url) = (Arc::clone(&stop), db_url.to_string());
        let forward = std::thread::spawn(move || {
            const PAGE: usize = 150;
            let store = Store::open(Location::Postgres(db_url)).unwrap_or_else(|e| panic!("{e}"));
            let (mut seen, mut cursor, mut pages) = (Vec::new(), forward_from, 0);
            loop {
                let stopping = flag.load(Ordering::SeqCst);
                let page = store
                    .records_after(cursor, PAGE)
                    .unwrap_or_else(|e| panic!("{e}"));
                pages += 1;
                let n = page.len();
                for (pos, row) in page {
                    assert!(
                        pos > cursor,
                        "records_after went back: {pos} after {cursor}"
                    );
                    cursor = pos;
                    seen.push(row.id);
                }
                if n < PAGE {
                    if stopping {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(15));
                }
            }
            Read {
                items: seen,
                cursor,
                pages,
            }
        });
        Readers {
            stop,
            activated,
            forward,
        }
    }

    /// Tells them the load is over; they page to the end and return what they read.
    fn finish(self) -> (TestDevice, Read<[u8; 3]>, Read<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let (dev, activated) = self.activated.join().unwrap();
        (dev, activated, self.forward.join().unwrap())
    }
}

/// One stored record, as the checks need it.
#[derive(Debug)]
struct Stored {
    nik: String,
    kind: String,
    state: String,
    conflict_with: Option<String>,
    voided_by: Option<String>,
}

fn records(c: &mut postgres::Client) -> HashMap<String, Stored> {
    c.query(
        "SELECT id, nik, kind, state, conflict_with, voided_by FROM records",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get(0),
            Stored {
                nik: r.get(1),
                kind: r.get(2),
                state: r.get(3),
                conflict_with: r.get(4),
                voided_by: r.get(5),
            },
        )
    })
    .collect()
}

/// Live activations (accepted, not voided) per NIK, from the database.
fn live_per_nik(c: &mut postgres::Client) -> BTreeMap<String, i64> {
    c.query(
        "SELECT nik, COUNT(*) FROM records
         WHERE kind = 'activation' AND state = 'accepted' AND voided_by IS NULL GROUP BY nik",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// The dashboard's three aggregates equal a recount of the records table (rows at 0 aside),
/// and none went below 0. Returns the live total.
fn assert_aggregates(c: &mut postgres::Client) -> i64 {
    let live = "kind = 'activation' AND state = 'accepted' AND voided_by IS NULL";
    let mut total = None;
    for (table, key, recount_key) in [
        ("live_by_village", "village", "village"),
        (
            "live_by_device_hour",
            "device_id, hour",
            "device_id, ikd_utc_hour(recorded_at)",
        ),
        (
            "live_by_village_hour",
            "village, hour",
            "village, ikd_utc_hour(recorded_at)",
        ),
    ] {
        let mut map = |sql: String| -> BTreeMap<String, i64> {
            c.query(&sql, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
        };
        let kept = map(format!(
            "SELECT concat_ws('|', {key}), live FROM {table} WHERE live <> 0"
        ));
        let recount = map(format!(
            "SELECT concat_ws('|', {recount_key}), COUNT(*) FROM records WHERE {live}
             GROUP BY {recount_key}"
        ));
        assert_same_counts(&format!("{table} against a recount"), &kept, &recount);
        let sum: i64 = recount.values().sum();
        assert_eq!(*total.get_or_insert(sum), sum);
    }
    total.unwrap()
}

/// The NIK prefixes of the live activations (how many of each), from the database.
fn live_prefixes(c: &mut postgres::Client) -> BTreeMap<String, i64> {
    let live = live_per_nik(c);
    prefix_counts(
        live.iter()
            .flat_map(|(nik, &n)| std::iter::repeat_n(protocol::nik_prefix(nik), n as usize)),
    )
}

/// Asserts a cursor reader read each of `want` once and nothing else.
fn assert_read_once(what: &str, seen: &[String], want: BTreeSet<&String>) {
    assert_same_counts(what, &counts(seen), &counts(want));
}

/// The report's district total, as each server shows it.
fn assert_report(servers: &[Server; 2], live: i64) {
    for srv in servers {
        let (status, report) = util::server::http_get(&srv.url, "/laporan.json?level=kabupaten")
            .expect("server reachable");
        assert_eq!(status, 200);
        assert_eq!(report["rows"][0]["live"].as_i64(), Some(live), "{report}");
        assert_eq!(srv.stats()["activations_live"].as_i64(), Some(live));
    }
}

/// The record of synthetic citizen `p` by `d`, captured `hours_ago` hours before now (so the
/// hourly aggregates have many rows).
fn record(d: &mut TestDevice, p: &Input, hours_ago: usize) -> Record {
    let mut r = d.record(p);
    let t = time::OffsetDateTime::now_utc() - time::Duration::minutes(60 * hours_ago as i64 + 7);
    r.recorded_at = ikd_field::timefmt::stamp(t);
    r
}

#[test]
fn two_serve_processes_one_postgres_database_concurrent_writers() {
    util::store::on_postgres(
        "pg_writers::two_serve_processes_one_postgres_database_concurrent_writers",
        run,
    );
}

fn run() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("district.db");
    let servers = [
        Server::start_on_db(&db, CONFIG),
        Server::start_on_db(&db, CONFIG),
    ];
    assert_eq!(servers[0].db_arg, servers[1].db_arg, "one database");
    assert_eq!(
        servers[0].server_public_key, servers[1].server_public_key,
        "one district key"
    );
    let Location::Postgres(db_url) = util::store::location(&db) else {
        panic!("not on PostgreSQL");
    };
    let mut pg = postgres::Client::connect(&db_url, postgres::NoTls).unwrap();
    let urls = [servers[0].url.clone(), servers[1].url.clone()];
    let key = servers[0].public_key();

    // Phase 1: who records whom, round by round.
    let per_round = OWN + PAIRED + FOURFOLD;
    let people = ikd_field::synth::citizens(71, "1702", ROUNDS * DEVICES * per_round);
    let mut who: Vec<Vec<Vec<&Input>>> = vec![vec![Vec::new(); DEVICES]; ROUNDS];
    let mut next = people.iter();
    for round in who.iter_mut() {
        for d in 0..DEVICES {
            for (n, ways) in [(OWN, 1), (PAIRED, 2), (FOURFOLD, 4)] {
                for p in next.by_ref().take(n) {
                    for k in 0..ways {
                        round[(d + k) % DEVICES].push(p);
                    }
                }
            }
        }
    }
    let mut devices: Vec<TestDevice> = (0..DEVICES)
        .map(|d| TestDevice::enrolled(&servers[d % 2]))
        .collect();
    let mut hour = 0;
    let batches: Vec<Vec<SignedBatch>> = devices
        .iter_mut()
        .enumerate()
        .map(|(d, dev)| {
            (0..ROUNDS)
                .map(|r| {
                    let recs: Vec<Record> = who[r][d]
                        .iter()
                        .map(|p| {
                            hour += 1;
                            record(dev, p, hour % 29)
                        })
                        .collect();
                    dev.batch(&recs)
                })
                .collect()
        })
        .collect();
    let nik_of: HashMap<String, String> = batches
        .iter()
        .flatten()
        .flat_map(|b| &b.records)
        .map(|r| (r.id.clone(), r.nik.clone()))
        .collect();
    let total = nik_of.len();
    let niks: BTreeSet<&String> = nik_of.values().collect();
    assert_eq!(niks.len(), ROUNDS * DEVICES * per_round);
    assert!(total > niks.len() * 3 / 2, "many NIKs are shared");

    let readers = Readers::start(
        &urls,
        key,
        &db_url,
        TestDevice::enrolled(&servers[1]),
        (0, 0),
    );
    let (sent, _) = send_rounds(&urls, key, batches, vec![Vec::new(); DEVICES]);
    let (reader, activated, forward) = readers.finish();

    // Every record answered once; per NIK one accepted, the others conflicts naming it.
    let answers: HashMap<&str, &RecordResult> = sent
        .iter()
        .flatten()
        .flat_map(|s| &s.answer.results)
        .map(|r| (r.id.as_str(), r))
        .collect();
    assert_eq!(
        answers.len(),
        total,
        "a record answered twice or not at all"
    );
    let mut by_nik: BTreeMap<&str, Vec<&RecordResult>> = BTreeMap::new();
    for (id, nik) in &nik_of {
        by_nik
            .entry(nik.as_str())
            .or_default()
            .push(answers[id.as_str()]);
    }
    for (nik, results) in &by_nik {
        let accepted: Vec<&str> = results
            .iter()
            .filter(|r| r.status == Outcome::Accepted)
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(accepted.len(), 1, "NIK {nik}: {results:?}");
        for r in results.iter().filter(|r| r.status != Outcome::Accepted) {
            assert_eq!(r.status, Outcome::Conflict, "{r:?}");
            assert_eq!(r.reason.as_deref(), Some("nik_already_activated"), "{r:?}");
            assert_eq!(r.conflict_with.as_deref(), Some(accepted[0]), "{r:?}");
        }
    }
    // The database holds what the answers said.
    let stored = records(&mut pg);
    assert_eq!(stored.len(), total, "a record stored twice or lost");
    for (id, s) in &stored {
        let a = answers
            .get(id.as_str())
            .unwrap_or_else(|| panic!("{id} stored, never sent"));
        assert_eq!(s.nik, nik_of[id]);
        assert_eq!(
            (s.kind.as_str(), s.voided_by.as_deref()),
            ("activation", None)
        );
        let state = match a.status {
            Outcome::Accepted => "accepted",
            _ => "conflict",
        };
        assert_eq!(s.state, state, "{id}");
        assert_eq!(s.conflict_with, a.conflict_with, "{id}");
    }
    let live = live_per_nik(&mut pg);
    assert_eq!(live.len(), niks.len(), "a NIK without a live activation");
    assert!(live.values().all(|&n| n == 1), "a NIK live twice");
    let stats = servers[1].stats();
    assert_eq!(stats["records"].as_u64(), Some(total as u64));
    assert_eq!(
        stats["conflicts"].as_u64(),
        Some((total - niks.len()) as u64)
    );
    assert_eq!(stats["batches"].as_u64(), Some((DEVICES * ROUNDS) as u64));
    // The dashboard's aggregates, folded batch by batch by two processes.
    assert_eq!(assert_aggregates(&mut pg), niks.len() as i64);
    assert_report(&servers, niks.len() as i64);
    // The readers missed nothing and saw nothing twice.
    assert!(activated.pages > 1 && forward.pages > 1);
    assert_same_counts(
        "the activated list read while batches went in (NIK prefixes) against the live NIKs",
        &prefix_counts(activated.items),
        &live_prefixes(&mut pg),
    );
    assert_read_once(
        "records_after read while batches went in, against the records",
        &forward.items,
        stored.keys().collect(),
    );

    // Phase 2: device d voids every VOID_EVERY-th record it got accepted, over VOID_ROUNDS
    // rounds; the first target of each round is voided a second time in a one-record batch
    // that the next device's thread sends through the other server at the same moment; the
    // next device activates the citizen of the second target of each round again, in the same
    // round.
    let by_id: HashMap<&str, &Record> = sent
        .iter()
        .flatten()
        .flat_map(|s| &s.batch.records)
        .map(|r| (r.id.as_str(), r))
        .collect();
    let person: HashMap<&str, &Input> = people.iter().map(|p| (p.nik.as_str(), p)).collect();
    // targets[d][r]: what device d voids in round r (at least two each).
    let targets: Vec<Vec<Vec<Record>>> = sent
        .iter()
        .enumerate()
        .map(|(d, mine)| {
            let accepted: Vec<Record> = mine
                .iter()
                .flat_map(|s| &s.answer.results)
                .filter(|r| r.status == Outcome::Accepted)
                .map(|r| by_id[r.id.as_str()].clone())
                .step_by(VOID_EVERY)
                .collect();
            let n = accepted.len();
            assert!(n >= 2 * VOID_ROUNDS, "device {d}");
            (0..VOID_ROUNDS)
                .map(|r| accepted[r * n / VOID_ROUNDS..(r + 1) * n / VOID_ROUNDS].to_vec())
                .collect()
        })
        .collect();
    let mut void_batches: Vec<Vec<SignedBatch>> = vec![Vec::new(); DEVICES];
    let mut carried: Vec<Vec<Vec<SignedBatch>>> = vec![vec![Vec::new(); VOID_ROUNDS]; DEVICES];
    let mut twice_voided: BTreeSet<String> = BTreeSet::new();
    // (the voided target, the id of the citizen's new activation)
    let mut again: Vec<(String, String)> = Vec::new();
    for r in 0..VOID_ROUNDS {
        for d in 0..DEVICES {
            let mine = &targets[d][r];
            let mut recs: Vec<Record> = mine
                .iter()
                .map(|t| devices[d].void(t, "salah input"))
                .collect();
            let prev = &targets[(d + DEVICES - 1) % DEVICES][r][1];
            let a = record(&mut devices[d], person[prev.nik.as_str()], 0);
            again.push((prev.id.clone(), a.id.clone()));
            recs.insert(recs.len() / 2, a);
            void_batches[d].push(devices[d].batch(&recs));
            let second = devices[d].void(&mine[0], "salah input");
            twice_voided.insert(mine[0].id.clone());
            carried[(d + 1) % DEVICES][r].push(devices[d].batch(&[second]));
        }
    }
    let void_targets: BTreeSet<&str> = targets
        .iter()
        .flatten()
        .flatten()
        .map(|t| t.id.as_str())
        .collect();

    let readers = Readers::start(
        &urls,
        key,
        &db_url,
        reader,
        (activated.cursor, forward.cursor),
    );
    // Meanwhile every batch of phase 1 again, through the other server than the first time.
    let replays: Vec<_> = sent
        .into_iter()
        .enumerate()
        .map(|(d, mine)| {
            let urls = urls.clone();
            std::thread::spawn(move || {
                for (r, s) in mine.iter().enumerate() {
                    resend(s, &urls[(d + r + 1) % 2]);
                }
            })
        })
        .collect();
    let (voids_sent, carried_sent) = send_rounds(&urls, key, void_batches, carried);
    for t in replays {
        t.join().unwrap();
    }
    let (_, activated_2, forward_2) = readers.finish();

    let answers: HashMap<&str, &RecordResult> = voids_sent
        .iter()
        .chain(&carried_sent)
        .flatten()
        .flat_map(|s| &s.answer.results)
        .map(|r| (r.id.as_str(), r))
        .collect();
    let void_of: HashMap<&str, &str> = voids_sent
        .iter()
        .chain(&carried_sent)
        .flatten()
        .flat_map(|s| &s.batch.records)
        .filter_map(|r| Some((r.id.as_str(), r.voids.as_deref()?)))
        .collect();
    let stored = records(&mut pg);
    // Each target voided by exactly one accepted void, which the database names; a second void
    // at the same moment is rejected.
    let mut accepted_voids: HashMap<&str, &str> = HashMap::new();
    for (&void, &target) in &void_of {
        let a = answers[void];
        match a.status {
            Outcome::Accepted => {
                assert!(
                    accepted_voids.insert(target, void).is_none(),
                    "{target} voided twice"
                );
                assert_eq!(stored[void].kind, "void");
                assert_eq!(stored[void].state, "accepted");
            }
            _ => {
                assert!(twice_voided.contains(target), "{a:?}");
                assert_eq!(
                    (a.status, a.reason.as_deref()),
                    (Outcome::Rejected, Some("already_voided")),
                    "{a:?}"
                );
                assert!(!stored.contains_key(void), "a rejected void stored");
            }
        }
    }
    assert_eq!(
        accepted_voids.keys().copied().collect::<BTreeSet<_>>(),
        void_targets
    );
    for (target, void) in &accepted_voids {
        assert_eq!(
            stored[*target].voided_by.as_deref(),
            Some(*void),
            "{target}"
        );
    }
    assert_eq!(
        stored.values().filter(|s| s.voided_by.is_some()).count(),
        void_targets.len()
    );
    // An activation again of a voided citizen: accepted (after the void) or a conflict with
    // the voided record (before it).
    let mut reactivated = BTreeSet::new();
    for (target, id) in &again {
        let a = answers[id.as_str()];
        match a.status {
            Outcome::Accepted => {
                reactivated.insert(stored[target].nik.clone());
            }
            _ => {
                assert_eq!(a.status, Outcome::Conflict, "{a:?}");
                assert_eq!(a.conflict_with.as_deref(), Some(target.as_str()), "{a:?}");
            }
        }
        let state = if a.status == Outcome::Accepted {
            "accepted"
        } else {
            "conflict"
        };
        assert_eq!(stored[id.as_str()].state, state);
    }
    // Per NIK at most one live activation: the phase-1 one unless voided, else the new one if
    // it came after the void.
    let live = live_per_nik(&mut pg);
    let voided_niks: BTreeSet<&str> = void_targets
        .iter()
        .map(|t| stored[*t].nik.as_str())
        .collect();
    for nik in &niks {
        let expect = i64::from(!voided_niks.contains(nik.as_str()) || reactivated.contains(*nik));
        assert_eq!(live.get(*nik).copied().unwrap_or(0), expect, "NIK {nik}");
    }
    assert_eq!(live.len(), live.values().sum::<i64>() as usize);
    let live_total = live.len() as i64;
    assert_eq!(assert_aggregates(&mut pg), live_total);
    assert_report(&servers, live_total);
    // The readers, from where they stopped: every new live activation (the accepted ones of
    // the citizens activated again), every new record.
    assert_same_counts(
        "the activated list read during the voids against the citizens activated again",
        &prefix_counts(activated_2.items),
        &prefix_counts(reactivated.iter().map(|n| protocol::nik_prefix(n))),
    );
    let new: BTreeSet<&String> = stored
        .keys()
        .filter(|id| !nik_of.contains_key(*id))
        .collect();
    assert_read_once(
        "records_after read during the voids, against the new records",
        &forward_2.items,
        new,
    );
    // A laptop paging from the start, through both servers, gets exactly the live NIKs.
    let (mut all, mut cursor, mut i) = (Vec::new(), 0, 0);
    loop {
        let a = activated_page(&devices[0], &urls[i % 2], &key, cursor);
        i += 1;
        all.extend(prefixes(&a));
        cursor = a.next;
        if a.count == 0 {
            break;
        }
    }
    assert_same_counts(
        "the activated list from the start against the live NIKs",
        &prefix_counts(all),
        &live_prefixes(&mut pg),
    );
    // The batches of phase 2 again, through the other server: the journalled answers, the
    // rejections of the second voids included.
    for (d, mine) in voids_sent.iter().chain(&carried_sent).enumerate() {
        for (r, s) in mine.iter().enumerate() {
            resend(s, &urls[(d + r + 1) % 2]);
        }
    }
    for srv in &servers {
        assert!(!srv.log().contains(" 500 "), "{}", srv.log());
    }
    eprintln!(
        "{total} activations of {} citizens from {DEVICES} devices through 2 servers; \
         {} records voided ({} voided twice at once), {} of {} activations again accepted; \
         readers: {} + {} pages during phase 1",
        niks.len(),
        void_targets.len(),
        twice_voided.len(),
        reactivated.len(),
        again.len(),
        activated.pages,
        forward.pages
    );
}
