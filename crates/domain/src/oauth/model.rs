//! The provider's model: requests, codes, tokens' claims, errors, and its ports.

use std::collections::BTreeSet;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;

use crate::clients::{Client, ClientId, Scope};
use crate::error::{Dependency, StorageError, Unavailable};
use crate::ports::{NewRefreshToken, TokenError};
use crate::session::{SessionId, SignInMethod};
use crate::token::{SecretToken, TokenHash};
use crate::user::{User, UserId};

/// How long a code may wait to be redeemed.
pub const CODE_LIFETIME: Duration = Duration::seconds(60);

/// An authorization request as it arrived (query or form), before any check. Unknown
/// parameters never get here: the adapter ignores them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    /// Set by Shelter, not by clients, when it sends a visitor to sign in again: the
    /// sign-in that comes back must have started at or after this Unix time. It stands in
    /// for `prompt=login` and `max_age` on the way back, which would otherwise ask again
    /// forever.
    pub login_after: Option<String>,
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub client: Client,
    /// One of the client's registered redirect URIs, as the request spelt it.
    pub redirect_uri: String,
    pub scopes: BTreeSet<Scope>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The S256 PKCE challenge.
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_after: Option<DateTime<Utc>>,
    pub login_hint: Option<String>,
}

impl Authorization {
    /// The scopes as the protocol writes them.
    pub fn scope(&self) -> String {
        scope_string(&self.scopes)
    }
}

/// What `prompt` asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[expect(clippy::struct_excessive_bools, reason = "one flag per prompt value")]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

/// The scopes as the protocol writes them: space-separated.
pub fn scope_string(scopes: &BTreeSet<Scope>) -> String {
    scopes
        .iter()
        .map(|scope| scope.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why an authorization request cannot go on.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Unknown client or redirect URI: an error page, never a redirect (it could send the
    /// browser anywhere).
    Page(&'static str),
    /// Every other error goes back to the client.
    Redirect(Redirect),
    Unavailable(Unavailable),
    Unexpected(anyhow::Error),
}

impl From<StorageError> for AuthorizeError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Unavailable(cause) => {
                Self::Unavailable(Unavailable::new(Dependency::Database, cause))
            }
            StorageError::Unexpected(cause) => Self::Unexpected(cause),
        }
    }
}

/// A redirect back to a client: the code, or an error, with the request's `state`. The
/// adapter adds `iss` (RFC 9207).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub redirect_uri: String,
    pub params: Vec<(&'static str, String)>,
}

impl Redirect {
    pub(super) fn error(
        authorization: &Authorization,
        error: &'static str,
        description: &str,
    ) -> Self {
        Self::to(
            &authorization.redirect_uri,
            authorization.state.as_deref(),
            error,
            description,
        )
    }

    pub(super) fn to(
        redirect_uri: &str,
        state: Option<&str>,
        error: &'static str,
        description: &str,
    ) -> Self {
        let mut params = vec![
            ("error", error.to_owned()),
            ("error_description", description.to_owned()),
        ];
        params.extend(state.map(|state| ("state", state.to_owned())));
        Self {
            redirect_uri: redirect_uri.to_owned(),
            params,
        }
    }
}

/// The browser's sign-in, as the provider needs it.
#[derive(Debug, Clone)]
pub struct SignIn {
    pub user: User,
    pub session: SessionId,
    /// When the sign-in was made: the ID token's `auth_time`.
    pub auth_time: DateTime<Utc>,
    pub method: SignInMethod,
}

/// Where an authorization request goes next.
#[derive(Debug)]
pub enum Next {
    /// To the sign-in pages; `again` when the browser has a sign-in that is too old (or
    /// `prompt=login`), which must not be reused.
    SignIn { again: bool },
    /// To the consent page.
    Consent,
    /// Back to the client, with a code or an error.
    Redirect(Redirect),
}

/// An authorization code's content, sealed into the code itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    /// The family of the tokens it will be exchanged for.
    pub id: uuid::Uuid,
    pub client: ClientId,
    pub user: UserId,
    pub session: SessionId,
    pub redirect_uri: String,
    pub scopes: BTreeSet<Scope>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub auth_time: DateTime<Utc>,
    pub method: SignInMethod,
    pub expires_at: DateTime<Utc>,
}

/// Seals codes so that only Shelter can read them and nobody can forge one.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait CodeSeal: Send + Sync {
    /// # Errors
    /// Only if the cipher fails.
    fn seal(&self, code: &Code) -> anyhow::Result<String>;

    /// The code inside a presented value; `None` for anything Shelter did not seal.
    fn open(&self, presented: &str) -> Option<Code>;
}

/// Who an OAuth access token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A user, through the sign-in `session`, from the redeemed code `authorization`.
    User {
        user: UserId,
        session: SessionId,
        authorization: uuid::Uuid,
    },
    /// The client itself (`client_credentials`).
    Client,
}

