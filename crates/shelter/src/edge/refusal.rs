//! `Refusal`: every refusal of every inbound adapter, in one type. Each use-case error is
//! mapped to a status and its words here and nowhere else. Its default answer is RFC 9457
//! problem details (the JSON API's, and that of paths no adapter claims); the pages show
//! the same status and words as a page.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use shelter_domain::clients::ClientError;
use shelter_domain::identities::FederationError;
use shelter_domain::{AuthError, Dependency, PasskeyError, StorageError, Unavailable, UserError};
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem details body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"type": "about:blank", "title": "Conflict", "status": 409, "detail": "A user with this email already exists"}))]
pub struct ProblemBody {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Present on 422 only: one entry per invalid field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// A machine-readable reason where a client must act on it: `mfa_required`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "mfa_required")]
    pub code: Option<&'static str>,
    /// With `mfa_required`: the token of the second step (`POST /auth/mfa`), single-use,
    /// valid five minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_token: Option<String>,
    /// With `mfa_required`: what the second step accepts, of `totp`, `recovery_code` and
    /// `passkey` (the last when the user has one; `POST /auth/mfa/options` first).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = json!(["totp", "recovery_code", "passkey"]))]
    pub methods: Option<Vec<&'static str>>,
}

/// An error answered as problem+json.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    detail: String,
    errors: Vec<FieldError>,
    retry_after: Option<u64>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.detail)
    }
}

impl Refusal {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// A 422 listing every invalid field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "The request is invalid")
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    /// Over a rate limit: the client may retry after `seconds`.
    pub fn limited(detail: impl Into<String>, seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, detail)
        }
    }

    /// A dependency is down: the client may retry after `seconds`.
    pub fn unavailable(detail: impl Into<String>, seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
        }
    }

    /// A 503 for a dependency that is down, slow or saturated. Logged as a warning, not
    /// an error: it is an outage or overload to watch, not a bug to fix.
    pub fn dependency(unavailable: &Unavailable) -> Self {
        tracing::warn!(
            dependency = %unavailable.dependency,
            error = format!("{:#}", unavailable.cause),
            "dependency unavailable"
        );
        match unavailable.dependency {
            Dependency::Database => {
                Self::unavailable("The database is not answering; try again shortly", 5)
            }
            Dependency::PasswordHasher => Self::unavailable(
                "The server is busy checking other passwords; try again shortly",
                1,
            ),
        }
    }

    /// A 500. The cause is logged here, once, inside the request's span (so with its
    /// request id); the client gets a fixed text and no internals.
    pub fn internal(error: &anyhow::Error) -> Self {
        tracing::error!(error = format!("{error:#}"), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The server could not handle this request",
        )
    }

    /// The field errors of a 422, to merge into another.
    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    /// When to try again, for a refusal that says.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    #[cfg(test)]
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    pub fn body(&self) -> ProblemBody {
        ProblemBody {
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            errors: self.errors.clone(),
            code: None,
            mfa_token: None,
            methods: None,
        }
    }
}

impl ResponseError for Refusal {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.content_type(PROBLEM_JSON);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds));
        }
        response.json(self.body())
    }
}

impl From<StorageError> for Refusal {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Unavailable(cause) => {
                Self::dependency(&Unavailable::new(Dependency::Database, cause))
            }
            StorageError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

impl From<UserError> for Refusal {
    fn from(error: UserError) -> Self {
        let (status, detail) = match &error {
            UserError::EmailTaken | UserError::UsernameTaken | UserError::LastSuperuser => {
                (StatusCode::CONFLICT, None)
            }
            UserError::NotFound | UserError::MfaNotEnabled => (StatusCode::NOT_FOUND, None),
            UserError::NotSuperuser => (
                StatusCode::FORBIDDEN,
                Some("The user doesn't have enough privileges"),
            ),
            UserError::PrivilegedField => (
                StatusCode::FORBIDDEN,
                Some("Only a superuser may change is_active or is_superuser"),
            ),
            UserError::WrongCurrentPassword => (StatusCode::FORBIDDEN, None),
            UserError::CurrentPasswordRequired => {
                return Self::field(
                    "current_password",
                    "current_password is required to change the email or password",
                );
            }
            UserError::PreconditionFailed => (
                StatusCode::PRECONDITION_FAILED,
                Some("The user was changed since it was read (If-Match does not match)"),
            ),
            UserError::InvalidVerificationToken | UserError::InvalidCode => {
                (StatusCode::BAD_REQUEST, None)
            }
            UserError::MfaAlreadyEnabled | UserError::MfaNotPending => (StatusCode::CONFLICT, None),
            UserError::Unavailable(unavailable) => return Self::dependency(unavailable),
            UserError::Unexpected(cause) => return Self::internal(cause),
        };
        // Where the domain's words are the client's too, they are the detail.
        Self::new(
            status,
            detail.map_or_else(|| error.to_string(), str::to_owned),
        )
    }
}

impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Self {
        let status = match &error {
            AuthError::InvalidCredentials
            | AuthError::InvalidToken
            | AuthError::InvalidRefreshToken
            | AuthError::InvalidMfa
            | AuthError::InvalidPasskey
            | AuthError::InvalidEmailCode => StatusCode::UNAUTHORIZED,
            AuthError::Inactive | AuthError::Unverified => StatusCode::FORBIDDEN,
            AuthError::InvalidResetToken => StatusCode::BAD_REQUEST,
            // No passkeys here is as if the endpoints were not: the contract's 404.
            AuthError::SessionNotFound | AuthError::PasskeysUnavailable => StatusCode::NOT_FOUND,
            AuthError::Unavailable(unavailable) => return Self::dependency(unavailable),
            AuthError::Unexpected(cause) => return Self::internal(cause),
        };
        Self::new(status, error.to_string())
    }
}

