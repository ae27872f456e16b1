//! Shelter's binary crate: the actix-web HTTP adapter, configuration, CLI and the
//! composition root that wires the domain to its adapters.
//!
//! - `config` reads the settings from defaults, `shelter.toml`, `.env` and `SHELTER_*`;
//! - `app` builds the adapters and serves them (`Application`);
//! - `http` holds the handlers (the WebSocket endpoint included), DTOs, extractors,
//!   middleware and OpenAPI document;
//! - `chat` is the hub of this instance's chat connections;
//! - `state` is what every handler may use (`AppState`);
//! - `telemetry` sets up logging;
//! - `healthcheck` is the `shelter healthcheck` subcommand of container images;
//! - `keys` is `shelter keys rotate|list`.

pub mod app;
pub mod chat;
pub mod config;
pub mod healthcheck;
pub mod http;
pub mod keys;
pub mod pages;
mod shutdown;
pub mod state;
pub mod telemetry;
