//! The HTTP client of the district server (blocking `ureq`, rustls): health, enrolment, and
//! sending one journalled batch. Only an answer signed by the enrolled server key, naming the
//! batch that was sent, counts as an answer; anything else is a failed attempt. Retries use
//! exponential backoff with full jitter.
//!
//! Transport: `https://` is checked against the public web roots, or only against the
//! certificates of `sync.ca_file` when set (a district's own CA or self-signed certificate).
//! Plain `http://` is allowed to a loopback address; to any other host only with
//! `sync.allow_plain_http = true`, with a warning each time. A `429` is a wait (its
//! `Retry-After`), not a failure.
use crate::config::SyncConfig;
use crate::crypto;
use crate::error::{AppError, Kind};
use crate::field::outbox::Batch;
use crate::field::store::Store;
use crate::protocol::{self, BatchResponse, EnrolRequest, EnrolResponse, ErrorBody, Health};
use crate::tr;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Largest answer read from the server, and largest once gunzipped (a batch answer of 5,000
/// records is ~330 KB as JSON, ~40 KB as gzip).
const MAX_ANSWER_BYTES: u64 = 16 * 1024 * 1024;
/// Longest `Retry-After` honoured (a longer one is waited this long, then retried).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Where this device is enrolled, as kept in the field database's meta table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Enrolment {
    pub server_url: String,
    pub server_id: String,
    pub server_public_key: String,
    pub enrolled_at: String,
}

const M_URL: &str = "sync.server_url";
const M_ID: &str = "sync.server_id";
const M_KEY: &str = "sync.server_public_key";
const M_AT: &str = "sync.enrolled_at";
/// Last time every pending record got an answer, and its summary line.
pub const M_LAST_OK: &str = "sync.last_ok_at";
pub const M_LAST_SUMMARY: &str = "sync.last_summary";

impl Enrolment {
    pub fn load(store: &Store) -> Result<Option<Enrolment>, AppError> {
        let (Some(server_url), Some(server_id), Some(server_public_key)) =
            (store.meta(M_URL)?, store.meta(M_ID)?, store.meta(M_KEY)?)
        else {
            return Ok(None);
        };
        Ok(Some(Enrolment {
            server_url,
            server_id,
            server_public_key,
            enrolled_at: store.meta(M_AT)?.unwrap_or_default(),
        }))
    }

    /// Stores the enrolment and its audit line in one transaction (never half an enrolment).
    pub fn save(&self, store: &Store) -> Result<(), AppError> {
        let dbe = |e| crate::field::store::db_error(store.path(), e);
        let tx = store.conn().unchecked_transaction().map_err(dbe)?;
        for (k, v) in [
            (M_URL, &self.server_url),
            (M_ID, &self.server_id),
            (M_KEY, &self.server_public_key),
            (M_AT, &self.enrolled_at),
        ] {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [k, v.as_str()],
            )
            .map_err(dbe)?;
        }
        tx.execute(
            "INSERT INTO audit (at, action, detail) VALUES (?1, 'enrol', ?2)",
            [
                self.enrolled_at.as_str(),
                &format!("server {} at {}", self.server_id, self.server_url),
            ],
        )
        .map_err(dbe)?;
        tx.commit().map_err(dbe)
    }

    pub fn key(&self) -> Option<[u8; crypto::PUBLIC_KEY_LEN]> {
        crypto::parse_public_hex(&self.server_public_key)
    }
}

/// Why an exchange did not produce an answer.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Nothing usable came back: no connection, reset, timeout, or a reply that was not the
    /// district server's protocol. Worth retrying later.
    Transient(String),
    /// The district server answered 5xx/408: busy or failing, nothing committed.
    Busy(String),
    /// The district server answered `429 rate_limited`: wait `retry_after` (when it said how
    /// long) and send the same bytes again.
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// The TLS connection was refused because the server's certificate is not trusted
    /// (expired, unknown issuer, wrong name): nothing was sent. Retrying the same route will
    /// not help until the certificate, `sync.ca_file` or the laptop's clock is put right (or a
    /// hotspot that intercepts HTTPS is logged into).
    Certificate(String),
    /// A 200 whose signature does not verify with the enrolled server key (a captive portal or
    /// proxy). Worth retrying once the network is really online.
    Unsigned(String),
    /// The district server refused the request (a 4xx with its error body): retrying the same
    /// bytes will not help.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

