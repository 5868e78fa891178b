//! Server hardening, end to end against a real `serve`: the admin API needs the admin token
//! (and is off without one), rate limits answer 429 with Retry-After while a real `sync` still
//! completes, and oversized request heads are refused without harming the server.
mod netfault;
mod util;
use std::time::Duration;
use util::Kit;
use util::server::{Server, TestDevice, raw_http};

const TOKEN: &str = "token-admin-uji-0123456789";

/// `method url+path` with an optional bearer token: (status, headers we look at, body).
fn call(
    method: &str,
    url: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&str>,
) -> (u16, Option<String>, Option<String>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let uri = format!("{url}{path}");
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let resp = match method {
        "GET" => {
            let mut r = agent.get(&uri);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.call()
        }
        _ => {
            let mut r = agent.post(&uri).header("Content-Type", "application/json");
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.send(body.unwrap_or("").as_bytes())
        }
    }
    .unwrap();
    let h = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (status, www, retry) = (
        resp.status().as_u16(),
        h("WWW-Authenticate"),
        h("Retry-After"),
    );
    let text = resp.into_body().read_to_string().unwrap();
    (status, www, retry, text)
}

fn code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["error"]["code"].as_str().unwrap_or("").to_string()
}

#[test]
fn admin_endpoints_need_the_admin_token() {
    let srv = Server::start_with_config(&format!(
        "{}admin_token = \"{TOKEN}\"\n",
        util::server::TEST_CONFIG
    ));
    let mut dev = TestDevice::enrolled(&srv);
    let people = ikd_field::synth::citizens(3, "1702", 3);
    let recs: Vec<_> = people.iter().map(|p| dev.record(p)).collect();
    dev.batch(&recs).send_ok(&srv);

    for (method, path) in [
        ("GET", "/v1/admin/export"),
        ("GET", "/v1/admin/export?format=jsonl"),
        ("GET", "/v1/admin/devices"),
        ("GET", "/v1/admin/stats"),
        ("POST", "/v1/admin/revoke"),
    ] {
        for wrong in [None, Some("salah"), Some(&TOKEN[..TOKEN.len() - 1])] {
            let body = format!("{{\"device_id\": \"{}\"}}", dev.id);
            let (status, www, _, text) = call(method, &srv.url, path, wrong, Some(&body));
            assert_eq!(status, 401, "{method} {path} {wrong:?}: {text}");
            assert_eq!(code(&text), "admin_unauthorized", "{text}");
            assert!(www.unwrap_or_default().starts_with("Bearer"));
            assert!(!text.contains(&recs[0].id));
        }
    }

    // With the token: the record-level export, streamed, in both formats.
    let (status, _, _, csv) = call("GET", &srv.url, "/v1/admin/export", Some(TOKEN), None);
    assert_eq!(status, 200, "{csv}");
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("id,"), "{csv}");
    assert_eq!(lines.count(), 3);
    for r in &recs {
        assert!(csv.contains(&r.id), "{csv}");
    }
    let (status, _, _, jsonl) = call(
        "GET",
        &srv.url,
        "/v1/admin/export?format=jsonl",
        Some(TOKEN),
        None,
    );
    assert_eq!(status, 200);
    let ids: Vec<String> = jsonl
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    let (_, _, _, devices) = call("GET", &srv.url, "/v1/admin/devices", Some(TOKEN), None);
    assert!(devices.contains(&dev.id), "{devices}");
    let (_, _, _, stats) = call("GET", &srv.url, "/v1/admin/stats", Some(TOKEN), None);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["stats"]["records"], 3, "{stats}");

    // Revoking a stolen device over HTTP: its next batch is refused.
    let body = format!("{{\"device_id\": \"{}\"}}", dev.id);
    let (status, _, _, text) = call(
        "POST",
        &srv.url,
        "/v1/admin/revoke",
        Some(TOKEN),
        Some(&body),
    );
    assert_eq!(status, 200, "{text}");
    let more = dev.record(&ikd_field::synth::citizens(4, "1702", 1)[0]);
    let r = dev.batch(&[more]).send(&srv.url).unwrap();
    assert_eq!((r.status, r.code()), (403, "device_revoked".to_string()));

    // Guessing: once an address has spent its allowance of wrong tokens, every admin request
    // from it is 429, the right token too, so a right guess does not stand out.
    let guarded = guarded_server();
    assert_eq!(guesses(&guarded, "/v1/admin/stats"), [401, 401, 429, 429]);

    // Without a configured token the admin API does not exist, whatever the request says.
    let open = Server::start();
    for bearer in [None, Some(TOKEN), Some("")] {
        let (status, _, _, text) = call("GET", &open.url, "/v1/admin/export", bearer, None);
        assert_eq!((status, code(&text).as_str()), (404, "not_found"), "{text}");
        let (status, _, _, _) = call("GET", &open.url, "/v1/admin/devices", bearer, None);
        assert_eq!(status, 404);
    }
}

