//! `/audit-events` (superusers) and `/users/me/audit-events` (the caller's own): the audit
//! log, newest first, keyset-paged by event id.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use shelter_domain::UserId;
use shelter_domain::audit::{AuditQuery, EventType, RecordedEvent};
use utoipa::{IntoParams, ToSchema};

use crate::edge::caller::CurrentUser;
use crate::edge::refusal::{FieldError, ProblemBody, Refusal};
use crate::edge::state::AppState;

/// Events on one page unless `limit` says otherwise.
const DEFAULT_LIMIT: u32 = 50;

/// The audit listing's query; anything else in it is ignored.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only events about this user (superusers' listing only).
    #[param(value_type = Option<i64>, minimum = 1)]
    pub user_id: Option<String>,
    /// Only events of this type.
    #[param(rename = "type", schema_with = event_type_schema, required = false, example = "login_failed")]
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Only events older than this event id: the `id` of the last event of the page before.
    #[param(value_type = Option<i64>, minimum = 1)]
    pub before: Option<String>,
    /// Events to return, 1–100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// The event types, named once (by the domain).
fn event_type_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(EventType::ALL.map(EventType::as_str)))
        .build()
}

/// One event; never a password, token, code or hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventResponse {
    pub id: i64,
    /// RFC 3339, UTC, with milliseconds.
    pub time: String,
    #[serde(rename = "type")]
    #[schema(example = "login_succeeded")]
    pub kind: &'static str,
    /// Who did it: `null` for nobody known (a failed login of an unknown user).
    pub actor_id: Option<i64>,
    /// Whom it is about: `null` when no user (an unknown login, a key rotation).
    pub user_id: Option<i64>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Strings only, by event type: `reason` of `login_failed`, `fields` of `user_updated`,
    /// `session` of login and session events, `kid` of `keys_rotated`.
    pub details: BTreeMap<String, String>,
}

impl From<&RecordedEvent> for AuditEventResponse {
    fn from(event: &RecordedEvent) -> Self {
        Self {
            id: event.id,
            time: event.time.to_rfc3339_opts(SecondsFormat::Millis, true),
            kind: event.kind.as_str(),
            actor_id: event.actor.map(UserId::get),
            user_id: event.user.map(UserId::get),
            ip: event.client.ip.map(|ip| ip.to_string()),
            user_agent: event.client.user_agent().map(str::to_owned),
            request_id: event.request_id.clone(),
            details: event.details.clone(),
        }
    }
}

/// One page of events, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEventResponse>,
    /// The `before` of the next page; `null` on the last page.
    pub next_before: Option<i64>,
}

/// Reads the query, reporting every bad parameter at once.
fn query(raw: &str) -> Result<AuditQuery, Refusal> {
    let params: AuditParams =
        serde_urlencoded::from_str(raw).map_err(|e| Refusal::field("query", e.to_string()))?;
    let mut errors = Vec::new();
    let mut bad = |field: &str, message: &str| {
        errors.push(FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        });
    };
    let id = |raw: Option<&str>| raw.map(|r| r.parse::<i64>().ok().filter(|id| *id > 0));
    let user = match id(params.user_id.as_deref()) {
        Some(None) => {
            bad("user_id", "must be a positive whole number");
            None
        }
        other => other.flatten().map(UserId::new),
    };
    let before = match id(params.before.as_deref()) {
        Some(None) => {
            bad("before", "must be a positive whole number");
            None
        }
        other => other.flatten(),
    };
    let kind = match params.kind.as_deref().map(str::parse::<EventType>) {
        Some(Err(_)) => {
            bad("type", "must be one of the event types");
            None
        }
        other => other.and_then(Result::ok),
    };
    let limit = match params.limit.as_deref().map(str::parse::<u32>) {
        None => DEFAULT_LIMIT,
        Some(Ok(limit)) if (1..=100).contains(&limit) => limit,
        Some(_) => {
            bad("limit", "must be a whole number from 1 to 100");
            DEFAULT_LIMIT
        }
    };
    if errors.is_empty() {
        Ok(AuditQuery {
            user,
            kind,
            before,
            limit,
        })
    } else {
        Err(Refusal::validation(errors))
    }
}

fn page(events: &[RecordedEvent], limit: u32) -> HttpResponse {
    let full = events.len() == usize::try_from(limit).unwrap_or(usize::MAX);
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(AuditPage {
            items: events.iter().map(AuditEventResponse::from).collect(),
            next_before: events.last().filter(|_| full).map(|event| event.id),
        })
}

/// Every user's security events, newest first (superusers).
#[utoipa::path(
    get, path = "/audit-events", tag = "audit", security(("bearer" = [])),
    params(AuditParams),
    responses(
        (status = 200, body = AuditPage),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody), (status = 422, body = ProblemBody),
    )
)]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    CurrentUser(me): CurrentUser,
) -> Result<HttpResponse, Refusal> {
    let query = query(req.query_string())?;
    let events = state.audit.list(&me, query).await?;
    Ok(page(&events, query.limit))
}

/// The caller's own security events, newest first (`user_id` is ignored).
#[utoipa::path(
    get, path = "/users/me/audit-events", tag = "audit", security(("bearer" = [])),
    params(AuditParams),
    responses(
        (status = 200, body = AuditPage),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody), (status = 422, body = ProblemBody),
    )
)]
pub async fn list_own(
    req: HttpRequest,
    state: web::Data<AppState>,
    CurrentUser(me): CurrentUser,
) -> Result<HttpResponse, Refusal> {
    let query = query(req.query_string())?;
    let events = state.audit.list_own(&me, query).await?;
    Ok(page(&events, query.limit))
}
