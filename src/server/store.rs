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
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long a writer waits for another process's write transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

pub use super::schema::{MIGRATIONS, Migration};

/// Where the district database is: a SQLite file, or a PostgreSQL server URL
/// (`postgres://user:password@host:port/dbname`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// A `--db` value: a `postgres://` or `postgresql://` URL, else a file path.
    pub fn parse(arg: &str) -> Location {
        if is_postgres_url(arg) {
            Location::Postgres(arg.to_string())
        } else {
            Location::Sqlite(PathBuf::from(arg))
        }
    }

    /// For messages and logs: the file, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(url) => redact(url),
        }
    }
}

impl From<&Path> for Location {
    fn from(p: &Path) -> Location {
        Location::Sqlite(p.to_path_buf())
    }
}

impl From<&PathBuf> for Location {
    fn from(p: &PathBuf) -> Location {
        Location::Sqlite(p.clone())
    }
}

impl From<&Location> for Location {
    fn from(l: &Location) -> Location {
        l.clone()
    }
}

pub use crate::config::is_postgres_url;

/// A URL with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let mut out = format!("{scheme}://");
    if let Some(a) = auth {
        match a.split_once(':') {
            Some((user, _)) => out.push_str(&format!("{user}:***@")),
            None => out.push_str(&format!("{a}@")),
        }
    }
    // A password in the query string (`?password=…`) too.
    let host = match host.split_once('?') {
        Some((h, q)) => {
            let q: Vec<String> = q
                .split('&')
                .map(|kv| {
                    if kv.starts_with("password=") {
                        "password=***".to_string()
                    } else {
                        kv.to_string()
                    }
                })
                .collect();
            format!("{h}?{}", q.join("&"))
        }
        None => host.to_string(),
    };
    out.push_str(&host);
    out
}

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

/// An enrolled laptop, a relay (a district server forwarding here), or a device known only
/// through a relay.
#[derive(Debug, Clone, Serialize)]
pub struct Device {
    pub id: String,
    /// The device's key (hex); `None` for a device known only through a relay, which has no
    /// key here (server/relay.rs).
    pub public_key: Option<String>,
    /// The relay (district server) that brought this device's records, if it did.
    pub relayed_by: Option<String>,
    /// That relay's name (its officer field: the district's name at enrolment).
    pub relayed_by_name: Option<String>,
    /// True for a relay itself (enrolled with a relay token).
    pub relay: bool,
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
    fn with<T>(&self, f: impl FnOnce(&mut Db<'_>) -> db::Result<T>) -> Result<T, AppError> {
        let mut db = self.db().map_err(|e| self.err(e))?;
        f(&mut db).map_err(|e| self.err(e))
    }

    /// Stores a new enrolment token (only its hash).
    pub fn add_token(
        &self,
        token_hash: &str,
        team: &str,
        created_at: &str,
        expires_at: &str,
        relay: bool,
    ) -> Result<(), AppError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO tokens (token_hash, team, created_at, expires_at, relay)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                args![token_hash, team, created_at, expires_at, i64::from(relay)],
            )
            .map(|_| ())
        })
    }

    pub fn device(&self, id: &str) -> Result<Option<Device>, AppError> {
        self.with(|db| {
            db.query_opt(&format!("{DEVICE_SELECT} WHERE d.id = ?1"), args![id])?
                .map(|r| row_to_device(&r))
                .transpose()
        })
    }

    /// A device's public key (hex) and when it was revoked, if it was: all that ingest needs.
    pub fn device_key(&self, id: &str) -> Result<Option<(String, Option<String>)>, AppError> {
        self.with(|db| {
            // A device known only through a relay (`relayed_by`) has no key here and cannot
            // send by itself: it is unknown to every signed request.
            db.query_opt(
                "SELECT public_key, revoked_at FROM devices WHERE id = ?1 AND relayed_by IS NULL",
                args![id],
            )?
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .transpose()
        })
    }

    pub fn devices(&self) -> Result<Vec<Device>, AppError> {
        self.with(|db| {
            db.query_all(
                &format!("{DEVICE_SELECT} ORDER BY d.enrolled_at, d.id"),
                args![],
            )?
            .iter()
            .map(row_to_device)
            .collect()
        })
    }

    /// Marks a device revoked; false when it was already revoked.
    pub fn revoke(&self, id: &str, at: &str) -> Result<bool, AppError> {
        self.with(|db| {
            db.execute(
                "UPDATE devices SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                args![id, at],
            )
            .map(|n| n > 0)
        })
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
            )
        });
    }

    pub fn stats(&self) -> Result<Stats, AppError> {
        self.with(|db| {
            let r = db.query_one(
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
                args![],
            )?;
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
        })
    }

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
    /// Positions are `rowid`, assigned under the writer lock (see [`super::db`]), so they grow
    /// in commit order on both databases: a reader that stores the last position it handled
    /// and asks again never misses a record and never sees one twice.
    pub fn records_after(&self, cursor: i64, limit: usize) -> Result<Vec<(i64, Row)>, AppError> {
        self.with(|db| records_after(db, cursor, limit))
    }
}

/// [`Store::records_after`] on a connection (e.g. inside a caller's write transaction that also
/// stores the new cursor).
pub fn records_after(db: &mut Db<'_>, cursor: i64, limit: usize) -> db::Result<Vec<(i64, Row)>> {
    let sql = format!(
        "SELECT rowid, {ROW_COLUMNS} FROM records WHERE rowid > ?1 ORDER BY rowid LIMIT ?2"
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    db.query_all(&sql, args![cursor, limit])?
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

fn configure(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(db::SQLITE_STATEMENT_CACHE);
    // 1 MB page cache per connection: `serve` holds one connection per worker (8 by default),
    // so this bounds the caches at ~8 MB; 2 MB each put the server over the 30 MB RSS target
    // at 5,000-record batches for ~5 % more ingest speed (BENCHMARKS.md, sync).
    sqlite::configure(conn, BUSY_TIMEOUT, "PRAGMA cache_size=-1024;").map(|_| ())
}

/// Runs the PostgreSQL migrations not yet applied, all in one transaction under the writer lock
/// (two processes starting at once: the second waits, then finds nothing to do).
fn migrate_postgres(db: &mut Db<'_>) -> db::Result<()> {
    let mut tx = db.begin(Mode::Write)?;
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

const DEVICE_SELECT: &str = "SELECT d.id, d.public_key, d.officer, d.team, d.enrolled_at, \
     d.revoked_at, d.last_sync_at, (SELECT COUNT(*) FROM records r WHERE r.device_id = d.id), \
     d.relayed_by, (SELECT v.officer FROM devices v WHERE v.id = d.relayed_by), d.relay \
     FROM devices d";

fn row_to_device(r: &db::Row) -> db::Result<Device> {
    let relayed_by: Option<String> = r.get(8)?;
    let public_key: String = r.get(1)?;
    Ok(Device {
        id: r.get(0)?,
        // A relayed device's placeholder (`relayed:…`) is not a key: not shown as one.
        public_key: relayed_by.is_none().then_some(public_key),
        relayed_by,
        relayed_by_name: r.get(9)?,
        relay: r.get::<i64>(10)? != 0,
        officer: r.get(2)?,
        team: r.get(3)?,
        enrolled_at: r.get(4)?,
        revoked_at: r.get(5)?,
        last_sync_at: r.get(6)?,
        records: r.get(7)?,
    })
}

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
