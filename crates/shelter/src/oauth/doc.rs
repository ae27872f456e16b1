//! The machine endpoints in the OpenAPI document. Their requests are form-encoded (JSON for
//! registration) and their errors RFC 6749 JSON, `{"error", "error_description"}`, not
//! problem+json: the API's document merges this one and leaves their answers as they are.
//! Each operation is described by a function of its own here, so the handlers and their
//! description do not import each other.

use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

/// Paths whose errors are RFC 6749 JSON, not problem+json.
pub fn is_protocol_path(path: &str) -> bool {
    matches!(
        path,
        "/oauth/token"
            | "/oauth/userinfo"
            | "/oauth/revoke"
            | "/oauth/introspect"
            | "/oauth/register"
    )
}

#[derive(OpenApi)]
#[openapi(
    paths(
        openid_configuration, authorization_server_metadata, token, userinfo, userinfo_post,
        revoke, introspect, register,
    ),
    components(schemas(OAuthErrorBody, TokenForm, TokenAnswer, UserinfoAnswer,
        TokenOnlyForm, IntrospectionAnswer, RegistrationRequest, RegistrationAnswer)),
    tags((name = "openid connect", description = "The OpenID Connect provider's machine endpoints (RFC 6749 errors, not problem+json); its browser side is the pages /oauth/authorize, /oauth/consent and /oauth/logout")),
)]
pub struct OAuthDoc;

/// An RFC 6749 §5.2 error.
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody {
    #[schema(example = "invalid_grant")]
    error: String,
    error_description: Option<String>,
}

/// `POST /oauth/token`, form-encoded. Which fields a request needs depends on its
/// `grant_type`; the client authenticates with HTTP Basic or `client_id` and
/// `client_secret` here.
#[derive(Serialize, ToSchema)]
pub struct TokenForm {
    #[schema(example = "authorization_code")]
    grant_type: String,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenAnswer {
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: String,
    expires_in: i64,
    scope: String,
    /// With the `openid` scope.
    id_token: Option<String>,
    /// For clients allowed the `refresh_token` grant.
    refresh_token: Option<String>,
}

/// The claims the token's scopes release.
#[derive(Serialize, ToSchema)]
pub struct UserinfoAnswer {
    sub: String,
    email: Option<String>,
    email_verified: Option<bool>,
    preferred_username: Option<String>,
    name: Option<String>,
    updated_at: Option<i64>,
}

/// `POST /oauth/revoke` and `POST /oauth/introspect`, form-encoded, with the client's
/// authentication as at the token endpoint; `POST /oauth/userinfo` takes `access_token`.
#[derive(Serialize, ToSchema)]
pub struct TokenOnlyForm {
    token: Option<String>,
    token_type_hint: Option<String>,
    access_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// RFC 7662: `{"active": false}`, or the token's claims.
#[derive(Serialize, ToSchema)]
pub struct IntrospectionAnswer {
    active: bool,
    scope: Option<String>,
    client_id: Option<String>,
    username: Option<String>,
    token_type: Option<String>,
    exp: Option<i64>,
    iat: Option<i64>,
    sub: Option<String>,
    aud: Option<String>,
    iss: Option<String>,
    jti: Option<String>,
    sid: Option<String>,
}

/// RFC 7591 client metadata.
#[derive(Serialize, ToSchema)]
pub struct RegistrationRequest {
    redirect_uris: Vec<String>,
    client_name: Option<String>,
    post_logout_redirect_uris: Option<Vec<String>>,
    grant_types: Option<Vec<String>>,
    /// `none` only.
    token_endpoint_auth_method: Option<String>,
    scope: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RegistrationAnswer {
    client_id: String,
    client_id_issued_at: i64,
    client_name: String,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    grant_types: Vec<String>,
    response_types: Vec<String>,
    token_endpoint_auth_method: String,
    scope: String,
}

/// The provider's metadata (OpenID Connect Discovery 1.0); `issuer` is
/// `SHELTER_JWT_ISSUER` exactly, and `registration_endpoint` is there only when dynamic
/// registration is on.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "openid connect",
    responses((status = 200, description = "The metadata document", body = Object)))]
#[expect(
    dead_code,
    reason = "describes an operation; the handler is `discovery`"
)]
fn openid_configuration() {}

