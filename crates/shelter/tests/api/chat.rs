//! The WebSocket chat with a real client over a socket.

use std::time::Duration;

use futures::{SinkExt as _, Stream, StreamExt as _};
use serde_json::json;
use shelter_test_support::Backend;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::helpers::{SECRET_KEY, TestApp};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub fn ws_url(app: &TestApp, id: i64, token: &str) -> String {
    format!(
        "{}/ws/{id}?token={token}",
        app.address.replacen("http", "ws", 1)
    )
}

pub async fn open(app: &TestApp, id: i64, token: &str) -> Socket {
    connect_async(ws_url(app, id, token))
        .await
        .expect("WebSocket connects")
        .0
}

/// The next text frame, skipping pings.
pub async fn text(
    socket: &mut (impl Stream<Item = Result<Message, WsError>> + Unpin + ?Sized),
) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => return text.to_string(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// The close code the server ends with, reading past any text still queued.
pub async fn close_code(socket: &mut Socket) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_)) | None) | Err(_) => return None,
        }
    }
}

pub async fn say(socket: &mut Socket, content: &str) {
    socket
        .send(Message::text(json!({ "content": content }).to_string()))
        .await
        .expect("send");
}

fn handshake_status(error: WsError) -> u16 {
    match error {
        WsError::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

async fn the_classic_chat_texts(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, ann_id, ann_token) = app.user_with_token().await;
    let (_, bob_id, bob_token) = app.user_with_token().await;
    let mut ann = open(&app, ann_id, &ann_token).await;
    let mut bob = open(&app, bob_id, &bob_token).await;
    say(&mut ann, "hello").await;
    assert_eq!(text(&mut ann).await, "Message received: hello");
    assert_eq!(
        text(&mut ann).await,
        format!("Client #{ann_id} says: hello")
    );
    assert_eq!(
        text(&mut bob).await,
        format!("Client #{ann_id} says: hello")
    );
    ann.close(None).await.expect("close");
    assert_eq!(
        text(&mut bob).await,
        format!("Client #{ann_id} left the chat")
    );
}

/// A client is in the hub before its handshake's answer is written, so a message sent the
/// moment the handshake completes reaches it. (Registered after the 101, a connection
/// could miss it; CI caught that once in the test above.)
async fn a_broadcast_right_after_the_handshake_arrives(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, ann_id, ann_token) = app.user_with_token().await;
    let mut ann = open(&app, ann_id, &ann_token).await;
    for round in 0..20 {
        let (_, id, token) = app.user_with_token().await;
        let mut late = open(&app, id, &token).await;
        say(&mut ann, &format!("round {round}")).await;
        let expected = format!("Client #{ann_id} says: round {round}");
        while text(&mut late).await != expected {}
    }
}

async fn the_upgrade_needs_a_valid_token_of_that_user(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, id, token) = app.user_with_token().await;
    let base = app.address.replacen("http", "ws", 1);
    let refused = |url: String| async move {
        handshake_status(connect_async(url).await.expect_err("refused"))
    };
    assert_eq!(refused(format!("{base}/ws/{id}")).await, 401);
    assert_eq!(refused(format!("{base}/ws/{id}?token=garbage")).await, 401);
    assert_eq!(
        refused(format!("{base}/ws/{}?token={token}", id + 1)).await,
        403
    );
    assert_eq!(refused(format!("{base}/ws/abc?token={token}")).await, 403);

    let mut request = format!("{base}/ws/{id}")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (mut socket, _) = connect_async(request).await.expect("the header works too");
    say(&mut socket, "hi").await;
    assert_eq!(text(&mut socket).await, "Message received: hi");
}

async fn bad_frames_get_an_error_and_the_connection_lives_on(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, id, token) = app.user_with_token().await;
    let mut socket = open(&app, id, &token).await;
    for bad in [
        Message::text("not json"),
        Message::text("{\"content\": 5}"),
        Message::text("{\"text\": \"x\"}"),
        Message::binary(vec![1, 2, 3]),
    ] {
        socket.send(bad).await.expect("send");
        let reply: serde_json::Value =
            serde_json::from_str(&text(&mut socket).await).expect("JSON error");
        assert!(reply["error"].is_string(), "{reply}");
    }
    say(&mut socket, "still here").await;
    assert_eq!(text(&mut socket).await, "Message received: still here");
}

