//! HTTP on tiny_http: a fixed pool of worker threads, each with its own store handle (a SQLite
//! connection, or the shared PostgreSQL pool),
//! answering `/v1/health`, `/v1/enrol` and `/v1/batches`. Bodies are refused by Content-Length
//! before they are read and capped while reading. One log line per request on stderr. When the
//! stop flag is set (SIGINT/SIGTERM), workers finish the request in hand and return.
//! GET (and HEAD) of any path outside `/v1/` is the dashboard (`super::dashboard`), HTML.
//! `/v1/admin/` is the admin API (`super::admin`, bearer token). Rate limits (`super::ratelimit`)
//! are checked before a body is read: per device for batches and activated lists; per client
//! address for refused enrolments and wrong admin tokens (guessing); an empty bucket is
//! `429 rate_limited` with `Retry-After`.
use super::admin;
use super::dashboard;
use super::ingest::{self, Incoming};
use super::ratelimit::RateLimiter;
use super::store::Store;
use super::{Limits, Refusal};
use super::{activated, enrol};
use crate::crypto::KeyPair;
use crate::protocol::ErrorCode;
use crate::protocol::{self, EnrolRequest, Health};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tiny_http::{Header, Method, Request, Response, Server};

/// Largest enrolment (or activated-list) request accepted.
const MAX_ENROL_BYTES: u64 = 16 * 1024;
/// A body must arrive within this long plus a second per [`MIN_BODY_RATE`] bytes: a client
/// trickling a few bytes a minute cannot hold one of the few workers for long, while a batch on
/// a poor link (32 KB/s) has ample time.
const BODY_GRACE: Duration = Duration::from_secs(30);
const MIN_BODY_RATE: u64 = 1024;
/// How often an idle worker looks at the stop flag.
const POLL: Duration = Duration::from_millis(200);

/// Everything a worker shares with the others.
pub struct Shared {
    pub key: KeyPair,
    pub limits: Limits,
    pub stop: Arc<AtomicBool>,
    /// The dashboard's settings (time zone, admin token).
    pub dashboard: dashboard::Settings,
    pub rates: Rates,
}

/// The rate limits of `[server]`.
pub struct Rates {
    /// Batch and activated-list requests, by `X-Ikd-Device`.
    pub device: RateLimiter,
    /// Enrolment and admin-API requests, by client address.
    pub address: RateLimiter,
}

impl Rates {
    pub fn from_config(c: &crate::config::ServerConfig) -> Rates {
        Rates {
            device: RateLimiter::new(c.device_requests_per_minute, c.device_burst),
            address: RateLimiter::new(c.address_requests_per_minute, c.address_burst),
        }
    }
}

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

/// What a route answers.
struct Reply {
    status: u16,
    body: Vec<u8>,
    signature: Option<String>,
    /// Extra words for the log line.
    note: String,
    content_type: &'static str,
    /// Extra headers (the dashboard's).
    headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json<T: serde::Serialize>(value: &T) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply {
                status: 200,
                body,
                signature: None,
                note: String::new(),
                content_type: "application/json",
                headers: vec![],
            },
            Err(e) => Reply::refused(Refusal::internal(e)),
        }
    }

    fn refused(r: Refusal) -> Reply {
        let mut headers = vec![];
        if let Some(wait) = r.retry_after {
            headers.push(("Retry-After", wait.as_secs().max(1).to_string()));
        }
        if r.status == 401 {
            headers.push(("WWW-Authenticate", "Bearer realm=\"ikd-field\"".to_string()));
        }
        Reply {
            status: r.status,
            body: r.body(),
            signature: None,
            note: format!("{}: {}", r.code, r.message),
            content_type: "application/json",
            headers,
        }
    }
}

