//! The district database: SQLite in WAL mode, `synchronous=FULL` (an answered batch survives a
//! power cut), a generous busy timeout (writers queue, they are never refused), and numbered
//! migrations recorded in `PRAGMA user_version`. One [`Store`] (one connection) per thread.
//!
//! `records` and `devices` are read by the dashboard: keep their names and columns.
//! Records are never deleted, and a transaction that inserts records (or voids one) calls
//! `server::coverage::fold` before committing, as ingest does: the dashboard's counts depend on it.
use crate::error::AppError;
use crate::field::store::db_error;
use crate::sqlite;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a writer waits for another process's write transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

const MIGRATIONS: &[&str] = &[
    // 1: devices, enrolment tokens, records, batch journal, refusals.
    r#"
    CREATE TABLE devices (
        id           TEXT PRIMARY KEY,
        public_key   TEXT NOT NULL UNIQUE,
        officer      TEXT NOT NULL,
        team         TEXT NOT NULL,
        enrolled_at  TEXT NOT NULL,
        revoked_at   TEXT,
        last_sync_at TEXT
    ) STRICT;
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        team       TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        used_at    TEXT,
        used_by    TEXT
    ) STRICT;
    CREATE TABLE records (
        id            TEXT PRIMARY KEY,
        device_id     TEXT NOT NULL REFERENCES devices(id),
        seq           INTEGER NOT NULL,
        kind          TEXT NOT NULL CHECK (kind IN ('activation', 'void')),
        recorded_at   TEXT NOT NULL,
        village       TEXT NOT NULL,
        district      TEXT NOT NULL,
        regency       TEXT NOT NULL,
        nik           TEXT NOT NULL,
        name          TEXT NOT NULL,
        phone         TEXT NOT NULL,
        email         TEXT,
        officer       TEXT NOT NULL,
        team          TEXT NOT NULL,
        voids         TEXT REFERENCES records(id),
        reason        TEXT,
        warnings      TEXT NOT NULL DEFAULT '[]',
        content_hash  TEXT NOT NULL,
        batch_id      TEXT NOT NULL,
        received_at   TEXT NOT NULL,
        state         TEXT NOT NULL CHECK (state IN ('accepted', 'conflict')),
        conflict_with TEXT REFERENCES records(id),
        voided_by     TEXT REFERENCES records(id)
    ) STRICT;
    CREATE INDEX records_nik ON records(nik);
    CREATE INDEX records_village ON records(village);
    CREATE INDEX records_device ON records(device_id, seq);
    -- NULLs never collide in a UNIQUE index: at most one void per record.
    CREATE UNIQUE INDEX records_one_void ON records(voids);
    -- Activations that count: accepted, not voided.
    CREATE VIEW live_activations AS
        SELECT * FROM records
        WHERE kind = 'activation' AND state = 'accepted' AND voided_by IS NULL;
    CREATE TABLE batches (
        id          TEXT PRIMARY KEY,
        device_id   TEXT NOT NULL REFERENCES devices(id),
        body_sha256 TEXT NOT NULL,
        received_at TEXT NOT NULL,
        records     INTEGER NOT NULL,
        response    BLOB NOT NULL,
        signature   TEXT NOT NULL
    ) STRICT;
    CREATE TABLE rejects (
        id        INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        device_id TEXT,
        batch_id  TEXT,
        record_id TEXT,
        code      TEXT NOT NULL,
        message   TEXT NOT NULL
    ) STRICT;
    "#,
    // 2: dashboard: targets, and live-activation counts per village and per device-hour, kept up
    // to date by server::coverage::fold in the transaction of every write of records (ingest).
    super::coverage::MIGRATION,
    // 3: the batch answer also as gzip with its own signature, for clients that accept gzip
    // (NULL for batches answered before: those are replayed uncompressed).
    "ALTER TABLE batches ADD COLUMN response_gzip BLOB;
     ALTER TABLE batches ADD COLUMN signature_gzip TEXT;",
];

pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
}

/// An enrolled laptop.
#[derive(Debug, Clone, Serialize)]
pub struct Device {
    pub id: String,
    pub public_key: String,
    pub officer: String,
    pub team: String,
    pub enrolled_at: String,
    pub revoked_at: Option<String>,
    pub last_sync_at: Option<String>,
    pub records: i64,
}

/// Totals for `server stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub records: i64,
    pub activations_live: i64,
    pub conflicts: i64,
    pub voids: i64,
    pub rejects: i64,
    pub devices: i64,
    pub devices_revoked: i64,
    pub batches: i64,
    pub tokens_unused: i64,
}

