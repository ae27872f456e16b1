//! Sign-in with other providers, as the API shows it: which providers sign in here
//! (`/auth/providers`; the flow itself is the pages', in a browser), and the caller's
//! linked accounts under `/users/me/identities`.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use shelter_domain::identities::{Identity, ProviderId};
use utoipa::ToSchema;

use super::dto::rfc3339;
use crate::edge::caller::CurrentUser;
use crate::edge::refusal::{ProblemBody, Refusal};
use crate::edge::state::AppState;

/// A provider that signs in here.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderResponse {
    /// Its id in URLs: `/auth/providers/{id}/start` begins a sign-in in a browser.
    #[schema(example = "gitlab")]
    id: String,
    /// What its sign-in button says.
    #[schema(example = "GitLab")]
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList {
    items: Vec<ProviderResponse>,
}

/// An account at a provider, linked to the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityResponse {
    #[schema(example = "gitlab")]
    provider: String,
    /// The provider's `sub` for the account.
    #[schema(example = "248289761001")]
    subject: String,
    /// The email the provider gave when it was linked; `null` when it gave none.
    #[schema(example = "ada@example.com")]
    email: Option<String>,
    /// RFC 3339, UTC.
    linked_at: String,
}

impl From<&Identity> for IdentityResponse {
    fn from(identity: &Identity) -> Self {
        Self {
            provider: identity.provider.to_string(),
            subject: identity.subject.clone(),
            email: identity
                .email
                .as_ref()
                .map(|email| email.as_str().to_owned()),
            linked_at: rfc3339(identity.linked_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityList {
    items: Vec<IdentityResponse>,
}

/// The configured upstream providers, in the configured order.
#[utoipa::path(
    get, path = "/auth/providers", tag = "auth",
    responses((status = 200, body = ProviderList))
)]
pub async fn providers(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(ProviderList {
        items: state
            .federation
            .providers()
            .into_iter()
            .map(|provider| ProviderResponse {
                id: provider.id.to_string(),
                name: provider.name,
            })
            .collect(),
    })
}

/// The caller's linked accounts, oldest first.
#[utoipa::path(
    get, path = "/users/me/identities", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, body = IdentityList),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
    )
)]
pub async fn list(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<HttpResponse, Refusal> {
    let identities = state.federation.identities(user.id()).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(IdentityList {
            items: identities.iter().map(IdentityResponse::from).collect(),
        }))
}

/// Unlink the caller's account at a provider; it no longer signs them in.
#[utoipa::path(
    delete, path = "/users/me/identities/{provider}", tag = "users", security(("bearer" = [])),
    params(("provider" = String, Path)),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
        (status = 404, description = "No account of this provider is linked to the caller", body = ProblemBody),
        (status = 409, description = "It is the caller's last way to sign in (no password set, no passkey, no other provider)", body = ProblemBody),
    )
)]
pub async fn unlink(
    state: web::Data<AppState>,
    CurrentUser(user): CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, Refusal> {
    let provider = ProviderId::parse(&path)
        .map_err(|_| Refusal::not_found("No account of this provider is linked"))?;
    state.federation.unlink(user.id(), &provider).await?;
    Ok(HttpResponse::NoContent().finish())
}
