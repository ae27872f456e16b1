//! Passkeys (WebAuthn): adding, naming and removing them under `/users/me/passkeys`, a
//! superuser's view of a user's, and signing in with one at `/auth/passkey`. The second
//! step with a passkey is in `mfa`.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::Value;
use shelter_domain::passkeys::{Passkey, PasskeyId};
use utoipa::ToSchema;

use super::auth::tokens;
use super::dto::rfc3339;
use crate::edge::body::RawBody;
use crate::edge::caller::{CurrentUser, user_id};
use crate::edge::refusal::{ProblemBody, Refusal};
use crate::edge::requests::{
    EmptyRequest, PasskeyRegistrationRequest, PasskeyRenameRequest, PasskeySignInRequest,
};
use crate::edge::sign_in::{SignIn, attempt_passkey};
use crate::edge::state::AppState;

/// One passkey of a user.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyResponse {
    #[schema(example = "3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b")]
    id: String,
    #[schema(example = "Laptop")]
    name: String,
    /// RFC 3339, UTC.
    created_at: String,
    /// The last sign-in with it (RFC 3339, UTC); `null` when never.
    last_used_at: Option<String>,
    /// Synced by its provider (a password manager, a phone's keychain), so it survives
    /// the loss of one device.
    backed_up: bool,
}

impl From<&Passkey> for PasskeyResponse {
    fn from(passkey: &Passkey) -> Self {
        Self {
            id: passkey.id.to_string(),
            name: passkey.name.as_str().to_owned(),
            created_at: rfc3339(passkey.created_at),
            last_used_at: passkey.last_used_at.map(rfc3339),
            backed_up: passkey.backed_up,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyList {
    items: Vec<PasskeyResponse>,
}

/// Options of a ceremony and the token that binds its finish to them.
#[derive(Debug, Serialize, ToSchema)]
pub struct CeremonyOptions {
    /// Presented with the authenticator's answer; works once, for 5 minutes.
    flow_token: String,
    /// `PublicKeyCredentialCreationOptionsJSON` or `PublicKeyCredentialRequestOptionsJSON`,
    /// binary values base64url without padding.
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    public_key: Value,
}

fn options(flow_token: &shelter_domain::SecretToken, public_key: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(CeremonyOptions {
            flow_token: flow_token.expose().to_owned(),
            public_key,
        })
}

fn list_of(passkeys: &[Passkey]) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(PasskeyList {
            items: passkeys.iter().map(PasskeyResponse::from).collect(),
        })
}

/// An id that is not a passkey's is a passkey that does not exist.
fn passkey_id(raw: &str) -> Result<PasskeyId, Refusal> {
    PasskeyId::parse(raw).ok_or_else(|| Refusal::not_found("No such passkey"))
}

/// Begin adding a passkey: creation options (a discoverable credential with user
/// verification; the caller's passkeys excluded) and the `flow_token` of the finish.
#[utoipa::path(
    post, path = "/users/me/passkeys/options", tag = "passkeys", security(("bearer" = [])),
    request_body = EmptyRequest,
    responses(
        (status = 200, body = CeremonyOptions),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, description = "Passkeys are not configured on this server", body = ProblemBody),
        (status = 409, description = "The caller has the most passkeys a user may have (32)", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
    )
)]
pub async fn registration_options(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    body.json::<EmptyRequest>().await?;
    let (token, public_key) = state.passkeys.registration_options(&user).await?;
    Ok(options(&token, public_key))
}

/// Finish adding a passkey with the authenticator's answer to the options.
#[utoipa::path(
    post, path = "/users/me/passkeys", tag = "passkeys", security(("bearer" = [])),
    request_body = PasskeyRegistrationRequest,
    responses(
        (status = 201, body = PasskeyResponse, headers(("Location" = String, description = "/users/me/passkeys/{id}"))),
        (status = 401, description = "No valid token; or a flow token that is unknown, spent, expired or another user's, or an answer that does not verify (wrong origin, no user verification)", body = ProblemBody),
        (status = 403, body = ProblemBody),
        (status = 404, description = "Passkeys are not configured on this server", body = ProblemBody),
        (status = 409, description = "This passkey is registered already, or the caller has 32", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
    )
)]
pub async fn register(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let (flow_token, name, credential) = body.json::<PasskeyRegistrationRequest>().await?;
    let passkey = state
        .passkeys
        .register(&user, &flow_token, &name, &credential)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/users/me/passkeys/{}", passkey.id),
        ))
        .json(PasskeyResponse::from(&passkey)))
}

