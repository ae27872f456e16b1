//! Sign-in with other providers: accounts at upstream OpenID Connect providers linked to
//! Shelter's users, the rules that decide when an upstream account may become (or join) a
//! user, and `FederationService`, which runs a sign-in from its start to its callback.
//!
//! - The protocol (discovery, PKCE, the ID token's signature and claims) is the
//!   [`Upstream`] port's, done by an OpenID Connect client library; the domain sees only a
//!   checked [`UpstreamAccount`].
//! - A flow in progress is stored nowhere: its secrets travel sealed ([`Seal`]) in a cookie
//!   of the browser that started it, so a callback is honoured only in that browser, once
//!   its `state` matches, within [`FLOW_LIFETIME`].
//! - Linking by email is where accounts are taken over, so each provider says how
//!   ([`LinkPolicy`]); the default asks the existing account to prove itself once.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::address::EmailAddress;

pub mod model;

use crate::auth::{AuthService, LoginOutcome, LoginStep};
use crate::error::{AuthError, StoreError};
use crate::ports::{Clock, PasswordHasher, UserRepository};
use crate::session::{ClientInfo, SessionId};
use crate::token::SecretToken;
use crate::user::{NewUser, Password, User, UserId, Username};
pub use model::{
    Identity, InvalidProviderId, LinkPolicy, NewIdentity, Provider, ProviderId, UpstreamAccount,
};

/// How long a browser has between leaving for the provider and coming back, and then to
/// confirm a link with its password.
pub const FLOW_LIFETIME: Duration = Duration::minutes(10);

/// Tries at a free username before one with a random suffix.
const USERNAME_TRIES: usize = 5;

/// What linking did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linked {
    Done,
    /// The upstream account is already linked to another user.
    TakenByAnother,
    /// This user already has another account of this provider linked.
    ProviderTaken,
}

/// What unlinking did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlinked {
    Done,
    NotLinked,
    /// It is the user's last way to sign in: no password, no passkey, no other provider.
    LastWay,
}

/// Where linked accounts are kept. Linking and unlinking record `identity_linked` and
/// `identity_unlinked` in their own transaction.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The user an upstream account is linked to.
    async fn owner(
        &self,
        provider: &ProviderId,
        subject: &str,
    ) -> Result<Option<UserId>, StoreError>;

    /// A user's linked accounts, oldest first.
    async fn identities(&self, user: UserId) -> Result<Vec<Identity>, StoreError>;

    async fn link(
        &self,
        user: UserId,
        identity: &NewIdentity,
        now: DateTime<Utc>,
    ) -> Result<Linked, StoreError>;

    /// Unlinks, unless it would leave the user no way to sign in; the count and the delete
    /// MUST be one transaction with the user's row locked, so two unlinks at once cannot
    /// both pass.
    async fn unlink(
        &self,
        user: UserId,
        provider: &ProviderId,
        now: DateTime<Utc>,
    ) -> Result<Unlinked, StoreError>;
}

/// Secrets of one authorization request; they never leave the sealed cookie but to the
/// provider.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSecrets {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

impl fmt::Debug for FlowSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FlowSecrets(..)")
    }
}

/// An authorization request to send the browser to.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub url: String,
    pub secrets: FlowSecrets,
}

/// Why a provider gave no account.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no such provider")]
    UnknownProvider,
    /// Down, slow, or answering nonsense at the transport level: try again later.
    #[error("the provider is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// It answered, and the answer failed a check (the ID token's signature, `iss`,
    /// `aud`, `exp`, `nonce`; an error from its token endpoint).
    #[error("the provider's answer was refused: {0}")]
    Refused(String),
}

/// The OpenID Connect client side, one per configured provider.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Upstream: Send + Sync {
    /// Every configured provider, in the configured order.
    fn providers(&self) -> Vec<Provider>;

    /// The provider's authorization URL for a code flow with PKCE S256, `state` and
    /// `nonce`, and those secrets. `redirect_uri` is this server's callback.
    async fn begin(&self, provider: &ProviderId) -> Result<Authorization, UpstreamError>;

    /// Redeems `code` with the PKCE verifier and checks the ID token (signature by the
    /// provider's keys, `iss`, `aud`, `exp`, `nonce`).
    async fn finish(
        &self,
        provider: &ProviderId,
        code: &str,
        secrets: &FlowSecrets,
    ) -> Result<UpstreamAccount, UpstreamError>;
}

