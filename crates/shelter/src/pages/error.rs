//! Errors on pages are pages: the status and words the JSON API would answer, shown in the
//! layout with the request id, never problem+json.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpResponse, ResponseError};
use maud::html;
use shelter_domain::clients::ClientError;
use shelter_domain::identities::FederationError;
use shelter_domain::{AuthError, PasskeyError, StorageError, UserError};

use super::layout;
use crate::edge::browser::Forged;
use crate::edge::refusal::Refusal;

/// What a page handler answers.
pub type PageResult = Result<HttpResponse, PageError>;

#[derive(Debug)]
pub enum PageError {
    /// Not signed in: off to the login page, and back to `next` (a local path) after.
    SignIn { next: Option<String> },
    /// A form without this browser's CSRF token.
    Forged,
    /// What the API would have answered.
    Refused(Refusal),
}

impl PageError {
    pub fn not_found() -> Self {
        Self::Refused(Refusal::not_found("There is no such page"))
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SignIn { .. } => f.write_str("not signed in"),
            Self::Forged => f.write_str("forged form"),
            Self::Refused(problem) => problem.fmt(f),
        }
    }
}

impl From<Forged> for PageError {
    fn from(_: Forged) -> Self {
        Self::Forged
    }
}

impl From<Refusal> for PageError {
    fn from(problem: Refusal) -> Self {
        Self::Refused(problem)
    }
}

impl From<FederationError> for PageError {
    fn from(error: FederationError) -> Self {
        Self::Refused(error.into())
    }
}

impl From<UserError> for PageError {
    fn from(error: UserError) -> Self {
        Self::Refused(error.into())
    }
}

impl From<ClientError> for PageError {
    fn from(error: ClientError) -> Self {
        Self::Refused(error.into())
    }
}

impl From<StorageError> for PageError {
    fn from(error: StorageError) -> Self {
        Self::Refused(error.into())
    }
}

impl From<PasskeyError> for PageError {
    fn from(error: PasskeyError) -> Self {
        Self::Refused(error.into())
    }
}

impl From<AuthError> for PageError {
    fn from(error: AuthError) -> Self {
        Self::Refused(error.into())
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::Forged => StatusCode::FORBIDDEN,
            Self::Refused(problem) => problem.status(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (status, title, detail) = match self {
            Self::SignIn { next } => return layout::redirect(&layout::login_path(next.as_deref())),
            Self::Forged => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "It was not sent from a page of this site, or it is too old. Go back, reload the page and try again.",
            ),
            Self::Refused(problem) => (
                problem.status(),
                problem.status().canonical_reason().unwrap_or("Error"),
                problem.detail(),
            ),
        };
        let request_id = crate::edge::context::current().request_id;
        let body = html! {
            div.card {
                h1 { (title) }
                p { (detail) }
                @if let Some(id) = &request_id {
                    p.hint { "Request id: " code { (id) } }
                }
                p { a href="/" { "Back to the start" } }
            }
        };
        let mut response = layout::html(status, &layout::error_page(title, &body));
        if let Self::Refused(problem) = self
            && let Some(seconds) = problem.retry_after()
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
