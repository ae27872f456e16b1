//! What every handler of every adapter may use: the services, the chat hub, the rate limiter, and the probes
//! of the dependencies `/health/ready` asks.

use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;
use shelter_domain::audit::AuditService;
use shelter_domain::clients::ClientService;
use shelter_domain::identities::FederationService;
use shelter_domain::limits::RateLimiter;
use shelter_domain::oauth::OAuthService;
use shelter_domain::{AuthService, MfaService, PasskeyService, UserService};

use super::cookies::BrowserSettings;
use crate::runtime::hub::Hub;

/// A dependency `/health/ready` asks.
#[async_trait]
pub trait Probe: Send + Sync {
    fn name(&self) -> &'static str;

    async fn check(&self) -> anyhow::Result<()>;
}

/// What every handler may use.
pub struct AppState {
    pub users: Arc<UserService>,
    pub auth: Arc<AuthService>,
    /// Sign-in with upstream providers, and the accounts linked from them.
    pub federation: Arc<FederationService>,
    pub mfa: Arc<MfaService>,
    pub passkeys: Arc<PasskeyService>,
    /// `SHELTER_EMAIL_CODE_ENABLED`: sign-in codes by email.
    pub email_codes: bool,
    pub audit: Arc<AuditService>,
    /// The OAuth client registry.
    pub clients: Arc<ClientService>,
    /// The OpenID Connect provider.
    pub oauth: Arc<OAuthService>,
    /// `SHELTER_JWT_ISSUER`: the provider's `issuer`, and the `iss` of its redirects.
    pub issuer: String,
    /// `SHELTER_OAUTH_DYNAMIC_REGISTRATION`: `POST /oauth/register` is open.
    pub dynamic_registration: bool,
    pub probes: Vec<Arc<dyn Probe>>,
    pub hub: Arc<Hub>,
    /// `None` when rate limits are switched off.
    pub limiter: Option<Arc<dyn RateLimiter>>,
    pub trusted_proxies: Vec<IpNet>,
    /// How the browser session's cookies are made (the pages, the OpenID Connect pages).
    pub browser: BrowserSettings,
}
