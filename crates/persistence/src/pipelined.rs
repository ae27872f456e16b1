//! The hottest reads on PostgreSQL, over a connection that the requests in flight on a
//! worker thread share: an authenticated request's user and whether its sign-in is live,
//! and the unfiltered page of users with its total.
//!
//! Through the pool, each such request takes a connection of its own: one query, one
//! wake-up of a PostgreSQL backend, one of ours for its answer. tokio-postgres pipelines a
//! shared connection instead: the queries of the requests in flight go out in one write,
//! one backend answers them in one pass, and their answers come back in one read. On a
//! machine where waking a process costs more than the query (a VM), that is most of an
//! uncached request's cost. Each worker thread has its connection (its I/O runs on that
//! thread), so a read never wakes another thread either: one connection for all went from
//! 9,500 to 24,300 reads a second, one a thread to 28,400. A page's rows are read in
//! PostgreSQL's binary format and handed to the caller's sink borrowed from the answer.
//!
//! The connection is opened on first use and again after it breaks; a query that finds it
//! broken, or cannot open it, is `Unavailable` like any store operation. It is used only
//! where the pool would not encrypt either (`sslmode=disable`, or a loopback or socket
//! host): everything else stays on the pool, which speaks TLS.

use std::error::Error;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt as _;
use shelter_domain::{ListSink, ListedUser, Page, StorageError, StoreError, UserId};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::types::{FromSql, ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Row, Statement};

use crate::entity::user;
use crate::fault::postgres_unavailable;

/// How the shared connections name themselves to PostgreSQL.
pub const APPLICATION_NAME: &str = "shelter-shared-reads";

/// What is read over the shared connections, prepared on each when it opens.
pub(crate) struct Queries {
    /// The user row and `live`: `$1` the session, `$2` the user, `$3` now.
    pub signed_in: &'static str,
    /// A listing's columns (`ListedUser`'s, in order), ordered by id: `$1` limit, `$2` skip.
    pub page: String,
    /// How many users there are, as one `int8`.
    pub total: &'static str,
}

pub(crate) struct Shared {
    config: Config,
    timeout: Duration,
    queries: Queries,
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
    signed_in: Statement,
    page: Statement,
    total: Statement,
}

impl Shared {
    /// `None` when the URL is not one this path may use (see the module's note).
    pub(crate) fn new(
        url: &str,
        statement_timeout: Duration,
        timeout: Duration,
        queries: Queries,
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
            queries,
            slots: (0..std::thread::available_parallelism().map_or(1, usize::from))
                .map(|_| Slot::default())
                .collect(),
        })
    }

    /// The row of user `id` with `live`, or `None` when there is no such user.
    pub(crate) async fn signed_in(
        &self,
        id: i64,
        session: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(user::Model, bool)>, StoreError> {
        let what = "read a signed-in user";
        let row = self
            .run(what, |live| async move {
                live.client
                    .query_opt(&live.signed_in, &[&session, &id, &now])
                    .await
            })
            .await?;
        row.map(|row| to_model(&row).map_err(|error| unexpected(what, &error)))
            .transpose()
    }

    /// Puts a page of all users into `sink` and returns how many there are: the page and
    /// the count go out together and come back in one answer.
    pub(crate) async fn page(&self, page: Page, sink: &mut ListSink) -> Result<u64, StoreError> {
        let what = "list users";
        let (limit, skip) = (to_int8(page.limit())?, to_int8(page.skip())?);
        let (streamed, total) = self
            .run(what, |live| async move {
                let window: [&(dyn ToSql + Sync); 2] = [&limit, &skip];
                // Each row goes to the sink as it is read: no vector of rows in between.
                let rows = async {
                    let mut rows = std::pin::pin!(live.client.query_raw(&live.page, window).await?);
                    while let Some(row) = rows.try_next().await? {
                        if let Err(error) = listed(&row).map(|user| sink.user(user)) {
                            return Ok(Err(error));
                        }
                    }
                    Ok(Ok(()))
                };
                tokio::try_join!(rows, live.client.query_one(&live.total, &[]))
            })
            .await?;
        streamed.map_err(|error| unexpected(what, &error))?;
        let total: i64 = total.try_get(0).map_err(|error| unexpected(what, &error))?;
        Ok(u64::try_from(total).unwrap_or_default())
    }

    /// Runs `query` on this thread's connection, bounded in time as a whole (opening
    /// included); a connection that did not answer in time is dropped, so that one gone
    /// silent (a dead route) is not waited on again.
    async fn run<T, F, A>(&self, what: &'static str, query: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Live>) -> A,
        A: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let mut used = None;
        let answer = tokio::time::timeout(self.timeout, async {
            let live = self.connection(what).await?;
            used = Some(Arc::clone(&live));
            query(live).await.map_err(|error| failed(what, error))
        })
        .await;
        let Ok(answer) = answer else {
            if let Some(silent) = used {
                self.forget(&silent);
            }
            return Err(StorageError::Unavailable(anyhow::anyhow!(
                "{what}: the database did not answer within {:?}",
                self.timeout
            ))
            .into());
        };
        answer
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

    async fn connection(&self, what: &'static str) -> Result<Arc<Live>, StoreError> {
        let slot = self.slot();
        if let Some(live) = slot.current() {
            return Ok(live);
        }
        let _opening = slot.opening.lock().await;
        if let Some(live) = slot.current() {
            return Ok(live);
        }
        let live = Arc::new(self.open().await.map_err(|error| failed(what, error))?);
        *slot.lock() = Some(Arc::clone(&live));
        Ok(live)
    }

    fn slot(&self) -> &Slot {
        let index = THREAD.with(|thread| *thread) % self.slots.len().max(1);
        &self.slots[index]
    }

    async fn open(&self) -> Result<Live, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(NoTls).await?;
        // The connection's I/O runs beside its users; it ends when the client is dropped or
        // the socket breaks, and the next query opens another.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "the shared read connection broke");
            }
        });
        let (signed_in, page, total) = tokio::try_join!(
            client.prepare(self.queries.signed_in),
            client.prepare(&self.queries.page),
            client.prepare(self.queries.total),
        )?;
        Ok(Live {
            client,
            signed_in,
            page,
            total,
        })
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

