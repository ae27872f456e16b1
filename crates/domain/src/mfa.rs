//! The TOTP second factor: enrolment, confirmation with recovery codes, disabling, a
//! superuser's reset, and the code check that login's second step shares with them.
//!
//! - A code is good for its 30-second step and one step either side; a step once used is
//!   spent for good (the store keeps the last one, and only a later step passes), so a
//!   code seen over a shoulder cannot be replayed.
//! - Recovery codes are 80 random bits each, shown once and stored as SHA-256 (at that
//!   entropy a fast hash is enough); each works once.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rand::Rng as _;
use secrecy::SecretString;

use crate::accounts::confirm_password;
use crate::address::EmailAddress;
use crate::error::{StoreError, UserError};
use crate::ports::{Clock, PasswordHasher, UserRepository};
use crate::token::{SecretToken, TokenHash};
use crate::user::{Totp, User, UserChanges, UserId};

/// Recovery codes handed out when TOTP is confirmed.
pub const RECOVERY_CODES: usize = 10;

/// A new secret, as the user's authenticator app is given it and as it is stored.
pub struct Enrolment {
    /// Base32, for typing in.
    pub secret: SecretString,
    /// `otpauth://totp/Shelter:<email>?secret=…&issuer=Shelter`, for a QR code.
    pub uri: SecretString,
    pub sealed_secret: Vec<u8>,
}

/// RFC 6238 codes (SHA-1, 6 digits, 30 s), with the secret sealed at rest.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Authenticator: Send + Sync {
    /// A fresh secret for `user`, sealed to that user.
    ///
    /// # Errors
    /// Only if sealing fails.
    fn enrol(&self, user: UserId, account: &EmailAddress) -> anyhow::Result<Enrolment>;

    /// The time step (`unix time / 30`) for which `code` is right at `now`, trying the
    /// step before and after too; `None` for a wrong code.
    ///
    /// # Errors
    /// A secret that does not open (sealed under another key, or for another user).
    fn step_of(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        code: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<i64>>;
}

/// A recovery code as the user types it: `abcd-efgh-ijkl-mnop`, any case, dashes and spaces
/// optional.
fn recovery_hash(code: &str) -> TokenHash {
    let normal: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    SecretToken::presented(&normal).hash()
}

fn new_recovery_code() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::rng();
    let chars: Vec<char> = (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..32)]))
        .collect();
    chars
        .chunks(4)
        .map(|group| group.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// Checks a TOTP or recovery code of a user whose TOTP is on, spending it: the step, or
/// the recovery code. `false` for a wrong or already used code.
///
/// # Errors
/// The store's, or a secret that does not open (as `Unexpected`).
pub async fn spend_code(
    authenticator: &dyn Authenticator,
    users: &dyn UserRepository,
    user: &User,
    code: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let Totp::On { sealed_secret } = &user.totp else {
        return Ok(false);
    };
    let code = code.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        return match authenticator.step_of(user.id, sealed_secret, code, now)? {
            Some(step) => Ok(users.use_totp_step(user.id, step).await?),
            None => Ok(false),
        };
    }
    users
        .spend_recovery_code(user.id, &recovery_hash(code), now)
        .await
}

pub struct MfaService {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    authenticator: Arc<dyn Authenticator>,
    clock: Arc<dyn Clock>,
}

