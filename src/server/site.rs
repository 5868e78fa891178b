//! Finding and opening the district database from the settings: `--db` (a file, or a
//! `postgres://` URL), else `server.database_url`, else `server.db` in the data directory; and the
//! server's key file beside it.
use super::store::{Location, Store, is_postgres_url};
use crate::config::ServerConfig;
use crate::error::AppError;
use crate::tr;
use std::path::{Path, PathBuf};

/// Where the district database is: `--db` (a file, or a `postgres://` URL), else
/// `server.database_url`, else `server.db` in the data directory.
pub fn location(cfg: &ServerConfig, data_dir: &Path, explicit: Option<PathBuf>) -> Location {
    match explicit {
        Some(p) => match p.to_str() {
            Some(s) if is_postgres_url(s) => Location::Postgres(s.to_string()),
            _ => Location::Sqlite(p),
        },
        None => match &cfg.database_url {
            Some(url) => Location::Postgres(url.clone()),
            None => Location::Sqlite(data_dir.join(&cfg.db)),
        },
    }
}

/// The server's key file: `server.key_file` (relative to the data directory), else `<db>.key`
/// beside a SQLite database. PostgreSQL needs `server.key_file`: every process serving the
/// database must sign with the same key, so it cannot be guessed per machine.
pub fn key_file(
    cfg: &ServerConfig,
    data_dir: &Path,
    location: &Location,
) -> Result<PathBuf, AppError> {
    if let Some(configured) = &cfg.key_file {
        return Ok(data_dir.join(configured));
    }
    match location {
        Location::Sqlite(db) => Ok(super::key_path(db)),
        Location::Postgres(_) => Err(AppError::usage(tr!(
            "Dengan PostgreSQL, server.key_file di config.toml harus diisi.",
            "With PostgreSQL, server.key_file must be set in config.toml."
        ))
        .hint(tr!(
            "Isi key_file = \"/etc/ikd-field/server.key\" (misalnya) di bagian [server]. Kunci dibuat saat pertama dipakai; salin berkas yang sama ke setiap mesin server yang memakai database ini.",
            "Set key_file = \"/etc/ikd-field/server.key\" (for example) under [server]. The key is made on first use; copy that same file to every server machine using this database."
        ))),
    }
}

/// Opens an existing district database (admin commands that only read or change one). A
/// PostgreSQL database must exist anyway (the DBA creates it).
pub fn open_existing(
    cfg: &ServerConfig,
    data_dir: &Path,
    explicit: Option<PathBuf>,
) -> Result<(Location, Store), AppError> {
    if let Location::Sqlite(db) = location(cfg, data_dir, explicit.clone())
        && !db.exists()
    {
        return Err(AppError::usage(tr!(
            "Database server {} belum ada.",
            "There is no district database at {}.",
            db.display()
        ))
        .hint(tr!(
            "Periksa --db, atau mulai dengan: ikd-field serve --db FILE (atau server token --db FILE).",
            "Check --db, or start with: ikd-field serve --db FILE (or server token --db FILE)."
        )));
    }
    open(cfg, data_dir, explicit)
}

/// Opens the district database, creating it (and its folder) if needed; on PostgreSQL, its
/// tables.
pub fn open(
    cfg: &ServerConfig,
    data_dir: &Path,
    explicit: Option<PathBuf>,
) -> Result<(Location, Store), AppError> {
    let db = location(cfg, data_dir, explicit);
    if let Location::Sqlite(path) = &db
        && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
    {
        crate::sqlite::create_private_dir(parent).map_err(|e| {
            AppError::other(tr!(
                "Folder {} tidak bisa dibuat: {e}",
                "Cannot create the folder {}: {e}",
                parent.display()
            ))
        })?;
    }
    let store = Store::open_with_pool(&db, cfg.threads)?;
    Ok((db, store))
}