/// The same document, at RFC 8414's address.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "openid connect",
    responses((status = 200, description = "The metadata document", body = Object)))]
#[expect(
    dead_code,
    reason = "describes an operation; the handler is `discovery`"
)]
fn authorization_server_metadata() {}

/// The token endpoint: `authorization_code` (with `code_verifier` when the request had a
/// challenge), `refresh_token` (rotation and reuse detection), `client_credentials`.
#[utoipa::path(post, path = "/oauth/token", tag = "openid connect",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = TokenAnswer, headers(("Cache-Control" = String, description = "no-store"))),
        (status = 400, body = OAuthErrorBody, description = "invalid_request, invalid_grant, unauthorized_client, unsupported_grant_type or invalid_scope"),
        (status = 401, body = OAuthErrorBody, description = "invalid_client", headers(("WWW-Authenticate" = String, description = "Basic, when Basic was used"))),
    ))]
#[expect(
    dead_code,
    reason = "describes an operation; the handler is `token::token`"
)]
fn token() {}

/// The claims of the token's scopes; the token in `Authorization: Bearer`.
#[utoipa::path(get, path = "/oauth/userinfo", tag = "openid connect",
    responses(
        (status = 200, body = UserinfoAnswer),
        (status = 401, body = OAuthErrorBody, description = "A missing, bad, expired or revoked token", headers(("WWW-Authenticate" = String, description = "Bearer, with error=\"invalid_token\" when a token was sent"))),
    ))]
#[expect(
    dead_code,
    reason = "describes an operation; the handler is `token::userinfo`"
)]
fn userinfo() {}

/// As `GET`, or with `access_token` in a form body (never both).
#[utoipa::path(post, path = "/oauth/userinfo", tag = "openid connect",
    request_body(content = TokenOnlyForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = UserinfoAnswer),
        (status = 400, body = OAuthErrorBody, description = "The token sent two ways, or a body that is not a form"),
        (status = 401, body = OAuthErrorBody, description = "A missing, bad, expired or revoked token", headers(("WWW-Authenticate" = String))),
    ))]
#[expect(
    dead_code,
    reason = "describes an operation; the handler is `token::userinfo`"
)]
fn userinfo_post() {}

/// RFC 7009: 200 whether or not the token was known.
#[utoipa::path(post, path = "/oauth/revoke", tag = "openid connect",
    request_body(content = TokenOnlyForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, body = OAuthErrorBody, description = "invalid_request"),
        (status = 401, body = OAuthErrorBody, description = "invalid_client", headers(("WWW-Authenticate" = String))),
    ))]
#[expect(
    dead_code,
    reason = "describes an operation; the handler is `token::revoke`"
)]
fn revoke() {}

/// RFC 7662: a client introspects its own tokens, a resource server any.
#[utoipa::path(post, path = "/oauth/introspect", tag = "openid connect",
    request_body(content = TokenOnlyForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = IntrospectionAnswer),
        (status = 400, body = OAuthErrorBody, description = "invalid_request"),
        (status = 401, body = OAuthErrorBody, description = "invalid_client", headers(("WWW-Authenticate" = String))),
    ))]
#[expect(
    dead_code,
    reason = "describes an operation; the handler is `token::introspect`"
)]
fn introspect() {}

/// RFC 7591, with `SHELTER_OAUTH_DYNAMIC_REGISTRATION=true` (else 404): a public client
/// that must use PKCE.
#[utoipa::path(post, path = "/oauth/register", tag = "openid connect",
    request_body(content = RegistrationRequest, content_type = "application/json"),
    responses(
        (status = 201, body = RegistrationAnswer),
        (status = 400, body = OAuthErrorBody, description = "invalid_redirect_uri or invalid_client_metadata"),
        (status = 404, description = "Dynamic registration is off", content_type = "application/problem+json"),
        (status = 429, description = "Past the signup quota of the client's address", content_type = "application/problem+json"),
    ))]
#[expect(
    dead_code,
    reason = "describes an operation; the handler is `register::register`"
)]
fn register() {}
