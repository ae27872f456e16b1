//! Sign-in codes by email over a real SMTP socket: the code and the link, single use, a
//! newer one replacing the older, five wrong tries, enumeration-safe answers, one factor,
//! and the email verified by signing in this way.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use shelter_crypto::code_at;
use shelter_test_support::Backend;
use shelter_test_support::smtp::{ReceivedEmail, SmtpServer};

use crate::helpers::{TestApp, TestUser, body, problem};
use crate::pages::PageClient;

const WAIT: Duration = Duration::from_secs(20);

/// A sign-in email's code (its `Code: ` line) and the token of its link.
struct SignInEmail {
    code: String,
    link_token: String,
}

impl SignInEmail {
    fn of(email: &ReceivedEmail) -> Option<Self> {
        // Quoted-printable: long lines are broken with a trailing `=`, and `=` is `=3D`.
        let text = email
            .data
            .replace("=\r\n", "")
            .replace("=\n", "")
            .replace("=3D", "=");
        let code = text
            .lines()
            .find_map(|line| line.strip_prefix("Code: "))?
            .trim()
            .to_owned();
        let marker = "/login/email?token=";
        let link_token = text
            .lines()
            .find_map(|line| line.split_once(marker))
            .map(|(_, rest)| rest.trim().to_owned())?;
        Some(Self { code, link_token })
    }

    fn link(&self) -> String {
        format!("/login/email?token={}", self.link_token)
    }

    /// Opens the link in `browser` and presses its button.
    async fn follow_link(&self, browser: &mut PageClient) -> (StatusCode, HeaderMap, String) {
        let token = [("token", self.link_token.as_str())];
        browser.submit(&self.link(), "/login/email", &token).await
    }
}

/// Asks for a sign-in email for `email`; the answer's body.
async fn ask(app: &TestApp, email: &str) -> Value {
    let response = app
        .post_json("/auth/email-code", &json!({"email": email}))
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    body(response).await
}

