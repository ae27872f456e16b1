//! The connection pool, migrations and the readiness ping.

use std::time::Duration;

use anyhow::Context;
use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseBackend, DatabaseConnection, TransactionTrait,
};

use crate::SeaOrmUserRepository;

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `sqlite://…` or `postgres://…`.
    pub url: String,
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// How long a request waits for a pooled connection (or SQLite for its write lock)
    /// before failing.
    pub acquire_timeout: Duration,
}

/// A pooled connection to SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct Database {
    connection: DatabaseConnection,
}

impl Database {
    /// Opens the pool. SQLite gets WAL mode (readers never wait for the writer), a busy
    /// timeout (writers queue instead of failing with `SQLITE_BUSY`) and foreign keys.
    ///
    /// # Errors
    /// When the URL is unusable or the database does not answer.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Self> {
        let busy_timeout = settings.acquire_timeout;
        let mut options = ConnectOptions::new(settings.url.clone());
        options
            .max_connections(settings.max_connections)
            .min_connections(1)
            .acquire_timeout(settings.acquire_timeout)
            .connect_timeout(settings.acquire_timeout)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(move |opts| {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(busy_timeout)
                    .foreign_keys(true)
            });
        let connection = sea_orm::Database::connect(options)
            .await
            .context("connect to the database")?;
        Ok(Self { connection })
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
        self.connection.ping().await.context("ping the database")
    }

    /// Closes the pool, waiting for connections in use.
    pub async fn close(self) {
        if let Err(error) = self.connection.close().await {
            tracing::warn!(%error, "closing the database pool");
        }
    }

    pub fn users(&self) -> SeaOrmUserRepository {
        SeaOrmUserRepository::new(self.connection.clone())
    }
}
