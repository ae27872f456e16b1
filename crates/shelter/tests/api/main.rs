//! HTTP tests: the real application on a random port, real adapters, a real socket. Each
//! scenario runs against a fresh SQLite file and a fresh PostgreSQL database.

mod helpers;

mod auth;
mod chat;
mod cli;
mod docs;
mod emails;
mod faults;
mod hostile;
mod middleware;
mod outbox;
mod ratelimits;
mod scaleout;
mod sessions;
mod users;

/// Declares each scenario `name(backend)` as two tests, `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(shelter_test_support::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(shelter_test_support::Backend::Postgres).await }
            )*
        }
    };
}
