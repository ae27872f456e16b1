//! What the composition root hands each adapter, made from the typed settings without
//! parsing anything again.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::SecretString;
use shelter_crypto::{HashingPool, RelyingParty, TokenAudience};
use shelter_domain::SessionPolicy;
use shelter_domain::identities::{LinkPolicy, Provider, ProviderId};
use shelter_domain::limits::{Limit, Quota};
use shelter_mail::{MailSettings, RetryPolicy, Transport, WorkerSettings};
use shelter_persistence::DatabaseSettings;
use shelter_upstream::ProviderSettings;

use super::sections::EmailTransport;
use super::{ConfigError, Environment, Settings};

/// Emails sent at once by one worker. Each SMTP exchange spends ~40 ms in Nagle/delayed-ACK
/// stalls (lettre does not set `TCP_NODELAY`), so throughput is bound by this number.
const DELIVERY_CONCURRENCY: usize = 16;

impl Settings {
    /// The pool and timeouts of the database.
    pub fn database(&self) -> DatabaseSettings {
        DatabaseSettings {
            url: self.database.url.clone(),
            max_connections: self.database.max_connections,
            acquire_timeout: self.database.timeout,
            statement_timeout: self.request_timeout,
            audit_retention: chrono_span(self.audit_retention),
        }
    }

    /// The hashing threads and queue.
    pub fn hashing_pool(&self) -> HashingPool {
        let mut pool = self
            .hashing
            .threads
            .map_or_else(HashingPool::default, |n| HashingPool::with_threads(n.get()));
        if let Some(queue) = self.hashing.queue {
            pool.queue = queue.get();
        }
        pool
    }

    /// How long an access token lives, as the token issuer counts time.
    pub fn access_lifetime(&self) -> chrono::Duration {
        chrono_span(self.access_token_lifetime)
    }

    /// The `iss` and `aud` of every access token.
    pub fn token_audience(&self) -> TokenAudience {
        TokenAudience {
            issuer: self
                .jwt
                .issuer
                .clone()
                .unwrap_or_else(|| self.public_url.as_str().trim_end_matches('/').to_owned()),
            audience: self.jwt.audience.clone(),
        }
    }

    /// Token lifetimes and the login rules.
    pub fn session_policy(&self) -> SessionPolicy {
        SessionPolicy {
            refresh_lifetime: chrono_span(self.refresh_token_lifetime),
            reuse_grace: chrono_span(self.refresh_reuse_grace),
            require_verified_email: self.require_verified_email,
        }
    }

    /// The browser session's settings: its CSRF key from `secret`, `Secure` cookies
    /// behind https.
    pub fn browser(&self, secret: &secrecy::SecretString) -> crate::edge::cookies::BrowserSettings {
        crate::edge::cookies::BrowserSettings::new(
            secret,
            self.public_url.scheme() == "https",
            self.refresh_token_lifetime,
        )
    }

    /// The quotas of the rate limits.
    pub fn quotas(&self) -> HashMap<Limit, Quota> {
        let limits = &self.rate_limit;
        HashMap::from(
            [
                (
                    Limit::Login,
                    limits.login_per_minute,
                    Duration::from_mins(1),
                ),
                (
                    Limit::Signup,
                    limits.signup_per_hour,
                    Duration::from_hours(1),
                ),
                (
                    Limit::PasswordRecovery,
                    limits.recovery_per_hour,
                    Duration::from_hours(1),
                ),
                (
                    Limit::VerificationResend,
                    limits.recovery_per_hour,
                    Duration::from_hours(1),
                ),
                (
                    Limit::EmailCode,
                    limits.recovery_per_hour,
                    Duration::from_hours(1),
                ),
                (
                    Limit::ClientRegistration,
                    limits.signup_per_hour,
                    Duration::from_hours(1),
                ),
            ]
            .map(|(limit, count, window)| {
                (
                    limit,
                    Quota {
                        limit: count,
                        window,
                    },
                )
            }),
        )
    }

