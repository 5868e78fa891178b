//! Request bodies for the transport (`http.rs`), read on the connection's own task: the body a
//! route reads ([`HyperBody`]: read already, or asked for), the reading itself within its
//! deadline ([`read_body`]), and what is read of an unwanted body before a refusal ([`linger`]).
use super::Refusal;
use super::routes::Body;
use crate::protocol::ErrorCode;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::time::Duration;

/// A body must arrive within this long plus a second per [`MIN_BODY_RATE`] bytes: a client
/// trickling a few bytes a minute is cut off, while a batch on a poor link (32 KB/s) has ample
/// time.
pub const BODY_GRACE: Duration = Duration::from_secs(30);
pub const MIN_BODY_RATE: u64 = 1024;
/// How long a client refused for want of budget is asked to wait.
pub(super) const BUSY_RETRY: Duration = Duration::from_secs(60);
/// How long, and how much, of an unwanted body is read before a refusal (see [`linger`]).
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: u64 = 16 * 1024 * 1024;

/// The refusal of a request that found no room for its body before its deadline.
pub(super) fn busy() -> Refusal {
    Refusal::new(
        429,
        ErrorCode::RateLimited,
        format!(
            "the server is receiving too many large requests; try again in {} s (Retry-After)",
            BUSY_RETRY.as_secs()
        ),
    )
    .retry_after(BUSY_RETRY)
}

/// The deadline of a body of `len` bytes from now: [`BODY_GRACE`] plus a second per
/// [`MIN_BODY_RATE`] bytes.
pub(super) fn deadline(len: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + BODY_GRACE + Duration::from_secs(len / MIN_BODY_RATE)
}

/// Before refusing a request whose body was not read (too large, unknown device…), reads and
/// drops what the client is still sending, for [`LINGER`] at most and [`LINGER_BYTES`] at most,
/// so that it can read the refusal (closing on unread data resets the connection, and the
/// client would only see a broken pipe). Then the connection closes.
pub(super) async fn linger(mut body: Incoming) {
    let until = tokio::time::Instant::now() + LINGER;
    let mut seen = 0u64;
    while seen < LINGER_BYTES {
        match tokio::time::timeout_at(until, body.frame()).await {
            Ok(Some(Ok(f))) => seen += f.data_ref().map_or(0, |d| d.len() as u64),
            _ => break,
        }
    }
}

/// The request body as the route sees it: read already, or asked for (the route's answer is then
/// set aside, the body read on the connection's task and the route run again).
pub(super) struct HyperBody {
    pub(super) body: Option<Incoming>,
    /// The body as read before the route was called.
    pub(super) early: Option<Result<Vec<u8>, Refusal>>,
    /// `Content-Length` as sent.
    pub(super) length: Option<u64>,
    /// The route asked for the body, which was not read yet.
    pub(super) wanted: bool,
}

impl Body for HyperBody {
    fn read(&mut self, max: u64) -> Result<Vec<u8>, Refusal> {
        let Some(len) = self.length else {
            return Err(Refusal::new(
                411,
                ErrorCode::LengthRequired,
                "send the body with a Content-Length",
            ));
        };
        if len > max {
            return Err(Refusal::new(
                413,
                ErrorCode::BodyTooLarge,
                format!(
                    "the body is {len} bytes; at most {max} are accepted; send smaller batches"
                ),
            ));
        }
        if let Some(read) = self.early.take() {
            return read;
        }
        if self.body.is_none() {
            return Err(Refusal::new(
                400,
                ErrorCode::BadRequest,
                "the body was read already",
            ));
        }
        // Not a refusal the client sees: the transport reads the body and runs the route again.
        self.wanted = true;
        Err(Refusal::new(
            503,
            ErrorCode::IncompleteBody,
            "the body is read before the route goes on",
        ))
    }
}

/// A body of `len` bytes (its `Content-Length`), by `deadline` (see [`deadline`]).
pub(super) async fn read_body(
    mut body: Incoming,
    len: u64,
    deadline: tokio::time::Instant,
) -> Result<Vec<u8>, Refusal> {
    let mut out = Vec::with_capacity(len as usize);
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(Refusal::new(
                    400,
                    ErrorCode::IncompleteBody,
                    format!(
                        "the body came too slowly ({} of {len} bytes); send it again",
                        out.len()
                    ),
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(Refusal::new(
                    400,
                    ErrorCode::IncompleteBody,
                    format!("reading the body failed: {e}"),
                ));
            }
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            if out.len() as u64 + data.len() as u64 > len {
                return Err(Refusal::new(
                    400,
                    ErrorCode::BadRequest,
                    "the body is longer than its Content-Length",
                ));
            }
            out.extend_from_slice(&data);
        }
    }
    if out.len() as u64 != len {
        return Err(Refusal::new(
            400,
            ErrorCode::IncompleteBody,
            format!("the body ended after {} of {len} bytes", out.len()),
        ));
    }
    Ok(out)
}
