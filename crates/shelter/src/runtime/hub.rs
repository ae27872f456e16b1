//! The chat hub: this instance's chat connections, and how events reach them and the other
//! instances. The `/ws/{client_id}` endpoint that feeds it is `http::chat`.
//!
//! Every connection has a bounded outgoing queue; broadcasting only ever `try_send`s into
//! it, so a slow client never delays the others, and a client whose queue is full is
//! disconnected. Events reach the other instances through the `ClusterBus` (Redis); this
//! instance's clients are served directly, so local delivery never depends on the bus.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use shelter_domain::cluster::{ClusterBus, ClusterEvent, ClusterSink, SessionEvents};
use shelter_domain::{SessionId, UserId};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Messages waiting for one client before it counts as too slow.
pub const QUEUE_CAPACITY: usize = 256;

struct Client {
    user: UserId,
    session: SessionId,
    outgoing: mpsc::Sender<Arc<str>>,
    close: oneshot::Sender<CloseFrame>,
}

/// This instance's connections.
pub struct Hub {
    clients: Mutex<HashMap<u64, Client>>,
    next_id: AtomicU64,
    bus: Arc<dyn ClusterBus>,
}

/// What a connection task receives from the hub.
pub struct Registration {
    pub(crate) id: u64,
    pub(crate) outgoing: mpsc::Receiver<Arc<str>>,
    pub(crate) close: oneshot::Receiver<CloseFrame>,
}

/// A close frame; its reason is cut to the 123 bytes a close frame has room for.
pub(crate) fn reason(code: CloseCode, description: &str) -> CloseFrame {
    let mut end = description.len().min(123);
    while !description.is_char_boundary(end) {
        end -= 1;
    }
    CloseFrame {
        code,
        reason: description[..end].into(),
    }
}

impl Hub {
    pub fn new(bus: Arc<dyn ClusterBus>) -> Self {
        Self {
            clients: Mutex::default(),
            next_id: AtomicU64::new(1),
            bus,
        }
    }

    /// A new connection of `user`, opened with a token of `session`; its task calls
    /// [`Hub::unregister`] exactly once when the socket ends, however it ends.
    pub(crate) fn register(&self, user: UserId, session: SessionId) -> Registration {
        metrics::gauge!("shelter_ws_connections").increment(1);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (outgoing_tx, outgoing) = mpsc::channel(QUEUE_CAPACITY);
        let (close_tx, close) = oneshot::channel();
        self.lock().insert(
            id,
            Client {
                user,
                session,
                outgoing: outgoing_tx,
                close: close_tx,
            },
        );
        Registration {
            id,
            outgoing,
            close,
        }
    }

    pub(crate) fn unregister(&self, id: u64) {
        metrics::gauge!("shelter_ws_connections").decrement(1);
        self.lock().remove(&id);
    }

    /// Delivers locally, then tells the other instances.
    pub async fn publish(&self, event: ClusterEvent) {
        self.deliver(event.clone());
        self.bus.publish(&event).await;
    }

    /// Closes every connection with 1001 (going away), for a shutdown.
    pub fn shutdown(&self) {
        let clients: Vec<Client> = self.lock().drain().map(|(_, client)| client).collect();
        for client in clients {
            let _ = client
                .close
                .send(reason(CloseCode::Away, "server shutting down"));
        }
    }

    fn broadcast(&self, text: &str) {
        let text: Arc<str> = Arc::from(text);
        let mut clients = self.lock();
        let too_slow: Vec<u64> = clients
            .iter()
            .filter(|(_, client)| {
                matches!(
                    client.outgoing.try_send(Arc::clone(&text)),
                    Err(mpsc::error::TrySendError::Full(_))
                )
            })
            .map(|(id, _)| *id)
            .collect();
        for id in too_slow {
            if let Some(client) = clients.remove(&id) {
                tracing::info!(connection = id, user_id = %client.user, "disconnecting a client that does not keep up");
                let _ = client
                    .close
                    .send(reason(CloseCode::Policy, "too slow: message queue full"));
            }
        }
    }

    /// Closes with 1008 every connection `which` picks.
    fn close_where(&self, which: impl Fn(&Client) -> bool, why: &str) {
        let mut clients = self.lock();
        let ids: Vec<u64> = clients
            .iter()
            .filter(|(_, c)| which(c))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(client) = clients.remove(&id) {
                let _ = client.close.send(reason(CloseCode::Policy, why));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Client>> {
        // A panic while holding the lock cannot leave the map inconsistent (every
        // operation is a single insert or remove), so a poisoned lock is still usable.
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl SessionEvents for Hub {
    async fn ended(&self, user: UserId) {
        self.publish(ClusterEvent::Revoked { user }).await;
    }

    async fn session_ended(&self, user: UserId, session: SessionId) {
        self.publish(ClusterEvent::SessionEnded { user, session })
            .await;
    }
}

impl ClusterSink for Hub {
    fn deliver(&self, event: ClusterEvent) {
        match event {
            ClusterEvent::Said { user, content } => {
                self.broadcast(&format!("Client #{user} says: {content}"));
            }
            ClusterEvent::Left { user } => {
                self.broadcast(&format!("Client #{user} left the chat"));
            }
            ClusterEvent::Revoked { user } => {
                self.close_where(|c| c.user == user, "session revoked");
            }
            ClusterEvent::SessionEnded { session, .. } => {
                self.close_where(|c| c.session == session, "session revoked");
            }
            ClusterEvent::Changed { .. } => {}
        }
    }
}