/// One stored record, as exported.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: String,
    pub device_id: String,
    pub seq: i64,
    pub kind: String,
    pub recorded_at: String,
    pub village: String,
    pub district: String,
    pub regency: String,
    pub nik: String,
    pub name: String,
    pub phone: String,
    pub email: Option<String>,
    pub officer: String,
    pub team: String,
    pub voids: Option<String>,
    pub reason: Option<String>,
    pub warnings: String,
    pub state: String,
    pub conflict_with: Option<String>,
    pub voided_by: Option<String>,
    pub batch_id: String,
    pub received_at: String,
}

impl Row {
    pub const COLUMNS: [&'static str; 22] = [
        "id",
        "device_id",
        "seq",
        "kind",
        "recorded_at",
        "village",
        "district",
        "regency",
        "nik",
        "name",
        "phone",
        "email",
        "officer",
        "team",
        "voids",
        "reason",
        "warnings",
        "state",
        "conflict_with",
        "voided_by",
        "batch_id",
        "received_at",
    ];

    pub fn cells(&self) -> [String; 22] {
        let o = |v: &Option<String>| v.clone().unwrap_or_default();
        [
            self.id.clone(),
            self.device_id.clone(),
            self.seq.to_string(),
            self.kind.clone(),
            self.recorded_at.clone(),
            self.village.clone(),
            self.district.clone(),
            self.regency.clone(),
            self.nik.clone(),
            self.name.clone(),
            self.phone.clone(),
            o(&self.email),
            self.officer.clone(),
            self.team.clone(),
            o(&self.voids),
            o(&self.reason),
            self.warnings.clone(),
            self.state.clone(),
            o(&self.conflict_with),
            o(&self.voided_by),
            self.batch_id.clone(),
            self.received_at.clone(),
        ]
    }
}

impl Store {
    /// Opens (creating if needed) the district database and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, AppError> {
        let conn = sqlite::open(path, true).map_err(|e| db_error(path, e))?;
        let mut s = Store {
            conn,
            path: path.to_path_buf(),
        };
        s.configure().map_err(|e| s.err(e))?;
        s.migrate().map_err(|e| s.err(e))?;
        Ok(s)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn err(&self, e: rusqlite::Error) -> AppError {
        db_error(&self.path, e)
    }

    fn configure(&mut self) -> rusqlite::Result<()> {
        // 1 MB page cache per connection: `serve` holds one connection per worker (8 by default),
        // so this bounds the caches at ~8 MB; 2 MB each put the server over the 30 MB RSS target
        // at 5,000-record batches for ~5 % more ingest speed (BENCHMARKS.md, sync).
        sqlite::configure(&self.conn, BUSY_TIMEOUT, "PRAGMA cache_size=-1024;").map(|_| ())
    }

    fn migrate(&mut self) -> rusqlite::Result<()> {
        sqlite::migrate(&mut self.conn, MIGRATIONS)
    }

    pub fn schema_version(&self) -> Result<i64, AppError> {
        sqlite::user_version(&self.conn).map_err(|e| self.err(e))
    }