/// What an OAuth access token (RFC 9068) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenClaims {
    pub subject: Subject,
    pub client: ClientId,
    pub audience: String,
    pub scopes: BTreeSet<Scope>,
    pub jti: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl AccessTokenClaims {
    /// The `sub` claim: the user id, or the client id for a client's own token.
    pub fn sub(&self) -> String {
        match self.subject {
            Subject::User { user, .. } => user.to_string(),
            Subject::Client => self.client.to_string(),
        }
    }
}

/// The claims about a user that the granted scopes release, for the ID token and userinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserClaims {
    pub sub: String,
    /// With `email`: the address and whether it is verified.
    pub email: Option<(String, bool)>,
    /// With `profile`: the username (`preferred_username` and `name`) and `updated_at`.
    pub profile: Option<(String, i64)>,
}

impl UserClaims {
    pub fn of(user: &User, scopes: &BTreeSet<Scope>) -> Self {
        Self {
            sub: user.id().to_string(),
            email: scopes
                .contains(&Scope::Email)
                .then(|| (user.email().to_string(), user.email_verified())),
            profile: scopes
                .contains(&Scope::Profile)
                .then(|| (user.username().to_string(), user.updated_at().timestamp())),
        }
    }
}

/// What an ID token says, besides `iss` and the signature.
#[derive(Debug, Clone)]
pub struct IdTokenClaims {
    pub user: UserClaims,
    pub client: ClientId,
    pub nonce: Option<String>,
    pub auth_time: DateTime<Utc>,
    pub session: SessionId,
    pub method: SignInMethod,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What an ID token presented as `id_token_hint` says (its signature is good; it may have
/// expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    pub user: UserId,
    pub client: ClientId,
    pub session: Option<SessionId>,
}

/// Signs and checks the provider's tokens (RS256 JWTs). Checking needs no I/O. Signing is
/// asynchronous because an RS256 signature costs milliseconds of CPU, which must not be
/// spent on a thread that serves requests.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OAuthTokens: Send + Sync {
    /// How long an access token (and an ID token) lives.
    fn lifetime(&self) -> Duration;

    /// # Errors
    /// No signing key.
    async fn access_token(&self, claims: &AccessTokenClaims) -> anyhow::Result<SecretString>;

    /// An ID token whose `at_hash` is that of `access_token`.
    ///
    /// # Errors
    /// No signing key.
    async fn id_token(&self, claims: &IdTokenClaims, access_token: &str) -> anyhow::Result<String>;

    /// # Errors
    /// Not an unexpired access token of this provider.
    fn verify_access(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<AccessTokenClaims, TokenError>;

    /// An ID token this provider signed, expired or not; `None` otherwise.
    fn id_token_hint(&self, token: &str) -> Option<IdTokenHint>;

    /// A logout token (Back-Channel Logout 1.0 §2.4) telling `logout.client` that the
    /// sign-in `logout.session` of `logout.user` has ended.
    ///
    /// # Errors
    /// No signing key.
    async fn logout_token(&self, logout: &PendingLogout) -> anyhow::Result<String>;
}

/// A back-channel logout to deliver: the sign-in `session` of `user` ended, and `client`
/// received tokens from it and asked to be told at `uri`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogout {
    pub id: i64,
    pub client: ClientId,
    pub uri: String,
    pub user: UserId,
    pub session: SessionId,
    /// Delivery attempts so far, this one included.
    pub attempts: u32,
}

/// The durable queue of back-channel logouts. The stores queue them in the transactions
/// that end sign-ins (so none is lost); the delivery worker drains it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LogoutOutbox: Send + Sync {
    /// Claims up to `limit` due logouts, counting an attempt for each, leased until
    /// `now + lease`. MUST NOT hand one to two concurrent callers within its lease.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<PendingLogout>, StorageError>;

    async fn mark_sent(&self, id: i64, now: DateTime<Utc>) -> Result<(), StorageError>;

    async fn retry_at(&self, id: i64, at: DateTime<Utc>, error: &str) -> Result<(), StorageError>;

    async fn mark_failed(&self, id: i64, error: &str) -> Result<(), StorageError>;
}

/// A user's consent to a client, as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSummary {
    pub client: ClientId,
    pub name: String,
    pub scopes: BTreeSet<Scope>,
    pub created_at: DateTime<Utc>,
    /// The last code redeemed or refresh token used; `None` when never.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// What redeeming a code led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redemption {
    /// First use: its row is written, with the refresh token if one was given.
    Fresh,
    /// Used before: the tokens issued from it are now revoked.
    Reused,
    /// The sign-in it came from has ended since.
    SignInEnded,
}

/// The family a refresh token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub authorization: uuid::Uuid,
    pub client: ClientId,
    pub user: UserId,
    pub session: SessionId,
    pub scopes: BTreeSet<Scope>,
    pub auth_time: DateTime<Utc>,
    pub method: SignInMethod,
}