/// The caller's passkeys, oldest first.
#[utoipa::path(
    get, path = "/users/me/passkeys", tag = "passkeys", security(("bearer" = [])),
    responses(
        (status = 200, body = PasskeyList),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<HttpResponse, Refusal> {
    Ok(list_of(&state.passkeys.list(user.id()).await?))
}

/// Rename one of the caller's passkeys.
#[utoipa::path(
    patch, path = "/users/me/passkeys/{id}", tag = "passkeys", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = PasskeyRenameRequest,
    responses(
        (status = 200, body = PasskeyResponse),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, description = "The caller has no such passkey", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
    )
)]
pub async fn rename(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<String>,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let id = passkey_id(&path)?;
    let name = body.json::<PasskeyRenameRequest>().await?;
    let passkey = state.passkeys.rename(user.id(), id, &name).await?;
    Ok(HttpResponse::Ok().json(PasskeyResponse::from(&passkey)))
}

/// Remove one of the caller's passkeys; it no longer signs anyone in.
#[utoipa::path(
    delete, path = "/users/me/passkeys/{id}", tag = "passkeys", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, description = "The caller has no such passkey", body = ProblemBody),
        (status = 409, description = "It is the caller's last way to sign in (no password set, no provider linked)", body = ProblemBody),
    )
)]
pub async fn remove(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, Refusal> {
    let id = passkey_id(&path)?;
    state.passkeys.remove(&user, user.id(), id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A superuser reads a user's passkeys.
#[utoipa::path(
    get, path = "/users/{id}/passkeys", tag = "passkeys", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = PasskeyList),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, description = "No such user", body = ProblemBody),
    )
)]
pub async fn list_of_user(
    state: web::Data<AppState>,
    CurrentUser(actor): CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, Refusal> {
    let owner = user_id(&path)?;
    Ok(list_of(&state.passkeys.list_of(&actor, owner).await?))
}

/// A superuser removes a user's passkey (a lost or stolen device).
#[utoipa::path(
    delete, path = "/users/{id}/passkeys/{passkey_id}", tag = "passkeys", security(("bearer" = [])),
    params(("id" = i64, Path), ("passkey_id" = String, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, description = "No such user, or the user has no such passkey", body = ProblemBody),
    )
)]
pub async fn remove_of_user(
    state: web::Data<AppState>,
    CurrentUser(actor): CurrentUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, Refusal> {
    let owner = user_id(&path.0)?;
    let id = passkey_id(&path.1)?;
    state.passkeys.remove(&actor, owner, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Begin a passkey sign-in: request options without an allow list (the authenticator
/// offers its discoverable credential) and the `flow_token` of the finish.
#[utoipa::path(
    post, path = "/auth/passkey/options", tag = "auth",
    request_body = EmptyRequest,
    responses(
        (status = 200, body = CeremonyOptions),
        (status = 404, description = "Passkeys are not configured on this server", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
    )
)]
pub async fn sign_in_options(
    state: web::Data<AppState>,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    body.json::<EmptyRequest>().await?;
    let (token, public_key) = state.auth.passkey_options().await?;
    Ok(options(&token, public_key))
}

/// Sign in with a passkey: with user verification it stands alone (no second step, even
/// with TOTP on).
#[utoipa::path(
    post, path = "/auth/passkey", tag = "auth",
    request_body = PasskeySignInRequest,
    responses(
        (status = 200, body = super::dto::TokenResponse),
        (status = 401, description = "The passkey did not sign in, with one message for every reason: an unknown, spent or expired flow token, an unknown credential, a wrong origin, no user verification, a counter that went backwards", body = ProblemBody),
        (status = 403, description = "Inactive user, or unverified email when verification is required", body = ProblemBody),
        (status = 404, description = "Passkeys are not configured on this server", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
        (status = 429, description = "Too many attempts from this address", body = ProblemBody, headers(("Retry-After" = u64))),
    )
)]
pub async fn sign_in(state: web::Data<AppState>, body: RawBody) -> Result<HttpResponse, Refusal> {
    let (flow_token, credential) = body.json::<PasskeySignInRequest>().await?;
    match attempt_passkey(&state, &flow_token, &credential).await {
        SignIn::SignedIn(outcome) => Ok(tokens(&outcome)),
        SignIn::SecondStep { .. } => Err(Refusal::unauthorized("Another step is required")),
        SignIn::Refused(refusal) => Err(refusal),
    }
}
