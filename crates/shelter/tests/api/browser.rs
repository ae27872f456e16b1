//! The pages in a real browser: Debian's Chromium, headless, driven through `chromedriver`
//! (`WebDriver`, with fantoccini). Each journey is the one a newcomer takes, and the emails
//! are read from the files the `file` transport writes. A screenshot of every page visited
//! goes to `target/tmp/screenshots`.
//!
//! Without `/usr/bin/chromedriver` the tests skip with a reason, unless `CI=true`, where
//! they fail (`.ci/run` installs the `chromium` and `chromium-driver` packages).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::LazyLock;
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use shelter::config::EmailTransport;
use shelter_test_support::Backend;
use tokio::sync::Semaphore;

use crate::helpers::{TestApp, TestUser, body};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const WAIT: Duration = Duration::from_secs(20);

/// Chromium is heavy: at most two journeys at once, whatever the test threads.
static BROWSERS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(2));

/// A chromedriver process, killed when dropped; it starts one Chromium per session.
struct Driver {
    child: Child,
    url: String,
    profiles: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

impl Driver {
    async fn start() -> Option<Self> {
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true: {CHROMEDRIVER} and {CHROMIUM} are needed (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "skipped: no {CHROMEDRIVER} or {CHROMIUM} (apt-get install chromium chromium-driver)"
            );
            return None;
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let driver = Self {
            child,
            url,
            profiles: tempfile::tempdir().expect("profile folder"),
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(driver)
    }

    /// A new browser with its own empty profile (its own cookies).
    async fn browser(&self) -> Client {
        let profile = tempfile::tempdir_in(self.profiles.path()).expect("profile");
        let profile = profile.keep();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1200,900",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        // The driver is on this machine: plain HTTP, no TLS stack to build.
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a browser session")
    }
}

/// What a journey needs: an app whose public URL is its own address (so email links come
/// back to it), writing its emails to files, and a driver for its browsers.
struct Journey {
    app: TestApp,
    /// The app's address as the browser names it.
    base: String,
    emails: tempfile::TempDir,
    driver: Driver,
    /// Held for the whole journey.
    _permit: tokio::sync::SemaphorePermit<'static>,
}

impl Journey {
    async fn start(backend: Backend) -> Option<Self> {
        Self::start_at(backend, "127.0.0.1").await
    }

    /// A journey whose browser knows the app as `host` (the server listens on 127.0.0.1
    /// either way): passkeys need a domain, and `localhost` is one browsers trust.
    async fn start_at(backend: Backend, host: &str) -> Option<Self> {
        Self::start_on(backend, host, free_port(), |_| {}).await
    }

