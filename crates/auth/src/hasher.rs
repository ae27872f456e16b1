//! argon2id password hashing.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use shelter_domain::ports::PasswordHasher;
use shelter_domain::{Password, PasswordHash};
use tokio::sync::Semaphore;

/// argon2id cost parameters. The defaults are OWASP's minimum: 19 MiB, 2 passes, 1 lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashingParams {
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

/// Hashes with argon2id. Each hash takes tens of milliseconds of CPU and 19 MiB of memory,
/// so it runs on the blocking pool, never on an async worker, and at most one hash per
/// core runs at a time: a burst of logins queues instead of exhausting memory.
pub struct Argon2PasswordHasher {
    argon2: Argon2<'static>,
    /// Verified against when the user does not exist, so that an unknown login costs
    /// exactly what a wrong password costs.
    dummy_hash: String,
    permits: Arc<Semaphore>,
}

impl Argon2PasswordHasher {
    /// # Errors
    /// When the parameters are out of argon2's range.
    pub async fn new(params: HashingParams) -> anyhow::Result<Self> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| anyhow!("invalid argon2 parameters: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let permits = Arc::new(Semaphore::new(workers));
        let hasher = argon2.clone();
        let dummy_hash = tokio::task::spawn_blocking(move || {
            hasher
                .hash_password(b"a password nobody has")
                .map(|hash| hash.to_string())
        })
        .await
        .context("dummy hash task")?
        .map_err(|e| anyhow!("dummy hash: {e}"))?;
        Ok(Self {
            argon2,
            dummy_hash,
            permits,
        })
    }

    async fn off_the_workers<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("hashing semaphore closed")?;
        let argon2 = self.argon2.clone();
        tokio::task::spawn_blocking(move || job(&argon2))
            .await
            .context("hashing task")
    }
}

#[async_trait]
impl PasswordHasher for Argon2PasswordHasher {
    async fn hash(&self, password: &Password) -> anyhow::Result<PasswordHash> {
        let secret = password.secret().clone();
        self.off_the_workers(move |argon2| {
            argon2
                .hash_password(secret.expose_secret().as_bytes())
                .map(|hash| PasswordHash::from_phc(hash.to_string()))
                .map_err(|e| anyhow!("hash password: {e}"))
        })
        .await?
    }

    async fn verify(
        &self,
        candidate: &SecretString,
        hash: Option<PasswordHash>,
    ) -> anyhow::Result<bool> {
        let candidate = candidate.clone();
        let known = hash.is_some();
        let phc = hash.map_or_else(|| self.dummy_hash.clone(), |h| h.as_str().to_owned());
        let matches = self
            .off_the_workers(move |argon2| {
                // The parameters come from the stored string, so hashes made with older or
                // other settings still verify.
                match argon2.verify_password(candidate.expose_secret().as_bytes(), phc.as_str()) {
                    Ok(()) => Ok(true),
                    Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                    Err(e) => Err(anyhow!("verify password: {e}")),
                }
            })
            .await??;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn hasher() -> Argon2PasswordHasher {
        Argon2PasswordHasher::new(HashingParams::default())
            .await
            .expect("default params are valid")
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_at_the_owasp_minimum() {
        let hash = hasher()
            .await
            .hash(&Password::parse("correct horse").expect("pw"))
            .await
            .expect("hashed");
        assert!(
            hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_str()
        );
    }

    #[tokio::test]
    async fn verifies_the_right_password_only() {
        let hasher = hasher().await;
        let hash = hasher
            .hash(&Password::parse("correct horse").expect("pw"))
            .await
            .expect("hashed");
        assert!(
            hasher
                .verify(&SecretString::from("correct horse"), Some(hash.clone()))
                .await
                .expect("verified")
        );
        assert!(
            !hasher
                .verify(&SecretString::from("wrong horse"), Some(hash))
                .await
                .expect("verified")
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        let hasher = hasher().await;
        assert!(
            !hasher
                .verify(&SecretString::from("a password nobody has"), None)
                .await
                .expect("verified")
        );
    }

    #[tokio::test]
    async fn hashes_made_with_other_parameters_still_verify() {
        let old = Argon2PasswordHasher::new(HashingParams {
            memory_kib: 8 * 1024,
            iterations: 3,
            parallelism: 2,
        })
        .await
        .expect("valid params");
        let hash = old
            .hash(&Password::parse("legacy password").expect("pw"))
            .await
            .expect("hashed");
        assert!(hash.as_str().contains("m=8192,t=3,p=2"));
        assert!(
            hasher()
                .await
                .verify(&SecretString::from("legacy password"), Some(hash))
                .await
                .expect("verified")
        );
    }

    #[tokio::test]
    async fn a_corrupt_hash_is_an_error_not_a_match() {
        let result = hasher()
            .await
            .verify(
                &SecretString::from("anything"),
                Some(PasswordHash::from_phc("not a phc string".into())),
            )
            .await;
        assert!(result.is_err());
    }
}
