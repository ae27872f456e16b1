//! Shelter's OpenID Connect client: the domain's `Upstream` port for the providers of
//! `[[providers]]`, on the `openidconnect` crate, which does the protocol (discovery, the
//! authorization URL with PKCE S256, `state` and `nonce`, the code exchange, and the ID
//! token's checks: signature by the provider's JWKS, `iss`, `aud`, `exp`, `nonce`).
//!
//! What is ours is how a provider that misbehaves is contained:
//! - every HTTP request is bounded in time and size and follows no redirect, and a 5xx or
//!   a transport failure is `Unavailable` (a 503 page), never an error of ours;
//! - discovery is tried at start and, if the provider was down then, again on first use,
//!   at most once per [`RETRY_DISCOVERY`], so a provider that stays down costs one bounded
//!   wait, not one per sign-in;
//! - an ID token signed with a key the cached JWKS lacks (the provider rotated) refetches
//!   the JWKS, at most once per [`REFETCH_JWKS`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use async_trait::async_trait;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreProviderMetadata,
};
use openidconnect::{
    AccessToken, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest, HttpResponse, IssuerUrl, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError,
    Scope, SignatureVerificationError, SubjectIdentifier, TokenResponse as _,
};
use secrecy::{ExposeSecret as _, SecretString};
use shelter_domain::EmailAddress;
use shelter_domain::identities::{
    Authorization, FlowSecrets, Provider, ProviderId, Upstream, UpstreamAccount, UpstreamError,
};

/// How soon a provider whose discovery failed is asked again.
pub const RETRY_DISCOVERY: Duration = Duration::from_secs(10);

/// How soon a provider's JWKS may be fetched again for an unknown key.
pub const REFETCH_JWKS: Duration = Duration::from_secs(30);

/// The largest answer read from a provider: discovery documents and key sets are a few KiB.
const MAX_BODY: usize = 1 << 20;

/// One provider as configured.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub provider: Provider,
    pub issuer: url::Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub scopes: Vec<String>,
}

