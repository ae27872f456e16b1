//! The hottest read on PostgreSQL, an authenticated request's user and whether its sign-in
//! is live, over a connection that the requests in flight on a worker thread share.
//!
//! Through the pool, each such request takes a connection of its own: one query, one
//! wake-up of a PostgreSQL backend, one of ours for its answer. tokio-postgres pipelines a
//! shared connection instead: the queries of the requests in flight go out in one write,
//! one backend answers them in one pass, and their answers come back in one read. On a
//! machine where waking a process costs more than the query (a VM), that is most of an
//! uncached request's cost. Each worker thread has its connection (its I/O runs on that
//! thread), so a read never wakes another thread either: one connection for all went from
//! 9,500 to 24,300 reads a second, one a thread to 28,400.
//!
//! The connection is opened on first use and again after it breaks; a query that finds it
//! broken, or cannot open it, is `Unavailable` like any store operation. It is used only
//! where the pool would not encrypt either (`sslmode=disable`, or a loopback or socket
//! host): everything else stays on the pool, which speaks TLS.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use shelter_domain::{StorageError, StoreError};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls, Row, Statement};

use crate::entity::user;
use crate::fault::postgres_unavailable;

/// How the shared connections name themselves to PostgreSQL.
pub const APPLICATION_NAME: &str = "shelter-signed-in";

/// The user and whether the session is live, in one statement (see `users::SIGNED_IN_POSTGRES`).
pub(crate) struct SignedIn {
    config: Config,
    timeout: Duration,
    sql: &'static str,
    /// One connection per worker thread, so a read and its connection's I/O run on the
    /// same thread and no request wakes another.
    slots: Vec<Slot>,
}

#[derive(Default)]
struct Slot {
    live: Mutex<Option<Arc<Live>>>,
    /// Held while opening, so that a broken connection is replaced once, not by every
    /// request that finds it broken.
    opening: tokio::sync::Mutex<()>,
}

std::thread_local! {
    /// This thread's place among the threads that read: its slot, modulo their number.
    static THREAD: usize = {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    };
}

struct Live {
    client: Client,
    statement: Statement,
}

impl SignedIn {
    /// `None` when the URL is not one this path may use (see the module's note).
    pub(crate) fn new(
        url: &str,
        statement_timeout: Duration,
        timeout: Duration,
        sql: &'static str,
    ) -> Option<Self> {
        let mut config: Config = url.parse().ok()?;
        let plain = config.get_ssl_mode() == SslMode::Disable
            || config.get_hosts().iter().all(|host| match host {
                Host::Tcp(name) => {
                    name == "localhost"
                        || name
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                }
                Host::Unix(_) => true,
            });
        if !plain {
            return None;
        }
        config
            .ssl_mode(SslMode::Disable)
            // Seen in `pg_stat_activity` beside the pool's connections.
            .application_name(APPLICATION_NAME)
            .connect_timeout(timeout)
            .options(format!(
                "-c statement_timeout={}",
                statement_timeout.as_millis().max(1)
            ));
        Some(Self {
            config,
            timeout,
            sql,
            slots: (0..std::thread::available_parallelism().map_or(1, usize::from))
                .map(|_| Slot::default())
                .collect(),
        })
    }

