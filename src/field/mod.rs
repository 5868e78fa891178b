//! The laptop side: the data directory, the durable record store, and (later) the sync client.
pub mod datadir;
pub mod store;
