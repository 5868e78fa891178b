//! Ingest of one signed batch, exactly as docs/protocol.md says: checks in the documented order,
//! then one write transaction that answers every record, journals the signed answer under the
//! batch id (a replay gets the same answer back) and commits. Used by `POST /v1/batches` and by
//! `server import`.
use super::db::Mode;
use super::known::Known;
use super::store::Store;
use super::{Limits, Refusal};
use crate::args;
use crate::crypto::{self, KeyPair};
use crate::protocol::ErrorCode;
use crate::protocol::{self, BatchResponse, Outcome, Summary};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

mod decide;
mod decode;
mod journal;
mod record;
mod write;

use decide::{lookup_keys, one_record};
use decode::{gunzip, parse_batch, too_large};
pub use journal::{Answer, stored};
use journal::{gzip, journalled};
use write::{Ctx, New};

/// A batch as it arrives: the headers (or the `sync --to-file` line) and the body bytes as sent.
pub struct Incoming<'a> {
    pub device_id: &'a str,
    pub batch_id: &'a str,
    /// base64 Ed25519 signature of SHA-256(body).
    pub signature: &'a str,
    /// The gzip bytes.
    pub body: &'a [u8],
}

/// After a batch body this large (some 500 records), the memory it freed is handed back to the
/// system (super::release_free_memory): otherwise held between batches, it would add to the
/// next one's peak.
const TRIM_AFTER_BYTES: usize = 64 * 1024;

pub fn ingest(
    store: &mut Store,
    key: &KeyPair,
    limits: &Limits,
    inc: &Incoming<'_>,
) -> Result<Answer, Refusal> {
    ingest_with(store, key, limits, inc, None)
}

/// [`ingest`], the answer also carrying the district's activated-list delta after
/// `activated_since` (`X-Ikd-Activated-Since`), read in the batch's transaction and journalled
/// with the answer.
pub fn ingest_with(
    store: &mut Store,
    key: &KeyPair,
    limits: &Limits,
    inc: &Incoming<'_>,
    activated_since: Option<i64>,
) -> Result<Answer, Refusal> {
    let result = check_and_commit(store, key, limits, inc, activated_since);
    if inc.body.len() >= TRIM_AFTER_BYTES {
        super::release_free_memory();
    }
    if let Err(r) = &result
        && r.status != 500
    {
        let device = Some(inc.device_id).filter(|d| !d.is_empty() && d.len() <= 64);
        let batch = Some(inc.batch_id).filter(|b| !b.is_empty() && b.len() <= 64);
        store.note_reject(device, batch, None, r.code.as_str(), &r.message);
    }
    result
}

fn check_and_commit(
    store: &mut Store,
    key: &KeyPair,
    limits: &Limits,
    inc: &Incoming<'_>,
    activated_since: Option<i64>,
) -> Result<Answer, Refusal> {
    if inc.body.len() as u64 > limits.max_body_bytes {
        return Err(too_large(limits));
    }
    let public = store.enrolled_key(inc.device_id)?;
    let signature = B64.decode(inc.signature.trim()).unwrap_or_default();
    if !crypto::verify(&public, &protocol::signed_digest(inc.body), &signature) {
        return Err(Refusal::new(
            401,
            ErrorCode::BadSignature,
            "the signature is missing or does not match the body",
        ));
    }
    // On PostgreSQL batches are written side by side; one that loses a race with another (the
    // same NIK, record or batch at once, or a deadlock) is decided again from the start, alone.
    let mut mode = Mode::Ingest;
    loop {
        let batch = decode(inc, key, limits)?;
        match write_batch(store, key, limits, inc, batch, activated_since, mode) {
            Err(Failed::Race) if mode == Mode::Ingest => mode = Mode::Write,
            other => return other.map_err(Failed::refusal),
        }
    }
}

/// Why a batch's transaction did not commit.
enum Failed {
    Refused(Refusal),
    /// PostgreSQL refused a write because another batch got there first
    /// ([`super::db::Error::is_write_race`]).
    Race,
}

impl Failed {
    fn refusal(self) -> Refusal {
        match self {
            Failed::Refused(r) => r,
            Failed::Race => Refusal::internal("another batch was written at the same time"),
        }
    }
}

impl From<Refusal> for Failed {
    fn from(r: Refusal) -> Failed {
        Failed::Refused(r)
    }
}

fn db_failed(e: super::db::Error) -> Failed {
    if e.is_write_race() {
        Failed::Race
    } else {
        Failed::Refused(Refusal::internal(e))
    }
}

/// The body opened, parsed and checked against its headers: every record opened and validated,
/// before any transaction.
fn decode(inc: &Incoming<'_>, key: &KeyPair, limits: &Limits) -> Result<decode::Envelope, Refusal> {
    let json = gunzip(inc.body, limits.max_decompressed_bytes)?;
    // The most lenient "today" in Indonesia (WIT), so a NIK born today is not in the future.
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::UtcOffset::from_hms(9, 0, 0).unwrap_or(time::UtcOffset::UTC))
        .date();
    let batch = parse_batch(
        &json,
        &crate::seal::OpenKey::of_server(key),
        today,
        limits.max_batch_records,
    )?;
    // Each stage's copy of the batch is dropped as soon as the next one exists (about 2.1 MB of
    // JSON text for 5,000 records): the server's peak memory is a few copies of its largest batch.
    drop(json);
    if batch.protocol != protocol::VERSION {
        return Err(Refusal::new(
            400,
            ErrorCode::BadJson,
            format!(
                "protocol {} is not supported (this server speaks 1)",
                batch.protocol
            ),
        ));
    }
    if batch.batch_id != inc.batch_id || batch.device_id != inc.device_id {
        return Err(Refusal::new(
            400,
            ErrorCode::BatchMismatch,
            "the batch or device id in the headers differs from the body",
        ));
    }
    if batch.batch_id.is_empty() || batch.batch_id.len() > 64 {
        return Err(Refusal::new(
            400,
            ErrorCode::BadJson,
            "batch_id must be 1–64 characters",
        ));
    }
    Ok(batch)
}

