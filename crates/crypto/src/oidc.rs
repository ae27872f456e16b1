//! The OpenID Connect provider's tokens and codes.
//!
//! - [`OidcTokens`]: RS256 ID tokens and RFC 9068 access tokens (header `typ: at+jwt`),
//!   signed with the key ring's RSA family. Shelter's own API accepts neither: its
//!   verifier takes one other algorithm and requires claims these lack.
//! - [`SealedCodes`]: authorization codes that carry their own content, sealed, so that
//!   nothing is stored until one is redeemed.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, Header, Validation};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use shelter_domain::clients::{ClientId, Scope};
use shelter_domain::keys::KeyAlgorithm;
use shelter_domain::oauth::{
    AccessTokenClaims, Code, CodeSeal, IdTokenClaims, IdTokenHint, OAuthTokens, PendingLogout,
    Subject, scope_string,
};
use shelter_domain::ports::{Clock, TokenError};
use shelter_domain::session::SignInMethod;
use shelter_domain::{SessionId, UserId};

use crate::keys::KeyRing;
use crate::sealing::{Purpose, Sealer};

/// The header `typ` of an access token (RFC 9068 §2.1).
const AT_JWT: &str = "at+jwt";

#[derive(Debug, Serialize, Deserialize)]
struct AccessJwt {
    iss: String,
    sub: String,
    aud: String,
    client_id: String,
    #[serde(default)]
    scope: String,
    exp: i64,
    iat: i64,
    jti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    /// The redeemed code the token comes from (its family), which revocation ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorization_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct IdJwt<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    sid: String,
    amr: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<i64>,
}

/// What an `id_token_hint` must carry: `aud` may be a string or a list.
#[derive(Debug, Deserialize)]
struct HintJwt {
    sub: String,
    aud: Audience,
    #[serde(default)]
    sid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Signs and checks the provider's tokens with the ring's RS256 keys.
pub struct OidcTokens {
    ring: Arc<KeyRing>,
    issuer: String,
    lifetime: Duration,
    clock: Arc<dyn Clock>,
    /// One permit a core: a burst of token requests queues here rather than starting a
    /// blocking thread per signature, which would only share the same cores.
    signers: tokio::sync::Semaphore,
}

impl OidcTokens {
    pub fn new(
        ring: Arc<KeyRing>,
        issuer: String,
        lifetime: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            ring,
            issuer,
            lifetime,
            clock,
            signers: tokio::sync::Semaphore::new(cores),
        }
    }

    /// Signs on tokio's blocking threads, not the worker that runs the request: an RS256
    /// signature takes about 2 ms of CPU, and on a worker it held up every task queued
    /// there, among them SQLite write transactions whose next step every other write
    /// waits for.
    async fn sign(&self, typ: &str, claims: &(impl Serialize + Sync)) -> anyhow::Result<String> {
        let (kid, key) = self
            .ring
            .signing(KeyAlgorithm::Rs256, self.clock.now())
            .ok_or_else(|| anyhow::anyhow!("no RS256 signing key is loaded"))?;
        let header = Header {
            typ: Some(typ.to_owned()),
            kid: Some(kid),
            ..Header::new(Algorithm::RS256)
        };
        let claims = serde_json::to_value(claims)?;
        let _permit = self.signers.acquire().await?;
        let signed =
            tokio::task::spawn_blocking(move || jsonwebtoken::encode(&header, &claims, &key))
                .await?;
        Ok(signed?)
    }

    /// The claims of a token this provider signed, checking the signature, `iss` and the
    /// header's `typ`, not its expiry.
    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        now: DateTime<Utc>,
    ) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::RS256 || header.typ.as_deref() != Some(typ) {
            return None;
        }
        let key = self.ring.verifying(header.kid.as_deref()?, now)?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.required_spec_claims = ["exp", "sub", "iat", "iss"].map(String::from).into();
        validation.set_issuer(&[&self.issuer]);
        jsonwebtoken::decode::<T>(token, &key, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

/// `at_hash` (OpenID Connect Core §3.1.3.6): the left half of the SHA-256 of the access
/// token, base64url.
fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

fn scopes_of(raw: &str) -> Option<BTreeSet<Scope>> {
    raw.split(' ')
        .filter(|word| !word.is_empty())
        .map(Scope::parse)
        .collect()
}

/// A logout token's claims (Back-Channel Logout 1.0 §2.4): no `nonce`, and the event.
#[derive(Debug, Serialize)]
struct LogoutJwt<'a> {
    iss: &'a str,
    sub: String,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    sid: String,
    events: serde_json::Value,
}

/// How long a logout token may take to arrive and be checked.
const LOGOUT_TOKEN_LIFETIME: Duration = Duration::minutes(2);

#[async_trait::async_trait]
impl OAuthTokens for OidcTokens {
    fn lifetime(&self) -> Duration {
        self.lifetime
    }

