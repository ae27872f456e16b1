//! WebSocket figures against a running Shelter (see `bench/ws.sh`):
//!
//! ```text
//! ws_bench <ws://host:port> <user id> <access token> <connections> <fan-out rounds>
//! ```
//!
//! Opens the connections (all as one user), pausing at half of them, prints when they are
//! up and holds them while the script reads the server's memory, then times how long one message takes to reach
//! every connection, over several rounds.

#![allow(
    clippy::disallowed_methods,
    reason = "a test or benchmark spawns outside any request: no context to carry"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use tokio::sync::{Barrier, mpsc};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, id, token, connections, rounds] = &args[..] else {
        eprintln!("usage: ws_bench <ws://host:port> <user id> <token> <connections> <rounds>");
        std::process::exit(2);
    };
    let connections: usize = connections.parse().expect("connections");
    let rounds: usize = rounds.parse().expect("rounds");
    let url = format!("{base}/ws/{id}?token={token}");

    let started = Instant::now();
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel::<(usize, Instant)>();
    let ready = Arc::new(Barrier::new(connections + 1));
    let mut senders = Vec::new();
    for opened in 0..connections {
        if opened == connections / 2 {
            // The script reads the server's memory at half the connections and at all of
            // them: the difference is what a connection costs, whatever the idle process
            // gave back meanwhile.
            println!("half");
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        let (socket, _) = connect_async(&url).await.expect("connect");
        let (sink, mut stream) = socket.split();
        senders.push(sink);
        let arrived_tx = arrived_tx.clone();
        let ready = Arc::clone(&ready);
        let expected = format!("Client #{id} says: round ");
        tokio::spawn(async move {
            ready.wait().await;
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message
                    && let Some(round) = text.strip_prefix(&expected)
                {
                    let _ = arrived_tx.send((round.parse().unwrap_or(usize::MAX), Instant::now()));
                }
            }
        });
    }
    ready.wait().await;
    println!(
        "connected {connections} in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    // The script measures the server's memory now.
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!("holding");
    tokio::time::sleep(Duration::from_secs(5)).await;

    let mut timings = Vec::new();
    for round in 0..rounds {
        let sent = Instant::now();
        senders[0]
            .send(Message::text(format!("{{\"content\": \"round {round}\"}}")))
            .await
            .expect("send");
        let mut got = 0;
        let mut last = sent;
        while got < connections {
            let (r, at) = tokio::time::timeout(Duration::from_secs(30), arrived.recv())
                .await
                .expect("every connection gets the message")
                .expect("open");
            if r == round {
                got += 1;
                last = at;
            }
        }
        timings.push((last - sent).as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    timings.sort_by(f64::total_cmp);
    let p99 = timings[(timings.len() * 99).div_ceil(100).saturating_sub(1)];
    println!(
        "fan-out to {connections} connections: median {:.1} ms, p99 {p99:.1} ms, best {:.1} ms, worst {:.1} ms over {rounds} rounds",
        timings[timings.len() / 2],
        timings[0],
        timings[timings.len() - 1]
    );
}
