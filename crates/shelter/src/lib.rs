//! Shelter's binary crate: the actix-web HTTP adapter, configuration, CLI and the
//! composition root that wires the domain to its adapters.
//!
//! - [`config`]: settings from defaults, `shelter.toml`, `.env` and `SHELTER_*`.
//! - [`app`]: builds the adapters and serves them (`Application`).
//! - [`http`]: handlers, DTOs, extractors, middleware, OpenAPI.
//! - [`telemetry`]: logging.

pub mod app;
pub mod config;
pub mod http;
pub mod telemetry;