/// Seals what travels through the browser, so that only Shelter can read or make it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Seal: Send + Sync {
    /// # Errors
    /// Only if the cipher fails.
    fn seal(&self, plaintext: &[u8]) -> anyhow::Result<String>;

    /// `None` for anything Shelter did not seal (or sealed under another key).
    fn open(&self, presented: &str) -> Option<Vec<u8>>;
}

/// Why a provider sign-in, link or unlink did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("No such provider")]
    UnknownProvider,
    /// No flow cookie, one of another provider or browser, a `state` that does not match,
    /// or too old: the browser starts again.
    #[error("This sign-in was not started in this browser, or it expired; start again")]
    InvalidFlow,
    /// The provider sent the browser back with an error (the person cancelled, say).
    #[error("The provider did not sign you in: {0}")]
    Declined(String),
    /// The provider's answer failed a check.
    #[error("The provider's answer could not be verified")]
    Unverified,
    #[error("The provider is unavailable")]
    Unavailable(anyhow::Error),
    #[error("The provider did not share an email address")]
    NoEmail,
    /// An account with the upstream account's email exists, and the provider's policy
    /// does not link them here.
    #[error(
        "An account with this email already exists: sign in to it, then link the provider on your account page"
    )]
    LinkRefused,
    /// No account here, and the provider may not create one.
    #[error("No account here is linked to this provider's account")]
    NoAccount,
    #[error("This provider's account is linked to another user")]
    TakenByAnother,
    #[error("Another account of this provider is linked already; unlink it first")]
    ProviderTaken,
    #[error("No account of this provider is linked")]
    NotLinked,
    #[error("This is the last way to sign in to this account; add a password or passkey first")]
    LastWay,
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<StoreError> for FederationError {
    fn from(error: StoreError) -> Self {
        Self::Auth(error.into())
    }
}

/// What a flow is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intent {
    /// Sign in, then go to `next` (a local path the caller checked).
    SignIn { next: Option<String> },
    /// Link the account to a signed-in user, through the sign-in that started the flow.
    Link { user: UserId, session: SessionId },
}

/// A flow on its way to the provider: what the browser keeps in its cookie.
#[derive(Debug, Clone)]
pub struct Started {
    pub url: String,
    /// The sealed flow, for a cookie of this browser.
    pub cookie: String,
}

/// Where a callback leads.
#[derive(Debug)]
pub enum Arrival {
    /// Signed in, or the second step of a TOTP user; then `next`.
    SignedIn {
        step: LoginStep,
        next: Option<String>,
    },
    /// An account with this email exists: ask its password or passkey.
    Confirm(PendingLink),
    /// Linked to the signed-in user.
    Linked(ProviderId),
}

/// A link waiting for the existing account's password or passkey.
#[derive(Debug, Clone)]
pub struct PendingLink {
    pub provider: Provider,
    /// The account's email, to show.
    pub email: EmailAddress,
    /// Whether it has a passkey to offer.
    pub has_passkey: bool,
    /// The sealed link, for the confirmation form.
    pub sealed: String,
}

/// What both sealed values say, in plain fields; one type, so that one kind cannot pass
/// for the other.
#[derive(Debug, Serialize, Deserialize)]
enum Sealed {
    Flow {
        provider: ProviderId,
        secrets: FlowSecrets,
        next: Option<String>,
        /// A link flow: the user and the sign-in that started it.
        link: Option<(i64, String)>,
        expires_at: i64,
    },
    Link {
        user: i64,
        provider: ProviderId,
        subject: String,
        email: Option<String>,
        email_verified: bool,
        next: Option<String>,
        expires_at: i64,
    },
}

impl Sealed {
    fn expires_at(&self) -> i64 {
        match self {
            Self::Flow { expires_at, .. } | Self::Link { expires_at, .. } => *expires_at,
        }
    }

