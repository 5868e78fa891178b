//! The transport under `super::routes`: HTTP/1.1 (and HTTPS) on hyper and tokio. A connection is
//! a cheap task, so slow or hostile clients cannot starve the server of workers; the routes run
//! on a bounded set of blocking threads, each with a store handle of its own (a SQLite
//! connection, or the shared PostgreSQL pool), only once a request's head — and the body the
//! route wants — is in.
//!
//! Every body is read on the connection's own task, never by a worker. A small one (at most
//! [`EARLY_BODY_BYTES`]: the forms, enrolment, the admin API) is read before the route runs. A
//! larger one (a batch, a slip photo) is asked for by the route: it runs on a worker until it
//! reads its body — refusing from the head alone what it can (an unknown device, a rate limit, a
//! declared length over its limit) — then gives the worker back; the body is read here, within
//! its deadline and under the byte budget of `super::budget` (the address's share and the whole
//! server's), and the route runs again from the start with it. A request waiting for budget waits
//! on its own task and is refused (`429`, `Retry-After`) when its deadline passes.
//!
//! What a client can hold, and for how long:
//! - connections: at most [`MAX_CONNECTIONS`] in all and [`MAX_PER_ADDRESS`] from one address
//!   (past that, a new one is closed at once);
//! - a TLS handshake: [`HANDSHAKE`]; a request head: [`HEAD_TIMEOUT`] (also the idle time of a
//!   kept-alive connection); a body: [`BODY_GRACE`] plus a second per [`MIN_BODY_RATE`] bytes
//!   (waiting for budget included), and never more than the route's limit, refused by
//!   `Content-Length` before reading;
//! - memory for bodies: [`MAX_CONNECTIONS`] × [`EARLY_BODY_BYTES`] for the small ones, the byte
//!   budget for the others;
//! - `Content-Length` and `Transfer-Encoding` are hyper's strict HTTP/1.1 parser's (a conflict or
//!   a malformed length is a `400` and the connection ends); a refusal (4xx, 5xx) says
//!   `Connection: close` and the connection closes after it, its unread body never read.
//!
//! One log line per request. When the stop flag is set (Ctrl+C, SIGTERM) the server stops
//! accepting, lets requests in hand finish (a few seconds at most) and returns.
use super::Refusal;
use super::admin;
use super::budget::Budget;
pub use super::http_body::{BODY_GRACE, MIN_BODY_RATE};
use super::http_body::{HyperBody, busy, deadline, linger, read_body};
use super::routes::{self, Answer, Head, Method, Reply, printable};
use super::store::Store;
use crate::protocol::{self, ErrorCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::pool::Pool;
pub use super::routes::{Rates, Shared};

/// Connections open at once, from everyone.
pub const MAX_CONNECTIONS: usize = 512;
/// Connections open at once from one address (an office behind one NAT address still has
/// room for its laptops; one client cannot take the server).
pub const MAX_PER_ADDRESS: usize = 64;
/// Time for a TLS handshake.
pub const HANDSHAKE: Duration = Duration::from_secs(15);
/// Time for a request head, and for the next one on a kept-alive connection.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(20);
/// The longest request target (path and query) taken, and the most header bytes and headers:
/// past them a request is `414` or `431` before anything else is done with it.
pub const MAX_TARGET: usize = 8 * 1024;
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
pub const MAX_HEADERS: usize = 64;
/// A body this small (the login and the other dashboard forms, enrolment, the admin API's
/// requests) is read before the route runs, outside the byte budget: at most
/// [`MAX_CONNECTIONS`] × this in memory at once. Larger bodies (batches, the admin's slip photos)
/// are read once the route asks for them, under the budget.
const EARLY_BODY_BYTES: u64 = 16 * 1024;
/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(200);

type ResponseBody = BoxBody<Bytes, std::io::Error>;

/// Counts connections, in all and per address.
#[derive(Default)]
struct Connections {
    per_address: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection; dropping it gives its place back.
struct Slot {
    ip: IpAddr,
    all: Arc<Connections>,
}

impl Connections {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let mut m = self.per_address.lock().ok()?;
        let total: usize = m.values().sum();
        let mine = m.entry(ip).or_insert(0);
        if total >= MAX_CONNECTIONS || *mine >= MAX_PER_ADDRESS {
            return None;
        }
        *mine += 1;
        Some(Slot {
            ip,
            all: Arc::clone(self),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.all.per_address.lock()
            && let Some(n) = m.get_mut(&self.ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Serves until the stop flag is set; returns when the requests in hand have finished.
pub fn run(
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    stores: Vec<Store>,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("serve")
        .build()?;
    let budget = Arc::new(Budget::for_server(
        routes::largest_body(&shared),
        stores.len(),
    ));
    log::info!(
        "request bodies: at most {} KiB held at once",
        budget.total_kib()
    );
    let pool = Arc::new(Pool::start(stores));
    let backend = Backend {
        pool,
        budget,
        shared,
    };
    runtime.block_on(accept_loop(listener, tls, Arc::new(backend)))
}

/// What every connection's requests are answered with.
struct Backend {
    pool: Arc<Pool>,
    budget: Arc<Budget>,
    shared: Arc<Shared>,
}

async fn accept_loop(
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    backend: Arc<Backend>,
) -> std::io::Result<()> {
    let shared = Arc::clone(&backend.shared);
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let connections = Arc::new(Connections::default());
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    while !shared.stop.load(Ordering::SeqCst) {
        let (stream, remote) = match tokio::time::timeout(POLL, listener.accept()).await {
            Err(_) => continue,
            Ok(Err(e)) => {
                log::error!("accept error: {e}");
                tokio::time::sleep(POLL).await;
                continue;
            }
            Ok(Ok(c)) => c,
        };
        let Some(slot) = connections.take(remote.ip()) else {
            log::warn!("{remote} refused: too many connections from that address");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (backend, acceptor) = (Arc::clone(&backend), acceptor.clone());
        let permit = Arc::clone(&in_flight).acquire_owned().await.ok();
        tokio::spawn(async move {
            let _slot = slot;
            let _permit = permit;
            match acceptor {
                Some(a) => match tokio::time::timeout(HANDSHAKE, a.accept(stream)).await {
                    Ok(Ok(tls)) => serve_connection(TokioIo::new(tls), remote, backend).await,
                    Ok(Err(e)) => log::info!("{remote} TLS handshake failed: {e}"),
                    Err(_) => log::info!("{remote} TLS handshake timed out"),
                },
                None => serve_connection(TokioIo::new(stream), remote, backend).await,
            }
        });
    }
    // Stopping: the requests in hand finish (their connections close after them).
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        in_flight.acquire_many(MAX_CONNECTIONS as u32),
    )
    .await;
    Ok(())
}

async fn serve_connection<I>(io: I, remote: SocketAddr, backend: Arc<Backend>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let stop = Arc::clone(&backend.shared.stop);
    let service = hyper::service::service_fn(move |req| {
        let backend = Arc::clone(&backend);
        async move { Ok::<_, std::convert::Infallible>(handle(req, remote, backend).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(64 * 1024)
        .keep_alive(!stop.load(Ordering::SeqCst))
        .serve_connection(io, service);
    if let Err(e) = conn.await {
        log::debug!("{remote} connection ended: {e}");
    }
}

async fn handle(
    req: hyper::Request<Incoming>,
    remote: SocketAddr,
    backend: Arc<Backend>,
) -> hyper::Response<ResponseBody> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let target = parts.uri.path_and_query().map_or(0, |p| p.as_str().len());
    let header_bytes: usize = parts
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let too_large = if target > MAX_TARGET {
        Some((414, "the request target is too long"))
    } else if header_bytes > MAX_HEADER_BYTES || parts.headers.len() > MAX_HEADERS {
        Some((431, "the request head is too large"))
    } else {
        None
    };
    if let Some((status, why)) = too_large {
        let reply = Reply::refused(Refusal::new(status, ErrorCode::BadRequest, why));
        let method = Method::parse(parts.method.as_str());
        return respond(reply, &remote.to_string(), &method, "-", started);
    }
    let head = Head {
        method: Method::parse(parts.method.as_str()),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or("").to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        remote: Some(remote),
    };
    let length = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // A small body is read here, on the connection's own task (see [`EARLY_BODY_BYTES`]).
    let (body, early) = match length {
        Some(len) if len <= EARLY_BODY_BYTES => {
            (None, Some(read_body(body, len, deadline(len)).await))
        }
        _ => (Some(body), None),
    };
    let head = Arc::new(head);
    let (mut answer, mut unread, wanted) = run_route(&backend, &head, body, early, length).await;
    // Held until the request is answered: the body is in memory until then.
    let mut _held = None;
    if let (true, Some(len)) = (wanted, length)
        && let Some(body) = unread.take()
    {
        // The route asked for a large body: it is read here, under the budget, and the route
        // runs again with it (module header).
        let until = deadline(len);
        let read = match backend.budget.take(remote.ip(), len, until).await {
            Some(held) => {
                _held = Some(held);
                read_body(body, len, until).await
            }
            None => {
                unread = Some(body);
                log::warn!(
                    "{remote} no room for a body of {len} bytes ({} KiB free)",
                    backend.budget.free_kib()
                );
                Err(busy())
            }
        };
        answer = run_route(&backend, &head, None, Some(read), length).await.0;
    }
    let pool = Arc::clone(&backend.pool);
    let remote = remote.to_string();
    match answer {
        Answer::Reply(reply) => {
            if reply.status >= 400
                && let Some(body) = unread
            {
                linger(body).await;
            }
            respond(reply, &remote, &head.method, &head.path, started)
        }
        Answer::Export(format) => export(pool, format, remote, started).await,
    }
}

/// Runs the route on a worker with the body as read so far: its answer, the body if the route left
/// it unread, and whether the route asked for that body (then its answer is not final).
async fn run_route(
    backend: &Backend,
    head: &Arc<Head>,
    body: Option<Incoming>,
    early: Option<Result<Vec<u8>, Refusal>>,
    length: Option<u64>,
) -> (Answer, Option<Incoming>, bool) {
    let (head, shared) = (Arc::clone(head), Arc::clone(&backend.shared));
    backend
        .pool
        .run(move |store| {
            let mut body = HyperBody {
                body,
                early,
                length,
                wanted: false,
            };
            let answer = routes::answer(store, &shared, &head, &mut body);
            (answer, body.body.take(), body.wanted)
        })
        .await
        .unwrap_or_else(|| {
            let refused = Reply::refused(Refusal::internal("no worker"));
            (Answer::Reply(refused), None, false)
        })
}

/// The response for `reply`, and the request's log line.
fn respond(
    reply: Reply,
    remote: &str,
    method: &Method,
    path: &str,
    started: Instant,
) -> hyper::Response<ResponseBody> {
    let len = reply.body.len();
    let mut b = hyper::Response::builder()
        .status(reply.status)
        .header(hyper::header::CONTENT_TYPE, reply.content_type);
    for (name, value) in &reply.headers {
        b = b.header(*name, value.as_str());
    }
    if let Some(sig) = &reply.signature {
        b = b.header(protocol::H_SIGNATURE, sig.as_str());
    }
    if reply.status >= 400 {
        // The connection ends after a refusal: its unread body is never read.
        b = b.header(hyper::header::CONNECTION, "close");
    }
    log::info!(
        "{remote} {method} {} {} {len}B {}ms{}{}",
        printable(path),
        reply.status,
        started.elapsed().as_millis(),
        if reply.note.is_empty() { "" } else { " " },
        printable(&reply.note),
    );
    let body = Full::new(Bytes::from(reply.body))
        .map_err(|never| match never {})
        .boxed();
    b.body(body).unwrap_or_else(|e| {
        log::error!("response: {e}");
        hyper::Response::new(
            Full::new(Bytes::new())
                .map_err(|never| match never {})
                .boxed(),
        )
    })
}

/// `GET /v1/admin/export`: every record as it is read from the database, streamed (chunked
/// transfer coding). A failure half-way ends the connection without the last chunk, so the
/// client sees a cut answer, never a short one that looks complete.
async fn export(
    pool: Arc<Pool>,
    format: admin::ExportFormat,
    remote: String,
    started: Instant,
) -> hyper::Response<ResponseBody> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(8);
    let content_type = format.content_type();
    tokio::spawn(async move {
        let done = pool
            .run(move |store| {
                let mut w =
                    std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter { tx: tx.clone() });
                let n = admin::write_export(store, format, &mut w).map_err(|e| e.message)?;
                std::io::Write::flush(&mut w).map_err(|e| e.to_string())?;
                Ok::<usize, String>(n)
            })
            .await;
        let path = admin::PATH_EXPORT;
        match done {
            Some(Ok(n)) => log::info!(
                "{remote} GET {path} 200 - {}ms exported {n} records",
                started.elapsed().as_millis()
            ),
            other => log::warn!(
                "{remote} GET {path} 200 - {}ms export cut off: {}",
                started.elapsed().as_millis(),
                printable(&match other {
                    Some(Err(e)) => e,
                    _ => "no worker".into(),
                })
            ),
        }
    });
    let body = StreamBody::new(ReceiverStream(rx)).boxed();
    hyper::Response::builder()
        .status(200)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .header("X-Content-Type-Options", "nosniff")
        .body(body)
        .unwrap_or_else(|_| {
            hyper::Response::new(
                Full::new(Bytes::new())
                    .map_err(|never| match never {})
                    .boxed(),
            )
        })
}

/// Bytes written by the export's blocking thread, sent to the response body as they come.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Frame::data(Bytes::copy_from_slice(buf))))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A tokio receiver as a `Stream` of body frames.
struct ReceiverStream(tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>);

impl futures_core::Stream for ReceiverStream {
    type Item = Result<Frame<Bytes>, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
