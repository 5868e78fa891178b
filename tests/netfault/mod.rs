//! Sync test support: a real `ikd-field serve` process on 127.0.0.1, field kits enrolled with it,
//! and a fault-injecting HTTP proxy (plain std::net threads) to put between them.
//!
//! The proxy reads each request in full, takes the next [`Fault`] from its plan (pass when the
//! plan is empty) and forwards it on a fresh upstream connection, so every fault hits exactly
//! one request. An optional [`Link`] throttles and delays every message in both directions.
#![allow(dead_code)]
use crate::util::{self, Kit};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A district server process (`ikd-field serve`, [`util::server::Server`] with the default
/// settings) on a database of the caller's; killed on drop.
pub struct Server {
    pub db: PathBuf,
    pub url: String,
    pub addr: SocketAddr,
    inner: util::server::Server,
}

impl Server {
    /// kill -9 of the server process.
    pub fn kill9(&mut self) {
        self.inner.kill9();
    }

    pub fn pid(&self) -> u32 {
        self.inner.pid().expect("server running")
    }

    pub fn start(db: &Path) -> Server {
        Server::start_with(db, "")
    }

    /// With `config_toml` as its config.toml (e.g. `[server]\nmax_batch_records = 300\n`).
    pub fn start_with(db: &Path, config_toml: &str) -> Server {
        Server::wrap(db, util::server::Server::start_on_db(db, config_toml))
    }

    /// `serve` of another (older) `ikd-field` binary, with the default settings.
    pub fn start_binary(bin: &Path, db: &Path) -> Server {
        Server::wrap(db, util::server::Server::start_binary_on_db(bin, db, ""))
    }

    fn wrap(db: &Path, inner: util::server::Server) -> Server {
        Server {
            db: db.to_path_buf(),
            url: inner.url.clone(),
            addr: inner.addr.parse().unwrap(),
            inner,
        }
    }

    /// `ikd-field server ARGS… --db DB`.
    pub fn admin(&self, args: &[&str]) -> std::process::Output {
        self.inner.admin(args)
    }

    pub fn admin_ok(&self, args: &[&str]) -> String {
        self.inner.admin_ok(args)
    }

    pub fn token(&self) -> String {
        self.inner.token("TIM UJI")
    }

    /// Record ids on the server, in export order.
    pub fn ids(&self) -> Vec<String> {
        self.inner
            .records()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn stats(&self) -> serde_json::Value {
        self.inner.stats()
    }
}

/// A field kit enrolled with `server` (directly, not through a proxy), with fast retries.
pub fn enrolled_kit(server: &Server, sync_config: &str) -> Kit {
    enrolled_kit_at(&server.url, &server.token(), sync_config)
}

/// A field kit set up and enrolled at `url` with `token`; `sync_config` is its `[sync]` section.
pub fn enrolled_kit_at(url: &str, token: &str, sync_config: &str) -> Kit {
    let k = Kit::empty();
    k.ok(&[
        "init",
        "--officer",
        "PETUGAS UJI",
        "--team",
        "TIM UJI",
        "--server",
        url,
        "--token",
        token,
    ]);
    std::fs::write(
        k.dir.join("config.toml"),
        format!("[sync]\n{sync_config}\n"),
    )
    .unwrap();
    k
}

/// Retries fast so fault tests stay short; every value is still exercised.
pub const FAST: &str = "timeout_secs = 5\nconnect_timeout_secs = 5\nanswer_timeout_secs = 5\nmax_attempts = 3\nretry_base_ms = 20\nretry_max_secs = 1";

/// Stores `n` synthetic activations in one transaction through the library (fast, durable);
/// one answer per citizen (a synthetic NIK that repeats an earlier one is refused as duplicate).
pub fn record_many_results(
    k: &Kit,
    seed: u64,
    n: usize,
) -> Vec<Result<ikd_field::domain::Record, ikd_field::AppError>> {
    let mut dd = ikd_field::field::datadir::DataDir::open(&k.dir).unwrap();
    let today = ikd_field::timefmt::today(time::UtcOffset::UTC);
    let valid: Vec<_> = ikd_field::synth::citizens(seed, "1702", n)
        .iter()
        .map(|p| ikd_field::domain::validate::activation(p, today).unwrap())
        .collect();
    let identity = dd.identity.clone();
    dd.store.record_activations(&valid, &identity).unwrap()
}

/// Like [`record_many_results`], every one stored; their ids.
pub fn record_many(k: &Kit, seed: u64, n: usize) -> Vec<String> {
    record_many_results(k, seed, n)
        .into_iter()
        .map(|r| r.unwrap().id)
        .collect()
}

/// Local record ids by status (`list --status S --json`).
pub fn local(k: &Kit, status: &str) -> Vec<String> {
    let v = k.json(&["list", "--status", status]);
    v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// What the proxy does with one request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Forward the request and the answer.
    Pass,
    /// Close the connection before the request reaches the server.
    DropRequest,
    /// Forward the request, let the server answer (and commit), then close without a byte.
    DropAnswer,
    /// Forward, then pass only the first half of the answer and close (mid-response).
    CutAnswer,
    /// Wait this long before forwarding.
    Delay(Duration),
    /// Answer 200 with an HTML login page, as a village hotspot does; never forward.
    Portal,
    /// Forward, but replace the server's signature (a proxy that rewrites answers).
    ForgeSignature,
    /// Forward, but flip one bit in the middle of the answer's body (a damaged answer).
    FlipAnswerByte,
}

/// A slow link: every message waits `latency`, then flows at `bytes_per_sec`.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    pub bytes_per_sec: u64,
    pub latency: Duration,
}

pub struct Proxy {
    pub addr: SocketAddr,
    pub url: String,
    plan: Arc<Mutex<VecDeque<Fault>>>,
    upstream: Arc<Mutex<SocketAddr>>,
    link: Arc<Mutex<Option<Link>>>,
    /// Requests seen, and bytes relayed (requests + answers as they crossed the proxy).
    pub requests: Arc<AtomicUsize>,
    pub bytes: Arc<AtomicUsize>,
    /// Answers relayed with `Content-Encoding: gzip`.
    pub gzip_answers: Arc<AtomicUsize>,
    /// Each request's method and path, in the order they arrived.
    pub seen: Arc<Mutex<Vec<String>>>,
    /// Play a server from before the batch answer carried the activated list and before
    /// `GET /v1/batches/{id}`: strip `X-Ikd-Activated-Since` from requests, answer that path
    /// `404 not_found` as such a server does.
    pub old_server: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let p = Proxy {
            addr,
            url: format!("http://{addr}"),
            plan: Arc::default(),
            upstream: Arc::new(Mutex::new(upstream)),
            link: Arc::default(),
            requests: Arc::default(),
            bytes: Arc::default(),
            gzip_answers: Arc::default(),
            seen: Arc::default(),
            old_server: Arc::default(),
            stop: Arc::default(),
        };
        let (seen, old_server) = (p.seen.clone(), p.old_server.clone());
        let (plan, up, link, reqs, bytes, gzip_answers, stop) = (
            p.plan.clone(),
            p.upstream.clone(),
            p.link.clone(),
            p.requests.clone(),
            p.bytes.clone(),
            p.gzip_answers.clone(),
            p.stop.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let ctx = Conn {
                    plan: plan.clone(),
                    upstream: up.clone(),
                    link: link.clone(),
                    requests: reqs.clone(),
                    bytes: bytes.clone(),
                    gzip_answers: gzip_answers.clone(),
                    seen: seen.clone(),
                    old_server: old_server.clone(),
                };
                std::thread::spawn(move || ctx.serve(conn));
            }
        });
        p
    }

    pub fn plan(&self, faults: impl IntoIterator<Item = Fault>) {
        self.plan.lock().unwrap().extend(faults);
    }

    pub fn clear(&self) {
        self.plan.lock().unwrap().clear();
    }

    pub fn left(&self) -> usize {
        self.plan.lock().unwrap().len()
    }

    pub fn set_link(&self, link: Option<Link>) {
        *self.link.lock().unwrap() = link;
    }

    pub fn set_upstream(&self, addr: SocketAddr) {
        *self.upstream.lock().unwrap() = addr;
    }

    /// The requests seen so far ("POST /v1/batches", …).
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

