//! Secrets at rest (signing keys, TOTP secrets): sealed with ChaCha20-Poly1305 under a key
//! derived from `SHELTER_SECRET_KEY` by HKDF-SHA256, one derived key per purpose, so a
//! value sealed for one purpose cannot be opened as another. A sealed value is the random
//! 12-byte nonce followed by the ciphertext and its tag; the associated data (the row's
//! id) ties it to its row, so sealed values cannot be swapped between rows.

use anyhow::{Context, anyhow};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

const NONCE_BYTES: usize = 12;

/// What a sealed value is for; each purpose has its own derived key.
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    SigningKeys,
    TotpSecrets,
    AuthorizationCodes,
    /// What travels through a browser: sign-ins with upstream providers in flight.
    BrowserValues,
}

impl Purpose {
    fn info(self) -> &'static [u8] {
        match self {
            Self::SigningKeys => b"shelter signing keys v1",
            Self::TotpSecrets => b"shelter totp secrets v1",
            Self::AuthorizationCodes => b"shelter authorization codes v1",
            Self::BrowserValues => b"shelter browser values v1",
        }
    }
}

/// Seals and opens values of one purpose.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl Sealer {
    pub fn new(secret: &SecretString, purpose: Purpose) -> Self {
        let mut key = Key::default();
        Hkdf::<Sha256>::new(Some(b"shelter"), secret.expose_secret().as_bytes())
            .expand(purpose.info(), &mut key)
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
        Self {
            cipher: ChaCha20Poly1305::new(&key),
        }
    }

    /// # Errors
    /// Only if the cipher fails, which it does not for inputs of this size.
    pub fn seal(&self, plaintext: &[u8], row: &[u8]) -> anyhow::Result<Vec<u8>> {
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let ciphertext = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: row,
                },
            )
            .map_err(|_| anyhow!("sealing failed"))?;
        Ok([nonce.as_slice(), &ciphertext].concat())
    }

    /// # Errors
    /// A value sealed under another secret, purpose or row, or altered.
    pub fn open(&self, sealed: &[u8], row: &[u8]) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
        let (nonce, ciphertext) = sealed
            .split_first_chunk::<NONCE_BYTES>()
            .context("a sealed value is too short")?;
        self.cipher
            .decrypt(
                &Nonce::from(*nonce),
                Payload {
                    msg: ciphertext,
                    aad: row,
                },
            )
            .map(zeroize::Zeroizing::new)
            .map_err(|_| {
                anyhow!("a sealed value does not open: SHELTER_SECRET_KEY changed, or the row was altered")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(secret: &str, purpose: Purpose) -> Sealer {
        Sealer::new(&SecretString::from(secret), purpose)
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_secret_purpose_and_row() {
        let keys = sealer("one-secret-one-secret-one-secret", Purpose::SigningKeys);
        let sealed = keys.seal(b"private", b"row-1").expect("sealed");
        assert!(!sealed.windows(7).any(|w| w == b"private"));
        assert_eq!(
            keys.open(&sealed, b"row-1").expect("opens").as_slice(),
            b"private"
        );
        assert_ne!(
            sealed,
            keys.seal(b"private", b"row-1").expect("sealed"),
            "fresh nonce"
        );
        assert!(keys.open(&sealed, b"row-2").is_err(), "another row");
        let other_secret = sealer("two-secret-two-secret-two-secret", Purpose::SigningKeys);
        assert!(other_secret.open(&sealed, b"row-1").is_err());
        let other_purpose = sealer("one-secret-one-secret-one-secret", Purpose::TotpSecrets);
        assert!(other_purpose.open(&sealed, b"row-1").is_err());
        let mut altered = sealed.clone();
        if let Some(last) = altered.last_mut() {
            *last ^= 1;
        }
        assert!(keys.open(&altered, b"row-1").is_err());
        assert!(keys.open(&sealed[..5], b"row-1").is_err());
    }
}
