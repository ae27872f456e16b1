//! The cluster bus's two adapters: `RedisClusterBus`, the events of the cluster (chat,
//! sessions that end, users that changed) over Redis pub/sub, and `LocalOnlyBus` for a
//! single instance.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use shelter_domain::UserId;
use shelter_domain::cluster::{ClusterBus, ClusterEvent, ClusterSink};
use shelter_domain::session::InvalidSessionId;
use tokio::sync::watch;

use crate::connection::{COMMAND_TIMEOUT, Redis};

/// An event on the wire, tagged with the instance that published it, which has delivered
/// it locally already and ignores its own echo.
#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: String,
    #[serde(flatten)]
    event: Wire,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire {
    Said { user: i64, content: String },
    Left { user: i64 },
    Revoked { user: i64 },
    Changed { user: i64 },
    SessionEnded { user: i64, session: String },
}

impl From<&ClusterEvent> for Wire {
    fn from(event: &ClusterEvent) -> Self {
        match event {
            ClusterEvent::Said { user, content } => Self::Said {
                user: user.get(),
                content: content.clone(),
            },
            ClusterEvent::Left { user } => Self::Left { user: user.get() },
            ClusterEvent::Revoked { user } => Self::Revoked { user: user.get() },
            ClusterEvent::Changed { user } => Self::Changed { user: user.get() },
            ClusterEvent::SessionEnded { user, session } => Self::SessionEnded {
                user: user.get(),
                session: session.to_string(),
            },
        }
    }
}

impl TryFrom<Wire> for ClusterEvent {
    type Error = InvalidSessionId;

    fn try_from(wire: Wire) -> Result<Self, InvalidSessionId> {
        Ok(match wire {
            Wire::Said { user, content } => Self::Said {
                user: UserId::new(user),
                content,
            },
            Wire::Left { user } => Self::Left {
                user: UserId::new(user),
            },
            Wire::Revoked { user } => Self::Revoked {
                user: UserId::new(user),
            },
            Wire::Changed { user } => Self::Changed {
                user: UserId::new(user),
            },
            Wire::SessionEnded { user, session } => Self::SessionEnded {
                user: UserId::new(user),
                session: session.parse()?,
            },
        })
    }
}

pub struct RedisClusterBus {
    redis: Arc<Redis>,
    channel: String,
    origin: String,
    /// The number of the live subscription; `NOT_SUBSCRIBED` while there is none.
    subscription: AtomicU64,
    /// Subscriptions made so far, to number the next.
    subscriptions: AtomicU64,
}

const NOT_SUBSCRIBED: u64 = 0;

impl RedisClusterBus {
    pub fn new(redis: Arc<Redis>) -> Self {
        let channel = redis.key(&["chat"]);
        Self {
            redis,
            channel,
            origin: uuid::Uuid::new_v4().to_string(),
            subscription: AtomicU64::new(NOT_SUBSCRIBED),
            subscriptions: AtomicU64::new(0),
        }
    }

    /// Hands other instances' events to `sink` until `stop`, resubscribing after any
    /// outage (with a backoff of up to five seconds between tries).
    pub async fn deliver_to(
        self: Arc<Self>,
        sink: Arc<dyn ClusterSink>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut backoff = Duration::from_millis(200);
        loop {
            tokio::select! {
                result = self.listen(&*sink) => {
                    self.subscription.store(NOT_SUBSCRIBED, Ordering::SeqCst);
                    if let Err(error) = result {
                        tracing::warn!(error = format!("{error:#}"), retry_in_ms = backoff.as_millis(), "Redis chat subscription lost; reconnecting");
                    }
                }
                _ = stop.changed() => return,
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    async fn listen(&self, sink: &dyn ClusterSink) -> anyhow::Result<()> {
        let mut pubsub =
            tokio::time::timeout(Duration::from_secs(2), self.redis.client.get_async_pubsub())
                .await
                .context("connect to Redis in time")?
                .context("connect to Redis")?;
        pubsub.subscribe(&self.channel).await.context("subscribe")?;
        let number = self.subscriptions.fetch_add(1, Ordering::SeqCst) + 1;
        self.subscription.store(number, Ordering::SeqCst);
        tracing::info!(channel = %self.channel, "Redis chat subscription established");
        let mut messages = pubsub.into_on_message();
        while let Some(message) = messages.next().await {
            let Ok(payload) = message.get_payload::<String>() else {
                continue;
            };
            match serde_json::from_str::<Envelope>(&payload) {
                Ok(envelope) if envelope.origin != self.origin => {
                    match ClusterEvent::try_from(envelope.event) {
                        Ok(event) => sink.deliver(event),
                        Err(error) => tracing::warn!(%error, "unreadable chat event on Redis"),
                    }
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "unreadable chat event on Redis"),
            }
        }
        anyhow::bail!("the subscription ended")
    }
}

#[async_trait]
impl ClusterBus for RedisClusterBus {
    fn subscription(&self) -> Option<u64> {
        Some(self.subscription.load(Ordering::SeqCst)).filter(|n| *n != NOT_SUBSCRIBED)
    }

    async fn publish(&self, event: &ClusterEvent) {
        let envelope = Envelope {
            origin: self.origin.clone(),
            event: event.into(),
        };
        let Ok(payload) = serde_json::to_string(&envelope) else {
            return;
        };
        let published = async {
            let mut connection = self.redis.connection().await?;
            tokio::time::timeout(
                COMMAND_TIMEOUT,
                redis::cmd("PUBLISH")
                    .arg(&self.channel)
                    .arg(payload)
                    .query_async::<i64>(&mut connection),
            )
            .await
            .context("Redis did not answer in time")?
            .context("PUBLISH")
        };
        if let Err(error) = published.await {
            tracing::warn!(
                error = format!("{error:#}"),
                "chat event not sent to other instances (Redis unavailable)"
            );
        }
    }
}

/// A bus that reaches no other instance: one instance needs none.
pub struct LocalOnlyBus;

#[async_trait]
impl ClusterBus for LocalOnlyBus {
    async fn publish(&self, _: &ClusterEvent) {}
}
