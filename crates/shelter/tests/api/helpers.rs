//! `TestApp`: a running Shelter and a client with one method per endpoint.

use reqwest::{Client, RequestBuilder, Response, StatusCode};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use shelter::app::Application;
use shelter::config::Settings;
use shelter::config::{EmailTransport, FirstSuperuserSection};
use shelter_test_support::smtp::SmtpServer;
use shelter_test_support::{Backend, TestDatabase};

pub const SECRET_KEY: &str = "test-secret-key-that-is-long-enough-0123456789";

/// A client for a server this test did not build in process (a spawned binary, a bare
/// `HttpServer`). reqwest is built here without a TLS provider, and only building an
/// `Application` installs one: without this, such a test panicked whenever it ran alone.
pub fn plain_client() -> Client {
    shelter::runtime::backchannel::install_tls_provider();
    Client::new()
}

/// A user that does not exist yet.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub email: String,
    pub username: String,
    pub password: String,
}

impl TestUser {
    pub fn generate() -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        Self {
            email: format!("user-{}@example.com", &tag[..12]),
            username: format!("user_{}", &tag[..12]),
            password: format!("pw-{}", &tag[..16]),
        }
    }

    pub fn signup_body(&self) -> Value {
        json!({"email": self.email, "username": self.username, "password": self.password})
    }
}

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub stopper: shelter::app::Stopper,
    /// Finishes when the application has shut down.
    pub stopped: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub client: Client,
    pub admin: TestUser,
    _database: TestDatabase,
}

