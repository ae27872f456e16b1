//! Shelter's binary crate: the composition root, the command-line commands, the settings,
//! and the inbound adapters over the domain. Each folder follows one rule:
//!
//! - [`app`]: the composition root. `Application::build` turns settings into adapters,
//!   services and a listening server; the only module that names every adapter crate.
//! - [`cli`]: the command-line commands besides serving (`migrate` lives with the
//!   database, `create-superuser`, `keys`, `healthcheck`); each is one function of settings.
//! - [`config`]: the settings, read once at start-up into typed sections.
//! - [`edge`]: what every inbound adapter stands on: reading a request and its limits, the
//!   request context, the browser session, the steps two adapters both run, and
//!   [`edge::refusal::Refusal`], the one refusal type each adapter renders its own way.
//!   It imports no adapter.
//! - [`api`]: the JSON API (problem+json, OpenAPI, the WebSocket chat, health and
//!   metrics). [`pages`]: the hosted HTML pages. Siblings over the edge: neither imports
//!   the other.
//! - [`oauth`]: the OpenID Connect provider's machine endpoints (discovery, token,
//!   userinfo, revocation, introspection), which answer RFC 6749 JSON errors. Its browser
//!   side (authorize, consent, logout) is pages.
//! - [`runtime`]: what runs beside the adapters for the life of the process: the chat hub
//!   of this instance, graceful shutdown, logging and metrics.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod edge;
pub mod oauth;
pub mod pages;
pub mod runtime;