    fn intent(next: Option<String>, link: Option<(i64, String)>) -> Option<Intent> {
        match link {
            None => Some(Intent::SignIn { next }),
            Some((user, session)) => Some(Intent::Link {
                user: UserId::new(user),
                session: session.parse().ok()?,
            }),
        }
    }
}

/// The adapters `FederationService` needs.
pub struct FederationPorts {
    pub auth: Arc<AuthService>,
    pub users: Arc<dyn UserRepository>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub identities: Arc<dyn IdentityStore>,
    pub upstream: Arc<dyn Upstream>,
    pub seal: Arc<dyn Seal>,
    pub clock: Arc<dyn Clock>,
}

pub struct FederationService {
    ports: FederationPorts,
}

impl FederationService {
    pub fn new(ports: FederationPorts) -> Self {
        Self { ports }
    }

    pub fn providers(&self) -> Vec<Provider> {
        self.ports.upstream.providers()
    }

    fn provider(&self, id: &ProviderId) -> Result<Provider, FederationError> {
        self.providers()
            .into_iter()
            .find(|provider| provider.id == *id)
            .ok_or(FederationError::UnknownProvider)
    }

    /// Starts a flow: the provider's authorization URL, and the sealed flow for a cookie.
    ///
    /// # Errors
    /// `UnknownProvider`, or `Unavailable` when the provider's discovery cannot be read.
    pub async fn start(
        &self,
        provider: &ProviderId,
        intent: Intent,
    ) -> Result<Started, FederationError> {
        self.provider(provider)?;
        let authorization = self
            .ports
            .upstream
            .begin(provider)
            .await
            .map_err(upstream)?;
        let (next, link) = match intent {
            Intent::SignIn { next } => (next, None),
            Intent::Link { user, session } => (None, Some((user.get(), session.to_string()))),
        };
        let sealed = Sealed::Flow {
            provider: provider.clone(),
            secrets: authorization.secrets,
            next,
            link,
            expires_at: (self.ports.clock.now() + FLOW_LIFETIME).timestamp(),
        };
        Ok(Started {
            url: authorization.url,
            cookie: self.seal(&sealed)?,
        })
    }

    /// The provider sent the browser back with `code` and `state` (or an `error`).
    /// `signed_in` is the browser's current sign-in, which a link flow must still have.
    ///
    /// # Errors
    /// See [`FederationError`]: every failure signs nobody in and links nothing.
    pub async fn callback(
        &self,
        provider: &ProviderId,
        cookie: Option<&str>,
        answer: CallbackAnswer<'_>,
        signed_in: Option<(UserId, SessionId)>,
        client: &ClientInfo,
    ) -> Result<Arrival, FederationError> {
        let rules = self.provider(provider)?;
        let Some(Sealed::Flow {
            provider: flow_provider,
            secrets,
            next,
            link,
            ..
        }) = cookie.and_then(|cookie| self.open(cookie))
        else {
            return Err(FederationError::InvalidFlow);
        };
        let intent = Sealed::intent(next, link).ok_or(FederationError::InvalidFlow)?;
        let state_matches: bool = answer
            .state
            .as_bytes()
            .ct_eq(secrets.state.as_bytes())
            .into();
        if flow_provider != *provider || !state_matches {
            return Err(FederationError::InvalidFlow);
        }
        let code = match answer.outcome {
            Ok(code) => code,
            Err(error) => return Err(FederationError::Declined(error.to_owned())),
        };
        let account = self
            .ports
            .upstream
            .finish(provider, code, &secrets)
            .await
            .map_err(upstream)?;
        match intent {
            Intent::Link { user, session } => {
                if signed_in != Some((user, session)) {
                    return Err(FederationError::InvalidFlow);
                }
                self.link(user, account.into()).await?;
                Ok(Arrival::Linked(rules.id))
            }
            Intent::SignIn { next } => self.arrive(rules, account, next, client).await,
        }
    }