impl MfaService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        hasher: Arc<dyn PasswordHasher>,
        authenticator: Arc<dyn Authenticator>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            users,
            hasher,
            authenticator,
            clock,
        }
    }

    /// Starts (or restarts) an enrolment: a new secret that login does not ask for until
    /// [`MfaService::confirm`].
    ///
    /// # Errors
    /// `WrongCurrentPassword`; `MfaAlreadyEnabled` while TOTP is on.
    pub async fn enrol(
        &self,
        user: &User,
        password: &SecretString,
    ) -> Result<Enrolment, UserError> {
        confirm_password(self.hasher.as_ref(), user, password).await?;
        if user.totp.is_on() {
            return Err(UserError::MfaAlreadyEnabled);
        }
        let enrolment = self.authenticator.enrol(user.id, &user.email)?;
        let pending = Totp::Pending {
            sealed_secret: enrolment.sealed_secret.clone(),
        };
        self.users
            .update(
                user.id,
                None,
                UserChanges::default().totp(pending, Vec::new()),
                self.clock.now(),
            )
            .await?;
        Ok(enrolment)
    }

    /// Turns TOTP on with a first right code, and hands out the recovery codes (the only
    /// time they are shown).
    ///
    /// # Errors
    /// `MfaNotPending` without an enrolment (or when TOTP is on already); `InvalidCode`.
    pub async fn confirm(&self, user: &User, code: &str) -> Result<Vec<SecretString>, UserError> {
        let Totp::Pending { sealed_secret } = &user.totp else {
            return Err(UserError::MfaNotPending);
        };
        let now = self.clock.now();
        let step = self
            .authenticator
            .step_of(user.id, sealed_secret, code.trim(), now)?
            .ok_or(UserError::InvalidCode)?;
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let hashes = codes.iter().map(|code| recovery_hash(code)).collect();
        let on = Totp::On {
            sealed_secret: sealed_secret.clone(),
        };
        self.users
            .update(user.id, None, UserChanges::default().totp(on, hashes), now)
            .await?;
        // The confirming code is spent like any other.
        self.users.use_totp_step(user.id, step).await?;
        Ok(codes.into_iter().map(SecretString::from).collect())
    }

    /// Turns TOTP off with the password and a TOTP or recovery code.
    ///
    /// # Errors
    /// `WrongCurrentPassword`; `MfaNotEnabled`; `InvalidCode`.
    pub async fn disable(
        &self,
        user: &User,
        password: &SecretString,
        code: &str,
    ) -> Result<(), UserError> {
        confirm_password(self.hasher.as_ref(), user, password).await?;
        if !user.totp.is_on() {
            return Err(UserError::MfaNotEnabled);
        }
        let now = self.clock.now();
        if !spend_code(
            self.authenticator.as_ref(),
            self.users.as_ref(),
            user,
            code,
            now,
        )
        .await?
        {
            return Err(UserError::InvalidCode);
        }
        self.turn_off(user.id, now).await
    }

    /// A superuser turns off the TOTP of a user who lost their device. Idempotent: a user
    /// without TOTP is left as they are.
    ///
    /// # Errors
    /// `NotSuperuser`; `NotFound`.
    pub async fn reset(&self, actor: &User, id: UserId) -> Result<(), UserError> {
        if !actor.is_superuser {
            return Err(UserError::NotSuperuser);
        }
        let user = self
            .users
            .find_by_id(id)
            .await?
            .ok_or(UserError::NotFound)?;
        if matches!(user.totp, Totp::Off) {
            return Ok(());
        }
        self.turn_off(id, self.clock.now()).await
    }

    async fn turn_off(&self, id: UserId, now: DateTime<Utc>) -> Result<(), UserError> {
        self.users
            .update(
                id,
                None,
                UserChanges::default().totp(Totp::Off, Vec::new()),
                now,
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_four_groups_of_base32_and_match_however_typed() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 19, "{code}");
        assert!(
            code.split('-').all(|g| g.len() == 4
                && g.bytes()
                    .all(|b| b"abcdefghijklmnopqrstuvwxyz234567".contains(&b))),
            "{code}"
        );
        assert_ne!(code, new_recovery_code());
        let typed = format!(" {} ", code.to_uppercase().replace('-', " "));
        assert_eq!(recovery_hash(&typed), recovery_hash(&code));
        assert_ne!(recovery_hash("aaaa-aaaa-aaaa-aaaa"), recovery_hash(&code));
    }
}
