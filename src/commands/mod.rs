//! The subcommands. Each file holds a command group's clap arguments and its `run` functions;
//! `main.rs` only dispatches here.
#[cfg(feature = "server")]
pub mod coverage;
#[cfg(feature = "server")]
pub mod demo;
pub mod desk;
#[cfg(feature = "server")]
pub mod devices;
pub mod field;
#[cfg(feature = "server")]
pub mod forward;
pub mod officer;
pub mod printer;
pub mod record;
pub mod record_prompt;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod server_tls;
pub mod slip;
pub mod status;
pub mod sync;
pub mod usage;
pub mod verify;
pub mod void;
pub mod wilayah;

use crate::config::{self, Config};
use crate::error::AppError;
use crate::field::datadir::{self, DataDir};
use crate::i18n::{self, Lang};
use std::path::PathBuf;

/// The heading of the options every command takes, after the command's own in `--help`.
const GLOBAL: &str = "Opsi umum / options of every command";

/// Options every command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Folder data / data directory [default: $IKD_FIELD_HOME, else the platform data dir]
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Berkas konfigurasi / configuration file [default: DATA_DIR/config.toml]
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Bahasa / language: id, en
    #[arg(long, global = true, help_heading = GLOBAL, env = "IKD_FIELD_LANG", value_name = "LANG")]
    pub lang: Option<Lang>,
    /// Keluaran JSON untuk skrip / JSON output for scripts
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,
}

/// What every command needs: where the data is, the settings, and how to answer.
pub struct Ctx {
    pub data_dir: PathBuf,
    pub config: Config,
    pub json: bool,
    /// A person may be asked on the terminal (the PIN of a locked laptop); never in the desk,
    /// whose console is not where the officer looks.
    pub ask: bool,
}

impl Ctx {
    pub fn new(g: &GlobalArgs) -> Result<Ctx, AppError> {
        crate::logging::init();
        crate::stop::quiet_on_closed_pipe();
        if let Some(l) = g.lang {
            i18n::set(l);
        }
        let data_dir = datadir::resolve(g.data_dir.as_deref());
        let (path, required) = config::locate(g.config.as_deref(), &data_dir);
        let config = Config::load(&path, required)?;
        if g.lang.is_none() {
            i18n::set(config.lang);
        }
        Ok(Ctx {
            data_dir,
            config,
            json: g.json,
            ask: true,
        })
    }

    /// The initialised data directory (or the error saying to run `init`). A laptop locked with
    /// the officer's PIN is opened with `IKD_FIELD_PIN`, else the PIN asked on a terminal (three
    /// tries), once per process.
    pub fn open(&self) -> Result<DataDir, AppError> {
        let open = || {
            DataDir::open_with(
                &self.data_dir,
                self.config.field.district_seal_key.as_deref(),
            )
        };
        if !crate::keylock::have_pin()
            && let Some(pin) = std::env::var("IKD_FIELD_PIN")
                .ok()
                .filter(|p| !p.is_empty())
        {
            crate::keylock::set_pin(Some(&pin));
        }
        let mut tries = 0;
        loop {
            match open() {
                Err(e) if is_locked(&e) && tries < 3 && self.can_ask() => {
                    tries += 1;
                    if e.details["locked"] == "wrong_pin" {
                        eprintln!("{}", e.message);
                    }
                    let pin =
                        rpassword::prompt_password(crate::tr!("PIN laptop: ", "Laptop PIN: "))
                            .unwrap_or_default();
                    crate::keylock::set_pin(Some(pin.trim()));
                }
                other => return other,
            }
        }
    }

    /// A person at a terminal can be asked (not `--json`, stdin a terminal).
    pub fn can_ask(&self) -> bool {
        self.ask && !self.json && std::io::IsTerminal::is_terminal(&std::io::stdin())
    }

    pub fn offset(&self) -> time::UtcOffset {
        self.config.offset()
    }
}

/// The laptop's data is locked under the officer's PIN and this process has none (or a wrong one).
pub fn is_locked(e: &AppError) -> bool {
    e.details.get("locked").is_some()
}

/// The district database and key file named by `--db` and the settings (`server::site`).
#[cfg(feature = "server")]
impl Ctx {
    pub fn server_location(&self, db: Option<PathBuf>) -> crate::server::store::Location {
        crate::server::site::location(&self.config.server, &self.data_dir, db)
    }

    /// Opens the district database, creating it if needed.
    pub fn server_db(
        &self,
        db: Option<PathBuf>,
    ) -> Result<(crate::server::store::Location, crate::server::store::Store), AppError> {
        crate::server::site::open(&self.config.server, &self.data_dir, db)
    }

    /// Opens a district database that must exist already.
    pub fn existing_server_db(
        &self,
        db: Option<PathBuf>,
    ) -> Result<(crate::server::store::Location, crate::server::store::Store), AppError> {
        crate::server::site::open_existing(&self.config.server, &self.data_dir, db)
    }

    pub fn key_file_of(&self, loc: &crate::server::store::Location) -> Result<PathBuf, AppError> {
        crate::server::site::key_file(&self.config.server, &self.data_dir, loc)
    }

    /// The server id to hand over with a token (`enrol --expect-server-id`): the key's id when
    /// the key is here. A SQLite database's own key (beside it) is made now if missing, as `serve`
    /// would; a configured `server.key_file` that is not on this machine is never made here (that
    /// would be another server's key): then the id is unknown.
    pub fn server_id_here(&self, db: Option<PathBuf>) -> Option<String> {
        let loc = self.server_location(db);
        let path = self.key_file_of(&loc).ok()?;
        let own = self.config.server.key_file.is_none()
            && matches!(loc, crate::server::store::Location::Sqlite(_));
        if path.exists() || own {
            crate::server::server_key(&path).ok().map(|k| k.id())
        } else {
            None
        }
    }

    /// The server key file of the database `db` names.
    pub fn server_key_file(&self, db: Option<PathBuf>) -> Result<PathBuf, AppError> {
        self.key_file_of(&self.server_location(db))
    }
}
