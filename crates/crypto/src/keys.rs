//! Signing keys kept in the database, in two families (Ed25519 for first-party `EdDSA`
//! tokens, RSA for the OpenID Connect provider's `RS256` ones): creating each family's
//! first key, rotating, and the key ring every instance keeps loaded, so that signing and
//! verifying need no I/O. Which key of a family signs and which are published is decided
//! by `shelter_domain::keys::states` from the keys' dates, so every instance decides the
//! same.

use std::sync::{Arc, RwLock};

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rsa::pkcs1::{DecodeRsaPublicKey as _, EncodeRsaPrivateKey as _, EncodeRsaPublicKey as _};
use rsa::traits::PublicKeyParts as _;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use shelter_domain::keys::{
    KeyAlgorithm, KeyState, PublicJwk, PublishedKey, SigningKeyStore, StoredKey, states,
};

use crate::sealing::{Purpose, Sealer};

/// The `kid` of a public key: its RFC 7638 thumbprint (the required members, in
/// lexicographic order, without white space).
fn thumbprint(jwk: &PublicJwk) -> String {
    let canonical = match jwk {
        PublicJwk::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        PublicJwk::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The JWK members of a stored public key.
fn public_jwk(algorithm: KeyAlgorithm, public_key: &[u8]) -> anyhow::Result<PublicJwk> {
    Ok(match algorithm {
        KeyAlgorithm::EdDsa => PublicJwk::Ed25519 {
            x: URL_SAFE_NO_PAD.encode(public_key),
        },
        KeyAlgorithm::Rs256 => {
            let key = rsa::RsaPublicKey::from_pkcs1_der(public_key).context("an RSA public key")?;
            PublicJwk::Rsa {
                n: URL_SAFE_NO_PAD.encode(key.n().to_be_bytes_trimmed_vartime()),
                e: URL_SAFE_NO_PAD.encode(key.e().to_be_bytes_trimmed_vartime()),
            }
        }
    })
}

/// The size of RSA keys: the contract's floor, and what Keycloak and the large providers
/// use. A 3072-bit key signs 2.5 times slower (115 against 289 signatures a second on one
/// core here, `examples/rs256_rate.rs`), and every ID and access token is one signature
/// at the token endpoint.
const RSA_BITS: usize = 2048;

/// A new key pair of `algorithm` and `generation`, its private key sealed: an Ed25519 seed,
/// or an RSA key of [`RSA_BITS`] as PKCS#1 DER.
///
/// # Errors
/// Only if encoding or sealing fails.
pub fn generate(
    algorithm: KeyAlgorithm,
    generation: i64,
    sealer: &Sealer,
    now: DateTime<Utc>,
    activates_at: DateTime<Utc>,
) -> anyhow::Result<StoredKey> {
    let (private, public_key) = match algorithm {
        KeyAlgorithm::EdDsa => {
            let seed = zeroize::Zeroizing::new(rand::random::<[u8; 32]>());
            let public = SigningKey::from_bytes(&seed)
                .verifying_key()
                .to_bytes()
                .to_vec();
            (zeroize::Zeroizing::new(seed.to_vec()), public)
        }
        KeyAlgorithm::Rs256 => {
            let key = rsa::RsaPrivateKey::new(
                &mut getrandom::rand_core::UnwrapErr(getrandom::SysRng),
                RSA_BITS,
            )
            .context("generate an RSA key")?;
            let private = key.to_pkcs1_der().context("encode an RSA key")?;
            let public = key
                .to_public_key()
                .to_pkcs1_der()
                .context("encode an RSA public key")?;
            (
                zeroize::Zeroizing::new(private.as_bytes().to_vec()),
                public.as_bytes().to_vec(),
            )
        }
    };
    let kid = thumbprint(&public_jwk(algorithm, &public_key)?);
    Ok(StoredKey {
        sealed_private_key: sealer.seal(&private, kid.as_bytes())?,
        kid,
        algorithm,
        generation,
        public_key,
        created_at: now,
        activates_at,
    })
}

/// Adds a key of `algorithm` one generation after the newest of any family; `false` when
/// another instance took that generation first.
async fn add_next(
    store: &dyn SigningKeyStore,
    algorithm: KeyAlgorithm,
    sealer: &Sealer,
    now: DateTime<Utc>,
    activates_at: DateTime<Utc>,
) -> anyhow::Result<Option<StoredKey>> {
    let newest = store.all().await?.iter().map(|k| k.generation).max();
    let key = generate(
        algorithm,
        newest.unwrap_or(0) + 1,
        sealer,
        now,
        activates_at,
    )?;
    Ok(store.add(key.clone()).await?.then_some(key))
}

/// Adds, for each family in `algorithms`, the key that signs from `activates_at` on.
///
/// # Errors
/// The store's, or another rotation winning three times in a row.
pub async fn rotate(
    store: &dyn SigningKeyStore,
    secret: &SecretString,
    now: DateTime<Utc>,
    activates_at: DateTime<Utc>,
    algorithms: &[KeyAlgorithm],
) -> anyhow::Result<Vec<StoredKey>> {
    let sealer = Sealer::new(secret, Purpose::SigningKeys);
    let mut added = Vec::with_capacity(algorithms.len());
    for &algorithm in algorithms {
        let mut tries = 0;
        loop {
            if let Some(key) = add_next(store, algorithm, &sealer, now, activates_at).await? {
                added.push(key);
                break;
            }
            tries += 1;
            anyhow::ensure!(
                tries < 3,
                "other rotations kept taking the next generation; try again"
            );
        }
    }
    Ok(added)
}

struct LoadedKey {
    stored: StoredKey,
    encoding: EncodingKey,
    decoding: DecodingKey,
    public: PublicJwk,
}

/// The signing keys as this instance last read them.
pub struct KeyRing {
    /// The families this deployment signs with; each has a key from the first start.
    families: Vec<KeyAlgorithm>,
    store: Arc<dyn SigningKeyStore>,
    sealer: Sealer,
    /// The longest an access token lives: how long a retired key stays published.
    lifetime: chrono::Duration,
    loaded: RwLock<Vec<Arc<LoadedKey>>>,
}

impl KeyRing {
    /// Loads the keys, creating each family's first key if it has none (one instance wins
    /// when several start at once; the others load its key).
    ///
    /// # Errors
    /// The store's, or a key that does not open with this `SHELTER_SECRET_KEY`.
    pub async fn open(
        store: Arc<dyn SigningKeyStore>,
        secret: &SecretString,
        lifetime: chrono::Duration,
        now: DateTime<Utc>,
        families: &[KeyAlgorithm],
    ) -> anyhow::Result<Arc<Self>> {
        let ring = Arc::new(Self {
            families: families.to_vec(),
            store,
            sealer: Sealer::new(secret, Purpose::SigningKeys),
            lifetime,
            loaded: RwLock::default(),
        });
        for &family in families {
            for _ in 0..3 {
                let keys = ring.store.all().await?;
                if keys.iter().any(|key| key.algorithm == family) {
                    break;
                }
                if add_next(ring.store.as_ref(), family, &ring.sealer, now, now)
                    .await?
                    .is_some()
                {
                    tracing::info!(algorithm = family.as_str(), "created the first signing key");
                }
            }
        }
        ring.reload().await?;
        Ok(ring)
    }

    /// A ring whose keys live only in this process, made anew at each start: for a
    /// development server without `SHELTER_SECRET_KEY`, which could not open sealed keys
    /// after a restart anyway (its signing secret is random per start too).
    ///
    /// # Errors
    /// Only if a key cannot be made.
    pub async fn ephemeral(
        lifetime: chrono::Duration,
        now: DateTime<Utc>,
        families: &[KeyAlgorithm],
    ) -> anyhow::Result<Arc<Self>> {
        let secret = SecretString::from(URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()));
        Self::open(
            Arc::new(InMemory::default()),
            &secret,
            lifetime,
            now,
            families,
        )
        .await
    }

    /// The families this ring keeps.
    pub fn families(&self) -> &[KeyAlgorithm] {
        &self.families
    }

    /// Reads the keys again; a key this instance already holds is not opened twice.
    ///
    /// # Errors
    /// The store's, or a new key that does not open with this `SHELTER_SECRET_KEY`.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let stored = self.store.all().await?;
        let held = self.keys();
        let mut loaded = Vec::with_capacity(stored.len());
        for key in stored {
            match held.iter().find(|k| k.stored == key) {
                Some(same) => loaded.push(Arc::clone(same)),
                None => loaded.push(Arc::new(self.load(key)?)),
            }
        }
        *self
            .loaded
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
        Ok(())
    }

    fn load(&self, stored: StoredKey) -> anyhow::Result<LoadedKey> {
        let private = self
            .sealer
            .open(&stored.sealed_private_key, stored.kid.as_bytes())
            .with_context(|| format!("signing key {}", stored.kid))?;
        let (encoding, decoding) = match stored.algorithm {
            KeyAlgorithm::EdDsa => {
                let seed: &[u8; 32] = private
                    .as_slice()
                    .try_into()
                    .context("a signing key is not 32 bytes")?;
                let der = SigningKey::from_bytes(seed)
                    .to_pkcs8_der()
                    .context("encode a signing key")?;
                (
                    EncodingKey::from_ed_der(der.as_bytes()),
                    DecodingKey::from_ed_der(&stored.public_key),
                )
            }
            KeyAlgorithm::Rs256 => (
                EncodingKey::from_rsa_der(&private),
                DecodingKey::from_rsa_der(&stored.public_key),
            ),
        };
        Ok(LoadedKey {
            public: public_jwk(stored.algorithm, &stored.public_key)?,
            encoding,
            decoding,
            stored,
        })
    }

    /// Reloads every `every` until `stop`, so rotations made elsewhere arrive here well
    /// before their keys sign. A failed reload keeps the keys already held.
    pub async fn keep_loaded_until_stopped(
        self: Arc<Self>,
        every: std::time::Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            if let Err(error) = self.reload().await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "could not reload the signing keys"
                );
            }
        }
    }

    fn keys(&self) -> Vec<Arc<LoadedKey>> {
        self.loaded
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `pick` over every key with its state at `now`, each family's states apart.
    fn with_states<T>(
        &self,
        now: DateTime<Utc>,
        pick: impl Fn(&LoadedKey, KeyState) -> Option<T>,
    ) -> Vec<T> {
        let keys = self.keys();
        [KeyAlgorithm::EdDsa, KeyAlgorithm::Rs256]
            .into_iter()
            .flat_map(|family| {
                let of_family = keys
                    .iter()
                    .map(|k| &k.stored)
                    .filter(move |k| k.algorithm == family);
                states(of_family, now, self.lifetime)
            })
            .filter_map(|(key, state)| {
                let loaded = keys.iter().find(|k| k.stored.kid == key.kid)?;
                pick(loaded, state)
            })
            .collect()
    }

    /// The key of `family` that signs at `now`, and its `kid`.
    pub fn signing(
        &self,
        family: KeyAlgorithm,
        now: DateTime<Utc>,
    ) -> Option<(String, EncodingKey)> {
        self.with_states(now, |key, state| {
            (key.stored.algorithm == family && state == KeyState::Signing)
                .then(|| (key.stored.kid.clone(), key.encoding.clone()))
        })
        .into_iter()
        .next()
    }

    /// The key `kid`, if it may verify tokens at `now`.
    pub fn verifying(&self, kid: &str, now: DateTime<Utc>) -> Option<DecodingKey> {
        self.with_states(now, |key, state| {
            (key.stored.kid == kid && state.is_published()).then(|| key.decoding.clone())
        })
        .into_iter()
        .next()
    }

    /// Every key that may verify a live token at `now`, for the JWKS.
    pub fn published(&self, now: DateTime<Utc>) -> Vec<PublishedKey> {
        self.with_states(now, |key, state| {
            state.is_published().then(|| PublishedKey {
                kid: key.stored.kid.clone(),
                public: key.public.clone(),
            })
        })
    }
}