struct Conn {
    plan: Arc<Mutex<VecDeque<Fault>>>,
    upstream: Arc<Mutex<SocketAddr>>,
    link: Arc<Mutex<Option<Link>>>,
    requests: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
    gzip_answers: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
    old_server: Arc<AtomicBool>,
}

const PORTAL: &str = "<!DOCTYPE html><html><head><title>WiFi Desa</title></head><body>\
<h1>Selamat datang di WiFi Desa</h1><form>Masukkan kode voucher: <input name=v></form></body></html>";

impl Conn {
    fn serve(self, mut client: TcpStream) {
        let mut pending = Vec::new();
        loop {
            let Some(mut req) = read_message(&mut client, &mut pending, false) else {
                return;
            };
            self.requests.fetch_add(1, Ordering::SeqCst);
            let line = String::from_utf8_lossy(&req[..find(&req, b"\r\n").unwrap_or(0)])
                .rsplit_once(' ')
                .map(|(l, _)| l.to_string())
                .unwrap_or_default();
            self.seen.lock().unwrap().push(line.clone());
            if self.old_server.load(Ordering::SeqCst) {
                if line.starts_with("GET /v1/batches/") {
                    let body = r#"{"error":{"code":"not_found","message":"no such path"}}"#;
                    let answer = format!(
                        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = self.send(&mut client, answer.as_bytes());
                    return;
                }
                req = strip_header(&req, "x-ikd-activated-since");
            }
            let fault = self.plan.lock().unwrap().pop_front().unwrap_or(Fault::Pass);
            match &fault {
                Fault::DropRequest => {
                    let _ = client.shutdown(Shutdown::Both);
                    return;
                }
                Fault::Portal => {
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{PORTAL}",
                        PORTAL.len()
                    );
                    if self.send(&mut client, answer.as_bytes()).is_err() {
                        return;
                    }
                    continue;
                }
                Fault::Delay(d) => std::thread::sleep(*d),
                _ => {}
            }
            let upstream = *self.upstream.lock().unwrap();
            let Ok(mut server) = TcpStream::connect(upstream) else {
                let _ = client.shutdown(Shutdown::Both);
                return;
            };
            if self.send(&mut server, &req).is_err() {
                return;
            }
            let Some(mut answer) = read_message(&mut server, &mut Vec::new(), true) else {
                let _ = client.shutdown(Shutdown::Both);
                return;
            };
            match fault {
                Fault::DropAnswer => {
                    let _ = client.shutdown(Shutdown::Both);
                    return;
                }
                Fault::CutAnswer => {
                    let _ = self.send(&mut client, &answer[..answer.len() / 2]);
                    let _ = client.shutdown(Shutdown::Both);
                    return;
                }
                Fault::ForgeSignature => answer = forge(&answer),
                Fault::FlipAnswerByte => {
                    let body = find(&answer, b"\r\n\r\n").map_or(0, |i| i + 4);
                    let mid = body + (answer.len() - body) / 2;
                    if mid < answer.len() {
                        answer[mid] ^= 0x01;
                    }
                }
                _ => {}
            }
            if header(&answer, "content-encoding").is_some_and(|v| v == "gzip") {
                self.gzip_answers.fetch_add(1, Ordering::SeqCst);
            }
            let close =
                header(&answer, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
            if self.send(&mut client, &answer).is_err() || close {
                return;
            }
        }
    }

    /// Writes one message, through the slow link when there is one.
    fn send(&self, to: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
        self.bytes.fetch_add(data.len(), Ordering::SeqCst);
        let link = *self.link.lock().unwrap();
        match link {
            None => to.write_all(data),
            Some(l) => {
                std::thread::sleep(l.latency);
                // 20 slices a second: sleep for each slice's share of the bandwidth.
                let slice = (l.bytes_per_sec / 20).max(1) as usize;
                for chunk in data.chunks(slice) {
                    let t = std::time::Instant::now();
                    to.write_all(chunk)?;
                    let due = Duration::from_secs_f64(chunk.len() as f64 / l.bytes_per_sec as f64);
                    if let Some(rest) = due.checked_sub(t.elapsed()) {
                        std::thread::sleep(rest);
                    }
                }
                Ok(())
            }
        }
    }
}

/// Replaces the value of `X-Ikd-Signature` with a well-formed but wrong signature (the body,
/// which may be gzip, is kept byte for byte).
fn forge(answer: &[u8]) -> Vec<u8> {
    let end = find(answer, b"\r\n\r\n").unwrap();
    let (head, body) = (String::from_utf8_lossy(&answer[..end]), &answer[end + 4..]);
    let fake = "A".repeat(86) + "==";
    let mut out = Vec::new();
    for line in head.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("x-ikd-signature:") {
            out.extend_from_slice(format!("X-Ikd-Signature: {fake}\r\n").as_bytes());
        } else {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// `msg` without the header lines named `name`.
fn strip_header(msg: &[u8], name: &str) -> Vec<u8> {
    let end = find(msg, b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&msg[..end]);
    let prefix = format!("{name}:");
    let mut out: Vec<u8> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with(&prefix))
        .collect::<Vec<_>>()
        .join("\r\n")
        .into_bytes();
    out.extend_from_slice(&msg[end..]);
    out
}

fn header(msg: &[u8], name: &str) -> Option<String> {
    let end = find(msg, b"\r\n\r\n")?;
    String::from_utf8_lossy(&msg[..end])
        .split("\r\n")
        .skip(1)
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads one whole HTTP/1.1 message (head and body by Content-Length or chunked; an answer with
/// neither runs to end of stream). `buf` keeps bytes read past the message. None on EOF/error.
pub fn read_message(s: &mut TcpStream, buf: &mut Vec<u8>, answer: bool) -> Option<Vec<u8>> {
    let mut tmp = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut tmp).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = buf[..head_end].to_vec();
    let chunked = header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let len = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok());
    let total = if chunked {
        loop {
            if let Some(n) = chunked_len(&buf[head_end..]) {
                break head_end + n;
            }
            let n = s.read(&mut tmp).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&tmp[..n]);
        }
    } else if let Some(len) = len {
        while buf.len() < head_end + len {
            let n = s.read(&mut tmp).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&tmp[..n]);
        }
        head_end + len
    } else if answer {
        loop {
            let n = s.read(&mut tmp).ok()?;
            if n == 0 {
                break buf.len();
            }
            buf.extend_from_slice(&tmp[..n]);
        }
    } else {
        head_end
    };
    let msg = buf[..total].to_vec();
    buf.drain(..total);
    Some(msg)
}

