//! Sign-in with upstream providers on the pages: the start (off to the provider), the
//! callback (back from it), the page that asks an existing account's password or passkey
//! before linking, and linking or unlinking from the account page.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;
use shelter_domain::identities::{CallbackAnswer, Intent, PendingLink, ProviderId};

use super::error::{PageError, PageResult};
use super::forms::{form, json_field, text};
use super::frame;
use super::layout::{self, Notice, notice};
use super::sign_in::{SecondStepPage, signed_in};
use crate::edge::body::RawBody;
use crate::edge::browser;
use crate::edge::refusal::Refusal;
use crate::edge::sign_in::{
    LinkProof, ProviderArrival, SignIn, attempt_link_confirmation, attempt_provider,
};
use crate::edge::state::AppState;

/// The form field that carries a sealed pending link.
const LINK_FIELD: &str = "link";

/// The longest `next` carried to a provider and back: the flow's cookie must stay under
/// the 4 KiB a browser keeps (an authorization request to come back to is well under 2).
const MAX_NEXT: usize = 2048;

/// A provider id from the path; an id no provider could have is no page.
fn provider_id(raw: &str) -> Result<ProviderId, PageError> {
    ProviderId::parse(raw).map_err(|_| PageError::not_found())
}

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// `GET /auth/providers/{id}/start?next=…`: off to the provider, with the flow sealed in a
/// cookie of this browser.
pub async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: Option<web::Query<StartQuery>>,
) -> PageResult {
    let provider = provider_id(&path)?;
    let next = query
        .and_then(|query| query.into_inner().next)
        .filter(|next| {
            next.len() <= MAX_NEXT && layout::after_sign_in(Some(next)) == next.as_str()
        });
    away(&req, &state, &provider, Intent::SignIn { next }).await
}

/// Off to the provider, the flow sealed in a cookie of this browser for the callback.
async fn away(
    req: &HttpRequest,
    state: &AppState,
    provider: &ProviderId,
    intent: Intent,
) -> PageResult {
    let started = state.federation.start(provider, intent).await?;
    browser::keep_provider_flow(req, state, started.cookie);
    Ok(layout::redirect(&started.url))
}

/// `POST /account/identities/{provider}/link`: off to the provider to link an account to
/// the signed-in user.
pub async fn link(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: RawBody,
) -> PageResult {
    let login = frame::require(&req, &state).await?;
    form(&req, &state, body).await?;
    let provider = provider_id(&path)?;
    let intent = Intent::Link {
        user: login.user.id(),
        session: login.session,
    };
    away(&req, &state, &provider, intent).await
}

/// `POST /account/identities/{provider}/unlink`.
pub async fn unlink(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: RawBody,
) -> PageResult {
    let login = frame::require(&req, &state).await?;
    form(&req, &state, body).await?;
    let provider = provider_id(&path)?;
    state.federation.unlink(login.user.id(), &provider).await?;
    Ok(layout::redirect("/account?done=identity-unlinked"))
}

/// `GET /auth/providers/{id}/callback`: the provider sends the browser back with `code`
/// and `state`, or with `error`.
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let provider = provider_id(&path)?;
    let flow = browser::take_provider_flow(&req, &state);
    let query: Vec<(String, String)> = form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    // The provider's words, shown escaped, and no more of them than a page needs.
    let declined = field("error").map(|error| {
        field("error_description")
            .map_or_else(|| error.to_owned(), |text| format!("{error}: {text}"))
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect::<String>()
    });
    let outcome = match (&declined, field("code")) {
        (Some(declined), _) => Err(declined.as_str()),
        (None, Some(code)) => Ok(code),
        (None, None) => {
            return Err(Refusal::bad_request("The provider sent no code back").into());
        }
    };
    let answer = CallbackAnswer {
        state: field("state").unwrap_or_default(),
        outcome,
    };
    let current = browser::signed_in(&req, &state)
        .await?
        .map(|login| (login.user.id(), login.session));
    match attempt_provider(&state, &provider, flow.as_deref(), answer, current).await? {
        ProviderArrival::SignIn(outcome, next) => arrive(&req, &state, outcome, next.as_deref()),
        ProviderArrival::Confirm(pending) => {
            Ok(confirm_page(&req, &state, &pending, StatusCode::OK, None))
        }
        ProviderArrival::Linked => Ok(layout::redirect("/account?done=identity-linked")),
    }
}

