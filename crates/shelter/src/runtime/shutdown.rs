//! When to stop: SIGINT, SIGTERM, or a [`Stopper`] held by a test or an embedding program.
//! What stopping does (closing chat sockets, finishing requests) is for `app`.

use std::sync::Arc;

use tokio::sync::Notify;

/// Stops a running application as SIGTERM would (for tests and embedding programs).
#[derive(Clone)]
pub struct Stopper(pub(crate) Arc<Notify>);

impl Stopper {
    pub fn stop(&self) {
        self.0.notify_one();
    }
}

/// Resolves on SIGINT, SIGTERM, or a `Stopper`'s word.
pub(crate) async fn requested(stopper: &Notify) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        () = terminate => {}
        () = stopper.notified() => {}
    }
}
