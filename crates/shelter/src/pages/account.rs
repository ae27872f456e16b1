//! `/account`: the signed-in user's profile, email, password, sessions, second factor and
//! passkeys.
//! Every change goes through the service the API uses (`PATCH /users/me`, the sessions and
//! TOTP endpoints), read from the same request types.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, PreEscaped, html};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use shelter_domain::auth::Authenticated;
use shelter_domain::clients::ClientId;
use shelter_domain::identities::{Identity, Provider, ProviderId};
use shelter_domain::oauth::{GrantSummary, scope_string};
use shelter_domain::passkeys::{Passkey, PasskeyId};
use shelter_domain::{EmailAddress, Login, SessionId, Totp, User};

use super::error::{PageError, PageResult};
use super::forms::{form, json_field, parse, text};
use super::frame;
use super::layout::{self, Input, Notice, notice, other_errors};
use crate::edge::body::{RawBody, from_object};
use crate::edge::browser;
use crate::edge::refusal::{FieldError, Refusal};
use crate::edge::requests::{
    PasskeyRegistrationRequest, PasskeyRenameRequest, TotpConfirmRequest, TotpDisableRequest,
    TotpEnrolRequest, UpdateRequest,
};
use crate::edge::sign_in::{SignIn, attempt_login};
use crate::edge::state::AppState;

/// What the last form of the page came to, shown in its section.
#[derive(Default)]
struct Feedback {
    section: &'static str,
    errors: Vec<FieldError>,
    refused: Option<String>,
}

impl Feedback {
    fn of(&self, section: &str) -> (&[FieldError], Option<&str>) {
        if self.section == section {
            (&self.errors, self.refused.as_deref())
        } else {
            (&[], None)
        }
    }
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<Done>,
) -> PageResult {
    let login = frame::require(&req, &state).await?;
    let done = match query.done.as_deref() {
        Some("profile") => Some("Your profile is saved."),
        Some("email") => Some("Your new email address is saved. We sent it a link to confirm it."),
        Some("password") => Some("Your password is changed. Every other device is signed out."),
        Some("session") => Some("That session is signed out."),
        Some("app") => Some("That application no longer has access."),
        Some("totp-off") => Some("Two-step sign-in is off."),
        Some("passkey-added") => Some("The passkey is added: you can sign in with it now."),
        Some("passkey-renamed") => Some("The passkey is renamed."),
        Some("passkey-removed") => Some("The passkey is removed; it no longer signs you in."),
        Some("identity-linked") => Some("The account is linked: it signs you in here now."),
        Some("identity-unlinked") => Some("The account is unlinked; it no longer signs you in."),
        _ => None,
    };
    account_page(
        &req,
        &state,
        &login,
        StatusCode::OK,
        done,
        &Feedback::default(),
    )
    .await
}

