//! Each adapter's section of the settings, typed as it is read. A section gathers the
//! settings with its prefix (`SHELTER_DATABASE_URL` is `url` in `database`), so the path of
//! a bad field, joined by `_`, is still the variable's name.

use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use figment::value::{Dict, Value};
use serde::Deserialize;
use shelter_domain::{EmailAddress, NewAccount, Password, Username};
use shelter_mail::{Mailbox, SmtpUrl};
use shelter_persistence::DatabaseUrl;
use shelter_redis::RedisUrl;

use super::lenient;

/// The prefixes that make a section, longest first where one could begin another.
const SECTIONS: [&str; 9] = [
    "database",
    "webauthn",
    "jwt",
    "hashing",
    "redis",
    "rate_limit",
    "email",
    "smtp",
    "first_superuser",
];

/// Moves `database_url` to `database.url`, and so on for every section; other keys stay.
pub(super) fn nest(flat: Dict) -> Dict {
    let mut nested = Dict::new();
    for (key, value) in flat {
        let section = SECTIONS.iter().find_map(|section| {
            let field = key.strip_prefix(section)?.strip_prefix('_')?;
            Some((*section, field.to_owned()))
        });
        match section {
            Some((section, field)) => {
                if let Value::Dict(_, fields) = nested
                    .entry(section.to_owned())
                    .or_insert_with(|| Value::from(Dict::new()))
                {
                    fields.insert(field, value);
                }
            }
            None => {
                nested.insert(key, value);
            }
        }
    }
    nested
}

/// `SHELTER_DATABASE_*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseSection {
    #[serde(deserialize_with = "lenient::parsed")]
    pub url: DatabaseUrl,
    pub max_connections: NonZeroU32,
    /// The longest wait for the database (a pooled connection, SQLite's write lock, or the
    /// answer to one operation) before a request gets 503.
    #[serde(rename = "timeout_seconds", deserialize_with = "lenient::seconds")]
    pub timeout: Duration,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self {
            url: "sqlite://shelter.db?mode=rwc"
                .parse()
                .expect("the default database URL parses"),
            max_connections: NonZeroU32::new(10).expect("ten is not zero"),
            timeout: Duration::from_secs(5),
        }
    }
}

/// How access tokens are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JwtAlgorithm {
    /// With `SHELTER_SECRET_KEY`; only Shelter can verify them.
    #[default]
    Hs256,
    /// With Ed25519 keys kept in the database; anyone can verify them from the JWKS.
    EdDsa,
}

impl std::str::FromStr for JwtAlgorithm {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "HS256" => Ok(Self::Hs256),
            "EdDSA" => Ok(Self::EdDsa),
            _ => Err("must be HS256 or EdDSA"),
        }
    }
}

/// How a rotated key reaches every instance before it signs. Not settings a deployment
/// changes (the contract promises a minute); tests shorten them.
#[derive(Debug, Clone, Copy)]
pub struct KeyTiming {
    /// A rotated key signs this long after it is created.
    pub activation_delay: Duration,
    /// Every instance reads the keys again this often; well under the delay.
    pub reload_every: Duration,
}

impl Default for KeyTiming {
    fn default() -> Self {
        Self {
            activation_delay: Duration::from_secs(30),
            reload_every: Duration::from_secs(10),
        }
    }
}

/// `SHELTER_JWT_*`: how access tokens are signed, and the names on every one.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JwtSection {
    #[serde(deserialize_with = "lenient::parsed")]
    pub algorithm: JwtAlgorithm,
    #[serde(skip)]
    pub keys: KeyTiming,
    /// The `iss` claim; unset: `SHELTER_PUBLIC_URL`, without a trailing slash.
    #[serde(deserialize_with = "lenient::optional_string")]
    pub issuer: Option<String>,
    /// The `aud` claim.
    #[serde(deserialize_with = "lenient::audience")]
    pub audience: String,
}

impl Default for JwtSection {
    fn default() -> Self {
        Self {
            algorithm: JwtAlgorithm::default(),
            keys: KeyTiming::default(),
            issuer: None,
            audience: "shelter".to_owned(),
        }
    }
}

/// `SHELTER_HASHING_*`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HashingSection {
    /// Password-hashing threads; unset: one per core.
    pub threads: Option<NonZeroUsize>,
    /// Hashing requests that may wait for a thread before the next gets 503; unset: 64
    /// per hashing thread.
    pub queue: Option<NonZeroUsize>,
}

/// `SHELTER_REDIS_*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RedisSection {
    #[serde(deserialize_with = "lenient::optional_parsed")]
    pub url: Option<RedisUrl>,
    /// Prefix of every Redis key and channel, so deployments can share one Redis.
    #[serde(deserialize_with = "lenient::string")]
    pub prefix: String,
}

impl Default for RedisSection {
    fn default() -> Self {
        Self {
            url: None,
            prefix: "shelter".into(),
        }
    }
}

