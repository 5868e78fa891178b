//! The signed exchanges with a district (or province) server over blocking `ureq` and rustls:
//! health, enrolment, one journalled batch, the activated-NIK list. Only an answer signed by the
//! enrolled server key, naming the batch that was sent, counts as an answer; anything else is a
//! failed attempt. A `429` is a wait (its `Retry-After`), not a failure.
use super::failure::Failure;
use super::transport::{Transport, certificate_problem, check_plain_http, normalise_url};
use crate::crypto;
use crate::error::AppError;
use crate::protocol::{
    self, BatchResponse, EnrolRequest, EnrolResponse, ErrorBody, ErrorCode, Health,
};
use crate::tr;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::time::Duration;

/// records is ~330 KB as JSON, ~40 KB as gzip).
const MAX_ANSWER_BYTES: u64 = 16 * 1024 * 1024;
/// Longest `Retry-After` honoured (a longer one is waited this long, then retried).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

pub struct Client {
    agent: ureq::Agent,
    base: String,
    /// Its settings (`answer_timeout`: the wait for an answer once a request is sent).
    transport: Transport,
}

/// A response read in full: status, signature header, `Content-Encoding`, `Retry-After`, body
/// as received.
struct Reply {
    status: u16,
    signature: Option<String>,
    encoding: Option<String>,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

impl Client {
    /// A client with the default transport: certificate store of the operating system, plain HTTP only to loopback.
    /// `timeout` bounds connecting, each read and write (a stalled link), and the wait for the
    /// server's answer; a slow link that keeps moving is not cut off.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Client, AppError> {
        Client::with_transport(
            base_url,
            &Transport {
                timeout,
                connect_timeout: timeout,
                answer_timeout: timeout,
                ca_file: None,
                allow_plain_http: false,
                office_ca: None,
            },
        )
    }

    pub fn with_transport(base_url: &str, t: &Transport) -> Result<Client, AppError> {
        Self::build(base_url, t, false)
    }

    /// This client, trusting exactly the office CA `ca_pem` (and `sync.ca_file`).
    pub fn trusting(&self, ca_pem: &str) -> Result<Client, AppError> {
        let t = Transport {
            office_ca: Some(ca_pem.to_string()),
            ..self.transport.clone()
        };
        Self::build(&self.base, &t, false)
    }

    /// This client without any check of the server's certificate: only for reading the signed
    /// `/v1/health` of a server whose office CA is not known yet (field/office_ca.rs); nothing
    /// private is ever sent through it.
    pub(crate) fn unverified(&self) -> Result<Client, AppError> {
        Self::build(&self.base, &self.transport, true)
    }

