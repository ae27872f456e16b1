//! Faults that real adapters cannot be made to produce on demand: mocked ports.

use std::net::TcpListener;
use std::sync::Arc;

use async_trait::async_trait;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::json;
use shelter::app::{Application, HttpSettings};
use shelter::edge::state::{AppState, Probe};
use shelter_crypto::JwtTokenIssuer;
use shelter_domain::mfa::MockAuthenticator;
use shelter_domain::ports::{
    MockPasswordHasher, MockRefreshTokenStore, MockUserRepository, SystemClock,
};
use shelter_domain::{
    AuthPorts, AuthService, MfaService, PasswordHash, SessionPolicy, StoreError, UserService,
};

use crate::helpers::{SECRET_KEY, problem};

fn accepting_audit() -> shelter_domain::audit::MockAuditLog {
    let mut audit = shelter_domain::audit::MockAuditLog::new();
    audit.expect_record().returning(|_, _| Ok(()));
    audit
}

struct DownProbe;

#[async_trait]
impl Probe for DownProbe {
    fn name(&self) -> &'static str {
        "database"
    }

    async fn check(&self) -> anyhow::Result<()> {
        anyhow::bail!("connection refused")
    }
}

/// The OpenID Connect provider, which these tests never reach.
fn unused_provider(
    users: Arc<MockUserRepository>,
    clock: Arc<SystemClock>,
) -> shelter_domain::oauth::OAuthService {
    shelter_domain::oauth::OAuthService::new(
        shelter_domain::oauth::OAuthPorts {
            clients: Arc::new(shelter_domain::clients::MockClientStore::new()),
            store: Arc::new(shelter_domain::oauth::MockOAuthStore::new()),
            users,
            tokens: Arc::new(shelter_domain::oauth::MockOAuthTokens::new()),
            codes: Arc::new(shelter_domain::oauth::MockCodeSeal::new()),
            clock,
        },
        shelter_domain::oauth::OAuthPolicy {
            refresh_lifetime: chrono::Duration::days(30),
            reuse_grace: chrono::Duration::seconds(10),
        },
    )
}

/// A user store whose every call fails, as when the database is gone.
fn failing_users() -> MockUserRepository {
    let mut users = MockUserRepository::new();
    users.expect_insert().returning(|_, _| {
        Err(StoreError::Unexpected(anyhow::anyhow!(
            "connection to postgres://shelter:hunter2@db:5432 refused"
        )))
    });
    users.expect_find_by_username().returning(|_| {
        Err(StoreError::Unexpected(anyhow::anyhow!(
            "a bug in the store"
        )))
    });
    users
}

