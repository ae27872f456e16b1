//! Emails over a real SMTP socket: welcome and verification, recovery and reset, and
//! delivery that survives the mail server being down and the process being killed.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use shelter_test_support::Backend;
use shelter_test_support::smtp::{ReceivedEmail, SmtpServer};

use crate::helpers::{TestApp, TestUser, body, problem};

const WAIT: Duration = Duration::from_secs(20);

async fn signup_sends_a_welcome_email_whose_token_verifies_the_address(backend: Backend) {
    let Some((app, smtp)) = TestApp::spawn_with_smtp(backend, |_| {}).await else {
        return;
    };
    let user = TestUser::generate();
    let id = app.create(&user).await;
    let email = smtp
        .email_to(&user.email, WAIT)
        .await
        .expect("welcome email delivered");
    assert!(
        email.subject().is_some_and(|s| s.contains("Welcome")),
        "{:?}",
        email.subject()
    );
    assert!(
        email.data.contains("multipart/alternative"),
        "text and HTML"
    );
    assert!(email.data.contains("text/html") && email.data.contains("text/plain"));
    assert!(
        email
            .data
            .contains("http://127.0.0.1:8000/verify-email?token="),
        "link under the public URL"
    );
    let token = email.token().expect("Token: line");

    let response = app
        .post_json("/auth/verify-email", &json!({"token": token}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let verified = body(response).await;
    assert_eq!(
        (
            verified["id"].as_i64(),
            verified["email_verified"].as_bool()
        ),
        (Some(id), Some(true))
    );

    let again = app
        .post_json("/auth/verify-email", &json!({"token": token}))
        .await;
    problem(again, StatusCode::BAD_REQUEST).await;
    let bogus = app
        .post_json("/auth/verify-email", &json!({"token": "bogus"}))
        .await;
    problem(bogus, StatusCode::BAD_REQUEST).await;
}

async fn changing_the_email_unverifies_it_and_mails_the_new_address(backend: Backend) {
    let Some((app, smtp)) = TestApp::spawn_with_smtp(backend, |_| {}).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let welcome = smtp.email_to(&user.email, WAIT).await.expect("welcome");
    let token = app.token_for(&user).await;
    let new_email = TestUser::generate().email;
    let response = app
        .patch_as(
            "/users/me",
            &token,
            &json!({"email": new_email, "current_password": user.password}),
        )
        .await;
    assert_eq!(body(response).await["email_verified"], false);
    let verification = smtp
        .email_to(&new_email, WAIT)
        .await
        .expect("verification to the new address");
    let old_token = welcome.token().expect("token");
    let response = app
        .post_json("/auth/verify-email", &json!({"token": old_token}))
        .await;
    problem(response, StatusCode::BAD_REQUEST).await;
    let response = app
        .post_json(
            "/auth/verify-email",
            &json!({"token": verification.token().expect("token")}),
        )
        .await;
    let verified = body(response).await;
    assert_eq!(
        (
            verified["email"].as_str(),
            verified["email_verified"].as_bool()
        ),
        (Some(new_email.as_str()), Some(true))
    );
}

async fn password_recovery_answers_the_same_and_the_reset_ends_every_session(backend: Backend) {
    let Some((app, smtp)) = TestApp::spawn_with_smtp(backend, |_| {}).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let tokens = app.tokens(&user).await;

    let mut answers = Vec::new();
    for email in [user.email.clone(), "nobody@example.com".to_owned()] {
        let response = app
            .post_json("/auth/password-recovery", &json!({"email": email}))
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        answers.push(body(response).await);
    }
    assert_eq!(
        answers[0], answers[1],
        "the same body for known and unknown emails"
    );
    let reset = loop {
        let received = smtp.wait_for(2, WAIT).await;
        if let Some(email) = received
            .iter()
            .find(|e| e.subject().is_some_and(|s| s.contains("Reset")))
        {
            break email.clone();
        }
        assert!(received.len() < 3, "only the known user gets a reset email");
    };
    assert_eq!(reset.to, std::slice::from_ref(&user.email));
    assert!(reset.data.contains("/reset-password?token="));
    let token = reset.token().expect("Token: line");

    let weak = app
        .post_json(
            "/auth/reset-password",
            &json!({"token": token, "new_password": "short"}),
        )
        .await;
    problem(weak, StatusCode::UNPROCESSABLE_ENTITY).await;
    let response = app
        .post_json(
            "/auth/reset-password",
            &json!({"token": token, "new_password": "chosen after reset"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let access = tokens["access_token"].as_str().expect("access");
    problem(
        app.get_as("/users/me", access).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        app.refresh(tokens["refresh_token"].as_str().expect("refresh"))
            .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        app.login(&user.email, &user.password).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        app.login(&user.email, "chosen after reset").await.status(),
        StatusCode::OK
    );
    let reused = app
        .post_json(
            "/auth/reset-password",
            &json!({"token": token, "new_password": "another new one"}),
        )
        .await;
    problem(reused, StatusCode::BAD_REQUEST).await;
    let invalid = app
        .post_json("/auth/password-recovery", &json!({"email": "not an email"}))
        .await;
    problem(invalid, StatusCode::UNPROCESSABLE_ENTITY).await;
}

async fn unverified_users_cannot_log_in_when_verification_is_required(backend: Backend) {
    let Some((app, smtp)) =
        TestApp::spawn_with_smtp(backend, |s| s.require_verified_email = true).await
    else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    problem(
        app.login(&user.email, &user.password).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.login(&user.email, "wrong password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let token = smtp
        .email_to(&user.email, WAIT)
        .await
        .and_then(|e| e.token())
        .expect("token");
    let response = app
        .post_json("/auth/verify-email", &json!({"token": token}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.login(&user.email, &user.password).await.status(),
        StatusCode::OK
    );
}

async fn signup_does_not_wait_for_a_mail_server_that_is_down(backend: Backend) {
    let port = SmtpServer::reserve_port().await;
    let url = format!("smtp://127.0.0.1:{port}");
    let Some(app) = TestApp::spawn_with(backend, |s| crate::helpers::with_smtp(s, &url)).await
    else {
        return;
    };
    let user = TestUser::generate();
    // The request path never talks to the mail server: signup succeeds while it is down.
    app.create(&user).await;

    let smtp = SmtpServer::start_on(port).await;
    let email = smtp.email_to(&user.email, WAIT).await;
    assert!(
        email.is_some_and(|e| e.token().is_some()),
        "delivered once the server is back"
    );
}

async fn metrics_count_delivered_emails(backend: Backend) {
    let Some((app, smtp)) = TestApp::spawn_with_smtp(backend, |_| {}).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    smtp.email_to(&user.email, WAIT).await.expect("delivered");
    let metrics = app.get("/metrics").send().await.expect("request");
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .is_ok_and(|v| v.starts_with("text/plain"))
    );
    let text = metrics.text().await.expect("text");
    assert!(text.contains("shelter_emails_sent_total"), "{text}");
    assert!(text.contains("shelter_http_requests_total"), "{text}");
}

/// A new verification email replaces the earlier links; the answer is the same for a
/// known, an unknown and an already verified address; links follow `SHELTER_EMAIL_LINK_BASE`.
async fn resending_verification_retires_the_earlier_link(backend: Backend) {
    let Some((app, smtp)) = TestApp::spawn_with_smtp(backend, |settings| {
        settings.email.link_base = Some("https://app.example.com/account/".parse().expect("url"));
    })
    .await
    else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let welcome = smtp.email_to(&user.email, WAIT).await.expect("welcome");
    assert!(
        welcome
            .data
            .contains("https://app.example.com/account/verify-email?token="),
        "the link base, not the public URL"
    );
    let first = welcome.token().expect("Token: line");
    let resend = |email: String| {
        let app = &app;
        async move {
            let response = app
                .post_json("/auth/verify-email/resend", &json!({"email": email}))
                .await;
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            body(response).await
        }
    };
    let known = resend(user.email.to_uppercase()).await;
    assert_eq!(known, resend("nobody@example.com".into()).await);
    let received = smtp.wait_for(2, WAIT).await;
    let second = received
        .iter()
        .filter(|e| e.to.iter().any(|to| to.eq_ignore_ascii_case(&user.email)))
        .filter_map(ReceivedEmail::token)
        .find(|token| *token != first)
        .expect("a second verification email");
    let old = app
        .post_json("/auth/verify-email", &json!({"token": first}))
        .await;
    problem(old, StatusCode::BAD_REQUEST).await;
    let new = app
        .post_json("/auth/verify-email", &json!({"token": second}))
        .await;
    assert_eq!(body(new).await["email_verified"], true);
    // Verified: the same answer, and no third email.
    assert_eq!(known, resend(user.email.clone()).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 2, "nothing for a verified address");
    let invalid = app
        .post_json(
            "/auth/verify-email/resend",
            &json!({"email": "not an email"}),
        )
        .await;
    problem(invalid, StatusCode::UNPROCESSABLE_ENTITY).await;
}

shelter_test_support::on_both_backends!(
    resending_verification_retires_the_earlier_link,
    signup_sends_a_welcome_email_whose_token_verifies_the_address,
    changing_the_email_unverifies_it_and_mails_the_new_address,
    password_recovery_answers_the_same_and_the_reset_ends_every_session,
    unverified_users_cannot_log_in_when_verification_is_required,
    signup_does_not_wait_for_a_mail_server_that_is_down,
    metrics_count_delivered_emails,
);
