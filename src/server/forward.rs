//! The district side of forwarding (docs/protocol.md "Forwarding"): a district server sends every
//! record it stored, in `rowid` order (up to the writers' horizon), to a province server, with the field kit's own signed,
//! idempotent batch protocol, enrolled there as a relay device.
//!
//! - **Identity.** The forwarding key is derived from the server key's seed
//!   ([`FORWARD_KEY_LABEL`]), so every `serve` process of one district signs as the same relay
//!   device and no new secret file appears.
//! - **Journal.** A batch is cut once from the records after the cursor, re-sealed to the
//!   province's sealing key and signed; id, body and signature are journalled in
//!   `forward_batches` in the cutting transaction, so a resend is byte for byte the same and the
//!   province answers it from its own journal. An open batch is resent before a new one is cut.
//! - **Cursor.** A signed answer is applied (counts kept) and the cursor moved to the batch's last
//!   `rowid` in one write transaction. Cutting happens under the writer lock and only when no
//!   batch is open, so two processes can never cut overlapping batches.
//! - **Lease.** One process forwards at a time (`forward_target.lease_holder/lease_until`, taken
//!   and renewed in write transactions); a process that dies leaves a lease that expires.
use super::db::{self, Db, Mode};
use super::rows::{Row, records_after};
use super::store::Store;
use crate::args;
use crate::crypto::KeyPair;
use crate::domain::{Kind, Record};
use crate::error::AppError;
use crate::protocol::{BatchResponse, Summary, WireRecord};
use crate::tr;
use serde::Serialize;

/// Label of the district's forwarding key, derived from the server key's seed.
pub const FORWARD_KEY_LABEL: &str = "ikd-field forward key v1";

/// The district's forwarding key (its device key at the province).
pub fn identity(server: &KeyPair) -> KeyPair {
    KeyPair::from_seed(server.derive(FORWARD_KEY_LABEL))
}

/// The province this district forwards to, as enrolled.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub url: String,
    /// This district's device id at the province.
    pub device_id: String,
    pub server_id: String,
    pub server_public_key: String,
    pub seal_public_key: String,
    pub enrolled_at: String,
    /// The `rowid` of the last record the province answered.
    pub cursor: i64,
    pub last_ok_at: Option<String>,
    pub last_error: Option<String>,
}

fn err(store: &Store) -> impl Fn(db::Error) -> AppError + '_ {
    move |e| store.err(e)
}

/// The enrolled province, if any.
pub fn target(store: &Store) -> Result<Option<Target>, AppError> {
    let mut db = store.db().map_err(err(store))?;
    load_target(&mut db).map_err(err(store))
}

fn load_target(db: &mut Db<'_>) -> db::Result<Option<Target>> {
    db.query_opt(
        "SELECT url, device_id, server_id, server_public_key, seal_public_key, enrolled_at,
                cursor, last_ok_at, last_error
         FROM forward_target WHERE id = 1",
        args![],
    )?
    .map(|r| {
        Ok(Target {
            url: r.get(0)?,
            device_id: r.get(1)?,
            server_id: r.get(2)?,
            server_public_key: r.get(3)?,
            seal_public_key: r.get(4)?,
            enrolled_at: r.get(5)?,
            cursor: r.get(6)?,
            last_ok_at: r.get(7)?,
            last_error: r.get(8)?,
        })
    })
    .transpose()
}

