//! Sealing on the laptop (docs/sealing.md): which key new records are sealed to, the holding
//! key before the district's key is known, re-sealing on enrolment, and sealing the plaintext
//! rows of a database made by an older version.
//!
//! ```text
//! DATA_DIR/seal-holding.key   X25519 secret (hex, 0600) — only until the district key is known
//! meta seal.district_key      the district's sealing public key (hex)
//! ```
use super::capture::seal_target;
use super::store::{M_DISTRICT_SEAL, Sealing, Store};
use crate::crypto::{self, KeyPair};
use crate::error::AppError;
use crate::seal::{self, OpenKey, Secrets};
use crate::sqlite::db_error;
use crate::tr;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use std::path::{Path, PathBuf};

pub const HOLDING_FILE: &str = "seal-holding.key";

/// What `status` says about sealing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SealStatus {
    /// The district's sealing key is known (records are sealed to it as they are recorded).
    pub district_key_known: bool,
    pub district_key_id: Option<String>,
    /// Records not sealed to the district yet (held under the holding key until enrolment).
    pub pending_seal: i64,
    /// The holding key file exists.
    pub holding_key: bool,
}

fn holding_path(dir: &Path) -> PathBuf {
    dir.join(HOLDING_FILE)
}

fn io_error(path: &Path, e: std::io::Error) -> AppError {
    AppError::other(tr!(
        "Kunci segel sementara {} tidak bisa dibaca atau dibuat: {e}",
        "Cannot read or create the holding seal key {}: {e}",
        path.display()
    ))
    .hint(tr!(
        "Periksa izin dan ruang disk folder data. Jangan hapus berkas itu sebelum perangkat terdaftar: catatan yang menunggu segel Dinas hanya bisa dibuka dengannya.",
        "Check the data folder's permissions and free space. Do not delete that file before the device is enrolled: records waiting for the district seal open only with it."
    ))
}

/// The district's sealing public key, when this database knows it.
pub fn district_key(store: &Store) -> Result<Option<[u8; 32]>, AppError> {
    Ok(store
        .meta(M_DISTRICT_SEAL)?
        .as_deref()
        .and_then(seal::parse_public_hex))
}

/// Sets up sealing when a data directory opens: adopts a pre-provisioned district key (from
/// `[field] district_seal_key`) if the database has none, loads or makes the holding key while
/// the district key is unknown, seals the rows of an older version, and re-seals held records
/// once the district key is known.
pub fn prepare(
    dir: &Path,
    store: &mut Store,
    device: &KeyPair,
    configured: Option<&str>,
) -> Result<(), AppError> {
    if let Some(k) = configured.map(str::trim).filter(|k| !k.is_empty())
        && store.meta(M_DISTRICT_SEAL)?.is_none()
    {
        adopt(store, dir, k, "config")?;
    }
    let district = district_key(store)?;
    let path = holding_path(dir);
    let holding = if district.is_none() || path.exists() {
        Some(load_or_create_holding(&path, district.is_none())?)
    } else {
        None
    }
    .flatten();
    store.set_sealing(Sealing {
        tag_key: seal::tag_key(device),
        holding: holding.as_ref().map(OpenKey::public),
    });
    seal_legacy(store)?;
    if let (Some(d), Some(h)) = (district, holding) {
        reseal(store, dir, &h, &d)?;
    }
    Ok(())
}

/// The holding key: loaded, or made (only when `create`: while the district key is unknown).
fn load_or_create_holding(path: &Path, create: bool) -> Result<Option<OpenKey>, AppError> {
    match crypto::load_secret(path) {
        Ok(b) => Ok(Some(OpenKey::from_bytes(b))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let k = OpenKey::generate().map_err(|e| io_error(path, e))?;
            match crypto::save_field_secret(path, &k.to_bytes()) {
                Ok(()) => Ok(Some(k)),
                // Another process made it first.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    crypto::load_secret(path)
                        .map(|b| Some(OpenKey::from_bytes(b)))
                        .map_err(|e| io_error(path, e))
                }
                Err(e) => Err(io_error(path, e)),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, e)),
    }
}