#[test]
fn rate_limits_answer_429_and_a_real_sync_still_completes() {
    let srv = Server::start_with_config(&format!(
        "{}device_requests_per_minute = 120\ndevice_burst = 2\naddress_requests_per_minute = 60\naddress_burst = 3\n",
        util::server::TEST_CONFIG
    ));
    let k = netfault::enrolled_kit_at(
        &srv.url,
        &srv.token("TIM UJI"),
        &format!("{}\nbatch_size = 10", netfault::FAST),
    );
    // More guesses at enrolment tokens than the address's burst: the extra ones are 429.
    let mut limited = 0;
    for _ in 0..4 {
        let r = TestDevice::new().enrol(&srv.url, "AAAA-BBBB-CCCC-DDDD");
        match r.status {
            401 => assert_eq!(r.code(), "token_unknown"),
            429 => {
                assert_eq!(r.code(), "rate_limited");
                limited += 1;
            }
            s => panic!("enrol answered {s}"),
        }
    }
    assert!(limited >= 1, "a burst of guesses must meet the limit");

    // Five batches and the activated list from one device, two allowed at once: the client
    // waits out each 429 (Retry-After) and the sync completes with nothing lost or doubled.
    let ids = netfault::record_many(&k, 61, 50);
    let r = k.json(&["sync"]);
    assert_eq!(r["summary"]["accepted"], 50, "{r}");
    assert_eq!(r["pending"], 0, "{r}");
    let log = srv.log();
    assert!(
        log.contains(" 429 ") && log.contains("rate_limited"),
        "no request was rate limited:\n{log}"
    );
    let on_server = srv.records();
    assert_eq!(on_server.len(), ids.len());
    // A raw 429 carries Retry-After and the protocol's error body.
    let mut retry_after = None;
    for _ in 0..4 {
        let (status, _, retry, text) = call("POST", &srv.url, "/v1/batches", None, Some("{}"));
        if status == 429 {
            assert_eq!(code(&text), "rate_limited");
            retry_after = retry;
            break;
        }
    }
    let secs: u64 = retry_after.expect("a 429").parse().unwrap();
    assert!(secs >= 1);
}

