//! The RS256 ceiling: how many tokens per second one core signs (and verifies) with the
//! OpenID Connect provider's RSA keys, through the key ring and `jsonwebtoken` as
//! the provider will. The token endpoint's benchmark puts its rates beside these figures.
//!
//! `cargo run --release -p shelter-crypto --example rs256_rate -- [seconds]`

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, Header, Validation};
use shelter_crypto::KeyRing;
use shelter_domain::keys::KeyAlgorithm;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5);
    let now = chrono::Utc::now();
    let started = Instant::now();
    let ring =
        KeyRing::ephemeral(chrono::Duration::minutes(30), now, &[KeyAlgorithm::Rs256]).await?;
    println!(
        "key generation: {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let (kid, encoding) = ring
        .signing(KeyAlgorithm::Rs256, now)
        .ok_or_else(|| anyhow::anyhow!("no RSA key"))?;
    let decoding = ring
        .verifying(&kid, now)
        .ok_or_else(|| anyhow::anyhow!("no RSA key"))?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid);
    // The size of an ID token's claims.
    let claims = serde_json::json!({
        "iss": "https://id.example.com", "sub": "12345", "aud": "a-client-id-of-22-chars",
        "exp": now.timestamp() + 300, "iat": now.timestamp(), "auth_time": now.timestamp(),
        "nonce": "n-0S6_WzA2Mj", "at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "sid": "0b5c3e1d",
        "amr": ["pwd"], "email": "ann@example.com", "email_verified": true,
    });
    let window = Duration::from_secs(seconds);
    let (mut signed, mut token) = (0u32, String::new());
    let start = Instant::now();
    while start.elapsed() < window {
        token = jsonwebtoken::encode(&header, &claims, &encoding)?;
        signed += 1;
    }
    let sign_rate = f64::from(signed) / start.elapsed().as_secs_f64();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["a-client-id-of-22-chars"]);
    let (mut verified, start) = (0u32, Instant::now());
    while start.elapsed() < window {
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation)?;
        verified += 1;
    }
    let verify_rate = f64::from(verified) / start.elapsed().as_secs_f64();
    println!("RS256 signatures per second, one core: {sign_rate:.0}");
    println!("RS256 verifications per second, one core: {verify_rate:.0}");
    Ok(())
}
