//! The OpenAPI document and the offline UI.

use reqwest::StatusCode;
use shelter_test_support::Backend;

use crate::helpers::{TestApp, body};

async fn the_openapi_document_describes_every_endpoint(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let doc = body(app.get("/openapi.json").send().await.expect("request")).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let expected = [
        ("/users", &["post", "get"][..]),
        ("/users/me", &["get", "patch", "delete"]),
        ("/users/{id}", &["get", "patch", "delete"]),
        ("/auth/token", &["post"]),
        ("/auth/refresh", &["post"]),
        ("/auth/logout", &["post"]),
        ("/auth/verify-email", &["post"]),
        ("/auth/password-recovery", &["post"]),
        ("/auth/reset-password", &["post"]),
        ("/ws/{client_id}", &["get"]),
        ("/health/live", &["get"]),
        ("/health/ready", &["get"]),
        ("/metrics", &["get"]),
    ];
    for (path, methods) in expected {
        for method in methods {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is documented"
            );
        }
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["ProblemBody"].is_object());
    let token = &doc["paths"]["/auth/token"]["post"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert!(token.is_object(), "the token answer is described");
    assert!(
        doc["components"]["schemas"]["TokenResponse"]["properties"]["refresh_token"].is_object(),
        "the refresh token is part of the documented answer"
    );
    for (path, status) in [
        ("/auth/token", "429"),
        ("/users", "429"),
        ("/auth/password-recovery", "429"),
    ] {
        assert!(
            doc["paths"][path]["post"]["responses"][status].is_object(),
            "{path} documents {status}"
        );
    }
}

async fn the_document_describes_answers_as_they_are_sent(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let doc = body(app.get("/openapi.json").send().await.expect("request")).await;
    let paths = doc["paths"].as_object().expect("paths");
    // The OpenID Connect provider's machine endpoints answer RFC 6749 JSON errors.
    let protocol = [
        "/oauth/token",
        "/oauth/userinfo",
        "/oauth/revoke",
        "/oauth/introspect",
        "/oauth/register",
    ];
    for (path, item) in paths {
        let is_protocol = protocol.contains(&path.as_str());
        for (method, operation) in item.as_object().expect("path item") {
            let responses = operation["responses"].as_object().expect("responses");
            for (status, response) in responses {
                if status.as_str() >= "400"
                    && let Some(content) = response["content"].as_object()
                {
                    let oauth_error = is_protocol && ["400", "401"].contains(&status.as_str());
                    let expected: &[&str] = if oauth_error {
                        &["application/json"]
                    } else if is_protocol && status == "503" {
                        &["application/json", "application/problem+json"]
                    } else {
                        &["application/problem+json"]
                    };
                    assert!(
                        content.keys().all(|k| expected.contains(&k.as_str())),
                        "{method} {path} {status}: {content:?}"
                    );
                }
            }
            if operation.get("requestBody").is_some() {
                let statuses: &[&str] = if is_protocol {
                    &["400", "413"]
                } else {
                    &["400", "413", "415", "422"]
                };
                for status in statuses {
                    assert!(
                        responses.contains_key(*status),
                        "{method} {path} documents {status}"
                    );
                }
            }
            if !["/health/live", "/metrics"].contains(&path.as_str()) {
                assert!(
                    responses["503"]["headers"]["Retry-After"].is_object(),
                    "{method} {path} documents 503 with Retry-After"
                );
            }
        }
    }
    let signup = &doc["components"]["schemas"]["SignupRequest"]["properties"];
    assert!(
        signup["password"]["pattern"]
            .as_str()
            .is_some_and(|p| p.contains("u0000")),
        "request text refuses control characters: {signup}"
    );
    assert_eq!(
        doc["components"]["schemas"]["RefreshRequest"]["properties"]["refresh_token"]["minLength"],
        1
    );
}

/// `docs/API.md`, the contract in the repository, and the published document name the same
/// operations.
async fn the_written_contract_and_the_document_agree(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let contract = include_str!("../../../../docs/API.md");
    let doc = body(app.get("/openapi.json").send().await.expect("request")).await;
    let mut published = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            let operation = format!("{} {path}", method.to_uppercase());
            assert!(
                contract.contains(&format!("`{operation}`"))
                    || contract.contains(&format!("`{operation}?"))
                    || contract.contains(&format!("{operation}`")),
                "docs/API.md does not describe {operation}"
            );
            published.push(operation);
        }
    }
    // The hosted pages are HTML for people, not operations of the JSON API.
    let mut section = "";
    let api_rows = contract.lines().filter(|line| {
        if let Some(title) = line.strip_prefix("## ") {
            section = title;
        }
        section != "Hosted pages" && line.starts_with("| `")
    });
    for line in api_rows {
        let Some(operation) = line.split('`').nth(1) else {
            continue;
        };
        let Some((method, path)) = operation.split_once(' ') else {
            continue;
        };
        if !["GET", "POST", "PATCH", "DELETE", "PUT"].contains(&method) {
            continue;
        }
        let path = path.split('?').next().unwrap_or(path);
        if ["/openapi.json"].contains(&path) {
            continue;
        }
        let operation = format!("{method} {path}");
        assert!(
            published.contains(&operation),
            "docs/API.md names {operation}, which /openapi.json does not"
        );
    }
}

async fn the_docs_ui_is_served_without_internet(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for path in ["/docs", "/docs/"] {
        let response = app.get(path).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let html = response.text().await.expect("html");
        assert!(html.contains("swagger-ui"), "{path}");
        assert!(
            !html.contains("https://"),
            "{path}: no asset from the internet"
        );
    }
    for asset in [
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
    ] {
        let response = app.get(asset).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
    }
    let initializer = app
        .get("/docs/swagger-initializer.js")
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("js");
    assert!(initializer.contains("/openapi.json"));
}

shelter_test_support::on_both_backends!(
    the_openapi_document_describes_every_endpoint,
    the_document_describes_answers_as_they_are_sent,
    the_written_contract_and_the_document_agree,
    the_docs_ui_is_served_without_internet,
);