    fn build(base_url: &str, t: &Transport, unverified: bool) -> Result<Client, AppError> {
        let base = normalise_url(base_url)?;
        check_plain_http(&base, t.allow_plain_http)?;
        let roots = t.roots()?;
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(roots)
            .disable_verification(unverified)
            .build();
        let timeout = t.timeout;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_connect(Some(t.connect_timeout))
            .timeout_per_read(Some(timeout))
            .timeout_per_write(Some(timeout))
            .timeout_recv_response(Some(t.answer_timeout))
            // The signature covers the answer bytes exactly as the server sent them; a batch
            // request asks for gzip itself (ureq is built without its gzip feature, so it never
            // gunzips behind our back: see `answer_json`).
            .accept_encoding("identity")
            .max_redirects(0)
            .user_agent(concat!("ikd-field/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client {
            agent,
            base,
            transport: t.clone(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The reply to a request, read in full; an error unless it is a 200.
    fn exchange(
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, Failure> {
        let r = Self::read(sent.map_err(Self::transport)?)?;
        if r.status != 200 {
            return Err(Self::not_ok(&r));
        }
        Ok(r)
    }

    fn read(mut resp: ureq::http::Response<ureq::Body>) -> Result<Reply, Failure> {
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (signature, encoding) = (header(protocol::H_SIGNATURE), header("Content-Encoding"));
        let retry_after = header("Retry-After")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec()
            .map_err(|e| {
                let why = tr!("jawaban terputus: {e}", "answer cut off: {e}");
                match e {
                    ureq::Error::Timeout(_) => Failure::Lost(why),
                    _ => Failure::Unanswered(why),
                }
            })?;
        Ok(Reply {
            status,
            signature,
            encoding,
            retry_after,
            body,
        })
    }

    /// A failed exchange: the certificate, no connection at all (nothing was sent), or a
    /// connection lost after it was made (the request may have arrived: [`Failure::Lost`]).
    fn transport(e: ureq::Error) -> Failure {
        Self::transport_after(e, false)
    }

    /// As [`Client::transport`], knowing whether the whole request body was handed to the
    /// connection (`body_sent`): a connection that dropped after that is
    /// [`Failure::Unanswered`]; an answer that did not come in time stays [`Failure::Lost`]
    /// (the server may still be at work: its answer is asked for after the backoff).
    fn transport_after(e: ureq::Error, body_sent: bool) -> Failure {
        use ureq::Timeout as T;
        if let Some(why) = certificate_problem(&e) {
            return Failure::Certificate(why);
        }
        let not_connected = match &e {
            ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Timeout(T::Resolve | T::Connect) => true,
            ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
            _ => false,
        };
        let dropped_after_all = body_sent && !matches!(e, ureq::Error::Timeout(_));
        if not_connected {
            Failure::Transient(e.to_string())
        } else if dropped_after_all {
            Failure::Unanswered(e.to_string())
        } else {
            Failure::Lost(e.to_string())
        }
    }

    /// A non-200 reply: the server's own refusal (4xx with its error body) or a transient failure.
    fn not_ok(r: &Reply) -> Failure {
        let parsed: Option<ErrorBody> = serde_json::from_slice(&r.body).ok();
        if r.status == 429 {
            return Failure::RateLimited {
                retry_after: r.retry_after,
                message: parsed.map(|e| e.error.message).unwrap_or_default(),
            };
        }
        // The server's own words for a network problem (the body stalled or ended early) or a
        // busy moment are worth retrying; other 4xx refusals are not.
        match parsed {
            Some(e)
                if (400..500).contains(&r.status)
                    && r.status != 429
                    && r.status != 408
                    && !e.error.code.is_transient() =>
            {
                Failure::Refused {
                    status: r.status,
                    code: e.error.code,
                    message: e.error.message,
                }
            }
            Some(e) => Failure::Transient(format!(
                "{} {}: {}",
                r.status, e.error.code, e.error.message
            )),
            None => Failure::Transient(tr!(
                "jawaban {} yang bukan dari server ikd-field",
                "a {} answer that is not from an ikd-field server",
                r.status
            )),
        }
    }

    pub fn health(&self) -> Result<Health, Failure> {
        self.health_signed().map(|(h, _)| h)
    }

    /// `/v1/health` and whether it is signed by the server key it names (servers since the
    /// office CA sign it).
    pub fn health_signed(&self) -> Result<(Health, bool), Failure> {
        self.health_challenged("")
    }

    /// [`Self::health_signed`] asking the server to sign `challenge` (hex) into its answer
    /// (`Health::challenge`): a server since the challenge echoes it, an old answer cannot.
    pub fn health_challenged(&self, challenge: &str) -> Result<(Health, bool), Failure> {
        let query = if challenge.is_empty() {
            String::new()
        } else {
            format!("?challenge={challenge}")
        };
        let r = Self::exchange(
            self.agent
                .get(format!("{}{}{query}", self.base, protocol::PATH_HEALTH))
                .call(),
        )?;
        let h: Health = serde_json::from_slice(&r.body).map_err(|_| {
            Failure::Transient(tr!(
                "jawaban /v1/health bukan dari server ikd-field",
                "the /v1/health answer is not from an ikd-field server"
            ))
        })?;
        if !h.ok || h.protocol != protocol::VERSION {
            return Err(Failure::Transient(format!(
                "server protocol {} (ok={})",
                h.protocol, h.ok
            )));
        }
        let signed = crypto::parse_public_hex(&h.server_public_key).is_some_and(|k| {
            crypto::key_id(&k) == h.server_id.trim().to_ascii_lowercase() && signed_by(&k, &r)
        });
        Ok((h, signed))
    }

    /// Enrols with `req`; returns the answer and whether it is signed by the server key it
    /// names (servers since enrolment pinning sign it; [`super::pin`] requires it).
    pub fn enrol(&self, req: &EnrolRequest) -> Result<(EnrolResponse, bool), Failure> {
        let r = Self::exchange(
            self.agent
                .post(format!("{}{}", self.base, protocol::PATH_ENROL))
                .header("Content-Type", "application/json")
                .send(serde_json::to_vec(req).expect("request serialises")),
        )?;
        let ans: EnrolResponse = serde_json::from_slice(&r.body).map_err(|_| {
            Failure::Unsigned(tr!(
                "jawaban pendaftaran bukan dari server ikd-field",
                "the enrolment answer is not from an ikd-field server"
            ))
        })?;
        // The server id must be the id of the key it hands out.
        let key_ok = crypto::parse_public_hex(&ans.server_public_key)
            .is_some_and(|k| crypto::key_id(&k) == ans.server_id);
        if !key_ok {
            return Err(Failure::Unsigned(tr!(
                "kunci server dalam jawaban pendaftaran tidak cocok dengan id-nya",
                "the server key in the enrolment answer does not match its id"
            )));
        }
        let signed =
            crypto::parse_public_hex(&ans.server_public_key).is_some_and(|k| signed_by(&k, &r));
        Ok((ans, signed))
    }

    /// Sends one journalled batch: its id, gzip body and base64 signature as cut (the field kit's outbox, a district server forwarding to its province).
    /// With `activated_since`, asks for the district's activated-list delta from that cursor in
    /// the answer (`BatchResponse::activated`; a server before it leaves it out).
    pub fn send_signed(
        &self,
        batch_id: &str,
        body: &[u8],
        signature: &str,
        device_id: &str,
        server_key: &[u8; crypto::PUBLIC_KEY_LEN],
        activated_since: Option<i64>,
    ) -> Result<(BatchResponse, u64), Failure> {
        let b = (batch_id, body, signature);
        self.send_signed_within(b, device_id, server_key, activated_since, Duration::ZERO)
    }

    /// As [`Client::send_signed`] (`batch` = id, body, signature), waiting `upload` longer than
    /// the answer timeout for the answer: the time the body may still spend on a slow link once
    /// it is handed to the connection (the system's send buffer drains at the link's pace, and
    /// the answer timeout starts when it has taken the body).
    pub fn send_signed_within(
        &self,
        (batch_id, body, signature): (&str, &[u8], &str),
        device_id: &str,
        server_key: &[u8; crypto::PUBLIC_KEY_LEN],
        activated_since: Option<i64>,
        upload: Duration,
    ) -> Result<(BatchResponse, u64), Failure> {
        let mut req = self
            .agent
            .post(format!("{}{}", self.base, protocol::PATH_BATCHES))
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .header("Accept-Encoding", "gzip")
            .header(protocol::H_DEVICE, device_id)
            .header(protocol::H_BATCH, batch_id)
            .header(protocol::H_SIGNATURE, signature);
        if let Some(since) = activated_since {
            req = req.header(protocol::H_ACTIVATED_SINCE, since.to_string());
        }
        if !upload.is_zero() {
            req = req
                .config()
                .timeout_recv_response(Some(self.transport.answer_timeout + upload))
                .build();
        }
        // The body goes through a reader that tells afterwards whether all of it was handed to
        // the connection: a drop after that asks for the journalled answer at once.
        let mut counted = Counted { data: body, pos: 0 };
        let sent = req
            .header("Content-Length", body.len().to_string())
            .send(ureq::SendBody::from_reader(&mut counted));
        let body_sent = counted.pos == body.len();
        let r = Self::read(sent.map_err(|e| Self::transport_after(e, body_sent))?)?;
        if r.status != 200 {
            return Err(Self::not_ok(&r));
        }
        batch_answer(&r, batch_id, server_key)
    }

    /// `GET /v1/batches/{id}`: the answer the server journalled for a batch already sent (its
    /// id and the batch's own signature authenticate the request). `None` when the server has
    /// none (`404 batch_unknown`, or `404 not_found` from a server before this request): send
    /// the batch itself.
    pub fn stored_answer(
        &self,
        batch_id: &str,
        signature: &str,
        device_id: &str,
        server_key: &[u8; crypto::PUBLIC_KEY_LEN],
    ) -> Result<Option<(BatchResponse, u64)>, Failure> {
        let sent = self
            .agent
            .get(format!(
                "{}{}{batch_id}",
                self.base,
                protocol::PATH_BATCH_ANSWER_PREFIX
            ))
            .header("Accept-Encoding", "gzip")
            .header(protocol::H_DEVICE, device_id)
            .header(protocol::H_BATCH, batch_id)
            .header(protocol::H_SIGNATURE, signature)
            .call();
        let r = Self::read(sent.map_err(Self::transport)?)?;
        if r.status == 404 {
            let code = serde_json::from_slice::<ErrorBody>(&r.body).map(|e| e.error.code);
            if let Ok(ErrorCode::BatchUnknown | ErrorCode::NotFound) = code {
                return Ok(None);
            }
        }
        if r.status != 200 {
            return Err(Self::not_ok(&r));
        }
        batch_answer(&r, batch_id, server_key).map(Some)
    }
}

/// A request body read by the connection, counting what it took.
struct Counted<'a> {
    data: &'a [u8],
    pos: usize,
}

impl std::io::Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.data[self.pos..];
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// A batch answer that counts: signed by `server_key` over the bytes received, readable, and
/// naming `batch_id`. Returns it with the bytes received.
fn batch_answer(
    r: &Reply,
    batch_id: &str,
    server_key: &[u8; crypto::PUBLIC_KEY_LEN],
) -> Result<(BatchResponse, u64), Failure> {
    if !signed_by(server_key, r) {
        return Err(Failure::Unsigned(tr!(
            "jawaban 200 tanpa tanda tangan server Dinas (halaman login hotspot atau proxy?)",
            "a 200 answer not signed by the district server (a hotspot login page or proxy?)"
        )));
    }
    let json = answer_json(r)?;
    let ans: BatchResponse = serde_json::from_slice(&json).map_err(|e| {
        Failure::Transient(tr!(
            "jawaban bertanda tangan tidak terbaca: {e}",
            "signed answer unreadable: {e}"
        ))
    })?;
    if ans.batch_id != batch_id {
        return Err(Failure::Unsigned(tr!(
            "jawaban untuk batch lain ({})",
            "an answer for another batch ({})",
            ans.batch_id
        )));
    }
    Ok((ans, r.body.len() as u64))
}

impl Client {
    /// One page of `POST /v1/activated` from cursor `since`, signed by the device; accepted only
    /// when the answer is signed by `server_key`.
    pub fn activated(
        &self,
        key: &crypto::KeyPair,
        device_id: &str,
        server_key: &[u8; crypto::PUBLIC_KEY_LEN],
        since: i64,
    ) -> Result<protocol::ActivatedResponse, Failure> {
        let body = serde_json::to_vec(&protocol::ActivatedRequest {
            protocol: protocol::VERSION,
            device_id: device_id.to_string(),
            since,
            at: crate::timefmt::now_utc(),
        })
        .expect("request serialises");
        let sig = B64.encode(key.sign(&protocol::signed_digest(&body)));
        let r = Self::exchange(
            self.agent
                .post(format!("{}{}", self.base, protocol::PATH_ACTIVATED))
                .header("Content-Type", "application/json")
                .header(protocol::H_DEVICE, device_id)
                .header(protocol::H_SIGNATURE, &sig)
                .send(&body[..]),
        )?;
        if !signed_by(server_key, &r) {
            return Err(Failure::Unsigned(tr!(
                "daftar NIK teraktivasi tanpa tanda tangan server Dinas",
                "the activated-NIK list is not signed by the district server"
            )));
        }
        serde_json::from_slice(&answer_json(&r)?)
            .map_err(|e| Failure::Transient(format!("/v1/activated: {e}")))
    }
}

/// True when the reply carries `server_key`'s signature of SHA-256 of its body.
fn signed_by(server_key: &[u8; crypto::PUBLIC_KEY_LEN], r: &Reply) -> bool {
    r.signature
        .as_deref()
        .and_then(|s| B64.decode(s.trim()).ok())
        .is_some_and(|sig| crypto::verify(server_key, &protocol::signed_digest(&r.body), &sig))
}

/// The JSON of a signed answer (call after [`signed_by`]): the body as received, or gunzipped
/// with a size cap when the server sent `Content-Encoding: gzip`.
fn answer_json(r: &Reply) -> Result<std::borrow::Cow<'_, [u8]>, Failure> {
    use std::io::Read;
    match r.encoding.as_deref().map(str::trim) {
        None | Some("") | Some("identity") => Ok(std::borrow::Cow::Borrowed(&r.body)),
        Some(e) if e.eq_ignore_ascii_case("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&r.body[..])
                .take(MAX_ANSWER_BYTES + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    Failure::Transient(tr!(
                        "jawaban gzip bertanda tangan rusak: {e}",
                        "signed gzip answer is damaged: {e}"
                    ))
                })?;
            if out.len() as u64 > MAX_ANSWER_BYTES {
                return Err(Failure::Transient(tr!(
                    "jawaban server melebihi {} byte setelah dibuka",
                    "the server's answer expands past {} bytes",
                    MAX_ANSWER_BYTES
                )));
            }
            Ok(std::borrow::Cow::Owned(out))
        }
        Some(e) => Err(Failure::Transient(tr!(
            "jawaban dengan Content-Encoding tak dikenal: {}",
            "an answer with an unknown Content-Encoding: {}",
            e
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gzip_answer_is_gunzipped_with_a_cap() {
        let gz = |data: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            std::io::Write::write_all(&mut e, data).unwrap();
            e.finish().unwrap()
        };
        let reply = |encoding: Option<&str>, body: Vec<u8>| Reply {
            status: 200,
            signature: None,
            encoding: encoding.map(str::to_string),
            retry_after: None,
            body,
        };
        let json = br#"{"ok":true}"#;
        let r = reply(Some("gzip"), gz(json));
        assert_eq!(&*answer_json(&r).unwrap(), json);
        assert_eq!(&*answer_json(&reply(None, json.to_vec())).unwrap(), json);
        assert!(answer_json(&reply(Some("br"), json.to_vec())).is_err());
        assert!(answer_json(&reply(Some("gzip"), json.to_vec())).is_err());
        let bomb = gz(&vec![b' '; MAX_ANSWER_BYTES as usize + 10]);
        assert!(bomb.len() < 100_000);
        assert!(answer_json(&reply(Some("gzip"), bomb)).is_err());
    }

    #[test]
    fn a_drop_after_the_whole_body_is_unanswered_a_timeout_or_a_partial_send_is_lost() {
        use std::io::{Error as IoError, ErrorKind, Read};
        let reset = || ureq::Error::Io(IoError::from(ErrorKind::ConnectionReset));
        let timeout = || ureq::Error::Timeout(ureq::Timeout::RecvResponse);
        assert!(matches!(
            Client::transport_after(reset(), true),
            Failure::Unanswered(_)
        ));
        assert!(matches!(
            Client::transport_after(reset(), false),
            Failure::Lost(_)
        ));
        assert!(matches!(
            Client::transport_after(timeout(), true),
            Failure::Lost(_)
        ));
        assert!(matches!(
            Client::transport_after(ureq::Error::ConnectionFailed, false),
            Failure::Transient(_)
        ));
        // The counting reader hands over the body and tells when all of it is gone.
        let body = vec![7u8; 10_000];
        let mut c = Counted {
            data: &body,
            pos: 0,
        };
        let mut buf = [0u8; 4096];
        assert_eq!(c.read(&mut buf).unwrap(), 4096);
        assert_ne!(c.pos, body.len());
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert_eq!((c.pos, rest.len()), (body.len(), body.len() - 4096));
    }

    #[test]
    fn a_portal_page_or_unknown_server_is_retried_a_refusal_is_not() {
        let portal = Reply {
            status: 403,
            signature: None,
            encoding: None,
            retry_after: None,
            body: b"<html>login</html>".to_vec(),
        };
        assert!(Client::not_ok(&portal).retryable());
        let revoked = Reply {
            status: 403,
            signature: None,
            encoding: None,
            retry_after: None,
            body: br#"{"error":{"code":"device_revoked","message":"revoked"}}"#.to_vec(),
        };
        assert!(!Client::not_ok(&revoked).retryable());
        let stalled = Reply {
            status: 400,
            signature: None,
            encoding: None,
            retry_after: None,
            body: br#"{"error":{"code":"incomplete_body","message":"x"}}"#.to_vec(),
        };
        assert!(Client::not_ok(&stalled).retryable());
        let busy = Reply {
            status: 503,
            signature: None,
            encoding: None,
            retry_after: None,
            body: br#"{"error":{"code":"internal","message":"x"}}"#.to_vec(),
        };
        assert!(Client::not_ok(&busy).retryable());
        let limited = Reply {
            status: 429,
            signature: None,
            encoding: None,
            retry_after: Some(Duration::from_secs(3)),
            body: br#"{"error":{"code":"rate_limited","message":"x"}}"#.to_vec(),
        };
        let f = Client::not_ok(&limited);
        assert!(f.retryable());
        assert_eq!(f.retry_after(), Some(Duration::from_secs(3)));
        assert!(!Failure::Certificate("expired".into()).retryable());
    }
}