impl Failure {
    pub fn retryable(&self) -> bool {
        !matches!(self, Failure::Refused { .. } | Failure::Certificate(_))
    }

    /// How long the server asked the client to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Transient(s)
            | Failure::Unsigned(s)
            | Failure::Busy(s)
            | Failure::Certificate(s) => write!(f, "{s}"),
            Failure::RateLimited {
                retry_after,
                message,
            } => match retry_after {
                Some(d) => write!(f, "429 rate_limited ({}s): {message}", d.as_secs()),
                None => write!(f, "429 rate_limited: {message}"),
            },
            Failure::Refused {
                status,
                code,
                message,
            } => write!(f, "{status} {code}: {message}"),
        }
    }
}

/// Checks and normalises a server URL (`http://` or `https://`, no trailing slash).
pub fn normalise_url(url: &str) -> Result<String, AppError> {
    let u = url.trim().trim_end_matches('/');
    let ok = (u.starts_with("http://") || u.starts_with("https://")) && u.len() > 8;
    if !ok {
        return Err(AppError::usage(tr!(
            "Alamat server '{url}' tidak dikenali.",
            "Server address '{url}' is not understood."
        ))
        .hint(tr!(
            "Tulis lengkap dengan http:// atau https://, mis. https://dukcapil.example.go.id",
            "Write it in full with http:// or https://, e.g. https://dukcapil.example.go.id"
        )));
    }
    Ok(u.to_string())
}

/// The host of a normalised URL, without port or IPv6 brackets.
fn url_host(url: &str) -> Option<String> {
    let uri: ureq::http::Uri = url.parse().ok()?;
    let host = uri.host()?;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
}

/// True for `localhost` and loopback addresses (127.0.0.0/8, ::1): traffic that never leaves
/// the machine.
pub fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// How the client connects: from `[sync]` in config.toml.
#[derive(Debug, Clone)]
pub struct Transport {
    /// Bounds connecting, each read and write (a stalled link), and the wait for the answer.
    pub timeout: Duration,
    /// PEM certificates to trust instead of the public web roots (`sync.ca_file`).
    pub ca_file: Option<std::path::PathBuf>,
    /// `sync.allow_plain_http`: plain `http://` to a host that is not loopback.
    pub allow_plain_http: bool,
}

impl Transport {
    /// From `[sync]`; a relative `ca_file` is relative to the data directory.
    pub fn from_config(c: &SyncConfig, data_dir: &Path) -> Transport {
        let ca = c.ca_file.trim();
        Transport {
            timeout: Duration::from_secs(c.timeout_secs.max(1)),
            ca_file: (!ca.is_empty()).then(|| data_dir.join(ca)),
            allow_plain_http: c.allow_plain_http,
        }
    }
}