    /// The passkeys' relying party; `None` when no RP id is set and `SHELTER_PUBLIC_URL`'s
    /// host is an IP address, which browsers never accept as one (passkeys are then off).
    ///
    /// # Errors
    /// An RP id that does not fit the origins (it must be their host or a parent domain).
    pub fn relying_party(&self) -> Result<Option<RelyingParty>, ConfigError> {
        let section = &self.webauthn;
        let rp_id = match (&section.rp_id, self.public_url.domain()) {
            (Some(id), _) => id.clone(),
            (None, Some(domain)) => domain.to_owned(),
            (None, None) => return Ok(None),
        };
        let origins = if section.origins.is_empty() {
            vec![self.public_url.origin().ascii_serialization()]
        } else {
            section.origins.clone()
        };
        let origins = origins
            .iter()
            .map(|origin| url::Url::parse(origin))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| ConfigError::new("webauthn_origins", error.to_string()))?;
        let name = section.rp_name.as_deref().unwrap_or("Shelter");
        RelyingParty::new(&rp_id, name, &origins)
            .map(Some)
            .map_err(|error| ConfigError::new("webauthn_rp_id", format!("{error:#}")))
    }

    /// The upstream providers, each entry checked: a bad one is one line naming it
    /// (`providers[gitlab].issuer: …`). A secret named by `client_secret_env` is read here,
    /// with the rest of the settings.
    ///
    /// # Errors
    /// The first entry that cannot be used.
    pub fn providers(&self) -> Result<Vec<ProviderSettings>, ConfigError> {
        let mut seen = std::collections::HashSet::new();
        self.providers
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                let label = if entry.id.is_empty() {
                    format!("{index}")
                } else {
                    entry.id.clone()
                };
                let bad = |field: &str, reason: String| ConfigError {
                    setting: format!("providers[{label}].{field}"),
                    reason,
                };
                let id = ProviderId::parse(&entry.id).map_err(|e| bad("id", e.to_string()))?;
                if !seen.insert(id.clone()) {
                    return Err(bad("id", "is given to two providers".into()));
                }
                let name = entry.name.trim();
                if name.is_empty()
                    || name.chars().count() > 64
                    || name.chars().any(char::is_control)
                {
                    return Err(bad(
                        "name",
                        "must be 1 to 64 characters, without control characters".into(),
                    ));
                }
                let issuer = url::Url::parse(entry.issuer.trim())
                    .map_err(|e| bad("issuer", format!("is not a URL: {e}")))?;
                ProviderSettings::check_issuer(&issuer).map_err(|e| bad("issuer", e))?;
                if entry.client_id.trim().is_empty() {
                    return Err(bad("client_id", "must not be empty".into()));
                }
                let client_secret = match (&entry.client_secret, &entry.client_secret_env) {
                    (Some(secret), None) => secret.clone(),
                    (None, Some(variable)) => std::env::var(variable)
                        .ok()
                        .filter(|secret| !secret.is_empty())
                        .map(SecretString::from)
                        .ok_or_else(|| {
                            bad(
                                "client_secret_env",
                                format!("names {variable}, which is not set"),
                            )
                        })?,
                    _ => {
                        return Err(bad(
                            "client_secret",
                            "give exactly one of client_secret and client_secret_env".into(),
                        ));
                    }
                };
                if !entry.scopes.iter().any(|scope| scope == "openid") {
                    return Err(bad("scopes", "must include \"openid\"".into()));
                }
                let link = LinkPolicy::parse(&entry.link).map_err(|e| bad("link", e))?;
                Ok(ProviderSettings {
                    provider: Provider {
                        id,
                        name: name.to_owned(),
                        link,
                        create_users: entry.create_users,
                    },
                    issuer,
                    client_id: entry.client_id.trim().to_owned(),
                    client_secret,
                    scopes: entry.scopes.clone(),
                })
            })
            .collect()
    }

    /// How emails are rendered and sent.
    ///
    /// # Errors
    /// The smtp transport without a URL (settings built in code; `load` refuses it).
    pub fn mail(&self) -> Result<MailSettings, ConfigError> {
        let transport = match (self.email.transport, &self.smtp.url) {
            (EmailTransport::Log, _) => Transport::Log {
                // The developer's own machine: the whole email, so its link can be followed.
                reveal_tokens: self.env == Environment::Development,
            },
            (EmailTransport::File, _) => Transport::File(self.email.dir.clone()),
            (EmailTransport::Smtp, Some(url)) => Transport::Smtp(url.clone()),
            (EmailTransport::Smtp, None) => return Err(smtp_url_required()),
        };
        Ok(MailSettings {
            transport,
            from: self.email.from.clone(),
            app_name: "Shelter".into(),
            link_base: self
                .email
                .link_base
                .clone()
                .unwrap_or_else(|| self.public_url.clone()),
            timeout: self.smtp.timeout,
            max_connections: u32::try_from(DELIVERY_CONCURRENCY).unwrap_or(16),
        })
    }

    /// The delivery worker: a batch is sent `DELIVERY_CONCURRENCY` at a time, under a
    /// lease its worker renews every 5 s while it sends. An instance that dies (`kill -9`)
    /// stops renewing, so any live instance takes its emails over within 15 s and the
    /// next poll, however long the SMTP timeouts of a batch add up to.
    pub fn delivery(&self) -> WorkerSettings {
        let (batch, concurrency) = (64_u32, DELIVERY_CONCURRENCY);
        let lease = Duration::from_secs(15);
        WorkerSettings {
            retry: RetryPolicy {
                max_attempts: self.email.max_attempts.get(),
                base_delay: self.email.retry_base,
                max_delay: self.email.retry_max,
            },
            batch,
            concurrency,
            lease,
            poll_interval: Duration::from_secs(1),
        }
    }
}

fn smtp_url_required() -> ConfigError {
    ConfigError::new("smtp_url", "is required with SHELTER_EMAIL_TRANSPORT=smtp")
}

/// A span the settings bounded (at most `u32::MAX` days) as the domain's clock type.
fn chrono_span(span: Duration) -> chrono::Duration {
    chrono::Duration::from_std(span).unwrap_or(chrono::Duration::MAX)
}