fn handle(store: &mut Store, shared: &Shared, mut req: Request) {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.url().split('?').next().unwrap_or("").to_string();
    let remote = req
        .remote_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|| "-".into());
    if path == admin::PATH_EXPORT && method == Method::Get {
        match admin_gate(shared, &req).and_then(|()| {
            let query = req.url().split_once('?').map(|(_, q)| q).unwrap_or("");
            admin::ExportFormat::from_query(query)
        }) {
            Ok(format) => return stream_export(store, req, format, &remote, started),
            Err(r) => return finish(req, Reply::refused(r), &remote, &method, &path, started),
        }
    }
    let reply = route(store, shared, &mut req, &method, &path);
    finish(req, reply, &remote, &method, &path, started);
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

/// The token check of every admin request. Wrong tokens count against the client address's
/// rate limit (guessing); once it is spent, every admin request from there is `429` until it
/// refills, so a right guess cannot show among the refusals.
fn admin_gate(shared: &Shared, req: &Request) -> Result<(), Refusal> {
    let ip = client_ip(req);
    shared.rates.address.check(&ip).map_err(rate_limited)?;
    let r = admin::authorise(&shared.dashboard.admin_token, header(req, "Authorization"));
    if r.as_ref().is_err_and(|e| e.status == 401) {
        let _ = shared.rates.address.take(&ip);
    }
    r
}

/// The client's address (the reverse proxy's, behind one), the key of per-address limits.
fn client_ip(req: &Request) -> String {
    req.remote_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

fn header<'a>(req: &'a Request, name: &'static str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.equiv(name))
        .map(|h| h.value.as_str())
}

