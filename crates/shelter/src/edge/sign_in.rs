//! A login's steps, the same for every adapter: the first (a password, a passkey, or an
//! emailed code) and the second (a TOTP or recovery code, or a passkey). Each is rate-limited and counted, and comes back as
//! [`SignIn`], a value the adapter matches on: signed in, a second step with its methods,
//! or refused with the reason to show.

use secrecy::SecretString;
use serde_json::Value;
use shelter_domain::identities::{
    Arrival, CallbackAnswer, FederationError, PendingLink, ProviderId,
};
use shelter_domain::limits::Limit;
use shelter_domain::{
    AuthError, ClientInfo, EmailAddress, Login, LoginOutcome, LoginStep, SecondFactor, SecretToken,
};
use shelter_domain::{SessionId, UserId};

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

/// What a provider's callback came to.
#[derive(Debug)]
pub enum ProviderArrival {
    /// A sign-in step, then `next`.
    SignIn(SignIn, Option<String>),
    /// An account with the provider's email exists: ask for its password or passkey.
    Confirm(PendingLink),
    /// Linked to the signed-in user.
    Linked,
}

/// A provider's callback: rate-limited per client address with the login quota, and
/// counted like a first step when it signs in.
///
/// # Errors
/// Everything that signs nobody in and links nothing, as the refusal to show.
pub async fn attempt_provider(
    state: &AppState,
    provider: &ProviderId,
    cookie: Option<&str>,
    answer: CallbackAnswer<'_>,
    signed_in: Option<(UserId, SessionId)>,
) -> Result<ProviderArrival, Refusal> {
    let client = context::current().client;
    if let Err(limited) = enforce(state, Limit::Login, &limit_key(&client, "provider")).await {
        count_login("rate_limited");
        return Err(limited);
    }
    let arrival = state
        .federation
        .callback(provider, cookie, answer, signed_in, &client)
        .await;
    match arrival {
        Ok(Arrival::SignedIn { step, next }) => {
            Ok(ProviderArrival::SignIn(first_step(Ok(step)), next))
        }
        Ok(Arrival::Confirm(pending)) => Ok(ProviderArrival::Confirm(pending)),
        Ok(Arrival::Linked(_)) => Ok(ProviderArrival::Linked),
        Err(FederationError::Auth(refused)) => {
            count_login(failure(&refused));
            Err(refused.into())
        }
        Err(other) => Err(other.into()),
    }
}

/// What confirms a pending link: the existing account's password, or its passkey.
pub enum LinkProof<'a> {
    Password(&'a SecretString),
    Passkey {
        flow_token: &'a str,
        response: &'a Value,
    },
}

/// Confirms a pending link and signs in: rate-limited like a login, and counted.
pub async fn attempt_link_confirmation(
    state: &AppState,
    sealed: &str,
    proof: LinkProof<'_>,
) -> (SignIn, Option<String>) {
    let client = context::current().client;
    if let Err(limited) = enforce(state, Limit::Login, &limit_key(&client, "provider-link")).await {
        count_login("rate_limited");
        return (SignIn::Refused(limited), None);
    }
    let federation = &state.federation;
    let outcome = match proof {
        LinkProof::Password(password) => {
            federation
                .confirm_with_password(sealed, password, &client)
                .await
        }
        LinkProof::Passkey {
            flow_token,
            response,
        } => federation
            .confirm_with_passkey(sealed, flow_token, response, &client)
            .await
            .map(|(login, next)| (LoginStep::Done(login), next)),
    };
    match outcome {
        Ok((step, next)) => (first_step(Ok(step)), next),
        Err(FederationError::Auth(refused)) => (first_step(Err(refused)), None),
        Err(other) => (SignIn::Refused(other.into()), None),
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
        Err(refused) => failure(refused),
    });
    match outcome {
        Ok(LoginStep::Done(login)) => SignIn::SignedIn(login),
        Ok(LoginStep::SecondStep { token, methods }) => SignIn::SecondStep { token, methods },
        Err(refused) => SignIn::Refused(refused.into()),
    }
}

/// The `result` a refused first step is counted under.
fn failure(refused: &AuthError) -> &'static str {
    match refused {
        AuthError::InvalidCredentials | AuthError::InvalidPasskey | AuthError::InvalidEmailCode => {
            "invalid_credentials"
        }
        AuthError::Inactive => "inactive",
        AuthError::Unverified => "unverified",
        AuthError::Unavailable(_) => "unavailable",
        _ => "error",
    }
}

/// `shelter_logins_total{result}`: what became of one attempt.
fn count_login(result: &'static str) {
    metrics::counter!("shelter_logins_total", "result" => result).increment(1);
}
