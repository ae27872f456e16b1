//! Liveness and readiness, and the dependencies readiness asks.

use actix_web::{HttpResponse, web};
use async_trait::async_trait;
use shelter_persistence::Database;
use shelter_redis::Redis;

use super::dto::Status;
use super::problem::{Problem, ProblemBody};
use crate::state::{AppState, Probe};

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
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    for probe in &state.probes {
        if let Err(error) = probe.check().await {
            tracing::warn!(
                dependency = probe.name(),
                error = format!("{error:#}"),
                "not ready"
            );
            return Err(Problem::unavailable(
                format!("The {} is not answering", probe.name()),
                5,
            ));
        }
    }
    Ok(HttpResponse::Ok().json(Status { status: "ok" }))
}

#[async_trait]
impl Probe for Database {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> anyhow::Result<()> {
        self.ping().await
    }
}

#[async_trait]
impl Probe for Redis {
    fn name(&self) -> &'static str {
        "Redis"
    }

    async fn check(&self) -> anyhow::Result<()> {
        self.ping().await
    }
}
