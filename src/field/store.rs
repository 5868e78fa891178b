//! The field database: SQLite in WAL mode with `synchronous=FULL`, so a record whose command
//! reported success survives kill -9 and power loss. Schema changes go through the numbered
//! migrations below. Record content is immutable (enforced by a trigger); only its sync status
//! changes. Every action is appended to the audit log, which cannot be updated or deleted.
use super::datadir::Identity;
use crate::domain::validate::Valid;
use crate::domain::{Kind, Record, SyncStatus};
use crate::error::{AppError, Kind as ErrKind};
use crate::{sqlite, tr};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, TransactionBehavior, params};
use std::path::{Path, PathBuf};

/// Numbered migrations; `PRAGMA user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: records, audit log, identity.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
    CREATE TABLE records (
        id            TEXT PRIMARY KEY,
        seq           INTEGER NOT NULL UNIQUE,
        device_id     TEXT NOT NULL,
        officer       TEXT NOT NULL,
        team          TEXT NOT NULL,
        recorded_at   TEXT NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('activation', 'void')),
        village       TEXT NOT NULL,
        nik           TEXT NOT NULL,
        name          TEXT NOT NULL,
        phone         TEXT NOT NULL,
        email         TEXT,
        voids         TEXT REFERENCES records(id),
        reason        TEXT,
        warnings      TEXT NOT NULL DEFAULT '[]',
        status        TEXT NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'synced', 'conflict', 'rejected')),
        status_reason TEXT,
        status_at     TEXT
    ) STRICT;
    CREATE INDEX records_nik ON records(nik);
    CREATE INDEX records_status ON records(status, seq);
    CREATE INDEX records_village ON records(village);
    CREATE UNIQUE INDEX records_one_void ON records(voids) WHERE voids IS NOT NULL;
    CREATE TRIGGER records_immutable
        BEFORE UPDATE OF id, seq, device_id, officer, team, recorded_at, kind, village, nik, name,
                         phone, email, voids, reason, warnings ON records
    BEGIN SELECT RAISE(ABORT, 'records are immutable: record a void instead'); END;
    CREATE TABLE audit (
        id        INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        action    TEXT NOT NULL,
        record_id TEXT,
        detail    TEXT
    ) STRICT;
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    "#,
    // 2: the sync outbox (batch journal), see field/outbox.rs.
    super::outbox::SCHEMA,
    // 3: the district's already-activated NIK hash prefixes, see field/activated.rs.
    super::activated::SCHEMA,
];

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// A record with its sync state and whether a later void cancels it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stored {
    #[serde(flatten)]
    pub record: Record,
    pub status: SyncStatus,
    pub status_reason: Option<String>,
    pub status_at: Option<String>,
    pub voided_by: Option<String>,
}

