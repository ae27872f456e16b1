//! The user cache on two instances sharing one database and one Redis: a change on one is
//! seen on the other within a second, and with Redis cut off, on the very next request.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::ConnectionTrait as _;
use serde_json::json;
use shelter::config::Settings;
use shelter_test_support::Backend;
use shelter_test_support::proxy::{Mode, TcpProxy};

use crate::helpers::{TestApp, body};
use crate::scaleout::{shared_redis, two_instances};

fn cache_on(s: &mut Settings) {
    s.user_cache = Duration::from_mins(1);
}

/// Renames the user behind Shelter's back, so that an instance still answering with the
/// old name shows it answers from its cache.
async fn rename_in_the_database(app: &TestApp, id: i64, name: &str) {
    let database = sea_orm::Database::connect(app.database_url.as_str())
        .await
        .expect("connect to the test database");
    database
        .execute_unprepared(&format!(
            "UPDATE users SET username = '{name}' WHERE id = {id}"
        ))
        .await
        .expect("rename");
    database.close().await.expect("close");
}

async fn me(app: &TestApp, token: &str) -> (StatusCode, serde_json::Value) {
    let response = app.get_as("/users/me", token).await;
    let status = response.status();
    (status, body(response).await)
}

/// Waits until `two` answers from its cache: its subscription to Redis is up.
async fn wait_until_cached(two: &TestApp, id: i64, token: &str, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, before) = me(two, token).await;
        rename_in_the_database(two, id, &format!("{name}x")).await;
        let (_, after) = me(two, token).await;
        rename_in_the_database(two, id, name).await;
        if after["username"] == before["username"] && before["username"] == name {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the second instance never answered from its cache"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn a_change_on_one_instance_reaches_the_other_within_a_second(backend: Backend) {
    let Some(redis) = shared_redis().await else {
        return;
    };
    let Some((one, two)) = two_instances(backend, &redis, cache_on).await else {
        return;
    };
    let (user, id, token) = one.user_with_token().await;
    wait_until_cached(&two, id, &token, &user.username).await;

    let renamed = format!("{}r", user.username);
    let response = one
        .patch_as("/users/me", &token, &json!({"username": renamed}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(1);
    while me(&two, &token).await.1["username"] != renamed.as_str() {
        assert!(
            Instant::now() < deadline,
            "the rename reached the other instance"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    wait_until_cached(&two, id, &token, &renamed).await;
    one.deactivate(id).await;
    let deadline = Instant::now() + Duration::from_secs(1);
    while me(&two, &token).await.0 == StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "the deactivation reached the other instance within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(me(&two, &token).await.0, StatusCode::FORBIDDEN);
}

async fn with_redis_cut_off_the_cache_is_bypassed(backend: Backend) {
    let Some(redis) = shared_redis().await else {
        return;
    };
    let target = redis
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .parse()
        .expect("a socket address");
    let proxy = TcpProxy::start(target).await;
    let proxied = format!("redis://{}", proxy.address());
    let Some((one, two)) = two_instances(backend, &proxied, cache_on).await else {
        return;
    };
    let (user, id, token) = one.user_with_token().await;
    wait_until_cached(&two, id, &token, &user.username).await;

    proxy.set(Mode::Cut);
    // Redis is gone: give the instances the moment a closed connection takes to be noticed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    one.deactivate(id).await;
    assert_eq!(
        me(&two, &token).await.0,
        StatusCode::FORBIDDEN,
        "refused on the very next request"
    );
    assert_eq!(me(&one, &token).await.0, StatusCode::FORBIDDEN);
}

async fn a_session_ended_on_one_instance_is_refused_on_the_other_within_a_second(backend: Backend) {
    let Some(redis) = shared_redis().await else {
        return;
    };
    let Some((one, two)) = two_instances(backend, &redis, cache_on).await else {
        return;
    };
    let (user, id, token) = one.user_with_token().await;
    wait_until_cached(&two, id, &token, &user.username).await;
    let sid = crate::auth::claims_of(&token)["sid"]
        .as_str()
        .expect("sid")
        .to_owned();
    let other = one.token_for(&user).await;
    let response = one
        .delete_as(&format!("/users/me/sessions/{sid}"), &other)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        me(&one, &token).await.0,
        StatusCode::UNAUTHORIZED,
        "at once where it was ended"
    );
    let deadline = Instant::now() + Duration::from_secs(1);
    while me(&two, &token).await.0 == StatusCode::OK {
        assert!(
            Instant::now() < deadline,
            "the end of the session reached the other instance within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(me(&two, &token).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&two, &other).await.0, StatusCode::OK);
}

shelter_test_support::on_both_backends!(
    a_change_on_one_instance_reaches_the_other_within_a_second,
    with_redis_cut_off_the_cache_is_bypassed,
    a_session_ended_on_one_instance_is_refused_on_the_other_within_a_second,
);
