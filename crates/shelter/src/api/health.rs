//! Liveness and readiness. The dependencies readiness asks are `Probe`s that composition
//! makes.

use actix_web::{HttpResponse, web};

use super::dto::Status;
use crate::edge::refusal::{ProblemBody, Refusal};
use crate::edge::state::AppState;

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, body = Status)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// The process and its dependencies (the database; Redis when configured) answer.
#[utoipa::path(
    get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, body = Status),
        (status = 503, description = "A dependency is down", body = ProblemBody, headers(("Retry-After" = u64))),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, Refusal> {
    for probe in &state.probes {
        if let Err(error) = probe.check().await {
            tracing::warn!(
                dependency = probe.name(),
                error = format!("{error:#}"),
                "not ready"
            );
            return Err(Refusal::unavailable(
                format!("The {} is not answering", probe.name()),
                5,
            ));
        }
    }
    Ok(HttpResponse::Ok().json(Status { status: "ok" }))
}
