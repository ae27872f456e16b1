//! Ed25519 signing keys kept in the database: creating the first, rotating, and the key ring
//! every instance keeps loaded, so that signing and verifying need no I/O. Which key signs
//! and which are published is decided by `shelter_domain::keys::states` from the keys'
//! dates, so every instance decides the same.

use std::sync::{Arc, RwLock};

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::{DecodingKey, EncodingKey};
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use shelter_domain::keys::{KeyState, PublishedKey, SigningKeyStore, StoredKey, states};

use crate::sealing::{Purpose, Sealer};

/// The `kid` of a public key: its RFC 7638 thumbprint.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A new key pair of `generation`, its private key sealed.
///
/// # Errors
/// Only if sealing fails.
pub fn generate(
    generation: i64,
    sealer: &Sealer,
    now: DateTime<Utc>,
    activates_at: DateTime<Utc>,
) -> anyhow::Result<StoredKey> {
    let seed = zeroize::Zeroizing::new(rand::random::<[u8; 32]>());
    let key = SigningKey::from_bytes(&seed);
    let public_key = key.verifying_key().to_bytes().to_vec();
    let kid = thumbprint(&URL_SAFE_NO_PAD.encode(&public_key));
    Ok(StoredKey {
        sealed_private_key: sealer.seal(seed.as_slice(), kid.as_bytes())?,
        kid,
        generation,
        public_key,
        created_at: now,
        activates_at,
    })
}

/// Adds the key that signs from `activates_at` on, one generation after the newest.
///
/// # Errors
/// The store's, or another rotation winning three times in a row.
pub async fn rotate(
    store: &dyn SigningKeyStore,
    secret: &SecretString,
    now: DateTime<Utc>,
    activates_at: DateTime<Utc>,
) -> anyhow::Result<StoredKey> {
    let sealer = Sealer::new(secret, Purpose::SigningKeys);
    for _ in 0..3 {
        let newest = store.all().await?.iter().map(|k| k.generation).max();
        let key = generate(newest.unwrap_or(0) + 1, &sealer, now, activates_at)?;
        if store.add(key.clone()).await? {
            return Ok(key);
        }
    }
    anyhow::bail!("other rotations kept taking the next generation; try again")
}

struct LoadedKey {
    stored: StoredKey,
    encoding: EncodingKey,
    decoding: DecodingKey,
    x: String,
}

/// The signing keys as this instance last read them.
pub struct KeyRing {
    store: Arc<dyn SigningKeyStore>,
    sealer: Sealer,
    /// The longest an access token lives: how long a retired key stays published.
    lifetime: chrono::Duration,
    loaded: RwLock<Vec<Arc<LoadedKey>>>,
}

impl KeyRing {
    /// Loads the keys, creating the first one if there is none (one instance wins when
    /// several start at once; the others load its key).
    ///
    /// # Errors
    /// The store's, or a key that does not open with this `SHELTER_SECRET_KEY`.
    pub async fn open(
        store: Arc<dyn SigningKeyStore>,
        secret: &SecretString,
        lifetime: chrono::Duration,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Arc<Self>> {
        let ring = Arc::new(Self {
            store,
            sealer: Sealer::new(secret, Purpose::SigningKeys),
            lifetime,
            loaded: RwLock::default(),
        });
        if ring.store.all().await?.is_empty() {
            let first = generate(1, &ring.sealer, now, now)?;
            if ring.store.add(first).await? {
                tracing::info!("created the first signing key");
            }
        }
        ring.reload().await?;
        Ok(ring)
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
        let seed = self
            .sealer
            .open(&stored.sealed_private_key, stored.kid.as_bytes())
            .with_context(|| format!("signing key {}", stored.kid))?;
        let seed: &[u8; 32] = seed
            .as_slice()
            .try_into()
            .context("a signing key is not 32 bytes")?;
        let der = SigningKey::from_bytes(seed)
            .to_pkcs8_der()
            .context("encode a signing key")?;
        let x = URL_SAFE_NO_PAD.encode(&stored.public_key);
        Ok(LoadedKey {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(&stored.public_key),
            x,
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

    fn with_states<T>(
        &self,
        now: DateTime<Utc>,
        pick: impl Fn(&LoadedKey, KeyState) -> Option<T>,
    ) -> Vec<T> {
        let keys = self.keys();
        states(keys.iter().map(|k| &k.stored), now, self.lifetime)
            .into_iter()
            .filter_map(|(key, state)| {
                let loaded = keys.iter().find(|k| k.stored.kid == key.kid)?;
                pick(loaded, state)
            })
            .collect()
    }

    /// The key that signs at `now`, and its `kid`.
    pub(crate) fn signing(&self, now: DateTime<Utc>) -> Option<(String, EncodingKey)> {
        self.with_states(now, |key, state| {
            (state == KeyState::Signing).then(|| (key.stored.kid.clone(), key.encoding.clone()))
        })
        .into_iter()
        .next()
    }

    /// The key `kid`, if it may verify tokens at `now`.
    pub(crate) fn verifying(&self, kid: &str, now: DateTime<Utc>) -> Option<DecodingKey> {
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
                x: key.x.clone(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::Duration;
    use shelter_domain::StorageError;

    /// The store's contract in memory: generations are unique.
    #[derive(Default)]
    struct Memory(Mutex<Vec<StoredKey>>);

    #[async_trait]
    impl SigningKeyStore for Memory {
        async fn all(&self) -> Result<Vec<StoredKey>, StorageError> {
            Ok(self.0.lock().expect("lock").clone())
        }

        async fn add(&self, key: StoredKey) -> Result<bool, StorageError> {
            let mut keys = self.0.lock().expect("lock");
            if keys.iter().any(|k| k.generation == key.generation) {
                return Ok(false);
            }
            keys.push(key);
            Ok(true)
        }
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("time") + Duration::minutes(minutes)
    }

    const SECRET: &str = "keys-test-secret-keys-test-secret";

    #[tokio::test]
    async fn the_ring_signs_with_the_active_key_and_publishes_a_retired_one_for_a_token_lifetime() {
        let store = Arc::new(Memory::default());
        let secret = SecretString::from(SECRET);
        let ring = KeyRing::open(store.clone(), &secret, Duration::minutes(30), at(0))
            .await
            .expect("open");
        let again = KeyRing::open(store.clone(), &secret, Duration::minutes(30), at(0))
            .await
            .expect("a second instance");
        assert_eq!(store.all().await.expect("keys").len(), 1, "one first key");
        let (first, _) = ring.signing(at(0)).expect("signs");
        assert_eq!(
            again.signing(at(0)).map(|(kid, _)| kid),
            Some(first.clone())
        );

        let second = rotate(store.as_ref(), &secret, at(10), at(11))
            .await
            .expect("rotate")
            .kid;
        ring.reload().await.expect("reload");
        assert_eq!(
            ring.signing(at(10)).map(|(kid, _)| kid),
            Some(first.clone())
        );
        assert_eq!(
            ring.published(at(10)).len(),
            2,
            "the next key is published early"
        );
        assert_eq!(
            ring.signing(at(11)).map(|(kid, _)| kid),
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
        )
        .await
        .expect("open");
        let other = SecretString::from("another-secret-another-secret-12");
        let error = KeyRing::open(store, &other, Duration::minutes(30), at(0))
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
            thumbprint("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}