#[test]
fn oversized_request_heads_are_refused_and_the_server_keeps_serving() {
    let srv = Server::start();
    let wait = Duration::from_secs(10);
    let long_url = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    assert!(raw_http(&srv.addr, long_url.as_bytes(), wait).starts_with("HTTP/1.1 414"));
    let long_header = format!(
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "b".repeat(9000)
    );
    assert!(raw_http(&srv.addr, long_header.as_bytes(), wait).starts_with("HTTP/1.1 431"));
    let many: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /v1/health HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert!(raw_http(&srv.addr, many.as_bytes(), wait).starts_with("HTTP/1.1 431"));
    // A head with no end at all (the old code buffered it without limit).
    {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&srv.addr).unwrap();
        s.set_read_timeout(Some(wait)).unwrap();
        // The server stops reading past the limit, so the write may fail: that is fine.
        let _ = s.write_all(b"GET /v1/health HTTP/1.1\r\nX-Pad: ");
        let _ = s.write_all(&vec![b'c'; 200_000]);
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
            "{answer}"
        );
    }
    let ok = raw_http(
        &srv.addr,
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        wait,
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

/// A man in the middle on an unencrypted hop (a TLS-stripping proxy, or the link behind the
/// office's reverse proxy) that answers a batch with the server's genuine, signed answer to an
/// earlier batch. The signature verifies, but it names another batch: the laptop refuses it,
/// keeps those records pending, and a later clean sync delivers each record exactly once.
#[test]
fn a_replayed_signed_answer_for_another_batch_is_refused() {
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    let srv = Server::start();
    let upstream = srv.addr.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mitm = format!("http://{}", listener.local_addr().unwrap());
    let first_answer: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
    let replayed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let (first_answer, replayed) = (first_answer.clone(), replayed.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, first_answer, replayed) =
                    (upstream.clone(), first_answer.clone(), replayed.clone());
                std::thread::spawn(move || {
                    let mut client: TcpStream = client;
                    let mut pending = Vec::new();
                    while let Some(req) = netfault::read_message(&mut client, &mut pending, false) {
                        let Ok(mut server) = TcpStream::connect(&upstream) else {
                            return;
                        };
                        use std::io::Write;
                        if server.write_all(&req).is_err() {
                            return;
                        }
                        let Some(answer) =
                            netfault::read_message(&mut server, &mut Vec::new(), true)
                        else {
                            return;
                        };
                        let mut sent = answer.clone();
                        if req.starts_with(b"POST /v1/batches ") {
                            let mut first = first_answer.lock().unwrap();
                            match &*first {
                                None => *first = Some(answer),
                                Some(old) => {
                                    sent = old.clone();
                                    replayed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                }
                            }
                        }
                        if client.write_all(&sent).is_err() {
                            return;
                        }
                    }
                });
            }
        });
    }
    let k = netfault::enrolled_kit_at(
        &srv.url,
        &srv.token("TIM UJI"),
        &format!("{}\nbatch_size = 10", netfault::FAST),
    );
    let ids = netfault::record_many(&k, 71, 20);
    let (out, _) = k.fails(&["sync", "--server", &mitm, "--lang", "en", "--json"], 5);
    // The officer reads that the answer is not the server's; the precise reason is kept for
    // scripts.
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let reason = v["error"]["details"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("an answer for another batch"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not from the district server"),
        "{v}"
    );
    assert!(replayed.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert_eq!(netfault::local(&k, "synced").len(), 10);
    assert_eq!(netfault::local(&k, "pending").len(), 10);
    // The direct route: the server answers the journalled batch; every record once.
    let r = k.json(&["sync"]);
    assert_eq!(r["pending"], 0, "{r}");
    assert_eq!(netfault::local(&k, "synced").len(), 20);
    let mut on_server: Vec<String> = srv
        .records()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    on_server.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(on_server, want);
}

/// Enrolment pinning: `enrol --expect-server-id` with another server's id is refused before the
/// token is spent (exit 1, nothing stored); a malformed id is a usage error (exit 2); with this
/// server's id, or its full key, the same token enrols. `server token` prints the id to hand
/// over, and the enrolment answer is signed by the server key.
#[test]
fn enrolment_with_an_expected_server_id_refuses_another_server() {
    let srv = Server::start();
    let out = srv.admin(&["token", "--team", "TIM PIN"]);
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        said.contains(&format!("ID SERVER: {}", srv.server_id)),
        "{said}"
    );
    assert!(
        said.contains(&format!("--expect-server-id {}", srv.server_id)),
        "{said}"
    );
    let json = srv.admin_json(&["token", "--team", "TIM PIN"]);
    assert_eq!(json["server_id"], srv.server_id.as_str());
    let second = json["token"].as_str().unwrap().to_string();

    let k = Kit::new();
    let enrolled = || k.count("SELECT COUNT(*) FROM meta WHERE key LIKE 'sync.%'");
    let wrong = "0123456789ABCDEF";
    let (_, err) = k.fails(
        &[
            "enrol",
            "--server",
            &srv.url,
            "--token",
            &token,
            "--expect-server-id",
            wrong,
        ],
        1,
    );
    assert!(
        err.contains("bukan server yang diharapkan") && err.contains(&srv.server_id),
        "{err}"
    );
    assert!(err.contains("belum terpakai"), "{err}");
    let (out, _) = k.fails(
        &[
            "enrol",
            "--server",
            &srv.url,
            "--token",
            &token,
            "--expect-server-id",
            wrong,
            "--json",
        ],
        1,
    );
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(e["error"]["details"]["token_spent"], false, "{e}");
    let (_, err) = k.fails(
        &[
            "enrol",
            "--server",
            &srv.url,
            "--token",
            &token,
            "--expect-server-id",
            "not-an-id",
        ],
        2,
    );
    assert!(err.contains("bukan id server"), "{err}");
    assert_eq!(enrolled(), 0, "nothing stored");
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM tokens WHERE used_at IS NOT NULL"),
        0
    );

    // The right id, with the very same token.
    let ok = k.json(&[
        "enrol",
        "--server",
        &srv.url,
        "--token",
        &token,
        "--expect-server-id",
        &srv.server_id.to_uppercase(),
    ]);
    assert_eq!(ok["enrolment"]["server_id"], srv.server_id.as_str());
    assert_eq!(enrolled(), 4);
    // The full key works too (another laptop, with init).
    let other = Kit::empty();
    other.ok(&[
        "init",
        "--officer",
        "B",
        "--team",
        "T",
        "--server",
        &srv.url,
        "--token",
        &second,
        "--expect-server-id",
        &srv.server_public_key,
    ]);
    // The answer a pinned device checks is signed by the server key.
    let third = srv.token("TIM PIN");
    let r = TestDevice::new().enrol(&srv.url, &third);
    assert_eq!(r.status, 200);
    assert!(r.signed_by(&srv.public_key()));
}

