//! The fewest round trips and a dead link known in seconds (issue #14): a sync of one batch is
//! one request (the answer carries the district's activated list); after a connection dropped
//! once the request was complete, the client asks for the journalled answer by batch id instead
//! of sending the batch again; an old client and an old server still work with the new ones; a
//! server that takes the request and never answers is reported at once and given up on (exit 5,
//! nothing lost). Real binary, real `serve`, the fault proxy of `tests/netfault` in between.
mod netfault;
#[macro_use]
mod util;
use netfault::{
    FAST, Fault, Link, Proxy, Server, assert_exactly_once, enrolled_kit, local, record_many,
};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The requests of a run without the batch ids: "POST /v1/batches", "GET /v1/batches/{id}", …
fn kinds(seen: &[String]) -> Vec<String> {
    seen.iter()
        .map(|s| match s.strip_prefix("GET /v1/batches/") {
            Some(_) => "GET /v1/batches/{id}".to_string(),
            None => s.clone(),
        })
        .collect()
}

both_stores! {
fn a_sync_of_one_batch_is_one_request_and_carries_the_activated_list() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let other = enrolled_kit(&server, "");
    let theirs = record_many(&other, 70, 12);
    other.json(&["sync"]);
    let k = enrolled_kit(&server, FAST);
    let ids = record_many(&k, 71, 30);
    let proxy = Proxy::start(server.addr);
    let r = k.json(&["sync", "--server", &proxy.url]);
    assert_eq!(kinds(&proxy.seen()), ["POST /v1/batches"], "{r}");
    // The other team's 12 and this laptop's own 30, from the one answer.
    assert_eq!(r["activated"], 42, "{r}");
    let all: Vec<String> = theirs.iter().chain(&ids).cloned().collect();
    assert_eq!(server.ids().len(), all.len());
    assert_eq!(
        server.ids().into_iter().collect::<BTreeSet<_>>(),
        all.into_iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(local(&k, "synced").len(), ids.len());
    // A NIK the other team activated is warned of before it is recorded twice.
    let people = ikd_field::synth::citizens(70, "1702", 1);
    let dup = k.record_synthetic(&people, 0);
    assert!(dup["district_activated"].is_string(), "{dup}");
    // The next sync sends that record (a conflict on the server): again one request.
    let r = k.json(&["sync", "--server", &proxy.url]);
    assert_eq!(r["batches"], 1, "the duplicate just recorded: {r}");
    assert_eq!(proxy.seen().len(), 2, "{:?}", proxy.seen());
}
}

both_stores! {
fn a_dropped_answer_is_fetched_by_batch_id_not_sent_again() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let k = enrolled_kit(&server, &format!("{FAST}\nbatch_size = 40"));
    let ids = record_many(&k, 72, 100);
    let proxy = Proxy::start(server.addr);
    // The first batch reaches the server, which commits and answers; the answer is lost.
    proxy.plan([Fault::DropAnswer]);
    let r = k.json(&["sync", "--server", &proxy.url]);
    assert_eq!(
        kinds(&proxy.seen()),
        [
            "POST /v1/batches",
            "GET /v1/batches/{id}",
            "POST /v1/batches"
        ],
        "{r}"
    );
    assert_eq!(r["summary"]["accepted"], 100, "{r}");
    // The first batch at the starting size; the rest (60, within 4 × 40) in one.
    assert_eq!(r["batch_records"], serde_json::json!([40, 60]), "{r}");
    assert_exactly_once(&server, &k, &ids);
    assert_eq!(server.stats()["batches"], 2);
    // Asked for at once, inside the same attempt: no failed attempt was counted (a retry
    // after the backoff would have counted one).
    assert_eq!(k.count("SELECT COALESCE(SUM(attempts), 0) FROM outbox_batches"), 0);

    // A request that never reached the server: asked for at once, unknown (404
    // batch_unknown), sent again after the backoff (one failed attempt).
    let more = record_many(&k, 73, 10);
    let before = proxy.seen().len();
    proxy.plan([Fault::DropRequest]);
    let r = k.json(&["sync", "--server", &proxy.url]);
    assert_eq!(
        kinds(&proxy.seen()[before..]),
        ["POST /v1/batches", "GET /v1/batches/{id}", "POST /v1/batches"],
        "{r}"
    );
    assert_eq!(k.count("SELECT COALESCE(SUM(attempts), 0) FROM outbox_batches"), 1);
    let all: Vec<String> = ids.iter().chain(&more).cloned().collect();
    assert_exactly_once(&server, &k, &all);

    // The answer by id is the device's alone: another enrolled device asking with the batch's
    // id gets no answer (404 batch_unknown), as does a wrong signature.
    assert_eq!(k.count("SELECT COUNT(*) FROM outbox_batches"), 3);
    let id = proxy.seen()[1].strip_prefix("GET /v1/batches/").unwrap().to_string();
    let stranger = ikd_field::crypto::KeyPair::generate().unwrap();
    let out = ureq::get(format!("{}/v1/batches/{id}", server.url))
        .header("X-Ikd-Device", stranger.id())
        .header("X-Ikd-Signature", "AAAA")
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(out.status(), 401, "an unknown device");
    let dd = ikd_field::field::datadir::DataDir::open(&k.dir).unwrap();
    let out = ureq::get(format!("{}/v1/batches/{id}", server.url))
        .header("X-Ikd-Device", dd.identity.device_id.as_str())
        .header("X-Ikd-Signature", "AAAA")
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(out.status(), 404, "a wrong signature");
}
}