/// Makes `key_hex` the district's sealing key of this database (`source`: "enrol", "init",
/// "config"), then re-seals whatever the holding key holds. Refuses a key different from the
/// one already adopted: records sealed to that one could not be opened by another server.
pub fn adopt(store: &Store, dir: &Path, key_hex: &str, source: &str) -> Result<(), AppError> {
    let key = seal::parse_public_hex(key_hex).ok_or_else(|| {
        AppError::invalid(tr!(
            "Kunci segel Dinas '{}' tidak sah: harus 64 karakter heksadesimal.",
            "The district sealing key '{}' is not valid: it must be 64 hex characters.",
            key_hex.trim()
        ))
        .hint(tr!(
            "Salin kunci dari admin Dinas (ikd-field server seal-key) persis seperti tertulis.",
            "Copy the key from the district admin (ikd-field server seal-key) exactly as written."
        ))
    })?;
    let hex_key = hex::encode(key);
    match store.meta(M_DISTRICT_SEAL)? {
        Some(k) if k == hex_key => {}
        Some(k) => return Err(key_mismatch(&k, &hex_key)),
        None => {
            let path = store.path().to_path_buf();
            let dbe = |e| db_error(&path, e);
            let tx = Transaction::new_unchecked(store.conn(), TransactionBehavior::Immediate)
                .map_err(dbe)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO NOTHING",
                params![M_DISTRICT_SEAL, hex_key],
            )
            .map_err(dbe)?;
            let now_key: String = tx
                .query_row(
                    "SELECT value FROM meta WHERE key = ?1",
                    [M_DISTRICT_SEAL],
                    |r| r.get(0),
                )
                .map_err(dbe)?;
            if now_key != hex_key {
                return Err(key_mismatch(&now_key, &hex_key));
            }
            tx.execute(
                "INSERT INTO audit (at, action, detail) VALUES (?1, 'seal_key', ?2)",
                params![
                    crate::timefmt::now_utc(),
                    format!("district sealing key {} ({source})", seal::key_id(&key))
                ],
            )
            .map_err(dbe)?;
            tx.commit().map_err(dbe)?;
        }
    }
    if let Some(h) = load_or_create_holding(&holding_path(dir), false)? {
        reseal(store, dir, &h, &key)?;
    }
    Ok(())
}

/// The error for a district key other than the one this laptop's records are sealed to.
pub fn key_mismatch(have: &str, offered: &str) -> AppError {
    let id = |h: &str| {
        seal::parse_public_hex(h)
            .map(|k| seal::key_id(&k))
            .unwrap_or_else(|| "?".into())
    };
    AppError::other(tr!(
        "Catatan di laptop ini disegel untuk kunci Dinas {}, bukan {}: server dengan kunci itu tidak bisa membukanya.",
        "The records on this laptop are sealed to district key {}, not {}: a server with that key could not open them.",
        id(have),
        id(offered)
    ))
    .hint(tr!(
        "Pastikan alamat server Dinas benar; kunci yang dipasang sebelumnya (init --district-key atau config) harus milik server itu.",
        "Check the district server address; the key set before (init --district-key or config) must be that server's."
    ))
}

