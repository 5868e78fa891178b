//! The laptop side: the data directory, the durable record store, the sync outbox (batch
//! journal), the HTTP client of the district server, and the sync run that ties them together.
pub mod activated;
pub mod capture;
pub mod clock;
pub mod datadir;
pub mod enrolment;
pub mod link;
pub mod office_ca;
pub mod outbox;
pub mod records;
pub mod retention;
pub mod schema;
pub mod sealing;
pub mod store;
pub mod sync_run;
mod sync_send;
