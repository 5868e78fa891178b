//! Why an exchange with a server did not produce an answer, and what the user is told.
use crate::error::{AppError, Kind};
use crate::protocol::ErrorCode;
use crate::tr;
use std::time::Duration;

/// Why an exchange did not produce an answer.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Nothing usable came back: no connection, reset, timeout, or a reply that was not the
    /// district server's protocol. Worth retrying later.
    Transient(String),
    /// The connection was made and the request (perhaps all of it) sent, then it dropped or
    /// the answer did not come in time: the server may have stored the batch and journalled its
    /// answer, so the next attempt first asks for that answer by batch id. Worth retrying.
    Lost(String),
    /// The whole request was sent, then the connection dropped or the answer did not come in
    /// time (or came cut off): the server may well have stored the batch, so its journalled
    /// answer is asked for by batch id at once, with no wait. Worth retrying.
    Unanswered(String),
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
        code: ErrorCode,
        message: String,
    },
}

impl Failure {
    /// What happened, in a few plain words for a person (the precise reason is its `Display`,
    /// for logs and `--json`).
    pub fn plain(&self) -> String {
        match self {
            Failure::Transient(_) => tr!(
                "tidak ada sinyal atau server tidak menjawab",
                "no signal, or the server does not answer"
            ),
            Failure::Lost(_) | Failure::Unanswered(_) => tr!(
                "sambungan putus atau jawaban server tidak datang",
                "the connection dropped or the server's answer did not come"
            ),
            Failure::Busy(_) => tr!("server sedang sibuk", "the server is busy"),
            Failure::RateLimited { .. } => tr!(
                "server meminta menunggu sebentar",
                "the server asks to wait a moment"
            ),
            Failure::Certificate(why) => why.clone(),
            Failure::Unsigned(_) => tr!(
                "jawaban bukan dari server Dinas (perlu login WiFi hotspot?)",
                "the answer is not from the district server (a WiFi hotspot login?)"
            ),
            Failure::Refused { .. } => tr!("ditolak server", "refused by the server"),
        }
    }

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
            | Failure::Lost(s)
            | Failure::Unanswered(s)
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

/// The user-facing error for a refusal by the district server.
pub fn refusal_error(status: u16, code: &ErrorCode, message: &str) -> AppError {
    let (kind, text, hint) = match code {
        ErrorCode::DeviceRevoked => (
            Kind::Other,
            tr!(
                "Perangkat ini sudah dicabut oleh admin Dinas; server menolak kiriman.",
                "This device was revoked by the district admin; the server refuses its batches."
            ),
            tr!(
                "Catatan yang belum terkirim tetap aman di laptop ini, tetapi server tidak menerimanya lagi dari laptop ini, dan laptop ini tidak bisa didaftarkan ulang dengan kuncinya (jangan coba ikd-field enrol). Hubungi admin Dinas dan bawa laptop ini ke kantor Dinas.",
                "The records not sent yet are safe on this laptop, but the server no longer takes them from it, and this laptop cannot be enrolled again with its key (do not try ikd-field enrol). Call the district admin and take this laptop to the district office."
            ),
        ),
        ErrorCode::DeviceUnknown => (
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
        ErrorCode::TokenUnknown | ErrorCode::TokenUsed | ErrorCode::TokenExpired => (
            Kind::Other,
            match code {
                ErrorCode::TokenUsed => tr!(
                    "Token pendaftaran sudah pernah dipakai.",
                    "The enrolment token was already used."
                ),
                ErrorCode::TokenExpired => tr!(
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
        ErrorCode::BatchReused => (
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
        ErrorCode::BodyTooLarge | ErrorCode::DecompressedTooLarge | ErrorCode::TooManyRecords => (
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
    // The server's code and words stay in the details (--json), not in the officer's sentence.
    AppError::new(kind, text)
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
            "Jawaban dari {url} bukan dari server Dinas: jaringan ini mungkin meminta login dulu (WiFi hotspot).",
            "The answer from {url} is not from the district server: this network may want a login first (a WiFi hotspot)."
        ),
        Failure::Busy(_) | Failure::RateLimited { .. } => tr!(
            "Server Dinas di {url} sedang sibuk atau bermasalah.",
            "The district server at {url} is busy or failing."
        ),
        _ => tr!(
            "Server Dinas di {url} tidak terjangkau: tidak ada sinyal, atau server sedang mati.",
            "The district server at {url} cannot be reached: no signal, or the server is down."
        ),
    };
    // The precise reason (`os error`, a status code) stays in --json and the details, not in
    // the officer's sentence.
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
        Failure::Unsigned(_) => tr!(
            "Buka browser dan login WiFi hotspot dulu, lalu jalankan lagi 'ikd-field sync'. Tidak ada yang hilang.",
            "Open the browser and log in to the WiFi hotspot first, then run 'ikd-field sync' again. Nothing is lost."
        ),
        Failure::Certificate(_) => tr!(
            "Periksa jam laptop. Di hotspot, masuk (login) dulu lewat browser. Jika server Dinas dipasang ulang dengan sertifikat kantor baru, minta token baru dan daftarkan laptop lagi (atau setel sync.ca_file ke berkas sertifikat dari admin Dinas). Jangan matikan pemeriksaan ini.",
            "Check the laptop's clock. On a hotspot, log in through the browser first. If the district server was set up again with a new office certificate, ask for a new token and enrol the laptop again (or set sync.ca_file to the certificate file from the district admin). Do not switch this check off."
        ),
        _ => tr!(
            "Jalankan lagi 'ikd-field sync' saat ada sinyal, atau biarkan 'ikd-field sync --watch' menunggu.",
            "Run 'ikd-field sync' again when there is signal, or leave 'ikd-field sync --watch' waiting."
        ),
    })
    .details(serde_json::json!({"server": url, "pending": pending, "reason": why.to_string(), "certificate": matches!(why, Failure::Certificate(_))}))
}
