//! The rate-limit port: the limits of the contract, their quotas, and the limiter every
//! instance shares (in process or in Redis).

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;

/// The limits of the contract; their quotas are configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// `POST /auth/token`, per client address and username.
    Login,
    /// `POST /users`, per client address.
    Signup,
    /// `POST /auth/password-recovery`, per email.
    PasswordRecovery,
    /// `POST /auth/verify-email/resend`, per email, with the recovery quota.
    VerificationResend,
    /// `POST /auth/email-code`, per email, with the recovery quota.
    EmailCode,
    /// `POST /oauth/register` (dynamic client registration), per client address, with the
    /// signup quota.
    ClientRegistration,
}

impl Limit {
    pub const ALL: [Self; 6] = [
        Self::Login,
        Self::Signup,
        Self::PasswordRecovery,
        Self::VerificationResend,
        Self::EmailCode,
        Self::ClientRegistration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Signup => "signup",
            Self::PasswordRecovery => "recovery",
            Self::VerificationResend => "verification_resend",
            Self::EmailCode => "email_code",
            Self::ClientRegistration => "client_registration",
        }
    }
}

/// How many requests a window allows: `limit` at once, then one every `window / limit`
/// (the generic cell rate algorithm, the same in-process and in Redis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: NonZeroU32,
    pub window: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    Limited { retry_after: Duration },
}

/// Counts requests against quotas.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request for `key` under `limit`. MUST be atomic across every instance
    /// sharing the limiter, so N instances do not multiply the quota.
    ///
    /// # Errors
    /// Only when the shared store cannot be reached and the limiter is set to fail closed.
    async fn check(&self, limit: Limit, key: &str) -> anyhow::Result<Decision>;
}
