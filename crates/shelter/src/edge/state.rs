//! What every handler may use: the services, the chat hub, the rate limiter, and the probes
//! of the dependencies `/health/ready` asks.

use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;
use shelter_domain::audit::AuditService;
use shelter_domain::realtime::RateLimiter;
use shelter_domain::{AuthService, MfaService, UserService};

use crate::chat::Hub;
use crate::pages::PageSettings;

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
    pub mfa: Arc<MfaService>,
    pub audit: Arc<AuditService>,
    pub probes: Vec<Arc<dyn Probe>>,
    pub hub: Arc<Hub>,
    /// `None` when rate limits are switched off.
    pub limiter: Option<Arc<dyn RateLimiter>>,
    pub trusted_proxies: Vec<IpNet>,
    pub pages: PageSettings,
}
