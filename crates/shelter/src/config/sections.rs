//! Each adapter's settings, made from the flat `Settings` in one place, so the composition
//! root hands each adapter its section and decides nothing itself.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::ExposeSecret as _;
use shelter_auth::HashingPool;
use shelter_domain::SessionPolicy;
use shelter_domain::realtime::{Limit, Quota};
use shelter_mail::{MailSettings, RetryPolicy, Transport, WorkerSettings};
use shelter_persistence::DatabaseSettings;

use super::{EmailTransport, Settings};

/// Emails sent at once by one worker. Each SMTP exchange spends ~40 ms in Nagle/delayed-ACK
/// stalls (lettre does not set `TCP_NODELAY`), so throughput is bound by this number.
const DELIVERY_CONCURRENCY: usize = 16;

impl Settings {
    /// The pool and timeouts of the database.
    pub fn database(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.database_url.expose_secret().to_owned(),
            max_connections: self.database_max_connections,
            acquire_timeout: self.database_timeout(),
            statement_timeout: self.request_timeout(),
        }
    }

    /// The hashing threads and queue.
    pub fn hashing_pool(&self) -> HashingPool {
        let mut pool = self
            .hashing_threads
            .map_or_else(HashingPool::default, HashingPool::with_threads);
        if let Some(queue) = self.hashing_queue {
            pool.queue = queue;
        }
        pool
    }

    /// Token lifetimes and the login rules.
    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy {
            refresh_lifetime: chrono::Duration::days(i64::from(self.refresh_token_expire_days)),
            reuse_grace: chrono::Duration::seconds(i64::from(self.refresh_reuse_grace_seconds)),
            require_verified_email: self.require_verified_email,
        }
    }

    /// The quotas of the rate limits.
    pub fn quotas(&self) -> HashMap<Limit, Quota> {
        HashMap::from([
            (
                Limit::Login,
                Quota {
                    limit: self.rate_limit_login_per_minute,
                    window: Duration::from_mins(1),
                },
            ),
            (
                Limit::Signup,
                Quota {
                    limit: self.rate_limit_signup_per_hour,
                    window: Duration::from_hours(1),
                },
            ),
            (
                Limit::PasswordRecovery,
                Quota {
                    limit: self.rate_limit_recovery_per_hour,
                    window: Duration::from_hours(1),
                },
            ),
        ])
    }

    /// How emails are rendered and sent.
    ///
    /// # Errors
    /// The smtp transport without `SHELTER_SMTP_URL`.
    pub fn mail(&self) -> anyhow::Result<MailSettings> {
        let transport = match self.email_transport {
            EmailTransport::Log => Transport::Log,
            EmailTransport::File => Transport::File(self.email_dir.clone()),
            EmailTransport::Smtp => Transport::Smtp(
                self.smtp_url
                    .clone()
                    .context("SHELTER_SMTP_URL is required with the smtp transport")?,
            ),
        };
        Ok(MailSettings {
            transport,
            from: self.email_from.clone(),
            app_name: "Shelter".into(),
            public_url: self.public_url.clone(),
            timeout: Duration::from_secs(self.smtp_timeout_seconds),
            max_connections: u32::try_from(DELIVERY_CONCURRENCY).unwrap_or(16),
        })
    }

    /// The delivery worker: a batch is sent `DELIVERY_CONCURRENCY` at a time and its lease
    /// outlasts the SMTP timeouts of the whole batch.
    pub fn delivery(&self) -> WorkerSettings {
        let (batch, concurrency) = (64_u32, DELIVERY_CONCURRENCY);
        // The worst a live worker can take over one batch: it goes out in
        // `batch / concurrency` rounds, and one email can wait out the SMTP timeout three
        // times (connecting, a command, the end of the data). Twice that and a minute
        // more, so that no other instance takes over the batch of a worker that is slow
        // but alive.
        let rounds = u64::from(batch.div_ceil(u32::try_from(concurrency).unwrap_or(u32::MAX)));
        let lease = self.smtp_timeout_seconds * 3 * rounds * 2 + 60;
        WorkerSettings {
            retry: RetryPolicy {
                max_attempts: self.email_max_attempts,
                base_delay: Duration::from_secs(self.email_retry_base_seconds),
                max_delay: Duration::from_secs(self.email_retry_max_seconds),
            },
            batch,
            concurrency,
            lease: Duration::from_secs(lease),
            poll_interval: Duration::from_secs(1),
        }
    }
}
