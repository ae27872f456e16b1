//! Signing in without a password on the pages: the code or link of a sign-in email, and a
//! passkey, whose ceremony the one script runs before it posts its form here.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use shelter_domain::EmailAddress;

use super::entry::{broken_sign_in_link, code_entry, email_codes_on};
use super::error::PageResult;
use super::forms::{form, json_field, parse, text};
use super::layout;
use super::sign_in::{SecondStepPage, login_page, signed_in, take_next};
use crate::edge::body::{RawBody, from_object};
use crate::edge::requests::{EmailCodeRequest, PasskeySignInRequest, VerifyEmailRequest};
use crate::edge::sign_in::{EmailProof, SignIn, attempt_email_code, attempt_passkey};
use crate::edge::state::AppState;

/// What a sign-in email's code or link came to, as a page.
fn email_sign_in(
    req: &HttpRequest,
    state: &AppState,
    outcome: SignIn,
    wrong: impl FnOnce() -> HttpResponse,
) -> PageResult {
    match outcome {
        SignIn::SignedIn(outcome) => Ok(signed_in(req, state, &outcome, None)),
        SignIn::SecondStep { token, methods } => Ok(
            SecondStepPage::of(&token, methods, None).render(req, state, StatusCode::OK, &[], None)
        ),
        SignIn::Refused(refusal) if refusal.status() == StatusCode::UNAUTHORIZED => Ok(wrong()),
        SignIn::Refused(refusal) => Err(refusal.into()),
    }
}

pub async fn email_code(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    email_codes_on(&state)?;
    let fields = form(&req, &state, body).await?;
    let typed = text(&fields, "email");
    let (email, code) = match parse::<EmailCodeRequest>(fields)? {
        Ok(parsed) => parsed,
        Err(errors) => {
            // Without a usable address there is no code to type: ask for one again.
            let Ok(email) = EmailAddress::parse(&typed) else {
                return Ok(layout::redirect("/login/email-code"));
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return Ok(code_entry(&req, &state, status, &email, &errors, None));
        }
    };
    let proof = EmailProof::Code {
        email: &email,
        code: &code,
    };
    let outcome = attempt_email_code(&state, proof).await;
    email_sign_in(&req, &state, outcome, || {
        let refused = "That code is not right, or it has expired or been replaced. Try again, or send a new one.";
        code_entry(
            &req,
            &state,
            StatusCode::UNAUTHORIZED,
            &email,
            &[],
            Some(refused),
        )
    })
}

pub async fn email_link(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    email_codes_on(&state)?;
    let fields = form(&req, &state, body).await?;
    let Ok(token) = from_object::<VerifyEmailRequest>(fields) else {
        return Ok(broken_sign_in_link());
    };
    let outcome = attempt_email_code(&state, EmailProof::Link(&token)).await;
    email_sign_in(&req, &state, outcome, broken_sign_in_link)
}

/// The login page's passkey form, filled by the script.
pub async fn passkey(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    let mut fields = form(&req, &state, body).await?;
    let next = take_next(&mut fields);
    let next = next.as_deref();
    json_field(&mut fields, "credential");
    let refused = |status| {
        let why = "That passkey did not sign you in. Try again, or sign in another way.";
        login_page(&req, &state, status, "", &[], Some(why), next)
    };
    let Ok((flow_token, credential)) = parse::<PasskeySignInRequest>(fields)? else {
        return Ok(refused(StatusCode::UNPROCESSABLE_ENTITY));
    };
    match attempt_passkey(&state, &flow_token, &credential).await {
        SignIn::SignedIn(outcome) => Ok(signed_in(&req, &state, &outcome, next)),
        SignIn::Refused(refusal) if refusal.status() == StatusCode::UNAUTHORIZED => {
            Ok(refused(StatusCode::UNAUTHORIZED))
        }
        SignIn::Refused(refusal) if refusal.status() == StatusCode::FORBIDDEN => Ok(login_page(
            &req,
            &state,
            StatusCode::FORBIDDEN,
            "",
            &[],
            Some(refusal.detail()),
            next,
        )),
        SignIn::SecondStep { .. } => Ok(refused(StatusCode::UNAUTHORIZED)),
        SignIn::Refused(refusal) => Err(refusal.into()),
    }
}