    async fn access_token(&self, claims: &AccessTokenClaims) -> anyhow::Result<SecretString> {
        let (sid, authorization_id) = match claims.subject {
            Subject::User {
                session,
                authorization,
                ..
            } => (Some(session.to_string()), Some(authorization.to_string())),
            Subject::Client => (None, None),
        };
        let jwt = AccessJwt {
            iss: self.issuer.clone(),
            sub: claims.sub(),
            aud: claims.audience.clone(),
            client_id: claims.client.to_string(),
            scope: scope_string(&claims.scopes),
            exp: claims.expires_at.timestamp(),
            iat: claims.issued_at.timestamp(),
            jti: claims.jti.clone(),
            sid,
            authorization_id,
        };
        Ok(SecretString::from(self.sign(AT_JWT, &jwt).await?))
    }

    async fn id_token(&self, claims: &IdTokenClaims, access_token: &str) -> anyhow::Result<String> {
        let client = claims.client.as_str();
        let email = claims.user.email.as_ref();
        let profile = claims.user.profile.as_ref();
        let jwt = IdJwt {
            iss: &self.issuer,
            sub: &claims.user.sub,
            aud: client,
            azp: client,
            exp: claims.expires_at.timestamp(),
            iat: claims.issued_at.timestamp(),
            auth_time: claims.auth_time.timestamp(),
            nonce: claims.nonce.as_deref(),
            at_hash: at_hash(access_token),
            sid: claims.session.to_string(),
            amr: claims.method.amr(),
            email: email.map(|(address, _)| address.as_str()),
            email_verified: email.map(|(_, verified)| *verified),
            preferred_username: profile.map(|(name, _)| name.as_str()),
            name: profile.map(|(name, _)| name.as_str()),
            updated_at: profile.map(|(_, at)| *at),
        };
        self.sign("JWT", &jwt).await
    }

    fn verify_access(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<AccessTokenClaims, TokenError> {
        let jwt: AccessJwt = self.decode(token, AT_JWT, now).ok_or(TokenError::Invalid)?;
        let expires_at = DateTime::from_timestamp(jwt.exp, 0).ok_or(TokenError::Invalid)?;
        if expires_at <= now {
            return Err(TokenError::Expired);
        }
        let client = ClientId::parse(&jwt.client_id).map_err(|_| TokenError::Invalid)?;
        let subject = match (jwt.sid, jwt.authorization_id) {
            (Some(sid), Some(authorization)) => Subject::User {
                user: jwt
                    .sub
                    .parse::<i64>()
                    .map(UserId::new)
                    .map_err(|_| TokenError::Invalid)?,
                session: sid.parse().map_err(|_| TokenError::Invalid)?,
                authorization: authorization.parse().map_err(|_| TokenError::Invalid)?,
            },
            (None, None) if jwt.sub == jwt.client_id => Subject::Client,
            _ => return Err(TokenError::Invalid),
        };
        Ok(AccessTokenClaims {
            subject,
            client,
            audience: jwt.aud,
            scopes: scopes_of(&jwt.scope).ok_or(TokenError::Invalid)?,
            jti: jwt.jti,
            issued_at: DateTime::from_timestamp(jwt.iat, 0).ok_or(TokenError::Invalid)?,
            expires_at,
        })
    }

    async fn logout_token(&self, logout: &PendingLogout) -> anyhow::Result<String> {
        let now = self.clock.now();
        let jwt = LogoutJwt {
            iss: &self.issuer,
            sub: logout.user.to_string(),
            aud: logout.client.as_str(),
            iat: now.timestamp(),
            exp: (now + LOGOUT_TOKEN_LIFETIME).timestamp(),
            jti: uuid::Uuid::new_v4().to_string(),
            sid: logout.session.to_string(),
            events: serde_json::json!({"http://schemas.openid.net/event/backchannel-logout": {}}),
        };
        self.sign("logout+jwt", &jwt).await
    }

    fn id_token_hint(&self, token: &str) -> Option<IdTokenHint> {
        let jwt: HintJwt = self.decode(token, "JWT", self.clock.now())?;
        let client = match jwt.aud {
            Audience::One(aud) => aud,
            Audience::Many(mut auds) if auds.len() == 1 => auds.pop()?,
            Audience::Many(_) => return None,
        };
        Some(IdTokenHint {
            user: UserId::new(jwt.sub.parse().ok()?),
            client: ClientId::parse(&client).ok()?,
            session: jwt.sid.and_then(|sid| sid.parse::<SessionId>().ok()),
        })
    }
}

/// A code's content as sealed.
#[derive(Serialize, Deserialize)]
struct SealedCode {
    id: String,
    client: String,
    user: i64,
    session: String,
    redirect_uri: String,
    scope: String,
    nonce: Option<String>,
    challenge: Option<String>,
    auth_time: i64,
    method: String,
    exp: i64,
}

/// Values sealed to travel through a browser (the domain's `Seal`): base64url, under a key
/// of their own.
pub struct SealedValues(Sealer);

/// The associated data of every browser value.
const BROWSER_AAD: &[u8] = b"shelter browser value v1";

impl SealedValues {
    pub fn new(secret: &SecretString) -> Self {
        Self(Sealer::new(secret, Purpose::BrowserValues))
    }
}

impl shelter_domain::identities::Seal for SealedValues {
    fn seal(&self, plaintext: &[u8]) -> anyhow::Result<String> {
        Ok(URL_SAFE_NO_PAD.encode(self.0.seal(plaintext, BROWSER_AAD)?))
    }

