//! `GET /ws/{client_id}`: the upgrade, authenticated, and one task per connection that
//! moves frames between the client and the hub.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError, Session};
use serde::Deserialize;
use shelter_domain::UserId;
use shelter_domain::auth::Authenticated;
use shelter_domain::cluster::ClusterEvent;

use crate::edge::caller::bearer_token;
use crate::edge::context;
use crate::edge::refusal::{ProblemBody, Refusal};
use crate::edge::state::AppState;
use crate::runtime::hub::{Hub, Registration, reason};

/// The largest frame (and reassembled message) accepted; larger closes with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
const PING_EVERY: Duration = Duration::from_secs(15);
/// A peer that sends nothing (not even a pong) for this long is dead.
const IDLE_TIMEOUT: Duration = Duration::from_secs(45);
/// A write the client does not take within this long ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Incoming {
    content: String,
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// The chat. Authenticated at the upgrade with `?token=` or `Authorization: Bearer`.
#[utoipa::path(
    get, path = "/ws/{client_id}", tag = "chat",
    params(("client_id" = i64, Path, description = "The id of the token's user"), ("token" = Option<String>, Query, description = "Access token, if not in the Authorization header")),
    responses(
        (status = 101, description = "Switching to the WebSocket chat: send {\"content\": …}; receive `Message received: …`, `Client #<id> says: …`, `Client #<id> left the chat`"),
        (status = 400, description = "Not a WebSocket upgrade (or an unreadable query)", body = ProblemBody),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody),
    )
)]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<TokenQuery>,
) -> Result<HttpResponse, Refusal> {
    let token = query
        .into_inner()
        .token
        .filter(|t| !t.is_empty())
        .or_else(|| bearer_token(req.headers()))
        .ok_or_else(|| Refusal::unauthorized("Not authenticated"))?;
    let Authenticated {
        user,
        session: login,
        expires_at,
    } = state.auth.authenticate(&token).await?;
    if path.parse::<i64>().ok() != Some(user.id().get()) {
        return Err(Refusal::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "client_id is not the token's user",
        ));
    }
    let (response, session, stream) = actix_ws::handle(&req, body)
        .map_err(|e| Refusal::bad_request(format!("Not a WebSocket upgrade: {e}")))?;
    let stream = stream
        .max_frame_size(MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME_BYTES);
    let hub = Arc::clone(&state.hub);
    let registration = hub.register(user.id(), login);
    let until = (expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    // actix-ws sessions are not `Send`: the task stays on this worker.
    context::spawn_local(run(hub, user.id(), registration, session, stream, until));
    Ok(response)
}

async fn run(
    hub: Arc<Hub>,
    user: UserId,
    registration: Registration,
    mut session: Session,
    mut stream: actix_ws::AggregatedMessageStream,
    token_lifetime: Duration,
) {
    let Registration {
        id,
        mut outgoing,
        mut close,
    } = registration;
    let expiry = tokio::time::sleep(token_lifetime);
    tokio::pin!(expiry);
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    let why: Option<CloseReason> = loop {
        tokio::select! {
            biased;
            told = &mut close => break Some(told.unwrap_or_else(|_| reason(CloseCode::Away, "server shutting down"))),
            () = &mut expiry => break Some(reason(CloseCode::Policy, "access token expired")),
            Some(text) = outgoing.recv() => {
                if !write(&mut session, &text).await {
                    break None;
                }
            }
            message = stream.recv() => {
                last_heard = tokio::time::Instant::now();
                match message {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        let reply = match serde_json::from_str::<Incoming>(&text) {
                            Ok(Incoming { content }) => {
                                let received = write(&mut session, &format!("Message received: {content}")).await;
                                hub.publish(ClusterEvent::Said { user, content }).await;
                                received
                            }
                            Err(error) => write(&mut session, &error_frame(&error.to_string())).await,
                        };
                        if !reply {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        if !write(&mut session, &error_frame("binary frames are not supported; send {\"content\": \"…\"} as text")).await {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Ok(AggregatedMessage::Close(_))) | None => break None,
                    Some(Err(ProtocolError::Overflow)) => break Some(reason(CloseCode::Size, "frame over 64 KiB")),
                    Some(Err(error)) => break Some(reason(CloseCode::Protocol, &error.to_string())),
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT {
                    break Some(reason(CloseCode::Policy, "no answer to pings"));
                }
                if session.ping(b"").await.is_err() {
                    break None;
                }
            }
        }
    };
    hub.unregister(id);
    let _ = tokio::time::timeout(Duration::from_secs(1), session.close(why)).await;
    hub.publish(ClusterEvent::Left { user }).await;
}

/// Writes a text frame; `false` when the client is gone or stopped reading.
async fn write(session: &mut Session, text: &str) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, session.text(text.to_owned())).await,
        Ok(Ok(()))
    )
}

fn error_frame(message: &str) -> String {
    serde_json::json!({ "error": format!("expected {{\"content\": \"…\"}}: {message}") })
        .to_string()
}
