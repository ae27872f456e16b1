//! TOTP from enrolment to login and back, with codes computed from the secret as an
//! authenticator app computes them.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shelter_crypto::code_at;
use shelter_test_support::Backend;

use crate::helpers::{TestApp, TestUser, body, problem};

async fn post_as(app: &TestApp, path: &str, token: &str, json: &Value) -> reqwest::Response {
    app.post(path)
        .bearer_auth(token)
        .json(json)
        .send()
        .await
        .expect("request")
}

/// Enrols and confirms TOTP for `user`; the base32 secret and the recovery codes.
pub async fn turn_on(app: &TestApp, user: &TestUser, token: &str) -> (String, Vec<String>) {
    let response = post_as(
        app,
        "/users/me/mfa/totp",
        token,
        &json!({"current_password": user.password}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let enrolment = body(response).await;
    let secret = enrolment["secret"].as_str().expect("secret").to_owned();
    let uri = enrolment["otpauth_uri"].as_str().expect("uri");
    assert!(
        uri.starts_with("otpauth://totp/Shelter:") && uri.contains(&format!("secret={secret}")),
        "{uri}"
    );
    assert!(uri.ends_with("&issuer=Shelter"), "{uri}");
    let me = body(app.get_as("/users/me", token).await).await;
    assert_eq!(me["mfa_enabled"], false, "not before it is confirmed");

    let wrong = post_as(
        app,
        "/users/me/mfa/totp/confirm",
        token,
        &json!({"code": "12345"}),
    )
    .await;
    problem(wrong, StatusCode::BAD_REQUEST).await;
    let code = code_at(&secret, Utc::now()).expect("code");
    let response = post_as(
        app,
        "/users/me/mfa/totp/confirm",
        token,
        &json!({"code": code}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let codes: Vec<String> = body(response).await["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let me = body(app.get_as("/users/me", token).await).await;
    assert_eq!(me["mfa_enabled"], true);
    (secret, codes)
}

/// The first step of a login with TOTP: its `mfa_token`.
async fn first_step(app: &TestApp, user: &TestUser) -> String {
    let response = app.login(&user.email, &user.password).await;
    let problem = problem(response, StatusCode::FORBIDDEN).await;
    assert_eq!(problem["code"], "mfa_required", "{problem}");
    problem["mfa_token"].as_str().expect("mfa_token").to_owned()
}

async fn second_step(app: &TestApp, mfa_token: &str, code: &str) -> reqwest::Response {
    app.post_json("/auth/mfa", &json!({"mfa_token": mfa_token, "code": code}))
        .await
}

async fn a_totp_login_needs_a_fresh_code_or_an_unused_recovery_code(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (user, _, token) = app.user_with_token().await;
    let wrong = post_as(
        &app,
        "/users/me/mfa/totp",
        &token,
        &json!({"current_password": "not the password"}),
    )
    .await;
    problem(wrong, StatusCode::FORBIDDEN).await;
    let (secret, recovery) = turn_on(&app, &user, &token).await;

    let wrong_password = app.login(&user.email, "not the password").await;
    let refused = problem(wrong_password, StatusCode::UNAUTHORIZED).await;
    assert!(
        refused.get("mfa_token").is_none(),
        "the second step reveals nothing"
    );

    let mfa_token = first_step(&app, &user).await;
    let confirming = code_at(&secret, Utc::now()).expect("code");
    problem(
        second_step(&app, &mfa_token, &confirming).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let next = code_at(&secret, Utc::now() + Duration::seconds(30)).expect("code");
    let response = second_step(&app, &mfa_token, &next).await;
    assert_eq!(response.status(), StatusCode::OK, "the next step's code");
    let tokens = body(response).await;
    let access = tokens["access_token"].as_str().expect("access token");
    assert_eq!(
        body(app.get_as("/users/me", access).await).await["email"],
        user.email
    );
    problem(
        second_step(&app, &mfa_token, &recovery[0]).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let mfa_token = first_step(&app, &user).await;
    let typed = recovery[1].to_uppercase().replace('-', " ");
    assert_eq!(
        second_step(&app, &mfa_token, &typed).await.status(),
        StatusCode::OK
    );
    let mfa_token = first_step(&app, &user).await;
    problem(
        second_step(&app, &mfa_token, &recovery[1]).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        second_step(&app, &mfa_token, &recovery[2]).await.status(),
        StatusCode::OK,
        "a wrong code leaves the token usable"
    );

    five_wrong_codes_spend_the_token(&app, &user, &recovery[3]).await;

    let disable = |password: &str, code: &str| {
        app.delete("/users/me/mfa/totp")
            .bearer_auth(&token)
            .json(&json!({"current_password": password, "code": code}))
            .send()
    };
    problem(
        disable("not it", &recovery[4]).await.expect("request"),
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        disable(&user.password, "000000").await.expect("request"),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let off = disable(&user.password, &recovery[4])
        .await
        .expect("request");
    assert_eq!(off.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.login(&user.email, &user.password).await.status(),
        StatusCode::OK
    );
    problem(
        disable(&user.password, &recovery[5])
            .await
            .expect("request"),
        StatusCode::NOT_FOUND,
    )
    .await;
}

async fn five_wrong_codes_spend_the_token(app: &TestApp, user: &TestUser, recovery: &str) {
    let mfa_token = first_step(app, user).await;
    for _ in 0..5 {
        let wrong = second_step(app, &mfa_token, "wrong-code-0000").await;
        problem(wrong, StatusCode::UNAUTHORIZED).await;
    }
    problem(
        second_step(app, &mfa_token, recovery).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let mfa_token = first_step(app, user).await;
    assert_eq!(
        second_step(app, &mfa_token, recovery).await.status(),
        StatusCode::OK,
        "the spent token did not spend the code"
    );
    for garbage in [
        json!({}),
        json!({"mfa_token": "x", "code": 1}),
        json!({"mfa_token": "", "code": "1"}),
    ] {
        let response = app.post_json("/auth/mfa", &garbage).await;
        problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    problem(
        second_step(app, "unknown", "123456").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

async fn a_superuser_resets_a_lost_device(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (user, id, token) = app.user_with_token().await;
    turn_on(&app, &user, &token).await;
    first_step(&app, &user).await;
    let path = format!("/users/{id}/mfa/totp");
    problem(app.delete_as(&path, &token).await, StatusCode::FORBIDDEN).await;
    let admin = app.admin_token().await;
    assert_eq!(
        app.delete_as(&path, &admin).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.login(&user.email, &user.password).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.delete_as(&path, &admin).await.status(),
        StatusCode::NO_CONTENT,
        "idempotent"
    );
    problem(
        app.delete_as("/users/999999/mfa/totp", &admin).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let again = post_as(
        &app,
        "/users/me/mfa/totp",
        &token,
        &json!({"current_password": user.password}),
    )
    .await;
    assert_eq!(again.status(), StatusCode::OK, "the user may enrol again");
}

shelter_test_support::on_both_backends!(
    a_totp_login_needs_a_fresh_code_or_an_unused_recovery_code,
    a_superuser_resets_a_lost_device,
);