/// Stores the enrolment at a province. Enrolling again with the same province keeps the cursor
/// and any open batch (only the URL, keys and time change); a different province starts from the
/// first record, and the batches cut for the old one stay in the journal unsent.
pub fn save_target(store: &Store, t: &Target) -> Result<(), AppError> {
    let mut db = store.db().map_err(err(store))?;
    let run = |db: &mut Db<'_>| -> db::Result<()> {
        let mut tx = db.begin(Mode::Write)?;
        let same = load_target(&mut tx)?.is_some_and(|old| old.server_id == t.server_id);
        if same {
            tx.execute(
                "UPDATE forward_target SET url = ?1, device_id = ?2, server_public_key = ?3,
                        seal_public_key = ?4, enrolled_at = ?5 WHERE id = 1",
                args![
                    t.url,
                    t.device_id,
                    t.server_public_key,
                    t.seal_public_key,
                    t.enrolled_at
                ],
            )?;
        } else {
            tx.execute("DELETE FROM forward_target", args![])?;
            tx.execute(
                "INSERT INTO forward_target (id, url, device_id, server_id, server_public_key,
                                             seal_public_key, enrolled_at, cursor)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, 0)",
                args![
                    t.url,
                    t.device_id,
                    t.server_id,
                    t.server_public_key,
                    t.seal_public_key,
                    t.enrolled_at
                ],
            )?;
        }
        tx.commit()
    };
    run(&mut db).map_err(err(store))
}

/// One journalled batch to the province.
#[derive(Debug, Clone)]
pub struct Journalled {
    pub id: String,
    pub first_rowid: i64,
    pub last_rowid: i64,
    pub records: i64,
    /// The gzip bytes that are sent and signed.
    pub body: Vec<u8>,
    /// base64 signature, as in `X-Ikd-Signature`.
    pub signature: String,
    pub attempts: i64,
}

/// The batch to send next: the oldest open batch for this province, else a new one cut from up
/// to `limit` records after the cursor (in the same write transaction that journals it). `None`
/// when every record has been answered.
pub fn next_batch(
    store: &Store,
    key: &KeyPair,
    t: &Target,
    limit: usize,
) -> Result<Option<Journalled>, AppError> {
    let seal = crate::seal::parse_public_hex(&t.seal_public_key).ok_or_else(|| {
        AppError::other(tr!(
            "Kunci segel provinsi yang tersimpan rusak.",
            "The stored province sealing key is damaged."
        ))
        .hint(tr!(
            "Daftarkan lagi: ikd-field server forward enrol --to URL --token TOKEN",
            "Enrol again: ikd-field server forward enrol --to URL --token TOKEN"
        ))
    })?;
    let mut db = store.db().map_err(err(store))?;
    // The inner error: a record the sealed format cannot hold (the write is rolled back).
    let run = |db: &mut Db<'_>| -> db::Result<Result<Option<Journalled>, AppError>> {
        let mut tx = db.begin(Mode::Write)?;
        if let Some(open) = open_batch(&mut tx, &t.server_id)? {
            return Ok(Ok(Some(open)));
        }
        let cursor: i64 = tx
            .query_one("SELECT cursor FROM forward_target WHERE id = 1", args![])?
            .get(0)?;
        let rows = records_after(&mut tx, cursor, limit.max(1))?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            return Ok(Ok(None));
        };
        let (first_rowid, last_rowid) = (first.0, last.0);
        let mut wire: Vec<WireRecord> = Vec::with_capacity(rows.len());
        for (_, r) in &rows {
            match WireRecord::seal(&to_record(r), &seal) {
                Ok(w) => wire.push(w),
                Err(why) => return Ok(Err(unsealable(&r.id, why))),
            }
        }
        let count = wire.len() as i64;
        let signed = crate::field::outbox::sign_batch(key, &t.device_id, wire);
        tx.execute(
            "INSERT INTO forward_batches (id, server_id, created_at, first_rowid, last_rowid,
                                          records, body, signature)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            args![
                signed.id,
                t.server_id,
                signed.created_at,
                first_rowid,
                last_rowid,
                count,
                signed.body,
                signed.signature
            ],
        )?;
        tx.commit()?;
        Ok(Ok(Some(Journalled {
            id: signed.id,
            first_rowid,
            last_rowid,
            records: count,
            body: signed.body,
            signature: signed.signature,
            attempts: 0,
        })))
    };
    run(&mut db).map_err(err(store))?
}

/// A record on this server the sealed format cannot hold: it stops the forward until fixed.
fn unsealable(id: &str, why: crate::seal::Unsealable) -> AppError {
    AppError::other(tr!(
        "Catatan {id} tidak dapat diteruskan: {why}.",
        "Record {id} cannot be forwarded: {why}."
    ))
    .hint(tr!(
        "Catatan ini tidak lolos pemeriksaan data; laporkan id-nya ke pengelola server Dinas.",
        "This record did not pass data checks; report its id to the district server's administrator."
    ))
}