    /// The row of user `id` with `live`, or `None` when there is no such user. Bounded in
    /// time as a whole (opening included); a connection that did not answer in time is
    /// dropped, so that one gone silent (a dead route) is not waited on again.
    pub(crate) async fn read(
        &self,
        id: i64,
        session: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(user::Model, bool)>, StoreError> {
        let mut used = None;
        let answer = tokio::time::timeout(self.timeout, async {
            let live = self.connection().await?;
            used = Some(Arc::clone(&live));
            live.client
                .query_opt(&live.statement, &[&session, &id, &now])
                .await
                .map_err(failed)
        })
        .await;
        let Ok(row) = answer else {
            if let Some(silent) = used {
                self.forget(&silent);
            }
            return Err(StorageError::Unavailable(anyhow::anyhow!(
                "the database did not answer within {:?}",
                self.timeout
            ))
            .into());
        };
        row?.map(|row| {
            to_model(&row).map_err(|error| {
                StorageError::Unexpected(anyhow::anyhow!("read a signed-in user's row: {error}"))
                    .into()
            })
        })
        .transpose()
    }

    /// Drops the connections; each closes once the reads in flight on it are done.
    pub(crate) fn close(&self) {
        for slot in &self.slots {
            *slot.lock() = None;
        }
    }

    fn forget(&self, silent: &Arc<Live>) {
        for slot in &self.slots {
            let mut live = slot.lock();
            if live.as_ref().is_some_and(|live| Arc::ptr_eq(live, silent)) {
                *live = None;
            }
        }
    }

    async fn connection(&self) -> Result<Arc<Live>, StoreError> {
        let slot = self.slot();
        if let Some(live) = slot.current() {
            return Ok(live);
        }
        let _opening = slot.opening.lock().await;
        if let Some(live) = slot.current() {
            return Ok(live);
        }
        let live = Arc::new(self.open().await?);
        *slot.lock() = Some(Arc::clone(&live));
        Ok(live)
    }

    fn slot(&self) -> &Slot {
        let index = THREAD.with(|thread| *thread) % self.slots.len().max(1);
        &self.slots[index]
    }

    async fn open(&self) -> Result<Live, StoreError> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(failed)?;
        // The connection's I/O runs beside its users; it ends when the client is dropped or
        // the socket breaks, and the next query opens another.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "the shared read connection broke");
            }
        });
        let statement = client.prepare(self.sql).await.map_err(failed)?;
        Ok(Live { client, statement })
    }
}

impl Slot {
    fn current(&self) -> Option<Arc<Live>> {
        self.lock()
            .as_ref()
            .filter(|live| !live.client.is_closed())
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<Live>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn to_model(row: &Row) -> Result<(user::Model, bool), tokio_postgres::Error> {
    Ok((
        user::Model {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            username: row.try_get("username")?,
            password_hash: row.try_get("password_hash")?,
            password_set: row.try_get("password_set")?,
            is_active: row.try_get("is_active")?,
            is_superuser: row.try_get("is_superuser")?,
            email_verified: row.try_get("email_verified")?,
            token_version: row.try_get("token_version")?,
            revision: row.try_get("revision")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            totp_secret: row.try_get("totp_secret")?,
            totp_enabled: row.try_get("totp_enabled")?,
            totp_last_step: row.try_get("totp_last_step")?,
        },
        row.try_get("live")?,
    ))
}

/// A broken or closed connection, or a "not now" server code, is `Unavailable` (503), as
/// on the pool; the rest is a fault of ours.
fn failed(error: tokio_postgres::Error) -> StoreError {
    let unavailable = error
        .as_db_error()
        .is_none_or(|db| postgres_unavailable(db.code().code()));
    let cause = anyhow::Error::new(error).context("read a signed-in user");
    if unavailable {
        StorageError::Unavailable(cause).into()
    } else {
        StorageError::Unexpected(cause).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(url: &str) -> bool {
        let second = Duration::from_secs(1);
        SignedIn::new(url, second, second, "SELECT 1").is_some()
    }

    #[test]
    fn only_where_the_pool_would_not_encrypt_either() {
        assert!(shared("postgres://postgres@127.0.0.1:5432/db"));
        assert!(shared("postgres://postgres@localhost/db"));
        assert!(shared("postgres://postgres@[::1]/db"));
        assert!(shared("postgres://postgres@db.internal/db?sslmode=disable"));
        assert!(shared("postgresql://postgres@%2Fvar%2Frun%2Fpostgresql/db"));
        // `prefer` (the default) and `require` may encrypt on the pool: not here.
        assert!(!shared("postgres://postgres@db.internal/db"));
        assert!(!shared(
            "postgres://postgres@db.internal/db?sslmode=require"
        ));
        assert!(!shared("postgres://postgres@10.0.0.5/db?sslmode=prefer"));
        // A URL only the pool's driver reads stays on the pool.
        assert!(!shared(
            "postgres://postgres@127.0.0.1/db?statement-cache-capacity=10"
        ));
    }
}