/// The root certificates of `sync.ca_file`.
fn load_ca_file(path: &Path) -> Result<ureq::tls::RootCerts, AppError> {
    let bad = |why: String| {
        AppError::usage(tr!(
            "sync.ca_file {} tidak bisa dipakai: {why}",
            "sync.ca_file {} cannot be used: {why}",
            path.display()
        ))
        .hint(tr!(
            "Isinya harus sertifikat PEM (-----BEGIN CERTIFICATE-----) dari CA atau server Dinas; minta ke admin Dinas, atau kosongkan sync.ca_file untuk memakai sertifikat publik.",
            "It must hold PEM certificates (-----BEGIN CERTIFICATE-----) of the district's CA or server; ask the district admin, or leave sync.ca_file empty to use public certificates."
        ))
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(bad(e.to_string())),
        }
    }
    if certs.is_empty() {
        return Err(bad(tr!(
            "tidak ada sertifikat di dalamnya",
            "it holds no certificate"
        )));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

/// Refuses plain `http://` to a host that is not loopback unless it is allowed; warns when it
/// is allowed.
fn check_plain_http(base: &str, allowed: bool) -> Result<(), AppError> {
    if !base.starts_with("http://") {
        return Ok(());
    }
    let host = url_host(base).unwrap_or_default();
    if is_loopback_host(&host) {
        return Ok(());
    }
    if !allowed {
        return Err(AppError::usage(tr!(
            "Menolak HTTP tanpa enkripsi ke {base}: data pribadi akan terbaca di jaringan.",
            "Refusing unencrypted HTTP to {base}: personal data would be readable on the network."
        ))
        .hint(tr!(
            "Pakai alamat https:// server Dinas. Hanya jika jaringannya memang tertutup dan aman, setel sync.allow_plain_http = true di config.toml.",
            "Use the district server's https:// address. Only if the network really is closed and safe, set sync.allow_plain_http = true in config.toml."
        )));
    }
    eprintln!(
        "{}",
        tr!(
            "PERINGATAN: sinkron ke {base} tanpa enkripsi (sync.allow_plain_http = true); siapa pun di jaringan bisa membaca data yang dikirim.",
            "WARNING: syncing with {base} unencrypted (sync.allow_plain_http = true); anyone on the network can read what is sent."
        )
    );
    Ok(())
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
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
    /// A client with the default transport: public web roots, plain HTTP only to loopback.
    /// `timeout` bounds connecting, each read and write (a stalled link), and the wait for the
    /// server's answer; a slow link that keeps moving is not cut off.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Client, AppError> {
        Client::with_transport(
            base_url,
            &Transport {
                timeout,
                ca_file: None,
                allow_plain_http: false,
            },
        )
    }

    pub fn with_transport(base_url: &str, t: &Transport) -> Result<Client, AppError> {
        let base = normalise_url(base_url)?;
        check_plain_http(&base, t.allow_plain_http)?;
        let roots = match &t.ca_file {
            Some(path) => load_ca_file(path)?,
            None => ureq::tls::RootCerts::WebPki,
        };
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(roots)
            .build();
        let timeout = t.timeout;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_per_write(Some(timeout))
            .timeout_recv_response(Some(timeout))
            // The signature covers the answer bytes exactly as the server sent them; a batch
            // request asks for gzip itself (ureq is built without its gzip feature, so it never
            // gunzips behind our back: see `answer_json`).
            .accept_encoding("identity")
            .max_redirects(0)
            .user_agent(concat!("ikd-field/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Client { agent, base })
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
            .map_err(|e| Failure::Transient(tr!("jawaban terputus: {e}", "answer cut off: {e}")))?;
        Ok(Reply {
            status,
            signature,
            encoding,
            retry_after,
            body,
        })
    }

    fn transport(e: ureq::Error) -> Failure {
        match certificate_problem(&e) {
            Some(why) => Failure::Certificate(why),
            None => Failure::Transient(e.to_string()),
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
        let transient_code = |c: &str| matches!(c, "incomplete_body" | "rate_limited");
        match parsed {
            Some(e)
                if (400..500).contains(&r.status)
                    && r.status != 429
                    && r.status != 408
                    && !transient_code(&e.error.code) =>
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
        let r = Self::exchange(
            self.agent
                .get(format!("{}{}", self.base, protocol::PATH_HEALTH))
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
        Ok(h)
    }

    /// Enrols with `req`; returns the answer and whether it is signed by the server key it
    /// names (servers since enrolment pinning sign it; [`crate::field::pin`] requires it).
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

    /// Sends one batch; returns the server's answer only if it is signed by `server_key` and
    /// names this batch, with the answer's size in bytes as received (gzip when the server
    /// compressed it).
    pub fn send_batch(
        &self,
        batch: &Batch,
        device_id: &str,
        server_key: &[u8; crypto::PUBLIC_KEY_LEN],
    ) -> Result<(BatchResponse, u64), Failure> {
        self.send_signed(
            &batch.id,
            &batch.body,
            &batch.signature,
            device_id,
            server_key,
        )
    }

    /// [`Client::send_batch`] of any journalled batch: its id, gzip body and base64 signature as
    /// cut (the field kit's outbox, a district server forwarding to its province).
    pub fn send_signed(
        &self,
        batch_id: &str,
        body: &[u8],
        signature: &str,
        device_id: &str,
        server_key: &[u8; crypto::PUBLIC_KEY_LEN],
    ) -> Result<(BatchResponse, u64), Failure> {
        let r = Self::exchange(
            self.agent
                .post(format!("{}{}", self.base, protocol::PATH_BATCHES))
                .header("Content-Type", "application/json")
                .header("Content-Encoding", "gzip")
                .header("Accept-Encoding", "gzip")
                .header(protocol::H_DEVICE, device_id)
                .header(protocol::H_BATCH, batch_id)
                .header(protocol::H_SIGNATURE, signature)
                .send(body),
        )?;
        if !signed_by(server_key, &r) {
            return Err(Failure::Unsigned(tr!(
                "jawaban 200 tanpa tanda tangan server Dinas (halaman login hotspot atau proxy?)",
                "a 200 answer not signed by the district server (a hotspot login page or proxy?)"
            )));
        }
        let json = answer_json(&r)?;
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

/// Why the server's certificate was refused, when that is why the connection failed.
fn certificate_problem(e: &ureq::Error) -> Option<String> {
    use rustls::CertificateError as C;
    let rustls_error = match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    }?;
    let rustls::Error::InvalidCertificate(c) = rustls_error else {
        return None;
    };
    let why = match c {
        C::Expired | C::ExpiredContext { .. } => tr!(
            "sertifikat server sudah kedaluwarsa (atau jam laptop salah)",
            "the server's certificate has expired (or the laptop's clock is wrong)"
        ),
        C::NotValidYet | C::NotValidYetContext { .. } => tr!(
            "sertifikat server belum berlaku (periksa jam laptop)",
            "the server's certificate is not valid yet (check the laptop's clock)"
        ),
        C::UnknownIssuer => tr!(
            "sertifikat server tidak dikenal (dibuat sendiri, atau jaringan ini menyadap HTTPS)",
            "the server's certificate is not trusted (self-made, or this network intercepts HTTPS)"
        ),
        C::NotValidForName | C::NotValidForNameContext { .. } => tr!(
            "sertifikat server untuk nama lain",
            "the server's certificate is for another name"
        ),
        other => tr!(
            "sertifikat server ditolak: {other:?}",
            "the server's certificate was refused: {other:?}"
        ),
    };
    Some(why)
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

/// How often and how patiently to retry.
#[derive(Debug, Clone)]
pub struct Retry {
    pub max_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Retry {
    /// The wait before attempt `attempt + 1` (attempt counts from 1): exponential, capped, with
    /// full jitter in its upper half so many laptops do not retry in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let cap = exp.min(self.max);
        let half = cap / 2;
        let jitter = getrandom::u32().unwrap_or(0) as f64 / u32::MAX as f64;
        half + half.mul_f64(jitter)
    }
}

/// Sleeps `d`, waking early (false) when `stop` is set.
pub fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let until = std::time::Instant::now() + d;
    while std::time::Instant::now() < until {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep((until - std::time::Instant::now()).min(Duration::from_millis(50)));
    }
    !stop.load(Ordering::Relaxed)
}

/// The user-facing error for a refusal by the district server.
pub fn refusal_error(status: u16, code: &str, message: &str) -> AppError {
    let (kind, text, hint) = match code {
        "device_revoked" => (
            Kind::Other,
            tr!(
                "Perangkat ini sudah dicabut oleh admin Dinas; server menolak kiriman.",
                "This device was revoked by the district admin; the server refuses its batches."
            ),
            tr!(
                "Catatan tetap aman di laptop ini. Hubungi admin Dinas untuk mendaftar ulang (ikd-field enrol).",
                "The records are safe on this laptop. Ask the district admin to enrol it again (ikd-field enrol)."
            ),
        ),
        "device_unknown" => (
            Kind::Other,
            tr!(
                "Server tidak mengenal perangkat ini.",
                "The server does not know this device."
            ),
            tr!(
                "Minta token ke admin Dinas lalu: ikd-field enrol --server URL --token TOKEN",
                "Ask the district admin for a token, then: ikd-field enrol --server URL --token TOKEN"
            ),
        ),
        "token_unknown" | "token_used" | "token_expired" => (
            Kind::Other,
            match code {
                "token_used" => tr!(
                    "Token pendaftaran sudah pernah dipakai.",
                    "The enrolment token was already used."
                ),
                "token_expired" => tr!(
                    "Token pendaftaran sudah kedaluwarsa.",
                    "The enrolment token has expired."
                ),
                _ => tr!(
                    "Token pendaftaran tidak dikenal server.",
                    "The server does not know that enrolment token."
                ),
            },
            tr!(
                "Minta token baru ke admin Dinas (ikd-field server token) dan periksa ketikannya.",
                "Ask the district admin for a new token (ikd-field server token) and check the spelling."
            ),
        ),
        "batch_reused" => (
            Kind::Duplicate,
            tr!(
                "Server sudah menerima batch dengan id yang sama tetapi isi berbeda.",
                "The server already has a batch with this id but different content."
            ),
            tr!(
                "Jangan salin folder data antar laptop. Hubungi admin Dinas; catatan tetap aman di sini.",
                "Do not copy data folders between laptops. Call the district admin; the records are safe here."
            ),
        ),
        "body_too_large" | "decompressed_too_large" | "too_many_records" => (
            Kind::Other,
            tr!(
                "Batch terlalu besar untuk server ini.",
                "The batch is too large for this server."
            ),
            tr!(
                "Minta admin Dinas menaikkan batas server (max_body_bytes / max_batch_records).",
                "Ask the district admin to raise the server limits (max_body_bytes / max_batch_records)."
            ),
        ),
        _ => (
            Kind::Other,
            tr!(
                "Server menolak permintaan.",
                "The server refused the request."
            ),
            tr!(
                "Catatan tetap aman di laptop ini. Sampaikan pesan ini ke admin Dinas.",
                "The records are safe on this laptop. Show this message to the district admin."
            ),
        ),
    };
    AppError::new(kind, format!("{text} ({status} {code}: {message})"))
        .hint(hint)
        .details(serde_json::json!({"status": status, "code": code, "message": message}))
}

/// The user-facing error when the server could not be reached (exit 5).
pub fn unreachable_error(url: &str, why: &Failure, pending: i64) -> AppError {
    let what = match why {
        Failure::Certificate(_) => tr!(
            "Koneksi aman ke {url} ditolak: {why}.",
            "The secure connection to {url} was refused: {why}."
        ),
        Failure::Unsigned(_) => tr!(
            "Jawaban dari {url} bukan dari server Dinas ({why}).",
            "The answer from {url} is not from the district server ({why})."
        ),
        Failure::Busy(_) => tr!(
            "Server {url} sedang sibuk atau bermasalah ({why}).",
            "Server {url} is busy or failing ({why})."
        ),
        _ => tr!(
            "Server {url} tidak terjangkau ({why}).",
            "Server {url} is unreachable ({why})."
        ),
    };
    AppError::new(
        Kind::Unreachable,
        format!(
            "{what} {}",
            tr!(
                "Tidak ada yang hilang: {pending} catatan tetap menunggu di laptop ini; coba lagi nanti.",
                "Nothing lost: {pending} records stay pending on this laptop; run again later."
            )
        ),
    )
    .hint(match why {
        Failure::Certificate(_) => tr!(
            "Periksa jam laptop. Di hotspot, masuk (login) dulu lewat browser. Jika Dinas memakai sertifikat sendiri, setel sync.ca_file ke berkas sertifikat dari admin Dinas. Jangan matikan pemeriksaan ini.",
            "Check the laptop's clock. On a hotspot, log in through the browser first. If the district uses its own certificate, set sync.ca_file to the certificate file from the district admin. Do not switch this check off."
        ),
        _ => tr!(
            "Jalankan lagi 'ikd-field sync' saat ada sinyal, atau biarkan 'ikd-field sync --watch' menunggu.",
            "Run 'ikd-field sync' again when there is signal, or leave 'ikd-field sync --watch' waiting."
        ),
    })
    .details(serde_json::json!({"server": url, "pending": pending, "reason": why.to_string(), "certificate": matches!(why, Failure::Certificate(_))}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let r = Retry {
            max_attempts: 6,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for attempt in 1..10 {
            let d = r.delay(attempt);
            let full = Duration::from_millis(100 * (1 << (attempt - 1))).min(r.max);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn urls_need_a_scheme() {
        assert_eq!(
            normalise_url(" http://127.0.0.1:8080/ ").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(normalise_url("dukcapil.example").is_err());
    }

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

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:8080",
            "http://127.9.9.9",
            "https://dukcapil.example.go.id",
            "https://10.0.0.5:8443",
        ] {
            assert!(check_plain_http(ok, false).is_ok(), "{ok}");
        }
        for refused in [
            "http://dukcapil.example.go.id",
            "http://10.0.0.5:8080",
            "http://[fe80::1]:8080",
            "http://localhost.example.com",
        ] {
            let e = check_plain_http(refused, false).unwrap_err();
            assert_eq!(e.kind, Kind::Usage, "{refused}");
            assert!(check_plain_http(refused, true).is_ok(), "{refused}");
        }
    }
}
