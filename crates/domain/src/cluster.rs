//! The cluster bus: what one instance tells the others (chat messages, sessions that end,
//! cached users that went stale), and the ports that carry it.

use async_trait::async_trait;

use crate::session::SessionId;
use crate::user::UserId;

/// Something every instance must hear of: the chat, sessions that end, users that
/// changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
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

/// Carries cluster events to the other instances. Local delivery never depends on it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ClusterBus: Send + Sync {
    /// Sends an event to the other instances. MUST NOT fail or hang on an unreachable
    /// broker: it logs and drops instead.
    async fn publish(&self, event: &ClusterEvent);

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
pub trait ClusterSink: Send + Sync {
    /// MUST NOT block: it is called from the bus's receiving loop.
    fn deliver(&self, event: ClusterEvent);
}
