//! `SeaOrmRefreshTokenStore`: refresh tokens grouped in families, rotated under a row lock.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, IntoActiveModel, QueryFilter, QuerySelect,
};
use shelter_domain::ports::{NewRefreshToken, RefreshTokenStore, Rotation};
use shelter_domain::{StorageError, TokenHash, UserId};

use crate::entity::refresh_token;
use crate::fault::{DbResultExt as _, within};
use crate::transaction::begin_write;

pub struct SeaOrmRefreshTokenStore {
    db: DatabaseConnection,
    /// The longest any one operation may take before it is `Unavailable`.
    timeout: std::time::Duration,
}

impl SeaOrmRefreshTokenStore {
    pub(crate) fn new(db: DatabaseConnection, timeout: std::time::Duration) -> Self {
        Self { db, timeout }
    }
}

async fn insert(
    conn: &impl ConnectionTrait,
    family: String,
    user: i64,
    token: NewRefreshToken,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    refresh_token::ActiveModel {
        family_id: Set(family),
        user_id: Set(user),
        token_hash: Set(token.hash.as_str().to_owned()),
        expires_at: Set(token.expires_at),
        used_at: Set(None),
        revoked: Set(false),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(conn)
    .await
    .store_context("store refresh token")?;
    Ok(())
}

/// Revokes every refresh token of `user` (password change or reset), inside `conn`'s
/// transaction.
pub(crate) async fn revoke_all_of(
    conn: &impl ConnectionTrait,
    user: i64,
) -> Result<(), StorageError> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::Revoked, Expr::value(true))
        .filter(refresh_token::Column::UserId.eq(user))
        .exec(conn)
        .await
        .store_context("revoke the user's refresh tokens")?;
    Ok(())
}

async fn revoke_family(conn: &impl ConnectionTrait, family: &str) -> Result<(), StorageError> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::Revoked, Expr::value(true))
        .filter(refresh_token::Column::FamilyId.eq(family))
        .exec(conn)
        .await
        .store_context("revoke a token family")?;
    Ok(())
}

#[async_trait]
impl RefreshTokenStore for SeaOrmRefreshTokenStore {
    async fn start_family(
        &self,
        user: UserId,
        token: NewRefreshToken,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        within(self.timeout, async {
            let family = uuid::Uuid::new_v4().to_string();
            insert(&self.db, family, user.get(), token, now).await
        })
        .await
    }

    async fn rotate(
        &self,
        presented: &TokenHash,
        replacement: NewRefreshToken,
        now: DateTime<Utc>,
        grace: Duration,
    ) -> Result<Rotation, StorageError> {
        within(self.timeout, async {
            let txn = begin_write(&self.db).await?;
            // The row lock makes the second of two concurrent rotations wait, then see the
            // token spent (and so fall in the grace window) instead of rotating it twice.
            let Some(row) = refresh_token::Entity::find()
                .filter(refresh_token::Column::TokenHash.eq(presented.as_str()))
                .lock_exclusive()
                .one(&txn)
                .await
                .store_context("find refresh token")?
            else {
                return Ok(Rotation::Invalid);
            };
            if row.revoked || row.expires_at <= now {
                return Ok(Rotation::Invalid);
            }
            let (family, user) = (row.family_id.clone(), row.user_id);
            let rotation = match row.used_at {
                None => {
                    let mut spent = row.into_active_model();
                    spent.used_at = Set(Some(now));
                    spent
                        .update(&txn)
                        .await
                        .store_context("spend refresh token")?;
                    insert(&txn, family, user, replacement, now).await?;
                    Rotation::Rotated {
                        user: UserId::new(user),
                    }
                }
                // `now` was read before this request waited for the row lock, so it may be a
                // little earlier than the rotation it waited for: a zero grace is no grace.
                Some(used_at) if grace > Duration::zero() && now - used_at <= grace => {
                    insert(&txn, family, user, replacement, now).await?;
                    Rotation::WithinGrace {
                        user: UserId::new(user),
                    }
                }
                Some(_) => {
                    tracing::warn!(user_id = user, "refresh token reused; the login is revoked");
                    revoke_family(&txn, &family).await?;
                    Rotation::Reused
                }
            };
            txn.commit().await.store_context("commit rotation")?;
            Ok(rotation)
        })
        .await
    }

    async fn revoke_family(&self, presented: &TokenHash) -> Result<(), StorageError> {
        within(self.timeout, async {
            let family = refresh_token::Entity::find()
                .select_only()
                .column(refresh_token::Column::FamilyId)
                .filter(refresh_token::Column::TokenHash.eq(presented.as_str()))
                .into_tuple::<String>()
                .one(&self.db)
                .await
                .store_context("find refresh token")?;
            if let Some(family) = family {
                revoke_family(&self.db, &family).await?;
            }
            Ok(())
        })
        .await
    }
}