fn open_batch(db: &mut Db<'_>, server_id: &str) -> db::Result<Option<Journalled>> {
    db.query_opt(
        "SELECT id, first_rowid, last_rowid, records, body, signature, attempts
         FROM forward_batches WHERE server_id = ?1 AND answered_at IS NULL
         ORDER BY pos LIMIT 1",
        args![server_id],
    )?
    .map(|r| {
        Ok(Journalled {
            id: r.get(0)?,
            first_rowid: r.get(1)?,
            last_rowid: r.get(2)?,
            records: r.get(3)?,
            body: r.get(4)?,
            signature: r.get(5)?,
            attempts: r.get(6)?,
        })
    })
    .transpose()
}

/// The stored record as the province receives it (its full NIK, phone and e-mail are sealed
/// again, to the province's key).
pub fn to_record(r: &Row) -> Record {
    Record {
        id: r.id.clone(),
        seq: r.seq,
        device_id: r.device_id.clone(),
        officer: r.officer.clone(),
        team: r.team.clone(),
        recorded_at: r.recorded_at.clone(),
        kind: Kind::parse(&r.kind).unwrap_or(Kind::Activation),
        village: r.village.clone(),
        nik: r.nik.clone(),
        name: r.name.clone(),
        phone: r.phone.clone(),
        email: r.email.clone(),
        voids: r.voids.clone(),
        reason: r.reason.clone(),
        warnings: serde_json::from_str(&r.warnings).unwrap_or_default(),
    }
}

/// Stores the province's signed answer to `batch` and moves the cursor past it, in one
/// transaction. An answer that does not answer every record of the batch is refused (the batch
/// stays open): moving on would leave records behind.
pub fn apply_answer(
    store: &Store,
    batch: &Journalled,
    answer: &BatchResponse,
) -> Result<(), AppError> {
    if answer.results.len() as i64 != batch.records {
        return Err(AppError::other(tr!(
            "Jawaban provinsi untuk batch {} memuat {} hasil untuk {} catatan; batch tetap terbuka.",
            "The province's answer to batch {} holds {} results for {} records; the batch stays open.",
            batch.id,
            answer.results.len(),
            batch.records
        )));
    }
    let json = serde_json::to_vec(answer).map_err(|e| AppError::other(e.to_string()))?;
    let now = crate::timefmt::now_utc();
    let s = &answer.summary;
    let mut db = store.db().map_err(err(store))?;
    let run = |db: &mut Db<'_>| -> db::Result<()> {
        let mut tx = db.begin(Mode::Write)?;
        let n = tx.execute(
            "UPDATE forward_batches SET answered_at = ?2, accepted = ?3, duplicate = ?4,
                    conflict = ?5, rejected = ?6, answer = ?7, last_error = NULL
             WHERE id = ?1 AND answered_at IS NULL",
            args![
                batch.id,
                now,
                s.accepted as i64,
                s.duplicate as i64,
                s.conflict as i64,
                s.rejected as i64,
                json
            ],
        )?;
        if n > 0 && s.rejected == 0 {
            tx.execute(
                "UPDATE forward_target SET cursor = ?1, last_ok_at = ?2, last_error = NULL
                 WHERE id = 1 AND cursor < ?1",
                args![batch.last_rowid, now],
            )?;
        } else if n > 0 {
            // Records the province refused stay before the cursor: the batch is closed (its
            // answer kept), and the next pass cuts the same records into a new batch once the
            // province takes them again. Nothing is skipped.
            tx.execute(
                "UPDATE forward_target SET last_error = ?1 WHERE id = 1",
                args![format!("{} rejected in batch {}", s.rejected, batch.id)],
            )?;
        }
        tx.commit()
    };
    run(&mut db).map_err(err(store))?;
    if s.rejected > 0 {
        let reasons: std::collections::BTreeSet<&str> = answer
            .results
            .iter()
            .filter_map(|r| r.reason.as_deref())
            .collect();
        let reasons = reasons.into_iter().collect::<Vec<_>>().join(", ");
        return Err(AppError::other(tr!(
            "Server provinsi menolak {} dari {} catatan ({reasons}); penerusan dihentikan dan tidak ada catatan yang dilewati.",
            "The province server refused {} of {} records ({reasons}); forwarding stopped and no record was skipped.",
            s.rejected,
            batch.records
        ))
        .hint(tr!(
            "Catatan tetap di server Dinas dan dikirim lagi pada penerusan berikutnya. Tanyakan ke admin provinsi mengapa ditolak (mis. token relay dicabut atau diganti): setelah diperbaiki, jalankan lagi ikd-field server forward.",
            "The records stay on the district server and are sent again by the next forward. Ask the province admin why they were refused (e.g. the relay token was revoked or replaced); once fixed, run ikd-field server forward again."
        )));
    }
    Ok(())
}

