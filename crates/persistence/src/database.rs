//! The connection pool, migrations and the readiness ping.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ColumnTrait, Condition, ConnectOptions, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    EntityTrait, QueryFilter, TransactionTrait,
};
use secrecy::{ExposeSecret as _, SecretString};
use shelter_domain::Page;
use shelter_domain::audit::{NoRequest, RequestOrigin};
use shelter_migration::{Migrator, MigratorTrait};
use tokio::sync::Notify;

use crate::audit::SeaOrmAuditLog;
use crate::clients::SeaOrmClientStore;
use crate::entity::{email_outbox, one_time_token, passkey_flow, refresh_token, session};
use crate::keys::SeaOrmSigningKeyStore;
use crate::outbox::{self, SeaOrmEmailOutbox};
use crate::pipelined::Shared;
use crate::sessions::SeaOrmRefreshTokenStore;
use crate::transaction::Writer;
use crate::users::SeaOrmUserRepository;

/// What a clean-up removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub audit_events: u64,
    pub sessions: u64,
    pub refresh_tokens: u64,
    pub one_time_tokens: u64,
    pub passkey_flows: u64,
    pub emails: u64,
}

/// Where the database is: a `sqlite:` or `postgres://` URL, checked once when it is read.
/// It may hold a password, so `Debug` shows only the scheme.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text).map_err(|e| e.to_string())?;
        match url.scheme() {
            "sqlite" | "postgres" | "postgresql" => Ok(Self(SecretString::from(text))),
            _ => Err("must start with sqlite:, postgres:// or postgresql://".into()),
        }
    }
}

impl DatabaseUrl {
    /// The URL itself, for the driver and for tools that open the same database.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.expose().split(':').next().unwrap_or_default();
        write!(f, "DatabaseUrl({scheme}:…)")
    }
}

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
    /// Upper bound of pooled connections.
    pub max_connections: NonZeroU32,
    /// How long a request waits for a pooled connection (or SQLite for its write lock)
    /// before failing, and the longest one store operation may take before it counts as
    /// "database unavailable".
    pub acquire_timeout: Duration,
    /// PostgreSQL's `statement_timeout` on every pooled connection: the server itself
    /// cancels a statement that runs longer, so a runaway query cannot hold a connection
    /// (and its locks) after the request that sent it has been answered.
    pub statement_timeout: Duration,
    /// How long audit events are kept before the purge deletes them.
    pub audit_retention: chrono::Duration,
}

/// A pooled connection to SQLite or PostgreSQL.
#[derive(Clone)]
pub struct Database {
    connection: DatabaseConnection,
    writer: Writer,
    outbox_signal: Arc<Notify>,
    /// The longest one store operation may take; see [`DatabaseSettings::acquire_timeout`].
    timeout: Duration,
    max_connections: u32,
    audit_retention: chrono::Duration,
    /// Which request the stores' audit events come from; none until composition says.
    origin: Arc<dyn RequestOrigin>,
    /// PostgreSQL's shared connections for the hottest reads, where they may be used.
    shared: Option<Arc<Shared>>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.connection.get_database_backend())
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

/// The pool's settings. SQLite gets WAL mode (readers never wait for the writer), a busy
/// timeout (a writer of another process queues instead of failing with `SQLITE_BUSY`) and
/// foreign keys.
fn options(settings: &DatabaseSettings, max_connections: NonZeroU32) -> ConnectOptions {
    let busy_timeout = settings.acquire_timeout;
    let statement_timeout = format!("{}ms", settings.statement_timeout.as_millis().max(1));
    let mut options = ConnectOptions::new(settings.url.expose());
    options
        .max_connections(max_connections.get())
        .min_connections(1)
        // A connection once opened is kept (see `warm_up`): a burst after a quiet
        // spell must not wait for new connections, a TLS handshake each.
        .idle_timeout(None)
        .acquire_timeout(settings.acquire_timeout)
        .connect_timeout(settings.acquire_timeout)
        // A ping on every checkout doubles the round trips of a one-query request;
        // only a connection idle long enough to have been dropped (by a restart, a
        // proxy or a firewall) is pinged before use.
        .test_before_acquire_if_idle_for(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_postgres_opts(move |opts| {
            opts.options([("statement_timeout", statement_timeout.as_str())])
        })
        .map_sqlx_sqlite_opts(move |opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(busy_timeout)
                .foreign_keys(true)
                // Room for a whole page (and its end): sqlx's SQLite thread then hands the
                // rows over without waiting for the reader to drain a half-full channel.
                .row_buffer_size(usize::try_from(Page::MAX_LIMIT).map_or(128, |rows| rows + 1))
        });
    options
}

/// Holds `size` connections of `pool` at once, so that each is opened, then gives them
/// back; how many it got.
async fn open_all<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>, size: u32) -> usize {
    let held = futures_util::future::join_all((0..size).map(|_| pool.acquire())).await;
    held.iter().filter(|connection| connection.is_ok()).count()
}

