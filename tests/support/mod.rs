//! Helpers shared by the integration tests and benches.

pub mod fake_server;
pub mod scratch;
