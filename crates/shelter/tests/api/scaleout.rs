//! Several instances: chat fan-out and shared rate limits through Redis, and a Redis
//! outage in the middle of a test (a Redis the test starts on its own port).

use std::num::NonZeroU32;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use shelter::config::Settings;
use shelter_test_support::{Backend, in_ci, skip};

use crate::chat::{open, say, text};
use crate::helpers::{TestApp, problem};

/// The machine's Redis (`TEST_REDIS_URL`), or `None` (skipped, with the reason) outside CI.
pub(crate) async fn shared_redis() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let address = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    match tokio::net::TcpStream::connect(&address).await {
        Ok(_) => Some(url),
        Err(error) if !in_ci() => {
            skip(&format!("Redis at {url} is not reachable: {error}"));
            None
        }
        Err(error) => panic!("CI=true and Redis at {url} is not reachable: {error}"),
    }
}

fn using_redis(url: &str, prefix: &str) -> impl FnOnce(&mut Settings) {
    let (url, prefix) = (url.to_owned(), prefix.to_owned());
    move |s| {
        s.redis.url = Some(url.parse().expect("a Redis URL"));
        s.redis.prefix = prefix;
    }
}

/// Two instances on one database and one Redis, isolated from other tests by a prefix.
pub(crate) async fn two_instances(
    backend: Backend,
    redis: &str,
    configure: fn(&mut Settings),
) -> Option<(TestApp, TestApp)> {
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let first = TestApp::spawn_with(backend, |s| {
        using_redis(redis, &prefix)(s);
        configure(s);
    })
    .await?;
    let database = first.database_url.clone();
    let second = TestApp::spawn_with(backend, |s| {
        using_redis(redis, &prefix)(s);
        configure(s);
        s.database.url = database.parse().expect("a database URL");
    })
    .await?;
    Some((first, second))
}

async fn a_message_sent_on_one_instance_arrives_on_the_other(backend: Backend) {
    let Some(redis) = shared_redis().await else {
        return;
    };
    let Some((one, two)) = two_instances(backend, &redis, |_| {}).await else {
        return;
    };
    let (_, ann_id, ann_token) = one.user_with_token().await;
    let (_, bob_id, bob_token) = one.user_with_token().await;
    let mut ann = open(&one, ann_id, &ann_token).await;
    let mut bob = open(&two, bob_id, &bob_token).await;
    // The subscription may still be starting: say it until it crosses.
    let mut crossed = false;
    for attempt in 0..50 {
        say(&mut ann, &format!("ping {attempt}")).await;
        assert_eq!(
            text(&mut ann).await,
            format!("Message received: ping {attempt}")
        );
        assert_eq!(
            text(&mut ann).await,
            format!("Client #{ann_id} says: ping {attempt}"),
            "exactly once locally"
        );
        if let Ok(Some(Ok(message))) = tokio::time::timeout(
            Duration::from_millis(200),
            futures::StreamExt::next(&mut bob),
        )
        .await
        {
            assert!(
                message
                    .to_text()
                    .is_ok_and(|t| t.starts_with(&format!("Client #{ann_id} says: ping"))),
                "{message:?}"
            );
            crossed = true;
            break;
        }
    }
    assert!(crossed, "the message reached the other instance");
    say(&mut bob, "hello from two").await;
    assert_eq!(text(&mut bob).await, "Message received: hello from two");
    assert_eq!(
        text(&mut bob).await,
        format!("Client #{bob_id} says: hello from two")
    );
    assert_eq!(
        text(&mut ann).await,
        format!("Client #{bob_id} says: hello from two")
    );
}

