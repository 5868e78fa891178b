//! The server's routes, independent of the HTTP library underneath (server/http.rs is the
//! transport): a request is its [`Head`] (method, path, query, headers, client address) and a
//! [`Body`] the route reads on demand with its own limit, so refusals that need no body (unknown
//! device, rate limit, wrong method) never wait for a large one. The transport reads every body
//! on the connection's task, never on a worker: a route asking for a body not read yet is run
//! again from the start once it is, so what a route does before reading its body must change
//! nothing but a refusal's counts. A route answers a [`Reply`], or for
//! `GET /v1/admin/export` an [`Answer::Export`] that the transport streams.
//!
//! `/v1/health`, `/v1/enrol`, `/v1/batches`, `GET /v1/batches/{id}`, `/v1/activated`; any path outside
//! `/v1/` is the dashboard (`super::web`: its pages, the admin's login and forms), HTML; `/v1/admin/` is the admin API
//! (`super::admin`, bearer token). Rate limits (`super::ratelimit`) are checked before the route
//! reads a body: per device for batches and activated lists; per client address for refused enrolments
//! and wrong admin tokens (guessing); an empty bucket is `429 rate_limited` with `Retry-After`.
use super::admin;
use super::dashboard;
use super::ingest::{self, Incoming};
pub use super::ratelimit::Rates;
use super::session::Sessions;
use super::store::Store;
use super::web;
use super::{Limits, Refusal};
use super::{activated, batch_answer, enrol};
use crate::crypto::KeyPair;
use crate::protocol::ErrorCode;
use crate::protocol::{self, EnrolRequest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// A request method (the ones the routes tell apart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Other(String),
}

impl Method {
    pub fn parse(m: &str) -> Method {
        match m {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            other => Method::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Other(m) => m,
        })
    }
}

/// What a route needs of a request before its body.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: Method,
    pub path: String,
    pub query: String,
    /// Header names and values as received (names are compared without case).
    pub headers: Vec<(String, String)>,
    pub remote: Option<std::net::SocketAddr>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The client's address (the reverse proxy's, behind one), the key of per-address limits.
    pub fn client_ip(&self) -> String {
        self.remote.map(|a| a.ip().to_string()).unwrap_or_default()
    }
}

/// A request body, read by the route that wants it, at most `max` bytes (refused by its
/// declared length before reading; never more than `max` read).
pub trait Body {
    fn read(&mut self, max: u64) -> Result<Vec<u8>, Refusal>;
}

/// What the transport sends.
pub enum Answer {
    Reply(Reply),
    /// Every record, streamed as it is read from the database.
    Export(admin::ExportFormat),
}

/// Answers one request.
pub fn answer(store: &mut Store, shared: &Shared, req: &Head, body: &mut dyn Body) -> Answer {
    if req.path == admin::PATH_EXPORT && req.method == Method::Get {
        return match admin_gate(shared, req)
            .and_then(|()| admin::ExportFormat::from_query(&req.query))
        {
            Ok(format) => Answer::Export(format),
            Err(r) => Answer::Reply(Reply::refused(r)),
        };
    }
    Answer::Reply(route(store, shared, req, body, &req.method, &req.path))
}

/// The largest body any route takes (a batch, a slip photo): the transport's byte budget is
/// sized from it.
pub fn largest_body(shared: &Shared) -> u64 {
    (shared.limits.max_body_bytes).max(super::slipcheck::MAX_UPLOAD_BYTES)
}

/// Largest enrolment (or activated-list) request accepted.
const MAX_ENROL_BYTES: u64 = 16 * 1024;

/// Everything a worker shares with the others.
pub struct Shared {
    pub key: KeyPair,
    pub limits: Limits,
    pub stop: Arc<AtomicBool>,
    /// The dashboard's settings (time zone, admin token).
    pub dashboard: dashboard::Settings,
    pub rates: Rates,
    /// The admin's dashboard sessions (in memory: a restart ends them).
    pub sessions: Sessions,
    /// Served over TLS (the session cookie is then `Secure`).
    pub tls: bool,
    /// The office CA (PEM) of `server tls init` when `serve` uses it, else empty.
    pub office_ca: String,
}

