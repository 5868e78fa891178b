//! The desk's HTTP server: hyper 1 on tokio, the stack `serve` runs on, bound to 127.0.0.1.
//! Requests are read whole (at most [`MAX_BODY`]), passed through the guard, and answered on a
//! blocking thread by `api::handle` (SQLite, slips); the answer gets the desk's security headers.
use super::guard::{self, Secrets, Seen, Verdict};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The largest request body the desk reads (a form, a folder name).
pub const MAX_BODY: usize = 64 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections open at once.
pub const MAX_CONNECTIONS: usize = 64;
const POLL: Duration = Duration::from_millis(200);

/// A request as the desk's handlers see it.
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Vec<u8>,
}

impl Req {
    /// A query parameter, percent-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then(|| decode(v))
        })
    }
}

/// `%41+b` → `A b`.
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer.
pub struct Resp {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Resp {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Resp {
        Resp {
            status,
            content_type,
            body: body.into(),
            headers: vec![],
        }
    }
    pub fn json(status: u16, v: &impl serde::Serialize) -> Resp {
        Resp::new(
            status,
            "application/json; charset=utf-8",
            serde_json::to_vec(v).unwrap_or_default(),
        )
    }
    pub fn html(body: String) -> Resp {
        Resp::new(200, "text/html; charset=utf-8", body)
    }
    pub fn redirect(to: &str) -> Resp {
        let mut r = Resp::new(303, "text/plain; charset=utf-8", "");
        r.headers.push(("location", to.to_string()));
        r
    }
}

/// An error as the page shows it: the message and what to do, never a code.
#[derive(serde::Serialize)]
pub struct Failed {
    pub message: String,
    pub hint: Option<String>,
}

pub fn failed(e: &crate::error::AppError) -> Resp {
    log::warn!("desk: {e}");
    Resp::json(
        422,
        &Failed {
            message: e.message.clone(),
            hint: e.hint.clone(),
        },
    )
}

/// What answers requests that pass the guard.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Req) -> Resp;
    /// The page shown to a browser without the secret (and to another host).
    fn refused(&self, verdict: &Verdict) -> Resp;
}

/// Serves on `listener` until `stop` is set.
pub fn run(
    listener: std::net::TcpListener,
    secrets: Secrets,
    handler: Arc<dyn Handler>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let secrets = Arc::new(secrets);
        // One officer's browser needs a handful of connections; past this many at once (a
        // local program holding them open) new ones are closed, so file handles never run out.
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        while !stop.load(Ordering::SeqCst) {
            let (stream, remote) = match tokio::time::timeout(POLL, listener.accept()).await {
                Err(_) => continue,
                Ok(Err(e)) => {
                    log::warn!("desk: accept: {e}");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
                Ok(Ok(c)) => c,
            };
            // Bound to 127.0.0.1: anything else is not ours.
            if !remote.ip().is_loopback() {
                continue;
            }
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                continue;
            };
            let (secrets, handler) = (Arc::clone(&secrets), Arc::clone(&handler));
            tokio::spawn(async move {
                let _slot = slot;
                let service = hyper::service::service_fn(move |req| {
                    answer(req, Arc::clone(&secrets), Arc::clone(&handler))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .max_buf_size(64 * 1024)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
        Ok(())
    })
}

fn header<'a>(req: &'a hyper::Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn answer(
    req: hyper::Request<Incoming>,
    secrets: Arc<Secrets>,
    handler: Arc<dyn Handler>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let key = Req {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        body: vec![],
    }
    .param("k");
    let verdict = secrets.check(&Seen {
        method: &method,
        host: header(&req, "host"),
        cookie: header(&req, "cookie"),
        origin: header(&req, "origin"),
        csrf: header(&req, guard::CSRF_HEADER),
        key: key.as_deref(),
    });
    // The style and script are the same for everyone: the refusal page may use them.
    let public = method == "GET" && (path == "/desk.css" || path == "/desk.js");
    let verdict = match verdict {
        Verdict::NoSecret if public => Verdict::Pass,
        v => v,
    };
    let resp = match verdict {
        Verdict::Pass => {
            let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Ok(b) => b.to_bytes().to_vec(),
                Err(_) => {
                    return Ok(finish(Resp::new(
                        413,
                        "text/plain; charset=utf-8",
                        "terlalu besar / too large",
                    )));
                }
            };
            let r = Req {
                method,
                path,
                query,
                body,
            };
            let h = Arc::clone(&handler);
            tokio::task::spawn_blocking(move || h.handle(r))
                .await
                .unwrap_or_else(|_| Resp::new(500, "text/plain; charset=utf-8", "error"))
        }
        Verdict::SetCookie => {
            // Always to the desk's own start page (never a path the link chose: `//elsewhere`).
            let mut r = Resp::redirect("/");
            r.headers.push(("set-cookie", secrets.set_cookie()));
            r
        }
        v => handler.refused(&v),
    };
    Ok(finish(resp))
}

fn finish(r: Resp) -> hyper::Response<Full<Bytes>> {
    let mut b = hyper::Response::builder()
        .status(r.status)
        .header("content-type", r.content_type)
        .header("content-security-policy", guard::CSP)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("cache-control", "no-store")
        .header("x-frame-options", "SAMEORIGIN");
    for (k, v) in r.headers {
        b = b.header(k, v);
    }
    b.body(Full::new(Bytes::from(r.body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        let r = Req {
            method: "GET".into(),
            path: "/".into(),
            query: "q=sumber+urip&n=%31%32&bad=%zz&last=%4".into(),
            body: vec![],
        };
        assert_eq!(r.param("q").as_deref(), Some("sumber urip"));
        assert_eq!(r.param("n").as_deref(), Some("12"));
        assert_eq!(r.param("bad").as_deref(), Some("%zz"));
        assert_eq!(r.param("last").as_deref(), Some("%4"));
        assert_eq!(r.param("none"), None);
    }
}
