//! The JSON API: its handlers, response bodies and OpenAPI document, the WebSocket chat,
//! health and metrics. An inbound adapter over the edge (`crate::edge`), which reads its
//! requests and whose `Refusal` it answers as problem+json. Rule: nothing here imports
//! `pages`.

mod audit;
mod auth;
pub(crate) mod chat;
mod clients;
mod docs;
mod dto;
mod grants;
mod health;
mod identities;
mod jwks;
mod metrics;
mod mfa;
mod passkeys;
mod sessions;
mod users;

use actix_web::web;

pub use docs::ApiDoc;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/users")
            .route(web::post().to(users::signup))
            .route(web::get().to(users::list)),
    )
    .service(
        web::resource("/users/me")
            .route(web::get().to(users::read_me))
            .route(web::patch().to(users::update_me))
            .route(web::delete().to(users::delete_me)),
    )
    .service(
        web::resource("/users/me/mfa/totp")
            .route(web::post().to(mfa::enrol))
            .route(web::delete().to(mfa::disable)),
    )
    .service(web::resource("/users/me/mfa/totp/confirm").route(web::post().to(mfa::confirm)))
    .service(web::resource("/users/{id}/mfa/totp").route(web::delete().to(mfa::reset)))
    .service(
        web::resource("/users/me/passkeys/options")
            .route(web::post().to(passkeys::registration_options)),
    )
    .service(
        web::resource("/users/me/passkeys")
            .route(web::post().to(passkeys::register))
            .route(web::get().to(passkeys::list)),
    )
    .service(
        web::resource("/users/me/passkeys/{id}")
            .route(web::patch().to(passkeys::rename))
            .route(web::delete().to(passkeys::remove)),
    )
    .service(web::resource("/users/{id}/passkeys").route(web::get().to(passkeys::list_of_user)))
    .service(
        web::resource("/users/{id}/passkeys/{passkey_id}")
            .route(web::delete().to(passkeys::remove_of_user)),
    )
    .service(web::resource("/users/me/identities").route(web::get().to(identities::list)))
    .service(
        web::resource("/users/me/identities/{provider}")
            .route(web::delete().to(identities::unlink)),
    )
    .service(web::resource("/auth/providers").route(web::get().to(identities::providers)))
    .service(web::resource("/users/me/sessions").route(web::get().to(sessions::list)))
    .service(web::resource("/users/me/grants").route(web::get().to(grants::list)))
    .service(web::resource("/users/me/grants/{client_id}").route(web::delete().to(grants::forget)))
    .service(web::resource("/users/me/audit-events").route(web::get().to(audit::list_own)))
    .service(web::resource("/audit-events").route(web::get().to(audit::list)))
    .service(web::resource("/users/me/sessions/{id}").route(web::delete().to(sessions::end)))
    .service(
        web::resource("/users/{id}")
            .route(web::get().to(users::read))
            .route(web::patch().to(users::update_one))
            .route(web::delete().to(users::delete_one)),
    )
    .service(
        web::resource("/oauth/clients")
            .route(web::post().to(clients::create))
            .route(web::get().to(clients::list)),
    )
    .service(
        web::resource("/oauth/clients/{client_id}")
            .route(web::get().to(clients::read))
            .route(web::patch().to(clients::update))
            .route(web::delete().to(clients::delete)),
    )
    .service(
        web::resource("/oauth/clients/{client_id}/secret")
            .route(web::post().to(clients::rotate_secret)),
    )
    .service(web::resource("/auth/token").route(web::post().to(auth::token)))
    .service(web::resource("/auth/mfa").route(web::post().to(mfa::second_step)))
    .service(web::resource("/auth/mfa/options").route(web::post().to(mfa::passkey_options)))
    .service(
        web::resource("/auth/passkey/options").route(web::post().to(passkeys::sign_in_options)),
    )
    .service(web::resource("/auth/passkey").route(web::post().to(passkeys::sign_in)))
    .service(web::resource("/auth/email-code").route(web::post().to(auth::email_code)))
    .service(
        web::resource("/auth/email-code/verify").route(web::post().to(auth::verify_email_code)),
    )
    .service(web::resource("/auth/refresh").route(web::post().to(auth::refresh)))
    .service(web::resource("/auth/logout").route(web::post().to(auth::logout)))
    .service(web::resource("/auth/verify-email").route(web::post().to(auth::verify_email)))
    .service(
        web::resource("/auth/verify-email/resend").route(web::post().to(auth::resend_verification)),
    )
    .service(
        web::resource("/auth/password-recovery").route(web::post().to(auth::password_recovery)),
    )
    .service(web::resource("/auth/reset-password").route(web::post().to(auth::reset_password)))
    .service(web::resource("/.well-known/jwks.json").route(web::get().to(jwks::jwks)))
    .service(web::resource("/health/live").route(web::get().to(health::live)))
    .service(web::resource("/health/ready").route(web::get().to(health::ready)))
    .service(web::resource("/metrics").route(web::get().to(metrics::metrics)))
    .service(web::resource("/ws/{client_id}").route(web::get().to(chat::connect)))
    .configure(docs::routes);
}
