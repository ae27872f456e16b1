//! `/users/me/grants`: the applications the caller allowed to sign them in, and taking that
//! back.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use shelter_domain::clients::ClientId;
use shelter_domain::oauth::scope_string;
use utoipa::ToSchema;

use super::dto::rfc3339;
use crate::edge::caller::CurrentUser;
use crate::edge::refusal::{ProblemBody, Refusal};
use crate::edge::state::AppState;

/// One application with access.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantResponse {
    #[schema(example = "m1v2Yc3t0lqSxQx8T3w3qA")]
    client_id: String,
    #[schema(example = "Grafana")]
    name: String,
    /// Space-separated, as OAuth writes them.
    #[schema(example = "openid profile email")]
    scopes: String,
    /// RFC 3339, UTC.
    created_at: String,
    /// The last code redeemed or refresh token used (RFC 3339, UTC); `null` when never.
    last_used_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GrantList {
    items: Vec<GrantResponse>,
}

/// The applications the caller has allowed, newest first.
#[utoipa::path(
    get, path = "/users/me/grants", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, body = GrantList),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<HttpResponse, Refusal> {
    let grants = state.oauth.grants(user.id()).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(GrantList {
            items: grants
                .into_iter()
                .map(|grant| GrantResponse {
                    client_id: grant.client.to_string(),
                    name: grant.name,
                    scopes: scope_string(&grant.scopes),
                    created_at: rfc3339(grant.created_at),
                    last_used_at: grant.last_used_at.map(rfc3339),
                })
                .collect(),
        }))
}

/// Take an application's access back: its consent is forgotten and its refresh tokens for
/// the caller stop working at once (its access tokens at userinfo and introspection too).
#[utoipa::path(
    delete, path = "/users/me/grants/{client_id}", tag = "auth",
    security(("bearer" = [])),
    params(("client_id" = String, Path, description = "The application's client id")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, description = "The caller has not allowed this application", body = ProblemBody),
    )
)]
pub async fn forget(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, Refusal> {
    let not_found = || Refusal::not_found("No grant for this application");
    let client = ClientId::parse(&path).map_err(|_| not_found())?;
    if state.oauth.forget(user.id(), &client).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(not_found())
    }
}
