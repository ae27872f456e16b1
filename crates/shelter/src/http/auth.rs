//! `/auth` handlers.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};

use super::AppState;
use super::dto::{TokenRequest, TokenResponse};
use super::extract::{Format, RawBody, validated};
use super::problem::{Problem, ProblemBody};

/// Log in with an email or username and a password.
#[utoipa::path(
    post, path = "/auth/token", tag = "auth",
    request_body(content(
        (TokenRequest = "application/x-www-form-urlencoded"),
        (TokenRequest = "application/json"),
    )),
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Incorrect username or password", body = ProblemBody),
        (status = 403, description = "Inactive user (only after the password was checked)", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
    )
)]
pub async fn token(state: web::Data<AppState>, body: RawBody) -> Result<HttpResponse, Problem> {
    let request = validated(
        body.decode::<TokenRequest>(&[Format::Form, Format::Json])
            .await?,
    )?;
    let (Some(login), Some(password)) = (request.username, request.password) else {
        return Err(Problem::field("username", "field required"));
    };
    let outcome = state
        .auth
        .login(&login, &SecretString::from(password))
        .await?;
    Ok(HttpResponse::Ok()
        // RFC 6749 §5.1: token responses must not be cached.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(TokenResponse {
            access_token: outcome.access_token.token.expose_secret().to_owned(),
            token_type: "bearer",
            expires_in: outcome.access_token.expires_in,
        }))
}
