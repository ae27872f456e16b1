//! Refresh tokens: rotation, the grace window, reuse detection, logout, revocation.

use reqwest::StatusCode;
use serde_json::json;
use shelter_test_support::Backend;
use std::time::Duration;

use crate::helpers::{TestApp, TestUser, body, problem};

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

shelter_test_support::on_both_backends!(
    login_returns_an_opaque_refresh_token_that_rotates,
    a_spent_token_reused_after_the_grace_window_revokes_the_login,
    two_tabs_refreshing_at_once_both_stay_logged_in,
    logout_ends_that_login_only,
    a_password_change_revokes_every_refresh_token,
    bad_refresh_requests_get_4xx,
);
