//! `RedisRateLimiter`: counters shared by every instance.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use shelter_domain::limits::{Decision, Limit, Quota, RateLimiter};

use crate::connection::{COMMAND_TIMEOUT, Redis};

/// The generic cell rate algorithm in one atomic step, on Redis's clock (so instances with
/// skewed clocks agree). KEYS[1]: the counter; ARGV: emission interval (ms), burst.
/// Returns 0 when allowed, else the milliseconds until the next request would be.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
local new_tat = tat + interval
local window = interval * burst
if new_tat - now > window then
  return new_tat - now - window
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return 0
";

pub struct RedisRateLimiter {
    redis: Arc<Redis>,
    script: redis::Script,
    quotas: HashMap<Limit, Quota>,
    fail_open: bool,
}

impl RedisRateLimiter {
    pub fn new(redis: Arc<Redis>, quotas: HashMap<Limit, Quota>, fail_open: bool) -> Self {
        Self {
            redis,
            script: redis::Script::new(GCRA),
            quotas,
            fail_open,
        }
    }

    async fn count(&self, key: &str, quota: Quota) -> anyhow::Result<u64> {
        let interval = (quota.window.as_millis() / u128::from(quota.limit.get())).max(1);
        let mut connection = self.redis.connection().await?;
        let mut invocation = self.script.key(key);
        invocation
            .arg(u64::try_from(interval).unwrap_or(u64::MAX))
            .arg(quota.limit.get());
        tokio::time::timeout(
            COMMAND_TIMEOUT,
            invocation.invoke_async::<u64>(&mut connection),
        )
        .await
        .context("Redis did not answer in time")?
        .context("rate-limit script")
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, limit: Limit, key: &str) -> anyhow::Result<Decision> {
        let Some(quota) = self.quotas.get(&limit).copied() else {
            return Ok(Decision::Allowed);
        };
        let key = self.redis.key(&["rl", limit.as_str(), key]);
        match self.count(&key, quota).await {
            Ok(0) => Ok(Decision::Allowed),
            Ok(wait_ms) => Ok(Decision::Limited {
                retry_after: Duration::from_millis(wait_ms),
            }),
            Err(error) if self.fail_open => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    limit = limit.as_str(),
                    "Redis unavailable; rate limit not applied (fail open)"
                );
                Ok(Decision::Allowed)
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    limit = limit.as_str(),
                    "Redis unavailable; request refused (fail closed)"
                );
                Err(error)
            }
        }
    }
}
