//! `shelter keys rotate` and `shelter keys list`: the signing keys of
//! `SHELTER_JWT_ALGORITHM=EdDSA`, handled from the command line against the database that
//! every instance reads them from.

use std::fmt::Write as _;

use anyhow::Context;
use chrono::{SecondsFormat, Utc};
use secrecy::SecretString;
use shelter_domain::keys::{KeyState, SigningKeyStore as _, states};

use crate::app;
use crate::config::{JwtAlgorithm, Settings};

fn secret(settings: &Settings) -> anyhow::Result<&SecretString> {
    anyhow::ensure!(
        settings.jwt.algorithm == JwtAlgorithm::EdDsa,
        "SHELTER_JWT_ALGORITHM is HS256: tokens are signed with SHELTER_SECRET_KEY and there are no keys to rotate"
    );
    settings
        .secret_key
        .as_ref()
        .context("SHELTER_SECRET_KEY is required with EdDSA")
}

/// Adds a key that every instance signs with after the activation delay (30 s); the keys
/// before it keep verifying until their tokens have expired.
///
/// # Errors
/// With HS256, or when the database cannot be reached.
pub async fn rotate(settings: &Settings) -> anyhow::Result<String> {
    let secret = secret(settings)?;
    let database = app::open_database(settings).await?;
    let store = database.signing_keys();
    let now = Utc::now();
    let delay = chrono::Duration::from_std(settings.jwt.keys.activation_delay)
        .context("activation delay")?;
    let key = shelter_crypto::keys::rotate(&store, secret, now, now + delay).await?;
    database.close().await;
    Ok(format!(
        "added signing key {} (generation {}); every instance signs with it from {}",
        key.kid,
        key.generation,
        key.activates_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    ))
}

/// One line per key: id, generation, state and dates.
///
/// # Errors
/// With HS256, or when the database cannot be reached.
pub async fn list(settings: &Settings) -> anyhow::Result<String> {
    secret(settings)?;
    let database = app::open_database(settings).await?;
    let keys = database.signing_keys().all().await?;
    database.close().await;
    let time = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut out =
        String::from("kid\tgeneration\tstate\tcreated_at\tactivates_at\tverifies_until\n");
    for (key, state) in states(&keys, Utc::now(), settings.access_lifetime()) {
        let until = match state {
            KeyState::Verifying { until } => time(until),
            _ => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{until}",
            key.kid,
            key.generation,
            state.as_str(),
            time(key.created_at),
            time(key.activates_at),
        );
    }
    Ok(out)
}
