//! Fresh, migrated databases for integration tests, one per test so tests run in parallel.
//!
//! SQLite: a file in a temporary folder (an in-memory URL would give every pooled
//! connection its own empty database). PostgreSQL: a new database named
//! `shelter_test_<uuid>` on the server in `TEST_DATABASE_URL` (default: the local server),
//! dropped when the test ends. With `CI=true` an unreachable PostgreSQL fails the test;
//! otherwise the test is skipped with a printed reason.
//!
//! [`smtp::SmtpServer`] is a real SMTP peer for the mail tests.

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
                eprintln!("skipping: PostgreSQL at {admin_url} is not reachable: {error:#}");
                None
            }
            Err(error) => {
                panic!("CI=true and PostgreSQL at {admin_url} is not reachable: {error:#}")
            }
        }
    }

    async fn create_postgres(admin_url: &str) -> anyhow::Result<Self> {
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
            url: self.url.clone(),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
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
        let user = NewUser {
            email,
            username: Username::parse(&format!("queued{i}")).expect("username"),
            password_hash: PasswordHash::from_phc("$argon2id$stub".into()),
            is_superuser: false,
            email_verified: false,
            now,
        };
        users.insert(user, Some(welcome)).await.expect("queued");
    }
}
