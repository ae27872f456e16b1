//! `SeaOrmIdentityStore`: accounts at upstream providers linked to users, one row each,
//! keyed by (provider, subject), with their audit events in the same transaction.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use shelter_domain::audit::{AuditEvent, EventType, RequestOrigin};
use shelter_domain::identities::{
    Identity, IdentityStore, Linked, NewIdentity, ProviderId, Unlinked,
};
use shelter_domain::{EmailAddress, StorageError, StoreError, UserId};

use crate::audit;
use crate::entity::{passkey, user, user_identity};
use crate::fault::{DbResultExt as _, within};
use crate::transaction::Writer;

pub struct SeaOrmIdentityStore {
    db: DatabaseConnection,
    writer: Writer,
    timeout: std::time::Duration,
    origin: Arc<dyn RequestOrigin>,
}

impl SeaOrmIdentityStore {
    pub(crate) fn new(
        db: DatabaseConnection,
        writer: Writer,
        timeout: std::time::Duration,
        origin: Arc<dyn RequestOrigin>,
    ) -> Self {
        Self {
            db,
            writer,
            timeout,
            origin,
        }
    }
}

/// Writes a link inside `conn` (the user store uses it for a user made from a provider).
pub(crate) async fn insert(
    conn: &impl ConnectionTrait,
    user: UserId,
    identity: &NewIdentity,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    user_identity::Entity::insert(user_identity::ActiveModel {
        provider: Set(identity.provider.as_str().to_owned()),
        subject: Set(identity.subject.clone()),
        user_id: Set(user.get()),
        email: Set(identity.email.as_ref().map(|e| e.as_str().to_owned())),
        linked_at: Set(now),
    })
    .exec_without_returning(conn)
    .await
    .map(drop)
}

/// The `identity_linked` event of a link.
pub(crate) fn linked(user: UserId, identity: &NewIdentity) -> AuditEvent {
    AuditEvent::new(EventType::IdentityLinked, Some(user), Some(user))
        .detail("provider", identity.provider.as_str())
}

/// One of a user's ways to sign in, about to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Way {
    Identity,
    Passkey,
}

/// Whether removing one `way` would leave `user` no way to sign in: no password of their
/// own, and nothing else but that one. The user's row is locked first, so two removals of
/// one user take turns and cannot both see the other's way still there.
pub(crate) async fn is_last_way(
    txn: &DatabaseTransaction,
    user: UserId,
    way: Way,
) -> Result<bool, StorageError> {
    let Some(owner) = user::Entity::find_by_id(user.get())
        .lock_exclusive()
        .one(txn)
        .await
        .store_context("lock the user")?
    else {
        return Ok(false);
    };
    if owner.password_set {
        return Ok(false);
    }
    let identities = user_identity::Entity::find()
        .filter(user_identity::Column::UserId.eq(user.get()))
        .count(txn)
        .await
        .store_context("count linked accounts")?;
    let passkeys = passkey::Entity::find()
        .filter(passkey::Column::UserId.eq(user.get()))
        .count(txn)
        .await
        .store_context("count passkeys")?;
    let others = match way {
        Way::Identity => identities.saturating_sub(1) + passkeys,
        Way::Passkey => identities + passkeys.saturating_sub(1),
    };
    Ok(others == 0)
}

fn to_identity(row: user_identity::Model) -> Result<Identity, StorageError> {
    let bad = |column: &str| {
        StorageError::Unexpected(anyhow::anyhow!(
            "user_identities.{column} holds an unreadable value"
        ))
    };
    Ok(Identity {
        provider: ProviderId::parse(&row.provider).map_err(|_| bad("provider"))?,
        subject: row.subject,
        email: row
            .email
            .map(|email| EmailAddress::parse(&email).map_err(|_| bad("email")))
            .transpose()?,
        linked_at: row.linked_at,
    })
}