/// `429 rate_limited`; [`Reply::refused`] adds `Retry-After` from the message's wait.
fn rate_limited(wait: Duration) -> Refusal {
    Refusal::new(
        429,
        ErrorCode::RateLimited,
        format!(
            "too many requests; try again in {} s (Retry-After)",
            wait.as_secs()
        ),
    )
    .retry_after(wait)
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

/// Keeps the log one line per request whatever a client puts in its path.
fn printable(s: &str) -> String {
    s.chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn route(
    store: &mut Store,
    shared: &Shared,
    req: &mut Request,
    method: &Method,
    path: &str,
) -> Reply {
    if admin::owns(path) {
        return match admin_route(store, shared, req, method, path) {
            Ok(r) => r,
            Err(r) => Reply::refused(r),
        };
    }
    let allowed = match path {
        protocol::PATH_HEALTH => Method::Get,
        protocol::PATH_ENROL | protocol::PATH_BATCHES | protocol::PATH_ACTIVATED => Method::Post,
        p if dashboard::owns(p) => return dashboard_route(store, shared, req, method, path),
        _ => {
            return Reply::refused(Refusal::new(
                404,
                ErrorCode::NotFound,
                format!("no such path: {}", printable(path)),
            ));
        }
    };
    let head_of_get = allowed == Method::Get && *method == Method::Head;
    if *method != allowed && !head_of_get {
        return Reply::refused(Refusal::new(
            405,
            ErrorCode::MethodNotAllowed,
            format!("{path} takes {allowed}"),
        ));
    }
    // Rate limits, before any body is read.
    let limit = match path {
        protocol::PATH_BATCHES | protocol::PATH_ACTIVATED => shared
            .rates
            .device
            .take(header(req, protocol::H_DEVICE).unwrap_or("")),
        // Only refused enrolments (wrong tokens) count: a district enrolling fifty laptops
        // behind one office address is not slowed down, guessing is.
        protocol::PATH_ENROL => shared.rates.address.check(&client_ip(req)),
        _ => Ok(()),
    };
    if let Err(wait) = limit {
        return Reply::refused(rate_limited(wait));
    }
    match path {
        protocol::PATH_HEALTH => Reply::json(&Health {
            ok: true,
            service: "ikd-field".into(),
            protocol: protocol::VERSION,
            server_id: shared.key.id(),
            server_public_key: shared.key.public_hex(),
            seal_public_key: crate::seal::server_public_hex(&shared.key),
        }),
        protocol::PATH_ENROL => match enrol_route(store, shared, req) {
            Ok(r) => r,
            Err(r) => {
                let _ = shared.rates.address.take(&client_ip(req));
                Reply::refused(r)
            }
        },
        protocol::PATH_ACTIVATED => match activated_route(store, shared, req) {
            Ok(r) => r,
            Err(r) => Reply::refused(r),
        },
        _ => match batch_route(store, shared, req) {
            Ok(r) => r,
            Err(r) => Reply::refused(r),
        },
    }
}

/// `/v1/admin/…` other than the export: rate limit and token first, then the route.
fn admin_route(
    store: &mut Store,
    shared: &Shared,
    req: &mut Request,
    method: &Method,
    path: &str,
) -> Result<Reply, Refusal> {
    admin_gate(shared, req)?;
    let allowed = match path {
        admin::PATH_DEVICES | admin::PATH_STATS | admin::PATH_EXPORT => Method::Get,
        admin::PATH_REVOKE => Method::Post,
        _ => {
            return Err(Refusal::new(
                404,
                ErrorCode::NotFound,
                format!("no such path: {}", printable(path)),
            ));
        }
    };
    if *method != allowed {
        return Err(Refusal::new(
            405,
            ErrorCode::MethodNotAllowed,
            format!("{path} takes {allowed}"),
        ));
    }
    let internal = |e: crate::error::AppError| Refusal::internal(e.message);
    let mut reply = match path {
        admin::PATH_DEVICES => Reply::json(&serde_json::json!({
            "devices": store.devices().map_err(internal)?
        })),
        admin::PATH_STATS => Reply::json(&serde_json::json!({
            "stats": store.stats().map_err(internal)?
        })),
        _ => {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Revoke {
                device_id: String,
            }
            let body = read_body(req, admin::MAX_REQUEST_BYTES)?;
            let r: Revoke = serde_json::from_slice(&body).map_err(|e| {
                Refusal::new(
                    400,
                    ErrorCode::BadJson,
                    format!("expected {{\"device_id\": …}}: {e}"),
                )
            })?;
            let id = r.device_id.trim();
            if store.device(id).map_err(internal)?.is_none() {
                return Err(Refusal::new(
                    404,
                    ErrorCode::DeviceUnknown,
                    format!("no device {}", printable(id)),
                ));
            }
            let changed = store
                .revoke(id, &crate::timefmt::now_utc())
                .map_err(internal)?;
            let mut r = Reply::json(&serde_json::json!({
                "device_id": id, "revoked": true, "already": !changed
            }));
            r.note = format!("revoked {}", printable(id));
            r
        }
    };
    reply.headers.push(("Cache-Control", "no-store".into()));
    Ok(reply)
}

/// A dashboard page: GET or HEAD only; everything but the admin's conflict list is aggregates.
fn dashboard_route(
    store: &Store,
    shared: &Shared,
    req: &Request,
    method: &Method,
    path: &str,
) -> Reply {
    if !matches!(method, Method::Get | Method::Head) {
        return Reply::refused(Refusal::new(
            405,
            ErrorCode::MethodNotAllowed,
            format!("{} takes GET", printable(path)),
        ));
    }
    let query = req.url().split_once('?').map(|(_, q)| q).unwrap_or("");
    let authorization = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str());
    let page = match store.db() {
        Ok(mut db) => dashboard::respond(&mut db, &shared.dashboard, path, query, authorization),
        Err(e) => dashboard::unavailable(&e),
    };
    let mut headers: Vec<(&'static str, String)> = dashboard::SECURITY_HEADERS
        .iter()
        .map(|(k, v)| (*k, v.to_string()))
        .collect();
    headers.extend(page.headers);
    Reply {
        status: page.status,
        body: page.body,
        signature: None,
        note: String::new(),
        content_type: page.content_type,
        headers,
    }
}

fn enrol_route(store: &mut Store, shared: &Shared, req: &mut Request) -> Result<Reply, Refusal> {
    let body = read_body(req, MAX_ENROL_BYTES)?;
    let er: EnrolRequest = serde_json::from_slice(&body).map_err(|e| {
        Refusal::new(
            400,
            ErrorCode::BadJson,
            format!("not an enrolment request: {e}"),
        )
    })?;
    let ok = enrol::enrol(store, &shared.key, &er)?;
    let mut r = Reply::json(&ok);
    // Signed like every answer that counts, so a device that knows the server's id beforehand
    // (`enrol --expect-server-id`) can tell the sealing key and its device id were not swapped.
    r.signature = Some(B64.encode(shared.key.sign(&protocol::signed_digest(&r.body))));
    r.note = format!("enrolled {} ({})", ok.device_id, printable(&er.officer));
    Ok(r)
}

fn batch_route(store: &mut Store, shared: &Shared, req: &mut Request) -> Result<Reply, Refusal> {
    let body = read_body(req, shared.limits.max_body_bytes)?;
    let headers = req.headers();
    let header = |name: &'static str| {
        headers
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_string())
            .unwrap_or_default()
    };
    let (device, batch, signature) = (
        header(protocol::H_DEVICE),
        header(protocol::H_BATCH),
        header(protocol::H_SIGNATURE),
    );
    let gzip_ok = accepts_gzip(&header("Accept-Encoding"));
    let inc = Incoming {
        device_id: &device,
        batch_id: &batch,
        signature: &signature,
        body: &body,
    };
    let a = ingest::ingest(store, &shared.key, &shared.limits, &inc)?;
    let s = &a.response.summary;
    // The gzip form when the client accepts it (and the journal has it), signed over its bytes.
    let (body, signature, headers) = match a.gzip {
        Some((gz, sig)) if gzip_ok => (gz, sig, vec![("Content-Encoding", "gzip".to_string())]),
        _ => (a.body, a.signature, vec![]),
    };
    Ok(Reply {
        status: 200,
        note: format!(
            "device={device} batch={batch} records={} accepted={} duplicate={} conflict={} rejected={}{}",
            a.response.results.len(),
            s.accepted,
            s.duplicate,
            s.conflict,
            s.rejected,
            if a.replayed { " replay" } else { "" }
        ),
        body,
        signature: Some(signature),
        content_type: "application/json",
        headers,
    })
}

