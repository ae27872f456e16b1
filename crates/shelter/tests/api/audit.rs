//! The audit log: the events a real sequence of requests leaves, with where they came from,
//! the listing's filters and keyset paging, and a refused change that leaves no event.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shelter_test_support::Backend;

use shelter_test_support::smtp::SmtpServer;

use crate::helpers::{TestApp, TestUser, body, problem};

async fn events(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get_as(&format!("/audit-events{query}"), token).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    body(response).await
}

fn types(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|event| event["type"].as_str().expect("type").to_owned())
        .collect()
}

async fn a_sequence_of_requests_leaves_its_events_with_where_they_came_from(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = TestUser::generate();
    let signup = app
        .post("/users")
        .header("user-agent", "Audit/1.0")
        .json(&user.signup_body())
        .send()
        .await
        .expect("signup");
    let request_id = signup.headers()["x-request-id"]
        .to_str()
        .expect("text")
        .to_owned();
    let id = body(signup).await["id"].as_i64().expect("id");
    app.login(&user.email, "not the password").await;
    app.login("nobody-at-all@example.com", "typed-into-the-wrong-field")
        .await;
    let tokens = app.tokens(&user).await;
    let token = tokens["access_token"].as_str().expect("token").to_owned();
    let renamed = format!("{}r", user.username);
    let response = app
        .patch_as("/users/me", &token, &json!({"username": renamed}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let admin = app.admin_token().await;
    let about = events(&app, &admin, &format!("?user_id={id}")).await;
    assert_eq!(
        types(&about),
        ["user_updated", "login_succeeded", "login_failed", "signup"],
        "newest first: {about}"
    );
    let items = about["items"].as_array().expect("items");
    assert_eq!(items[0]["details"]["fields"], "username");
    assert_eq!(items[0]["actor_id"], id);
    assert_eq!(items[2]["details"]["reason"], "bad_password");
    let signed_up = &items[3];
    assert_eq!(signed_up["request_id"], request_id.as_str(), "{signed_up}");
    assert_eq!(signed_up["ip"], "127.0.0.1");
    assert_eq!(signed_up["user_agent"], "Audit/1.0");
    assert_eq!(signed_up["user_id"], id);

    let failed = events(&app, &admin, "?type=login_failed").await;
    let unknown: Vec<&Value> = failed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["details"]["reason"] == "unknown_user")
        .collect();
    assert_eq!(unknown.len(), 1, "{failed}");
    assert!(unknown[0]["user_id"].is_null() && unknown[0]["actor_id"].is_null());

    let everything = events(&app, &admin, "?limit=100").await.to_string();
    for secret in [
        user.password.as_str(),
        "not the password",
        "typed-into-the-wrong-field",
        "nobody-at-all",
        &token,
        tokens["refresh_token"].as_str().expect("refresh"),
    ] {
        assert!(!everything.contains(secret), "{secret} in the audit log");
    }

    let own = app.get_as("/users/me/audit-events?user_id=1", &token).await;
    let own = body(own).await;
    assert!(
        own["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|e| e["user_id"] == id),
        "{own}"
    );
    assert_eq!(types(&own).len(), 4);
    problem(
        app.get_as("/audit-events", &token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.get("/audit-events").send().await.expect("request"),
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

async fn the_listing_pages_by_id_and_refuses_bad_parameters(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for _ in 0..3 {
        app.user_with_token().await;
    }
    let admin = app.admin_token().await;
    let mut seen: Vec<i64> = Vec::new();
    let mut query = "?limit=2".to_owned();
    loop {
        let page = events(&app, &admin, &query).await;
        let ids: Vec<i64> = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| e["id"].as_i64().expect("id"))
            .collect();
        assert!(ids.len() <= 2);
        seen.extend(&ids);
        match page["next_before"].as_i64() {
            Some(before) => {
                assert_eq!(Some(&before), ids.last());
                query = format!("?limit=2&before={before}");
            }
            None => break,
        }
    }
    assert!(seen.len() >= 6, "three signups and three logins: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats: {seen:?}"
    );
    for bad in [
        "?limit=0",
        "?limit=101",
        "?limit=x",
        "?type=nope",
        "?before=0",
        "?user_id=-1",
    ] {
        let response = app.get_as(&format!("/audit-events{bad}"), &admin).await;
        problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

async fn a_refused_change_leaves_no_event(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, id, token) = app.user_with_token().await;
    let (other, _, _) = app.user_with_token().await;
    let refused = app
        .patch_as("/users/me", &token, &json!({"username": other.username}))
        .await;
    problem(refused, StatusCode::CONFLICT).await;
    let admin = app.admin_token().await;
    let updated = events(&app, &admin, &format!("?user_id={id}&type=user_updated")).await;
    assert_eq!(types(&updated), Vec::<String>::new(), "{updated}");
    let response = app
        .patch_as(
            "/users/me",
            &token,
            &json!({"username": format!("{}x", other.username)}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let updated = events(&app, &admin, &format!("?user_id={id}&type=user_updated")).await;
    assert_eq!(types(&updated), ["user_updated"]);
}

const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Signs `user` up and verifies the email with the welcome email's token.
async fn signed_up_and_verified(app: &TestApp, smtp: &SmtpServer, user: &TestUser) -> i64 {
    let id = app.create(user).await;
    let welcome = smtp
        .email_to(&user.email, WAIT)
        .await
        .expect("welcome email");
    let verified = app
        .post_json(
            "/auth/verify-email",
            &json!({"token": welcome.token().expect("token")}),
        )
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    id
}

/// A reused refresh token, an ended session and a logout.
async fn sessions_end_in_three_ways(app: &TestApp, user: &TestUser) {
    let first = app.tokens(user).await;
    let spent = first["refresh_token"].as_str().expect("refresh");
    assert_eq!(app.refresh(spent).await.status(), StatusCode::OK);
    problem(app.refresh(spent).await, StatusCode::UNAUTHORIZED).await;
    let phone = app.tokens(user).await;
    let laptop = app.tokens(user).await;
    let access = laptop["access_token"].as_str().expect("access");
    let sid = crate::auth::claims_of(phone["access_token"].as_str().expect("access"))["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let ended = app
        .delete_as(&format!("/users/me/sessions/{sid}"), access)
        .await;
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let logout = app
        .post_json(
            "/auth/logout",
            &json!({"refresh_token": laptop["refresh_token"]}),
        )
        .await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
}

/// TOTP on, a failed second step, TOTP off.
async fn mfa_on_and_off(app: &TestApp, user: &TestUser) {
    let token = app.token_for(user).await;
    let enrolment = body(
        app.post("/users/me/mfa/totp")
            .bearer_auth(&token)
            .json(&json!({"current_password": user.password}))
            .send()
            .await
            .expect("enrol"),
    )
    .await;
    let secret = enrolment["secret"].as_str().expect("secret");
    let code = shelter_crypto::code_at(secret, chrono::Utc::now()).expect("code");
    let confirmed = app
        .post("/users/me/mfa/totp/confirm")
        .bearer_auth(&token)
        .json(&json!({"code": code}))
        .send()
        .await
        .expect("confirm");
    let codes = body(confirmed).await["recovery_codes"].clone();
    let challenge = problem(
        app.login(&user.email, &user.password).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let wrong = app
        .post_json(
            "/auth/mfa",
            &json!({"mfa_token": challenge["mfa_token"], "code": "wrong-code"}),
        )
        .await;
    problem(wrong, StatusCode::UNAUTHORIZED).await;
    let off = app
        .delete("/users/me/mfa/totp")
        .bearer_auth(&token)
        .json(&json!({"current_password": user.password, "code": codes[0]}))
        .send()
        .await
        .expect("disable");
    assert_eq!(off.status(), StatusCode::NO_CONTENT);
}

async fn every_event_type_is_recorded(backend: Backend) {
    let Some((app, smtp)) = TestApp::spawn_with_smtp(backend, |s| {
        s.refresh_reuse_grace = std::time::Duration::ZERO;
    })
    .await
    else {
        return;
    };
    let mut user = TestUser::generate();
    let id = signed_up_and_verified(&app, &smtp, &user).await;
    sessions_end_in_three_ways(&app, &user).await;
    mfa_on_and_off(&app, &user).await;
    let token = app.token_for(&user).await;
    let new_email = format!("new-{}", user.email);
    let changed = app
        .patch_as(
            "/users/me",
            &token,
            &json!({"email": new_email, "current_password": user.password}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    user.email = new_email;
    let changed = app
        .patch_as(
            "/users/me",
            &token,
            &json!({"password": "a brand new password", "current_password": user.password}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    "a brand new password".clone_into(&mut user.password);
    app.deactivate(id).await;
    problem(
        app.login(&user.email, &user.password).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let admin = app.admin_token().await;
    let active = app
        .patch_as(&format!("/users/{id}"), &admin, &json!({"is_active": true}))
        .await;
    assert_eq!(active.status(), StatusCode::OK);
    app.post_json("/auth/password-recovery", &json!({"email": user.email}))
        .await;
    let reset = loop {
        let received = smtp.wait_for(3, WAIT).await;
        if let Some(email) = received
            .iter()
            .find(|e| e.subject().is_some_and(|s| s.contains("Reset")))
        {
            break email.clone();
        }
        assert!(received.len() < 5, "a reset email");
    };
    let done = app
        .post_json(
            "/auth/reset-password",
            &json!({"token": reset.token(), "new_password": "chosen after reset"}),
        )
        .await;
    assert_eq!(done.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.delete_as(&format!("/users/{id}"), &admin)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );

    let recorded = types(&events(&app, &admin, &format!("?user_id={id}&limit=100")).await);
    for expected in [
        "signup",
        "email_verified",
        "login_succeeded",
        "refresh_reuse_detected",
        "session_revoked",
        "logout",
        "mfa_enabled",
        "mfa_disabled",
        "email_changed",
        "password_changed",
        "user_updated",
        "password_reset_requested",
        "password_reset",
        "user_deleted",
        "login_failed",
    ] {
        assert!(
            recorded.iter().any(|t| t == expected),
            "{expected} in {recorded:?}"
        );
    }
    let failed = events(&app, &admin, &format!("?user_id={id}&type=login_failed")).await;
    let reasons: Vec<&str> = failed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["details"]["reason"].as_str().expect("reason"))
        .collect();
    assert_eq!(reasons, ["inactive", "mfa_failed"], "{failed}");
}

shelter_test_support::on_both_backends!(
    every_event_type_is_recorded,
    a_sequence_of_requests_leaves_its_events_with_where_they_came_from,
    the_listing_pages_by_id_and_refuses_bad_parameters,
    a_refused_change_leaves_no_event,
);
