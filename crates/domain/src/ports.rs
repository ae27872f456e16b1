//! Every port of the domain, one trait per outside concern, findable here. Each states what
//! an implementor MUST do; the services rely on exactly that and nothing more.
//!
//! The stores, the mail, hashing, tokens and the clock are defined in this file. Ports
//! whose contract is told in the words of their own model live beside it (a re-export
//! here would make those files and this one import each other):
//!
//! | port | what it is for | defined in |
//! | --- | --- | --- |
//! | [`UserRepository`], [`RefreshTokenStore`], [`EmailOutbox`] | the database | here |
//! | [`Mailer`], [`PasswordHasher`], [`TokenIssuer`], [`Clock`] | mail, argon2, JWT, time | here |
//! | [`SigningKeyStore`](crate::keys::SigningKeyStore) | the signing keys' rows | [`crate::keys`] |
//! | [`ClientStore`](crate::clients::ClientStore) | the OAuth client registry | [`crate::clients`] |
//! | [`Authenticator`](crate::mfa::Authenticator) | TOTP codes and sealed secrets | [`crate::mfa`] |
//! | [`AuditLog`](crate::audit::AuditLog), [`RequestOrigin`](crate::audit::RequestOrigin) | the audit log, and which request its events come from | [`crate::audit`] |
//! | [`RateLimiter`](crate::limits::RateLimiter) | rate-limit counters shared by instances | [`crate::limits`] |
//! | [`ClusterBus`](crate::cluster::ClusterBus), [`ClusterSink`](crate::cluster::ClusterSink), [`SessionEvents`](crate::cluster::SessionEvents) | what instances tell each other | [`crate::cluster`] |

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::address::EmailAddress;
use crate::email::{PendingToken, QueuedEmail, SpentLink, TokenPurpose};
use crate::error::{HashError, StorageError, StoreError};
use crate::keys::PublishedKey;
use crate::session::{Challenge, ClientInfo, Session, SessionId, SignInMethod};
use crate::token::TokenHash;
use crate::user::{
    ListSink, NewUser, Page, Password, PasswordHash, SignInCheck, SignInProof, User, UserChanges,
    UserFilter, UserId, Username,
};

