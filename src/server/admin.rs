//! The admin API under `/v1/admin/` (needs `Authorization: Bearer <server.admin_token>`; off,
//! i.e. `404`, when no token is configured): what an office needs over HTTP without a shell on
//! the server. The token check here is also the dashboard's (`/konflik`, its login `/masuk`).
//!
//! | path | what |
//! | --- | --- |
//! | `GET /v1/admin/devices` | enrolled devices (as `server devices --json`) |
//! | `GET /v1/admin/stats` | totals (as `server stats --json`) |
//! | `POST /v1/admin/revoke` | `{"device_id": "…"}`: revoke a device (as `server revoke`) |
//! | `GET /v1/admin/export?format=csv\|jsonl` | every record, streamed (as `server export`) |
use super::Refusal;
use super::rows::Row;
use super::store::Store;
use crate::error::AppError;
use crate::protocol::ErrorCode;
use sha2::{Digest, Sha256};
use std::io::Write;
use subtle::ConstantTimeEq;

pub const PATH_DEVICES: &str = "/v1/admin/devices";
pub const PATH_STATS: &str = "/v1/admin/stats";
pub const PATH_REVOKE: &str = "/v1/admin/revoke";
pub const PATH_EXPORT: &str = "/v1/admin/export";
/// Largest revoke request body.
pub const MAX_REQUEST_BYTES: u64 = 4096;

/// Is this an admin API path?
pub fn owns(path: &str) -> bool {
    path.starts_with("/v1/admin/") || path == "/v1/admin"
}

/// True when `authorization` is `Bearer <token>` with the configured token (never when none is
/// configured). Both sides are hashed first and compared in constant time, so neither the
/// position of a difference nor the token's length shows in the answer's timing.
pub fn token_matches(configured: &str, authorization: Option<&str>) -> bool {
    let configured = configured.trim();
    if configured.is_empty() {
        return false;
    }
    let Some(presented) = authorization.and_then(|h| h.trim().strip_prefix("Bearer ")) else {
        return false;
    };
    secret_matches(configured, presented)
}

/// True when `presented` is the configured token (never when none is configured), in constant
/// time as [`token_matches`]: the dashboard's login form.
pub fn secret_matches(configured: &str, presented: &str) -> bool {
    let configured = configured.trim();
    if configured.is_empty() {
        return false;
    }
    let a = Sha256::digest(presented.trim().as_bytes());
    let b = Sha256::digest(configured.as_bytes());
    bool::from(a.ct_eq(&b))
}

/// Whether a request may use the admin API: `Ok` or the refusal to answer.
pub fn authorise(configured: &str, authorization: Option<&str>) -> Result<(), Refusal> {
    if configured.trim().is_empty() {
        return Err(Refusal::new(
            404,
            ErrorCode::NotFound,
            "the admin API is off: set server.admin_token in config.toml to turn it on",
        ));
    }
    if token_matches(configured, authorization) {
        Ok(())
    } else {
        Err(Refusal::new(
            401,
            ErrorCode::AdminUnauthorized,
            "send Authorization: Bearer <server.admin_token>",
        ))
    }
}

/// The export formats over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

impl ExportFormat {
    /// From the query string: `format=csv` (default) or `format=jsonl`.
    pub fn from_query(query: &str) -> Result<ExportFormat, Refusal> {
        let format = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("format="))
            .unwrap_or("csv");
        match format {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" | "ndjson" => Ok(ExportFormat::JsonLines),
            _ => Err(Refusal::new(
                400,
                ErrorCode::BadRequest,
                "format must be csv or jsonl",
            )),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::JsonLines => "application/x-ndjson",
        }
    }
}

/// Writes every record to `w` as it is read (never the whole export in memory); returns how
/// many. CSV has a header row (`Row::COLUMNS`); JSON lines one object per record.
pub fn write_export(
    store: &Store,
    format: ExportFormat,
    w: &mut dyn Write,
) -> Result<usize, AppError> {
    let io = |e: std::io::Error| AppError::other(format!("export: {e}"));
    let mut n = 0usize;
    match format {
        ExportFormat::Csv => {
            let mut c = csv::Writer::from_writer(&mut *w);
            c.write_record(Row::COLUMNS)
                .map_err(|e| AppError::other(e.to_string()))?;
            store.for_each_record(|r| {
                n += 1;
                crate::output::csv_row(&mut c, r.cells())
                    .map_err(|e| AppError::other(e.to_string()))
            })?;
            c.flush().map_err(io)?;
        }
        ExportFormat::JsonLines => {
            store.for_each_record(|r| {
                n += 1;
                serde_json::to_writer(&mut *w, &r).map_err(|e| AppError::other(e.to_string()))?;
                w.write_all(b"\n").map_err(io)
            })?;
        }
    }
    w.flush().map_err(io)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_must_match_exactly_and_be_configured() {
        assert!(!token_matches("", Some("Bearer ")));
        assert!(!token_matches("", None));
        let t = "rahasia-panjang-123";
        assert!(token_matches(t, Some("Bearer rahasia-panjang-123")));
        assert!(token_matches(t, Some("  Bearer rahasia-panjang-123 ")));
        for wrong in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer rahasia-panjang-12"),
            Some("Bearer rahasia-panjang-1234"),
            Some("Basic rahasia-panjang-123"),
            Some("rahasia-panjang-123"),
        ] {
            assert!(!token_matches(t, wrong), "{wrong:?}");
        }
        assert_eq!(authorise("", Some("Bearer x")).unwrap_err().status, 404);
        assert_eq!(authorise(t, None).unwrap_err().status, 401);
        assert_eq!(
            authorise(t, Some("Bearer nope")).unwrap_err().code,
            "admin_unauthorized"
        );
        assert!(authorise(t, Some("Bearer rahasia-panjang-123")).is_ok());
    }

    #[test]
    fn export_format_from_the_query() {
        assert_eq!(ExportFormat::from_query("").unwrap(), ExportFormat::Csv);
        assert_eq!(
            ExportFormat::from_query("x=1&format=jsonl").unwrap(),
            ExportFormat::JsonLines
        );
        assert_eq!(
            ExportFormat::from_query("format=xml").unwrap_err().status,
            400
        );
    }
}

/// `GET /v1/admin/devices` (and `server devices --json`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct DevicesBody {
    pub devices: Vec<crate::server::devices::Device>,
}

/// `GET /v1/admin/stats` (and `server stats --json`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct StatsBody {
    pub stats: crate::server::store::Stats,
}

/// `POST /v1/admin/revoke` request.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub device_id: String,
}

/// `POST /v1/admin/revoke` answer.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct RevokeBody {
    pub device_id: String,
    pub revoked: bool,
    /// It was revoked before this request.
    pub already: bool,
}
