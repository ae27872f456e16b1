//! `GET /ws/{client_id}`: the upgrade, authenticated, and the connection it becomes, which
//! moves frames between the client and the hub.
//!
//! The HTTP server hands every upgrade request, with its socket, to [`switch`] (the
//! server's upgrade service). The request still runs through the application, middleware
//! and all: the handler authenticates it and answers 101 with a [`Ticket`], or refuses
//! it. `switch` writes the answer; on a 101 it keeps only the bare socket and speaks
//! WebSocket on it with tungstenite. The HTTP dispatcher, with its two 8 KiB buffers, is
//! gone by then, and tungstenite's read buffer is small: an idle chat connection costs
//! about half of what it did when the dispatcher carried the frames.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_codec::{Framed, FramedParts};
use actix_http::body::{self, BodySize};
use actix_http::h1::{Codec, Message as H1};
use actix_http::{ConnectionType, Request, Response, StatusCode};
use actix_service::Service;
use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, web};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use shelter_domain::audit::RequestContext;
use shelter_domain::auth::Authenticated;
use shelter_domain::cluster::ClusterEvent;
use shelter_domain::{SessionId, UserId};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::edge::caller::bearer_token;
use crate::edge::context;
use crate::edge::refusal::{ProblemBody, Refusal};
use crate::edge::state::AppState;
use crate::runtime::hub::{Hub, Registration, reason};

/// The largest frame (and reassembled message) accepted; larger closes with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// What tungstenite reads at a time, and keeps between frames: chat messages are small, and
/// an idle connection should hold little (a larger frame grows the buffer while it lasts).
const READ_BUFFER_BYTES: usize = 256;
/// The largest answer written on an upgrade that is refused (a problem document).
const REFUSAL_BYTES: usize = 64 * 1024;
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

/// Put on a request by [`switch`]: the request came with its socket, which can be taken
/// over. Without it a handshake cannot be answered with 101.
#[derive(Clone, Copy)]
struct Switchable;

/// Put on a 101 answer by the handler: who the connection is for, and until when.
struct Ticket {
    hub: Arc<Hub>,
    user: UserId,
    login: SessionId,
    until: Duration,
    context: RequestContext,
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
            StatusCode::FORBIDDEN,
            "client_id is not the token's user",
        ));
    }
    let not_upgrade = |why: &dyn std::fmt::Display| {
        Refusal::bad_request(format!("Not a WebSocket upgrade: {why}"))
    };
    let mut switching = actix_http::ws::handshake(req.head()).map_err(|e| not_upgrade(&e))?;
    if req.extensions().get::<Switchable>().is_none() {
        return Err(not_upgrade(&"the connection cannot switch protocols"));
    }
    let mut response = HttpResponse::from(switching.finish()).map_into_boxed_body();
    response.extensions_mut().insert(Ticket {
        hub: Arc::clone(&state.hub),
        user: user.id(),
        login,
        until: (expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default(),
        context: context::current(),
    });
    Ok(response)
}

/// The application as the upgrade service calls it.
pub type AppService =
    Rc<actix_service::boxed::BoxService<Request, ServiceResponse<BoxBody>, actix_web::Error>>;

/// Why an upgraded connection ended early; actix logs it.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    #[error("write the answer to an upgrade: {0}")]
    Write(#[from] std::io::Error),
    #[error("read the answer to an upgrade: {0}")]
    Body(String),
}