impl ProviderSettings {
    /// The issuer rule: https, or http on a loopback address (development and tests).
    ///
    /// # Errors
    /// An issuer that is neither.
    pub fn check_issuer(issuer: &url::Url) -> Result<(), String> {
        let loopback = match issuer.host() {
            Some(url::Host::Domain(name)) => name == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        match issuer.scheme() {
            "https" if issuer.host().is_some() => Ok(()),
            "http" if loopback => Ok(()),
            _ => Err(format!(
                "issuer {issuer} must be https, or http on a loopback address"
            )),
        }
    }
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

struct Known {
    settings: ProviderSettings,
    redirect: RedirectUrl,
    metadata: RwLock<Option<Arc<CoreProviderMetadata>>>,
    /// When discovery last failed; held while discovering, so that callers wait for the
    /// discovery in flight instead of starting their own.
    discovery_failed: tokio::sync::Mutex<Option<Instant>>,
    /// When the JWKS was last fetched again for an unknown key (discovery's fetch does
    /// not count, so a rotation just after start is seen at once).
    jwks_fetched: Mutex<Option<Instant>>,
}

/// Every configured provider, discovered at start or on first use.
pub struct Upstreams {
    providers: Vec<Known>,
    http: Http,
}

impl Upstreams {
    /// `callback` makes each provider's redirect URI from its id
    /// (`{public_url}/auth/providers/{id}/callback`). Nothing is fetched yet.
    ///
    /// # Errors
    /// A callback URL that is not a URL.
    pub fn new(
        settings: Vec<ProviderSettings>,
        http: reqwest::Client,
        callback: impl Fn(&ProviderId) -> String,
    ) -> anyhow::Result<Self> {
        let providers = settings
            .into_iter()
            .map(|settings| {
                let redirect = RedirectUrl::new(callback(&settings.provider.id))?;
                Ok(Known {
                    settings,
                    redirect,
                    metadata: RwLock::new(None),
                    discovery_failed: tokio::sync::Mutex::new(None),
                    jwks_fetched: Mutex::new(None),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            providers,
            http: Http(http),
        })
    }

    /// Reads every provider's discovery document; one that fails is logged and tried again
    /// on first use, so a provider that is down does not keep Shelter from starting.
    pub async fn discover_all(self: Arc<Self>) {
        for known in &self.providers {
            match self.metadata(known).await {
                Ok(_) => {
                    tracing::info!(provider = %known.settings.provider.id, issuer = %known.settings.issuer, "provider discovered");
                }
                Err(error) => {
                    tracing::warn!(provider = %known.settings.provider.id, error = %error, "provider discovery failed; tried again on use");
                }
            }
        }
    }

    fn known(&self, id: &ProviderId) -> Result<&Known, UpstreamError> {
        self.providers
            .iter()
            .find(|known| known.settings.provider.id == *id)
            .ok_or(UpstreamError::UnknownProvider)
    }

    async fn discover(&self, known: &Known) -> anyhow::Result<Arc<CoreProviderMetadata>> {
        let issuer = IssuerUrl::new(known.settings.issuer.as_str().trim_end_matches('/').into())
            .or_else(|_| IssuerUrl::new(known.settings.issuer.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| anyhow!("discovery of {}: {e}", known.settings.issuer))?;
        let metadata = Arc::new(metadata);
        *write(&known.metadata) = Some(metadata.clone());
        Ok(metadata)
    }

    /// The provider's discovered metadata, discovering it now if that failed before and
    /// was not tried in the last [`RETRY_DISCOVERY`].
    async fn metadata(&self, known: &Known) -> Result<Arc<CoreProviderMetadata>, UpstreamError> {
        if let Some(metadata) = read(&known.metadata).clone() {
            return Ok(metadata);
        }
        let mut failed = known.discovery_failed.lock().await;
        // The discovery this call waited for may have succeeded.
        if let Some(metadata) = read(&known.metadata).clone() {
            return Ok(metadata);
        }
        if failed.is_some_and(|at| at.elapsed() < RETRY_DISCOVERY) {
            return Err(UpstreamError::Unavailable(anyhow!(
                "the provider's discovery failed moments ago"
            )));
        }
        self.discover(known).await.map_err(|error| {
            *failed = Some(Instant::now());
            UpstreamError::Unavailable(error)
        })
    }

    fn client(known: &Known, metadata: &CoreProviderMetadata) -> Client {
        CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(known.settings.client_id.clone()),
            Some(ClientSecret::new(
                known.settings.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(known.redirect.clone())
    }

    /// Fetches the JWKS again, unless that was done in the last [`REFETCH_JWKS`]; `None`
    /// when it was (or failed), and the unknown key stays unknown.
    async fn refetch_jwks(&self, known: &Known) -> Option<Arc<CoreProviderMetadata>> {
        {
            let mut fetched = lock(&known.jwks_fetched);
            if fetched.is_some_and(|at| at.elapsed() < REFETCH_JWKS) {
                return None;
            }
            *fetched = Some(Instant::now());
        }
        let current = read(&known.metadata).clone()?;
        let jwks = CoreJsonWebKeySet::fetch_async(current.jwks_uri(), &self.http)
            .await
            .inspect_err(|e| tracing::warn!(provider = %known.settings.provider.id, error = %e, "JWKS refetch failed"))
            .ok()?;
        let renewed = Arc::new((*current).clone().set_jwks(jwks));
        *write(&known.metadata) = Some(renewed.clone());
        tracing::info!(provider = %known.settings.provider.id, "JWKS refetched for an unknown key");
        Some(renewed)
    }
}

#[async_trait]
impl Upstream for Upstreams {
    fn providers(&self) -> Vec<Provider> {
        self.providers
            .iter()
            .map(|known| known.settings.provider.clone())
            .collect()
    }

    async fn begin(&self, provider: &ProviderId) -> Result<Authorization, UpstreamError> {
        let known = self.known(provider)?;
        let metadata = self.metadata(known).await?;
        let client = Self::client(known, &metadata);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in known.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(Authorization {
            url: url.into(),
            secrets: FlowSecrets {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
            },
        })
    }

    async fn finish(
        &self,
        provider: &ProviderId,
        code: &str,
        secrets: &FlowSecrets,
    ) -> Result<UpstreamAccount, UpstreamError> {
        let known = self.known(provider)?;
        let mut metadata = self.metadata(known).await?;
        let client = Self::client(known, &metadata);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| UpstreamError::Refused(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(secrets.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|error| match error {
                RequestTokenError::Request(cause) => UpstreamError::Unavailable(cause.into()),
                RequestTokenError::ServerResponse(answer) => {
                    UpstreamError::Refused(format!("token endpoint: {answer}"))
                }
                other => UpstreamError::Refused(format!("token endpoint: {other}")),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| UpstreamError::Refused("no id_token in the token answer".into()))?;
        let nonce = Nonce::new(secrets.nonce.clone());
        let mut client = client;
        let claims = loop {
            let verified = id_token
                .claims(&client.id_token_verifier(), &nonce)
                .cloned();
            match verified {
                Ok(claims) => break claims,
                Err(ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoMatchingKey,
                )) => match self.refetch_jwks(known).await {
                    Some(renewed) => {
                        metadata = renewed;
                        client = Self::client(known, &metadata);
                    }
                    None => {
                        return Err(UpstreamError::Refused(
                            "the ID token is signed with an unknown key".into(),
                        ));
                    }
                },
                Err(other) => return Err(UpstreamError::Refused(format!("ID token: {other}"))),
            }
        };
        let subject = claims.subject().clone();
        let mut email = claims.email().map(|email| email.as_str().to_owned());
        let mut email_verified = claims.email_verified();
        let mut preferred_username = claims
            .preferred_username()
            .map(|name| name.as_str().to_owned());
        // Providers that keep claims out of the ID token of a code flow (as the
        // specification allows) give them at the userinfo endpoint.
        if email.is_none()
            && let Ok(request) = client.user_info(
                AccessToken::new(tokens.access_token().secret().clone()),
                Some(SubjectIdentifier::new(subject.as_str().to_owned())),
            )
        {
            let info: openidconnect::core::CoreUserInfoClaims = request
                .request_async(&self.http)
                .await
                .map_err(|e| UpstreamError::Refused(format!("userinfo: {e}")))?;
            email = info.email().map(|email| email.as_str().to_owned());
            email_verified = info.email_verified();
            preferred_username = preferred_username.or_else(|| {
                info.preferred_username()
                    .map(|name| name.as_str().to_owned())
            });
        }
        Ok(UpstreamAccount {
            provider: provider.clone(),
            subject: subject.as_str().to_owned(),
            // An address Shelter cannot use is as good as none.
            email: email.and_then(|email| EmailAddress::parse(&email).ok()),
            email_verified: email_verified == Some(true),
            preferred_username,
        })
    }
}

/// What the HTTP client reports; a provider's 5xx is one of these, so that it is
/// `Unavailable` rather than an answer to parse.
#[derive(Debug)]
pub struct HttpError(anyhow::Error);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for HttpError {}

/// reqwest as `openidconnect`'s HTTP client.
struct Http(reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let url = parts.uri.to_string();
            let mut outgoing = self.0.request(parts.method, &url).body(body);
            for (name, value) in &parts.headers {
                outgoing = outgoing.header(name, value);
            }
            let mut answer = outgoing
                .send()
                .await
                .map_err(|e| HttpError(anyhow!(e).context(format!("request to {url}"))))?;
            let status = answer.status();
            if status.is_server_error() {
                return Err(HttpError(anyhow!("{url} answered {status}")));
            }
            let headers = answer.headers().clone();
            let mut body = Vec::new();
            while let Some(chunk) = answer
                .chunk()
                .await
                .map_err(|e| HttpError(anyhow!(e).context(format!("reading {url}"))))?
            {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(HttpError(anyhow!(
                        "{url} answered more than {MAX_BODY} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            let mut response = http::Response::builder().status(status);
            if let Some(map) = response.headers_mut() {
                *map = headers;
            }
            response
                .body(body)
                .map_err(|e| HttpError(anyhow!(e).context("an answer")))
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_https_or_loopback_http() {
        for good in [
            "https://gitlab.example.com",
            "http://127.0.0.1:8080",
            "http://127.8.0.1/realm",
            "http://localhost:9000",
            "http://[::1]:9000",
        ] {
            let url = url::Url::parse(good).expect("url");
            assert!(ProviderSettings::check_issuer(&url).is_ok(), "{good}");
        }
        for bad in [
            "http://gitlab.example.com",
            "http://10.0.0.1",
            "ftp://localhost",
            "http://localhost.example.com",
        ] {
            let url = url::Url::parse(bad).expect("url");
            assert!(ProviderSettings::check_issuer(&url).is_err(), "{bad}");
        }
    }
}
