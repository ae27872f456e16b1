//! The values of sign-in with other providers: which provider, its policy, and the
//! accounts at it as Shelter sees them. Apart from the service so that a new user can carry
//! the account it is made from without the user model knowing the service.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::address::EmailAddress;

/// A provider's id in `shelter.toml` and in URLs: 1 to 32 of `a-z`, `0-9` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProviderId(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be 1 to 32 characters of a-z, 0-9 and -")]
pub struct InvalidProviderId;

impl ProviderId {
    /// # Errors
    /// Anything but 1 to 32 characters of `a-z`, `0-9` and `-`.
    pub fn parse(raw: &str) -> Result<Self, InvalidProviderId> {
        let valid = (1..=32).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        valid.then(|| Self(raw.to_owned())).ok_or(InvalidProviderId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProviderId {
    type Error = InvalidProviderId;

    fn try_from(raw: String) -> Result<Self, InvalidProviderId> {
        Self::parse(&raw)
    }
}

impl From<ProviderId> for String {
    fn from(id: ProviderId) -> Self {
        id.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happens when an unknown upstream account has the email of an existing user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkPolicy {
    /// Ask the existing account's password (or passkey) once, then link.
    #[default]
    Confirm,
    /// Link at once when the provider says the email is verified; refuse otherwise.
    VerifiedEmail,
    /// Refuse: the user signs in another way and links from their account page.
    Never,
}

impl LinkPolicy {
    /// # Errors
    /// Anything but `confirm`, `verified_email` or `never`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "confirm" => Ok(Self::Confirm),
            "verified_email" => Ok(Self::VerifiedEmail),
            "never" => Ok(Self::Never),
            other => Err(format!(
                "link must be \"confirm\", \"verified_email\" or \"never\", not {other:?}"
            )),
        }
    }
}

/// A configured provider as the rest of Shelter sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub id: ProviderId,
    /// On the sign-in button.
    pub name: String,
    pub link: LinkPolicy,
    /// Whether an upstream account with no user here becomes one.
    pub create_users: bool,
}

/// An upstream account as a checked ID token (and the provider's userinfo) tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamAccount {
    pub provider: ProviderId,
    /// The provider's `sub`: stable and unique at that provider, unlike the email.
    pub subject: String,
    pub email: Option<EmailAddress>,
    /// The provider's `email_verified`; absent counts as false.
    pub email_verified: bool,
    pub preferred_username: Option<String>,
}

/// An upstream account about to be linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIdentity {
    pub provider: ProviderId,
    pub subject: String,
    pub email: Option<EmailAddress>,
    pub email_verified: bool,
}

impl From<UpstreamAccount> for NewIdentity {
    fn from(account: UpstreamAccount) -> Self {
        Self {
            provider: account.provider,
            subject: account.subject,
            email: account.email,
            email_verified: account.email_verified,
        }
    }
}

/// A linked upstream account, as its user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub provider: ProviderId,
    pub subject: String,
    /// The email the provider gave when the account was linked.
    pub email: Option<EmailAddress>,
    pub linked_at: DateTime<Utc>,
}