/// The `n`th sign-in email (counting from 1) that `address` has received.
async fn nth_sign_in_email(smtp: &SmtpServer, address: &str, n: usize) -> SignInEmail {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found: Vec<SignInEmail> = smtp
            .received()
            .iter()
            .filter(|email| email.to.iter().any(|to| to.eq_ignore_ascii_case(address)))
            .filter_map(SignInEmail::of)
            .collect();
        if let Some(email) = found.into_iter().nth(n - 1) {
            return email;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sign-in email {n} to {address} did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn verify(app: &TestApp, email: &str, code: &str) -> reqwest::Response {
    app.post_json(
        "/auth/email-code/verify",
        &json!({"email": email, "code": code}),
    )
    .await
}

async fn a_code_signs_in_once_and_verifies_the_email(backend: Backend) {
    let Some((app, smtp)) = TestApp::spawn_with_smtp(backend, |_| {}).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let before = body(app.get_as("/users/me", &app.token_for(&user).await).await).await;
    assert_eq!(before["email_verified"], false);

    // The same answer for a known address, in any case, and an unknown one.
    let known = ask(&app, &user.email.to_uppercase()).await;
    assert_eq!(known, ask(&app, "nobody@example.com").await);
    let email = nth_sign_in_email(&smtp, &user.email, 1).await;
    assert_eq!(email.code.len(), 6, "six digits: {}", email.code);
    assert!(email.code.chars().all(|c| c.is_ascii_digit()));
    assert!(
        smtp.received()
            .iter()
            .all(|e| !e.to.iter().any(|to| to == "nobody@example.com")),
        "nothing for an unknown address"
    );

    let signed_in = verify(&app, &user.email, &email.code).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let tokens = body(signed_in).await;
    let access = tokens["access_token"].as_str().expect("access token");
    assert!(tokens["refresh_token"].is_string());
    let me = body(app.get_as("/users/me", access).await).await;
    assert_eq!(
        me["email_verified"], true,
        "signing in this way verifies it"
    );

    problem(
        verify(&app, &user.email, &email.code).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let events = body(app.get_as("/users/me/audit-events", access).await).await;
    let text = events.to_string();
    assert!(text.contains("email_code_sent"), "{text}");
    assert!(text.contains("\"method\":\"email_code\""), "{text}");
    // The link of a spent code is spent with it.
    let (status, _, html) = email.follow_link(&mut PageClient::new(&app)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
}

async fn a_newer_code_replaces_the_older_and_five_wrong_codes_spend_it(backend: Backend) {
    let Some((app, smtp)) = TestApp::spawn_with_smtp(backend, |_| {}).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    ask(&app, &user.email).await;
    let first = nth_sign_in_email(&smtp, &user.email, 1).await;
    ask(&app, &user.email).await;
    let second = nth_sign_in_email(&smtp, &user.email, 2).await;
    assert_ne!(first.link_token, second.link_token);
    if first.code != second.code {
        let replaced = verify(&app, &user.email, &first.code).await;
        problem(replaced, StatusCode::UNAUTHORIZED).await;
    }
    // The old link is no good either.
    let (status, _, _) = first.follow_link(&mut PageClient::new(&app)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let wrong = if second.code == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        let refused = problem(
            verify(&app, &user.email, wrong).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_eq!(
            refused["detail"],
            problem(
                verify(&app, "nobody@example.com", wrong).await,
                StatusCode::UNAUTHORIZED
            )
            .await["detail"],
            "one message for every reason"
        );
    }
    problem(
        verify(&app, &user.email, &second.code).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    // Not even six digits: a wrong code like any other.
    let malformed = verify(&app, &user.email, "12ab").await;
    problem(malformed, StatusCode::UNAUTHORIZED).await;
}

async fn the_link_shows_a_button_and_its_post_signs_in(backend: Backend) {
    let Some((app, smtp)) = TestApp::spawn_with_smtp(backend, |_| {}).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    ask(&app, &user.email).await;
    let email = nth_sign_in_email(&smtp, &user.email, 1).await;
    let link = email.link();
    let mut scanner = PageClient::new(&app);
    for _ in 0..2 {
        let (status, _, html) = scanner.get(&link).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Sign in"), "{html}");
        assert!(
            !scanner.has_cookie("shelter_access"),
            "a GET signs nobody in"
        );
    }
    let mut browser = PageClient::new(&app);
    let (status, headers, html) = email.follow_link(&mut browser).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{html}");
    assert_eq!(headers["location"], "/account");
    let (status, _, account) = browser.get("/account").await;
    assert_eq!(status, StatusCode::OK);
    assert!(account.contains(&user.email), "signed in as the user");
    // The code of the same email went with the link.
    problem(
        verify(&app, &user.email, &email.code).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

async fn a_totp_user_still_takes_the_second_step(backend: Backend) {
    let Some((app, smtp)) = TestApp::spawn_with_smtp(backend, |_| {}).await else {
        return;
    };
    let (user, _, token) = app.user_with_token().await;
    let secret = crate::mfa::turn_on(&app, &user, &token).await.0;
    ask(&app, &user.email).await;
    let email = nth_sign_in_email(&smtp, &user.email, 1).await;
    let step = problem(
        verify(&app, &user.email, &email.code).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(step["code"], "mfa_required");
    assert_eq!(step["methods"], json!(["totp", "recovery_code"]));
    let code = code_at(&secret, chrono::Utc::now() + chrono::Duration::seconds(30)).expect("code");
    let done = app
        .post_json(
            "/auth/mfa",
            &json!({"mfa_token": step["mfa_token"], "code": code}),
        )
        .await;
    assert_eq!(done.status(), StatusCode::OK);
}

async fn an_inactive_user_gets_no_email_and_the_feature_can_be_off(backend: Backend) {
    let Some((app, smtp)) = TestApp::spawn_with_smtp(backend, |_| {}).await else {
        return;
    };
    let user = TestUser::generate();
    let id = app.create(&user).await;
    app.deactivate(id).await;
    ask(&app, &user.email).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        smtp.received()
            .iter()
            .all(|email| SignInEmail::of(email).is_none()),
        "no sign-in email for an inactive user"
    );

    let Some(off) =
        TestApp::spawn_with(backend, |settings| settings.email.code_enabled = false).await
    else {
        return;
    };
    let asked = off
        .post_json("/auth/email-code", &json!({"email": user.email}))
        .await;
    problem(asked, StatusCode::NOT_FOUND).await;
    problem(
        verify(&off, &user.email, "123456").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let mut browser = PageClient::new(&off);
    let (_, _, login) = browser.get("/login").await;
    assert!(
        !login.contains("/login/email-code"),
        "no link to a feature that is off"
    );
}

shelter_test_support::on_both_backends!(
    a_code_signs_in_once_and_verifies_the_email,
    a_newer_code_replaces_the_older_and_five_wrong_codes_spend_it,
    the_link_shows_a_button_and_its_post_signs_in,
    a_totp_user_still_takes_the_second_step,
    an_inactive_user_gets_no_email_and_the_feature_can_be_off,
);
