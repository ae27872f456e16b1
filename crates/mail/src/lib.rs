//! Shelter's mail adapter.
//!
//! - `render`: the emails' subjects and bodies, from the templates in `templates/`
//!   (plain text and HTML, compiled into the binary).
//! - [`LettreMailer`] implements the domain's `Mailer` with lettre: `log`, `file` (one
//!   RFC 5322 `.eml` per email) or `smtp`.
//! - [`OutboxWorker`] delivers the outbox: claims due emails, sends them, retries with
//!   exponential backoff and jitter, gives up after a configured number of attempts.

mod render;
mod transport;
mod worker;

pub use lettre::message::Mailbox;
pub use render::Rendered;
pub use transport::{LettreMailer, MailSettings, SmtpUrl, Transport};
pub use worker::{OutboxWorker, RetryPolicy, WorkerSettings};