/// One transaction that answers every record of `batch`, journals the signed answer and commits.
fn write_batch(
    store: &mut Store,
    key: &KeyPair,
    limits: &Limits,
    inc: &Incoming<'_>,
    batch: decode::Envelope,
    activated_since: Option<i64>,
    mode: Mode,
) -> Result<Answer, Failed> {
    // At most max_batch_records: parse_batch refused more before opening any seal.
    let count: usize = batch.records.iter().map(Vec::len).sum();
    let body_sha = crypto::sha256_hex(inc.body);
    let (ids, niks) = lookup_keys(batch.records.iter().flatten());
    // A batch's write transaction (super::db): on SQLite the one writer at a time (writers in
    // this process queue on a mutex, other processes wait on the database's lock); on
    // PostgreSQL one of many, or alone when decided again after a race.
    let mut db = store.db().map_err(Refusal::internal)?;
    let mut tx = db.begin(mode).map_err(db_failed)?;
    if let Some(answer) = journalled(&mut tx, inc.device_id, &batch.batch_id, &body_sha)? {
        return Ok(answer);
    }
    let now = crate::timefmt::now_utc();
    let ctx = Ctx {
        relay: super::relay::is_relay(&mut tx, inc.device_id).map_err(db_failed)?,
        device: inc.device_id,
        batch: &batch.batch_id,
        now: &now,
    };
    // Dashboard: the rows after this mark are this batch's; folded into the aggregates below.
    let mark = super::coverage::watermark(&mut tx).map_err(db_failed)?;
    // What the checks need from the records table, for the whole batch in two statements.
    let mut known = Known::load(&mut tx, &ids, &niks).map_err(db_failed)?;
    drop((ids, niks));
    let mut new = New::with_capacity(count);
    let mut results = Vec::with_capacity(count);
    let mut summary = Summary::default();
    // Each opening thread's part is freed as soon as its last record is answered.
    for value in batch.records.into_iter().flatten() {
        let r = one_record(&mut tx, &ctx, &mut known, &mut new, value).map_err(db_failed)?;
        match r.status {
            Outcome::Accepted => summary.accepted += 1,
            Outcome::Duplicate => summary.duplicate += 1,
            Outcome::Conflict => summary.conflict += 1,
            Outcome::Rejected => summary.rejected += 1,
        }
        results.push(r);
    }
    new.write(&mut tx, &ctx).map_err(db_failed)?;
    drop((new, known));
    // The activated-list delta, this batch's own activations included, so a day's sync that
    // fits one batch needs no second request.
    let activated = match activated_since {
        Some(since) => Some(
            super::activated::page(&mut tx, key, since, protocol::ACTIVATED_INLINE)
                .map_err(db_failed)?,
        ),
        None => None,
    };
    let response = BatchResponse {
        protocol: protocol::VERSION,
        batch_id: batch.batch_id.clone(),
        server_id: key.id(),
        received_at: now.clone(),
        results,
        summary,
        activated,
        limits: Some(protocol::BatchLimits {
            max_batch_records: limits.max_batch_records,
            max_body_bytes: limits.max_body_bytes,
            max_decompressed_bytes: limits.max_decompressed_bytes,
        }),
    };
    let body = serde_json::to_vec(&response).map_err(Refusal::internal)?;
    let signature = B64.encode(key.sign(&protocol::signed_digest(&body)));
    // Both forms are journalled, so a replay sends the same bytes and signature as the first
    // answer in whichever form the client asks for.
    let gz = gzip(&body).map_err(Refusal::internal)?;
    let gz_signature = B64.encode(key.sign(&protocol::signed_digest(&gz)));
    tx.execute(
        "INSERT INTO batches (id, device_id, body_sha256, received_at, records, response, signature,
                              response_gzip, signature_gzip)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        args![
            batch.batch_id,
            inc.device_id,
            body_sha,
            now,
            count as i64,
            body,
            signature,
            gz,
            gz_signature
        ],
    )
    .map_err(db_failed)?;
    tx.execute(
        "UPDATE devices SET last_sync_at = ?2 WHERE id = ?1",
        args![inc.device_id, now],
    )
    .map_err(db_failed)?;
    // Dashboard: count this batch's live activations and voids (one statement per aggregate
    // table). Last before the commit: on PostgreSQL it locks the aggregates' rows its batch
    // touches, which side-by-side batches share (the same villages), until the commit.
    super::coverage::fold(&mut tx, mark).map_err(db_failed)?;
    tx.commit().map_err(db_failed)?;
    Ok(Answer {
        body,
        signature,
        gzip: Some((gz, gz_signature)),
        response,
        replayed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::decode::*;
    use super::journal::*;
    use super::*;
    use crate::domain::validate;
    use crate::domain::{Kind, Record};
    use crate::protocol::{self, Outcome, RecordResult};
    use crate::protocol::{BatchBody, EnrolRequest};
    use crate::server::db;
    use crate::server::enrol;
    use crate::server::store::Location;

    const LIMITS: Limits = Limits {
        max_body_bytes: 1 << 20,
        max_decompressed_bytes: 4 << 20,
        max_batch_records: 1000,
    };

    struct Fixture {
        store: Store,
        _dir: tempfile::TempDir,
        /// Dropped after the store (field order).
        _pg: Option<crate::server::pgtest::TestDatabase>,
        server: KeyPair,
        device: KeyPair,
        seq: i64,
        /// The activated-list cursor batches are sent with (`X-Ikd-Activated-Since`).
        since: Option<i64>,
    }

    /// Runs `test` on a SQLite store, then on PostgreSQL (a fresh database from
    /// `IKD_TEST_POSTGRES`; a skip note without it, a failure under CI).
    fn on_both(name: &str, test: impl Fn(Fixture)) {
        test(Fixture::new());
        if let Some(pg) = crate::server::pgtest::TestDatabase::create(name) {
            let store = Store::open(Location::Postgres(pg.url.clone())).unwrap();
            test(Fixture::on(store, Some(pg)));
        }
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("d.db")).unwrap();
            Fixture::with(store, dir, None)
        }

        fn on(store: Store, pg: Option<crate::server::pgtest::TestDatabase>) -> Fixture {
            Fixture::with(store, tempfile::tempdir().unwrap(), pg)
        }

        fn with(
            mut store: Store,
            dir: tempfile::TempDir,
            pg: Option<crate::server::pgtest::TestDatabase>,
        ) -> Fixture {
            let server = KeyPair::generate().unwrap();
            let device = KeyPair::generate().unwrap();
            let (token, _) = enrol::create_token(&store, "", 1).unwrap();
            let req = EnrolRequest::signed(&device, &token, &server.public_hex(), "BUDI", "TIM 1");
            enrol::enrol(&mut store, &server, &req).unwrap();
            Fixture {
                _dir: dir,
                _pg: pg,
                store,
                server,
                device,
                seq: 0,
                since: None,
            }
        }

        fn records(&mut self, seed: u64, n: usize) -> Vec<Record> {
            let today = time::OffsetDateTime::now_utc().date();
            crate::synth::citizens(seed, "1702", n)
                .iter()
                .map(|p| {
                    let v = validate::activation(p, today).unwrap();
                    self.seq += 1;
                    Record {
                        id: uuid::Uuid::now_v7().to_string(),
                        seq: self.seq,
                        device_id: self.device.id(),
                        officer: "BUDI".into(),
                        team: "TIM 1".into(),
                        recorded_at: crate::timefmt::now_utc(),
                        kind: Kind::Activation,
                        village: v.village,
                        nik: v.nik.nik,
                        name: v.name,
                        phone: v.phone,
                        email: v.email,
                        voids: None,
                        reason: None,
                        warnings: vec![],
                    }
                })
                .collect()
        }

        fn send_json(&mut self, records: serde_json::Value) -> Result<Answer, Refusal> {
            let id = uuid::Uuid::now_v7().to_string();
            let body = serde_json::json!({"protocol": 1, "batch_id": id, "device_id": self.device.id(),
                                          "created_at": crate::timefmt::now_utc(), "records": records});
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, body.to_string().as_bytes()).unwrap();
            let body = gz.finish().unwrap();
            let sig = B64.encode(self.device.sign(&protocol::signed_digest(&body)));
            let device = self.device.id();
            let inc = Incoming {
                device_id: &device,
                batch_id: &id,
                signature: &sig,
                body: &body,
            };
            ingest_with(&mut self.store, &self.server, &LIMITS, &inc, self.since)
        }

        /// The records sealed to this server's key, as a batch carries them.
        fn wire(&self, records: &[Record]) -> Vec<protocol::WireRecord> {
            let key = crate::seal::OpenKey::of_server(&self.server).public();
            records
                .iter()
                .map(|r| protocol::WireRecord::seal(r, &key).unwrap())
                .collect()
        }

        fn send(&mut self, records: &[Record]) -> Vec<(Outcome, Option<String>)> {
            let wire = serde_json::to_value(self.wire(records)).unwrap();
            let a = self.send_json(wire).unwrap();
            let body: BatchResponse = serde_json::from_slice(&a.body).unwrap();
            assert!(crypto::verify(
                &self.server.public(),
                &protocol::signed_digest(&a.body),
                &B64.decode(&a.signature).unwrap()
            ));
            body.results
                .into_iter()
                .map(|r| (r.status, r.reason))
                .collect()
        }

        fn void(&mut self, target: &Record) -> Record {
            self.seq += 1;
            Record {
                id: uuid::Uuid::now_v7().to_string(),
                seq: self.seq,
                kind: Kind::Void,
                voids: Some(target.id.clone()),
                reason: Some("salah".into()),
                ..target.clone()
            }
        }
    }

    fn rejected(code: &str) -> (Outcome, Option<String>) {
        (Outcome::Rejected, Some(code.to_string()))
    }

    /// The per-record statements are prepared once per connection, not once per record.
    #[test]
    fn statements_are_not_re_prepared() {
        use rusqlite::StatementStatus;
        let mut f = Fixture::new();
        let recs = f.records(1, 600);
        f.send(&recs[..300]);
        f.send(&recs[300..]);
        let db = f.store.db().unwrap();
        let sqls = crate::server::known::statements(&db);
        drop(db);
        for sql in sqls {
            let st = f.store.sqlite_conn().prepare_cached(&sql).unwrap();
            assert_eq!(st.get_status(StatementStatus::RePrepare), 0, "{sql}");
        }
    }

    #[test]
    fn a_malformed_record_is_rejected_alone() {
        on_both("a_malformed_record_is_rejected_alone", |mut f| {
            let recs = f.records(1, 2);
            let mut values = serde_json::to_value(f.wire(&recs)).unwrap();
            values
                .as_array_mut()
                .unwrap()
                .insert(1, serde_json::json!({"id": "x", "seq": "one"}));
            values.as_array_mut().unwrap().push(serde_json::json!(42));
            let a = f.send_json(values).unwrap();
            let st: Vec<_> = a.response.results.iter().map(|r| r.status).collect();
            assert_eq!(
                st,
                [
                    Outcome::Accepted,
                    Outcome::Rejected,
                    Outcome::Accepted,
                    Outcome::Rejected
                ]
            );
            assert_eq!(a.response.results[1].reason.as_deref(), Some("bad_record"));
            assert_eq!(a.response.results[1].id, "x");
        });
    }

    #[test]
    fn seals_are_opened_and_a_bad_seal_is_rejected_alone() {
        on_both(
            "seals_are_opened_and_a_bad_seal_is_rejected_alone",
            |mut f| {
                let recs = f.records(5, 4);
                let mut wire = f.wire(&recs);
                // Sealed to another district's key; a damaged box; a plaintext record of the old form.
                let other = crate::seal::OpenKey::generate().unwrap().public();
                wire[1] = protocol::WireRecord::seal(&recs[1], &other).unwrap();
                wire[2].sealed = B64.encode(b"not a sealed box");
                let mut values = serde_json::to_value(&wire).unwrap();
                values[3] = serde_json::to_value(&recs[3]).unwrap();
                let a = f.send_json(values).unwrap();
                let got: Vec<_> = a
                    .response
                    .results
                    .iter()
                    .map(|r| (r.status, r.reason.clone()))
                    .collect();
                assert_eq!(got[0], (Outcome::Accepted, None));
                assert_eq!(got[1], rejected("seal_unopened"));
                assert_eq!(got[2], rejected("seal_unopened"));
                assert_eq!(got[3], rejected("bad_record"));
                assert_eq!(a.response.results[1].id, recs[1].id);
                // The server stores the opened NIK, phone and e-mail.
                let row = f
                    .store
                    .db()
                    .unwrap()
                    .query_one(
                        "SELECT nik, phone FROM records WHERE id = ?1",
                        args![recs[0].id],
                    )
                    .unwrap();
                let (nik, phone): (String, String) = (row.get(0).unwrap(), row.get(1).unwrap());
                assert_eq!((nik, phone), (recs[0].nik.clone(), recs[0].phone.clone()));
                // Sealed again (other bytes), the same content is a duplicate; other content under
                // the same id is id_reused.
                assert_eq!(f.send(&recs[..1]), [(Outcome::Duplicate, None)]);
                let mut changed = recs[0].clone();
                changed.phone = "+6281399998888".into();
                assert_eq!(
                    f.send(&[changed]),
                    [(Outcome::Conflict, Some("id_reused".into()))]
                );
            },
        );
    }

    #[test]
    fn a_large_batch_opens_on_threads_in_order() {
        on_both("a_large_batch_opens_on_threads_in_order", |mut f| {
            let recs = f.records(6, 300);
            let got = f.send(&recs);
            assert!(got.iter().all(|g| *g == (Outcome::Accepted, None)));
            let ids: Vec<String> = f
                .store
                .db()
                .unwrap()
                .query_all("SELECT id FROM records ORDER BY rowid", args![])
                .unwrap()
                .iter()
                .map(|r| r.get(0).unwrap())
                .collect();
            assert_eq!(ids, recs.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
        });
    }

    #[test]
    fn record_checks() {
        on_both("record_checks", |mut f| {
            let mut r = f.records(2, 6);
            r[0].id = "not-a-uuid".into();
            r[1].village = "1702999999".into();
            // A landline in E.164: it fits the sealed format, and the server still refuses it.
            r[2].phone = "+62215551234".into();
            r[3].recorded_at = "yesterday".into();
            r[4].voids = Some(r[5].id.clone());
            r[5].name = "siti   aminah".into();
            let got = f.send(&r);
            assert_eq!(got[0], rejected("bad_id"));
            assert_eq!(got[1], rejected("village_unknown"));
            assert_eq!(got[2], rejected("phone_landline"));
            assert_eq!(got[3], rejected("bad_time"));
            assert_eq!(got[4], rejected("bad_kind"));
            // Stored normalised.
            assert_eq!(got[5], (Outcome::Accepted, None));
            let name: String = f
                .store
                .db()
                .unwrap()
                .query_one("SELECT name FROM records WHERE id = ?1", args![r[5].id])
                .and_then(|x| x.get(0))
                .unwrap();
            assert_eq!(name, "SITI AMINAH");
            assert_eq!(f.store.stats().unwrap().rejects, 5);
        });
    }

    /// A NUL character is text SQLite stores and PostgreSQL refuses: records carrying one are
    /// rejected alone, the same on both, and the rest of the batch is answered.
    #[test]
    fn nul_characters_are_rejected_alike_on_both_stores() {
        on_both(
            "nul_characters_are_rejected_alike_on_both_stores",
            |mut f| {
                let mut r = f.records(3, 6);
                r[0].officer = "BU\0DI".into();
                r[1].id = format!("{}\0", &r[1].id[..35]);
                r[2].device_id = "\0".repeat(16);
                r[3].reason = Some("x\0".into());
                let void = {
                    let mut v = f.void(&r[5]);
                    v.voids = Some("\0".into());
                    v
                };
                r.push(void);
                let got = f.send(&r);
                assert_eq!(got[0], rejected("bad_text"));
                assert_eq!(got[1], rejected("bad_id"));
                assert_eq!(got[2], rejected("device_mismatch"));
                assert_eq!(got[3], rejected("bad_text"));
                assert_eq!(got[4], (Outcome::Accepted, None));
                assert_eq!(got[5], (Outcome::Accepted, None));
                assert_eq!(got[6], rejected("bad_text"));
                assert_eq!(f.store.stats().unwrap().rejects, 5);
                // A relay naming such a device: refused before the device is looked up.
                f.store
                    .db()
                    .unwrap()
                    .execute("UPDATE devices SET relay = 1", args![])
                    .unwrap();
                let mut r = f.records(4, 1);
                r[0].device_id = "\0".repeat(16);
                assert_eq!(f.send(&r)[0], rejected("device_mismatch"));
            },
        );
    }

    /// Runs `test` with two fresh stores (on SQLite, then on two PostgreSQL databases).
    fn on_both_twice(name: &str, test: impl Fn(Fixture, Fixture)) {
        test(Fixture::new(), Fixture::new());
        let a = crate::server::pgtest::TestDatabase::create(&format!("{name}_a"));
        let b = crate::server::pgtest::TestDatabase::create(&format!("{name}_b"));
        if let (Some(a), Some(b)) = (a, b) {
            let sa = Store::open(Location::Postgres(a.url.clone())).unwrap();
            let sb = Store::open(Location::Postgres(b.url.clone())).unwrap();
            test(Fixture::on(sa, Some(a)), Fixture::on(sb, Some(b)));
        }
    }

    /// The records as `f`'s device sends them.
    fn from_device(f: &Fixture, records: &[Record]) -> Vec<Record> {
        let device = f.device.id();
        records
            .iter()
            .map(|r| Record {
                device_id: device.clone(),
                ..r.clone()
            })
            .collect()
    }

    /// What a store holds: each record's answer-relevant columns in arrival order, and the
    /// dashboard's count of live activations.
    fn contents(f: &Fixture) -> (Vec<Vec<db::Value>>, i64) {
        let mut db = f.store.db().unwrap();
        let rows = db
            .query_all(
                "SELECT id, kind, state, conflict_with, voided_by, nik, content_hash IS NOT NULL
                 FROM records ORDER BY rowid",
                args![],
            )
            .unwrap()
            .iter()
            .map(|r| (0..7).map(|i| r.get::<db::Value>(i).unwrap()).collect())
            .collect();
        let live: i64 = db
            .query_one(
                "SELECT CAST(coalesce(SUM(live), 0) AS BIGINT) FROM live_by_village",
                args![],
            )
            .and_then(|r| r.get(0))
            .unwrap();
        (rows, live)
    }

    /// One batch answers and stores exactly what its records sent one batch each do: a record
    /// sees the records before it in its batch as if they were committed — an id seen twice, a
    /// NIK activated earlier in the batch, a void of an earlier record (and the NIK free again
    /// after it), a void of a later one, a record rejected and then sent again fixed.
    #[test]
    fn a_batch_answers_as_its_records_sent_one_by_one() {
        on_both_twice(
            "a_batch_answers_as_its_records_sent_one_by_one",
            |mut a, mut b| {
                let r = a.records(31, 12);
                let v2 = a.void(&r[2]);
                let before = vec![r[0].clone(), r[1].clone(), r[2].clone(), v2];
                let with_nik = |f: &mut Fixture, of: &Record, seed: u64| {
                    let mut x = f.records(seed, 1).remove(0);
                    x.nik = of.nik.clone();
                    x
                };
                let mut changed = r[3].clone();
                changed.phone = "+6281399998888".into();
                let a4 = with_nik(&mut a, &r[0], 41);
                let a6 = with_nik(&mut a, &r[5], 42);
                let v5 = a.void(&r[5]);
                let a7 = with_nik(&mut a, &r[5], 43);
                let v5_again = a.void(&r[5]);
                let v1 = a.void(&r[1]);
                let a8 = with_nik(&mut a, &r[1], 44);
                let v9 = a.void(&r[9]);
                let of_void = a.void(&v5);
                let mut bad10 = r[10].clone();
                bad10.village = "1702999999".into();
                let v6 = a.void(&a6);
                let a11 = with_nik(&mut a, &r[2], 45);
                let mix = vec![
                    r[3].clone(),
                    r[3].clone(),
                    changed,
                    a4,
                    r[5].clone(),
                    a6.clone(),
                    v5,
                    a7,
                    v5_again,
                    v1,
                    a8,
                    v9,
                    r[9].clone(),
                    of_void,
                    r[0].clone(),
                    bad10,
                    r[10].clone(),
                    v6,
                    a11,
                    r[4].clone(),
                    r[4].clone(),
                ];
                let (before_b, mix_b) = (from_device(&b, &before), from_device(&b, &mix));
                a.send(&before);
                b.send(&before_b);
                let batched = a
                    .send_json(serde_json::to_value(a.wire(&mix)).unwrap())
                    .unwrap();
                let one_by_one: Vec<RecordResult> = mix_b
                    .iter()
                    .map(|rec| {
                        let wire = serde_json::to_value(b.wire(std::slice::from_ref(rec))).unwrap();
                        b.send_json(wire).unwrap().response.results.remove(0)
                    })
                    .collect();
                let strip = |rs: &[RecordResult]| -> Vec<_> {
                    rs.iter()
                        .map(|x| {
                            (
                                x.id.clone(),
                                x.status,
                                x.reason.clone(),
                                x.conflict_with.clone(),
                            )
                        })
                        .collect()
                };
                assert_eq!(strip(&batched.response.results), strip(&one_by_one));
                // Every kind of answer is in the mix.
                let reasons: Vec<_> = one_by_one.iter().map(|x| x.reason.as_deref()).collect();
                for want in [
                    None,
                    Some("id_reused"),
                    Some("nik_already_activated"),
                    Some("already_voided"),
                    Some("void_target_unknown"),
                    Some("void_target_not_activation"),
                    Some("village_unknown"),
                ] {
                    assert!(reasons.contains(&want), "{want:?} in {reasons:?}");
                }
                assert!(one_by_one.iter().any(|x| x.status == Outcome::Duplicate));
                assert_eq!(contents(&a), contents(&b));
                let (sa, sb) = (a.store.stats().unwrap(), b.store.stats().unwrap());
                assert_eq!(
                    (
                        sa.records,
                        sa.activations_live,
                        sa.conflicts,
                        sa.voids,
                        sa.rejects
                    ),
                    (
                        sb.records,
                        sb.activations_live,
                        sb.conflicts,
                        sb.voids,
                        sb.rejects
                    )
                );
            },
        );
    }

    #[test]
    fn voids() {
        on_both("voids", |mut f| {
            let recs = f.records(3, 2);
            let v0 = f.void(&recs[0]);
            // A void may travel in the same batch as its target, after it.
            assert_eq!(
                f.send(&[recs[0].clone(), v0.clone()]),
                [(Outcome::Accepted, None), (Outcome::Accepted, None)]
            );
            let twice = f.void(&recs[0]);
            let unknown = f.void(&recs[1]);
            let of_void = f.void(&v0);
            let got = f.send(&[twice, unknown, of_void]);
            assert_eq!(got[0], rejected("already_voided"));
            assert_eq!(got[1], rejected("void_target_unknown"));
            assert_eq!(got[2], rejected("void_target_not_activation"));
            let s = f.store.stats().unwrap();
            assert_eq!((s.records, s.activations_live, s.voids), (2, 0, 1));
            // The NIK counts again once activated anew.
            let mut again = f.records(3, 1).remove(0);
            again.nik = recs[0].nik.clone();
            assert_eq!(f.send(&[again]), [(Outcome::Accepted, None)]);
        });
    }

    #[test]
    fn replay_and_reuse_inside_one_transaction() {
        on_both("replay_and_reuse_inside_one_transaction", |mut f| {
            let recs = f.records(4, 3);
            let body = serde_json::to_vec(&BatchBody {
                protocol: 1,
                batch_id: "b-1".into(),
                device_id: f.device.id(),
                created_at: crate::timefmt::now_utc(),
                records: f.wire(&recs),
            })
            .unwrap();
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, &body).unwrap();
            let gz = gz.finish().unwrap();
            let sig = B64.encode(f.device.sign(&protocol::signed_digest(&gz)));
            let device = f.device.id();
            let inc = Incoming {
                device_id: &device,
                batch_id: "b-1",
                signature: &sig,
                body: &gz,
            };
            let first = ingest(&mut f.store, &f.server, &LIMITS, &inc).unwrap();
            let again = ingest(&mut f.store, &f.server, &LIMITS, &inc).unwrap();
            assert!(!first.replayed && again.replayed);
            assert_eq!(first.body, again.body);
            assert_eq!(first.signature, again.signature);
            assert_eq!(first.gzip, again.gzip);
            // The gzip form is signed over its own bytes and holds the same JSON.
            let (gz_answer, gz_sig) = first.gzip.clone().unwrap();
            assert!(crypto::verify(
                &f.server.public(),
                &protocol::signed_digest(&gz_answer),
                &B64.decode(&gz_sig).unwrap()
            ));
            assert_eq!(gunzip(&gz_answer, 1 << 20).unwrap(), first.body);
            // A batch journalled before answers were compressed replays its plain answer only.
            f.store
            .db()
            .unwrap()
            .execute(
                "UPDATE batches SET response_gzip = NULL, signature_gzip = NULL WHERE id = 'b-1'",
                args![],
            )
            .unwrap();
            let old = ingest(&mut f.store, &f.server, &LIMITS, &inc).unwrap();
            assert!(old.gzip.is_none());
            assert_eq!((old.body, old.signature), (first.body, first.signature));
            assert_eq!(f.store.stats().unwrap().records, 3);
            // Different bytes under the same id (here: another compression level).
            let mut gz2 = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            std::io::Write::write_all(&mut gz2, &body).unwrap();
            let gz2 = gz2.finish().unwrap();
            assert_ne!(gz, gz2);
            let sig2 = B64.encode(f.device.sign(&protocol::signed_digest(&gz2)));
            let inc2 = Incoming {
                signature: &sig2,
                body: &gz2,
                ..inc
            };
            let e = ingest(&mut f.store, &f.server, &LIMITS, &inc2).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (409, "batch_reused"));
        });
    }

    /// Two stores on one PostgreSQL database (as two `serve` processes have) ingest batches of
    /// the same citizens from two devices at the same time, many rounds: each NIK ends up with
    /// exactly one live activation and the other record flagged as its conflict, whichever
    /// batch won; the dashboard's counts equal the records.
    #[test]
    fn two_stores_on_one_postgres_decide_each_nik_once() {
        let Some(pg) = crate::server::pgtest::TestDatabase::create(
            "two_stores_on_one_postgres_decide_each_nik_once",
        ) else {
            return;
        };
        let loc = Location::Postgres(pg.url.clone());
        let mut a = Fixture::on(Store::open(&loc).unwrap(), None);
        let mut b = Fixture::on(Store::open(&loc).unwrap(), None);
        let people_a = a.records(77, 200);
        // Device b records the same citizens (its own ids), in reverse order.
        let mut people_b = b.records(77, 200);
        people_b.reverse();
        for round in 0..4 {
            let (ra, rb) = (
                &people_a[round * 50..(round + 1) * 50],
                &people_b[(3 - round) * 50..(4 - round) * 50],
            );
            let (ga, gb) = std::thread::scope(|s| {
                let ha = s.spawn(|| a.send(ra));
                let hb = s.spawn(|| b.send(rb));
                (ha.join().unwrap(), hb.join().unwrap())
            });
            let accepted = ga
                .iter()
                .chain(&gb)
                .filter(|r| r.0 == Outcome::Accepted)
                .count();
            let conflicts = ga
                .iter()
                .chain(&gb)
                .filter(|r| r == &&(Outcome::Conflict, Some("nik_already_activated".into())))
                .count();
            assert_eq!((accepted, conflicts), (50, 50), "round {round}");
        }
        let s = a.store.stats().unwrap();
        assert_eq!(
            (s.records, s.activations_live, s.conflicts),
            (400, 200, 200)
        );
        let live: i64 =
            pg.count("SELECT CAST(coalesce(SUM(live), 0) AS BIGINT) FROM live_by_village");
        assert_eq!(live, 200);
        let per_nik: i64 = pg.count(
            "SELECT COUNT(*) FROM (SELECT nik FROM live_activations GROUP BY nik HAVING COUNT(*) > 1) x",
        );
        assert_eq!(per_nik, 0);
        drop((a, b));
    }

    /// `r` written as a live activation by hand, in `tx` (a writer that has not committed).
    fn write_live(tx: &mut db::Db<'_>, r: &Record) {
        tx.execute(
            "INSERT INTO records (id, device_id, seq, kind, recorded_at, village, district, regency,
                                  nik, name, phone, officer, team, content_hash, batch_id,
                                  received_at, state)
             VALUES (?1, ?2, ?3, 'activation', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'by hand',
                     'by-hand', ?4, 'accepted')",
            args![
                r.id,
                r.device_id,
                r.seq,
                r.recorded_at,
                r.village,
                &r.village[..6],
                &r.village[..4],
                r.nik,
                r.name,
                r.phone,
                r.officer,
                r.team
            ],
        )
        .unwrap();
    }

    /// A batch writer in another process's place: it writes `r` live in a [`Mode::Ingest`]
    /// transaction, and once this returns it is open; then it waits for `hold`, folds, commits.
    fn open_writer(
        loc: &Location,
        r: &Record,
        hold: impl FnOnce() + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        let (opened, is_open) = std::sync::mpsc::channel();
        let (loc, r) = (loc.clone(), r.clone());
        let writer = std::thread::spawn(move || {
            let store = Store::open(&loc).unwrap();
            let mut db = store.db().unwrap();
            let mut tx = db.begin(Mode::Ingest).unwrap();
            let mark = crate::server::coverage::watermark(&mut tx).unwrap();
            write_live(&mut tx, &r);
            opened.send(()).unwrap();
            hold();
            crate::server::coverage::fold(&mut tx, mark).unwrap();
            tx.commit().unwrap();
        });
        is_open.recv().unwrap();
        writer
    }

    /// Rows of the three aggregates that differ from a recount of the records.
    fn aggregates_off(pg: &crate::server::pgtest::TestDatabase) -> i64 {
        let pairs = [
            (
                "SELECT village, live FROM live_by_village WHERE live <> 0",
                "SELECT village, COUNT(*) FROM live_activations GROUP BY village",
            ),
            (
                "SELECT device_id, hour, live FROM live_by_device_hour WHERE live <> 0",
                "SELECT device_id, ikd_utc_hour(recorded_at), COUNT(*) FROM live_activations
                 GROUP BY 1, 2",
            ),
            (
                "SELECT village, hour, live FROM live_by_village_hour WHERE live <> 0",
                "SELECT village, ikd_utc_hour(recorded_at), COUNT(*) FROM live_activations
                 GROUP BY 1, 2",
            ),
        ];
        pairs
            .iter()
            .map(|(kept, counted)| {
                pg.count(&format!(
                    "SELECT COUNT(*) FROM (({kept} EXCEPT {counted}) UNION ALL
                                           ({counted} EXCEPT {kept})) d"
                ))
            })
            .sum()
    }

    /// On PostgreSQL batches are written side by side, so `rowid` is not commit order: a writer
    /// that drew a small `rowid` may commit after a batch with larger ones. A cursor reader (the
    /// activated list, forwarding) stops below the open writer instead of passing its row for
    /// ever; the late writer's fold counts only its own rows, not the batch that committed
    /// meanwhile; and a batch that races an open writer for one NIK is decided again alone,
    /// a conflict naming the other's record.
    #[test]
    fn writers_side_by_side_on_postgres_miss_nothing_and_count_once() {
        let name = "writers_side_by_side_on_postgres_miss_nothing_and_count_once";
        let Some(pg) = crate::server::pgtest::TestDatabase::create(name) else {
            return;
        };
        let loc = Location::Postgres(pg.url.clone());
        let mut f = Fixture::on(Store::open(&loc).unwrap(), None);
        let recs = f.records(91, 7);
        let page = |f: &Fixture, since: i64| {
            let mut db = f.store.db().unwrap();
            crate::server::activated::page(&mut db, &f.server, since, 100).unwrap()
        };
        f.send(&recs[..1]);
        let cursor = page(&f, 0);
        assert_eq!(cursor.count, 1);

        // A writer draws its row (recs[1]) and stays open while a batch of three commits.
        let (go, gone) = std::sync::mpsc::channel::<()>();
        let writer = open_writer(&loc, &recs[1], move || gone.recv().unwrap());
        f.since = Some(cursor.next);
        let answer = f.send_json(serde_json::to_value(f.wire(&recs[2..5])).unwrap());
        let answer = answer.unwrap().response;
        let statuses: Vec<Outcome> = answer.results.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [Outcome::Accepted; 3]);
        // Committed, but above the open writer: neither its own answer's list nor a reader
        // passes them, nor forwarding.
        let inline = answer.activated.unwrap();
        assert_eq!((inline.count, inline.next), (0, cursor.next));
        let during = page(&f, cursor.next);
        assert_eq!((during.count, during.next), (0, cursor.next));
        assert!(f.store.records_after(cursor.next, 100).unwrap().is_empty());
        go.send(()).unwrap();
        writer.join().unwrap();
        let after = page(&f, cursor.next);
        assert_eq!(
            after.count, 4,
            "the late writer's row and the batch's three"
        );
        let mut got = B64.decode(&after.prefixes).unwrap();
        let mut want: Vec<u8> = recs[1..5]
            .iter()
            .flat_map(|r| protocol::nik_prefix(&r.nik))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(f.store.records_after(cursor.next, 100).unwrap().len(), 4);
        assert_eq!(aggregates_off(&pg), 0, "each row counted once");
        assert_eq!(pg.count("SELECT COUNT(*) FROM live_activations"), 5);

        // An open writer holds recs[5]'s NIK; a batch activating it again waits on the unique
        // index, loses, and is decided again alone: a conflict naming the writer's record.
        let writer = open_writer(&loc, &recs[5], || {
            std::thread::sleep(std::time::Duration::from_millis(700))
        });
        let mut again = f.records(92, 1).remove(0);
        again.nik = recs[5].nik.clone();
        let answer = f
            .send_json(serde_json::to_value(f.wire(&[again, recs[6].clone()])).unwrap())
            .unwrap()
            .response;
        writer.join().unwrap();
        let got: Vec<_> = answer
            .results
            .iter()
            .map(|r| (r.status, r.conflict_with.clone()))
            .collect();
        assert_eq!(
            got,
            [
                (Outcome::Conflict, Some(recs[5].id.clone())),
                (Outcome::Accepted, None)
            ]
        );
        let live_nik = format!(
            "SELECT COUNT(*) FROM live_activations WHERE nik = '{}'",
            recs[5].nik
        );
        assert_eq!(pg.count(&live_nik), 1);
        assert_eq!(aggregates_off(&pg), 0);
        assert_eq!(pg.count("SELECT COUNT(*) FROM live_activations"), 7);
        drop(f);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_cap() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &vec![b' '; 5 << 20]).unwrap();
        let e = gunzip(&gz.finish().unwrap(), 4 << 20).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (413, "decompressed_too_large"));
        assert_eq!(gunzip(b"plain", 100).unwrap_err().code, "bad_gzip");
    }

    /// Server-side ingest rate, in-process (no HTTP; batches cut beforehand, so only the server's
    /// work is timed): `cargo test --release --lib ingest_rate -- --ignored --nocapture`.
    /// Prints; asserts nothing about time.
    #[test]
    #[ignore]
    fn ingest_rate() {
        let mut f = Fixture::new();
        let recs = f.records(9, 20_000);
        let device = f.device.id();
        let batches: Vec<(String, Vec<u8>, String)> = recs
            .chunks(500)
            .map(|chunk| {
                let id = uuid::Uuid::now_v7().to_string();
                let body = serde_json::to_vec(&protocol::BatchBody {
                    protocol: 1,
                    batch_id: id.clone(),
                    device_id: device.clone(),
                    created_at: crate::timefmt::now_utc(),
                    records: f.wire(chunk),
                })
                .unwrap();
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                std::io::Write::write_all(&mut gz, &body).unwrap();
                let gz = gz.finish().unwrap();
                let sig = B64.encode(f.device.sign(&protocol::signed_digest(&gz)));
                (id, gz, sig)
            })
            .collect();
        let started = std::time::Instant::now();
        for (id, body, sig) in &batches {
            let inc = Incoming {
                device_id: &device,
                batch_id: id,
                signature: sig,
                body,
            };
            let a = ingest(&mut f.store, &f.server, &LIMITS, &inc).unwrap();
            assert_eq!(a.response.summary.accepted, 500);
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "ingest: {} records in {secs:.2} s = {:.0} records/s",
            recs.len(),
            recs.len() as f64 / secs
        );
    }
}
