//! `SeaOrmUserRepository`: users in SQLite or PostgreSQL.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult,
    IdenStatic as _, IntoActiveModel, Iterable as _, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait as _, Select, Statement,
};
use shelter_domain::audit::{AuditEvent, EventType, RequestOrigin, events_of};
use shelter_domain::ports::UserRepository;
use shelter_domain::{
    EmailAddress, ListSink, ListedUser, NewUser, Page, PasswordHash, PendingToken, SessionId,
    SignInCheck, SignInProof, SpentLink, StoreError, StoredUser, TokenHash, TokenPurpose, Totp,
    User, UserChanges, UserFilter, UserId, Username,
};

use tokio::sync::Notify;

use crate::audit;
use crate::entity::{one_time_token, recovery_code, user};
use crate::fault::{DbResultExt as _, classify, retrying, within};
use crate::outbox::store_token_and_queue;
use crate::pipelined::{Queries, Shared};
use crate::sessions::revoke_all_of;
use crate::transaction::Writer;

pub struct SeaOrmUserRepository {
    db: DatabaseConnection,
    writer: Writer,
    outbox: Arc<Notify>,
    /// The longest any one operation may take before it is `Unavailable`.
    timeout: Duration,
    origin: Arc<dyn RequestOrigin>,
    /// PostgreSQL's shared connections for the hottest reads, where they may be used.
    shared: Option<Arc<Shared>>,
}

impl SeaOrmUserRepository {
    pub(crate) fn new(
        db: DatabaseConnection,
        writer: Writer,
        outbox: Arc<Notify>,
        timeout: Duration,
        origin: Arc<dyn RequestOrigin>,
    ) -> Self {
        Self {
            db,
            writer,
            outbox,
            timeout,
            origin,
            shared: None,
        }
    }

    pub(crate) fn with_shared(mut self, shared: Option<Arc<Shared>>) -> Self {
        self.shared = shared;
        self
    }

    async fn begin_write(&self) -> Result<DatabaseTransaction, StoreError> {
        Ok(self.writer.begin().await?)
    }

