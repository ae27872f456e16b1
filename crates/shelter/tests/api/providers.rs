//! Sign-in with upstream OpenID Connect providers, over HTTP. The first upstream is a
//! second Shelter (its OpenID Connect provider, its own login and consent pages); a rogue
//! provider written here answers with ID tokens that fail one check each, or not at all.
//! An independent provider (panva's `oidc-provider`) runs in `upstream_oidc_provider.rs`.
//!
//! The linking policies, one test per cell:
//!
//! | unknown `sub`, an account here with its email | provider says verified | says unverified |
//! | --- | --- | --- |
//! | `link = "confirm"` | `confirm_asks_the_accounts_password_once_then_links` | (same test) |
//! | `link = "verified_email"` | `verified_email_links_at_once_only_when_the_provider_verified_it` | (same test) |
//! | `link = "never"` | `never_refuses_then_the_user_links_from_the_account_page` | (same test) |
//! | no such account, `create_users = true` | `a_new_account_becomes_a_user_and_comes_back_by_its_subject` | (same test) |
//! | no such account, `create_users = false` | `without_create_users_an_unknown_account_is_refused` | (same test) |

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use secrecy::SecretString;
use serde_json::{Value, json};
use shelter::config::sections::ProviderEntry;
use shelter_test_support::Backend;

use crate::helpers::{TestApp, TestUser, body, problem};
use crate::pages::{PageClient, csrf_of};

/// The provider's id in the downstream's settings.
const PROVIDER: &str = "upstream";

/// A port nobody listens on now, for an app whose public URL must be known before it starts.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

pub fn provider_entry(
    issuer: &str,
    client_id: &str,
    secret: &str,
    link: &str,
    create: bool,
) -> ProviderEntry {
    ProviderEntry {
        id: PROVIDER.into(),
        name: "Upstream".into(),
        issuer: issuer.into(),
        client_id: client_id.into(),
        client_secret: Some(SecretString::from(secret.to_owned())),
        client_secret_env: None,
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        link: link.into(),
        create_users: create,
    }
}

/// A second Shelter as the upstream provider, and this Shelter (the downstream) configured
/// to sign in with it.
pub struct Federation {
    pub up: TestApp,
    pub down: TestApp,
}

impl Federation {
    async fn start(backend: Backend, link: &str, create: bool) -> Option<Self> {
        Self::start_with(backend, link, create, |_| {}).await
    }

    /// As [`Self::start`], with more settings for the downstream.
    async fn start_with(
        backend: Backend,
        link: &str,
        create: bool,
        configure: impl FnOnce(&mut shelter::config::Settings),
    ) -> Option<Self> {
        let (up_port, down_port) = (free_port(), free_port());
        let up_base = format!("http://127.0.0.1:{up_port}");
        let up = TestApp::spawn_with(backend, |s| {
            s.port = up_port;
            s.public_url = up_base.parse().expect("url");
        })
        .await?;
        let callback = format!("http://127.0.0.1:{down_port}/auth/providers/{PROVIDER}/callback");
        let admin = up.admin_token().await;
        let client = up
            .client
            .post(up.url("/oauth/clients"))
            .bearer_auth(admin)
            .json(&json!({"name": "Downstream Shelter", "redirect_uris": [callback]}))
            .send()
            .await
            .expect("register the downstream");
        assert_eq!(client.status(), StatusCode::CREATED);
        let client = body(client).await;
        let (id, secret) = (
            client["client_id"].as_str().expect("id").to_owned(),
            client["client_secret"].as_str().expect("secret").to_owned(),
        );
        let down = TestApp::spawn_with(backend, |s| {
            s.port = down_port;
            s.public_url = format!("http://127.0.0.1:{down_port}")
                .parse()
                .expect("url");
            s.providers = vec![provider_entry(&up_base, &id, &secret, link, create)];
            configure(s);
        })
        .await?;
        Some(Self { up, down })
    }

    fn journey(&self) -> Journey {
        Journey {
            down: PageClient::new(&self.down),
            up: PageClient::new(&self.up),
            down_base: self.down.url(""),
            up_base: self.up.url(""),
        }
    }
}

/// One browser across both servers (a page client per host, so cookies stay apart).
pub struct Journey {
    pub down: PageClient,
    pub up: PageClient,
    down_base: String,
    up_base: String,
}

/// The text of an HTML attribute value.
fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The hidden fields of a page's forms, CSRF included.
fn hidden(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|input| {
            let name = input.split("name=\"").nth(1)?.split('"').next()?;
            let value = input.split("value=\"").nth(1)?.split('"').next()?;
            Some((name.to_owned(), unescape(value)))
        })
        .collect()
}

/// Posts `form` (name, value pairs) to `path`.
async fn post_form(
    client: &mut PageClient,
    path: &str,
    form: &[(String, String)],
) -> (StatusCode, HeaderMap, String) {
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    client.post(path, &fields).await
}

