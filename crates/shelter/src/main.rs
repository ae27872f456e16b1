//! `shelter`: serve (default), migrate, or create a superuser.

use std::io::BufRead as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shelter::app::{self, Application, Services};
use shelter::config::Settings;
use shelter::telemetry;
use shelter_domain::{EmailAddress, NewAccount, Password, Username};

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
    /// Create a superuser. The password is read from standard input unless given.
    CreateSuperuser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: String,
        #[arg(long, env = "SHELTER_SUPERUSER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
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
    telemetry::init(settings.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&settings).await,
        Command::Migrate => app::open_database(&settings).await.map(|_| ()),
        Command::CreateSuperuser {
            email,
            username,
            password,
        } => create_superuser(&settings, &email, &username, password).await,
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

async fn create_superuser(
    settings: &Settings,
    email: &str,
    username: &str,
    password: Option<String>,
) -> anyhow::Result<()> {
    let password = if let Some(password) = password {
        password
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    let account = NewAccount {
        email: EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("--email {e}"))?,
        username: Username::parse(username).map_err(|e| anyhow::anyhow!("--username {e}"))?,
        password: Password::parse(&password).map_err(|e| anyhow::anyhow!("password {e}"))?,
    };
    let database = app::open_database(settings).await?;
    let services = Services::build(settings, &database)?;
    let user = services.users.create_superuser(account).await?;
    println!("created superuser {} ({})", user.username, user.id);
    database.close().await;
    Ok(())
}
