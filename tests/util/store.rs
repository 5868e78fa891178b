//! Which district database the end-to-end tests run against. [`both_stores!`] turns one test
//! into two, `NAME::sqlite` and `NAME::postgres`, with the same body: on PostgreSQL every
//! district database the body asks for (by the file path it would have on SQLite) is a fresh
//! database on the server named by `IKD_TEST_POSTGRES`, made on first use and dropped when the
//! test ends. Without the variable the PostgreSQL variant prints a skip note; under `CI=true` it
//! fails (`.ci/run` starts PostgreSQL and sets it).
#![allow(dead_code)]
use ikd_field::server::pgtest::{self, TestDatabase};
use ikd_field::server::store::{Location, Store};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One test, run on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_stores {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            #[test]
            fn sqlite() $body

            $(#[$meta])*
            #[test]
            fn postgres() {
                $crate::util::store::on_postgres(
                    concat!(module_path!(), "::", stringify!($name)),
                    || $body,
                )
            }
        }
    };
}

thread_local! {
    /// On PostgreSQL: the databases made so far in this test, by the path they stand for.
    static POSTGRES: RefCell<Option<HashMap<PathBuf, TestDatabase>>> = const { RefCell::new(None) };
}

/// Runs `body` with its district databases on PostgreSQL (see the module's doc).
pub fn on_postgres(test: &str, body: impl FnOnce()) {
    // Fails under CI, prints the skip note elsewhere, when IKD_TEST_POSTGRES is unset.
    if pgtest::server(test).is_none() {
        return;
    }
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            // Drops every database of the test (after its servers, which the body dropped).
            POSTGRES.with(|p| p.borrow_mut().take());
        }
    }
    POSTGRES.with(|p| *p.borrow_mut() = Some(HashMap::new()));
    let _reset = Reset;
    body();
}

/// True inside the PostgreSQL variant of a test.
pub fn is_postgres() -> bool {
    POSTGRES.with(|p| p.borrow().is_some())
}

/// Where the district database that `path` stands for is: the file itself on SQLite; on
/// PostgreSQL a database made for this path (the same one each time this test asks again).
pub fn location(path: &Path) -> Location {
    POSTGRES.with(|p| match p.borrow_mut().as_mut() {
        None => Location::Sqlite(path.to_path_buf()),
        Some(dbs) => {
            let db = dbs.entry(path.to_path_buf()).or_insert_with(|| {
                TestDatabase::create(&path.display().to_string()).expect(pgtest::ENV)
            });
            Location::Postgres(db.url.clone())
        }
    })
}

/// The `--db` argument for `path` (see [`location`]).
pub fn db_arg(path: &Path) -> String {
    match location(path) {
        Location::Sqlite(p) => p.display().to_string(),
        Location::Postgres(url) => url,
    }
}

/// `config_toml` with what a server on `path`'s database needs: on PostgreSQL the key file
/// (`<path>.key`, as SQLite would use), which every process of the database shares.
pub fn server_config(config_toml: &str, path: &Path) -> String {
    if !is_postgres() {
        return config_toml.to_string();
    }
    let line = format!("key_file = {:?}\n", format!("{}.key", path.display()));
    match config_toml.find("[server]\n") {
        Some(i) => {
            let at = i + "[server]\n".len();
            format!("{}{line}{}", &config_toml[..at], &config_toml[at..])
        }
        None => format!("{config_toml}\n[server]\n{line}"),
    }
}

/// Opens the district database `path` stands for with the library (e.g. to fill it).
pub fn open(path: &Path) -> Store {
    Store::open(location(path)).unwrap_or_else(|e| panic!("{}", e.message))
}

/// One integer from a query on the district database `path` stands for (portable SQL).
pub fn count(path: &Path, sql: &str) -> i64 {
    let store = open(path);
    let mut db = store.db().unwrap();
    db.query_one(sql, ikd_field::args![])
        .and_then(|r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}
