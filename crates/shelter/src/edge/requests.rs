//! The request bodies both inbound adapters read: the JSON API as JSON (or an OAuth2
//! form), the hosted pages as the fields of their forms. Each parses once into domain
//! values (`FromBody`), collecting every field error for one 422. The domain has no serde.

use std::collections::BTreeSet;

use garde::Validate;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;
use shelter_domain::clients::{
    ClientChanges, ClientName, ClientSettings, ClientType, ClientUri, GrantType, Scope,
};
use shelter_domain::passkeys::PasskeyName;
use shelter_domain::{AccountUpdate, EmailAddress, Login, NewAccount, Password, Username};
use utoipa::{IntoParams, ToSchema};

use super::body::{Fields, FromBody};

/// `POST /users`.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// A valid email address; stored lower-cased, unique ignoring case.
    #[garde(skip)]
    #[schema(value_type = String, format = "email", example = "ann@example.com")]
    pub email: Option<String>,
    /// 3–50 letters, digits, `_`, `-` or `.`; unique ignoring case.
    #[garde(skip)]
    #[schema(value_type = String, min_length = 3, max_length = 50, pattern = "^[A-Za-z0-9_.-]+$", example = "ann")]
    pub username: Option<String>,
    /// 8–128 characters.
    #[garde(skip)]
    #[schema(value_type = String, format = "password", min_length = 8, max_length = 128)]
    pub password: Option<String>,
}

impl FromBody for SignupRequest {
    type Parsed = NewAccount;

    fn parse(self, fields: &mut Fields) -> Option<NewAccount> {
        let email = fields.require("email", self.email.as_deref(), EmailAddress::parse);
        let username = fields.require("username", self.username.as_deref(), Username::parse);
        let password = fields.require("password", self.password.as_deref(), Password::parse);
        Some(NewAccount {
            email: email?,
            username: username?,
            password: password?,
        })
    }
}

/// `PATCH /users/me` and `PATCH /users/{id}`: any subset of the fields.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    #[garde(skip)]
    #[schema(value_type = Option<String>, format = "email")]
    pub email: Option<String>,
    #[garde(skip)]
    #[schema(value_type = Option<String>, min_length = 3, max_length = 50, pattern = "^[A-Za-z0-9_.-]+$")]
    pub username: Option<String>,
    #[garde(skip)]
    #[schema(value_type = Option<String>, format = "password", min_length = 8, max_length = 128)]
    pub password: Option<String>,
    /// The caller's own current password; required to change `email` or `password`.
    #[garde(skip)]
    #[schema(value_type = Option<String>, format = "password")]
    pub current_password: Option<String>,
    /// Superusers only.
    #[garde(skip)]
    pub is_active: Option<bool>,
    /// Superusers only.
    #[garde(skip)]
    pub is_superuser: Option<bool>,
}

impl FromBody for UpdateRequest {
    type Parsed = AccountUpdate;

    fn parse(self, fields: &mut Fields) -> Option<AccountUpdate> {
        Some(AccountUpdate {
            email: fields.parse("email", self.email.as_deref(), EmailAddress::parse),
            username: fields.parse("username", self.username.as_deref(), Username::parse),
            password: fields.parse("password", self.password.as_deref(), Password::parse),
            current_password: self.current_password.map(SecretString::from),
            is_active: self.is_active,
            is_superuser: self.is_superuser,
        })
    }
}

/// `POST /auth/token`, as an OAuth2 password form or the same fields as JSON.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Email or username.
    #[garde(required, length(chars, min = 1))]
    #[schema(value_type = String, min_length = 1, example = "ann@example.com")]
    pub username: Option<String>,
    #[garde(required, length(chars, min = 1))]
    #[schema(value_type = String, format = "password", min_length = 1)]
    pub password: Option<String>,
    /// OAuth2's `password` grant; optional, and any other value is refused.
    #[garde(custom(is_password_grant))]
    #[schema(value_type = Option<String>, example = "password")]
    pub grant_type: Option<String>,
    /// Accepted for OAuth2 clients and ignored.
    #[garde(skip)]
    pub scope: Option<String>,
    /// Accepted for OAuth2 clients and ignored.
    #[garde(skip)]
    pub client_id: Option<String>,
    /// Accepted for OAuth2 clients and ignored.
    #[garde(skip)]
    #[schema(format = "password")]
    pub client_secret: Option<String>,
}

impl FromBody for TokenRequest {
    type Parsed = (Login, SecretString);

