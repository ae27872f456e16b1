//! Signing in (with the second step when the user has one) and out. A page that needs a
//! session sends the visitor here with `next`, and signing in returns them there when it
//! is a path on this host.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;
use serde_json::{Map, Value};
use shelter_domain::LoginOutcome;

use super::error::PageResult;
use super::forms::{form, parse, text};
use super::layout::{self, Input, Notice, card, notice, other_errors};
use crate::edge::body::RawBody;
use crate::edge::browser;
use crate::edge::refusal::FieldError;
use crate::edge::requests::{MfaRequest, TokenRequest};
use crate::edge::sign_in::{SignIn, attempt_login, attempt_second_step};
use crate::edge::state::AppState;

/// A login that has just succeeded: its page session starts, and the page the visitor
/// came for (a local `next`) or the account page follows.
fn signed_in(
    req: &HttpRequest,
    state: &AppState,
    login: &LoginOutcome,
    next: Option<&str>,
) -> HttpResponse {
    browser::start(req, state, login);
    layout::redirect(layout::after_sign_in(next))
}

/// The `next` of a sign-in form, taken out of its fields like the CSRF token.
fn take_next(fields: &mut Map<String, Value>) -> Option<String> {
    match fields.remove(layout::NEXT_FIELD) {
        Some(Value::String(next)) => Some(next),
        _ => None,
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

fn login_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    username: &str,
    errors: &[FieldError],
    refused: Option<&str>,
    next: Option<&str>,
) -> HttpResponse {
    let csrf = browser::csrf_token(req, state);
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
        p { a href="/forgot-password" { "Forgot your password?" } }
        p { a href="/verify-email/resend" { "No confirmation email? Send it again" } }
        p { "New here? " a href="/signup" { "Create an account" } }
    };
    with_target(card(status, "Sign in", &body), next)
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
        SignIn::SecondStep { token, .. } => Ok(code_page(
            &req,
            &state,
            StatusCode::OK,
            token.expose(),
            &[],
            None,
            next,
        )),
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

fn code_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    mfa_token: &str,
    errors: &[FieldError],
    refused: Option<&str>,
    next: Option<&str>,
) -> HttpResponse {
    let csrf = browser::csrf_token(req, state);
    let body = html! {
        @if let Some(refused) = refused { (notice(Notice::Error, refused)) }
        (other_errors(errors, &["code", "mfa_token"]))
        form method="post" action="/login/code" {
            (layout::csrf(&csrf))
            (layout::next_field(next))
            input type="hidden" name="mfa_token" value=(mfa_token);
            (Input::new("code", "Code from your authenticator app, or a recovery code", "text", "one-time-code").render(errors))
            button type="submit" { "Continue" }
        }
    };
    with_target(card(status, "Second step", &body), next)
}

/// A sign-in page on the way back to an authorization request lets its form end at the
/// application.
fn with_target(mut page: HttpResponse, next: Option<&str>) -> HttpResponse {
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
    let next = next.as_deref();
    let mfa_token = text(&fields, "mfa_token");
    let (token, code) = match parse::<MfaRequest>(fields)? {
        Ok(parsed) => parsed,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(code_page(
                &req, &state, status, &mfa_token, &errors, None, next,
            ));
        }
    };
    match attempt_second_step(&state, &token, &code).await {
        SignIn::SignedIn(outcome) => Ok(signed_in(&req, &state, &outcome, next)),
        SignIn::Refused(refusal) if refusal.status() == StatusCode::UNAUTHORIZED => Ok(code_page(
            &req,
            &state,
            StatusCode::UNAUTHORIZED,
            &token,
            &[],
            Some(
                "That code is not right, or this sign-in has expired. Try again, or sign in again.",
            ),
            next,
        )),
        // Another step after this one: its form, with its token.
        SignIn::SecondStep { token, .. } => Ok(code_page(
            &req,
            &state,
            StatusCode::OK,
            token.expose(),
            &[],
            None,
            next,
        )),
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
