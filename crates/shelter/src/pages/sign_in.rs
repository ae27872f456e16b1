//! Signing in (with the second step when the user has one) and out. A page that needs a
//! session sends the visitor here with `next`, and signing in returns them there when it
//! is a path on this host.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;
use serde_json::{Map, Value};
use shelter_domain::{LoginOutcome, SecondFactor, SecretToken};

use super::error::PageResult;
use super::forms::{form, json_field, parse, text};
use super::layout::{self, Input, Notice, card, notice, other_errors};
use crate::edge::body::RawBody;
use crate::edge::browser;
use crate::edge::refusal::FieldError;
use crate::edge::requests::{MfaRequest, SecondProof, TokenRequest};
use crate::edge::sign_in::{SignIn, attempt_login, attempt_second_step};
use crate::edge::state::AppState;

/// A login that has just succeeded: its page session starts, and the page the visitor
/// came for (a local `next`) or the account page follows.
pub(super) fn signed_in(
    req: &HttpRequest,
    state: &AppState,
    login: &LoginOutcome,
    next: Option<&str>,
) -> HttpResponse {
    browser::start(req, state, login);
    layout::redirect(layout::after_sign_in(next))
}

/// The `next` of a sign-in form, taken out of its fields like the CSRF token.
pub(super) fn take_next(fields: &mut Map<String, Value>) -> Option<String> {
    match fields.remove(layout::NEXT_FIELD) {
        Some(Value::String(next)) => Some(next),
        _ => None,
    }
}

/// Where a provider's button leads, with `next` when it is a local path.
fn provider_start(id: &str, next: Option<&str>) -> String {
    match layout::after_sign_in(next) {
        "/account" => format!("/auth/providers/{id}/start"),
        next => format!(
            "/auth/providers/{id}/start?next={}",
            percent_encoding::utf8_percent_encode(next, percent_encoding::NON_ALPHANUMERIC)
        ),
    }
}

/// `?next=` of the login page's address.
#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    /// Show the form even to a signed-in visitor: an application asked for a new sign-in
    /// (`prompt=login`, `max_age`).
    again: Option<String>,
}

pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    Ok(match browser::signed_in(&req, &state).await? {
        Some(_) => layout::redirect("/account"),
        None => layout::redirect("/login"),
    })
}

pub async fn login_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: Option<web::Query<NextQuery>>,
) -> PageResult {
    let (next, again) = query.map_or((None, false), |query| {
        let query = query.into_inner();
        (query.next, query.again.is_some())
    });
    if !again && browser::signed_in(&req, &state).await?.is_some() {
        return Ok(layout::redirect(layout::after_sign_in(next.as_deref())));
    }
    Ok(login_page(
        &req,
        &state,
        StatusCode::OK,
        "",
        &[],
        None,
        next.as_deref(),
    ))
}

pub(super) fn login_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    username: &str,
    errors: &[FieldError],
    refused: Option<&str>,
    next: Option<&str>,
) -> HttpResponse {
    let csrf = browser::csrf_token(req, state);
    let passkeys = state.passkeys.available();
    let body = html! {
        @if let Some(refused) = refused { (notice(Notice::Error, refused)) }
        (other_errors(errors, &["username", "password"]))
        form method="post" action="/login" {
            (layout::csrf(&csrf))
            (layout::next_field(next))
            (Input::new("username", "Email or username", "text", "username").value(username).render(errors))
            (Input::new("password", "Password", "password", "current-password").render(errors))
            button type="submit" { "Sign in" }
        }
        @if passkeys {
            form method="post" action="/login/passkey" data-passkey="get"
                data-options="/auth/passkey/options" hidden {
                (layout::csrf(&csrf))
                (layout::next_field(next))
                (layout::passkey_fields(true))
                button.secondary type="submit" { "Sign in with a passkey" }
            }
        }
        @let providers = state.federation.providers();
        @if !providers.is_empty() {
            ul.providers aria-label="Sign in with another account" {
                @for provider in &providers {
                    li { a.button.secondary href=(provider_start(provider.id.as_str(), next)) { "Sign in with " (provider.name) } }
                }
            }
        }
        @if state.email_codes {
            p { a href="/login/email-code" { "Email me a sign-in code" } }
        }
        p { a href="/forgot-password" { "Forgot your password?" } }
        p { a href="/verify-email/resend" { "No confirmation email? Send it again" } }
        p { "New here? " a href="/signup" { "Create an account" } }
    };
    let page = if passkeys {
        layout::passkey_card(status, "Sign in", &body)
    } else {
        card(status, "Sign in", &body)
    };
    with_target(page, next)
}

pub async fn login(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    let mut fields = form(&req, &state, body).await?;
    let next = take_next(&mut fields);
    let next = next.as_deref();
    let username = text(&fields, "username");
    let (login, password) = match parse::<TokenRequest>(fields)? {
        Ok(parsed) => parsed,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(login_page(
                &req, &state, status, &username, &errors, None, next,
            ));
        }
    };
    match attempt_login(&state, &login, &password).await {
        SignIn::SignedIn(outcome) => Ok(signed_in(&req, &state, &outcome, next)),
        SignIn::SecondStep { token, methods } => Ok(SecondStepPage::of(&token, methods, next)
            .render(&req, &state, StatusCode::OK, &[], None)),
        SignIn::Refused(refusal) if matches!(refusal.status().as_u16(), 401 | 403) => {
            Ok(login_page(
                &req,
                &state,
                refusal.status(),
                &username,
                &[],
                Some(refusal.detail()),
                next,
            ))
        }
        SignIn::Refused(refusal) => Err(refusal.into()),
    }
}

