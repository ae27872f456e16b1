//! The composition root: builds every adapter from the settings, wires them into the
//! services, and serves them over HTTP. `Application::serve` takes ready-made services, so
//! tests can swap any adapter.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use std::rc::Rc;

use actix_http::{HttpService, KeepAlive};
use actix_server::Server;
use actix_service::{
    IntoServiceFactory as _, ServiceFactory as _, boxed, fn_factory, fn_service, map_config,
};
use actix_web::dev::AppConfig;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, web};
use anyhow::Context;
use async_trait::async_trait;
use rand::RngCore as _;
use secrecy::SecretString;
use shelter_crypto::{
    Argon2PasswordHasher, HashingParams, JwtTokenIssuer, KeyRing, OidcTokens, SealedCodes,
    SealedValues, TotpAuthenticator,
};
use shelter_domain::audit::AuditService;
use shelter_domain::clients::ClientService;
use shelter_domain::cluster::{ClusterBus, ClusterEvent, ClusterSink};
use shelter_domain::identities::{FederationPorts, FederationService};
use shelter_domain::keys::KeyAlgorithm;
use shelter_domain::limits::RateLimiter;
use shelter_domain::mfa::Authenticator;
use shelter_domain::oauth::{OAuthPolicy, OAuthPorts, OAuthService};
use shelter_domain::passkeys::{PasskeyStore, WebAuthn};
use shelter_domain::ports::{
    Clock, Mailer, PasswordHasher, RefreshTokenStore, SystemClock, UserRepository,
};
use shelter_domain::{AuthPorts, AuthService, MfaService, PasskeyService, UserError, UserService};
use shelter_mail::{LettreMailer, OutboxWorker};
use shelter_persistence::{CachedSessions, CachedUsers, Database, UserCache};
use shelter_redis::{InProcessRateLimiter, LocalOnlyBus, Redis, RedisClusterBus, RedisRateLimiter};
use shelter_upstream::Upstreams;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::chat;
use crate::config::{JwtAlgorithm, Settings};
use crate::edge::context::EdgeOrigin;
use crate::edge::state::{AppState, Probe};
use crate::edge::{cors, middleware};
use crate::runtime::backchannel::BackchannelWorker;
use crate::runtime::hub::Hub;
pub use crate::runtime::shutdown::Stopper;
use crate::runtime::{shutdown, telemetry};
use crate::{api, oauth, pages};

/// Other instances' events: the Redis bus that receives them and the inbox it hands them to.
pub type Subscription = (Arc<RedisClusterBus>, Arc<Inbox>);

/// The cache, then authentication's users, the services' users and the sessions.
type UserStores = (
    Option<Arc<UserCache>>,
    Arc<dyn UserRepository>,
    Arc<dyn UserRepository>,
    Arc<dyn RefreshTokenStore>,
);

/// The user and session stores: authentication's (read through the cache when there is one),
/// the services' own (`fresh`) and the sessions, with the cache they share.
fn user_stores(settings: &Settings, database: &Database, bus: &Arc<dyn ClusterBus>) -> UserStores {
    let store: Arc<dyn UserRepository> = Arc::new(database.users());
    // Authentication reads through the cache; the services' own reads, which writes
    // compare revisions against, never do. Both views announce every write.
    let cache = (!settings.user_cache.is_zero())
        .then(|| UserCache::new(settings.user_cache, Arc::clone(bus)));
    let sessions: Arc<dyn RefreshTokenStore> = Arc::new(database.refresh_tokens());
    let (users, fresh_users, sessions): (_, _, Arc<dyn RefreshTokenStore>) = match &cache {
        Some(cache) => (
            Arc::new(CachedUsers::cached(Arc::clone(&store), Arc::clone(cache)))
                as Arc<dyn UserRepository>,
            Arc::new(CachedUsers::fresh(store, Arc::clone(cache))) as Arc<dyn UserRepository>,
            Arc::new(CachedSessions::new(sessions, Arc::clone(cache))),
        ),
        None => (Arc::clone(&store), store, sessions),
    };
    (cache, users, fresh_users, sessions)
}