fn location(headers: &HeaderMap) -> String {
    headers[header::LOCATION]
        .to_str()
        .expect("a location")
        .to_owned()
}

impl Journey {
    /// Starts at the downstream's provider button and walks the upstream's pages (sign in
    /// as `login` when asked, allow when asked for consent) until the downstream answers
    /// the callback; that answer.
    pub async fn through_upstream(
        &mut self,
        start: &str,
        login: &TestUser,
    ) -> (StatusCode, HeaderMap, String) {
        let (status, headers, html) = self.down.get(start).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
        self.follow(location(&headers), login).await
    }

    /// Follows `url` through the upstream until the downstream answers.
    pub async fn follow(
        &mut self,
        mut url: String,
        login: &TestUser,
    ) -> (StatusCode, HeaderMap, String) {
        for _ in 0..10 {
            if let Some(path) = url.strip_prefix(self.down_base.as_str()) {
                return self.down.get(path).await;
            }
            let path = url
                .strip_prefix(self.up_base.as_str())
                .map_or(url.clone(), str::to_owned);
            let (status, headers, html) = self.up.get(&path).await;
            let (status, headers, html) = if status == StatusCode::OK
                && html.contains("action=\"/login\"")
            {
                let mut form = hidden(&html);
                form.push(("username".into(), login.username.clone()));
                form.push(("password".into(), login.password.clone()));
                post_form(&mut self.up, "/login", &form).await
            } else if status == StatusCode::OK && html.contains("name=\"decision\" value=\"allow\"")
            {
                let mut form = hidden(&html);
                form.push(("decision".into(), "allow".into()));
                post_form(&mut self.up, "/oauth/consent", &form).await
            } else {
                (status, headers, html)
            };
            assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
            let next = location(&headers);
            url = if next.starts_with('/') {
                format!("{}{}", self.up_base.trim_end_matches('/'), next)
            } else {
                next
            };
        }
        panic!("too many redirects");
    }
}

/// The downstream's page session's access token, for its API.
fn access(journey: &Journey) -> String {
    journey
        .down
        .cookie("shelter_access")
        .expect("signed in downstream")
        .to_owned()
}

fn start_path() -> String {
    format!("/auth/providers/{PROVIDER}/start")
}

/// Signs `user` up at `app`, its email verified (as its link would) or not.
async fn account(app: &TestApp, user: &TestUser, verified: bool) -> i64 {
    use sea_orm::ConnectionTrait as _;
    let id = app.create(user).await;
    if verified {
        let database = sea_orm::Database::connect(app.database_url.as_str())
            .await
            .expect("the app's database");
        database
            .execute_unprepared(&format!(
                "UPDATE users SET email_verified = true WHERE id = {id}"
            ))
            .await
            .expect("verify the email");
    }
    id
}

async fn signed_in_as(journey: &Journey, app: &TestApp) -> Value {
    body(app.get_as("/users/me", &access(journey)).await).await
}

async fn identities(app: &TestApp, token: &str) -> Value {
    body(app.get_as("/users/me/identities", token).await).await
}

async fn a_new_account_becomes_a_user_and_comes_back_by_its_subject(backend: Backend) {
    let Some(federation) = Federation::start(backend, "confirm", true).await else {
        return;
    };
    let (up, down) = (&federation.up, &federation.down);
    let listed = body(down.get("/auth/providers").send().await.expect("GET")).await;
    assert_eq!(
        listed,
        json!({"items": [{"id": PROVIDER, "name": "Upstream"}]})
    );
    let (_, _, login_page) = PageClient::new(down).get("/login").await;
    assert!(
        login_page.contains("href=\"/auth/providers/upstream/start\""),
        "{login_page}"
    );

    for verified in [false, true] {
        let person = TestUser::generate();
        let upstream_id = account(up, &person, verified).await;
        let mut journey = federation.journey();
        let (status, headers, html) = journey.through_upstream(&start_path(), &person).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
        assert_eq!(location(&headers), "/account");
        let me = signed_in_as(&journey, down).await;
        assert_eq!(me["email"], person.email);
        assert_eq!(
            me["email_verified"], verified,
            "verified only when the provider says so: {me}"
        );
        assert_eq!(
            me["username"],
            person.username.to_lowercase(),
            "from preferred_username"
        );
        let linked = identities(down, &access(&journey)).await;
        assert_eq!(linked["items"][0]["provider"], PROVIDER);
        assert_eq!(linked["items"][0]["subject"], upstream_id.to_string());
        assert_eq!(linked["items"][0]["email"], person.email);

        // The password is no way in: nobody was told one.
        assert_eq!(
            down.login(&person.username, &person.password)
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );

        // Back by the same subject, in another browser: the same user, no new one.
        let mut again = federation.journey();
        let (status, headers, _) = again.through_upstream(&start_path(), &person).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location(&headers), "/account");
        assert_eq!(signed_in_as(&again, down).await["id"], me["id"]);
        let events = body(down.get_as("/users/me/audit-events", &access(&again)).await).await;
        let kinds: Vec<&str> = events["items"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["type"].as_str())
            .collect();
        assert!(kinds.contains(&"identity_linked"), "{events}");
        let signed = events["items"]
            .as_array()
            .expect("events")
            .iter()
            .find(|e| e["type"] == "login_succeeded")
            .expect("a login");
        assert_eq!(signed["details"]["method"], "provider", "{signed}");

        // A superuser sees the link, and that the user has no password, on the admin page.
        let mut admin = PageClient::new(down);
        admin
            .sign_in(&down.admin.username, &down.admin.password)
            .await;
        let (status, _, page) = admin.get(&format!("/admin/users/{}", me["id"])).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            page.contains("Sign-in providers") && page.contains(&upstream_id.to_string()),
            "{page}"
        );
        assert!(page.contains("none (created from a provider)"), "{page}");
    }

    // The provider's `next` is kept across the round trip, when it is a local path.
    let person = TestUser::generate();
    account(up, &person, false).await;
    let mut journey = federation.journey();
    let (_, headers, _) = journey
        .through_upstream(&format!("{}?next=%2Fusers%2Fme", start_path()), &person)
        .await;
    assert_eq!(location(&headers), "/users/me");
    let mut elsewhere = federation.journey();
    let (_, headers, _) = elsewhere
        .through_upstream(
            &format!("{}?next=https%3A%2F%2Fevil.example%2F", start_path()),
            &person,
        )
        .await;
    assert_eq!(location(&headers), "/account", "never another host");
}

