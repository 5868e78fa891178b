//! A real district server for the end-to-end tests: `Server` starts `ikd-field serve` on
//! 127.0.0.1 with a temporary database, stops it (SIGTERM or kill -9), restarts it on the same
//! address, and runs the admin commands against its database. `TestDevice` builds signed gzip
//! batches by hand with the library (for testing the server without the field client), and
//! `post_batch` / `http_get` / `http_post_json` speak HTTP to it directly.
use super::BIN;
use ikd_field::crypto::{self, KeyPair};
use ikd_field::domain::validate::{self, Input};
use ikd_field::domain::{Kind, Record};
use ikd_field::protocol::{self, BatchBody, FileBatch};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

/// Limits small enough for quick refusal tests, large enough for 500-record batches.
pub const TEST_CONFIG: &str = "[server]
threads = 4
max_body_bytes = 2097152
max_decompressed_bytes = 8388608
max_batch_records = 1000
";

/// Starts `serve` from `cmd` (the binary with its arguments, `--listen …:0`) with stderr to the
/// file `log`; reads the line it prints when it listens and returns the child and the address
/// it serves (`http://…` or `https://…`), or the line it printed instead. Keeps draining its
/// stdout so it never blocks on a full pipe. The one way every test starts a server.
pub fn launch(mut cmd: Command, log: &Path) -> Result<(Child, String), String> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .expect("start ikd-field serve");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let Some(at) = first.find("http://").or_else(|| first.find("https://")) else {
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(log).unwrap_or_default();
        return Err(format!("serve did not start: {first:?}\n{log}"));
    };
    let url = first[at..].trim().to_string();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    Ok((child, url))
}

/// A running `ikd-field serve` with its own temporary database (a SQLite file, or in a
/// test's PostgreSQL variant a PostgreSQL database standing for that file: `util::store`).
pub struct Server {
    pub tmp: tempfile::TempDir,
    /// The district database (on PostgreSQL, the path it stands for).
    pub db: PathBuf,
    /// What `--db` gets: the file, or the PostgreSQL URL.
    pub db_arg: String,
    /// The config.toml it runs with.
    pub config: PathBuf,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    pub server_id: String,
    /// Hex, as `/v1/health` and `/v1/enrol` give it.
    pub server_public_key: String,
    child: Option<Child>,
    /// The binary run: this tree's, or an older one for compatibility tests.
    bin: PathBuf,
    log: PathBuf,
}

impl Server {
    /// Starts a server with [`TEST_CONFIG`] on a free port.
    pub fn start() -> Server {
        Server::start_with_config(TEST_CONFIG)
    }

    /// Starts a server with this config.toml text on a free port.
    pub fn start_with_config(config_toml: &str) -> Server {
        Server::launch(None, config_toml, PathBuf::from(BIN))
    }

    /// Starts a server with this config.toml text on a free port, on the database `db` (which
    /// outlives the server, for a later one on the same data).
    pub fn start_on_db(db: &Path, config_toml: &str) -> Server {
        Server::launch(Some(db.to_path_buf()), config_toml, PathBuf::from(BIN))
    }

    /// [`Server::start_on_db`] with another `ikd-field` binary (an older one) for `serve` and
    /// the admin commands.
    pub fn start_binary_on_db(bin: &Path, db: &Path, config_toml: &str) -> Server {
        Server::launch(Some(db.to_path_buf()), config_toml, bin.to_path_buf())
    }

