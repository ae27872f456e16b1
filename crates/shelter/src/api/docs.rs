//! The OpenAPI document, generated from the handlers and DTOs, and the Swagger UI, whose
//! assets are compiled into the binary so `/docs` works without internet access.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::{
    audit, auth, chat, clients, dto, grants, health, identities, jwks, metrics, mfa, passkeys,
    sessions, users,
};
use crate::edge::refusal;
use crate::edge::refusal::PROBLEM_JSON;
use crate::oauth::doc::{OAuthDoc, is_protocol_path};

#[derive(OpenApi)]
#[openapi(
    info(title = "Shelter", description = "User management and authentication."),
    paths(
        users::signup, users::read_me, users::update_me, users::delete_me, users::list,
        users::read, users::update_one, users::delete_one,
        auth::token, auth::refresh, auth::logout, auth::verify_email, auth::password_recovery, auth::resend_verification,
        auth::reset_password, mfa::second_step, mfa::enrol, mfa::confirm, mfa::disable, mfa::reset,
        sessions::list, sessions::end, grants::list, grants::forget, audit::list, audit::list_own, jwks::jwks, health::live,
        health::ready,
        metrics::metrics, chat::connect,
        clients::create, clients::list, clients::read, clients::update, clients::delete,
        clients::rotate_secret,
        auth::email_code, auth::verify_email_code, mfa::passkey_options,
        passkeys::registration_options, passkeys::register, passkeys::list, passkeys::rename,
        passkeys::remove, passkeys::list_of_user, passkeys::remove_of_user,
        passkeys::sign_in_options, passkeys::sign_in,
        identities::providers, identities::list, identities::unlink,
    ),
    components(schemas(refusal::ProblemBody, refusal::FieldError, dto::UserResponse, dto::UserPage)),
    modifiers(&Security),
    tags(
        (name = "users", description = "Signup and account management"),
        (name = "auth", description = "Login, sessions, email verification and password reset"),
        (name = "mfa", description = "The TOTP second factor"),
        (name = "passkeys", description = "Passkeys (WebAuthn): adding, naming and removing them"),
        (name = "audit", description = "The audit log of security events"),
        (name = "health", description = "Probes for orchestrators"),
        (name = "chat", description = "The WebSocket chat"),
        (name = "oauth clients", description = "The registry of the applications that sign their users in with Shelter (superusers)"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "password",
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new(
                "/auth/token",
                Scopes::new(),
            ))])),
        );
    }
}

/// The published document: what the handlers declare, with the contract's conventions
/// applied to every operation (see [`apply_conventions`]).
pub fn document() -> Value {
    let mut openapi = ApiDoc::openapi();
    openapi.merge(OAuthDoc::openapi());
    let mut document = serde_json::to_value(openapi).unwrap_or_default();
    apply_conventions(&mut document);
    require_current_password(&mut document);
    document
}

/// An update that sets `email` or `password` needs `current_password`: a rule between
/// fields, which the derive cannot state.
fn require_current_password(document: &mut Value) {
    let needs_current_password = |field: &str| {
        json!({
            "if": {"properties": {field: {"type": "string"}}, "required": [field]},
            "then": {
                "properties": {"current_password": {"type": "string"}},
                "required": ["current_password"],
            },
        })
    };
    document["components"]["schemas"]["UpdateRequest"]["allOf"] = json!([
        needs_current_password("email"),
        needs_current_password("password"),
    ]);
}