async fn the_rate_limit_is_shared_by_both_instances(backend: Backend) {
    let Some(redis) = shared_redis().await else {
        return;
    };
    let Some((one, two)) = two_instances(backend, &redis, |s| {
        s.rate_limit.enabled = true;
        s.rate_limit.login_per_minute = NonZeroU32::new(4).expect("not zero");
    })
    .await
    else {
        return;
    };
    for app in [&one, &two, &one, &two] {
        assert_eq!(
            app.login("shared", "wrong password").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = two.login("shared", "wrong password").await;
    assert!(crate::ratelimits::retry_after(&limited) >= 1);
    problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
    problem(
        one.login("shared", "wrong password").await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    let ready = one.get("/health/ready").send().await.expect("request");
    assert_eq!(ready.status(), StatusCode::OK, "Redis answers");
}

/// A `redis-server` of the test's own, on its own port.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    async fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut redis = Self { port, child: None };
        if redis.restart().await {
            Some(redis)
        } else if in_ci() {
            panic!("CI=true and redis-server could not be started");
        } else {
            skip("redis-server could not be started");
            None
        }
    }

    async fn restart(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Says messages on `from` until one reaches `to`.
async fn crosses(
    from: &mut crate::chat::Socket,
    to: &mut crate::chat::Socket,
    tries: usize,
) -> bool {
    for attempt in 0..tries {
        say(from, &format!("try {attempt}")).await;
        let _received = text(from).await;
        let _local = text(from).await;
        if let Ok(Some(Ok(message))) =
            tokio::time::timeout(Duration::from_millis(250), futures::StreamExt::next(to)).await
            && message.to_text().is_ok_and(|t| t.contains("says: try"))
        {
            return true;
        }
    }
    false
}

async fn a_redis_outage_is_survived_and_healed_without_a_restart(backend: Backend) {
    let Some(mut redis) = OwnRedis::start().await else {
        return;
    };
    let Some((one, two)) = two_instances(backend, &redis.url(), |_| {}).await else {
        return;
    };
    let (_, ann_id, ann_token) = one.user_with_token().await;
    let (_, bob_id, bob_token) = one.user_with_token().await;
    let mut ann = open(&one, ann_id, &ann_token).await;
    let mut bob = open(&two, bob_id, &bob_token).await;
    assert!(
        crosses(&mut ann, &mut bob, 40).await,
        "fan-out works before the outage"
    );

    redis.stop();
    say(&mut ann, "during the outage").await;
    assert_eq!(
        text(&mut ann).await,
        "Message received: during the outage",
        "local delivery goes on"
    );
    assert_eq!(
        text(&mut ann).await,
        format!("Client #{ann_id} says: during the outage")
    );
    let ready = one.get("/health/ready").send().await.expect("request");
    assert_eq!(
        ready.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "readiness reports Redis down"
    );
    assert_eq!(
        one.login("nobody", "wrong password").await.status(),
        StatusCode::UNAUTHORIZED,
        "the app still serves"
    );

    assert!(redis.restart().await, "Redis restarted");
    // The subscription comes back by itself (backoff of at most 5 s).
    assert!(
        crosses(&mut ann, &mut bob, 80).await,
        "fan-out heals without restarting Shelter"
    );
    let ready = one.get("/health/ready").send().await.expect("request");
    assert_eq!(ready.status(), StatusCode::OK);
}

async fn rate_limits_fail_open_or_closed_as_configured(backend: Backend) {
    let dead = format!(
        "redis://127.0.0.1:{}",
        shelter_test_support::smtp::SmtpServer::reserve_port().await
    );
    let Some(open_app) = TestApp::spawn_with(backend, |s| {
        s.redis.url = Some(dead.clone().parse().expect("a Redis URL"));
        s.rate_limit.enabled = true;
    })
    .await
    else {
        return;
    };
    assert_eq!(
        open_app.login("ann", "wrong password").await.status(),
        StatusCode::UNAUTHORIZED,
        "fail open: served"
    );
    let Some(closed_app) = TestApp::spawn_with(backend, |s| {
        s.redis.url = Some(dead.clone().parse().expect("a Redis URL"));
        s.rate_limit.enabled = true;
        s.rate_limit.fail_open = false;
    })
    .await
    else {
        return;
    };
    let refused = closed_app.login("ann", "wrong password").await;
    assert!(refused.headers().contains_key("retry-after"));
    problem(refused, StatusCode::SERVICE_UNAVAILABLE).await;
}

shelter_test_support::on_both_backends!(
    a_message_sent_on_one_instance_arrives_on_the_other,
    the_rate_limit_is_shared_by_both_instances,
    a_redis_outage_is_survived_and_healed_without_a_restart,
    rate_limits_fail_open_or_closed_as_configured,
);