/// Length of a complete chunked body at the start of `b`, if it is all there.
fn chunked_len(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let line_end = find(&b[at..], b"\r\n")? + at;
        let size_text = String::from_utf8_lossy(&b[at..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // Trailers end with an empty line.
            let end = find(&b[at..], b"\r\n\r\n").map(|i| at + i + 4);
            return if b[at..].starts_with(b"\r\n") {
                Some(at + 2)
            } else {
                end
            };
        }
        if b.len() < at + size + 2 {
            return None;
        }
        at += size + 2;
    }
}

/// Every record on the server exactly once, the laptop all synced, its database healthy.
pub fn assert_exactly_once(server: &Server, k: &Kit, ids: &[String]) {
    let on_server = server.ids();
    let unique: std::collections::BTreeSet<_> = on_server.iter().cloned().collect();
    assert_eq!(
        on_server.len(),
        unique.len(),
        "a record is on the server twice"
    );
    assert_eq!(
        unique,
        ids.iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
    );
    assert_eq!(local(k, "pending"), Vec::<String>::new());
    assert_eq!(local(k, "synced").len(), ids.len());
    let dd = ikd_field::field::datadir::DataDir::open(&k.dir).unwrap();
    assert_eq!(dd.store.integrity_check().unwrap(), "ok");
    assert_eq!(
        k.count("SELECT COUNT(*) FROM outbox_batches WHERE state = 'open'"),
        0
    );
}
