//! `/admin/clients`: the OAuth client registry in the superusers' console. Each form posts
//! the fields of the API request it stands for (`POST /oauth/clients`, `PATCH
//! /oauth/clients/{id}`), read by the edge's parser, so the rules and messages are the
//! API's; a list arrives as one URI a line.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde_json::{Map, Value};
use shelter_domain::SecretToken;
use shelter_domain::auth::Authenticated;
use shelter_domain::clients::{Client, ClientId, ClientUri, Operator};

use super::admin::superuser;
use super::error::{PageError, PageResult};
use super::forms::{form, parse, text};
use super::layout::{self, Input, Notice, notice, other_errors};
use crate::edge::body::RawBody;
use crate::edge::browser;
use crate::edge::refusal::FieldError;
use crate::edge::requests::{ClientRequest, ClientUpdateRequest};
use crate::edge::state::AppState;

fn client_id(path: &str) -> Result<ClientId, PageError> {
    ClientId::parse(path).map_err(|_| PageError::not_found())
}

/// A textarea's lines as the list a JSON request would carry; blank lines are nothing.
fn lines_to_list(fields: &mut Map<String, Value>, name: &str) {
    if let Some(Value::String(text)) = fields.remove(name) {
        let items = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| Value::String(line.to_owned()))
            .collect();
        fields.insert(name.to_owned(), Value::Array(items));
    }
}

/// A checkbox as the boolean a JSON request would carry: present is `true`.
fn checkbox(fields: &mut Map<String, Value>, name: &str) {
    let on = fields.remove(name).is_some();
    fields.insert(name.to_owned(), Value::Bool(on));
}

fn uri_lines(uris: &[ClientUri]) -> String {
    uris.iter()
        .map(ClientUri::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

fn textarea(name: &str, label: &str, value: &str, errors: &[FieldError]) -> Markup {
    let id = format!("client-{name}");
    let error = errors
        .iter()
        .find(|e| e.field == name || e.field.starts_with(&format!("{name}[")));
    html! {
        label for=(id) { (label) }
        textarea id=(id) name=(name) rows="3"
            aria-invalid=[error.map(|_| "true")]
            aria-describedby=[error.map(|_| format!("{id}-error"))] { (value) }
        @if let Some(error) = error {
            p.field-error id={ (id) "-error" } { (error.field) ": " (error.message) }
        } @else {
            p.hint { "One a line: https, or http on 127.0.0.1, [::1] or localhost; no fragment." }
        }
    }
}

pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    let login = superuser(&req, &state).await?;
    list_page(&req, &state, &login, StatusCode::OK, &Map::new(), &[]).await
}

async fn list_page(
    req: &HttpRequest,
    state: &AppState,
    login: &Authenticated,
    status: StatusCode,
    sent: &Map<String, Value>,
    errors: &[FieldError],
) -> PageResult {
    let clients = state.clients.list(Operator::Superuser(&login.user)).await?;
    let csrf = browser::csrf_token(req, state);
    let body = html! {
        h1 { "Applications" }
        div.card {
            p { (clients.len()) " registered" }
            div.table-scroll {
                table {
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Client id" }
                        th scope="col" { "Type" } th scope="col" { "Redirect URIs" }
                    } }
                    tbody {
                        @for client in &clients {
                            tr {
                                td { a href={ "/admin/clients/" (client.id) } { (client.settings.name.as_str()) } }
                                td { code { (client.id) } }
                                td { (client.kind.as_str()) }
                                td { (uri_lines(&client.settings.redirect_uris)) }
                            }
                        }
                    }
                }
            }
        }
        section.card aria-labelledby="new-client" {
            h2 #new-client { "Register an application" }
            (other_errors(errors, &["name", "redirect_uris", "type"]))
            form method="post" action="/admin/clients" {
                (layout::csrf(&csrf))
                (Input::new("name", "Name, as users will see it", "text", "off").within("client").value(&text(sent, "name")).render(errors))
                (textarea("redirect_uris", "Redirect URIs", &text(sent, "redirect_uris"), errors))
                label for="client-type" { "Type" }
                select #client-type name="type" {
                    option value="confidential" { "Confidential: a server that keeps a secret" }
                    option value="public" selected[text(sent, "type") == "public"] { "Public: a browser or native app (PKCE, no secret)" }
                }
                label.check {
                    input type="checkbox" name="trusted" checked[sent.contains_key("trusted")];
                    " Trusted: skip the consent page (your own application)"
                }
                button type="submit" { "Register" }
            }
        }
    };
    Ok(layout::html(
        status,
        &layout::page("Applications", Some(&login.user), &body),
    ))
}

pub async fn create(req: HttpRequest, state: web::Data<AppState>, body: RawBody) -> PageResult {
    let login = superuser(&req, &state).await?;
    let mut fields = form(&req, &state, body).await?;
    // The form as sent, to show again with its errors.
    let sent = fields.clone();
    lines_to_list(&mut fields, "redirect_uris");
    checkbox(&mut fields, "trusted");
    let refused = |errors: Vec<FieldError>| {
        let (req, state, login, sent) = (&req, &state, &login, &sent);
        async move {
            list_page(
                req,
                state,
                login,
                StatusCode::UNPROCESSABLE_ENTITY,
                sent,
                &errors,
            )
            .await
        }
    };
    let (kind, settings) = match parse::<ClientRequest>(fields)? {
        Ok(parsed) => parsed,
        Err(errors) => return refused(errors).await,
    };
    match state
        .clients
        .create(Operator::Superuser(&login.user), kind, settings)
        .await
    {
        Ok((client, secret)) => Ok(detail_page(
            &req,
            &state,
            &login,
            &client,
            secret.as_ref(),
            None,
        )),
        Err(shelter_domain::clients::ClientError::Invalid { field, message }) => {
            refused(vec![FieldError {
                field: field.to_owned(),
                message: message.to_owned(),
            }])
            .await
        }
        Err(error) => Err(error.into()),
    }
}

