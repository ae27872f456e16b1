//! The OpenID Connect provider's machine endpoints: discovery, token, userinfo, revocation
//! and introspection. An inbound adapter beside the JSON API and the pages, over the same
//! edge; what is its own is the protocol's wire format: form-encoded requests, client
//! authentication, and RFC 6749 JSON errors (`{"error", "error_description"}`), never
//! problem+json. The browser's side of the protocol (authorize, consent, logout) is pages.
//! Rule: nothing here imports `api` or `pages`.

mod discovery;
pub mod doc;
mod register;
mod token;
mod wire;

use actix_web::web;

pub use discovery::{discovery, metadata_paths};

/// Every route of the adapter; registered before the pages.
pub fn routes(cfg: &mut web::ServiceConfig) {
    for path in metadata_paths() {
        cfg.service(web::resource(path).route(web::get().to(discovery)));
    }
    cfg.service(web::resource("/oauth/token").route(web::post().to(token::token)))
        .service(
            web::resource("/oauth/userinfo")
                .route(web::get().to(token::userinfo))
                .route(web::post().to(token::userinfo)),
        )
        .service(web::resource("/oauth/revoke").route(web::post().to(token::revoke)))
        .service(web::resource("/oauth/introspect").route(web::post().to(token::introspect)))
        .service(web::resource("/oauth/register").route(web::post().to(register::register)));
}
