//! The JSON API's response bodies. They live only here: the domain has no serde, and the
//! persistence entities never reach a client.

use std::fmt;

use chrono::{DateTime, Datelike as _, SecondsFormat, Timelike as _, Utc};
use serde::Serialize;
use shelter_domain::clients::{Client, ClientUri};
use shelter_domain::{ListedUser, SecretToken, Session, SessionId, User};
use utoipa::ToSchema;

/// A successful login or refresh.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT (HS256) to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Lifetime of the access token in seconds.
    #[schema(example = 1800)]
    pub expires_in: i64,
    /// Opaque; exchange it at `/auth/refresh` for a new pair. Single use.
    pub refresh_token: String,
}

/// A new TOTP secret, not active until confirmed.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Base32, to type into an authenticator app.
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    pub secret: String,
    #[schema(
        example = "otpauth://totp/Shelter:ann%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Shelter"
    )]
    pub otpauth_uri: String,
}

/// `PublicKeyCredentialRequestOptionsJSON` for the second step, listing the user's
/// passkeys.
#[derive(Debug, Serialize, ToSchema)]
pub struct MfaPasskeyOptions {
    #[serde(rename = "publicKey")]
    #[schema(value_type = Object)]
    pub public_key: serde_json::Value,
}

/// Shown once, when TOTP is confirmed; each works once instead of a code.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    #[schema(example = json!(["abcd-efgh-ijkl-mnop"]))]
    pub recovery_codes: Vec<String>,
}

/// The answer to a password-recovery request, whether or not the email is known.
#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    #[schema(example = "If this email is registered, a reset link is on its way")]
    pub detail: &'static str,
}

// Borrowed from the user or the store's row, so that a page of a hundred is written with
// nothing copied per user, and written by `write_json`; the derived `Serialize` is only
// what the tests hold that to. (Its doc comment is the OpenAPI description.)
/// A user as clients see it: never a password or a hash.
#[expect(
    clippy::struct_excessive_bools,
    reason = "the contract's user resource has these flags"
)]
#[derive(Debug, ToSchema)]
#[cfg_attr(test, derive(Serialize))]
pub struct UserResponse<'a> {
    #[schema(example = 1)]
    pub id: i64,
    #[schema(example = "ann@example.com")]
    pub email: &'a str,
    #[schema(example = "ann")]
    pub username: &'a str,
    pub is_active: bool,
    pub is_superuser: bool,
    pub email_verified: bool,
    /// Whether login needs a TOTP code.
    pub mfa_enabled: bool,
    /// RFC 3339, UTC.
    #[schema(value_type = String, example = "2026-11-23T19:42:00Z")]
    pub created_at: Rfc3339,
    /// RFC 3339, UTC.
    #[schema(value_type = String, example = "2026-11-23T19:42:00Z")]
    pub updated_at: Rfc3339,
}

/// One live login of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionResponse {
    #[schema(example = "0b5c8f3e-2d1a-4c6b-9e7f-1a2b3c4d5e6f")]
    pub id: String,
    /// RFC 3339, UTC.
    #[schema(example = "2026-11-23T19:42:00Z")]
    pub created_at: String,
    /// The last login or refresh (RFC 3339, UTC); using an access token does not count.
    #[schema(example = "2026-11-23T19:42:00Z")]
    pub last_used_at: String,
    /// When its refresh token expires unless refreshed (RFC 3339, UTC).
    #[schema(example = "2026-12-23T19:42:00Z")]
    pub expires_at: String,
    /// As the client sent it at login, at most 512 characters; `null` without one.
    pub user_agent: Option<String>,
    /// The client's address at login, as the rate limiter sees it.
    #[schema(example = "203.0.113.7")]
    pub ip: Option<String>,
    /// Whether this is the login of the access token used for this request.
    pub current: bool,
}

impl SessionResponse {
    pub fn new(session: &Session, current: SessionId) -> Self {
        Self {
            id: session.id.to_string(),
            created_at: rfc3339(session.created_at),
            last_used_at: rfc3339(session.last_used_at),
            expires_at: rfc3339(session.expires_at),
            user_agent: session.client.user_agent().map(str::to_owned),
            ip: session.client.ip.map(|ip| ip.to_string()),
            current: session.id == current,
        }
    }
}

/// The caller's live logins, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionResponse>,
}

