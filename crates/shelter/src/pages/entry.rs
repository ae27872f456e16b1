//! The pages anyone may open: sign-in (with the second step), sign-up, sign-out, and the
//! pages the email links land on. A GET never spends a token: mail scanners fetch links, so
//! the page only shows a button, and the POST it makes does the work.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value};
use shelter_domain::{LoginOutcome, SpentLink, TokenPurpose};

use super::error::PageError;
use super::layout::{self, Input, Notice, notice, other_errors};
use super::session;
use crate::http::FieldError;
use crate::http::auth::{EmailRequestKind, attempt_login, request_email};
use crate::http::dto::{
    EmailRequest, MfaRequest, ResetPasswordRequest, SignupRequest, TokenRequest, VerifyEmailRequest,
};
use crate::http::extract::{FromBody, RawBody, from_object};
use crate::http::mfa::attempt_second_step;
use crate::http::users::may_sign_up;
use crate::state::AppState;

type PageResult = Result<HttpResponse, PageError>;

/// Reads a page's form and checks its CSRF token, which it takes out: the rest are the
/// fields of the API request the form stands for.
pub(super) async fn form(
    req: &HttpRequest,
    state: &AppState,
    body: RawBody,
) -> Result<Map<String, Value>, PageError> {
    let mut fields = body.form().await?;
    let token = fields.remove(session::CSRF_FIELD);
    session::check_csrf(req, state, token.as_ref().and_then(Value::as_str))?;
    Ok(fields)
}

