//! The browser session's cookies: their names, their flags, and the key that signs CSRF
//! tokens. Kept apart from the session's logic so that `AppState` can hold the settings.

use std::fmt;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use hmac::{Hmac, Mac as _};
use secrecy::{ExposeSecret as _, SecretString};
use sha2::Sha256;

pub(super) const ACCESS_COOKIE: &str = "shelter_access";
pub(super) const REFRESH_COOKIE: &str = "shelter_refresh";
pub(super) const CSRF_COOKIE: &str = "shelter_csrf";
/// A sign-in with an upstream provider in flight, sealed; `SameSite=Lax` lets the
/// provider's redirect back (a top-level GET) bring it.
pub(super) const PROVIDER_FLOW_COOKIE: &str = "shelter_provider_flow";

/// How the browser session's cookies are made and its CSRF tokens signed.
#[derive(Clone)]
pub struct BrowserSettings {
    csrf_key: [u8; 32],
    secure_cookies: bool,
    /// How long the refresh cookie is kept: as long as its token works.
    pub(super) session_lifetime: Duration,
}

impl fmt::Debug for BrowserSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserSettings")
            .field("csrf_key", &"<redacted>")
            .field("secure_cookies", &self.secure_cookies)
            .field("session_lifetime", &self.session_lifetime)
            .finish()
    }
}

impl BrowserSettings {
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

    pub(super) fn cookie(
        &self,
        name: &'static str,
        value: String,
        max_age: Duration,
    ) -> Cookie<'static> {
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

    pub(super) fn mac(&self, seed: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.csrf_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(seed.as_bytes());
        mac
    }
}
