//! Stored records one row at a time, as exported and forwarded: in arrival order (`rowid`),
//! every record, voids and conflicts included.
use super::db::{self, Db};
use super::store::Store;
use crate::args;
use crate::error::AppError;
use serde::Serialize;

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
    /// Calls `f` for every record in arrival order, one row in memory at a time.
    pub fn for_each_record(
        &self,
        mut f: impl FnMut(Row) -> Result<(), AppError>,
    ) -> Result<(), AppError> {
        let mut db = self.db().map_err(|e| self.err(e))?;
        let sql = format!("SELECT {ROW_COLUMNS} FROM records ORDER BY rowid");
        let mut failed = None;
        db.query_each(&sql, args![], |r| match f(Row::read(&r)?) {
            Ok(()) => Ok(true),
            Err(e) => {
                failed = Some(e);
                Ok::<_, db::Error>(false)
            }
        })
        .map_err(|e| self.err(e))?;
        failed.map_or(Ok(()), Err)
    }

    /// Stored records in arrival order after `cursor` (0 = from the start), at most `limit`:
    /// each with its position, the cursor to pass next time. Every stored record is here,
    /// accepted or flagged as a conflict (`state`), voids included; a record is never changed
    /// later except `voided_by` (see the void records for that).
    ///
    /// Positions are `rowid`, read only up to the writers' horizon ([`db::writers`]): a reader
    /// that stores the last position it handled and asks again never misses a record and never
    /// sees one twice, on both databases.
    pub fn records_after(&self, cursor: i64, limit: usize) -> Result<Vec<(i64, Row)>, AppError> {
        self.with(|db| records_after(db, cursor, limit))
    }
}

/// [`Store::records_after`] on a connection (e.g. inside a caller's write transaction that also
/// stores the new cursor).
pub fn records_after(db: &mut Db<'_>, cursor: i64, limit: usize) -> db::Result<Vec<(i64, Row)>> {
    let sql = format!(
        "SELECT rowid, {ROW_COLUMNS} FROM records WHERE rowid > ?1 AND rowid <= ?3
         ORDER BY rowid LIMIT ?2"
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let upto = db::writers::horizon(db)?;
    db.query_all(&sql, args![cursor, limit, upto])?
        .iter()
        .map(|r| Ok((r.get(0)?, Row::read_at(r, 1)?)))
        .collect()
}

/// The columns of [`Row`], in order.
const ROW_COLUMNS: &str = "id, device_id, seq, kind, recorded_at, village, district, regency, \
     nik, name, phone, email, officer, team, voids, reason, warnings, state, conflict_with, \
     voided_by, batch_id, received_at";

impl Row {
    fn read(r: &db::Row) -> db::Result<Row> {
        Row::read_at(r, 0)
    }

    /// The record from column `o` on ([`ROW_COLUMNS`]).
    fn read_at(r: &db::Row, o: usize) -> db::Result<Row> {
        Ok(Row {
            id: r.get(o)?,
            device_id: r.get(o + 1)?,
            seq: r.get(o + 2)?,
            kind: r.get(o + 3)?,
            recorded_at: r.get(o + 4)?,
            village: r.get(o + 5)?,
            district: r.get(o + 6)?,
            regency: r.get(o + 7)?,
            nik: r.get(o + 8)?,
            name: r.get(o + 9)?,
            phone: r.get(o + 10)?,
            email: r.get(o + 11)?,
            officer: r.get(o + 12)?,
            team: r.get(o + 13)?,
            voids: r.get(o + 14)?,
            reason: r.get(o + 15)?,
            warnings: r.get(o + 16)?,
            state: r.get(o + 17)?,
            conflict_with: r.get(o + 18)?,
            voided_by: r.get(o + 19)?,
            batch_id: r.get(o + 20)?,
            received_at: r.get(o + 21)?,
        })
    }
}
