//! The district server. (Placeholder until the `server` branch is merged.)
pub mod coverage;
pub mod dashboard;
pub mod fill;
pub mod targets;
