//! `GET /metrics` in the Prometheus text format, from the recorder `runtime::telemetry`
//! installs.

use actix_web::HttpResponse;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::runtime::telemetry;

/// Counters and histograms of this process.
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(
            telemetry::install_metrics()
                .map(PrometheusHandle::render)
                .unwrap_or_default(),
        )
}
