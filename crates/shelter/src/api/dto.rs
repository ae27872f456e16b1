//! The JSON API's response bodies. They live only here: the domain has no serde, and the
//! persistence entities never reach a client.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use shelter_domain::clients::{Client, ClientUri};
use shelter_domain::{SecretToken, Session, SessionId, User, UserSummary};
use utoipa::ToSchema;

/// A successful login or refresh.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT (HS256) to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Lifetime of the access token in seconds.
    #[schema(example = 1800)]
    pub expires_in: i64,
    /// Opaque; exchange it at `/auth/refresh` for a new pair. Single use.
    pub refresh_token: String,
}

/// A new TOTP secret, not active until confirmed.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Base32, to type into an authenticator app.
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    pub secret: String,
    #[schema(
        example = "otpauth://totp/Shelter:ann%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Shelter"
    )]
    pub otpauth_uri: String,
}

/// `PublicKeyCredentialRequestOptionsJSON` for the second step, listing the user's
/// passkeys.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaPasskeyOptions {
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
}

/// Shown once, when TOTP is confirmed; each works once instead of a code.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    #[schema(example = json!(["abcd-efgh-ijkl-mnop"]))]
    pub recovery_codes: Vec<String>,
}

/// The answer to a password-recovery request, whether or not the email is known.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    #[schema(example = "If this email is registered, a reset link is on its way")]
    pub detail: &'static str,
}

/// A user as clients see it: never a password or a hash.
#[expect(
    clippy::struct_excessive_bools,
    reason = "the contract's user resource has these flags"
)]
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "ann@example.com")]
    pub email: String,
    #[schema(example = "ann")]
    pub username: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub email_verified: bool,
    /// Whether login needs a TOTP code.
    pub mfa_enabled: bool,
    /// RFC 3339, UTC.
    #[schema(example = "2026-11-23T19:42:00Z")]
    pub created_at: String,
    /// RFC 3339, UTC.
    #[schema(example = "2026-11-23T19:42:00Z")]
    pub updated_at: String,
}

/// One live login of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    #[schema(example = "0b5c8f3e-2d1a-4c6b-9e7f-1a2b3c4d5e6f")]
    pub id: String,
    /// RFC 3339, UTC.
    #[schema(example = "2026-11-23T19:42:00Z")]
    pub created_at: String,
    /// The last login or refresh (RFC 3339, UTC); using an access token does not count.
    #[schema(example = "2026-11-23T19:42:00Z")]
    pub last_used_at: String,
    /// When its refresh token expires unless refreshed (RFC 3339, UTC).
    #[schema(example = "2026-12-23T19:42:00Z")]
    pub expires_at: String,
    /// As the client sent it at login, at most 512 characters; `null` without one.
    pub user_agent: Option<String>,
    /// The client's address at login, as the rate limiter sees it.
    #[schema(example = "203.0.113.7")]
    pub ip: Option<String>,
    /// Whether this is the login of the access token used for this request.
    pub current: bool,
}

impl SessionResponse {
    pub fn new(session: &Session, current: SessionId) -> Self {
        Self {
            id: session.id.to_string(),
            created_at: rfc3339(session.created_at),
            last_used_at: rfc3339(session.last_used_at),
            expires_at: rfc3339(session.expires_at),
            user_agent: session.client.user_agent().map(str::to_owned),
            ip: session.client.ip.map(|ip| ip.to_string()),
            current: session.id == current,
        }
    }
}

/// The caller's live logins, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionResponse>,
}

pub fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl From<&UserSummary> for UserResponse {
    fn from(user: &UserSummary) -> Self {
        Self {
            id: user.id.get(),
            email: user.email.to_string(),
            username: user.username.to_string(),
            is_active: user.is_active,
            is_superuser: user.is_superuser,
            email_verified: user.email_verified,
            mfa_enabled: user.mfa_enabled,
            created_at: rfc3339(user.created_at),
            updated_at: rfc3339(user.updated_at),
        }
    }
}

impl From<&User> for UserResponse {
    fn from(user: &User) -> Self {
        Self::from(&user.summary())
    }
}

/// One page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserResponse>,
    /// All the users the filters show, not only this page's.
    pub total: u64,
    pub skip: u64,
    pub limit: u64,
}

/// `{"status": "ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// A registered OAuth client with every setting.
#[derive(Serialize, ToSchema)]
pub struct ClientResponse {
    pub client_id: String,
    /// Only in the answer that creates a confidential client or rotates its secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub name: String,
    #[serde(rename = "type")]
    #[schema(example = "confidential")]
    pub client_type: &'static str,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<&'static str>,
    pub scopes: Vec<&'static str>,
    pub trusted: bool,
    pub require_pkce: bool,
    pub introspection: bool,
    pub audience: Option<String>,
    pub backchannel_logout_uri: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl ClientResponse {
    pub fn new(client: &Client, secret: Option<&SecretToken>) -> Self {
        let settings = &client.settings;
        let uris = |list: &[ClientUri]| list.iter().map(|uri| uri.as_str().to_owned()).collect();
        Self {
            client_id: client.id.as_str().to_owned(),
            client_secret: secret.map(|secret| secret.expose().to_owned()),
            name: settings.name.as_str().to_owned(),
            client_type: client.kind.as_str(),
            redirect_uris: uris(&settings.redirect_uris),
            post_logout_redirect_uris: uris(&settings.post_logout_redirect_uris),
            grant_types: settings.grant_types.iter().map(|g| g.as_str()).collect(),
            scopes: settings.scopes.iter().map(|s| s.as_str()).collect(),
            trusted: settings.trusted,
            require_pkce: settings.require_pkce,
            introspection: settings.introspection,
            audience: settings.audience.clone(),
            backchannel_logout_uri: settings
                .backchannel_logout_uri
                .as_ref()
                .map(|uri| uri.as_str().to_owned()),
            created_at: rfc3339(client.created_at),
            updated_at: rfc3339(client.updated_at),
        }
    }
}

/// Every registered client, oldest first.
#[derive(Serialize, ToSchema)]
pub struct ClientList {
    pub items: Vec<ClientResponse>,
}