    /// As [`Self::start_at`], on `port`, with more settings.
    async fn start_on(
        backend: Backend,
        host: &str,
        port: u16,
        configure: impl FnOnce(&mut shelter::config::Settings),
    ) -> Option<Self> {
        let emails = tempfile::tempdir().expect("email folder");
        let folder = emails.path().to_owned();
        let base = format!("http://{host}:{port}");
        let app = TestApp::spawn_with(backend, |settings| {
            settings.port = port;
            settings.public_url = base.parse().expect("url");
            settings.email.transport = EmailTransport::File;
            settings.email.dir = folder;
            configure(settings);
        })
        .await?;
        let permit = BROWSERS.acquire().await.expect("semaphore");
        Some(Self {
            app,
            base,
            emails,
            driver: Driver::start().await?,
            _permit: permit,
        })
    }
}

impl Journey {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The link under `path` in an email to `to` whose subject has `subject`, waiting for the
/// file to be written. The text part is quoted-printable: soft breaks are joined and `=3D`
/// is `=`, which is all a link of ours needs.
async fn link_in_email(folder: &Path, to: &str, subject: &str, path: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        for entry in std::fs::read_dir(folder).expect("email folder").flatten() {
            let raw = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let text = raw
                .replace("=\r\n", "")
                .replace("=\n", "")
                .replace("=3D", "=");
            let header = |name: &str, part: &str| {
                text.lines()
                    .any(|line| line.starts_with(name) && line.contains(part))
            };
            if !(header("To: ", to) && header("Subject: ", subject)) {
                continue;
            }
            let link = text
                .split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
                .find(|word| word.starts_with("http") && word.contains(path));
            if let Some(link) = link {
                return link.to_owned();
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {subject} email to {to}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn screenshots() -> PathBuf {
    let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&folder).expect("screenshot folder");
    folder
}

async fn snap(browser: &Client, name: &str) {
    let png = browser.screenshot().await.expect("screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).expect("save the screenshot");
}

async fn fill(browser: &Client, css: &str, text: &str) {
    let input = browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    input.clear().await.expect("clear");
    input.send_keys(text).await.expect("type");
}

/// Clicks what submits a form, and waits for the page it loads: the old page's `main`
/// goes stale once the new document is there.
async fn press(browser: &Client, css: &str) {
    let old = browser.find(Locator::Css("main")).await.expect("main");
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
    let deadline = tokio::time::Instant::now() + WAIT;
    while old.text().await.is_ok() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{css} loaded no page"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn text(browser: &Client) -> String {
    browser
        .find(Locator::Css("main"))
        .await
        .expect("main")
        .text()
        .await
        .expect("text")
}

async fn path(browser: &Client) -> String {
    browser.current_url().await.expect("url").path().to_owned()
}

/// The id in the console's link to the user named `username`.
async fn user_id(browser: &Client, username: &str) -> String {
    let href = browser
        .find(Locator::LinkText(username))
        .await
        .expect("the user's link")
        .attr("href")
        .await
        .expect("href")
        .expect("a link");
    href.trim_start_matches("/admin/users/").to_owned()
}

async fn sign_in(browser: &Client, app: &TestApp, login: &str, password: &str) {
    browser.goto(&app.url("/login")).await.expect("open /login");
    fill(browser, "#field-username", login).await;
    fill(browser, "#field-password", password).await;
    press(browser, "form[action='/login'] button[type=submit]").await;
    assert_eq!(
        path(browser).await,
        "/account",
        "signed in: {}",
        text(browser).await
    );
}

async fn a_new_user_signs_up_and_verifies_the_email_from_the_link(backend: Backend) {
    let Some(journey) = Journey::start(backend).await else {
        return;
    };
    let (app, driver, emails) = (&journey.app, &journey.driver, journey.emails.path());
    let browser = driver.browser().await;
    let user = TestUser::generate();
    browser.goto(&app.url("/login")).await.expect("open");
    snap(&browser, "login").await;
    browser
        .goto(&app.url("/signup"))
        .await
        .expect("open /signup");
    fill(&browser, "#field-email", &user.email).await;
    fill(&browser, "#field-username", &user.username).await;
    fill(&browser, "#field-password", "short").await;
    press(&browser, "form[action='/signup'] button").await;
    let refused = text(&browser).await;
    assert!(
        refused.contains("at least 8"),
        "the API's own rule, on the page: {refused}"
    );
    snap(&browser, "signup-error").await;
    fill(&browser, "#field-password", &user.password).await;
    press(&browser, "form[action='/signup'] button").await;
    assert!(text(&browser).await.contains("Check your email"));
    snap(&browser, "signup-done").await;

    let link = link_in_email(emails, &user.email, "Welcome", "/verify-email?token=").await;
    browser.goto(&link).await.expect("open the link");
    assert!(text(&browser).await.contains("Confirm your email"));
    snap(&browser, "verify-email").await;
    press(&browser, "form[action='/verify-email'] button").await;
    let verified = text(&browser).await;
    assert!(
        verified.contains("is verified") && verified.contains(&user.email),
        "{verified}"
    );
    snap(&browser, "verify-email-done").await;
    // The link is spent: opening it again and pressing says so.
    browser.goto(&link).await.expect("open again");
    press(&browser, "form[action='/verify-email'] button").await;
    assert!(text(&browser).await.contains("This link was already used"));
    snap(&browser, "verify-email-used").await;
    press(&browser, "a.button").await;
    assert_eq!(path(&browser).await, "/verify-email/resend");
    snap(&browser, "verify-email-resend").await;
    browser.close().await.expect("close");
}

async fn a_forgotten_password_is_reset_from_the_email_and_works(backend: Backend) {
    let Some(journey) = Journey::start(backend).await else {
        return;
    };
    let (app, driver, emails) = (&journey.app, &journey.driver, journey.emails.path());
    let browser = driver.browser().await;
    let user = TestUser::generate();
    app.create(&user).await;
    browser
        .goto(&app.url("/forgot-password"))
        .await
        .expect("open");
    fill(&browser, "#field-email", &user.email).await;
    snap(&browser, "forgot-password").await;
    press(&browser, "form[action='/forgot-password'] button").await;
    assert!(text(&browser).await.contains("on its way"));
    let link = link_in_email(emails, &user.email, "Reset", "/reset-password?token=").await;
    browser.goto(&link).await.expect("open the link");
    fill(&browser, "#field-new_password", "a-brand-new-password").await;
    snap(&browser, "reset-password").await;
    press(&browser, "form[action='/reset-password'] button").await;
    assert!(text(&browser).await.contains("Password changed"));
    sign_in(&browser, app, &user.email, "a-brand-new-password").await;
    assert!(text(&browser).await.contains(&user.email));
    browser.close().await.expect("close");
}

async fn a_password_change_on_the_account_page_signs_the_other_browser_out(backend: Backend) {
    let Some(journey) = Journey::start(backend).await else {
        return;
    };
    let (app, driver) = (&journey.app, &journey.driver);
    let (here, there) = (driver.browser().await, driver.browser().await);
    let user = TestUser::generate();
    app.create(&user).await;
    sign_in(&here, app, &user.username, &user.password).await;
    sign_in(&there, app, &user.email, &user.password).await;
    snap(&here, "account").await;
    let sessions = text(&here).await;
    assert!(sessions.contains("this browser"), "{sessions}");

    // The second factor's set-up page draws its QR code itself.
    fill(&here, "#totp-current_password", &user.password).await;
    press(&here, "form[action='/account/totp'] button").await;
    let setup = here.source().await.expect("source");
    assert!(
        setup.contains("<svg") && setup.contains("QR code"),
        "an inline QR code"
    );
    snap(&here, "totp-setup").await;
    here.goto(&app.url("/account")).await.expect("back");

    fill(&here, "#password-current_password", &user.password).await;
    fill(&here, "#password-password", "another-new-password").await;
    press(&here, "form[action='/account/password'] button").await;
    assert!(text(&here).await.contains("Your password is changed"));
    there.goto(&app.url("/account")).await.expect("reload");
    assert_eq!(
        path(&there).await,
        "/login",
        "the other browser is signed out"
    );
    here.goto(&app.url("/account")).await.expect("reload");
    assert_eq!(
        path(&here).await,
        "/account",
        "this browser stays signed in"
    );
    // On a phone's width the same layout still reads.
    here.set_window_size(390, 844).await.expect("phone size");
    snap(&here, "account-phone").await;
    here.goto(&app.url("/logout")).await.expect("open /logout");
    snap(&here, "logout").await;
    press(&here, "form[action='/logout'] button").await;
    assert!(text(&here).await.contains("You are signed out"));
    here.close().await.expect("close");
    there.close().await.expect("close");
}

async fn an_admin_finds_a_user_by_part_of_the_email_and_deactivates_them(backend: Backend) {
    let Some(journey) = Journey::start(backend).await else {
        return;
    };
    let (app, driver) = (&journey.app, &journey.driver);
    let (admin, member) = (driver.browser().await, driver.browser().await);
    let user = TestUser::generate();
    app.create(&user).await;
    for _ in 0..3 {
        app.create(&TestUser::generate()).await;
    }
    sign_in(&member, app, &user.username, &user.password).await;
    sign_in(&admin, app, &app.admin.username, &app.admin.password).await;
    admin
        .goto(&app.url("/admin/users"))
        .await
        .expect("open the console");
    // Part of the email, in other letters' case.
    let part = user.email[5..14].to_uppercase();
    fill(&admin, "#filter-q", &part).await;
    press(&admin, "form[role=search] button").await;
    let found = text(&admin).await;
    assert!(
        found.contains("1 user") && found.contains(&user.email),
        "{found}"
    );
    snap(&admin, "admin-users").await;
    let link = format!(
        "a[href='/admin/users/{}']",
        user_id(&admin, &user.username).await
    );
    press(&admin, &link).await;
    snap(&admin, "admin-user").await;
    member
        .goto(&app.url("/admin/users"))
        .await
        .expect("open the console");
    assert!(
        text(&member).await.contains("Request id"),
        "a page, with the request id"
    );
    snap(&member, "error-forbidden").await;
    press(&admin, "input[value=deactivate] + button").await;
    let detail = text(&admin).await;
    assert!(detail.contains("deactivated"), "{detail}");
    member.goto(&app.url("/account")).await.expect("reload");
    assert_eq!(
        path(&member).await,
        "/login",
        "the deactivated user is signed out"
    );
    // The last superuser stays, on the page as in the API.
    admin
        .goto(&app.url("/admin/users?is_superuser=true"))
        .await
        .expect("open");
    let link = format!(
        "a[href='/admin/users/{}']",
        user_id(&admin, &app.admin.username).await
    );
    press(&admin, &link).await;
    press(&admin, "input[value=revoke] + button").await;
    assert!(text(&admin).await.contains("last active superuser"));
    admin
        .goto(&app.url(&format!(
            "{}/delete",
            path(&admin).await.trim_end_matches("/change")
        )))
        .await
        .expect("open");
    snap(&admin, "admin-delete").await;
    admin.close().await.expect("close");
    member.close().await.expect("close");
}

/// A relying party's callback: answers every request with a small page, so the browser
/// lands on it with the code in its address.
async fn callback_server() -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 8192];
                let _ = socket.read(&mut buffer).await;
                let page = "<!doctype html><title>callback</title><main>back at the app</main>";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{address}/callback")
}

/// "Sign in with Shelter" in a real browser: a relying party sends the browser to the
/// authorization endpoint; Shelter's sign-in page with the TOTP second step; the consent
/// page; back at the relying party's callback with a code the client exchanges.
#[expect(clippy::too_many_lines, reason = "one journey, read top to bottom")]
async fn a_relying_party_signs_a_user_with_totp_in_through_the_consent_page(backend: Backend) {
    let Some(journey) = Journey::start(backend).await else {
        return;
    };
    let (app, driver) = (&journey.app, &journey.driver);
    let callback = callback_server().await;
    let admin = app.admin_token().await;
    let client = body(
        app.client
            .post(app.url("/oauth/clients"))
            .bearer_auth(&admin)
            .json(&json!({"name": "Grafana", "redirect_uris": [callback]}))
            .send()
            .await
            .expect("register"),
    )
    .await;
    let (client_id, secret) = (
        client["client_id"].as_str().expect("id").to_owned(),
        client["client_secret"].as_str().expect("secret").to_owned(),
    );
    // A user with TOTP on.
    let (user, user_id, token) = app.user_with_token().await;
    let enrolment = body(
        app.post("/users/me/mfa/totp")
            .bearer_auth(&token)
            .json(&json!({"current_password": user.password}))
            .send()
            .await
            .expect("enrol"),
    )
    .await;
    let totp = enrolment["secret"].as_str().expect("secret").to_owned();
    let now = chrono::Utc::now();
    let confirmed = app
        .post("/users/me/mfa/totp/confirm")
        .bearer_auth(&token)
        .json(&json!({"code": shelter_crypto::code_at(&totp, now).expect("code")}))
        .send()
        .await
        .expect("confirm");
    assert!(confirmed.status().is_success());

    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", callback.as_str()),
            ("scope", "openid email"),
            ("state", "journey"),
            ("nonce", "n-1"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let browser = driver.browser().await;
    browser
        .goto(&app.url(&format!("/oauth/authorize?{query}")))
        .await
        .expect("open the authorization endpoint");
    assert_eq!(path(&browser).await, "/login", "sent to sign in first");
    fill(&browser, "#field-username", &user.email).await;
    fill(&browser, "#field-password", &user.password).await;
    press(&browser, "form[action='/login'] button[type=submit]").await;
    assert!(text(&browser).await.contains("Second step"));
    snap(&browser, "oidc-second-step").await;
    // The next time step: the confirmation spent this one (one step of skew is allowed).
    let code = shelter_crypto::code_at(&totp, now + chrono::Duration::seconds(30)).expect("code");
    fill(&browser, "#field-code", &code).await;
    press(&browser, "form[action='/login/code'] button").await;
    let consent = text(&browser).await;
    assert!(consent.contains("Allow Grafana?"), "{consent}");
    snap(&browser, "oidc-consent").await;
    browser
        .find(Locator::Css("button[name=decision][value=allow]"))
        .await
        .expect("the allow button")
        .click()
        .await
        .expect("allow");
    let deadline = tokio::time::Instant::now() + WAIT;
    let landed = loop {
        let url = browser.current_url().await.expect("url");
        if url.as_str().starts_with(&callback) {
            break url;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never back at {callback}: {url}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    snap(&browser, "oidc-callback").await;
    let param = |name: &str| {
        landed
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    assert_eq!(param("state").as_deref(), Some("journey"));
    assert_eq!(param("iss").as_deref(), Some(app.address.as_str()));
    let code = param("code").expect("a code");
    let tokens = body(
        app.client
            .post(app.url("/oauth/token"))
            .basic_auth(&client_id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", callback.as_str()),
                ("code_verifier", verifier),
            ])
            .send()
            .await
            .expect("exchange"),
    )
    .await;
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    let payload = id_token.split('.').nth(1).expect("a payload");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .expect("base64url"),
    )
    .expect("claims");
    assert_eq!(claims["sub"], user_id.to_string());
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(
        claims["amr"],
        json!(["pwd", "otp", "mfa"]),
        "the second factor shows"
    );
    browser.close().await.expect("close");
}

/// Chromium's virtual authenticator (the WebAuthn `WebDriver` extension) for this session:
/// a platform authenticator that keeps discoverable credentials and verifies its user, as a
/// phone or a laptop's fingerprint reader does.
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/webauthn/authenticator"))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let authenticator = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        });
        (http::Method::POST, Some(authenticator.to_string()))
    }
}

/// Waits for the script to reveal the passkey form `css`: it shows it only where WebAuthn is.
async fn revealed(browser: &Client, css: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let form = browser
            .find(Locator::Css(css))
            .await
            .expect("the passkey form");
        if form.is_displayed().await.expect("displayed") {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the script did not reveal {css}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_passkey_added_on_the_account_page_signs_in_without_typing(backend: Backend) {
    let Some(journey) = Journey::start_at(backend, "localhost").await else {
        return;
    };
    let (app, driver) = (&journey.app, &journey.driver);
    let browser = driver.browser().await;
    let authenticator = browser
        .issue_cmd(AddVirtualAuthenticator)
        .await
        .expect("a virtual authenticator");
    assert!(authenticator.is_string(), "its id: {authenticator}");
    let user = TestUser::generate();
    let id = app.create(&user).await;

    browser
        .goto(&journey.url("/login"))
        .await
        .expect("open /login");
    fill(&browser, "#field-username", &user.username).await;
    fill(&browser, "#field-password", &user.password).await;
    press(&browser, "form[action='/login'] button[type=submit]").await;
    assert_eq!(path(&browser).await, "/account", "{}", text(&browser).await);
    let adding = "form[data-passkey='create']";
    revealed(&browser, adding).await;
    fill(&browser, "#passkeys-name", "This laptop").await;
    press(&browser, &format!("{adding} button[type=submit]")).await;
    let account = browser.source().await.expect("source");
    assert!(
        account.contains("value=\"This laptop\""),
        "listed under its name: {account}"
    );
    browser
        .execute(
            "document.getElementById('passkeys-title').scrollIntoView()",
            Vec::new(),
        )
        .await
        .expect("scroll to the passkeys");
    snap(&browser, "account-passkeys").await;

    browser
        .goto(&journey.url("/logout"))
        .await
        .expect("open /logout");
    press(&browser, "form[action='/logout'] button").await;
    browser
        .goto(&journey.url("/login"))
        .await
        .expect("open /login");
    let signing_in = "form[data-passkey='get']";
    revealed(&browser, signing_in).await;
    snap(&browser, "login-passkey").await;
    press(&browser, &format!("{signing_in} button[type=submit]")).await;
    assert_eq!(path(&browser).await, "/account", "{}", text(&browser).await);
    let account = browser.source().await.expect("source");
    assert!(
        account.contains(&user.email),
        "signed in as the user: {account}"
    );

    // The server saw a passkey sign-in: the passkey has been used, the method recorded.
    let admin = app.admin_token().await;
    let passkeys = body(app.get_as(&format!("/users/{id}/passkeys"), &admin).await).await;
    assert!(
        passkeys["items"][0]["last_used_at"].is_string(),
        "{passkeys}"
    );
    let events = body(
        app.get_as(
            &format!("/audit-events?type=login_succeeded&user_id={id}"),
            &admin,
        )
        .await,
    )
    .await;
    assert_eq!(
        events["items"][0]["details"]["method"], "passkey",
        "{events}"
    );
    browser.close().await.expect("close");
}

/// `/login`, the provider's button, the upstream's own sign-in and consent pages (a second
/// Shelter, known to the browser by another host so their cookies stay apart), and back
/// signed in on `/account`, where the provider is listed.
async fn a_provider_button_signs_in_through_the_upstreams_pages(backend: Backend) {
    let up_port = free_port();
    let up_base = format!("http://127.0.0.1:{up_port}");
    let Some(up) = TestApp::spawn_with(backend, |s| {
        s.port = up_port;
        s.public_url = up_base.parse().expect("url");
    })
    .await
    else {
        return;
    };
    let port = free_port();
    let callback = format!("http://localhost:{port}/auth/providers/upstream/callback");
    let registered = body(
        up.client
            .post(up.url("/oauth/clients"))
            .bearer_auth(up.admin_token().await)
            .json(&json!({"name": "Shelter downstream", "redirect_uris": [callback]}))
            .send()
            .await
            .expect("register"),
    )
    .await;
    let (id, secret) = (
        registered["client_id"].as_str().expect("id").to_owned(),
        registered["client_secret"]
            .as_str()
            .expect("secret")
            .to_owned(),
    );
    let Some(journey) = Journey::start_on(backend, "localhost", port, |s| {
        s.providers = vec![crate::providers::provider_entry(
            &up_base, &id, &secret, "confirm", true,
        )];
    })
    .await
    else {
        return;
    };
    let person = TestUser::generate();
    up.create(&person).await;
    let browser = journey.driver.browser().await;
    browser
        .goto(&journey.url("/login"))
        .await
        .expect("open /login");
    snap(&browser, "login-providers").await;
    press(&browser, "a[href='/auth/providers/upstream/start']").await;
    let there = browser.current_url().await.expect("url");
    assert!(
        there.as_str().starts_with(&up_base),
        "at the upstream: {there}"
    );
    fill(&browser, "#field-username", &person.username).await;
    fill(&browser, "#field-password", &person.password).await;
    press(&browser, "form[action='/login'] button[type=submit]").await;
    press(&browser, "button[name=decision][value=allow]").await;
    let landed = browser.current_url().await.expect("url");
    assert_eq!(
        landed.as_str(),
        journey.url("/account"),
        "{}",
        text(&browser).await
    );
    let account = text(&browser).await;
    assert!(account.contains(&person.email), "{account}");
    assert!(
        account.contains("Sign-in providers") && account.contains("Upstream"),
        "{account}"
    );
    browser
        .execute(
            "document.getElementById('providers-title').scrollIntoView()",
            Vec::new(),
        )
        .await
        .expect("scroll to the providers");
    snap(&browser, "account-providers").await;
    browser.close().await.expect("close");
}

shelter_test_support::on_both_backends!(
    a_provider_button_signs_in_through_the_upstreams_pages,
    a_passkey_added_on_the_account_page_signs_in_without_typing,
    a_relying_party_signs_a_user_with_totp_in_through_the_consent_page,
    a_new_user_signs_up_and_verifies_the_email_from_the_link,
    a_forgotten_password_is_reset_from_the_email_and_works,
    a_password_change_on_the_account_page_signs_the_other_browser_out,
    an_admin_finds_a_user_by_part_of_the_email_and_deactivates_them,
);
