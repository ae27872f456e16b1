//! A login's steps, the same for every adapter: the first (login and password) and the
//! second (a TOTP or recovery code). Each is rate-limited and counted, and comes back as
//! [`SignIn`], a value the adapter matches on: signed in, a second step with its methods,
//! or refused with the reason to show.

use secrecy::SecretString;
use shelter_domain::limits::Limit;
use shelter_domain::{AuthError, Login, LoginOutcome, LoginStep, SecondFactor, SecretToken};

use super::context;
use super::limits::enforce;
use super::refusal::Refusal;
use super::state::AppState;

/// What a login step came to.
#[derive(Debug)]
pub enum SignIn {
    /// Signed in: the new session's tokens.
    SignedIn(LoginOutcome),
    /// The password was right; the second step presents `token` with a code of one of
    /// `methods`.
    SecondStep {
        token: SecretToken,
        methods: &'static [SecondFactor],
    },
    /// Refused: wrong credentials or code (401), an inactive or unverified user (403), too
    /// many attempts (429), a dependency down (503).
    Refused(Refusal),
}

/// What `shelter_logins_total{result}` counts: every value, so each series exists from the
/// first scrape.
pub const LOGIN_RESULTS: [&str; 9] = [
    "success",
    "invalid_credentials",
    "inactive",
    "unverified",
    "mfa_required",
    "mfa_failed",
    "rate_limited",
    "unavailable",
    "error",
];

/// The first step: rate-limited per client address and login, and counted by its result.
/// The client is the request context's, as the middleware read it.
pub async fn attempt_login(state: &AppState, login: &Login, password: &SecretString) -> SignIn {
    let client = context::current().client;
    let key = format!(
        "{}|{}",
        client.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        login.key()
    );
    if let Err(limited) = enforce(state, Limit::Login, &key).await {
        count_login("rate_limited");
        return SignIn::Refused(limited);
    }
    let outcome = state.auth.login(login, password, &client).await;
    count_login(match &outcome {
        Ok(LoginStep::Done(_)) => "success",
        Ok(LoginStep::SecondStep { .. }) => "mfa_required",
        Err(AuthError::InvalidCredentials) => "invalid_credentials",
        Err(AuthError::Inactive) => "inactive",
        Err(AuthError::Unverified) => "unverified",
        Err(AuthError::Unavailable(_)) => "unavailable",
        Err(_) => "error",
    });
    match outcome {
        Ok(LoginStep::Done(login)) => SignIn::SignedIn(login),
        Ok(LoginStep::SecondStep { token, methods }) => SignIn::SecondStep { token, methods },
        Err(refused) => SignIn::Refused(refused.into()),
    }
}

/// The second step: rate-limited per client address with the login quota, and counted.
pub async fn attempt_second_step(state: &AppState, mfa_token: &str, code: &str) -> SignIn {
    let client = context::current().client;
    let key = format!(
        "{}|mfa",
        client.ip.map(|ip| ip.to_string()).unwrap_or_default()
    );
    if let Err(limited) = enforce(state, Limit::Login, &key).await {
        return SignIn::Refused(limited);
    }
    let outcome = state.auth.complete_mfa(mfa_token, code, &client).await;
    count_login(if outcome.is_ok() {
        "success"
    } else {
        "mfa_failed"
    });
    match outcome {
        Ok(login) => SignIn::SignedIn(login),
        Err(refused) => SignIn::Refused(refused.into()),
    }
}

/// `shelter_logins_total{result}`: what became of one attempt.
fn count_login(result: &'static str) {
    metrics::counter!("shelter_logins_total", "result" => result).increment(1);
}
