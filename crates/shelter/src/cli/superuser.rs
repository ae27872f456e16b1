//! `shelter create-superuser`: one superuser, with only the user service built (no
//! signing key, Redis or hub is needed to insert one row).

use std::io::{BufRead as _, IsTerminal as _};
use std::sync::Arc;

use shelter_crypto::{Argon2PasswordHasher, HashingParams, HashingPool};
use shelter_domain::cluster::NoSessions;
use shelter_domain::ports::SystemClock;
use shelter_domain::{EmailAddress, NewAccount, Password, UserService, Username};

use crate::app;
use crate::config::Settings;

/// Creates the superuser; clap has checked the arguments before the password is asked for.
///
/// # Errors
/// A password that is refused, a store that fails, or a taken email or username.
pub async fn create(
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
