//! The steps both adapters run around a service call, besides signing in: the sign-up
//! quota, the emails anyone may ask for by address, and reading a users listing.

use actix_web::HttpRequest;
use shelter_domain::limits::Limit;
use shelter_domain::{EmailAddress, Page, PaginationError, UserFilter};

use super::context;
use super::limits::{client_ip, enforce};
use super::refusal::{FieldError, Refusal};
use super::requests::ListQuery;
use super::state::AppState;

/// The signup quota of the client's address, for the API and the pages alike.
///
/// # Errors
/// 429 past the quota; 503 when the limiter is down.
pub async fn may_sign_up(req: &HttpRequest, state: &AppState) -> Result<(), Refusal> {
    per_address(req, state, Limit::Signup).await
}

/// The dynamic client registration quota of the client's address (`POST /oauth/register`).
///
/// # Errors
/// 429 past the quota; 503 when the limiter is down.
pub async fn may_register_client(req: &HttpRequest, state: &AppState) -> Result<(), Refusal> {
    per_address(req, state, Limit::ClientRegistration).await
}

async fn per_address(req: &HttpRequest, state: &AppState, limit: Limit) -> Result<(), Refusal> {
    let client = client_ip(req, &state.trusted_proxies)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    enforce(state, limit, &client).await
}

/// The emails anyone may ask for by address.
#[derive(Clone, Copy)]
pub enum EmailRequestKind {
    PasswordReset,
    Verification,
    SignInCode,
}

/// Asks for an email by address, for the API and the pages alike: rate-limited per
/// address, and answered before the look-up, so that neither the answer nor its time
/// depends on whether the email is known. The email is durable once queued; a crash in
/// the few milliseconds before that loses the request, and the user asks again.
///
/// # Errors
/// 429 past the quota, 503 when the limiter is down.
pub async fn request_email(
    state: &AppState,
    kind: EmailRequestKind,
    email: EmailAddress,
) -> Result<(), Refusal> {
    let limit = match kind {
        EmailRequestKind::PasswordReset => Limit::PasswordRecovery,
        EmailRequestKind::Verification => Limit::VerificationResend,
        EmailRequestKind::SignInCode => Limit::EmailCode,
    };
    enforce(state, limit, email.as_str()).await?;
    let (auth, users) = (state.auth.clone(), state.users.clone());
    // The request's context goes with the work, for its audit event.
    context::spawn(async move {
        let result = match kind {
            EmailRequestKind::PasswordReset => auth
                .request_password_reset(&email)
                .await
                .map_err(anyhow::Error::from),
            EmailRequestKind::Verification => users
                .resend_verification(&email)
                .await
                .map_err(anyhow::Error::from),
            EmailRequestKind::SignInCode => auth
                .request_email_code(&email)
                .await
                .map_err(anyhow::Error::from),
        };
        if let Err(error) = result {
            tracing::error!(
                error = format!("{error:#}"),
                "queueing a requested email failed"
            );
        }
    });
    Ok(())
}

/// Reads the filters, `skip` and `limit`, reporting every bad one at once: first whether
/// each is a number or a boolean, then whether the page they make is in range (a rule of
/// the domain's `Page`).
pub fn listing(query: &str) -> Result<(UserFilter, Page), Refusal> {
    let query: ListQuery =
        serde_urlencoded::from_str(query).map_err(|e| Refusal::field("query", e.to_string()))?;
    let mut errors = Vec::new();
    let mut flag = |field: &str, raw: Option<&str>| match raw {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            errors.push(FieldError {
                field: field.into(),
                message: "must be true or false".into(),
            });
            None
        }
    };
    let mut filter = UserFilter::default();
    filter.is_active = flag("is_active", query.is_active.as_deref());
    filter.is_superuser = flag("is_superuser", query.is_superuser.as_deref());
    if let Some(text) = query.q.as_deref() {
        match filter.clone().search(text) {
            Ok(narrowed) => filter = narrowed,
            Err(refused) => errors.push(FieldError {
                field: "q".into(),
                message: refused.to_string(),
            }),
        }
    }
    let mut number = |field: &str, raw: Option<&str>, default: u64| match raw.map(str::parse) {
        None => default,
        Some(Ok(value)) => value,
        Some(Err(_)) => {
            errors.push(FieldError {
                field: field.into(),
                message: "must be a whole number".into(),
            });
            default
        }
    };
    let skip = number("skip", query.skip.as_deref(), 0);
    let limit = number("limit", query.limit.as_deref(), Page::MAX_LIMIT);
    let page = Page::new(skip, limit).map_err(|range| {
        for error in range {
            let field = match error {
                PaginationError::SkipOutOfRange { .. } => "skip",
                PaginationError::LimitOutOfRange { .. } => "limit",
            };
            if !errors.iter().any(|e| e.field == field) {
                errors.push(FieldError {
                    field: field.into(),
                    message: error.to_string(),
                });
            }
        }
    });
    match page {
        Ok(page) if errors.is_empty() => Ok((filter, page)),
        _ => Err(Refusal::validation(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(query: &str) -> Result<Page, Refusal> {
        listing(query).map(|(_, page)| page)
    }

    #[test]
    fn filters_are_read_with_the_page_and_every_bad_one_reported() {
        let (filter, _) = listing("q=%20Ann%20&is_active=false").expect("read");
        assert_eq!(filter.search_text(), Some("ann"));
        assert_eq!((filter.is_active, filter.is_superuser), (Some(false), None));
        assert!(listing("q=").expect("blank").0.is_everyone());
        let long = format!("q={}&is_superuser=yes&limit=0", "a".repeat(255));
        let problem = listing(&long).expect_err("all bad");
        let mut fields: Vec<_> = problem.errors().iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["is_superuser", "limit", "q"]);
    }

    #[test]
    fn pages_report_every_bad_parameter() {
        assert_eq!(
            page("").expect("defaults"),
            Page::new(0, 100).expect("page")
        );
        assert_eq!(
            page("skip=5&limit=1&x=y").expect("ok"),
            Page::new(5, 1).expect("page")
        );
        let problem = page("skip=-1&limit=0").expect_err("both bad");
        let fields: Vec<_> = problem.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["skip", "limit"]);
        for bad in [
            "limit=101",
            "limit=abc",
            "skip=1.5",
            "limit=",
            "skip=9223372036854775808",
            "skip=99999999999999999999",
        ] {
            assert_eq!(page(bad).expect_err(bad).status().as_u16(), 422, "{bad}");
        }
    }
}
