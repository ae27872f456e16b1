//! Value types that parse once and then cannot hold invalid data (`UserId`, `Username`,
//! `Login`, `Password`, `PasswordHash`, `Page`), and the `User` record.

use std::fmt;
use std::str::FromStr;

use crate::identities::model::NewIdentity;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::address::EmailAddress;
use crate::email::{EmailKind, PendingToken};
use crate::token::TokenHash;

/// A user's database id. Positive by construction of the store; kept opaque so an id is
/// never confused with a count or a revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(i64);

impl UserId {
    pub const fn new(id: i64) -> Self {
        Self(id)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("must be at least {min} characters")]
    TooShort { min: usize },
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("may contain only letters, digits, '_', '-' and '.'")]
    InvalidCharacter,
}

/// A username: 3–50 ASCII letters, digits, `_`, `-` or `.`, case kept for display and
/// unique ignoring case. ASCII only, so that "ignoring case" means the same thing in SQLite's
/// `lower()`, PostgreSQL's and ours, and look-alike letters cannot impersonate a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 50;

    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(UsernameError::InvalidCharacter);
        }
        // All characters are ASCII from here on, so bytes are characters.
        if raw.len() < Self::MIN_LEN {
            return Err(UsernameError::TooShort { min: Self::MIN_LEN });
        }
        if raw.len() > Self::MAX_LEN {
            return Err(UsernameError::TooLong { max: Self::MAX_LEN });
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Username {
    type Err = UsernameError;

    fn from_str(raw: &str) -> Result<Self, UsernameError> {
        Self::parse(raw)
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a person types to log in, told apart once: usernames cannot contain `@`, so text
/// with one can only be an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    Email(EmailAddress),
    Username(Username),
    /// Neither form: no account can have it, yet the attempt costs what any other does.
    Nobody,
}

impl Login {
    pub fn parse(raw: &str) -> Self {
        let raw = raw.trim();
        if raw.contains('@') {
            EmailAddress::parse(raw).map_or(Self::Nobody, Self::Email)
        } else {
            Username::parse(raw).map_or(Self::Nobody, Self::Username)
        }
    }

    /// The same for every spelling of one account's login (case folded), and one key for
    /// every login no account can have, so rate limits count attempts per account.
    pub fn key(&self) -> String {
        match self {
            Self::Email(email) => email.as_str().to_owned(),
            Self::Username(name) => name.as_str().to_ascii_lowercase(),
            Self::Nobody => "-".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("must be at least {min} characters")]
    TooShort { min: usize },
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
}

/// A new password that meets the policy (8–128 characters). It wraps a `SecretString`, so it
/// has no `Display` and its `Debug` is redacted: it cannot reach a log by accident.
#[derive(Debug, Clone)]
pub struct Password(SecretString);

impl Password {
    pub const MIN_LEN: usize = 8;
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, PasswordError> {
        let chars = raw.chars().count();
        if chars < Self::MIN_LEN {
            return Err(PasswordError::TooShort { min: Self::MIN_LEN });
        }
        if chars > Self::MAX_LEN {
            return Err(PasswordError::TooLong { max: Self::MAX_LEN });
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl FromStr for Password {
    type Err = PasswordError;

    fn from_str(raw: &str) -> Result<Self, PasswordError> {
        Self::parse(raw)
    }
}

/// A password hash in PHC string form. Not a secret in the strict sense, but it is kept out
/// of `Debug` all the same: an offline cracker should never get it from a log.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string produced by a `PasswordHasher` or read back from the store.
    pub fn from_phc(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A stored user. Read-only outside the domain: only the domain's services change a user,
/// through [`UserChanges`], so no adapter or handler can pass on a user it altered itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent facts of a user, one per column"
)]
pub struct User {
    pub(crate) id: UserId,
    pub(crate) email: EmailAddress,
    pub(crate) username: Username,
    pub(crate) password_hash: PasswordHash,
    pub(crate) password_set: bool,
    pub(crate) is_active: bool,
    pub(crate) is_superuser: bool,
    pub(crate) email_verified: bool,
    pub(crate) totp: Totp,
    pub(crate) token_version: i64,
    pub(crate) revision: i64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
}

/// What a page of users shows of each: nothing to decide with (no hash, no secret, no
/// versions). A store hands a page over one user at a time, borrowed from its row
/// (`ListedUser<&str>`), so that a hundred users are written out as they are read with
/// nothing copied per user; a caller that keeps them collects `ListedUser<String>`. The
/// email and username are only shown, as stored, so they stay text rather than being
/// parsed again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent facts of a user, one per column"
)]
pub struct ListedUser<S> {
    pub id: UserId,
    pub email: S,
    pub username: S,
    pub is_active: bool,
    pub is_superuser: bool,
    pub email_verified: bool,
    /// Whether sign-in needs a second step ([`Totp::On`]).
    pub mfa_enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ListedUser<&str> {
    pub fn to_owned(&self) -> ListedUser<String> {
        ListedUser {
            id: self.id,
            email: self.email.to_owned(),
            username: self.username.to_owned(),
            is_active: self.is_active,
            is_superuser: self.is_superuser,
            email_verified: self.email_verified,
            mfa_enabled: self.mfa_enabled,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Where a store puts the users of a page, in order.
pub trait UserSink: Send {
    fn user(&mut self, user: ListedUser<&str>);
}

/// A sink as the stores take it: owned (`'static`) and named in full, because mockall
/// cannot mock a method whose trait object has an elided lifetime.
pub type ListSink = dyn UserSink + 'static;

/// Keeps the page, for callers that show few users (a page of HTML, a test).
impl UserSink for Vec<ListedUser<String>> {
    fn user(&mut self, user: ListedUser<&str>) {
        self.push(user.to_owned());
    }
}

/// A user as a store reads it back, the one way to make a [`User`] outside the domain.
#[derive(Debug, Clone)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent facts of a user, one per column"
)]
pub struct StoredUser {
    pub id: UserId,
    pub email: EmailAddress,
    pub username: Username,
    pub password_hash: PasswordHash,
    /// False for a user created from a provider until a reset sets a password.
    pub password_set: bool,
    pub is_active: bool,
    pub is_superuser: bool,
    pub email_verified: bool,
    pub totp: Totp,
    pub token_version: i64,
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredUser> for User {
    fn from(row: StoredUser) -> Self {
        Self {
            id: row.id,
            email: row.email,
            username: row.username,
            password_hash: row.password_hash,
            password_set: row.password_set,
            is_active: row.is_active,
            is_superuser: row.is_superuser,
            email_verified: row.email_verified,
            totp: row.totp,
            token_version: row.token_version,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

impl User {
    /// The user as a listing shows it.
    pub fn summary(&self) -> ListedUser<&str> {
        ListedUser {
            id: self.id,
            email: self.email.as_str(),
            username: self.username.as_str(),
            is_active: self.is_active,
            is_superuser: self.is_superuser,
            email_verified: self.email_verified,
            mfa_enabled: self.totp.is_on(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    pub fn id(&self) -> UserId {
        self.id
    }

    pub fn email(&self) -> &EmailAddress {
        &self.email
    }

    pub fn username(&self) -> &Username {
        &self.username
    }

    pub fn password_hash(&self) -> &PasswordHash {
        &self.password_hash
    }

    /// Whether the user chose a password: one created from a provider has a hash of a
    /// secret nobody was told until a reset sets one.
    pub fn password_set(&self) -> bool {
        self.password_set
    }

    pub fn is_active(&self) -> bool {
        self.is_active
    }

    pub fn is_superuser(&self) -> bool {
        self.is_superuser
    }

    pub fn email_verified(&self) -> bool {
        self.email_verified
    }

    pub fn totp(&self) -> &Totp {
        &self.totp
    }

    /// Bumped whenever every token issued so far must stop working (password change).
    pub fn token_version(&self) -> i64 {
        self.token_version
    }

    /// Bumped on every change of the row; the HTTP layer's `ETag` is made from it.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

    /// Whether this user counts towards "the last active superuser".
    pub fn is_active_superuser(&self) -> bool {
        self.is_active && self.is_superuser
    }
}

/// What the store needs to create a user; the store assigns the id. A new user is an
/// unverified member unless made a superuser, whose address the operator vouches for.
#[derive(Debug, Clone)]
pub struct NewUser {
    email: EmailAddress,
    username: Username,
    password_hash: PasswordHash,
    is_superuser: bool,
    /// The provider account it is created from, linked in the same transaction.
    identity: Option<NewIdentity>,
    now: DateTime<Utc>,
}

impl NewUser {
    pub fn new(
        email: EmailAddress,
        username: Username,
        password_hash: PasswordHash,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            email,
            username,
            password_hash,
            is_superuser: false,
            identity: None,
            now,
        }
    }

    /// A user created from a provider's account: `unused_hash` is of a secret nobody was
    /// told, so the password is no way in until a reset sets one.
    pub fn from_provider(
        email: EmailAddress,
        username: Username,
        unused_hash: PasswordHash,
        identity: NewIdentity,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            identity: Some(identity),
            ..Self::new(email, username, unused_hash, now)
        }
    }

    /// The provider account this user is created from.
    pub fn identity(&self) -> Option<&NewIdentity> {
        self.identity.as_ref()
    }

    /// Whether the user chose the password (not one made from a provider's account).
    pub fn password_set(&self) -> bool {
        self.identity.is_none()
    }

    /// A superuser, created with a verified email.
    #[must_use]
    pub fn superuser(self) -> Self {
        Self {
            is_superuser: true,
            ..self
        }
    }

    pub fn email(&self) -> &EmailAddress {
        &self.email
    }

    pub fn username(&self) -> &Username {
        &self.username
    }

    pub fn password_hash(&self) -> &PasswordHash {
        &self.password_hash
    }

    pub fn is_superuser(&self) -> bool {
        self.is_superuser
    }

    /// A superuser's address is vouched for by the operator; a provider's account's by
    /// the provider, when it says so.
    pub fn email_verified(&self) -> bool {
        self.is_superuser
            || self
                .identity
                .as_ref()
                .is_some_and(|identity| identity.email_verified)
    }

    /// When the user is created.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }
}

/// The user's TOTP second factor. The secret is only ever held sealed (see the
/// `Authenticator` port), so neither `Debug` nor a leaked row shows it.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Totp {
    #[default]
    Off,
    /// Enrolled, waiting for a first code to confirm it; login does not ask for it yet.
    Pending { sealed_secret: Vec<u8> },
    /// Every login needs a code.
    On { sealed_secret: Vec<u8> },
}

impl Totp {
    pub fn is_on(&self) -> bool {
        matches!(self, Self::On { .. })
    }

    pub fn sealed_secret(&self) -> Option<&[u8]> {
        match self {
            Self::Off => None,
            Self::Pending { sealed_secret } | Self::On { sealed_secret } => Some(sealed_secret),
        }
    }
}

impl fmt::Debug for Totp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Off => "Off",
            Self::Pending { .. } => "Pending",
            Self::On { .. } => "On",
        })
    }
}

/// A set of changes to one user, each made with the rule that goes with it: a new email is
/// unverified and comes with a verification token for that very address; a new password
/// voids every token issued before it. Unset fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    email: Option<(EmailAddress, PendingToken)>,
    username: Option<Username>,
    password_hash: Option<PasswordHash>,
    is_active: Option<bool>,
    is_superuser: Option<bool>,
    totp: Option<Totp>,
    recovery_codes: Option<Vec<TokenHash>>,
}

impl UserChanges {
    /// A new state of the second factor. Turning it on replaces the recovery codes with
    /// `recovery_codes`; turning it off (or re-enrolling) deletes them.
    #[must_use]
    pub fn totp(mut self, totp: Totp, recovery_codes: Vec<TokenHash>) -> Self {
        self.totp = Some(totp);
        self.recovery_codes = Some(recovery_codes);
        self
    }

    pub fn new_totp(&self) -> Option<&Totp> {
        self.totp.as_ref()
    }

    /// The hashes of the recovery codes that replace the stored ones, if they change.
    pub fn new_recovery_codes(&self) -> Option<&[TokenHash]> {
        self.recovery_codes.as_deref()
    }

    #[must_use]
    pub fn username(mut self, username: Username) -> Self {
        self.username = Some(username);
        self
    }

    #[must_use]
    pub fn active(mut self, active: bool) -> Self {
        self.is_active = Some(active);
        self
    }

    #[must_use]
    pub fn superuser(mut self, superuser: bool) -> Self {
        self.is_superuser = Some(superuser);
        self
    }

    /// A new, unverified email; its verification link greets `greeting` and works until
    /// `expires_at`.
    #[must_use]
    pub fn email(
        mut self,
        email: EmailAddress,
        greeting: &Username,
        expires_at: DateTime<Utc>,
    ) -> Self {
        let token = PendingToken::new(
            email.clone(),
            EmailKind::VerifyEmail,
            greeting.to_string(),
            expires_at,
        );
        self.email = Some((email, token));
        self
    }

    /// A new password: every access token issued so far stops working and every refresh
    /// token is revoked.
    #[must_use]
    pub fn password(mut self, hash: PasswordHash) -> Self {
        self.password_hash = Some(hash);
        self
    }

    pub fn new_email(&self) -> Option<&EmailAddress> {
        self.email.as_ref().map(|(email, _)| email)
    }

    pub fn new_username(&self) -> Option<&Username> {
        self.username.as_ref()
    }

    pub fn new_password_hash(&self) -> Option<&PasswordHash> {
        self.password_hash.as_ref()
    }

    pub fn is_active(&self) -> Option<bool> {
        self.is_active
    }

    pub fn is_superuser(&self) -> Option<bool> {
        self.is_superuser
    }

    /// `Some(false)` with a new email: nobody has shown yet that they read it.
    pub fn email_verified(&self) -> Option<bool> {
        self.email.as_ref().map(|_| false)
    }

    /// The token to store, and its email to queue, with the change.
    pub fn verification(&self) -> Option<&PendingToken> {
        self.email.as_ref().map(|(_, token)| token)
    }

    /// Whether the token version is bumped and every refresh token revoked.
    pub fn revokes_tokens(&self) -> bool {
        self.password_hash.is_some()
    }

    /// Whether the user's live sessions (chat connections) must end: a deactivation or
    /// a new password.
    pub fn ends_sessions(&self) -> bool {
        self.is_active == Some(false) || self.revokes_tokens()
    }

    pub fn is_empty(&self) -> bool {
        self.email.is_none()
            && self.username.is_none()
            && self.password_hash.is_none()
            && self.is_active.is_none()
            && self.is_superuser.is_none()
            && self.totp.is_none()
    }

    /// Whether applying these changes to `user` takes away an active superuser.
    pub fn demotes(&self, user: &User) -> bool {
        user.is_active_superuser()
            && (self.is_active == Some(false) || self.is_superuser == Some(false))
    }
}

/// Why a page cannot be served; one per out-of-range parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PaginationError {
    #[error("must be between 0 and {max}")]
    SkipOutOfRange { max: u64 },
    #[error("must be between {min} and {max}")]
    LimitOutOfRange { min: u64, max: u64 },
}

/// One page of a listing: `skip` rows left out, at most `limit` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    skip: u64,
    limit: u64,
}

/// Which users a listing shows: all of them unless narrowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Part of the email or username, lower-cased: matched ignoring case.
    search: Option<String>,
    pub is_active: Option<bool>,
    pub is_superuser: Option<bool>,
}

/// Why a search text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    /// U+0000–U+001F or U+007F, as in every request body: no email or username has one,
    /// and PostgreSQL cannot even hold a NUL.
    #[error("must not contain control characters")]
    ControlCharacter,
}

