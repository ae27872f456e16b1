//! TOTP: enrolment, confirmation and disabling under `/users/me/mfa/totp`, a superuser's
//! reset, and the second step of a login, `POST /auth/mfa`.

use actix_web::{HttpResponse, web};
use secrecy::ExposeSecret as _;

use super::auth::tokens;
use super::dto::{MfaPasskeyOptions, RecoveryCodes, TokenResponse, TotpEnrolment};
use crate::edge::body::RawBody;
use crate::edge::caller::{CurrentUser, user_id};
use crate::edge::refusal::{ProblemBody, Refusal};
use crate::edge::requests::{
    MfaOptionsRequest, MfaRequest, TotpConfirmRequest, TotpDisableRequest, TotpEnrolRequest,
};
use crate::edge::sign_in::{SignIn, attempt_second_step};
use crate::edge::state::AppState;

/// Start a TOTP enrolment: a new secret for the authenticator app. Login does not ask for
/// codes until it is confirmed; enrolling again replaces an unconfirmed secret.
#[utoipa::path(
    post, path = "/users/me/mfa/totp", tag = "mfa", security(("bearer" = [])),
    request_body = TotpEnrolRequest,
    responses(
        (status = 200, body = TotpEnrolment),
        (status = 401, body = ProblemBody),
        (status = 403, description = "Wrong current password, or an inactive user", body = ProblemBody),
        (status = 409, description = "TOTP is already enabled", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
    )
)]
pub async fn enrol(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let password = body.json::<TotpEnrolRequest>().await?;
    let enrolment = state.mfa.enrol(&user, &password).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(TotpEnrolment {
            secret: enrolment.secret.expose_secret().to_owned(),
            otpauth_uri: enrolment.uri.expose_secret().to_owned(),
        }))
}

/// Confirm the enrolment with a code: from now on login needs a second step. The ten
/// recovery codes are shown only here.
#[utoipa::path(
    post, path = "/users/me/mfa/totp/confirm", tag = "mfa", security(("bearer" = [])),
    request_body = TotpConfirmRequest,
    responses(
        (status = 200, body = RecoveryCodes),
        (status = 400, description = "Wrong code", body = ProblemBody),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 409, description = "No enrolment to confirm (or TOTP is already on)", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
    )
)]
pub async fn confirm(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let code = body.json::<TotpConfirmRequest>().await?;
    let codes = state.mfa.confirm(&user, &code).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(RecoveryCodes {
            recovery_codes: codes.iter().map(|c| c.expose_secret().to_owned()).collect(),
        }))
}

/// Turn TOTP off, with the password and a TOTP or recovery code.
#[utoipa::path(
    delete, path = "/users/me/mfa/totp", tag = "mfa", security(("bearer" = [])),
    request_body = TotpDisableRequest,
    responses(
        (status = 204, description = "Off; login asks for the password only"),
        (status = 400, description = "Wrong or used code", body = ProblemBody),
        (status = 401, body = ProblemBody),
        (status = 403, description = "Wrong current password, or an inactive user", body = ProblemBody),
        (status = 404, description = "TOTP is not enabled", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
    )
)]
pub async fn disable(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let (password, code) = body.json::<TotpDisableRequest>().await?;
    state.mfa.disable(&user, &password, &code).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A superuser turns off the TOTP (enabled or pending) of a user who lost their device;
/// 204 also when it was off already.
#[utoipa::path(
    delete, path = "/users/{id}/mfa/totp", tag = "mfa", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "Off (also when it was off already)"),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, description = "No such user", body = ProblemBody),
    )
)]
pub async fn reset(
    state: web::Data<AppState>,
    CurrentUser(actor): CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, Refusal> {
    let id = user_id(&path)?;
    state.mfa.reset(&actor, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The second step of a login with TOTP: the `mfa_token` from `POST /auth/token`'s 403
/// and a TOTP or recovery code, or a passkey's answer to `POST /auth/mfa/options`.
#[utoipa::path(
    post, path = "/auth/mfa", tag = "auth",
    request_body = MfaRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Unknown, expired or spent mfa_token, or a wrong or already used code, or a passkey answer that does not verify; the fifth failure spends the token", body = ProblemBody),
        (status = 403, description = "Inactive user, or unverified email when verification is required", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
        (status = 429, description = "Too many attempts from this address", body = ProblemBody, headers(("Retry-After" = u64))),
    )
)]
pub async fn second_step(
    state: web::Data<AppState>,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let (mfa_token, code) = body.json::<MfaRequest>().await?;
    match attempt_second_step(&state, &mfa_token, &code).await {
        SignIn::SignedIn(outcome) => Ok(tokens(&outcome)),
        // A step after this one would need a client that knows it; none exists.
        SignIn::SecondStep { .. } => Err(Refusal::unauthorized("Another step is required")),
        SignIn::Refused(refusal) => Err(refusal),
    }
}

/// Offer a passkey for the second step: request options listing the user's passkeys.
/// The answer goes to `POST /auth/mfa` as `credential`.
#[utoipa::path(
    post, path = "/auth/mfa/options", tag = "auth",
    request_body = MfaOptionsRequest,
    responses(
        (status = 200, body = MfaPasskeyOptions),
        (status = 401, description = "Unknown, expired or spent mfa_token, or a user without passkeys", body = ProblemBody),
        (status = 404, description = "Passkeys are not configured on this server", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
    )
)]
pub async fn passkey_options(
    state: web::Data<AppState>,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let mfa_token = body.json::<MfaOptionsRequest>().await?;
    let public_key = state.auth.passkey_second_step_options(&mfa_token).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(MfaPasskeyOptions { public_key }))
}
