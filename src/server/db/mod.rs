//! The district store's database layer: one small API over SQLite (the embedded default, one
//! connection per worker) and PostgreSQL (a pooled client shared by workers and by any number of
//! `serve` processes), so the server's SQL and logic exist once.
//!
//! * SQL is written once with SQLite's numbered placeholders (`?1`, `?2`); on PostgreSQL they
//!   become `$1`, `$2`. Portable forms only: `INSERT … ON CONFLICT`, `coalesce`, integers as
//!   BIGINT, blobs as BYTEA, `CAST(… AS BIGINT)` around sums. Where the dialects differ (DDL, the
//!   dashboard's hour bucket, planner hints) the caller asks [`Db::dialect`].
//! * Arrival order: on SQLite `records.rowid`; on PostgreSQL an identity column of the same name,
//!   drawn as a row is written, so it grows with time, not always in commit order there (see
//!   [`writers`]); a reader with a cursor stops at the horizon and never misses a row.
//! * [`Db::begin`] with [`Mode::Write`] makes a write transaction that is the only one at a time
//!   across every process using the database: `BEGIN IMMEDIATE` on SQLite, and on PostgreSQL
//!   `BEGIN` then a transaction-scoped advisory lock ([`WRITER_LOCK`]), held until COMMIT.
//!   [`Mode::Ingest`] (a batch) is the same on SQLite; on PostgreSQL it takes that lock *shared*,
//!   so batches run side by side — in one `serve` and across several on one database — and
//!   exclude only the exclusive writers. What one writer at a time gave is kept by other means
//!   there: a NIK's one live activation by a unique index (`records_live_nik`; a batch that
//!   loses a race is decided again alone, see `ingest`), the dashboard's aggregates folded from
//!   the batch's own rows, and readers that page by `rowid` read only up to
//!   [`writers::horizon`], below which no open writer can still add a row.
//! * The handles of one store (the workers of one `serve`) take turns on a [`WriterQueue`]
//!   before an exclusive write, so they wait in the process rather than on SQLite's busy polling
//!   or in the database's lock queue.
//! * Statements are prepared once per connection (rusqlite's cache; a map on PostgreSQL).
mod pg;
mod value;
pub mod writers;

pub use pg::{PgConn, PgManager, PgPool};
use pg::{pg_params, pg_row};
use std::sync::{Arc, Condvar, Mutex};
use value::lite_value;
pub use value::{AsParam, Error, FromValue, Param, Result, Row, Value};

/// The advisory lock key of the one writer at a time on PostgreSQL ("ikd-fiel" in ASCII).
pub const WRITER_LOCK: i64 = 0x696b_642d_6669_656c;

/// Write transactions of one store's handles take turns here before asking the database.
#[derive(Debug, Default)]
pub struct WriterQueue {
    busy: Mutex<bool>,
    free: Condvar,
}

impl WriterQueue {
    fn acquire(self: &Arc<Self>) -> WriterTurn {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        while *busy {
            busy = self.free.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy = true;
        WriterTurn(Arc::clone(self))
    }
}

/// A turn on a [`WriterQueue`], given back on drop.
struct WriterTurn(Arc<WriterQueue>);

impl Drop for WriterTurn {
    fn drop(&mut self) {
        *self.0.busy.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.0.free.notify_one();
    }
}

/// Statements kept per SQLite connection (rusqlite's LRU).
pub const SQLITE_STATEMENT_CACHE: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// `args![a, b, c]`: a statement's parameters (`&[Param]`).
#[macro_export]
macro_rules! args {
    ($($x:expr),* $(,)?) => {
        &[$($crate::server::db::AsParam::as_param(&$x)),*] as &[$crate::server::db::Param<'_>]
    };
}
pub use crate::args;

enum Conn<'a> {
    Sqlite(&'a rusqlite::Connection),
    Pooled(Box<r2d2::PooledConnection<PgManager>>),
    Pg(&'a mut PgConn),
}

/// A connection to the district database, SQLite or PostgreSQL.
pub struct Db<'a> {
    conn: Conn<'a>,
    writers: Option<Arc<WriterQueue>>,
}

/// What a transaction may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Reads one consistent snapshot.
    Read,
    /// Writes: the only write transaction at a time on this database, across processes.
    Write,
    /// A batch's writes: [`Mode::Write`] on SQLite; on PostgreSQL one of any number at once
    /// (excluding [`Mode::Write`]), registered for [`writers::horizon`].
    Ingest,
    /// The schema's migrations: [`Mode::Write`] without registering (the tables may not exist).
    Schema,
}

impl<'a> Db<'a> {
    pub fn sqlite(conn: &'a rusqlite::Connection) -> Db<'a> {
        Db {
            conn: Conn::Sqlite(conn),
            writers: None,
        }
    }

    pub fn pooled(conn: r2d2::PooledConnection<PgManager>) -> Db<'static> {
        Db {
            conn: Conn::Pooled(Box::new(conn)),
            writers: None,
        }
    }