/// An app whose user store fails every call, as when the database is gone.
fn broken_app() -> String {
    let users = Arc::new(failing_users());
    let mut hasher = MockPasswordHasher::new();
    hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::from_phc("$argon2id$stub".into())));
    let hasher = Arc::new(hasher);
    let clock = Arc::new(SystemClock);
    let tokens = Arc::new(JwtTokenIssuer::new(
        &SecretString::from(SECRET_KEY),
        chrono::Duration::minutes(30),
        shelter_crypto::TokenAudience {
            issuer: "http://127.0.0.1:8000".to_owned(),
            audience: "shelter".to_owned(),
        },
    ));
    let hub = Arc::new(shelter::runtime::hub::Hub::new(Arc::new(
        shelter_redis::LocalOnlyBus,
    )));
    let passkeys: Arc<dyn shelter_domain::passkeys::PasskeyStore> =
        Arc::new(shelter_domain::passkeys::MockPasskeyStore::new());
    let users_for_federation = users.clone();
    let auth = Arc::new(AuthService::new(
        AuthPorts {
            user_store: users.clone(),
            sessions: Arc::new(MockRefreshTokenStore::new()),
            hasher: hasher.clone(),
            tokens,
            authenticator: Arc::new(MockAuthenticator::new()),
            audit: Arc::new(accepting_audit()),
            clock: clock.clone(),
            ended: hub.clone(),
            passkeys: passkeys.clone(),
            webauthn: None,
        },
        SessionPolicy {
            refresh_lifetime: chrono::Duration::days(30),
            reuse_grace: chrono::Duration::seconds(10),
            require_verified_email: false,
        },
    ));
    let state = AppState {
        passkeys: Arc::new(shelter_domain::PasskeyService::new(
            passkeys.clone(),
            users.clone(),
            None,
            clock.clone(),
        )),
        email_codes: true,
        users: Arc::new(UserService::new(
            users.clone(),
            hasher.clone(),
            clock.clone(),
            hub.clone(),
        )),
        audit: Arc::new(shelter_domain::audit::AuditService::new(Arc::new(
            accepting_audit(),
        ))),
        clients: Arc::new(shelter_domain::clients::ClientService::new(
            Arc::new(shelter_domain::clients::MockClientStore::new()),
            clock.clone(),
        )),
        oauth: Arc::new(unused_provider(users.clone(), clock.clone())),
        issuer: "http://127.0.0.1:8000".to_owned(),
        dynamic_registration: false,
        mfa: Arc::new(MfaService::new(
            users.clone(),
            hasher.clone(),
            Arc::new(MockAuthenticator::new()),
            clock.clone(),
        )),
        auth: auth.clone(),
        federation: Arc::new(no_providers(auth, users_for_federation, clock.clone())),
        probes: vec![Arc::new(DownProbe)],
        hub,
        limiter: None,
        trusted_proxies: Vec::new(),
        browser: shelter::edge::cookies::BrowserSettings::new(
            &SecretString::from(SECRET_KEY),
            false,
            std::time::Duration::from_hours(1),
        ),
    };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let app = Application::serve(
        listener,
        state,
        &HttpSettings {
            workers: Some(1),
            ..HttpSettings::default()
        },
    )
    .expect("serve");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    address
}

/// Sign-in with providers, with none configured: nothing of it is reached.
fn no_providers(
    auth: Arc<AuthService>,
    users: Arc<dyn shelter_domain::ports::UserRepository>,
    clock: Arc<dyn shelter_domain::ports::Clock>,
) -> shelter_domain::identities::FederationService {
    use shelter_domain::identities::{
        FederationPorts, FederationService, MockIdentityStore, MockSeal, MockUpstream,
    };
    let mut upstream = MockUpstream::new();
    upstream.expect_providers().returning(Vec::new);
    FederationService::new(FederationPorts {
        auth,
        users,
        hasher: Arc::new(shelter_domain::ports::MockPasswordHasher::new()),
        identities: Arc::new(MockIdentityStore::new()),
        upstream: Arc::new(upstream),
        seal: Arc::new(MockSeal::new()),
        clock,
    })
}

#[tokio::test]
async fn a_failing_store_answers_500_without_internals() {
    let address = broken_app();
    let client = crate::helpers::plain_client();
    let response = client
        .post(format!("{address}/users"))
        .json(&json!({"email": "a@example.com", "username": "abc", "password": "password1"}))
        .send()
        .await
        .expect("request");
    let body = problem(response, StatusCode::INTERNAL_SERVER_ERROR).await;
    let text = body.to_string();
    assert!(
        !text.contains("hunter2") && !text.contains("postgres"),
        "{text}"
    );

    let response = client
        .post(format!("{address}/auth/token"))
        .form(&[("username", "abc"), ("password", "password1")])
        .send()
        .await
        .expect("request");
    problem(response, StatusCode::INTERNAL_SERVER_ERROR).await;
}

#[tokio::test]
async fn readiness_answers_503_with_retry_after_when_the_database_is_down() {
    let address = broken_app();
    let client = crate::helpers::plain_client();
    let response = client
        .get(format!("{address}/health/ready"))
        .send()
        .await
        .expect("request");
    assert!(response.headers().contains_key("retry-after"));
    problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    let live = client
        .get(format!("{address}/health/live"))
        .send()
        .await
        .expect("request");
    assert_eq!(
        live.status(),
        StatusCode::OK,
        "liveness does not depend on the database"
    );
}