/// Signed in, or on to the second step; a refusal is a page of its own.
fn arrive(req: &HttpRequest, state: &AppState, outcome: SignIn, next: Option<&str>) -> PageResult {
    match outcome {
        SignIn::SignedIn(login) => Ok(signed_in(req, state, &login, next)),
        SignIn::SecondStep { token, methods } => Ok(
            SecondStepPage::of(&token, methods, next).render(req, state, StatusCode::OK, &[], None)
        ),
        SignIn::Refused(refusal) => Err(refusal.into()),
    }
}

fn confirm_page(
    req: &HttpRequest,
    state: &AppState,
    pending: &PendingLink,
    status: StatusCode,
    refused: Option<&str>,
) -> HttpResponse {
    let csrf = browser::csrf_token(req, state);
    let passkey = pending.has_passkey && state.passkeys.available();
    let (provider, email) = (&pending.provider.name, pending.email.as_str());
    let hidden = html! {
        (layout::csrf(&csrf))
        input type="hidden" name=(LINK_FIELD) value=(pending.sealed);
    };
    let body = html! {
        @if let Some(refused) = refused { (notice(Notice::Error, refused)) }
        p {
            "An account with the email " strong { (email) } " already exists here. "
            "To link your " (provider) " account to it, prove it is yours once: "
            "after that, " (provider) " signs you in."
        }
        form method="post" action="/auth/providers/confirm" {
            (hidden)
            (layout::Input::new("password", "Password of this account", "password", "current-password").render(&[]))
            button type="submit" { "Link and sign in" }
        }
        @if passkey {
            form method="post" action="/auth/providers/confirm/passkey" data-passkey="get"
                data-options="/auth/passkey/options" hidden {
                (hidden)
                (layout::passkey_fields(true))
                button.secondary type="submit" { "Use a passkey instead" }
            }
        }
        p { a href="/login" { "Cancel" } " — nothing is linked." }
    };
    let title = format!("Link {provider}");
    if passkey {
        layout::passkey_card(status, &title, &body)
    } else {
        layout::card(status, &title, &body)
    }
}

/// `POST /auth/providers/confirm`: the existing account's password.
pub async fn confirm(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    let fields = form(&req, &state, body).await?;
    let sealed = text(&fields, LINK_FIELD);
    let password = text(&fields, "password");
    if password.is_empty() {
        let why = "Type the password of this account.";
        return ask_again(&req, &state, &sealed, StatusCode::UNPROCESSABLE_ENTITY, why).await;
    }
    let password = secrecy::SecretString::from(password);
    let (outcome, next) =
        attempt_link_confirmation(&state, &sealed, LinkProof::Password(&password)).await;
    confirmed(&req, &state, outcome, next.as_deref(), &sealed).await
}

/// `POST /auth/providers/confirm/passkey`: one of the existing account's passkeys.
pub async fn confirm_passkey(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> PageResult {
    let mut fields = form(&req, &state, body).await?;
    json_field(&mut fields, "credential");
    let sealed = text(&fields, LINK_FIELD);
    let flow_token = text(&fields, "flow_token");
    let Some(response) = fields.get("credential").filter(|value| value.is_object()) else {
        let why = "That passkey did not answer. Try again, or type the password.";
        return ask_again(&req, &state, &sealed, StatusCode::UNPROCESSABLE_ENTITY, why).await;
    };
    let proof = LinkProof::Passkey {
        flow_token: &flow_token,
        response,
    };
    let (outcome, next) = attempt_link_confirmation(&state, &sealed, proof).await;
    confirmed(&req, &state, outcome, next.as_deref(), &sealed).await
}

/// A confirmation's outcome: signed in (or on to the second step), or the page again with
/// why; a link that is no longer good is a page of its own.
async fn confirmed(
    req: &HttpRequest,
    state: &AppState,
    outcome: SignIn,
    next: Option<&str>,
    sealed: &str,
) -> PageResult {
    match outcome {
        SignIn::Refused(refusal) if refusal.status() == StatusCode::UNAUTHORIZED => {
            let why = "That did not prove the account is yours. Try again.";
            ask_again(req, state, sealed, StatusCode::UNAUTHORIZED, why).await
        }
        other => arrive(req, state, other, next),
    }
}

/// The confirmation page again, with why; what it shows is read from the sealed link, so
/// a link that is not Shelter's or too old is a page of its own.
async fn ask_again(
    req: &HttpRequest,
    state: &AppState,
    sealed: &str,
    status: StatusCode,
    why: &str,
) -> PageResult {
    let pending = state.federation.pending_link(sealed).await?;
    Ok(confirm_page(req, state, &pending, status, Some(why)))
}
