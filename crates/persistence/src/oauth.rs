//! `SeaOrmOAuthStore`: what the OpenID Connect provider remembers. Consents, the redeemed
//! codes that are the families of the tokens issued from them, their refresh tokens, and
//! revoked access tokens. A family lives while it is not revoked and the sign-in it came
//! from has not ended, so whatever ends a sign-in ends its OAuth tokens with no write here.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use shelter_domain::audit::{AuditEvent, EventType, RequestOrigin};
use shelter_domain::clients::{ClientId, Scope};
use shelter_domain::oauth::{
    AccessTokenClaims, Code, Family, GrantSummary, OAuthRotation, OAuthStore, Redemption, Subject,
    scope_string,
};
use shelter_domain::ports::NewRefreshToken;
use shelter_domain::session::SignInMethod;
use shelter_domain::{SessionId, StorageError, TokenHash, UserId};

use crate::audit;
use crate::entity::{
    oauth_authorization, oauth_client, oauth_grant, oauth_refresh_token, oauth_revoked_token,
    session,
};
use crate::fault::{DbResultExt as _, within};
use crate::transaction::Writer;

pub struct SeaOrmOAuthStore {
    db: DatabaseConnection,
    writer: Writer,
    timeout: std::time::Duration,
    origin: Arc<dyn RequestOrigin>,
}

