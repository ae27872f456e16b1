//! Where writes go, and the write transaction every store opens, the same on both databases.

use sea_orm::{
    DatabaseConnection, DatabaseTransaction, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use shelter_domain::StorageError;

use crate::fault::DbResultExt as _;

/// The connection every write goes over. On SQLite it is a pool of its own holding one
/// connection, so this process's writers queue for it and each is woken as the one before
/// commits. With writes on every pooled connection they queued in SQLite's busy handler
/// instead, which sleeps between tries (up to 100 ms a try) and serves nobody in turn:
/// under a load of token refreshes a few waited a whole second. On PostgreSQL it is the
/// pool itself, whose row locks let writers run side by side.
#[derive(Clone)]
pub(crate) struct Writer(DatabaseConnection);

impl Writer {
    pub(crate) fn new(connection: DatabaseConnection) -> Self {
        Self(connection)
    }

    /// Whether writes have a connection of their own (SQLite) or share the pool.
    pub(crate) fn is_separate(&self) -> bool {
        self.0.get_database_backend() == sea_orm::DatabaseBackend::Sqlite
    }

    /// For a write of one statement, which needs no transaction of its own.
    pub(crate) fn connection(&self) -> &DatabaseConnection {
        &self.0
    }

    /// A write transaction that serialises with other writers from its first statement:
    /// `BEGIN IMMEDIATE` on SQLite (where row locks do not exist), and on PostgreSQL the
    /// `SELECT … FOR UPDATE` of the rows it reads.
    pub(crate) async fn begin(&self) -> Result<DatabaseTransaction, StorageError> {
        self.0
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await
            .store_context("begin transaction")
    }
}