    async fn arrive(
        &self,
        provider: Provider,
        account: UpstreamAccount,
        next: Option<String>,
        client: &ClientInfo,
    ) -> Result<Arrival, FederationError> {
        if let Some(owner) = self
            .ports
            .identities
            .owner(&account.provider, &account.subject)
            .await?
        {
            let user = self
                .ports
                .users
                .find_by_id(owner)
                .await?
                .ok_or(FederationError::NoAccount)?;
            let step = self.ports.auth.provider_signed_in(user, client).await?;
            return Ok(Arrival::SignedIn { step, next });
        }
        let email = account.email.clone().ok_or(FederationError::NoEmail)?;
        if let Some(existing) = self.ports.users.find_by_email(&email).await? {
            return self.meet(provider, existing, account, next, client).await;
        }
        if !provider.create_users {
            return Err(FederationError::NoAccount);
        }
        if let Some(user) = self.create(email.clone(), account.clone()).await? {
            let step = self.ports.auth.provider_signed_in(user, client).await?;
            return Ok(Arrival::SignedIn { step, next });
        }
        // Someone took the address meanwhile: the account exists now.
        let existing = self
            .ports
            .users
            .find_by_email(&email)
            .await?
            .ok_or(FederationError::NoAccount)?;
        self.meet(provider, existing, account, next, client).await
    }

    /// An unknown upstream account whose email an existing user has: the provider's
    /// policy decides.
    async fn meet(
        &self,
        provider: Provider,
        existing: User,
        account: UpstreamAccount,
        next: Option<String>,
        client: &ClientInfo,
    ) -> Result<Arrival, FederationError> {
        match provider.link {
            LinkPolicy::Never => Err(FederationError::LinkRefused),
            LinkPolicy::VerifiedEmail if !account.email_verified => {
                Err(FederationError::LinkRefused)
            }
            LinkPolicy::VerifiedEmail => {
                self.link(existing.id(), account.into()).await?;
                let step = self.ports.auth.provider_signed_in(existing, client).await?;
                Ok(Arrival::SignedIn { step, next })
            }
            LinkPolicy::Confirm => {
                let sealed = self.seal(&Sealed::Link {
                    user: existing.id().get(),
                    provider: account.provider,
                    subject: account.subject,
                    email: account.email.map(|email| email.as_str().to_owned()),
                    email_verified: account.email_verified,
                    next,
                    expires_at: (self.ports.clock.now() + FLOW_LIFETIME).timestamp(),
                })?;
                Ok(Arrival::Confirm(PendingLink {
                    has_passkey: self.ports.auth.has_passkeys(existing.id()).await?,
                    provider,
                    email: existing.email().clone(),
                    sealed,
                }))
            }
        }
    }

    /// Creates a user from an upstream account, with a username made from its
    /// `preferred_username` (or its email) and made unique. `None` when the email was
    /// taken meanwhile.
    async fn create(
        &self,
        email: EmailAddress,
        account: UpstreamAccount,
    ) -> Result<Option<User>, FederationError> {
        let unused = Password::parse(SecretToken::generate().expose())
            .map_err(|e| AuthError::Unexpected(anyhow::anyhow!("a random password: {e}")))?;
        let unused_hash = self
            .ports
            .hasher
            .hash(&unused)
            .await
            .map_err(AuthError::from)?;
        let base = username_base(&account, &email);
        let identity = NewIdentity::from(account);
        for attempt in 0..=USERNAME_TRIES {
            let candidate = username_candidate(&base, attempt);
            let new = NewUser::from_provider(
                email.clone(),
                candidate,
                unused_hash.clone(),
                identity.clone(),
                self.ports.clock.now(),
            );
            match self.ports.users.insert(new, None).await {
                Ok(user) => return Ok(Some(user)),
                Err(StoreError::UsernameTaken) => {}
                Err(StoreError::EmailTaken) => return Ok(None),
                Err(other) => return Err(other.into()),
            }
        }
        Err(AuthError::Unexpected(anyhow::anyhow!("no free username for {base}")).into())
    }

    /// Confirms a pending link with the existing account's password, links, and signs in
    /// (the second step still applies).
    ///
    /// # Errors
    /// `InvalidFlow` for a link that is not Shelter's or too old; `InvalidCredentials` for
    /// a wrong password.
    pub async fn confirm_with_password(
        &self,
        sealed: &str,
        password: &SecretString,
        client: &ClientInfo,
    ) -> Result<(LoginStep, Option<String>), FederationError> {
        let (user, identity, next) = self.pending(sealed).await?;
        self.ports.auth.check_password(&user, password).await?;
        self.link(user.id(), identity).await?;
        let step = self.ports.auth.provider_signed_in(user, client).await?;
        Ok((step, next))
    }