async fn without_create_users_an_unknown_account_is_refused(backend: Backend) {
    let Some(federation) = Federation::start(backend, "confirm", false).await else {
        return;
    };
    let person = TestUser::generate();
    account(&federation.up, &person, true).await;
    let mut journey = federation.journey();
    let (status, headers, html) = journey.through_upstream(&start_path(), &person).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .expect("type")
            .starts_with("text/html")
    );
    assert!(html.contains("No account here is linked"), "{html}");
    assert!(
        !journey.down.has_cookie("shelter_access"),
        "nobody signed in"
    );
    let admin = federation.down.admin_token().await;
    let users = body(federation.down.get_as("/users?limit=100", &admin).await).await;
    assert_eq!(users["total"], 1, "only the admin: {users}");
}

async fn confirm_asks_the_accounts_password_once_then_links(backend: Backend) {
    let Some(federation) = Federation::start(backend, "confirm", true).await else {
        return;
    };
    let (up, down) = (&federation.up, &federation.down);
    for verified in [true, false] {
        let person = TestUser::generate();
        account(up, &person, verified).await;
        let local = account(down, &person, false).await;
        let mut journey = federation.journey();
        let (status, _, page) = journey.through_upstream(&start_path(), &person).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(page.contains("name=\"password\""), "{page}");
        assert!(page.contains(&person.email), "{page}");
        assert!(
            !journey.down.has_cookie("shelter_access"),
            "not before the password"
        );

        let mut form = hidden(&page);
        form.push(("password".into(), "not-the-password".into()));
        let (status, _, again) =
            post_form(&mut journey.down, "/auth/providers/confirm", &form).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            again.contains("name=\"password\""),
            "the same question again: {again}"
        );
        let token = down.token(&person.username, &person.password).await;
        assert_eq!(
            identities(down, &token).await["items"],
            json!([]),
            "nothing linked yet"
        );

        let mut form = hidden(&again);
        form.push(("password".into(), person.password.clone()));
        let (status, headers, html) =
            post_form(&mut journey.down, "/auth/providers/confirm", &form).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
        assert_eq!(location(&headers), "/account");
        assert_eq!(signed_in_as(&journey, down).await["id"], local);
        assert_eq!(
            identities(down, &token).await["items"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );

        // A forged or replayed confirmation form links nothing more and signs nobody in.
        let mut forged = hidden(&again);
        forged.retain(|(name, _)| name != "link");
        forged.push(("link".into(), "not-sealed-by-shelter".into()));
        forged.push(("password".into(), person.password.clone()));
        let (status, _, _) = post_form(&mut journey.down, "/auth/providers/confirm", &forged).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // Linked: the provider alone signs in now, without the question.
        let mut later = federation.journey();
        let (status, headers, _) = later.through_upstream(&start_path(), &person).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location(&headers), "/account");
        assert_eq!(signed_in_as(&later, down).await["id"], local);
    }
}

