//! The district server end to end: the real binary on 127.0.0.1 with a real SQLite file, spoken
//! to over HTTP with batches signed by hand (the field client has its own tests).
#[macro_use]
mod util;

use ikd_field::domain::validate::Input;
use ikd_field::protocol;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};
use util::server::{Server, TestDevice, gzip, http_get, http_post_json, post_batch, raw_http};

fn people(seed: u64, n: usize) -> Vec<Input> {
    ikd_field::synth::citizens(seed, "1702", n)
}

fn statuses(answer: &serde_json::Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect()
}

both_stores! {
fn enrolment_tokens_are_one_time() {
    let srv = Server::start();
    let token = srv.token("TIM 1");
    let d = TestDevice::new();
    let r = d.enrol(&srv.url, &token);
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["device_id"], d.id.as_str());
    assert_eq!(v["server_id"], srv.server_id.as_str());
    assert_eq!(v["server_public_key"], srv.server_public_key.as_str());
    assert_eq!(v["team"], "TIM 1");

    // Used, unknown, expired, malformed: each a clear refusal.
    let r = TestDevice::new().enrol(&srv.url, &token);
    assert_eq!((r.status, r.code().as_str()), (410, "token_used"));
    let r = TestDevice::new().enrol(&srv.url, "AAAA-BBBB-CCCC-DDDD");
    assert_eq!((r.status, r.code().as_str()), (401, "token_unknown"));
    let expired = srv.admin_json(&["token", "--ttl-hours", "0"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = TestDevice::new().enrol(&srv.url, &expired);
    assert_eq!((r.status, r.code().as_str()), (410, "token_expired"));
    let r = http_post_json(&srv.url, protocol::PATH_ENROL, b"{\"token\": 1").unwrap();
    assert_eq!((r.status, r.code().as_str()), (400, "bad_json"));
    // A token typed in lower case with spaces still works.
    let t = srv.token("").to_lowercase().replace('-', " ");
    assert_eq!(TestDevice::new().enrol(&srv.url, &t).status, 200);

    let table = srv.admin_ok(&["devices"]);
    assert!(
        table.contains("PETUGAS UJI") && table.contains("aktif"),
        "{table}"
    );
    let devices = srv.admin_json(&["devices"]);
    assert_eq!(devices["devices"].as_array().unwrap().len(), 2);
    assert_eq!(devices["devices"][0]["officer"], "PETUGAS UJI");
    assert!(srv.log().contains("POST /v1/enrol 410"));
}
}

both_stores! {
fn batches_are_answered_per_record_and_replays_change_nothing() {
    let srv = Server::start();
    let ppl = people(11, 30);
    let mut a = TestDevice::enrolled(&srv);
    let recs: Vec<_> = ppl[..20].iter().map(|p| a.record(p)).collect();
    let batch = a.batch(&recs);
    let first = batch.send(&srv.url).unwrap();
    assert_eq!(first.status, 200);
    assert!(first.signed_by(&srv.public_key()));
    let ans = first.json();
    assert_eq!(ans["batch_id"], batch.batch_id.as_str());
    assert_eq!(ans["summary"]["accepted"], 20);
    assert!(statuses(&ans).iter().all(|s| s == "accepted"));

    // The same batch again: the stored answer, byte for byte; nothing doubled.
    let again = batch.send(&srv.url).unwrap();
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(again.signature, first.signature);
    assert_eq!(srv.stats()["records"], 20);

    // Asking for gzip: the same answer compressed, signed over the gzip bytes as sent; a
    // replay of that form is byte-identical too, and the plain form is still served unchanged.
    let gz = batch.send_accepting(&srv.url, "gzip").unwrap();
    assert_eq!(gz.status, 200);
    assert_eq!(gz.encoding.as_deref(), Some("gzip"));
    assert!(gz.signed_by(&srv.public_key()));
    assert_eq!(gz.json(), ans);
    assert!(gz.body.len() * 3 < first.body.len(), "{} B", gz.body.len());
    let gz_again = batch.send_accepting(&srv.url, "gzip, deflate").unwrap();
    assert_eq!(
        (&gz_again.body, &gz_again.signature),
        (&gz.body, &gz.signature)
    );
    let plain = batch
        .send_accepting(&srv.url, "gzip;q=0, identity")
        .unwrap();
    assert_eq!(plain.encoding, None);
    assert_eq!(
        (&plain.body, &plain.signature),
        (&first.body, &first.signature)
    );
    assert_eq!(srv.stats()["records"], 20);

    // The same records in a new batch: duplicates.
    let ans = a.batch(&recs).send_ok(&srv);
    assert_eq!(ans["summary"]["duplicate"], 20);
    assert_eq!(srv.stats()["records"], 20);

    // The same batch id with different bytes is refused.
    let body = serde_json::to_vec(&protocol::BatchBody {
        protocol: 1,
        batch_id: batch.batch_id.clone(),
        device_id: a.id.clone(),
        created_at: ikd_field::timefmt::now_utc(),
        records: a.wire(&recs[..3]),
    })
    .unwrap();
    let reused = a.sign_raw(&batch.batch_id, &gzip(&body), &recs[..3]);
    let r = reused.send(&srv.url).unwrap();
    assert_eq!((r.status, r.code().as_str()), (409, "batch_reused"));

    // Another device activating the same NIK: stored and flagged; the same id with other
    // content: refused as id_reused.
    let mut b = TestDevice::enrolled(&srv);
    let same_nik = b.record(&ppl[0]);
    let mut forged = recs[1].clone();
    forged.name = "NAMA LAIN".into();
    forged.device_id = b.id.clone();
    let mut bad = b.record(&ppl[21]);
    // 16 digits (a NIK of another length does not fit the sealed format), no such province.
    bad.nik = format!("99{}", &bad.nik[2..]);
    let mut young = ppl[22].clone();
    young.nik = format!("{}0101{:02}0001", &young.nik[..6], 15); // born 2015: under 17
    let young = b.record(&young);
    let fresh = b.record(&ppl[23]);
    let mut foreign = b.record(&ppl[24]);
    foreign.device_id = a.id.clone();
    let ans = b
        .batch(&[
            same_nik.clone(),
            forged,
            bad,
            young,
            fresh,
            foreign,
            recs[2].clone(),
        ])
        .send_ok(&srv);
    let res = ans["results"].as_array().unwrap();
    assert_eq!(res[0]["status"], "conflict");
    assert_eq!(res[0]["reason"], "nik_already_activated");
    assert_eq!(res[0]["conflict_with"], recs[0].id.as_str());
    assert_eq!(
        (res[1]["status"].as_str(), res[1]["reason"].as_str()),
        (Some("conflict"), Some("id_reused"))
    );
    assert_eq!(
        (res[2]["status"].as_str(), res[2]["reason"].as_str()),
        (Some("rejected"), Some("nik_province"))
    );
    assert_eq!(res[3]["status"], "accepted", "under 17 is a warning only");
    assert_eq!(
        res[4]["status"], "accepted",
        "one bad record never blocks the rest"
    );
    assert_eq!(
        (res[5]["status"].as_str(), res[5]["reason"].as_str()),
        (Some("rejected"), Some("device_mismatch"))
    );
    // Another device's record, verbatim: not the sender's to send.
    assert_eq!(
        (res[6]["status"].as_str(), res[6]["reason"].as_str()),
        (Some("rejected"), Some("device_mismatch"))
    );
    assert_eq!(srv.records().len(), 23);
    let st = srv.stats();
    assert_eq!(st["records"], 23);
    assert_eq!(st["conflicts"], 1);
    assert_eq!(st["activations_live"], 22);

    // A void makes its target stop counting; the NIK can then be activated again.
    let void = a.void(&recs[5], "salah orang");
    let ans = a.batch(std::slice::from_ref(&void)).send_ok(&srv);
    assert_eq!(statuses(&ans), ["accepted"]);
    assert_eq!(srv.stats()["activations_live"], 21);
    let again = b.record(&ppl[5]);
    let void_of_other = b.void(&recs[6], "bukan punya saya");
    let ans = b.batch(&[again, void_of_other]).send_ok(&srv);
    assert_eq!(statuses(&ans), ["accepted", "rejected"]);
    assert_eq!(ans["results"][1]["reason"], "void_other_device");
    let st = srv.stats();
    assert_eq!(
        (st["activations_live"].as_i64(), st["voids"].as_i64()),
        (Some(22), Some(1))
    );

    // Export: one row per record, with its id.
    let csv = srv.admin_ok(&["export", "--format", "csv"]);
    assert_eq!(csv.lines().count(), 1 + 25);
    assert!(csv.starts_with("id,device_id,seq,kind"));
    assert!(csv.contains(&recs[0].id));
    let out = srv.tmp.path().join("export.json");
    srv.admin_ok(&["export", "--format", "json", "--out", out.to_str().unwrap()]);
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(rows.len(), 25);
    let target = rows
        .iter()
        .find(|r| r["id"] == recs[5].id.as_str())
        .unwrap();
    assert_eq!(target["voided_by"], void.id.as_str());
    assert_eq!(target["district"], &recs[5].village[..6]);
}
}

both_stores! {
fn refusals_are_clear_and_the_server_keeps_serving() {
    let srv = Server::start();
    let ppl = people(12, 1100);
    let mut d = TestDevice::enrolled(&srv);
    let recs: Vec<_> = ppl[..5].iter().map(|p| d.record(p)).collect();
    let good = d.batch(&recs);
    let expect = |r: util::server::Reply, status: u16, code: &str| {
        assert_eq!(
            (r.status, r.code().as_str()),
            (status, code),
            "{}",
            String::from_utf8_lossy(&r.body)
        );
    };

    // Unknown device.
    let stranger = TestDevice::new();
    expect(
        stranger.batch(&[]).send(&srv.url).unwrap(),
        401,
        "device_unknown",
    );
    // Bad signature: signed by another key.
    let forged = stranger.sign_raw(&good.batch_id, &good.body, &recs);
    expect(
        post_batch(
            &srv.url,
            &d.id,
            &good.batch_id,
            &forged.signature,
            &good.body,
        )
        .unwrap(),
        401,
        "bad_signature",
    );
    expect(
        post_batch(&srv.url, &d.id, &good.batch_id, "", &good.body).unwrap(),
        401,
        "bad_signature",
    );
    // Altered body: one byte changed after signing.
    let mut altered = good.body.clone();
    let mid = altered.len() / 2;
    altered[mid] ^= 0x01;
    expect(
        post_batch(&srv.url, &d.id, &good.batch_id, &good.signature, &altered).unwrap(),
        401,
        "bad_signature",
    );
    // Oversized body (2 MiB limit in the test config).
    let big = d.sign_raw("big", &vec![7u8; 2 * 1024 * 1024 + 1], &[]);
    expect(big.send(&srv.url).unwrap(), 413, "body_too_large");
    // A Content-Length over the limit is refused before the body is sent.
    let head = format!(
        "POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n{}: {}\r\n\r\n",
        protocol::H_DEVICE,
        d.id
    );
    let answer = raw_http(&srv.addr, head.as_bytes(), Duration::from_secs(30));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
    // A request claiming an absurd body (it once aborted the server): refused, the server
    // keeps serving.
    for claim in ["18446744073709551615", "99999999999999999"] {
        let head =
            format!("POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Length: {claim}\r\n\r\n");
        let answer = raw_http(&srv.addr, head.as_bytes(), Duration::from_secs(30));
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    }
    assert_eq!(http_get(&srv.url, protocol::PATH_HEALTH).unwrap().0, 200);
    // Decompression bomb: 9 MiB of zeros gzip to a few KiB (8 MiB limit).
    let bomb = d.sign_raw("bomb", &gzip(&vec![0u8; 9 * 1024 * 1024]), &[]);
    assert!(bomb.body.len() < 64 * 1024);
    expect(bomb.send(&srv.url).unwrap(), 413, "decompressed_too_large");
    // Not gzip; gzip of malformed JSON; ids that differ from the headers.
    expect(
        d.sign_raw("x", b"{}", &[]).send(&srv.url).unwrap(),
        400,
        "bad_gzip",
    );
    expect(
        d.sign_raw("x", &gzip(b"{\"protocol\": 1, \"records\": [}"), &[])
            .send(&srv.url)
            .unwrap(),
        400,
        "bad_json",
    );
    let mut mismatch = good.clone();
    mismatch.batch_id = "another".into();
    expect(mismatch.send(&srv.url).unwrap(), 400, "batch_mismatch");
    // Too many records (1000 in the test config).
    let many: Vec<_> = ppl[..1001].iter().map(|p| d.record(p)).collect();
    expect(
        d.batch(&many).send(&srv.url).unwrap(),
        413,
        "too_many_records",
    );
    // Unknown paths and wrong methods.
    assert_eq!(http_get(&srv.url, "/v1/nothing").unwrap().0, 404);
    // ("/" is the dashboard; any other path outside /v1/ is its 404 page.)
    assert_eq!(http_get(&srv.url, "/tidak-ada").unwrap().0, 404);
    assert_eq!(http_get(&srv.url, "/").unwrap().0, 200);
    assert_eq!(http_get(&srv.url, protocol::PATH_BATCHES).unwrap().0, 405);
    // A chunked body has no Content-Length.
    let chunked = "POST /v1/enrol HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
    let answer = raw_http(&srv.addr, chunked.as_bytes(), Duration::from_secs(30));
    assert!(answer.starts_with("HTTP/1.1 411"), "{answer}");

    // Nothing of that was stored, and the good batch still goes through.
    assert_eq!(srv.stats()["records"], 0);
    assert_eq!(good.send_ok(&srv)["summary"]["accepted"], 5);

    // Revoked: refused from then on, even a replay.
    srv.admin_ok(&["revoke", &d.id]);
    expect(good.send(&srv.url).unwrap(), 403, "device_revoked");
    let again: Vec<_> = ppl[5..7].iter().map(|p| d.record(p)).collect();
    expect(
        d.batch(&again).send(&srv.url).unwrap(),
        403,
        "device_revoked",
    );
    let out = srv.admin(&["revoke", "0000000000000000"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(srv.admin_ok(&["devices"]).contains("dicabut"));
    assert!(srv.admin_ok(&["revoke", &d.id]).contains("sudah dicabut"));
    let stats = srv.admin_ok(&["stats", "--lang", "en"]);
    assert!(
        stats.contains("live activations") && stats.contains("rejects"),
        "{stats}"
    );

    let st = srv.stats();
    assert_eq!(st["records"], 5);
    assert!(st["rejects"].as_i64().unwrap() >= 10, "{st}");
    assert_eq!(http_get(&srv.url, protocol::PATH_HEALTH).unwrap().0, 200);
    let log = srv.log();
    assert!(
        log.contains("413") && log.contains("decompressed_too_large"),
        "{log}"
    );
}
}

both_stores! {
fn fifty_devices_at_once_all_commit() {
    const DEVICES: usize = 50;
    const BATCHES: usize = 3;
    const PER_BATCH: usize = 40;
    let srv = Server::start();
    let ppl = people(13, DEVICES * BATCHES * PER_BATCH);
    let tokens: Vec<String> = (0..DEVICES).map(|_| srv.token("TIM")).collect();
    let start = Arc::new(Barrier::new(DEVICES));
    let url = srv.url.clone();
    let key = srv.public_key();
    let threads: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| {
            let mine = ppl[i * BATCHES * PER_BATCH..(i + 1) * BATCHES * PER_BATCH].to_vec();
            let (start, url) = (Arc::clone(&start), url.clone());
            std::thread::spawn(move || {
                let mut d = TestDevice::new();
                start.wait();
                assert_eq!(d.enrol(&url, &token).status, 200);
                let mut accepted = 0;
                for chunk in mine.chunks(PER_BATCH) {
                    let recs: Vec<_> = chunk.iter().map(|p| d.record(p)).collect();
                    let r = d.batch(&recs).send(&url).unwrap();
                    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                    assert!(r.signed_by(&key));
                    accepted += r.json()["summary"]["accepted"].as_u64().unwrap();
                }
                accepted
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(total as usize, DEVICES * BATCHES * PER_BATCH);
    let st = srv.stats();
    assert_eq!(
        st["records"].as_u64().unwrap() as usize,
        DEVICES * BATCHES * PER_BATCH
    );
    assert_eq!(st["batches"].as_u64().unwrap() as usize, DEVICES * BATCHES);
    assert_eq!(st["devices"].as_u64().unwrap() as usize, DEVICES);
    assert!(!srv.log().contains(" 500 "), "{}", srv.log());
}
}

both_stores! {
fn kill_9_mid_stream_then_resend_stores_each_record_once() {
    const DEVICES: usize = 8;
    const BATCHES: usize = 6;
    const PER_BATCH: usize = 30;
    let mut srv = Server::start();
    let ppl = people(14, DEVICES * BATCHES * PER_BATCH);
    let answered = Arc::new(AtomicUsize::new(0));
    let url = srv.url.clone();
    let key = srv.public_key();
    let mut threads = Vec::new();
    for i in 0..DEVICES {
        let mut d = TestDevice::enrolled(&srv);
        // Cut every batch once, up front, as the client's journal does.
        let batches: Vec<_> = ppl[i * BATCHES * PER_BATCH..(i + 1) * BATCHES * PER_BATCH]
            .chunks(PER_BATCH)
            .map(|c| {
                let recs: Vec<_> = c.iter().map(|p| d.record(p)).collect();
                d.batch(&recs)
            })
            .collect();
        let (answered, url) = (Arc::clone(&answered), url.clone());
        threads.push(std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut answers = Vec::new();
            for b in &batches {
                loop {
                    assert!(Instant::now() < deadline, "never answered");
                    match b.send(&url) {
                        Ok(r) if r.status == 200 && r.signed_by(&key) => {
                            answers.push(r.json());
                            answered.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        // Server gone or restarting: resend the same bytes.
                        _ => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }
            answers
        }));
    }
    // Let some batches through, then kill -9 while the rest are in flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered.load(Ordering::SeqCst) < DEVICES {
        assert!(Instant::now() < deadline, "{}", srv.log());
        std::thread::sleep(Duration::from_millis(5));
    }
    srv.kill9();
    srv.restart();
    let answers: Vec<serde_json::Value> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(answers.len(), DEVICES * BATCHES);
    // Every answer says "accepted" for every record: a batch either committed whole with its
    // answer journalled (a resend gets that answer) or not at all (a resend is new).
    for a in &answers {
        assert!(statuses(a).iter().all(|s| s == "accepted"), "{a}");
    }
    let n = srv.count("SELECT COUNT(*) FROM records");
    let distinct = srv.count("SELECT COUNT(DISTINCT nik) FROM records");
    assert_eq!((n as usize, distinct as usize), (ppl.len(), ppl.len()));
    if !util::store::is_postgres() {
        let check: String = srv
            .db()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }
}
}

both_stores! {
fn sigterm_stops_cleanly_with_exit_0() {
    let mut srv = Server::start();
    let mut d = TestDevice::enrolled(&srv);
    let recs: Vec<_> = people(15, 3).iter().map(|p| d.record(p)).collect();
    d.batch(&recs).send_ok(&srv);
    let status = srv.terminate();
    assert_eq!(status.code(), Some(0), "{}", srv.log());
    assert!(srv.log().contains("berhenti dengan rapi"));
    // And it comes back with everything in place.
    srv.restart();
    assert_eq!(srv.stats()["records"], 3);
    assert_eq!(srv.terminate().code(), Some(0));
}
}

both_stores! {
fn sigterm_lets_the_request_in_hand_finish() {
    let mut srv = Server::start();
    let mut d = TestDevice::enrolled(&srv);
    let recs: Vec<_> = people(17, 60).iter().map(|p| d.record(p)).collect();
    let b = d.batch(&recs);
    assert!(
        b.body.len() > 1024,
        "small bodies are read before a worker sees them"
    );
    let mut s = std::net::TcpStream::connect(&srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "POST /v1/batches HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\
         {}: {}\r\n{}: {}\r\n{}: {}\r\n\r\n",
        b.body.len(),
        protocol::H_DEVICE,
        b.device_id,
        protocol::H_BATCH,
        b.batch_id,
        protocol::H_SIGNATURE,
        b.signature
    );
    s.write_all(head.as_bytes()).unwrap();
    // "100 Continue" comes when a worker starts reading the body: the request is in hand.
    let mut buf = [0u8; 25];
    s.read_exact(&mut buf).unwrap();
    assert!(
        buf.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    let pid = srv.pid().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    s.write_all(&b.body).unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"accepted\":60"), "{text}");
    assert_eq!(srv.terminate_wait().code(), Some(0), "{}", srv.log());
    assert_eq!(srv.stats()["records"], 60);
}
}

both_stores! {
fn import_of_a_to_file_batch_uses_the_same_ingest() {
    let srv = Server::start();
    let mut d = TestDevice::enrolled(&srv);
    let ppl = people(16, 12);
    let recs: Vec<_> = ppl.iter().map(|p| d.record(p)).collect();
    let b1 = d.batch(&recs[..8]);
    let b2 = d.batch(&recs[8..]);
    let stranger = TestDevice::new().batch(&[]);
    let file = srv.tmp.path().join("usb.jsonl");
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n{}\n",
            b1.file_line(),
            b2.file_line(),
            stranger.file_line()
        ),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = srv.admin(&["import", f, "--json"]);
    assert_eq!(out.status.code(), Some(3), "one batch refused → exit 3");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &v["error"]["details"];
    assert_eq!(v["summary"]["accepted"], 12);
    assert_eq!(v["refused"][0]["code"], "device_unknown");
    assert_eq!(v["batches"].as_array().unwrap().len(), 2);
    // The online sync of the same journalled batch later gets the same signed answer.
    let online = b1.send_ok(&srv);
    assert_eq!(online, v["batches"][0]);
    // Importing again changes nothing, and says so: a summary, no table of record ids.
    std::fs::write(&file, format!("{}\n", b2.file_line())).unwrap();
    let text = srv.admin_ok(&["import", f]);
    assert!(text.contains("0 kiriman baru"), "{text}");
    assert!(
        text.contains("1 kiriman di berkas ini sudah pernah diimpor atau dikirim"),
        "{text}"
    );
    assert!(!text.contains(&recs[8].id), "{text}");
    assert_eq!(srv.stats()["records"], 12);
    assert_eq!(srv.stats()["batches"], 2);
}
}

#[test]
fn serve_on_a_busy_port_says_so() {
    let srv = Server::start();
    let out = std::process::Command::new(util::BIN)
        .args(["--data-dir"])
        .arg(srv.tmp.path().join("other"))
        .args(["serve", "--listen", &srv.addr, "--db"])
        .arg(srv.tmp.path().join("other.db"))
        .env_remove("IKD_FIELD_LANG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&srv.addr) && err.contains("--listen"), "{err}");
}

#[test]
fn admin_commands_do_not_invent_a_database() {
    let srv = Server::start();
    let missing = srv.tmp.path().join("typo.db");
    for cmd in ["stats", "devices", "export"] {
        let out = std::process::Command::new(util::BIN)
            .args(["--data-dir"])
            .arg(srv.tmp.path().join("data"))
            .args(["server", cmd, "--db"])
            .arg(&missing)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
    }
    assert!(!missing.exists());
}

both_stores! {
fn activated_niks_are_listed_as_hash_prefixes() {
    use base64::Engine;
    let srv = Server::start();
    let mut a = TestDevice::enrolled(&srv);
    let ppl = people(18, 10);
    let recs: Vec<_> = ppl.iter().map(|p| a.record(p)).collect();
    a.batch(&recs).send_ok(&srv);
    let void = a.void(&recs[0], "salah orang");
    a.batch(&[void]).send_ok(&srv);

    let b = TestDevice::enrolled(&srv);
    let r = b.activated(&srv.url, 0);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.signed_by(&srv.public_key()));
    let v: protocol::ActivatedResponse = serde_json::from_slice(&r.body).unwrap();
    assert_eq!((v.count, v.more, v.prefix_bytes), (9, false, 3));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&v.prefixes)
        .unwrap();
    let listed: Vec<&[u8]> = bytes.chunks(3).collect();
    for r in &recs[1..] {
        assert!(listed.contains(&&protocol::nik_prefix(&r.nik)[..]));
    }
    assert!(
        !listed.contains(&&protocol::nik_prefix(&recs[0].nik)[..]),
        "voided"
    );
    // Nothing new since the cursor.
    let again: protocol::ActivatedResponse =
        serde_json::from_slice(&b.activated(&srv.url, v.next).body).unwrap();
    assert_eq!((again.count, again.next), (0, v.next));
    // Only enrolled devices may ask.
    let r = TestDevice::new().activated(&srv.url, 0);
    assert_eq!((r.status, r.code().as_str()), (401, "device_unknown"));
}
}

/// Two `serve` processes on one PostgreSQL database, 20 devices syncing through both at once
/// (each device alternates servers batch by batch, some citizens recorded by two devices, one
/// batch resent through the other server): every record is stored exactly once, each shared NIK
/// gives one live activation and one conflict, both servers sign with the one key and show the
/// same dashboard totals. (PostgreSQL only: on SQLite the same is the fifty-devices test.)
#[test]
fn two_serve_processes_on_one_postgres_database() {
    util::store::on_postgres("two_serve_processes_on_one_postgres_database", || {
        const DEVICES: usize = 20;
        const BATCHES: usize = 6;
        const PER_BATCH: usize = 40;
        const SHARED: usize = 10;
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("district.db");
        let a = Server::start_on_db(&db, util::server::TEST_CONFIG);
        let b = Server::start_on_db(&db, util::server::TEST_CONFIG);
        assert_eq!(a.db_arg, b.db_arg);
        assert_eq!(a.server_public_key, b.server_public_key, "one key for both");
        let urls = [a.url.clone(), b.url.clone()];
        let key = a.public_key();
        let own = BATCHES * PER_BATCH - SHARED;
        let ppl = people(31, DEVICES * own);
        // Device i records its own citizens, then the first SHARED of device i+1's.
        let plans: Vec<Vec<Input>> = (0..DEVICES)
            .map(|i| {
                let mut v = ppl[i * own..(i + 1) * own].to_vec();
                let next = (i + 1) % DEVICES * own;
                v.extend_from_slice(&ppl[next..next + SHARED]);
                v
            })
            .collect();
        let all: Vec<&Input> = plans.iter().flatten().collect();
        let distinct_niks: std::collections::BTreeSet<String> =
            all.iter().map(|p| p.nik.clone()).collect();
        // Tokens from either server's admin command: the same tokens table.
        let tokens: Vec<String> = (0..DEVICES)
            .map(|i| {
                if i % 2 == 0 {
                    a.token("TIM")
                } else {
                    b.token("TIM")
                }
            })
            .collect();
        let start = Arc::new(Barrier::new(DEVICES));
        let threads: Vec<_> = plans
            .into_iter()
            .zip(tokens)
            .enumerate()
            .map(|(i, (mine, token))| {
                let (start, urls) = (Arc::clone(&start), urls.clone());
                std::thread::spawn(move || {
                    let mut d = TestDevice::new();
                    assert_eq!(d.enrol(&urls[i % 2], &token).status, 200);
                    start.wait();
                    let mut ids = Vec::new();
                    let mut summary = [0u64; 2];
                    for (j, chunk) in mine.chunks(PER_BATCH).enumerate() {
                        let recs: Vec<_> = chunk.iter().map(|p| d.record(p)).collect();
                        ids.extend(recs.iter().map(|r| r.id.clone()));
                        let batch = d.batch(&recs);
                        let r = batch.send(&urls[(i + j) % 2]).unwrap();
                        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
                        assert!(r.signed_by(&key));
                        let answer = r.json();
                        summary[0] += answer["summary"]["accepted"].as_u64().unwrap();
                        summary[1] += answer["summary"]["conflict"].as_u64().unwrap();
                        if j == 0 {
                            // A resend through the other process gets the journalled answer.
                            let again = batch.send(&urls[(i + j + 1) % 2]).unwrap();
                            assert_eq!((again.status, &again.body), (200, &r.body));
                            assert_eq!(again.signature, r.signature);
                        }
                    }
                    (ids, summary)
                })
            })
            .collect();
        let mut ids = Vec::new();
        let (mut accepted, mut conflicts) = (0u64, 0u64);
        for t in threads {
            let (i, s) = t.join().unwrap();
            ids.extend(i);
            accepted += s[0];
            conflicts += s[1];
        }
        let total = DEVICES * BATCHES * PER_BATCH;
        assert_eq!(ids.len(), total);
        assert_eq!(accepted as usize, distinct_niks.len());
        assert_eq!((accepted + conflicts) as usize, total);
        // Every record exactly once, in both servers' view.
        let on_server: Vec<String> = a
            .records()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        let unique: std::collections::BTreeSet<_> = on_server.iter().cloned().collect();
        assert_eq!(on_server.len(), total, "a record stored twice or lost");
        assert_eq!(unique, ids.iter().cloned().collect());
        let st = b.stats();
        assert_eq!(st["records"].as_u64().unwrap() as usize, total);
        assert_eq!(st["conflicts"].as_u64(), Some(conflicts));
        assert_eq!(
            st["activations_live"].as_u64().unwrap() as usize,
            distinct_niks.len()
        );
        assert_eq!(st["batches"].as_u64().unwrap() as usize, DEVICES * BATCHES);
        assert_eq!(
            a.count(
                "SELECT COUNT(*) FROM (SELECT nik FROM live_activations GROUP BY nik \
                 HAVING COUNT(*) > 1) x"
            ),
            0,
            "a NIK live twice"
        );
        // The dashboard's aggregates, folded batch by batch by two processes, equal the records.
        assert_eq!(
            a.count("SELECT CAST(coalesce(SUM(live), 0) AS BIGINT) FROM live_by_village") as usize,
            distinct_niks.len()
        );
        assert_eq!(
            a.count("SELECT CAST(coalesce(SUM(live), 0) AS BIGINT) FROM live_by_device_hour")
                as usize,
            distinct_niks.len()
        );
        for srv in [&a, &b] {
            let (status, report) = http_get(&srv.url, "/laporan.json?level=kabupaten").unwrap();
            assert_eq!(status, 200);
            assert_eq!(
                report["rows"][0]["live"].as_u64().unwrap() as usize,
                distinct_niks.len()
            );
            assert_eq!(report["rows"][0]["conflicts"].as_u64(), Some(conflicts));
            assert!(!srv.log().contains(" 500 "), "{}", srv.log());
        }
    });
}

/// `server.database_url` in config.toml picks PostgreSQL without `--db`; `serve` (and `server
/// import`) refuse to start without `server.key_file`, saying so, while the admin commands that
/// sign nothing work; with the key file set the server starts and signs with it.
#[test]
fn database_url_in_config_and_the_key_file_it_needs() {
    util::store::on_postgres("database_url_in_config_and_the_key_file_it_needs", || {
        let tmp = tempfile::tempdir().unwrap();
        let url = util::store::db_arg(&tmp.path().join("district.db"));
        let run = |config: &str, args: &[&str]| {
            let path = tmp.path().join("config.toml");
            std::fs::write(&path, config).unwrap();
            std::process::Command::new(util::BIN)
                .arg("--data-dir")
                .arg(tmp.path().join("data"))
                .arg("--config")
                .arg(&path)
                .args(args)
                .env_remove("IKD_FIELD_LANG")
                .env_remove("IKD_FIELD_CONFIG")
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap()
        };
        let without_key = format!("[server]\ndatabase_url = {url:?}\n");
        let out = run(&without_key, &["server", "token", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = run(&without_key, &["serve", "--listen", "127.0.0.1:0"]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("key_file"), "{err}");
        // With a key file: the stats show the token made above, on the same database.
        let with_key = format!("{without_key}key_file = \"server.key\"\n");
        let stats: serde_json::Value =
            serde_json::from_slice(&run(&with_key, &["server", "stats", "--json"]).stdout).unwrap();
        assert_eq!(stats["stats"]["tokens_unused"], 1);
        let srv = util::server::Server::start_on_db(
            &tmp.path().join("district.db"),
            util::server::TEST_CONFIG,
        );
        assert!(tmp.path().join("district.db.key").exists());
        assert_eq!(srv.stats()["tokens_unused"], 1);
    });
}

/// `ikd-field server admin-token` keeps a token in the server's data folder for an office with
/// no one to edit config.toml; `serve` uses it from its next start (the dashboard's login and
/// the admin API), `--new` replaces it, and a token in config.toml wins over the file.
#[test]
fn the_admin_token_command_turns_the_login_on_without_editing_config() {
    let stats = |s: &Server, token: &str| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        agent
            .get(format!("{}/v1/admin/stats", s.url))
            .header("Authorization", format!("Bearer {token}"))
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    let mut srv = Server::start();
    let made = srv.admin_json(&["admin-token"]);
    let token = made["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 32, "{made}");
    assert_eq!(made["made"], true, "{made}");
    assert_eq!(made["in_use"], true, "{made}");
    assert!(
        made["login"].as_str().unwrap().ends_with("/masuk"),
        "{made}"
    );
    // The running server read its settings when it started: the admin API is still off.
    assert_ne!(stats(&srv, &token), 200);
    srv.restart();
    assert_eq!(stats(&srv, &token), 200);
    assert_eq!(stats(&srv, "0123456789abcdef0123456789abcdef"), 401);
    // Asked again, the same token; --new makes another, used from the next start.
    let again = srv.admin_json(&["admin-token"]);
    assert_eq!(again["token"].as_str(), Some(token.as_str()), "{again}");
    assert_eq!(again["made"], false, "{again}");
    let new = srv.admin_json(&["admin-token", "--new"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new, token);
    srv.restart();
    assert_eq!(stats(&srv, &new), 200);
    assert_eq!(stats(&srv, &token), 401);
    // The people's words say where to log in and what the token gives.
    let out = srv.admin(&["admin-token"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("/masuk") && said.contains("NIK"), "{said}");

    // A token in config.toml wins; the command says so.
    let cfg = Server::start_with_config(&format!(
        "{}admin_token = \"token-dari-config-yang-panjang\"\n",
        util::server::TEST_CONFIG
    ));
    let kept = cfg.admin_json(&["admin-token"]);
    assert_eq!(kept["in_use"], false, "{kept}");
    assert_eq!(stats(&cfg, "token-dari-config-yang-panjang"), 200);
    assert_eq!(stats(&cfg, kept["token"].as_str().unwrap()), 401);
}
