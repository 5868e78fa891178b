//! PostgreSQL under the database layer: placeholders translated, a connection with its own
//! statement cache and lock timeout, and the r2d2 pool the workers share.
use super::value::{Error, Param, Result, Row, Value};
use r2d2::ManageConnection;
use std::collections::HashMap;

/// Statements kept per PostgreSQL connection before the cache starts over.
pub(super) const PG_STATEMENT_CACHE: usize = 256;

/// SQLite's `?N` placeholders as PostgreSQL's `$N` (a bare `?` takes the next number); string
/// literals and quoted names are left alone.
pub fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    let mut next = 0u32;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '?' => {
                out.push('$');
                if chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                    while let Some(d) = chars.next_if(|d| d.is_ascii_digit()) {
                        out.push(d);
                    }
                } else {
                    next += 1;
                    out.push_str(&next.to_string());
                }
            }
            None => out.push(c),
        }
    }
    out
}

/// A PostgreSQL connection with its prepared statements.
pub struct PgConn {
    pub(super) client: postgres::Client,
    statements: HashMap<String, postgres::Statement>,
}

impl PgConn {
    pub(super) fn prepare(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(&translate(sql))?;
        if self.statements.len() >= PG_STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// Makes the pool's PostgreSQL connections (r2d2's side of it).
#[derive(Debug, Clone)]
pub struct PgManager {
    config: postgres::Config,
}

/// How long a PostgreSQL writer waits for the writer lock (or any lock) before its transaction
/// fails: the same as SQLite's busy timeout.
pub const PG_LOCK_TIMEOUT: &str = "60s";

impl PgManager {
    pub fn new(url: &str) -> Result<PgManager> {
        let mut config: postgres::Config = url.parse()?;
        if config.get_application_name().is_none() {
            config.application_name("ikd-field");
        }
        Ok(PgManager { config })
    }

    /// One connection, outside any pool.
    pub fn connect_one(&self) -> Result<PgConn> {
        let mut client = self.config.connect(postgres::NoTls)?;
        client.batch_execute(&format!(
            "SET lock_timeout = '{PG_LOCK_TIMEOUT}'; SET TIME ZONE 'UTC'"
        ))?;
        Ok(PgConn {
            client,
            statements: HashMap::new(),
        })
    }
}

impl ManageConnection for PgManager {
    type Connection = PgConn;
    type Error = Error;

    fn connect(&self) -> Result<PgConn> {
        self.connect_one()
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<()> {
        conn.client
            .simple_query("")
            .map(|_| ())
            .map_err(Error::from)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

pub type PgPool = r2d2::Pool<PgManager>;

pub(super) fn pg_params<'p>(
    params: &'p [Param<'_>],
) -> Vec<&'p (dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

pub(super) fn pg_row(r: &postgres::Row) -> Result<Row> {
    use postgres::types::Type;
    let mut vals = Vec::with_capacity(r.len());
    for (i, c) in r.columns().iter().enumerate() {
        let v = match *c.type_() {
            Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)?
                .map(|v| Value::Int(v.into())),
            Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                r.try_get::<_, Option<String>>(i)?.map(Value::Text)
            }
            ref t => {
                return Err(Error::Type(format!(
                    "column {} is {t}; cast it to BIGINT or TEXT in the query",
                    c.name()
                )));
            }
        };
        vals.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(vals))
}
