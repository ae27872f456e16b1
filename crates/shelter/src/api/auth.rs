//! `/auth` handlers.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use secrecy::ExposeSecret;
use secrecy::SecretString;
use shelter_domain::{AuthError, ClientInfo, EmailAddress, Login, LoginOutcome};

use super::dto::{
    Accepted, EmailRequest, RefreshRequest, ResetPasswordRequest, TokenRequest, TokenResponse,
    UserResponse, VerifyEmailRequest,
};
use super::extract::{Format, RawBody};
use super::limits::{client_ip, enforce};
use super::problem::{Problem, ProblemBody};
use crate::state::AppState;
use actix_web::HttpRequest;
use shelter_domain::realtime::Limit;

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
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> Result<HttpResponse, Problem> {
    let (login, password) = body
        .parse::<TokenRequest>(&[Format::Form, Format::Json])
        .await?;
    Ok(tokens(
        &attempt_login(&req, &state, &login, &password).await?,
    ))
}

/// One login attempt, for the API and the pages alike: rate-limited per client address and
/// login, and counted by its result.
///
/// # Errors
/// As `POST /auth/token` answers, `mfa_required` included.
pub(crate) async fn attempt_login(
    req: &HttpRequest,
    state: &AppState,
    login: &Login,
    password: &SecretString,
) -> Result<LoginOutcome, Problem> {
    let ip = client_ip(req, &state.trusted_proxies);
    let key = format!(
        "{}|{}",
        ip.map(|ip| ip.to_string()).unwrap_or_default(),
        login.key()
    );
    if let Err(limited) = enforce(state, Limit::Login, &key).await {
        count_login("rate_limited");
        return Err(limited);
    }
    let outcome = state.auth.login(login, password, &client_of(req, ip)).await;
    count_login(match &outcome {
        Ok(_) => "success",
        Err(AuthError::InvalidCredentials) => "invalid_credentials",
        Err(AuthError::Inactive) => "inactive",
        Err(AuthError::Unverified) => "unverified",
        Err(AuthError::MfaRequired(_)) => "mfa_required",
        Err(AuthError::Unavailable(_)) => "unavailable",
        Err(_) => "error",
    });
    Ok(outcome?)
}

/// Where a login comes from: the address as the rate limiter sees it, and the user agent.
pub(super) fn client_of(req: &HttpRequest, ip: Option<std::net::IpAddr>) -> ClientInfo {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|agent| String::from_utf8_lossy(agent.as_bytes()));
    ClientInfo::new(ip, user_agent.as_deref())
}

/// `shelter_logins_total{result}`: what became of one attempt.
pub(super) fn count_login(result: &'static str) {
    metrics::counter!("shelter_logins_total", "result" => result).increment(1);
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
pub async fn refresh(state: web::Data<AppState>, body: RawBody) -> Result<HttpResponse, Problem> {
    let presented = body.json::<RefreshRequest>().await?;
    Ok(tokens(&state.auth.refresh(&presented).await?))
}

/// End the login a refresh token belongs to.
#[utoipa::path(
    post, path = "/auth/logout", tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "That login's refresh and access tokens stop working at once and its WebSockets close with 1008 (also 204 when the token was unknown)"), (status = 422, body = ProblemBody))
)]
pub async fn logout(state: web::Data<AppState>, body: RawBody) -> Result<HttpResponse, Problem> {
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
) -> Result<HttpResponse, Problem> {
    let token = body.json::<VerifyEmailRequest>().await?;
    let user = state.users.verify_email(&token).await?;
    Ok(HttpResponse::Ok().json(UserResponse::from(&user)))
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
) -> Result<HttpResponse, Problem> {
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
) -> Result<HttpResponse, Problem> {
    let email = body.json::<EmailRequest>().await?;
    request_email(&state, EmailRequestKind::Verification, email).await?;
    Ok(HttpResponse::Accepted().json(Accepted {
        detail: "If this email is registered and not yet verified, a new link is on its way",
    }))
}

/// The emails anyone may ask for by address.
#[derive(Clone, Copy)]
pub(crate) enum EmailRequestKind {
    PasswordReset,
    Verification,
}

/// Asks for an email by address, for the API and the pages alike: rate-limited per
/// address, and answered before the look-up, so that neither the answer nor its time
/// depends on whether the email is known. The email is durable once queued; a crash in
/// the few milliseconds before that loses the request, and the user asks again.
///
/// # Errors
/// 429 past the quota, 503 when the limiter is down.
pub(crate) async fn request_email(
    state: &AppState,
    kind: EmailRequestKind,
    email: EmailAddress,
) -> Result<(), Problem> {
    let limit = match kind {
        EmailRequestKind::PasswordReset => Limit::PasswordRecovery,
        EmailRequestKind::Verification => Limit::VerificationResend,
    };
    enforce(state, limit, email.as_str()).await?;
    let (auth, users) = (state.auth.clone(), state.users.clone());
    // The request's context goes with the work, for its audit event.
    let context = shelter_persistence::audit::current();
    tokio::spawn(shelter_persistence::audit::scope(context, async move {
        let result = match kind {
            EmailRequestKind::PasswordReset => auth
                .request_password_reset(&email)
                .await
                .map_err(anyhow::Error::from),
            EmailRequestKind::Verification => users
                .resend_verification(&email)
                .await
                .map_err(anyhow::Error::from),
        };
        if let Err(error) = result {
            tracing::error!(
                error = format!("{error:#}"),
                "queueing a requested email failed"
            );
        }
    }));
    Ok(())
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
) -> Result<HttpResponse, Problem> {
    let (token, password) = body.json::<ResetPasswordRequest>().await?;
    state.auth.reset_password(&token, &password).await?;
    Ok(HttpResponse::NoContent().finish())
}
