//! Retention (docs/sealing.md): records the district server acknowledged (`synced`) leave the
//! laptop a number of days after the acknowledgement (`[field] retention_days`, default 7).
//! What stays: every record that still needs follow-up (pending, conflict, rejected), counts per
//! day and village of what was purged (so `status` keeps its totals), and the audit log, with one
//! entry per purge. An activation goes only together with its void when it has one, and a void
//! only with its target, so the laptop never shows a voided record as live. A journalled batch
//! body (which holds sealed boxes) is emptied once every record in it is purged.
use crate::error::AppError;
use crate::field::store::Store;
use crate::sqlite::db_error;
use crate::tr;
use rusqlite::{Transaction, TransactionBehavior, params};

/// What a purge removed (or, for a dry run, would remove).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Purge {
    pub dry_run: bool,
    pub older_than_days: u32,
    /// Records acknowledged at or before this time (UTC) are old enough.
    pub cutoff: String,
    pub records: i64,
    pub activations: i64,
    pub voids: i64,
    /// Journalled batch bodies emptied.
    pub batch_bodies: i64,
    /// Records kept because they need follow-up: pending, conflict, rejected.
    pub kept_follow_up: i64,
    /// Acknowledged records kept because they are not old enough yet (or wait for their void's
    /// acknowledgement).
    pub kept_recent: i64,
}

/// Records that may go: acknowledged by `?1`, an activation with no void or a void that may
/// go too, a void whose target may go.
const CANDIDATES: &str = "SELECT r.id FROM records r
    WHERE r.status = 'synced' AND r.status_at <= ?1 AND (
        (r.kind = 'activation' AND NOT EXISTS (
            SELECT 1 FROM records v WHERE v.voids = r.id
            AND NOT (v.status = 'synced' AND v.status_at <= ?1)))
     OR (r.kind = 'void' AND EXISTS (
            SELECT 1 FROM records t WHERE t.id = r.voids
            AND t.status = 'synced' AND t.status_at <= ?1)))";

/// Batches whose records are all gone and whose body is not emptied yet.
const SPENT_BATCHES: &str = "SELECT b.id FROM outbox_batches b
    WHERE b.state = 'answered' AND length(b.body) > 0 AND NOT EXISTS (
        SELECT 1 FROM outbox_members m JOIN records r ON r.id = m.record_id
        WHERE m.batch_id = b.id AND r.id NOT IN (SELECT id FROM purge_now))";

/// Purges (or with `dry_run` only counts) what was acknowledged more than `days` days before
/// `now`.
pub fn purge(
    store: &Store,
    days: u32,
    now: time::OffsetDateTime,
    dry_run: bool,
) -> Result<Purge, AppError> {
    let path = store.path().to_path_buf();
    let dbe = |e| db_error(&path, e);
    let cutoff = crate::timefmt::stamp(now - time::Duration::days(i64::from(days)));
    let tx =
        Transaction::new_unchecked(store.conn(), TransactionBehavior::Immediate).map_err(dbe)?;
    let run = || -> rusqlite::Result<Purge> {
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS purge_now (id TEXT PRIMARY KEY) WITHOUT ROWID;
             DELETE FROM purge_now;",
        )?;
        tx.execute(
            &format!("INSERT INTO purge_now (id) {CANDIDATES}"),
            [&cutoff],
        )?;
        let (records, activations, voids): (i64, i64, i64) = tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(kind = 'activation'), 0), COALESCE(SUM(kind = 'void'), 0)
             FROM records WHERE id IN (SELECT id FROM purge_now)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let (kept_follow_up, synced): (i64, i64) = tx.query_row(
            "SELECT COALESCE(SUM(status <> 'synced'), 0), COALESCE(SUM(status = 'synced'), 0)
             FROM records",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let batch_bodies: i64 = tx.query_row(
            &format!("SELECT COUNT(*) FROM ({SPENT_BATCHES})"),
            [],
            |r| r.get(0),
        )?;
        let out = Purge {
            dry_run,
            older_than_days: days,
            cutoff: cutoff.clone(),
            records,
            activations,
            voids,
            batch_bodies,
            kept_follow_up,
            kept_recent: synced - records,
        };
        if dry_run || (records == 0 && batch_bodies == 0) {
            return Ok(out);
        }
        // Totals first, then the rows (one statement, so a void and its target go together).
        tx.execute(
            "INSERT INTO purged (day, village, activations, voided, voids)
             SELECT substr(r.recorded_at, 1, 10), r.village,
                    SUM(r.kind = 'activation' AND NOT EXISTS (SELECT 1 FROM records v WHERE v.voids = r.id)),
                    SUM(r.kind = 'activation' AND EXISTS (SELECT 1 FROM records v WHERE v.voids = r.id)),
                    SUM(r.kind = 'void')
             FROM records r WHERE r.id IN (SELECT id FROM purge_now)
             GROUP BY 1, 2
             ON CONFLICT (day, village) DO UPDATE SET
                 activations = activations + excluded.activations,
                 voided = voided + excluded.voided,
                 voids = voids + excluded.voids",
            [],
        )?;
        tx.execute(
            &format!("UPDATE outbox_batches SET body = x'' WHERE id IN ({SPENT_BATCHES})"),
            [],
        )?;
        tx.execute(
            "DELETE FROM records WHERE id IN (SELECT id FROM purge_now)",
            [],
        )?;
        tx.execute(
            "INSERT INTO audit (at, action, detail) VALUES (?1, 'purge', ?2)",
            params![
                crate::timefmt::now_utc(),
                format!(
                    "{records} records acknowledged by the server at or before {cutoff} purged \
                     ({activations} activations, {voids} voids, {batch_bodies} batch bodies); \
                     {kept_follow_up} kept for follow-up"
                )
            ],
        )?;
        Ok(out)
    };
    let out = run().map_err(dbe)?;
    tx.execute_batch("DELETE FROM purge_now").map_err(dbe)?;
    tx.commit().map_err(dbe)?;
    if !dry_run && (out.records > 0 || out.batch_bodies > 0) {
        crate::field::sealing::scrub(store)?;
    }
    Ok(out)
}

