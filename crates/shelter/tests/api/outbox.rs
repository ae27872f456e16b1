//! The outbox worker with real parts: two workers on one database, a real SMTP peer.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use shelter::app::mailer;
use shelter::config::Settings;
use shelter_domain::ports::SystemClock;
use shelter_mail::OutboxWorker;
use shelter_test_support::smtp::SmtpServer;
use shelter_test_support::{Backend, TestDatabase};

async fn two_workers_on_one_database_send_each_of_200_emails_once(backend: Backend) {
    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let smtp = SmtpServer::start().await;
    let first = database.migrated().await;
    shelter_test_support::queue_welcome_emails(&first, 200).await;
    let mut settings = Settings::default();
    crate::helpers::with_smtp(&mut settings, &smtp.url());
    let mut worker_settings = settings.delivery();
    worker_settings.batch = 10;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    // Two instances: two pools on the same database, as two processes would have.
    for _ in 0..2 {
        let instance = database.migrated().await;
        let worker = OutboxWorker::new(
            Arc::new(instance.outbox()),
            Arc::new(mailer(&settings).expect("mailer")),
            Arc::new(SystemClock),
            worker_settings,
            Arc::default(),
        );
        workers.push(tokio::spawn(worker.run(stopped.clone())));
    }
    let received = smtp.wait_for(200, Duration::from_mins(1)).await;
    // Anything sent twice would arrive now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(true).expect("stop");
    for worker in workers {
        worker.await.expect("worker stopped cleanly");
    }
    let received = smtp.received().len().max(received.len());
    let tokens: HashSet<String> = smtp
        .received()
        .iter()
        .filter_map(shelter_test_support::smtp::ReceivedEmail::token)
        .collect();
    assert_eq!(
        (received, tokens.len()),
        (200, 200),
        "each email exactly once"
    );
}

shelter_test_support::on_both_backends!(two_workers_on_one_database_send_each_of_200_emails_once);
