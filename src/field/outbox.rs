//! The sync outbox: a journal of batches cut from pending records.
//!
//! A batch's id, records and exact gzip bytes (with their signature) are fixed in one transaction
//! when it is first cut, so every retry — after a timeout, a dropped connection, a kill -9 or a
//! reboot — sends the same bytes, and the server can answer a replay from its own journal. Open
//! batches are resent before new ones are cut; new ones take pending records in `seq` order that
//! are not already in an open batch. One batch is in memory at a time. A batch is never deleted:
//! it becomes `answered` in the same transaction that stores the server's per-record answer.
use crate::crypto::KeyPair;
use crate::domain::{Kind, SyncStatus};
use crate::error::AppError;
use crate::field::store::Store;
use crate::protocol::{BatchResponse, FileBatch, Outcome, Summary, WireRecord};
use crate::sqlite::db_error;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

/// One journalled batch, exactly as it goes on the wire.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Position in the journal (SQLite rowid): open batches are sent in this order.
    pub pos: i64,
    pub id: String,
    pub record_count: usize,
    pub first_seq: i64,
    pub last_seq: i64,
    /// The gzip bytes that are sent and signed.
    pub body: Vec<u8>,
    /// base64 Ed25519 signature of SHA-256(body), as in `X-Ikd-Signature`.
    pub signature: String,
    pub attempts: i64,
}

impl Batch {
    /// The line `sync --to-file` writes for this batch.
    pub fn file_line(&self, device_id: &str) -> FileBatch {
        FileBatch {
            batch_id: self.id.clone(),
            device_id: device_id.to_string(),
            signature: self.signature.clone(),
            body: B64.encode(&self.body),
        }
    }
}

/// What applying one answer changed locally.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub summary: Summary,
    /// Conflicts and rejections: (seq, record id, name, status, reason).
    pub problems: Vec<Problem>,
    /// Records of the batch the answer did not mention (they stay pending and are cut again).
    pub unanswered: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    pub seq: i64,
    pub id: String,
    pub name: String,
    pub status: SyncStatus,
    pub reason: String,
}

const BATCH_COLUMNS: &str =
    "rowid, id, record_count, first_seq, last_seq, body, signature, attempts";

fn row_to_batch(r: &rusqlite::Row<'_>) -> rusqlite::Result<Batch> {
    Ok(Batch {
        pos: r.get(0)?,
        id: r.get(1)?,
        record_count: r.get::<_, i64>(2)? as usize,
        first_seq: r.get(3)?,
        last_seq: r.get(4)?,
        body: r.get(5)?,
        signature: r.get(6)?,
        attempts: r.get(7)?,
    })
}

/// The first open batch after journal position `after` (0 for the first of all).
pub fn next_open(store: &Store, after: i64) -> Result<Option<Batch>, AppError> {
    let sql = format!(
        "SELECT {BATCH_COLUMNS} FROM outbox_batches
         WHERE state = 'open' AND rowid > ?1 ORDER BY rowid LIMIT 1"
    );
    store
        .conn()
        .query_row(&sql, [after], row_to_batch)
        .optional()
        .map_err(|e| db_error(store.path(), e))
}

/// A batch by id (any state).
pub fn get(store: &Store, id: &str) -> Result<Option<Batch>, AppError> {
    let sql = format!("SELECT {BATCH_COLUMNS} FROM outbox_batches WHERE id = ?1");
    store
        .conn()
        .query_row(&sql, [id], row_to_batch)
        .optional()
        .map_err(|e| db_error(store.path(), e))
}

pub use crate::protocol::batch::{Signed, encode_body, sign_batch};