/// The answers every operation of a kind can give, added in one place so no annotation can
/// forget them, and described as they are sent:
/// - every error body is `application/problem+json`;
/// - an operation with a body can answer 400 (not one JSON value), 413, 415 and 422;
/// - an operation behind a bearer token can answer 401;
/// - every operation but liveness and metrics can answer 503 (a dependency down, or the
///   request deadline passed), with `Retry-After`;
/// - no text in a request body may contain a control character.
///
/// The OpenID Connect provider's machine endpoints keep their RFC 6749 JSON errors: only
/// 413 and 503 are added to them, and their 503 may be either kind (its own, or the
/// deadline's problem).
fn apply_conventions(document: &mut Value) {
    let problem = |description: &str| {
        json!({
            "description": description,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemBody"}}},
        })
    };
    let mut request_schemas = Vec::new();
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            let with_body = operation.get("requestBody").cloned();
            let secured = operation.contains_key("security");
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let protocol = is_protocol_path(path);
            for (status, response) in responses.iter_mut() {
                if !protocol
                    && status.as_str() >= "400"
                    && let Some(content) = response["content"].as_object_mut()
                    && let Some(json) = content.remove("application/json")
                {
                    content.insert(PROBLEM_JSON.to_owned(), json);
                }
            }
            let mut add = |status: &str, response: Value| {
                responses.entry(status).or_insert(response);
            };
            if protocol {
                if let Some(body) = &with_body {
                    add("413", problem("The body is over its size limit"));
                    collect_refs(body, &mut request_schemas);
                }
            } else if let Some(body) = with_body {
                add(
                    "400",
                    problem("The body is not one complete JSON value (or form)"),
                );
                add("413", problem("The body is over 64 KiB"));
                add(
                    "415",
                    problem("The body is not of a documented content type"),
                );
                add(
                    "422",
                    problem("A field is missing or invalid; `errors` names each"),
                );
                collect_refs(&body, &mut request_schemas);
            }
            if secured {
                let mut unauthorized = problem("Missing, invalid or expired access token");
                unauthorized["headers"] =
                    json!({"WWW-Authenticate": {"schema": {"type": "string"}}});
                add("401", unauthorized);
            }
            if !matches!(path.as_str(), "/health/live" | "/metrics") {
                let mut unavailable = problem(
                    "A dependency (the database, the password hasher, Redis) is unavailable, \
                     or the request took longer than the server allows",
                );
                unavailable["headers"] = json!({
                    "Retry-After": {"description": "Seconds", "schema": {"type": "integer"}}
                });
                if protocol {
                    unavailable["content"]["application/json"] = json!({
                        "schema": {"$ref": "#/components/schemas/OAuthErrorBody"}
                    });
                }
                add("503", unavailable);
            }
        }
    }
    for name in request_schemas {
        if let Some(properties) =
            document["components"]["schemas"][name.as_str()]["properties"].as_object_mut()
        {
            for property in properties.values_mut() {
                refuse_control_characters(property);
            }
        }
    }
}

/// The component names a request body refers to.
fn collect_refs(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
            {
                names.push(name.to_owned());
            }
            map.values().for_each(|v| collect_refs(v, names));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, names)),
        _ => {}
    }
}

/// A string property (or one that may be a string) without a pattern of its own gets one
/// that excludes U+0000–U+001F and U+007F. Emails are left to their format, which already
/// excludes them.
fn refuse_control_characters(property: &mut Value) {
    let is_string = match &property["type"] {
        Value::String(kind) => kind == "string",
        Value::Array(kinds) => kinds.iter().any(|kind| kind == "string"),
        _ => false,
    };
    if is_string && property.get("pattern").is_none() && property["format"] != "email" {
        property["pattern"] = json!("^[^\\u0000-\\u001F\\u007F]*$");
    }
}

/// The UI's assets under `/docs/…` and the document at `/openapi.json`.
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").external_url_unchecked("/openapi.json", document())
}

/// `/docs` itself: the UI's page, with its relative asset links anchored under `/docs/`,
/// so that no redirect is needed whether or not the client adds a trailing slash.
pub async fn index() -> HttpResponse {
    let config = std::sync::Arc::new(Config::from("/openapi.json"));
    match utoipa_swagger_ui::serve("index.html", config) {
        Ok(Some(file)) => {
            let page = String::from_utf8_lossy(&file.bytes).replacen(
                "<head>",
                "<head><base href=\"/docs/\">",
                1,
            );
            HttpResponse::Ok()
                .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
                .body(page)
        }
        _ => HttpResponse::NotFound().finish(),
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/docs", web::get().to(index))
        .service(swagger_ui());
}