    fn open(&self, presented: &str) -> Option<Vec<u8>> {
        // Far longer than anything Shelter seals: not worth decoding.
        if presented.len() > 8192 {
            return None;
        }
        let sealed = URL_SAFE_NO_PAD.decode(presented).ok()?;
        self.0
            .open(&sealed, BROWSER_AAD)
            .ok()
            .map(|plain| plain.to_vec())
    }
}

/// The associated data of every sealed code, so that no other sealed value of the same
/// key could pass for one.
const CODE_AAD: &[u8] = b"shelter authorization code v1";

/// Authorization codes sealed with a key derived from `SHELTER_SECRET_KEY`.
pub struct SealedCodes(Sealer);

impl SealedCodes {
    pub fn new(secret: &SecretString) -> Self {
        Self(Sealer::new(secret, Purpose::AuthorizationCodes))
    }
}

impl CodeSeal for SealedCodes {
    fn seal(&self, code: &Code) -> anyhow::Result<String> {
        let content = SealedCode {
            id: code.id.to_string(),
            client: code.client.to_string(),
            user: code.user.get(),
            session: code.session.to_string(),
            redirect_uri: code.redirect_uri.clone(),
            scope: scope_string(&code.scopes),
            nonce: code.nonce.clone(),
            challenge: code.code_challenge.clone(),
            auth_time: code.auth_time.timestamp(),
            method: code.method.as_str().to_owned(),
            exp: code.expires_at.timestamp(),
        };
        let sealed = self.0.seal(&serde_json::to_vec(&content)?, CODE_AAD)?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }

    fn open(&self, presented: &str) -> Option<Code> {
        // Far longer than any code Shelter makes: not worth decoding.
        if presented.len() > 8192 {
            return None;
        }
        let sealed = URL_SAFE_NO_PAD.decode(presented).ok()?;
        let content: SealedCode =
            serde_json::from_slice(&self.0.open(&sealed, CODE_AAD).ok()?).ok()?;
        Some(Code {
            id: content.id.parse().ok()?,
            client: ClientId::parse(&content.client).ok()?,
            user: UserId::new(content.user),
            session: content.session.parse().ok()?,
            redirect_uri: content.redirect_uri,
            scopes: scopes_of(&content.scope)?,
            nonce: content.nonce,
            code_challenge: content.challenge,
            auth_time: DateTime::from_timestamp(content.auth_time, 0)?,
            method: SignInMethod::from_stored(&content.method),
            expires_at: DateTime::from_timestamp(content.exp, 0)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_sha256_in_base64url() {
        // Computed apart, with Python's hashlib: urlsafe_b64encode(sha256(t).digest()[:16]).
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNfPO1RUw"),
            "QBHBe9_v-jC18G91l-x36g"
        );
    }

    #[test]
    fn a_sealed_code_opens_to_itself_and_nothing_else_opens() {
        let codes = SealedCodes::new(&SecretString::from("k".repeat(64)));
        let code = Code {
            id: uuid::Uuid::new_v4(),
            client: ClientId::generate(),
            user: UserId::new(7),
            session: SessionId::generate(),
            redirect_uri: "https://app.example/cb".into(),
            scopes: [Scope::OpenId, Scope::Email].into(),
            nonce: Some("n-0S6_WzA2Mj".into()),
            code_challenge: None,
            auth_time: DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            method: SignInMethod::PasswordAndTotp,
            expires_at: DateTime::from_timestamp(1_700_000_060, 0).unwrap_or_default(),
        };
        let sealed = codes.seal(&code).expect("sealed");
        assert_eq!(codes.open(&sealed), Some(code));
        let other = SealedCodes::new(&SecretString::from("j".repeat(64)));
        assert_eq!(other.open(&sealed), None);
        let mut tampered = sealed.into_bytes();
        tampered[10] ^= 1;
        assert_eq!(
            codes.open(&String::from_utf8(tampered).unwrap_or_default()),
            None
        );
        assert_eq!(codes.open("not a code"), None);
    }
}
