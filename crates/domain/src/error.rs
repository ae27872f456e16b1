//! Errors in domain words, one enum per concern. The HTTP layer maps them to status codes
//! in one place.

use std::fmt;

/// An outside dependency a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Database,
    /// The bounded pool of password-hashing threads.
    PasswordHasher,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Database => "database",
            Self::PasswordHasher => "password hasher",
        })
    }
}

/// A dependency that is down, did not answer in time, or is saturated. It is nobody's
/// bug and the caller's request may succeed later, so it is kept apart from `Unexpected`:
/// the HTTP layer answers it with 503 and `Retry-After`, not 500.
#[derive(Debug, thiserror::Error)]
#[error("the {dependency} is unavailable")]
pub struct Unavailable {
    pub dependency: Dependency,
    #[source]
    pub cause: anyhow::Error,
}

impl Unavailable {
    pub fn new(dependency: Dependency, cause: impl Into<anyhow::Error>) -> Self {
        Self {
            dependency,
            cause: cause.into(),
        }
    }
}

/// What a password hasher can report; see [`crate::ports::PasswordHasher`].
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing thread is busy and the queue in front of them is full.
    #[error("the password hasher is saturated")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What the refresh-token store and the outbox can report: only whether the database
/// answered. They have no rule of their own to break.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database did not answer: unreachable, timed out, or its pool exhausted.
    #[error("the database is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StorageError> for StoreError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Unavailable(cause) => Self::Unavailable(cause),
            StorageError::Unexpected(cause) => Self::Unexpected(cause),
        }
    }
}

/// What the user store can report; see [`crate::ports::UserRepository`] for when.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error("a user with this username already exists")]
    UsernameTaken,
    #[error("no such user")]
    NotFound,
    #[error("the user was changed since it was read")]
    RevisionMismatch,
    #[error("the last active superuser cannot be removed")]
    LastSuperuser,
    /// The database did not answer: unreachable, timed out, or its pool exhausted.
    #[error("the database is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why a user-management request failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("A user with this email already exists")]
    EmailTaken,
    #[error("A user with this username already exists")]
    UsernameTaken,
    #[error("User not found")]
    NotFound,
    /// The caller is not a superuser, and this needs one.
    #[error("only a superuser may do this")]
    NotSuperuser,
    /// Only superusers decide who is active and who is a superuser.
    #[error("only a superuser may change whether a user is active or a superuser")]
    PrivilegedField,
    #[error("the current password is required to change the email or password")]
    CurrentPasswordRequired,
    #[error("The current password is incorrect")]
    WrongCurrentPassword,
    /// The caller expected another revision of the user.
    #[error("the user was changed since it was read")]
    PreconditionFailed,
    #[error("The last active superuser cannot be deleted, deactivated or demoted")]
    LastSuperuser,
    #[error("The verification token is invalid, used or expired")]
    InvalidVerificationToken,
    #[error("Two-factor sign-in is already enabled; disable it first")]
    MfaAlreadyEnabled,
    #[error("There is no two-factor enrolment to confirm; start one first")]
    MfaNotPending,
    #[error("Two-factor sign-in is not enabled")]
    MfaNotEnabled,
    #[error("The code is wrong or was already used")]
    InvalidCode,
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for UserError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::EmailTaken => Self::EmailTaken,
            StoreError::UsernameTaken => Self::UsernameTaken,
            StoreError::NotFound => Self::NotFound,
            StoreError::RevisionMismatch => Self::PreconditionFailed,
            StoreError::LastSuperuser => Self::LastSuperuser,
            StoreError::Unavailable(cause) => {
                Self::Unavailable(Unavailable::new(Dependency::Database, cause))
            }
            StoreError::Unexpected(error) => Self::Unexpected(error),
        }
    }
}

impl HashError {
    /// A busy hasher is an unavailable dependency; anything else is a bug.
    fn split(self) -> Result<Unavailable, anyhow::Error> {
        match self {
            Self::Busy => Ok(Unavailable::new(Dependency::PasswordHasher, Self::Busy)),
            Self::Unexpected(error) => Err(error),
        }
    }
}

impl From<HashError> for UserError {
    fn from(error: HashError) -> Self {
        error
            .split()
            .map_or_else(Self::Unexpected, Self::Unavailable)
    }
}

/// Why a login or a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown login or wrong password: deliberately the same answer for both.
    #[error("Incorrect username or password")]
    InvalidCredentials,
    /// Missing, malformed, expired or revoked access token, or its user is gone.
    #[error("Could not validate credentials")]
    InvalidToken,
    #[error("Inactive user")]
    Inactive,
    /// Verified emails are required and this one is not verified yet.
    #[error("The email address is not verified")]
    Unverified,
    /// A refresh token that is unknown, expired, revoked, or reused after the grace
    /// window (which revoked its whole login).
    #[error("The refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    #[error("The reset token is invalid, used or expired")]
    InvalidResetToken,
    /// No live session of the caller has this id (another user's is no different).
    #[error("Session not found")]
    SessionNotFound,
    /// An unknown, expired or spent `mfa_token`, or a wrong or reused code.
    #[error("The code or the mfa_token is invalid")]
    InvalidMfa,
    /// A passkey sign-in that failed, whatever the reason (one message for all).
    #[error("The passkey could not be verified")]
    InvalidPasskey,
    /// A wrong, used, replaced or expired emailed code or link.
    #[error("The code is wrong, used or expired")]
    InvalidEmailCode,
    /// The server has no WebAuthn relying party.
    #[error("Passkeys are not available on this server")]
    PasskeysUnavailable,
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(cause) => {
                Self::Unavailable(Unavailable::new(Dependency::Database, cause))
            }
            other => Self::Unexpected(anyhow::Error::new(other).context("user store")),
        }
    }
}

impl From<StorageError> for AuthError {
    fn from(error: StorageError) -> Self {
        StoreError::from(error).into()
    }
}

impl From<HashError> for AuthError {
    fn from(error: HashError) -> Self {
        error
            .split()
            .map_or_else(Self::Unexpected, Self::Unavailable)
    }
}