/// A laptop given another district's sealing key must not end up enrolled here even when the
/// check through `/v1/health` could not run (a hotspot answered it): the enrolment answer's key
/// is compared before anything is stored, else its records would go to a server that cannot
/// open them and come back `seal_unopened`.
#[test]
fn an_enrolment_answer_with_another_sealing_key_is_not_stored() {
    let srv = Server::start();
    let proxy = netfault::Proxy::start(srv.addr.parse().unwrap());
    let url = format!("http://{}", proxy.addr);
    let other = ikd_field::seal::OpenKey::generate().unwrap().public_hex();
    let k = Kit::empty();
    k.ok(&[
        "init",
        "--officer",
        "P",
        "--team",
        "T",
        "--district-key",
        &other,
    ]);
    // /v1/health gets a captive portal's page; the enrolment itself reaches the server.
    proxy.plan([netfault::Fault::Portal]);
    let (_, err) = k.fails(&["enrol", "--server", &url, "--token", &srv.token("T")], 1);
    assert!(err.contains("disegel untuk kunci Dinas"), "{err}");
    assert_eq!(proxy.left(), 0, "the portal answered /v1/health");
    let st = k.json(&["status"]);
    assert!(st["sync"]["enrolment"].is_null(), "{st}");
}

/// CSV exports cannot run anything in the admin's spreadsheet: a name, officer, void reason or
/// e-mail that starts a formula, and the phone (`+62…`), come out as text (a leading `'`) in
/// `server export`, `/v1/admin/export` and nowhere else changed.
#[test]
fn exported_csv_cells_never_start_a_formula() {
    let srv = Server::start_with_config(&format!(
        "{}admin_token = \"{TOKEN}\"\n",
        util::server::TEST_CONFIG
    ));
    let mut d = TestDevice::enrolled(&srv);
    d.officer = "=HYPERLINK(\"http://contoh.id\",\"klik\")".into();
    let mut p = ikd_field::synth::citizens(31, "1702", 1).remove(0);
    p.email = "=cmd|'/Ccalc'!A0@contoh.id".into();
    let rec = d.record(&p);
    let void = d.void(&rec, "@SUM(1+1)");
    d.batch(&[rec.clone(), void]).send_ok(&srv);

    let (status, _, _, streamed) = call("GET", &srv.url, "/v1/admin/export", Some(TOKEN), None);
    assert_eq!(status, 200, "{streamed}");
    for csv in [srv.admin_ok(&["export", "--format", "csv"]), streamed] {
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let header = reader.headers().unwrap().clone();
        let col = |name: &str| header.iter().position(|h| h == name).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        for row in &rows {
            for cell in row {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "a cell a spreadsheet would run: {cell:?} in {row:?}"
                );
            }
        }
        let activation = rows.iter().find(|r| r[col("id")] == rec.id).unwrap();
        assert_eq!(&activation[col("officer")], format!("'{}", d.officer));
        assert_eq!(&activation[col("email")], "'=cmd|'/Ccalc'!A0@contoh.id");
        assert_eq!(&activation[col("phone")], format!("'{}", rec.phone));
        assert!(rec.phone.starts_with("+62"));
        let voided = rows.iter().find(|r| r[col("id")] != rec.id).unwrap();
        assert_eq!(&voided[col("reason")], "'@SUM(1+1)");
    }
}

/// The district database, its WAL and shared-memory files, its key and an export file are
/// readable by the server's user only (0600), and a folder `serve` makes for its database is
/// 0700: they hold full NIKs, phones and e-mails.
#[cfg(unix)]
#[test]
fn server_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let folder = tempfile::tempdir().unwrap();
    let db = folder.path().join("kantor").join("district.db");
    let srv = Server::start_on_db(&db, "");
    let mut d = TestDevice::enrolled(&srv);
    let p = ikd_field::synth::citizens(32, "1702", 1).remove(0);
    let rec = d.record(&p);
    d.batch(&[rec]).send_ok(&srv);
    let with = |suffix: &str| {
        let mut s = db.as_os_str().to_owned();
        s.push(suffix);
        std::path::PathBuf::from(s)
    };
    for f in [db.clone(), with("-wal"), with("-shm"), with(".key")] {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    assert_eq!(mode(db.parent().unwrap()), 0o700);
    let out = srv.tmp.path().join("semua.csv");
    srv.admin_ok(&["export", "--out", out.to_str().unwrap()]);
    assert_eq!(mode(&out), 0o600);
}