async fn frames_over_64_kib_close_with_1009(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, id, token) = app.user_with_token().await;
    let mut socket = open(&app, id, &token).await;
    socket
        .send(Message::text("x".repeat(70 * 1024)))
        .await
        .expect("send");
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Size));
}

async fn expired_tokens_and_deactivated_users_are_closed_with_1008(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, id, token) = app.user_with_token().await;
    let now = chrono::Utc::now().timestamp();
    let mut claims = crate::auth::claims_of(&token);
    claims["exp"] = (now + 5).into();
    let short = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET_KEY.as_bytes()),
    )
    .expect("sign");
    let mut expiring = open(&app, id, &short).await;
    assert_eq!(
        close_code(&mut expiring).await,
        Some(CloseCode::Policy),
        "closed when the token expires"
    );

    let (_, id, token) = app.user_with_token().await;
    let mut socket = open(&app, id, &token).await;
    app.deactivate(id).await;
    assert_eq!(
        close_code(&mut socket).await,
        Some(CloseCode::Policy),
        "closed on deactivation"
    );
}

async fn a_client_that_never_reads_does_not_delay_the_others(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, sender_id, sender_token) = app.user_with_token().await;
    let (_, fast_id, fast_token) = app.user_with_token().await;
    let (_, slow_id, slow_token) = app.user_with_token().await;
    let mut slow = open(&app, slow_id, &slow_token).await;
    let mut fast = open(&app, fast_id, &fast_token).await;
    let (mut sink, mut own) = open(&app, sender_id, &sender_token).await.split();
    let payload = "x".repeat(8 * 1024);
    let broadcast = format!("Client #{sender_id} says: ");
    let broadcasts = async |socket: &mut (dyn Stream<Item = _> + Unpin), count| {
        let mut received = 0;
        while received < count {
            if text(socket).await.starts_with(&broadcast) {
                received += 1;
            }
        }
    };
    // Each batch is read whole before the next is sent, so however this busy machine
    // schedules the readers they are never more than a batch behind, well inside their
    // queues (QUEUE_CAPACITY); only the client that never reads falls behind. The sender
    // reads while it writes, as a client must: the server's answers to it would otherwise
    // fill the socket. Were the others delayed by the slow client, a read would time out.
    let batch = 50;
    for _ in 0..40 {
        let send = async {
            for _ in 0..batch {
                sink.send(Message::text(json!({ "content": payload }).to_string()))
                    .await
                    .expect("send");
            }
        };
        tokio::join!(
            send,
            broadcasts(&mut fast, batch),
            broadcasts(&mut own, batch)
        );
    }
    // Meanwhile the never-reading client overflowed its queue and was dropped: after what
    // the kernel's buffers held, it reads a 1008. (A connection kept open answers pings
    // for ever, hence the bound on the whole read.)
    let closed = tokio::time::timeout(Duration::from_mins(1), close_code(&mut slow)).await;
    assert_eq!(closed, Ok(Some(CloseCode::Policy)));
}

async fn shutdown_closes_connections_with_1001(backend: Backend) {
    let Some(mut app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, id, token) = app.user_with_token().await;
    let mut socket = open(&app, id, &token).await;
    say(&mut socket, "before").await;
    assert_eq!(text(&mut socket).await, "Message received: before");
    app.stopper.stop();
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Away));
    let stopped = app.stopped.take().expect("running");
    tokio::time::timeout(Duration::from_secs(30), stopped)
        .await
        .expect("stops")
        .expect("task")
        .expect("clean stop");
}

