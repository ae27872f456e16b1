//! The write transaction every store opens, the same on both databases.

use sea_orm::{
    DatabaseConnection, DatabaseTransaction, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use shelter_domain::StorageError;

use crate::fault::DbResultExt as _;

/// A write transaction that serialises with other writers from its first statement:
/// `BEGIN IMMEDIATE` on SQLite (where row locks do not exist), and on PostgreSQL the
/// `SELECT … FOR UPDATE` of the rows it reads.
pub(crate) async fn begin_write(
    db: &DatabaseConnection,
) -> Result<DatabaseTransaction, StorageError> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
    .store_context("begin transaction")
}
