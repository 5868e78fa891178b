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
use crate::domain::validate::Valid;
use crate::domain::{Kind, Record, SyncStatus};
use crate::error::{AppError, Kind as ErrKind};
use crate::{sqlite, tr};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
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
    conn: Connection,
    path: PathBuf,
    sealing: Option<Sealing>,
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
    /// Whom its NIK, phone and e-mail are sealed to: `district`, `holding` (until enrolment) or
    /// `none` (a row of an older version not sealed yet).
    pub sealed: &'static str,
}

impl Stored {
    /// A record just written: pending, never answered, not voided (what a read-back would give:
    /// see [`local`]).
    pub fn new_pending(record: Record, sealed: &'static str) -> Stored {
        Stored {
            record,
            status: SyncStatus::Pending,
            status_reason: None,
            status_at: None,
            voided_by: None,
            sealed,
        }
    }
}

/// A record as the laptop keeps it: `nik` holds the masked NIK (first 6 and last 4 digits),
/// `phone` is empty and `email` is `None` — the full values are only in the sealed box.
pub fn local(mut r: Record) -> Record {
    r.nik = crate::domain::nik::mask(&r.nik);
    r.phone = String::new();
    r.email = None;
    r
}

fn seal_label(sealed_to: Option<&str>) -> &'static str {
    match sealed_to {
        Some(t) if t.starts_with("district:") => "district",
        Some(_) => "holding",
        None => "none",
    }
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<SyncStatus>,
    pub village: Option<String>,
    pub limit: Option<usize>,
}

pub use crate::sqlite::db_error;

pub(crate) const RECORD_COLUMNS: &str = "id, seq, device_id, officer, team, recorded_at, kind, village, \
     nik_masked, name, voids, reason, warnings, status, status_reason, status_at, \
     (SELECT v.id FROM records v WHERE v.voids = records.id), sealed_to";

/// The live (not voided) activation of a NIK, by its keyed hash (`?1`), on this device.
fn live_activation_sql() -> String {
    format!(
        "SELECT {RECORD_COLUMNS} FROM records WHERE nik_tag = ?1 AND kind = 'activation'
         AND NOT EXISTS (SELECT 1 FROM records v WHERE v.voids = records.id) LIMIT 1"
    )
}

pub(crate) fn row_to_stored(row: &Row<'_>) -> rusqlite::Result<Stored> {
    let kind: String = row.get(6)?;
    let warnings: String = row.get(12)?;
    let status: String = row.get(13)?;
    let sealed_to: Option<String> = row.get(17)?;
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
            phone: String::new(),
            email: None,
            voids: row.get(10)?,
            reason: row.get(11)?,
            warnings: serde_json::from_str(&warnings).unwrap_or_default(),
        },
        status: SyncStatus::parse(&status).unwrap_or(SyncStatus::Pending),
        status_reason: row.get(14)?,
        status_at: row.get(15)?,
        voided_by: row.get(16)?,
        sealed: seal_label(sealed_to.as_deref()),
    })
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

    fn err(&self, e: rusqlite::Error) -> AppError {
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
        let sealing = self.sealing.clone().ok_or_else(no_sealing)?;
        self.in_transaction(|tx, path| {
            let (to, label) = seal_target(tx, &sealing).map_err(|e| db_error(path, e))??;
            // Sealed up front, on every core for a long list; a box whose record turns out a
            // duplicate is dropped unused.
            let secrets: Vec<_> = valid
                .iter()
                .map(|v| crate::seal::Secrets {
                    nik: v.nik.nik.clone(),
                    phone: v.phone.clone(),
                    email: v.email.clone(),
                })
                .collect();
            let boxes = crate::seal::seal_many(&to, &secrets);
            drop(secrets);
            valid
                .iter()
                .zip(boxes)
                .map(|(v, sealed)| {
                    // Validated input always fits the sealed format; refuse this one if not.
                    let sealed = match sealed {
                        Ok(sealed) => sealed,
                        Err(why) => return Ok(Err(AppError::invalid(why.to_string()))),
                    };
                    let tag = crate::seal::nik_tag(&sealing.tag_key, &v.nik.nik);
                    insert(tx, path, Some(&tag), |seq| {
                        let r = Record::activation(v, seq, &who.device_id, &who.officer, &who.team);
                        debug_assert_eq!((&r.nik, &r.phone), (&v.nik.nik, &v.phone));
                        let seal = Seal {
                            sealed,
                            sealed_to: label.clone(),
                            nik_tag: tag.to_vec(),
                        };
                        (r, seal)
                    })
                })
                .collect()
        })
    }

    /// Records a void of `target` (which must be a live activation), as a new record. It carries
    /// the target's sealed box and keyed hash (the laptop cannot open the box to seal anew).
    pub fn record_void(
        &mut self,
        target: &Stored,
        reason: &str,
        who: &Identity,
    ) -> Result<Record, AppError> {
        let t = &target.record;
        self.in_transaction(|tx, path| {
            let seal = tx
                .query_row(
                    "SELECT sealed, sealed_to, nik_tag FROM records WHERE id = ?1",
                    [&t.id],
                    |r| {
                        Ok((
                            r.get::<_, Option<Vec<u8>>>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, Option<Vec<u8>>>(2)?,
                        ))
                    },
                )
                .map_err(|e| db_error(path, e))?;
            let (Some(sealed), Some(sealed_to), Some(nik_tag)) = seal else {
                return Err(no_sealing());
            };
            insert(tx, path, None, |seq| {
                let r = Record {
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
                    phone: String::new(),
                    email: None,
                    voids: Some(t.id.clone()),
                    reason: Some(reason.to_string()),
                    warnings: vec![],
                };
                let seal = Seal {
                    sealed,
                    sealed_to,
                    nik_tag,
                };
                (r, seal)
            })
        })?
    }

    /// Records whose NIK, phone and e-mail are not sealed to the district yet (held under the
    /// holding key, or rows of an older version not sealed at all).
    pub fn pending_seal(&self) -> Result<i64, AppError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM records WHERE sealed_to IS NULL OR sealed_to NOT LIKE 'district:%'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
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
        // Purged records were all synced; their counts stay.
        let purged = self.purged_total()?;
        if let Some(slot) = out.iter_mut().find(|(st, _)| *st == SyncStatus::Synced) {
            slot.1 += purged;
        }
        Ok(out)
    }

    /// Records purged from this laptop after the server acknowledged them (all kinds).
    pub fn purged_total(&self) -> Result<i64, AppError> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(activations + voided + voids), 0) FROM purged",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// Live activations (not voided) per village, most first.
    pub fn activations_by_village(&self) -> Result<Vec<(String, i64)>, AppError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT village, SUM(n) FROM (
                     SELECT village, COUNT(*) AS n FROM records WHERE kind = 'activation'
                     AND NOT EXISTS (SELECT 1 FROM records v WHERE v.voids = records.id)
                     GROUP BY village
                     UNION ALL
                     SELECT village, SUM(activations) FROM purged GROUP BY village)
                 GROUP BY village HAVING SUM(n) > 0 ORDER BY SUM(n) DESC, village",
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