/// Cuts the next batch: up to `limit` pending records with `seq > after_seq` that are in no open
/// batch and whose identifiers are sealed to the district (a record still under the holding key
/// waits for enrolment), signed with the device key in one transaction. `None` when there is nothing to cut.
pub fn cut(
    store: &mut Store,
    key: &KeyPair,
    device_id: &str,
    limit: usize,
    after_seq: i64,
) -> Result<Option<Batch>, AppError> {
    let path = store.path().to_path_buf();
    let dbe = |e| db_error(&path, e);
    // The cut commits without its own fsync (WAL, synchronous=NORMAL: safe against kill -9;
    // the answer's FULL commit later makes it durable). If a power cut loses a cut batch that
    // was already sent, its records are pending and in no open batch, so they are cut again
    // under a new batch id and the server answers `duplicate`: nothing is lost or doubled, and
    // no batch id is ever sent with two different bodies.
    let conn = store.conn_mut();
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(dbe)?;
    // A page of only damaged rows sets them aside and cuts again from the next rows.
    let cut = loop {
        match cut_in(conn, key, device_id, limit, after_seq) {
            Ok((None, damaged)) if damaged > 0 => continue,
            other => break other.map(|(batch, _)| batch),
        }
    };
    let restored = conn.pragma_update(None, "synchronous", "FULL");
    let batch = cut.map_err(dbe)?;
    restored.map_err(dbe)?;
    Ok(batch)
}

fn cut_in(
    conn: &mut rusqlite::Connection,
    key: &KeyPair,
    device_id: &str,
    limit: usize,
    after_seq: i64,
) -> rusqlite::Result<(Option<Batch>, usize)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut damaged: Vec<(Vec<u8>, String)> = Vec::new();
    let records: Vec<WireRecord> = {
        let mut stmt = tx.prepare(
            "SELECT id, seq, device_id, officer, team, recorded_at, kind, village, name, sealed,
                    voids, reason, warnings
             FROM records
             WHERE status = 'pending' AND seq > ?1 AND sealed_to LIKE 'district:%'
             AND NOT EXISTS (
                 SELECT 1 FROM outbox_members m JOIN outbox_batches b ON b.id = m.batch_id
                 WHERE m.record_id = records.id AND b.state = 'open')
             ORDER BY seq LIMIT ?2",
        )?;
        let decode = |r: &rusqlite::Row<'_>| -> rusqlite::Result<WireRecord> {
            let kind: String = r.get(6)?;
            let sealed: Vec<u8> = r.get(9)?;
            let warnings: String = r.get(12)?;
            Ok(WireRecord {
                id: r.get(0)?,
                seq: r.get(1)?,
                device_id: r.get(2)?,
                officer: r.get(3)?,
                team: r.get(4)?,
                recorded_at: r.get(5)?,
                kind: Kind::parse(&kind).unwrap_or(Kind::Activation),
                village: r.get(7)?,
                name: r.get(8)?,
                sealed: B64.encode(sealed),
                voids: r.get(10)?,
                reason: r.get(11)?,
                warnings: serde_json::from_str(&warnings).unwrap_or_default(),
            })
        };
        // A row the database cannot give back as a record (a damaged file: text that is not
        // UTF-8, a wrong type) is set aside as `rejected` with the reason `damaged`, so the
        // good records still go; `list --status rejected` shows it.
        let mut good = Vec::new();
        let mut rows = stmt.query(params![after_seq, limit as i64])?;
        while let Some(r) = rows.next()? {
            match decode(r) {
                Ok(w) => good.push(w),
                Err(e) => {
                    damaged.push((r.get_ref(0)?.as_bytes().map(|b| b.to_vec())?, e.to_string()))
                }
            }
        }
        good
    };
    for (id, why) in &damaged {
        tx.execute(
            "UPDATE records SET status = 'rejected', status_reason = ?2, status_at = ?3
             WHERE CAST(id AS BLOB) = ?1",
            params![id, format!("damaged: {why}"), crate::timefmt::now_utc()],
        )?;
        tx.execute(
            "INSERT INTO audit (at, action, detail) VALUES (?1, 'damaged', ?2)",
            params![
                crate::timefmt::now_utc(),
                format!("a record cannot be read: {why}")
            ],
        )?;
    }
    if records.is_empty() {
        tx.commit()?;
        return Ok((None, damaged.len()));
    }
    let (first_seq, last_seq) = (records[0].seq, records[records.len() - 1].seq);
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let Signed {
        id,
        created_at,
        body,
        digest,
        signature,
    } = sign_batch(key, device_id, records);
    tx.execute(
        "INSERT INTO outbox_batches (id, created_at, record_count, first_seq, last_seq, body,
                                     body_sha256, signature)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id,
            created_at,
            ids.len() as i64,
            first_seq,
            last_seq,
            body,
            hex::encode(digest),
            signature
        ],
    )?;
    let pos = tx.last_insert_rowid();
    {
        let mut ins =
            tx.prepare("INSERT INTO outbox_members (batch_id, record_id) VALUES (?1, ?2)")?;
        for rid in &ids {
            ins.execute(params![id, rid])?;
        }
    }
    tx.execute(
        "INSERT INTO audit (at, action, detail) VALUES (?1, 'sync_cut', ?2)",
        params![
            created_at,
            format!(
                "batch {id}: {} records #{first_seq}–#{last_seq}, {} bytes",
                ids.len(),
                body.len()
            )
        ],
    )?;
    tx.commit()?;
    let batch = Batch {
        pos,
        id,
        record_count: ids.len(),
        first_seq,
        last_seq,
        body,
        signature,
        attempts: 0,
    };
    Ok((Some(batch), damaged.len()))
}