    /// Confirms a pending link with one of the existing account's passkeys (a ceremony
    /// begun by `POST /auth/passkey/options`), links, and signs in.
    ///
    /// # Errors
    /// As [`Self::confirm_with_password`]; `InvalidPasskey` for another account's passkey.
    pub async fn confirm_with_passkey(
        &self,
        sealed: &str,
        flow_token: &str,
        response: &serde_json::Value,
        client: &ClientInfo,
    ) -> Result<(LoginOutcome, Option<String>), FederationError> {
        let (user, identity, next) = self.pending(sealed).await?;
        let owner = self.ports.auth.passkey_user(flow_token, response).await?;
        if owner.id() != user.id() {
            return Err(AuthError::InvalidPasskey.into());
        }
        self.link(user.id(), identity).await?;
        let outcome = self.ports.auth.passkey_session(owner, client).await?;
        Ok((outcome, next))
    }

    /// What a pending link's confirmation page shows, read again from the sealed link (so
    /// a form cannot change it).
    ///
    /// # Errors
    /// `InvalidFlow` for a link that is not Shelter's or too old.
    pub async fn pending_link(&self, sealed: &str) -> Result<PendingLink, FederationError> {
        let (user, identity, _) = self.pending(sealed).await?;
        Ok(PendingLink {
            provider: self.provider(&identity.provider)?,
            email: user.email().clone(),
            has_passkey: self.ports.auth.has_passkeys(user.id()).await?,
            sealed: sealed.to_owned(),
        })
    }

    async fn pending(
        &self,
        sealed: &str,
    ) -> Result<(User, NewIdentity, Option<String>), FederationError> {
        let Some(Sealed::Link {
            user,
            provider,
            subject,
            email,
            email_verified,
            next,
            ..
        }) = self.open(sealed)
        else {
            return Err(FederationError::InvalidFlow);
        };
        let identity = NewIdentity {
            provider,
            subject,
            email: email.and_then(|email| EmailAddress::parse(&email).ok()),
            email_verified,
        };
        let user = self
            .ports
            .users
            .find_by_id(UserId::new(user))
            .await?
            .ok_or(FederationError::InvalidFlow)?;
        Ok((user, identity, next))
    }

    async fn link(&self, user: UserId, identity: NewIdentity) -> Result<(), FederationError> {
        match self
            .ports
            .identities
            .link(user, &identity, self.ports.clock.now())
            .await?
        {
            Linked::Done => Ok(()),
            Linked::TakenByAnother => Err(FederationError::TakenByAnother),
            Linked::ProviderTaken => Err(FederationError::ProviderTaken),
        }
    }

    /// # Errors
    /// `Unavailable` or `Unexpected` only.
    pub async fn identities(&self, user: UserId) -> Result<Vec<Identity>, FederationError> {
        Ok(self.ports.identities.identities(user).await?)
    }

    /// # Errors
    /// `NotLinked`, or `LastWay` when it is the user's only way to sign in.
    pub async fn unlink(&self, user: UserId, provider: &ProviderId) -> Result<(), FederationError> {
        match self
            .ports
            .identities
            .unlink(user, provider, self.ports.clock.now())
            .await?
        {
            Unlinked::Done => Ok(()),
            Unlinked::NotLinked => Err(FederationError::NotLinked),
            Unlinked::LastWay => Err(FederationError::LastWay),
        }
    }

    fn seal(&self, value: &Sealed) -> Result<String, FederationError> {
        let bytes = serde_json::to_vec(value).map_err(|e| AuthError::Unexpected(e.into()))?;
        Ok(self
            .ports
            .seal
            .seal(&bytes)
            .map_err(AuthError::Unexpected)?)
    }

