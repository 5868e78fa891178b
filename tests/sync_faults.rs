//! Sync over a bad network: a fault-injecting proxy between the real client and the real server
//! drops connections before the request reaches the server, after the server answered, and in
//! the middle of the answer; delays; throttles; plays a captive portal; forges the signature.
//! And kill -9 of the client mid-sync, many times. After any of it and some reruns, every
//! record is on the server exactly once and the laptop agrees.
mod netfault;
#[macro_use]
mod util;
use ikd_field::synth::Rng;
use netfault::{
    FAST, Fault, Link, Proxy, Server, assert_exactly_once, enrolled_kit, local, record_many,
};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Runs `sync` through the proxy until it succeeds; every run must exit 0 (done) or 5
/// (unreachable: nothing lost, run again). Returns the number of runs.
fn sync_until_done(k: &util::Kit, url: &str, max_runs: usize) -> usize {
    for run in 1..=max_runs {
        let out = k.run(&["sync", "--server", url, "--json"]);
        match out.status.code() {
            Some(0) => return run,
            Some(5) => continue,
            other => panic!(
                "sync exited {other:?}:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }
    panic!("sync did not finish in {max_runs} runs");
}

both_stores! {
fn every_fault_then_reruns_leave_each_record_on_the_server_once() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    // A 2 s timeout, so one planned delay outlasts it: the client gives up on that attempt while
    // the request is still on its way, and the server commits it after all.
    let fast = FAST.replace("timeout_secs = 5", "timeout_secs = 2");
    let k = enrolled_kit(&server, &format!("{fast}\nbatch_size = 20"));
    let ids = record_many(&k, 41, 300);
    let proxy = Proxy::start(server.addr);
    use Fault::*;
    let plan = [
        DropRequest,
        Pass,
        DropAnswer,
        CutAnswer,
        Delay(Duration::from_millis(300)),
        ForgeSignature,
        Portal,
        DropAnswer,
        Pass,
        CutAnswer,
        DropRequest,
        DropRequest,
        DropRequest, // three in a row: that run gives up (exit 5) and the next one resumes
        DropAnswer,
        Pass,
        DropAnswer,
        CutAnswer,
        ForgeSignature,
        Delay(Duration::from_millis(2500)),
    ];
    proxy.plan(plan.clone());
    proxy.set_link(Some(Link {
        bytes_per_sec: 512 * 1024,
        latency: Duration::from_millis(5),
    }));
    // A first run that hits a fault streak stops with exit 5, records safe.
    let runs = sync_until_done(&k, &proxy.url, 12);
    assert_eq!(proxy.left(), 0, "every planned fault was hit");
    assert!(
        runs >= 2,
        "the DropRequest streak should have ended one run"
    );
    assert_exactly_once(&server, &k, &ids);

    // More records, a second round of the same faults, interleaved with new ones.
    let more = record_many(&k, 42, 120);
    proxy.plan(plan);
    sync_until_done(&k, &proxy.url, 12);
    let all: Vec<String> = ids.iter().chain(&more).cloned().collect();
    assert_exactly_once(&server, &k, &all);
    // And a final rerun sends no batch (only asks for the district's activated list).
    let batches = server.stats()["batches"].clone();
    let r = k.json(&["sync", "--server", &proxy.url]);
    assert_eq!(
        (r["records"].as_u64(), r["batches"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(server.stats()["batches"], batches);
}
}

both_stores! {
fn a_captive_portal_answering_200_is_not_success() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let k = enrolled_kit(&server, FAST);
    let ids = record_many(&k, 51, 25);
    let proxy = Proxy::start(server.addr);
    proxy.plan(std::iter::repeat_n(Fault::Portal, 3));
    let (_, err) = k.fails(&["sync", "--server", &proxy.url], 5);
    assert!(err.contains("bukan dari server Dinas"), "{err}");
    assert!(err.contains("Tidak ada yang hilang"), "{err}");
    assert_eq!(local(&k, "pending").len(), 25);
    assert_eq!(server.ids().len(), 0);
    // A proxy that rewrites the answer: the server committed, but the laptop does not believe
    // the unsigned answer; the next (clean) run gets the server's own answer for the batch.
    // Four requests: the batch was tried before, so the run first asks for its answer by id
    // (none yet: 404), then sends it three times.
    proxy.plan(std::iter::repeat_n(Fault::ForgeSignature, 4));
    k.fails(&["sync", "--server", &proxy.url], 5);
    assert_eq!(proxy.left(), 0);
    assert_eq!(local(&k, "pending").len(), 25);
    assert_eq!(server.ids().len(), 25);
    let r = k.json(&["sync", "--server", &proxy.url]);
    assert_eq!(r["summary"]["accepted"], 25, "the journalled answer: {r}");
    assert_exactly_once(&server, &k, &ids);
}
}

both_stores! {
fn a_damaged_gzip_answer_is_refused_and_the_journalled_one_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let k = enrolled_kit(&server, FAST);
    let ids = record_many(&k, 52, 40);
    let proxy = Proxy::start(server.addr);
    // One bit flipped in the gzip answer: the signature over the bytes as received fails, so
    // the laptop keeps every record pending although the server committed them.
    proxy.plan(std::iter::repeat_n(Fault::FlipAnswerByte, 3));
    let (_, err) = k.fails(&["sync", "--server", &proxy.url], 5);
    assert!(err.contains("bukan dari server Dinas"), "{err}");
    assert_eq!(proxy.gzip_answers.load(Ordering::SeqCst), 3);
    assert_eq!(local(&k, "pending").len(), 40);
    assert_eq!(server.ids().len(), 40);
    // The clean rerun gets the journalled answer, compressed, and stores its statuses.
    let r = k.json(&["sync", "--server", &proxy.url]);
    assert_eq!(r["summary"]["accepted"], 40, "{r}");
    assert_eq!(proxy.gzip_answers.load(Ordering::SeqCst), 4);
    assert!(r["bytes_received"].as_u64().unwrap() < 40 * 30, "{r}");
    assert_eq!(local(&k, "synced").len(), 40);
    assert_exactly_once(&server, &k, &ids);
}
}

both_stores! {
fn kill_9_mid_sync_many_times_loses_and_doubles_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let k = enrolled_kit(&server, &format!("{FAST}\nbatch_size = 10"));
    let ids = record_many(&k, 61, 600);
    // A slow link so each run is long enough to be killed in the middle of something: cutting,
    // sending, waiting for the answer, or storing it.
    let proxy = Proxy::start(server.addr);
    proxy.set_link(Some(Link {
        bytes_per_sec: 128 * 1024,
        latency: Duration::from_millis(25),
    }));
    let mut rng = Rng::new(7);
    let mut synced_at_kill = Vec::new();
    for _ in 0..12 {
        let mut child = k
            .cmd(&["sync", "--server", &proxy.url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(60 + rng.below(400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        synced_at_kill.push(server.ids().len());
    }
    eprintln!("records on the server after each kill: {synced_at_kill:?}");
    proxy.set_link(None);
    let r = k.json(&["sync", "--server", &proxy.url]);
    assert_eq!(r["pending"], 0, "{r}");
    assert_exactly_once(&server, &k, &ids);
}
}

both_stores! {
fn server_killed_mid_batch_and_restarted_loses_and_doubles_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("district.db");
    let mut server = Server::start(&db);
    let k = enrolled_kit(&server, &format!("{FAST}\nbatch_size = 25"));
    let ids = record_many(&k, 71, 300);
    let proxy = Proxy::start(server.addr);
    proxy.set_link(Some(Link {
        bytes_per_sec: 256 * 1024,
        latency: Duration::from_millis(20),
    }));
    let mut rng = Rng::new(11);
    for _ in 0..5 {
        let child = k
            .cmd(&["sync", "--server", &proxy.url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50 + rng.below(250)));
        server.kill9();
        // The client retries, gives up (exit 5, nothing lost) or had finished before (exit 0).
        let code = child.wait_with_output().unwrap().status.code();
        assert!(matches!(code, Some(0) | Some(5)), "sync exited {code:?}");
        drop(server);
        server = Server::start(&db);
        proxy.set_upstream(server.addr);
    }
    let r = k.json(&["sync", "--server", &proxy.url]);
    assert_eq!(r["pending"], 0, "{r}");
    assert_exactly_once(&server, &k, &ids);
}
}