/// The WebAuthn relying party of the settings; `None`, said once in the log, when the public
/// URL cannot name one (passkeys need a domain).
fn relying_party(settings: &Settings) -> anyhow::Result<Option<Arc<dyn WebAuthn>>> {
    let Some(party) = settings.relying_party()? else {
        tracing::info!(
            public_url = %settings.public_url,
            "passkeys are off: the public URL's host is an IP address; set SHELTER_WEBAUTHN_RP_ID (and SHELTER_WEBAUTHN_ORIGINS) to a domain to turn them on"
        );
        return Ok(None);
    };
    Ok(Some(Arc::new(party)))
}

/// The longest wait for one request to a provider; a callback makes up to three (the
/// token, a refetched key set, userinfo), so a third of the request deadline at most.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the real adapters on an open database into the application's state.
///
/// # Errors
/// When an adapter cannot be built.
#[expect(
    clippy::too_many_lines,
    reason = "the composition root: every service, each named once, with its adapters"
)]
pub fn build_state(
    settings: &Settings,
    database: &Database,
    keys: &Arc<KeyRing>,
) -> anyhow::Result<Built> {
    let hasher: Arc<dyn PasswordHasher> = Arc::new(Argon2PasswordHasher::new(
        HashingParams::default(),
        settings.hashing_pool(),
    )?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let secret = signing_key(settings);
    let authenticator: Arc<dyn Authenticator> = Arc::new(TotpAuthenticator::new(&secret));
    let issuer = settings.token_audience().issuer;
    let tokens = Arc::new(first_party_tokens(settings, keys, &secret));
    let redis = settings
        .redis
        .url
        .as_ref()
        .map(|url| Redis::new(url, &settings.redis.prefix).map(Arc::new))
        .transpose()?;
    let (bus, redis_bus): (Arc<dyn ClusterBus>, _) = match &redis {
        Some(redis) => {
            let bus = Arc::new(RedisClusterBus::new(Arc::clone(redis)));
            (bus.clone(), Some(bus))
        }
        None => (Arc::new(LocalOnlyBus), None),
    };
    let (cache, users, fresh_users, sessions) = user_stores(settings, database, &bus);
    let limiter = rate_limiter(settings, redis.as_ref());
    let probes: Vec<Arc<dyn Probe>> = std::iter::once(Arc::new(database.clone()) as Arc<dyn Probe>)
        .chain(redis.map(|redis| redis as Arc<dyn Probe>))
        .collect();
    let hub = Arc::new(Hub::new(bus));
    let inbox = Arc::new(Inbox {
        hub: Arc::clone(&hub),
        cache,
    });
    let webauthn = relying_party(settings)?;
    let passkeys: Arc<dyn PasskeyStore> = Arc::new(database.passkeys());
    let auth = Arc::new(AuthService::new(
        AuthPorts {
            user_store: users,
            sessions,
            hasher: Arc::clone(&hasher),
            tokens,
            authenticator: Arc::clone(&authenticator),
            audit: Arc::new(database.audit_log()),
            clock: Arc::clone(&clock),
            ended: hub.clone(),
            passkeys: Arc::clone(&passkeys),
            webauthn: webauthn.clone(),
        },
        settings.session_policy(),
    ));
    let upstreams = upstreams(settings)?;
    let federation = Arc::new(FederationService::new(FederationPorts {
        auth: Arc::clone(&auth),
        users: Arc::clone(&fresh_users),
        hasher: Arc::clone(&hasher),
        identities: Arc::new(database.identities()),
        upstream: upstreams.clone(),
        seal: Arc::new(SealedValues::new(&secret)),
        clock: Arc::clone(&clock),
    }));
    let state = AppState {
        auth,
        federation,
        passkeys: Arc::new(PasskeyService::new(
            Arc::clone(&passkeys),
            Arc::clone(&fresh_users),
            webauthn.clone(),
            Arc::clone(&clock),
        )),
        email_codes: settings.email.code_enabled,
        users: Arc::new(UserService::new(
            Arc::clone(&fresh_users),
            Arc::clone(&hasher),
            Arc::clone(&clock),
            hub.clone(),
        )),
        audit: Arc::new(AuditService::new(Arc::new(database.audit_log()))),
        clients: Arc::new(ClientService::new(
            Arc::new(database.clients()),
            Arc::clone(&clock),
        )),
        oauth: Arc::new(oauth_service(
            settings,
            database,
            keys,
            Arc::clone(&fresh_users),
            &secret,
        )),
        issuer,
        dynamic_registration: settings.oauth_dynamic_registration,
        mfa: Arc::new(MfaService::new(fresh_users, hasher, authenticator, clock)),
        probes,
        hub,
        limiter,
        trusted_proxies: settings.trusted_proxies.clone(),
        browser: settings.browser(&secret),
    };
    Ok(Built {
        state,
        subscription: redis_bus.map(|bus| (bus, inbox)),
        upstreams,
    })
}

/// What [`build_state`] makes: the state, and what must run beside it.
pub struct Built {
    pub state: AppState,
    /// With Redis, the bus whose subscription must feed the inbox.
    pub subscription: Option<Subscription>,
    /// The upstream providers, to discover once the server runs.
    pub upstreams: Arc<Upstreams>,
}

/// The upstream OpenID Connect providers; their requests share one bounded HTTP client.
fn upstreams(settings: &Settings) -> anyhow::Result<Arc<Upstreams>> {
    let timeout = PROVIDER_TIMEOUT.min(settings.request_timeout / 3);
    let public = settings
        .public_url
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    Ok(Arc::new(Upstreams::new(
        settings.providers()?,
        crate::runtime::backchannel::http_client(timeout)?,
        |id| format!("{public}/auth/providers/{id}/callback"),
    )?))
}

/// The signer of Shelter's own access tokens: `EdDSA` with the ring, or HS256 with the
/// secret (the ring's keys are published either way).
fn first_party_tokens(
    settings: &Settings,
    keys: &Arc<KeyRing>,
    secret: &SecretString,
) -> JwtTokenIssuer {
    match settings.jwt.algorithm {
        JwtAlgorithm::EdDsa => JwtTokenIssuer::eddsa(
            Arc::clone(keys),
            settings.access_lifetime(),
            settings.token_audience(),
        ),
        JwtAlgorithm::Hs256 => JwtTokenIssuer::new(
            secret,
            settings.access_lifetime(),
            settings.token_audience(),
        )
        .publishing(Arc::clone(keys)),
    }
}

/// The OpenID Connect provider's signer, on the ring's RSA keys.
fn oidc_tokens(settings: &Settings, keys: &Arc<KeyRing>) -> Arc<OidcTokens> {
    Arc::new(OidcTokens::new(
        Arc::clone(keys),
        settings.token_audience().issuer,
        settings.access_lifetime(),
        Arc::new(SystemClock),
    ))
}

/// The OpenID Connect provider, on the ring's RSA keys and its codes sealed with `secret`.
fn oauth_service(
    settings: &Settings,
    database: &Database,
    keys: &Arc<KeyRing>,
    users: Arc<dyn UserRepository>,
    secret: &SecretString,
) -> OAuthService {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let policy = settings.session_policy();
    OAuthService::new(
        OAuthPorts {
            clients: Arc::new(database.clients()),
            store: Arc::new(database.oauth()),
            users,
            tokens: oidc_tokens(settings, keys),
            codes: Arc::new(SealedCodes::new(secret)),
            clock,
        },
        OAuthPolicy {
            refresh_lifetime: policy.refresh_lifetime,
            reuse_grace: policy.reuse_grace,
        },
    )
}

/// The mailer the settings ask for.
///
/// # Errors
/// The smtp transport without a URL, an unusable SMTP URL or email folder.
pub fn mailer(settings: &Settings) -> anyhow::Result<LettreMailer> {
    LettreMailer::new(&settings.mail()?)
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

/// The signing keys: always the RSA family of the OpenID Connect provider, and with `EdDSA`
/// the first-party one, from the database (each family's first key is created on the
/// first start). A development server without `SHELTER_SECRET_KEY` keeps an RSA key in
/// memory instead, made anew at each start like its random signing secret.
///
/// # Errors
/// When the keys cannot be read, or were sealed with another `SHELTER_SECRET_KEY`.
pub async fn key_ring(settings: &Settings, database: &Database) -> anyhow::Result<Arc<KeyRing>> {
    let families = signing_families(settings);
    let (lifetime, now) = (settings.access_lifetime(), chrono::Utc::now());
    match settings.secret_key.as_ref() {
        Some(secret) => KeyRing::open(
            Arc::new(database.signing_keys()),
            secret,
            lifetime,
            now,
            &families,
        )
        .await
        .context("load the signing keys"),
        None if settings.jwt.algorithm == JwtAlgorithm::EdDsa => {
            anyhow::bail!("SHELTER_SECRET_KEY is required with EdDSA")
        }
        None => KeyRing::ephemeral(lifetime, now, &families).await,
    }
}

/// The key families this deployment signs with.
pub fn signing_families(settings: &Settings) -> Vec<KeyAlgorithm> {
    match settings.jwt.algorithm {
        JwtAlgorithm::EdDsa => vec![KeyAlgorithm::EdDsa, KeyAlgorithm::Rs256],
        JwtAlgorithm::Hs256 => vec![KeyAlgorithm::Rs256],
    }
}

/// Opens the configured database and brings its schema up to date.
///
/// # Errors
/// When the database cannot be reached or migrated.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Database> {
    let database = Database::connect(&settings.database()).await?;
    database.migrate().await?;
    Ok(database)
}

/// The rate limiter: none when limits are off, Redis's counters when Redis is configured,
/// else this process's.
fn rate_limiter(settings: &Settings, redis: Option<&Arc<Redis>>) -> Option<Arc<dyn RateLimiter>> {
    match (redis, settings.rate_limit.enabled) {
        (_, false) => None,
        (Some(redis), true) => Some(Arc::new(RedisRateLimiter::new(
            Arc::clone(redis),
            settings.quotas(),
            settings.rate_limit.fail_open,
        ))),
        (None, true) => Some(Arc::new(InProcessRateLimiter::new(&settings.quotas()))),
    }
}

/// Creates the `SHELTER_FIRST_SUPERUSER_*` account unless a user with that email exists.
///
/// # Errors
/// When the configured values are invalid, or the store fails.
pub async fn ensure_first_superuser(
    settings: &Settings,
    users: &UserService,
) -> anyhow::Result<()> {
    let Some(account) = settings.first_superuser.account() else {
        return Ok(());
    };
    match users.create_superuser(account).await {
        Ok(user) => tracing::info!(user_id = %user.id(), "created the first superuser"),
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
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub allowed_origins: Vec<String>,
    /// Worker threads; `None` means one per core.
    pub workers: Option<usize>,
    /// Every request's deadline.
    pub request_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self::from(&Settings::default())
    }
}

impl From<&Settings> for HttpSettings {
    fn from(settings: &Settings) -> Self {
        Self {
            allowed_origins: settings.allowed_origins.clone(),
            workers: None,
            request_timeout: settings.request_timeout,
        }
    }
}

/// A running server and its background tasks.
pub struct Application {
    port: u16,
    server: Server,
    hub: Arc<Hub>,
    database: Option<Database>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    shutdown: Arc<tokio::sync::Notify>,
}

impl Application {
    /// Builds everything from the settings and binds the listener (port 0 picks a free one).
    ///
    /// # Errors
    /// When the database, an adapter or the listener cannot be set up.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        // The audit events of a request record the context the edge made for it.
        let database = open_database(settings)
            .await?
            .with_origin(Arc::new(EdgeOrigin));
        let keys = key_ring(settings, &database).await?;
        let Built {
            state,
            subscription: redis_bus,
            upstreams,
        } = build_state(settings, &database, &keys)?;
        ensure_first_superuser(settings, &state.users).await?;
        let mailer: Arc<dyn Mailer> = Arc::new(mailer(settings)?);
        let listener = TcpListener::bind((settings.host.as_str(), settings.port))
            .with_context(|| format!("listen on {}:{}", settings.host, settings.port))?;
        let mut application = Self::serve(listener, state, &HttpSettings::from(settings))?;
        let worker = OutboxWorker::new(
            Arc::new(database.outbox()),
            mailer,
            Arc::new(SystemClock),
            settings.delivery(),
            database.outbox_signal(),
        );
        application.spawn(|stop| worker.run(stop));
        let logouts = BackchannelWorker::new(
            Arc::new(database.logout_outbox()),
            oidc_tokens(settings, &keys),
        )?;
        application.spawn(|stop| logouts.run(stop));
        let purged = database.clone();
        application.spawn(move |stop| purged.purge_until_stopped(stop));
        let sampled = database.clone();
        application.spawn(move |stop| sampled.sample_until_stopped(stop));
        Self::spawn_detached(database.clone().warm_up());
        Self::spawn_detached(upstreams.discover_all());
        if let Some((bus, inbox)) = redis_bus {
            application.spawn(move |stop| bus.deliver_to(inbox, stop));
        }
        let every = settings.jwt.keys.reload_every;
        application.spawn(move |stop| keys.keep_loaded_until_stopped(every, stop));
        application.database = Some(database);
        Ok(application)
    }

    /// Runs a background task until the application stops.
    #[expect(
        clippy::disallowed_methods,
        reason = "a background task of the process, outside any request"
    )]
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(
        &mut self,
        task: impl FnOnce(watch::Receiver<bool>) -> F,
    ) {
        self.tasks.push(tokio::spawn(task(self.stop.subscribe())));
    }

    /// Runs a background task that ends by itself, without waiting for it at shutdown.
    #[expect(
        clippy::disallowed_methods,
        reason = "a background task of the process, outside any request"
    )]
    fn spawn_detached(task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }

    /// Serves a ready-made state on a bound listener, so tests can swap any adapter.
    ///
    /// # Errors
    /// When the listener cannot be used.
    pub fn serve(
        listener: TcpListener,
        state: AppState,
        settings: &HttpSettings,
    ) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        telemetry::install_metrics();
        crate::runtime::backchannel::install_tls_provider();
        let hub = Arc::clone(&state.hub);
        let state = web::Data::new(state);
        let origins = settings.allowed_origins.clone();
        let deadline = settings.request_timeout;
        let application = move || {
            App::new()
                .app_data(state.clone())
                .configure(api::routes)
                .configure(oauth::routes)
                .service(pages::scope())
                .default_service(web::to(|| async {
                    actix_web::HttpResponse::NotFound().finish()
                }))
                .wrap(Condition::new(!origins.is_empty(), cors::cors(&origins)))
                .wrap(from_fn(move |req, next| {
                    middleware::observe(req, next, deadline)
                }))
        };
        // actix-web's `HttpServer` has no upgrade service, so the server is put together here
        // as it would put it together (its timeouts and graceful shutdown), with one: upgrade
        // requests and their sockets go to the chat (`chat::switch`), which takes the
        // connection over. `AppConfig` only feeds `ConnectionInfo` and `url_for`, which
        // nothing here reads, so its default stands.
        let mut builder = Server::build();
        let closing = builder.graceful_shutdown_signal();
        builder = builder
            .listen("shelter", listener, move || {
                let closing = closing.clone();
                let upgrade = {
                    let application = application.clone();
                    fn_factory(move || {
                        let factory =
                            map_config(application().into_factory(), |()| AppConfig::default());
                        async move {
                            let service = factory.new_service(()).await?;
                            let service: chat::AppService = Rc::new(boxed::service(service));
                            Ok::<_, ()>(fn_service(move |call| {
                                chat::switch(Rc::clone(&service), call)
                            }))
                        }
                    })
                };
                HttpService::build()
                    .graceful_shutdown_signal(move || {
                        let closing = closing.clone();
                        async move { closing.notified().await }
                    })
                    .keep_alive(KeepAlive::default())
                    .client_request_timeout(Duration::from_secs(5))
                    .client_disconnect_timeout(Duration::from_secs(1))
                    .h1_allow_half_closed(true)
                    // Without it a WebSocket's second frame in a row waits for the peer's
                    // delayed ACK of the first (Nagle): a chat broadcast arrived 40 ms after
                    // "Message received".
                    .tcp_nodelay(true)
                    .upgrade(upgrade)
                    .finish(map_config(application().into_factory(), |()| {
                        AppConfig::default()
                    }))
                    .tcp()
            })?
            // Signals are handled in `run_until_stopped`, which closes WebSockets first.
            .disable_signals()
            .shutdown_timeout(10);
        if let Some(workers) = settings.workers {
            builder = builder.workers(workers);
        }
        let server = builder;
        Ok(Self {
            port,
            server: server.run(),
            hub,
            database: None,
            stop: watch::Sender::new(false),
            tasks: Vec::new(),
            shutdown: Arc::default(),
        })
    }

    pub fn stopper(&self) -> Stopper {
        Stopper(Arc::clone(&self.shutdown))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT/SIGTERM, finishing requests in flight, then stops the
    /// background tasks (the outbox worker finishes its batch) and closes the pool.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let mut server = self.server;
        let outcome = tokio::select! {
            finished = &mut server => finished,
            () = shutdown::requested(&self.shutdown) => {
                tracing::info!("shutting down: closing WebSockets, finishing requests");
                self.hub.shutdown();
                // The command is sent at once; the server future, polled below, carries
                // it out (awaiting the returned future first would deadlock).
                drop(handle.stop(true));
                server.await
            }
        }
        .context("serve HTTP");
        self.stop.send_replace(true);
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .is_err()
            {
                tracing::warn!("a background task did not stop in time");
            }
        }
        if let Some(database) = self.database {
            database.close().await;
        }
        outcome
    }
}

#[async_trait]
impl Probe for Database {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> anyhow::Result<()> {
        self.ping().await
    }
}

#[async_trait]
impl Probe for Redis {
    fn name(&self) -> &'static str {
        "Redis"
    }

    async fn check(&self) -> anyhow::Result<()> {
        self.ping().await
    }
}

/// Where other instances' events land: the chat's for the hub, and every change to a user
/// or end of a session for the user cache. Composition's, since it joins two adapters.
pub struct Inbox {
    pub hub: Arc<Hub>,
    pub cache: Option<Arc<UserCache>>,
}

impl ClusterSink for Inbox {
    fn deliver(&self, event: ClusterEvent) {
        if let Some(cache) = &self.cache {
            match &event {
                ClusterEvent::Changed { user } | ClusterEvent::Revoked { user } => {
                    cache.invalidate(*user);
                }
                ClusterEvent::SessionEnded { session, .. } => cache.invalidate_session(*session),
                ClusterEvent::Said { .. } | ClusterEvent::Left { .. } => {}
            }
        }
        self.hub.deliver(event);
    }
}