impl TestApp {
    /// A running app with a first superuser (`admin`), or `None` when the backend is
    /// unavailable outside CI.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(
        backend: Backend,
        configure: impl FnOnce(&mut Settings),
    ) -> Option<Self> {
        let database = TestDatabase::create(backend).await?;
        Some(Self::spawn_on(database, configure).await)
    }

    /// A running app on `database`, which lives as long as the app.
    pub async fn spawn_on(database: TestDatabase, configure: impl FnOnce(&mut Settings)) -> Self {
        let admin = TestUser::generate();
        let mut settings = Settings {
            port: 0,
            secret_key: Some(SecretString::from(SECRET_KEY)),
            first_superuser: FirstSuperuserSection {
                email: Some(admin.email.parse().expect("the admin's email")),
                username: Some(admin.username.parse().expect("the admin's username")),
                password: Some(admin.password.parse().expect("the admin's password")),
            },
            ..Settings::default()
        };
        settings.database.url = database.url.parse().expect("a test database URL");
        // Tests make many requests from one address; rate-limit tests turn them on.
        settings.rate_limit.enabled = false;
        configure(&mut settings);
        let application = Application::build(&settings).await.expect("build the app");
        let address = format!("http://127.0.0.1:{}", application.port());
        let stopper = application.stopper();
        let running = tokio::spawn(application.run_until_stopped());
        Self {
            address,
            database_url: settings.database.url.expose().to_owned(),
            stopper,
            stopped: Some(running),
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            admin,
            _database: database,
        }
    }

    /// A running app that sends its emails to a fresh test SMTP server, retrying fast.
    pub async fn spawn_with_smtp(
        backend: Backend,
        configure: impl FnOnce(&mut Settings),
    ) -> Option<(Self, SmtpServer)> {
        let smtp = SmtpServer::start().await;
        let url = smtp.url();
        let app = Self::spawn_with(backend, |s| {
            with_smtp(s, &url);
            configure(s);
        })
        .await?;
        Some((app, smtp))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.url(path))
    }

    pub fn patch(&self, path: &str) -> RequestBuilder {
        self.client.patch(self.url(path))
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.client.delete(self.url(path))
    }

    /// `GET path` with a bearer token.
    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.get(path)
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.post(path).json(body).send().await.expect("request")
    }

    /// `PATCH path` with a bearer token and a JSON body.
    pub async fn patch_as(&self, path: &str, token: &str, body: &Value) -> Response {
        self.patch(path)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// `DELETE path` with a bearer token.
    pub async fn delete_as(&self, path: &str, token: &str) -> Response {
        self.delete(path)
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn signup(&self, user: &TestUser) -> Response {
        self.post("/users")
            .json(&user.signup_body())
            .send()
            .await
            .expect("signup request")
    }

    /// Signs a user up and returns its id.
    pub async fn create(&self, user: &TestUser) -> i64 {
        let response = self.signup(user).await;
        assert_eq!(response.status(), StatusCode::CREATED, "signup of {user:?}");
        body(response).await["id"].as_i64().expect("id")
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post("/auth/token")
            .form(&[("username", username), ("password", password)])
            .send()
            .await
            .expect("login request")
    }

    pub async fn token(&self, username: &str, password: &str) -> String {
        let response = self.login(username, password).await;
        assert_eq!(response.status(), StatusCode::OK, "login of {username}");
        body(response).await["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Logs in and returns the whole token answer (access and refresh tokens).
    pub async fn tokens(&self, user: &TestUser) -> Value {
        let response = self.login(&user.email, &user.password).await;
        assert_eq!(response.status(), StatusCode::OK, "login of {user:?}");
        body(response).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post("/auth/refresh")
            .json(&json!({"refresh_token": refresh_token}))
            .send()
            .await
            .expect("refresh request")
    }

    pub async fn token_for(&self, user: &TestUser) -> String {
        self.token(&user.email, &user.password).await
    }

    pub async fn admin_token(&self) -> String {
        self.token_for(&self.admin.clone()).await
    }

    /// A superuser deactivates user `id`.
    pub async fn deactivate(&self, id: i64) {
        let admin = self.admin_token().await;
        let response = self
            .patch_as(
                &format!("/users/{id}"),
                &admin,
                &json!({"is_active": false}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "deactivate user {id}");
    }

    /// A new user, signed up, with its id and token.
    pub async fn user_with_token(&self) -> (TestUser, i64, String) {
        let user = TestUser::generate();
        let id = self.create(&user).await;
        let token = self.token_for(&user).await;
        (user, id, token)
    }
}

pub async fn body(response: Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"))
}

/// Asserts a problem+json answer with this status and returns its body.
pub async fn problem(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = body(response).await;
    assert_eq!(actual, status, "body: {body}");
    assert_eq!(content_type, "application/problem+json", "body: {body}");
    assert_eq!(body["status"], status.as_u16(), "body: {body}");
    assert_eq!(body["type"], "about:blank");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "body: {body}"
    );
    body
}

/// Asserts a 422 and returns the fields it names, sorted, and its body.
pub async fn invalid_fields(response: Response) -> (Vec<String>, Value) {
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let mut named = fields(&body);
    named.sort();
    (named, body)
}

/// The fields named by a 422.
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Sends emails over SMTP to `url`, retrying after about a second.
pub fn with_smtp(settings: &mut Settings, url: &str) {
    settings.email.transport = EmailTransport::Smtp;
    settings.smtp.url = Some(url.parse().expect("an SMTP URL"));
    settings.smtp.timeout = Duration::from_secs(2);
    settings.email.retry_base = Duration::from_secs(1);
    settings.email.retry_max = Duration::from_secs(1);
}

/// `.ci/oidc`, where the independent OpenID Connect peers live, when Node and `package`
/// are there; `None` (the test skips, saying why) without them, except with `CI=true`,
/// where that fails.
pub fn node_peers(package: &str) -> Option<std::path::PathBuf> {
    let folder = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.ci/oidc");
    let ready = folder.join("node_modules").join(package).exists()
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok();
    if !ready {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: node and .ci/oidc/node_modules are needed (npm ci --prefix .ci/oidc)"
        );
        eprintln!("skipped: no node or no .ci/oidc/node_modules (npm ci --prefix .ci/oidc)");
        return None;
    }
    Some(folder)
}

/// Reads one HTTP/1.1 request from a test's own little server: its head and its body (as
/// long as `content-length` says); `None` when the peer goes away first.
pub async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    use tokio::io::AsyncReadExt as _;
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = socket.read(&mut buffer).await.ok()?;
        if read == 0 {
            return None;
        }
        request.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&request).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        if body.len() >= length {
            return Some((head.to_owned(), body.to_owned()));
        }
    }
}
