//! Shelter's shared-state adapters, both adapters of each port together: Redis, used when
//! `SHELTER_REDIS_URL` is set so that several instances share what must be shared, and the
//! in-process one for an instance alone.
//!
//! - [`InProcessRateLimiter`] implements `RateLimiter` with this process's counters.
//! - [`RedisRateLimiter`] implements `RateLimiter`: one atomic Lua script per request (the
//!   generic cell rate algorithm on Redis's own clock), failing open or closed by setting.
//! - [`LocalOnlyBus`] implements `ClusterBus` for one instance: there is no one to tell.
//! - [`RedisClusterBus`] implements `ClusterBus` with pub/sub, and feeds other instances' events to
//!   a `ClusterSink`, reconnecting by itself after an outage.
//! - [`Redis`]: the shared connection, opened lazily so an instance starts while Redis is down.

mod bus;
mod connection;
mod in_process;
mod limiter;

pub use bus::{LocalOnlyBus, RedisClusterBus};
pub use connection::{Redis, RedisUrl};
pub use in_process::InProcessRateLimiter;
pub use limiter::RedisRateLimiter;
