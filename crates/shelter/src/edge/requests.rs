//! The request bodies both inbound adapters read: the JSON API as JSON (or an OAuth2
//! form), the hosted pages as the fields of their forms. Each parses once into domain
//! values (`FromBody`), collecting every field error for one 422. The domain has no serde.

use garde::Validate;
use secrecy::SecretString;
use serde::Deserialize;
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
    /// A TOTP code or a recovery code.
    #[garde(required, length(chars, min = 1, max = 64))]
    #[schema(value_type = String, min_length = 1, max_length = 64)]
    pub code: Option<String>,
}

impl FromBody for MfaRequest {
    type Parsed = (String, String);

    fn parse(self, _: &mut Fields) -> Option<(String, String)> {
        Some((self.mfa_token?, self.code?))
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
