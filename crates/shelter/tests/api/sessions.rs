//! Sessions and refresh tokens: rotation, the grace window, reuse detection, logout,
//! listing and ending logins.

use reqwest::StatusCode;
use serde_json::json;
use shelter_test_support::Backend;
use std::time::Duration;

use crate::chat::{close_code, open};
use crate::helpers::{TestApp, TestUser, body, problem};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn refresh_token(tokens: &serde_json::Value) -> String {
    tokens["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned()
}

async fn login_returns_an_opaque_refresh_token_that_rotates(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let first = app.tokens(&user).await;
    let token = refresh_token(&first);
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    assert!(!token.contains('.'), "opaque, not a JWT");

    let response = app.refresh(&token).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let second = body(response).await;
    assert_ne!(refresh_token(&second), token);
    let access = second["access_token"].as_str().expect("access token");
    let me = app.get_as("/users/me", access).await;
    assert_eq!(body(me).await["email"], user.email);

    let response = app.get_as("/users/me", &token).await;
    problem(response, StatusCode::UNAUTHORIZED).await;
}

async fn a_spent_token_reused_after_the_grace_window_revokes_the_login(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| s.refresh_reuse_grace = Duration::ZERO).await
    else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let original = refresh_token(&app.tokens(&user).await);
    let rotated = refresh_token(&body(app.refresh(&original).await).await);
    problem(app.refresh(&original).await, StatusCode::UNAUTHORIZED).await;
    problem(app.refresh(&rotated).await, StatusCode::UNAUTHORIZED).await;

    let other_login = refresh_token(&app.tokens(&user).await);
    let response = app.refresh(&other_login).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "other logins are untouched"
    );
}

async fn two_tabs_refreshing_at_once_both_stay_logged_in(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let token = refresh_token(&app.tokens(&user).await);
    let (a, b) = tokio::join!(app.refresh(&token), app.refresh(&token));
    let (a, b) = (body(a).await, body(b).await);
    for tab in [&a, &b] {
        let next = app.refresh(&refresh_token(tab)).await;
        assert_eq!(next.status(), StatusCode::OK, "each tab keeps refreshing");
    }
    // Inside the grace window the spent token still gets a pair.
    assert_eq!(app.refresh(&token).await.status(), StatusCode::OK);
}

async fn logout_ends_that_login_only(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let phone = refresh_token(&app.tokens(&user).await);
    let laptop = refresh_token(&app.tokens(&user).await);
    for _ in 0..2 {
        let response = app
            .post_json("/auth/logout", &json!({"refresh_token": phone}))
            .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "idempotent");
    }
    problem(app.refresh(&phone).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(app.refresh(&laptop).await.status(), StatusCode::OK);
}

async fn a_password_change_revokes_every_refresh_token(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let tokens = app.tokens(&user).await;
    let other = refresh_token(&app.tokens(&user).await);
    let response = app
        .patch("/users/me")
        .bearer_auth(tokens["access_token"].as_str().expect("access"))
        .json(&json!({"password": "a new password", "current_password": user.password}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    for token in [refresh_token(&tokens), other] {
        problem(app.refresh(&token).await, StatusCode::UNAUTHORIZED).await;
    }
}

async fn bad_refresh_requests_get_4xx(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    problem(app.refresh("not-a-token").await, StatusCode::UNAUTHORIZED).await;
    problem(app.refresh("").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    let response = app.post_json("/auth/refresh", &json!({})).await;
    problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let response = app
        .post_json("/auth/refresh", &json!({"refresh_token": 5}))
        .await;
    problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let response = app
        .post("/auth/logout")
        .body("x")
        .send()
        .await
        .expect("request");
    problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

fn access_token(tokens: &serde_json::Value) -> String {
    tokens["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// Logs `user` in with a `User-Agent`, returning the token answer.
async fn login_from(app: &TestApp, user: &TestUser, agent: &str) -> serde_json::Value {
    let response = app
        .post("/auth/token")
        .header("user-agent", agent)
        .form(&[("username", &user.email), ("password", &user.password)])
        .send()
        .await
        .expect("login request");
    assert_eq!(response.status(), StatusCode::OK);
    body(response).await
}

async fn sessions(app: &TestApp, token: &str) -> Vec<serde_json::Value> {
    let response = app.get_as("/users/me/sessions", token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    body(response).await["items"]
        .as_array()
        .expect("items")
        .clone()
}

async fn logout_ends_the_logins_access_tokens_and_sockets_at_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = TestUser::generate();
    let id = app.create(&user).await;
    let phone = app.tokens(&user).await;
    let laptop = app.tokens(&user).await;
    let mut socket = open(&app, id, &access_token(&phone)).await;
    let response = app
        .post_json(
            "/auth/logout",
            &json!({"refresh_token": refresh_token(&phone)}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    problem(
        app.get_as("/users/me", &access_token(&phone)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Policy));
    let me = app.get_as("/users/me", &access_token(&laptop)).await;
    assert_eq!(me.status(), StatusCode::OK, "the other login lives on");
}

async fn sessions_are_listed_newest_first_and_one_can_be_ended(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = TestUser::generate();
    let id = app.create(&user).await;
    let phone = login_from(&app, &user, "Phone/1.0").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let laptop = login_from(&app, &user, "Laptop/2.0").await;

    let listed = sessions(&app, &access_token(&laptop)).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["user_agent"], "Laptop/2.0");
    assert_eq!(listed[0]["current"], true);
    assert_eq!(listed[1]["user_agent"], "Phone/1.0");
    assert_eq!(listed[1]["current"], false);
    for session in &listed {
        assert_eq!(session["ip"], "127.0.0.1");
        for field in ["created_at", "last_used_at", "expires_at"] {
            let time = session[field].as_str().expect(field);
            assert!(
                chrono::DateTime::parse_from_rfc3339(time).is_ok(),
                "{field}: {time}"
            );
        }
    }
    let phone_session = listed[1]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        phone_session,
        crate::auth::claims_of(&access_token(&phone))["sid"],
        "the id is the sid of the login's access tokens"
    );

    let (_, _, stranger) = app.user_with_token().await;
    let path = format!("/users/me/sessions/{phone_session}");
    problem(app.delete_as(&path, &stranger).await, StatusCode::NOT_FOUND).await;
    for garbage in ["x", "1", "00000000-0000-0000-0000-000000000000"] {
        let response = app
            .delete_as(
                &format!("/users/me/sessions/{garbage}"),
                &access_token(&laptop),
            )
            .await;
        problem(response, StatusCode::NOT_FOUND).await;
    }
    problem(
        app.delete(&path).send().await.expect("request"),
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let mut socket = open(&app, id, &access_token(&phone)).await;
    let response = app.delete_as(&path, &access_token(&laptop)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    problem(
        app.get_as("/users/me", &access_token(&phone)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    problem(
        app.refresh(&refresh_token(&phone)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Policy));
    problem(
        app.delete_as(&path, &access_token(&laptop)).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let left = sessions(&app, &access_token(&laptop)).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["user_agent"], "Laptop/2.0");
}

shelter_test_support::on_both_backends!(
    logout_ends_the_logins_access_tokens_and_sockets_at_once,
    sessions_are_listed_newest_first_and_one_can_be_ended,
    login_returns_an_opaque_refresh_token_that_rotates,
    a_spent_token_reused_after_the_grace_window_revokes_the_login,
    two_tabs_refreshing_at_once_both_stay_logged_in,
    logout_ends_that_login_only,
    a_password_change_revokes_every_refresh_token,
    bad_refresh_requests_get_4xx,
);
