//! The composition root: builds every adapter from the settings, wires them into the
//! services, and serves them over HTTP. `Application::serve` takes ready-made services, so
//! tests can swap any adapter.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::{Method, header};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use async_trait::async_trait;
use chrono::Duration;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretString};
use shelter_auth::{Argon2PasswordHasher, HashingParams, JwtTokenIssuer};
use shelter_domain::ports::{Clock, PasswordHasher, SystemClock, UserRepository};
use shelter_domain::{
    AuthService, EmailAddress, NewAccount, Password, UserError, UserService, Username,
};
use shelter_persistence::{Database, DatabaseSettings};

use crate::config::{ConfigError, Settings};
use crate::http::{self, AppState, Probe};

/// The services the HTTP layer serves, and the probes of their dependencies.
pub struct Services {
    pub users: Arc<UserService>,
    pub auth: Arc<AuthService>,
    pub probes: Vec<Arc<dyn Probe>>,
}

impl Services {
    /// Builds the real adapters on an open database.
    ///
    /// # Errors
    /// When an adapter cannot be built.
    pub async fn build(settings: &Settings, database: &Database) -> anyhow::Result<Self> {
        let users: Arc<dyn UserRepository> = Arc::new(database.users());
        let hasher: Arc<dyn PasswordHasher> =
            Arc::new(Argon2PasswordHasher::new(HashingParams::default()).await?);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let tokens = Arc::new(JwtTokenIssuer::new(
            &signing_key(settings),
            Duration::minutes(i64::from(settings.access_token_expire_minutes)),
        ));
        Ok(Self {
            users: Arc::new(UserService::new(
                Arc::clone(&users),
                Arc::clone(&hasher),
                Arc::clone(&clock),
            )),
            auth: Arc::new(AuthService::new(users, hasher, tokens, clock)),
            probes: vec![Arc::new(DatabaseProbe(database.clone()))],
        })
    }
}

/// The configured key, or in development a random one per start (tokens then die with
/// the process; configuration refuses this in production).
fn signing_key(settings: &Settings) -> SecretString {
    settings.secret_key.clone().unwrap_or_else(|| {
        tracing::warn!(
            "SHELTER_SECRET_KEY is not set: using a random key; tokens will not survive a restart"
        );
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let hex = key.iter().fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        });
        SecretString::from(hex)
    })
}

struct DatabaseProbe(Database);

#[async_trait]
impl Probe for DatabaseProbe {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> anyhow::Result<()> {
        self.0.ping().await
    }
}

/// Opens the configured database and brings its schema up to date.
///
/// # Errors
/// When the database cannot be reached or migrated.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Database> {
    let database = Database::connect(&DatabaseSettings {
        url: settings.database_url.expose_secret().to_owned(),
        max_connections: settings.database_max_connections,
        acquire_timeout: settings.database_timeout(),
    })
    .await?;
    database.migrate().await?;
    Ok(database)
}

/// Creates the `SHELTER_FIRST_SUPERUSER_*` account unless a user with that email exists.
///
/// # Errors
/// When the configured values are invalid, or the store fails.
pub async fn ensure_first_superuser(
    settings: &Settings,
    users: &UserService,
) -> anyhow::Result<()> {
    let (Some(email), Some(username), Some(password)) = (
        &settings.first_superuser_email,
        &settings.first_superuser_username,
        &settings.first_superuser_password,
    ) else {
        return Ok(());
    };
    let invalid = |key: &str, reason: &dyn std::fmt::Display| ConfigError {
        setting: format!("SHELTER_FIRST_SUPERUSER_{key}"),
        reason: reason.to_string(),
    };
    let account = NewAccount {
        email: EmailAddress::parse(email).map_err(|e| invalid("EMAIL", &e))?,
        username: Username::parse(username).map_err(|e| invalid("USERNAME", &e))?,
        password: Password::parse(password.expose_secret()).map_err(|e| invalid("PASSWORD", &e))?,
    };
    match users.create_superuser(account).await {
        Ok(user) => tracing::info!(user_id = %user.id, "created the first superuser"),
        // Present already, possibly created by another instance starting at the same time.
        Err(UserError::EmailTaken) => {}
        Err(UserError::UsernameTaken) => tracing::warn!(
            "SHELTER_FIRST_SUPERUSER_USERNAME belongs to another user; no superuser was created"
        ),
        Err(other) => return Err(other).context("create the first superuser"),
    }
    Ok(())
}

/// HTTP-level settings.
#[derive(Debug, Clone, Default)]
pub struct HttpSettings {
    pub allowed_origins: Vec<String>,
    /// Worker threads; `None` means one per core.
    pub workers: Option<usize>,
}

impl From<&Settings> for HttpSettings {
    fn from(settings: &Settings) -> Self {
        Self {
            allowed_origins: settings.allowed_origins.clone(),
            workers: None,
        }
    }
}

/// A running server.
pub struct Application {
    port: u16,
    server: Server,
    database: Option<Database>,
}

impl Application {
    /// Builds everything from the settings and binds the listener (port 0 picks a free one).
    ///
    /// # Errors
    /// When the database, an adapter or the listener cannot be set up.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let database = open_database(settings).await?;
        let services = Services::build(settings, &database).await?;
        ensure_first_superuser(settings, &services.users).await?;
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))
            .with_context(|| format!("listen on {}:{}", settings.host, settings.port))?;
        let mut application = Self::serve(listener, services, &HttpSettings::from(settings))?;
        application.database = Some(database);
        Ok(application)
    }

    /// Serves ready-made services on a bound listener.
    ///
    /// # Errors
    /// When the listener cannot be used.
    pub fn serve(
        listener: TcpListener,
        services: Services,
        settings: &HttpSettings,
    ) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let state = web::Data::new(AppState {
            users: services.users,
            auth: services.auth,
            probes: services.probes,
        });
        let origins = settings.allowed_origins.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(http::routes)
                .default_service(web::to(|| async {
                    actix_web::HttpResponse::NotFound().finish()
                }))
                .wrap(Condition::new(!origins.is_empty(), cors(&origins)))
                .wrap(from_fn(http::observe))
        })
        .listen(listener)?
        .shutdown_timeout(10);
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        Ok(Self {
            port,
            server: server.run(),
            database: None,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT/SIGTERM, finishing requests in flight, then closes the pool.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await.context("serve HTTP")?;
        if let Some(database) = self.database {
            database.close().await;
        }
        Ok(())
    }
}

/// CORS for the allow-list only. Credentials are allowed only with named origins, never
/// with `*`; a request from another origin is served without CORS headers (the browser
/// then withholds the answer), not refused, so non-browser clients are unaffected.
fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            http::REQUEST_ID_HEADER,
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            http::REQUEST_ID_HEADER,
            http::PROCESS_TIME_HEADER,
        ])
        .max_age(3600)
        .block_on_origin_mismatch(false);
    if origins.iter().any(|origin| origin == "*") {
        cors = cors.allow_any_origin();
    } else {
        for origin in origins {
            cors = cors.allowed_origin(origin.trim_end_matches('/'));
        }
        cors = cors.supports_credentials();
    }
    cors
}
