//! The district server: `store` (SQLite or PostgreSQL, through `db`), `enrol` (one-time tokens, devices), `ingest` (signed
//! batches, one transaction each), `activated` (hashed NIK prefixes for field warnings), `routes`
//! (every route, independent of the HTTP library) on `http` (hyper on tokio; the routes run on a
//! fixed pool of worker threads, each with its store handle).
//! `server import` and `POST /v1/batches` share the same ingest path. The dashboard: `coverage`
//! (the one aggregation behind the pages and `server report`), `targets` (the targets CSV),
//! `dashboard` (HTML pages for GET paths outside `/v1/`), `web` (the dashboard over HTTP: the
//! admin's `session`s, login, forms), `konflik` (the conflict page, "handled" marks), `slipcheck`
//! (`/cek-slip`), `fill` (synthetic data for tests and
//! the benchmark). Forwarding to a province: `forward` (the district's journal, cursor and
//! lease), `forward_run` (one pass over HTTP), `relay` (the province accepting a district's
//! records).
pub mod activated;
pub mod admin;
pub mod admin_token;
pub mod batch_answer;
pub mod chart;
pub mod coverage;
pub mod dashboard;
pub mod db;
pub mod devices;
pub mod enrol;
pub mod fill;
pub mod forward;
pub mod forward_run;
pub mod http;
pub mod import;
pub mod ingest;
pub mod known;
pub mod konflik;
pub mod laporan;
pub mod listen;
pub mod location;
pub mod office_tls;
// Throw-away PostgreSQL databases for the test suites: compiled into test and debug builds,
// and for the benchmarks with `--features test-support`; never into the release binary.
mod budget;
mod http_body;
#[cfg(any(test, debug_assertions, feature = "test-support"))]
pub mod pgtest;
mod pool;
pub mod ratelimit;
pub mod relay;
pub mod routes;
pub mod rows;
pub mod schema;
pub mod session;
pub mod site;
pub mod slipcheck;
pub mod store;
pub mod targets;
pub mod web;

use crate::config::ServerConfig;
use crate::crypto::KeyPair;
use crate::error::AppError;
use crate::protocol::ErrorCode;
use crate::tr;
use std::path::{Path, PathBuf};

/// Size limits applied to every request and imported batch.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: u64,
    pub max_decompressed_bytes: u64,
    pub max_batch_records: usize,
}

impl Limits {
    pub fn from_config(c: &ServerConfig) -> Limits {
        Limits {
            max_body_bytes: c.max_body_bytes,
            max_decompressed_bytes: c.max_decompressed_bytes,
            max_batch_records: c.max_batch_records,
        }
    }
}

/// A request the server refuses: the HTTP status and the protocol's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: ErrorCode,
    pub message: String,
    /// For `429`: how long the client should wait (`Retry-After`).
    pub retry_after: Option<std::time::Duration>,
}

impl Refusal {
    pub fn new(status: u16, code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, wait: std::time::Duration) -> Refusal {
        self.retry_after = Some(wait);
        self
    }

    pub fn internal(e: impl std::fmt::Display) -> Refusal {
        Refusal::new(
            500,
            ErrorCode::Internal,
            format!("the server failed; nothing was committed ({e})"),
        )
    }

    /// The JSON error body of docs/protocol.md.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&crate::protocol::ErrorBody {
            error: crate::protocol::ErrorDetail {
                code: self.code.clone(),
                message: self.message.clone(),
            },
        })
        .unwrap_or_default()
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

/// glibc gives each thread its own malloc arena, so every worker would keep the peak of the
/// largest batch it ever decoded. Two arenas shared by all workers keep the server's memory near
/// one or two batches' peak. And glibc raises its mmap threshold to the largest block freed (up
/// to 32 MB): after the first large batch, a batch's big buffers (its JSON text, the lists of its
/// records, the answer) would come from the arenas instead of their own mappings, and stay there
/// as holes between small blocks. A fixed threshold gives every buffer of 128 KB or more its own
/// mapping, returned to the system when freed. Call before the workers start.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc allocator parameters; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Hands the allocator's free pages back to the system (glibc keeps what a large batch freed
/// in holes between the blocks still in use, where the next batch cannot always reuse it).
/// A walk of the free lists and a few `madvise` calls: for after large batches only.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The server's key file of a SQLite database when `server.key_file` is not set: next to the
/// database, `<db>.key`.
pub fn key_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".key");
    PathBuf::from(s)
}

/// Loads the server key from its file (see `commands::server::key_file`), creating it (mode
/// 0600) on first use. Every process serving one database must load the same file.
pub fn server_key(path: &Path) -> Result<KeyPair, AppError> {
    let fail = |e: std::io::Error| {
        AppError::other(tr!(
            "Kunci server {} tidak bisa dibaca atau dibuat: {e}",
            "Cannot read or create the server key {}: {e}",
            path.display()
        ))
    };
    match KeyPair::load(path) {
        Ok(k) => Ok(k),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let k = KeyPair::generate().map_err(fail)?;
            match k.save(path) {
                Ok(()) => Ok(k),
                // Another process made it first.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    KeyPair::load(path).map_err(fail)
                }
                Err(e) => Err(fail(e)),
            }
        }
        Err(e) => Err(fail(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_next_to_the_db() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("district.db");
        assert_eq!(key_path(&db), dir.path().join("district.db.key"));
        let a = server_key(&key_path(&db)).unwrap();
        let b = server_key(&key_path(&db)).unwrap();
        assert_eq!(a.public(), b.public());
    }
}
