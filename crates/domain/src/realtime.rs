//! Ports for what several instances must share: rate-limit counters and chat events.

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;

use crate::session::SessionId;
use crate::user::UserId;

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
}

impl Limit {
    pub const ALL: [Self; 4] = [
        Self::Login,
        Self::Signup,
        Self::PasswordRecovery,
        Self::VerificationResend,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Signup => "signup",
            Self::PasswordRecovery => "recovery",
            Self::VerificationResend => "verification_resend",
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

/// Something that happened in the chat, to deliver on every instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    Said {
        user: UserId,
        content: String,
    },
    Left {
        user: UserId,
    },
    /// The user's sessions must end: deactivated, deleted, or its tokens revoked.
    Revoked {
        user: UserId,
    },
    /// The user's row changed (or is gone): copies of it held in caches are stale.
    Changed {
        user: UserId,
    },
    /// One login ended (logout, revoked, refresh token reused): its sockets close, and
    /// copies of its liveness held in caches are stale.
    SessionEnded {
        user: UserId,
        session: SessionId,
    },
}

/// Carries chat events to the other instances. Local delivery never depends on it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ChatBus: Send + Sync {
    /// Sends an event to the other instances. MUST NOT fail or hang on an unreachable
    /// broker: it logs and drops instead.
    async fn publish(&self, event: &ChatEvent);

    /// The subscription to the other instances' events: `None` while some may be missed
    /// (the broker unreachable), and a new number after each resubscription, since events
    /// published in between are lost. With no other instances, always the same number.
    fn subscription(&self) -> Option<u64> {
        Some(0)
    }
}

/// Told when every session of a user must end at once (deactivated, deleted, password
/// changed or reset), so that what outlives a request (open chat sockets) ends too, on every
/// instance. The services decide when; this only carries the news.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SessionEvents: Send + Sync {
    /// MUST NOT fail or hang on an unreachable broker: it logs and drops instead.
    async fn ended(&self, user: UserId);

    /// One login of `user` ended; the same promise.
    async fn session_ended(&self, user: UserId, session: SessionId);
}

/// For a process that holds no sessions, such as a one-off command: there is no one to
/// tell.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSessions;

#[async_trait]
impl SessionEvents for NoSessions {
    async fn ended(&self, _: UserId) {}

    async fn session_ended(&self, _: UserId, _: SessionId) {}
}

/// Where a bus hands the events that other instances published.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait ChatSink: Send + Sync {
    /// MUST NOT block: it is called from the bus's receiving loop.
    fn deliver(&self, event: ChatEvent);
}
