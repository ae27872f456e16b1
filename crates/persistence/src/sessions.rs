//! `SeaOrmRefreshTokenStore`: sessions and their refresh tokens, rotated under a row lock.
//!
//! A session is live while `ended_at` is empty and `expires_at` (its newest refresh
//! token's expiry) is ahead; ending one also revokes its refresh tokens, in one statement
//! each, so no token outlives its session.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use shelter_domain::audit::{AuditEvent, EventType, RequestOrigin};
use shelter_domain::ports::{NewRefreshToken, RefreshTokenStore, Rotation};
use shelter_domain::session::{Challenge, SignInMethod};
use shelter_domain::{ClientInfo, Session, SessionId, StorageError, TokenHash, UserId};
use std::sync::Arc;

use crate::audit;
use crate::entity::{mfa_challenge, refresh_token, session};
use crate::fault::{DbResultExt as _, within};
use crate::transaction::Writer;

pub struct SeaOrmRefreshTokenStore {
    db: DatabaseConnection,
    writer: Writer,
    /// The longest any one operation may take before it is `Unavailable`.
    timeout: std::time::Duration,
    origin: Arc<dyn RequestOrigin>,
}

impl SeaOrmRefreshTokenStore {
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

async fn insert(
    conn: &impl ConnectionTrait,
    session: &str,
    user: i64,
    token: NewRefreshToken,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    refresh_token::ActiveModel {
        family_id: Set(session.to_owned()),
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

fn live(now: DateTime<Utc>) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(session::Column::EndedAt.is_null())
        .add(session::Column::ExpiresAt.gt(now))
}

/// Ends every session of `user` and revokes their refresh tokens (password change or
/// reset), inside `conn`'s transaction.
pub(crate) async fn revoke_all_of(
    conn: &impl ConnectionTrait,
    user: i64,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    crate::logouts::queue_all_of(conn, user, now).await?;
    session::Entity::update_many()
        .col_expr(session::Column::EndedAt, Expr::value(now))
        .filter(session::Column::UserId.eq(user))
        .filter(session::Column::EndedAt.is_null())
        .exec(conn)
        .await
        .store_context("end the user's sessions")?;
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::Revoked, Expr::value(true))
        .filter(refresh_token::Column::UserId.eq(user))
        .exec(conn)
        .await
        .store_context("revoke the user's refresh tokens")?;
    Ok(())
}

/// Ends one session and revokes its refresh tokens; `false` when it was not live.
async fn end(
    conn: &impl ConnectionTrait,
    user: i64,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let ended = session::Entity::update_many()
        .col_expr(session::Column::EndedAt, Expr::value(now))
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::UserId.eq(user))
        .filter(live(now))
        .exec(conn)
        .await
        .store_context("end a session")?;
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::Revoked, Expr::value(true))
        .filter(refresh_token::Column::FamilyId.eq(id))
        .exec(conn)
        .await
        .store_context("revoke a session's refresh tokens")?;
    if ended.rows_affected > 0 {
        crate::logouts::queue(conn, vec![id.to_owned()], now).await?;
    }
    Ok(ended.rows_affected > 0)
}

fn session_id(raw: &str) -> Result<SessionId, StorageError> {
    raw.parse()
        .map_err(|_| StorageError::Unexpected(anyhow::anyhow!("stored session id {raw:?}")))
}

fn to_session(row: &session::Model) -> Result<Session, StorageError> {
    Ok(Session {
        id: session_id(&row.id)?,
        user: UserId::new(row.user_id),
        client: ClientInfo::new(
            row.ip.as_deref().and_then(|ip| ip.parse().ok()),
            row.user_agent.as_deref(),
        ),
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        expires_at: row.expires_at,
    })
}