async fn account_page(
    req: &HttpRequest,
    state: &AppState,
    login: &Authenticated,
    status: StatusCode,
    done: Option<&str>,
    feedback: &Feedback,
) -> PageResult {
    let user = &login.user;
    let sessions = state.auth.sessions(user.id()).await?;
    let apps = state.oauth.grants(user.id()).await?;
    let passkeys = state.passkeys.list(user.id()).await?;
    let identities = state.federation.identities(user.id()).await?;
    let providers = state.federation.providers();
    let csrf = browser::csrf_token(req, state);
    let section = |name: &str, title: &str, body: Markup| {
        let (errors, refused) = feedback.of(name);
        html! {
            section.card aria-labelledby={ (name) "-title" } {
                h2 id={ (name) "-title" } { (title) }
                @if let Some(refused) = refused { (notice(Notice::Error, refused)) }
                (other_errors(errors, &["username", "email", "password", "current_password", "code", "name"]))
                (body)
            }
        }
    };
    let errors = |name: &str| feedback.of(name).0.to_vec();
    let body = html! {
        h1 { "Your account" }
        @if let Some(done) = done { (notice(Notice::Ok, done)) }
        (section("profile", "Profile", html! {
            form method="post" action="/account/profile" {
                (layout::csrf(&csrf))
                (Input::new("username", "Username", "text", "username").within("profile")
                    .value(user.username().as_str()).render(&errors("profile")))
                button type="submit" { "Save" }
            }
        }))
        (section("email", "Email", html! {
            p {
                strong { (user.email().as_str()) } " "
                @if user.email_verified() { span.badge.on { "verified" } }
                @else { span.badge { "not verified" } " " a href="/verify-email/resend" { "Send the link again" } }
            }
            form method="post" action="/account/email" {
                (layout::csrf(&csrf))
                (Input::new("email", "New email", "email", "email").within("email").render(&errors("email")))
                (Input::new("current_password", "Your password", "password", "current-password").within("email").render(&errors("email")))
                button type="submit" { "Change the email" }
            }
        }))
        (section("password", "Password", password_section(user, &csrf, &errors("password"))))
        (section("sessions", "Where you are signed in", html! {
            div.table-scroll {
                table {
                    thead { tr { th scope="col" { "Device" } th scope="col" { "Address" } th scope="col" { "Last used" } th scope="col" { span.skip { "Action" } } } }
                    tbody {
                        @for listed in &sessions {
                            tr {
                                td {
                                    (listed.client.user_agent().unwrap_or("Unknown device"))
                                    @if listed.id == login.session { " " span.badge.on { "this browser" } }
                                }
                                td { (listed.client.ip.map(|ip| ip.to_string()).unwrap_or_default()) }
                                td { (listed.last_used_at.format("%Y-%m-%d %H:%M UTC")) }
                                td {
                                    form.inline method="post" action={ "/account/sessions/" (listed.id) "/end" } {
                                        (layout::csrf(&csrf))
                                        button.secondary type="submit" { "Sign out" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }))
        (section("apps", "Apps with access", apps_section(&apps, &csrf)))
        (section("totp", "Two-step sign-in", totp_section(user.totp(), &csrf, &errors("totp"))))
        (section("passkeys", "Passkeys", passkeys_section(state, &passkeys, &csrf, &errors("passkeys"))))
        @if !providers.is_empty() || !identities.is_empty() {
            (section("providers", "Sign-in providers", providers_section(&providers, &identities, &csrf)))
        }
    };
    let body = html! { (body) };
    if !state.passkeys.available() {
        return Ok(layout::html(
            status,
            &layout::page("Your account", Some(user), &body),
        ));
    }
    let mut page = layout::html(
        status,
        &layout::page_with_passkeys("Your account", Some(user), &body),
    );
    layout::allow_script(&mut page);
    Ok(page)
}

/// The applications the user allowed, each with a button that takes the access back.
fn apps_section(apps: &[GrantSummary], csrf: &str) -> Markup {
    let used = |app: &GrantSummary| {
        app.last_used_at.map_or_else(
            || "never".to_owned(),
            |at| at.format("%Y-%m-%d %H:%M UTC").to_string(),
        )
    };
    html! {
        @if apps.is_empty() {
            p { "No application signs you in with Shelter." }
        } @else {
            div.table-scroll {
                table {
                    thead { tr { th scope="col" { "Application" } th scope="col" { "May" } th scope="col" { "Last used" } th scope="col" { span.skip { "Action" } } } }
                    tbody {
                        @for app in apps {
                            tr {
                                td { (app.name) }
                                td { (scope_string(&app.scopes)) }
                                td { (used(app)) }
                                td {
                                    form.inline method="post" action={ "/account/apps/" (app.client) "/revoke" } {
                                        (layout::csrf(csrf))
                                        button.secondary type="submit" { "Remove access" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The password change, or for a user created from a provider (who has none) how to set
/// one.
fn password_section(user: &User, csrf: &str, errors: &[FieldError]) -> Markup {
    html! {
        @if user.password_set() {
            form method="post" action="/account/password" {
                (layout::csrf(csrf))
                (Input::new("current_password", "Current password", "password", "current-password").within("password").render(errors))
                (Input::new("password", "New password", "password", "new-password").within("password")
                    .hint("8 to 128 characters. Every other device is signed out.").render(errors))
                button type="submit" { "Change the password" }
            }
        } @else {
            p {
                "You sign in with a provider and have no password here. To set one, "
                a href="/forgot-password" { "ask for a reset link" } " by email."
            }
        }
    }
}

/// The upstream accounts linked to this user, each with a button that unlinks it, and a
/// button to link each configured provider that is not.
fn providers_section(providers: &[Provider], identities: &[Identity], csrf: &str) -> Markup {
    let name_of = |id: &ProviderId| {
        providers
            .iter()
            .find(|provider| provider.id == *id)
            .map_or_else(|| id.to_string(), |provider| provider.name.clone())
    };
    let unlinked = providers.iter().filter(|provider| {
        !identities
            .iter()
            .any(|identity| identity.provider == provider.id)
    });
    html! {
        @if identities.is_empty() {
            p { "No account elsewhere signs you in here." }
        } @else {
            div.table-scroll {
                table {
                    thead { tr { th scope="col" { "Provider" } th scope="col" { "Account" } th scope="col" { "Linked" } th scope="col" { span.skip { "Action" } } } }
                    tbody {
                        @for identity in identities {
                            tr {
                                td { (name_of(&identity.provider)) }
                                td { (identity.email.as_ref().map_or(identity.subject.as_str(), EmailAddress::as_str)) }
                                td { (identity.linked_at.format("%Y-%m-%d %H:%M UTC")) }
                                td {
                                    form.inline method="post" action={ "/account/identities/" (identity.provider) "/unlink" } {
                                        (layout::csrf(csrf))
                                        button.secondary type="submit" { "Unlink" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @for provider in unlinked {
            form.inline method="post" action={ "/account/identities/" (provider.id) "/link" } {
                (layout::csrf(csrf))
                button.secondary type="submit" { "Link " (provider.name) }
            }
        }
    }
}

fn totp_section(totp: &Totp, csrf: &str, errors: &[FieldError]) -> Markup {
    html! {
        @if totp.is_on() {
            p { span.badge.on { "on" } " Signing in asks for a code from your authenticator app." }
            form method="post" action="/account/totp/disable" {
                (layout::csrf(csrf))
                (Input::new("current_password", "Your password", "password", "current-password").within("totp").render(errors))
                (Input::new("code", "A code from the app, or a recovery code", "text", "one-time-code").within("totp").render(errors))
                button.danger type="submit" { "Turn two-step sign-in off" }
            }
        } @else {
            p { "Ask for a code from an authenticator app at every sign-in, as well as your password." }
            form method="post" action="/account/totp" {
                (layout::csrf(csrf))
                (Input::new("current_password", "Your password", "password", "current-password").within("totp").render(errors))
                button type="submit" { "Set up two-step sign-in" }
            }
        }
    }
}

/// The user's passkeys, each renamed or removed by a form; adding one needs the script,
/// so its form stays hidden without it.
fn passkeys_section(
    state: &AppState,
    passkeys: &[Passkey],
    csrf: &str,
    errors: &[FieldError],
) -> Markup {
    html! {
        p { "A passkey signs you in with your device's screen lock or security key: no password, and nothing a fake site can reuse." }
        @if !passkeys.is_empty() {
            div.table-scroll {
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Added" } th scope="col" { "Last used" } th scope="col" { span.skip { "Actions" } } } }
                    tbody {
                        @for passkey in passkeys {
                            tr {
                                td {
                                    form.inline method="post" action={ "/account/passkeys/" (passkey.id) "/rename" } {
                                        (layout::csrf(csrf))
                                        label.skip for={ "passkey-" (passkey.id) } { "Name" }
                                        input id={ "passkey-" (passkey.id) } name="name" type="text" value=(passkey.name.as_str()) required maxlength="64";
                                        button.secondary type="submit" { "Rename" }
                                    }
                                    @if passkey.backed_up { " " span.badge.on { "synced" } }
                                }
                                td { (passkey.created_at.format("%Y-%m-%d %H:%M UTC")) }
                                td { (passkey.last_used_at.map_or_else(|| "never".to_owned(), |at| at.format("%Y-%m-%d %H:%M UTC").to_string())) }
                                td {
                                    form.inline method="post" action={ "/account/passkeys/" (passkey.id) "/remove" } {
                                        (layout::csrf(csrf))
                                        button.danger type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if state.passkeys.available() {
            form method="post" action="/account/passkeys" data-passkey="create"
                data-options="/account/passkeys/options" data-send=(browser::CSRF_FIELD)
                data-format="form" hidden {
                (layout::csrf(csrf))
                (Input::new("name", "Name of the new passkey", "text", "off").within("passkeys")
                    .value("Passkey").hint("Say which device or password manager keeps it.").render(errors))
                (layout::passkey_fields(true))
                button type="submit" { "Add a passkey" }
            }
        } @else {
            p.hint { "Passkeys are not set up on this server." }
        }
    }
}

/// Begins adding a passkey for the page's script: the options as
/// `POST /users/me/passkeys/options` gives them.
pub async fn passkey_options(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> PageResult {
    let login = frame::require(&req, &state).await?;
    form(&req, &state, body).await?;
    let (token, public_key) = state.passkeys.registration_options(&login.user).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "flow_token": token.expose(),
        "publicKey": public_key,
    })))
}

/// Finishes adding a passkey with what the script put in the form.
pub async fn passkey_add(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> PageResult {
    let login = frame::require(&req, &state).await?;
    let mut fields = form(&req, &state, body).await?;
    json_field(&mut fields, "credential");
    let added: Result<(), Refusal> = async {
        let (flow_token, name, credential) = from_object::<PasskeyRegistrationRequest>(fields)?;
        let passkeys = &state.passkeys;
        passkeys
            .register(&login.user, &flow_token, &name, &credential)
            .await?;
        Ok(())
    }
    .await;
    passkey_answer(&req, &state, &login, added, "passkey-added").await
}

pub async fn passkey_rename(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: RawBody,
) -> PageResult {
    let login = frame::require(&req, &state).await?;
    let fields = form(&req, &state, body).await?;
    let id = PasskeyId::parse(&path).ok_or_else(PageError::not_found)?;
    let renamed: Result<(), Refusal> = async {
        let name = from_object::<PasskeyRenameRequest>(fields)?;
        state.passkeys.rename(login.user.id(), id, &name).await?;
        Ok(())
    }
    .await;
    passkey_answer(&req, &state, &login, renamed, "passkey-renamed").await
}

pub async fn passkey_remove(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: RawBody,
) -> PageResult {
    let login = frame::require(&req, &state).await?;
    form(&req, &state, body).await?;
    let id = PasskeyId::parse(&path).ok_or_else(PageError::not_found)?;
    state
        .passkeys
        .remove(&login.user, login.user.id(), id)
        .await?;
    Ok(layout::redirect("/account?done=passkey-removed"))
}

/// Where a passkey form lands: back on `/account` saying it is `done`, or refused.
async fn passkey_answer(
    req: &HttpRequest,
    state: &AppState,
    login: &Authenticated,
    outcome: Result<(), Refusal>,
    done: &str,
) -> PageResult {
    match outcome {
        Ok(()) => Ok(layout::redirect(&format!("/account?done={done}"))),
        Err(problem) => passkey_refused(req, state, login, problem).await,
    }
}

/// A passkey form's refusal shown in its section; other refusals are pages.
async fn passkey_refused(
    req: &HttpRequest,
    state: &AppState,
    login: &Authenticated,
    problem: Refusal,
) -> PageResult {
    let status = problem.status();
    let refused = match status.as_u16() {
        401 => "The passkey did not answer as expected, or took too long. Try again.",
        409 => {
            "This passkey is on your account already, or you have as many as an account may have."
        }
        422 => "",
        _ => return Err(problem.into()),
    };
    let feedback = Feedback {
        section: "passkeys",
        refused: (!refused.is_empty()).then(|| refused.to_owned()),
        errors: problem.into_errors(),
    };
    account_page(req, state, login, status, None, &feedback).await
}

/// Applies a change the way `PATCH /users/me` does, showing what is wrong in `section`.
async fn change(
    req: &HttpRequest,
    state: &AppState,
    body: RawBody,
    section: &'static str,
    done: &str,
) -> PageResult {
    let login = frame::require(req, state).await?;
    let fields = form(req, state, body).await?;
    let new_password = text(&fields, "password");
    let update = match parse::<UpdateRequest>(fields)? {
        Ok(update) => update,
        Err(errors) => {
            let feedback = Feedback {
                section,
                errors,
                refused: None,
            };
            return account_page(
                req,
                state,
                &login,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                &feedback,
            )
            .await;
        }
    };
    let changes_password = update.password.is_some();
    match state
        .users
        .update(&login.user, login.user.id(), update, None)
        .await
    {
        Ok(user) => {
            if changes_password {
                // The change ended every session, this browser's too: it signs in again
                // with the new password, so only the other devices are signed out.
                let again = Login::Email(user.email().clone());
                match attempt_login(state, &again, &SecretString::from(new_password)).await {
                    SignIn::SignedIn(outcome) => browser::start(req, state, &outcome),
                    // With TOTP this browser signs in again with a code, as the others do.
                    SignIn::SecondStep { .. } => return Ok(layout::redirect("/login")),
                    SignIn::Refused(refusal) => return Err(refusal.into()),
                }
            }
            Ok(layout::redirect(&format!("/account?done={done}")))
        }
        Err(error) => {
            let problem = crate::edge::refusal::Refusal::from(error);
            let status = problem.status();
            if !matches!(status.as_u16(), 403 | 409 | 422) {
                return Err(problem.into());
            }
            let refused =
                (status.as_u16() == 403).then(|| "Your password is not right.".to_owned());
            let feedback = Feedback {
                section,
                refused: refused
                    .or_else(|| (status.as_u16() == 409).then(|| problem.detail().to_owned())),
                errors: problem.into_errors(),
            };
            account_page(req, state, &login, status, None, &feedback).await
        }
    }
}

pub async fn profile(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    change(&req, &state, body, "profile", "profile").await
}

pub async fn email(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    change(&req, &state, body, "email", "email").await
}

pub async fn password(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    change(&req, &state, body, "password", "password").await
}

pub async fn end_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: RawBody,
) -> PageResult {
    let login = frame::require(&req, &state).await?;
    form(&req, &state, body).await?;
    let ended = path
        .parse::<SessionId>()
        .map_err(|_| PageError::not_found())?;
    state.auth.end_session(login.user.id(), ended).await?;
    if ended == login.session {
        browser::clear(&req, &state);
        return Ok(layout::redirect("/login"));
    }
    Ok(layout::redirect("/account?done=session"))
}

/// Takes an application's access back, as `DELETE /users/me/grants/{client_id}` does.
pub async fn revoke_app(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: RawBody,
) -> PageResult {
    let login = frame::require(&req, &state).await?;
    form(&req, &state, body).await?;
    let client = ClientId::parse(&path).map_err(|_| PageError::not_found())?;
    let forgotten = state.oauth.forget(login.user.id(), &client).await?;
    if !forgotten {
        return Err(PageError::not_found());
    }
    Ok(layout::redirect("/account?done=app"))
}

/// A TOTP form's refusal shown in its section; other refusals are pages.
async fn totp_refused(
    req: &HttpRequest,
    state: &AppState,
    login: &Authenticated,
    problem: crate::edge::refusal::Refusal,
) -> PageResult {
    let status = problem.status();
    let refused = match status.as_u16() {
        403 => "Your password is not right.",
        400 | 401 => "That code is not right. Try the newest one from the app.",
        409 | 404 => "Two-step sign-in changed in the meantime; here is how it is now.",
        422 => "",
        _ => return Err(problem.into()),
    };
    let feedback = Feedback {
        section: "totp",
        refused: (!refused.is_empty()).then(|| refused.to_owned()),
        errors: problem.into_errors(),
    };
    account_page(req, state, login, status, None, &feedback).await
}

pub async fn totp_enrol(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    let login = frame::require(&req, &state).await?;
    let fields = form(&req, &state, body).await?;
    let enrolment = match from_object::<TotpEnrolRequest>(fields) {
        Ok(password) => state
            .mfa
            .enrol(&login.user, &password)
            .await
            .map_err(Into::into),
        Err(problem) => Err(problem),
    };
    match enrolment {
        Ok(enrolment) => Ok(confirm_page(
            &req,
            &state,
            StatusCode::OK,
            &login,
            &enrolment.uri,
            &enrolment.secret,
            None,
        )),
        Err(problem) => totp_refused(&req, &state, &login, problem).await,
    }
}

/// The set-up page: the key as a QR code drawn here (no image from elsewhere) and as text,
/// and the form that turns it on with a first code.
fn confirm_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    login: &Authenticated,
    uri: &SecretString,
    secret: &SecretString,
    refused: Option<&str>,
) -> HttpResponse {
    let csrf = browser::csrf_token(req, state);
    let body = html! {
        div.card {
            h1 { "Set up two-step sign-in" }
            @if let Some(refused) = refused { (notice(Notice::Error, refused)) }
            ol {
                li { "Scan this code with an authenticator app." }
                li { "Or type in this key: " code { (secret.expose_secret()) } }
                li { "Enter the code the app shows." }
            }
            div.qr { (qr_code(uri.expose_secret())) }
            form method="post" action="/account/totp/confirm" {
                (layout::csrf(&csrf))
                (Input::new("code", "Code from the app", "text", "one-time-code").render(&[]))
                button type="submit" { "Turn it on" }
            }
        }
    };
    layout::html(
        status,
        &layout::page("Set up two-step sign-in", Some(&login.user), &body),
    )
}

/// An SVG QR code of `text`, drawn by the server.
fn qr_code(text: &str) -> Markup {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return html! { p { "The key is too long for a QR code; type it in instead." } };
    };
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(192, 192)
        .build();
    let svg = svg.find("<svg").map_or(svg.as_str(), |at| &svg[at..]);
    PreEscaped(svg.replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code of the key\" ",
        1,
    ))
}

pub async fn totp_confirm(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> PageResult {
    let login = frame::require(&req, &state).await?;
    let fields = form(&req, &state, body).await?;
    let codes = match from_object::<TotpConfirmRequest>(fields) {
        Ok(code) => state
            .mfa
            .confirm(&login.user, &code)
            .await
            .map_err(Into::into),
        Err(problem) => Err(problem),
    };
    match codes {
        Ok(codes) => {
            let body = html! {
                div.card {
                    h1 { "Two-step sign-in is on" }
                    (notice(Notice::Ok, "From now on, signing in asks for a code from the app."))
                    h2 { "Recovery codes" }
                    p { "Each works once, in place of a code, if you lose the app. Keep them somewhere safe: they are not shown again." }
                    ul.codes { @for code in &codes { li { (code.expose_secret()) } } }
                    p { a.button href="/account" { "Back to your account" } }
                }
            };
            Ok(layout::html(
                StatusCode::OK,
                &layout::page("Recovery codes", Some(&login.user), &body),
            ))
        }
        Err(problem) => totp_refused(&req, &state, &login, problem).await,
    }
}

pub async fn totp_disable(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> PageResult {
    let login = frame::require(&req, &state).await?;
    let fields = form(&req, &state, body).await?;
    let disabled = match from_object::<TotpDisableRequest>(fields) {
        Ok((password, code)) => state
            .mfa
            .disable(&login.user, &password, &code)
            .await
            .map_err(Into::into),
        Err(problem) => Err(problem),
    };
    match disabled {
        Ok(()) => Ok(layout::redirect("/account?done=totp-off")),
        Err(problem) => totp_refused(&req, &state, &login, problem).await,
    }
}
