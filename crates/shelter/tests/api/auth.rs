//! `POST /auth/token` and what access tokens are accepted.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::json;
use shelter_test_support::Backend;

use crate::helpers::{SECRET_KEY, TestApp, TestUser, body, problem};

async fn login_works_by_email_or_username_as_form_or_json(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    for login in [
        user.email.clone(),
        user.email.to_uppercase(),
        user.username.clone(),
        user.username.to_uppercase(),
    ] {
        let response = app.login(&login, &user.password).await;
        assert_eq!(response.status(), StatusCode::OK, "form login as {login}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let token = body(response).await;
        assert_eq!(token["token_type"], "bearer");
        assert_eq!(token["expires_in"], 1800);
        assert!(
            token["access_token"]
                .as_str()
                .is_some_and(|t| t.split('.').count() == 3)
        );
    }
    let response = app
        .post_json(
            "/auth/token",
            &json!({"username": user.username, "password": user.password}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "JSON login");
    let response = app
        .post("/auth/token")
        .form(&[
            ("grant_type", "password"),
            ("username", &user.username),
            ("password", &user.password),
            ("scope", ""),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK, "full OAuth2 form");
}

async fn login_failures_look_the_same_for_unknown_users_and_wrong_passwords(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let wrong = problem(
        app.login(&user.email, "not the password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown = problem(
        app.login("nobody@example.com", "not the password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["detail"], "Incorrect username or password");
}

async fn bad_login_requests_get_4xx(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let response = app
        .post("/auth/token")
        .body("username=a&password=b")
        .send()
        .await
        .expect("request");
    problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    let response = app
        .post("/auth/token")
        .form(&[("username", "ann")])
        .send()
        .await
        .expect("request");
    problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let response = app
        .post("/auth/token")
        .form(&[
            ("username", "ann"),
            ("password", "pw"),
            ("grant_type", "client_credentials"),
        ])
        .send()
        .await
        .expect("request");
    problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let response = app
        .post_json(
            "/auth/token",
            &json!({"username": "ann", "password": "pw", "admin": true}),
        )
        .await;
    problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
}

fn sign(claims: &serde_json::Value, algorithm: Algorithm, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(key),
    )
    .expect("sign")
}

async fn only_valid_unexpired_hs256_access_tokens_are_accepted(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, id, token) = app.user_with_token().await;
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| json!({"sub": id.to_string(), "iat": now - 100, "exp": exp, "typ": "access", "ver": 1});
    let good = sign(&claims(now + 600), Algorithm::HS256, SECRET_KEY.as_bytes());
    let response = app.get_as("/users/me", &good).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "a token signed with the key is valid"
    );

    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let alg_none = format!(
        "{}.{}.",
        b64.encode(json!({"alg": "none", "typ": "JWT"}).to_string()),
        b64.encode(claims(now + 600).to_string())
    );
    let forged = [
        (
            "expired",
            sign(&claims(now - 1), Algorithm::HS256, SECRET_KEY.as_bytes()),
        ),
        (
            "HS512",
            sign(&claims(now + 600), Algorithm::HS512, SECRET_KEY.as_bytes()),
        ),
        (
            "other key",
            sign(
                &claims(now + 600),
                Algorithm::HS256,
                b"another key that is long enough......",
            ),
        ),
        ("alg none", alg_none),
        (
            "refresh type",
            sign(
                &json!({"sub": id.to_string(), "iat": now, "exp": now + 600, "typ": "refresh", "ver": 1}),
                Algorithm::HS256,
                SECRET_KEY.as_bytes(),
            ),
        ),
        ("truncated", token[..token.len() - 2].to_owned()),
    ];
    for (case, forged) in forged {
        let response = app.get_as("/users/me", &forged).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        problem(response, StatusCode::UNAUTHORIZED).await;
    }
}

shelter_test_support::on_both_backends!(
    login_works_by_email_or_username_as_form_or_json,
    login_failures_look_the_same_for_unknown_users_and_wrong_passwords,
    bad_login_requests_get_4xx,
    only_valid_unexpired_hs256_access_tokens_are_accepted,
);