#[async_trait]
impl RefreshTokenStore for SeaOrmRefreshTokenStore {
    async fn start_session(
        &self,
        user: UserId,
        client: &ClientInfo,
        token: NewRefreshToken,
        now: DateTime<Utc>,
    ) -> Result<SessionId, StorageError> {
        within(self.timeout, async {
            let id = SessionId::generate();
            let txn = self.writer.begin().await?;
            session::ActiveModel {
                id: Set(id.to_string()),
                user_id: Set(user.get()),
                ip: Set(client.ip.map(|ip| ip.to_string())),
                user_agent: Set(client.user_agent().map(str::to_owned)),
                created_at: Set(now),
                last_used_at: Set(now),
                expires_at: Set(token.expires_at),
                ended_at: Set(None),
                method: Set(Some(client.method.as_str().to_owned())),
            }
            .insert(&txn)
            .await
            .store_context("store session")?;
            insert(&txn, &id.to_string(), user.get(), token, now).await?;
            let login = AuditEvent::new(EventType::LoginSucceeded, Some(user), Some(user))
                .detail("session", id.to_string())
                .detail("method", client.method.first_factor());
            audit::write(&txn, &*self.origin, [login], now).await?;
            txn.commit().await.store_context("commit session")?;
            Ok(id)
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
            let txn = self.writer.begin().await?;
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
            let session = session_id(&family)?;
            let expires_at = replacement.expires_at;
            let rotation = match row.used_at {
                None => {
                    let mut spent = row.into_active_model();
                    spent.used_at = Set(Some(now));
                    spent
                        .update(&txn)
                        .await
                        .store_context("spend refresh token")?;
                    insert(&txn, &family, user, replacement, now).await?;
                    Rotation::Rotated {
                        user: UserId::new(user),
                        session,
                    }
                }
                // `now` was read before this request waited for the row lock, so it may be a
                // little earlier than the rotation it waited for: a zero grace is no grace.
                Some(used_at) if grace > Duration::zero() && now - used_at <= grace => {
                    insert(&txn, &family, user, replacement, now).await?;
                    Rotation::WithinGrace {
                        user: UserId::new(user),
                        session,
                    }
                }
                Some(_) => {
                    tracing::warn!(user_id = user, "refresh token reused; the login is revoked");
                    end(&txn, user, &family, now).await?;
                    let reuse = AuditEvent::new(
                        EventType::RefreshReuseDetected,
                        Some(UserId::new(user)),
                        None,
                    )
                    .detail("session", family.clone());
                    audit::write(&txn, &*self.origin, [reuse], now).await?;
                    txn.commit().await.store_context("commit revocation")?;
                    return Ok(Rotation::Reused {
                        user: UserId::new(user),
                        session,
                    });
                }
            };
            session::Entity::update_many()
                .col_expr(session::Column::LastUsedAt, Expr::value(now))
                .col_expr(session::Column::ExpiresAt, Expr::value(expires_at))
                .filter(session::Column::Id.eq(family.as_str()))
                .exec(&txn)
                .await
                .store_context("count the session as used")?;
            txn.commit().await.store_context("commit rotation")?;
            Ok(rotation)
        })
        .await
    }