/// The store's contract in memory (generations are unique): the keys of an ephemeral ring.
#[derive(Default)]
struct InMemory(std::sync::Mutex<Vec<StoredKey>>);

#[async_trait::async_trait]
impl SigningKeyStore for InMemory {
    async fn all(&self) -> Result<Vec<StoredKey>, shelter_domain::StorageError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone())
    }

    async fn add(&self, key: StoredKey) -> Result<bool, shelter_domain::StorageError> {
        let mut keys = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.iter().any(|k| k.generation == key.generation) {
            return Ok(false);
        }
        keys.push(key);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::Duration;

    type Memory = InMemory;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("time") + Duration::minutes(minutes)
    }

    const SECRET: &str = "keys-test-secret-keys-test-secret";
    const EDDSA: &[KeyAlgorithm] = &[KeyAlgorithm::EdDsa];

    #[tokio::test]
    async fn the_ring_signs_with_the_active_key_and_publishes_a_retired_one_for_a_token_lifetime() {
        let store = Arc::new(Memory::default());
        let secret = SecretString::from(SECRET);
        let ring = KeyRing::open(store.clone(), &secret, Duration::minutes(30), at(0), EDDSA)
            .await
            .expect("open");
        let again = KeyRing::open(store.clone(), &secret, Duration::minutes(30), at(0), EDDSA)
            .await
            .expect("a second instance");
        assert_eq!(store.all().await.expect("keys").len(), 1, "one first key");
        let (first, _) = ring.signing(KeyAlgorithm::EdDsa, at(0)).expect("signs");
        assert_eq!(
            again
                .signing(KeyAlgorithm::EdDsa, at(0))
                .map(|(kid, _)| kid),
            Some(first.clone())
        );

        let second = rotate(store.as_ref(), &secret, at(10), at(11), EDDSA)
            .await
            .expect("rotate")[0]
            .kid
            .clone();
        ring.reload().await.expect("reload");
        assert_eq!(
            ring.signing(KeyAlgorithm::EdDsa, at(10))
                .map(|(kid, _)| kid),
            Some(first.clone())
        );
        assert_eq!(
            ring.published(at(10)).len(),
            2,
            "the next key is published early"
        );
        assert_eq!(
            ring.signing(KeyAlgorithm::EdDsa, at(11))
                .map(|(kid, _)| kid),
            Some(second.clone())
        );
        assert!(
            ring.verifying(&first, at(40)).is_some(),
            "until 11 + 30 minutes"
        );
        assert!(ring.verifying(&first, at(41)).is_none(), "then retired");
        assert_eq!(
            ring.published(at(41))
                .iter()
                .map(|k| k.kid.clone())
                .collect::<Vec<_>>(),
            [second]
        );
        assert!(ring.verifying("unknown", at(11)).is_none());
    }

    #[tokio::test]
    async fn keys_sealed_with_another_secret_do_not_load() {
        let store = Arc::new(Memory::default());
        KeyRing::open(
            store.clone(),
            &SecretString::from(SECRET),
            Duration::minutes(30),
            at(0),
            EDDSA,
        )
        .await
        .expect("open");
        let other = SecretString::from("another-secret-another-secret-12");
        let error = KeyRing::open(store, &other, Duration::minutes(30), at(0), EDDSA)
            .await
            .err()
            .expect("refused");
        assert!(
            format!("{error:#}").contains("SHELTER_SECRET_KEY"),
            "{error:#}"
        );
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        // RFC 8037, appendix A.3: the thumbprint of the example Ed25519 key.
        assert_eq!(
            thumbprint(&PublicJwk::Ed25519 {
                x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into()
            }),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn an_rsa_kid_is_its_rfc_7638_thumbprint() {
        // RFC 7638, section 3.1: the example RSA key and its thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwk = PublicJwk::Rsa {
            n: n.into(),
            e: "AQAB".into(),
        };
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[tokio::test]
    async fn both_families_sign_apart_and_an_rsa_key_verifies_what_it_signed() {
        let store = Arc::new(Memory::default());
        let secret = SecretString::from(SECRET);
        let both = &[KeyAlgorithm::EdDsa, KeyAlgorithm::Rs256];
        let ring = KeyRing::open(store.clone(), &secret, Duration::minutes(30), at(0), both)
            .await
            .expect("open");
        let keys = store.all().await.expect("keys");
        assert_eq!(keys.len(), 2, "one first key per family");
        let (rsa_kid, encoding) = ring.signing(KeyAlgorithm::Rs256, at(0)).expect("signs");
        let (ed_kid, _) = ring.signing(KeyAlgorithm::EdDsa, at(0)).expect("signs");
        assert_ne!(rsa_kid, ed_kid);
        let published = ring.published(at(0));
        assert!(
            published.iter().any(|k| k.kid == rsa_kid
                && matches!(&k.public, PublicJwk::Rsa { e, n } if e == "AQAB" && n.len() >= 342)),
            "a 2048-bit or larger modulus: {published:?}"
        );
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        let token = jsonwebtoken::encode(&header, &serde_json::json!({"sub": "1"}), &encoding)
            .expect("sign");
        let decoding = ring.verifying(&rsa_kid, at(0)).expect("verifies");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation)
            .expect("an RS256 token verifies with its key");
        // Rotating both adds one key to each family; a family's keys rotate apart.
        let added = rotate(store.as_ref(), &secret, at(10), at(11), both)
            .await
            .expect("rotate");
        assert_eq!(added.len(), 2);
        ring.reload().await.expect("reload");
        assert_eq!(
            ring.published(at(12)).len(),
            4,
            "the retired ones verify a while"
        );
        assert_ne!(
            ring.signing(KeyAlgorithm::Rs256, at(12))
                .map(|(kid, _)| kid),
            Some(rsa_kid)
        );
    }
}
