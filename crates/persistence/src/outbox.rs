//! The email outbox: rows queued inside the transactions that cause them, and
//! `SeaOrmEmailOutbox`, the delivery workers' view of the queue.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use secrecy::{ExposeSecret as _, SecretString};
use shelter_domain::ports::EmailOutbox;
use shelter_domain::{
    EmailAddress, EmailKind, OutboundEmail, PendingToken, QueuedEmail, SecretToken, StorageError,
    TokenPurpose, UserId,
};

use crate::entity::{email_outbox, one_time_token};
use crate::fault::{DbResultExt as _, within};
use crate::transaction::Writer;

const PENDING: &str = "pending";
const SENDING: &str = "sending";
pub(crate) const SENT: &str = "sent";
const FAILED: &str = "failed";

/// Emails waiting to be sent (or retried), for the `shelter_outbox_pending` gauge.
pub(crate) async fn pending(connection: &impl ConnectionTrait) -> Result<u64, sea_orm::DbErr> {
    email_outbox::Entity::find()
        .filter(email_outbox::Column::Status.eq(PENDING))
        .count(connection)
        .await
}

/// Stores a one-time token (hashed) and queues the email carrying it, inside `txn`.
pub(crate) async fn store_token_and_queue(
    txn: &impl ConnectionTrait,
    user: UserId,
    purpose: TokenPurpose,
    pending: &PendingToken,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    one_time_token::ActiveModel {
        user_id: Set(user.get()),
        purpose: Set(purpose.as_str().to_owned()),
        token_hash: Set(pending.hash().as_str().to_owned()),
        code_hash: Set(pending.code_hash().map(|hash| hash.as_str().to_owned())),
        failures: Set(0),
        email: Set(pending.email().to.as_str().to_owned()),
        expires_at: Set(pending.expires_at()),
        used_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await
    .store_context("store one-time token")?;
    let email = pending.email();
    let mut payload =
        serde_json::json!({"username": email.username, "token": email.token.expose()});
    if let Some(code) = &email.code {
        payload["code"] = code.expose_secret().into();
    }
    email_outbox::ActiveModel {
        recipient: Set(email.to.as_str().to_owned()),
        kind: Set(email.kind.as_str().to_owned()),
        payload: Set(payload.to_string()),
        status: Set(PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        locked_until: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        sent_at: Set(None),
        ..Default::default()
    }
    .insert(txn)
    .await
    .store_context("queue email")?;
    Ok(())
}

pub struct SeaOrmEmailOutbox {
    writer: Writer,
    /// The longest any one operation may take before it is `Unavailable`.
    timeout: std::time::Duration,
}

impl SeaOrmEmailOutbox {
    pub(crate) fn new(writer: Writer, timeout: std::time::Duration) -> Self {
        Self { writer, timeout }
    }

    async fn set(
        &self,
        id: i64,
        change: impl FnOnce(&mut email_outbox::ActiveModel),
    ) -> Result<(), StorageError> {
        let mut model = email_outbox::ActiveModel {
            id: Set(id),
            ..Default::default()
        };
        change(&mut model);
        email_outbox::Entity::update(model)
            .exec(self.writer.connection())
            .await
            .store_context("update outbox row")?;
        Ok(())
    }
}

/// Error texts are kept short: they are for operators, and a server may answer at length.
fn truncated(error: &str) -> String {
    error.chars().take(1000).collect()
}

fn to_queued(row: &email_outbox::Model) -> anyhow::Result<QueuedEmail> {
    let payload: serde_json::Value = serde_json::from_str(&row.payload).context("payload")?;
    let field = |name: &str| {
        payload[name]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("payload has no {name}"))
    };
    Ok(QueuedEmail {
        id: row.id,
        attempts: u32::try_from(row.attempts).unwrap_or(u32::MAX),
        email: OutboundEmail {
            to: EmailAddress::parse(&row.recipient).context("recipient")?,
            kind: EmailKind::parse(&row.kind).context("kind")?,
            username: field("username")?,
            token: SecretToken::presented(&field("token")?),
            code: payload["code"].as_str().map(SecretString::from),
        },
    })
}

#[async_trait]
impl EmailOutbox for SeaOrmEmailOutbox {
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<QueuedEmail>, StorageError> {
        within(self.timeout, async {
            let txn = self.writer.begin().await?;
            let due = Condition::any()
                .add(
                    Condition::all()
                        .add(email_outbox::Column::Status.eq(PENDING))
                        .add(email_outbox::Column::NextAttemptAt.lte(now)),
                )
                .add(
                    Condition::all()
                        .add(email_outbox::Column::Status.eq(SENDING))
                        .add(email_outbox::Column::LockedUntil.lt(now)),
                );
            // SKIP LOCKED: a second instance's worker takes the next rows instead of waiting
            // for these. (A no-op on SQLite, whose IMMEDIATE transaction already serialises.)
            let rows = email_outbox::Entity::find()
                .filter(due)
                .order_by_asc(email_outbox::Column::Id)
                .limit(u64::from(limit))
                .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                .all(&txn)
                .await
                .store_context("select due emails")?;
            let mut claimed = Vec::with_capacity(rows.len());
            for row in rows {
                let attempts = row.attempts + 1;
                let queued = to_queued(&row);
                let mut model = row.into_active_model();
                model.attempts = Set(attempts);
                match queued {
                    Ok(mut queued) => {
                        model.status = Set(SENDING.to_owned());
                        model.locked_until = Set(Some(now + lease));
                        queued.attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
                        claimed.push(queued);
                    }
                    Err(error) => {
                        tracing::error!(
                            error = format!("{error:#}"),
                            "unreadable outbox row; marked failed"
                        );
                        model.status = Set(FAILED.to_owned());
                        model.last_error = Set(Some(truncated(&format!("unreadable: {error:#}"))));
                    }
                }
                model.update(&txn).await.store_context("lease email")?;
            }
            txn.commit().await.store_context("commit claim")?;
            Ok(claimed)
        })
        .await
    }

    async fn renew_lease(&self, ids: &[i64], until: DateTime<Utc>) -> Result<(), StorageError> {
        if ids.is_empty() {
            return Ok(());
        }
        within(self.timeout, async {
            email_outbox::Entity::update_many()
                .col_expr(email_outbox::Column::LockedUntil, Expr::value(until))
                .filter(email_outbox::Column::Id.is_in(ids.iter().copied()))
                .filter(email_outbox::Column::Status.eq(SENDING))
                .exec(self.writer.connection())
                .await
                .store_context("renew the lease of emails being sent")?;
            Ok(())
        })
        .await
    }

    async fn mark_sent(&self, id: i64, now: DateTime<Utc>) -> Result<(), StorageError> {
        within(self.timeout, async {
            self.set(id, |m| {
                m.status = Set(SENT.to_owned());
                m.sent_at = Set(Some(now));
                m.locked_until = Set(None);
                m.last_error = Set(None);
                m.payload = Set("{}".to_owned());
            })
            .await
        })
        .await
    }

    async fn retry_at(&self, id: i64, at: DateTime<Utc>, error: &str) -> Result<(), StorageError> {
        within(self.timeout, async {
            let error = truncated(error);
            self.set(id, |m| {
                m.status = Set(PENDING.to_owned());
                m.next_attempt_at = Set(at);
                m.locked_until = Set(None);
                m.last_error = Set(Some(error));
            })
            .await
        })
        .await
    }

    async fn mark_failed(&self, id: i64, error: &str) -> Result<(), StorageError> {
        within(self.timeout, async {
            let error = truncated(error);
            self.set(id, |m| {
                m.status = Set(FAILED.to_owned());
                m.locked_until = Set(None);
                m.last_error = Set(Some(error));
                m.payload = Set("{}".to_owned());
            })
            .await
        })
        .await
    }
}
