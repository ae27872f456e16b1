//! Settings, read once at start-up: built-in defaults < `shelter.toml` (or the file named by
//! `SHELTER_CONFIG`) < `.env` < `SHELTER_*` environment variables. A bad setting becomes
//! one line naming it; nothing reads the environment after this.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod sections;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use shelter_mail::Mailbox;

/// A setting that could not be used, as one line naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

impl ConfigError {
    fn new(key: &str, reason: impl fmt::Display) -> Self {
        Self {
            setting: format!("SHELTER_{}", key.to_uppercase()),
            reason: reason.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    Log,
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Every setting of the contract's "Running" section, plus pool sizing. `Debug` shows no
/// secret: they are `SecretString`s.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub env: Environment,
    #[serde(deserialize_with = "lenient::secret")]
    pub database_url: SecretString,
    pub database_max_connections: u32,
    /// The longest wait for the database (a pooled connection, SQLite's write lock, or the
    /// answer to one operation) before a request gets 503.
    pub database_timeout_seconds: u64,
    /// Every request's deadline; past it the answer is 503. PostgreSQL's
    /// `statement_timeout` is set to the same.
    pub request_timeout_seconds: u64,
    /// Password-hashing threads; `None`: one per core.
    pub hashing_threads: Option<usize>,
    /// Hashing requests that may wait for a thread before the next gets 503; `None`: 64
    /// per hashing thread.
    pub hashing_queue: Option<usize>,
    #[serde(deserialize_with = "lenient::optional_secret")]
    pub secret_key: Option<SecretString>,
    pub access_token_expire_minutes: u32,
    pub refresh_token_expire_days: u32,
    pub refresh_reuse_grace_seconds: u32,
    pub require_verified_email: bool,
    /// `*`, or origins in their canonical form (`scheme://host[:port]`, no slash).
    #[serde(deserialize_with = "lenient::origins")]
    pub allowed_origins: Vec<String>,
    #[serde(deserialize_with = "lenient::optional_string")]
    pub redis_url: Option<String>,
    pub email_transport: EmailTransport,
    pub email_dir: PathBuf,
    #[serde(deserialize_with = "lenient::optional_secret")]
    pub smtp_url: Option<SecretString>,
    /// The sender of every email, parsed here once.
    #[serde(deserialize_with = "lenient::mailbox")]
    pub email_from: Mailbox,
    /// Delivery attempts per email before it is marked failed.
    pub email_max_attempts: u32,
    /// Wait after the first failed attempt; it doubles with each further one.
    pub email_retry_base_seconds: u64,
    /// The longest wait between two attempts.
    pub email_retry_max_seconds: u64,
    /// Connect and command timeout for SMTP.
    pub smtp_timeout_seconds: u64,
    #[serde(deserialize_with = "lenient::string")]
    pub public_url: String,
    #[serde(deserialize_with = "lenient::optional_string")]
    pub first_superuser_email: Option<String>,
    #[serde(deserialize_with = "lenient::optional_string")]
    pub first_superuser_username: Option<String>,
    #[serde(deserialize_with = "lenient::optional_secret")]
    pub first_superuser_password: Option<SecretString>,
    pub rate_limit_enabled: bool,
    /// `POST /auth/token` per client address and username, per minute.
    pub rate_limit_login_per_minute: u32,
    /// `POST /users` per client address, per hour.
    pub rate_limit_signup_per_hour: u32,
    /// `POST /auth/password-recovery` per email, per hour.
    pub rate_limit_recovery_per_hour: u32,
    /// With Redis unreachable: let requests through (true) or answer 503 (false).
    pub rate_limit_fail_open: bool,
    /// Prefix of every Redis key and channel, so deployments can share one Redis.
    #[serde(deserialize_with = "lenient::string")]
    pub redis_prefix: String,
    /// Peers whose `X-Forwarded-For` is believed: addresses or CIDR ranges.
    #[serde(deserialize_with = "lenient::networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub log_format: LogFormat,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8000,
            env: Environment::Development,
            database_url: SecretString::from("sqlite://shelter.db?mode=rwc"),
            database_max_connections: 10,
            database_timeout_seconds: 5,
            request_timeout_seconds: 30,
            hashing_threads: None,
            hashing_queue: None,
            secret_key: None,
            access_token_expire_minutes: 30,
            refresh_token_expire_days: 30,
            refresh_reuse_grace_seconds: 10,
            require_verified_email: false,
            allowed_origins: Vec::new(),
            redis_url: None,
            email_transport: EmailTransport::Log,
            email_dir: PathBuf::from("./emails"),
            smtp_url: None,
            email_from: "Shelter <noreply@localhost>"
                .parse()
                .expect("the default sender is a valid mailbox"),
            email_max_attempts: 8,
            email_retry_base_seconds: 5,
            email_retry_max_seconds: 900,
            smtp_timeout_seconds: 10,
            public_url: "http://127.0.0.1:8000".into(),
            first_superuser_email: None,
            first_superuser_username: None,
            first_superuser_password: None,
            rate_limit_enabled: true,
            rate_limit_login_per_minute: 10,
            rate_limit_signup_per_hour: 20,
            rate_limit_recovery_per_hour: 5,
            rate_limit_fail_open: true,
            redis_prefix: "shelter".into(),
            trusted_proxies: Vec::new(),
            log_format: LogFormat::Pretty,
        }
    }
}

