//! Signing keys: the JWKS (the OpenID Connect provider's RSA keys always, the Ed25519 keys
//! of `EdDSA` tokens when configured), key rotation across two instances sharing one
//! database, and a token verified by a third-party JWT library from the JWKS alone. The
//! CLI's own run is in `cli_keys_rotate_and_list`.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::StatusCode;
use secrecy::SecretString;
use shelter::config::{JwtAlgorithm, Settings};
use shelter_test_support::{Backend, TestDatabase};

use crate::auth::claims_of;
use crate::cli::shelter;
use crate::helpers::{SECRET_KEY, TestApp, TestUser, body};

fn eddsa(s: &mut Settings) {
    s.jwt.algorithm = JwtAlgorithm::EdDsa;
    s.jwt.keys.activation_delay = Duration::from_secs(2);
    s.jwt.keys.reload_every = Duration::from_millis(200);
}

async fn jwks(app: &TestApp) -> serde_json::Value {
    let response = app
        .get("/.well-known/jwks.json")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    body(response).await
}

/// The `kid`s of the JWKS's Ed25519 keys (the `EdDSA` access tokens' family).
fn kids(jwks: &serde_json::Value) -> Vec<String> {
    kids_of(jwks, "EdDSA")
}

fn kids_of(jwks: &serde_json::Value, alg: &str) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|key| key["alg"] == alg)
        .map(|key| key["kid"].as_str().expect("kid").to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT header")
        .kid
        .expect("a kid")
}

/// What a service that trusts Shelter does: it knows the JWKS (as JSON), the issuer and
/// the audience, and nothing else.
fn verified_from_jwks_alone(jwks_json: &str, token: &str) -> serde_json::Value {
    let set: JwkSet = serde_json::from_str(jwks_json).expect("a JWK set");
    let kid = kid_of(token);
    let jwk = set.find(&kid).expect("the token's key is in the JWKS");
    let key = DecodingKey::from_jwk(jwk).expect("a usable JWK");
    let mut validation = Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_issuer(&["http://127.0.0.1:8000"]);
    validation.set_audience(&["shelter"]);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .expect("verified by jsonwebtoken from the JWKS alone")
        .claims
}

/// What `shelter keys rotate` does, with the test's short activation delay.
async fn rotate(database_url: &str) -> String {
    let mut settings = Settings {
        secret_key: Some(SecretString::from(SECRET_KEY)),
        ..Settings::default()
    };
    eddsa(&mut settings);
    settings.database.url = database_url.parse().expect("a database URL");
    shelter::cli::keys::rotate(&settings).await.expect("rotate")
}

/// With HS256 the JWKS still publishes the OpenID Connect provider's RSA key, created on
/// the first start and kept in the database for the next.
async fn with_hs256_the_jwks_publishes_the_rsa_key(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let published = jwks(&app).await;
    let keys = published["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{published}");
    let key = &keys[0];
    assert_eq!(
        (&key["kty"], &key["alg"], &key["use"], &key["e"]),
        (
            &serde_json::json!("RSA"),
            &serde_json::json!("RS256"),
            &serde_json::json!("sig"),
            &serde_json::json!("AQAB")
        ),
        "{published}"
    );
    let modulus = key["n"].as_str().expect("n");
    assert!(modulus.len() * 6 >= 2048, "at least 2048 bits: {published}");
    let set: JwkSet = serde_json::from_value(published.clone()).expect("a JWK set");
    let jwk = set
        .find(key["kid"].as_str().expect("kid"))
        .expect("found by kid");
    DecodingKey::from_jwk(jwk).expect("a usable RSA JWK");
    let shared = app.database_url.clone();
    let Some(again) = TestApp::spawn_with(backend, |s| {
        s.database.url = shared.parse().expect("a database URL");
    })
    .await
    else {
        return;
    };
    assert_eq!(
        kids_of(&jwks(&again).await, "RS256"),
        kids_of(&published, "RS256"),
        "the key is kept, not made again"
    );
}