/// `SHELTER_RATE_LIMIT_*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimitSection {
    pub enabled: bool,
    /// `POST /auth/token` per client address and username, per minute.
    pub login_per_minute: NonZeroU32,
    /// `POST /users` per client address, per hour.
    pub signup_per_hour: NonZeroU32,
    /// `POST /auth/password-recovery` per email, per hour.
    pub recovery_per_hour: NonZeroU32,
    /// With Redis unreachable: let requests through (true) or answer 503 (false).
    pub fail_open: bool,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        let count = |n| NonZeroU32::new(n).expect("a positive default");
        Self {
            enabled: true,
            login_per_minute: count(10),
            signup_per_hour: count(20),
            recovery_per_hour: count(5),
            fail_open: true,
        }
    }
}

/// Where emails go: `SHELTER_SMTP_*` configures the smtp one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    Log,
    File,
    Smtp,
}

/// `SHELTER_WEBAUTHN_*`: the passkeys' relying party. Unset values come from
/// `SHELTER_PUBLIC_URL` (its host, its origin).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WebauthnSection {
    pub rp_id: Option<String>,
    pub rp_name: Option<String>,
    #[serde(deserialize_with = "lenient::origins")]
    pub origins: Vec<String>,
}

/// `SHELTER_EMAIL_*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct EmailSection {
    pub transport: EmailTransport,
    pub dir: PathBuf,
    /// The sender of every email.
    #[serde(deserialize_with = "lenient::mailbox")]
    pub from: Mailbox,
    /// Where the links in emails point, for a deployment with its own front end; unset:
    /// `SHELTER_PUBLIC_URL`, whose hosted pages answer them.
    #[serde(deserialize_with = "lenient::optional_web_url")]
    pub link_base: Option<url::Url>,
    /// Delivery attempts per email before it is marked failed.
    pub max_attempts: NonZeroU32,
    /// Wait after the first failed attempt; it doubles with each further one.
    #[serde(rename = "retry_base_seconds", deserialize_with = "lenient::seconds")]
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    #[serde(rename = "retry_max_seconds", deserialize_with = "lenient::seconds")]
    pub retry_max: Duration,
    /// `SHELTER_EMAIL_CODE_ENABLED`: sign-in codes by email (`POST /auth/email-code`).
    pub code_enabled: bool,
}

impl Default for EmailSection {
    fn default() -> Self {
        Self {
            transport: EmailTransport::Log,
            dir: PathBuf::from("./emails"),
            from: "Shelter <noreply@localhost>"
                .parse()
                .expect("the default sender is a valid mailbox"),
            link_base: None,
            code_enabled: true,
            max_attempts: NonZeroU32::new(8).expect("eight is not zero"),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_mins(15),
        }
    }
}

/// `SHELTER_SMTP_*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SmtpSection {
    #[serde(deserialize_with = "lenient::optional_parsed")]
    pub url: Option<SmtpUrl>,
    /// Connect and command timeout.
    #[serde(rename = "timeout_seconds", deserialize_with = "lenient::seconds")]
    pub timeout: Duration,
}

impl Default for SmtpSection {
    fn default() -> Self {
        Self {
            url: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// `SHELTER_FIRST_SUPERUSER_*`: all three or none.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FirstSuperuserSection {
    #[serde(deserialize_with = "lenient::optional_parsed")]
    pub email: Option<EmailAddress>,
    #[serde(deserialize_with = "lenient::optional_parsed")]
    pub username: Option<Username>,
    #[serde(deserialize_with = "lenient::optional_parsed")]
    pub password: Option<Password>,
}

impl FirstSuperuserSection {
    /// Some of the three set, not all.
    pub fn is_partial(&self) -> bool {
        let set = [
            self.email.is_some(),
            self.username.is_some(),
            self.password.is_some(),
        ];
        set.contains(&true) && set.contains(&false)
    }

    /// The account to create, when one is configured.
    pub fn account(&self) -> Option<NewAccount> {
        Some(NewAccount {
            email: self.email.clone()?,
            username: self.username.clone()?,
            password: self.password.clone()?,
        })
    }
}

/// One `[[providers]]` entry (or one object of `SHELTER_PROVIDERS`' JSON list), as written;
/// [`super::Settings::providers`] checks it. `Debug` shows no secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderEntry {
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    #[serde(default, deserialize_with = "lenient::optional_secret")]
    pub client_secret: Option<secrecy::SecretString>,
    /// The name of an environment variable that holds the secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    #[serde(default = "default_link")]
    pub link: String,
    #[serde(default = "default_create_users")]
    pub create_users: bool,
}

impl std::fmt::Debug for ProviderEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderEntry")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

fn default_link() -> String {
    "confirm".into()
}

fn default_create_users() -> bool {
    true
}
