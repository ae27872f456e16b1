//! Access tokens: HS256 with `SHELTER_SECRET_KEY`, or `EdDSA` with the key ring's keys
//! (`kid` in the header), which other services can verify from the JWKS alone.
//!
//! Every token carries `iss` and `aud` (both required and checked on every token
//! presented), a random `jti`, and `sid`, the login it belongs to.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use shelter_domain::keys::{KeyAlgorithm, PublishedKey};
use shelter_domain::ports::{AccessClaims, AccessToken, TokenError, TokenIssuer};
use shelter_domain::{SessionId, User, UserId};

use crate::keys::KeyRing;

/// The `typ` claim of an access token, so that no other kind of token the service may sign
/// one day can be replayed as one.
const ACCESS: &str = "access";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    iat: i64,
    iss: String,
    aud: String,
    jti: String,
    sid: String,
    typ: String,
    /// The user's token version when issued; a password change bumps it.
    ver: i64,
}

/// Who signs the tokens and whom they are for: the `iss` and `aud` claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenAudience {
    pub issuer: String,
    pub audience: String,
}

enum Keys {
    Shared {
        encoding: EncodingKey,
        decoding: DecodingKey,
    },
    Rotating(Arc<KeyRing>),
}

/// Signs and checks JWTs. Exactly one algorithm is accepted, so `alg: none` and
/// algorithm-confusion tokens are refused by construction.
pub struct JwtTokenIssuer {
    keys: Keys,
    /// The ring whose keys the JWKS publishes (the OpenID Connect provider's RSA keys, and
    /// with `EdDSA` the first-party ones), whatever signs first-party tokens.
    published: Option<Arc<KeyRing>>,
    validation: Validation,
    lifetime: Duration,
    names: TokenAudience,
}

impl JwtTokenIssuer {
    /// HS256 with one shared secret.
    pub fn new(secret: &SecretString, lifetime: Duration, names: TokenAudience) -> Self {
        let key = secret.expose_secret().as_bytes();
        let keys = Keys::Shared {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
        };
        Self::with(keys, Algorithm::HS256, lifetime, names)
    }

    /// `EdDSA` with the ring's keys.
    pub fn eddsa(ring: Arc<KeyRing>, lifetime: Duration, names: TokenAudience) -> Self {
        Self::with(
            Keys::Rotating(Arc::clone(&ring)),
            Algorithm::EdDSA,
            lifetime,
            names,
        )
        .publishing(ring)
    }

    /// Publishes `ring`'s keys in the JWKS.
    #[must_use]
    pub fn publishing(mut self, ring: Arc<KeyRing>) -> Self {
        self.published = Some(ring);
        self
    }

    fn with(keys: Keys, algorithm: Algorithm, lifetime: Duration, names: TokenAudience) -> Self {
        let mut validation = Validation::new(algorithm);
        // Expiry is checked against the injected clock below, not the system time.
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.required_spec_claims =
            ["exp", "sub", "iat", "iss", "aud"].map(String::from).into();
        validation.set_issuer(&[&names.issuer]);
        validation.set_audience(&[&names.audience]);
        Self {
            keys,
            published: None,
            validation,
            lifetime,
            names,
        }
    }
}

impl TokenIssuer for JwtTokenIssuer {
    fn issue(
        &self,
        user: &User,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> anyhow::Result<AccessToken> {
        let claims = Claims {
            sub: user.id().to_string(),
            iat: now.timestamp(),
            exp: (now + self.lifetime).timestamp(),
            iss: self.names.issuer.clone(),
            aud: self.names.audience.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
            sid: session.to_string(),
            typ: ACCESS.to_owned(),
            ver: user.token_version(),
        };
        let token = match &self.keys {
            Keys::Shared { encoding, .. } => {
                jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, encoding)
            }
            Keys::Rotating(ring) => {
                let (kid, encoding) = ring
                    .signing(KeyAlgorithm::EdDsa, now)
                    .context("no signing key is loaded")?;
                let header = Header {
                    kid: Some(kid),
                    ..Header::new(Algorithm::EdDSA)
                };
                jsonwebtoken::encode(&header, &claims, &encoding)
            }
        }
        .context("sign access token")?;
        Ok(AccessToken {
            token: SecretString::from(token),
            expires_in: self.lifetime.num_seconds(),
        })
    }

    fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenError> {
        let claims = match &self.keys {
            Keys::Shared { decoding, .. } => {
                jsonwebtoken::decode::<Claims>(token, decoding, &self.validation)
            }
            Keys::Rotating(ring) => {
                let kid = jsonwebtoken::decode_header(token)
                    .ok()
                    .and_then(|header| header.kid)
                    .ok_or(TokenError::Invalid)?;
                let decoding = ring.verifying(&kid, now).ok_or(TokenError::Invalid)?;
                jsonwebtoken::decode::<Claims>(token, &decoding, &self.validation)
            }
        }
        .map_err(|_| TokenError::Invalid)?
        .claims;
        if claims.typ != ACCESS {
            return Err(TokenError::Invalid);
        }
        let user_id = claims.sub.parse::<i64>().map_err(|_| TokenError::Invalid)?;
        let session = claims
            .sid
            .parse::<SessionId>()
            .map_err(|_| TokenError::Invalid)?;
        if claims.exp <= now.timestamp() {
            return Err(TokenError::Expired);
        }
        Ok(AccessClaims {
            user_id: UserId::new(user_id),
            session,
            token_version: claims.ver,
            expires_at: DateTime::from_timestamp(claims.exp, 0).ok_or(TokenError::Invalid)?,
        })
    }

