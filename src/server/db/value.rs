//! The values that cross the database layer: parameters ([`Param`], [`AsParam`], the `args!`
//! macro), results ([`Value`], [`Row`], [`FromValue`]), and the errors of either database.

/// A database failure.
#[derive(Debug)]
pub enum Error {
    Sqlite(rusqlite::Error),
    Postgres(postgres::Error),
    Pool(r2d2::Error),
    /// A value of another type than the caller asked for.
    Type(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Sqlite(e) => write!(f, "{e}"),
            // postgres::Error's Display leaves out the server's message; show it.
            Error::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.code().code(), db.message()),
                None => write!(f, "{e}"),
            },
            Error::Pool(e) => write!(f, "{e}"),
            Error::Type(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// PostgreSQL refused a write because another transaction got there first: a unique index
    /// (the same NIK, record or batch at once), a deadlock between two writers, or a
    /// serialization failure. Decided again alone, the same work goes through.
    pub fn is_write_race(&self) -> bool {
        use postgres::error::SqlState;
        let Error::Postgres(e) = self else {
            return false;
        };
        [
            SqlState::UNIQUE_VIOLATION,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::T_R_SERIALIZATION_FAILURE,
        ]
        .iter()
        .any(|c| e.code() == Some(c))
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sqlite(e)
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        Error::Postgres(e)
    }
}

impl From<r2d2::Error> for Error {
    fn from(e: r2d2::Error) -> Self {
        Error::Pool(e)
    }
}

/// A statement parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Param<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
    /// A list of texts, for [`Db::any_of`]: a JSON array on SQLite (read with `json_each`), a
    /// `text[]` on PostgreSQL.
    Texts(&'a [&'a str]),
}

/// What can be a parameter: text, integers, bytes, and `Option`s of them (`None` is NULL).
pub trait AsParam {
    fn as_param(&self) -> Param<'_>;
}

impl AsParam for str {
    fn as_param(&self) -> Param<'_> {
        Param::Text(self)
    }
}

impl AsParam for String {
    fn as_param(&self) -> Param<'_> {
        Param::Text(self)
    }
}

impl AsParam for [u8] {
    fn as_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl AsParam for Vec<u8> {
    fn as_param(&self) -> Param<'_> {
        Param::Blob(self)
    }
}

impl AsParam for [&str] {
    fn as_param(&self) -> Param<'_> {
        Param::Texts(self)
    }
}

impl AsParam for Vec<&str> {
    fn as_param(&self) -> Param<'_> {
        Param::Texts(self)
    }
}

impl AsParam for i64 {
    fn as_param(&self) -> Param<'_> {
        Param::Int(*self)
    }
}

impl AsParam for i32 {
    fn as_param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}

impl AsParam for u32 {
    fn as_param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}

impl AsParam for bool {
    fn as_param(&self) -> Param<'_> {
        Param::Int(i64::from(*self))
    }
}

impl<T: AsParam + ?Sized> AsParam for &T {
    fn as_param(&self) -> Param<'_> {
        (**self).as_param()
    }
}

impl<T: AsParam> AsParam for Option<T> {
    fn as_param(&self) -> Param<'_> {
        self.as_ref().map_or(Param::Null, AsParam::as_param)
    }
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// One result row, read in full.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub(super) Vec<Value>);

impl Row {
    /// Column `i` as `T` (`Option<T>` for a column that may be NULL).
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T> {
        let v = self
            .0
            .get(i)
            .ok_or_else(|| Error::Type(format!("no column {i}")))?;
        T::from_value(v).map_err(|e| Error::Type(format!("column {i}: {e}")))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a column can be read as.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> std::result::Result<Self, String>;
}

pub(super) fn wrong(want: &str, v: &Value) -> String {
    format!("expected {want}, found {v:?}")
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Int(i) => Ok(*i),
            _ => Err(wrong("an integer", v)),
        }
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Int(i) => Ok(*i != 0),
            _ => Err(wrong("a boolean", v)),
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            _ => Err(wrong("text", v)),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            _ => Err(wrong("bytes", v)),
        }
    }
}

impl FromValue for Value {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        Ok(v.clone())
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Param::Null => ValueRef::Null,
            Param::Int(i) => ValueRef::Integer(*i),
            Param::Text(s) => ValueRef::Text(s.as_bytes()),
            Param::Blob(b) => ValueRef::Blob(b),
            Param::Texts(list) => {
                let json = serde_json::to_string(list)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                return Ok(ToSqlOutput::Owned(rusqlite::types::Value::Text(json)));
            }
        }))
    }
}

impl postgres::types::ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        use postgres::types::{IsNull, ToSql, Type};
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::BOOL => (v != 0).to_sql(ty, out),
                _ => Err(format!("an integer parameter cannot be sent as {ty}").into()),
            },
            Param::Text(s) if <&str as ToSql>::accepts(ty) => s.to_sql(ty, out),
            Param::Blob(b) if <&[u8] as ToSql>::accepts(ty) => b.to_sql(ty, out),
            Param::Texts(list) if <&[&str] as ToSql>::accepts(ty) => list.to_sql(ty, out),
            p => Err(format!("parameter {p:?} cannot be sent as {ty}").into()),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        // Checked per value in to_sql (NULL goes into any column).
        true
    }

    postgres::types::to_sql_checked!();
}

pub(super) fn lite_value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Int(f as i64),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}
