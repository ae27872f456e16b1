//! The argon2 ceiling: how many hashes per second this machine does with Shelter's
//! parameters, one hashing thread per core, each reusing its memory as the server does.
//! The memory benchmark puts the login rate beside this figure.
//!
//! `cargo run --release -p shelter-crypto --example argon2_rate -- [seconds]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use shelter_crypto::{Argon2PasswordHasher, HashingParams, HashingPool};
use shelter_domain::Password;
use shelter_domain::ports::PasswordHasher as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5);
    let pool = HashingPool::default();
    let hasher = Arc::new(Argon2PasswordHasher::new(HashingParams::default(), pool)?);
    let password =
        Password::parse("a benchmark password").map_err(|e| anyhow::anyhow!("password: {e}"))?;
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    // As many clients as threads keep every thread busy without queueing.
    let clients: Vec<_> = (0..pool.threads)
        .map(|_| {
            let (hasher, password) = (Arc::clone(&hasher), password.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < until {
                    hasher.hash(&password).await?;
                    done += 1;
                }
                anyhow::Ok(done)
            })
        })
        .collect();
    let mut total = 0;
    for client in clients {
        total += client.await??;
    }
    let rate =
        f64::from(u32::try_from(total).unwrap_or(u32::MAX)) / started.elapsed().as_secs_f64();
    println!("{rate:.1} hashes/s on {} threads", pool.threads);
    Ok(())
}
