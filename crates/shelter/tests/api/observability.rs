//! What an operator reads: the JSON log and `/metrics` of a real `shelter` process after a
//! real request sequence.

use std::process::Stdio;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use shelter_test_support::{Backend, TestDatabase};
use tokio_tungstenite::connect_async;

use crate::cli::{Running, free_port, shelter, wait_until_serving};
use crate::helpers::{SECRET_KEY, TestUser};

/// Secrets the requests carry; none may reach the log.
const RESET_TOKEN: &str = "reset-token-never-logged-5831";
const VERIFY_TOKEN: &str = "verify-token-never-logged-9274";
const QUERY_SECRET: &str = "query-secret-never-logged-1163";

struct Sent {
    request_id: String,
    method: &'static str,
    route: &'static str,
}

#[expect(
    clippy::too_many_lines,
    reason = "one request sequence, read top to bottom"
)]
async fn a_request_sequence_logs_json_lines_and_counts_by_route(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let port = free_port();
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("shelter.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let server = Running::start(
        shelter(&database.url)
            .env("SHELTER_PORT", port.to_string())
            .env("SHELTER_SECRET_KEY", SECRET_KEY)
            .env("SHELTER_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("SHELTER_RATE_LIMIT_LOGIN_PER_MINUTE", "2")
            .stderr(Stdio::from(log)),
    );
    wait_until_serving(port).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new();
    let mut requests = Vec::new();
    let mut send =
        async |method: &'static str, route: &'static str, request: reqwest::RequestBuilder| {
            let request_id = uuid::Uuid::new_v4().to_string();
            let response = request
                .header("x-request-id", &request_id)
                .send()
                .await
                .expect("request");
            requests.push(Sent {
                request_id,
                method,
                route,
            });
            response
        };

    let user = TestUser::generate();
    let created = send(
        "POST",
        "/users",
        client
            .post(format!("{base}/users"))
            .json(&user.signup_body()),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    let login = |password: &str| {
        client
            .post(format!("{base}/auth/token"))
            .form(&[("username", user.username.as_str()), ("password", password)])
    };
    let wrong = send("POST", "/auth/token", login("not the password at all")).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let tokens: Value = send("POST", "/auth/token", login(&user.password))
        .await
        .json()
        .await
        .expect("tokens");
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let limited = send("POST", "/auth/token", login(&user.password)).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    for _ in 0..2 {
        let me = send(
            "GET",
            "/users/me",
            client.get(format!("{base}/users/me")).bearer_auth(&access),
        )
        .await;
        assert_eq!(me.status(), StatusCode::OK);
    }
    let own = send(
        "GET",
        "/users/{id}",
        client
            .get(format!("{base}/users/{id}?note={QUERY_SECRET}"))
            .bearer_auth(&access),
    )
    .await;
    assert_eq!(own.status(), StatusCode::OK);
    send(
        "POST",
        "/auth/password-recovery",
        client
            .post(format!("{base}/auth/password-recovery"))
            .json(&json!({"email": user.email})),
    )
    .await;
    let reset = send(
        "POST",
        "/auth/reset-password",
        client
            .post(format!("{base}/auth/reset-password"))
            .json(&json!({"token": RESET_TOKEN, "new_password": "another password"})),
    )
    .await;
    assert!(reset.status().is_client_error(), "{}", reset.status());
    let verify = send(
        "POST",
        "/auth/verify-email",
        client
            .post(format!("{base}/auth/verify-email?token={VERIFY_TOKEN}"))
            .json(&json!({"token": VERIFY_TOKEN})),
    )
    .await;
    assert!(verify.status().is_client_error(), "{}", verify.status());
    let refreshed = send(
        "POST",
        "/auth/refresh",
        client
            .post(format!("{base}/auth/refresh"))
            .json(&json!({"refresh_token": refresh})),
    )
    .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let (socket, _) = connect_async(format!("ws://127.0.0.1:{port}/ws/{id}?token={access}"))
        .await
        .expect("WebSocket connects");

    check_metrics(&client, &base, id).await;
    drop(socket);
    server.kill();

    let log = std::fs::read_to_string(&log_path).expect("read the log");
    check_log(
        &log,
        &requests,
        &[
            user.password.as_str(),
            "not the password at all",
            "another password",
            access.as_str(),
            refresh.as_str(),
            RESET_TOKEN,
            VERIFY_TOKEN,
            QUERY_SECRET,
        ],
    );
}

/// `GET /metrics` of the server at `base`.
async fn scrape(client: &Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// Every metric of the contract, with route templates for labels, never a raw path.
async fn check_metrics(client: &Client, base: &str, id: i64) {
    // The gauges are sampled every second and the welcome email goes out in the
    // background: wait until every metric has shown up once.
    let expected = [
        r#"shelter_http_requests_total{method="GET",route="/users/{id}",status="200"}"#,
        r#"shelter_http_requests_total{method="POST",route="/auth/token",status="429"}"#,
        r#"shelter_http_request_duration_seconds_bucket{method="GET",route="/users/me","#,
        "shelter_ws_connections 1",
        "shelter_outbox_pending ",
        r#"shelter_emails_sent_total{kind="welcome"}"#,
        r#"shelter_rate_limited_total{limit="login"} 1"#,
        r#"shelter_logins_total{result="success"} 1"#,
        r#"shelter_logins_total{result="invalid_credentials"} 1"#,
        r#"shelter_logins_total{result="rate_limited"} 1"#,
        "shelter_db_pool_in_use ",
        "shelter_password_hashes_in_flight ",
        "shelter_user_cache_hits_total ",
        "shelter_user_cache_misses_total ",
    ];
    let mut metrics = String::new();
    for _ in 0..50 {
        metrics = scrape(client, base).await;
        if expected.iter().all(|line| metrics.contains(line)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for line in expected {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(
        !metrics.contains(&format!("/users/{id}\"")),
        "a raw path is never a label:\n{metrics}"
    );
}

/// Every line is one JSON object; every line of a request names it, its method and route;
/// no secret appears anywhere.
fn check_log(log: &str, requests: &[Sent], secrets: &[&str]) {
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for request in requests {
        let mine: Vec<&Value> = lines
            .iter()
            .filter(|line| line["request_id"] == request.request_id.as_str())
            .collect();
        assert!(
            mine.iter().any(|line| line["message"] == "request handled"),
            "{} {}: no line in\n{log}",
            request.method,
            request.route
        );
        for line in mine {
            assert_eq!(line["method"], request.method, "{line}");
            assert_eq!(line["route"], request.route, "{line}");
        }
    }
    for secret in secrets {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
}

shelter_test_support::on_both_backends!(a_request_sequence_logs_json_lines_and_counts_by_route);

/// An alert on an absent series never fires: a fresh server shows every metric of the
/// contract at zero on its first scrape, each known label value included.
#[tokio::test]
async fn a_fresh_server_shows_every_metric_at_zero() {
    let database = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("SQLite is always there");
    let port = free_port();
    let _server = Running::start(
        shelter(&database.url)
            .env("SHELTER_PORT", port.to_string())
            .env("SHELTER_SECRET_KEY", SECRET_KEY)
            .stderr(Stdio::null()),
    );
    wait_until_serving(port).await;
    let metrics = scrape(&Client::new(), &format!("http://127.0.0.1:{port}")).await;
    let mut expected = vec![
        "shelter_ws_connections 0".to_owned(),
        "shelter_outbox_pending ".to_owned(),
        "shelter_db_pool_in_use ".to_owned(),
        "shelter_password_hashes_in_flight 0".to_owned(),
        "shelter_user_cache_hits_total 0".to_owned(),
        "shelter_user_cache_misses_total 0".to_owned(),
        "shelter_http_requests_total{".to_owned(),
        "shelter_http_request_duration_seconds_bucket{".to_owned(),
    ];
    for kind in ["welcome", "verify_email", "password_reset", "sign_in_code"] {
        for name in [
            "shelter_emails_sent_total",
            "shelter_email_retries_total",
            "shelter_emails_failed_total",
        ] {
            expected.push(format!("{name}{{kind=\"{kind}\"}} 0"));
        }
    }
    for limit in [
        "login",
        "signup",
        "recovery",
        "verification_resend",
        "email_code",
        "client_registration",
    ] {
        expected.push(format!("shelter_rate_limited_total{{limit=\"{limit}\"}} 0"));
    }
    for result in [
        "success",
        "invalid_credentials",
        "inactive",
        "unverified",
        "mfa_required",
        "mfa_failed",
        "rate_limited",
        "unavailable",
        "error",
    ] {
        expected.push(format!("shelter_logins_total{{result=\"{result}\"}} 0"));
    }
    let missing: Vec<_> = expected
        .iter()
        .filter(|line| !metrics.contains(line.as_str()))
        .collect();
    assert!(missing.is_empty(), "missing {missing:?} in\n{metrics}");
}
