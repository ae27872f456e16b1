//! Sessions: one per successful login, carried on by every refresh of its tokens. A
//! session's id is the `sid` claim of every access token it issued, so ending the session
//! ends those tokens too, not only its refresh tokens.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::user::UserId;

/// The id of a session (the `sid` claim). Random, so it reveals nothing and cannot be
/// guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(uuid::Uuid);

impl SessionId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a session id")]
pub struct InvalidSessionId;

/// Only the canonical (lower-case, hyphenated) form, so one session has one spelling.
impl FromStr for SessionId {
    type Err = InvalidSessionId;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::try_parse(raw)
            .ok()
            .filter(|id| id.hyphenated().to_string() == raw)
            .map(Self)
            .ok_or(InvalidSessionId)
    }
}

/// The longest user agent kept with a session; browsers send about 150 characters.
pub const MAX_USER_AGENT_CHARS: usize = 512;

/// How a sign-in proved who it was: the `amr` claim (RFC 8176) of the ID tokens issued
/// from it, so a relying party can ask whether a second factor was used, and the method
/// `login_succeeded` records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SignInMethod {
    #[default]
    Password,
    /// A password, then a TOTP or recovery code.
    PasswordAndTotp,
    /// A password, then a passkey as the second step.
    PasswordAndPasskey,
    /// A passkey with user verification: a key the user holds and a PIN or biometric that
    /// unlocked it, two factors in one gesture.
    Passkey,
    /// A code or link sent by email: one factor.
    EmailCode,
    /// An emailed code, then a TOTP or recovery code.
    EmailCodeAndTotp,
    /// An emailed code, then a passkey.
    EmailCodeAndPasskey,
    /// An account at an upstream OpenID Connect provider: one factor here, whatever the
    /// provider asked (Shelter cannot see it).
    Provider,
    /// A provider, then a TOTP or recovery code.
    ProviderAndTotp,
    /// A provider, then a passkey.
    ProviderAndPasskey,
}

impl SignInMethod {
    const ALL: [Self; 10] = [
        Self::Password,
        Self::PasswordAndTotp,
        Self::PasswordAndPasskey,
        Self::Passkey,
        Self::EmailCode,
        Self::EmailCodeAndTotp,
        Self::EmailCodeAndPasskey,
        Self::Provider,
        Self::ProviderAndTotp,
        Self::ProviderAndPasskey,
    ];

    /// The RFC 8176 values, space-separated as the sessions table keeps them.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::PasswordAndTotp => "pwd otp mfa",
            Self::PasswordAndPasskey => "pwd hwk mfa",
            Self::Passkey => "hwk user mfa",
            Self::EmailCode => "otp",
            Self::EmailCodeAndTotp => "otp mfa",
            Self::EmailCodeAndPasskey => "otp hwk mfa",
            // RFC 8176 has no value for federation; "fed" is the one in common use.
            Self::Provider => "fed",
            Self::ProviderAndTotp => "fed otp mfa",
            Self::ProviderAndPasskey => "fed hwk mfa",
        }
    }

    /// A stored value; an unknown one (written by a newer version) reads as a password.
    pub fn from_stored(raw: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|method| method.as_str() == raw)
            .unwrap_or(Self::Password)
    }

    pub fn amr(self) -> Vec<&'static str> {
        self.as_str().split(' ').collect()
    }

    /// The first factor, as `login_succeeded` names it.
    pub fn first_factor(self) -> &'static str {
        match self {
            Self::Password | Self::PasswordAndTotp | Self::PasswordAndPasskey => "password",
            Self::Passkey => "passkey",
            Self::EmailCode | Self::EmailCodeAndTotp | Self::EmailCodeAndPasskey => "email_code",
            Self::Provider | Self::ProviderAndTotp | Self::ProviderAndPasskey => "provider",
        }
    }

    /// This first factor followed by a TOTP (or recovery) code.
    #[must_use]
    pub fn then_totp(self) -> Self {
        match self.first_factor() {
            "email_code" => Self::EmailCodeAndTotp,
            "provider" => Self::ProviderAndTotp,
            _ => Self::PasswordAndTotp,
        }
    }

    /// This first factor followed by a passkey.
    #[must_use]
    pub fn then_passkey(self) -> Self {
        match self.first_factor() {
            "email_code" => Self::EmailCodeAndPasskey,
            "provider" => Self::ProviderAndPasskey,
            _ => Self::PasswordAndPasskey,
        }
    }
}

/// A login waiting for its second factor (the `mfa_token` of `POST /auth/mfa`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub user: crate::user::UserId,
    /// The first factor, already proven.
    pub first: SignInMethod,
    /// The ceremony of a passkey offered for this step, once `POST /auth/mfa/options` asked.
    pub passkey_ceremony: Option<String>,
}

/// Where and how a login comes from, as recorded with its session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address as the rate limiter sees it (after trusted proxies).
    pub ip: Option<IpAddr>,
    /// At most [`MAX_USER_AGENT_CHARS`], without control characters.
    user_agent: Option<String>,
    pub method: SignInMethod,
}

impl ClientInfo {
    /// Keeps what a user agent header says in a form that is safe to store and show.
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent
            .map(|agent| {
                agent
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT_CHARS)
                    .collect::<String>()
            })
            .filter(|agent| !agent.trim().is_empty());
        Self {
            ip,
            user_agent,
            method: SignInMethod::Password,
        }
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }
}

/// A live session as its user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user: UserId,
    pub client: ClientInfo,
    pub created_at: DateTime<Utc>,
    /// The last login or refresh; using an access token does not count (that would be a
    /// write on every request).
    pub last_used_at: DateTime<Utc>,
    /// When its newest refresh token expires.
    pub expires_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_parse_only_in_their_canonical_form() {
        let id = SessionId::generate();
        assert_eq!(id.to_string().parse::<SessionId>().ok(), Some(id));
        for raw in [
            String::new(),
            "x".to_owned(),
            id.to_string().to_uppercase(),
            id.to_string().replace('-', ""),
            format!("{{{id}}}"),
        ] {
            assert!(raw.parse::<SessionId>().is_err(), "{raw}");
        }
    }

    #[test]
    fn user_agents_are_kept_short_and_without_control_characters() {
        let long = "a".repeat(2000);
        assert_eq!(
            ClientInfo::new(None, Some(&long))
                .user_agent()
                .map(str::len),
            Some(MAX_USER_AGENT_CHARS)
        );
        assert_eq!(
            ClientInfo::new(None, Some("curl/8\u{0}\n")).user_agent(),
            Some("curl/8")
        );
        assert_eq!(ClientInfo::new(None, Some(" \t")).user_agent(), None);
        assert_eq!(ClientInfo::new(None, None).user_agent(), None);
    }
}