impl From<FederationError> for Refusal {
    fn from(error: FederationError) -> Self {
        let error = match error {
            FederationError::Auth(inner) => return inner.into(),
            other => other,
        };
        let status = match &error {
            FederationError::UnknownProvider | FederationError::NotLinked => StatusCode::NOT_FOUND,
            FederationError::InvalidFlow
            | FederationError::Declined(_)
            | FederationError::NoEmail => StatusCode::BAD_REQUEST,
            FederationError::Unverified => StatusCode::UNAUTHORIZED,
            FederationError::NoAccount => StatusCode::FORBIDDEN,
            FederationError::LinkRefused
            | FederationError::TakenByAnother
            | FederationError::ProviderTaken
            | FederationError::LastWay => StatusCode::CONFLICT,
            FederationError::Unavailable(cause) => {
                tracing::warn!(error = format!("{cause:#}"), "a provider is unavailable");
                return Self::unavailable(
                    "The provider did not answer; try again in a moment, or sign in another way",
                    PROVIDER_RETRY_SECONDS,
                );
            }
            FederationError::Auth(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, error.to_string())
    }
}

/// When to try a provider that did not answer again.
const PROVIDER_RETRY_SECONDS: u64 = 10;

impl From<PasskeyError> for Refusal {
    fn from(error: PasskeyError) -> Self {
        let status = match &error {
            PasskeyError::NotConfigured | PasskeyError::NotFound | PasskeyError::UserNotFound => {
                StatusCode::NOT_FOUND
            }
            PasskeyError::Rejected => StatusCode::UNAUTHORIZED,
            PasskeyError::AlreadyRegistered | PasskeyError::TooMany | PasskeyError::LastWay => {
                StatusCode::CONFLICT
            }
            PasskeyError::NotSuperuser => StatusCode::FORBIDDEN,
            PasskeyError::Unavailable(unavailable) => return Self::dependency(unavailable),
            PasskeyError::Unexpected(cause) => return Self::internal(cause),
        };
        Self::new(status, error.to_string())
    }
}

impl From<ClientError> for Refusal {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::NotSuperuser => Self::new(StatusCode::FORBIDDEN, error.to_string()),
            ClientError::NotFound => Self::not_found(error.to_string()),
            ClientError::Invalid { field, message } => Self::field(field, message),
            ClientError::Unavailable(unavailable) => Self::dependency(&unavailable),
            ClientError::Unexpected(cause) => Self::internal(&cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_domain_error_has_one_status() {
        let cases: Vec<(Refusal, u16)> = vec![
            (UserError::EmailTaken.into(), 409),
            (UserError::UsernameTaken.into(), 409),
            (UserError::LastSuperuser.into(), 409),
            (UserError::NotFound.into(), 404),
            (UserError::NotSuperuser.into(), 403),
            (UserError::PrivilegedField.into(), 403),
            (UserError::WrongCurrentPassword.into(), 403),
            (UserError::CurrentPasswordRequired.into(), 422),
            (UserError::PreconditionFailed.into(), 412),
            (UserError::InvalidVerificationToken.into(), 400),
            (UserError::InvalidCode.into(), 400),
            (UserError::MfaAlreadyEnabled.into(), 409),
            (UserError::MfaNotPending.into(), 409),
            (UserError::MfaNotEnabled.into(), 404),
            (AuthError::InvalidMfa.into(), 401),
            (AuthError::Unverified.into(), 403),
            (AuthError::InvalidRefreshToken.into(), 401),
            (AuthError::InvalidResetToken.into(), 400),
            (AuthError::SessionNotFound.into(), 404),
            (
                UserError::Unexpected(anyhow::anyhow!("db down")).into(),
                500,
            ),
            (
                UserError::Unavailable(Unavailable::new(
                    Dependency::Database,
                    anyhow::anyhow!("pool timed out"),
                ))
                .into(),
                503,
            ),
            (
                AuthError::Unavailable(Unavailable::new(
                    Dependency::PasswordHasher,
                    anyhow::anyhow!("queue full"),
                ))
                .into(),
                503,
            ),
            (AuthError::InvalidCredentials.into(), 401),
            (ClientError::NotSuperuser.into(), 403),
            (ClientError::NotFound.into(), 404),
            (
                ClientError::Invalid {
                    field: "redirect_uris",
                    message: "is required",
                }
                .into(),
                422,
            ),
            (AuthError::InvalidToken.into(), 401),
            (AuthError::Inactive.into(), 403),
            (
                AuthError::Unexpected(anyhow::anyhow!("db down")).into(),
                500,
            ),
        ];
        for (problem, status) in cases {
            assert_eq!(problem.status().as_u16(), status, "{problem:?}");
        }
    }

    #[test]
    fn internal_errors_leak_nothing() {
        let problem = Refusal::from(UserError::Unexpected(anyhow::anyhow!(
            "connection to postgres://app:secret@db failed"
        )));
        assert!(!problem.detail().contains("secret"));
        let body = serde_json::to_string(&problem.body()).expect("json");
        assert!(!body.contains("postgres"), "{body}");
    }

    #[test]
    fn a_duplicate_email_says_already_exists() {
        let body = Refusal::from(UserError::EmailTaken).body();
        assert_eq!(body.title, "Conflict");
        assert!(body.detail.contains("already exists"));
        assert_eq!(body.kind, "about:blank");
    }

    #[test]
    fn unauthorized_answers_carry_the_bearer_challenge() {
        let response = Refusal::unauthorized("Not authenticated").error_response();
        assert_eq!(
            response.headers().get(header::WWW_AUTHENTICATE),
            Some(&HeaderValue::from_static("Bearer"))
        );
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE),
            Some(&HeaderValue::from_static(PROBLEM_JSON))
        );
    }
}
