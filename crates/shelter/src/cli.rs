//! The command-line commands besides serving. Each takes the settings and returns what to
//! print; `main.rs` only parses the command line and dispatches.

pub mod clients;
pub mod healthcheck;
pub mod keys;
pub mod superuser;
