//! Test support (unit tests, `tests/`, benchmarks): a fresh PostgreSQL database per test on the
//! server named by `IKD_TEST_POSTGRES` (e.g. `postgres://ikd:ikd@127.0.0.1:5432/postgres`, a role
//! allowed to create databases), dropped again when the test ends, so tests run in parallel.
//! Without the variable a test prints a loud skip note; under `CI=true` it fails instead (`.ci/run`
//! starts PostgreSQL and sets it).
#![doc(hidden)]
use super::db::{self, Db};
use crate::args;

/// The environment variable with the PostgreSQL server tests use.
pub const ENV: &str = "IKD_TEST_POSTGRES";

/// A database made for one test; dropped (with any connections left) on drop.
pub struct TestDatabase {
    admin_url: String,
    pub name: String,
    /// The URL of this database.
    pub url: String,
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{host_part}/{name}{query}")
}

/// The PostgreSQL server URL for tests, or `None` after a skip note for `test` when
/// `IKD_TEST_POSTGRES` is unset (panics instead under `CI=true`).
pub fn server(test: &str) -> Option<String> {
    if let Some(url) = std::env::var(ENV).ok().filter(|v| !v.is_empty()) {
        return Some(url);
    }
    if under_ci() {
        panic!(
            "{ENV} is required under CI (the PostgreSQL variant of {test}); .ci/run starts PostgreSQL and sets it"
        );
    }
    eprintln!(
        "\n!!!!!!!! SKIPPED: {test} on PostgreSQL — set {ENV}=postgres://USER:PASSWORD@HOST:PORT/postgres \
         (a role that may create databases). Under CI=true this fails instead. !!!!!!!!\n"
    );
    None
}

impl TestDatabase {
    /// A new empty database, or `None` after a skip note when `IKD_TEST_POSTGRES` is unset
    /// (panics under `CI=true`, and when the server refuses).
    pub fn create(test: &str) -> Option<TestDatabase> {
        let admin_url = server(test)?;
        let mut rnd = [0u8; 6];
        getrandom::fill(&mut rnd).expect("random");
        let name = format!("ikd_test_{}_{}", std::process::id(), hex::encode(rnd));
        let url = with_database(&admin_url, &name);
        admin(&admin_url, &format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE on {ENV}: {e}"));
        Some(TestDatabase {
            admin_url,
            name,
            url,
        })
    }

    /// One integer from a query on this database (e.g. `SELECT COUNT(*) FROM records`).
    pub fn count(&self, sql: &str) -> i64 {
        let mut c = db::PgManager::new(&self.url)
            .and_then(|m| m.connect_one())
            .unwrap_or_else(|e| panic!("{e}"));
        Db::postgres(&mut c)
            .query_one(sql, args![])
            .and_then(|r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

fn admin(url: &str, sql: &str) -> db::Result<()> {
    let mut c = db::PgManager::new(url)?.connect_one()?;
    Db::postgres(&mut c).batch(sql)
}

impl Drop for TestDatabase {
    /// Drops the database. An autovacuum worker busy on it right after a large write cannot be
    /// ended by a role that is not a superuser (`WITH (FORCE)` then fails); it finishes in
    /// moments, so the drop is tried a few times.
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let mut tries = 0;
        while let Err(e) = admin(&self.admin_url, &sql) {
            tries += 1;
            if tries == 10 {
                eprintln!("could not drop test database {}: {e}", self.name);
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/postgres", "x"),
            "postgres://u:p@h:5432/x"
        );
        assert_eq!(
            with_database("postgresql://h/db?sslmode=disable", "x"),
            "postgresql://h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
