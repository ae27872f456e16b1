//! `/admin/users`: the superusers' console. The listing reads its filters with
//! `GET /users`' own parser, and every action is the API's (`PATCH` and `DELETE
//! /users/{id}`, the TOTP reset), so the same rules hold: the last superuser stays.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use maud::{Markup, html};
use serde::Deserialize;
use shelter_domain::audit::AuditQuery;
use shelter_domain::auth::Authenticated;
use shelter_domain::identities::Identity;
use shelter_domain::passkeys::{Passkey, PasskeyId};
use shelter_domain::{AccountUpdate, User, UserId};

use super::error::{PageError, PageResult};
use super::forms::{form, text};
use super::frame;
use super::layout::{self, Notice, notice};
use crate::edge::body::RawBody;
use crate::edge::browser;
use crate::edge::caller::user_id;
use crate::edge::state::AppState;
use crate::edge::steps::listing;

/// Users on one page of the console.
const PAGE_SIZE: u64 = 50;

/// The signed-in superuser of an admin page; anyone else gets a 403 page.
pub(super) async fn superuser(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Authenticated, PageError> {
    let login = frame::require(req, state).await?;
    if !login.user.is_superuser() {
        return Err(shelter_domain::UserError::NotSuperuser.into());
    }
    Ok(login)
}

/// The superuser asking, and the user the page's path names (a 404 page for no user id).
async fn superuser_on(
    req: &HttpRequest,
    state: &AppState,
    path: &str,
) -> Result<(Authenticated, UserId), PageError> {
    let login = superuser(req, state).await?;
    let id = user_id(path).map_err(|_| PageError::not_found())?;
    Ok((login, id))
}

#[derive(Deserialize, Default)]
pub struct ListParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    is_active: String,
    #[serde(default)]
    is_superuser: String,
    page: Option<String>,
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    let login = superuser(&req, &state).await?;
    let params: ListParams = serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let page = params
        .page
        .as_deref()
        .map_or(Ok(1), str::parse::<u64>)
        .ok()
        .filter(|page| *page >= 1)
        .ok_or_else(|| {
            crate::edge::refusal::Refusal::field("page", "must be a whole number from 1")
        })?;
    // The API's own parser; an empty choice is "any".
    let filters = [
        ("q", params.q.as_str()),
        ("is_active", params.is_active.as_str()),
        ("is_superuser", params.is_superuser.as_str()),
    ];
    let chosen: Vec<_> = filters
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .collect();
    let skip = (page - 1).saturating_mul(PAGE_SIZE).to_string();
    let limit = PAGE_SIZE.to_string();
    let mut api_query: Vec<(&str, &str)> = chosen.iter().map(|&&pair| pair).collect();
    api_query.extend([("skip", skip.as_str()), ("limit", limit.as_str())]);
    let query = serde_urlencoded::to_string(&api_query).unwrap_or_default();
    let (filter, window) = listing(&query)?;
    let mut users = Vec::new();
    let total = state
        .users
        .list(&login.user, &filter, window, &mut users)
        .await?;
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let link = |page: u64| {
        let page = page.to_string();
        let mut pairs: Vec<(&str, &str)> = chosen.iter().map(|&&pair| pair).collect();
        pairs.push(("page", &page));
        format!(
            "/admin/users?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    let choice = |name: &str, label: &str, current: &str| {
        html! {
            div {
                label for={ "filter-" (name) } { (label) }
                select id={ "filter-" (name) } name=(name) {
                    option value="" selected[current.is_empty()] { "Any" }
                    option value="true" selected[current == "true"] { "Yes" }
                    option value="false" selected[current == "false"] { "No" }
                }
            }
        }
    };
    let body = html! {
        h1 { "Users" }
        form.card.filters method="get" action="/admin/users" role="search" {
            div {
                label for="filter-q" { "Email or username contains" }
                input #filter-q type="search" name="q" value=(params.q);
            }
            (choice("is_active", "Active", &params.is_active))
            (choice("is_superuser", "Superuser", &params.is_superuser))
            div { button type="submit" { "Search" } }
        }
        div.card {
            p { (total) " " (if total == 1 { "user" } else { "users" }) }
            div.table-scroll {
                table {
                    thead { tr {
                        th scope="col" { "Username" } th scope="col" { "Email" }
                        th scope="col" { "Active" } th scope="col" { "Superuser" } th scope="col" { "Created" }
                    } }
                    tbody {
                        @for user in &users {
                            tr {
                                td { a href={ "/admin/users/" (user.id) } { (user.username.as_str()) } }
                                td { (user.email.as_str()) }
                                td { (yes_no(user.is_active)) }
                                td { (yes_no(user.is_superuser)) }
                                td { (user.created_at.format("%Y-%m-%d")) }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if page > 1 { a href=(link(page - 1)) { "Previous" } }
                span { "Page " (page) " of " (pages) }
                @if page < pages { a href=(link(page + 1)) { "Next" } }
            }
        }
    };
    Ok(layout::html(
        StatusCode::OK,
        &layout::page("Users", Some(&login.user), &body),
    ))
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

pub async fn detail(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<Done>,
) -> PageResult {
    let (login, id) = superuser_on(&req, &state, &path).await?;
    let user = state.users.get(&login.user, id).await?;
    let done = query.done.as_deref().map(|done| match done {
        "activate" => "The user is active.",
        "deactivate" => "The user is deactivated and signed out everywhere.",
        "grant" => "The user is a superuser.",
        "revoke" => "The user is no longer a superuser.",
        "reset-mfa" => "Two-step sign-in is off for this user.",
        "passkey-removed" => "The passkey is removed; it no longer signs this user in.",
        _ => "Done.",
    });
    detail_page(
        &req,
        &state,
        &login,
        &user,
        StatusCode::OK,
        done.map(|d| (Notice::Ok, d)),
    )
    .await
}

/// The user's passkeys, each with a form that removes it.
fn passkeys_card(user: &User, passkeys: &[Passkey], csrf: &str) -> Markup {
    html! {
    section.card aria-labelledby="passkeys-title" {
        h2 #passkeys-title { "Passkeys" }
        @if passkeys.is_empty() { p { "None." } }
        @else {
            div.table-scroll {
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Added" } th scope="col" { "Last used" } th scope="col" { span.skip { "Action" } } } }
                    tbody {
                        @for passkey in passkeys {
                            tr {
                                td { (passkey.name.as_str()) @if passkey.backed_up { " " span.badge.on { "synced" } } }
                                td { (passkey.created_at.format("%Y-%m-%d %H:%M UTC")) }
                                td { (passkey.last_used_at.map_or_else(|| "never".to_owned(), |at| at.format("%Y-%m-%d %H:%M UTC").to_string())) }
                                td {
                                    form.inline method="post" action={ "/admin/users/" (user.id()) "/passkeys/" (passkey.id) "/remove" } {
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
    }
    }
}

/// The accounts at other providers linked to the user.
fn identities_card(identities: &[Identity]) -> Markup {
    html! {
    section.card aria-labelledby="identities-title" {
        h2 #identities-title { "Sign-in providers" }
        @if identities.is_empty() { p { "None." } }
        @else {
            div.table-scroll {
                table {
                    thead { tr { th scope="col" { "Provider" } th scope="col" { "Subject" } th scope="col" { "Email" } th scope="col" { "Linked" } } }
                    tbody {
                        @for identity in identities {
                            tr {
                                td { (identity.provider) }
                                td { (identity.subject) }
                                td { (identity.email.as_ref().map_or("", |email| email.as_str())) }
                                td { (identity.linked_at.format("%Y-%m-%d %H:%M UTC")) }
                            }
                        }
                    }
                }
            }
        }
    }
    }
}

async fn detail_page(
    req: &HttpRequest,
    state: &AppState,
    login: &Authenticated,
    user: &User,
    status: StatusCode,
    message: Option<(Notice, &str)>,
) -> PageResult {
    let events = state
        .audit
        .list(
            &login.user,
            AuditQuery {
                user: Some(user.id()),
                kind: None,
                before: None,
                limit: 50,
            },
        )
        .await?;
    let passkeys = state.passkeys.list_of(&login.user, user.id()).await?;
    let identities = state.federation.identities(user.id()).await?;
    let csrf = browser::csrf_token(req, state);
    let action = |name: &str, label: &str, class: &str| {
        html! {
            form.inline method="post" action={ "/admin/users/" (user.id()) "/change" } {
                (layout::csrf(&csrf))
                input type="hidden" name="action" value=(name);
                button class=(class) type="submit" { (label) }
            }
            " "
        }
    };
    let body = html! {
        p { a href="/admin/users" { "All users" } }
        h1 { (user.username().as_str()) }
        @if let Some((kind, text)) = message { (notice(kind, text)) }
        div.card {
            table {
                tbody {
                    tr { th scope="row" { "Id" } td { (user.id()) } }
                    tr { th scope="row" { "Email" } td { (user.email().as_str()) " " (if user.email_verified() { "(verified)" } else { "(not verified)" }) } }
                    tr { th scope="row" { "Active" } td { (yes_no(user.is_active())) } }
                    tr { th scope="row" { "Superuser" } td { (yes_no(user.is_superuser())) } }
                    tr { th scope="row" { "Password" } td { (if user.password_set() { "set" } else { "none (created from a provider)" }) } }
                    tr { th scope="row" { "Two-step sign-in" } td { (if user.totp().is_on() { "on" } else { "off" }) } }
                    tr { th scope="row" { "Created" } td { (user.created_at().format("%Y-%m-%d %H:%M UTC")) } }
                }
            }
            div {
                @if user.is_active() { (action("deactivate", "Deactivate", "secondary")) }
                @else { (action("activate", "Activate", "secondary")) }
                @if user.is_superuser() { (action("revoke", "Revoke superuser", "secondary")) }
                @else { (action("grant", "Make superuser", "secondary")) }
                @if user.totp().is_on() { (action("reset-mfa", "Reset two-step sign-in", "secondary")) }
                a.button.danger href={ "/admin/users/" (user.id()) "/delete" } { "Delete…" }
            }
        }
        (passkeys_card(user, &passkeys, &csrf))
        (identities_card(&identities))
        section.card aria-labelledby="events-title" {
            h2 #events-title { "Audit events" }
            @if events.is_empty() { p { "None yet." } }
            @else {
                div.table-scroll {
                    table {
                        thead { tr { th scope="col" { "Time" } th scope="col" { "Event" } th scope="col" { "Address" } th scope="col" { "Request" } } }
                        tbody {
                            @for event in &events {
                                tr {
                                    td { (event.time.format("%Y-%m-%d %H:%M:%S")) }
                                    td { (event.kind.as_str()) }
                                    td { (event.client.ip.map(|ip| ip.to_string()).unwrap_or_default()) }
                                    td.mono { (event.request_id.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::html(
        status,
        &layout::page(user.username().as_str(), Some(&login.user), &body),
    ))
}

pub async fn change(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: RawBody,
) -> PageResult {
    let (login, id) = superuser_on(&req, &state, &path).await?;
    let fields = form(&req, &state, body).await?;
    let action = text(&fields, "action");
    let update = |is_active, is_superuser| AccountUpdate {
        is_active,
        is_superuser,
        ..AccountUpdate::default()
    };
    let result = match action.as_str() {
        "activate" => apply(&state, &login, id, update(Some(true), None)).await,
        "deactivate" => apply(&state, &login, id, update(Some(false), None)).await,
        "grant" => apply(&state, &login, id, update(None, Some(true))).await,
        "revoke" => apply(&state, &login, id, update(None, Some(false))).await,
        "reset-mfa" => state.mfa.reset(&login.user, id).await,
        _ => {
            return Err(crate::edge::refusal::Refusal::field(
                "action",
                "is not an action of this page",
            )
            .into());
        }
    };
    match result {
        Ok(()) => Ok(layout::redirect(&format!(
            "/admin/users/{id}?done={action}"
        ))),
        Err(shelter_domain::UserError::LastSuperuser) => {
            last_superuser(&req, &state, &login, id).await
        }
        Err(error) => Err(error.into()),
    }
}

/// The user's page again, saying why the change was refused.
async fn last_superuser(
    req: &HttpRequest,
    state: &AppState,
    login: &Authenticated,
    id: UserId,
) -> PageResult {
    let user = state.users.get(&login.user, id).await?;
    let text = "Refused: this is the last active superuser, and there must be one.";
    let message = Some((Notice::Error, text));
    detail_page(req, state, login, &user, StatusCode::CONFLICT, message).await
}

async fn apply(
    state: &AppState,
    login: &Authenticated,
    id: UserId,
    update: AccountUpdate,
) -> Result<(), shelter_domain::UserError> {
    state
        .users
        .update(&login.user, id, update, None)
        .await
        .map(drop)
}

pub async fn delete_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let (login, id) = superuser_on(&req, &state, &path).await?;
    let user = state.users.get(&login.user, id).await?;
    let csrf = browser::csrf_token(&req, &state);
    let body = html! {
        div.card {
            h1 { "Delete " (user.username().as_str()) "?" }
            p { "The account of " strong { (user.email().as_str()) } " and its sessions are deleted for good. This cannot be undone." }
            form method="post" action={ "/admin/users/" (id) "/delete" } {
                (layout::csrf(&csrf))
                button.danger type="submit" { "Delete the account" }
                " "
                a.button.secondary href={ "/admin/users/" (id) } { "Keep it" }
            }
        }
    };
    Ok(layout::html(
        StatusCode::OK,
        &layout::page("Delete a user", Some(&login.user), &body),
    ))
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: RawBody,
) -> PageResult {
    let (login, id) = superuser_on(&req, &state, &path).await?;
    form(&req, &state, body).await?;
    match state.users.delete(&login.user, id, None).await {
        Ok(()) => Ok(layout::redirect("/admin/users")),
        Err(shelter_domain::UserError::LastSuperuser) => {
            last_superuser(&req, &state, &login, id).await
        }
        Err(error) => Err(error.into()),
    }
}

/// A superuser removes a user's passkey (a lost or stolen device), as
/// `DELETE /users/{id}/passkeys/{passkey_id}` does.
pub async fn remove_passkey(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: RawBody,
) -> PageResult {
    let (login, id) = superuser_on(&req, &state, &path.0).await?;
    form(&req, &state, body).await?;
    let passkey = PasskeyId::parse(&path.1).ok_or_else(PageError::not_found)?;
    state.passkeys.remove(&login.user, id, passkey).await?;
    Ok(layout::redirect(&format!(
        "/admin/users/{id}?done=passkey-removed"
    )))
}