    fn parse(self, _: &mut Fields) -> Option<(Login, SecretString)> {
        // garde has required both; an unparsable login is a failed login, not a 422, so
        // that the answer says nothing about which logins could exist.
        Some((
            Login::parse(&self.username?),
            SecretString::from(self.password?),
        ))
    }
}

// Hand-written so the password can never be printed.
impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[expect(
    clippy::ref_option,
    clippy::trivially_copy_pass_by_ref,
    reason = "garde's custom-rule signature"
)]
fn is_password_grant(value: &Option<String>, (): &()) -> garde::Result {
    match value.as_deref() {
        None | Some("password") => Ok(()),
        Some(_) => Err(garde::Error::new("must be \"password\"")),
    }
}

/// `POST /auth/refresh` and `POST /auth/logout`.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[garde(required, length(chars, min = 1, max = 512))]
    #[schema(value_type = String, min_length = 1, max_length = 512)]
    pub refresh_token: Option<String>,
}

impl FromBody for RefreshRequest {
    type Parsed = String;

    fn parse(self, _: &mut Fields) -> Option<String> {
        self.refresh_token
    }
}

/// `POST /users/me/mfa/totp`.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpEnrolRequest {
    #[garde(required, length(chars, min = 1, max = 1024))]
    #[schema(value_type = String, format = "password", min_length = 1, max_length = 1024)]
    pub current_password: Option<String>,
}

impl FromBody for TotpEnrolRequest {
    type Parsed = SecretString;

    fn parse(self, _: &mut Fields) -> Option<SecretString> {
        self.current_password.map(SecretString::from)
    }
}

/// `POST /users/me/mfa/totp/confirm`.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirmRequest {
    /// The six digits the authenticator app shows now.
    #[garde(required, length(chars, min = 1, max = 64))]
    #[schema(value_type = String, min_length = 1, max_length = 64, example = "123456")]
    pub code: Option<String>,
}

impl FromBody for TotpConfirmRequest {
    type Parsed = String;

    fn parse(self, _: &mut Fields) -> Option<String> {
        self.code
    }
}

/// `DELETE /users/me/mfa/totp`.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpDisableRequest {
    #[garde(required, length(chars, min = 1, max = 1024))]
    #[schema(value_type = String, format = "password", min_length = 1, max_length = 1024)]
    pub current_password: Option<String>,
    /// A TOTP code or a recovery code.
    #[garde(required, length(chars, min = 1, max = 64))]
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    pub code: Option<String>,
}

impl FromBody for TotpDisableRequest {
    type Parsed = (SecretString, String);

    fn parse(self, _: &mut Fields) -> Option<(SecretString, String)> {
        Some((SecretString::from(self.current_password?), self.code?))
    }
}

/// `POST /auth/mfa`.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaRequest {
    /// From the 403 `mfa_required` of `POST /auth/token`.
    #[garde(required, length(chars, min = 1, max = 512))]
    #[schema(value_type = String, min_length = 1, max_length = 512)]
    pub mfa_token: Option<String>,
    /// A TOTP code or a recovery code; or, instead, `credential`.
    #[garde(length(chars, min = 1, max = 64))]
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    pub code: Option<String>,
    /// A passkey's answer (`AuthenticationResponseJSON`) to the options of
    /// `POST /auth/mfa/options`; or, instead, `code`.
    #[garde(skip)]
    #[schema(value_type = Object)]
    pub credential: Option<Value>,
}

/// What a second step presents.
pub enum SecondProof {
    Code(String),
    Passkey(Value),
}

impl FromBody for MfaRequest {
    type Parsed = (String, SecondProof);

    fn parse(self, fields: &mut Fields) -> Option<(String, SecondProof)> {
        let proof = match (self.code, self.credential) {
            (Some(code), None) => Some(SecondProof::Code(code)),
            (None, Some(credential)) => {
                credential_object(fields, credential).map(SecondProof::Passkey)
            }
            (None, None) => {
                fields.note("code", "a code or a credential is required");
                None
            }
            (Some(_), Some(_)) => {
                fields.note("credential", "send a code or a credential, not both");
                None
            }
        };
        Some((self.mfa_token?, proof?))
    }
}

/// A WebAuthn answer must be a JSON object; what is inside is the library's to judge.
fn credential_object(fields: &mut Fields, credential: Value) -> Option<Value> {
    if credential.is_object() {
        Some(credential)
    } else {
        fields.note(
            "credential",
            "must be an object (the WebAuthn JSON response)",
        );
        None
    }
}

