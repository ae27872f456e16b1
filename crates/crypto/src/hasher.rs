//! argon2id password hashing on a fixed pool of long-lived threads.
//!
//! argon2 needs its whole working memory (19 MiB at the defaults) for every hash. Allocated
//! per hash on short-lived blocking threads, those buffers stay with the allocator's
//! per-thread arenas and a burst of logins leaves the process at gigabytes. Here each
//! hashing thread keeps one block and hashes into it for as long as work keeps coming; a
//! thread idle for [`IDLE_RELEASE`] gives its block back, so an idle server is small. A
//! bounded queue in front of the threads turns overload into an immediate
//! `HashError::Busy` (a 503 for the client) instead of growing memory or latency.

use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};

use anyhow::{Context, anyhow};
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash as Phc, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use shelter_domain::ports::PasswordHasher;
use shelter_domain::{HashError, Password, PasswordHash};
use tokio::sync::oneshot;

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

/// How many hashing threads run and how many requests may wait for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingPool {
    pub threads: usize,
    pub queue: usize,
}

impl HashingPool {
    /// `threads` threads with a queue of 64 jobs each: about a second of logins at the
    /// default cost, so a burst waits briefly and a flood is refused.
    pub fn with_threads(threads: usize) -> Self {
        Self {
            threads,
            queue: 64 * threads,
        }
    }
}

impl Default for HashingPool {
    /// One thread per core: hashing is pure CPU, more threads only add memory.
    fn default() -> Self {
        Self::with_threads(std::thread::available_parallelism().map_or(2, std::num::NonZero::get))
    }
}

const OUTPUT_LEN: usize = 32;

/// How long a hashing thread keeps its memory without work. Long enough that a steady
/// trickle of logins reuses it, short enough that an idle server gives it back.
pub const IDLE_RELEASE: Duration = Duration::from_secs(2);

enum Work {
    Hash(SecretString),
    Verify {
        candidate: SecretString,
        phc: String,
    },
}

enum Done {
    Hashed(String),
    Verified(bool),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<anyhow::Result<Done>>,
}

/// Hashes with argon2id on [`HashingPool::threads`] dedicated threads, each reusing its
/// own preallocated memory, behind a queue of [`HashingPool::queue`] jobs.
pub struct Argon2PasswordHasher {
    jobs: Sender<Job>,
    /// Verified against when the user does not exist, so that an unknown login costs
    /// exactly what a wrong password costs.
    dummy_hash: String,
}

impl Argon2PasswordHasher {
    /// Starts the hashing threads.
    ///
    /// # Errors
    /// When the parameters are out of argon2's range, or a thread cannot be started.
    pub fn new(params: HashingParams, pool: HashingPool) -> anyhow::Result<Self> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            Some(OUTPUT_LEN),
        )
        .map_err(|e| anyhow!("invalid argon2 parameters: {e}"))?;
        let (jobs, queue) = bounded(pool.queue.max(1));
        for index in 0..pool.threads.max(1) {
            let worker = Worker::new(params.clone());
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || {
                    yield_to_requests();
                    worker.run(&queue);
                })
                .context("start a hashing thread")?;
        }
        // Any valid PHC string with the configured parameters costs one full verification;
        // a random salt and output make one that no password matches, without spending a
        // hash (and a thread's memory) at start-up.
        let random_output = [Salt::generate().as_ref(), Salt::generate().as_ref()].concat();
        let dummy_hash = phc_string(&params, Salt::generate(), &random_output)?;
        Ok(Self { jobs, dummy_hash })
    }

    async fn submit(&self, work: Work) -> Result<Done, HashError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .try_send(Job { work, reply })
            .map_err(|error| match error {
                TrySendError::Full(_) => HashError::Busy,
                TrySendError::Disconnected(_) => anyhow!("the hashing threads are gone").into(),
            })?;
        let _in_flight = InFlight::counted();
        Ok(answer.await.context("a hashing thread dropped its job")??)
    }
}

/// One hash queued or running, counted in `shelter_password_hashes_in_flight` for as long
/// as its caller waits (also when the caller gives up and drops the wait).
struct InFlight;

