//! The HTTP client of the sync protocol, shared by the field kit (sync, enrolment) and the
//! district server (forwarding to a province): transport and TLS policy, the signed exchanges,
//! enrolment pinning, the failures and their user-facing words, and the one retry loop.
//! Depends only on the core modules (protocol, crypto, config, error).
pub mod failure;
pub mod http;
pub mod pin;
pub mod retry;
pub mod transport;

pub use failure::{Failure, refusal_error, unreachable_error};
pub use http::Client;
pub use retry::{Retry, sleep_unless};
pub use transport::{Transport, is_loopback_host, normalise_url};