both_stores! {
fn an_old_server_and_an_old_client_still_work() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let k = enrolled_kit(&server, &format!("{FAST}\nbatch_size = 40"));
    let ids = record_many(&k, 74, 50);
    // A server before this change: no delta in the answer, no GET /v1/batches/{id}.
    let proxy = Proxy::start(server.addr);
    proxy.old_server.store(true, Ordering::SeqCst);
    proxy.plan([Fault::DropAnswer]);
    let r = k.json(&["sync", "--server", &proxy.url]);
    assert_eq!(
        kinds(&proxy.seen()),
        [
            "POST /v1/batches",
            "GET /v1/batches/{id}",
            "POST /v1/batches",
            "POST /v1/batches",
            "POST /v1/activated"
        ],
        "{r}"
    );
    assert_eq!(r["activated"], 50, "{r}");
    assert_exactly_once(&server, &k, &ids);

    // A client before this change: its batch without X-Ikd-Activated-Since gets the answer
    // it always got (no delta), and it asks for the list with POST /v1/activated.
    let old = enrolled_kit(&server, "");
    record_many(&old, 75, 5);
    let mut dd = ikd_field::field::datadir::DataDir::open(&old.dir).unwrap();
    let device = dd.identity.device_id.clone();
    let b = ikd_field::field::outbox::cut(&mut dd.store, &dd.key, &device, 100, 0)
        .unwrap()
        .unwrap();
    let e = ikd_field::field::enrolment::Enrolment::load(&dd.store).unwrap().unwrap();
    let client = ikd_field::client::Client::new(&server.url, std::time::Duration::from_secs(10))
        .unwrap();
    let key = e.key().unwrap();
    let (answer, _) = client
        .send_signed(&b.id, &b.body, &b.signature, &device, &key, None)
        .unwrap();
    assert_eq!(answer.summary.accepted, 5);
    assert!(answer.activated.is_none());
    let list = client.activated(&dd.key, &device, &key, 0).unwrap();
    assert_eq!(list.count, 55);

    // The bytes of a client before sized batches, by hand: a batch of the size it cut itself,
    // one POST without X-Ikd-Activated-Since, the answer read as plain JSON; after a drop it
    // has no GET by id and sends the same bytes again. What this shows: the new server takes
    // that request, answers with every field such a client reads (only `limits` is new, and
    // optional: `BatchResponse` has never refused unknown fields), and replays the same
    // journalled bytes for the resend. It is not a run of the old binary.
    record_many(&old, 79, 3);
    let b = ikd_field::field::outbox::cut(&mut dd.store, &dd.key, &device, 100, 0)
        .unwrap()
        .unwrap();
    let post = || {
        let mut resp = ureq::post(format!("{}/v1/batches", server.url))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .header("Accept-Encoding", "identity")
            .header("X-Ikd-Device", device.as_str())
            .header("X-Ikd-Batch", b.id.as_str())
            .header("X-Ikd-Signature", b.signature.as_str())
            .send(&b.body[..])
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.body_mut().read_to_vec().unwrap()
    };
    let first = post();
    assert_eq!(post(), first, "the resend gets the journalled answer, byte for byte");
    let v: serde_json::Value = serde_json::from_slice(&first).unwrap();
    for field in ["protocol", "batch_id", "server_id", "received_at", "results", "summary"] {
        assert!(v.get(field).is_some(), "{field}: {v}");
    }
    assert_eq!(v["summary"]["accepted"], 3, "{v}");
    assert!(v.get("activated").is_none(), "{v}");
    assert_eq!(v["limits"]["max_batch_records"], 5000, "{v}");
    let old_shape: ikd_field::protocol::BatchResponse = serde_json::from_slice(&first).unwrap();
    assert_eq!(old_shape.results.len(), 3);
}
}

