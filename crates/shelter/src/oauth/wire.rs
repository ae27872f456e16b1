//! The protocol's wire format, shared by the machine endpoints: form bodies, client
//! authentication, and RFC 6749 error answers.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;
use serde_json::json;
use shelter_domain::oauth::{ClientCredentials, OAuthError};

/// A form-encoded body's parameters. A parameter given twice is refused (RFC 6749 §3.2).
pub struct Form(Vec<(String, String)>);

impl Form {
    /// # Errors
    /// `invalid_request` for a body that is not form-encoded or repeats a parameter.
    pub fn read(req: &HttpRequest, body: &[u8]) -> Result<Self, OAuthError> {
        let form_encoded = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|kind| {
                kind.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_encoded && !body.is_empty() {
            return Err(OAuthError::InvalidRequest(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        for (index, (name, _)) in pairs.iter().enumerate() {
            if pairs[..index].iter().any(|(other, _)| other == name) {
                return Err(OAuthError::InvalidRequest(
                    "a parameter was given more than once",
                ));
            }
        }
        Ok(Self(pairs))
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .filter(|value| !value.is_empty())
    }

    pub fn require(&self, name: &'static str, missing: &'static str) -> Result<String, OAuthError> {
        self.get(name).ok_or(OAuthError::InvalidRequest(missing))
    }
}

/// The client's credentials: HTTP Basic (`client_secret_basic`, each part form-encoded as
/// RFC 6749 §2.3.1 says) or the form's `client_id` and `client_secret`
/// (`client_secret_post`, or a public client's `client_id` alone). Both at once is refused.
pub fn credentials(req: &HttpRequest, form: &Form) -> Result<ClientCredentials, OAuthError> {
    let basic = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "));
    match basic {
        Some(encoded) => {
            if form.get("client_secret").is_some() {
                return Err(OAuthError::InvalidRequest(
                    "use one client authentication method, not two",
                ));
            }
            let refused = || OAuthError::InvalidClient { basic: true };
            let decoded = STANDARD.decode(encoded.trim()).map_err(|_| refused())?;
            let decoded = String::from_utf8(decoded).map_err(|_| refused())?;
            let (id, secret) = decoded.split_once(':').ok_or_else(refused)?;
            let decode = |part: &str| {
                form_urlencoded::parse(format!("x={part}").as_bytes())
                    .next()
                    .map(|(_, value)| value.into_owned())
                    .unwrap_or_default()
            };
            let client_id = decode(id);
            if form
                .get("client_id")
                .is_some_and(|form_id| form_id != client_id)
            {
                return Err(refused());
            }
            Ok(ClientCredentials {
                client_id,
                secret: Some(SecretString::from(decode(secret))),
                basic: true,
            })
        }
        None => Ok(ClientCredentials {
            client_id: form
                .get("client_id")
                .ok_or(OAuthError::InvalidClient { basic: false })?,
            secret: form.get("client_secret").map(SecretString::from),
            basic: false,
        }),
    }
}

/// An RFC 6749 error answer; never cached.
pub fn error_response(error: &OAuthError) -> HttpResponse {
    let status = match error {
        OAuthError::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
        OAuthError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        OAuthError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let description = match error {
        OAuthError::Unavailable(unavailable) => {
            tracing::warn!(
                dependency = %unavailable.dependency,
                error = format!("{:#}", unavailable.cause),
                "dependency unavailable"
            );
            "the server is briefly unavailable; try again shortly".to_owned()
        }
        OAuthError::Unexpected(cause) => {
            tracing::error!(error = format!("{cause:#}"), "request failed");
            "the server could not handle this request".to_owned()
        }
        other => other.to_string(),
    };
    let mut response = no_store(HttpResponse::build(status)).json(json!({
        "error": error.code(),
        "error_description": description,
    }));
    if let OAuthError::InvalidClient { basic: true } = error {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"shelter\""),
        );
    }
    if let OAuthError::Unavailable(_) = error {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

pub fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    builder
}
