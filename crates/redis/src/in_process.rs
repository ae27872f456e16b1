//! `InProcessRateLimiter`: the counters of one instance, for a deployment without Redis.
//! The same algorithm as [`RedisRateLimiter`](crate::RedisRateLimiter), so the two adapters
//! of the rate-limit port answer alike.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota as Gcra};
use shelter_domain::limits::{Decision, Limit, Quota, RateLimiter};

/// In-process counters: the same algorithm as the Redis limiter (GCRA), per instance.
pub struct InProcessRateLimiter {
    limiters: HashMap<Limit, DefaultKeyedRateLimiter<String>>,
    checks: std::sync::atomic::AtomicU64,
}

/// Every this many checks, keys whose counters have refilled are forgotten, so memory
/// follows the active keys rather than every address ever seen.
const FORGET_IDLE_EVERY: u64 = 4096;

impl InProcessRateLimiter {
    pub fn new(quotas: &HashMap<Limit, Quota>) -> Self {
        let limiters = quotas
            .iter()
            .filter_map(|(limit, quota)| {
                let period = quota.window / quota.limit.get();
                let gcra = Gcra::with_period(period.max(Duration::from_millis(1)))?
                    .allow_burst(quota.limit);
                Some((*limit, DefaultKeyedRateLimiter::keyed(gcra)))
            })
            .collect();
        Self {
            limiters,
            checks: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl RateLimiter for InProcessRateLimiter {
    async fn check(&self, limit: Limit, key: &str) -> anyhow::Result<Decision> {
        let Some(limiter) = self.limiters.get(&limit) else {
            return Ok(Decision::Allowed);
        };
        let checks = self
            .checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if checks % FORGET_IDLE_EVERY == FORGET_IDLE_EVERY - 1 {
            limiter.retain_recent();
        }
        Ok(match limiter.check_key(&key.to_owned()) {
            Ok(()) => Decision::Allowed,
            Err(not_until) => Decision::Limited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[tokio::test]
    async fn in_process_limits_allow_the_quota_then_say_when_to_retry() {
        let limiter = InProcessRateLimiter::new(&HashMap::from([(
            Limit::Login,
            Quota {
                limit: NonZeroU32::new(3).expect("three"),
                window: Duration::from_mins(1),
            },
        )]));
        for _ in 0..3 {
            assert_eq!(
                limiter.check(Limit::Login, "a").await.expect("check"),
                Decision::Allowed
            );
        }
        let Decision::Limited { retry_after } =
            limiter.check(Limit::Login, "a").await.expect("check")
        else {
            panic!("the fourth is limited");
        };
        assert!(
            retry_after > Duration::from_secs(15) && retry_after <= Duration::from_secs(20),
            "{retry_after:?}"
        );
        assert_eq!(
            limiter.check(Limit::Login, "b").await.expect("check"),
            Decision::Allowed,
            "per key"
        );
        assert_eq!(
            limiter.check(Limit::Signup, "a").await.expect("check"),
            Decision::Allowed,
            "unconfigured"
        );
    }
}