    pub fn postgres(conn: &'a mut PgConn) -> Db<'a> {
        Db {
            conn: Conn::Pg(conn),
            writers: None,
        }
    }

    /// Write transactions on this connection first take a turn on `queue`.
    pub fn queued(mut self, queue: &Arc<WriterQueue>) -> Db<'a> {
        self.writers = Some(Arc::clone(queue));
        self
    }

    pub fn dialect(&self) -> Dialect {
        match self.conn {
            Conn::Sqlite(_) => Dialect::Sqlite,
            _ => Dialect::Postgres,
        }
    }

    /// `column` is one of the texts in the list parameter `param` (a [`Param::Texts`]), in each
    /// dialect's form: one statement whatever the list's length, so it is prepared once.
    pub fn any_of(&self, column: &str, param: &str) -> String {
        match self.dialect() {
            Dialect::Sqlite => format!("{column} IN (SELECT value FROM json_each({param}))"),
            Dialect::Postgres => format!("{column} = ANY({param})"),
        }
    }

    /// Inserts `rows` (each one value per column, in order) into `table`, in order: on SQLite
    /// one prepared INSERT per row (a function call each); on PostgreSQL one `COPY … FROM
    /// STDIN (FORMAT binary)` for them all (one round trip instead of one per row). Rows get
    /// their defaults — `rowid` on PostgreSQL — in the order given; constraints are checked as
    /// for INSERTs (foreign keys at the end of the COPY, so a row may name an earlier one).
    /// Rows are taken from the iterator one at a time, so a caller can build each as it is
    /// written instead of holding them all.
    pub fn insert_many<'p, R: AsRef<[Param<'p>]>>(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: impl ExactSizeIterator<Item = R>,
    ) -> Result<u64> {
        let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            columns.join(", "),
            placeholders.join(", ")
        );
        if self.dialect() == Dialect::Sqlite || rows.len() < 2 {
            let mut n = 0;
            for row in rows {
                n += self.execute(&insert, row.as_ref())?;
            }
            return Ok(n);
        }
        let pg = self.pg().expect("postgres");
        // The INSERT's parameter types are the columns' types, as COPY's binary format needs.
        let types = pg.prepare(&insert)?.params().to_vec();
        let sink = pg.client.copy_in(&format!(
            "COPY {table} ({}) FROM STDIN (FORMAT binary)",
            columns.join(", ")
        ))?;
        let mut writer = postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
        for row in rows {
            writer.write(&pg_params(row.as_ref()))?;
        }
        Ok(writer.finish()?)
    }

    fn pg(&mut self) -> Option<&mut PgConn> {
        match &mut self.conn {
            Conn::Sqlite(_) => None,
            Conn::Pooled(c) => Some(&mut ***c),
            Conn::Pg(c) => Some(&mut **c),
        }
    }

    /// Several statements without parameters (DDL, BEGIN, …).
    pub fn batch(&mut self, sql: &str) -> Result<()> {
        match &mut self.conn {
            Conn::Sqlite(c) => c.execute_batch(sql).map_err(Error::from),
            _ => {
                let pg = self.pg().expect("postgres");
                pg.client.batch_execute(sql).map_err(Error::from)
            }
        }
    }

    /// Runs one statement; the number of rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64> {
        match &mut self.conn {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                Ok(st.execute(rusqlite::params_from_iter(params.iter()))? as u64)
            }
            _ => {
                let pg = self.pg().expect("postgres");
                let st = pg.prepare(sql)?;
                let p = pg_params(params);
                Ok(pg.client.execute(&st, &p)?)
            }
        }
    }

    /// Calls `f` for each row, one in memory at a time, until it returns `Ok(false)`.
    pub fn query_each<E: From<Error>>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        mut f: impl FnMut(Row) -> std::result::Result<bool, E>,
    ) -> std::result::Result<(), E> {
        match &mut self.conn {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql).map_err(Error::from)?;
                let n = st.column_count();
                let mut rows = st
                    .query(rusqlite::params_from_iter(params.iter()))
                    .map_err(Error::from)?;
                while let Some(r) = rows.next().map_err(Error::from)? {
                    let mut vals = Vec::with_capacity(n);
                    for i in 0..n {
                        vals.push(lite_value(r.get_ref(i).map_err(Error::from)?));
                    }
                    if !f(Row(vals))? {
                        break;
                    }
                }
                Ok(())
            }
            _ => {
                use postgres::fallible_iterator::FallibleIterator;
                let pg = self.pg().expect("postgres");
                let st = pg.prepare(sql)?;
                let p = pg_params(params);
                let mut it = pg
                    .client
                    .query_raw(&st, p.iter().map(|x| *x as &dyn postgres::types::ToSql))
                    .map_err(Error::from)?;
                while let Some(r) = it.next().map_err(Error::from)? {
                    if !f(pg_row(&r)?)? {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    /// Every row.
    pub fn query_all(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
        let mut out = Vec::new();
        self.query_each(sql, params, |r| {
            out.push(r);
            Ok::<_, Error>(true)
        })?;
        Ok(out)
    }

    /// The first row, if any.
    pub fn query_opt(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>> {
        let mut out = None;
        self.query_each(sql, params, |r| {
            out = Some(r);
            Ok::<_, Error>(false)
        })?;
        Ok(out)
    }

    /// The first row; an error when there is none.
    pub fn query_one(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Row> {
        self.query_opt(sql, params)?
            .ok_or_else(|| Error::Type(format!("no row from: {sql}")))
    }

    /// Starts a transaction; it rolls back when dropped without [`Tx::commit`].
    pub fn begin(&mut self, mode: Mode) -> Result<Tx<'_, 'a>> {
        let dialect = self.dialect();
        let alone = match mode {
            Mode::Read => false,
            Mode::Ingest => dialect == Dialect::Sqlite,
            Mode::Write | Mode::Schema => true,
        };
        let turn = match &self.writers {
            Some(q) if alone => Some(q.acquire()),
            _ => None,
        };
        let begin = match (dialect, mode) {
            (Dialect::Sqlite, Mode::Read) => "BEGIN",
            (Dialect::Sqlite, _) => "BEGIN IMMEDIATE",
            (Dialect::Postgres, Mode::Read) => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            (Dialect::Postgres, _) => "BEGIN",
        };
        self.batch(begin)?;
        let mut tx = Tx {
            db: self,
            done: false,
            _turn: turn,
        };
        if dialect == Dialect::Postgres && mode != Mode::Read {
            writers::enter(&mut tx, mode)?;
        }
        Ok(tx)
    }
}

/// A transaction; derefs to its [`Db`]. Rolls back when dropped uncommitted.
pub struct Tx<'t, 'a> {
    db: &'t mut Db<'a>,
    done: bool,
    /// Dropped after `drop` has rolled back (fields drop after the body).
    _turn: Option<WriterTurn>,
}

impl Tx<'_, '_> {
    pub fn commit(mut self) -> Result<()> {
        self.db.batch("COMMIT")?;
        self.done = true;
        Ok(())
    }
}

impl<'a> std::ops::Deref for Tx<'_, 'a> {
    type Target = Db<'a>;
    fn deref(&self) -> &Db<'a> {
        self.db
    }
}

impl<'a> std::ops::DerefMut for Tx<'_, 'a> {
    fn deref_mut(&mut self) -> &mut Db<'a> {
        self.db
    }
}

