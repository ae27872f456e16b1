//! Logging: `tracing` to stderr, human-readable or JSON, level from `RUST_LOG`.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;

/// `default_level` applies unless `RUST_LOG` says otherwise: the server tells what it does
/// (`info`), a one-off command only what went wrong (`warn`). JSON lines are flat: the
/// fields of the request's span (`request_id`, `method`, `route`) sit beside the event's
/// own on every line, where log search expects them.
pub fn init(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    // A second initialisation (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Pretty => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init()
            .is_ok(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(filter)
            .with(tracing_flat_json::FlatJsonLayer::new(std::io::stderr))
            .try_init()
            .is_ok(),
    };
}
