//! The browser session and CSRF protection, for every adapter a browser visits (the hosted
//! pages, and the OpenID Connect endpoints that must know who is signed in).
//!
//! A browser session (a "page session") is a login like any other (a row in the sessions table): its access token
//! and refresh token live in two `HttpOnly`, `SameSite=Lax` cookies (`Secure` when the
//! public URL is https). A page load presents the access token; once it has expired, the
//! refresh token renews both, as `POST /auth/refresh` would. So whatever ends the login
//! (logout, a password change, the session's sign-out, deactivation) ends the page session
//! at its next request.
//!
//! Every form carries a CSRF token: the HMAC of a random value kept in a third cookie, under
//! a key derived from `SHELTER_SECRET_KEY`. A forged form has neither the cookie's value
//! nor the key, so it cannot carry the token (signed double-submit).

use std::cell::RefCell;
use std::time::Duration;

use actix_web::body::BoxBody;
use actix_web::cookie::Cookie;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage as _, HttpRequest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac as _;
use rand::RngCore as _;
use secrecy::ExposeSecret as _;
use shelter_domain::auth::Authenticated;
use shelter_domain::{AuthError, LoginOutcome};

use super::context;
use super::cookies::{ACCESS_COOKIE, CSRF_COOKIE, PROVIDER_FLOW_COOKIE, REFRESH_COOKIE};
use super::refusal::Refusal;
use super::state::AppState;

/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// A form without this browser's CSRF token: sent from another site, or too old.
#[derive(Debug)]
pub struct Forged;

