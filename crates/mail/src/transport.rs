//! `LettreMailer`: renders an email and hands it to the configured transport.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use shelter_domain::OutboundEmail;
use shelter_domain::ports::{MailError, Mailer};

use crate::render::Renderer;

/// Where emails go.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Logged (the token redacted); for development.
    Log,
    /// One RFC 5322 `.eml` file per email in this folder.
    File(PathBuf),
    /// An SMTP server, e.g. `smtp://user:pass@host:587?tls=required`.
    Smtp(SecretString),
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub transport: Transport,
    /// The `From:` mailbox, e.g. `Shelter <noreply@localhost>`.
    pub from: String,
    pub app_name: String,
    /// Base of the links in emails.
    pub public_url: String,
    /// Connect and command timeout for SMTP.
    pub timeout: Duration,
}

enum Sender {
    Log,
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

pub struct LettreMailer {
    sender: Sender,
    from: Mailbox,
    renderer: Renderer,
}

impl LettreMailer {
    /// # Errors
    /// An unusable sender address or SMTP URL, or a folder that cannot be created.
    pub fn new(settings: &MailSettings) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .with_context(|| format!("sender address {:?}", settings.from))?;
        let sender = match &settings.transport {
            Transport::Log => Sender::Log,
            Transport::File(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("create the email folder {}", dir.display()))?;
                Sender::File(AsyncFileTransport::new(dir))
            }
            Transport::Smtp(url) => Sender::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    // The URL may hold a password: say what is wrong, never the URL.
                    .map_err(|e| {
                        anyhow!(
                            "SMTP URL: {}",
                            e.to_string().replace(url.expose_secret(), "<url>")
                        )
                    })?
                    .timeout(Some(settings.timeout))
                    .build(),
            ),
        };
        Ok(Self {
            sender,
            from,
            renderer: Renderer::new(&settings.app_name, &settings.public_url)?,
        })
    }

    fn message(&self, email: &OutboundEmail) -> anyhow::Result<Message> {
        let rendered = self.renderer.render(email)?;
        let to: Mailbox = email.to.as_str().parse().context("recipient address")?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .context("build the message")
    }
}

#[async_trait]
impl Mailer for LettreMailer {
    async fn send(&self, email: &OutboundEmail) -> Result<(), MailError> {
        // A message that cannot be built will not build on the next attempt either.
        let message = self.message(email).map_err(MailError::Permanent)?;
        match &self.sender {
            Sender::Log => {
                let text = self
                    .renderer
                    .render(email)
                    .map_err(MailError::Permanent)?
                    .text;
                let redacted = text.replace(
                    email.token.expose(),
                    "<redacted: use SHELTER_EMAIL_TRANSPORT=file to see tokens>",
                );
                tracing::info!(to = %email.to, kind = email.kind.as_str(), body = %redacted, "email (log transport)");
                Ok(())
            }
            Sender::File(files) => files
                .send(message)
                .await
                .map(drop)
                .map_err(|e| MailError::Transient(anyhow!("write the .eml file: {e}"))),
            Sender::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|e| {
                if e.is_permanent() {
                    MailError::Permanent(anyhow!("SMTP refused the message: {e}"))
                } else {
                    MailError::Transient(anyhow!("SMTP: {e}"))
                }
            }),
        }
    }
}