/// Counts a failed attempt at sending a batch, in the batch row and the audit log.
pub fn note_failure(store: &Store, batch_id: &str, why: &str) -> Result<(), AppError> {
    let dbe = |e| db_error(store.path(), e);
    store
        .conn()
        .execute(
            "UPDATE outbox_batches SET attempts = attempts + 1 WHERE id = ?1",
            [batch_id],
        )
        .map_err(dbe)?;
    store.audit("sync_attempt", None, &format!("batch {batch_id}: {why}"))
}

/// Stores the server's (already verified) answer in ONE transaction: each record of the batch
/// gets its status (`accepted`/`duplicate` → synced, `conflict`, `rejected` with the reason),
/// the batch becomes answered, and the audit log says so. Applying the same answer twice is
/// harmless. Ids the answer names that are not in this batch are ignored.
pub fn apply_answer(
    store: &mut Store,
    batch: &Batch,
    answer: &BatchResponse,
) -> Result<Applied, AppError> {
    let path = store.path().to_path_buf();
    let dbe = |e| db_error(&path, e);
    let now = crate::timefmt::now_utc();
    let tx = store
        .conn_mut()
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(dbe)?;
    let mut out = Applied::default();
    let mut matched = 0usize;
    {
        let mut upd = tx
            .prepare(
                "UPDATE records SET status = ?2, status_reason = ?3, status_at = ?4
                 WHERE id = ?1 AND EXISTS (SELECT 1 FROM outbox_members
                                           WHERE batch_id = ?5 AND record_id = ?1)
                 RETURNING seq, name",
            )
            .map_err(dbe)?;
        let mut audit = tx
            .prepare("INSERT INTO audit (at, action, record_id, detail) VALUES (?1, ?2, ?3, ?4)")
            .map_err(dbe)?;
        for r in &answer.results {
            let (status, reason) = match r.status {
                Outcome::Accepted | Outcome::Duplicate => (SyncStatus::Synced, None),
                Outcome::Conflict | Outcome::Rejected => {
                    let mut why = r.reason.clone().unwrap_or_else(|| "-".into());
                    if let Some(c) = &r.conflict {
                        // Who activated the NIK first, kept for the officer's words
                        // (`domain::record::plain_reason`).
                        why = serde_json::json!({
                            "code": why,
                            "conflict_with": r.conflict_with,
                            "team": c.team,
                            "officer": c.officer,
                            "recorded_at": c.recorded_at,
                            "village": c.village,
                        })
                        .to_string();
                    } else if let Some(w) = &r.conflict_with {
                        why = format!("{why} (conflict_with {w})");
                    }
                    let st = if r.status == Outcome::Conflict {
                        SyncStatus::Conflict
                    } else {
                        SyncStatus::Rejected
                    };
                    (st, Some(why))
                }
            };
            // The time of acknowledgement is the server's (retention counts from it, whatever
            // this laptop's clock says).
            let hit: Option<(i64, String)> = upd
                .query_row(
                    params![r.id, status.as_str(), reason, answer.received_at, batch.id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(dbe)?;
            let Some((seq, name)) = hit else { continue };
            matched += 1;
            match r.status {
                Outcome::Accepted => out.summary.accepted += 1,
                Outcome::Duplicate => out.summary.duplicate += 1,
                Outcome::Conflict => out.summary.conflict += 1,
                Outcome::Rejected => out.summary.rejected += 1,
            }
            if let Some(reason) = reason {
                audit
                    .execute(params![
                        now,
                        format!("sync_{}", status.as_str()),
                        r.id,
                        reason
                    ])
                    .map_err(dbe)?;
                out.problems.push(Problem {
                    seq,
                    id: r.id.clone(),
                    name,
                    status,
                    reason,
                });
            }
        }
    }
    out.unanswered = batch.record_count.saturating_sub(matched);
    let s = &out.summary;
    let summary = serde_json::to_string(s).unwrap_or_default();
    tx.execute(
        "UPDATE outbox_batches SET state = 'answered', answered_at = ?2, summary = ?3
         WHERE id = ?1",
        params![batch.id, now, summary],
    )
    .map_err(dbe)?;
    tx.execute(
        "INSERT INTO audit (at, action, detail) VALUES (?1, 'sync_batch', ?2)",
        params![
            now,
            format!(
                "batch {} answered by server {} at {}: {} accepted, {} duplicate, {} conflict, {} rejected, {} unanswered",
                batch.id,
                answer.server_id,
                answer.received_at,
                s.accepted,
                s.duplicate,
                s.conflict,
                s.rejected,
                out.unanswered
            )
        ],
    )
    .map_err(dbe)?;
    crate::field::clock::note_server_time(&tx, &answer.received_at).map_err(dbe)?;
    tx.commit().map_err(dbe)?;
    Ok(out)
}

/// Records still waiting for an answer, and how many open batches there are.
pub fn backlog(store: &Store) -> Result<(i64, i64), AppError> {
    store
        .conn()
        .query_row(
            "SELECT (SELECT COUNT(*) FROM records WHERE status = 'pending'),
                    (SELECT COUNT(*) FROM outbox_batches WHERE state = 'open')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(|e| db_error(store.path(), e))
}

/// Bytes still to send in open batches.
pub fn open_bytes(store: &Store) -> Result<i64, AppError> {
    store
        .conn()
        .query_row(
            "SELECT COALESCE(SUM(length(body)), 0) FROM outbox_batches WHERE state = 'open'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| db_error(store.path(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::datadir::DataDir;
    use crate::protocol::RecordResult;
    use crate::protocol::{self, BatchBody};

    /// The district server's key in these tests.
    pub(crate) fn district() -> KeyPair {
        KeyPair::from_seed([9; 32])
    }

    fn kit(n: usize) -> (tempfile::TempDir, DataDir) {
        let tmp = tempfile::tempdir().unwrap();
        let seal_key = crate::seal::server_public_hex(&district());
        let mut dd =
            DataDir::init_with(&tmp.path().join("f"), "PETUGAS", "TIM", Some(&seal_key)).unwrap();
        let today = time::macros::date!(2026 - 11 - 23);
        for input in crate::synth::citizens(7, "1702", n) {
            let v = crate::domain::validate::activation(&input, today).unwrap();
            dd.store.record_activation(&v, &dd.identity).unwrap();
        }
        (tmp, dd)
    }

    fn decode(b: &Batch) -> BatchBody {
        let mut json = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&b.body[..]), &mut json)
            .unwrap();
        serde_json::from_slice(&json).unwrap()
    }

    fn answer(b: &Batch, status: Outcome) -> BatchResponse {
        let body = decode(b);
        BatchResponse {
            protocol: 1,
            batch_id: b.id.clone(),
            server_id: "s".into(),
            received_at: crate::timefmt::now_utc(),
            results: body
                .records
                .iter()
                .map(|r| RecordResult {
                    id: r.id.clone(),
                    status,
                    reason: None,
                    conflict_with: None,
                    conflict: None,
                })
                .collect(),
            summary: Summary::default(),
            activated: None,
            limits: None,
        }
    }

    #[test]
    fn cut_is_sealed_signed_and_in_seq_order() {
        let (_t, mut dd) = kit(7);
        let dev = dd.identity.device_id.clone();
        let a = cut(&mut dd.store, &dd.key, &dev, 3, 0).unwrap().unwrap();
        let b = cut(&mut dd.store, &dd.key, &dev, 3, 0).unwrap().unwrap();
        let c = cut(&mut dd.store, &dd.key, &dev, 3, 0).unwrap().unwrap();
        assert!(cut(&mut dd.store, &dd.key, &dev, 3, 0).unwrap().is_none());
        assert_eq!(
            (
                a.first_seq,
                a.last_seq,
                b.first_seq,
                c.first_seq,
                c.record_count
            ),
            (1, 3, 4, 7, 1)
        );
        let body = decode(&a);
        assert_eq!(body.batch_id, a.id);
        assert_eq!(body.device_id, dev);
        assert_eq!(
            body.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        let sig = B64.decode(&a.signature).unwrap();
        assert!(crate::crypto::verify(
            &dd.key.public(),
            &protocol::signed_digest(&a.body),
            &sig
        ));
        // A retry reads back the very same bytes.
        let again = next_open(&dd.store, 0).unwrap().unwrap();
        assert_eq!((again.id, again.body), (a.id.clone(), a.body.clone()));
        // Sealed: the bytes cannot change and the batch cannot be deleted.
        let c2 = dd.store.conn();
        assert!(
            c2.execute("UPDATE outbox_batches SET body = x'00'", [])
                .is_err()
        );
        assert!(c2.execute("DELETE FROM outbox_batches", []).is_err());
        assert!(c2.execute("DELETE FROM outbox_members", []).is_err());
        assert_eq!(backlog(&dd.store).unwrap(), (7, 3));
        // The cut's relaxed fsync does not leak into later writes.
        let sync: i64 = c2
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2);
    }

    #[test]
    fn answers_mark_records_once_and_new_records_are_cut_after() {
        let (_t, mut dd) = kit(5);
        let dev = dd.identity.device_id.clone();
        let a = cut(&mut dd.store, &dd.key, &dev, 3, 0).unwrap().unwrap();
        let mut ans = answer(&a, Outcome::Accepted);
        ans.results[1].status = Outcome::Conflict;
        ans.results[1].reason = Some("nik_already_activated".into());
        ans.results[1].conflict_with = Some("0190-x".into());
        ans.results[2].status = Outcome::Rejected;
        ans.results[2].reason = Some("bad_village".into());
        // An id from outside the batch is ignored.
        ans.results.push(RecordResult {
            id: "not-in-batch".into(),
            status: Outcome::Accepted,
            reason: None,
            conflict_with: None,
            conflict: None,
        });
        let applied = apply_answer(&mut dd.store, &a, &ans).unwrap();
        assert_eq!(
            (
                applied.summary.accepted,
                applied.summary.conflict,
                applied.summary.rejected
            ),
            (1, 1, 1)
        );
        assert_eq!(applied.unanswered, 0);
        assert_eq!(applied.problems.len(), 2);
        let counts = dd.store.counts_by_status().unwrap();
        assert_eq!(
            counts,
            vec![
                (SyncStatus::Pending, 2),
                (SyncStatus::Synced, 1),
                (SyncStatus::Conflict, 1),
                (SyncStatus::Rejected, 1),
            ]
        );
        let rejected = dd.store.find("3").unwrap();
        assert_eq!(rejected.status_reason.as_deref(), Some("bad_village"));
        // Applying the same answer again changes nothing.
        apply_answer(&mut dd.store, &a, &ans).unwrap();
        assert_eq!(dd.store.counts_by_status().unwrap(), counts);
        // The answered batch is not resent; the next cut takes the remaining records.
        assert!(next_open(&dd.store, 0).unwrap().is_none());
        let b = cut(&mut dd.store, &dd.key, &dev, 10, 0).unwrap().unwrap();
        assert_eq!((b.first_seq, b.last_seq), (4, 5));
        assert_eq!(get(&dd.store, &a.id).unwrap().unwrap().body, a.body);
    }

    #[test]
    fn a_record_the_answer_omits_stays_pending_and_is_cut_again() {
        let (_t, mut dd) = kit(2);
        let dev = dd.identity.device_id.clone();
        let a = cut(&mut dd.store, &dd.key, &dev, 10, 0).unwrap().unwrap();
        let mut ans = answer(&a, Outcome::Duplicate);
        ans.results.truncate(1);
        let applied = apply_answer(&mut dd.store, &a, &ans).unwrap();
        assert_eq!((applied.summary.duplicate, applied.unanswered), (1, 1));
        let b = cut(&mut dd.store, &dd.key, &dev, 10, 0).unwrap().unwrap();
        assert_eq!((b.first_seq, b.record_count), (2, 1));
        let audit: i64 = dd
            .store
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM audit WHERE action IN ('sync_cut', 'sync_batch')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(audit, 3);
    }
}
