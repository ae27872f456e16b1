//! The audit log's table, and the request context its events record.
//!
//! The stores write events inside the transactions of the changes they record
//! ([`write`]); where the request came from is read from the task-local context the HTTP
//! layer opens around every request ([`scope`]), so no port has to carry it. Outside a
//! request (the CLI, background work) the context is empty.

use std::cell::RefCell;
use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use shelter_domain::audit::{AuditEvent, AuditLog, AuditQuery, RecordedEvent, RequestContext};
use shelter_domain::{ClientInfo, StorageError, UserId};

use crate::entity::audit_event;
use crate::fault::{DbResultExt as _, within};

tokio::task_local! {
    static CONTEXT: RefCell<RequestContext>;
}

/// Runs `work` (one request) with `context` as where its events come from.
pub async fn scope<F: Future>(context: RequestContext, work: F) -> F::Output {
    CONTEXT.scope(RefCell::new(context), work).await
}

/// Notes the authenticated caller of the current request: the actor of what it changes.
pub fn set_actor(actor: UserId) {
    let _ = CONTEXT.try_with(|context| context.borrow_mut().actor = Some(actor));
}

/// The current request's context, or an empty one outside a request.
pub fn current() -> RequestContext {
    CONTEXT
        .try_with(|context| context.borrow().clone())
        .unwrap_or_default()
}

/// Writes `events` with the current request's context, inside `conn`'s transaction. An
/// event without an actor was done by the request's caller.
pub(crate) async fn write(
    conn: &impl ConnectionTrait,
    events: impl IntoIterator<Item = AuditEvent>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let context = current();
    let rows: Vec<audit_event::ActiveModel> = events
        .into_iter()
        .map(|event| audit_event::ActiveModel {
            time: Set(now),
            event_type: Set(event.kind.as_str().to_owned()),
            actor_id: Set(event.actor.or(context.actor).map(UserId::get)),
            user_id: Set(event.user.map(UserId::get)),
            ip: Set(context.client.ip.map(|ip| ip.to_string())),
            user_agent: Set(context.client.user_agent().map(str::to_owned)),
            request_id: Set(context.request_id.clone()),
            details: Set(serde_json::to_string(&event.details).unwrap_or_default()),
            ..Default::default()
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    audit_event::Entity::insert_many(rows)
        .exec(conn)
        .await
        .store_context("write audit events")?;
    Ok(())
}

/// Deletes the events older than `before`; how many.
pub(crate) async fn purge(
    conn: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<u64, sea_orm::DbErr> {
    Ok(audit_event::Entity::delete_many()
        .filter(audit_event::Column::Time.lt(before))
        .exec(conn)
        .await?
        .rows_affected)
}

pub struct SeaOrmAuditLog {
    db: DatabaseConnection,
    timeout: std::time::Duration,
}

impl SeaOrmAuditLog {
    pub(crate) fn new(db: DatabaseConnection, timeout: std::time::Duration) -> Self {
        Self { db, timeout }
    }
}

fn to_recorded(row: &audit_event::Model) -> Result<RecordedEvent, StorageError> {
    let unexpected = |what: &str| {
        StorageError::Unexpected(anyhow::anyhow!("stored audit event {}: {what}", row.id))
    };
    Ok(RecordedEvent {
        id: row.id,
        time: row.time,
        kind: row.event_type.parse().map_err(|_| unexpected("type"))?,
        actor: row.actor_id.map(UserId::new),
        user: row.user_id.map(UserId::new),
        client: ClientInfo::new(
            row.ip.as_deref().and_then(|ip| ip.parse().ok()),
            row.user_agent.as_deref(),
        ),
        request_id: row.request_id.clone(),
        details: serde_json::from_str::<BTreeMap<String, String>>(&row.details)
            .map_err(|_| unexpected("details"))?,
    })
}

#[async_trait]
impl AuditLog for SeaOrmAuditLog {
    async fn record(&self, event: AuditEvent, now: DateTime<Utc>) -> Result<(), StorageError> {
        within(self.timeout, write(&self.db, [event], now)).await
    }

    async fn list(&self, query: AuditQuery) -> Result<Vec<RecordedEvent>, StorageError> {
        within(self.timeout, async {
            let mut select = audit_event::Entity::find();
            if let Some(user) = query.user {
                select = select.filter(audit_event::Column::UserId.eq(user.get()));
            }
            if let Some(kind) = query.kind {
                select = select.filter(audit_event::Column::EventType.eq(kind.as_str()));
            }
            if let Some(before) = query.before {
                select = select.filter(audit_event::Column::Id.lt(before));
            }
            select
                .order_by_desc(audit_event::Column::Id)
                .limit(u64::from(query.limit))
                .all(&self.db)
                .await
                .store_context("read audit events")?
                .iter()
                .map(to_recorded)
                .collect()
        })
        .await
    }
}
