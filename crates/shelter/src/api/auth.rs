//! `/auth` handlers.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, web};
use secrecy::ExposeSecret;
use shelter_domain::{LoginOutcome, SecondFactor, SecretToken};

use super::dto::{Accepted, TokenResponse, UserResponse};
use crate::edge::body::{Format, RawBody};
use crate::edge::refusal::{PROBLEM_JSON, ProblemBody, Refusal};
use crate::edge::requests::{
    EmailCodeRequest, EmailRequest, RefreshRequest, ResetPasswordRequest, TokenRequest,
    VerifyEmailRequest,
};
use crate::edge::sign_in::{EmailProof, SignIn, attempt_email_code, attempt_login};
use crate::edge::state::AppState;
use crate::edge::steps::{EmailRequestKind, request_email};

/// A new pair of tokens (a login, its second step, a refresh).
pub(super) fn tokens(outcome: &LoginOutcome) -> HttpResponse {
    HttpResponse::Ok()
        // RFC 6749 §5.1: token responses must not be cached.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(TokenResponse {
            access_token: outcome.access_token.token.expose_secret().to_owned(),
            token_type: "bearer",
            expires_in: outcome.access_token.expires_in,
            refresh_token: outcome.refresh_token.expose().to_owned(),
        })
}

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
        (status = 403, description = "Inactive user, or unverified email when verification is required (only after the password was checked); or, for a user with TOTP, `code: mfa_required` with the `mfa_token` of `POST /auth/mfa`", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
        (status = 429, description = "Too many attempts for this address and username", body = ProblemBody, headers(("Retry-After" = u64))),
    )
)]
pub async fn token(state: web::Data<AppState>, body: RawBody) -> Result<HttpResponse, Refusal> {
    let (login, password) = body
        .parse::<TokenRequest>(&[Format::Form, Format::Json])
        .await?;
    match attempt_login(&state, &login, &password).await {
        SignIn::SignedIn(outcome) => Ok(tokens(&outcome)),
        SignIn::SecondStep { token, methods } => Ok(second_step_required(&token, methods)),
        SignIn::Refused(refusal) => Err(refusal),
    }
}

/// The first factor was right and a second must follow: a 403 whose `code` says so, whose
/// `mfa_token` the client presents to `POST /auth/mfa`, and the `methods` it accepts.
fn second_step_required(token: &SecretToken, methods: &[SecondFactor]) -> HttpResponse {
    let detail = "A second factor is required";
    let mut body = Refusal::new(StatusCode::FORBIDDEN, detail).body();
    body.code = Some("mfa_required");
    body.mfa_token = Some(token.expose().to_owned());
    body.methods = Some(methods.iter().map(|method| method.as_str()).collect());
    HttpResponse::Forbidden()
        .content_type(PROBLEM_JSON)
        .json(body)
}

/// Exchange a refresh token for a new pair; the presented token is spent.
#[utoipa::path(
    post, path = "/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Unknown, expired or revoked; a spent token reused after the grace window also revokes its whole login", body = ProblemBody),
        (status = 403, description = "Inactive user", body = ProblemBody),
        (status = 422, body = ProblemBody),
    )
)]
pub async fn refresh(state: web::Data<AppState>, body: RawBody) -> Result<HttpResponse, Refusal> {
    let presented = body.json::<RefreshRequest>().await?;
    Ok(tokens(&state.auth.refresh(&presented).await?))
}

/// End the login a refresh token belongs to.
#[utoipa::path(
    post, path = "/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "That login's refresh and access tokens stop working at once and its WebSockets close with 1008 (also 204 when the token was unknown)"), (status = 422, body = ProblemBody))
)]
pub async fn logout(state: web::Data<AppState>, body: RawBody) -> Result<HttpResponse, Refusal> {
    let presented = body.json::<RefreshRequest>().await?;
    state.auth.logout(&presented).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Confirm an email address with the token from the welcome or verification email.
#[utoipa::path(
    post, path = "/auth/verify-email", tag = "auth",
    request_body = VerifyEmailRequest,
    responses(
        (status = 200, body = UserResponse),
        (status = 400, description = "Invalid, used or expired token", body = ProblemBody),
        (status = 422, body = ProblemBody),
    )
)]
pub async fn verify_email(
    state: web::Data<AppState>,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let token = body.json::<VerifyEmailRequest>().await?;
    let user = state.users.verify_email(&token).await?;
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(UserResponse::from(&user).to_json()))
}

