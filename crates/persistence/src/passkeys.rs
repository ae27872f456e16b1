//! `SeaOrmPasskeyStore`: users' passkeys, with their audit events in the same transaction,
//! and the ceremonies in flight, each taken (deleted) by the one finish that wins it.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder,
};
use shelter_domain::audit::{AuditEvent, EventType, RequestOrigin};
use shelter_domain::passkeys::{
    Assertion, Flow, FlowPurpose, NewCredential, Passkey, PasskeyId, PasskeyName, PasskeyStore,
    Removal, StoredPasskey,
};
use shelter_domain::{StorageError, TokenHash, UserId};
use uuid::Uuid;

use crate::audit;
use crate::entity::{passkey, passkey_flow};
use crate::fault::{DbResultExt as _, within};
use crate::identities::Way;
use crate::transaction::Writer;

pub struct SeaOrmPasskeyStore {
    db: DatabaseConnection,
    writer: Writer,
    timeout: std::time::Duration,
    origin: Arc<dyn RequestOrigin>,
}

impl SeaOrmPasskeyStore {
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

fn bad(column: &str) -> StorageError {
    StorageError::Unexpected(anyhow::anyhow!(
        "passkeys.{column} holds an unreadable value"
    ))
}

fn to_passkey(row: &passkey::Model) -> Result<Passkey, StorageError> {
    Ok(Passkey {
        id: PasskeyId::parse(&row.id).ok_or_else(|| bad("id"))?,
        name: PasskeyName::parse(&row.name).map_err(|_| bad("name"))?,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        backed_up: row.backed_up,
    })
}

fn to_stored(row: passkey::Model) -> Result<StoredPasskey, StorageError> {
    Ok(StoredPasskey {
        id: PasskeyId::parse(&row.id).ok_or_else(|| bad("id"))?,
        user: UserId::new(row.user_id),
        user_handle: Uuid::parse_str(&row.user_handle).map_err(|_| bad("user_handle"))?,
        credential: row.credential,
    })
}

#[async_trait]
impl PasskeyStore for SeaOrmPasskeyStore {
    async fn list(&self, user: UserId) -> Result<Vec<Passkey>, StorageError> {
        within(self.timeout, async {
            passkey::Entity::find()
                .filter(passkey::Column::UserId.eq(user.get()))
                .order_by_asc(passkey::Column::CreatedAt)
                .order_by_asc(passkey::Column::Id)
                .all(&self.db)
                .await
                .store_context("list passkeys")?
                .iter()
                .map(to_passkey)
                .collect()
        })
        .await
    }

    async fn stored(&self, user: UserId) -> Result<Vec<StoredPasskey>, StorageError> {
        within(self.timeout, async {
            passkey::Entity::find()
                .filter(passkey::Column::UserId.eq(user.get()))
                .order_by_asc(passkey::Column::CreatedAt)
                .order_by_asc(passkey::Column::Id)
                .all(&self.db)
                .await
                .store_context("read passkeys")?
                .into_iter()
                .map(to_stored)
                .collect()
        })
        .await
    }

    async fn find(&self, credential_id: &str) -> Result<Option<StoredPasskey>, StorageError> {
        within(self.timeout, async {
            passkey::Entity::find()
                .filter(passkey::Column::CredentialId.eq(credential_id))
                .one(&self.db)
                .await
                .store_context("find a passkey")?
                .map(to_stored)
                .transpose()
        })
        .await
    }

    async fn add(
        &self,
        user: UserId,
        user_handle: Uuid,
        name: &PasskeyName,
        credential: &NewCredential,
        now: DateTime<Utc>,
    ) -> Result<Option<Passkey>, StorageError> {
        within(self.timeout, async {
            let txn = self.writer.begin().await?;
            let id = PasskeyId::generate();
            let inserted = passkey::ActiveModel {
                id: Set(id.to_string()),
                user_id: Set(user.get()),
                name: Set(name.as_str().to_owned()),
                credential_id: Set(credential.credential_id.clone()),
                user_handle: Set(user_handle.hyphenated().to_string()),
                credential: Set(credential.credential.clone()),
                backed_up: Set(credential.backed_up),
                created_at: Set(now),
                last_used_at: Set(None),
            }
            .insert(&txn)
            .await;
            let row = match inserted {
                Ok(row) => row,
                Err(error)
                    if matches!(
                        error.sql_err(),
                        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                    ) =>
                {
                    return Ok(None);
                }
                Err(error) => return Err(error).store_context("add a passkey"),
            };
            let added = AuditEvent::new(EventType::PasskeyAdded, Some(user), Some(user))
                .detail("passkey", id.to_string())
                .detail("name", name.as_str());
            audit::write(&txn, &*self.origin, [added], now).await?;
            txn.commit().await.store_context("commit a passkey")?;
            to_passkey(&row).map(Some)
        })
        .await
    }

