//! The audit log's table.
//!
//! The stores write events inside the transactions of the changes they record
//! ([`write`]); where the request came from is asked of the `RequestOrigin` that
//! composition hands to the [`Database`](crate::Database), so no port method has to
//! carry it. Outside a request (the CLI, background work) it is empty.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use shelter_domain::audit::{AuditEvent, AuditLog, AuditQuery, RecordedEvent, RequestOrigin};
use shelter_domain::{ClientInfo, StorageError, UserId};

use crate::entity::audit_event;
use crate::fault::{DbResultExt as _, within};
use crate::transaction::Writer;

/// Writes `events` with the context of the request `origin` is serving, inside `conn`'s
/// transaction. An event without an actor was done by the request's caller.
pub(crate) async fn write(
    conn: &impl ConnectionTrait,
    origin: &dyn RequestOrigin,
    events: impl IntoIterator<Item = AuditEvent>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let context = origin.current();
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
    writer: Writer,
    timeout: std::time::Duration,
    origin: Arc<dyn RequestOrigin>,
}

impl SeaOrmAuditLog {
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
        within(
            self.timeout,
            write(self.writer.connection(), &*self.origin, [event], now),
        )
        .await
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
