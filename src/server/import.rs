//! `server import`: a `sync --to-file` file from a USB stick (one [`FileBatch`] per line) through
//! the same ingest as `POST /v1/batches`, so a batch imported twice, or imported and also sent,
//! is a no-op the second time. A bad line is refused alone; the others go in.
use super::Limits;
use super::ingest::{self, Incoming};
use super::store::Store;
use crate::crypto::KeyPair;
use crate::error::AppError;
use crate::protocol::{BatchResponse, ErrorCode, FileBatch, Summary};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Serialize;
use std::io::{BufRead, Read};

/// A line of the file that was refused whole.
#[derive(Debug, Clone, Serialize)]
pub struct LineRefusal {
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// The HTTP status the same batch would have been refused with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub code: ErrorCode,
    pub message: String,
}

/// What an import did: each batch's answer, the lines refused, and the records' totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub batches: Vec<BatchResponse>,
    pub refused: Vec<LineRefusal>,
    /// Of this file's new batches (not counting those imported before).
    pub summary: Summary,
    /// Batches this server had already taken (the same file imported again, or synced online):
    /// their answers are the first ones, nothing is counted twice.
    pub already: usize,
}

/// Ingests every batch of `reader` (named `name` in errors) in order.
pub fn import(
    store: &mut Store,
    key: &KeyPair,
    limits: &Limits,
    reader: impl BufRead,
    name: &str,
) -> Result<ImportReport, AppError> {
    let mut report = ImportReport::default();
    // A line may hold a whole batch (base64 of up to max_body_bytes), but no more.
    let max_line = limits
        .max_body_bytes
        .saturating_mul(2)
        .saturating_add(64 * 1024);
    let mut reader = reader;
    let mut line_no = 0usize;
    let io = |e: std::io::Error| AppError::other(format!("{name}: {e}"));
    loop {
        let mut line = Vec::new();
        let n = (&mut reader)
            .take(max_line + 1)
            .read_until(b'\n', &mut line)
            .map_err(io)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let refuse = |batch_id: Option<&str>, status, code, message: String| LineRefusal {
            line: line_no,
            batch_id: batch_id.map(str::to_string),
            status,
            code,
            message,
        };
        if line.len() as u64 > max_line {
            report.refused.push(refuse(
                None,
                None,
                ErrorCode::BodyTooLarge,
                "line too long".into(),
            ));
            // Skip the rest of that line.
            reader.read_until(b'\n', &mut Vec::new()).map_err(io)?;
            continue;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let fb: FileBatch = match serde_json::from_slice(&line) {
            Ok(f) => f,
            Err(e) => {
                report
                    .refused
                    .push(refuse(None, None, ErrorCode::BadJson, e.to_string()));
                continue;
            }
        };
        let Ok(body) = B64.decode(fb.body.trim()) else {
            report.refused.push(refuse(
                Some(&fb.batch_id),
                None,
                ErrorCode::BadJson,
                "body is not base64".into(),
            ));
            continue;
        };
        let inc = Incoming {
            device_id: &fb.device_id,
            batch_id: &fb.batch_id,
            signature: &fb.signature,
            body: &body,
        };
        match ingest::ingest(store, key, limits, &inc) {
            Ok(ans) if ans.replayed => {
                report.already += 1;
                report.batches.push(ans.response);
            }
            Ok(ans) => {
                let s = &ans.response.summary;
                report.summary.accepted += s.accepted;
                report.summary.duplicate += s.duplicate;
                report.summary.conflict += s.conflict;
                report.summary.rejected += s.rejected;
                report.batches.push(ans.response);
            }
            Err(r) => report.refused.push(refuse(
                Some(&fb.batch_id),
                Some(r.status),
                r.code,
                r.message,
            )),
        }
    }
    Ok(report)
}