/// True when an `Accept-Encoding` value lists `gzip` (or `*`) without `q=0`.
fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or("");
        let refused = parts.any(|p| {
            p.strip_prefix("q=")
                .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

fn activated_route(store: &Store, shared: &Shared, req: &mut Request) -> Result<Reply, Refusal> {
    let body = read_body(req, MAX_ENROL_BYTES)?;
    let header = |name: &'static str| {
        req.headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_string())
            .unwrap_or_default()
    };
    let device = header(protocol::H_DEVICE);
    let a = activated::answer(
        store,
        &shared.key,
        &device,
        &header(protocol::H_SIGNATURE),
        &body,
    )?;
    let mut r = Reply::json(&a);
    r.signature = Some(B64.encode(shared.key.sign(&protocol::signed_digest(&r.body))));
    r.note = format!("device={device} since={} count={}", a.since, a.count);
    Ok(r)
}

/// Reads a body of at most `max` bytes: refused by its Content-Length before reading, and
/// never more than `max` bytes read whatever the client sends.
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

#[cfg(test)]
mod tests {
    use super::accepts_gzip;

    #[test]
    fn accept_encoding() {
        for yes in ["gzip", "GZIP", "identity, gzip", "gzip;q=0.5", "br, *"] {
            assert!(accepts_gzip(yes), "{yes}");
        }
        for no in ["", "identity", "gzip;q=0", "br", "gzip; q=0.0", "x-gzip2"] {
            assert!(!accepts_gzip(no), "{no}");
        }
    }
}
