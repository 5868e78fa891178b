//! The field database: SQLite in WAL mode with `synchronous=FULL`, so a record whose command
//! reported success survives kill -9 and power loss. Schema changes go through the numbered
//! migrations below. Record content is immutable (enforced by a trigger); only its sync status
//! changes, its seal moves once from the holding key to the district key, and a record the
//! server acknowledged may be purged (field/retention.rs). Every action is appended to the audit
//! log, which cannot be updated or deleted.
//!
//! A citizen's full NIK, phone and e-mail never reach this file in clear: they are sealed at
//! capture (field/sealing.rs, docs/sealing.md). What stays readable is what the slip shows:
//! the masked NIK, name, village and time.
use crate::domain::SyncStatus;
use crate::error::AppError;
use crate::sqlite;
use crate::sqlite::db_error;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};

pub use super::schema::MIGRATIONS;

/// Keys for sealing at capture, set by `field::sealing::prepare` when the data directory opens.
/// Where a new record is sealed to is decided inside its transaction: the district's key when
/// the database knows it, else the holding key.
#[derive(Clone)]
pub struct Sealing {
    /// The device's key for the keyed NIK hash (`seal::tag_key`).
    pub tag_key: [u8; 32],
    /// The holding key's public half, when there is one (no district key yet).
    pub holding: Option<[u8; 32]>,
}

/// `meta` key of the district's sealing public key (hex).
pub const M_DISTRICT_SEAL: &str = "seal.district_key";

/// Who this device is, as kept in the database's meta table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Identity {
    pub device_id: String,
    pub public_key: String,
    pub officer: String,
    pub team: String,
    pub created_at: String,
}

pub struct Store {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    pub(super) sealing: Option<Sealing>,
}

