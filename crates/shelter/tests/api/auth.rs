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

/// The claims of a JWT, unverified.
pub fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
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
    let issued = claims_of(&token);
    assert_eq!(issued["iss"], "http://127.0.0.1:8000", "{issued}");
    assert_eq!(issued["aud"], "shelter", "{issued}");
    assert_eq!(issued["sub"], id.to_string(), "{issued}");
    assert!(
        issued["jti"].as_str().is_some_and(|j| j.len() == 36),
        "{issued}"
    );
    let sid = issued["sid"].as_str().expect("sid").to_owned();
    let now = chrono::Utc::now().timestamp();
    let with = |key: &str, value: serde_json::Value| {
        let mut claims = json!({"sub": id.to_string(), "iat": now - 100, "exp": now + 600,
            "iss": "http://127.0.0.1:8000", "aud": "shelter", "jti": "j", "sid": sid,
            "typ": "access", "ver": 1});
        if value.is_null() {
            claims.as_object_mut().expect("object").remove(key);
        } else {
            claims[key] = value;
        }
        claims
    };
    let claims = |exp: i64| with("exp", exp.into());
    let hs256 = |claims: &serde_json::Value| sign(claims, Algorithm::HS256, SECRET_KEY.as_bytes());
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
        ("refresh type", hs256(&with("typ", "refresh".into()))),
        (
            "other issuer",
            hs256(&with("iss", "https://evil.example.com".into())),
        ),
        ("other audience", hs256(&with("aud", "billing".into()))),
        ("no audience", hs256(&with("aud", serde_json::Value::Null))),
        (
            "a session that does not exist",
            hs256(&with("sid", uuid::Uuid::new_v4().to_string().into())),
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
