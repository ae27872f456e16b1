//! Back-channel logouts: queued inside the transactions that end sign-ins (one row per
//! client that received tokens from the sign-in and registered a `backchannel_logout_uri`),
//! and `SeaOrmLogoutOutbox`, the delivery worker's view of the queue. The same lease and
//! retry rules as the email outbox.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use shelter_domain::clients::ClientId;
use shelter_domain::oauth::{LogoutOutbox, PendingLogout};
use shelter_domain::{StorageError, UserId};

use crate::entity::{oauth_authorization, oauth_client, oauth_logout, session};
use crate::fault::{DbResultExt as _, within};
use crate::transaction::Writer;

const PENDING: &str = "pending";
const SENDING: &str = "sending";
const SENT: &str = "sent";
const FAILED: &str = "failed";

/// Queues a logout for each client that received tokens from one of `sessions` and asked to
/// be told, inside `conn`'s transaction.
pub(crate) async fn queue(
    conn: &impl ConnectionTrait,
    sessions: Vec<String>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if sessions.is_empty() {
        return Ok(());
    }
    let families = oauth_authorization::Entity::find()
        .filter(oauth_authorization::Column::SessionId.is_in(sessions))
        .all(conn)
        .await
        .store_context("find the sign-ins' token families")?;
    let told: BTreeSet<(String, String, i64)> = families
        .into_iter()
        .map(|family| (family.client_id, family.session_id, family.user_id))
        .collect();
    let clients: BTreeSet<&String> = told.iter().map(|(client, _, _)| client).collect();
    let listening = oauth_client::Entity::find()
        .filter(oauth_client::Column::ClientId.is_in(clients.into_iter().cloned()))
        .filter(oauth_client::Column::BackchannelLogoutUri.is_not_null())
        .all(conn)
        .await
        .store_context("find the clients to tell")?;
    for (client, session, user) in told {
        let Some(uri) = listening
            .iter()
            .find(|listener| listener.client_id == client)
            .and_then(|listener| listener.backchannel_logout_uri.clone())
        else {
            continue;
        };
        oauth_logout::ActiveModel {
            client_id: Set(client),
            uri: Set(uri),
            user_id: Set(user),
            session_id: Set(session),
            status: Set(PENDING.to_owned()),
            attempts: Set(0),
            next_attempt_at: Set(now),
            locked_until: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            sent_at: Set(None),
            ..Default::default()
        }
        .insert(conn)
        .await
        .store_context("queue a back-channel logout")?;
    }
    Ok(())
}

/// Queues the logouts of every live sign-in of `user` (a password change or reset, a
/// deactivation, a deletion), inside `conn`'s transaction.
pub(crate) async fn queue_all_of(
    conn: &impl ConnectionTrait,
    user: i64,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let live = session::Entity::find()
        .filter(session::Column::UserId.eq(user))
        .filter(session::Column::EndedAt.is_null())
        .all(conn)
        .await
        .store_context("find the user's sign-ins")?;
    queue(conn, live.into_iter().map(|row| row.id).collect(), now).await
}

pub struct SeaOrmLogoutOutbox {
    writer: Writer,
    timeout: std::time::Duration,
}

impl SeaOrmLogoutOutbox {
    pub(crate) fn new(writer: Writer, timeout: std::time::Duration) -> Self {
        Self { writer, timeout }
    }

    async fn set(
        &self,
        id: i64,
        change: impl FnOnce(&mut oauth_logout::ActiveModel),
    ) -> Result<(), StorageError> {
        within(self.timeout, async {
            let mut model = oauth_logout::ActiveModel {
                id: Set(id),
                ..Default::default()
            };
            change(&mut model);
            oauth_logout::Entity::update(model)
                .exec(self.writer.connection())
                .await
                .store_context("update a queued logout")?;
            Ok(())
        })
        .await
    }
}

fn pending(row: &oauth_logout::Model, attempts: i32) -> Option<PendingLogout> {
    Some(PendingLogout {
        id: row.id,
        client: ClientId::parse(&row.client_id).ok()?,
        uri: row.uri.clone(),
        user: UserId::new(row.user_id),
        session: row.session_id.parse().ok()?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
    })
}

#[async_trait]
impl LogoutOutbox for SeaOrmLogoutOutbox {
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<PendingLogout>, StorageError> {
        within(self.timeout, async {
            let txn = self.writer.begin().await?;
            let due = Condition::any()
                .add(
                    Condition::all()
                        .add(oauth_logout::Column::Status.eq(PENDING))
                        .add(oauth_logout::Column::NextAttemptAt.lte(now)),
                )
                .add(
                    Condition::all()
                        .add(oauth_logout::Column::Status.eq(SENDING))
                        .add(oauth_logout::Column::LockedUntil.lt(now)),
                );
            let rows = oauth_logout::Entity::find()
                .filter(due)
                .order_by_asc(oauth_logout::Column::Id)
                .limit(u64::from(limit))
                .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                .all(&txn)
                .await
                .store_context("select due logouts")?;
            let mut claimed = Vec::with_capacity(rows.len());
            for row in rows {
                let attempts = row.attempts + 1;
                let logout = pending(&row, attempts);
                let mut model = row.into_active_model();
                model.attempts = Set(attempts);
                if let Some(logout) = logout {
                    model.status = Set(SENDING.to_owned());
                    model.locked_until = Set(Some(now + lease));
                    claimed.push(logout);
                } else {
                    model.status = Set(FAILED.to_owned());
                    model.last_error = Set(Some("unreadable row".to_owned()));
                }
                model.update(&txn).await.store_context("lease a logout")?;
            }
            txn.commit().await.store_context("commit a logout claim")?;
            Ok(claimed)
        })
        .await
    }

    async fn mark_sent(&self, id: i64, now: DateTime<Utc>) -> Result<(), StorageError> {
        self.set(id, |m| {
            m.status = Set(SENT.to_owned());
            m.sent_at = Set(Some(now));
            m.locked_until = Set(None);
            m.last_error = Set(None);
        })
        .await
    }

    async fn retry_at(&self, id: i64, at: DateTime<Utc>, error: &str) -> Result<(), StorageError> {
        let error: String = error.chars().take(1000).collect();
        self.set(id, |m| {
            m.status = Set(PENDING.to_owned());
            m.next_attempt_at = Set(at);
            m.locked_until = Set(None);
            m.last_error = Set(Some(error));
        })
        .await
    }

    async fn mark_failed(&self, id: i64, error: &str) -> Result<(), StorageError> {
        let error: String = error.chars().take(1000).collect();
        self.set(id, |m| {
            m.status = Set(FAILED.to_owned());
            m.locked_until = Set(None);
            m.last_error = Set(Some(error));
        })
        .await
    }
}
