//! Domain rules: NIK, phone, e-mail, region codes, the record and its validation.
pub mod email;
pub mod nik;
pub mod phone;
pub mod problem;
pub mod record;
pub mod region;
pub mod target;
pub mod validate;

pub use problem::Problem;
pub use record::{Kind, Record, SyncStatus};
