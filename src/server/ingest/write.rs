//! Writing a batch's new records at once after its last record was answered (one multi-row
//! INSERT on SQLite, one COPY on PostgreSQL).
use super::record::{Clean, Meta};
use crate::args;
use crate::domain::Kind;
use crate::server::db::{self, AsParam, Db, Param};
use crate::server::known::{Known, Stored};

pub(super) struct Ctx<'a> {
    pub(super) device: &'a str,
    /// The sender is a relay (a district server forwarding): it may send other devices'
    /// records (super::relay).
    pub(super) relay: bool,
    pub(super) batch: &'a str,
    pub(super) now: &'a str,
}

/// The columns of a new `records` row, in the order [`New::write`] gives them.
pub(super) const RECORD_COLUMNS: [&str; 23] = [
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
    "content_hash",
    "batch_id",
    "received_at",
    "state",
    "conflict_with",
    "voided_by",
];

/// The rows a batch adds, written in answer order once all its records are answered (in one
/// `COPY` on PostgreSQL), after the marks on the earlier records it voids.
pub(super) struct New {
    pub(super) records: Vec<NewRecord>,
    /// (target, void) pairs: `records.voided_by` to set.
    pub(super) voided: Vec<(String, String)>,
}

pub(super) struct NewRecord {
    pub(super) record: Meta,
    pub(super) clean: Clean,
    pub(super) hash: String,
    pub(super) conflict_with: Option<String>,
}

impl New {
    /// For a batch of `n` records: room for them all at once (growing by doubling would hold
    /// up to twice that).
    pub(super) fn with_capacity(n: usize) -> New {
        New {
            records: Vec::with_capacity(n),
            voided: Vec::new(),
        }
    }

    /// Adds an answered record (a conflict when `conflict_with` names the NIK's live activation),
    /// and tells `known`, so the batch's later records see it.
    pub(super) fn insert(
        &mut self,
        tx: &mut Db<'_>,
        known: &mut Known,
        record: Meta,
        clean: Clean,
        hash: String,
        conflict_with: Option<String>,
    ) -> db::Result<()> {
        let stored = Stored {
            content_hash: hash.clone(),
            kind: record.kind.as_str().to_string(),
            device_id: record.device_id.clone(),
            nik: clean.nik.clone(),
            voided_by: None,
        };
        let live = record.kind == Kind::Activation && conflict_with.is_none();
        known.add(tx, &record.id, stored, live)?;
        self.records.push(NewRecord {
            record,
            clean,
            hash,
            conflict_with,
        });
        Ok(())
    }

    /// Writes the batch's rows. On PostgreSQL no row may make a second live activation of its
    /// NIK (`records_live_nik` checks each row as it is written): the earlier records this
    /// batch voids are marked first (`voided_by`'s foreign key is checked at COMMIT there), then
    /// the new rows go in answer order, a record voided in its own batch written already voided.
    /// SQLite, one writer and no such index, marks all the targets after the rows.
    pub(super) fn write<'a>(&'a self, tx: &mut Db<'_>, ctx: &Ctx<'a>) -> db::Result<()> {
        let mark = "UPDATE records SET voided_by = ?2 WHERE id = ?1";
        if tx.dialect() == db::Dialect::Sqlite {
            let rows = self.records.iter().map(|n| row(n, ctx, None));
            tx.insert_many("records", &RECORD_COLUMNS, rows)?;
            for (target, void) in &self.voided {
                tx.execute(mark, args![target, void])?;
            }
            return Ok(());
        }
        let ours: std::collections::HashSet<&str> =
            self.records.iter().map(|n| n.record.id.as_str()).collect();
        let mut voided_by = std::collections::HashMap::new();
        for (target, void) in &self.voided {
            if ours.contains(target.as_str()) {
                voided_by.insert(target.as_str(), void.as_str());
            } else {
                tx.execute(mark, args![target, void])?;
            }
        }
        let rows = self.records.iter().map(|n| {
            let voided = voided_by.get(n.record.id.as_str()).copied();
            row(n, ctx, voided)
        });
        tx.insert_many("records", &RECORD_COLUMNS, rows)?;
        Ok(())
    }
}

/// One new `records` row, in [`RECORD_COLUMNS`] order, built on the stack as it is written.
fn row<'a>(n: &'a NewRecord, ctx: &Ctx<'a>, voided_by: Option<&'a str>) -> [Param<'a>; 23] {
    let (r, c) = (&n.record, &n.clean);
    let state = if n.conflict_with.is_some() {
        "conflict"
    } else {
        "accepted"
    };
    let text = |s: &'a str| Param::Text(s);
    [
        text(&r.id),
        text(&r.device_id),
        Param::Int(r.seq),
        text(r.kind.as_str()),
        text(&r.recorded_at),
        text(&c.village),
        text(&c.village[..6]),
        text(&c.village[..4]),
        text(&c.nik),
        text(&c.name),
        text(&c.phone),
        c.email.as_param(),
        text(&r.officer),
        text(&r.team),
        r.voids.as_param(),
        r.reason.as_param(),
        text(r.warnings.as_deref().unwrap_or("[]")),
        text(&n.hash),
        text(ctx.batch),
        text(ctx.now),
        text(state),
        n.conflict_with.as_param(),
        voided_by.map_or(Param::Null, Param::Text),
    ]
}
