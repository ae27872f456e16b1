//! Shelter's binary crate: the actix-web HTTP adapter, configuration, CLI and the
//! composition root that wires the domain to its adapters.
//!
//! - `config` reads the settings from defaults, `shelter.toml`, `.env` and `SHELTER_*`;
//! - `app` builds the adapters and serves them (`Application`);
//! - `http` holds the handlers, DTOs, extractors, middleware and OpenAPI document;
//! - `telemetry` sets up logging;
//! - `ws` is the WebSocket chat and its hub.

pub mod app;
pub mod config;
pub mod http;
pub mod telemetry;
pub mod ws;