pub fn rfc3339(time: DateTime<Utc>) -> String {
    Rfc3339(time).to_string()
}

/// A time as the API writes it: RFC 3339, UTC, in whole seconds (`2026-11-23T19:42:00Z`),
/// as chrono's `to_rfc3339_opts(Secs, true)` writes it. Written digit by digit into a
/// buffer on the stack for the years 0 to 9999 (every time a store holds): a page of users
/// has two hundred, and chrono's general formatter cost more than reading them.
#[derive(Debug, Clone, Copy)]
pub struct Rfc3339(pub DateTime<Utc>);

impl Rfc3339 {
    fn with_text<R>(self, then: impl FnOnce(&str) -> R) -> R {
        let time = self.0.naive_utc();
        let Ok(year @ 0..=9999) = u32::try_from(time.year()) else {
            return then(&self.0.to_rfc3339_opts(SecondsFormat::Secs, true));
        };
        // A leap second is stored as second 59 with a nanosecond past 10^9, and shown as 60.
        let second = time.second() + time.nanosecond() / 1_000_000_000;
        let mut text = *b"0000-00-00T00:00:00Z";
        for (at, value, digits) in [
            (0, year, 4),
            (5, time.month(), 2),
            (8, time.day(), 2),
            (11, time.hour(), 2),
            (14, time.minute(), 2),
            (17, second, 2),
        ] {
            let mut rest = value;
            for place in text[at..at + digits].iter_mut().rev() {
                *place = b'0' + u8::try_from(rest % 10).unwrap_or_default();
                rest /= 10;
            }
        }
        then(std::str::from_utf8(&text).unwrap_or_default())
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_text(|text| f.write_str(text))
    }
}

impl Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.with_text(|text| serializer.serialize_str(text))
    }
}

