//! Reading the field database's records: what a stored record looks like to the commands (the
//! masked NIK, never the sealed identifiers), by number or id, listed, counted.
use super::store::Store;
use crate::domain::{Kind, Record, SyncStatus};
use crate::error::AppError;
use crate::tr;
use rusqlite::{OptionalExtension, Row, params};

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

pub(super) fn seal_label(sealed_to: Option<&str>) -> &'static str {
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

pub(crate) const RECORD_COLUMNS: &str = "id, seq, device_id, officer, team, recorded_at, kind, village, \
     nik_masked, name, voids, reason, warnings, status, status_reason, status_at, \
     (SELECT v.id FROM records v WHERE v.voids = records.id), sealed_to";

/// The live (not voided) activation of a NIK, by its keyed hash (`?1`), on this device.
pub(super) fn live_activation_sql() -> String {
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

    /// Records waiting to be sent: (activations, voids). Before and after a sync, what the
    /// district received, in the officer's terms.
    pub fn pending_by_kind(&self) -> Result<(u64, u64), AppError> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(kind = 'activation'), 0), COALESCE(SUM(kind = 'void'), 0)
                 FROM records WHERE status = 'pending'",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(|e| self.err(e))
    }

    /// Citizens activated on this laptop (live activations, purged ones included).
    pub fn citizens_total(&self) -> Result<i64, AppError> {
        self.conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM records WHERE kind = 'activation'
                         AND NOT EXISTS (SELECT 1 FROM records v WHERE v.voids = records.id))
                      + (SELECT COALESCE(SUM(activations), 0) FROM purged)",
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

    /// Since `since` (a stored UTC stamp): citizens activated (activations not voided) and
    /// voids recorded. An activation voided the same day counts in neither's first number, so the
    /// count is people, as the officer counts them.
    pub fn counts_since(&self, since: &str) -> Result<(i64, i64), AppError> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(kind = 'activation'
                          AND NOT EXISTS (SELECT 1 FROM records v WHERE v.voids = records.id)), 0),
                        COALESCE(SUM(kind = 'void'), 0)
                 FROM records WHERE recorded_at >= ?1",
                [since],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))
    }
}
