//! `GET /metrics` in the Prometheus text format. The recorder is process-global, so it is
//! installed once, the first time an application is served.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder if no other one is (an embedding program may have its own).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => {
                metrics::describe_counter!("shelter_http_requests_total", "HTTP requests by route and status");
                metrics::describe_histogram!("shelter_http_request_duration_seconds", "Time to answer an HTTP request");
                metrics::describe_counter!("shelter_emails_sent_total", "Emails delivered");
                metrics::describe_counter!("shelter_email_retries_total", "Delivery attempts that failed and will be retried");
                metrics::describe_counter!("shelter_emails_failed_total", "Emails given up on");
                Some(handle)
            }
            Err(error) => {
                tracing::warn!(%error, "another metrics recorder is installed; /metrics stays empty");
                None
            }
        })
        .as_ref()
}

/// Counters and histograms of this process.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(install().map(PrometheusHandle::render).unwrap_or_default())
}