/// One line about a purge, for `purge` and `sync`.
impl Purge {
    /// What was (or would be) purged and kept, in the officer's words.
    pub fn describe(&self) -> String {
        let p = self;
        let what = if p.dry_run {
            tr!(
                "Akan dihapus dari laptop (uji, tidak ada yang diubah): {} catatan ({} aktivasi, {} pembatalan) yang diterima server lebih dari {} hari lalu.",
                "Would be purged from this laptop (dry run, nothing changed): {} records ({} activations, {} voids) acknowledged by the server more than {} days ago.",
                p.records,
                p.activations,
                p.voids,
                p.older_than_days
            )
        } else {
            tr!(
                "Dihapus dari laptop: {} catatan ({} aktivasi, {} pembatalan) yang diterima server lebih dari {} hari lalu; jumlahnya tetap tercatat.",
                "Purged from this laptop: {} records ({} activations, {} voids) acknowledged by the server more than {} days ago; their counts are kept.",
                p.records,
                p.activations,
                p.voids,
                p.older_than_days
            )
        };
        format!(
            "{what}\n{}",
            tr!(
                "Tetap disimpan: {} yang perlu tindak lanjut (menunggu/konflik/ditolak), {} yang belum cukup lama.",
                "Kept: {} needing follow-up (pending/conflict/rejected), {} not old enough yet.",
                p.kept_follow_up,
                p.kept_recent
            )
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SyncStatus;
    use crate::field::datadir::DataDir;

    fn kit(n: usize) -> (tempfile::TempDir, DataDir) {
        let tmp = tempfile::tempdir().unwrap();
        let key = crate::seal::server_public_hex(&crate::crypto::KeyPair::from_seed([9; 32]));
        let mut dd = DataDir::init_with(&tmp.path().join("f"), "P", "T", Some(&key)).unwrap();
        let today = time::macros::date!(2026 - 11 - 23);
        for input in crate::synth::citizens(3, "1702", n) {
            let v = crate::domain::validate::activation(&input, today).unwrap();
            dd.store.record_activation(&v, &dd.identity).unwrap();
        }
        (tmp, dd)
    }

    fn count(dd: &DataDir, sql: &str) -> i64 {
        dd.store.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn purges_only_what_was_acknowledged_long_enough_ago() {
        let (_t, mut dd) = kit(6);
        let s = &dd.store;
        for (seq, st) in [
            (1, SyncStatus::Synced),
            (2, SyncStatus::Synced),
            (3, SyncStatus::Conflict),
            (4, SyncStatus::Rejected),
        ] {
            let id = s.find(&seq.to_string()).unwrap().record.id;
            s.set_status(&id, st, None).unwrap();
        }
        // #2 is voided by #7, whose acknowledgement has not come: #2 stays with it.
        let target = s.find("2").unwrap();
        let v = dd
            .store
            .record_void(&target, "salah", &dd.identity)
            .unwrap();
        let now = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
        let before = dd.store.counts_by_status().unwrap();
        // Acknowledged just now: not old enough at 7 days.
        let p = purge(&dd.store, 7, now, false).unwrap();
        assert_eq!((p.records, p.kept_recent, p.kept_follow_up), (0, 2, 5));
        // Dry run counts and changes nothing.
        let p = purge(&dd.store, 0, now, true).unwrap();
        assert_eq!((p.records, p.activations, p.voids), (1, 1, 0));
        assert_eq!(count(&dd, "SELECT COUNT(*) FROM records"), 7);
        let p = purge(&dd.store, 0, now, false).unwrap();
        assert_eq!(p.records, 1);
        assert!(dd.store.find("1").is_err());
        // Pending, conflict, rejected and the voided pair awaiting acknowledgement stay.
        for seq in ["2", "3", "4", "5", "6", "7"] {
            dd.store.find(seq).unwrap();
        }
        // Counts and the audit trail stay.
        assert_eq!(dd.store.counts_by_status().unwrap(), before);
        assert_eq!(
            count(&dd, "SELECT COUNT(*) FROM audit WHERE action = 'purge'"),
            1
        );
        assert_eq!(
            count(&dd, "SELECT COUNT(*) FROM audit WHERE action = 'record'"),
            6
        );
        // Once the void is acknowledged, the pair goes together; the live count is unchanged.
        dd.store
            .set_status(&v.id, SyncStatus::Synced, None)
            .unwrap();
        let live = dd.store.activations_by_village().unwrap();
        let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
        let p = purge(&dd.store, 0, later, false).unwrap();
        assert_eq!((p.activations, p.voids), (1, 1));
        assert_eq!(dd.store.activations_by_village().unwrap(), live);
        let synced = dd.store.counts_by_status().unwrap()[1];
        assert_eq!(synced, (SyncStatus::Synced, 3));
        // Never a record that still needs follow-up, even by hand.
        let pending = dd.store.find("5").unwrap().record.id;
        assert!(
            dd.store
                .conn()
                .execute("DELETE FROM records WHERE id = ?1", [&pending])
                .is_err()
        );
    }

    #[test]
    fn a_batch_body_is_emptied_once_all_its_records_are_gone() {
        let (_t, mut dd) = kit(3);
        let dev = dd.identity.device_id.clone();
        let b = crate::field::outbox::cut(&mut dd.store, &dd.key, &dev, 2, 0)
            .unwrap()
            .unwrap();
        let answer = crate::protocol::BatchResponse {
            protocol: 1,
            batch_id: b.id.clone(),
            server_id: "s".into(),
            received_at: crate::timefmt::now_utc(),
            results: vec![
                crate::protocol::RecordResult {
                    id: dd.store.find("1").unwrap().record.id,
                    status: crate::protocol::Outcome::Accepted,
                    reason: None,
                    conflict_with: None,
                    conflict: None,
                },
                crate::protocol::RecordResult {
                    id: dd.store.find("2").unwrap().record.id,
                    status: crate::protocol::Outcome::Rejected,
                    reason: Some("bad_village".into()),
                    conflict_with: None,
                    conflict: None,
                },
            ],
            summary: Default::default(),
            activated: None,
            limits: None,
        };
        crate::field::outbox::apply_answer(&mut dd.store, &b, &answer).unwrap();
        let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(1);
        let p = purge(&dd.store, 0, later, false).unwrap();
        // #1 goes; the body stays while the rejected #2 (in the same batch) is kept.
        assert_eq!((p.records, p.batch_bodies), (1, 0));
        let body_len = |dd: &DataDir| {
            count(
                dd,
                &format!(
                    "SELECT length(body) FROM outbox_batches WHERE id = '{}'",
                    b.id
                ),
            )
        };
        assert!(body_len(&dd) > 0);
        // A batch whose records are all acknowledged and purged loses its body (sealed boxes).
        let c = crate::field::outbox::cut(&mut dd.store, &dd.key, &dev, 10, 0)
            .unwrap()
            .unwrap();
        let third = dd.store.find("3").unwrap().record.id;
        let answer_c = crate::protocol::BatchResponse {
            batch_id: c.id.clone(),
            results: vec![crate::protocol::RecordResult {
                id: third,
                status: crate::protocol::Outcome::Duplicate,
                reason: None,
                conflict_with: None,
                conflict: None,
            }],
            ..answer
        };
        crate::field::outbox::apply_answer(&mut dd.store, &c, &answer_c).unwrap();
        let later = later + time::Duration::seconds(1);
        let p = purge(&dd.store, 0, later, false).unwrap();
        assert_eq!((p.records, p.batch_bodies), (1, 1));
        assert_eq!(
            count(
                &dd,
                &format!(
                    "SELECT length(body) FROM outbox_batches WHERE id = '{}'",
                    c.id
                )
            ),
            0
        );
        assert!(body_len(&dd) > 0);
        // An open batch's body can never be emptied; an answered one only once all is gone.
        assert!(
            dd.store
                .conn()
                .execute("UPDATE outbox_batches SET body = x'00'", [])
                .is_err()
        );
    }
}
