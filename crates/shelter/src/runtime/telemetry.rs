//! Logging (`tracing` to stderr, human-readable or JSON, level from `RUST_LOG`) and the
//! metrics recorder, with every series the contract lists registered at zero.

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use shelter_domain::EmailKind;
use shelter_domain::limits::Limit;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::LogFormat;
use crate::edge::sign_in::LOGIN_RESULTS;

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

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Request durations as a histogram (buckets add up across instances, quantiles do not),
/// from half a millisecond to the 30 s deadline.
fn recorder() -> PrometheusBuilder {
    const BUCKETS: [f64; 15] = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
    let builder = PrometheusBuilder::new();
    builder
        .set_buckets_for_metric(
            Matcher::Full("shelter_http_request_duration_seconds".into()),
            &BUCKETS,
        )
        .unwrap_or_else(|_| PrometheusBuilder::new())
}

/// Installs the recorder if no other one is (an embedding program may have its own).
pub fn install_metrics() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| match recorder().install_recorder() {
            Ok(handle) => {
                metrics::describe_counter!("shelter_http_requests_total", "HTTP requests by route and status");
                metrics::describe_histogram!("shelter_http_request_duration_seconds", "Time to answer an HTTP request");
                metrics::describe_counter!("shelter_emails_sent_total", "Emails delivered");
                metrics::describe_counter!("shelter_email_retries_total", "Delivery attempts that failed and will be retried");
                metrics::describe_counter!("shelter_emails_failed_total", "Emails given up on");
                metrics::describe_gauge!("shelter_ws_connections", "Open WebSocket connections");
                metrics::describe_gauge!("shelter_outbox_pending", "Emails waiting to be sent or retried");
                metrics::describe_counter!("shelter_rate_limited_total", "Requests refused by a rate limit");
                metrics::describe_counter!("shelter_logins_total", "Login attempts by result");
                metrics::describe_gauge!("shelter_db_pool_in_use", "Database connections in use");
                metrics::describe_gauge!("shelter_password_hashes_in_flight", "Password hashes queued or running");
                metrics::describe_counter!("shelter_user_cache_hits_total", "Authentications served from the user cache");
                metrics::describe_counter!("shelter_user_cache_misses_total", "Authentications that read the user from the database");
                metrics::describe_counter!("shelter_backchannel_logouts_total", "Back-channel logout deliveries by result");
                register_at_zero();
                Some(handle)
            }
            Err(error) => {
                tracing::warn!(%error, "another metrics recorder is installed; /metrics stays empty");
                None
            }
        })
        .as_ref()
}

/// The `result` of a back-channel logout delivery.
pub const BACKCHANNEL_RESULTS: [&str; 3] = ["sent", "retried", "failed"];

/// Registers every series whose labels are known in advance, at zero: an alert on an
/// absent series never fires, so a fresh server must already show what it has not yet
/// counted. Adding zero registers a series without changing it. The request series are
/// known only once a request is answered; `/metrics` itself stands in for them.
fn register_at_zero() {
    for kind in EmailKind::ALL.map(EmailKind::as_str) {
        for name in [
            "shelter_emails_sent_total",
            "shelter_email_retries_total",
            "shelter_emails_failed_total",
        ] {
            metrics::counter!(name, "kind" => kind).increment(0);
        }
    }
    for limit in Limit::ALL.map(Limit::as_str) {
        metrics::counter!("shelter_rate_limited_total", "limit" => limit).increment(0);
    }
    for result in LOGIN_RESULTS {
        metrics::counter!("shelter_logins_total", "result" => result).increment(0);
    }
    for result in BACKCHANNEL_RESULTS {
        metrics::counter!("shelter_backchannel_logouts_total", "result" => result).increment(0);
    }
    for name in [
        "shelter_user_cache_hits_total",
        "shelter_user_cache_misses_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    for name in [
        "shelter_ws_connections",
        "shelter_outbox_pending",
        "shelter_db_pool_in_use",
        "shelter_password_hashes_in_flight",
    ] {
        metrics::gauge!(name).increment(0.0);
    }
    let scrape = [("method", "GET"), ("route", "/metrics")];
    metrics::counter!(
        "shelter_http_requests_total",
        &[scrape[0], scrape[1], ("status", "200")]
    )
    .increment(0);
    let _registered = metrics::histogram!("shelter_http_request_duration_seconds", &scrape);
}