/// What presenting an OAuth refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthRotation {
    /// Live (or spent within the grace window): the replacement is stored.
    Rotated(Family),
    /// Spent earlier: its family is now revoked.
    Reused,
    /// Unknown, of another client, expired, revoked, or its sign-in has ended.
    Invalid,
}

/// The provider's store.
///
/// Every method MUST return `StorageError::Unavailable` when the database does not answer
/// in time.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OAuthStore: Send + Sync {
    /// The scopes `user` has consented to for `client`, if any.
    async fn grant(
        &self,
        user: UserId,
        client: &ClientId,
    ) -> Result<Option<BTreeSet<Scope>>, StorageError>;

    /// Adds `scopes` to the user's consent for `client`, recording `oauth_consent_granted`
    /// in the same transaction.
    async fn remember_grant(
        &self,
        user: UserId,
        client: &ClientId,
        scopes: &BTreeSet<Scope>,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// The user's consents, newest first, with their clients' names.
    async fn grants(&self, user: UserId) -> Result<Vec<GrantSummary>, StorageError>;

    /// Forgets the consent and revokes every family of `user` and `client`, recording
    /// `oauth_grant_revoked` in the same transaction; `false` when there was none.
    async fn forget_grant(
        &self,
        user: UserId,
        client: &ClientId,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    /// When the sign-in `session` of `user` was made and how, if it has not ended.
    async fn sign_in(
        &self,
        user: UserId,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, SignInMethod)>, StorageError>;

    /// Records a code's first use, with the refresh token issued from it, in one
    /// transaction. A code used before revokes its family (recording `oauth_code_reused`);
    /// MUST be atomic, so of two concurrent uses exactly one is `Fresh`.
    async fn redeem(
        &self,
        code: &Code,
        refresh: Option<NewRefreshToken>,
        now: DateTime<Utc>,
    ) -> Result<Redemption, StorageError>;

    /// Presents a refresh token of `client`; rotation and reuse detection as for
    /// first-party tokens, atomic in the same way.
    async fn rotate(
        &self,
        presented: &TokenHash,
        client: &ClientId,
        replacement: NewRefreshToken,
        now: DateTime<Utc>,
        grace: Duration,
    ) -> Result<OAuthRotation, StorageError>;

    /// Whether an access token is still good: not revoked by its `jti`, and for a user's
    /// token its family not revoked and its sign-in not ended.
    async fn is_live(
        &self,
        claims: &AccessTokenClaims,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    /// Revokes the family of a refresh token of `client`; nothing for any other token.
    async fn revoke_refresh(
        &self,
        presented: &TokenHash,
        client: &ClientId,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Refuses the access token `jti` until it expires.
    async fn revoke_access(&self, jti: &str, expires_at: DateTime<Utc>)
    -> Result<(), StorageError>;
}

/// A client as it authenticated at the token, revocation or introspection endpoint.
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<SecretString>,
    /// Sent with HTTP Basic, so a refusal answers `WWW-Authenticate: Basic`.
    pub basic: bool,
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("basic", &self.basic)
            .finish()
    }
}

/// A token request, by grant.
#[derive(Debug)]
pub enum TokenRequest {
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
    },
    ClientCredentials {
        scope: Option<String>,
    },
}

/// A token answer.
#[derive(Debug)]
pub struct Tokens {
    pub access_token: SecretString,
    pub expires_in: i64,
    pub id_token: Option<String>,
    pub refresh_token: Option<SecretToken>,
    pub scope: String,
}

/// The RFC 6749 errors of the token, revocation and introspection endpoints.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(&'static str),
    #[error("client authentication failed")]
    InvalidClient { basic: bool },
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("{0}")]
    UnauthorizedClient(&'static str),
    #[error("grant_type must be authorization_code, refresh_token or client_credentials")]
    UnsupportedGrantType,
    #[error("{0}")]
    InvalidScope(&'static str),
    #[error(transparent)]
    Unavailable(Unavailable),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl OAuthError {
    /// The `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient { .. } => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::Unavailable(_) => "temporarily_unavailable",
            Self::Unexpected(_) => "server_error",
        }
    }
}

impl From<StorageError> for OAuthError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Unavailable(cause) => {
                Self::Unavailable(Unavailable::new(Dependency::Database, cause))
            }
            StorageError::Unexpected(cause) => Self::Unexpected(cause),
        }
    }
}

impl From<crate::error::StoreError> for OAuthError {
    fn from(error: crate::error::StoreError) -> Self {
        match error {
            crate::error::StoreError::Unavailable(cause) => {
                Self::Unavailable(Unavailable::new(Dependency::Database, cause))
            }
            other => Self::Unexpected(anyhow::Error::new(other)),
        }
    }
}

/// An introspected token (RFC 7662), when active.
#[derive(Debug, Clone)]
pub struct Introspection {
    pub claims: AccessTokenClaims,
    /// The user's username, for a user's token.
    pub username: Option<String>,
}
