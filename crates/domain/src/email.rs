//! The emails the service sends, as queued in the outbox. Rendering (templates, MIME) and
//! transport belong to the mail adapter.

use chrono::{DateTime, Utc};

use rand::Rng as _;
use secrecy::{ExposeSecret as _, SecretString};

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
    /// A sign-in code and link (`POST /auth/email-code`).
    SignInCode,
}

impl EmailKind {
    pub const ALL: [Self; 4] = [
        Self::Welcome,
        Self::VerifyEmail,
        Self::PasswordReset,
        Self::SignInCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Welcome => "welcome",
            Self::VerifyEmail => "verify_email",
            Self::PasswordReset => "password_reset",
            Self::SignInCode => "sign_in_code",
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
    /// A sign-in link, with its six-digit code beside it in the same row.
    SignIn,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::SignIn => "sign_in",
        }
    }
}

/// How a typed sign-in code is kept and compared: SHA-256 like every token, after
/// removing the spaces a user may type. Six digits are not secret against someone holding
/// the hash; they live ten minutes and five wrong tries spend them.
pub fn code_hash(typed: &str) -> TokenHash {
    let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    SecretToken::presented(&digits).hash()
}

/// One email to deliver.
#[derive(Debug, Clone)]
pub struct OutboundEmail {
    pub to: EmailAddress,
    pub kind: EmailKind,
    pub username: String,
    pub token: SecretToken,
    /// The six digits of a sign-in code email, typed where a link cannot be followed.
    pub code: Option<SecretString>,
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
                code: None,
            },
        }
    }

    /// A sign-in email: a fresh link token and six random digits.
    pub fn sign_in(to: EmailAddress, username: String, expires_at: DateTime<Utc>) -> Self {
        let mut pending = Self::new(to, EmailKind::SignInCode, username, expires_at);
        let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
        pending.email.code = Some(SecretString::from(code));
        pending
    }

    /// The hash of the six digits, for a sign-in email.
    pub fn code_hash(&self) -> Option<TokenHash> {
        self.email
            .code
            .as_ref()
            .map(|code| code_hash(code.expose_secret()))
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