/// The batch journal is keyed by (device, batch id): a device that posts a batch under a
/// laptop's batch id (readable from the laptop's USB file) gets its own batch stored, and the
/// laptop's batch of that id is still taken, answered and replayed as its own.
#[test]
fn a_batch_id_taken_by_another_device_does_not_block_the_laptop() {
    let srv = Server::start();
    let mut laptop = TestDevice::enrolled(&srv);
    let mut other = TestDevice::enrolled(&srv);
    let people = ikd_field::synth::citizens(33, "1702", 2);
    let mine = laptop.record(&people[0]);
    let batch = laptop.batch(std::slice::from_ref(&mine));
    let theirs = other.record(&people[1]);
    let squat = other.batch_with_id(&batch.batch_id, &[theirs]);
    assert_eq!(squat.send_ok(&srv)["results"][0]["status"], "accepted");
    let answer = batch.send_ok(&srv);
    assert_eq!(answer["results"][0]["status"], "accepted", "{answer}");
    assert_eq!(answer["results"][0]["id"], mine.id.as_str());
    // A resend is a replay of the laptop's own answer, not the other device's.
    assert_eq!(batch.send_ok(&srv)["results"][0]["id"], mine.id.as_str());
    assert_eq!(srv.stats()["activations_live"], 2);
}

/// A server with an admin token and an allowance of two wrong guesses per address.
fn guarded_server() -> Server {
    Server::start_with_config(&format!(
        "{}admin_token = \"{TOKEN}\"\naddress_requests_per_minute = 1\naddress_burst = 2\n",
        util::server::TEST_CONFIG
    ))
}

/// Three wrong tokens then the right one on `path`: the statuses.
fn guesses(srv: &Server, path: &str) -> Vec<u16> {
    [
        Some("salah-1"),
        Some("salah-2"),
        Some("salah-3"),
        Some(TOKEN),
    ]
    .into_iter()
    .map(|t| call("GET", &srv.url, path, t, None).0)
    .collect()
}

/// Wrong admin tokens on the dashboard's conflict page count against the address as they do on
/// the admin API, and once the address is locked the right token is refused there too (a right
/// guess does not stand out); a request without a token still gets the public pages.
#[test]
fn conflict_page_guessing_is_limited_like_the_admin_api() {
    let srv = guarded_server();
    assert_eq!(guesses(&srv, "/konflik"), [401, 401, 429, 429]);
    // The admin API shares the lock.
    assert_eq!(
        call("GET", &srv.url, "/v1/admin/stats", Some(TOKEN), None).0,
        429
    );
    // Aggregates need no token and are not locked.
    assert_eq!(call("GET", &srv.url, "/", None, None).0, 200);
}

/// A script posting the conflict page's "handled" form with a wrong bearer token gets the admin
/// API's plain refusal (401, `WWW-Authenticate`), counted against its address like a wrong token
/// on `/v1/admin/` — not a redirect to the login page, which it would follow to a 200; a browser
/// without a session is still sent to the login.
#[test]
fn a_wrong_bearer_on_an_admin_form_is_refused_like_the_admin_api() {
    let srv = guarded_server();
    let post = |bearer: Option<&str>| {
        let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let raw = format!(
            "POST /konflik/selesai HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4\r\nConnection: close\r\n\r\nid=1"
        );
        raw_http(&srv.addr, raw.as_bytes(), Duration::from_secs(10))
    };
    let browser = post(None);
    assert!(browser.starts_with("HTTP/1.1 303"), "{browser:?}");
    assert!(
        browser.to_lowercase().contains("location: /masuk"),
        "{browser}"
    );
    let wrong = post(Some("salah-1"));
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong:?}");
    assert!(
        wrong.to_lowercase().contains("www-authenticate: bearer"),
        "{wrong}"
    );
    // The second wrong token spends the allowance of two; then the address is locked there and
    // on the admin API, the right token included.
    assert!(post(Some("salah-2")).starts_with("HTTP/1.1 401"));
    assert!(post(Some(TOKEN)).starts_with("HTTP/1.1 429"));
    assert_eq!(
        call("GET", &srv.url, "/v1/admin/stats", Some(TOKEN), None).0,
        429
    );
}

