//! Where a driver error becomes a domain error: the one place that tells a database that
//! is down, slow or saturated (`StoreError::Unavailable`, answered 503) from a uniqueness
//! conflict and from a real bug (`Unexpected`, answered 500).

use std::time::Duration;

use sea_orm::{DbErr, RuntimeErr, SqlErr};
use shelter_domain::{StorageError, StoreError};

/// The unique indexes of the users table (migrations/…_users.rs).
const EMAIL_INDEX: &str = "users_email_lower_key";
const USERNAME_INDEX: &str = "users_username_lower_key";

/// Maps a driver error to the domain's terms, with `action` as context.
pub(crate) fn classify(error: DbErr, action: &'static str) -> StoreError {
    match violated_unique_index(&error).as_deref() {
        Some(EMAIL_INDEX) => StoreError::EmailTaken,
        Some(USERNAME_INDEX) => StoreError::UsernameTaken,
        _ => storage(error, action).into(),
    }
}

/// The name of the unique index a write violated. PostgreSQL reports it as the error's
/// constraint; SQLite only inside its message (`UNIQUE constraint failed: index 'name'`).
fn violated_unique_index(error: &DbErr) -> Option<String> {
    let Some(SqlErr::UniqueConstraintViolation(message)) = error.sql_err() else {
        return None;
    };
    if let DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx)) =
        error
        && let sea_orm::sqlx::Error::Database(database) = sqlx.as_ref()
        && let Some(constraint) = database.constraint()
    {
        return Some(constraint.to_owned());
    }
    let (_, rest) = message.split_once("index '")?;
    rest.split_once('\'').map(|(name, _)| name.to_owned())
}

/// Maps a driver error that no store rule explains: unavailable or unexpected.
fn storage(error: DbErr, action: &'static str) -> StorageError {
    let unavailable = is_unavailable(&error);
    let error = anyhow::Error::new(error).context(action);
    if unavailable {
        StorageError::Unavailable(error)
    } else {
        StorageError::Unexpected(error)
    }
}

/// Connection, pool and I/O failures, and the server refusing work for now. None of them
/// says anything about the request, and all of them may pass.
fn is_unavailable(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => match runtime {
            RuntimeErr::SqlxError(sqlx) => sqlx_unavailable(sqlx),
            // SeaORM's own connection-level errors ("connection closed", …).
            RuntimeErr::Internal(_) => matches!(error, DbErr::Conn(_)),
        },
        _ => false,
    }
}

fn sqlx_unavailable(error: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match error {
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        Error::Database(database) => {
            let code = database.code().unwrap_or_default();
            if database
                .try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                postgres_unavailable(&code)
            } else {
                sqlite_unavailable(&code)
            }
        }
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs that mean "not now" rather than "not this": class 08 (connection
/// exception), 53 (insufficient resources: too many connections, disk full, out of
/// memory), 57P0x (shutting down, starting up), 57014 (cancelled by `statement_timeout`),
/// and the conflicts [`retrying`] tries again, should they outlast its tries.
pub(crate) fn postgres_unavailable(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P0")
        || code == "57014"
        || postgres_conflict(code)
}

/// A deadlock (40P01) or serialization failure (40001): the server aborted this
/// transaction so that another could go on, and the same work may well succeed now.
fn postgres_conflict(code: &str) -> bool {
    matches!(code, "40P01" | "40001")
}

/// Whether `error` is PostgreSQL aborting a transaction to break a conflict.
fn is_conflict(error: &StoreError) -> bool {
    let StoreError::Unavailable(cause) = error else {
        return false;
    };
    let Some(DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx))) =
        cause.downcast_ref::<DbErr>()
    else {
        return false;
    };
    matches!(sqlx.as_ref(), sea_orm::sqlx::Error::Database(database)
        if database.code().is_some_and(|code| postgres_conflict(&code)))
}

/// How often a write transaction aborted by a conflict is run again before the request
/// is answered 503.
const CONFLICT_TRIES: u32 = 5;