/// The second step's page: a code, or (for a user who has one) a passkey.
pub(super) struct SecondStepPage<'a> {
    pub mfa_token: &'a str,
    pub passkey: bool,
    pub next: Option<&'a str>,
}

impl<'a> SecondStepPage<'a> {
    pub(super) fn of(
        token: &'a SecretToken,
        methods: &[SecondFactor],
        next: Option<&'a str>,
    ) -> Self {
        Self {
            mfa_token: token.expose(),
            passkey: methods.contains(&SecondFactor::Passkey),
            next,
        }
    }

    pub(super) fn render(
        &self,
        req: &HttpRequest,
        state: &AppState,
        status: StatusCode,
        errors: &[FieldError],
        refused: Option<&str>,
    ) -> HttpResponse {
        let csrf = browser::csrf_token(req, state);
        let (mfa_token, next) = (self.mfa_token, self.next);
        let body = html! {
            @if let Some(refused) = refused { (notice(Notice::Error, refused)) }
            (other_errors(errors, &["code", "mfa_token"]))
            form method="post" action="/login/code" {
                (layout::csrf(&csrf))
                (layout::next_field(next))
                input type="hidden" name="mfa_token" value=(mfa_token);
                input type="hidden" name="passkey" value=(self.passkey);
                (Input::new("code", "Code from your authenticator app, or a recovery code", "text", "one-time-code").render(errors))
                button type="submit" { "Continue" }
            }
            @if self.passkey {
                form method="post" action="/login/code" data-passkey="get"
                    data-options="/auth/mfa/options" data-send="mfa_token" hidden {
                    (layout::csrf(&csrf))
                    (layout::next_field(next))
                    input type="hidden" name="mfa_token" value=(mfa_token);
                    input type="hidden" name="passkey" value="true";
                    (layout::passkey_fields(false))
                    button.secondary type="submit" { "Use a passkey instead" }
                }
            }
        };
        let page = if self.passkey {
            layout::passkey_card(status, "Second step", &body)
        } else {
            card(status, "Second step", &body)
        };
        with_target(page, next)
    }
}

/// A sign-in page on the way back to an authorization request lets its form end at the
/// application.
pub(super) fn with_target(mut page: HttpResponse, next: Option<&str>) -> HttpResponse {
    if let Some(target) = layout::authorization_target(next) {
        layout::allow_form_target(&mut page, &target);
    }
    page
}

pub async fn second_step(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> PageResult {
    let mut fields = form(&req, &state, body).await?;
    let next = take_next(&mut fields);
    let passkey = fields
        .remove("passkey")
        .and_then(|v| v.as_str().map(|v| v == "true"));
    json_field(&mut fields, "credential");
    let mfa_token = text(&fields, "mfa_token");
    let page = SecondStepPage {
        mfa_token: &mfa_token,
        passkey: passkey.unwrap_or(false),
        next: next.as_deref(),
    };
    let (token, proof) = match parse::<MfaRequest>(fields)? {
        Ok(parsed) => parsed,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(page.render(&req, &state, status, &errors, None));
        }
    };
    match attempt_second_step(&state, &token, &proof).await {
        SignIn::SignedIn(outcome) => Ok(signed_in(&req, &state, &outcome, page.next)),
        SignIn::Refused(refusal) if refusal.status() == StatusCode::UNAUTHORIZED => {
            let refused = match proof {
                SecondProof::Code(_) => {
                    "That code is not right, or this sign-in has expired. Try again, or sign in again."
                }
                SecondProof::Passkey(_) => {
                    "That passkey did not sign you in, or this sign-in has expired. Try again, or sign in again."
                }
            };
            Ok(page.render(&req, &state, StatusCode::UNAUTHORIZED, &[], Some(refused)))
        }
        // Another step after this one: its form, with its token.
        SignIn::SecondStep { token, methods } => Ok(SecondStepPage::of(&token, methods, page.next)
            .render(&req, &state, StatusCode::OK, &[], None)),
        SignIn::Refused(refusal) => Err(refusal.into()),
    }
}

pub async fn logout_form(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    let user = browser::signed_in(&req, &state).await?;
    let csrf = browser::csrf_token(&req, &state);
    let body = html! {
        div.card {
            h1 { "Sign out" }
            form method="post" action="/logout" {
                (layout::csrf(&csrf))
                p { "Sign out of Shelter in this browser?" }
                button type="submit" { "Sign out" }
            }
        }
    };
    let user = user.map(|login| login.user);
    Ok(layout::html(
        StatusCode::OK,
        &layout::page("Sign out", user.as_ref(), &body),
    ))
}

pub async fn logout(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    form(&req, &state, body).await?;
    if let Some(refresh) = browser::refresh_token(&req) {
        state.auth.logout(&refresh).await?;
    }
    browser::clear(&req, &state);
    let body = html! {
        (notice(Notice::Ok, "You are signed out."))
        p { a href="/login" { "Sign in again" } }
    };
    Ok(card(StatusCode::OK, "Signed out", &body))
}
