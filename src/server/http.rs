//! The transport under `super::routes`, on tiny_http: a fixed pool of worker threads, each with
//! its own store handle (a SQLite connection, or the shared PostgreSQL pool). Bodies are refused
//! by Content-Length before they are read and capped while reading. One log line per request.
//! When the stop flag is set (Ctrl+C, SIGTERM), workers finish the request in hand and return.
use super::Refusal;
use super::admin;
use super::routes::{self, Answer, Body, Head, Method, Reply, printable};
use super::store::Store;
use crate::protocol::{self, ErrorCode};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tiny_http::{Header, Request, Response, Server};

pub use super::routes::{Rates, Shared};

/// A body must arrive within this long plus a second per [`MIN_BODY_RATE`] bytes: a client
/// trickling a few bytes a minute cannot hold one of the few workers for long, while a batch on
/// a poor link (32 KB/s) has ample time.
const BODY_GRACE: Duration = Duration::from_secs(30);
const MIN_BODY_RATE: u64 = 1024;
/// How often an idle worker looks at the stop flag.
const POLL: Duration = Duration::from_millis(200);

/// Runs `stores.len()` workers until the stop flag is set; returns when all have finished.
pub fn run(server: Arc<Server>, stores: Vec<Store>, shared: Arc<Shared>) {
    let workers: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(i, mut store)| {
            let server = Arc::clone(&server);
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || worker(&server, &mut store, &shared))
        })
        .collect();
    for w in workers.into_iter().flatten() {
        let _ = w.join();
    }
}

fn worker(server: &Server, store: &mut Store, shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        match server.recv_timeout(POLL) {
            Ok(Some(req)) => handle(store, shared, req),
            Ok(None) => {}
            Err(e) => {
                log::error!("accept error: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
}

fn handle(store: &mut Store, shared: &Shared, mut req: Request) {
    let started = Instant::now();
    let url = req.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let head = Head {
        method: Method::parse(req.method().as_str()),
        path: path.to_string(),
        query: query.to_string(),
        headers: req
            .headers()
            .iter()
            .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
            .collect(),
        remote: req.remote_addr().copied(),
    };
    let remote = head
        .remote
        .map(|a| a.to_string())
        .unwrap_or_else(|| "-".into());
    match routes::answer(store, shared, &head, &mut TinyBody(&mut req)) {
        Answer::Export(format) => stream_export(store, req, format, &remote, started),
        Answer::Reply(reply) => finish(req, reply, &remote, &head.method, &head.path, started),
    }
}

/// Sends `reply` and writes the request's log line.
fn finish(req: Request, reply: Reply, remote: &str, method: &Method, path: &str, started: Instant) {
    let len = reply.body.len();
    // Always a Content-Length (the answer is in memory), never chunked.
    let mut resp = Response::from_data(reply.body)
        .with_status_code(reply.status)
        .with_chunked_threshold(usize::MAX);
    if let Ok(h) = Header::from_bytes("Content-Type", reply.content_type) {
        resp.add_header(h);
    }
    for (name, value) in &reply.headers {
        if let Ok(h) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            resp.add_header(h);
        }
    }
    if let Some(sig) = &reply.signature
        && let Ok(h) = Header::from_bytes(protocol::H_SIGNATURE, sig.as_bytes())
    {
        resp.add_header(h);
    }
    if reply.status >= 400
        && let Ok(h) = Header::from_bytes("Connection", "close")
    {
        resp.add_header(h);
    }
    let sent = req.respond(resp);
    log::info!(
        "{remote} {method} {} {} {len}B {}ms{}{}{}",
        printable(path),
        reply.status,
        started.elapsed().as_millis(),
        if reply.note.is_empty() { "" } else { " " },
        printable(&reply.note),
        match sent {
            Ok(()) => String::new(),
            Err(e) => format!(" (answer not delivered: {e})"),
        }
    );
}

/// `GET /v1/admin/export`: every record as it is read from the database, in chunked transfer
/// coding (HTTP/1.1; HTTP/1.0 gets the body until the connection closes). A failure half-way
/// ends the connection without the last chunk, so the client sees a cut answer, never a short
/// one that looks complete.
fn stream_export(
    store: &Store,
    req: Request,
    format: admin::ExportFormat,
    remote: &str,
    started: Instant,
) {
    use std::io::Write;
    let chunked = *req.http_version() >= (1, 1);
    let path = admin::PATH_EXPORT;
    let mut raw = req.into_writer();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n{}\r\n",
        format.content_type(),
        if chunked {
            "Transfer-Encoding: chunked\r\n"
        } else {
            ""
        }
    );
    let result = raw
        .write_all(head.as_bytes())
        .map_err(|e| e.to_string())
        .and_then(|()| {
            if chunked {
                let mut w =
                    std::io::BufWriter::with_capacity(64 * 1024, admin::Chunked::new(&mut raw));
                let n = admin::write_export(store, format, &mut w).map_err(|e| e.message)?;
                let c = w.into_inner().map_err(|e| e.error().to_string())?;
                c.finish().map_err(|e| e.to_string())?;
                Ok(n)
            } else {
                let mut w = std::io::BufWriter::with_capacity(64 * 1024, &mut raw);
                admin::write_export(store, format, &mut w).map_err(|e| e.message)
            }
        });
    log::info!(
        "{remote} GET {path} 200 - {}ms {}",
        started.elapsed().as_millis(),
        match result {
            Ok(n) => format!("exported {n} records"),
            Err(e) => format!("export cut off: {}", printable(&e)),
        }
    );
}

/// Reads a body of at most `max` bytes: refused by its Content-Length before reading, and
/// never more than `max` bytes read whatever the client sends.
struct TinyBody<'a>(&'a mut Request);

impl Body for TinyBody<'_> {
    fn read(&mut self, max: u64) -> Result<Vec<u8>, Refusal> {
        read_body(self.0, max)
    }
}

fn read_body(req: &mut Request, max: u64) -> Result<Vec<u8>, Refusal> {
    let Some(len) = req.body_length() else {
        return Err(Refusal::new(
            411,
            ErrorCode::LengthRequired,
            "send the body with a Content-Length",
        ));
    };
    if len as u64 > max {
        return Err(Refusal::new(
            413,
            ErrorCode::BodyTooLarge,
            format!("the body is {len} bytes; at most {max} are accepted; send smaller batches"),
        ));
    }
    let mut body = Vec::with_capacity(len);
    let deadline = Instant::now() + BODY_GRACE + Duration::from_secs(len as u64 / MIN_BODY_RATE);
    let reader = req.as_reader();
    let mut buf = [0u8; 16 * 1024];
    while body.len() < len {
        if Instant::now() > deadline {
            return Err(Refusal::new(
                400,
                ErrorCode::IncompleteBody,
                format!(
                    "the body came too slowly ({} of {len} bytes); send it again",
                    body.len()
                ),
            ));
        }
        let want = buf.len().min(len - body.len());
        match reader.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Refusal::new(
                    400,
                    ErrorCode::IncompleteBody,
                    format!("reading the body failed: {e}"),
                ));
            }
        }
    }
    if body.len() != len {
        return Err(Refusal::new(
            400,
            ErrorCode::IncompleteBody,
            format!("the body ended after {} of {len} bytes", body.len()),
        ));
    }
    Ok(body)
}
