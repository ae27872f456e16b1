//! The emails the service sends, as queued in the outbox. Rendering (templates, MIME) and
//! transport belong to the mail adapter.

use chrono::{DateTime, Utc};

use crate::address::EmailAddress;
use crate::token::{SecretToken, TokenHash};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    /// After signup: welcome, with the verification token.
    Welcome,
    /// After an email change: verify the new address.
    VerifyEmail,
    /// After a password-recovery request.
    PasswordReset,
}

impl EmailKind {
    pub const ALL: [Self; 3] = [Self::Welcome, Self::VerifyEmail, Self::PasswordReset];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Welcome => "welcome",
            Self::VerifyEmail => "verify_email",
            Self::PasswordReset => "password_reset",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }
}

/// Why a one-time token from a link no longer works, for the page that must say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpentLink {
    /// Not a token Shelter issued for this purpose (or mistyped).
    Unknown,
    /// Used already, or retired by a newer link.
    Used,
    /// Past its lifetime.
    Expired,
    /// It still works.
    Usable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// One email to deliver.
#[derive(Debug, Clone)]
pub struct OutboundEmail {
    pub to: EmailAddress,
    pub kind: EmailKind,
    pub username: String,
    pub token: SecretToken,
}

/// A one-time token to store (hashed) together with the email that carries it, in the
/// same transaction as the change that causes them.
#[derive(Debug, Clone)]
pub struct PendingToken {
    expires_at: DateTime<Utc>,
    email: OutboundEmail,
}

impl PendingToken {
    /// A fresh token for `email`'s purpose, valid until `expires_at`.
    pub fn new(
        to: EmailAddress,
        kind: EmailKind,
        username: String,
        expires_at: DateTime<Utc>,
    ) -> Self {
        let token = SecretToken::generate();
        Self {
            expires_at,
            email: OutboundEmail {
                to,
                kind,
                username,
                token,
            },
        }
    }

    /// What the store keeps: the hash of the token the email carries, so the two cannot
    /// disagree.
    pub fn hash(&self) -> TokenHash {
        self.email.token.hash()
    }

    pub fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// The email that carries the token.
    pub fn email(&self) -> &OutboundEmail {
        &self.email
    }
}

/// An email claimed from the outbox by a delivery worker.
#[derive(Debug, Clone)]
pub struct QueuedEmail {
    pub id: i64,
    /// Delivery attempts so far, this one included.
    pub attempts: u32,
    pub email: OutboundEmail,
}