async fn two_instances_rotate_together_and_old_tokens_keep_working(backend: Backend) {
    let Some(one) = TestApp::spawn_with(backend, eddsa).await else {
        return;
    };
    let shared = one.database_url.clone();
    let Some(two) = TestApp::spawn_with(backend, |s| {
        eddsa(s);
        s.database.url = shared.parse().expect("a database URL");
    })
    .await
    else {
        return;
    };
    let started = Instant::now();
    let at = || format!("{:>5} ms", started.elapsed().as_millis());
    let user = TestUser::generate();
    one.create(&user).await;
    let old = one.token_for(&user).await;
    let first = kid_of(&old);
    assert_eq!(kids(&jwks(&one).await), std::slice::from_ref(&first));
    assert_eq!(
        kids(&jwks(&two).await),
        std::slice::from_ref(&first),
        "one key for both"
    );
    let header = jsonwebtoken::decode_header(&old).expect("header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    eprintln!("{}: both instances sign with {first}", at());

    let rotated = rotate(&shared).await;
    let rotated_at = Instant::now();
    eprintln!("{}: {rotated}", at());
    let deadline = Instant::now() + Duration::from_secs(2);
    for app in [&one, &two] {
        while kids(&jwks(app).await).len() < 2 {
            assert!(
                Instant::now() < deadline,
                "every instance loads the new key"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!("{}: both JWKS publish both keys", at());
    let second = kids(&jwks(&one).await)
        .into_iter()
        .find(|kid| *kid != first)
        .expect("the new key");
    assert!(rotated.contains(&second), "{rotated}");
    if rotated_at.elapsed() < Duration::from_millis(1500) {
        assert_eq!(
            kid_of(&two.token_for(&user).await),
            first,
            "the new key does not sign before its activation"
        );
    }

    let deadline = Instant::now() + Duration::from_secs(10);
    for app in [&one, &two] {
        while kid_of(&app.token_for(&user).await) != second {
            assert!(
                Instant::now() < deadline,
                "every instance signs with the new key"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!("{}: both instances sign with {second}", at());
    for app in [&one, &two] {
        let me = app.get_as("/users/me", &old).await;
        assert_eq!(
            me.status(),
            StatusCode::OK,
            "a token of the old key still works"
        );
    }
    let new = two.token_for(&user).await;
    let published = verify_from_the_jwks_alone(&one, &[&old, &new]).await;
    eprintln!(
        "{}: old and new tokens verified by jsonwebtoken from the JWKS alone",
        at()
    );
    eprintln!(
        "JWKS: {published}\ntoken: {new}\nclaims: {}",
        claims_of(&new)
    );

    refuses_altered_tokens(&one, &new).await;
    let admin = one.admin_token().await;
    let rotations = one.get_as("/audit-events?type=keys_rotated", &admin).await;
    let rotations = body(rotations).await;
    let items = rotations["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "one key per family: {rotations}");
    assert!(
        items
            .iter()
            .any(|e| e["details"]["kid"] == second.as_str() && e["details"]["algorithm"] == "EdDSA"),
        "{rotations}"
    );
}

/// Fetches the JWKS of `app` and verifies each token from it alone; the JWKS text.
async fn verify_from_the_jwks_alone(app: &TestApp, tokens: &[&str]) -> String {
    let published = app
        .get("/.well-known/jwks.json")
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    for token in tokens {
        let claims = verified_from_jwks_alone(&published, token);
        assert_eq!(claims, claims_of(token));
    }
    published
}

async fn refuses_altered_tokens(app: &TestApp, token: &str) {
    let (signed, last) = token.split_at(token.len() - 1);
    let tampered = format!("{signed}{}", if last == "A" { "B" } else { "A" });
    let forged = {
        let mut parts: Vec<&str> = token.split('.').collect();
        let header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            r#"{"alg":"EdDSA","kid":"unknown"}"#,
        );
        parts[0] = &header;
        parts.join(".")
    };
    for token in [tampered, forged] {
        let me = app.get_as("/users/me", &token).await;
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    }
}

async fn cli_keys_rotate_and_list(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let run = |args: &[&str], algorithm: &str| {
        shelter(&database.url)
            .env("SHELTER_JWT_ALGORITHM", algorithm)
            .env("SHELTER_SECRET_KEY", SECRET_KEY)
            .args(args)
            .output()
            .expect("run shelter")
    };
    let refused = shelter(&database.url)
        .args(["keys", "rotate"])
        .output()
        .expect("run shelter");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("SHELTER_SECRET_KEY"),
        "without a secret there is nothing to keep: {refused:?}"
    );
    for _ in 0..2 {
        let rotated = run(&["keys", "rotate"], "EdDSA");
        assert!(rotated.status.success(), "{rotated:?}");
        let out = String::from_utf8_lossy(&rotated.stdout).into_owned();
        assert!(
            out.contains("added EdDSA signing key") && out.contains("added RS256 signing key"),
            "{out}"
        );
    }
    let with_hs256 = run(&["keys", "rotate"], "HS256");
    assert!(
        with_hs256.status.success(),
        "the RSA family rotates with HS256 too"
    );
    let listed = run(&["keys", "list"], "EdDSA");
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let rows: Vec<Vec<&str>> = listed
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    let of = |alg: &str| -> Vec<(&str, &str)> {
        rows.iter()
            .filter(|row| row[1] == alg)
            .map(|row| (row[2], row[3]))
            .collect()
    };
    assert_eq!(of("EdDSA"), [("1", "signing"), ("3", "next")], "{listed}");
    assert_eq!(
        of("RS256"),
        [("2", "signing"), ("4", "next"), ("5", "next")],
        "{listed}"
    );
    assert!(!listed.contains(SECRET_KEY));
}

shelter_test_support::on_both_backends!(
    with_hs256_the_jwks_publishes_the_rsa_key,
    two_instances_rotate_together_and_old_tokens_keep_working,
    cli_keys_rotate_and_list,
);
