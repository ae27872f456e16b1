//! `/users`: signup, reading, listing, changing and deleting accounts.

use reqwest::StatusCode;
use serde_json::json;
use shelter_test_support::Backend;

use crate::helpers::{TestApp, TestUser, body, fields, invalid_fields, problem};

async fn signup_returns_201_without_the_password(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut user = TestUser::generate();
    user.email = format!("  {}  ", user.email.to_uppercase());
    let response = app.signup(&user).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(response.headers().contains_key("etag"));
    let text = response.text().await.expect("body");
    assert!(
        !text.contains("password") && !text.contains("argon2"),
        "{text}"
    );
    let created: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(location, format!("/users/{}", created["id"]));
    assert_eq!(created["email"], user.email.trim().to_lowercase());
    assert_eq!(created["username"], user.username);
    assert_eq!(created["is_active"], true);
    assert_eq!(created["is_superuser"], false);
    assert_eq!(created["email_verified"], false);
    let created_at = created["created_at"].as_str().expect("created_at");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok() && created_at.ends_with('Z'),
        "{created_at}"
    );
}

async fn signup_with_a_taken_email_returns_409_already_exists(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let user = TestUser::generate();
    app.create(&user).await;
    let mut again = TestUser::generate();
    again.email = user.email.to_uppercase();
    let body = problem(app.signup(&again).await, StatusCode::CONFLICT).await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("already exists"),
        "{body}"
    );

    let mut same_name = TestUser::generate();
    same_name.username = user.username.to_uppercase();
    let body = problem(app.signup(&same_name).await, StatusCode::CONFLICT).await;
    assert!(
        body["detail"]
            .as_str()
            .expect("detail")
            .contains("username"),
        "{body}"
    );
}

async fn thirty_concurrent_signups_with_one_email_give_one_201(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let email = TestUser::generate().email;
    let requests = (0..30).map(|_| {
        let mut user = TestUser::generate();
        user.email.clone_from(&email);
        app.signup_owned(user)
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(requests).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 29), "{statuses:?}");
}

impl TestApp {
    async fn signup_owned(&self, user: TestUser) -> StatusCode {
        self.signup(&user).await.status()
    }
}

async fn signup_reports_every_invalid_field_at_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let response = app
        .post_json(
            "/users",
            &json!({"email": "not-an-email", "username": "a b", "password": "short"}),
        )
        .await;
    let (named, body) = invalid_fields(response).await;
    assert_eq!(named, ["email", "password", "username"], "{body}");

    let response = app.post_json("/users", &json!({})).await;
    let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&body).len(), 3, "every missing field: {body}");

    for (case, payload) in [
        (
            "129 chars",
            json!({"email": "a@example.com", "username": "abc", "password": "x".repeat(129)}),
        ),
        (
            "51 chars",
            json!({"email": "a@example.com", "username": "a".repeat(51), "password": "password1"}),
        ),
        (
            "no dot",
            json!({"email": "a@b", "username": "abc", "password": "password1"}),
        ),
    ] {
        let response = app
            .post("/users")
            .json(&payload)
            .send()
            .await
            .expect("request");
        problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        let _ = case;
    }
}

async fn listing_users_without_a_token_returns_401(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for token in [None, Some("garbage"), Some("")] {
        let mut request = app.get("/users");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        problem(response, StatusCode::UNAUTHORIZED).await;
    }
}

