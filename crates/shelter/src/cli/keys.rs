//! `shelter keys rotate` and `shelter keys list`: the signing keys (the OpenID Connect
//! provider's RSA keys, and with `SHELTER_JWT_ALGORITHM=EdDSA` the Ed25519 ones), handled
//! from the command line against the database that every instance reads them from.

use std::fmt::Write as _;

use anyhow::Context;
use chrono::{SecondsFormat, Utc};
use secrecy::SecretString;
use shelter_domain::keys::{KeyAlgorithm, KeyState, SigningKeyStore as _, states};

use crate::app;
use crate::config::Settings;

fn secret(settings: &Settings) -> anyhow::Result<&SecretString> {
    settings.secret_key.as_ref().context(
        "SHELTER_SECRET_KEY is required: without it the keys live in the server's memory only",
    )
}

/// Adds, to each family, a key that every instance signs with after the activation delay
/// (30 s); the keys before it keep verifying until their tokens have expired.
///
/// # Errors
/// Without `SHELTER_SECRET_KEY`, or when the database cannot be reached.
pub async fn rotate(settings: &Settings) -> anyhow::Result<String> {
    let secret = secret(settings)?;
    let database = app::open_database(settings).await?;
    let store = database.signing_keys();
    let now = Utc::now();
    let delay = chrono::Duration::from_std(settings.jwt.keys.activation_delay)
        .context("activation delay")?;
    let families = app::signing_families(settings);
    let keys = shelter_crypto::keys::rotate(&store, secret, now, now + delay, &families).await?;
    database.close().await;
    let mut out = String::new();
    for key in keys {
        let _ = writeln!(
            out,
            "added {} signing key {} (generation {}); every instance signs with it from {}",
            key.algorithm.as_str(),
            key.kid,
            key.generation,
            key.activates_at.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
    }
    Ok(out)
}

/// One line per key: id, generation, state and dates.
///
/// # Errors
/// Without `SHELTER_SECRET_KEY`, or when the database cannot be reached.
pub async fn list(settings: &Settings) -> anyhow::Result<String> {
    secret(settings)?;
    let database = app::open_database(settings).await?;
    let keys = database.signing_keys().all().await?;
    database.close().await;
    let time = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut out = String::from(
        "kid\talgorithm\tgeneration\tstate\tcreated_at\tactivates_at\tverifies_until\n",
    );
    let families = [KeyAlgorithm::EdDsa, KeyAlgorithm::Rs256];
    let by_family = families.iter().flat_map(|&family| {
        let of_family = keys.iter().filter(move |key| key.algorithm == family);
        states(of_family, Utc::now(), settings.access_lifetime())
    });
    for (key, state) in by_family {
        let until = match state {
            KeyState::Verifying { until } => time(until),
            _ => "-".to_owned(),
        };
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}\t{}\t{until}",
            key.kid,
            key.algorithm.as_str(),
            key.generation,
            state.as_str(),
            time(key.created_at),
            time(key.activates_at),
        );
    }
    Ok(out)
}
