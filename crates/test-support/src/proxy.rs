//! A TCP proxy a test puts between Shelter and a server (PostgreSQL, Redis) to make that
//! server fail the two ways a network does: cut off (every connection closed, new ones
//! closed at once) and black-holed (connections stay open and nothing gets through, as
//! with a dead route or a paused VM), and then heal.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forward,
    /// Closes every connection, and each new one as soon as it is accepted.
    Cut,
    /// Keeps connections open and forwards nothing.
    Blackhole,
}

/// A running proxy; it stops when dropped.
pub struct TcpProxy {
    address: SocketAddr,
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("proxy address");
        let (mode, watching) = watch::channel(Mode::Forward);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *watching.borrow() == Mode::Cut {
                    continue;
                }
                tokio::spawn(relay(client, target, watching.clone()));
            }
        });
        Self {
            address,
            mode,
            task,
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.mode.send_replace(Mode::Cut);
    }
}

async fn relay(client: TcpStream, target: SocketAddr, mode: watch::Receiver<Mode>) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Whichever direction ends first (a close, an error, a cut) ends the connection.
    tokio::select! {
        () = pipe(client_read, server_write, mode.clone()) => {}
        () = pipe(server_read, client_write, mode) => {}
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if !wait_for_forward(&mut mode).await {
            return;
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        let Ok(count) = read else { return };
        // What was read is delivered late, once traffic flows again, as TCP would.
        if count == 0 || !wait_for_forward(&mut mode).await {
            return;
        }
        if to.write_all(&buffer[..count]).await.is_err() {
            return;
        }
    }
}

/// Waits while black-holed; `false` once the connection is to be cut.
async fn wait_for_forward(mode: &mut watch::Receiver<Mode>) -> bool {
    loop {
        let current = *mode.borrow_and_update();
        match current {
            Mode::Forward => return true,
            Mode::Cut => return false,
            Mode::Blackhole => {
                if mode.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}
