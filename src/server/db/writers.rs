//! Writers side by side on PostgreSQL, and the horizon below which a `rowid` cursor is safe.
//!
//! On PostgreSQL batches write at once ([`Mode::Ingest`]), so `rowid` (an identity column,
//! drawn when a row is inserted) no longer grows in commit order: a batch may commit rows
//! numbered below those of a batch that committed before it. A reader that pages by `rowid` and
//! keeps its cursor (a laptop's activated list, forwarding to a province) would skip such a row
//! for ever. So every writer registers before its first row: it draws a number `S` from the same
//! sequence (every row it inserts later gets a larger one) and holds an advisory lock named by
//! `S` until it ends. [`horizon`] reads the sequence's last value `L`, then the registered
//! writers still open, and answers `min(L, S_min − 1)`: every row at or below it has committed
//! (or never will), whatever commits later.
//!
//! Why the order of the two reads makes it safe: a row at or below `L` was drawn before `L` was
//! read, so its writer had registered by then; if that writer is still open when the locks are
//! read, its `S` is in `S_min` and the row is above the horizon; if it has ended, the reader's
//! next statement sees its rows. A writer registering after `L` was read draws its rows above
//! `L`. SQLite has one writer at a time, and its horizon is everything.
use super::{Db, Dialect, Mode, Result, WRITER_LOCK, args};

/// The advisory lock namespace of registered writers (the high 32 bits of the key; "ikdw").
const REGISTRY: i64 = 0x696b_6477;

/// The sequence behind `records.rowid`.
const SEQUENCE: &str = "pg_get_serial_sequence('records', 'rowid')";

/// Takes the writer lock for `mode` (shared for [`Mode::Ingest`], exclusive otherwise) and, but
/// for [`Mode::Schema`], registers the transaction. PostgreSQL only; right after `BEGIN`.
pub(super) fn enter(tx: &mut Db<'_>, mode: Mode) -> Result<()> {
    let lock = match mode {
        Mode::Ingest => "pg_advisory_xact_lock_shared",
        _ => "pg_advisory_xact_lock",
    };
    if mode == Mode::Schema {
        tx.query_one(&format!("SELECT {lock}(?1)::text"), args![WRITER_LOCK])?;
        return Ok(());
    }
    // One round trip: the number is drawn, then the locks taken (the registry's key from it).
    let s: i64 = tx
        .query_one(
            &format!(
                "SELECT s, {lock}(?1)::text, pg_advisory_xact_lock((?2::bigint << 32) | s)::text
                 FROM (SELECT nextval({SEQUENCE}) AS s) AS drawn"
            ),
            args![WRITER_LOCK, REGISTRY],
        )?
        .get(0)?;
    if !(0..1 << 32).contains(&s) {
        // The registry's key would be wrong; the caller's rollback lets the locks go.
        return Err(super::Error::Type(format!(
            "records.rowid {s} is beyond the 2^32 the writers' registry can name"
        )));
    }
    Ok(())
}

/// The highest `rowid` a cursor reader may pass: every record at or below it is committed or
/// never will be, or is the caller's own. Call it before the statement that reads the rows
/// (not inside a [`Mode::Read`] snapshot taken earlier). The caller's own registration is left
/// out: its rows are visible to it (a batch's answer lists its own activations).
pub fn horizon(db: &mut Db<'_>) -> Result<i64> {
    if db.dialect() == Dialect::Sqlite {
        return Ok(i64::MAX);
    }
    let last: Option<i64> = db
        .query_one(
            &format!("SELECT pg_sequence_last_value({SEQUENCE}::regclass)"),
            args![],
        )?
        .get(0)?;
    let open: Option<i64> = db
        .query_one(
            "SELECT min(objid::bigint) FROM pg_locks
             WHERE locktype = 'advisory' AND classid::bigint = ?1 AND objsubid = 1
               AND pid <> pg_backend_pid()
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            args![REGISTRY],
        )?
        .get(0)?;
    let last = last.unwrap_or(0);
    Ok(open.map_or(last, |s| last.min(s - 1)))
}
