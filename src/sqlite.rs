//! What the field and the district databases share: opening a SQLite file, the durable settings
//! (WAL, `synchronous=FULL`, foreign keys, no trusted schema) and numbered migrations recorded in
//! `PRAGMA user_version`.
use crate::error::AppError;
use crate::tr;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// Opens `path` read-write (one connection per thread), creating the file when `create`. A file
/// made here is readable by its owner only (mode 0600 on unix), and SQLite gives its WAL and
/// shared-memory files the same mode: the district database holds full NIKs, phones and
/// e-mails in clear.
pub fn open(path: &Path, create: bool) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
        create_private(path);
    }
    Connection::open_with_flags(path, flags)
}

/// Creates `path` empty with mode 0600 (on Windows, the owner alone in its DACL) when it does
/// not exist, so SQLite opens a file only its owner can read. Failing here is left to the open
/// that follows.
fn create_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
    }
    #[cfg(windows)]
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        crate::crypto::owner_only::prepare(&mut o);
        if let Ok(f) = o.open(path) {
            let _ = crate::crypto::owner_only::restrict(&f);
        }
    }
}

/// Creates `dir` and its missing parents, the ones made here readable by their owner only
/// (mode 0700 on unix; on Windows `dir` itself, when made here, gets its owner alone in a DACL
/// that what is made in it inherits).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    #[cfg(windows)]
    let existed = dir.is_dir();
    b.create(dir)?;
    #[cfg(windows)]
    if !existed {
        crate::crypto::owner_only::restrict_dir(dir)?;
    }
    Ok(())
}

/// Busy timeout, WAL, `synchronous=FULL`, foreign keys on, trusted schema off, then `extra`
/// pragmas. Returns the journal mode SQLite answered ("wal" for a file).
pub fn configure(conn: &Connection, busy: Duration, extra: &str) -> rusqlite::Result<String> {
    conn.busy_timeout(busy)?;
    // journal_mode answers with a row; a damaged file fails here, before anything is written.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA trusted_schema=OFF;",
    )?;
    if !extra.is_empty() {
        conn.execute_batch(extra)?;
    }
    Ok(mode)
}

/// `PRAGMA user_version`: how many migrations have run.
pub fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Runs the migrations not yet applied, each in its own IMMEDIATE transaction that also sets
/// `PRAGMA user_version` to its number (1-based).
pub fn migrate(conn: &mut Connection, migrations: &[&str]) -> rusqlite::Result<()> {
    let version = user_version(conn)?;
    for (i, sql) in migrations.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        if user_version(&tx)? as usize > i {
            continue;
        }
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    Ok(())
}

/// Turns a SQLite error into something a field officer can act on.
pub fn db_error(path: &Path, e: rusqlite::Error) -> AppError {
    let code = e.sqlite_error_code();
    let p = path.display();
    // A value the file gives back in a shape no version of ikd-field wrote (text that is not
    // UTF-8, a number where text belongs): the file is damaged, as when SQLite says so.
    let unreadable = matches!(
        e,
        rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::Utf8Error(..)
    );
    match code {
        _ if unreadable => damaged(path, &e),
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => damaged(path, &e),
        Some(ErrorCode::DiskFull) => AppError::other(tr!(
            "Disk penuh: catatan TIDAK disimpan ({p}).",
            "The disk is full: the record was NOT saved ({p})."
        ))
        .hint(tr!(
            "Kosongkan ruang disk (hapus berkas lain, bukan folder ikd-field), lalu ulangi perintahnya.",
            "Free some disk space (delete other files, not the ikd-field folder), then run the command again."
        )),
        Some(ErrorCode::ReadOnly) | Some(ErrorCode::PermissionDenied) | Some(ErrorCode::CannotOpen) => {
            AppError::other(tr!(
                "Database {p} tidak bisa dibuka untuk ditulis ({e}).",
                "Cannot open the database {p} for writing ({e})."
            ))
            .hint(tr!(
                "Periksa izin folder data dan ruang disk, atau pakai --data-dir.",
                "Check the data folder's permissions and free space, or use --data-dir."
            ))
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => AppError::other(tr!(
            "Database {p} sedang dipakai proses lain terlalu lama.",
            "The database {p} has been busy in another process for too long."
        ))
        .hint(tr!("Tunggu sebentar lalu ulangi.", "Wait a moment and try again.")),
        _ => AppError::other(tr!("Kesalahan database {p}: {e}", "Database error in {p}: {e}")),
    }
}

/// The advice for a damaged database file.
fn damaged(path: &Path, e: &rusqlite::Error) -> AppError {
    let p = path.display();
    AppError::other(tr!(
        "Database {p} rusak atau bukan database ikd-field ({e}).",
        "The database {p} is damaged or is not an ikd-field database ({e})."
    ))
    .hint(tr!(
        "Jangan hapus berkas itu. Salin folder datanya ke flashdisk dan hubungi admin Dinas; catatan yang sudah terkirim aman di server.",
        "Do not delete the file. Copy the data folder to a USB stick and call the district admin; synced records are safe on the server."
    ))
}