/// The server requires it of an upgrade's error; the connection is gone by then, so the
/// answer is never written.
impl From<SwitchError> for Response<BoxBody> {
    fn from(_: SwitchError) -> Self {
        Response::new(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// The server's upgrade service: runs an upgrade request through the application, writes
/// the answer, and on a 101 with a [`Ticket`] serves the chat on the socket. Any other
/// answer (a refusal, a 404 for another path) is written whole and the connection closed:
/// what the client sends after an upgrade request is not HTTP any more.
pub async fn switch(
    application: AppService,
    (request, mut framed): (Request, Framed<TcpStream, Codec>),
) -> Result<(), SwitchError> {
    request.extensions_mut().insert(Switchable);
    let answer = match application.call(request).await {
        Ok(answer) => answer.into_parts().1,
        Err(error) => error.error_response(),
    };
    let mut answer: Response<BoxBody> = answer.into();
    let ticket = answer.extensions_mut().remove::<Ticket>();
    if let (StatusCode::SWITCHING_PROTOCOLS, Some(ticket)) = (answer.status(), ticket) {
        // In the hub before the client can know it is connected: a message sent the moment
        // its handshake completes must reach it (found by CI: registered after the 101, a
        // connection sometimes missed the first broadcast).
        let registration = ticket.hub.register(ticket.user, ticket.login);
        let sent = framed
            .send(H1::Item((answer.drop_body(), BodySize::None)))
            .await;
        if sent.is_err() {
            ticket.hub.unregister(registration.id);
        }
        sent?;
        // Only the socket, and what the client sent after its handshake, copied out of the
        // dispatcher's 8 KiB read buffer: both buffers are freed here, not when the chat ends.
        let FramedParts { io, read_buf, .. } = framed.into_parts();
        let early = read_buf.to_vec();
        drop(read_buf);
        Box::pin(context::scope(
            ticket.context.clone(),
            serve(ticket, registration, io, early),
        ))
        .await;
        return Ok(());
    }
    answer.head_mut().set_connection_type(ConnectionType::Close);
    let (head, answer_body) = answer.into_parts();
    let bytes = body::to_bytes_limited(answer_body, REFUSAL_BYTES)
        .await
        .map_err(|_| SwitchError::Body(format!("over {REFUSAL_BYTES} bytes")))?
        .map_err(|error| SwitchError::Body(error.to_string()))?;
    let size = BodySize::Sized(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
    framed.send(H1::Item((head, size))).await?;
    if !bytes.is_empty() {
        framed.send(H1::Chunk(Some(bytes))).await?;
    }
    framed.send(H1::Chunk(None)).await?;
    framed.close().await?;
    Ok(())
}

/// One chat connection, from the switch to its close; it is in the hub meanwhile.
async fn serve(ticket: Ticket, registration: Registration, socket: TcpStream, early: Vec<u8>) {
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        // Every frame goes out when written: a chat line must not wait for the next.
        .write_buffer_size(0)
        .max_frame_size(Some(MAX_FRAME_BYTES))
        .max_message_size(Some(MAX_FRAME_BYTES));
    let socket =
        WebSocketStream::from_partially_read(socket, early, Role::Server, Some(config)).await;
    let Ticket {
        hub, user, until, ..
    } = ticket;
    run(&hub, user, registration, socket, until).await;
}

async fn run(
    hub: &Hub,
    user: UserId,
    registration: Registration,
    mut socket: WebSocketStream<TcpStream>,
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
    let why: Option<CloseFrame> = loop {
        tokio::select! {
            biased;
            told = &mut close => break Some(told.unwrap_or_else(|_| reason(CloseCode::Away, "server shutting down"))),
            () = &mut expiry => break Some(reason(CloseCode::Policy, "access token expired")),
            Some(text) = outgoing.recv() => {
                if !write(&mut socket, Message::text(&*text)).await {
                    break None;
                }
            }
            message = socket.next() => {
                last_heard = tokio::time::Instant::now();
                let reply = match message {
                    Some(Ok(Message::Text(text))) => match serde_json::from_str::<Incoming>(&text) {
                        Ok(Incoming { content }) => {
                            let received = write(&mut socket, Message::text(format!("Message received: {content}"))).await;
                            hub.publish(ClusterEvent::Said { user, content }).await;
                            received
                        }
                        Err(error) => write(&mut socket, error_frame(&error.to_string())).await,
                    },
                    Some(Ok(Message::Binary(_))) => {
                        write(&mut socket, error_frame("binary frames are not supported; send {\"content\": \"…\"} as text")).await
                    }
                    // tungstenite answers pings itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => true,
                    Some(Ok(Message::Close(_)) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_))) | None => break None,
                    Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => break Some(reason(CloseCode::Size, "frame over 64 KiB")),
                    Some(Err(error)) => break Some(reason(CloseCode::Protocol, &error.to_string())),
                };
                if !reply {
                    break None;
                }
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > IDLE_TIMEOUT {
                    break Some(reason(CloseCode::Policy, "no answer to pings"));
                }
                if !write(&mut socket, Message::Ping(Bytes::new())).await {
                    break None;
                }
            }
        }
    };
    hub.unregister(id);
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(why)).await;
    hub.publish(ClusterEvent::Left { user }).await;
}

/// Writes a frame; `false` when the client is gone or stopped reading.
async fn write(socket: &mut WebSocketStream<TcpStream>, message: Message) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, socket.send(message)).await,
        Ok(Ok(()))
    )
}

fn error_frame(message: &str) -> Message {
    Message::text(
        serde_json::json!({ "error": format!("expected {{\"content\": \"…\"}}: {message}") })
            .to_string(),
    )
}
