//! Outbox delivery figures, on SQLite (default) or PostgreSQL (`BENCH_BACKEND=postgres`):
//!
//! ```text
//! cargo run --release -p shelter --example outbox_bench -- throughput 2000
//! cargo run --release -p shelter --example outbox_bench -- outage 60 200
//! ```
//!
//! `throughput N` queues N emails and times one worker delivering them to the test SMTP
//! server. `outage S N` queues N emails while SMTP is down, keeps it down S seconds with the
//! default retry policy, then starts it and times the drain.

#![allow(
    clippy::disallowed_methods,
    reason = "a test or benchmark spawns outside any request: no context to carry"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use shelter::app::mailer;
use shelter::config::{EmailTransport, Settings};
use shelter_domain::ports::SystemClock;
use shelter_mail::OutboxWorker;
use shelter_persistence::Database;
use shelter_test_support::smtp::SmtpServer;
use shelter_test_support::{Backend, TestDatabase};

fn settings(smtp_port: u16) -> Settings {
    let mut settings = Settings::default();
    settings.email.transport = EmailTransport::Smtp;
    settings.smtp.url = Some(
        format!("smtp://127.0.0.1:{smtp_port}")
            .parse()
            .expect("an SMTP URL"),
    );
    settings
}

fn start_worker(
    database: &Database,
    settings: &Settings,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let worker = OutboxWorker::new(
        Arc::new(database.outbox()),
        Arc::new(mailer(settings).expect("mailer")),
        Arc::new(SystemClock),
        settings.delivery(),
        database.outbox_signal(),
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    (stop, tokio::spawn(worker.run(stopped)))
}

fn retries() -> String {
    shelter::runtime::telemetry::install_metrics()
        .map(metrics_exporter_prometheus::PrometheusHandle::render)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.starts_with("shelter_email"))
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let backend = if std::env::var("BENCH_BACKEND").as_deref() == Ok("postgres") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    };
    let test_database = TestDatabase::create(backend).await.expect("database");
    let database = test_database.migrated().await;
    shelter::runtime::telemetry::install_metrics();
    if args.first().map(String::as_str) == Some("outage") {
        let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60);
        let count: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);
        let port = SmtpServer::reserve_port().await;
        let settings = settings(port);
        shelter_test_support::queue_welcome_emails(&database, count).await;
        let (stop, worker) = start_worker(&database, &settings);
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        println!("after {seconds} s down: delivered 0, {}", retries());
        let smtp = SmtpServer::start_on(port).await;
        let back = Instant::now();
        let received = smtp.wait_for(count, Duration::from_hours(1)).await;
        println!(
            "| {backend:?} | outage {seconds} s | {count} queued | all delivered {:.1} s after SMTP came back | received {} |",
            back.elapsed().as_secs_f64(),
            received.len()
        );
        println!("{}", retries());
        stop.send(true).ok();
        worker.await.ok();
    } else {
        let count: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2000);
        let smtp = SmtpServer::start().await;
        let settings = settings(smtp.port());
        shelter_test_support::queue_welcome_emails(&database, count).await;
        let started = Instant::now();
        let (stop, worker) = start_worker(&database, &settings);
        let received = smtp.wait_for(count, Duration::from_mins(10)).await;
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "| {backend:?} | {count} emails | {elapsed:.2} s | {:.0} emails/s | received {} |",
            f64::from(u32::try_from(received.len()).unwrap_or(u32::MAX)) / elapsed,
            received.len()
        );
        stop.send(true).ok();
        worker.await.ok();
    }
}
