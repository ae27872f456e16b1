//! The audit log: security events, each written in the same transaction as the change it
//! records (by the stores, which know when a change commits), so a rolled-back change leaves
//! no event and a committed one always has its event. Events carry who did it, to whom, and
//! from where; never a password, token, code or hash.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{StorageError, StoreError, UserError};
use crate::session::ClientInfo;
use crate::user::{Totp, User, UserChanges, UserId};

/// Every kind of event the log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Signup,
    LoginSucceeded,
    LoginFailed,
    Logout,
    RefreshReuseDetected,
    SessionRevoked,
    PasswordChanged,
    PasswordResetRequested,
    PasswordReset,
    EmailChanged,
    EmailVerified,
    MfaEnabled,
    MfaDisabled,
    UserUpdated,
    UserDeleted,
    KeysRotated,
    OauthClientCreated,
    OauthClientUpdated,
    OauthClientDeleted,
    OauthClientSecretRotated,
    OauthConsentGranted,
    OauthGrantRevoked,
    OauthCodeReused,
    PasskeyAdded,
    PasskeyRemoved,
    PasskeyCounterRegressed,
    EmailCodeSent,
    IdentityLinked,
    IdentityUnlinked,
}

impl EventType {
    pub const ALL: [Self; 29] = [
        Self::Signup,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::Logout,
        Self::RefreshReuseDetected,
        Self::SessionRevoked,
        Self::PasswordChanged,
        Self::PasswordResetRequested,
        Self::PasswordReset,
        Self::EmailChanged,
        Self::EmailVerified,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::KeysRotated,
        Self::OauthClientCreated,
        Self::OauthClientUpdated,
        Self::OauthClientDeleted,
        Self::OauthClientSecretRotated,
        Self::OauthConsentGranted,
        Self::OauthGrantRevoked,
        Self::OauthCodeReused,
        Self::PasskeyAdded,
        Self::PasskeyRemoved,
        Self::PasskeyCounterRegressed,
        Self::EmailCodeSent,
        Self::IdentityLinked,
        Self::IdentityUnlinked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::LoginSucceeded => "login_succeeded",
            Self::LoginFailed => "login_failed",
            Self::Logout => "logout",
            Self::RefreshReuseDetected => "refresh_reuse_detected",
            Self::SessionRevoked => "session_revoked",
            Self::PasswordChanged => "password_changed",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordReset => "password_reset",
            Self::EmailChanged => "email_changed",
            Self::EmailVerified => "email_verified",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
            Self::UserUpdated => "user_updated",
            Self::UserDeleted => "user_deleted",
            Self::KeysRotated => "keys_rotated",
            Self::OauthClientCreated => "oauth_client_created",
            Self::OauthClientUpdated => "oauth_client_updated",
            Self::OauthClientDeleted => "oauth_client_deleted",
            Self::OauthClientSecretRotated => "oauth_client_secret_rotated",
            Self::OauthConsentGranted => "oauth_consent_granted",
            Self::OauthGrantRevoked => "oauth_grant_revoked",
            Self::OauthCodeReused => "oauth_code_reused",
            Self::PasskeyAdded => "passkey_added",
            Self::PasskeyRemoved => "passkey_removed",
            Self::PasskeyCounterRegressed => "passkey_counter_regressed",
            Self::EmailCodeSent => "email_code_sent",
            Self::IdentityLinked => "identity_linked",
            Self::IdentityUnlinked => "identity_unlinked",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an audit event type")]
pub struct UnknownEventType;

impl FromStr for EventType {
    type Err = UnknownEventType;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or(UnknownEventType)
    }
}

/// Why a login failed, as `login_failed` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    BadPassword,
    /// No such account. The event names no user and keeps nothing of what was typed (it
    /// could be a password typed into the wrong field).
    UnknownUser,
    Inactive,
    Unverified,
    MfaFailed,
    /// A wrong emailed sign-in code.
    BadEmailCode,
    /// A passkey answer that did not verify.
    BadPasskey,
}

impl LoginFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadPassword => "bad_password",
            Self::UnknownUser => "unknown_user",
            Self::Inactive => "inactive",
            Self::Unverified => "unverified",
            Self::MfaFailed => "mfa_failed",
            Self::BadEmailCode => "bad_email_code",
            Self::BadPasskey => "bad_passkey",
        }
    }
}

/// An event to record: what, who did it, to whom, and details that are never secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub kind: EventType,
    pub actor: Option<UserId>,
    pub user: Option<UserId>,
    pub details: BTreeMap<&'static str, String>,
}

impl AuditEvent {
    /// An event about `user`, done by `actor` (`None`: by the user themself, or by nobody
    /// known, such as a failed login).
    pub fn new(kind: EventType, user: Option<UserId>, actor: Option<UserId>) -> Self {
        Self {
            kind,
            actor,
            user,
            details: BTreeMap::new(),
        }
    }