/// A record's sealed part as stored: the box, whom it is sealed to, the keyed NIK hash.
struct Seal {
    sealed: Vec<u8>,
    sealed_to: String,
    nik_tag: Vec<u8>,
}

fn no_sealing() -> AppError {
    AppError::other(tr!(
        "Kunci segel belum siap; catatan TIDAK disimpan.",
        "The sealing key is not ready; the record was NOT saved."
    ))
    .hint(tr!(
        "Buka folder data dengan perintah ikd-field biasa (record, status); jika masih gagal, hubungi admin Dinas.",
        "Open the data directory with an ordinary ikd-field command (record, status); if it still fails, call the district admin."
    ))
}

/// Inside a transaction: the key new records are sealed to, and its label (`district:<id>` or
/// `holding:<id>`). Read in the transaction, so a record written while another process enrols
/// goes to the district key as soon as it is known.
#[allow(clippy::type_complexity)]
pub(crate) fn seal_target(
    tx: &rusqlite::Transaction<'_>,
    sealing: &Sealing,
) -> rusqlite::Result<Result<([u8; 32], String), AppError>> {
    let district: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [M_DISTRICT_SEAL],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(k) = district.as_deref().and_then(crate::seal::parse_public_hex) {
        return Ok(Ok((k, format!("district:{}", crate::seal::key_id(&k)))));
    }
    Ok(match sealing.holding {
        Some(h) => Ok((h, format!("holding:{}", crate::seal::key_id(&h)))),
        None => Err(no_sealing()),
    })
}

/// Inside a transaction: duplicate check (by keyed NIK hash), next sequence number, insert,
/// audit. `make` gives the record in full and its seal; only the seal, the masked NIK and what
/// the slip shows are written, and the record is returned as the laptop keeps it ([`local`]).
/// The outer error is a database failure (abort everything); the inner one refuses this record.
fn insert(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    unique_tag: Option<&[u8; 32]>,
    make: impl FnOnce(i64) -> (Record, Seal),
) -> Result<Result<Record, AppError>, AppError> {
    if let Some(tag) = unique_tag {
        let earlier = tx
            .prepare_cached(&live_activation_sql())
            .and_then(|mut st| st.query_row([&tag[..]], row_to_stored).optional())
            .map_err(|e| db_error(path, e))?;
        if let Some(e) = earlier {
            return Ok(Err(duplicate_error(&e)));
        }
    }
    let seq: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM records")
        .and_then(|mut st| st.query_row([], |r| r.get(0)))
        .map_err(|e| db_error(path, e))?;
    let (r, seal) = make(seq);
    let r = local(r);
    let warnings = serde_json::to_string(&r.warnings).unwrap_or_else(|_| "[]".into());
    let detail = match &r.voids {
        Some(t) => format!("void of {t}: {}", r.reason.as_deref().unwrap_or("")),
        None => format!("seq {} village {}", r.seq, r.village),
    };
    let action = if r.voids.is_some() { "void" } else { "record" };
    let run =
        || -> rusqlite::Result<()> {
            tx.prepare_cached(
            "INSERT INTO records (id, seq, device_id, officer, team, recorded_at, kind, village,
                                  nik_masked, nik_tag, name, sealed, sealed_to, voids, reason,
                                  warnings)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?
        .execute(params![
            r.id, r.seq, r.device_id, r.officer, r.team, r.recorded_at, r.kind.as_str(),
            r.village, r.nik, seal.nik_tag, r.name, seal.sealed, seal.sealed_to, r.voids,
            r.reason, warnings
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
