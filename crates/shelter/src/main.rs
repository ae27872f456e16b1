//! `shelter`: serve (default), migrate, create a superuser, rotate or list the signing keys,
//! manage the OAuth clients, or check a server's health.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shelter::app::{self, Application};
use shelter::cli::{clients, healthcheck, keys, superuser};
use shelter::config::Settings;
use shelter::runtime::telemetry;
use shelter_domain::{EmailAddress, Username};

// jemalloc, because it holds memory flattest (bench/memory.sh, 500 signups + 500 logins,
// and repeated bursts): it gives freed memory back within seconds, so RSS after each burst
// returns to within a few MiB of idle. glibc gives the hashing threads' 19 MiB blocks back
// after the first burst only: its dynamic mmap threshold then moves them into arenas it
// never trims, and it stays at its peak (~62 MiB) after every later burst. mimalloc keeps
// its peak (~72–80 MiB) from the first. Peaks and login rates were alike. Its settings are
// in `.cargo/config.toml`.
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Shelter: user management and authentication over HTTP"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve,
    /// Bring the database schema up to date, then exit.
    Migrate,
    /// Exit 0 when the server on this machine (at the configured host and port) is ready, 1
    /// otherwise: a container health check that needs no curl.
    Healthcheck,
    /// Create a superuser. The password is asked for (twice, without echo) at a terminal,
    /// read from standard input otherwise, unless given.
    CreateSuperuser {
        #[arg(long)]
        email: EmailAddress,
        #[arg(long)]
        username: Username,
        #[arg(long, env = "SHELTER_SUPERUSER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// The signing keys: the OpenID Connect provider's RSA keys, and the Ed25519 keys of
    /// `SHELTER_JWT_ALGORITHM=EdDSA`.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The OAuth clients of the OpenID Connect provider.
    Clients {
        #[command(subcommand)]
        command: clients::ClientsCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a key that every instance signs with within a minute; earlier keys keep
    /// verifying until the tokens they signed have expired. No one is logged out.
    Rotate,
    /// Show each key's id, state and dates.
    List,
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);
    let level = if matches!(command, Command::Serve) {
        "info"
    } else {
        "warn"
    };
    telemetry::init(settings.log_format, level);
    let result = match command {
        Command::Serve => serve(&settings).await,
        Command::Migrate => app::open_database(&settings).await.map(|_| ()),
        Command::Healthcheck => healthcheck::check(&settings),
        Command::CreateSuperuser {
            email,
            username,
            password,
        } => superuser::create(&settings, email, username, password).await,
        Command::Keys { command } => match command {
            KeysCommand::Rotate => keys::rotate(&settings).await,
            KeysCommand::List => keys::list(&settings).await,
        }
        .map(|out| println!("{}", out.trim_end())),
        Command::Clients { command } => clients::run(&settings, command)
            .await
            .map(|out| println!("{}", out.trim_end())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: &Settings) -> anyhow::Result<()> {
    let application = Application::build(settings).await?;
    tracing::info!(host = %settings.host, port = application.port(), "shelter is serving");
    application.run_until_stopped().await
}