pub async fn detail(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> PageResult {
    let login = superuser(&req, &state).await?;
    let client = state
        .clients
        .get(Operator::Superuser(&login.user), &client_id(&path)?)
        .await?;
    let done = req.query_string().contains("done=saved");
    Ok(detail_page(
        &req,
        &state,
        &login,
        &client,
        None,
        done.then_some("Saved."),
    ))
}

/// A client's page: its settings, the secret when this answer is the one that shows it,
/// and its forms (redirect URIs, a new secret, deletion).
fn detail_page(
    req: &HttpRequest,
    state: &AppState,
    login: &Authenticated,
    client: &Client,
    secret: Option<&SecretToken>,
    saved: Option<&str>,
) -> HttpResponse {
    redirect_uris_page(
        req,
        state,
        login,
        client,
        secret,
        saved,
        StatusCode::OK,
        None,
        &[],
    )
}

#[expect(
    clippy::too_many_arguments,
    reason = "one page, drawn for its three outcomes"
)]
fn redirect_uris_page(
    req: &HttpRequest,
    state: &AppState,
    login: &Authenticated,
    client: &Client,
    secret: Option<&SecretToken>,
    saved: Option<&str>,
    status: StatusCode,
    sent: Option<&str>,
    errors: &[FieldError],
) -> HttpResponse {
    let csrf = browser::csrf_token(req, state);
    let settings = &client.settings;
    let id = client.id.as_str();
    let words = |items: Vec<&str>| items.join(", ");
    let body = html! {
        h1 { (settings.name.as_str()) }
        @if let Some(saved) = saved { (notice(Notice::Ok, saved)) }
        @if let Some(secret) = secret {
            div.card {
                (notice(Notice::Ok, "Copy the client secret now: it is shown this once, and Shelter keeps only its hash."))
                p { "Client secret: " code #client-secret { (secret.expose()) } }
            }
        }
        div.card {
            dl {
                dt { "Client id" } dd { code #client-id { (id) } }
                dt { "Type" } dd { (client.kind.as_str()) }
                dt { "Grant types" } dd { (words(settings.grant_types.iter().map(|g| g.as_str()).collect())) }
                dt { "Scopes" } dd { (words(settings.scopes.iter().map(|s| s.as_str()).collect())) }
                dt { "Trusted (no consent page)" } dd { (if settings.trusted { "yes" } else { "no" }) }
            }
        }
        section.card aria-labelledby="uris" {
            h2 #uris { "Redirect URIs" }
            (other_errors(errors, &["redirect_uris"]))
            form method="post" action={ "/admin/clients/" (id) "/redirect-uris" } {
                (layout::csrf(&csrf))
                (textarea("redirect_uris", "Redirect URIs", sent.unwrap_or(&uri_lines(&settings.redirect_uris)), errors))
                button type="submit" { "Save" }
            }
        }
        @if client.kind == shelter_domain::clients::ClientType::Confidential {
            section.card aria-labelledby="secret" {
                h2 #secret { "Client secret" }
                p { "A new secret replaces the old one at once: the application must be given it." }
                form method="post" action={ "/admin/clients/" (id) "/secret" } {
                    (layout::csrf(&csrf))
                    button type="submit" { "Make a new secret" }
                }
            }
        }
        section.card aria-labelledby="delete" {
            h2 #delete { "Delete" }
            form method="post" action={ "/admin/clients/" (id) "/delete" } {
                (layout::csrf(&csrf))
                button.danger type="submit" { "Delete this application" }
            }
        }
        p { a href="/admin/clients" { "All applications" } }
    };
    layout::html(
        status,
        &layout::page(settings.name.as_str(), Some(&login.user), &body),
    )
}

pub async fn redirect_uris(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: RawBody,
) -> PageResult {
    let login = superuser(&req, &state).await?;
    let id = client_id(&path)?;
    let mut fields = form(&req, &state, body).await?;
    let sent = text(&fields, "redirect_uris");
    lines_to_list(&mut fields, "redirect_uris");
    let operator = Operator::Superuser(&login.user);
    let outcome = match parse::<ClientUpdateRequest>(fields)? {
        Ok(changes) => match state.clients.update(operator, &id, changes).await {
            Ok(_) => return Ok(layout::redirect(&format!("/admin/clients/{id}?done=saved"))),
            Err(shelter_domain::clients::ClientError::Invalid { field, message }) => {
                vec![FieldError {
                    field: field.to_owned(),
                    message: message.to_owned(),
                }]
            }
            Err(error) => return Err(error.into()),
        },
        Err(errors) => errors,
    };
    let client = state.clients.get(operator, &id).await?;
    Ok(redirect_uris_page(
        &req,
        &state,
        &login,
        &client,
        None,
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(&sent),
        &outcome,
    ))
}

pub async fn rotate_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: RawBody,
) -> PageResult {
    let login = superuser(&req, &state).await?;
    form(&req, &state, body).await?;
    let (client, secret) = state
        .clients
        .rotate_secret(Operator::Superuser(&login.user), &client_id(&path)?)
        .await?;
    Ok(detail_page(
        &req,
        &state,
        &login,
        &client,
        Some(&secret),
        None,
    ))
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: RawBody,
) -> PageResult {
    let login = superuser(&req, &state).await?;
    form(&req, &state, body).await?;
    state
        .clients
        .delete(Operator::Superuser(&login.user), &client_id(&path)?)
        .await?;
    Ok(layout::redirect("/admin/clients"))
}
