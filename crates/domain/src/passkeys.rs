//! Passkeys: WebAuthn discoverable credentials with user verification. What a user's list
//! holds, the two ports (the ceremonies, done by a WebAuthn library; the store), and
//! `PasskeyService`, which adds, names and removes them. Signing in with one is in
//! `auth::passwordless`, beside the other ways a session starts.
//!
//! - A ceremony's state stays on the server between its "options" and its "finish", bound
//!   to a single-use `flow_token` that lives five minutes; the store deletes the flow as
//!   the finish takes it, so its challenge works once, on whichever instance answers.
//! - The domain never looks inside a credential or a browser's answer: both are the
//!   library's JSON, carried as they are.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{StorageError, StoreError, Unavailable};
use crate::ports::{Clock, UserRepository};
use crate::token::{SecretToken, TokenHash};
use crate::user::{User, UserId};

/// How long a `flow_token` waits for its ceremony's finish.
pub const FLOW_LIFETIME: Duration = Duration::minutes(5);

/// Passkeys one user may hold: more than anyone carries, few enough that the list and the
/// excluded credentials of a registration stay small.
pub const MAX_PASSKEYS: usize = 32;

/// A passkey's id in Shelter's API (not the credential id, which is the authenticator's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PasskeyId(Uuid);

impl PasskeyId {
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// An id as written in a URL: the hyphenated form only, so one passkey has one URL.
    pub fn parse(raw: &str) -> Option<Self> {
        Uuid::parse_str(raw)
            .ok()
            .filter(|id| id.hyphenated().to_string() == raw)
            .map(Self)
    }
}

impl fmt::Display for PasskeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// What a user calls a passkey: 1 to 64 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyName(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 64 characters, without control characters")]
pub struct InvalidPasskeyName;

impl PasskeyName {
    pub const MAX_CHARS: usize = 64;

    /// # Errors
    /// An empty, too long, or control-character name.
    pub fn parse(raw: &str) -> Result<Self, InvalidPasskeyName> {
        let trimmed = raw.trim();
        let length = trimmed.chars().count();
        if length == 0 || length > Self::MAX_CHARS || trimmed.chars().any(char::is_control) {
            return Err(InvalidPasskeyName);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A passkey as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passkey {
    pub id: PasskeyId,
    pub name: PasskeyName,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Synced by its provider (a password manager, a phone's keychain), so it survives
    /// the loss of one device.
    pub backed_up: bool,
}

/// A passkey as a ceremony needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    pub id: PasskeyId,
    pub user: UserId,
    /// The WebAuthn user handle the authenticator keeps with it: one per Shelter user.
    pub user_handle: Uuid,
    /// The library's credential (public key, counter, flags), as it serialised it.
    pub credential: String,
}

/// A credential a registration ceremony accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCredential {
    /// base64url, as authenticators and browsers name it.
    pub credential_id: String,
    pub credential: String,
    pub backed_up: bool,
}

/// A ceremony begun: the options for the browser, and the state its finish needs.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// `publicKey` of the WebAuthn JSON options.
    pub public_key: Value,
    pub state: String,
}

/// A sign-in ceremony that succeeded: the credential with its new counter and flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    pub credential: String,
    pub backed_up: bool,
}

/// Why a ceremony's finish was refused. The answer is the same for each; only the audit
/// log and the logs tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CeremonyRefusal {
    /// Wrong origin, RP id, challenge or signature; no user verification; malformed.
    #[error("the credential does not verify: {0}")]
    Rejected(String),
    /// The signature counter did not go up: a cloned authenticator, perhaps.
    #[error("the signature counter went backwards")]
    CounterRegressed,
}

/// The WebAuthn relying party: builds each ceremony's options and checks its answer.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait WebAuthn: Send + Sync {
    /// Options to create a discoverable credential with user verification, excluding the
    /// user's `existing` passkeys.
    ///
    /// # Errors
    /// Only a library defect.
    fn registration(
        &self,
        user_handle: Uuid,
        user: &User,
        existing: &[StoredPasskey],
    ) -> anyhow::Result<Ceremony>;

    /// # Errors
    /// The browser's answer does not complete the ceremony.
    fn register(&self, state: &str, response: &Value) -> Result<NewCredential, CeremonyRefusal>;

    /// Options to sign in with any discoverable credential of this RP (no allow list).
    ///
    /// # Errors
    /// Only a library defect.
    fn sign_in(&self) -> anyhow::Result<Ceremony>;

    /// Options to sign in with one of `passkeys` (the second step of a known user).
    ///
    /// # Errors
    /// Only a library defect.
    fn second_step(&self, passkeys: &[StoredPasskey]) -> anyhow::Result<Ceremony>;

    /// The credential id (base64url) a sign-in answer names, to find its passkey.
    fn credential_id(&self, response: &Value) -> Option<String>;

    /// Checks a sign-in answer against the ceremony and the passkey it names.
    ///
    /// # Errors
    /// The answer does not verify, or the counter regressed.
    fn authenticate(
        &self,
        state: &str,
        response: &Value,
        passkey: &StoredPasskey,
    ) -> Result<Assertion, CeremonyRefusal>;
}