    async fn rename(
        &self,
        user: UserId,
        id: PasskeyId,
        name: &PasskeyName,
    ) -> Result<Option<Passkey>, StorageError> {
        within(self.timeout, async {
            let Some(row) = passkey::Entity::find_by_id(id.to_string())
                .filter(passkey::Column::UserId.eq(user.get()))
                .one(&self.db)
                .await
                .store_context("find a passkey")?
            else {
                return Ok(None);
            };
            let mut model = row.into_active_model();
            model.name = Set(name.as_str().to_owned());
            let row = model
                .update(self.writer.connection())
                .await
                .store_context("rename a passkey")?;
            to_passkey(&row).map(Some)
        })
        .await
    }

    async fn remove(
        &self,
        actor: UserId,
        owner: UserId,
        id: PasskeyId,
        now: DateTime<Utc>,
    ) -> Result<Removal, StorageError> {
        within(self.timeout, async {
            let txn = self.writer.begin().await?;
            if actor == owner && crate::identities::is_last_way(&txn, owner, Way::Passkey).await? {
                return Ok(Removal::LastWay);
            }
            let removed = passkey::Entity::delete_many()
                .filter(passkey::Column::Id.eq(id.to_string()))
                .filter(passkey::Column::UserId.eq(owner.get()))
                .exec(&txn)
                .await
                .store_context("remove a passkey")?;
            if removed.rows_affected == 0 {
                return Ok(Removal::NotFound);
            }
            let event = AuditEvent::new(EventType::PasskeyRemoved, Some(owner), Some(actor))
                .detail("passkey", id.to_string());
            audit::write(&txn, &*self.origin, [event], now).await?;
            txn.commit()
                .await
                .store_context("commit a removed passkey")?;
            Ok(Removal::Done)
        })
        .await
    }

    async fn used(
        &self,
        id: PasskeyId,
        assertion: &Assertion,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        within(self.timeout, async {
            passkey::Entity::update_many()
                .col_expr(
                    passkey::Column::Credential,
                    Expr::value(assertion.credential.clone()),
                )
                .col_expr(passkey::Column::BackedUp, Expr::value(assertion.backed_up))
                .col_expr(passkey::Column::LastUsedAt, Expr::value(now))
                .filter(passkey::Column::Id.eq(id.to_string()))
                .exec(self.writer.connection())
                .await
                .store_context("record a passkey's use")?;
            Ok(())
        })
        .await
    }

    async fn start_flow(
        &self,
        token: &TokenHash,
        flow: &Flow,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        within(self.timeout, async {
            passkey_flow::ActiveModel {
                token_hash: Set(token.as_str().to_owned()),
                purpose: Set(flow.purpose.as_str().to_owned()),
                user_id: Set(flow.user.map(|(user, _)| user.get())),
                user_handle: Set(flow.user.map(|(_, handle)| handle.hyphenated().to_string())),
                state: Set(flow.state.clone()),
                expires_at: Set(expires_at),
            }
            .insert(self.writer.connection())
            .await
            .store_context("start a passkey ceremony")?;
            // Flows nobody finished go with the periodic purge (`Database::purge`).
            Ok(())
        })
        .await
    }

    async fn take_flow(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Flow>, StorageError> {
        within(self.timeout, async {
            let Some(row) = passkey_flow::Entity::find_by_id(token.as_str())
                .one(&self.db)
                .await
                .store_context("find a passkey ceremony")?
            else {
                return Ok(None);
            };
            // Of two finishes racing for one flow, the delete lets exactly one through.
            let deleted = passkey_flow::Entity::delete_by_id(token.as_str())
                .exec(self.writer.connection())
                .await
                .store_context("take a passkey ceremony")?;
            if deleted.rows_affected != 1 || row.expires_at <= now {
                return Ok(None);
            }
            let purpose = FlowPurpose::parse(&row.purpose).ok_or_else(|| {
                StorageError::Unexpected(anyhow::anyhow!("passkey_flows.purpose"))
            })?;
            let user = match (row.user_id, row.user_handle.as_deref()) {
                (Some(user), Some(handle)) => Some((
                    UserId::new(user),
                    Uuid::parse_str(handle).map_err(|_| bad("flow user_handle"))?,
                )),
                _ => None,
            };
            Ok(Some(Flow {
                purpose,
                user,
                state: row.state,
            }))
        })
        .await
    }
}