/// Re-seals every record held under `holding` to the district key, in one transaction; then,
/// when none is left held, truncates the WAL and destroys the holding key file.
fn reseal(
    store: &Store,
    dir: &Path,
    holding: &OpenKey,
    district: &[u8; 32],
) -> Result<(), AppError> {
    let path = store.path().to_path_buf();
    let dbe = |e| db_error(&path, e);
    let label = format!("district:{}", seal::key_id(district));
    let tx =
        Transaction::new_unchecked(store.conn(), TransactionBehavior::Immediate).map_err(dbe)?;
    let held: Vec<(String, Vec<u8>)> = tx
        .prepare("SELECT id, sealed FROM records WHERE sealed_to LIKE 'holding:%'")
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(dbe)?;
    let mut done = 0usize;
    {
        let mut upd = tx
            .prepare("UPDATE records SET sealed = ?2, sealed_to = ?3 WHERE id = ?1")
            .map_err(dbe)?;
        for (id, sealed) in &held {
            // A box this holding key does not open stays held (and is counted in `status`).
            // (What a key opens always fits the format again: decoding is strict.)
            let resealed = holding
                .open(sealed)
                .and_then(|secrets| seal::seal(district, &secrets).ok());
            if let Some(resealed) = resealed {
                upd.execute(params![id, resealed, label]).map_err(dbe)?;
                done += 1;
            }
        }
    }
    if done > 0 {
        tx.execute(
            "INSERT INTO audit (at, action, detail) VALUES (?1, 'reseal', ?2)",
            params![
                crate::timefmt::now_utc(),
                format!(
                    "{done} records re-sealed from the holding key to district key {}",
                    seal::key_id(district)
                )
            ],
        )
        .map_err(dbe)?;
    }
    let left: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM records WHERE sealed_to LIKE 'holding:%'",
            [],
            |r| r.get(0),
        )
        .map_err(dbe)?;
    tx.commit().map_err(dbe)?;
    if left == 0 {
        scrub(store)?;
        destroy_holding(&holding_path(dir)).map_err(|e| io_error(&holding_path(dir), e))?;
        store.audit(
            "seal_holding_destroyed",
            None,
            "holding seal key file overwritten and removed",
        )?;
    }
    Ok(())
}

/// Overwrites the holding key file with zeros, syncs, removes it. (On SSDs and journalling file
/// systems the old blocks may survive the overwrite: docs/sealing.md says what that means.)
fn destroy_holding(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    f.write_all(&vec![0u8; meta.len() as usize])?;
    f.sync_all()?;
    drop(f);
    std::fs::remove_file(path)
}

/// Copies the WAL into the database and truncates it, so pages that held replaced or deleted
/// data do not linger in `field.db-wal`.
pub fn scrub(store: &Store) -> Result<(), AppError> {
    store
        .conn()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .map_err(|e| db_error(store.path(), e))
}

/// Seals the rows a database of an older version kept in clear (field database migration 4
/// moved them to `seal_legacy`), drops that table, and rewrites the file without them (VACUUM
/// with secure_delete, WAL truncated).
fn seal_legacy(store: &mut Store) -> Result<(), AppError> {
    let path = store.path().to_path_buf();
    let dbe = |e| db_error(&path, e);
    let exists: Option<i64> = store
        .conn()
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seal_legacy'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(dbe)?;
    if exists.is_none() {
        return Ok(());
    }
    let sealing = store.sealing().cloned().expect("set before");
    let tx =
        Transaction::new_unchecked(store.conn(), TransactionBehavior::Immediate).map_err(dbe)?;
    let (to, label) = seal_target(&tx, &sealing).map_err(dbe)??;
    let rows: Vec<(String, Secrets)> = tx
        .prepare("SELECT id, nik, phone, email FROM seal_legacy")
        .and_then(|mut st| {
            st.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    Secrets {
                        nik: r.get(1)?,
                        phone: r.get(2)?,
                        email: r.get(3)?,
                    },
                ))
            })
            .and_then(|rows| rows.collect())
        })
        .map_err(dbe)?;
    {
        let mut upd = tx
            .prepare(
                "UPDATE records SET nik_tag = ?2, sealed = ?3, sealed_to = ?4
                 WHERE id = ?1 AND sealed IS NULL",
            )
            .map_err(dbe)?;
        for (id, s) in &rows {
            let tag = seal::nik_tag(&sealing.tag_key, &s.nik);
            // An older version validated these as today's does; a row that does not fit the
            // sealed format was altered outside ikd-field, and stops the upgrade (rolled back).
            let sealed = seal::seal(&to, s).map_err(|why| {
                AppError::other(tr!(
                    "Catatan {id} dari versi lama tidak dapat disegel: {why}.",
                    "Record {id} from an older version cannot be sealed: {why}."
                ))
                .hint(tr!(
                    "Basis data ini diubah di luar ikd-field. Simpan salinannya dan hubungi pengelola server Dinas.",
                    "This database was changed outside ikd-field. Keep a copy of it and contact the district server's administrator."
                ))
            })?;
            upd.execute(params![id, &tag[..], sealed, label])
                .map_err(dbe)?;
        }
    }
    tx.execute_batch("DROP TABLE seal_legacy").map_err(dbe)?;
    tx.execute(
        "INSERT INTO audit (at, action, detail) VALUES (?1, 'seal_legacy', ?2)",
        params![
            crate::timefmt::now_utc(),
            format!(
                "{} records of an older version sealed ({label}); plaintext removed",
                rows.len()
            )
        ],
    )
    .map_err(dbe)?;
    tx.commit().map_err(dbe)?;
    store.conn().execute_batch("VACUUM").map_err(dbe)?;
    scrub(store)
}