/// Cookies this request sets, added to its answer by [`write_cookies`] whatever the
/// handler returns (a page, a redirect, an error page).
#[derive(Default)]
struct Renewed(RefCell<Vec<Cookie<'static>>>);

fn set_cookie(req: &HttpRequest, cookie: Cookie<'static>) {
    let mut extensions = req.extensions_mut();
    if extensions.get::<Renewed>().is_none() {
        extensions.insert(Renewed::default());
    }
    if let Some(renewed) = extensions.get::<Renewed>() {
        let mut cookies = renewed.0.borrow_mut();
        cookies.retain(|c| c.name() != cookie.name());
        cookies.push(cookie);
    }
}

/// The CSRF token for this request's forms, starting the CSRF cookie when there is none.
pub fn csrf_token(req: &HttpRequest, state: &AppState) -> String {
    let settings = &state.browser;
    let known = req.extensions().get::<Seed>().map(|seed| seed.0.clone());
    let seed = known
        .or_else(|| {
            req.cookie(CSRF_COOKIE)
                .map(|cookie| cookie.value().to_owned())
                .filter(|value| is_seed(value))
        })
        .unwrap_or_else(|| {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            let seed = URL_SAFE_NO_PAD.encode(bytes);
            // Kept as long as a page session can last, so an open form stays valid.
            set_cookie(
                req,
                settings.cookie(CSRF_COOKIE, seed.clone(), settings.session_lifetime),
            );
            req.extensions_mut().insert(Seed(seed.clone()));
            seed
        });
    URL_SAFE_NO_PAD.encode(settings.mac(&seed).finalize().into_bytes())
}

/// The CSRF seed set earlier in this request.
struct Seed(String);

fn is_seed(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Refuses a form whose CSRF token is missing or is not this browser's.
///
/// # Errors
/// `Forged`, which each adapter answers 403 its own way.
pub fn check_csrf(
    req: &HttpRequest,
    state: &AppState,
    presented: Option<&str>,
) -> Result<(), Forged> {
    let seed = req.cookie(CSRF_COOKIE).filter(|c| is_seed(c.value()));
    let presented: Option<Vec<u8>> = presented.and_then(|token| URL_SAFE_NO_PAD.decode(token).ok());
    match (seed, presented) {
        (Some(seed), Some(presented))
            if state
                .browser
                .mac(seed.value())
                .verify_slice(&presented)
                .is_ok() =>
        {
            Ok(())
        }
        _ => Err(Forged),
    }
}

/// Starts the page session of a login that has just succeeded.
pub fn start(req: &HttpRequest, state: &AppState, login: &LoginOutcome) {
    let settings = &state.browser;
    let access_lifetime =
        Duration::from_secs(u64::try_from(login.access_token.expires_in).unwrap_or_default());
    set_cookie(
        req,
        settings.cookie(
            ACCESS_COOKIE,
            login.access_token.token.expose_secret().to_owned(),
            access_lifetime,
        ),
    );
    set_cookie(
        req,
        settings.cookie(
            REFRESH_COOKIE,
            login.refresh_token.expose().to_owned(),
            settings.session_lifetime,
        ),
    );
}

/// Forgets the page session in this browser.
pub fn clear(req: &HttpRequest, state: &AppState) {
    for name in [ACCESS_COOKIE, REFRESH_COOKIE] {
        set_cookie(
            req,
            state.browser.cookie(name, String::new(), Duration::ZERO),
        );
    }
}

/// Keeps a sign-in with a provider in flight in this browser, for its callback: the
/// `state` the provider returns is checked against it, so a callback opened in another
/// browser (a forged or stolen one) finds nothing.
pub fn keep_provider_flow(req: &HttpRequest, state: &AppState, sealed: String) {
    let lifetime = Duration::from_secs(
        u64::try_from(shelter_domain::identities::FLOW_LIFETIME.num_seconds()).unwrap_or(600),
    );
    set_cookie(
        req,
        state.browser.cookie(PROVIDER_FLOW_COOKIE, sealed, lifetime),
    );
}

/// The sign-in with a provider in flight in this browser; the cookie goes with this
/// request, used or not, so a callback is honoured once.
pub fn take_provider_flow(req: &HttpRequest, state: &AppState) -> Option<String> {
    let flow = req
        .cookie(PROVIDER_FLOW_COOKIE)
        .map(|c| c.value().to_owned());
    if flow.is_some() {
        set_cookie(
            req,
            state
                .browser
                .cookie(PROVIDER_FLOW_COOKIE, String::new(), Duration::ZERO),
        );
    }
    flow
}

/// The refresh token of this browser's page session, to log it out.
pub fn refresh_token(req: &HttpRequest) -> Option<String> {
    req.cookie(REFRESH_COOKIE).map(|c| c.value().to_owned())
}

/// The signed-in user of this request, if any: the access cookie when it is still good,
/// else a renewal with the refresh cookie. A login that has ended clears the cookies.
///
/// # Errors
/// A dependency that is down: 503.
pub async fn signed_in(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<Authenticated>, Refusal> {
    if let Some(access) = req.cookie(ACCESS_COOKIE) {
        match state.auth.authenticate(access.value()).await {
            Ok(login) => {
                context::set_actor(login.user.id());
                return Ok(Some(login));
            }
            Err(AuthError::Unavailable(unavailable)) => {
                return Err(AuthError::Unavailable(unavailable).into());
            }
            Err(_) => {}
        }
    }
    let Some(refresh) = refresh_token(req) else {
        return Ok(None);
    };
    match state.auth.refresh(&refresh).await {
        Ok(renewed) => {
            start(req, state, &renewed);
            let login = state
                .auth
                .authenticate(renewed.access_token.token.expose_secret())
                .await?;
            context::set_actor(login.user.id());
            Ok(Some(login))
        }
        Err(AuthError::Unavailable(unavailable)) => Err(AuthError::Unavailable(unavailable).into()),
        Err(_) => {
            clear(req, state);
            Ok(None)
        }
    }
}

/// Adds the cookies this request set to its answer: the middleware of every adapter that
/// uses the browser session calls it on the way out.
pub fn write_cookies(response: &mut ServiceResponse<BoxBody>) {
    let cookies = response
        .request()
        .extensions()
        .get::<Renewed>()
        .map(|renewed| renewed.0.take())
        .unwrap_or_default();
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie.encoded().to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}