both_stores! {
/// A laptop binary from before issue #14 — it sends each batch without
/// `X-Ikd-Activated-Since`, resends the whole body after a lost answer (no GET by id) and asks
/// for the activated list with `POST /v1/activated` — enrols at this server, records through its
/// own command line and syncs through the fault proxy with one answer dropped: every record
/// arrives once, the laptop marks them all sent and gets the district's list. Runs when
/// `IKD_OLD_CLIENT` names such a binary: `scripts/old-client.sh` builds one at the commit before
/// issue #14 and runs this test (too slow a build for CI); without it the test says it skipped.
fn an_old_laptop_binary_syncs_with_this_server() {
    let Some(old) = std::env::var_os("IKD_OLD_CLIENT") else {
        eprintln!("skipped: set IKD_OLD_CLIENT to an ikd-field binary from before issue #14 (scripts/old-client.sh)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    let other = enrolled_kit(&server, "");
    let theirs = record_many(&other, 80, 7);
    other.json(&["sync"]);
    let dir = tmp.path().join("old-laptop");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&old)
            .arg("--data-dir")
            .arg(&dir)
            .args(args)
            .env_remove("IKD_FIELD_HOME")
            .env_remove("IKD_FIELD_CONFIG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "old ikd-field {args:?}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let token = server.token();
    run(&["init", "--officer", "PETUGAS LAMA", "--team", "TIM LAMA", "--server", &server.url,
          "--token", &token]);
    std::fs::write(dir.join("config.toml"), // The settings that binary knows (FAST less those added by issue #14).
        "[sync]\ntimeout_secs = 5\nmax_attempts = 3\nretry_base_ms = 20\nretry_max_secs = 1\nbatch_size = 10\n").unwrap();
    let today = ikd_field::timefmt::today(time::UtcOffset::UTC);
    let mut ids = Vec::new();
    for p in ikd_field::synth::citizens(81, "1702", 25) {
        assert!(ikd_field::domain::validate::activation(&p, today).is_ok());
        let out = run(&["record", "--json", "--nik", &p.nik, "--name", &p.name, "--phone", &p.phone,
                        "--village", &p.village]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        ids.push(v["record"]["id"].as_str().unwrap().to_string());
    }
    let proxy = Proxy::start(server.addr);
    proxy.plan([Fault::Pass, Fault::DropAnswer]);
    let out = run(&["sync", "--json", "--server", &proxy.url]);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        kinds(&proxy.seen()),
        [
            "POST /v1/batches",
            "POST /v1/batches",
            "POST /v1/batches",
            "POST /v1/batches",
            "POST /v1/activated"
        ],
        "three batches of at most 10, the second sent again after its answer was lost: {r}"
    );
    let on_server = server.ids();
    let unique: BTreeSet<String> = on_server.iter().cloned().collect();
    assert_eq!(unique.len(), on_server.len(), "a record is on the server twice");
    let expected: BTreeSet<String> = ids.iter().chain(&theirs).cloned().collect();
    assert_eq!(unique, expected);
    let listed: serde_json::Value =
        serde_json::from_str(&run(&["list", "--json", "--status", "synced"])).unwrap();
    assert_eq!(listed["records"].as_array().unwrap().len(), ids.len(), "{listed}");
    assert_eq!(r["activated"], 32, "the other laptop's 7 and its own 25: {r}");
}
}

both_stores! {
/// The other way round: this laptop against the real district server binary from before issue
/// #14 (no list in its answers, no `limits`, no GET by id). A lost answer is asked for by id,
/// refused as unknown there, and the batch is sent again and answered from its journal; the
/// activated list comes from `POST /v1/activated`; every record arrives once. Runs with
/// `IKD_OLD_CLIENT` (the same old binary, `scripts/old-client.sh`).
fn this_laptop_syncs_with_an_old_server_binary() {
    let Some(old) = std::env::var_os("IKD_OLD_CLIENT") else {
        eprintln!("skipped: set IKD_OLD_CLIENT to an ikd-field binary from before issue #14 (scripts/old-client.sh)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_binary(std::path::Path::new(&old), &tmp.path().join("district.db"));
    let k = enrolled_kit(&server, &format!("{FAST}\nbatch_size = 10"));
    let ids = record_many(&k, 82, 25);
    let proxy = Proxy::start(server.addr);
    proxy.plan([Fault::Pass, Fault::DropAnswer]);
    let r = k.json(&["sync", "--server", &proxy.url]);
    assert_eq!(
        kinds(&proxy.seen()),
        [
            "POST /v1/batches",
            "POST /v1/batches",
            "GET /v1/batches/{id}",
            "POST /v1/batches",
            "POST /v1/batches",
            "POST /v1/activated"
        ],
        "batches of 10 (no limits to grow within), the lost answer asked for, then resent: {r}"
    );
    assert_eq!(r["activated"], 25, "{r}");
    assert_exactly_once(&server, &k, &ids);
}
}

both_stores! {
fn batches_grow_on_a_slow_link_within_the_servers_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &tmp.path().join("district.db"),
        "[server]\nmax_batch_records = 300\n",
    );
    let k = enrolled_kit(&server, &format!("{FAST}\nbatch_size = 50"));
    let ids = record_many(&k, 77, 900);
    let proxy = Proxy::start(server.addr);
    // 64 KB/s, 200 ms round trip: 16 round trips' worth is ~2,000 records, so the server's
    // limit (300, told in its answers) is what stops the growth.
    proxy.set_link(Some(Link {
        bytes_per_sec: 64 * 1024,
        latency: std::time::Duration::from_millis(100),
    }));
    // The second batch's answer is lost on the way: asked for by id, not sent again.
    proxy.plan([Fault::Pass, Fault::DropAnswer]);
    let r = k.json(&["sync", "--server", &proxy.url]);
    let sizes: Vec<u64> = r["batch_records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(sizes.iter().sum::<u64>(), 900, "{r}");
    assert_eq!(sizes[..3], [50, 200, 300], "grows ×4 a batch, up to the limit: {r}");
    assert!(sizes.iter().all(|&n| n <= 300), "{r}");
    assert_eq!(
        kinds(&proxy.seen()),
        [
            "POST /v1/batches",
            "POST /v1/batches",
            "GET /v1/batches/{id}",
            "POST /v1/batches",
            "POST /v1/batches",
            "POST /v1/batches"
        ],
        "{r}"
    );
    assert_exactly_once(&server, &k, &ids);
    assert_eq!(server.stats()["batches"], sizes.len());

    // The same link with `--batch-size 50`: every batch 50 records, one request each.
    let more = record_many(&k, 78, 200);
    let before = proxy.seen().len();
    let r = k.json(&["sync", "--server", &proxy.url, "--batch-size", "50"]);
    assert_eq!(r["batch_records"], serde_json::json!([50, 50, 50, 50]), "{r}");
    assert_eq!(proxy.seen().len() - before, 4);
    let all: Vec<String> = ids.iter().chain(&more).cloned().collect();
    assert_exactly_once(&server, &k, &all);

    // The next sync over the same link starts from what the first one learnt: no 50 first.
    let later = record_many(&k, 79, 600);
    let r = k.json(&["sync", "--server", &proxy.url]);
    assert_eq!(r["batch_records"], serde_json::json!([300, 300]), "{r}");
    let all: Vec<String> = all.iter().chain(&later).cloned().collect();
    assert_exactly_once(&server, &k, &all);
    // Another route is another link: it starts at sync.batch_size again.
    let last = record_many(&k, 80, 60);
    let r = k.json(&["sync", "--server", &server.url]);
    assert_eq!(r["batch_records"], serde_json::json!([50, 10]), "{r}");
    let all: Vec<String> = all.iter().chain(&last).cloned().collect();
    assert_exactly_once(&server, &k, &all);
}
}

/// A server that takes connections and never answers: counts them, holds them open.
fn black_hole() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let held = Arc::new(Mutex::new(Vec::new()));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            held.lock().unwrap().push(conn);
        }
    });
    (url, accepted)
}

