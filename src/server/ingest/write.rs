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
pub(super) const RECORD_COLUMNS: [&str; 22] = [
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
];

/// The rows a batch adds, written in answer order once all its records are answered: the new
/// records (in one `COPY` on PostgreSQL), then the voids' marks on their targets.
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

    pub(super) fn write<'a>(&'a self, tx: &mut Db<'_>, ctx: &Ctx<'a>) -> db::Result<()> {
        // Each row is built as it is written, on the stack.
        let rows = self.records.iter().map(|n| {
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
            ]
        });
        tx.insert_many("records", &RECORD_COLUMNS, rows)?;
        for (target, void) in &self.voided {
            tx.execute(
                "UPDATE records SET voided_by = ?2 WHERE id = ?1",
                args![target, void],
            )?;
        }
        Ok(())
    }
}