/// Counts a failed attempt (best effort: never fails the caller).
pub fn note_failure(store: &Store, batch_id: &str, why: &str) {
    if let Ok(mut db) = store.db() {
        let _ = db.execute(
            "UPDATE forward_batches SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            args![batch_id, why],
        );
        let _ = db.execute(
            "UPDATE forward_target SET last_error = ?1 WHERE id = 1",
            args![why],
        );
    }
}

/// Takes or renews the forwarding lease for `holder` until `secs` from now; false when another
/// process holds a lease that has not expired.
pub fn take_lease(store: &Store, holder: &str, secs: u64) -> Result<bool, AppError> {
    let now = time::OffsetDateTime::now_utc();
    let until = crate::timefmt::stamp(now + time::Duration::seconds(secs.min(86_400) as i64));
    let now = crate::timefmt::stamp(now);
    let mut db = store.db().map_err(err(store))?;
    let run = |db: &mut Db<'_>| -> db::Result<bool> {
        let mut tx = db.begin(Mode::Write)?;
        let n = tx.execute(
            "UPDATE forward_target SET lease_holder = ?1, lease_until = ?2
             WHERE id = 1 AND (lease_holder IS NULL OR lease_holder = ?1 OR lease_until < ?3)",
            args![holder, until, now],
        )?;
        tx.commit()?;
        Ok(n > 0)
    };
    run(&mut db).map_err(err(store))
}

/// Gives the lease back (best effort).
pub fn release_lease(store: &Store, holder: &str) {
    if let Ok(mut db) = store.db() {
        let _ = db.execute(
            "UPDATE forward_target SET lease_holder = NULL, lease_until = NULL
             WHERE id = 1 AND lease_holder = ?1",
            args![holder],
        );
    }
}

/// Records stored after the cursor (not yet answered by the province).
pub fn backlog(store: &Store) -> Result<i64, AppError> {
    let mut db = store.db().map_err(err(store))?;
    db.query_one(
        "SELECT COUNT(*) FROM records
         WHERE rowid > coalesce((SELECT cursor FROM forward_target WHERE id = 1), 0)",
        args![],
    )
    .and_then(|r| r.get(0))
    .map_err(err(store))
}

/// What one forwarding pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Batches answered by the province in this pass.
    pub batches: usize,
    /// Records in them.
    pub records: i64,
    pub summary: Summary,
    /// Records still waiting after the pass.
    pub backlog: i64,
    /// Another process held the forwarding lease: this pass sent nothing.
    pub lease_held_elsewhere: bool,
}

impl Report {
    pub fn add(&mut self, batch: &Journalled, s: &Summary) {
        self.batches += 1;
        self.records += batch.records;
        self.summary.accepted += s.accepted;
        self.summary.duplicate += s.duplicate;
        self.summary.conflict += s.conflict;
        self.summary.rejected += s.rejected;
    }
}