/// Ask for a password-reset email.
#[utoipa::path(
    post, path = "/auth/password-recovery", tag = "auth",
    request_body = EmailRequest,
    responses(
        (status = 202, description = "The same answer whether or not the email is known", body = Accepted),
        (status = 422, body = ProblemBody),
        (status = 429, description = "Too many requests for this email", body = ProblemBody, headers(("Retry-After" = u64))),
    )
)]
pub async fn password_recovery(
    state: web::Data<AppState>,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let email = body.json::<EmailRequest>().await?;
    request_email(&state, EmailRequestKind::PasswordReset, email).await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        detail: "If this email is registered, a reset link is on its way",
    }))
}

/// Ask for a new verification email; earlier verification links stop working.
#[utoipa::path(
    post, path = "/auth/verify-email/resend", tag = "auth",
    request_body = EmailRequest,
    responses(
        (status = 202, description = "The same answer whether or not the email is known or already verified", body = Accepted),
        (status = 422, body = ProblemBody),
        (status = 429, description = "Too many requests for this email", body = ProblemBody, headers(("Retry-After" = u64))),
    )
)]
pub async fn resend_verification(
    state: web::Data<AppState>,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let email = body.json::<EmailRequest>().await?;
    request_email(&state, EmailRequestKind::Verification, email).await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        detail: "If this email is registered and not yet verified, a new link is on its way",
    }))
}

/// Choose a new password with the token from the reset email; every session ends.
#[utoipa::path(
    post, path = "/auth/reset-password", tag = "auth",
    request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "Password changed; every access and refresh token of the user stops working"),
        (status = 400, description = "Invalid, used or expired token", body = ProblemBody),
        (status = 422, body = ProblemBody),
    )
)]
pub async fn reset_password(
    state: web::Data<AppState>,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let (token, password) = body.json::<ResetPasswordRequest>().await?;
    state.auth.reset_password(&token, &password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The refusal of an email-code request when the deployment turned them off.
fn email_codes_on(state: &AppState) -> Result<(), Refusal> {
    if state.email_codes {
        Ok(())
    } else {
        Err(Refusal::not_found(
            "Sign-in codes by email are off on this server",
        ))
    }
}

/// Ask for a sign-in email: six digits and a link, for 10 minutes, replacing any earlier
/// one.
#[utoipa::path(
    post, path = "/auth/email-code", tag = "auth",
    request_body = EmailRequest,
    responses(
        (status = 202, description = "The same answer whether or not the email is known", body = Accepted),
        (status = 404, description = "Sign-in codes by email are off on this server", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
        (status = 429, description = "Too many requests for this email", body = ProblemBody, headers(("Retry-After" = u64))),
    )
)]
pub async fn email_code(
    state: web::Data<AppState>,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    email_codes_on(&state)?;
    let email = body.json::<EmailRequest>().await?;
    request_email(&state, EmailRequestKind::SignInCode, email).await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        detail: "If this email is registered, a sign-in code is on its way",
    }))
}

/// Sign in with the six digits of a sign-in email. One factor: a TOTP user gets the 403
/// `mfa_required` of `POST /auth/token`. Signing in this way verifies the email.
#[utoipa::path(
    post, path = "/auth/email-code/verify", tag = "auth",
    request_body = EmailCodeRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "A wrong, used, replaced or expired code, or an unknown email; the fifth wrong code spends it", body = ProblemBody),
        (status = 403, description = "Inactive user; or, for a user with TOTP, `code: mfa_required` with the `mfa_token` of `POST /auth/mfa`", body = ProblemBody),
        (status = 404, description = "Sign-in codes by email are off on this server", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
        (status = 429, description = "Too many attempts from this address for this email", body = ProblemBody, headers(("Retry-After" = u64))),
    )
)]
pub async fn verify_email_code(
    state: web::Data<AppState>,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    email_codes_on(&state)?;
    let (email, code) = body.json::<EmailCodeRequest>().await?;
    let proof = EmailProof::Code {
        email: &email,
        code: &code,
    };
    match attempt_email_code(&state, proof).await {
        SignIn::SignedIn(outcome) => Ok(tokens(&outcome)),
        SignIn::SecondStep { token, methods } => Ok(second_step_required(&token, methods)),
        SignIn::Refused(refusal) => Err(refusal),
    }
}