fn required_credential(fields: &mut Fields, credential: Option<Value>) -> Option<Value> {
    let Some(credential) = credential else {
        fields.note("credential", "is required");
        return None;
    };
    credential_object(fields, credential)
}

/// `POST /auth/mfa/options`.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaOptionsRequest {
    #[garde(required, length(chars, min = 1, max = 512))]
    #[schema(value_type = String, min_length = 1, max_length = 512)]
    pub mfa_token: Option<String>,
}

impl FromBody for MfaOptionsRequest {
    type Parsed = String;

    fn parse(self, _: &mut Fields) -> Option<String> {
        self.mfa_token
    }
}

/// `POST /users/me/passkeys/options` and `POST /auth/passkey/options`: an empty object.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

impl FromBody for EmptyRequest {
    type Parsed = ();

    fn parse(self, _: &mut Fields) -> Option<()> {
        Some(())
    }
}

/// `POST /users/me/passkeys`.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRegistrationRequest {
    /// From `POST /users/me/passkeys/options`; works once, for 5 minutes.
    #[garde(required, length(chars, min = 1, max = 512))]
    #[schema(value_type = String, min_length = 1, max_length = 512)]
    pub flow_token: Option<String>,
    /// What the user calls it: 1 to 64 characters.
    #[garde(skip)]
    #[schema(value_type = String, min_length = 1, max_length = 64, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub name: Option<String>,
    /// The authenticator's `RegistrationResponseJSON`.
    #[garde(skip)]
    #[schema(value_type = Object)]
    pub credential: Option<Value>,
}

impl FromBody for PasskeyRegistrationRequest {
    type Parsed = (String, PasskeyName, Value);

    fn parse(self, fields: &mut Fields) -> Option<Self::Parsed> {
        let name = fields.require("name", self.name.as_deref(), PasskeyName::parse);
        let credential = required_credential(fields, self.credential);
        Some((self.flow_token?, name?, credential?))
    }
}

/// `PATCH /users/me/passkeys/{id}`.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRenameRequest {
    #[garde(skip)]
    #[schema(value_type = String, min_length = 1, max_length = 64, pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    pub name: Option<String>,
}

impl FromBody for PasskeyRenameRequest {
    type Parsed = PasskeyName;

    fn parse(self, fields: &mut Fields) -> Option<PasskeyName> {
        fields.require("name", self.name.as_deref(), PasskeyName::parse)
    }
}

/// `POST /auth/passkey`.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeySignInRequest {
    /// From `POST /auth/passkey/options`; works once, for 5 minutes.
    #[garde(required, length(chars, min = 1, max = 512))]
    #[schema(value_type = String, min_length = 1, max_length = 512)]
    pub flow_token: Option<String>,
    /// The authenticator's `AuthenticationResponseJSON`.
    #[garde(skip)]
    #[schema(value_type = Object)]
    pub credential: Option<Value>,
}

impl FromBody for PasskeySignInRequest {
    type Parsed = (String, Value);

    fn parse(self, fields: &mut Fields) -> Option<(String, Value)> {
        let credential = required_credential(fields, self.credential);
        Some((self.flow_token?, credential?))
    }
}

/// `POST /auth/email-code/verify`.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailCodeRequest {
    #[garde(skip)]
    #[schema(value_type = String, format = "email")]
    pub email: Option<String>,
    /// The six digits of the email.
    #[garde(required, length(chars, min = 1, max = 32))]
    #[schema(value_type = String, min_length = 1, max_length = 32, example = "042917")]
    pub code: Option<String>,
}

impl FromBody for EmailCodeRequest {
    type Parsed = (EmailAddress, String);

    fn parse(self, fields: &mut Fields) -> Option<(EmailAddress, String)> {
        let email = fields.require("email", self.email.as_deref(), EmailAddress::parse);
        Some((email?, self.code?))
    }
}

/// `POST /auth/verify-email`.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    /// The token from the welcome or verification email.
    #[garde(required, length(chars, min = 1, max = 512))]
    #[schema(value_type = String, min_length = 1, max_length = 512)]
    pub token: Option<String>,
}

impl FromBody for VerifyEmailRequest {
    type Parsed = String;

    fn parse(self, _: &mut Fields) -> Option<String> {
        self.token
    }
}

/// `POST /auth/password-recovery` and `POST /auth/verify-email/resend`.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    #[garde(skip)]
    #[schema(value_type = String, format = "email")]
    pub email: Option<String>,
}