fn listed(row: &Row) -> Result<ListedUser<&str>, tokio_postgres::Error> {
    Ok(ListedUser {
        id: UserId::new(row.try_get(0)?),
        email: row.try_get(1)?,
        username: row.try_get(2)?,
        is_active: row.try_get(3)?,
        is_superuser: row.try_get(4)?,
        email_verified: row.try_get(5)?,
        mfa_enabled: row.try_get(6)?,
        created_at: row.try_get::<_, Timestamp>(7)?.0,
        updated_at: row.try_get::<_, Timestamp>(8)?.0,
    })
}

/// A `timestamptz` read straight from PostgreSQL's microseconds since 2000: through
/// postgres-types' chrono conversion (a date plus a duration, day by day) the two of a
/// listed user cost more than all its other columns.
struct Timestamp(DateTime<Utc>);

/// 2000-01-01T00:00:00Z, PostgreSQL's epoch, in Unix microseconds.
const POSTGRES_EPOCH: i64 = 946_684_800_000_000;

impl<'a> FromSql<'a> for Timestamp {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        // The wire format of a timestamp is int8's.
        let since = i64::from_sql(&Type::INT8, raw)?;
        since
            .checked_add(POSTGRES_EPOCH)
            .and_then(DateTime::from_timestamp_micros)
            .map(Self)
            .ok_or_else(|| format!("{ty} {since} is out of range").into())
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ
    }
}

fn to_int8(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        StorageError::Unexpected(anyhow::anyhow!("{value} is beyond PostgreSQL's int8")).into()
    })
}

/// A broken or closed connection, or a "not now" server code, is `Unavailable` (503), as
/// on the pool; the rest is a fault of ours.
fn failed(what: &'static str, error: tokio_postgres::Error) -> StoreError {
    let unavailable = error
        .as_db_error()
        .is_none_or(|db| postgres_unavailable(db.code().code()));
    let cause = anyhow::Error::new(error).context(what);
    if unavailable {
        StorageError::Unavailable(cause).into()
    } else {
        StorageError::Unexpected(cause).into()
    }
}

/// A row that does not decode as the query promised.
fn unexpected(what: &'static str, error: &tokio_postgres::Error) -> StoreError {
    StorageError::Unexpected(anyhow::anyhow!("{what}: a row did not decode: {error}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(url: &str) -> bool {
        let second = Duration::from_secs(1);
        let queries = Queries {
            signed_in: "SELECT 1",
            page: "SELECT 1".to_owned(),
            total: "SELECT 1",
        };
        Shared::new(url, second, second, queries).is_some()
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

    #[test]
    fn a_timestamp_reads_as_postgres_types_reads_it() {
        let read = |since: i64| {
            let raw = since.to_be_bytes();
            let ours = Timestamp::from_sql(&Type::TIMESTAMPTZ, &raw).map(|time| time.0);
            let theirs = DateTime::<Utc>::from_sql(&Type::TIMESTAMPTZ, &raw);
            (ours.ok(), theirs.ok())
        };
        // PostgreSQL's epoch, before it, a moment with microseconds, a leap day, 9999.
        for since in [
            0,
            -1,
            -946_684_800_000_000,
            846_523_511_123_456,
            636_163_199_999_999,
            252_423_935_999_999_999,
        ] {
            let (ours, theirs) = read(since);
            assert!(ours.is_some(), "{since}");
            assert_eq!(ours, theirs, "{since}");
        }
        // `infinity` and `-infinity` are out of chrono's range: an error, not a panic.
        assert_eq!(read(i64::MAX).0, None);
        assert_eq!(read(i64::MIN).0, None);
        assert!(Timestamp::from_sql(&Type::TIMESTAMPTZ, &[0; 4]).is_err());
        assert!(Timestamp::accepts(&Type::TIMESTAMPTZ) && !Timestamp::accepts(&Type::TIMESTAMP));
    }
}
