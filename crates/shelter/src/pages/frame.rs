//! What frames every page: the session a page requires, and the pages' middleware (the
//! cookies a request set, the headers every page has, a route's own errors as pages).

use actix_web::HttpRequest;
use actix_web::ResponseError as _;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use shelter_domain::auth::Authenticated;

use super::error::PageError;
use crate::edge::browser;
use crate::edge::refusal::Refusal;
use crate::edge::state::AppState;

/// The signed-in user of a page that needs one, sending a visitor who is not to the login page, and from there back
/// to the page they asked for (a GET's; a form sent without a session has nothing to
/// come back to).
///
/// # Errors
/// A redirect to `/login`, or a 503 page.
pub async fn require(req: &HttpRequest, state: &AppState) -> Result<Authenticated, PageError> {
    browser::signed_in(req, state)
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
    let mut page = PageError::from(Refusal::new(status, reason)).error_response();
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
    browser::write_cookies(&mut response);
    let headers = response.headers_mut();
    let is_asset = headers
        .get(header::CACHE_CONTROL)
        .is_some_and(|value| value.as_bytes().ends_with(b"immutable"));
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    // A page whose form may end at an OAuth client set its own, wider `form-action`.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(super::layout::CSP),
        );
    }
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