    /// Stores a new enrolment token (only its hash).
    pub fn add_token(
        &self,
        token_hash: &str,
        team: &str,
        created_at: &str,
        expires_at: &str,
    ) -> Result<(), AppError> {
        self.conn
            .execute(
                "INSERT INTO tokens (token_hash, team, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![token_hash, team, created_at, expires_at],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn device(&self, id: &str) -> Result<Option<Device>, AppError> {
        self.conn
            .query_row(
                &format!("{DEVICE_SELECT} WHERE d.id = ?1"),
                [id],
                row_to_device,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// A device's public key (hex) and when it was revoked, if it was: all that ingest needs.
    pub fn device_key(&self, id: &str) -> Result<Option<(String, Option<String>)>, AppError> {
        self.conn
            .prepare_cached("SELECT public_key, revoked_at FROM devices WHERE id = ?1")
            .and_then(|mut st| {
                st.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(|e| self.err(e))
    }

    pub fn devices(&self) -> Result<Vec<Device>, AppError> {
        let mut st = self
            .conn
            .prepare(&format!("{DEVICE_SELECT} ORDER BY d.enrolled_at, d.id"))
            .map_err(|e| self.err(e))?;
        st.query_map([], row_to_device)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))
    }

    /// Marks a device revoked; false when it was already revoked.
    pub fn revoke(&self, id: &str, at: &str) -> Result<bool, AppError> {
        self.conn
            .execute(
                "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![id, at],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Notes a refused batch or record for the admin (best effort: never fails the caller).
    pub fn note_reject(
        &self,
        device_id: Option<&str>,
        batch_id: Option<&str>,
        record_id: Option<&str>,
        code: &str,
        message: &str,
    ) {
        let _ = note_reject(
            &self.conn,
            &crate::timefmt::now_utc(),
            device_id,
            batch_id,
            record_id,
            code,
            message,
        );
    }

    pub fn stats(&self) -> Result<Stats, AppError> {
        self.conn
            .query_row(
                "SELECT
                   (SELECT COUNT(*) FROM records),
                   (SELECT COUNT(*) FROM live_activations),
                   (SELECT COUNT(*) FROM records WHERE state = 'conflict'),
                   (SELECT COUNT(*) FROM records WHERE kind = 'void'),
                   (SELECT COUNT(*) FROM rejects),
                   (SELECT COUNT(*) FROM devices),
                   (SELECT COUNT(*) FROM devices WHERE revoked_at IS NOT NULL),
                   (SELECT COUNT(*) FROM batches),
                   (SELECT COUNT(*) FROM tokens WHERE used_at IS NULL)",
                [],
                |r| {
                    Ok(Stats {
                        records: r.get(0)?,
                        activations_live: r.get(1)?,
                        conflicts: r.get(2)?,
                        voids: r.get(3)?,
                        rejects: r.get(4)?,
                        devices: r.get(5)?,
                        devices_revoked: r.get(6)?,
                        batches: r.get(7)?,
                        tokens_unused: r.get(8)?,
                    })
                },
            )
            .map_err(|e| self.err(e))
    }

    /// Calls `f` for every record in arrival order, one row in memory at a time.
    pub fn for_each_record(
        &self,
        mut f: impl FnMut(Row) -> Result<(), AppError>,
    ) -> Result<(), AppError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, device_id, seq, kind, recorded_at, village, district, regency, nik,
                        name, phone, email, officer, team, voids, reason, warnings, state,
                        conflict_with, voided_by, batch_id, received_at
                 FROM records ORDER BY rowid",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = st.query([]).map_err(|e| self.err(e))?;
        while let Some(r) = rows.next().map_err(|e| db_error(&self.path, e))? {
            let row = (|| -> rusqlite::Result<Row> {
                Ok(Row {
                    id: r.get(0)?,
                    device_id: r.get(1)?,
                    seq: r.get(2)?,
                    kind: r.get(3)?,
                    recorded_at: r.get(4)?,
                    village: r.get(5)?,
                    district: r.get(6)?,
                    regency: r.get(7)?,
                    nik: r.get(8)?,
                    name: r.get(9)?,
                    phone: r.get(10)?,
                    email: r.get(11)?,
                    officer: r.get(12)?,
                    team: r.get(13)?,
                    voids: r.get(14)?,
                    reason: r.get(15)?,
                    warnings: r.get(16)?,
                    state: r.get(17)?,
                    conflict_with: r.get(18)?,
                    voided_by: r.get(19)?,
                    batch_id: r.get(20)?,
                    received_at: r.get(21)?,
                })
            })()
            .map_err(|e| db_error(&self.path, e))?;
            f(row)?;
        }
        Ok(())
    }
}

const DEVICE_SELECT: &str = "SELECT d.id, d.public_key, d.officer, d.team, d.enrolled_at, \
     d.revoked_at, d.last_sync_at, (SELECT COUNT(*) FROM records r WHERE r.device_id = d.id) \
     FROM devices d";

fn row_to_device(r: &rusqlite::Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get(0)?,
        public_key: r.get(1)?,
        officer: r.get(2)?,
        team: r.get(3)?,
        enrolled_at: r.get(4)?,
        revoked_at: r.get(5)?,
        last_sync_at: r.get(6)?,
        records: r.get(7)?,
    })
}

pub(crate) fn note_reject(
    conn: &Connection,
    at: &str,
    device_id: Option<&str>,
    batch_id: Option<&str>,
    record_id: Option<&str>,
    code: &str,
    message: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO rejects (at, device_id, batch_id, record_id, code, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![at, device_id, batch_id, record_id, code, message],
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.db");
        let s = Store::open(&p).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len() as i64);
        drop(s);
        let s = Store::open(&p).unwrap();
        assert_eq!(s.stats().unwrap().records, 0);
        assert!(s.devices().unwrap().is_empty());
    }
}