/// What a ceremony in flight is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowPurpose {
    Register,
    SignIn,
}

impl FlowPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SignIn => "sign_in",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Register, Self::SignIn]
            .into_iter()
            .find(|purpose| purpose.as_str() == raw)
    }
}

/// A ceremony between its options and its finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub purpose: FlowPurpose,
    /// Whose registration it is, and the user handle its options gave the authenticator
    /// (the user's, or a fresh one that becomes the user's with a first passkey); `None`
    /// for a sign-in, where nobody is known yet.
    pub user: Option<(UserId, Uuid)>,
    pub state: String,
}

/// Passkeys and ceremonies in flight.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// `user`'s passkeys, oldest first.
    async fn list(&self, user: UserId) -> Result<Vec<Passkey>, StorageError>;

    /// `user`'s passkeys as ceremonies need them.
    async fn stored(&self, user: UserId) -> Result<Vec<StoredPasskey>, StorageError>;

    /// The passkey with this credential id, whoever owns it.
    async fn find(&self, credential_id: &str) -> Result<Option<StoredPasskey>, StorageError>;

    /// Adds a passkey and its `passkey_added` event; `None` when the credential is
    /// registered already (to anyone).
    async fn add(
        &self,
        user: UserId,
        user_handle: Uuid,
        name: &PasskeyName,
        credential: &NewCredential,
        now: DateTime<Utc>,
    ) -> Result<Option<Passkey>, StorageError>;

    /// `None` when `user` has no such passkey.
    async fn rename(
        &self,
        user: UserId,
        id: PasskeyId,
        name: &PasskeyName,
    ) -> Result<Option<Passkey>, StorageError>;

    /// Removes a passkey of `owner` and records `passkey_removed` by `actor`. When the
    /// owner removes their own, it MUST refuse (`LastWay`) to remove their last way to sign
    /// in (no password of their own, no provider linked, no other passkey), counted in the
    /// same transaction with the user's row locked.
    async fn remove(
        &self,
        actor: UserId,
        owner: UserId,
        id: PasskeyId,
        now: DateTime<Utc>,
    ) -> Result<Removal, StorageError>;

    /// Keeps a passkey's new counter and flags after a sign-in.
    async fn used(
        &self,
        id: PasskeyId,
        assertion: &Assertion,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Stores a ceremony in flight under the hash of its `flow_token`.
    async fn start_flow(
        &self,
        token: &TokenHash,
        flow: &Flow,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// Takes (deletes) an unexpired flow: one caller gets it, however many race.
    async fn take_flow(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Flow>, StorageError>;
}

/// What removing a passkey did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Done,
    NotFound,
    /// It is the owner's last way to sign in.
    LastWay,
}

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The server has no relying party: its public URL is an IP address and no
    /// `SHELTER_WEBAUTHN_RP_ID` names a domain.
    #[error("Passkeys are not available on this server")]
    NotConfigured,
    /// An unknown, expired or used `flow_token`, or an answer that does not verify.
    #[error("The passkey could not be verified")]
    Rejected,
    #[error("This passkey is registered already")]
    AlreadyRegistered,
    #[error("A user may hold at most 32 passkeys")]
    TooMany,
    #[error("Passkey not found")]
    NotFound,
    #[error("User not found")]
    UserNotFound,
    #[error("Only a superuser may do this")]
    NotSuperuser,
    /// The owner's last way to sign in (a user created from a provider who unlinked it).
    #[error(
        "This is the last way to sign in to this account; set a password or link a provider first"
    )]
    LastWay,
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for PasskeyError {
    fn from(error: StoreError) -> Self {
        match crate::error::AuthError::from(error) {
            crate::error::AuthError::Unavailable(cause) => Self::Unavailable(cause),
            other => Self::Unexpected(anyhow::Error::new(other)),
        }
    }
}

impl From<StorageError> for PasskeyError {
    fn from(error: StorageError) -> Self {
        StoreError::from(error).into()
    }
}

/// The passkeys of an account: adding one (two calls around the authenticator), naming,
/// listing and removing them, and a superuser's view of another user's.
pub struct PasskeyService {
    store: Arc<dyn PasskeyStore>,
    users: Arc<dyn UserRepository>,
    /// `None` when the server has no relying party (see [`PasskeyError::NotConfigured`]).
    webauthn: Option<Arc<dyn WebAuthn>>,
    clock: Arc<dyn Clock>,
}