impl InFlight {
    fn counted() -> Self {
        metrics::gauge!("shelter_password_hashes_in_flight").increment(1);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("shelter_password_hashes_in_flight").decrement(1);
    }
}

/// Lowers the calling hashing thread's priority (a positive nice value on Linux), so that
/// when logins fill every core, the HTTP workers still get the CPU first: a read waits for
/// no hash, and logins take what is left. Where the OS refuses, hashing runs at the normal
/// priority, as before.
fn yield_to_requests() {
    let lower = thread_priority::ThreadPriorityValue::try_from(25_u8)
        .map(thread_priority::ThreadPriority::Crossplatform);
    if let Ok(priority) = lower
        && let Err(error) = thread_priority::set_current_thread_priority(priority)
    {
        tracing::debug!(?error, "the hashing thread keeps its priority");
    }
}

/// An argon2id PHC string with these parameters, salt and output.
fn phc_string(params: &Params, salt: Salt, output: &[u8]) -> anyhow::Result<String> {
    let phc = Phc {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params)
            .map_err(|e| anyhow!("encode argon2 parameters: {e}"))?,
        salt: Some(salt),
        hash: Some(Output::new(output).map_err(|e| anyhow!("encode hash: {e}"))?),
    };
    Ok(phc.to_string())
}

/// One hashing thread and the memory it hashes in.
struct Worker {
    argon2: Argon2<'static>,
    /// Empty while idle; sized for the largest hash seen since.
    memory: Vec<Block>,
}

/// At least `blocks` blocks of `memory`, kept for the next hash.
fn at_least(memory: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if memory.len() < blocks {
        *memory = vec![Block::new(); blocks];
    }
    &mut memory[..blocks]
}

impl Worker {
    fn new(params: Params) -> Self {
        Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            memory: Vec::new(),
        }
    }

    fn run(mut self, queue: &Receiver<Job>) {
        loop {
            let job = match queue.recv_timeout(IDLE_RELEASE) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    self.memory = Vec::new();
                    match queue.recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    }
                }
                // Every sender is gone: the hasher was dropped.
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let done = match job.work {
                Work::Hash(password) => self.hash(&password).map(Done::Hashed),
                Work::Verify { candidate, phc } => {
                    self.verify(&candidate, &phc).map(Done::Verified)
                }
            };
            // The request may have given up meanwhile; nobody is left to tell.
            let _ = job.reply.send(done);
        }
    }

    fn hash(&mut self, password: &SecretString) -> anyhow::Result<String> {
        let salt = Salt::generate();
        let mut output = [0u8; OUTPUT_LEN];
        let params = self.argon2.params();
        self.argon2
            .hash_password_into_with_memory(
                password.expose_secret().as_bytes(),
                &salt,
                &mut output,
                at_least(&mut self.memory, params.block_count()),
            )
            .map_err(|e| anyhow!("hash password: {e}"))?;
        phc_string(params, salt, &output)
    }

    /// The parameters come from the stored string, so hashes made with older or other
    /// settings still verify.
    fn verify(&mut self, candidate: &SecretString, phc: &str) -> anyhow::Result<bool> {
        let stored = Phc::new(phc).map_err(|e| anyhow!("stored hash: {e}"))?;
        let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
            anyhow::bail!("stored hash has no salt or output");
        };
        let algorithm = Algorithm::try_from(stored.algorithm.as_str())
            .map_err(|e| anyhow!("stored hash algorithm: {e}"))?;
        let version = stored
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|e| anyhow!("stored hash version: {e}"))?
            .unwrap_or_default();
        let params = Params::try_from(&stored).map_err(|e| anyhow!("stored hash params: {e}"))?;
        let blocks = params.block_count();
        let argon2 = Argon2::new(algorithm, version, params);
        let mut output = vec![0u8; expected.len()];
        argon2
            .hash_password_into_with_memory(
                candidate.expose_secret().as_bytes(),
                salt,
                &mut output,
                at_least(&mut self.memory, blocks),
            )
            .map_err(|e| anyhow!("verify password: {e}"))?;
        // `Output`'s equality is constant-time.
        Ok(Output::new(&output).map_err(|e| anyhow!("verify password: {e}"))? == *expected)
    }
}

