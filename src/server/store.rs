//! The district database: SQLite (the embedded default) or PostgreSQL (a database the office's
//! DBAs run, shared by several `serve` processes), both through [`super::db`] and the same
//! numbered migrations (one DDL text per dialect each).
//!
//! SQLite: WAL mode, `synchronous=FULL` (an answered batch survives a power cut), a generous
//! busy timeout (writers queue, they are never refused), migrations recorded in
//! `PRAGMA user_version`; one connection per worker thread. PostgreSQL: a pool of connections
//! shared by the workers; migrations run in one transaction under the writer lock and are
//! recorded in `schema_version`.
//!
//! `records` and `devices` are read by the dashboard: keep their names and columns.
//! Records are never deleted, and a transaction that inserts records (or voids one) calls
//! `server::coverage::fold` before committing, as ingest does: the dashboard's counts depend on it.
use super::db::{self, Db, Dialect, Mode, PgManager, PgPool, WriterQueue};
use crate::args;
use crate::error::AppError;
use crate::sqlite;
use crate::sqlite::db_error;
use crate::tr;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// How long a writer waits for another process's write transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

pub use super::location::{Location, is_postgres_url, redact};
pub use super::schema::{MIGRATIONS, Migration};

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres(PgPool),
}

/// The district database: one SQLite connection, or a pool of PostgreSQL connections (cheap to
/// share: [`Store::another`]).
pub struct Store {
    backend: Backend,
    location: Location,
    /// Shared by the handles [`Store::another`] makes.
    writers: Arc<WriterQueue>,
}

/// Totals for `server stats`.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Stats {
    pub records: i64,
    pub activations_live: i64,
    /// Open conflicts (not voided since), as the dashboard counts them.
    pub conflicts: i64,
    /// Conflicts closed by a void from the field (of either record).
    #[serde(default)]
    pub conflicts_closed: i64,
    /// Conflicts the admin marked handled on the dashboard (and no void closed).
    #[serde(default)]
    pub conflicts_handled: i64,
    pub voids: i64,
    pub rejects: i64,
    pub devices: i64,
    pub devices_revoked: i64,
    pub batches: i64,
    pub tokens_unused: i64,
}

impl Store {
    /// Opens (creating if needed) the district database and brings its schema up to date. On
    /// PostgreSQL the database itself must exist (the DBA creates it); its tables are made here.
    pub fn open(location: impl Into<Location>) -> Result<Store, AppError> {
        Store::open_with_pool(location, 8)
    }

    /// [`Store::open`] with at most `pool` PostgreSQL connections (`serve`: one per worker).
    pub fn open_with_pool(location: impl Into<Location>, pool: usize) -> Result<Store, AppError> {
        let location = location.into();
        match &location {
            Location::Sqlite(path) => {
                let mut conn = sqlite::open(path, true).map_err(|e| db_error(path, e))?;
                configure(&conn).map_err(|e| db_error(path, e))?;
                let list: Vec<&str> = MIGRATIONS.iter().map(|m| m.sqlite).collect();
                sqlite::migrate(&mut conn, &list).map_err(|e| db_error(path, e))?;
                Ok(Store {
                    backend: Backend::Sqlite(conn),
                    location: location.clone(),
                    writers: Arc::default(),
                })
            }
            Location::Postgres(url) => {
                let fail = |e: db::Error| pg_error(&location, e);
                let manager = PgManager::new(url).map_err(fail)?;
                // One connection first: a wrong URL or a server that is down fails at once, with
                // the server's reason, instead of after the pool's timeout.
                let mut first = manager.connect_one().map_err(fail)?;
                migrate_postgres(&mut Db::postgres(&mut first)).map_err(fail)?;
                drop(first);
                let pool = r2d2::Pool::builder()
                    .max_size(pool.clamp(1, 256) as u32)
                    .min_idle(Some(1))
                    .connection_timeout(BUSY_TIMEOUT)
                    .build_unchecked(manager);
                Ok(Store {
                    backend: Backend::Postgres(pool),
                    location,
                    writers: Arc::default(),
                })
            }
        }
    }

    /// Another handle on the same database for another thread: a new SQLite connection (already
    /// migrated), or the same PostgreSQL pool.
    pub fn another(&self) -> Result<Store, AppError> {
        let mut s = match &self.backend {
            Backend::Sqlite(_) => Store::open(&self.location)?,
            Backend::Postgres(pool) => Store {
                backend: Backend::Postgres(pool.clone()),
                location: self.location.clone(),
                writers: Arc::default(),
            },
        };
        s.writers = Arc::clone(&self.writers);
        Ok(s)
    }

