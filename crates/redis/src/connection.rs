//! The shared connection to one Redis server, and its address.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use redis::IntoConnectionInfo as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

/// How long one command may take before the caller gives up on Redis for this request.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// A Redis server's address, parsed by the Redis client itself when the settings are read,
/// so an unusable URL (or a scheme this build cannot speak, such as `rediss://` without
/// TLS) stops the start with a line naming the setting. `Debug` shows no password.
#[derive(Clone)]
pub struct RedisUrl(redis::ConnectionInfo);

impl FromStr for RedisUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.into_connection_info()
            .map(Self)
            .map_err(|e| e.to_string())
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.0.addr())
    }
}

/// A Redis server and the key prefix this deployment owns.
pub struct Redis {
    pub(crate) client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    prefix: String,
}

impl Redis {
    /// Nothing is connected yet.
    ///
    /// # Errors
    /// When the client refuses the address.
    pub fn new(url: &RedisUrl, prefix: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: redis::Client::open(url.0.clone()).context("Redis URL")?,
            connection: OnceCell::new(),
            prefix: prefix.to_owned(),
        })
    }

    /// The shared, self-reconnecting connection, opened on first use.
    pub(crate) async fn connection(&self) -> anyhow::Result<ConnectionManager> {
        let connection = self
            .connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(COMMAND_TIMEOUT))
                    .set_response_timeout(Some(COMMAND_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(2));
                self.client
                    .get_connection_manager_with_config(config)
                    .await
                    .context("connect to Redis")
            })
            .await?;
        Ok(connection.clone())
    }

    pub(crate) fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.clone();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    /// Whether Redis answers `PING`.
    ///
    /// # Errors
    /// When it does not, within the command timeout.
    pub async fn ping(&self) -> anyhow::Result<()> {
        let mut connection = self.connection().await?;
        tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut connection),
        )
        .await
        .context("Redis did not answer in time")?
        .context("PING")?;
        Ok(())
    }
}