    /// A sealed value of Shelter's that has not expired.
    fn open(&self, presented: &str) -> Option<Sealed> {
        let value: Sealed = serde_json::from_slice(&self.ports.seal.open(presented)?).ok()?;
        (value.expires_at() > self.ports.clock.now().timestamp()).then_some(value)
    }
}

/// What the provider's redirect back carried.
#[derive(Debug, Clone, Copy)]
pub struct CallbackAnswer<'a> {
    pub state: &'a str,
    /// The code, or the provider's `error` (and its description, when it gave one).
    pub outcome: Result<&'a str, &'a str>,
}

fn upstream(error: UpstreamError) -> FederationError {
    match error {
        UpstreamError::UnknownProvider => FederationError::UnknownProvider,
        UpstreamError::Unavailable(cause) => FederationError::Unavailable(cause),
        UpstreamError::Refused(reason) => {
            tracing::info!(%reason, "a provider's answer was refused");
            FederationError::Unverified
        }
    }
}

/// A username's stem from what the provider said: its `preferred_username`, else the
/// email's local part, with what usernames may not hold replaced by `-`.
fn username_base(account: &UpstreamAccount, email: &EmailAddress) -> String {
    let hint = account
        .preferred_username
        .as_deref()
        .filter(|hint| !hint.trim().is_empty())
        .unwrap_or_else(|| email.as_str().split('@').next().unwrap_or_default());
    let cleaned: String = hint
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    if cleaned.len() < Username::MIN_LEN {
        format!("user-{cleaned}")
    } else {
        cleaned
    }
}

/// The `attempt`th username to try: the stem, then numbered, then a random suffix.
fn username_candidate(base: &str, attempt: usize) -> Username {
    let text = match attempt {
        0 => base.to_owned(),
        n if n < USERNAME_TRIES => format!("{base}-{}", n + 1),
        _ => format!("{base}-{:06x}", rand::random::<u32>() & 0x00ff_ffff),
    };
    Username::parse(&text).unwrap_or_else(|_| {
        Username::parse(&format!("user-{:08x}", rand::random::<u32>()))
            .unwrap_or_else(|_| unreachable!("user- and eight hex digits is a username"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(preferred: Option<&str>) -> UpstreamAccount {
        UpstreamAccount {
            provider: ProviderId::parse("gitlab").expect("id"),
            subject: "42".into(),
            email: Some(EmailAddress::parse("Ada.L@example.com").expect("email")),
            email_verified: true,
            preferred_username: preferred.map(str::to_owned),
        }
    }

    #[test]
    fn provider_ids_are_short_lowercase_slugs() {
        assert!(ProviderId::parse("gitlab-eu-2").is_ok());
        for bad in ["", "GitLab", "a b", "a/b", &"x".repeat(33), "ü"] {
            assert!(ProviderId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn usernames_come_from_the_preferred_username_then_the_email() {
        let email = EmailAddress::parse("ada.l@example.com").expect("email");
        assert_eq!(
            username_base(&account(Some("Ada Lovelace")), &email),
            "ada-lovelace"
        );
        assert_eq!(username_base(&account(None), &email), "ada.l");
        assert_eq!(username_base(&account(Some("  ")), &email), "ada.l");
        assert_eq!(username_base(&account(Some("é")), &email), "user--");
        let long = "x".repeat(80);
        assert_eq!(username_base(&account(Some(&long)), &email).len(), 40);
    }

    #[test]
    fn username_candidates_number_then_randomise() {
        assert_eq!(username_candidate("ada", 0).as_str(), "ada");
        assert_eq!(username_candidate("ada", 1).as_str(), "ada-2");
        let random = username_candidate("ada", USERNAME_TRIES);
        assert!(random.as_str().starts_with("ada-") && random.as_str().len() == 10);
    }

    #[test]
    fn link_policies_parse_from_their_names_only() {
        assert_eq!(LinkPolicy::parse("confirm"), Ok(LinkPolicy::Confirm));
        assert_eq!(
            LinkPolicy::parse("verified_email"),
            Ok(LinkPolicy::VerifiedEmail)
        );
        assert_eq!(LinkPolicy::parse("never"), Ok(LinkPolicy::Never));
        assert!(LinkPolicy::parse("auto").is_err());
    }
}