#[async_trait]
impl PasswordHasher for Argon2PasswordHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        match self.submit(Work::Hash(password.secret().clone())).await? {
            Done::Hashed(phc) => Ok(PasswordHash::from_phc(phc)),
            Done::Verified(_) => Err(anyhow!("a hash job answered with a verification").into()),
        }
    }

    async fn verify(
        &self,
        candidate: &SecretString,
        hash: Option<PasswordHash>,
    ) -> Result<bool, HashError> {
        let known = hash.is_some();
        let phc = hash.map_or_else(|| self.dummy_hash.clone(), |h| h.as_str().to_owned());
        let work = Work::Verify {
            candidate: candidate.clone(),
            phc,
        };
        match self.submit(work).await? {
            Done::Verified(matches) => Ok(known && matches),
            Done::Hashed(_) => Err(anyhow!("a verify job answered with a hash").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn hasher() -> Argon2PasswordHasher {
        Argon2PasswordHasher::new(HashingParams::default(), HashingPool::default())
            .expect("default params are valid")
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_at_the_owasp_minimum() {
        let hash = hasher()
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
    async fn hashes_verify_with_the_argon2_crates_own_verifier() {
        use argon2::PasswordVerifier as _;
        let hash = hasher()
            .hash(&Password::parse("correct horse").expect("pw"))
            .await
            .expect("hashed");
        let parsed = Phc::new(hash.as_str()).expect("phc");
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse", &parsed)
                .is_err()
        );
    }

    #[tokio::test]
    async fn verifies_the_right_password_only() {
        let hasher = hasher();
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
    async fn an_unknown_user_costs_one_verification_and_never_verifies() {
        let hasher = hasher();
        assert!(
            hasher
                .dummy_hash
                .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "the dummy costs what a real hash costs: {}",
            hasher.dummy_hash
        );
        for candidate in ["", "a password nobody has", "correct horse"] {
            assert!(
                !hasher
                    .verify(&SecretString::from(candidate), None)
                    .await
                    .expect("verified")
            );
        }
    }

    #[tokio::test]
    async fn hashes_made_with_other_parameters_still_verify() {
        use argon2::PasswordHasher as _;
        // Made by the argon2 crate itself, with more memory than the pool keeps per thread.
        let legacy = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(32 * 1024, 3, 2, None).expect("params"),
        )
        .hash_password(b"legacy password")
        .expect("hashed")
        .to_string();
        assert!(legacy.contains("m=32768,t=3,p=2"), "{legacy}");
        let hasher = hasher();
        let legacy = PasswordHash::from_phc(legacy);
        assert!(
            hasher
                .verify(&SecretString::from("legacy password"), Some(legacy.clone()))
                .await
                .expect("verified")
        );
        assert!(
            !hasher
                .verify(&SecretString::from("other password"), Some(legacy))
                .await
                .expect("verified")
        );
    }

    #[tokio::test]
    async fn a_corrupt_hash_is_an_error_not_a_match() {
        let result = hasher()
            .verify(
                &SecretString::from("anything"),
                Some(PasswordHash::from_phc("not a phc string".into())),
            )
            .await;
        assert!(
            matches!(result, Err(HashError::Unexpected(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once_instead_of_growing() {
        let hasher = Arc::new(
            Argon2PasswordHasher::new(
                HashingParams::default(),
                HashingPool {
                    threads: 1,
                    queue: 2,
                },
            )
            .expect("hasher"),
        );
        let password = Password::parse("correct horse").expect("pw");
        let jobs: Vec<_> = (0..12)
            .map(|_| {
                let hasher = Arc::clone(&hasher);
                let password = password.clone();
                tokio::spawn(async move { hasher.hash(&password).await })
            })
            .collect();
        let mut busy = 0;
        let mut finished = 0;
        for job in jobs {
            match job.await.expect("task") {
                Ok(_) => finished += 1,
                Err(HashError::Busy) => busy += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        // At least the two that fit the queue finish; the rest are refused, not queued.
        assert!(finished >= 2, "finished {finished}");
        assert!(busy >= 1, "nothing was refused: {finished} finished");
        assert_eq!(finished + busy, 12);
    }
}
