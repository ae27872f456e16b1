//! Settings, read once at start-up: built-in defaults < `shelter.toml` (or the file named by
//! `SHELTER_CONFIG`) < `.env` < `SHELTER_*` environment variables. A bad setting becomes
//! one line naming it; nothing reads the environment after this.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod adapters;
mod lenient;
pub mod sections;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

pub use lenient::MIN_SECRET_KEY_BYTES;
pub use sections::{
    DatabaseSection, EmailSection, EmailTransport, FirstSuperuserSection, HashingSection,
    JwtAlgorithm, JwtSection, KeyTiming, RateLimitSection, RedisSection, SmtpSection,
    WebauthnSection,
};

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
pub enum LogFormat {
    Pretty,
    Json,
}

/// Every setting of the contract's "Running" section, typed as it is read. The settings of
/// one adapter share a prefix (`SHELTER_DATABASE_*`, `SHELTER_EMAIL_*`, …) and arrive as
/// that adapter's section; see [`sections`]. `Debug` shows no secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub env: Environment,
    /// The HS256 key, at least [`MIN_SECRET_KEY_BYTES`] long.
    #[serde(deserialize_with = "lenient::signing_key")]
    pub secret_key: Option<SecretString>,
    /// Every request's deadline; past it the answer is 503. PostgreSQL's
    /// `statement_timeout` is set to the same.
    #[serde(
        rename = "request_timeout_seconds",
        deserialize_with = "lenient::seconds"
    )]
    pub request_timeout: Duration,
    #[serde(
        rename = "access_token_expire_minutes",
        deserialize_with = "lenient::minutes"
    )]
    pub access_token_lifetime: Duration,
    #[serde(
        rename = "refresh_token_expire_days",
        deserialize_with = "lenient::days"
    )]
    pub refresh_token_lifetime: Duration,
    #[serde(
        rename = "refresh_reuse_grace_seconds",
        deserialize_with = "lenient::seconds_or_zero"
    )]
    pub refresh_reuse_grace: Duration,
    pub require_verified_email: bool,
    /// `SHELTER_OAUTH_DYNAMIC_REGISTRATION`: anyone may register a public OAuth client at
    /// `POST /oauth/register` (RFC 7591).
    pub oauth_dynamic_registration: bool,
    /// `*`, or origins in their canonical form (`scheme://host[:port]`, no slash).
    #[serde(deserialize_with = "lenient::origins")]
    pub allowed_origins: Vec<String>,
    /// Where clients reach this service; the base of the links in emails.
    #[serde(deserialize_with = "lenient::web_url")]
    pub public_url: Url,
    /// Peers whose `X-Forwarded-For` is believed: addresses or CIDR ranges.
    #[serde(deserialize_with = "lenient::networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub log_format: LogFormat,
    /// How long a user's row may be served from memory to authenticate a request; zero:
    /// no cache. Every change to the user drops it at once, on every instance.
    #[serde(
        rename = "user_cache_seconds",
        deserialize_with = "lenient::seconds_or_zero"
    )]
    pub user_cache: Duration,
    /// How long audit events are kept.
    #[serde(rename = "audit_retention_days", deserialize_with = "lenient::days")]
    pub audit_retention: Duration,
    pub database: DatabaseSection,
    pub jwt: JwtSection,
    pub hashing: HashingSection,
    pub redis: RedisSection,
    pub rate_limit: RateLimitSection,
    pub email: EmailSection,
    pub smtp: SmtpSection,
    pub first_superuser: FirstSuperuserSection,
    pub webauthn: WebauthnSection,
    /// Upstream OpenID Connect providers; see [`Self::providers`].
    #[serde(deserialize_with = "lenient::json_list")]
    pub providers: Vec<sections::ProviderEntry>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8000,
            env: Environment::Development,
            secret_key: None,
            request_timeout: Duration::from_secs(30),
            access_token_lifetime: Duration::from_mins(30),
            refresh_token_lifetime: Duration::from_hours(30 * 24),
            refresh_reuse_grace: Duration::from_secs(10),
            require_verified_email: false,
            oauth_dynamic_registration: false,
            allowed_origins: Vec::new(),
            public_url: Url::parse("http://127.0.0.1:8000").expect("the default URL parses"),
            trusted_proxies: Vec::new(),
            log_format: LogFormat::Pretty,
            user_cache: Duration::from_secs(30),
            audit_retention: Duration::from_hours(90 * 24),
            database: DatabaseSection::default(),
            jwt: JwtSection::default(),
            hashing: HashingSection::default(),
            redis: RedisSection::default(),
            rate_limit: RateLimitSection::default(),
            email: EmailSection::default(),
            smtp: SmtpSection::default(),
            first_superuser: FirstSuperuserSection::default(),
            webauthn: WebauthnSection::default(),
            providers: Vec::new(),
        }
    }
}

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
        let flat = Figment::new()
            .merge(Toml::file(&file))
            .merge(Serialized::defaults(dotenv(Path::new(".env"))?))
            .merge(Env::prefixed("SHELTER_").ignore(&["config"]));
        let flat: Dict = flat.extract().map_err(named)?;
        let settings: Self = Figment::from(Serialized::defaults(sections::nest(flat)))
            .extract()
            .map_err(named)?;
        settings.validate()?;
        Ok(settings)
    }

    /// What no single setting can check: the rules between settings.
    fn validate(&self) -> Result<(), ConfigError> {
        if self.secret_key.is_none() && self.env == Environment::Production {
            return Err(ConfigError::new("secret_key", "is required in production"));
        }
        if self.secret_key.is_none() && self.jwt.algorithm == JwtAlgorithm::EdDsa {
            return Err(ConfigError::new(
                "secret_key",
                "is required with SHELTER_JWT_ALGORITHM=EdDSA: it seals the signing keys in the database",
            ));
        }
        self.mail()?;
        self.relying_party()?;
        self.providers()?;
        if self.first_superuser.is_partial() {
            return Err(ConfigError::new(
                "first_superuser_email",
                "SHELTER_FIRST_SUPERUSER_EMAIL, _USERNAME and _PASSWORD must be set together",
            ));
        }
        Ok(())
    }
}