/// The user store.
///
/// Every method MUST return `StoreError::Unavailable` when the database cannot be reached,
/// does not answer within the store's timeout, or has no free connection, and MUST NOT
/// wait longer than that timeout; every other failure is `Unexpected`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Creates a user with revision 1 and token version 1, and with it, in the same
    /// transaction, the `verification` token (hashed) and its email in the outbox.
    ///
    /// MUST return `StoreError::EmailTaken` / `UsernameTaken` when another user has the
    /// same email / username ignoring case, decided by the database (also under concurrent
    /// inserts), and MUST NOT leak driver errors other than as `Unexpected`.
    async fn insert(
        &self,
        user: NewUser,
        verification: Option<PendingToken>,
    ) -> Result<User, StoreError>;

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// The user of an access token and whether the sign-in (`session`) it came from is
    /// still live, in one read: what every authenticated request asks, so one query (or
    /// none, from a cache) rather than two.
    async fn signed_in(
        &self,
        id: UserId,
        session: crate::session::SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<(User, bool)>, StoreError>;

    /// Finds the user with this email.
    async fn find_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError>;

    /// Finds the user with this username, ignoring case.
    async fn find_by_username(&self, username: &Username) -> Result<Option<User>, StoreError>;

    /// Puts one page of the users `filter` shows into `sink`, ordered by id, and returns
    /// how many it shows in all. On an error `sink` may hold part of the page.
    async fn list(
        &self,
        filter: &UserFilter,
        page: Page,
        sink: &mut ListSink,
    ) -> Result<u64, StoreError>;

    /// Applies `changes` to a user, bumps its revision and sets `updated_at` to `now`;
    /// when it `revokes_tokens` also increments its token version and revokes every
    /// refresh token of the user; with a `verification`, stores the token and queues its
    /// email.
    /// All of it in one transaction.
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

    /// Stores a one-time token for `user` and queues its email, in one transaction. A new
    /// verification or sign-in token retires the user's earlier unused ones of its kind.
    async fn create_one_time_token(
        &self,
        user: UserId,
        purpose: TokenPurpose,
        token: PendingToken,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// What became of a one-time token of `purpose`, without spending it.
    async fn link_state(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<SpentLink, StoreError>;

    /// Spends an unexpired, unused email-verification token and marks the address it was
    /// sent to as verified, if it is still the user's address. `None` for any other token.
    async fn verify_email(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError>;

    /// Spends a sign-in email (by its link, or by its code for `user`, counting a wrong code
    /// and spending the email at the `max_failures`th) and, as following it proves the
    /// address, marks that address verified if it is still the user's. MUST be atomic: one
    /// email makes one sign-in.
    async fn spend_sign_in(
        &self,
        proof: SignInProof,
        max_failures: u32,
        now: DateTime<Utc>,
    ) -> Result<SignInCheck, StoreError>;

    /// Records that `user` used the TOTP time step `step`, if TOTP is on and no step as late
    /// was used before; `false` otherwise. MUST be atomic, so of two requests with one code
    /// only one passes.
    async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool, StoreError>;

    /// Spends one unused recovery code of `user`; `false` when none has this hash. MUST be
    /// atomic like [`UserRepository::use_totp_step`].
    async fn spend_recovery_code(
        &self,
        user: UserId,
        code: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Spends an unexpired, unused password-reset token and, in the same transaction, sets
    /// the new hash, bumps the token version, revokes every refresh token of the user and
    /// spends the user's other reset tokens. `None` for any other token.
    async fn reset_password(
        &self,
        token: &TokenHash,
        new_hash: PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError>;
}

/// A refresh token to store.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub hash: TokenHash,
    pub expires_at: DateTime<Utc>,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now spent and the replacement stored in its session.
    Rotated { user: UserId, session: SessionId },
    /// The token was spent moments ago (within the grace window): the replacement is
    /// stored in its session, which stays valid.
    WithinGrace { user: UserId, session: SessionId },
    /// The token was spent earlier: its whole session is now ended.
    Reused { user: UserId, session: SessionId },
    /// Unknown, expired or revoked.
    Invalid,
}

/// Sessions and their refresh tokens (stored hashed). A session is live until it is
/// ended or its newest refresh token expires. Like the user store, every method MUST
/// return `Unavailable` when the database does not answer in time.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    /// Starts a session for a new login, with its first refresh token.
    async fn start_session(
        &self,
        user: UserId,
        client: &ClientInfo,
        token: NewRefreshToken,
        now: DateTime<Utc>,
    ) -> Result<SessionId, StorageError>;

    /// Presents a token and, if it is accepted, stores `replacement` in its session and
    /// counts the session as used at `now`. MUST be atomic: of two concurrent presentations
    /// of one live token, exactly one sees it live (the other sees it spent, and so within
    /// the grace window).
    async fn rotate(
        &self,
        presented: &TokenHash,
        replacement: NewRefreshToken,
        now: DateTime<Utc>,
        grace: chrono::Duration,
    ) -> Result<Rotation, StorageError>;

    /// Ends the session of the presented token, if it has a live one, and says whose.
    async fn end_by_token(
        &self,
        presented: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<(UserId, SessionId)>, StorageError>;

    /// Ends `session` if it is a live session of `user`; `false` when it is not.
    async fn end(
        &self,
        user: UserId,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    /// The live sessions of `user`, newest first.
    async fn list(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StorageError>;

    /// Stores the `mfa_token` (hashed) of a login waiting for its second factor, with the
    /// first factor it follows.
    async fn start_challenge(
        &self,
        user: UserId,
        token: &TokenHash,
        first: SignInMethod,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError>;

    /// An unexpired, unspent `mfa_token`.
    async fn challenge(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Challenge>, StorageError>;

    /// Keeps the ceremony of a passkey offered as the second step of an unexpired, unspent
    /// `mfa_token` (a newer offer replaces an older); `false` for no such token.
    async fn offer_passkey(
        &self,
        token: &TokenHash,
        ceremony: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;

    /// Counts a wrong code against an `mfa_token`, spending it at the `max`th.
    async fn fail_challenge(&self, token: &TokenHash, max: u32) -> Result<(), StorageError>;

    /// Spends an unexpired, unspent `mfa_token`; `false` if it was not (MUST be atomic, so
    /// one token makes one login).
    async fn spend_challenge(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError>;
}

/// The email outbox as the delivery worker sees it. Emails are queued by the
/// `UserRepository` in the transactions that cause them.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EmailOutbox: Send + Sync {
    /// Claims up to `limit` emails that are due, counting one more attempt for each, and
    /// leases them until `now + lease`. MUST NOT hand one email to two concurrent callers
    /// within its lease (on PostgreSQL, across processes). An email whose lease ran out
    /// without an outcome (its worker died) is due again.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: chrono::Duration,
        limit: u32,
    ) -> Result<Vec<QueuedEmail>, StorageError>;

    /// Extends the lease of those of `ids` still being sent until `until`: the heartbeat of
    /// a live worker. A worker that dies stops renewing, so its emails are due again soon
    /// after, however long a send may take.
    async fn renew_lease(&self, ids: &[i64], until: DateTime<Utc>) -> Result<(), StorageError>;

    /// Marks an email delivered and forgets its token.
    async fn mark_sent(&self, id: i64, now: DateTime<Utc>) -> Result<(), StorageError>;

    /// Puts an email back in the queue, due at `at`.
    async fn retry_at(&self, id: i64, at: DateTime<Utc>, error: &str) -> Result<(), StorageError>;

    /// Gives up on an email and forgets its token.
    async fn mark_failed(&self, id: i64, error: &str) -> Result<(), StorageError>;
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth retrying: the server is unreachable, busy, or answered 4xx.
    #[error("transient mail failure: {0:#}")]
    Transient(anyhow::Error),
    /// Not worth retrying: the server refused the message for good (5xx).
    #[error("permanent mail failure: {0:#}")]
    Permanent(anyhow::Error),
}

/// Renders and transports one email.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: &crate::email::OutboundEmail) -> Result<(), MailError>;
}

/// Password hashing. Hashing is slow on purpose; implementors MUST NOT block the async
/// runtime's workers while doing it, and MUST bound the work and memory in flight: when
/// that bound is reached they return `HashError::Busy` at once rather than queueing more.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password into a self-describing (PHC) string with a fresh salt.
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError>;

    /// Checks `candidate` against `hash`. With `hash` = `None` (no such user) it MUST still
    /// spend the time of one verification and return `false`, so that the answer's timing
    /// does not reveal which accounts exist. A hash made with other parameters MUST verify.
    async fn verify(
        &self,
        candidate: &SecretString,
        hash: Option<PasswordHash>,
    ) -> Result<bool, HashError>;
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
    /// The login the token belongs to (`sid`).
    pub session: SessionId,
    pub token_version: i64,
    pub expires_at: DateTime<Utc>,
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
    /// Issues an access token for `user`'s `session` at `now`, carrying its token version.
    fn issue(
        &self,
        user: &User,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> anyhow::Result<AccessToken>;

    /// Verifies a token presented at `now`. MUST accept only tokens it issued itself (one
    /// algorithm, its own keys, its own token type, issuer and audience) that have not
    /// expired at `now`.
    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenError>;

    /// The public keys another service verifies these tokens with at `now` (the JWKS);
    /// none when they are signed with a shared secret.
    fn published_keys(&self, now: DateTime<Utc>) -> Vec<PublishedKey>;
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