async fn confirm_takes_the_accounts_passkey_instead_of_its_password(backend: Backend) {
    use crate::passkeys::{Device, ORIGIN, add_passkey, with_passkeys};
    let Some(federation) = Federation::start_with(backend, "confirm", true, with_passkeys).await
    else {
        return;
    };
    let (up, down) = (&federation.up, &federation.down);
    let person = TestUser::generate();
    account(up, &person, false).await;
    let local = account(down, &person, false).await;
    let mut device = Device::new();
    add_passkey(
        down,
        &down.token(&person.username, &person.password).await,
        &mut device,
        "Laptop",
    )
    .await;
    let (_, _, other_token) = down.user_with_token().await;
    let mut other_device = Device::new();
    add_passkey(down, &other_token, &mut other_device, "Theirs").await;

    let mut journey = federation.journey();
    let (status, _, page) = journey.through_upstream(&start_path(), &person).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("action=\"/auth/providers/confirm/passkey\""),
        "{page}"
    );
    let confirm_with = |device: &mut Device, options: &Value| {
        let credential = device.sign(&options["publicKey"], ORIGIN);
        let mut form: Vec<(String, String)> = Vec::new();
        for (name, value) in hidden(&page) {
            if !["flow_token", "credential"].contains(&name.as_str())
                && !form.iter().any(|(n, _)| *n == name)
            {
                form.push((name, value));
            }
        }
        form.push((
            "flow_token".into(),
            options["flow_token"].as_str().expect("flow").to_owned(),
        ));
        form.push(("credential".into(), credential.to_string()));
        form
    };
    let options = |app: &TestApp| {
        let request = app.post("/auth/passkey/options").json(&json!({}));
        async move { body(request.send().await.expect("options")).await }
    };

    // Another account's passkey proves nothing about this one.
    let form = confirm_with(&mut other_device, &options(down).await);
    let (status, _, html) =
        post_form(&mut journey.down, "/auth/providers/confirm/passkey", &form).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{html}");
    assert!(!journey.down.has_cookie("shelter_access"));

    let form = confirm_with(&mut device, &options(down).await);
    let (status, headers, html) =
        post_form(&mut journey.down, "/auth/providers/confirm/passkey", &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(location(&headers), "/account");
    assert_eq!(signed_in_as(&journey, down).await["id"], local);
    assert_eq!(
        identities(down, &access(&journey)).await["items"][0]["provider"],
        PROVIDER
    );
}

async fn verified_email_links_at_once_only_when_the_provider_verified_it(backend: Backend) {
    let Some(federation) = Federation::start(backend, "verified_email", true).await else {
        return;
    };
    let (up, down) = (&federation.up, &federation.down);
    let verified = TestUser::generate();
    account(up, &verified, true).await;
    let local = account(down, &verified, false).await;
    let mut journey = federation.journey();
    let (status, headers, html) = journey.through_upstream(&start_path(), &verified).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(location(&headers), "/account");
    assert_eq!(signed_in_as(&journey, down).await["id"], local);

    let unverified = TestUser::generate();
    account(up, &unverified, false).await;
    account(down, &unverified, true).await;
    let mut journey = federation.journey();
    let (status, _, html) = journey.through_upstream(&start_path(), &unverified).await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(
        html.contains("link the provider on your account page"),
        "{html}"
    );
    assert!(!journey.down.has_cookie("shelter_access"));
    let token = down.token(&unverified.username, &unverified.password).await;
    assert_eq!(identities(down, &token).await["items"], json!([]));
}