    /// The SQLite connection, for tests that look under the hood.
    #[cfg(test)]
    pub(crate) fn sqlite_conn(&self) -> &rusqlite::Connection {
        match &self.backend {
            Backend::Sqlite(c) => c,
            Backend::Postgres(_) => panic!("not a SQLite store"),
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// A connection: this store's own (SQLite), or one from the pool (PostgreSQL; it goes back
    /// when the `Db` is dropped).
    pub fn db(&self) -> Result<Db<'_>, db::Error> {
        let db = match &self.backend {
            Backend::Sqlite(c) => Db::sqlite(c),
            Backend::Postgres(pool) => Db::pooled(pool.get()?),
        };
        Ok(db.queued(&self.writers))
    }

    pub fn err(&self, e: db::Error) -> AppError {
        match (&self.location, e) {
            (Location::Sqlite(path), db::Error::Sqlite(e)) => db_error(path, e),
            (_, e) => pg_error(&self.location, e),
        }
    }

    /// How many migrations have run.
    pub fn schema_version(&self) -> Result<i64, AppError> {
        let mut db = self.db().map_err(|e| self.err(e))?;
        let sql = match db.dialect() {
            Dialect::Sqlite => "PRAGMA user_version",
            Dialect::Postgres => "SELECT version FROM schema_version",
        };
        db.query_one(sql, args![])
            .and_then(|r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Runs `f` on a connection; database errors become the user's error.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut Db<'_>) -> db::Result<T>,
    ) -> Result<T, AppError> {
        let mut db = self.db().map_err(|e| self.err(e))?;
        f(&mut db).map_err(|e| self.err(e))
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
        let _ = self.with(|db| {
            note_reject(
                db,
                &crate::timefmt::now_utc(),
                device_id,
                batch_id,
                record_id,
                code,
                message,
            )?;
            // Refused requests come from anyone who can reach the server: the log keeps the
            // newest MAX_REJECTS rows, so a flood of refusals cannot fill the disk.
            db.execute(
                "DELETE FROM rejects WHERE id <= (SELECT max(id) FROM rejects) - ?1",
                args![MAX_REJECTS],
            )
            .map(|_| ())
        });
    }

    pub fn stats(&self) -> Result<Stats, AppError> {
        self.with(|db| {
            use super::schema::{CONFLICT_CLOSED_BY_VOID, OPEN_CONFLICT};
            let sql = format!(
                "SELECT
                   (SELECT COUNT(*) FROM records),
                   (SELECT COUNT(*) FROM live_activations),
                   (SELECT COUNT(*) FROM records r WHERE {OPEN_CONFLICT}),
                   (SELECT COUNT(*) FROM records WHERE kind = 'void'),
                   (SELECT COUNT(*) FROM rejects),
                   (SELECT COUNT(*) FROM devices),
                   (SELECT COUNT(*) FROM devices WHERE revoked_at IS NOT NULL),
                   (SELECT COUNT(*) FROM batches),
                   (SELECT COUNT(*) FROM tokens WHERE used_at IS NULL),
                   (SELECT COUNT(*) FROM records r WHERE {CONFLICT_CLOSED_BY_VOID}),
                   (SELECT COUNT(*) FROM records r JOIN conflict_handled h ON h.record_id = r.id
                    WHERE NOT ({CONFLICT_CLOSED_BY_VOID}))"
            );
            let r = db.query_one(&sql, args![])?;
            Ok(Stats {
                records: r.get(0)?,
                activations_live: r.get(1)?,
                conflicts: r.get(2)?,
                conflicts_closed: r.get(9)?,
                conflicts_handled: r.get(10)?,
                voids: r.get(3)?,
                rejects: r.get(4)?,
                devices: r.get(5)?,
                devices_revoked: r.get(6)?,
                batches: r.get(7)?,
                tokens_unused: r.get(8)?,
            })
        })
    }
}

fn configure(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(db::SQLITE_STATEMENT_CACHE);
    // 1 MB page cache per connection: `serve` holds one connection per worker (8 by default),
    // so this bounds the caches at ~8 MB — reached only when 8 requests are in flight at once,
    // since a request goes to the worker freed last (server/pool.rs); one laptop syncing warms
    // one cache (BENCHMARKS.md, sync).
    sqlite::configure(conn, BUSY_TIMEOUT, "PRAGMA cache_size=-1024;").map(|_| ())
}

/// Runs the PostgreSQL migrations not yet applied, all in one transaction under the writer lock
/// (two processes starting at once: the second waits, then finds nothing to do).
fn migrate_postgres(db: &mut Db<'_>) -> db::Result<()> {
    let mut tx = db.begin(Mode::Schema)?;
    tx.batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let version: i64 = match tx.query_opt("SELECT version FROM schema_version", args![])? {
        Some(r) => r.get(0)?,
        None => {
            tx.execute("INSERT INTO schema_version (version) VALUES (0)", args![])?;
            0
        }
    };
    if version as usize >= MIGRATIONS.len() {
        return Ok(());
    }
    for m in &MIGRATIONS[version.max(0) as usize..] {
        tx.batch(m.postgres)?;
    }
    tx.execute(
        "UPDATE schema_version SET version = ?1",
        args![MIGRATIONS.len() as i64],
    )?;
    tx.commit()
}

/// A PostgreSQL failure for the user, with what to check.
fn pg_error(location: &Location, e: db::Error) -> AppError {
    let at = location.display();
    let unreachable = match &e {
        db::Error::Postgres(pe) => pe.as_db_error().is_none(),
        db::Error::Pool(_) => true,
        _ => false,
    };
    let err = AppError::other(tr!(
        "Kesalahan database {at}: {e}",
        "Database error in {at}: {e}"
    ));
    if unreachable {
        err.hint(tr!(
            "Periksa --db / server.database_url (host, port, nama database, user, password) dan bahwa PostgreSQL berjalan.",
            "Check --db / server.database_url (host, port, database name, user, password) and that PostgreSQL is running."
        ))
    } else {
        err
    }
}

/// The refusal log keeps this many of its newest rows.
pub const MAX_REJECTS: i64 = 10_000;

pub(crate) fn note_reject(
    db: &mut Db<'_>,
    at: &str,
    device_id: Option<&str>,
    batch_id: Option<&str>,
    record_id: Option<&str>,
    code: &str,
    message: &str,
) -> db::Result<()> {
    // What a client sent, kept as text both stores take: PostgreSQL refuses a NUL character.
    let text = |s: &str| s.replace('\0', "\u{fffd}");
    let (device_id, batch_id, record_id) =
        (device_id.map(text), batch_id.map(text), record_id.map(text));
    db.execute(
        "INSERT INTO rejects (at, device_id, batch_id, record_id, code, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![at, device_id, batch_id, record_id, code, text(message)],
    )
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_log_keeps_only_its_newest_rows() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("d.db")).unwrap();
        let n = MAX_REJECTS + 250;
        for i in 0..n {
            s.note_reject(
                Some("dev"),
                None,
                None,
                "bad_signature",
                &format!("refusal {i}"),
            );
        }
        let (count, newest): (i64, String) = s
            .with(|db| {
                let r = db.query_one(
                    "SELECT COUNT(*), (SELECT message FROM rejects ORDER BY id DESC LIMIT 1)
                     FROM rejects",
                    args![],
                )?;
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(count, MAX_REJECTS);
        assert_eq!(newest, format!("refusal {}", n - 1));
    }

    #[test]
    fn locations_and_passwords_kept_out_of_messages() {
        assert_eq!(
            Location::parse("postgresql://h/db"),
            Location::Postgres("postgresql://h/db".into())
        );
        assert_eq!(
            Location::parse("postgres.db"),
            Location::Sqlite("postgres.db".into())
        );
        assert_eq!(
            redact("postgres://ikd:rahasia@db.example:5432/ikd"),
            "postgres://ikd:***@db.example:5432/ikd"
        );
        assert_eq!(
            redact("postgres://ikd@h/ikd?password=rahasia&sslmode=disable"),
            "postgres://ikd@h/ikd?password=***&sslmode=disable"
        );
        let e = Store::open(Location::Postgres(
            "postgres://ikd:rahasia@127.0.0.1:1/ikd".into(),
        ))
        .err()
        .unwrap();
        assert!(!e.message.contains("rahasia"), "{}", e.message);
        assert!(e.hint.unwrap().contains("database_url"));
    }

    /// Records come back in arrival order after a cursor, on both databases.
    #[test]
    fn records_after_a_cursor_in_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut stores = vec![Store::open(&dir.path().join("d.db")).unwrap()];
        let pg =
            crate::server::pgtest::TestDatabase::create("records_after_a_cursor_in_arrival_order");
        if let Some(pg) = &pg {
            stores.push(Store::open(Location::Postgres(pg.url.clone())).unwrap());
        }
        for store in &stores {
            let mut db = store.db().unwrap();
            let plan = crate::server::fill::Plan {
                seed: 3,
                regency: "1702".into(),
                records: 250,
                devices: 3,
                days: 2,
                now: time::macros::datetime!(2026-11-23 09:00 UTC),
            };
            let filled = crate::server::fill::fill(&mut db, &plan).unwrap();
            drop(db);
            let mut seen = Vec::new();
            let mut cursor = 0;
            loop {
                let page = store.records_after(cursor, 100).unwrap();
                if page.is_empty() {
                    break;
                }
                assert!(page.windows(2).all(|w| w[0].0 < w[1].0));
                cursor = page.last().unwrap().0;
                seen.extend(page.into_iter().map(|(_, r)| r.id));
            }
            assert_eq!(seen.len() as u64, filled.records);
            let mut exported = Vec::new();
            store
                .for_each_record(|r| {
                    exported.push(r.id);
                    Ok(())
                })
                .unwrap();
            assert_eq!(seen, exported);
        }
    }

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