    /// Spends an unexpired, unused one-time token of `purpose` inside `txn` and locks its
    /// user; `None` when either is missing.
    async fn spend_token(
        txn: &DatabaseTransaction,
        purpose: TokenPurpose,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<(one_time_token::Model, user::Model)>, StoreError> {
        let Some(row) = one_time_token::Entity::find()
            .filter(one_time_token::Column::TokenHash.eq(token.as_str()))
            .filter(one_time_token::Column::Purpose.eq(purpose.as_str()))
            .filter(one_time_token::Column::UsedAt.is_null())
            .filter(one_time_token::Column::ExpiresAt.gt(now))
            .lock_exclusive()
            .one(txn)
            .await
            .store_context("find one-time token")?
        else {
            return Ok(None);
        };
        let mut spent = row.clone().into_active_model();
        spent.used_at = Set(Some(now));
        spent
            .update(txn)
            .await
            .store_context("spend one-time token")?;
        let owner = user::Entity::find_by_id(row.user_id)
            .lock_exclusive()
            .one(txn)
            .await
            .store_context("lock the user")?;
        Ok(owner.map(|owner| (row, owner)))
    }

    /// Marks a locked user's current address verified (with its event) unless it is already.
    async fn mark_verified(
        &self,
        txn: &DatabaseTransaction,
        current: user::Model,
        now: DateTime<Utc>,
    ) -> Result<user::Model, StoreError> {
        if current.email_verified {
            return Ok(current);
        }
        let revision = current.revision;
        let mut model = current.into_active_model();
        model.email_verified = Set(true);
        model.revision = Set(revision + 1);
        model.updated_at = Set(now);
        let updated = model.update(txn).await.store_context("verify email")?;
        let verified = AuditEvent::new(
            EventType::EmailVerified,
            Some(UserId::new(updated.id)),
            None,
        );
        audit::write(txn, &*self.origin, [verified], now).await?;
        Ok(updated)
    }

    /// The user whose `column` equals `value` ignoring case; `lower()` on both sides makes
    /// the query use the column's unique expression index.
    async fn find_by_lowered(
        &self,
        column: user::Column,
        value: &str,
    ) -> Result<Option<User>, StoreError> {
        user::Entity::find()
            .filter(ExprTrait::eq(
                Expr::expr(Func::lower(Expr::col(column))),
                value.to_lowercase(),
            ))
            .one(&self.db)
            .await
            .store_context("find user")?
            .map(to_domain)
            .transpose()
    }

    /// Locks the target row, checks it exists and has the expected revision, and when the
    /// write takes away an active superuser, checks another one remains. The target and
    /// the active superusers are locked in one statement and in id order, so writes that
    /// remove superusers serialise instead of both succeeding, and any two of them take
    /// their locks in the same order (one order for every writer is what rules out a
    /// deadlock; `retrying` covers what PostgreSQL aborts all the same).
    async fn lock_for_write(
        txn: &DatabaseTransaction,
        id: UserId,
        expected_revision: Option<i64>,
        removes_superuser: impl FnOnce(&User) -> bool,
    ) -> Result<user::Model, StoreError> {
        let locked = user::Entity::find()
            .filter(
                Condition::any().add(user::Column::Id.eq(id.get())).add(
                    Condition::all()
                        .add(user::Column::IsActive.eq(true))
                        .add(user::Column::IsSuperuser.eq(true)),
                ),
            )
            .order_by_asc(user::Column::Id)
            .lock_exclusive()
            .all(txn)
            .await
            .store_context("lock the user and the active superusers")?;
        let (mut target, others): (Vec<_>, Vec<_>) =
            locked.into_iter().partition(|row| row.id == id.get());
        let current = target.pop().ok_or(StoreError::NotFound)?;
        if expected_revision.is_some_and(|revision| revision != current.revision) {
            return Err(StoreError::RevisionMismatch);
        }
        let other_superusers = others
            .iter()
            .filter(|row| row.is_active && row.is_superuser)
            .count();
        if other_superusers == 0 && removes_superuser(&to_domain(current.clone())?) {
            return Err(StoreError::LastSuperuser);
        }
        Ok(current)
    }
}

/// A user and whether a session is a live one of theirs: `$1` the session, `$2` the user,
/// `$3` now. Built once rather than per request, since every uncached authenticated request
/// runs it (built each time, it cost about 14 % of such a request here); "live" is what
/// `sessions::live` says, and the persistence tests hold both to the same sessions.
static SIGNED_IN_POSTGRES: LazyLock<String> = LazyLock::new(|| signed_in_sql(["$1", "$2", "$3"]));

/// What PostgreSQL's shared connections read (see `pipelined`). The page is the one
/// `summaries` builds for the pool, so both paths show the same columns; sea-query writes
/// its placeholders as `LIMIT $1 OFFSET $2` (the values here are not used). The total is
/// kept by triggers with every insert and delete (see the `user_count` migration).
pub(crate) fn shared_queries() -> Queries {
    Queries {
        signed_in: SIGNED_IN_POSTGRES.as_str(),
        page: summaries(user::Entity::find())
            .limit(Page::MAX_LIMIT)
            .offset(0)
            .build(DbBackend::Postgres)
            .sql,
        total: USER_TOTAL,
    }
}

const USER_TOTAL: &str = "SELECT total FROM user_count WHERE id = 1";

/// The same for SQLite, whose numbered parameters are `?N`.
static SIGNED_IN_SQLITE: LazyLock<String> = LazyLock::new(|| signed_in_sql(["?1", "?2", "?3"]));

/// The user's row and whether a session of theirs is live, in one statement. The columns
/// are named, not `"users".*`: SQLite expands a star when a connection prepares the
/// statement, from the schema that connection last read, and sqlx keeps the column count
/// of that moment. A connection that read the schema before a migration added a column
/// (another process's `shelter migrate`, say) gets one column more than sqlx expects, and
/// sqlx's worker panics: seen in the persistence tests, half the time, when writes were
/// tried on a connection of their own.
fn signed_in_sql([session, user, now]: [&str; 3]) -> String {
    let columns = user::Column::iter()
        .map(|column| format!(r#""users"."{}""#, column.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"SELECT {columns}, EXISTS (SELECT 1 FROM "sessions" WHERE "sessions"."id" = {session} AND "sessions"."user_id" = {user} AND "sessions"."ended_at" IS NULL AND "sessions"."expires_at" > {now}) AS "live" FROM "users" WHERE "users"."id" = {user}"#
    )
}

#[async_trait]
impl UserRepository for SeaOrmUserRepository {
    async fn insert(
        &self,
        new: NewUser,
        verification: Option<PendingToken>,
    ) -> Result<User, StoreError> {
        within(self.timeout, async {
            let now = new.now();
            let txn = self.begin_write().await?;
            let model = user::ActiveModel {
                email: Set(new.email().as_str().to_owned()),
                username: Set(new.username().as_str().to_owned()),
                password_hash: Set(new.password_hash().as_str().to_owned()),
                password_set: Set(new.password_set()),
                is_active: Set(true),
                is_superuser: Set(new.is_superuser()),
                email_verified: Set(new.email_verified()),
                token_version: Set(1),
                revision: Set(1),
                created_at: Set(new.now()),
                updated_at: Set(new.now()),
                totp_secret: Set(None),
                totp_enabled: Set(false),
                totp_last_step: Set(None),
                ..Default::default()
            }
            .insert(&txn)
            .await
            .map_err(|e| classify(e, "insert user"))?;
            if let Some(pending) = &verification {
                store_token_and_queue(
                    &txn,
                    UserId::new(model.id),
                    TokenPurpose::VerifyEmail,
                    pending,
                    now,
                )
                .await?;
            }
            let id = UserId::new(model.id);
            let signup = AuditEvent::new(EventType::Signup, Some(id), None);
            audit::write(&txn, &*self.origin, [signup], now).await?;
            if let Some(identity) = new.identity() {
                crate::identities::insert(&txn, id, identity, now)
                    .await
                    .map_err(|e| classify(e, "link the new user's provider account"))?;
                audit::write(
                    &txn,
                    &*self.origin,
                    [crate::identities::linked(id, identity)],
                    now,
                )
                .await?;
            }
            txn.commit().await.store_context("commit signup")?;
            if verification.is_some() {
                self.outbox.notify_one();
            }
            to_domain(model)
        })
        .await
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        within(self.timeout, async {
            user::Entity::find_by_id(id.get())
                .one(&self.db)
                .await
                .store_context("find user by id")?
                .map(to_domain)
                .transpose()
        })
        .await
    }

    async fn signed_in(
        &self,
        id: UserId,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<(User, bool)>, StoreError> {
        if let Some(shared) = &self.shared {
            // Bounded in time by the shared connection itself, which must know of a timeout
            // to drop a connection gone silent.
            return shared
                .signed_in(id.get(), &session.to_string(), now)
                .await?
                .map(|(model, live)| Ok((to_domain(model)?, live)))
                .transpose();
        }
        within(self.timeout, async {
            // One statement, written out so that nothing is built per request; the driver
            // prepares it once per pooled connection.
            let backend = self.db.get_database_backend();
            let sql = match backend {
                DbBackend::Postgres => SIGNED_IN_POSTGRES.as_str(),
                _ => SIGNED_IN_SQLITE.as_str(),
            };
            let statement = Statement::from_sql_and_values(
                backend,
                sql,
                [session.to_string().into(), id.get().into(), now.into()],
            );
            let Some(row) = self
                .db
                .query_one_raw(statement)
                .await
                .store_context("read a signed-in user")?
            else {
                return Ok(None);
            };
            let model = user::Model::from_query_result(&row, "")
                .store_context("read a signed-in user's row")?;
            let live: bool = row
                .try_get("", "live")
                .store_context("read whether the sign-in is live")?;
            Ok(Some((to_domain(model)?, live)))
        })
        .await
    }

    async fn find_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError> {
        within(
            self.timeout,
            self.find_by_lowered(user::Column::Email, email.as_str()),
        )
        .await
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        within(
            self.timeout,
            self.find_by_lowered(user::Column::Username, username.as_str()),
        )
        .await
    }

    async fn list(
        &self,
        filter: &UserFilter,
        page: Page,
        sink: &mut ListSink,
    ) -> Result<u64, StoreError> {
        if let Some(shared) = self.shared.as_ref().filter(|_| filter.is_everyone()) {
            // Bounded in time by the shared connection itself, as for `signed_in`.
            return shared.page(page, sink).await;
        }
        within(self.timeout, async {
            let shown = user::Entity::find().filter(condition(filter));
            let rows = summaries(shown.clone())
                .offset(page.skip())
                .limit(page.limit())
                .into_tuple::<SummaryRow>()
                .all(&self.db)
                .await
                .store_context("list users")?;
            for row in &rows {
                sink.user(listed(row));
            }
            let total = if filter.is_everyone() {
                self.db
                    .query_one_raw(Statement::from_string(
                        self.db.get_database_backend(),
                        USER_TOTAL,
                    ))
                    .await
                    .store_context("count users")?
                    .map(|row| row.try_get_by_index::<i64>(0))
                    .transpose()
                    .store_context("read the user count")?
                    .and_then(|total| u64::try_from(total).ok())
                    .unwrap_or_default()
            } else {
                shown
                    .count(&self.db)
                    .await
                    .store_context("count the users shown")?
            };
            Ok(total)
        })
        .await
    }

    async fn update(
        &self,
        id: UserId,
        expected_revision: Option<i64>,
        changes: UserChanges,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let changes = &changes;
        retrying(|| {
            within(self.timeout, async move {
                let txn = self.begin_write().await?;
                let current =
                    Self::lock_for_write(&txn, id, expected_revision, |user| changes.demotes(user))
                        .await?;
                let (revision, token_version) = (current.revision, current.token_version);
                let events = events_of(changes, id, current.totp_enabled);
                let mut model = current.into_active_model();
                if let Some(email) = changes.new_email() {
                    model.email = Set(email.as_str().to_owned());
                }
                if let Some(username) = changes.new_username() {
                    model.username = Set(username.as_str().to_owned());
                }
                if let Some(hash) = changes.new_password_hash() {
                    model.password_hash = Set(hash.as_str().to_owned());
                    model.password_set = Set(true);
                }
                if let Some(active) = changes.is_active() {
                    model.is_active = Set(active);
                }
                if let Some(superuser) = changes.is_superuser() {
                    model.is_superuser = Set(superuser);
                }
                if let Some(verified) = changes.email_verified() {
                    model.email_verified = Set(verified);
                }
                if let Some(totp) = changes.new_totp() {
                    model.totp_secret = Set(totp.sealed_secret().map(<[u8]>::to_vec));
                    model.totp_enabled = Set(totp.is_on());
                    model.totp_last_step = Set(None);
                }
                if let Some(codes) = changes.new_recovery_codes() {
                    replace_recovery_codes(&txn, id, codes).await?;
                }
                if changes.revokes_tokens() {
                    model.token_version = Set(token_version + 1);
                    revoke_all_of(&txn, id.get(), now).await?;
                } else if changes.ends_sessions() {
                    // A deactivation: the sign-ins stay (reactivation revives them), but the
                    // applications signed in through them are told.
                    crate::logouts::queue_all_of(&txn, id.get(), now).await?;
                }
                model.revision = Set(revision + 1);
                model.updated_at = Set(now);
                let updated = model
                    .update(&txn)
                    .await
                    .map_err(|e| classify(e, "update user"))?;
                if let Some(pending) = changes.verification() {
                    store_token_and_queue(&txn, id, TokenPurpose::VerifyEmail, pending, now)
                        .await?;
                }
                audit::write(&txn, &*self.origin, events, now).await?;
                txn.commit().await.store_context("commit user update")?;
                if changes.verification().is_some() {
                    self.outbox.notify_one();
                }
                to_domain(updated)
            })
        })
        .await
    }

    async fn delete(&self, id: UserId, expected_revision: Option<i64>) -> Result<(), StoreError> {
        retrying(|| {
            within(self.timeout, async move {
                let txn = self.begin_write().await?;
                Self::lock_for_write(&txn, id, expected_revision, User::is_active_superuser)
                    .await?;
                crate::logouts::queue_all_of(&txn, id.get(), Utc::now()).await?;
                user::Entity::delete_by_id(id.get())
                    .exec(&txn)
                    .await
                    .store_context("delete user")?;
                let deleted = AuditEvent::new(EventType::UserDeleted, Some(id), None);
                audit::write(&txn, &*self.origin, [deleted], Utc::now()).await?;
                txn.commit().await.store_context("commit user deletion")?;
                Ok(())
            })
        })
        .await
    }

    async fn create_one_time_token(
        &self,
        user: UserId,
        purpose: TokenPurpose,
        token: PendingToken,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        within(self.timeout, async {
            let txn = self.begin_write().await?;
            if matches!(purpose, TokenPurpose::VerifyEmail | TokenPurpose::SignIn) {
                one_time_token::Entity::update_many()
                    .col_expr(one_time_token::Column::UsedAt, Expr::value(now))
                    .filter(one_time_token::Column::UserId.eq(user.get()))
                    .filter(one_time_token::Column::Purpose.eq(purpose.as_str()))
                    .filter(one_time_token::Column::UsedAt.is_null())
                    .exec(&txn)
                    .await
                    .store_context("retire earlier links")?;
            }
            store_token_and_queue(&txn, user, purpose, &token, now).await?;
            let requested = match purpose {
                TokenPurpose::ResetPassword => Some(EventType::PasswordResetRequested),
                TokenPurpose::SignIn => Some(EventType::EmailCodeSent),
                TokenPurpose::VerifyEmail => None,
            };
            if let Some(kind) = requested {
                let event = AuditEvent::new(kind, Some(user), None);
                audit::write(&txn, &*self.origin, [event], now).await?;
            }
            txn.commit().await.store_context("commit one-time token")?;
            self.outbox.notify_one();
            Ok(())
        })
        .await
    }

    async fn link_state(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<SpentLink, StoreError> {
        within(self.timeout, async {
            let row = one_time_token::Entity::find()
                .filter(one_time_token::Column::TokenHash.eq(token.as_str()))
                .filter(one_time_token::Column::Purpose.eq(purpose.as_str()))
                .one(&self.db)
                .await
                .store_context("look up a one-time token")?;
            Ok(match row {
                None => SpentLink::Unknown,
                Some(row) if row.used_at.is_some() => SpentLink::Used,
                Some(row) if row.expires_at <= now => SpentLink::Expired,
                Some(_) => SpentLink::Usable,
            })
        })
        .await
    }

    async fn verify_email(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError> {
        within(self.timeout, async {
            let txn = self.begin_write().await?;
            let Some((spent, current)) =
                Self::spend_token(&txn, TokenPurpose::VerifyEmail, token, now).await?
            else {
                return Ok(None);
            };
            // A link sent to an address the user has since changed proves nothing.
            if current.email != spent.email {
                return Ok(None);
            }
            let updated = self.mark_verified(&txn, current, now).await?;
            txn.commit().await.store_context("commit verification")?;
            to_domain(updated).map(Some)
        })
        .await
    }

    async fn spend_sign_in(
        &self,
        proof: SignInProof,
        max_failures: u32,
        now: DateTime<Utc>,
    ) -> Result<SignInCheck, StoreError> {
        within(self.timeout, async {
            let txn = self.begin_write().await?;
            let live = one_time_token::Entity::find()
                .filter(one_time_token::Column::Purpose.eq(TokenPurpose::SignIn.as_str()))
                .filter(one_time_token::Column::UsedAt.is_null())
                .filter(one_time_token::Column::ExpiresAt.gt(now));
            let live = match &proof {
                SignInProof::Link(token) => {
                    live.filter(one_time_token::Column::TokenHash.eq(token.as_str()))
                }
                // A newer email retires the older, so a user has one live code at most.
                SignInProof::Code { user, .. } => {
                    live.filter(one_time_token::Column::UserId.eq(user.get()))
                }
            };
            let Some(row) = live
                .lock_exclusive()
                .one(&txn)
                .await
                .store_context("find a sign-in email")?
            else {
                return Ok(SignInCheck::Missing);
            };
            if let SignInProof::Code { code, .. } = &proof {
                let right = row
                    .code_hash
                    .as_deref()
                    .and_then(TokenHash::from_stored)
                    .is_some_and(|stored| stored.matches(code));
                if !right {
                    let failures = row.failures + 1;
                    let mut model = row.into_active_model();
                    model.failures = Set(failures);
                    if u32::try_from(failures).unwrap_or(u32::MAX) >= max_failures {
                        model.used_at = Set(Some(now));
                    }
                    model
                        .update(&txn)
                        .await
                        .store_context("count a wrong code")?;
                    txn.commit().await.store_context("commit a wrong code")?;
                    return Ok(SignInCheck::Wrong);
                }
            }
            let Some(current) = user::Entity::find_by_id(row.user_id)
                .lock_exclusive()
                .one(&txn)
                .await
                .store_context("lock the user")?
            else {
                return Ok(SignInCheck::Missing);
            };
            if current.email != row.email {
                return Ok(SignInCheck::Missing);
            }
            let mut spent = row.into_active_model();
            spent.used_at = Set(Some(now));
            spent
                .update(&txn)
                .await
                .store_context("spend a sign-in email")?;
            let updated = self.mark_verified(&txn, current, now).await?;
            txn.commit().await.store_context("commit a sign-in email")?;
            to_domain(updated).map(SignInCheck::Right)
        })
        .await
    }

    async fn use_totp_step(&self, id: UserId, step: i64) -> Result<bool, StoreError> {
        within(self.timeout, async {
            let used = user::Entity::update_many()
                .col_expr(user::Column::TotpLastStep, Expr::value(step))
                .filter(user::Column::Id.eq(id.get()))
                .filter(user::Column::TotpEnabled.eq(true))
                .filter(
                    Condition::any()
                        .add(user::Column::TotpLastStep.is_null())
                        .add(user::Column::TotpLastStep.lt(step)),
                )
                .exec(self.writer.connection())
                .await
                .store_context("use a TOTP step")?;
            Ok(used.rows_affected == 1)
        })
        .await
    }

    async fn spend_recovery_code(
        &self,
        id: UserId,
        code: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        within(self.timeout, async {
            // One row per code: spend the lowest id among the unused ones that match, so a
            // code stored twice by chance is still spent once per use.
            let Some(row) = recovery_code::Entity::find()
                .filter(recovery_code::Column::UserId.eq(id.get()))
                .filter(recovery_code::Column::CodeHash.eq(code.as_str()))
                .filter(recovery_code::Column::UsedAt.is_null())
                .one(&self.db)
                .await
                .store_context("find a recovery code")?
            else {
                return Ok(false);
            };
            let spent = recovery_code::Entity::update_many()
                .col_expr(recovery_code::Column::UsedAt, Expr::value(now))
                .filter(recovery_code::Column::Id.eq(row.id))
                .filter(recovery_code::Column::UsedAt.is_null())
                .exec(self.writer.connection())
                .await
                .store_context("spend a recovery code")?;
            Ok(spent.rows_affected == 1)
        })
        .await
    }

    async fn reset_password(
        &self,
        token: &TokenHash,
        new_hash: PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError> {
        within(self.timeout, async {
            let txn = self.begin_write().await?;
            let Some((spent, current)) =
                Self::spend_token(&txn, TokenPurpose::ResetPassword, token, now).await?
            else {
                return Ok(None);
            };
            // Other reset links of this user die with this one.
            one_time_token::Entity::update_many()
                .col_expr(
                    one_time_token::Column::UsedAt,
                    sea_orm::sea_query::Expr::value(now),
                )
                .filter(one_time_token::Column::UserId.eq(spent.user_id))
                .filter(one_time_token::Column::Purpose.eq(TokenPurpose::ResetPassword.as_str()))
                .filter(one_time_token::Column::UsedAt.is_null())
                .exec(&txn)
                .await
                .store_context("spend other reset tokens")?;
            revoke_all_of(&txn, spent.user_id, now).await?;
            let (revision, token_version) = (current.revision, current.token_version);
            let mut model = current.into_active_model();
            model.password_hash = Set(new_hash.as_str().to_owned());
            model.password_set = Set(true);
            model.token_version = Set(token_version + 1);
            model.revision = Set(revision + 1);
            model.updated_at = Set(now);
            let updated = model
                .update(&txn)
                .await
                .store_context("set the new password")?;
            let reset = AuditEvent::new(
                EventType::PasswordReset,
                Some(UserId::new(updated.id)),
                None,
            );
            audit::write(&txn, &*self.origin, [reset], now).await?;
            txn.commit().await.store_context("commit password reset")?;
            to_domain(updated).map(Some)
        })
        .await
    }
}

/// Replaces the recovery codes of `user` with `codes` (none: deletes them).
async fn replace_recovery_codes(
    conn: &impl ConnectionTrait,
    user: UserId,
    codes: &[TokenHash],
) -> Result<(), StoreError> {
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user.get()))
        .exec(conn)
        .await
        .store_context("delete recovery codes")?;
    if !codes.is_empty() {
        recovery_code::Entity::insert_many(codes.iter().map(|code| recovery_code::ActiveModel {
            user_id: Set(user.get()),
            code_hash: Set(code.as_str().to_owned()),
            used_at: Set(None),
            ..Default::default()
        }))
        .exec(conn)
        .await
        .store_context("store recovery codes")?;
    }
    Ok(())
}

/// The rows `filter` shows. The search is a substring of the lower-cased email or
/// username, with LIKE's wildcards in it taken literally.
fn condition(filter: &UserFilter) -> Condition {
    let mut condition = Condition::all();
    if let Some(text) = filter.search_text() {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        let contains = |column: user::Column| {
            Expr::expr(Func::lower(Expr::col(column)))
                .like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        condition = condition.add(
            Condition::any()
                .add(contains(user::Column::Email))
                .add(contains(user::Column::Username)),
        );
    }
    if let Some(active) = filter.is_active {
        condition = condition.add(user::Column::IsActive.eq(active));
    }
    if let Some(superuser) = filter.is_superuser {
        condition = condition.add(user::Column::IsSuperuser.eq(superuser));
    }
    condition
}

/// A page's columns, read by position: decoding a hundred whole rows by name spent more
/// time finding columns (and copying hashes and sealed secrets nobody shows) than reading.
type SummaryRow = (
    i64,
    String,
    String,
    bool,
    bool,
    bool,
    bool,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn summaries(shown: Select<user::Entity>) -> Select<user::Entity> {
    shown
        .select_only()
        .columns([
            user::Column::Id,
            user::Column::Email,
            user::Column::Username,
            user::Column::IsActive,
            user::Column::IsSuperuser,
            user::Column::EmailVerified,
        ])
        // Totp::On, as to_domain reads it: enabled, with a secret.
        .expr(
            Expr::col(user::Column::TotpEnabled)
                .and(Expr::col(user::Column::TotpSecret).is_not_null()),
        )
        .columns([user::Column::CreatedAt, user::Column::UpdatedAt])
        .order_by_asc(user::Column::Id)
}

fn listed(row: &SummaryRow) -> ListedUser<&str> {
    let (
        id,
        email,
        username,
        is_active,
        is_superuser,
        email_verified,
        mfa_enabled,
        created,
        updated,
    ) = row;
    ListedUser {
        id: UserId::new(*id),
        email,
        username,
        is_active: *is_active,
        is_superuser: *is_superuser,
        email_verified: *email_verified,
        mfa_enabled: *mfa_enabled,
        created_at: *created,
        updated_at: *updated,
    }
}

// Rows were valid when written; a row that no longer parses was changed behind our back,
// which is an error to surface, not to paper over.
fn stored_email(id: i64, email: &str) -> Result<EmailAddress, StoreError> {
    Ok(EmailAddress::parse(email)
        .with_context(|| format!("stored email of user {id} is invalid"))?)
}

fn stored_username(id: i64, username: &str) -> Result<Username, StoreError> {
    Ok(Username::parse(username)
        .with_context(|| format!("stored username of user {id} is invalid"))?)
}

fn to_domain(model: user::Model) -> Result<User, StoreError> {
    Ok(StoredUser {
        id: UserId::new(model.id),
        email: stored_email(model.id, &model.email)?,
        username: stored_username(model.id, &model.username)?,
        password_hash: PasswordHash::from_phc(model.password_hash),
        password_set: model.password_set,
        is_active: model.is_active,
        is_superuser: model.is_superuser,
        email_verified: model.email_verified,
        totp: match (model.totp_secret, model.totp_enabled) {
            (Some(sealed_secret), true) => Totp::On { sealed_secret },
            (Some(sealed_secret), false) => Totp::Pending { sealed_secret },
            (None, _) => Totp::Off,
        },
        token_version: model.token_version,
        revision: model.revision,
        created_at: model.created_at,
        updated_at: model.updated_at,
    }
    .into())
}
