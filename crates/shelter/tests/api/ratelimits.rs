//! Rate limits in one instance (in-process counters) and who counts as the client.

use reqwest::StatusCode;
use serde_json::json;
use shelter_test_support::Backend;
use std::num::NonZeroU32;

use crate::helpers::{TestApp, TestUser, problem};

pub fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds")
}

async fn logins_are_limited_per_address_and_username(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.rate_limit.enabled = true;
        s.rate_limit.login_per_minute = NonZeroU32::new(3).expect("not zero");
    })
    .await
    else {
        return;
    };
    for _ in 0..3 {
        assert_eq!(
            app.login("ann", "wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = app.login("ANN", "wrong password").await;
    let wait = retry_after(&limited);
    assert!((1..=20).contains(&wait), "one slot per 20 s: {wait}");
    problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(
        app.login("bob", "wrong password").await.status(),
        StatusCode::UNAUTHORIZED,
        "per username"
    );
}

async fn signups_are_limited_per_address_and_recovery_per_email(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.rate_limit.enabled = true;
        s.rate_limit.signup_per_hour = NonZeroU32::new(2).expect("not zero");
        s.rate_limit.recovery_per_hour = NonZeroU32::new(2).expect("not zero");
    })
    .await
    else {
        return;
    };
    for _ in 0..2 {
        assert_eq!(
            app.signup(&TestUser::generate()).await.status(),
            StatusCode::CREATED
        );
    }
    let limited = app.signup(&TestUser::generate()).await;
    assert!(retry_after(&limited) > 60, "an hour's quota refills slowly");
    problem(limited, StatusCode::TOO_MANY_REQUESTS).await;

    let recover = |email: &'static str| {
        app.post("/auth/password-recovery")
            .json(&json!({"email": email}))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(
            recover("ann@example.com").await.expect("request").status(),
            StatusCode::ACCEPTED
        );
    }
    problem(
        recover("ANN@example.com").await.expect("request"),
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    assert_eq!(
        recover("bob@example.com").await.expect("request").status(),
        StatusCode::ACCEPTED
    );
}

async fn forwarded_addresses_count_only_behind_a_trusted_proxy(backend: Backend) {
    let limited_app = |trusted: Vec<ipnet::IpNet>| {
        TestApp::spawn_with(backend, move |s| {
            s.rate_limit.enabled = true;
            s.rate_limit.signup_per_hour = NonZeroU32::new(1).expect("not zero");
            s.trusted_proxies = trusted;
        })
    };
    let signup_from = |app: &TestApp, client: &str| {
        app.post("/users")
            .header("x-forwarded-for", format!("198.51.100.77, {client}"))
            .json(&TestUser::generate().signup_body())
            .send()
    };
    // The test client (127.0.0.1) is the trusted proxy: each forwarded client has a quota.
    let Some(behind_proxy) = limited_app(vec!["127.0.0.1/32".parse().expect("network")]).await
    else {
        return;
    };
    for client in ["203.0.113.1", "203.0.113.2"] {
        assert_eq!(
            signup_from(&behind_proxy, client)
                .await
                .expect("request")
                .status(),
            StatusCode::CREATED,
            "{client}"
        );
    }
    assert_eq!(
        signup_from(&behind_proxy, "203.0.113.1")
            .await
            .expect("request")
            .status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the right-most untrusted hop is the client, whatever it puts left of it"
    );
    // No trusted proxy: the header is the client's own claim and is ignored.
    let Some(direct) = limited_app(Vec::new()).await else {
        return;
    };
    assert_eq!(
        signup_from(&direct, "203.0.113.1")
            .await
            .expect("request")
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        signup_from(&direct, "203.0.113.2")
            .await
            .expect("request")
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn limits_can_be_switched_off(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.rate_limit.enabled = false;
        s.rate_limit.login_per_minute = NonZeroU32::new(1).expect("not zero");
    })
    .await
    else {
        return;
    };
    for _ in 0..5 {
        assert_eq!(
            app.login("ann", "wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

async fn second_steps_are_limited_per_address_like_logins(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.rate_limit.enabled = true;
        s.rate_limit.login_per_minute = NonZeroU32::new(3).expect("not zero");
    })
    .await
    else {
        return;
    };
    let attempt = async |token: &str| {
        app.post_json("/auth/mfa", &json!({"mfa_token": token, "code": "123456"}))
            .await
    };
    for token in ["a", "b", "c"] {
        problem(attempt(token).await, StatusCode::UNAUTHORIZED).await;
    }
    let limited = attempt("d").await;
    assert!(retry_after(&limited) >= 1);
    problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
}

async fn sign_in_codes_are_limited_per_email_apart_from_recovery(backend: Backend) {
    let Some(app) = TestApp::spawn_with(backend, |s| {
        s.rate_limit.enabled = true;
        s.rate_limit.recovery_per_hour = NonZeroU32::new(2).expect("not zero");
        s.rate_limit.login_per_minute = NonZeroU32::new(3).expect("not zero");
    })
    .await
    else {
        return;
    };
    let ask = |path: &'static str, email: &'static str| {
        app.post(path).json(&json!({"email": email})).send()
    };
    for _ in 0..2 {
        let asked = ask("/auth/email-code", "ann@example.com")
            .await
            .expect("request");
        assert_eq!(asked.status(), StatusCode::ACCEPTED);
    }
    let limited = ask("/auth/email-code", "Ann@example.com")
        .await
        .expect("request");
    assert!(retry_after(&limited) > 60, "an hour's quota refills slowly");
    problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
    let other = ask("/auth/email-code", "bob@example.com")
        .await
        .expect("request");
    assert_eq!(other.status(), StatusCode::ACCEPTED, "per email");
    let recovery = ask("/auth/password-recovery", "ann@example.com")
        .await
        .expect("request");
    assert_eq!(recovery.status(), StatusCode::ACCEPTED, "counted apart");

    // Typing codes is limited like logins, per address and email.
    let verify = || {
        app.post("/auth/email-code/verify")
            .json(&json!({"email": "ann@example.com", "code": "000000"}))
            .send()
    };
    for _ in 0..3 {
        let wrong = verify().await.expect("request");
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    problem(
        verify().await.expect("request"),
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
}

shelter_test_support::on_both_backends!(
    sign_in_codes_are_limited_per_email_apart_from_recovery,
    logins_are_limited_per_address_and_username,
    second_steps_are_limited_per_address_like_logins,
    signups_are_limited_per_address_and_recovery_per_email,
    forwarded_addresses_count_only_behind_a_trusted_proxy,
    limits_can_be_switched_off,
);