async fn never_refuses_then_the_user_links_from_the_account_page(backend: Backend) {
    let Some(federation) = Federation::start(backend, "never", true).await else {
        return;
    };
    let (up, down) = (&federation.up, &federation.down);
    let person = TestUser::generate();
    account(up, &person, true).await;
    account(down, &person, true).await;
    let mut journey = federation.journey();
    let (status, _, html) = journey.through_upstream(&start_path(), &person).await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(!journey.down.has_cookie("shelter_access"));

    // Signed in here with the password, the user links the provider from /account (the
    // upstream remembers the consent and the sign-in, so it sends them straight back).
    journey
        .down
        .sign_in(&person.username, &person.password)
        .await;
    let (_, _, account_page) = journey.down.get("/account").await;
    assert!(account_page.contains("Link Upstream"), "{account_page}");
    let csrf = csrf_of(&account_page);
    let (status, headers, html) = journey
        .down
        .post(
            &format!("/account/identities/{PROVIDER}/link"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let (status, headers2, html) = journey.follow(location(&headers), &person).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(location(&headers2), "/account?done=identity-linked");
    let token = access(&journey);
    assert_eq!(
        identities(down, &token).await["items"][0]["provider"],
        PROVIDER
    );
    let (_, _, account_page) = journey.down.get("/account").await;
    assert!(
        account_page.contains("/account/identities/upstream/unlink"),
        "{account_page}"
    );

    // Linked, the provider signs in even under "never".
    let mut later = federation.journey();
    let (status, _, _) = later.through_upstream(&start_path(), &person).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // The user has a password, so the link may go; then it is gone.
    let removed = down
        .delete_as(&format!("/users/me/identities/{PROVIDER}"), &token)
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_eq!(identities(down, &token).await["items"], json!([]));
    let again = down
        .delete_as(&format!("/users/me/identities/{PROVIDER}"), &token)
        .await;
    problem(again, StatusCode::NOT_FOUND).await;
    let events = body(down.get_as("/users/me/audit-events", &token).await).await;
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert!(
        kinds.contains(&"identity_linked") && kinds.contains(&"identity_unlinked"),
        "{events}"
    );
}

async fn the_last_way_to_sign_in_cannot_be_unlinked(backend: Backend) {
    use crate::passkeys::{Device, add_passkey, with_passkeys};
    let Some(federation) = Federation::start_with(backend, "confirm", true, with_passkeys).await
    else {
        return;
    };
    let person = TestUser::generate();
    account(&federation.up, &person, true).await;
    let mut journey = federation.journey();
    let (status, _, _) = journey.through_upstream(&start_path(), &person).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let token = access(&journey);
    let refused = federation
        .down
        .delete_as(&format!("/users/me/identities/{PROVIDER}"), &token)
        .await;
    problem(refused, StatusCode::CONFLICT).await;
    assert_eq!(
        identities(&federation.down, &token).await["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let (_, _, page) = journey.down.get("/account").await;
    let csrf = csrf_of(&page);
    let (status, _, html) = journey
        .down
        .post(
            &format!("/account/identities/{PROVIDER}/unlink"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("last way to sign in"), "{html}");

    // With a passkey the provider may go; then the passkey is the last way, and stays.
    let down = &federation.down;
    let mut device = Device::new();
    let passkey = add_passkey(down, &token, &mut device, "Phone").await;
    let unlinked = down
        .delete_as(&format!("/users/me/identities/{PROVIDER}"), &token)
        .await;
    assert_eq!(unlinked.status(), StatusCode::NO_CONTENT);
    let refused = down
        .delete_as(&format!("/users/me/passkeys/{passkey}"), &token)
        .await;
    problem(refused, StatusCode::CONFLICT).await;
    let kept = body(down.get_as("/users/me/passkeys", &token).await).await;
    assert_eq!(kept["items"].as_array().map(Vec::len), Some(1), "{kept}");
    // A superuser may still remove a lost or stolen one.
    let me = body(down.get_as("/users/me", &token).await).await;
    let admin = down.admin_token().await;
    let removed = down
        .delete_as(&format!("/users/{}/passkeys/{passkey}", me["id"]), &admin)
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
}

async fn the_local_second_factor_still_applies(backend: Backend) {
    let Some(federation) = Federation::start(backend, "confirm", true).await else {
        return;
    };
    let down = &federation.down;
    let person = TestUser::generate();
    account(&federation.up, &person, true).await;
    account(down, &person, true).await;
    let token = down.token(&person.username, &person.password).await;
    let enrolment = body(
        down.client
            .post(down.url("/users/me/mfa/totp"))
            .bearer_auth(&token)
            .json(&json!({"current_password": person.password}))
            .send()
            .await
            .expect("enrol"),
    )
    .await;
    let secret = enrolment["secret"].as_str().expect("secret").to_owned();
    let code = shelter_crypto::code_at(&secret, Utc::now()).expect("code");
    let confirmed = down
        .client
        .post(down.url("/users/me/mfa/totp/confirm"))
        .bearer_auth(&token)
        .json(&json!({"code": code}))
        .send()
        .await
        .expect("confirm");
    assert_eq!(confirmed.status(), StatusCode::OK);

    // Linking asks the password once; the sign-in it starts still takes the second step.
    let mut journey = federation.journey();
    let (status, _, page) = journey.through_upstream(&start_path(), &person).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut form = hidden(&page);
    form.push(("password".into(), person.password.clone()));
    let (status, _, html) = post_form(&mut journey.down, "/auth/providers/confirm", &form).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the second step, not a session: {html}"
    );
    assert!(html.contains("name=\"mfa_token\""), "{html}");
    assert!(!journey.down.has_cookie("shelter_access"));

    // Linked, the provider alone is the first factor; the code is still asked.
    let mut later = federation.journey();
    let (status, _, html) = later.through_upstream(&start_path(), &person).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the second step, not a session: {html}"
    );
    assert!(html.contains("name=\"mfa_token\""), "{html}");
    assert!(!later.down.has_cookie("shelter_access"));
    let mut form = hidden(&html);
    let code =
        shelter_crypto::code_at(&secret, Utc::now() + chrono::Duration::seconds(30)).expect("code");
    form.push(("code".into(), code));
    let (status, headers, html) = post_form(&mut later.down, "/login/code", &form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(location(&headers), "/account");
    let events = body(down.get_as("/users/me/audit-events", &access(&later)).await).await;
    let newest = events["items"]
        .as_array()
        .expect("events")
        .iter()
        .find(|event| event["type"] == "login_succeeded")
        .expect("a login");
    assert_eq!(newest["details"]["method"], "provider", "{newest}");
}

// ---------------------------------------------------------------------------------------
// A rogue provider: discovery and keys as they should be, ID tokens that fail one check.

/// A 2048-bit RSA key made for these tests (PKCS#1 DER, base64), and its modulus.
const ROGUE_KEY: &str = "MIIEpAIBAAKCAQEAqe3ALaIrH2pdTLprj99yacUa4V9KAljcVlE7GtUxZxlUUCPZdLN5bBYAF/6md8zfIkMii2To6UG11KU2YYm66rSP12dCaS1FXDjGSc4xDpJNu3rPdvaYFusmmijeqt185jxoHKN5NOSU5+tgB9v3X20yKFrjqG2i6HoNY8RD/OwOE19ErTqwNWpjKi42RAjHqVo6GSr/hSGefzzcOnsgB4LPFgV/NhX0hPJug4Ujo55zrIXx11YXC90IxoAmP8NBMW8+/scZ8euTdsLqDcGEl/Lga0hliLIMKfsvMV19bT+eU/oHYf7V+RVtf/HRvrzRhFNQyWZVeNUrEY1x6l856QIDAQABAoIBAA/rvNz5q/EkUcwBzlibPpi+1SMm/qPkJ/a1YySDM379nkro5POcaiSwlf8phnbEfOZ0pEyrnm/WTn83IHZ4hUj+tFhh7hS1H2HB1wAsv6dmGT7WxY/XkE3bZ9E7QYuAN3bJ05ZVUaKdRP9KrANofk+UR0YFJ/3Mkd4Wq2D8z0Lnwt+PEbDoAPmEhXTn2TjRk0mn/Uw0t3Jv0C+kokK/Q+Em8x6SiV35mTAk8+WB9+suYBiftB9XtHaStiEi8pylFCQnblUHX+cMoC13w6gNqiP7eqbn6H9ljBx7SjVknKjUIm45iXfaRCP27SBTvM12WgANyp4GMPVWaT9wbp7YhoECgYEA0MhLn5BQS6Touc6/QUq/x9HxjGkj3ZPB0/IyUsStrxN9P7YYNi0ygG1WPX7r36ejMY2L9Zjf2lOJB0cLPXH5PxZFamfxdduTcf5522N0gm9yfIr5dxn0uurvw4Xj/vr++XOL+sJ5a2V9VOsJLvQkckuzH8HcbGnqtRJ65aj0YkECgYEA0Fv5kQoKsuHZFJ+jsS+TpQlq3oWTA4BQruEu8Cx0XwTEqlaSKMZkGR7OextDlLcAApJjfMS3uQYeTEdt/724IZhEm5ZbXGFI31T0KBLh7LDpwuhiN87z3wTjY2LlZr8u3Kql/fkTk4eIKnT/xQXP+vn4n7Ag9i3+Cs/r7ZWpHakCgYARtZusijo1YGSZNi9E44lG8sjxZw2ywtDDIJ0iJiqxWg7as6B0H/tTp3KUPsrVKswN7Pq9N11tkH5kDqOmb597uXDj6LMzkw97sOE3OcVtNvTYGZW1g48dt8XkqNvBChtMn391Ir/X20D5TgJ2aCEbTM6B2BjRXV6aQ1oHVwB7wQKBgQCQdZRciPfN+mRFtkEJ0hCttg/QZA//t3E5Losande5IVcxOoBvoM051XAXTlnWu+JX5iLwGHvA3osXG9caHvGQ6T94GBETxad+oCn/tsfJEQehyPh/9Q6EK6F0ANdIG3lkKTSZF54JBUjVFvVWJqeCPNmx7a2MwWqHGI1c1gzAsQKBgQDBEYxYjcsrivZYMJGLmtKxpHDDMPiJsZ1wPKKc7dgt2byAWwvPG7+lBnsvLMwSY2ZKOAsgUU2ue6gd+XJ8vwncwANrgr/jzhOBuL9hCpXyu9NizPc4+IdvYQHpKyfay7tiuUOP099+h2WGTgyvjj9KNFu8pJTmtbDCMzXTGm0iaQ==";
const ROGUE_N: &str = "qe3ALaIrH2pdTLprj99yacUa4V9KAljcVlE7GtUxZxlUUCPZdLN5bBYAF_6md8zfIkMii2To6UG11KU2YYm66rSP12dCaS1FXDjGSc4xDpJNu3rPdvaYFusmmijeqt185jxoHKN5NOSU5-tgB9v3X20yKFrjqG2i6HoNY8RD_OwOE19ErTqwNWpjKi42RAjHqVo6GSr_hSGefzzcOnsgB4LPFgV_NhX0hPJug4Ujo55zrIXx11YXC90IxoAmP8NBMW8-_scZ8euTdsLqDcGEl_Lga0hliLIMKfsvMV19bT-eU_oHYf7V-RVtf_HRvrzRhFNQyWZVeNUrEY1x6l856Q";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Good,
    WrongNonce,
    WrongIssuer,
    WrongAudience,
    Expired,
    BadSignature,
    /// Signed with a key the provider publishes only later (it rotated).
    NewKey,
    /// The token endpoint never answers.
    Silent,
}

struct Rogue {
    base: String,
    answer: Arc<Mutex<Answer>>,
    /// The key id the JWKS publishes now.
    published: Arc<Mutex<&'static str>>,
}

impl Rogue {
    async fn start() -> Self {
        use tokio::io::AsyncWriteExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let answer = Arc::new(Mutex::new(Answer::Good));
        let published = Arc::new(Mutex::new("old"));
        let (shared_answer, shared_published, issuer) =
            (answer.clone(), published.clone(), base.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (answer, published, issuer) = (
                    shared_answer.clone(),
                    shared_published.clone(),
                    issuer.clone(),
                );
                tokio::spawn(async move {
                    let Some((head, body)) = crate::helpers::read_request(&mut socket).await else {
                        return;
                    };
                    let path = head
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_owned();
                    let mode = *answer.lock().expect("answer");
                    let json = match path.as_str() {
                        "/.well-known/openid-configuration" => json!({
                            "issuer": issuer,
                            "authorization_endpoint": format!("{issuer}/authorize"),
                            "token_endpoint": format!("{issuer}/token"),
                            "jwks_uri": format!("{issuer}/jwks"),
                            "response_types_supported": ["code"],
                            "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"],
                        }),
                        "/jwks" => json!({"keys": [{
                            "kty": "RSA", "use": "sig", "alg": "RS256",
                            "kid": *published.lock().expect("kid"), "n": ROGUE_N, "e": "AQAB",
                        }]}),
                        "/token" if mode == Answer::Silent => {
                            tokio::time::sleep(Duration::from_mins(2)).await;
                            return;
                        }
                        "/token" => {
                            let code = form_urlencoded::parse(body.as_bytes())
                                .find(|(name, _)| name == "code")
                                .map(|(_, value)| value.into_owned())
                                .unwrap_or_default();
                            json!({"access_token": "rogue", "token_type": "Bearer", "expires_in": 60,
                                   "id_token": rogue_id_token(&issuer, &code, mode)})
                        }
                        _ => json!({}),
                    };
                    let text = json.to_string();
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        Self {
            base,
            answer,
            published,
        }
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().expect("answer") = answer;
    }
}

/// The ID token the rogue gives for `code` (the nonce the downstream sent: the test's
/// own shortcut), failing the check `mode` names.
fn rogue_id_token(issuer: &str, nonce: &str, mode: Answer) -> String {
    let now = Utc::now().timestamp();
    let claims = json!({
        "iss": if mode == Answer::WrongIssuer { "https://evil.example" } else { issuer },
        "sub": "rogue-subject",
        "aud": if mode == Answer::WrongAudience { "someone-else" } else { "downstream" },
        "iat": if mode == Answer::Expired { now - 7200 } else { now },
        "exp": if mode == Answer::Expired { now - 3600 } else { now + 300 },
        "nonce": if mode == Answer::WrongNonce { "another-nonce" } else { nonce },
        "email": "rogue.person@example.com",
        "email_verified": true,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(if mode == Answer::NewKey { "new" } else { "old" }.into());
    let der = base64::engine::general_purpose::STANDARD
        .decode(ROGUE_KEY)
        .expect("the test key");
    let key = EncodingKey::from_rsa_der(&der);
    let token = jsonwebtoken::encode(&header, &claims, &key).expect("sign");
    if mode == Answer::BadSignature {
        let (signed, signature) = token.rsplit_once('.').expect("a JWT");
        let flipped = if signature.starts_with('A') { "B" } else { "A" };
        format!("{signed}.{flipped}{}", &signature[1..])
    } else {
        token
    }
}

/// The state and nonce of the authorization request a start redirects to.
fn request_of(headers: &HeaderMap) -> (String, String) {
    let url = location(headers);
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .expect(name)
    };
    assert_eq!(get("code_challenge_method"), "S256");
    assert!(!get("code_challenge").is_empty());
    (get("state"), get("nonce"))
}

/// Starts a flow in `browser`: the state and nonce the provider would be sent.
async fn start_flow(browser: &mut PageClient) -> (String, String) {
    let (_, headers, _) = browser.get(&start_path()).await;
    request_of(&headers)
}

/// The provider's redirect back to the downstream, with `query`.
async fn callback(browser: &mut PageClient, query: &str) -> (StatusCode, HeaderMap, String) {
    browser
        .get(&format!("/auth/providers/{PROVIDER}/callback?{query}"))
        .await
}

async fn rogue_downstream(backend: Backend, rogue: &Rogue) -> Option<TestApp> {
    let issuer = rogue.base.clone();
    TestApp::spawn_with(backend, |s| {
        s.request_timeout = Duration::from_secs(15);
        s.providers = vec![provider_entry(
            &issuer,
            "downstream",
            "rogue-secret",
            "confirm",
            true,
        )];
    })
    .await
}

async fn an_id_token_that_fails_a_check_signs_nobody_in(backend: Backend) {
    let rogue = Rogue::start().await;
    let Some(down) = rogue_downstream(backend, &rogue).await else {
        return;
    };
    for answer in [
        Answer::WrongNonce,
        Answer::WrongIssuer,
        Answer::WrongAudience,
        Answer::Expired,
        Answer::BadSignature,
    ] {
        rogue.answer(answer);
        let mut browser = PageClient::new(&down);
        let (state, nonce) = start_flow(&mut browser).await;
        let (status, headers, html) =
            callback(&mut browser, &format!("code={nonce}&state={state}")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer:?}: {html}");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .expect("type")
                .starts_with("text/html")
        );
        assert!(!browser.has_cookie("shelter_access"), "{answer:?}");
    }
}

async fn a_callback_works_once_in_its_own_browser_and_follows_a_key_rotation(backend: Backend) {
    let rogue = Rogue::start().await;
    let Some(down) = rogue_downstream(backend, &rogue).await else {
        return;
    };
    // A callback's state must be this browser's flow's: a forged one, or one brought to
    // another browser, or a second use, signs nobody in.
    rogue.answer(Answer::Good);
    let mut browser = PageClient::new(&down);
    let (state, nonce) = start_flow(&mut browser).await;
    let (status, _, _) = callback(&mut browser, &format!("code={nonce}&state=forged")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a forged state");
    let (state2, nonce2) = start_flow(&mut browser).await;
    assert_ne!(state, state2);
    let mut other = PageClient::new(&down);
    let (status, _, _) = callback(&mut other, &format!("code={nonce2}&state={state2}")).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "another browser's callback"
    );
    let (status, headers, html) =
        callback(&mut browser, &format!("code={nonce2}&state={state2}")).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the good answer signs in: {html}"
    );
    assert_eq!(location(&headers), "/account");
    let (status, _, _) = callback(&mut browser, &format!("code={nonce2}&state={state2}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a callback works once");

    // The provider rotated its key: the first token with the new kid refetches the JWKS.
    *rogue.published.lock().expect("kid") = "new";
    rogue.answer(Answer::NewKey);
    let mut browser = PageClient::new(&down);
    let (state, nonce) = start_flow(&mut browser).await;
    let (status, _, html) = callback(&mut browser, &format!("code={nonce}&state={state}")).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "after a refetch of the keys: {html}"
    );

    // The provider said no: an error page.
    let mut browser = PageClient::new(&down);
    let (state, _) = start_flow(&mut browser).await;
    let (status, _, html) =
        callback(&mut browser, &format!("error=access_denied&state={state}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("access_denied"), "{html}");
    let (status, _, _) = browser.get("/auth/providers/nope/start").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = browser.get("/auth/providers/NOT%20AN%20ID/start").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn a_provider_that_stops_answering_is_a_503_page_and_passwords_still_work(backend: Backend) {
    let rogue = Rogue::start().await;
    let Some(down) = rogue_downstream(backend, &rogue).await else {
        return;
    };
    rogue.answer(Answer::Silent);
    let mut browser = PageClient::new(&down);
    let (state, nonce) = start_flow(&mut browser).await;
    let started = Instant::now();
    let callback = tokio::spawn({
        let mut browser = browser;
        async move { callback(&mut browser, &format!("code={nonce}&state={state}")).await }
    });
    // Meanwhile, a password still signs in.
    let (user, _, _) = down.user_with_token().await;
    assert_eq!(
        down.login(&user.username, &user.password).await.status(),
        StatusCode::OK
    );
    let (status, headers, html) = callback.await.expect("the callback");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{html}");
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert!(html.contains("did not answer"), "{html}");
    assert!(
        started.elapsed() < Duration::from_secs(14),
        "within the request deadline"
    );

    // A provider that is down when Shelter starts does not keep it from starting.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let Some(down) = TestApp::spawn_with(backend, |s| {
        s.providers = vec![provider_entry(
            &closed,
            "downstream",
            "secret",
            "confirm",
            true,
        )];
    })
    .await
    else {
        return;
    };
    let (status, headers, _) = PageClient::new(&down).get(&start_path()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
    let (user, _, _) = down.user_with_token().await;
    assert_eq!(
        down.login(&user.username, &user.password).await.status(),
        StatusCode::OK
    );
}

shelter_test_support::on_both_backends!(
    a_new_account_becomes_a_user_and_comes_back_by_its_subject,
    without_create_users_an_unknown_account_is_refused,
    confirm_asks_the_accounts_password_once_then_links,
    confirm_takes_the_accounts_passkey_instead_of_its_password,
    verified_email_links_at_once_only_when_the_provider_verified_it,
    never_refuses_then_the_user_links_from_the_account_page,
    the_last_way_to_sign_in_cannot_be_unlinked,
    the_local_second_factor_still_applies,
    an_id_token_that_fails_a_check_signs_nobody_in,
    a_callback_works_once_in_its_own_browser_and_follows_a_key_rotation,
    a_provider_that_stops_answering_is_a_503_page_and_passwords_still_work,
);