    fn published_keys(&self, now: DateTime<Utc>) -> Vec<PublishedKey> {
        self.published
            .as_ref()
            .map(|ring| ring.published(now))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use shelter_domain::{EmailAddress, PasswordHash, StoredUser, Username};

    const SECRET: &str = "test-secret-test-secret-test-secret!";

    fn names() -> TokenAudience {
        TokenAudience {
            issuer: "https://auth.example.com".to_owned(),
            audience: "shelter".to_owned(),
        }
    }

    fn issuer() -> JwtTokenIssuer {
        JwtTokenIssuer::new(&SecretString::from(SECRET), Duration::minutes(30), names())
    }

    fn session() -> SessionId {
        "0b5c8f3e-2d1a-4c6b-9e7f-1a2b3c4d5e6f".parse().expect("id")
    }

    /// Claims as a valid token carries them, to alter one at a time.
    fn claims() -> serde_json::Value {
        serde_json::json!({"sub": "7", "exp": 1_900_000_000, "iat": 1_800_000_000,
            "iss": "https://auth.example.com", "aud": "shelter", "jti": "j",
            "sid": session().to_string(), "typ": "access", "ver": 3})
    }

    fn signed(claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("signed")
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("valid")
    }

    fn user() -> User {
        StoredUser {
            id: UserId::new(7),
            email: EmailAddress::parse("ann@example.com").expect("email"),
            username: Username::parse("ann").expect("name"),
            password_hash: PasswordHash::from_phc(String::new()),
            password_set: true,
            is_active: true,
            is_superuser: false,
            email_verified: false,
            totp: shelter_domain::Totp::Off,
            token_version: 3,
            revision: 1,
            created_at: now(),
            updated_at: now(),
        }
        .into()
    }

    fn token() -> String {
        issuer()
            .issue(&user(), session(), now())
            .expect("issued")
            .token
            .expose_secret()
            .to_owned()
    }

    fn forge(header: &serde_json::Value, claims: &serde_json::Value, signature: &str) -> String {
        format!(
            "{}.{}.{signature}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn issued_tokens_carry_their_claims_and_verify() {
        let access = issuer().issue(&user(), session(), now()).expect("issued");
        assert_eq!(access.expires_in, 1800);
        let payload = access
            .token
            .expose_secret()
            .split('.')
            .nth(1)
            .expect("payload");
        let issued: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        assert_eq!(issued["sub"], "7");
        assert_eq!(issued["iat"], 1_800_000_000);
        assert_eq!(issued["exp"], 1_800_001_800);
        assert_eq!(issued["iss"], "https://auth.example.com");
        assert_eq!(issued["aud"], "shelter");
        assert_eq!(issued["sid"], session().to_string());
        let jti = issued["jti"].as_str().expect("jti");
        assert!(uuid::Uuid::try_parse(jti).is_ok(), "{jti}");
        assert_ne!(token(), token(), "every token has its own jti");
        let verified = issuer().verify(&token(), now()).expect("valid");
        assert_eq!(verified.user_id, UserId::new(7));
        assert_eq!(verified.session, session());
        assert!(issuer().verify(&signed(&claims()), now()).is_ok());
        assert_eq!(verified.token_version, 3);
        assert_eq!(verified.expires_at, now() + Duration::minutes(30));
    }

    #[test]
    fn expired_tokens_are_refused_without_leeway() {
        let issuer = issuer();
        let token = token();
        assert!(
            issuer
                .verify(&token, now() + Duration::seconds(1799))
                .is_ok()
        );
        assert_eq!(
            issuer.verify(&token, now() + Duration::seconds(1800)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn alg_none_other_algorithms_and_bad_signatures_are_refused() {
        let claims = claims();
        let none = forge(
            &serde_json::json!({"alg": "none", "typ": "JWT"}),
            &claims,
            "",
        );
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("signed");
        let other_key = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"another-key-another-key-another-key"),
        )
        .expect("signed");
        let mut tampered = token();
        tampered.push('x');
        for (name, token) in [
            ("alg none", none),
            ("HS512", hs512),
            ("other key", other_key),
            ("tampered", tampered),
            ("garbage", "not.a.jwt".to_owned()),
            ("empty", String::new()),
        ] {
            assert_eq!(
                issuer().verify(&token, now()),
                Err(TokenError::Invalid),
                "{name}"
            );
        }
    }

    #[test]
    fn tokens_of_another_type_issuer_or_audience_or_without_required_claims_are_refused() {
        let with = |key: &str, value: serde_json::Value| {
            let mut claims = claims();
            claims[key] = value;
            claims
        };
        let without = |key: &str| {
            let mut claims = claims();
            claims.as_object_mut().expect("object").remove(key);
            claims
        };
        let cases = [
            ("refresh typ", with("typ", "refresh".into())),
            (
                "other issuer",
                with("iss", "https://evil.example.com".into()),
            ),
            ("other audience", with("aud", "billing".into())),
            ("sub not an id", with("sub", "ann".into())),
            ("sid not a session", with("sid", "1".into())),
            ("no exp", without("exp")),
            ("no iat", without("iat")),
            ("no iss", without("iss")),
            ("no aud", without("aud")),
            ("no sid", without("sid")),
        ];
        for (name, claims) in cases {
            assert_eq!(
                issuer().verify(&signed(&claims), now()),
                Err(TokenError::Invalid),
                "{name}"
            );
        }
    }
}