/// Runs `transaction` again (up to [`CONFLICT_TRIES`] times in all, after a short random
/// pause) when PostgreSQL aborted it to break a deadlock or a serialization conflict. Each
/// try is a new transaction: the aborted one changed nothing. What still conflicts after
/// the last try stays `Unavailable`, which the API answers 503 with `Retry-After`.
pub(crate) async fn retrying<T, F, Fut>(mut transaction: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut tries = 1;
    loop {
        match transaction().await {
            Err(error) if tries < CONFLICT_TRIES && is_conflict(&error) => {
                tracing::debug!(
                    tries,
                    error = format!("{error:#}"),
                    "write conflict; trying again"
                );
                let pause = rand::random_range(5..=25 * u64::from(tries));
                tokio::time::sleep(Duration::from_millis(pause)).await;
                tries += 1;
            }
            outcome => return outcome,
        }
    }
}

/// SQLite result codes, extended ones included (the primary code is the low byte): BUSY
/// and LOCKED once the busy timeout has passed, IOERR, FULL.
fn sqlite_unavailable(code: &str) -> bool {
    code.parse::<u32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6 | 10 | 13))
}

/// Runs one store operation within `limit`. A database that stops answering mid-query (a
/// dead network path never closes its sockets) is then `Unavailable` in bounded time,
/// not a request that hangs; dropping the operation rolls back its transaction.
pub(crate) async fn within<T, E: From<StorageError>>(
    limit: Duration,
    operation: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout(limit, operation)
        .await
        .unwrap_or_else(|_| {
            Err(StorageError::Unavailable(anyhow::anyhow!(
                "the database did not answer within {limit:?}"
            ))
            .into())
        })
}

/// `.store_context("action")?` in place of anyhow's `.context`, so that every driver
/// error passes through [`classify`].
pub(crate) trait DbResultExt<T> {
    fn store_context(self, action: &'static str) -> Result<T, StorageError>;
}

impl<T> DbResultExt<T> for Result<T, DbErr> {
    fn store_context(self, action: &'static str) -> Result<T, StorageError> {
        self.map_err(|error| storage(error, action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnAcquireErr;
    use std::sync::Arc;

    #[test]
    fn connection_and_pool_failures_are_unavailable_and_bugs_are_not() {
        let io = || {
            DbErr::Query(RuntimeErr::SqlxError(Arc::new(sea_orm::sqlx::Error::Io(
                std::io::Error::from(std::io::ErrorKind::ConnectionReset),
            ))))
        };
        let cases = [
            (DbErr::ConnectionAcquire(ConnAcquireErr::Timeout), true),
            (io(), true),
            (
                DbErr::Exec(RuntimeErr::SqlxError(Arc::new(
                    sea_orm::sqlx::Error::PoolTimedOut,
                ))),
                true,
            ),
            (DbErr::Conn(RuntimeErr::Internal("closed".into())), true),
            (
                DbErr::Query(RuntimeErr::SqlxError(Arc::new(
                    sea_orm::sqlx::Error::ColumnNotFound("x".into()),
                ))),
                false,
            ),
            (DbErr::Query(RuntimeErr::Internal("bad sql".into())), false),
            (DbErr::RecordNotFound("user".into()), false),
        ];
        for (error, unavailable) in cases {
            let text = error.to_string();
            let classified = classify(error, "test");
            assert_eq!(
                matches!(classified, StoreError::Unavailable(_)),
                unavailable,
                "{text}"
            );
        }
    }

    #[test]
    fn server_codes_meaning_not_now_are_unavailable() {
        for code in [
            "08006", "53300", "57P01", "57P03", "57014", "40P01", "40001",
        ] {
            assert!(postgres_unavailable(code), "{code}");
        }
        for code in ["23505", "42P01", "22021", "22P05"] {
            assert!(!postgres_unavailable(code), "{code}");
        }
        for code in ["5", "517", "6", "13", "10"] {
            assert!(sqlite_unavailable(code), "{code}");
        }
        for code in ["19", "2067", "1", "787"] {
            assert!(!sqlite_unavailable(code), "{code}");
        }
    }
}