    fn launch(db: Option<PathBuf>, config_toml: &str, bin: PathBuf) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("config.toml");
        let db = db.unwrap_or_else(|| tmp.path().join("district.db"));
        std::fs::write(&config, super::store::server_config(config_toml, &db)).unwrap();
        let mut s = Server {
            db_arg: super::store::db_arg(&db),
            db,
            log: tmp.path().join("server.log"),
            config,
            tmp,
            addr: "127.0.0.1:0".into(),
            url: String::new(),
            server_id: String::new(),
            server_public_key: String::new(),
            child: None,
            bin,
        };
        s.spawn();
        s
    }

    fn base_cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--data-dir")
            .arg(self.tmp.path().join("data"))
            .arg("--config")
            .arg(&self.config)
            .env_remove("IKD_FIELD_HOME")
            .env_remove("IKD_FIELD_CONFIG")
            .env_remove("IKD_FIELD_LANG")
            .stdin(Stdio::null());
        c
    }

    fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "server already running");
        let mut cmd = self.base_cmd();
        cmd.args(["serve", "--listen", &self.addr, "--db", &self.db_arg]);
        let (child, url) = launch(cmd, &self.log)?;
        self.url = url;
        self.addr = self.url.trim_start_matches("http://").to_string();
        self.child = Some(child);
        let (status, health) = http_get(&self.url, protocol::PATH_HEALTH).expect("health");
        assert_eq!(status, 200);
        self.server_id = health["server_id"].as_str().unwrap().to_string();
        self.server_public_key = health["server_public_key"].as_str().unwrap().to_string();
        Ok(())
    }

    /// Starts it again on the same address and database (after [`Server::kill9`] or
    /// [`Server::terminate`]; a running server is killed first).
    pub fn restart(&mut self) {
        self.stop_if_running();
        // The port may take a moment to be free again.
        let mut last = String::new();
        for _ in 0..100 {
            match self.try_spawn() {
                Ok(()) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("restart failed: {last}");
    }

    fn stop_if_running(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// kill -9: no chance to finish anything.
    pub fn kill9(&mut self) {
        let mut c = self.child.take().expect("server running");
        c.kill().unwrap();
        c.wait().unwrap();
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("server running");
        let ok = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        c.wait().unwrap()
    }

    /// Waits for a server that was told to stop (e.g. by a signal the test sent) to exit.
    pub fn terminate_wait(&mut self) -> ExitStatus {
        self.child.take().expect("server started").wait().unwrap()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Everything the server wrote to stderr (one line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `ikd-field server ARGS… --db DB` with the server's config.
    pub fn admin(&self, args: &[&str]) -> Output {
        self.base_cmd()
            .arg("server")
            .args(args)
            .arg("--db")
            .arg(&self.db_arg)
            .output()
            .unwrap()
    }

    /// Runs an admin command and asserts exit 0; returns stdout.
    pub fn admin_ok(&self, args: &[&str]) -> String {
        let out = self.admin(args);
        assert!(
            out.status.success(),
            "server {args:?} failed ({:?}):\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// An admin command with `--json`, parsed.
    pub fn admin_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.admin_ok(&a)).expect("JSON")
    }

    /// A fresh one-time enrolment token.
    pub fn token(&self, team: &str) -> String {
        self.admin_json(&["token", "--team", team])["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `server stats --json`'s `stats` object.
    pub fn stats(&self) -> serde_json::Value {
        self.admin_json(&["stats"])["stats"].clone()
    }

    /// Every record on the server (`server export --format json`), in arrival order.
    pub fn records(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.admin_ok(&["export", "--format", "json"])).expect("JSON")
    }

    /// A read-only connection to the server's SQLite database (it may be running).
    pub fn db(&self) -> rusqlite::Connection {
        assert!(
            !super::store::is_postgres(),
            "a SQLite check in a PostgreSQL test"
        );
        open_db(&self.db)
    }

    /// One integer from a query on the server's database, SQLite or PostgreSQL.
    pub fn count(&self, sql: &str) -> i64 {
        super::store::count(&self.db, sql)
    }

    /// The server's public key, parsed.
    pub fn public_key(&self) -> [u8; 32] {
        crypto::parse_public_hex(&self.server_public_key).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_if_running();
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// `X-Ikd-Signature`, if any.
    pub signature: Option<String>,
    /// `Content-Encoding`, if any (the body is kept as received).
    pub encoding: Option<String>,
}

impl Reply {
    /// The body as JSON (gunzipped first when it came as gzip).
    pub fn json(&self) -> serde_json::Value {
        let body = if self.encoding.as_deref() == Some("gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_end(&mut out)
                .expect("gzip answer");
            out
        } else {
            self.body.clone()
        };
        serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The error code of a refusal.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// True when the server's signature over the body verifies with `server_key`.
    pub fn signed_by(&self, server_key: &[u8; 32]) -> bool {
        let Some(sig) = self.signature.as_deref().and_then(|s| B64.decode(s).ok()) else {
            return false;
        };
        crypto::verify(server_key, &protocol::signed_digest(&self.body), &sig)
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Reply, ureq::Error> {
    let r = r?;
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (signature, encoding) = (header(protocol::H_SIGNATURE), header("Content-Encoding"));
    // ureq is built without its gzip feature: the body is read as it came.
    let body = r.into_body().read_to_vec()?;
    Ok(Reply {
        status,
        body,
        signature,
        encoding,
    })
}

/// `GET url+path`, JSON answer.
pub fn http_get(url: &str, path: &str) -> Result<(u16, serde_json::Value), ureq::Error> {
    let r = reply(agent().get(format!("{url}{path}")).call())?;
    let v = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    Ok((r.status, v))
}

/// `POST url+path` with raw bytes as JSON.
pub fn http_post_json(url: &str, path: &str, body: &[u8]) -> Result<Reply, ureq::Error> {
    reply(
        agent()
            .post(format!("{url}{path}"))
            .header("Content-Type", "application/json")
            .send(body),
    )
}

/// `POST /v1/batches` with exactly these headers and body.
pub fn post_batch(
    url: &str,
    device: &str,
    batch_id: &str,
    signature: &str,
    body: &[u8],
) -> Result<Reply, ureq::Error> {
    post_batch_accepting(url, device, batch_id, signature, body, "")
}

/// [`post_batch`] with `Accept-Encoding: accept` (none when empty).
pub fn post_batch_accepting(
    url: &str,
    device: &str,
    batch_id: &str,
    signature: &str,
    body: &[u8],
    accept: &str,
) -> Result<Reply, ureq::Error> {
    let mut req = agent()
        .post(format!("{url}{}", protocol::PATH_BATCHES))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .header(protocol::H_DEVICE, device)
        .header(protocol::H_BATCH, batch_id)
        .header(protocol::H_SIGNATURE, signature);
    if !accept.is_empty() {
        req = req.header("Accept-Encoding", accept);
    }
    reply(req.send(body))
}

/// Raw bytes to the server on a fresh TCP connection; returns what it answers (status line
/// first) once it closes the connection or after `wait`.
pub fn raw_http(addr: &str, request: &[u8], wait: Duration) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                // The whole answer is in once the JSON object closes.
                if out.ends_with(b"}") {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A field device made by hand: its key, and records and batches built with the library.
pub struct TestDevice {
    pub key: KeyPair,
    pub id: String,
    pub officer: String,
    pub team: String,
    pub seq: i64,
    /// The district's sealing key, learnt from the enrolment answer; batches seal each record's
    /// NIK, phone and e-mail to it, as the field kit does.
    pub seal_key: std::cell::OnceCell<[u8; 32]>,
}

/// A batch cut once: send it as often as needed, byte for byte.
#[derive(Debug, Clone)]
pub struct SignedBatch {
    pub batch_id: String,
    pub device_id: String,
    /// The gzip bytes as sent.
    pub body: Vec<u8>,
    /// base64 signature of SHA-256(body).
    pub signature: String,
    pub records: Vec<Record>,
}

impl SignedBatch {
    pub fn send(&self, url: &str) -> Result<Reply, ureq::Error> {
        self.send_accepting(url, "")
    }

    /// Sends with `Accept-Encoding: accept` (none when empty).
    pub fn send_accepting(&self, url: &str, accept: &str) -> Result<Reply, ureq::Error> {
        post_batch_accepting(
            url,
            &self.device_id,
            &self.batch_id,
            &self.signature,
            &self.body,
            accept,
        )
    }

    /// Sends, asserts 200 and a valid server signature; returns the answer JSON.
    pub fn send_ok(&self, srv: &Server) -> serde_json::Value {
        let r = self.send(&srv.url).expect("server reachable");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert!(
            r.signed_by(&srv.public_key()),
            "answer not signed by the server"
        );
        r.json()
    }

    /// The line `sync --to-file` writes for it.
    pub fn file_line(&self) -> String {
        serde_json::to_string(&FileBatch {
            batch_id: self.batch_id.clone(),
            device_id: self.device_id.clone(),
            signature: self.signature.clone(),
            body: B64.encode(&self.body),
        })
        .unwrap()
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

impl Default for TestDevice {
    fn default() -> Self {
        TestDevice::new()
    }
}

impl TestDevice {
    pub fn new() -> TestDevice {
        let key = KeyPair::generate().unwrap();
        TestDevice {
            id: key.id(),
            key,
            officer: "PETUGAS UJI".into(),
            team: "TIM UJI".into(),
            seq: 0,
            seal_key: std::cell::OnceCell::new(),
        }
    }

    /// `POST /v1/enrol` with this token (an answer of 200 gives the district's sealing key).
    pub fn enrol(&self, url: &str, token: &str) -> Reply {
        // Signed for the server's key, as the kit does (proof of possession).
        let (_, health) = http_get(url, protocol::PATH_HEALTH).expect("health");
        let server_public = health["server_public_key"].as_str().unwrap_or_default();
        let req = protocol::EnrolRequest::signed(
            &self.key,
            token,
            server_public,
            &self.officer,
            &self.team,
        );
        let body = serde_json::to_value(&req).unwrap();
        let r = http_post_json(url, protocol::PATH_ENROL, body.to_string().as_bytes()).unwrap();
        if r.status == 200
            && let Some(k) = r.json()["seal_public_key"]
                .as_str()
                .and_then(ikd_field::seal::parse_public_hex)
        {
            let _ = self.seal_key.set(k);
        }
        r
    }

    /// The records as a batch carries them: sealed to the district's key (to a throwaway key
    /// when this device never enrolled: the server refuses such a batch before opening it).
    pub fn wire(&self, records: &[Record]) -> Vec<protocol::WireRecord> {
        let key = *self.seal_key.get_or_init(|| {
            ikd_field::seal::OpenKey::generate()
                .expect("random key")
                .public()
        });
        records
            .iter()
            .map(|r| {
                protocol::WireRecord::seal(r, &key)
                    .expect("synthetic records fit the sealed format")
            })
            .collect()
    }

    /// A new device, enrolled with a fresh token (asserts success).
    pub fn enrolled(srv: &Server) -> TestDevice {
        let d = TestDevice::new();
        let r = d.enrol(&srv.url, &srv.token("TIM UJI"));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["device_id"], d.id.as_str());
        d
    }

    /// An activation of this synthetic citizen, validated and normalised as `record` does.
    pub fn record(&mut self, p: &Input) -> Record {
        let today = time::OffsetDateTime::now_utc().date();
        let v = validate::activation(p, today).unwrap_or_else(|e| panic!("{p:?}: {e:?}"));
        self.seq += 1;
        Record::activation(&v, self.seq, &self.id, &self.officer, &self.team)
    }

    /// A void of `target` (one of this device's records).
    pub fn void(&mut self, target: &Record, reason: &str) -> Record {
        self.seq += 1;
        Record {
            id: uuid::Uuid::now_v7().to_string(),
            seq: self.seq,
            device_id: self.id.clone(),
            kind: Kind::Void,
            voids: Some(target.id.clone()),
            reason: Some(reason.into()),
            recorded_at: ikd_field::timefmt::now_utc(),
            warnings: vec![],
            ..target.clone()
        }
    }

    /// `POST /v1/activated` from `since`, signed by this device.
    pub fn activated(&self, url: &str, since: i64) -> Reply {
        let body = serde_json::to_vec(&protocol::ActivatedRequest {
            protocol: protocol::VERSION,
            device_id: self.id.clone(),
            since,
            at: ikd_field::timefmt::now_utc(),
        })
        .unwrap();
        let sig = B64.encode(self.key.sign(&protocol::signed_digest(&body)));
        reply(
            agent()
                .post(format!("{url}{}", protocol::PATH_ACTIVATED))
                .header("Content-Type", "application/json")
                .header(protocol::H_DEVICE, &self.id)
                .header(protocol::H_SIGNATURE, &sig)
                .send(&body[..]),
        )
        .unwrap()
    }

    /// Cuts a batch of these records: JSON, gzip, signed.
    pub fn batch(&self, records: &[Record]) -> SignedBatch {
        self.batch_with_id(&uuid::Uuid::now_v7().to_string(), records)
    }

    /// A batch of these records under the batch id given (e.g. another device's).
    pub fn batch_with_id(&self, batch_id: &str, records: &[Record]) -> SignedBatch {
        let batch_id = batch_id.to_string();
        let body = BatchBody {
            protocol: protocol::VERSION,
            batch_id: batch_id.clone(),
            device_id: self.id.clone(),
            created_at: ikd_field::timefmt::now_utc(),
            records: self.wire(records),
        };
        self.sign_raw(
            &batch_id,
            &gzip(&serde_json::to_vec(&body).unwrap()),
            records,
        )
    }

    /// Signs arbitrary body bytes as a batch (for malformed-input tests).
    pub fn sign_raw(&self, batch_id: &str, body: &[u8], records: &[Record]) -> SignedBatch {
        SignedBatch {
            batch_id: batch_id.to_string(),
            device_id: self.id.clone(),
            signature: B64.encode(self.key.sign(&protocol::signed_digest(body))),
            body: body.to_vec(),
            records: records.to_vec(),
        }
    }
}

/// Opens the server's database read-only for checks the CLI does not show.
pub fn open_db(path: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    c.busy_timeout(Duration::from_secs(30)).unwrap();
    c
}
