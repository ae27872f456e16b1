//! `/oauth/clients`: the OAuth client registry, for superusers. A confidential client's
//! secret is in the answer that creates it and in the one that rotates it, and nowhere else.

use actix_web::{HttpResponse, web};
use shelter_domain::SecretToken;
use shelter_domain::clients::{Client, ClientId, Operator};

use super::dto::{ClientList, ClientResponse};
use crate::edge::body::RawBody;
use crate::edge::caller::CurrentUser;
use crate::edge::refusal::{ProblemBody, Refusal};
use crate::edge::requests::{ClientRequest, ClientUpdateRequest};
use crate::edge::state::AppState;

/// Anything that cannot be a client id names no client.
fn client_id(raw: &str) -> Result<ClientId, Refusal> {
    ClientId::parse(raw).map_err(|_| Refusal::not_found("Client not found"))
}

/// A client as answered, with its secret when this answer is the one that shows it. Never
/// cached: it may carry a secret.
fn client(
    status: actix_web::http::StatusCode,
    client: &Client,
    secret: Option<&SecretToken>,
) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("cache-control", "no-store"))
        .json(ClientResponse::new(client, secret))
}

/// Register a client. A confidential one gets a `client_secret` (256 bits), shown only in
/// this answer and kept as its SHA-256.
#[utoipa::path(
    post, path = "/oauth/clients", tag = "oauth clients", security(("bearer" = [])),
    request_body = ClientRequest,
    responses(
        (status = 201, body = ClientResponse),
        (status = 401, body = ProblemBody),
        (status = 403, description = "Not a superuser", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody),
        (status = 422, description = "Invalid settings, every bad field at once", body = ProblemBody),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    CurrentUser(me): CurrentUser,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let (kind, settings) = body.json::<ClientRequest>().await?;
    let (created, secret) = state
        .clients
        .create(Operator::Superuser(&me), kind, settings)
        .await?;
    Ok(client(
        actix_web::http::StatusCode::CREATED,
        &created,
        secret.as_ref(),
    ))
}

/// Every registered client, oldest first; no secrets.
#[utoipa::path(
    get, path = "/oauth/clients", tag = "oauth clients", security(("bearer" = [])),
    responses(
        (status = 200, body = ClientList),
        (status = 401, body = ProblemBody),
        (status = 403, description = "Not a superuser", body = ProblemBody),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    CurrentUser(me): CurrentUser,
) -> Result<HttpResponse, Refusal> {
    let clients = state.clients.list(Operator::Superuser(&me)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(ClientList {
            items: clients
                .iter()
                .map(|client| ClientResponse::new(client, None))
                .collect(),
        }))
}

/// One client; no secret.
#[utoipa::path(
    get, path = "/oauth/clients/{client_id}", tag = "oauth clients", security(("bearer" = [])),
    params(("client_id" = String, Path)),
    responses(
        (status = 200, body = ClientResponse),
        (status = 401, body = ProblemBody),
        (status = 403, description = "Not a superuser", body = ProblemBody),
        (status = 404, body = ProblemBody),
    )
)]
pub async fn read(
    state: web::Data<AppState>,
    CurrentUser(me): CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, Refusal> {
    let id = client_id(&path)?;
    let found = state.clients.get(Operator::Superuser(&me), &id).await?;
    Ok(client(actix_web::http::StatusCode::OK, &found, None))
}

/// Change a client's settings: any subset of them. Its type and secret stay.
#[utoipa::path(
    patch, path = "/oauth/clients/{client_id}", tag = "oauth clients", security(("bearer" = [])),
    params(("client_id" = String, Path)),
    request_body = ClientUpdateRequest,
    responses(
        (status = 200, body = ClientResponse),
        (status = 401, body = ProblemBody),
        (status = 403, description = "Not a superuser", body = ProblemBody),
        (status = 404, body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody),
        (status = 422, body = ProblemBody),
    )
)]
pub async fn update(
    state: web::Data<AppState>,
    CurrentUser(me): CurrentUser,
    path: web::Path<String>,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let id = client_id(&path)?;
    let changes = body.json::<ClientUpdateRequest>().await?;
    let updated = state
        .clients
        .update(Operator::Superuser(&me), &id, changes)
        .await?;
    Ok(client(actix_web::http::StatusCode::OK, &updated, None))
}

/// Delete a client.
#[utoipa::path(
    delete, path = "/oauth/clients/{client_id}", tag = "oauth clients", security(("bearer" = [])),
    params(("client_id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ProblemBody),
        (status = 403, description = "Not a superuser", body = ProblemBody),
        (status = 404, body = ProblemBody),
    )
)]
pub async fn delete(
    state: web::Data<AppState>,
    CurrentUser(me): CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, Refusal> {
    let id = client_id(&path)?;
    state.clients.delete(Operator::Superuser(&me), &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new secret for a confidential client, shown only in this answer; the old one stops
/// working at once.
#[utoipa::path(
    post, path = "/oauth/clients/{client_id}/secret", tag = "oauth clients", security(("bearer" = [])),
    params(("client_id" = String, Path)),
    responses(
        (status = 200, body = ClientResponse),
        (status = 401, body = ProblemBody),
        (status = 403, description = "Not a superuser", body = ProblemBody),
        (status = 404, body = ProblemBody),
        (status = 422, description = "A public client has no secret", body = ProblemBody),
    )
)]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    CurrentUser(me): CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, Refusal> {
    let id = client_id(&path)?;
    let (rotated, secret) = state
        .clients
        .rotate_secret(Operator::Superuser(&me), &id)
        .await?;
    Ok(client(
        actix_web::http::StatusCode::OK,
        &rotated,
        Some(&secret),
    ))
}
