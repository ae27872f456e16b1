//! The page session and CSRF protection.
//!
//! A page session is a login like any other (a row in the sessions table): its access token
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
use std::fmt;
use std::time::Duration;

use actix_web::ResponseError as _;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, HttpRequest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::Sha256;
use shelter_domain::auth::Authenticated;
use shelter_domain::{AuthError, LoginOutcome};

use super::error::PageError;
use crate::http::Problem;
use crate::state::AppState;

const ACCESS_COOKIE: &str = "shelter_access";
const REFRESH_COOKIE: &str = "shelter_refresh";
const CSRF_COOKIE: &str = "shelter_csrf";
/// The form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// The pages' own settings.
#[derive(Clone)]
pub struct PageSettings {
    csrf_key: [u8; 32],
    secure_cookies: bool,
    /// How long the refresh cookie is kept: as long as its token works.
    session_lifetime: Duration,
}

impl fmt::Debug for PageSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageSettings")
            .field("csrf_key", &"<redacted>")
            .field("secure_cookies", &self.secure_cookies)
            .field("session_lifetime", &self.session_lifetime)
            .finish()
    }
}

impl PageSettings {
    /// `secret` is the service's secret key: every instance derives the same CSRF key.
    pub fn new(secret: &SecretString, secure_cookies: bool, session_lifetime: Duration) -> Self {
        let mut mac = <Hmac<Sha256>>::new_from_slice(secret.expose_secret().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(b"shelter page csrf v1");
        Self {
            csrf_key: mac.finalize().into_bytes().into(),
            secure_cookies,
            session_lifetime,
        }
    }

    fn cookie(&self, name: &'static str, value: String, max_age: Duration) -> Cookie<'static> {
        Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .secure(self.secure_cookies)
            .same_site(SameSite::Lax)
            .max_age(
                actix_web::cookie::time::Duration::try_from(max_age)
                    .unwrap_or(actix_web::cookie::time::Duration::MAX),
            )
            .finish()
    }

    fn mac(&self, seed: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.csrf_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(seed.as_bytes());
        mac
    }
}

/// Cookies this request sets, added to its answer by [`finish`] whatever the handler
/// returns (a page, a redirect, an error page).
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
    let settings = &state.pages;
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
/// 403, as a page.
pub fn check_csrf(
    req: &HttpRequest,
    state: &AppState,
    presented: Option<&str>,
) -> Result<(), PageError> {
    let seed = req.cookie(CSRF_COOKIE).filter(|c| is_seed(c.value()));
    let presented: Option<Vec<u8>> = presented.and_then(|token| URL_SAFE_NO_PAD.decode(token).ok());
    match (seed, presented) {
        (Some(seed), Some(presented))
            if state
                .pages
                .mac(seed.value())
                .verify_slice(&presented)
                .is_ok() =>
        {
            Ok(())
        }
        _ => Err(PageError::forged()),
    }
}

/// Starts the page session of a login that has just succeeded.
pub fn start(req: &HttpRequest, state: &AppState, login: &LoginOutcome) {
    let settings = &state.pages;
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
        set_cookie(req, state.pages.cookie(name, String::new(), Duration::ZERO));
    }
}

/// The refresh token of this browser's page session, to log it out.
pub fn refresh_token(req: &HttpRequest) -> Option<String> {
    req.cookie(REFRESH_COOKIE).map(|c| c.value().to_owned())
}

/// The signed-in user of this request, if any: the access cookie when it is still good,
/// else a renewal with the refresh cookie. A login that has ended clears the cookies.
///
/// # Errors
/// A dependency that is down, as a 503 page.
pub async fn signed_in(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<Authenticated>, PageError> {
    if let Some(access) = req.cookie(ACCESS_COOKIE) {
        match state.auth.authenticate(access.value()).await {
            Ok(login) => {
                shelter_persistence::audit::set_actor(login.user.id());
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
            shelter_persistence::audit::set_actor(login.user.id());
            Ok(Some(login))
        }
        Err(AuthError::Unavailable(unavailable)) => Err(AuthError::Unavailable(unavailable).into()),
        Err(_) => {
            clear(req, state);
            Ok(None)
        }
    }
}

/// As [`signed_in`], sending a visitor who is not to the login page, and from there back
/// to the page they asked for (a GET's; a form sent without a session has nothing to
/// come back to).
///
/// # Errors
/// A redirect to `/login`, or a 503 page.
pub async fn require(req: &HttpRequest, state: &AppState) -> Result<Authenticated, PageError> {
    signed_in(req, state)
        .await?
        .ok_or_else(|| PageError::SignIn {
            next: (req.method() == actix_web::http::Method::GET)
                .then(|| req.uri().path_and_query().map(|p| p.as_str().to_owned()))
                .flatten(),
        })
}

/// An error a page route answered without a page (actix's own 405, say) as a page. Paths
/// that are no page keep the API's problem+json 404.
fn as_page(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let is_page_route = response.request().match_pattern().is_some();
    if is_page || !is_page_route || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let (request, _) = response.into_parts();
    let reason = status.canonical_reason().unwrap_or("Error");
    let mut page = PageError::from(Problem::new(status, reason)).error_response();
    if let Some(allow) = allow {
        page.headers_mut().insert(header::ALLOW, allow);
    }
    ServiceResponse::new(request, page)
}

/// The pages' middleware: the cookies a request set, and the headers every page has. Tokens
/// travel in page URLs (the email links), so no page may be framed, cached or referred on.
pub async fn finish(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let mut response = as_page(next.call(req).await?.map_into_boxed_body());
    let cookies = response
        .request()
        .extensions()
        .get::<Renewed>()
        .map(|renewed| renewed.0.take())
        .unwrap_or_default();
    let headers = response.headers_mut();
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie.encoded().to_string()) {
            headers.append(header::SET_COOKIE, value);
        }
    }
    let is_asset = headers
        .get(header::CACHE_CONTROL)
        .is_some_and(|value| value.as_bytes().ends_with(b"immutable"));
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}
