//! A login's steps, the same for every adapter: the first (a password, a passkey, or an
//! emailed code) and the second (a TOTP or recovery code, or a passkey). Each is rate-limited and counted, and comes back as
//! [`SignIn`], a value the adapter matches on: signed in, a second step with its methods,
//! or refused with the reason to show.

use secrecy::SecretString;
use serde_json::Value;
use shelter_domain::limits::Limit;
use shelter_domain::{
    AuthError, ClientInfo, EmailAddress, Login, LoginOutcome, LoginStep, SecondFactor, SecretToken,
};

use super::context;
use super::limits::enforce;
use super::refusal::Refusal;
use super::requests::SecondProof;
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
    if let Err(limited) = enforce(state, Limit::Login, &limit_key(&client, &login.key())).await {
        count_login("rate_limited");
        return SignIn::Refused(limited);
    }
    first_step(state.auth.login(login, password, &client).await)
}

/// A passkey sign-in: one step, rate-limited per client address with the login quota.
pub async fn attempt_passkey(state: &AppState, flow_token: &str, response: &Value) -> SignIn {
    let client = context::current().client;
    if let Err(limited) = enforce(state, Limit::Login, &limit_key(&client, "passkey")).await {
        count_login("rate_limited");
        return SignIn::Refused(limited);
    }
    let outcome = state
        .auth
        .sign_in_with_passkey(flow_token, response, &client)
        .await;
    first_step(outcome.map(LoginStep::Done))
}

/// An emailed sign-in code or link: the first step, rate-limited per client address (and
/// address, for a code) with the login quota.
pub async fn attempt_email_code(state: &AppState, proof: EmailProof<'_>) -> SignIn {
    let client = context::current().client;
    let key = match &proof {
        EmailProof::Code { email, .. } => limit_key(&client, email.as_str()),
        EmailProof::Link(_) => limit_key(&client, "email-link"),
    };
    if let Err(limited) = enforce(state, Limit::Login, &key).await {
        count_login("rate_limited");
        return SignIn::Refused(limited);
    }
    let outcome = match proof {
        EmailProof::Code { email, code } => {
            state
                .auth
                .sign_in_with_email_code(email, code, &client)
                .await
        }
        EmailProof::Link(token) => state.auth.sign_in_with_email_link(token, &client).await,
    };
    first_step(outcome)
}

/// What a sign-in email proves: its six digits with the address, or its link's token.
pub enum EmailProof<'a> {
    Code {
        email: &'a EmailAddress,
        code: &'a str,
    },
    Link(&'a str),
}

/// The second step: rate-limited per client address with the login quota, and counted.
pub async fn attempt_second_step(state: &AppState, mfa_token: &str, proof: &SecondProof) -> SignIn {
    let client = context::current().client;
    if let Err(limited) = enforce(state, Limit::Login, &limit_key(&client, "mfa")).await {
        return SignIn::Refused(limited);
    }
    let outcome = match proof {
        SecondProof::Code(code) => state.auth.complete_mfa(mfa_token, code, &client).await,
        SecondProof::Passkey(response) => {
            state
                .auth
                .complete_mfa_with_passkey(mfa_token, response, &client)
                .await
        }
    };
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

/// The rate limiter's key: the client's address and what it tries.
fn limit_key(client: &ClientInfo, what: &str) -> String {
    format!(
        "{}|{what}",
        client.ip.map(|ip| ip.to_string()).unwrap_or_default()
    )
}

/// Counts a first step and turns it into what the adapter answers.
fn first_step(outcome: Result<LoginStep, AuthError>) -> SignIn {
    count_login(match &outcome {
        Ok(LoginStep::Done(_)) => "success",
        Ok(LoginStep::SecondStep { .. }) => "mfa_required",
        Err(
            AuthError::InvalidCredentials | AuthError::InvalidPasskey | AuthError::InvalidEmailCode,
        ) => "invalid_credentials",
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

/// `shelter_logins_total{result}`: what became of one attempt.
fn count_login(result: &'static str) {
    metrics::counter!("shelter_logins_total", "result" => result).increment(1);
}
