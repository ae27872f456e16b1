//! Fresh, migrated databases for integration tests, one per test so tests run in parallel.
//!
//! SQLite: a file in a temporary folder (an in-memory URL would give every pooled
//! connection its own empty database). PostgreSQL: a new database named
//! `shelter_test_<uuid>` on the server in `TEST_DATABASE_URL` (default: the local server),
//! dropped when the test ends. With `CI=true` an unreachable PostgreSQL fails the test;
//! otherwise the test is skipped with a printed reason.
//!
//! [`smtp::SmtpServer`] is a real SMTP peer for the mail tests; [`proxy::TcpProxy`] stands
//! between Shelter and a server to cut it off or black-hole it.

pub mod proxy;
pub mod smtp;

use std::time::Duration;

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database as SeaDatabase};
use shelter_persistence::{Database, DatabaseSettings};

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for the length of one test.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A fresh, empty database, or `None` when PostgreSQL is wanted but unreachable outside
    /// CI (the reason is printed).
    pub async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::sqlite()),
            Backend::Postgres => Self::postgres().await,
        }
    }

    /// A database file in a fresh temporary folder.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary folder");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("shelter.db").display()
        );
        Self {
            url,
            _dir: Some(dir),
            postgres: None,
        }
    }

    async fn postgres() -> Option<Self> {
        let admin_url =
            std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned());
        match Self::create_postgres(&admin_url).await {
            Ok(db) => Some(db),
            Err(error) if !in_ci() => {
                skip(&format!(
                    "PostgreSQL at {admin_url} is not reachable: {error:#}"
                ));
                None
            }
            Err(error) => {
                panic!("CI=true and PostgreSQL at {admin_url} is not reachable: {error:#}")
            }
        }
    }

    async fn create_postgres(admin_url: &str) -> anyhow::Result<Self> {
        reachable(admin_url)?;
        let name = format!("shelter_test_{}", uuid::Uuid::new_v4().simple());
        let admin = tokio::time::timeout(Duration::from_secs(10), SeaDatabase::connect(admin_url))
            .await
            .context("timed out")??;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        admin.close().await?;
        let (base, _) = admin_url
            .rsplit_once('/')
            .context("TEST_DATABASE_URL has no database path")?;
        Ok(Self {
            url: format!("{base}/{name}"),
            _dir: None,
            postgres: Some((admin_url.to_owned(), name)),
        })
    }

    /// Settings for this database with a small pool.
    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.url.parse().expect("a test database URL"),
            max_connections: std::num::NonZeroU32::new(10).expect("ten is not zero"),
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
            audit_retention: chrono::Duration::days(90),
        }
    }

    /// Connects and migrates.
    pub async fn migrated(&self) -> Database {
        let db = Database::connect(&self.settings())
            .await
            .expect("connect to the test database");
        db.migrate().await.expect("migrate the test database");
        db
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on; a short-lived
        // runtime on its own thread does the clean-up.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let admin = SeaDatabase::connect(admin_url.as_str()).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                admin.close().await?;
                anyhow::Ok(())
            })
        });
        if let Ok(Err(error)) = cleanup.join() {
            eprintln!("could not drop a test database: {error:#}");
        }
    }
}

/// Whether the server of `url` accepts TCP connections, asked once per test binary: a
/// missing server then costs every test a refused connection, not a pool timeout.
fn reachable(url: &str) -> anyhow::Result<()> {
    static ANSWER: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    ANSWER
        .get_or_init(|| {
            let parsed = url::Url::parse(url).map_err(|e| e.to_string())?;
            let host = parsed.host_str().unwrap_or("127.0.0.1").to_owned();
            let port = parsed.port().unwrap_or(5432);
            let addresses = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
                .map_err(|e| e.to_string())?;
            addresses
                .into_iter()
                .find_map(|address| {
                    std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()
                })
                .map(drop)
                .ok_or_else(|| format!("nothing answers on {host}:{port}"))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Says why a test is skipped. Written to stderr directly: the test harness captures
/// `eprintln!` of passing tests, and a silent skip would look like a pass.
pub fn skip(reason: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "skipping: {reason}");
}

/// Whether the tests run under CI, where a missing service is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Signs up `count` users directly through the store, each with a welcome email queued in
/// the outbox, as many real signups would.
pub async fn queue_welcome_emails(database: &Database, count: usize) {
    use shelter_domain::ports::UserRepository as _;
    use shelter_domain::{EmailAddress, EmailKind, NewUser, PasswordHash, PendingToken, Username};
    let users = database.users();
    let now = chrono::Utc::now();
    for i in 0..count {
        let email = EmailAddress::parse(&format!("queued{i}@example.com")).expect("email");
        let welcome = PendingToken::new(
            email.clone(),
            EmailKind::Welcome,
            format!("queued{i}"),
            now + chrono::Duration::hours(1),
        );
        let user = NewUser::new(
            email,
            Username::parse(&format!("queued{i}")).expect("username"),
            PasswordHash::from_phc("$argon2id$stub".into()),
            now,
        );
        users.insert(user, Some(welcome)).await.expect("queued");
    }
}

/// Declares each scenario `name(backend)` as two tests, `sqlite::name` and
/// `postgres::name`, on a multi-threaded runtime (concurrency tests need real parallelism).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$name($crate::Backend::Sqlite).await }
            )*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() { super::$name($crate::Backend::Postgres).await }
            )*
        }
    };
}
