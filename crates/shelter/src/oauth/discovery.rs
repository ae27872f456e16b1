//! Discovery (OpenID Connect Discovery 1.0, RFC 8414): one document at both well-known
//! addresses, built from `SHELTER_JWT_ISSUER` so that `issuer` is exactly it.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use shelter_domain::clients::{GrantType, Scope};

use crate::edge::state::AppState;

/// Where the document is served.
pub fn metadata_paths() -> [&'static str; 2] {
    [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ]
}

fn words<T: Copy>(all: &[T], word: impl Fn(T) -> &'static str) -> Value {
    all.iter().map(|value| word(*value)).collect()
}

/// The provider's metadata.
pub fn document(state: &AppState) -> Value {
    let issuer = state.issuer.trim_end_matches('/');
    let at = |path: &str| format!("{issuer}{path}");
    let mut document = json!({
        "issuer": state.issuer,
        "authorization_endpoint": at("/oauth/authorize"),
        "token_endpoint": at("/oauth/token"),
        "userinfo_endpoint": at("/oauth/userinfo"),
        "jwks_uri": at("/.well-known/jwks.json"),
        "revocation_endpoint": at("/oauth/revoke"),
        "introspection_endpoint": at("/oauth/introspect"),
        "end_session_endpoint": at("/oauth/logout"),
        "scopes_supported": words(Scope::ALL, Scope::as_str),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": words(GrantType::ALL, GrantType::as_str),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "subject_types_supported": ["public"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr",
            "azp", "email", "email_verified", "preferred_username", "name", "updated_at"
        ],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
    });
    if state.dynamic_registration {
        document["registration_endpoint"] = at("/oauth/register").into();
    }
    document
}

/// `GET /.well-known/openid-configuration` and `GET /.well-known/oauth-authorization-server`.
pub async fn discovery(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(document(&state))
}
