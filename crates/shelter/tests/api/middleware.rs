//! Request ids, timing, trailing slashes, CORS and health probes.

use reqwest::StatusCode;
use shelter_test_support::Backend;

use crate::helpers::{TestApp, body, problem};

async fn every_answer_has_a_request_id_and_a_process_time(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for path in ["/health/live", "/users", "/nowhere"] {
        let response = app.get(path).send().await.expect("request");
        let id = response.headers()["x-request-id"].to_str().expect("id");
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{path}: {id}");
        let time: f64 = response.headers()["x-process-time"]
            .to_str()
            .expect("time")
            .parse()
            .expect("a decimal number");
        assert!((0.0..10.0).contains(&time), "{path}: {time}");
    }
    let response = app
        .get("/health/live")
        .header("x-request-id", "client-id-42")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["x-request-id"], "client-id-42");
    let response = app
        .get("/health/live")
        .header("x-request-id", "bad id <script>")
        .send()
        .await
        .expect("request");
    assert_ne!(response.headers()["x-request-id"], "bad id <script>");
}

async fn paths_work_with_and_without_a_trailing_slash(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    for path in [
        "/users",
        "/users/",
        "/users/me",
        "/users/me/",
        "/users?limit=1",
        "/users/?limit=1",
    ] {
        let response = app.get_as(path, &admin).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let response = app.get("/health/live/").send().await.expect("request");
    assert_eq!(body(response).await["status"], "ok");
}

async fn unknown_routes_and_methods_are_problems(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    problem(
        app.get("/nowhere").send().await.expect("request"),
        StatusCode::NOT_FOUND,
    )
    .await;
    let response = app
        .client
        .put(app.url("/users/me"))
        .send()
        .await
        .expect("request");
    assert!(response.headers().contains_key("allow"));
    problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
}

async fn health_probes_answer(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let live = app.get("/health/live").send().await.expect("request");
    assert_eq!(body(live).await, serde_json::json!({"status": "ok"}));
    let ready = app.get("/health/ready").send().await.expect("request");
    assert_eq!(ready.status(), StatusCode::OK);
}

async fn cors_answers_only_the_allow_list(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.allowed_origins = vec!["https://app.example".into()];
    })
    .await
    else {
        return;
    };
    let allowed = app
        .get("/health/live")
        .header("origin", "https://app.example")
        .send()
        .await
        .expect("request");
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let other = app
        .get("/health/live")
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("request");
    assert_eq!(
        other.status(),
        StatusCode::OK,
        "served, but without CORS headers"
    );
    assert!(!other.headers().contains_key("access-control-allow-origin"));

    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/users/me"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "PATCH")
        .header(
            "access-control-request-headers",
            "authorization, content-type, if-match",
        )
        .send()
        .await
        .expect("request");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example"
    );
}

async fn without_an_allow_list_there_are_no_cors_headers(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let response = app
        .get("/health/live")
        .header("origin", "https://app.example")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

shelter_test_support::on_both_backends!(
    every_answer_has_a_request_id_and_a_process_time,
    paths_work_with_and_without_a_trailing_slash,
    unknown_routes_and_methods_are_problems,
    health_probes_answer,
    cors_answers_only_the_allow_list,
    without_an_allow_list_there_are_no_cors_headers,
);