/// The smallest key length HS256 is given; shorter keys are brute-forceable.
pub const MIN_SECRET_KEY_BYTES: usize = 32;

impl Settings {
    /// Reads the settings from the working directory and the process environment.
    ///
    /// # Errors
    /// The first unusable setting, named.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var_os("SHELTER_CONFIG").map(PathBuf::from);
        let required = file.is_some();
        let file = file.unwrap_or_else(|| PathBuf::from("shelter.toml"));
        if required && !file.is_file() {
            return Err(ConfigError::new(
                "config",
                format!("{} does not exist", file.display()),
            ));
        }
        let figment = Figment::new()
            .merge(Toml::file(&file))
            .merge(Serialized::defaults(dotenv(Path::new(".env"))?))
            .merge(Env::prefixed("SHELTER_").ignore(&["config"]));
        let settings: Self = figment.extract().map_err(|error| {
            let key = error.path.join("_");
            let key = if key.is_empty() { "config".into() } else { key };
            ConfigError::new(&key, error.kind)
        })?;
        settings.validate()?;
        Ok(settings)
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one flat check per setting, in the contract's order"
    )]
    fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database_url.expose_secret();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "database_url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        url::Url::parse(url).map_err(|e| ConfigError::new("database_url", e))?;
        if self.database_max_connections == 0 {
            return Err(ConfigError::new(
                "database_max_connections",
                "must be at least 1",
            ));
        }
        for (key, value) in [
            (
                "database_timeout_seconds",
                Some(self.database_timeout_seconds),
            ),
            (
                "request_timeout_seconds",
                Some(self.request_timeout_seconds),
            ),
            ("hashing_threads", self.hashing_threads.map(|n| n as u64)),
            ("hashing_queue", self.hashing_queue.map(|n| n as u64)),
        ] {
            if value == Some(0) {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        match &self.secret_key {
            Some(key) if key.expose_secret().len() < MIN_SECRET_KEY_BYTES => {
                return Err(ConfigError::new(
                    "secret_key",
                    format!("must be at least {MIN_SECRET_KEY_BYTES} bytes"),
                ));
            }
            None if self.env == Environment::Production => {
                return Err(ConfigError::new("secret_key", "is required in production"));
            }
            _ => {}
        }
        if self.access_token_expire_minutes == 0 {
            return Err(ConfigError::new(
                "access_token_expire_minutes",
                "must be at least 1",
            ));
        }
        if self.refresh_token_expire_days == 0 {
            return Err(ConfigError::new(
                "refresh_token_expire_days",
                "must be at least 1",
            ));
        }
        if let Some(redis) = &self.redis_url {
            let parsed = url::Url::parse(redis).map_err(|e| ConfigError::new("redis_url", e))?;
            if !matches!(parsed.scheme(), "redis" | "rediss") {
                return Err(ConfigError::new(
                    "redis_url",
                    "must start with redis:// or rediss://",
                ));
            }
        }
        match (&self.email_transport, &self.smtp_url) {
            (EmailTransport::Smtp, None) => {
                return Err(ConfigError::new(
                    "smtp_url",
                    "is required with SHELTER_EMAIL_TRANSPORT=smtp",
                ));
            }
            (_, Some(smtp)) => {
                let parsed = url::Url::parse(smtp.expose_secret())
                    .map_err(|_| ConfigError::new("smtp_url", "is not a URL"))?;
                if !matches!(parsed.scheme(), "smtp" | "smtps") {
                    return Err(ConfigError::new(
                        "smtp_url",
                        "must start with smtp:// or smtps://",
                    ));
                }
            }
            _ => {}
        }
        for (key, value) in [
            ("email_max_attempts", u64::from(self.email_max_attempts)),
            ("email_retry_base_seconds", self.email_retry_base_seconds),
            ("email_retry_max_seconds", self.email_retry_max_seconds),
            ("smtp_timeout_seconds", self.smtp_timeout_seconds),
            (
                "rate_limit_login_per_minute",
                u64::from(self.rate_limit_login_per_minute),
            ),
            (
                "rate_limit_signup_per_hour",
                u64::from(self.rate_limit_signup_per_hour),
            ),
            (
                "rate_limit_recovery_per_hour",
                u64::from(self.rate_limit_recovery_per_hour),
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        let public =
            url::Url::parse(&self.public_url).map_err(|e| ConfigError::new("public_url", e))?;
        if !matches!(public.scheme(), "http" | "https") {
            return Err(ConfigError::new(
                "public_url",
                "must be an http:// or https:// URL",
            ));
        }
        let first = [
            self.first_superuser_email.is_some(),
            self.first_superuser_username.is_some(),
            self.first_superuser_password.is_some(),
        ];
        if first.iter().any(|set| *set) && !first.iter().all(|set| *set) {
            return Err(ConfigError::new(
                "first_superuser_email",
                "SHELTER_FIRST_SUPERUSER_EMAIL, _USERNAME and _PASSWORD must be set together",
            ));
        }
        Ok(())
    }

    pub fn database_timeout(&self) -> Duration {
        Duration::from_secs(self.database_timeout_seconds)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }
}

/// The `SHELTER_*` entries of a `.env` file, keyed like the environment provider keys them.
fn dotenv(path: &Path) -> Result<Dict, ConfigError> {
    let mut dict = Dict::new();
    if !path.is_file() {
        return Ok(dict);
    }
    let entries = dotenvy::from_path_iter(path)
        .map_err(|e| ConfigError::new("config", format!(".env: {e}")))?;
    for entry in entries {
        let (key, value) = entry.map_err(|e| ConfigError::new("config", format!(".env: {e}")))?;
        if let Some(name) = key.strip_prefix("SHELTER_") {
            let name = name.to_lowercase();
            if name != "config" {
                let parsed: Value = value.parse().unwrap_or_else(|_| Value::from(value.clone()));
                dict.insert(name, parsed);
            }
        }
    }
    Ok(dict)
}

/// Deserializers that accept a scalar where a string is wanted: environment values are
/// typed by their look, so `SHELTER_FIRST_SUPERUSER_PASSWORD=12345678` arrives as a number.
mod lenient {
    use std::fmt;

    use secrecy::SecretString;
    use serde::de::{self, Deserializer, SeqAccess, Visitor};

    struct Text;

    impl Visitor<'_> for Text {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
            Ok(v.to_string())
        }
    }

    struct TextList;

    impl<'de> Visitor<'de> for TextList {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a comma-separated string or a list of strings")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
            Ok(v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                items.push(item.trim().to_owned());
            }
            Ok(items)
        }
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_any(Text)
    }

    pub fn optional_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        // An empty value means "unset", as it does for most tools reading the environment.
        Ok(Some(string(d)?).filter(|s| !s.is_empty()))
    }

    pub fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
        string(d).map(SecretString::from)
    }

    pub fn optional_secret<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SecretString>, D::Error> {
        optional_string(d).map(|s| s.map(SecretString::from))
    }

    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_any(TextList)
    }

    /// CORS origins, each checked and put in the canonical form browsers send, once.
    pub fn origins<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        list(d)?
            .into_iter()
            .map(|origin| {
                if origin == "*" {
                    return Ok(origin);
                }
                let canonical = url::Url::parse(&origin)
                    .map_err(|e| de::Error::custom(format!("{origin:?}: {e}")))?
                    .origin()
                    .ascii_serialization();
                if canonical == origin.trim_end_matches('/') {
                    Ok(canonical)
                } else {
                    Err(de::Error::custom(format!(
                        "{origin:?} is not an origin (scheme://host[:port])"
                    )))
                }
            })
            .collect()
    }

    /// `noreply@example.com` or `Name <noreply@example.com>`.
    pub fn mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<shelter_mail::Mailbox, D::Error> {
        let text = string(d)?;
        text.parse().map_err(|_| {
            de::Error::custom(format!(
                "{text:?} is not an email address (or `Name <address>`)"
            ))
        })
    }

    /// A list of IP addresses or CIDR ranges, parsed here once: an address is the range
    /// of just itself.
    pub fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
        list(d)?
            .iter()
            .map(|entry| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        de::Error::custom(format!(
                            "{entry:?} is neither an IP address nor a CIDR range"
                        ))
                    })
            })
            .collect()
    }
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment's own error"
)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load_in(jail: &Jail) -> Result<Settings, ConfigError> {
        let _ = jail;
        Settings::load()
    }

    #[test]
    fn defaults_match_the_contract() {
        Jail::expect_with(|jail| {
            let s = load_in(jail).expect("defaults load");
            assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 8000));
            assert_eq!(s.env, Environment::Development);
            assert_eq!(
                s.database_url.expose_secret(),
                "sqlite://shelter.db?mode=rwc"
            );
            assert!(s.secret_key.is_none());
            assert_eq!(s.access_token_expire_minutes, 30);
            assert_eq!(s.refresh_token_expire_days, 30);
            assert_eq!(s.refresh_reuse_grace_seconds, 10);
            assert!(!s.require_verified_email);
            assert!(s.allowed_origins.is_empty());
            assert_eq!(s.email_transport, EmailTransport::Log);
            assert_eq!(s.email_dir, PathBuf::from("./emails"));
            assert_eq!(s.email_from.to_string(), "Shelter <noreply@localhost>");
            assert_eq!(s.public_url, "http://127.0.0.1:8000");
            assert!(s.rate_limit_enabled);
            assert_eq!(s.log_format, LogFormat::Pretty);
            Ok(())
        });
    }

    #[test]
    fn sources_override_in_order_file_then_dotenv_then_environment() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "shelter.toml",
                "port = 9001\nhost = \"0.0.0.0\"\naccess_token_expire_minutes = 5\nallowed_origins = [\"https://a.example\"]",
            )?;
            jail.create_file(
                ".env",
                "SHELTER_PORT=9002\nSHELTER_ACCESS_TOKEN_EXPIRE_MINUTES=6\nOTHER=1",
            )?;
            jail.set_env("SHELTER_PORT", "9003");
            let s = load_in(jail).expect("loads");
            assert_eq!(s.port, 9003, "environment beats .env and the file");
            assert_eq!(s.access_token_expire_minutes, 6, ".env beats the file");
            assert_eq!(s.host, "0.0.0.0", "the file beats the defaults");
            assert_eq!(s.allowed_origins, ["https://a.example"]);
            Ok(())
        });
    }

    #[test]
    fn shelter_config_names_another_file_which_must_exist() {
        Jail::expect_with(|jail| {
            jail.create_file("other.toml", "port = 9100")?;
            jail.set_env("SHELTER_CONFIG", "other.toml");
            assert_eq!(load_in(jail).expect("loads").port, 9100);
            jail.set_env("SHELTER_CONFIG", "missing.toml");
            let error = load_in(jail).expect_err("missing file");
            assert_eq!(error.setting, "SHELTER_CONFIG");
            Ok(())
        });
    }

    #[test]
    fn lists_and_numeric_secrets_come_from_plain_environment_strings() {
        Jail::expect_with(|jail| {
            jail.set_env(
                "SHELTER_ALLOWED_ORIGINS",
                "https://a.example, http://localhost:3000",
            );
            jail.set_env("SHELTER_FIRST_SUPERUSER_EMAIL", "admin@example.com");
            jail.set_env("SHELTER_FIRST_SUPERUSER_USERNAME", "12345");
            jail.set_env("SHELTER_FIRST_SUPERUSER_PASSWORD", "12345678");
            let s = load_in(jail).expect("loads");
            assert_eq!(
                s.allowed_origins,
                ["https://a.example", "http://localhost:3000"]
            );
            assert_eq!(s.first_superuser_username.as_deref(), Some("12345"));
            assert_eq!(
                s.first_superuser_password
                    .as_ref()
                    .map(|p| p.expose_secret().to_owned()),
                Some("12345678".to_owned())
            );
            Ok(())
        });
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let cases: &[(&str, &str, &str)] = &[
            ("SHELTER_PORT", "eighty", "SHELTER_PORT"),
            ("SHELTER_PORT", "70000", "SHELTER_PORT"),
            ("SHELTER_SECRET_KEY", "short", "SHELTER_SECRET_KEY"),
            (
                "SHELTER_EMAIL_TRANSPORT",
                "pigeon",
                "SHELTER_EMAIL_TRANSPORT",
            ),
            ("SHELTER_DATABASE_URL", "mysql://x", "SHELTER_DATABASE_URL"),
            ("SHELTER_ENV", "staging", "SHELTER_ENV"),
            ("SHELTER_REDIS_URL", "not a url", "SHELTER_REDIS_URL"),
            (
                "SHELTER_ALLOWED_ORIGINS",
                "https://a.example/path",
                "SHELTER_ALLOWED_ORIGINS",
            ),
            (
                "SHELTER_TRUSTED_PROXIES",
                "10.0.0.0/99",
                "SHELTER_TRUSTED_PROXIES",
            ),
            ("SHELTER_LOG_FORMAT", "xml", "SHELTER_LOG_FORMAT"),
            ("SHELTER_PUBLIC_URL", "ftp://x", "SHELTER_PUBLIC_URL"),
            ("SHELTER_EMAIL_FROM", "nobody at all", "SHELTER_EMAIL_FROM"),
        ];
        for (variable, value, named) in cases {
            Jail::expect_with(|jail| {
                jail.set_env(variable, value);
                let error = load_in(jail).expect_err(variable);
                assert_eq!(&error.setting, named, "{variable}={value}: {error}");
                assert!(!error.to_string().contains('\n'), "one line: {error}");
                Ok(())
            });
        }
    }

    #[test]
    fn production_refuses_to_start_without_a_secret() {
        Jail::expect_with(|jail| {
            jail.set_env("SHELTER_ENV", "production");
            let error = load_in(jail).expect_err("no secret");
            assert_eq!(error.setting, "SHELTER_SECRET_KEY");
            jail.set_env("SHELTER_SECRET_KEY", "k".repeat(32));
            load_in(jail).expect("secret given");
            Ok(())
        });
    }

    #[test]
    fn smtp_needs_a_url() {
        Jail::expect_with(|jail| {
            jail.set_env("SHELTER_EMAIL_TRANSPORT", "smtp");
            assert_eq!(
                load_in(jail).expect_err("no url").setting,
                "SHELTER_SMTP_URL"
            );
            jail.set_env(
                "SHELTER_SMTP_URL",
                "smtp://user:pass@mail.example:587?tls=required",
            );
            load_in(jail).expect("url given");
            Ok(())
        });
    }

    #[test]
    fn debug_output_shows_no_secret() {
        Jail::expect_with(|jail| {
            jail.set_env("SHELTER_SECRET_KEY", "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t");
            jail.set_env(
                "SHELTER_DATABASE_URL",
                "postgres://app:dbpassw0rd@db/shelter",
            );
            let debug = format!("{:?}", load_in(jail).expect("loads"));
            assert!(
                !debug.contains("s3cr3t") && !debug.contains("dbpassw0rd"),
                "{debug}"
            );
            Ok(())
        });
    }
}
