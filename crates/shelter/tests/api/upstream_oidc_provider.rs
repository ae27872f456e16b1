//! An independent upstream provider: panva's `oidc-provider` (Node, OpenID Certified), run
//! from `.ci/oidc/op.mjs` with its development sign-in pages. Shelter signs people in with
//! it, creates users, links under each policy, unlinks, and shows a 503 page when it goes
//! away mid-flow, on both databases. Its ID tokens of a
//! code flow carry only `sub`, as the specification allows, so the email comes from its
//! userinfo endpoint.
//!
//! `.ci/run` installs the library (`npm ci --prefix .ci/oidc`). Without Node or the library
//! the test skips with a reason, unless `CI=true`, where it fails.

use std::path::PathBuf;
use std::process::Stdio;

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};
use serde_json::Value;
use shelter_test_support::Backend;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{TestApp, TestUser, body};
use crate::pages::PageClient;
use crate::providers::{free_port, provider_entry};

fn provider_script() -> Option<PathBuf> {
    crate::helpers::node_peers("oidc-provider").map(|folder| folder.join("op.mjs"))
}

/// Starts the provider and waits until it listens.
async fn start_provider(script: &PathBuf, port: u16, redirect: &str) -> Child {
    let mut child = Command::new("node")
        .arg(script)
        .args([&port.to_string(), "shelter", "upstream-secret", redirect])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim() == "ready" {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "oidc-provider did not start");
    // Whatever it prints later must find a reader, or it dies of a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

fn location(headers: &HeaderMap) -> String {
    headers[header::LOCATION]
        .to_str()
        .expect("a location")
        .to_owned()
}

/// The first form's action on a page, and its hidden fields.
fn form_of(html: &str) -> (String, Vec<(String, String)>) {
    let action = html
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form")
        .replace("&amp;", "&");
    let hidden = html
        .split("type=\"hidden\"")
        .skip(1)
        .filter_map(|input| {
            let name = input.split("name=\"").nth(1)?.split('"').next()?;
            let value = input.split("value=\"").nth(1)?.split('"').next()?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect();
    (action, hidden)
}

/// From Shelter's provider button through the provider's sign-in (as `login`) and consent
/// pages, to the address of Shelter's callback the provider sends the browser back to.
async fn through_provider(
    shelter: &mut PageClient,
    provider: &mut PageClient,
    provider_base: &str,
    login: &str,
) -> String {
    let (status, headers, html) = shelter.get("/auth/providers/upstream/start").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    let mut url = location(&headers);
    for _ in 0..12 {
        let Some(path) = url.strip_prefix(provider_base) else {
            let (_, path) = url
                .split_once("/auth/providers/")
                .expect("Shelter's callback");
            return format!("/auth/providers/{path}");
        };
        let path = path.to_owned();
        let (status, headers, html) = provider.get(&path).await;
        let (status, headers, html) = if status == StatusCode::OK {
            let (action, mut fields) = form_of(&html);
            if html.contains("name=\"login\"") {
                fields.push(("login".into(), login.into()));
                fields.push(("password".into(), "anything".into()));
            }
            let fields: Vec<(&str, &str)> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let action = action.strip_prefix(provider_base).unwrap_or(&action);
            provider.post(action, &fields).await
        } else {
            (status, headers, html)
        };
        assert!(status.is_redirection(), "{status}: {html}");
        let next = location(&headers);
        url = if next.starts_with('/') {
            format!("{provider_base}{next}")
        } else {
            next
        };
    }
    panic!("too many redirects");
}

/// As [`through_provider`], then Shelter's answer to the callback.
async fn sign_in_with(
    shelter: &mut PageClient,
    provider: &mut PageClient,
    provider_base: &str,
    login: &str,
) -> (StatusCode, HeaderMap, String) {
    let callback = through_provider(shelter, provider, provider_base, login).await;
    shelter.get(&callback).await
}

/// Checks the browser is signed in as `id` with `subject` linked; its access token.
async fn signed_in_and_linked(
    app: &TestApp,
    browser: &PageClient,
    id: i64,
    subject: &str,
) -> String {
    assert_eq!(me(app, browser).await["id"], id);
    let token = browser
        .cookie("shelter_access")
        .expect("signed in")
        .to_owned();
    let linked = body(app.get_as("/users/me/identities", &token).await).await;
    assert_eq!(linked["items"][0]["subject"], subject, "{linked}");
    token
}

async fn me(app: &TestApp, browser: &PageClient) -> Value {
    let token = browser.cookie("shelter_access").expect("signed in");
    body(app.get_as("/users/me", token).await).await
}

/// A Shelter on `port` whose provider "upstream" is the `oidc-provider` at `op_base`.
async fn downstream(
    backend: Backend,
    port: u16,
    op_base: &str,
    link: &'static str,
    create: bool,
) -> Option<TestApp> {
    TestApp::spawn_with(backend, |s| {
        s.port = port;
        s.public_url = format!("http://127.0.0.1:{port}").parse().expect("url");
        s.providers = vec![provider_entry(
            op_base,
            "shelter",
            "upstream-secret",
            link,
            create,
        )];
    })
    .await
}

/// A browser of `app`'s pages pointed at the provider's.
fn provider_at(app: &TestApp, op_base: &str) -> PageClient {
    let mut client = PageClient::new(app);
    client.rebase(op_base);
    client
}

async fn oidc_provider_signs_people_in_creates_users_and_links_verified_emails(backend: Backend) {
    let Some(script) = provider_script() else {
        return;
    };
    let (op_port, port) = (free_port(), free_port());
    let op_base = format!("http://127.0.0.1:{op_port}");
    let redirect = format!("http://127.0.0.1:{port}/auth/providers/upstream/callback");
    let _provider = start_provider(&script, op_port, &redirect).await;
    let Some(app) = downstream(backend, port, &op_base, "verified_email", true).await else {
        return;
    };

    // A new account, its email verified by the provider: a new user, verified.
    let mut shelter = PageClient::new(&app);
    let mut provider = provider_at(&app, &op_base);
    let (status, headers, html) =
        sign_in_with(&mut shelter, &mut provider, &op_base, "verified-ada").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(location(&headers), "/account");
    let ada = me(&app, &shelter).await;
    assert_eq!(ada["email"], "verified-ada@example.com");
    assert_eq!(ada["email_verified"], true);
    assert_eq!(ada["username"], "verified-ada");

    // An unverified email of an account here: refused, nothing linked.
    let mut bob = TestUser::generate();
    bob.email = "bob@example.com".into();
    app.create(&bob).await;
    let mut shelter = PageClient::new(&app);
    let mut provider = provider_at(&app, &op_base);
    let (status, _, html) = sign_in_with(&mut shelter, &mut provider, &op_base, "bob").await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(!shelter.has_cookie("shelter_access"));

    // A verified email of an account here: linked at once, signed in as that account.
    let mut cy = TestUser::generate();
    cy.email = "verified-cy@example.com".into();
    let cy_id = app.create(&cy).await;
    let mut shelter = PageClient::new(&app);
    let mut provider = provider_at(&app, &op_base);
    let (status, _, html) =
        sign_in_with(&mut shelter, &mut provider, &op_base, "verified-cy").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    signed_in_and_linked(&app, &shelter, cy_id, "verified-cy").await;
}

/// Two Shelters on one `oidc-provider`: one links after the password (`confirm`), the
/// other never links and creates nobody. Then the provider goes away mid-flow.
async fn oidc_provider_confirm_never_unlink_and_an_outage(backend: Backend) {
    let Some(script) = provider_script() else {
        return;
    };
    let (op_port, confirming, never) = (free_port(), free_port(), free_port());
    let op_base = format!("http://127.0.0.1:{op_port}");
    let callback = |port: u16| format!("http://127.0.0.1:{port}/auth/providers/upstream/callback");
    let redirects = format!("{},{}", callback(confirming), callback(never));
    let mut provider_process = start_provider(&script, op_port, &redirects).await;
    let Some(confirm_app) = downstream(backend, confirming, &op_base, "confirm", true).await else {
        return;
    };
    let Some(never_app) = downstream(backend, never, &op_base, "never", false).await else {
        return;
    };

    // confirm: the account here proves itself with its password, then it is linked.
    let mut dana = TestUser::generate();
    dana.email = "dana@example.com".into();
    let dana_id = confirm_app.create(&dana).await;
    let mut shelter = PageClient::new(&confirm_app);
    let mut provider = provider_at(&confirm_app, &op_base);
    let (status, _, page) = sign_in_with(&mut shelter, &mut provider, &op_base, "dana").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("name=\"password\""), "{page}");
    let (_, mut fields) = form_of(&page);
    fields.dedup_by(|a, b| a.0 == b.0);
    fields.push(("password".into(), dana.password.clone()));
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, headers, html) = shelter.post("/auth/providers/confirm", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(location(&headers), "/account");
    let token = signed_in_and_linked(&confirm_app, &shelter, dana_id, "dana").await;

    // Unlinking: dana has a password, so the link may go.
    let unlinked = confirm_app
        .delete_as("/users/me/identities/upstream", &token)
        .await;
    assert_eq!(unlinked.status(), StatusCode::NO_CONTENT);
    let linked = body(confirm_app.get_as("/users/me/identities", &token).await).await;
    assert_eq!(linked["items"], serde_json::json!([]));

    // never, and no creation: an account here is not linked, an unknown one not made.
    let mut eve = TestUser::generate();
    eve.email = "verified-eve@example.com".into();
    never_app.create(&eve).await;
    for (login, status) in [
        ("verified-eve", StatusCode::CONFLICT),
        ("verified-frank", StatusCode::FORBIDDEN),
    ] {
        let mut shelter = PageClient::new(&never_app);
        let mut provider = provider_at(&never_app, &op_base);
        let (answer, _, html) = sign_in_with(&mut shelter, &mut provider, &op_base, login).await;
        assert_eq!(answer, status, "{login}: {html}");
        assert!(!shelter.has_cookie("shelter_access"));
    }

    // The provider goes away between its redirect back and the code exchange: a 503 page.
    let mut shelter = PageClient::new(&confirm_app);
    let mut provider = provider_at(&confirm_app, &op_base);
    let callback = through_provider(&mut shelter, &mut provider, &op_base, "verified-gus").await;
    provider_process.kill().await.expect("stop the provider");
    let (status, headers, html) = shelter.get(&callback).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{html}");
    assert!(headers.contains_key(header::RETRY_AFTER));
    assert!(!shelter.has_cookie("shelter_access"));
    let (user, _, _) = confirm_app.user_with_token().await;
    assert_eq!(
        confirm_app
            .login(&user.username, &user.password)
            .await
            .status(),
        StatusCode::OK,
        "a password still signs in"
    );
}

shelter_test_support::on_both_backends!(
    oidc_provider_signs_people_in_creates_users_and_links_verified_emails,
    oidc_provider_confirm_never_unlink_and_an_outage,
);