async fn listing_users_needs_a_superuser_and_pages_by_id(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, _, token) = app.user_with_token().await;
    let response = app.get_as("/users", &token).await;
    problem(response, StatusCode::FORBIDDEN).await;

    for _ in 0..3 {
        app.create(&TestUser::generate()).await;
    }
    let admin = app.admin_token().await;
    let page = body(app.get_as("/users?skip=1&limit=2", &admin).await).await;
    assert_eq!(page["total"], 5, "{page}");
    assert_eq!(
        (page["skip"].as_u64(), page["limit"].as_u64()),
        (Some(1), Some(2))
    );
    let ids: Vec<i64> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|u| u["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1], "ordered by id: {ids:?}");
    let all = body(app.get_as("/users", &admin).await).await;
    assert_eq!(all["limit"], 100);
    assert_eq!(all["items"].as_array().map(Vec::len), Some(5));
    // Past the last page there is no row to carry the total; it is still told.
    let past = body(app.get_as("/users?skip=5", &admin).await).await;
    assert_eq!((&past["items"], &past["total"]), (&json!([]), &json!(5)));

    for query in ["limit=0", "limit=101", "skip=-1", "limit=ten"] {
        let response = app.get_as(&format!("/users?{query}"), &admin).await;
        problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

async fn listing_users_filters_by_search_and_flags(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let tag = format!("Qz{}", std::process::id());
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut user = TestUser::generate();
        user.email = format!("{tag}.{i}@Example.com");
        ids.push(app.create(&user).await);
    }
    app.deactivate(ids[1]).await;
    let listed = |query: String| {
        let (app, admin) = (&app, &admin);
        async move {
            let page = body(app.get_as(&format!("/users?{query}"), admin).await).await;
            let ids: Vec<i64> = page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|u| u["id"].as_i64().expect("id"))
                .collect();
            (ids, page["total"].as_u64().expect("total"))
        }
    };
    let lower = tag.to_lowercase();
    assert_eq!(
        listed(format!("q={lower}")).await,
        (ids.clone(), 3),
        "ignoring case"
    );
    assert_eq!(
        listed(format!("q={lower}&is_active=false")).await,
        (vec![ids[1]], 1)
    );
    assert_eq!(
        listed(format!("q={lower}&is_active=true&limit=1&skip=1")).await,
        (vec![ids[2]], 2),
        "a page of the filtered set, and its total"
    );
    let (admins, total) = listed("is_superuser=true".into()).await;
    assert_eq!((admins.len(), total), (1, 1), "only the admin");
    assert_eq!(listed("q=%25".into()).await, (vec![], 0), "% is literal");
    for query in ["is_active=yes", "is_superuser=1", "q=a%00b", "q=a%0Ab"] {
        let response = app.get_as(&format!("/users?{query}"), &admin).await;
        problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

async fn me_has_an_etag_and_answers_304_when_unchanged(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (user, id, token) = app.user_with_token().await;
    let response = app.get_as("/users/me", &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_owned();
    let me = body(response).await;
    assert_eq!(
        (me["id"].as_i64(), me["email"].as_str()),
        (Some(id), Some(user.email.as_str()))
    );

    for path in ["/users/me".to_owned(), format!("/users/{id}")] {
        let response = app
            .get(&path)
            .bearer_auth(&token)
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{path}");
        let response = app
            .get(&path)
            .bearer_auth(&token)
            .header("if-none-match", "\"other\"")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

async fn users_read_themselves_and_superusers_read_anyone(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, ann_id, ann) = app.user_with_token().await;
    let (_, bob_id, _) = app.user_with_token().await;
    let own = app.get_as(&format!("/users/{ann_id}"), &ann).await;
    assert_eq!(own.status(), StatusCode::OK);
    let other = app.get_as(&format!("/users/{bob_id}"), &ann).await;
    problem(other, StatusCode::FORBIDDEN).await;

    let admin = app.admin_token().await;
    let bob = app.get_as(&format!("/users/{bob_id}"), &admin).await;
    assert_eq!(body(bob).await["id"], bob_id);
    for missing in ["999999", "abc", "0", "-3", "99999999999999999999999"] {
        let response = app.get_as(&format!("/users/{missing}"), &admin).await;
        problem(response, StatusCode::NOT_FOUND).await;
    }
}

async fn changing_email_or_password_needs_the_current_password(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (user, _, token) = app.user_with_token().await;
    let new_email = TestUser::generate().email;
    let missing = app
        .patch_as("/users/me", &token, &json!({"email": new_email}))
        .await;
    let body_ = problem(missing, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&body_), ["current_password"]);
    let wrong = app
        .patch_as(
            "/users/me",
            &token,
            &json!({"password": "a brand new one", "current_password": "not mine"}),
        )
        .await;
    problem(wrong, StatusCode::FORBIDDEN).await;

    let changed = app.patch_as("/users/me", &token, &json!({"email": new_email.to_uppercase(), "current_password": user.password, "username": "renamed.one"})).await;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed = body(changed).await;
    assert_eq!(changed["email"], new_email);
    assert_eq!(changed["username"], "renamed.one");
    assert_eq!(changed["email_verified"], false);
    // Changing the email alone does not end the session.
    let me = app.get_as("/users/me", &token).await;
    assert_eq!(me.status(), StatusCode::OK);
}

async fn a_password_change_makes_earlier_tokens_fail_at_once(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (user, _, token) = app.user_with_token().await;
    let second_token = app.token_for(&user).await;
    let response = app
        .patch_as(
            "/users/me",
            &token,
            &json!({"password": "the new password", "current_password": user.password}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    for old in [&token, &second_token] {
        let response = app.get_as("/users/me", old).await;
        problem(response, StatusCode::UNAUTHORIZED).await;
    }
    problem(
        app.login(&user.username, &user.password).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let fresh = app.token(&user.username, "the new password").await;
    let response = app.get_as("/users/me", &fresh).await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn only_superusers_set_privileged_fields(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (user, id, token) = app.user_with_token().await;
    for field in ["is_superuser", "is_active"] {
        let response = app
            .patch_as("/users/me", &token, &json!({field: true}))
            .await;
        problem(response, StatusCode::FORBIDDEN).await;
    }
    let (_, other_id, _) = app.user_with_token().await;
    let response = app
        .patch_as(
            &format!("/users/{other_id}"),
            &token,
            &json!({"username": "hijacked"}),
        )
        .await;
    problem(response, StatusCode::FORBIDDEN).await;

    let admin = app.admin_token().await;
    let response = app
        .patch_as(
            &format!("/users/{id}"),
            &admin,
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(body(response).await["is_active"], false);
    // The deactivated user's token now gets 403; its login too, but only with the right
    // password.
    let response = app.get_as("/users/me", &token).await;
    problem(response, StatusCode::FORBIDDEN).await;
    problem(
        app.login(&user.email, &user.password).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        app.login(&user.email, "wrong password").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let response = app
        .patch_as(
            &format!("/users/{id}"),
            &admin,
            &json!({"is_active": true, "is_superuser": true}),
        )
        .await;
    assert_eq!(body(response).await["is_superuser"], true);
    let promoted = app.token_for(&user).await;
    let response = app.get_as("/users", &promoted).await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn if_match_guards_against_lost_updates(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (_, id, token) = app.user_with_token().await;
    let etag = app.get_as("/users/me", &token).await.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_owned();
    let first = app
        .patch(&format!("/users/{id}"))
        .bearer_auth(&token)
        .header("if-match", &etag)
        .json(&json!({"username": "first_writer"}))
        .send()
        .await
        .expect("request");
    assert_eq!(first.status(), StatusCode::OK);
    let new_etag = first.headers()["etag"].to_str().expect("etag").to_owned();
    assert_ne!(new_etag, etag);
    let second = app
        .patch("/users/me")
        .bearer_auth(&token)
        .header("if-match", &etag)
        .json(&json!({"username": "second_writer"}))
        .send()
        .await
        .expect("request");
    problem(second, StatusCode::PRECONDITION_FAILED).await;
    let me = body(app.get_as("/users/me", &token).await).await;
    assert_eq!(me["username"], "first_writer");
    let star = app
        .patch("/users/me")
        .bearer_auth(&token)
        .header("if-match", "*")
        .json(&json!({"username": "star_writer"}))
        .send()
        .await
        .expect("request");
    assert_eq!(star.status(), StatusCode::OK);
}

async fn the_last_active_superuser_cannot_be_removed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let admin = app.admin_token().await;
    let me = body(app.get_as("/users/me", &admin).await).await;
    let admin_id = me["id"].as_i64().expect("id");
    for change in [json!({"is_superuser": false}), json!({"is_active": false})] {
        let response = app
            .patch(&format!("/users/{admin_id}"))
            .bearer_auth(&admin)
            .json(&change)
            .send()
            .await
            .expect("request");
        problem(response, StatusCode::CONFLICT).await;
    }
    let response = app.delete_as("/users/me", &admin).await;
    problem(response, StatusCode::CONFLICT).await;
    let response = app.delete_as(&format!("/users/{admin_id}"), &admin).await;
    problem(response, StatusCode::CONFLICT).await;
}

async fn deleting_accounts(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (user, id, token) = app.user_with_token().await;
    let (_, other_id, _) = app.user_with_token().await;
    let response = app.delete_as(&format!("/users/{other_id}"), &token).await;
    problem(response, StatusCode::FORBIDDEN).await;

    let response = app.delete_as("/users/me", &token).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = app.get_as("/users/me", &token).await;
    problem(response, StatusCode::UNAUTHORIZED).await;
    problem(
        app.login(&user.email, &user.password).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let admin = app.admin_token().await;
    let response = app.delete_as(&format!("/users/{other_id}"), &admin).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for gone in [id, other_id] {
        let response = app.delete_as(&format!("/users/{gone}"), &admin).await;
        problem(response, StatusCode::NOT_FOUND).await;
    }
}

shelter_test_support::on_both_backends!(
    listing_users_filters_by_search_and_flags,
    signup_returns_201_without_the_password,
    signup_with_a_taken_email_returns_409_already_exists,
    thirty_concurrent_signups_with_one_email_give_one_201,
    signup_reports_every_invalid_field_at_once,
    listing_users_without_a_token_returns_401,
    listing_users_needs_a_superuser_and_pages_by_id,
    me_has_an_etag_and_answers_304_when_unchanged,
    users_read_themselves_and_superusers_read_anyone,
    changing_email_or_password_needs_the_current_password,
    a_password_change_makes_earlier_tokens_fail_at_once,
    only_superusers_set_privileged_fields,
    if_match_guards_against_lost_updates,
    the_last_active_superuser_cannot_be_removed,
    deleting_accounts,
);