/// A batch from a device the server does not know is refused from its headers, before its body:
/// a client announcing 8 MiB and sending nothing is answered at once (it used to hold a worker
/// until the body deadline).
#[test]
fn an_unknown_device_is_refused_before_its_body() {
    let srv = Server::start();
    let head = format!(
        "POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Length: 8388608\r\n{}: 0123456789abcdef\r\n{}: b1\r\n{}: AAAA\r\n\r\n",
        ikd_field::protocol::H_DEVICE,
        ikd_field::protocol::H_BATCH,
        ikd_field::protocol::H_SIGNATURE
    );
    // Well inside the 30 s the old server waited for the body.
    let answer = raw_http(&srv.addr, head.as_bytes(), Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer:?}");
    assert!(answer.contains("device_unknown"), "{answer}");
}

/// A device's rate limit is spent only by requests signed by that device: a stranger posting
/// under a laptop's device id (shown on the public dashboard) with no valid signature is refused
/// and counted against its own address, and the laptop's next batch goes through.
#[test]
fn a_device_rate_limit_cannot_be_spent_by_someone_else() {
    let srv = Server::start_with_config(&format!(
        "{}device_requests_per_minute = 1\ndevice_burst = 2\n",
        util::server::TEST_CONFIG
    ));
    let mut laptop = TestDevice::enrolled(&srv);
    let mut stranger = TestDevice::new();
    stranger.id = laptop.id.clone();
    let people = ikd_field::synth::citizens(34, "1702", 2);
    for _ in 0..6 {
        let forged = stranger.record(&people[0]);
        let r = stranger.batch(&[forged]).send(&srv.url).unwrap();
        assert_eq!((r.status, r.code()), (401, "bad_signature".to_string()));
    }
    let own = laptop.record(&people[1]);
    let answer = laptop.batch(&[own]).send_ok(&srv);
    assert_eq!(answer["summary"]["accepted"], 1);
}