impl Store {
    fn connect(path: &Path, create: bool) -> Result<Store, AppError> {
        let conn = sqlite::open(path, create).map_err(|e| db_error(path, e))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            sealing: None,
        };
        store.configure().map_err(|e| db_error(path, e))?;
        store.migrate().map_err(|e| db_error(path, e))?;
        Ok(store)
    }

    pub fn create(path: &Path) -> Result<Store, AppError> {
        Store::connect(path, true)
    }

    pub fn open(path: &Path) -> Result<Store, AppError> {
        Store::connect(path, false)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The keys new records are sealed with (set once the data directory's keys are loaded).
    pub fn set_sealing(&mut self, sealing: Sealing) {
        self.sealing = Some(sealing);
    }

    pub fn sealing(&self) -> Option<&Sealing> {
        self.sealing.as_ref()
    }

    /// For modules that need their own transactions (the sync outbox).
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub(super) fn err(&self, e: rusqlite::Error) -> AppError {
        db_error(&self.path, e)
    }

    fn configure(&mut self) -> rusqlite::Result<()> {
        // secure_delete: freed space (a purged record, a replaced seal) is overwritten with zeros.
        let mode = sqlite::configure(
            &self.conn,
            std::time::Duration::from_secs(10),
            "PRAGMA secure_delete=ON;",
        )?;
        debug_assert_eq!(mode, "wal");
        Ok(())
    }

    fn migrate(&mut self) -> rusqlite::Result<()> {
        sqlite::migrate(&mut self.conn, MIGRATIONS)
    }

    /// Number of migrations applied.
    pub fn schema_version(&self) -> Result<usize, AppError> {
        sqlite::user_version(&self.conn)
            .map(|v| v as usize)
            .map_err(|e| self.err(e))
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, AppError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), AppError> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn init_identity(&mut self, id: &Identity) -> Result<(), AppError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_error(&self.path, e))?;
        let run = || -> rusqlite::Result<()> {
            for (k, v) in [
                ("device_id", &id.device_id),
                ("public_key", &id.public_key),
                ("officer", &id.officer),
                ("team", &id.team),
                ("created_at", &id.created_at),
            ] {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                    params![k, v],
                )?;
            }
            tx.execute(
                "INSERT INTO audit (at, action, detail) VALUES (?1, 'init', ?2)",
                params![
                    id.created_at,
                    format!(
                        "device {} officer {} team {}",
                        id.device_id, id.officer, id.team
                    )
                ],
            )?;
            Ok(())
        };
        run().map_err(|e| db_error(&self.path, e))?;
        tx.commit().map_err(|e| db_error(&self.path, e))
    }

    /// Changes the officer and team new records carry (records already written keep theirs).
    /// The names are checked by the caller (`validate::label`).
    pub fn set_officer_team(&self, officer: &str, team: &str) -> Result<(), AppError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| db_error(&self.path, e))?;
        let run = || -> rusqlite::Result<()> {
            for (k, v) in [("officer", officer), ("team", team)] {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![k, v],
                )?;
            }
            tx.execute(
                "INSERT INTO audit (at, action, detail) VALUES (?1, 'officer', ?2)",
                params![
                    crate::timefmt::now_utc(),
                    format!("officer {officer} team {team}")
                ],
            )?;
            Ok(())
        };
        run().map_err(|e| db_error(&self.path, e))?;
        tx.commit().map_err(|e| db_error(&self.path, e))
    }

    pub fn identity(&self) -> Result<Option<Identity>, AppError> {
        let Some(device_id) = self.meta("device_id")? else {
            return Ok(None);
        };
        Ok(Some(Identity {
            device_id,
            public_key: self.meta("public_key")?.unwrap_or_default(),
            officer: self.meta("officer")?.unwrap_or_default(),
            team: self.meta("team")?.unwrap_or_default(),
            created_at: self.meta("created_at")?.unwrap_or_default(),
        }))
    }

    /// Appends to the audit log (outside a record transaction: sync attempts, reprints…).
    pub fn audit(
        &self,
        action: &str,
        record_id: Option<&str>,
        detail: &str,
    ) -> Result<(), AppError> {
        self.conn
            .execute(
                "INSERT INTO audit (at, action, record_id, detail) VALUES (?1, ?2, ?3, ?4)",
                params![crate::timefmt::now_utc(), action, record_id, detail],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Runs `work` in one IMMEDIATE transaction and commits it (durably: WAL + FULL) before
    /// returning, so a caller reports success only for what is on disk.
    pub(super) fn in_transaction<T>(
        &mut self,
        work: impl FnOnce(&rusqlite::Transaction<'_>, &Path) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_error(&path, e))?;
        let out = work(&tx, &path)?;
        tx.commit().map_err(|e| db_error(&path, e))?;
        Ok(out)
    }

    /// Sets the sync status of one record (the only change a stored record ever gets).
    pub fn set_status(
        &self,
        id: &str,
        status: SyncStatus,
        reason: Option<&str>,
    ) -> Result<(), AppError> {
        self.conn
            .execute(
                "UPDATE records SET status = ?2, status_reason = ?3, status_at = ?4 WHERE id = ?1",
                params![id, status.as_str(), reason, crate::timefmt::now_utc()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// `PRAGMA integrity_check`, "ok" when healthy.
    pub fn integrity_check(&self) -> Result<String, AppError> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validate::Valid;
    use crate::domain::validate::{Input, activation};
    use crate::error::Kind as ErrKind;
    use crate::field::records::Filter;

    fn store() -> (tempfile::TempDir, Store, Identity) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::create(&dir.path().join("f.db")).unwrap();
        let who = Identity {
            device_id: "0011223344556677".into(),
            public_key: "ab".into(),
            officer: "PETUGAS UJI".into(),
            team: "TIM 1".into(),
            created_at: crate::timefmt::now_utc(),
        };
        s.init_identity(&who).unwrap();
        let district = crate::seal::server_public_hex(&crate::crypto::KeyPair::from_seed([9; 32]));
        s.set_meta(M_DISTRICT_SEAL, &district).unwrap();
        s.set_sealing(Sealing {
            tag_key: [5; 32],
            holding: None,
        });
        (dir, s, who)
    }

    fn valid(nik: &str) -> Valid {
        let input = Input {
            nik: nik.into(),
            name: "Siti Aminah".into(),
            phone: "081234567890".into(),
            email: String::new(),
            village: "1702061004".into(),
        };
        activation(&input, time::macros::date!(2026 - 11 - 23)).unwrap()
    }

    #[test]
    fn records_get_sequence_and_audit() {
        let (_d, mut s, who) = store();
        let a = s
            .record_activation(&valid("1702064107950003"), &who)
            .unwrap();
        let b = s
            .record_activation(&valid("1702061708900001"), &who)
            .unwrap();
        assert_eq!((a.seq, b.seq), (1, 2));
        assert_ne!(a.id, b.id);
        let n: i64 = s
            .conn
            .query_row(
                "SELECT COUNT(*) FROM audit WHERE action='record'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(s.find(&a.id).unwrap().record, a);
        assert_eq!(s.find("2").unwrap().record, b); // by sequence number, as tables show it
        assert_eq!(s.find(&b.id[24..]).unwrap_err().kind, ErrKind::Usage); // not a prefix
        assert_eq!(s.find("99").unwrap_err().kind, ErrKind::Usage);
    }

    #[test]
    fn duplicate_nik_refused_until_voided() {
        let (_d, mut s, who) = store();
        let a = s
            .record_activation(&valid("1702064107950003"), &who)
            .unwrap();
        let e = s
            .record_activation(&valid("1702064107950003"), &who)
            .unwrap_err();
        assert_eq!(e.kind, ErrKind::Duplicate);
        assert_eq!(e.details["earlier_id"], a.id);
        let target = s.find(&a.id).unwrap();
        let v = s.record_void(&target, "salah ketik", &who).unwrap();
        assert_eq!(v.voids.as_deref(), Some(a.id.as_str()));
        assert_eq!(
            s.find(&a.id).unwrap().voided_by.as_deref(),
            Some(v.id.as_str())
        );
        // After the void the person can be recorded again.
        assert!(
            s.record_activation(&valid("1702064107950003"), &who)
                .is_ok()
        );
        // A record can be voided only once.
        assert!(s.record_void(&target, "lagi", &who).is_err());
    }

    #[test]
    fn bulk_insert_answers_each_record() {
        let (_d, mut s, who) = store();
        let batch = [
            valid("1702064107950003"),
            valid("1702061708900001"),
            valid("1702064107950003"),
        ];
        let out = s.record_activations(&batch, &who).unwrap();
        assert_eq!(out[0].as_ref().unwrap().seq, 1);
        assert_eq!(out[1].as_ref().unwrap().seq, 2);
        assert_eq!(out[2].as_ref().unwrap_err().kind, ErrKind::Duplicate);
        assert_eq!(s.list(&Filter::default()).unwrap().len(), 2);
    }

    #[test]
    fn content_is_immutable_and_audit_append_only() {
        let (_d, mut s, who) = store();
        let a = s
            .record_activation(&valid("1702064107950003"), &who)
            .unwrap();
        assert!(
            s.conn
                .execute("UPDATE records SET name = 'X' WHERE id = ?1", [&a.id])
                .is_err()
        );
        s.set_status(&a.id, SyncStatus::Synced, None).unwrap();
        assert_eq!(s.find(&a.id).unwrap().status, SyncStatus::Synced);
        assert!(s.conn.execute("DELETE FROM audit", []).is_err());
        assert!(s.conn.execute("UPDATE audit SET action = 'x'", []).is_err());
    }

    #[test]
    fn full_identifiers_are_only_in_the_sealed_box() {
        let (_d, mut s, who) = store();
        let mut input = Input {
            nik: "1702064107950003".into(),
            name: "Siti Aminah".into(),
            phone: "0812-3456-7890".into(),
            email: "siti.aminah@example.org".into(),
            village: "1702061004".into(),
        };
        let today = time::macros::date!(2026 - 11 - 23);
        let a = s
            .record_activation(&activation(&input, today).unwrap(), &who)
            .unwrap();
        // What the laptop keeps and shows: the masked NIK, no phone, no e-mail.
        assert_eq!(
            (a.nik.as_str(), a.phone.as_str(), a.email.as_deref()),
            ("170206******0003", "", None)
        );
        let got = s.find(&a.id).unwrap();
        assert_eq!((&got.record, got.sealed), (&a, "district"));
        // The district opens the box to the full values.
        let (sealed, to): (Vec<u8>, String) = s
            .conn
            .query_row(
                "SELECT sealed, sealed_to FROM records WHERE id = ?1",
                [&a.id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(to.starts_with("district:"));
        let opened = crate::seal::OpenKey::of_server(&crate::crypto::KeyPair::from_seed([9; 32]))
            .open(&sealed)
            .unwrap();
        assert_eq!(
            (opened.nik.as_str(), opened.phone.as_str()),
            ("1702064107950003", "+6281234567890")
        );
        assert_eq!(opened.email.as_deref(), Some("siti.aminah@example.org"));
        // The duplicate check works on the keyed hash; a void carries the same box.
        input.name = "Siti A".into();
        let e = s
            .record_activation(&activation(&input, today).unwrap(), &who)
            .unwrap_err();
        assert_eq!(e.kind, ErrKind::Duplicate);
        let v = s.record_void(&got, "salah", &who).unwrap();
        let void_box: Vec<u8> = s
            .conn
            .query_row("SELECT sealed FROM records WHERE id = ?1", [&v.id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(void_box, sealed);
        // A district seal never changes; a row cannot be deleted unless acknowledged.
        assert!(
            s.conn
                .execute(
                    "UPDATE records SET sealed = x'00', sealed_to = 'district:x' WHERE id = ?1",
                    [&a.id]
                )
                .is_err()
        );
        assert!(
            s.conn
                .execute("UPDATE records SET nik_tag = x'00' WHERE id = ?1", [&a.id])
                .is_err()
        );
        assert!(
            s.conn
                .execute("DELETE FROM records WHERE id = ?1", [&v.id])
                .is_err()
        );
    }

    #[test]
    fn without_any_sealing_key_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::create(&dir.path().join("f.db")).unwrap();
        let who = Identity {
            device_id: "0011223344556677".into(),
            public_key: "ab".into(),
            officer: "P".into(),
            team: "T".into(),
            created_at: crate::timefmt::now_utc(),
        };
        assert!(
            s.record_activation(&valid("1702064107950003"), &who)
                .is_err()
        );
        s.set_sealing(Sealing {
            tag_key: [5; 32],
            holding: None,
        });
        assert!(
            s.record_activation(&valid("1702064107950003"), &who)
                .is_err()
        );
        assert_eq!(s.list(&Filter::default()).unwrap().len(), 0);
    }

    #[test]
    fn pragmas_are_durable() {
        let (_d, s, _) = store();
        let mode: String = s
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        let sync: i64 = s
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!((mode.as_str(), sync), ("wal", 2));
        let secure: i64 = s
            .conn
            .query_row("PRAGMA secure_delete", [], |r| r.get(0))
            .unwrap();
        assert_eq!(secure, 1);
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
    }

    #[test]
    fn full_disk_is_a_clear_error_and_nothing_half_written() {
        let (_d, mut s, who) = store();
        s.record_activation(&valid("1702064107950003"), &who)
            .unwrap();
        // Cap the file at its current size: the next write fails as SQLITE_FULL would on a full disk.
        let pages: i64 = s
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        s.conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
            .unwrap();
        let people = crate::synth::citizens(3, "1702", 200);
        let today = time::macros::date!(2026 - 11 - 23);
        let batch: Vec<Valid> = people
            .iter()
            .map(|p| activation(p, today).unwrap())
            .collect();
        let e = s.record_activations(&batch, &who).unwrap_err();
        assert!(
            e.message.contains("Disk penuh") || e.message.contains("disk is full"),
            "{}",
            e.message
        );
        // All or nothing: the batch left no trace, the earlier record is intact.
        assert_eq!(s.list(&Filter::default()).unwrap().len(), 1);
        assert_eq!(s.integrity_check().unwrap(), "ok");
    }

    #[test]
    fn garbage_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.db");
        std::fs::write(&p, vec![0x42u8; 8192]).unwrap();
        let e = Store::open(&p).err().unwrap();
        assert!(
            e.message.contains("rusak") || e.message.contains("damaged"),
            "{}",
            e.message
        );
    }
}
