//! The hosted pages: server-rendered HTML for the links in emails, sign-in, the account and
//! the admin console. An inbound adapter beside the JSON API, over the same edge: the same
//! services, rules and rate limits, the same request types for their forms, the browser
//! session and CSRF tokens of `edge::browser`. What is theirs is the markup and errors
//! shown as pages. Rule: nothing here imports `api`.

mod account;
mod admin;
mod assets;
mod authorize;
mod clients;
mod entry;
mod error;
mod forms;
mod frame;
mod layout;
mod passwordless;
mod providers;
mod sign_in;

use actix_web::middleware::from_fn;
use actix_web::web;

/// Every page, in one scope whose middleware gives each answer the pages' headers and the
/// cookies the request renewed. Registered after the API, it serves what the API does not.
pub fn scope() -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::scope("")
        .wrap(from_fn(frame::finish))
        .configure(signing_in)
        .configure(account)
        .configure(administration)
}

/// Signing in and out, signing up, the email landing pages, the provider's browser side and the assets.
fn signing_in(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/").route(web::get().to(sign_in::home)))
        .service(web::resource(assets::STYLESHEET.route()).route(web::get().to(assets::stylesheet)))
        .service(
            web::resource("/login")
                .route(web::get().to(sign_in::login_form))
                .route(web::post().to(sign_in::login)),
        )
        .service(
            web::resource("/oauth/authorize")
                .route(web::get().to(authorize::authorize_get))
                .route(web::post().to(authorize::authorize_post)),
        )
        .service(web::resource("/oauth/consent").route(web::post().to(authorize::consent)))
        .service(
            web::resource("/oauth/logout")
                .route(web::get().to(authorize::logout_get))
                .route(web::post().to(authorize::logout_post)),
        )
        .service(web::resource("/login/code").route(web::post().to(sign_in::second_step)))
        .service(
            web::resource("/login/email-code")
                .route(web::get().to(entry::email_code_form))
                .route(web::post().to(entry::email_code)),
        )
        .service(
            web::resource("/login/email-code/verify")
                .route(web::post().to(passwordless::email_code)),
        )
        .service(
            web::resource("/login/email")
                .route(web::get().to(entry::email_link_form))
                .route(web::post().to(passwordless::email_link)),
        )
        .service(web::resource("/login/passkey").route(web::post().to(passwordless::passkey)))
        .service(web::resource("/auth/providers/{id}/start").route(web::get().to(providers::start)))
        .service(
            web::resource("/auth/providers/{id}/callback")
                .route(web::get().to(providers::callback)),
        )
        .service(web::resource("/auth/providers/confirm").route(web::post().to(providers::confirm)))
        .service(
            web::resource("/auth/providers/confirm/passkey")
                .route(web::post().to(providers::confirm_passkey)),
        )
        .service(web::resource(assets::PASSKEY_SCRIPT.route()).route(web::get().to(assets::script)))
        .service(
            web::resource("/logout")
                .route(web::get().to(sign_in::logout_form))
                .route(web::post().to(sign_in::logout)),
        )
        .service(
            web::resource("/signup")
                .route(web::get().to(entry::signup_form))
                .route(web::post().to(entry::signup)),
        )
        .service(
            web::resource("/verify-email")
                .route(web::get().to(entry::verify_form))
                .route(web::post().to(entry::verify)),
        )
        .service(
            web::resource("/verify-email/resend")
                .route(web::get().to(entry::resend_form))
                .route(web::post().to(entry::resend)),
        )
        .service(
            web::resource("/forgot-password")
                .route(web::get().to(entry::forgot_form))
                .route(web::post().to(entry::forgot)),
        )
        .service(
            web::resource("/reset-password")
                .route(web::get().to(entry::reset_form))
                .route(web::post().to(entry::reset)),
        );
}

/// The signed-in user's own account.
fn account(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/account").route(web::get().to(account::show)))
        .service(web::resource("/account/profile").route(web::post().to(account::profile)))
        .service(web::resource("/account/email").route(web::post().to(account::email)))
        .service(web::resource("/account/password").route(web::post().to(account::password)))
        .service(
            web::resource("/account/sessions/{id}/end").route(web::post().to(account::end_session)),
        )
        .service(
            web::resource("/account/apps/{client_id}/revoke")
                .route(web::post().to(account::revoke_app)),
        )
        .service(
            web::resource("/account/passkeys/options")
                .route(web::post().to(account::passkey_options)),
        )
        .service(web::resource("/account/passkeys").route(web::post().to(account::passkey_add)))
        .service(
            web::resource("/account/identities/{provider}/link")
                .route(web::post().to(providers::link)),
        )
        .service(
            web::resource("/account/identities/{provider}/unlink")
                .route(web::post().to(providers::unlink)),
        )
        .service(
            web::resource("/account/passkeys/{id}/rename")
                .route(web::post().to(account::passkey_rename)),
        )
        .service(
            web::resource("/account/passkeys/{id}/remove")
                .route(web::post().to(account::passkey_remove)),
        )
        .service(web::resource("/account/totp").route(web::post().to(account::totp_enrol)))
        .service(
            web::resource("/account/totp/confirm").route(web::post().to(account::totp_confirm)),
        )
        .service(
            web::resource("/account/totp/disable").route(web::post().to(account::totp_disable)),
        );
}

/// The superusers' pages.
fn administration(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/admin/users").route(web::get().to(admin::list)))
        .service(web::resource("/admin/users/{id}").route(web::get().to(admin::detail)))
        .service(web::resource("/admin/users/{id}/change").route(web::post().to(admin::change)))
        .service(
            web::resource("/admin/users/{id}/passkeys/{passkey_id}/remove")
                .route(web::post().to(admin::remove_passkey)),
        )
        .service(
            web::resource("/admin/clients")
                .route(web::get().to(clients::list))
                .route(web::post().to(clients::create)),
        )
        .service(web::resource("/admin/clients/{id}").route(web::get().to(clients::detail)))
        .service(
            web::resource("/admin/clients/{id}/redirect-uris")
                .route(web::post().to(clients::redirect_uris)),
        )
        .service(
            web::resource("/admin/clients/{id}/secret")
                .route(web::post().to(clients::rotate_secret)),
        )
        .service(web::resource("/admin/clients/{id}/delete").route(web::post().to(clients::delete)))
        .service(
            web::resource("/admin/users/{id}/delete")
                .route(web::get().to(admin::delete_form))
                .route(web::post().to(admin::delete)),
        );
}