#[async_trait]
impl IdentityStore for SeaOrmIdentityStore {
    async fn owner(
        &self,
        provider: &ProviderId,
        subject: &str,
    ) -> Result<Option<UserId>, StoreError> {
        within(self.timeout, async {
            Ok(user_identity::Entity::find_by_id((
                provider.as_str().to_owned(),
                subject.to_owned(),
            ))
            .one(&self.db)
            .await
            .store_context("find a linked account")?
            .map(|row| UserId::new(row.user_id)))
        })
        .await
    }

    async fn identities(&self, user: UserId) -> Result<Vec<Identity>, StoreError> {
        within(self.timeout, async {
            let rows = user_identity::Entity::find()
                .filter(user_identity::Column::UserId.eq(user.get()))
                .order_by_asc(user_identity::Column::LinkedAt)
                .order_by_asc(user_identity::Column::Provider)
                .all(&self.db)
                .await
                .store_context("list linked accounts")?;
            Ok(rows
                .into_iter()
                .map(to_identity)
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn link(
        &self,
        user: UserId,
        identity: &NewIdentity,
        now: DateTime<Utc>,
    ) -> Result<Linked, StoreError> {
        within(self.timeout, async {
            let txn = self.writer.begin().await?;
            let clashes = user_identity::Entity::find()
                .filter(
                    sea_orm::Condition::any()
                        .add(
                            sea_orm::Condition::all()
                                .add(user_identity::Column::Provider.eq(identity.provider.as_str()))
                                .add(user_identity::Column::Subject.eq(identity.subject.as_str())),
                        )
                        .add(
                            sea_orm::Condition::all()
                                .add(user_identity::Column::UserId.eq(user.get()))
                                .add(
                                    user_identity::Column::Provider.eq(identity.provider.as_str()),
                                ),
                        ),
                )
                .all(&txn)
                .await
                .store_context("look for linked accounts")?;
            if let Some(clash) = clashes.first() {
                return Ok(
                    match (
                        clash.user_id == user.get(),
                        clash.subject == identity.subject,
                    ) {
                        // Linked already, to this user: nothing to do.
                        (true, true) => Linked::Done,
                        (true, false) => Linked::ProviderTaken,
                        (false, _) => Linked::TakenByAnother,
                    },
                );
            }
            if let Err(error) = insert(&txn, user, identity, now).await {
                // Another link of the same account won the race.
                if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
                    return Ok(Linked::TakenByAnother);
                }
                return Err(crate::fault::classify(error, "link an account"));
            }
            audit::write(&txn, &*self.origin, [linked(user, identity)], now).await?;
            txn.commit().await.store_context("commit a link")?;
            Ok(Linked::Done)
        })
        .await
    }

    async fn unlink(
        &self,
        user: UserId,
        provider: &ProviderId,
        now: DateTime<Utc>,
    ) -> Result<Unlinked, StoreError> {
        within(self.timeout, async {
            let txn = self.writer.begin().await?;
            let linked = user_identity::Entity::find()
                .filter(user_identity::Column::UserId.eq(user.get()))
                .filter(user_identity::Column::Provider.eq(provider.as_str()))
                .count(&txn)
                .await
                .store_context("find the linked account")?;
            if linked == 0 {
                return Ok(Unlinked::NotLinked);
            }
            if is_last_way(&txn, user, Way::Identity).await? {
                return Ok(Unlinked::LastWay);
            }
            user_identity::Entity::delete_many()
                .filter(user_identity::Column::UserId.eq(user.get()))
                .filter(user_identity::Column::Provider.eq(provider.as_str()))
                .exec(&txn)
                .await
                .store_context("unlink an account")?;
            let event = AuditEvent::new(EventType::IdentityUnlinked, Some(user), Some(user))
                .detail("provider", provider.as_str());
            audit::write(&txn, &*self.origin, [event], now).await?;
            txn.commit().await.store_context("commit an unlink")?;
            Ok(Unlinked::Done)
        })
        .await
    }
}