impl Stored {
    /// A record just written: pending, never answered, not voided (what a read-back would give).
    pub fn new_pending(record: Record) -> Stored {
        Stored {
            record,
            status: SyncStatus::Pending,
            status_reason: None,
            status_at: None,
            voided_by: None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<SyncStatus>,
    pub village: Option<String>,
    pub limit: Option<usize>,
}

/// Turns a SQLite error into something a field officer can act on.
pub fn db_error(path: &Path, e: rusqlite::Error) -> AppError {
    let code = e.sqlite_error_code();
    let p = path.display();
    match code {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => AppError::other(tr!(
            "Database {p} rusak atau bukan database ikd-field ({e}).",
            "The database {p} is damaged or is not an ikd-field database ({e})."
        ))
        .hint(tr!(
            "Jangan hapus berkas itu. Salin folder datanya ke flashdisk dan hubungi admin Dinas; catatan yang sudah terkirim aman di server.",
            "Do not delete the file. Copy the data folder to a USB stick and call the district admin; synced records are safe on the server."
        )),
        Some(ErrorCode::DiskFull) => AppError::other(tr!(
            "Disk penuh: catatan TIDAK disimpan ({p}).",
            "The disk is full: the record was NOT saved ({p})."
        ))
        .hint(tr!(
            "Kosongkan ruang disk (hapus berkas lain, bukan folder ikd-field), lalu ulangi perintahnya.",
            "Free some disk space (delete other files, not the ikd-field folder), then run the command again."
        )),
        Some(ErrorCode::ReadOnly) | Some(ErrorCode::PermissionDenied) | Some(ErrorCode::CannotOpen) => {
            AppError::other(tr!(
                "Database {p} tidak bisa dibuka untuk ditulis ({e}).",
                "Cannot open the database {p} for writing ({e})."
            ))
            .hint(tr!(
                "Periksa izin folder data dan ruang disk, atau pakai --data-dir.",
                "Check the data folder's permissions and free space, or use --data-dir."
            ))
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => AppError::other(tr!(
            "Database {p} sedang dipakai proses lain terlalu lama.",
            "The database {p} has been busy in another process for too long."
        ))
        .hint(tr!("Tunggu sebentar lalu ulangi.", "Wait a moment and try again.")),
        _ => AppError::other(tr!("Kesalahan database {p}: {e}", "Database error in {p}: {e}")),
    }
}

pub(crate) const RECORD_COLUMNS: &str = "id, seq, device_id, officer, team, recorded_at, kind, village, nik, \
     name, phone, email, voids, reason, warnings, status, status_reason, status_at, \
     (SELECT v.id FROM records v WHERE v.voids = records.id)";

/// The live (not voided) activation of a NIK (`?1`) on this device.
fn live_activation_sql() -> String {
    format!(
        "SELECT {RECORD_COLUMNS} FROM records WHERE nik = ?1 AND kind = 'activation'
         AND NOT EXISTS (SELECT 1 FROM records v WHERE v.voids = records.id) LIMIT 1"
    )
}

pub(crate) fn row_to_stored(row: &Row<'_>) -> rusqlite::Result<Stored> {
    let kind: String = row.get(6)?;
    let warnings: String = row.get(14)?;
    let status: String = row.get(15)?;
    Ok(Stored {
        record: Record {
            id: row.get(0)?,
            seq: row.get(1)?,
            device_id: row.get(2)?,
            officer: row.get(3)?,
            team: row.get(4)?,
            recorded_at: row.get(5)?,
            kind: Kind::parse(&kind).unwrap_or(Kind::Activation),
            village: row.get(7)?,
            nik: row.get(8)?,
            name: row.get(9)?,
            phone: row.get(10)?,
            email: row.get(11)?,
            voids: row.get(12)?,
            reason: row.get(13)?,
            warnings: serde_json::from_str(&warnings).unwrap_or_default(),
        },
        status: SyncStatus::parse(&status).unwrap_or(SyncStatus::Pending),
        status_reason: row.get(16)?,
        status_at: row.get(17)?,
        voided_by: row.get(18)?,
    })
}

impl Store {
    fn connect(path: &Path, create: bool) -> Result<Store, AppError> {
        let conn = sqlite::open(path, create).map_err(|e| db_error(path, e))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
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

    /// For modules that need their own transactions (the sync outbox).
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    fn err(&self, e: rusqlite::Error) -> AppError {
        db_error(&self.path, e)
    }

    fn configure(&mut self) -> rusqlite::Result<()> {
        let mode = sqlite::configure(&self.conn, std::time::Duration::from_secs(10), "")?;
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

    /// Stores a validated activation durably; refuses a NIK already activated on this device.
    pub fn record_activation(&mut self, v: &Valid, who: &Identity) -> Result<Record, AppError> {
        let mut out = self.record_activations(std::slice::from_ref(v), who)?;
        out.pop().expect("one result per input")
    }

    /// Stores many activations in one transaction (a paper list typed in later, the demo, the
    /// benchmark). Each gets its own answer: a duplicate NIK refuses that one and not the rest.
    /// A database failure refuses them all (nothing is half-written).
    pub fn record_activations(
        &mut self,
        valid: &[Valid],
        who: &Identity,
    ) -> Result<Vec<Result<Record, AppError>>, AppError> {
        self.in_transaction(|tx, path| {
            valid
                .iter()
                .map(|v| {
                    insert(tx, path, Some(&v.nik.nik), |seq| {
                        Record::activation(v, seq, &who.device_id, &who.officer, &who.team)
                    })
                })
                .collect()
        })
    }

    /// Records a void of `target` (which must be a live activation), as a new record.
    pub fn record_void(
        &mut self,
        target: &Stored,
        reason: &str,
        who: &Identity,
    ) -> Result<Record, AppError> {
        let t = &target.record;
        self.in_transaction(|tx, path| {
            insert(tx, path, None, |seq| Record {
                id: uuid::Uuid::now_v7().to_string(),
                seq,
                device_id: who.device_id.clone(),
                officer: who.officer.clone(),
                team: who.team.clone(),
                recorded_at: crate::timefmt::now_utc(),
                kind: Kind::Void,
                village: t.village.clone(),
                nik: t.nik.clone(),
                name: t.name.clone(),
                phone: t.phone.clone(),
                email: t.email.clone(),
                voids: Some(t.id.clone()),
                reason: Some(reason.to_string()),
                warnings: vec![],
            })
        })?
    }

    /// Runs `work` in one IMMEDIATE transaction and commits it (durably: WAL + FULL) before
    /// returning, so a caller reports success only for what is on disk.
    fn in_transaction<T>(
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

    /// A record by its sequence number on this device (`12`, as tables show it), its full id, or
    /// a unique prefix of its id of at least 8 characters.
    pub fn find(&self, id: &str) -> Result<Stored, AppError> {
        let id = id.trim().trim_start_matches('#');
        let not_found = || {
            AppError::usage(tr!("Catatan '{id}' tidak ditemukan.", "No record '{id}'.")).hint(tr!(
                "Lihat daftar dengan: ikd-field list",
                "See the list with: ikd-field list"
            ))
        };
        if let Ok(seq) = id.parse::<i64>()
            && id.len() < 12
        {
            let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE seq = ?1");
            return self
                .conn
                .query_row(&sql, [seq], row_to_stored)
                .optional()
                .map_err(|e| self.err(e))?
                .ok_or_else(not_found);
        }
        if id.len() < 8 {
            return Err(not_found());
        }
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE id >= ?1 AND id < ?1 || '~' LIMIT 2"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let found: Vec<Stored> = stmt
            .query_map([id], row_to_stored)
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))?;
        match found.len() {
            1 => Ok(found.into_iter().next().unwrap()),
            0 => Err(not_found()),
            _ => Err(AppError::usage(tr!(
                "Awalan '{id}' cocok dengan lebih dari satu catatan; ketik id lebih panjang.",
                "Prefix '{id}' matches more than one record; type more of the id."
            ))),
        }
    }

    pub fn list(&self, f: &Filter) -> Result<Vec<Stored>, AppError> {
        let sql = format!(
            "SELECT {RECORD_COLUMNS} FROM records
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR village = ?2)
             ORDER BY seq LIMIT ?3"
        );
        let limit = f.limit.map(|l| l as i64).unwrap_or(-1);
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        stmt.query_map(
            params![f.status.map(|s| s.as_str()), f.village, limit],
            row_to_stored,
        )
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    /// Calls `each` for every record in sequence order without holding them all in memory.
    pub fn for_each(
        &self,
        mut each: impl FnMut(Stored) -> Result<(), AppError>,
    ) -> Result<(), AppError> {
        let sql = format!("SELECT {RECORD_COLUMNS} FROM records ORDER BY seq");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            each(row_to_stored(row).map_err(|e| self.err(e))?)?;
        }
        Ok(())
    }

    /// Counts of records by sync status (all four, zeros included).
    pub fn counts_by_status(&self) -> Result<Vec<(SyncStatus, i64)>, AppError> {
        let mut out: Vec<(SyncStatus, i64)> = SyncStatus::ALL.iter().map(|s| (*s, 0)).collect();
        let mut stmt = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM records GROUP BY status")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (s, n) = row.map_err(|e| self.err(e))?;
            if let Some(slot) = out.iter_mut().find(|(st, _)| st.as_str() == s) {
                slot.1 = n;
            }
        }
        Ok(out)
    }

    /// Live activations (not voided) per village, most first.
    pub fn activations_by_village(&self) -> Result<Vec<(String, i64)>, AppError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT village, COUNT(*) FROM records WHERE kind = 'activation'
                 AND NOT EXISTS (SELECT 1 FROM records v WHERE v.voids = records.id)
                 GROUP BY village ORDER BY COUNT(*) DESC, village",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// Live activations and voids recorded since `since` (a stored UTC stamp).
    pub fn counts_since(&self, since: &str) -> Result<(i64, i64), AppError> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(kind = 'activation'), 0), COALESCE(SUM(kind = 'void'), 0)
                 FROM records WHERE recorded_at >= ?1",
                [since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))
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

/// Inside a transaction: duplicate check, next sequence number, insert, audit. The outer error is
/// a database failure (abort everything); the inner one refuses this record only.
fn insert(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    unique_nik: Option<&str>,
    make: impl FnOnce(i64) -> Record,
) -> Result<Result<Record, AppError>, AppError> {
    if let Some(nik) = unique_nik {
        let earlier = tx
            .prepare_cached(&live_activation_sql())
            .and_then(|mut st| st.query_row([nik], row_to_stored).optional())
            .map_err(|e| db_error(path, e))?;
        if let Some(e) = earlier {
            return Ok(Err(duplicate_error(&e)));
        }
    }
    let seq: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM records")
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .map_err(|e| db_error(path, e))?;
    let r = make(seq);
    let warnings = serde_json::to_string(&r.warnings).unwrap_or_else(|_| "[]".into());
    let detail = match &r.voids {
        Some(t) => format!("void of {t}: {}", r.reason.as_deref().unwrap_or("")),
        None => format!("seq {} village {}", r.seq, r.village),
    };
    let action = if r.voids.is_some() { "void" } else { "record" };
    let run = || -> rusqlite::Result<()> {
        tx.prepare_cached(
            "INSERT INTO records (id, seq, device_id, officer, team, recorded_at, kind, village, nik,
                                  name, phone, email, voids, reason, warnings)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?
        .execute(params![
            r.id, r.seq, r.device_id, r.officer, r.team, r.recorded_at, r.kind.as_str(),
            r.village, r.nik, r.name, r.phone, r.email, r.voids, r.reason, warnings
        ])?;
        tx.prepare_cached(
            "INSERT INTO audit (at, action, record_id, detail) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![r.recorded_at, action, r.id, detail])?;
        Ok(())
    };
    run().map_err(|e| db_error(path, e))?;
    Ok(Ok(r))
}

fn duplicate_error(earlier: &Stored) -> AppError {
    let r = &earlier.record;
    AppError::new(
        ErrKind::Duplicate,
        tr!(
            "NIK ini sudah diaktivasi di perangkat ini: catatan #{} ({}) pada {} UTC, atas nama {}. Aktivasi hanya sekali per orang.",
            "This NIK was already activated on this device: record #{} ({}) at {} UTC, for {}. Activation is once per person.",
            r.seq,
            r.id,
            r.recorded_at.replace('T', " ").trim_end_matches('Z'),
            r.name
        ),
    )
    .hint(tr!(
        "Jika catatan lama salah, batalkan dulu: ikd-field void {} --reason \"ALASAN\"",
        "If the earlier record is wrong, void it first: ikd-field void {} --reason \"REASON\"",
        r.id
    ))
    .details(serde_json::json!({"earlier_id": r.id, "earlier_recorded_at": r.recorded_at}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::validate::{Input, activation};

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