pub(super) fn text(fields: &Map<String, Value>, name: &str) -> String {
    fields
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A form's fields read as the API request `T` reads them: its values, or the field errors
/// (a 422) to show on the form again. Any other refusal is a page of its own.
pub(super) fn parse<T: FromBody>(
    fields: Map<String, Value>,
) -> Result<Result<T::Parsed, Vec<FieldError>>, PageError> {
    match from_object::<T>(fields) {
        Ok(parsed) => Ok(Ok(parsed)),
        Err(problem) if problem.status() == StatusCode::UNPROCESSABLE_ENTITY => {
            Ok(Err(problem.into_errors()))
        }
        Err(problem) => Err(problem.into()),
    }
}

/// A login that has just succeeded: its page session starts, and the page the visitor
/// came for (a local `next`) or the account page follows.
fn signed_in(
    req: &HttpRequest,
    state: &AppState,
    login: &LoginOutcome,
    next: Option<&str>,
) -> HttpResponse {
    session::start(req, state, login);
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
}

/// A signed-out page: one card with a heading.
pub(super) fn card(status: StatusCode, title: &str, body: &Markup) -> HttpResponse {
    layout::html(
        status,
        &layout::page(title, None, &html! { div.card { h1 { (title) } (body) } }),
    )
}

pub async fn home(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    Ok(match session::signed_in(&req, &state).await? {
        Some(_) => layout::redirect("/account"),
        None => layout::redirect("/login"),
    })
}

pub async fn login_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: Option<web::Query<NextQuery>>,
) -> PageResult {
    let next = query.and_then(|query| query.into_inner().next);
    if session::signed_in(&req, &state).await?.is_some() {
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
    let csrf = session::csrf_token(req, state);
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
    card(status, "Sign in", &body)
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
    match attempt_login(&req, &state, &login, &password).await {
        Ok(outcome) => Ok(signed_in(&req, &state, &outcome, next)),
        Err(problem) => match problem.mfa_token() {
            Some(token) => Ok(code_page(
                &req,
                &state,
                StatusCode::OK,
                token,
                &[],
                None,
                next,
            )),
            None if matches!(problem.status().as_u16(), 401 | 403) => Ok(login_page(
                &req,
                &state,
                problem.status(),
                &username,
                &[],
                Some(problem.detail()),
                next,
            )),
            None => Err(problem.into()),
        },
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
    let csrf = session::csrf_token(req, state);
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
    card(status, "Second step", &body)
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
    match attempt_second_step(&req, &state, &token, &code).await {
        Ok(outcome) => Ok(signed_in(&req, &state, &outcome, next)),
        Err(problem) if problem.status() == StatusCode::UNAUTHORIZED => Ok(code_page(
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
        Err(problem) => Err(problem.into()),
    }
}

pub async fn logout_form(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    let user = session::signed_in(&req, &state).await?;
    let csrf = session::csrf_token(&req, &state);
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
    if let Some(refresh) = session::refresh_token(&req) {
        state.auth.logout(&refresh).await?;
    }
    session::clear(&req, &state);
    let body = html! {
        (notice(Notice::Ok, "You are signed out."))
        p { a href="/login" { "Sign in again" } }
    };
    Ok(card(StatusCode::OK, "Signed out", &body))
}

pub async fn signup_form(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    Ok(signup_page(
        &req,
        &state,
        StatusCode::OK,
        &Map::new(),
        &[],
        None,
    ))
}

fn signup_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    fields: &Map<String, Value>,
    errors: &[FieldError],
    refused: Option<&str>,
) -> HttpResponse {
    let csrf = session::csrf_token(req, state);
    let (email, username) = (text(fields, "email"), text(fields, "username"));
    let body = html! {
        @if let Some(refused) = refused { (notice(Notice::Error, refused)) }
        (other_errors(errors, &["email", "username", "password"]))
        form method="post" action="/signup" {
            (layout::csrf(&csrf))
            (Input::new("email", "Email", "email", "email").value(&email).render(errors))
            (Input::new("username", "Username", "text", "username").value(&username)
                .hint("3 to 50 letters, digits, dots, dashes and underscores.").render(errors))
            (Input::new("password", "Password", "password", "new-password")
                .hint("8 to 128 characters.").render(errors))
            button type="submit" { "Create the account" }
        }
        p { "Have an account? " a href="/login" { "Sign in" } }
    };
    card(status, "Create an account", &body)
}

pub async fn signup(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    let fields = form(&req, &state, body).await?;
    may_sign_up(&req, &state).await?;
    let account = match parse::<SignupRequest>(fields.clone())? {
        Ok(account) => account,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(signup_page(&req, &state, status, &fields, &errors, None));
        }
    };
    match state.users.signup(account).await {
        Ok(user) => {
            let body = html! {
                (notice(Notice::Ok, "Your account is ready."))
                p { "We sent a link to " strong { (user.email().as_str()) } " to confirm the address." }
                p { a href="/login" { "Sign in" } }
                p.hint { "No email? " a href="/verify-email/resend" { "Send the link again" } }
            };
            Ok(card(StatusCode::CREATED, "Check your email", &body))
        }
        Err(error) => {
            let problem = crate::http::Problem::from(error);
            if problem.status() == StatusCode::CONFLICT {
                let status = StatusCode::CONFLICT;
                let detail = problem.detail().to_owned();
                return Ok(signup_page(
                    &req,
                    &state,
                    status,
                    &fields,
                    &[],
                    Some(&detail),
                ));
            }
            Err(problem.into())
        }
    }
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

/// A token from a link, if it can be one (the API's own limits).
fn link_token(query: &str) -> Option<String> {
    let query: TokenQuery = serde_urlencoded::from_str(query).ok()?;
    query
        .token
        .filter(|token| (1..=512).contains(&token.chars().count()))
}

/// Why a link's token did not work, in the words of its page.
fn why_broken(state: SpentLink) -> &'static str {
    match state {
        SpentLink::Used => "This link was already used, or a newer one was sent since.",
        SpentLink::Expired => "This link has expired.",
        SpentLink::Unknown => "This link is not valid: copy the whole link from the email.",
        // It was good a moment ago: spent by another request, or meant for an address
        // the account no longer has.
        SpentLink::Usable => "This link no longer works.",
    }
}

fn broken_link(status: StatusCode, what: &str, purpose: TokenPurpose) -> HttpResponse {
    let (href, label) = match purpose {
        TokenPurpose::VerifyEmail => ("/verify-email/resend", "Send a new verification link"),
        TokenPurpose::ResetPassword => ("/forgot-password", "Send a new reset link"),
    };
    let body = html! {
        (notice(Notice::Error, what))
        p { a.button href=(href) { (label) } }
    };
    card(status, "This link does not work", &body)
}

/// The page of a link whose token the service refused, saying why.
async fn spent_link(state: &AppState, purpose: TokenPurpose, token: &str) -> PageResult {
    let why = state.users.link_state(purpose, token).await?;
    Ok(broken_link(
        StatusCode::BAD_REQUEST,
        why_broken(why),
        purpose,
    ))
}

pub async fn verify_form(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    let Some(token) = link_token(req.query_string()) else {
        return Ok(broken_link(
            StatusCode::BAD_REQUEST,
            "This link is incomplete: copy the whole link from the email.",
            TokenPurpose::VerifyEmail,
        ));
    };
    let csrf = session::csrf_token(&req, &state);
    let body = html! {
        p { "Press the button to confirm your email address." }
        form method="post" action="/verify-email" {
            (layout::csrf(&csrf))
            input type="hidden" name="token" value=(token);
            button type="submit" { "Confirm my email" }
        }
    };
    Ok(card(StatusCode::OK, "Confirm your email", &body))
}

pub async fn verify(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    let fields = form(&req, &state, body).await?;
    let Ok(token) = from_object::<VerifyEmailRequest>(fields) else {
        return Ok(broken_link(
            StatusCode::BAD_REQUEST,
            "This link is incomplete: copy the whole link from the email.",
            TokenPurpose::VerifyEmail,
        ));
    };
    match state.users.verify_email(&token).await {
        Ok(user) => {
            let body = html! {
                (notice(Notice::Ok, "Your email address is confirmed."))
                p { strong { (user.email().as_str()) } " is verified." }
                p { a href="/account" { "Go to your account" } }
            };
            Ok(card(StatusCode::OK, "Email confirmed", &body))
        }
        Err(shelter_domain::UserError::InvalidVerificationToken) => {
            spent_link(&state, TokenPurpose::VerifyEmail, &token).await
        }
        Err(error) => Err(error.into()),
    }
}

fn email_form(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    (title, action, intro, button): (&str, &str, &str, &str),
    email: &str,
    errors: &[FieldError],
) -> HttpResponse {
    let csrf = session::csrf_token(req, state);
    let body = html! {
        p { (intro) }
        (other_errors(errors, &["email"]))
        form method="post" action=(action) {
            (layout::csrf(&csrf))
            (Input::new("email", "Email", "email", "email").value(email).render(errors))
            button type="submit" { (button) }
        }
    };
    card(status, title, &body)
}

const RESEND: (&str, &str, &str, &str) = (
    "Send the link again",
    "/verify-email/resend",
    "We will send a new link to confirm your email address. Earlier links stop working.",
    "Send the link",
);

const FORGOT: (&str, &str, &str, &str) = (
    "Forgot your password?",
    "/forgot-password",
    "We will send you a link to choose a new password.",
    "Send the link",
);

pub async fn resend_form(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    Ok(email_form(&req, &state, StatusCode::OK, RESEND, "", &[]))
}

pub async fn forgot_form(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    Ok(email_form(&req, &state, StatusCode::OK, FORGOT, "", &[]))
}

pub async fn resend(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    ask_for_email(req, state, body, EmailRequestKind::Verification).await
}

pub async fn forgot(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    ask_for_email(req, state, body, EmailRequestKind::PasswordReset).await
}

/// The same answer whether or not the address is known, as the API gives.
async fn ask_for_email(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
    kind: EmailRequestKind,
) -> PageResult {
    let texts = match kind {
        EmailRequestKind::Verification => RESEND,
        EmailRequestKind::PasswordReset => FORGOT,
    };
    let fields = form(&req, &state, body).await?;
    let typed = text(&fields, "email");
    let email = match parse::<EmailRequest>(fields)? {
        Ok(email) => email,
        Err(errors) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(email_form(&req, &state, status, texts, &typed, &errors));
        }
    };
    request_email(&state, kind, email.clone()).await?;
    let body = html! {
        (notice(Notice::Ok, "If this address has an account, the email is on its way."))
        p { "Look for it in the inbox of " strong { (email.as_str()) } ". The link works once." }
        p { a href="/login" { "Back to sign in" } }
    };
    Ok(card(StatusCode::OK, "Check your email", &body))
}

pub async fn reset_form(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    let Some(token) = link_token(req.query_string()) else {
        return Ok(broken_link(
            StatusCode::BAD_REQUEST,
            "This link is incomplete: copy the whole link from the email.",
            TokenPurpose::ResetPassword,
        ));
    };
    Ok(reset_page(&req, &state, StatusCode::OK, &token, &[]))
}

fn reset_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    token: &str,
    errors: &[FieldError],
) -> HttpResponse {
    let csrf = session::csrf_token(req, state);
    let body = html! {
        (other_errors(errors, &["new_password", "token"]))
        form method="post" action="/reset-password" {
            (layout::csrf(&csrf))
            input type="hidden" name="token" value=(token);
            (Input::new("new_password", "New password", "password", "new-password")
                .hint("8 to 128 characters. Every device signed in to your account is signed out.").render(errors))
            button type="submit" { "Set the new password" }
        }
    };
    card(status, "Choose a new password", &body)
}

pub async fn reset(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    let fields = form(&req, &state, body).await?;
    let token = text(&fields, "token");
    let (token, password) = match parse::<ResetPasswordRequest>(fields)? {
        Ok(parsed) => parsed,
        Err(errors) => {
            if errors.iter().any(|e| e.field == "token") {
                return Ok(broken_link(
                    StatusCode::BAD_REQUEST,
                    "This link is incomplete: copy the whole link from the email.",
                    TokenPurpose::ResetPassword,
                ));
            }
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(reset_page(&req, &state, status, &token, &errors));
        }
    };
    match state.auth.reset_password(&token, &password).await {
        Ok(_) => {
            session::clear(&req, &state);
            let body = html! {
                (notice(Notice::Ok, "Your password is changed, and every device is signed out."))
                p { a.button href="/login" { "Sign in" } }
            };
            Ok(card(StatusCode::OK, "Password changed", &body))
        }
        Err(shelter_domain::AuthError::InvalidResetToken) => {
            spent_link(&state, TokenPurpose::ResetPassword, &token).await
        }
        Err(error) => Err(error.into()),
    }
}