    #[must_use]
    pub fn detail(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.details.insert(key, value.into());
        self
    }

    /// A failed login; `user` is `None` for an unknown one.
    pub fn login_failed(user: Option<UserId>, reason: LoginFailure) -> Self {
        Self::new(EventType::LoginFailed, user, user).detail("reason", reason.as_str())
    }
}

/// What the log records of `changes` to `user`, whose TOTP was on or not.
pub fn events_of(changes: &UserChanges, user: UserId, mfa_was_on: bool) -> Vec<AuditEvent> {
    let event = |kind| AuditEvent::new(kind, Some(user), None);
    let mut events = Vec::new();
    if changes.new_email().is_some() {
        events.push(event(EventType::EmailChanged));
    }
    if changes.new_password_hash().is_some() {
        events.push(event(EventType::PasswordChanged));
    }
    match changes.new_totp() {
        Some(Totp::On { .. }) => events.push(event(EventType::MfaEnabled)),
        Some(Totp::Off | Totp::Pending { .. }) if mfa_was_on => {
            events.push(event(EventType::MfaDisabled));
        }
        _ => {}
    }
    let fields: Vec<&str> = [
        (changes.new_username().is_some(), "username"),
        (changes.is_active().is_some(), "is_active"),
        (changes.is_superuser().is_some(), "is_superuser"),
    ]
    .into_iter()
    .filter_map(|(changed, field)| changed.then_some(field))
    .collect();
    if !fields.is_empty() {
        events.push(event(EventType::UserUpdated).detail("fields", fields.join(",")));
    }
    events
}

/// Where a request came from: what every event written during it records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub client: ClientInfo,
    /// The authenticated caller, once known.
    pub actor: Option<UserId>,
}

/// Which request is being served, for the stores that write audit events inside their
/// transactions: the inbound edge knows, the stores record it, and no port method has to
/// carry it. Implementors MUST answer an empty context outside a request (the CLI,
/// background work) and MUST NOT block.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait RequestOrigin: Send + Sync {
    fn current(&self) -> RequestContext;
}

/// No request: the origin of the command-line commands and of tests that record none.
pub struct NoRequest;

impl RequestOrigin for NoRequest {
    fn current(&self) -> RequestContext {
        RequestContext::default()
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    pub id: i64,
    pub time: DateTime<Utc>,
    pub kind: EventType,
    pub actor: Option<UserId>,
    pub user: Option<UserId>,
    pub client: ClientInfo,
    pub request_id: Option<String>,
    pub details: BTreeMap<String, String>,
}

/// Which events to read: newest first, before an event id (keyset paging).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditQuery {
    pub user: Option<UserId>,
    pub kind: Option<EventType>,
    /// Only events with a smaller id.
    pub before: Option<i64>,
    /// 1 to 100.
    pub limit: u32,
}

/// The log. Events of changes are written by the stores inside the changes'
/// transactions; this port records events that change nothing (a failed login) and
/// reads them back. Like every store it MUST return `Unavailable` when the database does
/// not answer in time.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    async fn record(&self, event: AuditEvent, now: DateTime<Utc>) -> Result<(), StorageError>;

    async fn list(&self, query: AuditQuery) -> Result<Vec<RecordedEvent>, StorageError>;
}

/// Who may read which events.
pub struct AuditService {
    log: std::sync::Arc<dyn AuditLog>,
}

impl AuditService {
    pub fn new(log: std::sync::Arc<dyn AuditLog>) -> Self {
        Self { log }
    }

    /// Any user's events, for a superuser.
    ///
    /// # Errors
    /// `NotSuperuser`; `Unavailable`.
    pub async fn list(
        &self,
        actor: &User,
        query: AuditQuery,
    ) -> Result<Vec<RecordedEvent>, UserError> {
        if !actor.is_superuser {
            return Err(UserError::NotSuperuser);
        }
        Ok(self.log.list(query).await.map_err(StoreError::from)?)
    }

    /// The caller's own events (`query.user` is ignored).
    ///
    /// # Errors
    /// `Unavailable`.
    pub async fn list_own(
        &self,
        actor: &User,
        query: AuditQuery,
    ) -> Result<Vec<RecordedEvent>, UserError> {
        let query = AuditQuery {
            user: Some(actor.id),
            ..query
        };
        Ok(self.log.list(query).await.map_err(StoreError::from)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_read_back_from_their_names() {
        for kind in EventType::ALL {
            assert_eq!(kind.as_str().parse::<EventType>(), Ok(kind));
        }
        assert!("Signup".parse::<EventType>().is_err());
        assert_eq!(
            AuditEvent::login_failed(None, LoginFailure::UnknownUser).details["reason"],
            "unknown_user"
        );
    }
}
