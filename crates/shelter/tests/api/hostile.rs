//! Bad input always gets a clear 4xx problem, never a 500.

use reqwest::StatusCode;
use serde_json::json;
use shelter_test_support::Backend;

use crate::helpers::{TestApp, fields, problem};

async fn malformed_oversized_and_mistyped_bodies_get_the_right_4xx(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let json_post = |body: Vec<u8>| {
        app.post("/users")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (case, raw, status) in [
        ("syntax", b"{\"email\": ".to_vec(), StatusCode::BAD_REQUEST),
        ("empty", Vec::new(), StatusCode::BAD_REQUEST),
        ("not utf-8", vec![0xff, 0xfe, 0x7b], StatusCode::BAD_REQUEST),
        ("array", b"[]".to_vec(), StatusCode::UNPROCESSABLE_ENTITY),
        ("null", b"null".to_vec(), StatusCode::UNPROCESSABLE_ENTITY),
        (
            "number email",
            br#"{"email": 5, "username": "abc", "password": "password1"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "nul byte",
            br#"{"email": "a\u0000@example.com", "username": "abc", "password": "password1"}"#
                .to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "deep nesting",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "deep object",
            format!(
                "{{\"email\": {}{}}}",
                "[".repeat(10_000),
                "]".repeat(10_000)
            )
            .into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "over 64 KiB",
            serde_json::to_vec(&json!({"email": "a".repeat(70_000)})).expect("json"),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let response = json_post(raw).await.expect("request");
        assert_eq!(response.status(), status, "{case}");
        problem(response, status).await;
    }
    let response = app.post_json("/users", &json!({"email": "a@example.com", "username": "abc", "password": "password1", "is_superuser": true})).await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        fields(&body),
        ["is_superuser"],
        "unknown fields are refused: {body}"
    );

    for content_type in [
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
    ] {
        let response = app
            .post("/users")
            .header("content-type", content_type)
            .body("{}")
            .send()
            .await
            .expect("request");
        problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    }
    let response = app.post("/users").body("{}").send().await.expect("request");
    problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

async fn authentication_is_checked_before_the_body(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let response = app
        .patch("/users/me")
        .header("content-type", "text/plain")
        .body("x".repeat(100_000))
        .send()
        .await
        .expect("request");
    problem(response, StatusCode::UNAUTHORIZED).await;
}

async fn hostile_strings_are_stored_safely_or_refused(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for username in [
        "robert'); DROP TABLE users;--",
        "<script>",
        "ünïcode",
        "a\u{0}b",
        "..",
        " ab ",
    ] {
        let response = app
            .post_json(
                "/users",
                &json!({"email": "x@example.com", "username": username, "password": "password1"}),
            )
            .await;
        assert!(
            response.status() == StatusCode::UNPROCESSABLE_ENTITY
                || response.status() == StatusCode::CREATED,
            "{username:?}: {}",
            response.status()
        );
        if response.status() == StatusCode::CREATED {
            let admin = app.admin_token().await;
            let id = crate::helpers::body(response).await["id"]
                .as_i64()
                .expect("id");
            let deleted = app.delete_as(&format!("/users/{id}"), &admin).await;
            assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        }
    }
    let response = app
        .post("/auth/token")
        .form(&[("username", "' OR 1=1 --"), ("password", "x")])
        .send()
        .await
        .expect("request");
    problem(response, StatusCode::UNAUTHORIZED).await;
    let long_password = "p".repeat(60_000);
    let response = app
        .post("/auth/token")
        .form(&[
            ("username", "someone"),
            ("password", long_password.as_str()),
        ])
        .send()
        .await
        .expect("request");
    problem(response, StatusCode::UNAUTHORIZED).await;
}

/// Lengths are counted in characters, as the published schema's `maxLength` counts them,
/// not in bytes: 60 two-byte letters are a 60-character code, under its limit of 64.
async fn length_limits_count_characters_not_bytes(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let code = "é".repeat(60);
    let response = app
        .post_json(
            "/auth/mfa",
            &json!({"mfa_token": "é".repeat(500), "code": code}),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "a wrong token, not a long one"
    );
    let response = app
        .post_json(
            "/auth/mfa",
            &json!({"mfa_token": "t", "code": "é".repeat(65)}),
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "65 characters is too long"
    );
}

shelter_test_support::on_both_backends!(
    length_limits_count_characters_not_bytes,
    malformed_oversized_and_mistyped_bodies_get_the_right_4xx,
    authentication_is_checked_before_the_body,
    hostile_strings_are_stored_safely_or_refused,
);