/// Found by the soak: with Nagle's algorithm on, the broadcast written right after
/// "Message received" waited for the client's delayed ACK (40 ms on Linux). The server is
/// in this process, so the test finds the server's end of the connection among its own
/// descriptors and reads the option, rather than timing anything.
async fn the_servers_sockets_send_small_frames_at_once(backend: Backend) {
    use rustix::net::{SocketAddrAny, getpeername, getsockname, sockopt};
    use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};

    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, id, token) = app.user_with_token().await;
    let socket = open(&app, id, &token).await;
    let client = match socket.get_ref() {
        MaybeTlsStream::Plain(stream) => stream.local_addr().expect("the client's address"),
        _ => panic!("a plain TCP connection"),
    };
    let port: u16 = app
        .address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("the app's port");
    let as_std = |address: SocketAddrAny| std::net::SocketAddr::try_from(address).ok();
    let this_process = pidfd_open(getpid(), PidfdFlags::empty()).expect("pidfd_open");
    let server_ends: Vec<bool> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(|fd| pidfd_getfd(&this_process, fd, PidfdGetfdFlags::empty()).ok())
        .filter(|fd| getpeername(fd).ok().flatten().and_then(as_std) == Some(client))
        .filter(|fd| getsockname(fd).ok().and_then(as_std).map(|a| a.port()) == Some(port))
        .map(|fd| sockopt::tcp_nodelay(&fd).expect("TCP_NODELAY"))
        .collect();
    assert_eq!(server_ends, [true], "the server's end of the WebSocket");
}

/// Writes `request` on a new connection and reads until the server closes it (a hang fails
/// the test after 10 s).
async fn exchange(app: &TestApp, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
}

/// The server takes an upgraded connection over from the HTTP layer: what the client sent
/// right behind its handshake, in the same packet, is the chat's first frame.
async fn a_frame_sent_with_the_handshake_is_read(backend: Backend) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, id, token) = app.user_with_token().await;
    let mut bytes = upgrade_request(&format!("/ws/{id}?token={token}")).into_bytes();
    let payload = br#"{"content": "early"}"#;
    let mask = [7_u8, 1, 2, 3];
    bytes.extend([0x81, 0x80 | u8::try_from(payload.len()).expect("short")]);
    bytes.extend(mask);
    bytes.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(&bytes).await.expect("write");
    let mut seen = Vec::new();
    let mut chunk = [0_u8; 4096];
    let read = async {
        while !String::from_utf8_lossy(&seen).contains("Message received: early") {
            let n = stream.read(&mut chunk).await.expect("read");
            assert_ne!(n, 0, "closed early: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the early frame is answered");
    let seen = String::from_utf8_lossy(&seen);
    assert!(seen.starts_with("HTTP/1.1 101"), "{seen}");
    assert!(
        seen.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{seen}"
    );
}

/// Every upgrade request passes through the whole application, so a refused or misdirected
/// one gets the answer any request would (problem+json, the request id), and then the
/// connection closes: what would follow it is not HTTP.
async fn other_upgrades_get_an_http_answer_then_the_connection_closes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, id, _) = app.user_with_token().await;
    for (path, status) in [
        (format!("/ws/{id}?token=garbage"), "401"),
        ("/nowhere".to_owned(), "404"),
        ("/health/live".to_owned(), "200"),
    ] {
        let answer = exchange(&app, upgrade_request(&path).as_bytes()).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{path}: {answer}"
        );
        assert!(answer.contains("x-request-id: "), "{path}: {answer}");
        assert!(answer.contains("connection: close"), "{path}: {answer}");
        if status != "200" {
            assert!(
                answer.contains("content-type: application/problem+json"),
                "{path}: {answer}"
            );
        }
    }
    let answer = exchange(
        &app,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 4"), "CONNECT: {answer}");
}

shelter_test_support::on_both_backends!(
    the_servers_sockets_send_small_frames_at_once,
    a_frame_sent_with_the_handshake_is_read,
    other_upgrades_get_an_http_answer_then_the_connection_closes,
    the_classic_chat_texts,
    a_broadcast_right_after_the_handshake_arrives,
    the_upgrade_needs_a_valid_token_of_that_user,
    bad_frames_get_an_error_and_the_connection_lives_on,
    frames_over_64_kib_close_with_1009,
    expired_tokens_and_deactivated_users_are_closed_with_1008,
    shutdown_closes_connections_with_1001,
);

mod slow_client {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_never_reads_does_not_delay_the_others() {
        super::a_client_that_never_reads_does_not_delay_the_others(
            shelter_test_support::Backend::Sqlite,
        )
        .await;
    }
}