impl SeaOrmOAuthStore {
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

fn scopes(raw: &str) -> BTreeSet<Scope> {
    raw.split(' ').filter_map(Scope::parse).collect()
}

fn corrupt(what: &'static str) -> StorageError {
    StorageError::Unexpected(anyhow::anyhow!("a stored {what} does not parse"))
}

/// The sign-in `id` if it has not ended: when it was made and how.
async fn sign_in_of(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<session::Model>, StorageError> {
    session::Entity::find_by_id(id)
        .filter(session::Column::EndedAt.is_null())
        .one(conn)
        .await
        .store_context("find a sign-in")
}

fn method_of(row: &session::Model) -> SignInMethod {
    row.method
        .as_deref()
        .map(SignInMethod::from_stored)
        .unwrap_or_default()
}

/// Revokes the family `id` (a no-op when it already is).
async fn revoke_family(
    conn: &impl ConnectionTrait,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    oauth_authorization::Entity::update_many()
        .col_expr(oauth_authorization::Column::RevokedAt, Expr::value(now))
        .filter(oauth_authorization::Column::Id.eq(id))
        .filter(oauth_authorization::Column::RevokedAt.is_null())
        .exec(conn)
        .await
        .store_context("revoke a token family")?;
    Ok(())
}

async fn insert_refresh(
    conn: &impl ConnectionTrait,
    family: &str,
    token: NewRefreshToken,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    oauth_refresh_token::ActiveModel {
        token_hash: Set(token.hash.as_str().to_owned()),
        authorization_id: Set(family.to_owned()),
        created_at: Set(now),
        expires_at: Set(token.expires_at),
        spent_at: Set(None),
    }
    .insert(conn)
    .await
    .store_context("store an OAuth refresh token")?;
    Ok(())
}

#[async_trait]
impl OAuthStore for SeaOrmOAuthStore {
    async fn grant(
        &self,
        user: UserId,
        client: &ClientId,
    ) -> Result<Option<BTreeSet<Scope>>, StorageError> {
        within(self.timeout, async {
            Ok(
                oauth_grant::Entity::find_by_id((user.get(), client.to_string()))
                    .one(&self.db)
                    .await
                    .store_context("find a grant")?
                    .map(|row| scopes(&row.scopes)),
            )
        })
        .await
    }

    async fn remember_grant(
        &self,
        user: UserId,
        client: &ClientId,
        asked: &BTreeSet<Scope>,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        within(self.timeout, async {
            let txn = self.writer.begin().await?;
            let existing = oauth_grant::Entity::find_by_id((user.get(), client.to_string()))
                .lock_exclusive()
                .one(&txn)
                .await
                .store_context("find a grant")?;
            let mut granted = asked.clone();
            match existing {
                Some(row) => {
                    granted.extend(scopes(&row.scopes));
                    let mut row = row.into_active_model();
                    row.scopes = Set(scope_string(&granted));
                    row.update(&txn).await.store_context("widen a grant")?;
                }
                None => {
                    oauth_grant::ActiveModel {
                        user_id: Set(user.get()),
                        client_id: Set(client.to_string()),
                        scopes: Set(scope_string(&granted)),
                        created_at: Set(now),
                    }
                    .insert(&txn)
                    .await
                    .store_context("store a grant")?;
                }
            }
            let event = AuditEvent::new(EventType::OauthConsentGranted, Some(user), Some(user))
                .detail("client_id", client.as_str())
                .detail("scope", scope_string(asked));
            audit::write(&txn, &*self.origin, [event], now).await?;
            txn.commit().await.store_context("commit a grant")
        })
        .await
    }

    async fn grants(&self, user: UserId) -> Result<Vec<GrantSummary>, StorageError> {
        within(self.timeout, async {
            let grants = oauth_grant::Entity::find()
                .filter(oauth_grant::Column::UserId.eq(user.get()))
                .order_by_desc(oauth_grant::Column::CreatedAt)
                .all(&self.db)
                .await
                .store_context("list grants")?;
            let mut summaries = Vec::with_capacity(grants.len());
            for grant in grants {
                let name = oauth_client::Entity::find_by_id(grant.client_id.clone())
                    .one(&self.db)
                    .await
                    .store_context("find a grant's client")?
                    .map(|client| client.name)
                    .unwrap_or_default();
                let families = Query::select()
                    .column(oauth_authorization::Column::Id)
                    .from(oauth_authorization::Entity)
                    .and_where(oauth_authorization::Column::UserId.eq(user.get()))
                    .and_where(oauth_authorization::Column::ClientId.eq(grant.client_id.clone()))
                    .to_owned();
                let last_refresh = oauth_refresh_token::Entity::find()
                    .filter(oauth_refresh_token::Column::AuthorizationId.in_subquery(families))
                    .order_by_desc(oauth_refresh_token::Column::CreatedAt)
                    .one(&self.db)
                    .await
                    .store_context("find a grant's last refresh")?
                    .map(|row| row.created_at);
                let last_code = oauth_authorization::Entity::find()
                    .filter(oauth_authorization::Column::UserId.eq(user.get()))
                    .filter(oauth_authorization::Column::ClientId.eq(grant.client_id.clone()))
                    .order_by_desc(oauth_authorization::Column::CreatedAt)
                    .one(&self.db)
                    .await
                    .store_context("find a grant's last code")?
                    .map(|row| row.created_at);
                summaries.push(GrantSummary {
                    client: ClientId::parse(&grant.client_id).map_err(|_| corrupt("client id"))?,
                    name,
                    scopes: scopes(&grant.scopes),
                    created_at: grant.created_at,
                    last_used_at: last_refresh.max(last_code),
                });
            }
            Ok(summaries)
        })
        .await
    }

    async fn forget_grant(
        &self,
        user: UserId,
        client: &ClientId,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        within(self.timeout, async {
            let txn = self.writer.begin().await?;
            let forgotten = oauth_grant::Entity::delete_many()
                .filter(oauth_grant::Column::UserId.eq(user.get()))
                .filter(oauth_grant::Column::ClientId.eq(client.as_str()))
                .exec(&txn)
                .await
                .store_context("forget a grant")?
                .rows_affected;
            let revoked = oauth_authorization::Entity::update_many()
                .col_expr(oauth_authorization::Column::RevokedAt, Expr::value(now))
                .filter(oauth_authorization::Column::UserId.eq(user.get()))
                .filter(oauth_authorization::Column::ClientId.eq(client.as_str()))
                .filter(oauth_authorization::Column::RevokedAt.is_null())
                .exec(&txn)
                .await
                .store_context("revoke a grant's tokens")?
                .rows_affected;
            if forgotten + revoked == 0 {
                return Ok(false);
            }
            let event = AuditEvent::new(EventType::OauthGrantRevoked, Some(user), None)
                .detail("client_id", client.as_str());
            audit::write(&txn, &*self.origin, [event], now).await?;
            txn.commit().await.store_context("commit a grant's end")?;
            Ok(true)
        })
        .await
    }

    async fn sign_in(
        &self,
        user: UserId,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, SignInMethod)>, StorageError> {
        within(self.timeout, async {
            Ok(sign_in_of(&self.db, &session.to_string())
                .await?
                .filter(|row| row.user_id == user.get() && row.expires_at > now)
                .map(|row| (row.created_at, method_of(&row))))
        })
        .await
    }

    async fn redeem(
        &self,
        code: &Code,
        refresh: Option<NewRefreshToken>,
        now: DateTime<Utc>,
    ) -> Result<Redemption, StorageError> {
        let family = code.id.to_string();
        within(self.timeout, async {
            let txn = self.writer.begin().await?;
            if sign_in_of(&txn, &code.session.to_string()).await?.is_none() {
                return Ok(Redemption::SignInEnded);
            }
            let inserted = oauth_authorization::ActiveModel {
                id: Set(family.clone()),
                client_id: Set(code.client.to_string()),
                user_id: Set(code.user.get()),
                session_id: Set(code.session.to_string()),
                scopes: Set(scope_string(&code.scopes)),
                created_at: Set(now),
                revoked_at: Set(None),
            }
            .insert(&txn)
            .await;
            match inserted {
                Ok(_) => {
                    if let Some(token) = refresh {
                        insert_refresh(&txn, &family, token, now).await?;
                    }
                    txn.commit().await.store_context("commit a redeemed code")?;
                    return Ok(Redemption::Fresh);
                }
                Err(error)
                    if matches!(
                        error.sql_err(),
                        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                    ) => {}
                Err(error) => return Err(error).store_context("redeem a code"),
            }
            // PostgreSQL aborts a transaction at its first error: the revocation needs its own.
            drop(txn);
            let txn = self.writer.begin().await?;
            revoke_family(&txn, &family, now).await?;
            tracing::warn!(
                client_id = code.client.as_str(),
                "an authorization code was used twice; its tokens are revoked"
            );
            let event = AuditEvent::new(EventType::OauthCodeReused, Some(code.user), None)
                .detail("client_id", code.client.as_str());
            audit::write(&txn, &*self.origin, [event], now).await?;
            txn.commit().await.store_context("commit a reused code")?;
            Ok(Redemption::Reused)
        })
        .await
    }

    async fn rotate(
        &self,
        presented: &TokenHash,
        client: &ClientId,
        replacement: NewRefreshToken,
        now: DateTime<Utc>,
        grace: Duration,
    ) -> Result<OAuthRotation, StorageError> {
        within(self.timeout, async {
            let txn = self.writer.begin().await?;
            // Locked, so that of two concurrent presentations the second sees it spent.
            let Some(token) = oauth_refresh_token::Entity::find_by_id(presented.as_str())
                .lock_exclusive()
                .one(&txn)
                .await
                .store_context("find an OAuth refresh token")?
            else {
                return Ok(OAuthRotation::Invalid);
            };
            let Some(family) =
                oauth_authorization::Entity::find_by_id(token.authorization_id.clone())
                    .one(&txn)
                    .await
                    .store_context("find a token family")?
                    .filter(|family| family.client_id == client.as_str())
            else {
                return Ok(OAuthRotation::Invalid);
            };
            if family.revoked_at.is_some() || token.expires_at <= now {
                return Ok(OAuthRotation::Invalid);
            }
            let Some(sign_in) = sign_in_of(&txn, &family.session_id).await? else {
                return Ok(OAuthRotation::Invalid);
            };
            match token.spent_at {
                None => {
                    let mut spent = token.into_active_model();
                    spent.spent_at = Set(Some(now));
                    spent
                        .update(&txn)
                        .await
                        .store_context("spend an OAuth refresh token")?;
                }
                Some(spent_at) if grace > Duration::zero() && now - spent_at <= grace => {}
                Some(_) => {
                    revoke_family(&txn, &family.id, now).await?;
                    let event = AuditEvent::new(
                        EventType::RefreshReuseDetected,
                        Some(UserId::new(family.user_id)),
                        None,
                    )
                    .detail("client_id", client.as_str());
                    audit::write(&txn, &*self.origin, [event], now).await?;
                    txn.commit()
                        .await
                        .store_context("commit a revoked family")?;
                    return Ok(OAuthRotation::Reused);
                }
            }
            insert_refresh(&txn, &family.id, replacement, now).await?;
            txn.commit()
                .await
                .store_context("commit an OAuth rotation")?;
            Ok(OAuthRotation::Rotated(Family {
                authorization: family.id.parse().map_err(|_| corrupt("family id"))?,
                client: client.clone(),
                user: UserId::new(family.user_id),
                session: family
                    .session_id
                    .parse()
                    .map_err(|_| corrupt("session id"))?,
                scopes: scopes(&family.scopes),
                auth_time: sign_in.created_at,
                method: method_of(&sign_in),
            }))
        })
        .await
    }

    async fn is_live(
        &self,
        claims: &AccessTokenClaims,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        within(self.timeout, async {
            let revoked = oauth_revoked_token::Entity::find_by_id(claims.jti.clone())
                .one(&self.db)
                .await
                .store_context("find a revoked token")?
                .is_some();
            if revoked {
                return Ok(false);
            }
            let Subject::User {
                session,
                authorization,
                ..
            } = claims.subject
            else {
                return Ok(true);
            };
            let family = oauth_authorization::Entity::find_by_id(authorization.to_string())
                .filter(oauth_authorization::Column::RevokedAt.is_null())
                .one(&self.db)
                .await
                .store_context("find a token family")?;
            let Some(family) = family.filter(|f| f.session_id == session.to_string()) else {
                return Ok(false);
            };
            Ok(sign_in_of(&self.db, &family.session_id)
                .await?
                .is_some_and(|row| row.user_id == family.user_id && row.created_at <= now))
        })
        .await
    }

    async fn revoke_refresh(
        &self,
        presented: &TokenHash,
        client: &ClientId,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        within(self.timeout, async {
            let Some(token) = oauth_refresh_token::Entity::find_by_id(presented.as_str())
                .one(&self.db)
                .await
                .store_context("find an OAuth refresh token")?
            else {
                return Ok(());
            };
            oauth_authorization::Entity::update_many()
                .col_expr(oauth_authorization::Column::RevokedAt, Expr::value(now))
                .filter(oauth_authorization::Column::Id.eq(token.authorization_id))
                .filter(oauth_authorization::Column::ClientId.eq(client.as_str()))
                .filter(oauth_authorization::Column::RevokedAt.is_null())
                .exec(self.writer.connection())
                .await
                .store_context("revoke a token family")?;
            Ok(())
        })
        .await
    }

    async fn revoke_access(
        &self,
        jti: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        within(self.timeout, async {
            let inserted = oauth_revoked_token::ActiveModel {
                jti: Set(jti.to_owned()),
                expires_at: Set(expires_at),
            }
            .insert(self.writer.connection())
            .await;
            match inserted {
                Ok(_) => Ok(()),
                // Revoked before: revocation is idempotent.
                Err(error)
                    if matches!(
                        error.sql_err(),
                        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                    ) =>
                {
                    Ok(())
                }
                Err(error) => Err(error).store_context("revoke an access token"),
            }
        })
        .await
    }
}
