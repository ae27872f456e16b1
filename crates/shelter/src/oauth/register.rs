//! Dynamic client registration (RFC 7591), when `SHELTER_OAUTH_DYNAMIC_REGISTRATION=true`:
//! anyone may register a public client (PKCE, no secret) for https or loopback redirect
//! URIs, as an MCP agent does, rate-limited per address like signup.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use shelter_domain::clients::{
    ClientChanges, ClientError, ClientName, ClientSettings, ClientUri, GrantType, Scope,
};
use shelter_domain::oauth::scope_string;

use super::wire::no_store;
use crate::edge::refusal::Refusal;
use crate::edge::state::AppState;
use crate::edge::steps::may_register_client;

/// An RFC 7591 §3.2.2 error.
struct Rejected {
    error: &'static str,
    description: String,
}

fn refused(error: &'static str, description: impl Into<String>) -> Rejected {
    Rejected {
        error,
        description: description.into(),
    }
}

impl Rejected {
    fn answer(self) -> HttpResponse {
        no_store(HttpResponse::BadRequest()).json(json!({
            "error": self.error,
            "error_description": self.description,
        }))
    }
}

fn strings(body: &Value, name: &str) -> Result<Option<Vec<String>>, Rejected> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| {
                refused(
                    "invalid_client_metadata",
                    format!("{name} must be an array of strings"),
                )
            }),
        Some(_) => Err(refused(
            "invalid_client_metadata",
            format!("{name} must be an array of strings"),
        )),
    }
}

fn uris(body: &Value, name: &str, error: &'static str) -> Result<Option<Vec<ClientUri>>, Rejected> {
    strings(body, name)?
        .map(|raw| {
            raw.iter()
                .map(|uri| {
                    ClientUri::parse(uri)
                        .map_err(|why| refused(error, format!("{name}: {uri} {why}")))
                })
                .collect()
        })
        .transpose()
}

/// The settings a registration asks for, read as RFC 7591 names them.
fn settings(body: &Value) -> Result<ClientSettings, Rejected> {
    let name = match body.get("client_name") {
        None | Some(Value::Null) => "Unnamed application".to_owned(),
        Some(Value::String(name)) => name.clone(),
        Some(_) => {
            return Err(refused(
                "invalid_client_metadata",
                "client_name must be a string",
            ));
        }
    };
    let name = ClientName::parse(&name)
        .map_err(|why| refused("invalid_client_metadata", format!("client_name {why}")))?;
    let redirect_uris = uris(body, "redirect_uris", "invalid_redirect_uri")?
        .filter(|uris| !uris.is_empty())
        .ok_or_else(|| refused("invalid_redirect_uri", "redirect_uris is required"))?;
    match body
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
    {
        None | Some("none") => {}
        Some(_) => {
            return Err(refused(
                "invalid_client_metadata",
                "token_endpoint_auth_method must be none: registration makes public clients",
            ));
        }
    }
    let grant_types = strings(body, "grant_types")?
        .map(|raw| {
            raw.iter()
                .map(|grant| {
                    GrantType::parse(grant)
                        .filter(|grant| *grant != GrantType::ClientCredentials)
                        .ok_or_else(|| {
                            refused(
                                "invalid_client_metadata",
                                "grant_types may name authorization_code and refresh_token",
                            )
                        })
                })
                .collect::<Result<_, _>>()
        })
        .transpose()?;
    let scopes = match body.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(raw)) => Some(
            raw.split(' ')
                .filter(|word| !word.is_empty())
                .map(|word| {
                    Scope::parse(word).ok_or_else(|| {
                        refused("invalid_client_metadata", format!("unknown scope {word}"))
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => return Err(refused("invalid_client_metadata", "scope must be a string")),
    };
    let mut settings = ClientSettings::new(name.clone());
    ClientChanges {
        name: Some(name),
        redirect_uris: Some(redirect_uris),
        post_logout_redirect_uris: uris(
            body,
            "post_logout_redirect_uris",
            "invalid_client_metadata",
        )?,
        grant_types,
        scopes,
        ..ClientChanges::default()
    }
    .apply(&mut settings);
    Ok(settings)
}

fn uri_list(uris: &[ClientUri]) -> Vec<&str> {
    uris.iter().map(ClientUri::as_str).collect()
}

/// `POST /oauth/register`.
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, Refusal> {
    if !state.dynamic_registration {
        return Err(Refusal::not_found("No such resource"));
    }
    may_register_client(&req, &state).await?;
    let body = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| refused("invalid_client_metadata", "the body must be a JSON object"));
    let settings = match body.and_then(|body| settings(&body)) {
        Ok(settings) => settings,
        Err(rejected) => return Ok(rejected.answer()),
    };
    let client = match state.clients.register(settings).await {
        Ok(client) => client,
        Err(ClientError::Invalid { field, message }) => {
            let rejected = refused("invalid_client_metadata", format!("{field} {message}"));
            return Ok(rejected.answer());
        }
        Err(other) => return Err(other.into()),
    };
    let settings = &client.settings;
    Ok(
        no_store(HttpResponse::build(StatusCode::CREATED)).json(json!({
            "client_id": client.id.as_str(),
            "client_id_issued_at": client.created_at.timestamp(),
            "client_name": settings.name.as_str(),
            "redirect_uris": uri_list(&settings.redirect_uris),
            "post_logout_redirect_uris": uri_list(&settings.post_logout_redirect_uris),
            "grant_types": settings.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": scope_string(&settings.scopes),
        })),
    )
}