impl UserResponse<'_> {
    /// Appends the user's JSON to `out`: what `#[derive(Serialize)]` writes, in a dozen
    /// appends where `serde_json` made some sixty small writes, a fifth of a page of users'
    /// time.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let flag = |value: bool| if value { "true" } else { "false" };
        out.extend_from_slice(br#"{"id":"#);
        out.extend_from_slice(itoa::Buffer::new().format(self.id).as_bytes());
        out.extend_from_slice(br#","email":"#);
        json_string(out, self.email);
        out.extend_from_slice(br#","username":"#);
        json_string(out, self.username);
        for (key, value) in [
            (r#","is_active":"#, flag(self.is_active)),
            (r#","is_superuser":"#, flag(self.is_superuser)),
            (r#","email_verified":"#, flag(self.email_verified)),
            (r#","mfa_enabled":"#, flag(self.mfa_enabled)),
        ] {
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(value.as_bytes());
        }
        for (key, time) in [
            (r#","created_at":""#, self.created_at),
            (r#","updated_at":""#, self.updated_at),
        ] {
            out.extend_from_slice(key.as_bytes());
            // Digits, dashes, colons and letters: nothing to escape.
            time.with_text(|text| out.extend_from_slice(text.as_bytes()));
            out.push(b'"');
        }
        out.push(b'}');
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.write_json(&mut out);
        out
    }
}

/// `text` as a JSON string. Only a quote, a backslash or a control character needs
/// escaping, which no valid email or username has: those few go through `serde_json`.
fn json_string(out: &mut Vec<u8>, text: &str) {
    if text
        .bytes()
        .any(|byte| byte < 0x20 || byte == b'"' || byte == b'\\')
    {
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

impl<'a> From<ListedUser<&'a str>> for UserResponse<'a> {
    fn from(user: ListedUser<&'a str>) -> Self {
        Self {
            id: user.id.get(),
            email: user.email,
            username: user.username,
            is_active: user.is_active,
            is_superuser: user.is_superuser,
            email_verified: user.email_verified,
            mfa_enabled: user.mfa_enabled,
            created_at: Rfc3339(user.created_at),
            updated_at: Rfc3339(user.updated_at),
        }
    }
}

impl<'a> From<&'a User> for UserResponse<'a> {
    fn from(user: &'a User) -> Self {
        Self::from(user.summary())
    }
}

// The schema of what `users::PageWriter` writes.
/// One page of users.
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "written by PageWriter, a user at a time; described here"
)]
pub struct UserPage {
    pub items: Vec<UserResponse<'static>>,
    /// All the users the filters show, not only this page's.
    pub total: u64,
    pub skip: u64,
    pub limit: u64,
}

/// `{"status": "ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// A registered OAuth client with every setting.
#[derive(Serialize, ToSchema)]
pub struct ClientResponse {
    pub client_id: String,
    /// Only in the answer that creates a confidential client or rotates its secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub name: String,
    #[serde(rename = "type")]
    #[schema(example = "confidential")]
    pub client_type: &'static str,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<&'static str>,
    pub scopes: Vec<&'static str>,
    pub trusted: bool,
    pub require_pkce: bool,
    pub introspection: bool,
    pub audience: Option<String>,
    pub backchannel_logout_uri: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl ClientResponse {
    pub fn new(client: &Client, secret: Option<&SecretToken>) -> Self {
        let settings = &client.settings;
        let uris = |list: &[ClientUri]| list.iter().map(|uri| uri.as_str().to_owned()).collect();
        Self {
            client_id: client.id.as_str().to_owned(),
            client_secret: secret.map(|secret| secret.expose().to_owned()),
            name: settings.name.as_str().to_owned(),
            client_type: client.kind.as_str(),
            redirect_uris: uris(&settings.redirect_uris),
            post_logout_redirect_uris: uris(&settings.post_logout_redirect_uris),
            grant_types: settings.grant_types.iter().map(|g| g.as_str()).collect(),
            scopes: settings.scopes.iter().map(|s| s.as_str()).collect(),
            trusted: settings.trusted,
            require_pkce: settings.require_pkce,
            introspection: settings.introspection,
            audience: settings.audience.clone(),
            backchannel_logout_uri: settings
                .backchannel_logout_uri
                .as_ref()
                .map(|uri| uri.as_str().to_owned()),
            created_at: rfc3339(client.created_at),
            updated_at: rfc3339(client.updated_at),
        }
    }
}

/// Every registered client, oldest first.
#[derive(Serialize, ToSchema)]
pub struct ClientList {
    pub items: Vec<ClientResponse>,
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone as _};

    use super::*;

    #[test]
    fn a_user_is_written_as_serde_writes_it() {
        let time = Utc.with_ymd_and_hms(2026, 11, 23, 19, 42, 0).single();
        let time = Rfc3339(time.expect("a valid time"));
        for (email, username) in [
            ("ann@example.com", "ann"),
            ("\"quoted\"@example.com", "back\\slash"),
            ("tab\t@example.com", "nul\u{0}\u{1f}"),
            ("unit@example.com", "separator\u{1f}"),
            ("zoë@exämple.com", "名前🙂\u{7f}"),
        ] {
            for flags in 0..16_u8 {
                let user = UserResponse {
                    id: i64::from(flags) - 8,
                    email,
                    username,
                    is_active: flags & 1 != 0,
                    is_superuser: flags & 2 != 0,
                    email_verified: flags & 4 != 0,
                    mfa_enabled: flags & 8 != 0,
                    created_at: time,
                    updated_at: Rfc3339(time.0 + chrono::Duration::seconds(i64::from(flags))),
                };
                let serde = serde_json::to_vec(&user).expect("serialised");
                assert_eq!(
                    String::from_utf8(user.to_json()),
                    String::from_utf8(serde),
                    "{user:?}"
                );
            }
        }
    }

    #[test]
    fn times_are_written_as_chrono_writes_them() {
        let times = [
            Utc.with_ymd_and_hms(2026, 11, 23, 19, 42, 0).single(),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).single(),
            Utc.with_ymd_and_hms(0, 2, 29, 23, 59, 59).single(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single(),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).single(),
            Utc.with_ymd_and_hms(-1, 6, 15, 8, 5, 9).single(),
            Utc.timestamp_opt(1_764_000_000, 999_999_999).single(),
            // A leap second.
            NaiveDate::from_ymd_opt(2016, 12, 31)
                .and_then(|day| day.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
                .map(|time| time.and_utc()),
        ];
        for time in times.into_iter().map(|time| time.expect("a valid time")) {
            let chrono = time.to_rfc3339_opts(SecondsFormat::Secs, true);
            assert_eq!(rfc3339(time), chrono);
            let json = serde_json::to_string(&Rfc3339(time)).expect("serialised");
            assert_eq!(json, format!("\"{chrono}\""));
        }
    }
}
