//! The ways in that need no session: sign-up, the pages the email links land on, and
//! asking for an email by address. A GET never spends a token: mail scanners fetch links,
//! so the page only shows a button, and the POST it makes does the work.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;
use serde_json::{Map, Value};
use shelter_domain::{EmailAddress, SpentLink, TokenPurpose};

use super::error::{PageError, PageResult};
use super::forms::{form, parse, text};
use super::layout::{self, Input, Notice, card, notice, other_errors};
use crate::edge::body::{RawBody, from_object};
use crate::edge::browser;
use crate::edge::refusal::FieldError;
use crate::edge::requests::{
    EmailRequest, ResetPasswordRequest, SignupRequest, VerifyEmailRequest,
};
use crate::edge::state::AppState;
use crate::edge::steps::may_sign_up;
use crate::edge::steps::{EmailRequestKind, request_email};

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
    let csrf = browser::csrf_token(req, state);
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
            let problem = crate::edge::refusal::Refusal::from(error);
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
        TokenPurpose::SignIn => ("/login/email-code", "Email me a new sign-in code"),
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
    let csrf = browser::csrf_token(&req, &state);
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
    let csrf = browser::csrf_token(req, state);
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

const EMAIL_CODE: (&str, &str, &str, &str) = (
    "Sign in with a code",
    "/login/email-code",
    "We will email you a six-digit code and a link that sign you in, for 10 minutes.",
    "Email me a sign-in code",
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

pub async fn email_code_form(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    email_codes_on(&state)?;
    Ok(email_form(
        &req,
        &state,
        StatusCode::OK,
        EMAIL_CODE,
        "",
        &[],
    ))
}

pub async fn email_code(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    email_codes_on(&state)?;
    ask_for_email(req, state, body, EmailRequestKind::SignInCode).await
}

/// Where the six digits of a sign-in email are typed, after asking for one.
pub(super) fn code_entry(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    email: &EmailAddress,
    errors: &[FieldError],
    refused: Option<&str>,
) -> HttpResponse {
    let csrf = browser::csrf_token(req, state);
    let body = html! {
        @if let Some(refused) = refused { (notice(Notice::Error, refused)) }
        @else { (notice(Notice::Ok, "If this address has an account, a sign-in code is on its way.")) }
        (other_errors(errors, &["code"]))
        p { "Type the six digits from the email sent to " strong { (email.as_str()) } ", or follow its link. Both work for 10 minutes, once." }
        form method="post" action="/login/email-code/verify" {
            (layout::csrf(&csrf))
            input type="hidden" name="email" value=(email.as_str());
            (Input::new("code", "Code", "text", "one-time-code").render(errors))
            button type="submit" { "Sign in" }
        }
        p { a href="/login/email-code" { "Send a new code" } }
    };
    card(status, "Check your email", &body)
}

/// The email-code pages do not exist where the deployment turned the codes off.
pub(super) fn email_codes_on(state: &AppState) -> Result<(), PageError> {
    if state.email_codes {
        Ok(())
    } else {
        Err(PageError::not_found())
    }
}

/// The sign-in link of an email: a button, since mail scanners fetch links; its POST
/// (`passwordless::email_link`) signs in.
pub async fn email_link_form(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    email_codes_on(&state)?;
    let Some(token) = link_token(req.query_string()) else {
        return Ok(broken_link(
            StatusCode::BAD_REQUEST,
            "This link is incomplete: copy the whole link from the email.",
            TokenPurpose::SignIn,
        ));
    };
    let csrf = browser::csrf_token(&req, &state);
    let body = html! {
        p { "Press the button to sign in to Shelter in this browser." }
        form method="post" action="/login/email" {
            (layout::csrf(&csrf))
            input type="hidden" name="token" value=(token);
            button type="submit" { "Sign in" }
        }
    };
    Ok(card(StatusCode::OK, "Sign in", &body))
}

/// A sign-in link that did not work.
pub(super) fn broken_sign_in_link() -> HttpResponse {
    broken_link(
        StatusCode::BAD_REQUEST,
        "This link was used already, a newer one was sent since, or it has expired.",
        TokenPurpose::SignIn,
    )
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
        EmailRequestKind::SignInCode => EMAIL_CODE,
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
    if let EmailRequestKind::SignInCode = kind {
        return Ok(code_entry(&req, &state, StatusCode::OK, &email, &[], None));
    }
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
    let csrf = browser::csrf_token(req, state);
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
            browser::clear(&req, &state);
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