impl FromBody for EmailRequest {
    type Parsed = EmailAddress;

    fn parse(self, fields: &mut Fields) -> Option<EmailAddress> {
        fields.require("email", self.email.as_deref(), EmailAddress::parse)
    }
}

/// `POST /auth/reset-password`.
#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The token from the reset email.
    #[garde(required, length(chars, min = 1, max = 512))]
    #[schema(value_type = String, min_length = 1, max_length = 512)]
    pub token: Option<String>,
    /// 8–128 characters.
    #[garde(skip)]
    #[schema(value_type = String, format = "password", min_length = 8, max_length = 128)]
    pub new_password: Option<String>,
}

impl FromBody for ResetPasswordRequest {
    type Parsed = (String, Password);

    fn parse(self, fields: &mut Fields) -> Option<(String, Password)> {
        let password = fields.require(
            "new_password",
            self.new_password.as_deref(),
            Password::parse,
        );
        Some((self.token?, password?))
    }
}

/// `GET /users` query. All are optional; anything else in the query is ignored.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only users whose email or username contains this, ignoring case (at most 254
    /// characters, no control characters; blank: everyone).
    #[param(value_type = Option<String>, max_length = 254, pattern = "^[^\\u0000-\\u001F\\u007F]*$")]
    pub q: Option<String>,
    /// Only active (`true`) or inactive (`false`) users.
    #[param(value_type = Option<bool>)]
    pub is_active: Option<String>,
    /// Only superusers (`true`) or only the others (`false`).
    #[param(value_type = Option<bool>)]
    pub is_superuser: Option<String>,
    /// Rows to skip, 0 to 2⁶³ − 1 (default 0).
    #[param(value_type = Option<u64>, minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    pub skip: Option<String>,
    /// Rows to return, 1–100 (default 100).
    #[param(value_type = Option<u64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// The most URIs of one kind a client may register.
const MAX_CLIENT_URIS: usize = 20;

/// Each of `raw` as a client URI, every bad one noted as `field[i]`.
fn client_uris(fields: &mut Fields, field: &str, raw: Option<&[String]>) -> Option<Vec<ClientUri>> {
    let raw = raw?;
    if raw.len() > MAX_CLIENT_URIS {
        fields.note(field, format!("must list at most {MAX_CLIENT_URIS} URIs"));
        return None;
    }
    let parsed: Vec<_> = raw
        .iter()
        .enumerate()
        .map(|(i, uri)| fields.parse(&format!("{field}[{i}]"), Some(uri), ClientUri::parse))
        .collect();
    parsed.into_iter().collect()
}

/// Each of `raw` as one of the protocol's words (`T::parse`), the set of them.
fn words<T: Ord>(
    fields: &mut Fields,
    field: &str,
    raw: Option<&[String]>,
    parse: impl Fn(&str) -> Option<T>,
    known: &str,
) -> Option<BTreeSet<T>> {
    let parsed: Vec<_> = raw?
        .iter()
        .enumerate()
        .map(|(i, word)| {
            fields.parse(&format!("{field}[{i}]"), Some(word), |w| {
                parse(w).ok_or_else(|| format!("must be one of {known}"))
            })
        })
        .collect();
    parsed.into_iter().collect()
}

fn client_words(
    fields: &mut Fields,
    grant_types: Option<&[String]>,
    scopes: Option<&[String]>,
) -> (Option<BTreeSet<GrantType>>, Option<BTreeSet<Scope>>) {
    let grants = words(
        fields,
        "grant_types",
        grant_types,
        GrantType::parse,
        "authorization_code, refresh_token, client_credentials",
    );
    let scopes = words(
        fields,
        "scopes",
        scopes,
        Scope::parse,
        "openid, profile, email, offline_access",
    );
    (grants, scopes)
}