impl Drop for Tx<'_, '_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.db.batch("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::pg::translate;
    use super::*;

    #[test]
    fn placeholders_are_translated_outside_quotes() {
        assert_eq!(
            translate("SELECT a FROM t WHERE x = ?1 AND y = '?2' AND z = ?12 AND \"w?\" = ?"),
            "SELECT a FROM t WHERE x = $1 AND y = '?2' AND z = $12 AND \"w?\" = $1"
        );
    }

    #[test]
    fn sqlite_rows_params_and_rollback() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut db = Db::sqlite(&conn);
        db.batch("CREATE TABLE t (a TEXT, b INTEGER, c BLOB)")
            .unwrap();
        let none: Option<&str> = None;
        db.execute(
            "INSERT INTO t VALUES (?1, ?2, ?3)",
            args!["x", 7i64, vec![1u8, 2]],
        )
        .unwrap();
        db.execute("INSERT INTO t VALUES (?1, ?2, NULL)", args![none, 8i64])
            .unwrap();
        let rows = db
            .query_all("SELECT a, b, c FROM t ORDER BY b", args![])
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get::<String>(0).unwrap(), "x");
        assert_eq!(rows[0].get::<Vec<u8>>(2).unwrap(), vec![1, 2]);
        assert_eq!(rows[1].get::<Option<String>>(0).unwrap(), None);
        assert!(rows[1].get::<String>(0).is_err());
        {
            let mut tx = db.begin(Mode::Write).unwrap();
            tx.execute("DELETE FROM t", args![]).unwrap();
        }
        let n: i64 = db
            .query_one("SELECT COUNT(*) FROM t", args![])
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(n, 2, "dropped uncommitted: rolled back");
    }
}
