//! HTTP tests: the real application on a random port, real adapters, a real socket. Each
//! scenario runs against a fresh SQLite file and a fresh PostgreSQL database.

#![allow(
    clippy::disallowed_methods,
    reason = "a test or benchmark spawns outside any request: no context to carry"
)]

mod helpers;

mod audit;
mod auth;
mod browser;
mod cache;
mod chat;
mod cli;
mod clients;
mod docs;
mod email_codes;
mod emails;
mod faults;
mod hardening;
mod hostile;
mod keys;
mod mfa;
mod middleware;
mod observability;
mod oidc;
mod outbox;
mod pages;
mod passkeys;
mod providers;
mod ratelimits;
mod relying_party;
mod scaleout;
mod sessions;
mod upstream_oidc_provider;
mod users;