/// For tests here and in `forward_run`: a district database at `dir` with `n` synthetic records
/// (seed `seed`), enrolled at a province by keys only (no HTTP). Returns the store, the
/// district's forwarding identity, the province's key and the saved target.
#[cfg(test)]
pub(crate) fn test_district(
    dir: &std::path::Path,
    seed: u64,
    n: usize,
) -> (Store, KeyPair, KeyPair, Target) {
    let store = Store::open(&dir.join("d.db")).unwrap();
    let mut db = store.db().unwrap();
    let plan = crate::server::fill::Plan {
        seed,
        regency: "1702".into(),
        records: n,
        devices: 2,
        days: 1,
        now: time::macros::datetime!(2026-11-23 09:00 UTC),
    };
    crate::server::fill::fill(&mut db, &plan).unwrap();
    drop(db);
    let me = identity(&KeyPair::from_seed([5; 32]));
    let province = KeyPair::from_seed([7; 32]);
    let t = Target {
        url: "http://127.0.0.1:1".into(),
        device_id: me.id(),
        server_id: province.id(),
        server_public_key: province.public_hex(),
        seal_public_key: crate::seal::server_public_hex(&province),
        enrolled_at: crate::timefmt::now_utc(),
        cursor: 0,
        last_ok_at: None,
        last_error: None,
    };
    save_target(&store, &t).unwrap();
    (store, me, province, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarding_key_is_derived_and_not_the_server_key() {
        let server = KeyPair::from_seed([5; 32]);
        assert_eq!(identity(&server).public(), identity(&server).public());
        assert_ne!(identity(&server).public(), server.public());
        assert_ne!(
            identity(&server).public(),
            identity(&KeyPair::from_seed([6; 32])).public()
        );
    }

    /// Cut once, resent the same, cursor moved only by an answer; the lease is exclusive.
    #[test]
    fn a_batch_is_cut_once_and_the_cursor_moves_with_its_answer() {
        let dir = tempfile::tempdir().unwrap();
        let (store, me, province, t) = test_district(dir.path(), 9, 30);
        assert_eq!(backlog(&store).unwrap(), 30);
        let a = next_batch(&store, &me, &t, 20).unwrap().unwrap();
        let again = next_batch(&store, &me, &t, 20).unwrap().unwrap();
        assert_eq!((a.id.as_str(), &a.body), (again.id.as_str(), &again.body));
        assert_eq!(a.records, 20);
        // The province opens what was sealed to it.
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&a.body[..]), &mut body)
            .unwrap();
        let parsed: crate::protocol::BatchBody = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed.device_id, me.id());
        let opened = crate::seal::OpenKey::of_server(&province);
        use base64::Engine;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&parsed.records[0].sealed)
            .unwrap();
        assert!(opened.open(&sealed).is_some());
        let short = BatchResponse {
            protocol: 1,
            batch_id: a.id.clone(),
            server_id: province.id(),
            received_at: crate::timefmt::now_utc(),
            results: vec![],
            summary: Summary::default(),
            activated: None,
            limits: None,
        };
        assert!(apply_answer(&store, &a, &short).is_err());
        let full = BatchResponse {
            results: parsed
                .records
                .iter()
                .map(|r| crate::protocol::RecordResult {
                    id: r.id.clone(),
                    status: crate::protocol::Outcome::Accepted,
                    reason: None,
                    conflict_with: None,
                    conflict: None,
                })
                .collect(),
            summary: Summary {
                accepted: 20,
                ..Summary::default()
            },
            ..short
        };
        apply_answer(&store, &a, &full).unwrap();
        assert_eq!(backlog(&store).unwrap(), 10);
        let b = next_batch(&store, &me, &t, 20).unwrap().unwrap();
        assert_ne!(b.id, a.id);
        assert_eq!((b.records, b.first_rowid > a.last_rowid), (10, true));
        // The lease.
        assert!(take_lease(&store, "one", 60).unwrap());
        assert!(take_lease(&store, "one", 60).unwrap());
        assert!(!take_lease(&store, "two", 60).unwrap());
        release_lease(&store, "one");
        assert!(take_lease(&store, "two", 60).unwrap());
    }
}
