//! Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0): drains the durable
//! queue the stores fill where sign-ins end, posting a signed `logout_token` to each
//! client's `backchannel_logout_uri`, with retries. Any instance may deliver any logout;
//! a lease keeps two from sending one at once, and an instance that dies mid-send leaves
//! its logouts to the others when the lease runs out (delivery is at least once, as the
//! specification expects: a logout token has a `jti` for the client to drop repeats).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use shelter_domain::oauth::{LogoutOutbox, OAuthTokens, PendingLogout};
use tokio::sync::watch;

/// How long a claimed logout is this instance's to send.
const LEASE: chrono::Duration = chrono::Duration::seconds(30);
/// How long one POST may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the queue is looked at.
const POLL: Duration = Duration::from_secs(1);
/// Attempts before a logout is given up (the last waits about half an hour).
const MAX_ATTEMPTS: u32 = 12;

pub struct BackchannelWorker {
    outbox: Arc<dyn LogoutOutbox>,
    tokens: Arc<dyn OAuthTokens>,
    http: reqwest::Client,
}

/// Makes ring the process's TLS provider, for every rustls client that does not bring its
/// own (reqwest built without a provider panics without one). Idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client on rustls with ring and the web's root certificates; no redirects (a
/// logout token goes to the registered URI and nowhere else; a provider's endpoints are
/// the discovered ones), every request bounded by `timeout`.
///
/// # Errors
/// When TLS cannot be set up.
pub fn http_client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()?)
}

impl BackchannelWorker {
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        outbox: Arc<dyn LogoutOutbox>,
        tokens: Arc<dyn OAuthTokens>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            outbox,
            tokens,
            http: http_client(SEND_TIMEOUT)?,
        })
    }

    /// Delivers until `stop` says so.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            match self.outbox.claim(Utc::now(), LEASE, 20).await {
                Ok(due) => {
                    for logout in due {
                        self.deliver(&logout).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "cannot read the logout queue");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn deliver(&self, logout: &PendingLogout) {
        let outcome = self.send(logout).await;
        let now = Utc::now();
        let recorded = match outcome {
            Ok(()) => {
                metrics::counter!("shelter_backchannel_logouts_total", "result" => "sent")
                    .increment(1);
                self.outbox.mark_sent(logout.id, now).await
            }
            Err(error) if logout.attempts >= MAX_ATTEMPTS => {
                metrics::counter!("shelter_backchannel_logouts_total", "result" => "failed")
                    .increment(1);
                tracing::warn!(
                    client_id = logout.client.as_str(),
                    error,
                    "back-channel logout given up"
                );
                self.outbox.mark_failed(logout.id, &error).await
            }
            Err(error) => {
                metrics::counter!("shelter_backchannel_logouts_total", "result" => "retried")
                    .increment(1);
                let wait = chrono::Duration::seconds(1_i64 << logout.attempts.min(11));
                self.outbox.retry_at(logout.id, now + wait, &error).await
            }
        };
        if let Err(error) = recorded {
            tracing::warn!(
                error = format!("{error:#}"),
                "cannot record a logout's delivery"
            );
        }
    }

    async fn send(&self, logout: &PendingLogout) -> Result<(), String> {
        let token = self
            .tokens
            .logout_token(logout)
            .await
            .map_err(|error| format!("cannot sign: {error:#}"))?;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("logout_token", &token)
            .finish();
        let response = self
            .http
            .post(&logout.uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|error| format!("{error}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", response.status()))
        }
    }
}
