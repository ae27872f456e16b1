//! `LettreMailer`: renders an email and hands it to the configured transport.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use shelter_domain::OutboundEmail;
use shelter_domain::ports::{MailError, Mailer};
use url::Url;

use crate::render::{Rendered, Renderer};

/// An SMTP server's URL, e.g. `smtp://user:pass@host:587?tls=required`, read by lettre
/// once when the settings are read. It may hold a password: `Debug` and errors never show it.
#[derive(Clone)]
pub struct SmtpUrl(AsyncSmtpTransportBuilder);

impl FromStr for SmtpUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        AsyncSmtpTransport::<Tokio1Executor>::from_url(text)
            .map(Self)
            .map_err(|e| {
                let reason = e.to_string().replace(text, "<url>");
                if reason.contains("invalid scheme") || !text.starts_with("smtp") {
                    "must start with smtp:// or smtps://".to_owned()
                } else {
                    reason
                }
            })
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmtpUrl(<redacted>)")
    }
}

/// Where emails go.
#[derive(Debug, Clone)]
pub enum Transport {
    /// Logged; for development. Tokens are redacted unless revealed (on the developer's
    /// own machine, where the link must be followed).
    Log { reveal_tokens: bool },
    /// One RFC 5322 `.eml` file per email in this folder.
    File(PathBuf),
    /// An SMTP server.
    Smtp(SmtpUrl),
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub transport: Transport,
    /// The `From:` mailbox, e.g. `Shelter <noreply@localhost>`.
    pub from: Mailbox,
    pub app_name: String,
    /// Base of the links in emails.
    pub link_base: Url,
    /// Connect and command timeout for SMTP.
    pub timeout: Duration,
    /// Most SMTP connections kept open at once; match the worker's concurrency.
    pub max_connections: u32,
}

enum Sender {
    Log {
        reveal_tokens: bool,
    },
    File {
        dir: PathBuf,
        files: AsyncFileTransport<Tokio1Executor>,
    },
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

pub struct LettreMailer {
    sender: Sender,
    from: Mailbox,
    renderer: Renderer,
}

impl LettreMailer {
    /// # Errors
    /// A folder that cannot be created.
    pub fn new(settings: &MailSettings) -> anyhow::Result<Self> {
        let from = settings.from.clone();
        let sender = match &settings.transport {
            Transport::Log { reveal_tokens } => Sender::Log {
                reveal_tokens: *reveal_tokens,
            },
            Transport::File(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("create the email folder {}", dir.display()))?;
                Sender::File {
                    dir: dir.clone(),
                    files: AsyncFileTransport::new(dir),
                }
            }
            Transport::Smtp(url) => Sender::Smtp(
                url.0
                    .clone()
                    .timeout(Some(settings.timeout))
                    .pool_config(PoolConfig::new().max_size(settings.max_connections))
                    .build(),
            ),
        };
        Ok(Self {
            sender,
            from,
            renderer: Renderer::new(&settings.app_name, &settings.link_base)?,
        })
    }

    fn message(&self, email: &OutboundEmail, rendered: Rendered) -> anyhow::Result<Message> {
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
        let rendered = self.renderer.render(email).map_err(MailError::Permanent)?;
        let logged = matches!(self.sender, Sender::Log { .. }).then(|| rendered.text.clone());
        let message = self
            .message(email, rendered)
            .map_err(MailError::Permanent)?;
        match &self.sender {
            Sender::Log { reveal_tokens } => {
                let mut body = logged.unwrap_or_default();
                if !reveal_tokens {
                    body = body.replace(
                        email.token.expose(),
                        "<redacted: tokens are shown with SHELTER_ENV=development>",
                    );
                }
                tracing::info!(to = %email.to, kind = email.kind.as_str(), %body, "email (log transport)");
                Ok(())
            }
            Sender::File { dir, files } => {
                let id = files
                    .send(message)
                    .await
                    .map_err(|e| MailError::Transient(anyhow!("write the .eml file: {e}")))?;
                let path = dir.join(format!("{id}.eml"));
                tracing::info!(to = %email.to, kind = email.kind.as_str(), path = %path.display(), "email written (file transport)");
                Ok(())
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use shelter_domain::{EmailAddress, EmailKind, SecretToken};

    fn settings(transport: Transport) -> MailSettings {
        MailSettings {
            transport,
            from: "Shelter <noreply@localhost>".parse().expect("mailbox"),
            app_name: "Shelter".into(),
            link_base: "http://127.0.0.1:8000".parse().expect("url"),
            timeout: Duration::from_secs(2),
            max_connections: 2,
        }
    }

    fn welcome() -> OutboundEmail {
        OutboundEmail {
            to: EmailAddress::parse("ann@example.com").expect("email"),
            kind: EmailKind::Welcome,
            username: "ann".into(),
            token: SecretToken::presented("file-token-123"),
            code: None,
        }
    }

    /// Each test logs through callsites no other test runs: tracing caches whether a
    /// callsite is wanted, and a test without a subscriber would decide it for the others.
    #[tokio::test]
    async fn the_file_transport_writes_one_rfc5322_message_per_email_and_logs_its_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mailer = LettreMailer::new(&settings(Transport::File(dir.path().join("emails"))))
            .expect("mailer");
        let log = logged(async {
            mailer.send(&welcome()).await.expect("written");
            mailer.send(&welcome()).await.expect("written");
        })
        .await;
        let files: Vec<_> = std::fs::read_dir(dir.path().join("emails"))
            .expect("folder created")
            .map(|entry| entry.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 2);
        assert!(!log.contains("file-token-123"), "{log}");
        for file in files {
            let path = file.display().to_string();
            assert!(log.contains(&path), "the log names {path}: {log}");
            assert_eq!(file.extension().and_then(|e| e.to_str()), Some("eml"));
            let message = std::fs::read_to_string(&file).expect("readable");
            for header in [
                "From: Shelter <noreply@localhost>",
                "To: ann@example.com",
                "Subject: Welcome to Shelter",
                "Date: ",
            ] {
                assert!(message.contains(header), "{header} in {message}");
            }
            assert!(
                message.lines().any(|line| line == "Token: file-token-123"),
                "{message}"
            );
        }
    }

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `run` logs, as text.
    async fn logged(run: impl std::future::Future<Output = ()>) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        run.await;
        String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8")
    }

    #[tokio::test]
    async fn the_log_transport_redacts_the_token_unless_told_to_reveal_it() {
        for reveal_tokens in [false, true] {
            let mailer =
                LettreMailer::new(&settings(Transport::Log { reveal_tokens })).expect("mailer");
            let log = logged(async { mailer.send(&welcome()).await.expect("logged") }).await;
            assert!(
                log.contains("ann@example.com") && log.contains("welcome"),
                "{log}"
            );
            let link = "http://127.0.0.1:8000/verify-email?token=file-token-123";
            assert_eq!(log.contains("file-token-123"), reveal_tokens, "{log}");
            assert_eq!(log.contains(link), reveal_tokens, "the whole link: {log}");
        }
    }

    #[test]
    fn an_smtp_url_with_a_password_is_never_echoed_in_errors_or_debug() {
        for bad in ["ftp://user:hunter2@host", "smtp://user:hunter2@host:99999"] {
            let error = bad.parse::<SmtpUrl>().expect_err("not an SMTP URL");
            assert!(!error.contains("hunter2"), "{error}");
        }
        let good: SmtpUrl = "smtp://user:hunter2@host:587".parse().expect("an SMTP URL");
        assert!(!format!("{good:?}").contains("hunter2"));
    }
}
