//! Shelter's Redis adapter, used when `SHELTER_REDIS_URL` is set, so that several instances
//! share what must be shared.
//!
//! - [`RedisRateLimiter`] implements `RateLimiter`: one atomic Lua script per request (the
//!   generic cell rate algorithm on Redis's own clock), failing open or closed by setting.
//! - [`RedisChatBus`] implements `ChatBus` with pub/sub, and feeds other instances' events to
//!   a `ChatSink`, reconnecting by itself after an outage.
//! - [`Redis`]: the shared connection, opened lazily so an instance starts while Redis is down.

mod bus;
mod connection;
mod limiter;

pub use bus::RedisChatBus;
pub use connection::{Redis, RedisUrl};
pub use limiter::RedisRateLimiter;
