//! ikd-field: the offline field kit and the district server for IKD activation drives.
//!
//! Where things live (see ARCHITECTURE.md): `domain` validates, `field` stores and syncs on the
//! laptop, `slip` signs and prints, `server` ingests and shows the dashboard, `commands` implement
//! the CLI's subcommands, and `main.rs` only parses arguments and dispatches.
pub mod client;
pub mod commands;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod field;
pub mod i18n;
pub mod keylock;
pub mod logging;
pub mod numfmt;
pub mod output;
pub mod protocol;
pub mod seal;
#[cfg(feature = "server")]
pub mod server;
pub mod slip;
pub mod sqlite;
pub mod stop;
pub mod synth;
pub mod timefmt;

pub use error::{AppError, Result};