    async fn end_by_token(
        &self,
        presented: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<(UserId, SessionId)>, StorageError> {
        within(self.timeout, async {
            let owner = refresh_token::Entity::find()
                .select_only()
                .column(refresh_token::Column::UserId)
                .column(refresh_token::Column::FamilyId)
                .filter(refresh_token::Column::TokenHash.eq(presented.as_str()))
                .into_tuple::<(i64, String)>()
                .one(&self.db)
                .await
                .store_context("find refresh token")?;
            let Some((user, family)) = owner else {
                return Ok(None);
            };
            let txn = self.writer.begin().await?;
            let ended = end(&txn, user, &family, now).await?;
            if ended {
                let logout = AuditEvent::new(EventType::Logout, Some(UserId::new(user)), None)
                    .detail("session", family.clone());
                audit::write(&txn, &*self.origin, [logout], now).await?;
            }
            txn.commit().await.store_context("commit logout")?;
            Ok(ended.then_some((UserId::new(user), session_id(&family)?)))
        })
        .await
    }

    async fn end(
        &self,
        user: UserId,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        within(self.timeout, async {
            let txn = self.writer.begin().await?;
            let ended = end(&txn, user.get(), &session.to_string(), now).await?;
            if ended {
                let revoked = AuditEvent::new(EventType::SessionRevoked, Some(user), None)
                    .detail("session", session.to_string());
                audit::write(&txn, &*self.origin, [revoked], now).await?;
            }
            txn.commit().await.store_context("commit session end")?;
            Ok(ended)
        })
        .await
    }

    async fn list(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StorageError> {
        within(self.timeout, async {
            session::Entity::find()
                .filter(session::Column::UserId.eq(user.get()))
                .filter(live(now))
                .order_by_desc(session::Column::CreatedAt)
                .order_by_desc(session::Column::Id)
                .all(&self.db)
                .await
                .store_context("list sessions")?
                .iter()
                .map(to_session)
                .collect()
        })
        .await
    }

    async fn start_challenge(
        &self,
        user: UserId,
        token: &TokenHash,
        first: SignInMethod,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        within(self.timeout, async {
            mfa_challenge::ActiveModel {
                token_hash: Set(token.as_str().to_owned()),
                user_id: Set(user.get()),
                failures: Set(0),
                spent: Set(false),
                expires_at: Set(expires_at),
                created_at: Set(now),
                method: Set(Some(first.as_str().to_owned())),
                passkey_state: Set(None),
            }
            .insert(self.writer.connection())
            .await
            .store_context("store an mfa token")?;
            Ok(())
        })
        .await
    }

    async fn challenge(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Challenge>, StorageError> {
        within(self.timeout, async {
            Ok(mfa_challenge::Entity::find()
                .filter(mfa_challenge::Column::TokenHash.eq(token.as_str()))
                .filter(mfa_challenge::Column::Spent.eq(false))
                .filter(mfa_challenge::Column::ExpiresAt.gt(now))
                .one(&self.db)
                .await
                .store_context("find an mfa token")?
                .map(|row| Challenge {
                    user: UserId::new(row.user_id),
                    first: row
                        .method
                        .as_deref()
                        .map_or(SignInMethod::Password, SignInMethod::from_stored),
                    passkey_ceremony: row.passkey_state,
                }))
        })
        .await
    }

    async fn offer_passkey(
        &self,
        token: &TokenHash,
        ceremony: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        within(self.timeout, async {
            let offered = mfa_challenge::Entity::update_many()
                .col_expr(mfa_challenge::Column::PasskeyState, Expr::value(ceremony))
                .filter(mfa_challenge::Column::TokenHash.eq(token.as_str()))
                .filter(mfa_challenge::Column::Spent.eq(false))
                .filter(mfa_challenge::Column::ExpiresAt.gt(now))
                .exec(self.writer.connection())
                .await
                .store_context("offer a passkey")?;
            Ok(offered.rows_affected == 1)
        })
        .await
    }

    async fn fail_challenge(&self, token: &TokenHash, max: u32) -> Result<(), StorageError> {
        within(self.timeout, async {
            let failures = Expr::col(mfa_challenge::Column::Failures).add(1);
            mfa_challenge::Entity::update_many()
                .col_expr(mfa_challenge::Column::Failures, failures.clone())
                .col_expr(mfa_challenge::Column::Spent, failures.gte(i64::from(max)))
                .filter(mfa_challenge::Column::TokenHash.eq(token.as_str()))
                .filter(mfa_challenge::Column::Spent.eq(false))
                .exec(self.writer.connection())
                .await
                .store_context("count a wrong code")?;
            Ok(())
        })
        .await
    }

    async fn spend_challenge(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        within(self.timeout, async {
            let spent = mfa_challenge::Entity::update_many()
                .col_expr(mfa_challenge::Column::Spent, Expr::value(true))
                .filter(mfa_challenge::Column::TokenHash.eq(token.as_str()))
                .filter(mfa_challenge::Column::Spent.eq(false))
                .filter(mfa_challenge::Column::ExpiresAt.gt(now))
                .exec(self.writer.connection())
                .await
                .store_context("spend an mfa token")?;
            Ok(spent.rows_affected == 1)
        })
        .await
    }
}