/// Slow clients hold no worker: a dozen connections announcing a huge body on a dashboard path
/// and then trickling a byte a second are answered and closed (their body never read) while
/// health checks and a real batch go through.
#[test]
fn trickling_clients_do_not_freeze_the_server() {
    use std::io::{Read, Write};
    let srv = Server::start();
    let addr = srv.addr.clone();
    let trickers: Vec<_> = (0..12)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
                s.write_all(b"GET /favicon.ico HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n")
                    .unwrap();
                for _ in 0..5 {
                    if s.write_all(b"x").is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
                let mut answer = Vec::new();
                let _ = s.read_to_end(&mut answer);
                String::from_utf8_lossy(&answer).into_owned()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..10 {
        assert_eq!(http_get_status(&srv.url), 200);
    }
    let mut d = TestDevice::enrolled(&srv);
    let r = d.record(&ikd_field::synth::citizens(35, "1702", 1)[0]);
    assert_eq!(d.batch(&[r]).send_ok(&srv)["summary"]["accepted"], 1);
    for t in trickers {
        let answer = t.join().unwrap();
        // Answered (the dashboard's favicon) and closed: the read above saw the end.
        assert!(answer.starts_with("HTTP/1.1 204"), "{answer:?}");
    }
}

/// Red team: clients trickling the small body of a dashboard form (the login: no session
/// needed) cannot hold the server's workers. Before, eight of them took every worker for the
/// 46 s their bodies were allowed, and a health check (or a laptop's batch) waited that long.
/// Here the health check and a batch are answered while every trickler is still sending.
#[test]
fn trickled_login_forms_do_not_hold_the_workers() {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let srv = Server::start_with_config(&format!(
        "[server]\nthreads = 2\nadmin_token = \"{TOKEN}\"\n"
    ));
    let done = Arc::new(AtomicBool::new(false));
    let trickers: Vec<_> = (0..8)
        .map(|_| {
            let (addr, done) = (srv.addr.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                s.write_all(
                    b"POST /masuk HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 16000\r\n\r\ntoken=",
                )
                .unwrap();
                // Still sending when the others were answered: true.
                for _ in 0..120 {
                    if done.load(Ordering::SeqCst) {
                        return true;
                    }
                    if s.write_all(b"a").is_err() {
                        return false;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
                false
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(http_get_status(&srv.url), 200);
    let mut d = TestDevice::enrolled(&srv);
    let r = d.record(&ikd_field::synth::citizens(36, "1702", 1)[0]);
    assert_eq!(d.batch(&[r]).send_ok(&srv)["summary"]["accepted"], 1);
    done.store(true, Ordering::SeqCst);
    for t in trickers {
        assert!(
            t.join().unwrap(),
            "a trickler was cut off before the others were answered: they waited for it"
        );
    }
}

fn http_get_status(url: &str) -> u16 {
    util::server::http_get(url, ikd_field::protocol::PATH_HEALTH)
        .map(|(s, _)| s)
        .unwrap_or(0)
}

/// One address cannot take every connection: past its share, its new connections are closed at
/// once, while a client from another address (127.0.0.2 here) is still served.
#[test]
fn one_address_cannot_take_every_connection() {
    use std::io::{Read, Write};
    let srv = Server::start();
    let held: Vec<std::net::TcpStream> = (0..80)
        .map(|_| std::net::TcpStream::connect(&srv.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The last ones from this address were closed by the server without an answer.
    let mut closed = 0;
    for s in &held[70..] {
        let mut s = s.try_clone().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 16];
        if matches!(s.read(&mut buf), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 10,
        "connections past the per-address share are closed"
    );
    // Another address is served.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let mut other = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        socket
            .connect(srv.addr.parse().unwrap())
            .await
            .unwrap()
            .into_std()
            .unwrap()
    });
    other.set_nonblocking(false).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    other
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = other.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    drop(held);
}

/// Request smuggling inputs (what a connection-reusing proxy could read differently) are
/// refused and end the connection, and a GET with a chunked body is one request with one answer:
/// the body is never read as a second request.
#[test]
fn ambiguous_lengths_are_refused_and_one_request_gets_one_answer() {
    use std::io::{Read, Write};
    let srv = Server::start();
    let exchange = |raw: &str| {
        let mut s = std::net::TcpStream::connect(&srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    let post =
        |headers: &str| format!("POST /v1/enrol HTTP/1.1\r\nHost: x\r\n{headers}\r\n{{\"a\":1}}");
    for bad in [
        "Content-Length: 7\r\nContent-Length: 8\r\n",
        "Content-Length: 7, 8\r\n",
        "Content-Length: 7\r\nTransfer-Encoding: gzip\r\n",
        "Transfer-Encoding: chunked, identity\r\n",
    ] {
        let answer = exchange(&post(bad));
        assert!(answer.starts_with("HTTP/1.1 4"), "{bad:?}: {answer:?}");
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "{bad:?}: {answer:?}"
        );
    }
    // A chunked body on a GET, whose bytes look like a second request: one answer only.
    let hidden = "GET /v1/admin/stats HTTP/1.1\r\nHost: x\r\n\r\n";
    let smuggle = format!(
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{hidden}\r\n0\r\n\r\n",
        hidden.len()
    );
    let answer = exchange(&smuggle);
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "{answer:?}");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert_eq!(http_get_status(&srv.url), 200);
}

/// A TCP connection to `addr` from the local address `from` (127.0.0.x: another client address).
fn connect_from(from: &str, addr: &str) -> std::net::TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    let s = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        socket
            .connect(addr.parse().unwrap())
            .await
            .unwrap()
            .into_std()
            .unwrap()
    });
    s.set_nonblocking(false).unwrap();
    s
}

/// The head of a batch posted under `device` (a forged signature) announcing `len` body bytes.
fn forged_batch_head(device: &str, batch: &str, len: usize) -> String {
    format!(
        "POST /v1/batches HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n{}: {device}\r\n{}: {batch}\r\n{}: AAAA\r\n\r\n",
        ikd_field::protocol::H_DEVICE,
        ikd_field::protocol::H_BATCH,
        ikd_field::protocol::H_SIGNATURE
    )
}

/// Everything the server sends until it closes the connection (or 150 s pass).
fn answer_of(s: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    s.set_read_timeout(Some(Duration::from_secs(150))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Red team (December 2026): a stranger posting under an ENROLLED device's id (shown on the
/// dashboard) passes the header checks, and its large body used to be read by a worker: four
/// connections trickling one stopped a two-worker server. Now bodies are read on the
/// connection's own task: with six tricklers on two workers, health checks and the laptop's own
/// large batch are answered while every trickler is still sending; then the tricklers are
/// refused — those that finish their forged body for its signature, the others when their
/// body's deadline passes.
#[test]
fn trickled_batches_under_an_enrolled_id_do_not_hold_the_workers() {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let srv = Server::start_with_config("[server]\nthreads = 2\n");
    let mut laptop = TestDevice::enrolled(&srv);
    let len = 17 * 1024;
    let done = Arc::new(AtomicBool::new(false));
    let tricklers: Vec<_> = (0..6)
        .map(|i| {
            let (addr, done) = (srv.addr.clone(), Arc::clone(&done));
            let head = forged_batch_head(&laptop.id, &format!("trickled-{i}"), len);
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                s.write_all(head.as_bytes()).unwrap();
                let mut sent = 0;
                let mut still_sending = false;
                while sent < 240 {
                    if done.load(Ordering::SeqCst) {
                        still_sending = true;
                        break;
                    }
                    if s.write_all(b"x").is_err() {
                        break;
                    }
                    sent += 1;
                    std::thread::sleep(Duration::from_millis(500));
                }
                // Half of them send the rest of their (forged) body at once, the others stall.
                if still_sending && i % 2 == 0 {
                    let _ = s.write_all(&vec![b'x'; len - sent]);
                }
                (still_sending, answer_of(&mut s))
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..3 {
        assert_eq!(http_get_status(&srv.url), 200);
    }
    let people = ikd_field::synth::citizens(37, "1702", 300);
    let records: Vec<_> = people.iter().map(|p| laptop.record(p)).collect();
    let batch = laptop.batch(&records);
    assert!(
        batch.body.len() > 16 * 1024,
        "the laptop's batch must be a large body too ({} bytes)",
        batch.body.len()
    );
    assert_eq!(batch.send_ok(&srv)["summary"]["accepted"], 300);
    done.store(true, Ordering::SeqCst);
    for (i, t) in tricklers.into_iter().enumerate() {
        let (still_sending, answer) = t.join().unwrap();
        assert!(
            still_sending,
            "trickler {i} was cut off before the others were answered: they waited for it"
        );
        let expected = if i % 2 == 0 {
            ("HTTP/1.1 401", "bad_signature")
        } else {
            ("HTTP/1.1 400", "incomplete_body")
        };
        assert!(answer.starts_with(expected.0), "trickler {i}: {answer:?}");
        assert!(answer.contains(expected.1), "trickler {i}: {answer}");
    }
    // The laptop's allowance was not spent by the strangers: it still sends.
    let more = laptop.record(&ikd_field::synth::citizens(38, "1702", 1)[0]);
    assert_eq!(
        laptop.batch(&[more]).send_ok(&srv)["summary"]["accepted"],
        1
    );
}

/// The bytes held for bodies being read are bounded: connections announcing the largest body a
/// route takes reserve it before it is read, so past an address's share (two such bodies) and
/// past the whole budget (two per worker) the next body is not read at all — it waits on its
/// own task and is refused `429` with `Retry-After` at its deadline, although all its bytes were
/// sent — while another address with room is served, and health checks go on.
#[test]
fn the_body_budget_bounds_what_is_held() {
    use std::io::Write;
    let srv = Server::start_with_config("[server]\nthreads = 2\n");
    let laptop = TestDevice::enrolled(&srv);
    let largest = 8 * 1024 * 1024;
    let hold = |from: &str, name: &str| {
        let mut s = connect_from(from, &srv.addr);
        s.write_all(forged_batch_head(&laptop.id, name, largest).as_bytes())
            .unwrap();
        s.write_all(b"xxxx").unwrap();
        s
    };
    // A whole forged body of 17 KiB, sent at once, from `from`: its answer, on a thread.
    let small = |from: &'static str, name: &'static str| {
        let (addr, id) = (srv.addr.clone(), laptop.id.clone());
        std::thread::spawn(move || {
            let mut s = connect_from(from, &addr);
            let len = 17 * 1024;
            s.write_all(forged_batch_head(&id, name, len).as_bytes())
                .unwrap();
            s.write_all(&vec![b'x'; len]).unwrap();
            answer_of(&mut s)
        })
    };
    // 127.0.0.1 takes its whole share.
    let held_here = [hold("127.0.0.1", "big-1"), hold("127.0.0.1", "big-2")];
    std::thread::sleep(Duration::from_secs(2));
    let over_share = small("127.0.0.1", "small-1");
    // Another address has room: answered (its forged signature refused) while the first waits.
    let other = small("127.0.0.2", "small-2").join().unwrap();
    assert!(other.starts_with("HTTP/1.1 401"), "{other:?}");
    assert!(other.contains("bad_signature"), "{other}");
    assert!(
        !over_share.is_finished(),
        "past its share, an address's body is not read"
    );
    // Two more addresses take the rest of the whole budget (4 × 8 MiB on two workers).
    let held_there = [hold("127.0.0.3", "big-3"), hold("127.0.0.4", "big-4")];
    std::thread::sleep(Duration::from_secs(2));
    let over_all = small("127.0.0.5", "small-3");
    assert_eq!(http_get_status(&srv.url), 200);
    for (what, t) in [("share", over_share), ("whole budget", over_all)] {
        let answer = t.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 429"), "{what}: {answer:?}");
        assert!(answer.contains("rate_limited"), "{what}: {answer}");
        assert!(answer.contains("Retry-After"), "{what}: {answer}");
    }
    assert_eq!(http_get_status(&srv.url), 200);
    drop((held_here, held_there));
}
