//! Signing keys: which key signs, and which keys other services must still be able to
//! verify with. Two families live side by side, each with its own rotation: Ed25519
//! (`EdDSA`, first-party access tokens when `SHELTER_JWT_ALGORITHM=EdDSA`) and RSA
//! (`RS256`, the OpenID Connect provider's ID and access tokens, always). The keys live in
//! the database, shared by every instance; the rules here decide from their dates alone, so
//! every instance decides the same.
//!
//! - A rotation adds a key that becomes the signing key at `activates_at`, a little later
//!   than its creation, so that every instance has loaded it (and can verify its tokens)
//!   before any instance signs with it.
//! - A key retires when the next one activates. It is still published, and still
//!   verifies, until the longest access token it may have signed has expired.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::error::StorageError;

/// A family of signing keys: the JWS algorithm its keys sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// Ed25519.
    EdDsa,
    /// RSA (2048-bit) with SHA-256, PKCS#1 v1.5.
    Rs256,
}

impl KeyAlgorithm {
    /// The JWS name (`alg`), also what the store keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Rs256 => "RS256",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::EdDsa, Self::Rs256]
            .into_iter()
            .find(|algorithm| algorithm.as_str() == raw)
    }
}

/// One key pair as it is stored: the private key only sealed (encrypted and authenticated
/// with a key derived from the service's secret).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The `kid`: the key's RFC 7638 thumbprint.
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    /// 1 for the first key, one more for each key added, whatever its family; unique, so
    /// two instances starting at once on an empty database cannot both create a first key.
    pub generation: i64,
    /// The raw Ed25519 public key, or an RSA public key as PKCS#1 DER.
    pub public_key: Vec<u8>,
    pub sealed_private_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub activates_at: DateTime<Utc>,
}

/// Shows no key material.
impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("generation", &self.generation)
            .field("created_at", &self.created_at)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

/// A key another service can verify tokens with: its `kid` and the public part of its JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    pub kid: String,
    pub public: PublicJwk,
}

/// The public members of a JWK, base64url without padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicJwk {
    /// `kty: OKP`, `crv: Ed25519`: the raw public key.
    Ed25519 { x: String },
    /// `kty: RSA`: the modulus and the public exponent, big-endian.
    Rsa { n: String, e: String },
}

/// Where a key is in its life at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Rotated in, not signing yet; already published.
    Next,
    /// Signs new tokens.
    Signing,
    /// Signs no more; published until the tokens it signed have expired.
    Verifying { until: DateTime<Utc> },
    /// No live token can carry it.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Signing => "signing",
            Self::Verifying { .. } => "verifying",
            Self::Retired => "retired",
        }
    }

    /// Whether the key belongs in the JWKS (and verifies tokens).
    pub fn is_published(self) -> bool {
        !matches!(self, Self::Retired)
    }
}

/// The state of every key of one family at `now`, in generation order, given the longest
/// life of a token it signs (`lifetime`). `keys` may come in any order; pass one family's.
pub fn states<'a>(
    keys: impl IntoIterator<Item = &'a StoredKey>,
    now: DateTime<Utc>,
    lifetime: Duration,
) -> Vec<(&'a StoredKey, KeyState)> {
    let mut keys: Vec<&StoredKey> = keys.into_iter().collect();
    keys.sort_by_key(|key| key.generation);
    let signing = keys
        .iter()
        .rposition(|key| key.activates_at <= now)
        // Before any key is active (the very first rotation is still pending), the oldest
        // signs: something must.
        .unwrap_or(0);
    keys.iter()
        .enumerate()
        .map(|(index, key)| {
            let state = match index.cmp(&signing) {
                std::cmp::Ordering::Equal => KeyState::Signing,
                std::cmp::Ordering::Greater => KeyState::Next,
                std::cmp::Ordering::Less => {
                    // It stopped signing when the key after it activated.
                    let until = keys[index + 1].activates_at + lifetime;
                    if until > now {
                        KeyState::Verifying { until }
                    } else {
                        KeyState::Retired
                    }
                }
            };
            (*key, state)
        })
        .collect()
}

/// The signing keys, shared by every instance. Like every store, each method MUST return
/// `Unavailable` when the database does not answer in time.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Every key, in generation order.
    async fn all(&self) -> Result<Vec<StoredKey>, StorageError>;

    /// Adds `key`; `false` when its generation is taken (another instance or rotation got
    /// there first), in which case nothing was added.
    async fn add(&self, key: StoredKey) -> Result<bool, StorageError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("time") + Duration::minutes(minutes)
    }

    fn key(generation: i64, activates: i64) -> StoredKey {
        StoredKey {
            kid: format!("k{generation}"),
            algorithm: KeyAlgorithm::EdDsa,
            generation,
            public_key: vec![],
            sealed_private_key: vec![],
            created_at: at(activates - 1),
            activates_at: at(activates),
        }
    }

    fn named(keys: &[StoredKey], now: i64) -> Vec<(String, &'static str)> {
        states(keys.iter(), at(now), Duration::minutes(30))
            .into_iter()
            .map(|(key, state)| (key.kid.clone(), state.as_str()))
            .collect()
    }

    #[test]
    fn a_rotated_key_signs_from_its_activation_and_the_old_one_verifies_for_a_token_lifetime() {
        // k1 active from 0, k2 rotated in at 99 and active from 100.
        let keys = [key(2, 100), key(1, 0)];
        assert_eq!(
            named(&keys, 99),
            [("k1".into(), "signing"), ("k2".into(), "next")]
        );
        assert_eq!(
            named(&keys, 100),
            [("k1".into(), "verifying"), ("k2".into(), "signing")]
        );
        assert_eq!(
            named(&keys, 129),
            [("k1".into(), "verifying"), ("k2".into(), "signing")]
        );
        assert_eq!(
            named(&keys, 130),
            [("k1".into(), "retired"), ("k2".into(), "signing")]
        );
        let states = states(&keys, at(110), Duration::minutes(30));
        assert_eq!(states[0].1, KeyState::Verifying { until: at(130) });
        assert!(states.iter().all(|(_, state)| state.is_published()));
    }

    #[test]
    fn before_any_key_is_active_the_oldest_signs() {
        assert_eq!(named(&[key(1, 5)], 0), [("k1".into(), "signing")]);
    }

    #[test]
    fn debug_shows_no_key_material() {
        let mut stored = key(1, 0);
        stored.sealed_private_key = b"sealed-secret".to_vec();
        assert!(!format!("{stored:?}").contains("115"), "{stored:?}");
        assert!(!format!("{stored:?}").contains("sealed-secret"));
    }
}
