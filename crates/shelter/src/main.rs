//! `shelter`: serve (default), migrate, create a superuser, rotate or list the signing keys,
//! or check a server's health.

use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use shelter::app::{self, Application};
use shelter::config::Settings;
use shelter::{healthcheck, keys, telemetry};
use shelter_auth::{Argon2PasswordHasher, HashingParams, HashingPool};
use shelter_domain::ports::SystemClock;
use shelter_domain::realtime::NoSessions;
use shelter_domain::{EmailAddress, NewAccount, Password, UserService, Username};

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
    /// The signing keys of `SHELTER_JWT_ALGORITHM=EdDSA`.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
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
        } => create_superuser(&settings, email, username, password).await,
        Command::Keys { command } => match command {
            KeysCommand::Rotate => keys::rotate(&settings).await,
            KeysCommand::List => keys::list(&settings).await,
        }
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

/// clap has checked the arguments before the password is asked for, and builds only the user service:
/// no signing key, Redis or hub is needed to insert one row.
async fn create_superuser(
    settings: &Settings,
    email: EmailAddress,
    username: Username,
    password: Option<String>,
) -> anyhow::Result<()> {
    let password = match password {
        Some(password) => password,
        None => read_password()?,
    };
    let password = Password::parse(&password).map_err(|e| anyhow::anyhow!("password {e}"))?;
    let database = app::open_database(settings).await?;
    let users = UserService::new(
        Arc::new(database.users()),
        Arc::new(Argon2PasswordHasher::new(
            HashingParams::default(),
            HashingPool::with_threads(1),
        )?),
        Arc::new(SystemClock),
        Arc::new(NoSessions),
    );
    let user = users
        .create_superuser(NewAccount {
            email,
            username,
            password,
        })
        .await?;
    println!("created superuser {} ({})", user.username(), user.id());
    database.close().await;
    Ok(())
}

/// At a terminal, asked twice without echo; otherwise one line of standard input, so
/// scripts can pipe it.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let password = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password (again): ")?;
        anyhow::ensure!(password == again, "the two passwords differ");
        Ok(password)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}