impl PasskeyService {
    pub fn new(
        store: Arc<dyn PasskeyStore>,
        users: Arc<dyn UserRepository>,
        webauthn: Option<Arc<dyn WebAuthn>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            users,
            webauthn,
            clock,
        }
    }

    /// Whether passkeys work here: pages hide their buttons when not.
    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn webauthn(&self) -> Result<&dyn WebAuthn, PasskeyError> {
        self.webauthn.as_deref().ok_or(PasskeyError::NotConfigured)
    }

    /// Begins adding a passkey: the creation options and the `flow_token` that the
    /// finish presents.
    ///
    /// # Errors
    /// `NotConfigured`, `TooMany`, or a store failure.
    pub async fn registration_options(
        &self,
        user: &User,
    ) -> Result<(SecretToken, Value), PasskeyError> {
        let webauthn = self.webauthn()?;
        let existing = self.store.stored(user.id).await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(PasskeyError::TooMany);
        }
        let handle = existing
            .first()
            .map_or_else(Uuid::new_v4, |passkey| passkey.user_handle);
        let ceremony = webauthn.registration(handle, user, &existing)?;
        let token = SecretToken::generate();
        let now = self.clock.now();
        let flow = Flow {
            purpose: FlowPurpose::Register,
            user: Some((user.id, handle)),
            state: ceremony.state,
        };
        self.store
            .start_flow(&token.hash(), &flow, now + FLOW_LIFETIME)
            .await?;
        Ok((token, ceremony.public_key))
    }

    /// Finishes adding a passkey with the authenticator's answer.
    ///
    /// # Errors
    /// `Rejected` for a flow token that is not this user's live registration or an answer
    /// that does not verify; `AlreadyRegistered`; `TooMany`.
    pub async fn register(
        &self,
        user: &User,
        flow_token: &str,
        name: &PasskeyName,
        response: &Value,
    ) -> Result<Passkey, PasskeyError> {
        let webauthn = self.webauthn()?;
        let now = self.clock.now();
        let flow = self
            .store
            .take_flow(&SecretToken::presented(flow_token).hash(), now)
            .await?
            .filter(|flow| flow.purpose == FlowPurpose::Register)
            .and_then(|flow| match flow.user {
                Some((owner, handle)) if owner == user.id => Some((flow.state, handle)),
                _ => None,
            });
        let (state, handle) = flow.ok_or(PasskeyError::Rejected)?;
        let credential = webauthn.register(&state, response).map_err(|refusal| {
            tracing::info!(user = %user.id, %refusal, "a passkey registration was refused");
            PasskeyError::Rejected
        })?;
        let existing = self.store.stored(user.id).await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(PasskeyError::TooMany);
        }
        self.store
            .add(user.id, handle, name, &credential, now)
            .await?
            .ok_or(PasskeyError::AlreadyRegistered)
    }

    /// # Errors
    /// A store failure only.
    pub async fn list(&self, user: UserId) -> Result<Vec<Passkey>, PasskeyError> {
        Ok(self.store.list(user).await?)
    }

    /// # Errors
    /// `NotFound` when `user` has no such passkey.
    pub async fn rename(
        &self,
        user: UserId,
        id: PasskeyId,
        name: &PasskeyName,
    ) -> Result<Passkey, PasskeyError> {
        self.store
            .rename(user, id, name)
            .await?
            .ok_or(PasskeyError::NotFound)
    }

    /// Removes a passkey of `owner`: the owner's own, or any user's by a superuser.
    ///
    /// # Errors
    /// `NotSuperuser`, `UserNotFound`, `NotFound`; `LastWay` for the owner's last way to
    /// sign in (a superuser may still remove it: a lost or stolen key must be able to go).
    pub async fn remove(
        &self,
        actor: &User,
        owner: UserId,
        id: PasskeyId,
    ) -> Result<(), PasskeyError> {
        self.may_see(actor, owner).await?;
        match self
            .store
            .remove(actor.id, owner, id, self.clock.now())
            .await?
        {
            Removal::Done => Ok(()),
            Removal::NotFound => Err(PasskeyError::NotFound),
            Removal::LastWay => Err(PasskeyError::LastWay),
        }
    }

    /// The passkeys of `owner`, for the owner or a superuser.
    ///
    /// # Errors
    /// `NotSuperuser`, `UserNotFound`.
    pub async fn list_of(&self, actor: &User, owner: UserId) -> Result<Vec<Passkey>, PasskeyError> {
        self.may_see(actor, owner).await?;
        self.list(owner).await
    }

    async fn may_see(&self, actor: &User, owner: UserId) -> Result<(), PasskeyError> {
        if actor.id == owner {
            return Ok(());
        }
        if !actor.is_superuser {
            return Err(PasskeyError::NotSuperuser);
        }
        if self.users.find_by_id(owner).await?.is_none() {
            return Err(PasskeyError::UserNotFound);
        }
        Ok(())
    }
}
