//! `/users/me/sessions`: the caller's live logins, and ending one of them.

use actix_web::{HttpResponse, web};
use shelter_domain::SessionId;

use super::dto::{SessionList, SessionResponse};
use crate::edge::caller::CurrentLogin;
use crate::edge::refusal::{ProblemBody, Refusal};
use crate::edge::state::AppState;

/// The caller's live logins, newest first.
#[utoipa::path(
    get, path = "/users/me/sessions", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, body = SessionList),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    CurrentLogin(login): CurrentLogin,
) -> Result<HttpResponse, Refusal> {
    let sessions = state.auth.sessions(login.user.id()).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(SessionList {
            items: sessions
                .iter()
                .map(|session| SessionResponse::new(session, login.session))
                .collect(),
        }))
}

/// End one of the caller's logins: its refresh and access tokens stop working at once on
/// every instance, and its chat sockets close with 1008.
#[utoipa::path(
    delete, path = "/users/me/sessions/{id}", tag = "auth",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "A session id from the listing")),
    responses(
        (status = 204, description = "Ended (this may be the caller's own login)"),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, description = "No live session of the caller has this id", body = ProblemBody),
    )
)]
pub async fn end(
    state: web::Data<AppState>,
    CurrentLogin(login): CurrentLogin,
    path: web::Path<String>,
) -> Result<HttpResponse, Refusal> {
    // Anything that is not a session id names no session of the caller.
    let session = path
        .parse::<SessionId>()
        .map_err(|_| Refusal::not_found("Session not found"))?;
    state.auth.end_session(login.user.id(), session).await?;
    Ok(HttpResponse::NoContent().finish())
}
