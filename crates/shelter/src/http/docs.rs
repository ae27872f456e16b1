//! The OpenAPI document, generated from the handlers and DTOs, and the Swagger UI, whose
//! assets are compiled into the binary so `/docs` works without internet access.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::{auth, dto, health, metrics, problem, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Shelter", description = "User management and authentication."),
    paths(
        users::signup, users::read_me, users::update_me, users::delete_me, users::list,
        users::read, users::update_one, users::delete_one,
        auth::token, auth::refresh, auth::logout, auth::verify_email, auth::password_recovery,
        auth::reset_password, health::live, health::ready, metrics::metrics, crate::ws::connect,
    ),
    components(schemas(problem::ProblemBody, problem::FieldError, dto::UserResponse, dto::UserPage)),
    modifiers(&Security),
    tags(
        (name = "users", description = "Signup and account management"),
        (name = "auth", description = "Login, sessions, email verification and password reset"),
        (name = "health", description = "Probes for orchestrators"),
        (name = "chat", description = "The WebSocket chat"),
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

/// The UI's assets under `/docs/…` and the document at `/openapi.json`.
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", ApiDoc::openapi())
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
