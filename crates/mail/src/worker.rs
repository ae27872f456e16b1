//! `OutboxWorker`: delivers queued emails with retries, until told to stop.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use rand::Rng as _;
use shelter_domain::QueuedEmail;
use shelter_domain::ports::{Clock, EmailOutbox, MailError, Mailer};
use tokio::sync::{Notify, watch};

/// When to try again, and when to give up.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles with each further one.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): exponential, capped, and
    /// jittered into its upper half, so that emails that failed together (the server was
    /// down) do not all come back at the same instant.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let full = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max_delay);
        full.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    pub retry: RetryPolicy,
    /// Emails claimed at once.
    pub batch: u32,
    /// Emails of a batch sent concurrently.
    pub concurrency: usize,
    /// How long a claimed email stays reserved for this worker without a heartbeat. The
    /// worker renews it every third of this while the email is being sent, so it bounds
    /// how long an email waits after its worker died, not how long a send may take.
    pub lease: Duration,
    /// How often to look for due emails when nothing wakes the worker.
    pub poll_interval: Duration,
}

pub struct OutboxWorker {
    outbox: Arc<dyn EmailOutbox>,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    settings: WorkerSettings,
    wake: Arc<Notify>,
}

impl OutboxWorker {
    pub fn new(
        outbox: Arc<dyn EmailOutbox>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
        settings: WorkerSettings,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            outbox,
            mailer,
            clock,
            settings,
            wake,
        }
    }

    /// Delivers until `stop` turns true; a batch under way is finished first, so nothing
    /// is left leased when it returns.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                break;
            }
            let claimed = self.deliver_due().await;
            if claimed == self.settings.batch as usize {
                continue;
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = stop.changed() => {}
            }
        }
        tracing::info!("outbox worker stopped");
    }

    /// Claims one batch of due emails and sends them; returns how many were claimed.
    pub async fn deliver_due(&self) -> usize {
        let now = self.clock.now();
        let lease =
            chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::minutes(5));
        let batch = match self.outbox.claim(now, lease, self.settings.batch).await {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "could not claim emails; will retry"
                );
                return 0;
            }
        };
        let claimed = batch.len();
        let ids: Vec<i64> = batch.iter().map(|email| email.id).collect();
        let sending = futures_util::stream::iter(batch)
            .for_each_concurrent(self.settings.concurrency, |email| self.deliver(email));
        tokio::select! {
            () = sending => {}
            () = self.heartbeat(&ids, lease) => {}
        }
        claimed
    }

    /// Renews the lease of `ids` every third of it, for as long as the batch is being sent
    /// (it never returns). A renewal that fails is logged and tried at the next beat: two
    /// beats remain before the lease runs out.
    async fn heartbeat(&self, ids: &[i64], lease: chrono::Duration) {
        let mut beat = tokio::time::interval(self.settings.lease / 3);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        beat.tick().await;
        loop {
            beat.tick().await;
            if let Err(error) = self.outbox.renew_lease(ids, self.clock.now() + lease).await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "could not renew the lease of emails being sent"
                );
            }
        }
    }

    async fn deliver(&self, queued: QueuedEmail) {
        let kind = queued.email.kind.as_str();
        let outcome = self.mailer.send(&queued.email).await;
        let recorded = match outcome {
            Ok(()) => {
                metrics::counter!("shelter_emails_sent_total", "kind" => kind).increment(1);
                self.outbox.mark_sent(queued.id, self.clock.now()).await
            }
            Err(MailError::Transient(error))
                if queued.attempts < self.settings.retry.max_attempts =>
            {
                let delay = self.settings.retry.delay(queued.attempts);
                tracing::warn!(
                    email_id = queued.id,
                    attempt = queued.attempts,
                    retry_in_s = delay.as_secs_f64(),
                    error = format!("{error:#}"),
                    "email not delivered; will retry"
                );
                metrics::counter!("shelter_email_retries_total", "kind" => kind).increment(1);
                self.outbox
                    .retry_at(queued.id, self.due_after(delay), &format!("{error:#}"))
                    .await
            }
            Err(error) => {
                tracing::error!(
                    email_id = queued.id,
                    attempts = queued.attempts,
                    kind,
                    error = %error,
                    "email delivery failed for good"
                );
                metrics::counter!("shelter_emails_failed_total", "kind" => kind).increment(1);
                self.outbox.mark_failed(queued.id, &error.to_string()).await
            }
        };
        if let Err(error) = recorded {
            // The lease runs out and the email is tried again: at least once, never lost.
            tracing::warn!(
                email_id = queued.id,
                error = format!("{error:#}"),
                "could not record the outcome"
            );
        }
    }

    fn due_after(&self, delay: Duration) -> DateTime<Utc> {
        self.clock.now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shelter_domain::ports::{MockClock, MockEmailOutbox, MockMailer};
    use shelter_domain::{EmailAddress, EmailKind, OutboundEmail, SecretToken};

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_secs(2),
        max_delay: Duration::from_secs(10),
    };

    #[test]
    fn delays_double_are_capped_and_jittered_into_their_upper_half() {
        for (attempt, full) in [(1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (40, 10.0)] {
            for _ in 0..50 {
                let delay = POLICY.delay(attempt).as_secs_f64();
                assert!(
                    (full / 2.0..=full).contains(&delay),
                    "attempt {attempt}: {delay}"
                );
            }
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).expect("time")
    }

    fn queued(id: i64, attempts: u32) -> QueuedEmail {
        QueuedEmail {
            id,
            attempts,
            email: OutboundEmail {
                to: EmailAddress::parse("ann@example.com").expect("email"),
                kind: EmailKind::Welcome,
                username: "ann".into(),
                token: SecretToken::generate(),
                code: None,
            },
        }
    }

    fn worker(outbox: MockEmailOutbox, mailer: MockMailer) -> OutboxWorker {
        let mut clock = MockClock::new();
        clock.expect_now().returning(now);
        OutboxWorker::new(
            Arc::new(outbox),
            Arc::new(mailer),
            Arc::new(clock),
            WorkerSettings {
                retry: POLICY,
                batch: 10,
                concurrency: 4,
                lease: Duration::from_millis(300),
                poll_interval: Duration::from_secs(1),
            },
            Arc::default(),
        )
    }

    #[tokio::test]
    async fn sent_emails_are_marked_sent() {
        let mut outbox = MockEmailOutbox::new();
        outbox
            .expect_claim()
            .returning(|_, _, _| Ok(vec![queued(1, 1), queued(2, 1)]));
        outbox.expect_mark_sent().times(2).returning(|_, _| Ok(()));
        let mut mailer = MockMailer::new();
        mailer.expect_send().times(2).returning(|_| Ok(()));
        assert_eq!(worker(outbox, mailer).deliver_due().await, 2);
    }

    #[tokio::test]
    async fn transient_failures_retry_later_until_the_last_attempt() {
        let mut outbox = MockEmailOutbox::new();
        outbox
            .expect_claim()
            .returning(|_, _, _| Ok(vec![queued(1, 1), queued(2, 3)]));
        outbox
            .expect_retry_at()
            .withf(|id, at, _| {
                *id == 1
                    && *at >= now() + chrono::Duration::seconds(1)
                    && *at <= now() + chrono::Duration::seconds(2)
            })
            .times(1)
            .returning(|_, _, _| Ok(()));
        outbox
            .expect_mark_failed()
            .withf(|id, _| *id == 2)
            .times(1)
            .returning(|_, _| Ok(()));
        outbox.expect_mark_sent().never();
        let mut mailer = MockMailer::new();
        mailer
            .expect_send()
            .returning(|_| Err(MailError::Transient(anyhow::anyhow!("connection refused"))));
        worker(outbox, mailer).deliver_due().await;
    }

    #[tokio::test]
    async fn a_slow_send_keeps_its_lease_alive_until_it_ends() {
        let mut outbox = MockEmailOutbox::new();
        outbox
            .expect_claim()
            .returning(|_, _, _| Ok(vec![queued(7, 1)]));
        outbox
            .expect_renew_lease()
            .withf(|ids, until| ids == [7] && *until == now() + chrono::Duration::milliseconds(300))
            .times(2..)
            .returning(|_, _| Ok(()));
        outbox.expect_mark_sent().times(1).returning(|_, _| Ok(()));
        let mut worker = worker(outbox, MockMailer::new());
        worker.mailer = Arc::new(SlowMailer);
        assert_eq!(worker.deliver_due().await, 1);
    }

    /// A send that takes several beats of the 300 ms lease (SMTP servers can be slow).
    struct SlowMailer;

    #[async_trait::async_trait]
    impl Mailer for SlowMailer {
        async fn send(&self, _: &OutboundEmail) -> Result<(), MailError> {
            tokio::time::sleep(Duration::from_millis(450)).await;
            Ok(())
        }
    }

    #[tokio::test]
    async fn permanent_failures_are_not_retried() {
        let mut outbox = MockEmailOutbox::new();
        outbox
            .expect_claim()
            .returning(|_, _, _| Ok(vec![queued(1, 1)]));
        outbox.expect_retry_at().never();
        outbox
            .expect_mark_failed()
            .times(1)
            .returning(|_, _| Ok(()));
        let mut mailer = MockMailer::new();
        mailer
            .expect_send()
            .returning(|_| Err(MailError::Permanent(anyhow::anyhow!("550 no such user"))));
        worker(outbox, mailer).deliver_due().await;
    }

    #[tokio::test]
    async fn the_worker_stops_when_told() {
        let mut outbox = MockEmailOutbox::new();
        outbox.expect_claim().returning(|_, _, _| Ok(Vec::new()));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(worker(outbox, MockMailer::new()).run(stopped));
        stop.send(true).expect("send");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stops promptly")
            .expect("no panic");
    }
}