/// `POST /oauth/clients`: only `name` is required (and `redirect_uris` unless the client
/// only uses `client_credentials`).
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientRequest {
    /// Shown to users on the consent page; 1–100 characters.
    #[garde(skip)]
    #[schema(value_type = String, min_length = 1, max_length = 100, example = "Grafana")]
    pub name: Option<String>,
    /// Exact strings; `https`, or `http` on 127.0.0.1, `[::1]` or localhost; no fragment.
    #[garde(skip)]
    #[schema(example = json!(["https://grafana.example.com/login/generic_oauth"]))]
    pub redirect_uris: Option<Vec<String>>,
    #[garde(skip)]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `confidential` (the default: it gets a secret) or `public` (PKCE, no secret).
    #[garde(skip)]
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>, example = "confidential")]
    pub client_type: Option<String>,
    /// Default `["authorization_code", "refresh_token"]`.
    #[garde(skip)]
    #[schema(min_items = 1, example = json!(["authorization_code", "refresh_token"]))]
    pub grant_types: Option<Vec<String>>,
    /// Default `["openid", "profile", "email", "offline_access"]`.
    #[garde(skip)]
    #[schema(min_items = 1, example = json!(["openid", "email"]))]
    pub scopes: Option<Vec<String>>,
    /// Skip the consent page (a first-party application). Default `false`.
    #[garde(skip)]
    pub trusted: Option<bool>,
    /// Require PKCE of a confidential client too. Default `false`.
    #[garde(skip)]
    pub require_pkce: Option<bool>,
    /// May introspect every token (a resource server). Default `false`.
    #[garde(skip)]
    pub introspection: Option<bool>,
    /// The `aud` of its access tokens; its client id when absent.
    #[garde(skip)]
    #[schema(min_length = 1, max_length = 200)]
    pub audience: Option<String>,
    #[garde(skip)]
    #[schema(format = "uri", min_length = 1, max_length = 2000)]
    pub backchannel_logout_uri: Option<String>,
}

impl FromBody for ClientRequest {
    type Parsed = (ClientType, ClientSettings);

    /// The settings a `PATCH` could name, read by its own parser and set on the defaults;
    /// `name` is required here and `type` is read here alone.
    fn parse(self, fields: &mut Fields) -> Option<Self::Parsed> {
        let name = fields.require("name", self.name.as_deref(), ClientName::parse);
        let kind = match self.client_type.as_deref() {
            None => Some(ClientType::Confidential),
            Some(raw) => fields.parse("type", Some(raw), |t| {
                ClientType::parse(t).ok_or("must be confidential or public")
            }),
        };
        let settings = ClientUpdateRequest {
            name: None,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types: self.grant_types,
            scopes: self.scopes,
            trusted: self.trusted,
            require_pkce: self.require_pkce,
            introspection: self.introspection,
            audience: self.audience,
            backchannel_logout_uri: self.backchannel_logout_uri,
        }
        .parse(fields);
        let mut defaults = ClientSettings::new(name?);
        settings?.apply(&mut defaults);
        Some((kind?, defaults))
    }
}

/// `PATCH /oauth/clients/{client_id}`: any subset of the settings; `null` leaves one as it
/// is. A client's type cannot change.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientUpdateRequest {
    #[garde(skip)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[garde(skip)]
    pub redirect_uris: Option<Vec<String>>,
    #[garde(skip)]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    #[garde(skip)]
    #[schema(min_items = 1)]
    pub grant_types: Option<Vec<String>>,
    #[garde(skip)]
    #[schema(min_items = 1)]
    pub scopes: Option<Vec<String>>,
    #[garde(skip)]
    pub trusted: Option<bool>,
    #[garde(skip)]
    pub require_pkce: Option<bool>,
    #[garde(skip)]
    pub introspection: Option<bool>,
    #[garde(skip)]
    #[schema(min_length = 1, max_length = 200)]
    pub audience: Option<String>,
    #[garde(skip)]
    #[schema(format = "uri", min_length = 1, max_length = 2000)]
    pub backchannel_logout_uri: Option<String>,
}

impl FromBody for ClientUpdateRequest {
    type Parsed = ClientChanges;

    fn parse(self, fields: &mut Fields) -> Option<ClientChanges> {
        let (grant_types, scopes) =
            client_words(fields, self.grant_types.as_deref(), self.scopes.as_deref());
        Some(ClientChanges {
            name: fields.parse("name", self.name.as_deref(), ClientName::parse),
            redirect_uris: client_uris(fields, "redirect_uris", self.redirect_uris.as_deref()),
            post_logout_redirect_uris: client_uris(
                fields,
                "post_logout_redirect_uris",
                self.post_logout_redirect_uris.as_deref(),
            ),
            grant_types,
            scopes,
            trusted: self.trusted,
            require_pkce: self.require_pkce,
            introspection: self.introspection,
            audience: self.audience,
            backchannel_logout_uri: fields.parse(
                "backchannel_logout_uri",
                self.backchannel_logout_uri.as_deref(),
                ClientUri::parse,
            ),
        })
    }
}
