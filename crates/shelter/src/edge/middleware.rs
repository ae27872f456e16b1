//! The middleware every request passes through: trailing-slash normalisation, the request
//! id, the tracing span and log line, `X-Process-Time`, and the guarantee that every error
//! answer is problem+json, whoever produced it.

use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{StatusCode, Uri};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError};
use tracing::Instrument as _;

use super::context;
use super::refusal::{PROBLEM_JSON, Refusal};
use super::state::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const PROCESS_TIME: HeaderName = HeaderName::from_static("x-process-time");

pub async fn observe(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    deadline: Duration,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let started = Instant::now();
    trim_trailing_slash(&mut req);
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_sane_request_id(id))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let method = req.method().to_string();
    // The route template, never the path: a path can name a user, and a query string can
    // carry a token.
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        route = %route,
    );
    // Handlers' and extractors' errors arrive here as responses already; an `Err` comes
    // only from an inner middleware and is answered by actix itself. Past the deadline
    // the handler is dropped, which cancels its database work.
    let trusted = req
        .app_data::<actix_web::web::Data<AppState>>()
        .map(|state| state.trusted_proxies.clone())
        .unwrap_or_default();
    let context = context::of_request(req.request(), &request_id, &trusted);
    let outcome = tokio::time::timeout(
        deadline,
        context::scope(context, next.call(req).instrument(span.clone())),
    )
    .await;
    let elapsed = started.elapsed();
    let (result, status) = if let Ok(response) = outcome {
        let mut response = as_problem(response?.map_into_boxed_body());
        stamp(response.headers_mut(), &request_id, elapsed);
        let status = response.status();
        (Ok(response), status)
    } else {
        span.in_scope(|| tracing::warn!(?deadline, "request deadline passed"));
        let passed = DeadlinePassed {
            request_id: request_id.clone(),
            elapsed,
        };
        (Err(passed.into()), StatusCode::SERVICE_UNAVAILABLE)
    };
    let labels = [
        ("method", method),
        ("route", route),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!("shelter_http_requests_total", &labels).increment(1);
    metrics::histogram!("shelter_http_request_duration_seconds", &labels[..2])
        .record(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request handled"
        );
    });
    result
}

/// The headers every answer carries.
fn stamp(headers: &mut HeaderMap, request_id: &str, elapsed: Duration) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(REQUEST_ID, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("{:.6}", elapsed.as_secs_f64())) {
        headers.insert(PROCESS_TIME, value);
    }
}

/// A request past its deadline. The request itself went down with its handler, so there
/// is no `ServiceResponse` to build: actix answers this error with its `error_response`.
#[derive(Debug)]
struct DeadlinePassed {
    request_id: String,
    elapsed: Duration,
}

impl std::fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the request deadline passed after {:?}", self.elapsed)
    }
}

impl ResponseError for DeadlinePassed {
    fn status_code(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }

    fn error_response(&self) -> HttpResponse {
        let mut response =
            Refusal::unavailable("The request took longer than the server allows", 1)
                .error_response();
        stamp(response.headers_mut(), &self.request_id, self.elapsed);
        response
    }
}

/// A client's request id is echoed only if it is short and made of safe characters, so it
/// can neither forge log lines nor bloat them.
fn is_sane_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=".contains(&b))
}

/// `/users/` is `/users`. The Swagger UI's assets under `/docs/` keep their slash: the UI
/// page at `/docs` links to them relative to `/docs/`.
fn trim_trailing_slash(req: &mut ServiceRequest) {
    let path = req.path();
    if path.len() <= 1 || !path.ends_with('/') || path.starts_with("/docs/") {
        return;
    }
    let trimmed = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    let rewritten = match req.query_string() {
        "" => trimmed.to_owned(),
        query => format!("{trimmed}?{query}"),
    };
    let Ok(uri) = rewritten.parse::<Uri>() else {
        return;
    };
    req.match_info_mut().get_mut().update(&uri);
    req.head_mut().uri = uri;
}

/// Replaces any error answer that is not already problem+json, a page or the OAuth
/// endpoints' RFC 6749 JSON (actix's own 404/405, an extractor's plain-text error) with a
/// problem of the same status.
fn as_problem(response: ServiceResponse<BoxBody>) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let is_answer = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(PROBLEM_JSON.as_bytes())
                || v.as_bytes().starts_with(b"text/html")
                || v.as_bytes().starts_with(b"application/json")
        });
    if !(status.is_client_error() || status.is_server_error()) || is_answer {
        return response;
    }
    let detail = match status {
        StatusCode::NOT_FOUND => "No such resource",
        StatusCode::METHOD_NOT_ALLOWED => "This method is not allowed on this resource",
        StatusCode::INTERNAL_SERVER_ERROR => "The server could not handle this request",
        _ => status.canonical_reason().unwrap_or("Error"),
    };
    let allow = response.headers().get(header::ALLOW).cloned();
    let (request, _) = response.into_parts();
    let mut replacement = Refusal::new(status, detail).error_response();
    if let Some(allow) = allow {
        replacement.headers_mut().insert(header::ALLOW, allow);
    }
    ServiceResponse::new(request, replacement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_request_ids_are_echoed() {
        for ok in ["abc", "7f1c-22", "req_1.2:3", &"a".repeat(128)] {
            assert!(is_sane_request_id(ok), "{ok}");
        }
        for bad in ["", "a b", "x\r\ny", "<script>", "ü", &"a".repeat(129)] {
            assert!(!is_sane_request_id(bad), "{bad:?}");
        }
    }
}