/// A figment error as the setting it is about: a section's field path joined by `_` is
/// the variable's name.
fn named(error: figment::Error) -> ConfigError {
    let key = error.path.join("_");
    let key = if key.is_empty() { "config".into() } else { key };
    ConfigError::new(&key, error.kind)
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

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment's own error"
)]
mod tests {
    use super::*;
    use figment::Jail;
    use shelter_domain::{Password, Username};

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
            assert_eq!(s.database.url.expose(), "sqlite://shelter.db?mode=rwc");
            assert!(s.secret_key.is_none());
            assert_eq!(s.access_token_lifetime, Duration::from_mins(30));
            assert_eq!(s.refresh_token_lifetime, Duration::from_hours(30 * 24));
            assert_eq!(s.refresh_reuse_grace, Duration::from_secs(10));
            assert!(!s.require_verified_email);
            assert!(s.allowed_origins.is_empty());
            assert_eq!(s.email.transport, EmailTransport::Log);
            assert_eq!(s.email.dir, PathBuf::from("./emails"));
            assert_eq!(s.email.from.to_string(), "Shelter <noreply@localhost>");
            assert_eq!(s.public_url.as_str(), "http://127.0.0.1:8000/");
            assert!(s.rate_limit.enabled);
            assert_eq!(s.log_format, LogFormat::Pretty);
            Ok(())
        });
    }

    #[test]
    fn sources_override_in_order_file_then_dotenv_then_environment() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "shelter.toml",
                "port = 9001\nhost = \"0.0.0.0\"\naccess_token_expire_minutes = 5\nallowed_origins = [\"https://a.example\"]\ndatabase_max_connections = 3\nemail_from = \"a@file.example\"",
            )?;
            jail.create_file(
                ".env",
                "SHELTER_PORT=9002\nSHELTER_ACCESS_TOKEN_EXPIRE_MINUTES=6\nOTHER=1\nSHELTER_RATE_LIMIT_LOGIN_PER_MINUTE=7",
            )?;
            jail.set_env("SHELTER_PORT", "9003");
            jail.set_env("SHELTER_EMAIL_FROM", "b@env.example");
            let s = load_in(jail).expect("loads");
            assert_eq!(s.port, 9003, "environment beats .env and the file");
            assert_eq!(
                s.access_token_lifetime,
                Duration::from_mins(6),
                ".env beats the file"
            );
            assert_eq!(s.host, "0.0.0.0", "the file beats the defaults");
            assert_eq!(s.allowed_origins, ["https://a.example"]);
            assert_eq!(
                s.database.max_connections.get(),
                3,
                "a section from the file"
            );
            assert_eq!(
                s.rate_limit.login_per_minute.get(),
                7,
                "a section from .env"
            );
            assert_eq!(s.email.from.to_string(), "b@env.example", "and overridden");
            Ok(())
        });
    }

    #[test]
    fn token_names_default_to_the_public_url_and_shelter() {
        Jail::expect_with(|jail| {
            jail.set_env("SHELTER_PUBLIC_URL", "https://auth.example.com/");
            let s = load_in(jail).expect("loads");
            assert_eq!(s.jwt.algorithm, JwtAlgorithm::Hs256);
            let names = s.token_audience();
            assert_eq!(
                names.issuer, "https://auth.example.com",
                "no trailing slash"
            );
            assert_eq!(names.audience, "shelter");
            jail.set_env("SHELTER_JWT_ISSUER", "https://id.example.com");
            jail.set_env("SHELTER_JWT_AUDIENCE", "billing");
            jail.set_env("SHELTER_JWT_ALGORITHM", "EdDSA");
            jail.set_env(
                "SHELTER_SECRET_KEY",
                "a-secret-key-that-is-long-enough-0123456789",
            );
            let s = load_in(jail).expect("loads");
            assert_eq!(s.jwt.algorithm, JwtAlgorithm::EdDsa);
            let names = s.token_audience();
            assert_eq!(
                (names.issuer.as_str(), names.audience.as_str()),
                ("https://id.example.com", "billing")
            );
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
            assert_eq!(
                s.first_superuser.username.as_ref().map(Username::as_str),
                Some("12345")
            );
            assert_eq!(
                s.first_superuser.password.as_ref().map(Password::expose),
                Some("12345678")
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
            (
                "SHELTER_DATABASE_MAX_CONNECTIONS",
                "0",
                "SHELTER_DATABASE_MAX_CONNECTIONS",
            ),
            (
                "SHELTER_DATABASE_TIMEOUT_SECONDS",
                "0",
                "SHELTER_DATABASE_TIMEOUT_SECONDS",
            ),
            ("SHELTER_HASHING_THREADS", "0", "SHELTER_HASHING_THREADS"),
            (
                "SHELTER_RATE_LIMIT_LOGIN_PER_MINUTE",
                "-3",
                "SHELTER_RATE_LIMIT_LOGIN_PER_MINUTE",
            ),
            (
                "SHELTER_ACCESS_TOKEN_EXPIRE_MINUTES",
                "0",
                "SHELTER_ACCESS_TOKEN_EXPIRE_MINUTES",
            ),
            ("SHELTER_SMTP_URL", "ftp://mail.example", "SHELTER_SMTP_URL"),
            ("SHELTER_REDIS_URL", "http://cache", "SHELTER_REDIS_URL"),
            (
                "SHELTER_FIRST_SUPERUSER_EMAIL",
                "not-an-email",
                "SHELTER_FIRST_SUPERUSER_EMAIL",
            ),
            (
                "SHELTER_FIRST_SUPERUSER_PASSWORD",
                "short",
                "SHELTER_FIRST_SUPERUSER_PASSWORD",
            ),
            ("SHELTER_JWT_ALGORITHM", "RS256", "SHELTER_JWT_ALGORITHM"),
            ("SHELTER_JWT_ALGORITHM", "eddsa", "SHELTER_JWT_ALGORITHM"),
            ("SHELTER_JWT_AUDIENCE", " ", "SHELTER_JWT_AUDIENCE"),
            // EdDSA seals its keys with the secret key, so it cannot do without one.
            ("SHELTER_JWT_ALGORITHM", "EdDSA", "SHELTER_SECRET_KEY"),
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

    #[test]
    fn providers_come_from_the_file_or_as_json_from_the_environment() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "shelter.toml",
                r#"
                [[providers]]
                id = "gitlab"
                name = "GitLab"
                issuer = "https://gitlab.example.com"
                client_id = "shelter"
                client_secret_env = "GITLAB_SECRET"
                link = "verified_email"
                "#,
            )?;
            jail.set_env("GITLAB_SECRET", "s3cret");
            let settings = load_in(jail).expect("loads");
            let providers = settings.providers().expect("providers");
            assert_eq!(providers.len(), 1);
            let gitlab = &providers[0];
            assert_eq!(gitlab.provider.id.as_str(), "gitlab");
            assert_eq!(
                gitlab.provider.link,
                shelter_domain::identities::LinkPolicy::VerifiedEmail
            );
            assert!(gitlab.provider.create_users, "by default");
            assert_eq!(gitlab.scopes, ["openid", "email", "profile"]);
            assert!(
                !format!("{settings:?}").contains("s3cret"),
                "no secret in Debug"
            );

            jail.set_env(
                "SHELTER_PROVIDERS",
                r#"[{"id": "corp", "name": "Corp", "issuer": "http://127.0.0.1:9000", "client_id": "a", "client_secret": "b", "link": "never", "create_users": false}]"#,
            );
            let settings = load_in(jail).expect("loads");
            let providers = settings.providers().expect("providers");
            assert_eq!(providers[0].provider.id.as_str(), "corp");
            assert!(!providers[0].provider.create_users);
            Ok(())
        });
    }

    #[test]
    fn a_bad_provider_entry_is_one_line_naming_it() {
        let entry = |fields: &str| {
            format!(
                r#"[{{"id": "corp", "name": "Corp", "client_id": "a", "client_secret": "b", {fields}}}]"#
            )
        };
        for (fields, setting) in [
            (
                r#""issuer": "http://corp.example.com""#,
                "providers[corp].issuer",
            ),
            (r#""issuer": "not a url""#, "providers[corp].issuer"),
            (
                r#""issuer": "https://corp.example", "link": "auto""#,
                "providers[corp].link",
            ),
            (
                r#""issuer": "https://corp.example", "scopes": ["email"]"#,
                "providers[corp].scopes",
            ),
            (
                r#""issuer": "https://corp.example", "client_secret_env": "UNSET_SECRET""#,
                "providers[corp].client_secret",
            ),
        ] {
            Jail::expect_with(|jail| {
                jail.set_env("SHELTER_PROVIDERS", entry(fields));
                let error = load_in(jail).expect_err(fields);
                assert_eq!(error.setting, setting, "{fields}: {error}");
                assert!(!error.to_string().contains('\n'), "one line: {error}");
                Ok(())
            });
        }
        Jail::expect_with(|jail| {
            jail.set_env("SHELTER_PROVIDERS", r#"[{"id": "Corp!", "name": "x", "issuer": "https://a.example", "client_id": "a", "client_secret": "b"}]"#);
            assert_eq!(
                load_in(jail).expect_err("a bad id").setting,
                "providers[Corp!].id"
            );
            jail.set_env("SHELTER_PROVIDERS", r#"[{"id": "corp", "nmae": "typo"}]"#);
            let error = load_in(jail).expect_err("an unknown field");
            assert_eq!(error.setting, "SHELTER_PROVIDERS");
            assert!(error.reason.contains("nmae"), "{error}");
            Ok(())
        });
    }
}
