//! The field data directory: `--data-dir DIR`, else `IKD_FIELD_HOME`, else the platform's local
//! data dir (`~/.local/share/ikd-field` on Linux, `%LOCALAPPDATA%\ikd-field` on Windows).
//!
//! ```text
//! DATA_DIR/field.db      SQLite (WAL) — records, audit log, device identity
//! DATA_DIR/device.key    Ed25519 seed, mode 0600 (on Windows: its owner alone in its ACL)
//! DATA_DIR/seal-holding.key  X25519 holding key, 0600, only until the district key is known
//! DATA_DIR/config.toml   optional settings
//! DATA_DIR/slips/        slip files
//! ```
use crate::crypto::KeyPair;
use crate::error::{AppError, Kind};
pub use crate::field::store::Identity;
use crate::field::store::Store;
use crate::tr;
use std::path::{Path, PathBuf};

pub const DB_FILE: &str = "field.db";
pub const KEY_FILE: &str = "device.key";

pub fn resolve(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("IKD_FIELD_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    // The local, not the roaming, application data: `%LOCALAPPDATA%` on Windows, so the
    // database and its key never travel with a roaming profile to the domain's other machines.
    // On Linux (`$XDG_DATA_HOME`, else `~/.local/share`) and macOS the same as `data_dir`.
    dirs::data_local_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("ikd-field")
}

/// The device key is locked under the officer's PIN and no PIN, or a wrong one, was given.
/// `details.locked` says which (`no_pin`, `wrong_pin`): the command line asks on a terminal, the
/// desk shows its unlock page.
fn locked_error(l: crate::keylock::Locked) -> AppError {
    let (message, code) = match l {
        crate::keylock::Locked::WrongPin => (
            tr!(
                "PIN salah; laptop tetap terkunci.",
                "Wrong PIN; the laptop stays locked."
            ),
            "wrong_pin",
        ),
        _ => (
            tr!(
                "Data di laptop ini dikunci dengan PIN petugas.",
                "The data on this laptop is locked with the officer's PIN."
            ),
            "no_pin",
        ),
    };
    AppError::new(Kind::Usage, message)
        .hint(tr!(
            "Jalankan perintahnya di terminal dan ketik PIN saat diminta (untuk skrip: IKD_FIELD_PIN), atau buka desk.",
            "Run the command on a terminal and type the PIN when asked (scripts: IKD_FIELD_PIN), or open the desk."
        ))
        .details(serde_json::json!({ "locked": code }))
}

/// An initialised data directory, opened.
pub struct DataDir {
    pub path: PathBuf,
    pub store: Store,
    pub key: KeyPair,
    pub identity: Identity,
}

fn not_initialised(path: &Path) -> AppError {
    AppError::new(
        Kind::Usage,
        tr!(
            "Data ikd-field belum disiapkan di {}.",
            "No ikd-field data directory at {} yet.",
            path.display()
        ),
    )
    .hint(tr!(
        "Jalankan dulu: ikd-field init --officer \"NAMA PETUGAS\" --team \"NAMA TIM\"",
        "Run first: ikd-field init --officer \"OFFICER NAME\" --team \"TEAM NAME\""
    ))
}

impl DataDir {
    pub fn db_path(path: &Path) -> PathBuf {
        path.join(DB_FILE)
    }

    /// Creates a data directory: database through its migrations, device key, identity.
    pub fn init(path: &Path, officer: &str, team: &str) -> Result<DataDir, AppError> {
        DataDir::init_with(path, officer, team, None)
    }

    /// [`DataDir::init`], with the district's sealing key known beforehand (`init
    /// --district-key`, `[field] district_seal_key`): records are sealed to it from the first.
    pub fn init_with(
        path: &Path,
        officer: &str,
        team: &str,
        district_key: Option<&str>,
    ) -> Result<DataDir, AppError> {
        if let Some(k) = district_key.map(str::trim).filter(|k| !k.is_empty())
            && crate::seal::parse_public_hex(k).is_none()
        {
            return Err(AppError::invalid(tr!(
                "Kunci segel Dinas '{k}' tidak sah: harus 64 karakter heksadesimal.",
                "The district sealing key '{k}' is not valid: it must be 64 hex characters."
            ))
            .hint(tr!(
                "Salin kunci dari admin Dinas (ikd-field server seal-key) persis seperti tertulis.",
                "Copy the key from the district admin (ikd-field server seal-key) exactly as written."
            )));
        }
        if DataDir::db_path(path).exists() {
            return Err(AppError::new(
                Kind::Usage,
                tr!(
                    "Data ikd-field sudah ada di {}; tidak ditimpa.",
                    "An ikd-field data directory already exists at {}; it is not overwritten.",
                    path.display()
                ),
            )
            .hint(tr!(
                "Lanjutkan dengan data yang ada. Bila pendaftaran ke server tadi gagal, daftar saja: ikd-field enrol --server URL --token TOKEN. Untuk perangkat baru pakai --data-dir lain.",
                "Carry on with the existing data. If enrolment failed just now, enrol on its own: ikd-field enrol --server URL --token TOKEN. For a new device use another --data-dir."
            )));
        }
        std::fs::create_dir_all(path).map_err(|e| {
            AppError::other(tr!(
                "Folder {} tidak bisa dibuat: {e}",
                "Cannot create folder {}: {e}",
                path.display()
            ))
        })?;
        let key_path = path.join(KEY_FILE);
        let key = if key_path.exists() {
            // A key left by an interrupted init is reused rather than replaced.
            KeyPair::load(&key_path)
        } else {
            KeyPair::generate().and_then(|k| k.save_field(&key_path).map(|_| k))
        }
        .map_err(|e| {
            AppError::other(tr!(
                "Kunci perangkat tidak bisa dibuat di {}: {e}",
                "Cannot create the device key at {}: {e}",
                key_path.display()
            ))
        })?;
        let mut store = Store::create(&DataDir::db_path(path))?;
        let identity = Identity {
            device_id: key.id(),
            public_key: key.public_hex(),
            officer: officer.trim().to_string(),
            team: team.trim().to_string(),
            created_at: crate::timefmt::now_utc(),
        };
        store.init_identity(&identity)?;
        crate::field::sealing::prepare(path, &mut store, &key, district_key)?;
        Ok(DataDir {
            path: path.to_path_buf(),
            store,
            key,
            identity,
        })
    }

    /// Opens an initialised data directory; says to run `init` when there is none.
    pub fn open(path: &Path) -> Result<DataDir, AppError> {
        DataDir::open_with(path, None)
    }

    /// [`DataDir::open`], adopting `district_key` (from `[field] district_seal_key`) as the
    /// district's sealing key when the database has none yet.
    pub fn open_with(path: &Path, district_key: Option<&str>) -> Result<DataDir, AppError> {
        let db = DataDir::db_path(path);
        if !db.exists() {
            return Err(not_initialised(path));
        }
        let mut store = Store::open(&db)?;
        let identity = store.identity()?.ok_or_else(|| not_initialised(path))?;
        let key_path = path.join(KEY_FILE);
        let holding_path = path.join(crate::field::sealing::HOLDING_FILE);
        // A PIN change interrupted between its renames is finished (or undone) first.
        let _ = crate::crypto::recover_field_secrets(&[&key_path, &holding_path]);
        let key = KeyPair::load(&key_path).map_err(|e| {
            if let Some(l) = e
                .get_ref()
                .and_then(|i| i.downcast_ref::<crate::keylock::Locked>())
                .filter(|l| **l != crate::keylock::Locked::Damaged)
            {
                return locked_error(*l);
            }
            AppError::other(tr!(
                "Kunci perangkat {} tidak bisa dibaca: {e}",
                "Cannot read the device key {}: {e}",
                key_path.display()
            ))
            .hint(tr!(
                "Kunci ini dibuat oleh 'ikd-field init'; pulihkan dari cadangan, jangan buat ulang.",
                "The key was made by 'ikd-field init'; restore it from a backup, do not recreate it."
            ))
        })?;
        if key.id() != identity.device_id {
            return Err(AppError::other(tr!(
                "Kunci perangkat {} bukan milik database ini (perangkat {}).",
                "The device key {} does not belong to this database (device {}).",
                key_path.display(),
                identity.device_id
            )));
        }
        // A locked device key with a holding key in clear (a first `pin` interrupted before its
        // second file): the holding key is locked now, under the PIN that opened the device key.
        if let Some(pin) = crate::keylock::pin()
            && std::fs::read_to_string(&key_path).is_ok_and(|t| crate::keylock::is_locked(&t))
            && std::fs::read_to_string(&holding_path).is_ok_and(|t| !crate::keylock::is_locked(&t))
        {
            crate::crypto::relock_field_secrets(&[&holding_path], &pin).map_err(|e| {
                AppError::other(tr!(
                    "Kunci sementara {} tidak bisa dikunci dengan PIN: {e}",
                    "Cannot lock the holding key {} with the PIN: {e}",
                    holding_path.display()
                ))
            })?;
        }
        crate::field::sealing::prepare(path, &mut store, &key, district_key)?;
        Ok(DataDir {
            path: path.to_path_buf(),
            store,
            key,
            identity,
        })
    }
}
