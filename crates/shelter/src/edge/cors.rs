//! The CORS policy of the allow-list.

use actix_cors::Cors;
use actix_web::http::{Method, header};

use super::middleware::{PROCESS_TIME, REQUEST_ID};

/// CORS for the allow-list only. Credentials are allowed only with named origins, never
/// with `*`; a request from another origin is served without CORS headers (the browser
/// then withholds the answer), not refused, so non-browser clients are unaffected.
pub fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            REQUEST_ID,
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            REQUEST_ID,
            PROCESS_TIME,
        ])
        .max_age(3600)
        .block_on_origin_mismatch(false);
    if origins.iter().any(|origin| origin == "*") {
        cors = cors.allow_any_origin();
    } else {
        for origin in origins {
            cors = cors.allowed_origin(origin);
        }
        cors = cors.supports_credentials();
    }
    cors
}