impl Database {
    /// Opens the pool, and on SQLite the one connection writes go over (see [`Writer`]).
    ///
    /// # Errors
    /// When the URL is unusable or the database does not answer.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Self> {
        let connection = sea_orm::Database::connect(options(settings, settings.max_connections))
            .await
            .context("connect to the database")?;
        let writer = if connection.get_database_backend() == DatabaseBackend::Sqlite {
            sea_orm::Database::connect(options(settings, NonZeroU32::MIN))
                .await
                .context("connect to the database for writes")?
        } else {
            connection.clone()
        };
        let shared = (connection.get_database_backend() == DatabaseBackend::Postgres)
            .then(|| {
                Shared::new(
                    settings.url.expose(),
                    settings.statement_timeout,
                    settings.acquire_timeout,
                    crate::users::shared_queries(),
                )
            })
            .flatten()
            .map(Arc::new);
        if connection.get_database_backend() == DatabaseBackend::Postgres {
            tracing::info!(
                shared = shared.is_some(),
                "signed-in reads and unfiltered user pages: over shared connections where \
                 the pool would not encrypt either (sslmode=disable, or a local host), else \
                 over the pool"
            );
        }
        Ok(Self {
            shared,
            connection,
            writer: Writer::new(writer),
            outbox_signal: Arc::default(),
            timeout: settings.acquire_timeout,
            max_connections: settings.max_connections.get(),
            audit_retention: settings.audit_retention,
            origin: Arc::new(NoRequest),
        })
    }

    /// Where the stores' audit events come from: the inbound edge's request context.
    #[must_use]
    pub fn with_origin(mut self, origin: Arc<dyn RequestOrigin>) -> Self {
        self.origin = origin;
        self
    }

    /// Opens the rest of the pool, in the background of a running service: the first
    /// burst must not wait for new connections (on a busy machine, 16 handshakes at once
    /// took 1–2 s and ran requests into the pool timeout). Failures only mean the pool
    /// grows on demand instead.
    pub async fn warm_up(self) {
        let size = self.max_connections;
        let opened = if self.connection.get_database_backend() == DatabaseBackend::Postgres {
            open_all(self.connection.get_postgres_connection_pool(), size).await
        } else {
            open_all(self.connection.get_sqlite_connection_pool(), size).await
        };
        tracing::debug!(opened, size, "warmed the database pool");
    }

    /// Brings the schema up to date. On PostgreSQL an advisory lock serialises instances
    /// that start at the same moment, so they do not race to apply the same migration.
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        if self.connection.get_database_backend() == DatabaseBackend::Postgres {
            let txn = self.connection.begin().await.context("begin migration")?;
            txn.execute_unprepared("SELECT pg_advisory_xact_lock(7305111202)")
                .await
                .context("take the migration lock")?;
            Migrator::up(&txn, None).await.context("run migrations")?;
            txn.commit().await.context("commit migrations")?;
        } else {
            Migrator::up(&self.connection, None)
                .await
                .context("run migrations")?;
        }
        Ok(())
    }

    /// Whether the database answers a trivial query.
    ///
    /// # Errors
    /// When it does not.
    pub async fn ping(&self) -> anyhow::Result<()> {
        tokio::time::timeout(self.timeout, self.connection.ping())
            .await
            .context("the database did not answer in time")?
            .context("ping the database")
    }

    /// Closes the pool, waiting for connections in use, and the shared connection.
    pub async fn close(self) {
        if let Some(shared) = &self.shared {
            shared.close();
        }
        if let Err(error) = self.connection.close().await {
            tracing::warn!(%error, "closing the database pool");
        }
        if self.writer.is_separate()
            && let Err(error) = self.writer.connection().close_by_ref().await
        {
            tracing::warn!(%error, "closing the database's write connection");
        }
    }

    pub fn users(&self) -> SeaOrmUserRepository {
        SeaOrmUserRepository::new(
            self.connection.clone(),
            self.writer.clone(),
            self.outbox_signal.clone(),
            self.timeout,
            self.origin.clone(),
        )
        .with_shared(self.shared.clone())
    }

    pub fn refresh_tokens(&self) -> SeaOrmRefreshTokenStore {
        SeaOrmRefreshTokenStore::new(
            self.connection.clone(),
            self.writer.clone(),
            self.timeout,
            self.origin.clone(),
        )
    }

    pub fn audit_log(&self) -> SeaOrmAuditLog {
        SeaOrmAuditLog::new(
            self.connection.clone(),
            self.writer.clone(),
            self.timeout,
            self.origin.clone(),
        )
    }

    pub fn clients(&self) -> SeaOrmClientStore {
        SeaOrmClientStore::new(
            self.connection.clone(),
            self.writer.clone(),
            self.timeout,
            self.origin.clone(),
        )
    }

    pub fn oauth(&self) -> crate::oauth::SeaOrmOAuthStore {
        crate::oauth::SeaOrmOAuthStore::new(
            self.connection.clone(),
            self.writer.clone(),
            self.timeout,
            self.origin.clone(),
        )
    }

    pub fn logout_outbox(&self) -> crate::logouts::SeaOrmLogoutOutbox {
        crate::logouts::SeaOrmLogoutOutbox::new(self.writer.clone(), self.timeout)
    }

    pub fn passkeys(&self) -> crate::passkeys::SeaOrmPasskeyStore {
        crate::passkeys::SeaOrmPasskeyStore::new(
            self.connection.clone(),
            self.writer.clone(),
            self.timeout,
            self.origin.clone(),
        )
    }

    pub fn identities(&self) -> crate::identities::SeaOrmIdentityStore {
        crate::identities::SeaOrmIdentityStore::new(
            self.connection.clone(),
            self.writer.clone(),
            self.timeout,
            self.origin.clone(),
        )
    }

    pub fn signing_keys(&self) -> SeaOrmSigningKeyStore {
        SeaOrmSigningKeyStore::new(
            self.connection.clone(),
            self.writer.clone(),
            self.timeout,
            self.origin.clone(),
        )
    }

    pub fn outbox(&self) -> SeaOrmEmailOutbox {
        SeaOrmEmailOutbox::new(self.writer.clone(), self.timeout)
    }

    /// Notified after every commit that queued an email in this process, so the local
    /// delivery worker need not wait for its next poll.
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_signal.clone()
    }

    /// Purges every ten minutes until `stop` turns true; a failure is logged and tried
    /// again next time.
    pub async fn purge_until_stopped(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.purge(Utc::now()).await {
                Ok(purged) => tracing::debug!(?purged, "purged expired rows"),
                Err(error) => tracing::warn!(error = format!("{error:#}"), "purge failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_mins(10)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    #[expect(
        clippy::cast_precision_loss,
        reason = "a pool has far fewer than 2^52 connections"
    )]
    fn connections_in_use(&self) -> f64 {
        let in_use = |connection: &DatabaseConnection| {
            let (size, idle) = if connection.get_database_backend() == DatabaseBackend::Postgres {
                let pool = connection.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            } else {
                let pool = connection.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            };
            (size as usize).saturating_sub(idle)
        };
        let writes = if self.writer.is_separate() {
            in_use(self.writer.connection())
        } else {
            0
        };
        (in_use(&self.connection) + writes) as f64
    }

    /// Keeps the gauges of `/metrics` that only the database knows current until `stop`:
    /// `shelter_db_pool_in_use` every second and `shelter_outbox_pending` every five.
    pub async fn sample_until_stopped(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        for tick in 0_u64.. {
            metrics::gauge!("shelter_db_pool_in_use").set(self.connections_in_use());
            if tick % 5 == 0 {
                let pending =
                    tokio::time::timeout(self.timeout, outbox::pending(&self.connection)).await;
                match pending
                    .context("timed out")
                    .and_then(|n| n.context("count"))
                {
                    #[expect(clippy::cast_precision_loss, reason = "a gauge is a float")]
                    Ok(pending) => metrics::gauge!("shelter_outbox_pending").set(pending as f64),
                    Err(error) => {
                        tracing::debug!(error = format!("{error:#}"), "outbox count failed");
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Deletes what can no longer be used or is past its keeping: audit events older than
    /// the retention, ended or expired sessions, expired or revoked
    /// refresh tokens (spent but
    /// unexpired ones stay, to detect reuse), expired or spent one-time tokens, passkey
    /// ceremonies nobody finished, and emails delivered more than a day ago.
    ///
    /// # Errors
    /// When a delete fails.
    pub async fn purge(&self, now: DateTime<Utc>) -> anyhow::Result<Purged> {
        let audit_events =
            crate::audit::purge(self.writer.connection(), now - self.audit_retention)
                .await
                .context("purge audit events")?;
        let sessions = session::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(session::Column::ExpiresAt.lte(now))
                    .add(session::Column::EndedAt.is_not_null()),
            )
            .exec(self.writer.connection())
            .await
            .context("purge sessions")?
            .rows_affected;
        let refresh_tokens = refresh_token::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(refresh_token::Column::ExpiresAt.lte(now))
                    .add(refresh_token::Column::Revoked.eq(true)),
            )
            .exec(self.writer.connection())
            .await
            .context("purge refresh tokens")?
            .rows_affected;
        let one_time_tokens = one_time_token::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(one_time_token::Column::ExpiresAt.lte(now))
                    .add(one_time_token::Column::UsedAt.is_not_null()),
            )
            .exec(self.writer.connection())
            .await
            .context("purge one-time tokens")?
            .rows_affected;
        let passkey_flows = passkey_flow::Entity::delete_many()
            .filter(passkey_flow::Column::ExpiresAt.lte(now))
            .exec(self.writer.connection())
            .await
            .context("purge passkey ceremonies")?
            .rows_affected;
        let emails = email_outbox::Entity::delete_many()
            .filter(email_outbox::Column::Status.eq(outbox::SENT))
            .filter(email_outbox::Column::SentAt.lte(now - chrono::Duration::days(1)))
            .exec(self.writer.connection())
            .await
            .context("purge delivered emails")?
            .rows_affected;
        Ok(Purged {
            audit_events,
            sessions,
            refresh_tokens,
            one_time_tokens,
            passkey_flows,
            emails,
        })
    }
}