/// Sealing state for `status`.
pub fn status(store: &Store, dir: &Path) -> Result<SealStatus, AppError> {
    let district = district_key(store)?;
    Ok(SealStatus {
        district_key_known: district.is_some(),
        district_key_id: district.as_ref().map(seal::key_id),
        pending_seal: store.pending_seal()?,
        holding_key: holding_path(dir).exists(),
    })
}

/// Where a record written now is sealed to: `district` or `holding`.
pub fn new_records_sealed_to(store: &Store) -> Result<&'static str, AppError> {
    Ok(if district_key(store)?.is_some() {
        "district"
    } else {
        "holding"
    })
}

impl SealStatus {
    /// The sealing line of `init` and `status`.
    pub fn describe(&self) -> String {
        // The officer's words: what is protected and what to do; the key's id is in --json.
        match (&self.district_key_id, self.pending_seal) {
            (Some(_), 0) => tr!(
                "Data warga (NIK lengkap, HP, e-mail): terkunci untuk server Dinas, tidak terbaca di laptop ini.",
                "Citizens' data (full NIK, phone, e-mail): locked for the district server, not readable on this laptop."
            ),
            (Some(_), n) => tr!(
                "Data warga: {n} catatan BELUM terkunci untuk server Dinas (kunci sementara hilang?); hubungi admin Dinas.",
                "Citizens' data: {n} records NOT locked for the district server yet (holding key lost?); call the district admin."
            ),
            (None, n) => tr!(
                "Data warga: {n} catatan terkunci sementara di laptop ini sampai laptop didaftarkan ke server Dinas (ikd-field enrol, atau Pengaturan di desk).",
                "Citizens' data: {n} records locked on this laptop for now, until it is enrolled with the district server (ikd-field enrol, or Settings in the desk)."
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::datadir::DataDir;

    const NIK: &str = "1702064107950003";
    const PHONE: &str = "+6281234567890";
    const EMAIL: &str = "siti.lama@example.org";

    fn assert_clean(dir: &Path) {
        for f in ["field.db", "field.db-wal", "field.db-shm"] {
            let bytes = std::fs::read(dir.join(f)).unwrap_or_default();
            for s in [NIK, PHONE, "81234567890", EMAIL] {
                assert!(
                    !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                    "{s} in {f}"
                );
            }
        }
    }

    /// A data directory of the version before sealing (field database 3), with plaintext rows
    /// and a journalled batch whose body holds them.
    fn old_data_dir(dir: &Path) -> KeyPair {
        std::fs::create_dir_all(dir).unwrap();
        let key = KeyPair::generate().unwrap();
        key.save(&dir.join("device.key")).unwrap();
        let mut c = crate::sqlite::open(&dir.join("field.db"), true).unwrap();
        crate::sqlite::configure(&c, std::time::Duration::from_secs(5), "").unwrap();
        crate::sqlite::migrate(&mut c, &crate::field::store::MIGRATIONS[..3]).unwrap();
        for (k, v) in [
            ("device_id", key.id()),
            ("public_key", key.public_hex()),
            ("officer", "P".into()),
            ("team", "T".into()),
            ("created_at", crate::timefmt::now_utc()),
        ] {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![k, v],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO records (id, seq, device_id, officer, team, recorded_at, kind, village,
                                  nik, name, phone, email, status, status_at)
             VALUES ('01900000-0000-7000-8000-000000000001', 1, ?1, 'P', 'T',
                     '2026-11-20T01:00:00.000Z', 'activation', '1702061004', ?2, 'SITI',
                     ?3, ?4, 'synced', '2026-11-20T02:00:00.000Z')",
            params![key.id(), NIK, PHONE, EMAIL],
        )
        .unwrap();
        c.execute(
            "INSERT INTO outbox_batches (id, created_at, record_count, first_seq, last_seq, body,
                                         body_sha256, signature)
             VALUES ('b1', '2026-11-20T01:30:00.000Z', 1, 1, 1, ?1, 'x', 'y')",
            [format!("{{\"nik\":\"{NIK}\",\"phone\":\"{PHONE}\"}}").into_bytes()],
        )
        .unwrap();
        key
    }

    #[test]
    fn an_older_database_is_sealed_and_its_plaintext_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("f");
        old_data_dir(&dir);
        let mut dd = DataDir::open(&dir).unwrap();
        assert_clean(&dir);
        let s = dd.store.find("1").unwrap();
        assert_eq!(
            (s.record.nik.as_str(), s.sealed),
            ("170206******0003", "holding")
        );
        let c = dd.store.conn();
        let tables: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'seal_legacy'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0);
        let (state, body): (String, Vec<u8>) = c
            .query_row(
                "SELECT state, body FROM outbox_batches WHERE id = 'b1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((state.as_str(), body.len()), ("answered", 0));
        // Sealed under the holding key, to the very values it had.
        let sealed: Vec<u8> = c
            .query_row("SELECT sealed FROM records WHERE seq = 1", [], |r| r.get(0))
            .unwrap();
        let holding = OpenKey::from_bytes(crypto::load_secret(&dir.join(HOLDING_FILE)).unwrap());
        let opened = holding.open(&sealed).unwrap();
        assert_eq!(
            (
                opened.nik.as_str(),
                opened.phone.as_str(),
                opened.email.as_deref()
            ),
            (NIK, PHONE, Some(EMAIL))
        );
        // The duplicate check knows the old record by its keyed hash.
        let input = crate::domain::validate::Input {
            nik: NIK.into(),
            name: "Siti".into(),
            phone: "081234567890".into(),
            email: String::new(),
            village: "1702061004".into(),
        };
        let v = crate::domain::validate::activation(&input, time::macros::date!(2026 - 11 - 23))
            .unwrap();
        let who = dd.identity.clone();
        let e = dd.store.record_activation(&v, &who).unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Duplicate);
        // Enrolment: re-sealed to the district, the holding key destroyed.
        let server = KeyPair::from_seed([4; 32]);
        adopt(&dd.store, &dir, &seal::server_public_hex(&server), "test").unwrap();
        assert!(!dir.join(HOLDING_FILE).exists());
        let sealed: Vec<u8> = dd
            .store
            .conn()
            .query_row("SELECT sealed FROM records WHERE seq = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(OpenKey::of_server(&server).open(&sealed), Some(opened));
        assert_eq!(status(&dd.store, &dir).unwrap().pending_seal, 0);
        assert_clean(&dir);
        // Another district's key is refused from now on.
        let other = seal::server_public_hex(&KeyPair::from_seed([5; 32]));
        assert!(adopt(&dd.store, &dir, &other, "test").is_err());
    }
}
