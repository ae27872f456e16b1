//! `TotpAuthenticator`: RFC 6238 codes (SHA-1, 6 digits, 30-second steps, one step of skew)
//! computed by totp-rs, with 160-bit secrets sealed to their user at rest.

use anyhow::{Context, anyhow};
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use shelter_domain::mfa::{Authenticator, Enrolment};
use shelter_domain::{EmailAddress, UserId};
use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::sealing::{Purpose, Sealer};

const ISSUER: &str = "Shelter";

pub struct TotpAuthenticator {
    sealer: Sealer,
}

impl TotpAuthenticator {
    pub fn new(secret_key: &SecretString) -> Self {
        Self {
            sealer: Sealer::new(secret_key, Purpose::TotpSecrets),
        }
    }
}

fn totp(secret: Vec<u8>, account: Option<&EmailAddress>) -> anyhow::Result<Totp> {
    let mut builder = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret);
    if let Some(account) = account {
        builder = builder
            .with_issuer(Some(ISSUER))
            .with_account_name(account.as_str());
    }
    builder.build().map_err(|e| anyhow!("TOTP: {e}"))
}

/// The row a user's secret is sealed to.
fn row(user: UserId) -> Vec<u8> {
    user.get().to_be_bytes().to_vec()
}

impl Authenticator for TotpAuthenticator {
    fn enrol(&self, user: UserId, account: &EmailAddress) -> anyhow::Result<Enrolment> {
        let secret = zeroize::Zeroizing::new(rand::random::<[u8; 20]>().to_vec());
        let totp = totp(secret.to_vec(), Some(account))?;
        Ok(Enrolment {
            secret: SecretString::from(Secret::from(secret.to_vec()).to_base32()),
            uri: SecretString::from(totp.to_url().map_err(|e| anyhow!("TOTP URL: {e}"))?),
            sealed_secret: self.sealer.seal(&secret, &row(user))?,
        })
    }

    fn step_of(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        code: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<i64>> {
        let secret = self
            .sealer
            .open(sealed_secret, &row(user))
            .context("open a TOTP secret")?;
        let Ok(time) = u64::try_from(now.timestamp()) else {
            return Ok(None);
        };
        Ok(totp(secret.to_vec(), None)?
            .check(code, time)
            .and_then(|step| i64::try_from(step).ok()))
    }
}

/// The code an authenticator app shows at `time` for a base32 `secret`: what tests type.
///
/// # Errors
/// A secret that is not base32 or too short.
pub fn code_at(secret: &str, time: DateTime<Utc>) -> anyhow::Result<String> {
    let bytes = Secret::try_from_base32(secret)
        .map_err(|e| anyhow!("base32: {e}"))?
        .as_bytes()
        .to_vec();
    let time = u64::try_from(time.timestamp()).context("a time before 1970")?;
    Ok(totp(bytes, None)?.generate(time).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret as _;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).expect("time")
    }

    #[test]
    fn codes_of_the_enrolled_secret_match_within_one_step_and_only_for_their_user() {
        let authenticator =
            TotpAuthenticator::new(&SecretString::from("totp-test-secret-totp-test-secret"));
        let email = EmailAddress::parse("ann@example.com").expect("email");
        let enrolment = authenticator.enrol(UserId::new(7), &email).expect("enrol");
        let uri = enrolment.uri.expose_secret();
        assert!(
            uri.starts_with("otpauth://totp/Shelter:ann%40example.com?secret=")
                && uri.ends_with("&issuer=Shelter"),
            "{uri}"
        );
        assert!(uri.contains(enrolment.secret.expose_secret()));
        let now = at(1_800_000_000);
        let code = code_at(enrolment.secret.expose_secret(), now).expect("code");
        let step = |code: &str, user, time| {
            authenticator.step_of(UserId::new(user), &enrolment.sealed_secret, code, time)
        };
        assert_eq!(step(&code, 7, now).expect("opens"), Some(60_000_000));
        assert_eq!(
            step(&code, 7, at(1_800_000_030)).expect("opens"),
            Some(60_000_000)
        );
        assert_eq!(
            step(&code, 7, at(1_800_000_060)).expect("opens"),
            None,
            "two steps late"
        );
        assert_eq!(
            step("000000", 7, now).ok().flatten().is_some(),
            code == "000000"
        );
        assert!(step(&code, 8, now).is_err(), "sealed to user 7");
    }

    #[test]
    fn rfc_6238_test_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); its last 6 digits.
        let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        assert_eq!(code_at(&secret, at(59)).expect("code"), "287082");
    }
}