impl UserFilter {
    /// The longest search: no email or username is longer.
    pub const MAX_SEARCH: usize = 254;

    /// Narrows to users whose email or username contains `text`, ignoring case and the
    /// spaces around it; a blank text narrows nothing (an emptied search box).
    ///
    /// # Errors
    /// A text longer than any email or username, or with a control character.
    pub fn search(mut self, text: &str) -> Result<Self, SearchError> {
        let text = text.trim();
        if text.chars().count() > Self::MAX_SEARCH {
            return Err(SearchError::TooLong {
                max: Self::MAX_SEARCH,
            });
        }
        if text.chars().any(|c| c.is_ascii_control()) {
            return Err(SearchError::ControlCharacter);
        }
        self.search = (!text.is_empty()).then(|| text.to_lowercase());
        Ok(self)
    }

    pub fn search_text(&self) -> Option<&str> {
        self.search.as_deref()
    }

    /// Whether this filter shows every user.
    pub fn is_everyone(&self) -> bool {
        *self == Self::default()
    }
}

impl Page {
    pub const MAX_LIMIT: u64 = 100;
    /// Offsets are 64-bit signed in SQL (and `int64` in the published schema).
    pub const MAX_SKIP: u64 = i64::MAX.unsigned_abs();

    /// # Errors
    /// Every parameter out of range, so a client hears of all of them at once.
    pub fn new(skip: u64, limit: u64) -> Result<Self, Vec<PaginationError>> {
        let mut errors = Vec::new();
        if skip > Self::MAX_SKIP {
            errors.push(PaginationError::SkipOutOfRange {
                max: Self::MAX_SKIP,
            });
        }
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            errors.push(PaginationError::LimitOutOfRange {
                min: 1,
                max: Self::MAX_LIMIT,
            });
        }
        if errors.is_empty() {
            Ok(Self { skip, limit })
        } else {
            Err(errors)
        }
    }

    pub fn skip(self) -> u64 {
        self.skip
    }

    pub fn limit(self) -> u64 {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::EmailError;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        let email = EmailAddress::parse("  Ann.Lee+tag@Example.COM ").expect("valid email");
        assert_eq!(email.as_str(), "ann.lee+tag@example.com");
    }

    #[test]
    fn invalid_emails_are_refused() {
        let cases = [
            ("", EmailError::Empty),
            ("   ", EmailError::Empty),
            ("plainaddress", EmailError::Invalid),
            ("a@b", EmailError::Invalid),
            ("@example.com", EmailError::Invalid),
            ("ann@", EmailError::Invalid),
            ("ann@@example.com", EmailError::Invalid),
            ("ann@exa mple.com", EmailError::Invalid),
            ("ann lee@example.com", EmailError::Invalid),
            (".ann@example.com", EmailError::Invalid),
            ("ann..lee@example.com", EmailError::Invalid),
            ("ann@-example.com", EmailError::Invalid),
            ("ann@example..com", EmailError::Invalid),
            ("ann@example.123", EmailError::Invalid),
            ("ann@exämple.com", EmailError::Invalid),
            ("ann\u{0}@example.com", EmailError::Invalid),
        ];
        for (raw, expected) in cases {
            assert_eq!(EmailAddress::parse(raw), Err(expected), "case {raw:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(
            EmailAddress::parse(&long),
            Err(EmailError::TooLong { max: 254 })
        );
    }

    #[test]
    fn usernames_follow_the_contract() {
        for ok in ["ann", "Ann_Lee-1.x", &"a".repeat(50)] {
            assert!(Username::parse(ok).is_ok(), "case {ok:?}");
        }
        let cases = [
            ("ab", UsernameError::TooShort { min: 3 }),
            ("", UsernameError::TooShort { min: 3 }),
            ("a b c", UsernameError::InvalidCharacter),
            ("ann@x", UsernameError::InvalidCharacter),
            ("jöhn", UsernameError::InvalidCharacter),
            (
                "robert'); drop table users;--",
                UsernameError::InvalidCharacter,
            ),
        ];
        for (raw, expected) in cases {
            assert_eq!(Username::parse(raw), Err(expected), "case {raw:?}");
        }
        assert_eq!(
            Username::parse(&"a".repeat(51)),
            Err(UsernameError::TooLong { max: 50 })
        );
    }

    #[test]
    fn passwords_count_characters_not_bytes() {
        assert!(Password::parse("12345678").is_ok());
        assert!(
            Password::parse(&"é".repeat(128)).is_ok(),
            "128 two-byte chars"
        );
        assert!(matches!(
            Password::parse("1234567"),
            Err(PasswordError::TooShort { min: 8 })
        ));
        assert!(matches!(
            Password::parse(&"x".repeat(129)),
            Err(PasswordError::TooLong { max: 128 })
        ));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let password = Password::parse("hunter2hunter2").expect("valid password");
        assert!(!format!("{password:?}").contains("hunter2"));
        let hash = PasswordHash::from_phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
        assert!(!format!("{hash:?}").contains("argon2id"));
    }

    #[test]
    fn page_limits_are_checked() {
        assert!(Page::new(0, 1).is_ok());
        assert!(Page::new(Page::MAX_SKIP, 100).is_ok());
        assert_eq!(
            Page::new(Page::MAX_SKIP + 1, 0),
            Err(vec![
                PaginationError::SkipOutOfRange {
                    max: Page::MAX_SKIP
                },
                PaginationError::LimitOutOfRange { min: 1, max: 100 }
            ])
        );
        assert!(Page::new(0, 0).is_err());
        assert!(Page::new(0, 101).is_err());
    }
}

/// What is presented from a sign-in email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInProof {
    /// The link's token.
    Link(TokenHash),
    /// The six digits, typed with the address of `user`.
    Code { user: UserId, code: TokenHash },
}

/// What a sign-in email's proof came to.
#[derive(Debug, Clone, PartialEq)]
pub enum SignInCheck {
    /// Right: the email is spent; the user as it is now (its address verified).
    Right(User),
    /// A wrong code against a live email (counted).
    Wrong,
    /// No live email: never sent, used, replaced, expired, spent by wrong codes, or sent
    /// to an address the user has since changed.
    Missing,
}