#[test]
fn a_dead_link_is_told_at_once_and_given_up_on() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("district.db"));
    // Short waits so the test is short; the defaults' bound is checked in src/config.rs.
    let k = enrolled_kit(
        &server,
        "answer_timeout_secs = 2\nmax_attempts = 2\nretry_base_ms = 20\nretry_max_secs = 1",
    );
    let ids = record_many(&k, 76, 7);
    let (dead, accepted) = black_hole();
    let mut child = k
        .cmd(&["sync", "--server", &dead])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // The first line comes before any attempt has failed (the second line is the first retry).
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("Menghubungi server Dinas di"), "{first}");
    assert!(first.contains(&dead), "{first}");
    let second = lines.next().unwrap().unwrap();
    assert!(second.contains("percobaan 1/2 gagal"), "{second}");
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(5), "{rest:?}");
    let all = rest.join("\n");
    assert!(all.contains("Tidak ada yang hilang"), "{all}");
    for machine in ["os error", "127.0.0.1:", "timed out", "Timeout"] {
        assert!(
            !second.contains(machine),
            "plain words on the officer's screen: {second}"
        );
    }
    // One connection per attempt: the batch, then the answer asked for by id.
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(local(&k, "pending").len(), ids.len());
    // Nothing lost: the server reached afterwards takes them all.
    assert_eq!(k.json(&["sync"])["summary"]["accepted"], 7);
}
