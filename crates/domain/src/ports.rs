//! The ports: one trait per outside concern. Each states what an implementor MUST do; the
//! services rely on exactly that and nothing more.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::error::StoreError;
use crate::user::{NewUser, Page, Password, PasswordHash, User, UserChanges, UserId};

/// The user store.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Creates a user with revision 1 and token version 1.
    ///
    /// MUST return `StoreError::EmailTaken` / `UsernameTaken` when another user has the
    /// same email / username ignoring case, decided by the database (also under concurrent
    /// inserts), and MUST NOT leak driver errors other than as `Unexpected`.
    async fn insert(&self, user: NewUser) -> Result<User, StoreError>;

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// Finds the user whose email or username equals `login`, ignoring case.
    async fn find_by_login(&self, login: &str) -> Result<Option<User>, StoreError>;

    /// One page of users ordered by id, and the total count.
    async fn list(&self, page: Page) -> Result<(Vec<User>, u64), StoreError>;

    /// Applies `changes` to a user, bumps its revision and sets `updated_at` to `now`;
    /// with `bump_token_version` also increments its token version.
    ///
    /// Atomically with the write it MUST:
    /// - return `NotFound` when there is no such user;
    /// - return `RevisionMismatch` when `expected_revision` is given and differs;
    /// - return `LastSuperuser` when the change would leave no active superuser;
    /// - return `EmailTaken` / `UsernameTaken` on a uniqueness conflict.
    async fn update(
        &self,
        id: UserId,
        expected_revision: Option<i64>,
        changes: UserChanges,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError>;

    /// Deletes a user, with the same `NotFound`, `RevisionMismatch` and `LastSuperuser`
    /// guarantees as [`UserRepository::update`].
    async fn delete(&self, id: UserId, expected_revision: Option<i64>) -> Result<(), StoreError>;
}

/// Password hashing. Hashing is slow on purpose; implementors MUST NOT block the async
/// runtime's workers while doing it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password into a self-describing (PHC) string with a fresh salt.
    async fn hash(&self, password: &Password) -> anyhow::Result<PasswordHash>;

    /// Checks `candidate` against `hash`. With `hash` = `None` (no such user) it MUST still
    /// spend the time of one verification and return `false`, so that the answer's timing
    /// does not reveal which accounts exist. A hash made with other parameters MUST verify.
    async fn verify(
        &self,
        candidate: &SecretString,
        hash: Option<PasswordHash>,
    ) -> anyhow::Result<bool>;
}

/// An access token as handed to a client.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: SecretString,
    /// Lifetime in seconds.
    pub expires_in: i64,
}

/// What a verified access token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub token_version: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed, badly signed or of the wrong type")]
    Invalid,
    #[error("the token has expired")]
    Expired,
}

/// Issues and verifies access tokens. Verification needs no I/O.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait TokenIssuer: Send + Sync {
    /// Issues an access token for `user` at `now`, carrying its token version.
    fn issue(&self, user: &User, now: DateTime<Utc>) -> anyhow::Result<AccessToken>;

    /// Verifies a token presented at `now`. MUST accept only tokens it issued itself (one
    /// algorithm, its own key, its own token type) that have not expired at `now`.
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenError>;
}

/// The time. Services never read the system clock themselves, so expiry is tested by
/// moving a fixed clock, not by sleeping.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