/// What a route answers.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub signature: Option<String>,
    /// Extra words for the log line.
    pub note: String,
    pub content_type: &'static str,
    /// Extra headers (the dashboard's).
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn json<T: serde::Serialize>(value: &T) -> Reply {
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

    pub fn refused(r: Refusal) -> Reply {
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

/// The token check of every admin request. Wrong tokens count against the client address's
/// rate limit (guessing); once it is spent, every admin request from there is `429` until it
/// refills, so a right guess cannot show among the refusals.
fn admin_gate(shared: &Shared, req: &Head) -> Result<(), Refusal> {
    let ip = req.client_ip();
    shared.rates.address.check(&ip).map_err(rate_limited)?;
    let r = admin::authorise(&shared.dashboard.admin_token, req.header("Authorization"));
    if r.as_ref().is_err_and(|e| e.status == 401) {
        let _ = shared.rates.address.take(&ip);
    }
    r
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

/// Keeps the log one line per request whatever a client puts in its path.
pub fn printable(s: &str) -> String {
    s.chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn route(
    store: &mut Store,
    shared: &Shared,
    req: &Head,
    body: &mut dyn Body,
    method: &Method,
    path: &str,
) -> Reply {
    if admin::owns(path) {
        return match admin_route(store, shared, req, body, method, path) {
            Ok(r) => r,
            Err(r) => Reply::refused(r),
        };
    }
    let answer_of = batch_answer::batch_id(path);
    let allowed = match path {
        _ if answer_of.is_some() => Method::Get,
        protocol::PATH_HEALTH => Method::Get,
        protocol::PATH_ENROL | protocol::PATH_BATCHES | protocol::PATH_ACTIVATED => Method::Post,
        p if dashboard::owns(p) => return dashboard_route(store, shared, req, body, method, path),
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
    // Rate limits, before the route reads any body. A device's allowance is only looked at here; it is
    // spent once the request proves to be the device's (signed_by_device), so requests carrying
    // a victim's device id cannot use up the victim's allowance. Failed proofs count against
    // the sender's address.
    let signed =
        answer_of.is_some() || [protocol::PATH_BATCHES, protocol::PATH_ACTIVATED].contains(&path);
    let limit = match path {
        _ if signed => shared
            .rates
            .device
            .check(req.header(protocol::H_DEVICE).unwrap_or(""))
            .and_then(|()| shared.rates.address.check(&req.client_ip())),
        // Only refused enrolments (wrong tokens) count: a district enrolling fifty laptops
        // behind one office address is not slowed down, guessing is.
        protocol::PATH_ENROL => shared.rates.address.check(&req.client_ip()),
        _ => Ok(()),
    };
    if let Err(wait) = limit {
        return Reply::refused(rate_limited(wait));
    }
    if let Some(batch) = answer_of {
        let h = |name: &'static str| req.header(name).unwrap_or_default();
        let (device, gzip_ok) = (h(protocol::H_DEVICE), accepts_gzip(h("Accept-Encoding")));
        let note = format!("device={device} batch={batch} answer");
        return batch_answer::find(store, device, batch, h(protocol::H_SIGNATURE))
            .map_or_else(Reply::refused, |a| answer_reply(a, gzip_ok, note));
    }
    match path {
        protocol::PATH_HEALTH => {
            let health = enrol::health(&shared.key, &shared.office_ca, &req.query);
            with_signature(Reply::json(&health), &shared.key)
        }
        protocol::PATH_ENROL => match enrol_route(store, shared, body) {
            Ok(r) => r,
            Err(r) => {
                let _ = shared.rates.address.take(&req.client_ip());
                Reply::refused(r)
            }
        },
        protocol::PATH_ACTIVATED => match activated_route(store, shared, req, body) {
            Ok(r) => r,
            Err(r) => Reply::refused(r),
        },
        _ => match batch_route(store, shared, req, body) {
            Ok(r) => r,
            Err(r) => Reply::refused(r),
        },
    }
}

/// `/v1/admin/…` other than the export: rate limit and token first, then the route.
fn admin_route(
    store: &mut Store,
    shared: &Shared,
    req: &Head,
    body: &mut dyn Body,
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
        admin::PATH_DEVICES => Reply::json(&admin::DevicesBody {
            devices: store.devices().map_err(internal)?,
        }),
        admin::PATH_STATS => Reply::json(&admin::StatsBody {
            stats: store.stats().map_err(internal)?,
        }),
        _ => {
            let body = body.read(admin::MAX_REQUEST_BYTES)?;
            let r: admin::RevokeRequest = serde_json::from_slice(&body).map_err(|e| {
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
            let mut r = Reply::json(&admin::RevokeBody {
                device_id: id.to_string(),
                revoked: true,
                already: !changed,
            });
            r.note = format!("revoked {}", printable(id));
            r
        }
    };
    reply.headers.push(("Cache-Control", "no-store".into()));
    Ok(reply)
}

/// A dashboard request (`super::web`: pages, the admin's login and forms), answered as HTML
/// with the dashboard's security headers.
fn dashboard_route(
    store: &Store,
    shared: &Shared,
    req: &Head,
    body: &mut dyn Body,
    method: &Method,
    path: &str,
) -> Reply {
    let header = |name: &str| req.header(name);
    let request = web::Request {
        verb: match method {
            Method::Get | Method::Head => web::Verb::Read,
            Method::Post => web::Verb::Post,
            Method::Other(_) => web::Verb::Other,
        },
        path,
        query: &req.query,
        ip: req.client_ip(),
        header: &header,
    };
    let ctx = web::Ctx {
        settings: &shared.dashboard,
        sessions: &shared.sessions,
        address: &shared.rates.address,
        tls: shared.tls,
    };
    let page = match store.db() {
        Ok(mut db) => web::answer(&mut db, &ctx, &request, &mut |max| body.read(max)),
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

fn enrol_route(store: &mut Store, shared: &Shared, body: &mut dyn Body) -> Result<Reply, Refusal> {
    let body = body.read(MAX_ENROL_BYTES)?;
    let er: EnrolRequest = serde_json::from_slice(&body).map_err(|e| {
        Refusal::new(
            400,
            ErrorCode::BadJson,
            format!("not an enrolment request: {e}"),
        )
    })?;
    let mut ok = enrol::enrol(store, &shared.key, &er)?;
    ok.tls_ca.clone_from(&shared.office_ca);
    let mut r = Reply::json(&ok);
    r.note = format!("enrolled {} ({})", ok.device_id, printable(&er.officer));
    // Signed like every answer that counts, so a device that knows the server's id beforehand
    // (`enrol --expect-server-id`) can tell the sealing key, device id and office CA are its.
    Ok(with_signature(r, &shared.key))
}

/// `r` with `X-Ikd-Signature`, the server key's signature of its body (`/v1/health` too, so a
/// laptop that knows the server id can trust the office CA in it).
fn with_signature(mut r: Reply, key: &KeyPair) -> Reply {
    r.signature = Some(B64.encode(key.sign(&protocol::signed_digest(&r.body))));
    r
}

/// The body of a request a device signs (a batch, the activated list), read only once the
/// device is known and not revoked (so a stranger's body is never waited for), and returned
/// only when `X-Ikd-Signature` is the device's signature of it; then the device's allowance is
/// spent. A refusal here counts against the sender's address.
fn signed_by_device(
    store: &Store,
    shared: &Shared,
    req: &Head,
    body: &mut dyn Body,
    max: u64,
) -> Result<Vec<u8>, Refusal> {
    let device = req.header(protocol::H_DEVICE).unwrap_or("");
    // Kept in the (bounded) refusal log, as ingest's refusals are.
    let note = |r: &Refusal| {
        let batch = req
            .header(protocol::H_BATCH)
            .filter(|b| !b.is_empty() && b.len() <= 64);
        let dev = Some(device).filter(|d| !d.is_empty() && d.len() <= 64);
        store.note_reject(dev, batch, None, r.code.as_str(), &r.message);
    };
    let refused = |r: Refusal| {
        let _ = shared.rates.address.take(&req.client_ip());
        note(&r);
        r
    };
    let public = store.enrolled_key(device).map_err(|r| {
        if r.code == ErrorCode::DeviceUnknown {
            refused(r)
        } else {
            note(&r);
            r
        }
    })?;
    let bytes = body.read(max)?;
    let signature = B64
        .decode(req.header(protocol::H_SIGNATURE).unwrap_or("").trim())
        .unwrap_or_default();
    if !crate::crypto::verify(&public, &protocol::signed_digest(&bytes), &signature) {
        return Err(refused(Refusal::new(
            401,
            ErrorCode::BadSignature,
            "the signature is missing or does not match the body",
        )));
    }
    shared.rates.device.take(device).map_err(rate_limited)?;
    Ok(bytes)
}

fn batch_route(
    store: &mut Store,
    shared: &Shared,
    req: &Head,
    body: &mut dyn Body,
) -> Result<Reply, Refusal> {
    let body = signed_by_device(store, shared, req, body, shared.limits.max_body_bytes)?;
    let header = |name: &'static str| req.header(name).unwrap_or_default().to_string();
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
    let since = req
        .header(protocol::H_ACTIVATED_SINCE)
        .and_then(|v| v.trim().parse::<i64>().ok());
    let a = ingest::ingest_with(store, &shared.key, &shared.limits, &inc, since)?;
    let s = &a.response.summary;
    let note = format!(
        "device={device} batch={batch} records={} accepted={} duplicate={} conflict={} rejected={}{}",
        a.response.results.len(),
        s.accepted,
        s.duplicate,
        s.conflict,
        s.rejected,
        if a.replayed { " replay" } else { "" }
    );
    Ok(answer_reply(a, gzip_ok, note))
}

/// A journalled batch answer as sent: the gzip form when the client accepts it (and the journal
/// has it), signed over its bytes.
fn answer_reply(a: ingest::Answer, gzip_ok: bool, note: String) -> Reply {
    let (body, signature, headers) = match a.gzip {
        Some((gz, sig)) if gzip_ok => (gz, sig, vec![("Content-Encoding", "gzip".to_string())]),
        _ => (a.body, a.signature, vec![]),
    };
    Reply {
        status: 200,
        note,
        body,
        signature: Some(signature),
        content_type: "application/json",
        headers,
    }
}

/// True when an `Accept-Encoding` value lists `gzip` (or `*`) without `q=0`.
pub fn accepts_gzip(value: &str) -> bool {
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

fn activated_route(
    store: &Store,
    shared: &Shared,
    req: &Head,
    body: &mut dyn Body,
) -> Result<Reply, Refusal> {
    let body = signed_by_device(store, shared, req, body, MAX_ENROL_BYTES)?;
    let header = |name: &'static str| req.header(name).unwrap_or_default().to_string();
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
