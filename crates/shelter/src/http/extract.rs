//! Request extraction with the contract's error answers: 415 for a wrong content type, 413
//! over 64 KiB, 400 for malformed JSON, 422 (per field) for well-formed but invalid data,
//! 401/403 for authentication.

use std::future::{Ready, ready};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt as _;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use shelter_domain::User;

use super::AppState;
use super::problem::{FieldError, Problem};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a client may take to send its body, so a trickling client cannot hold a
/// connection and its buffer forever.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// The body formats a request may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Form,
}

/// The request body, not yet read. Handlers read it after authentication, so that a
/// request without a valid token gets 401 whatever its body.
pub struct RawBody {
    format: Option<Format>,
    declared_length: Option<usize>,
    payload: Payload,
}

impl FromRequest for RawBody {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let format = match req.mime_type() {
            Ok(Some(mime)) if mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON) => {
                Some(Format::Json)
            }
            Ok(Some(mime)) if mime.essence_str() == "application/x-www-form-urlencoded" => {
                Some(Format::Form)
            }
            _ => None,
        };
        let declared_length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        ready(Ok(Self {
            format,
            declared_length,
            payload: payload.take(),
        }))
    }
}

impl RawBody {
    /// Reads and decodes a JSON body.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, Problem> {
        self.decode(&[Format::Json]).await
    }

    /// Reads and decodes a body in any of `accepted` formats.
    pub async fn decode<T: DeserializeOwned>(self, accepted: &[Format]) -> Result<T, Problem> {
        let format = self
            .format
            .filter(|format| accepted.contains(format))
            .ok_or_else(|| {
                let expected = if accepted.contains(&Format::Form) {
                    "application/json or application/x-www-form-urlencoded"
                } else {
                    "application/json"
                };
                Problem::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("The body must be {expected}"),
                )
            })?;
        let bytes = read_limited(self.payload, self.declared_length).await?;
        match format {
            Format::Json => decode_json(&bytes),
            Format::Form => decode_form(&bytes),
        }
    }
}

fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("The body must be at most {} KiB", MAX_BODY_BYTES / 1024),
    )
}

async fn read_limited(
    mut payload: Payload,
    declared_length: Option<usize>,
) -> Result<web::BytesMut, Problem> {
    if declared_length.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| Problem::bad_request("The body could not be read"))?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "The body took too long to arrive",
            )
        })?
}

/// A body that is not one complete JSON value (trailing bytes, truncated, invalid UTF-8)
/// is the client's malformed request: 400, whatever else is wrong with it. A well-formed
/// document of the wrong shape is a validation error (422) naming the field.
fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::bad_request("The request body is empty"));
    }
    let document: Value = serde_json::from_slice(bytes).map_err(|error| {
        let message = strip_position(&error.to_string());
        // Deeper than any request of ours. If it is still one whole document, its shape is
        // what is wrong; if it is cut short or followed by more, it is malformed.
        if message == "recursion limit exceeded" && is_one_balanced_value(bytes) {
            return Problem::field("body", "is nested too deeply");
        }
        Problem::bad_request(format!("The body is not valid JSON: {message}"))
    })?;
    // serde would fill a struct from an array too (`["a@x.com", "ann", "pw"]`).
    let Value::Object(fields) = document else {
        return Err(Problem::field("body", "must be a JSON object"));
    };
    from_fields(fields)
}

/// Whether the brackets of `bytes` (outside strings) close exactly once, at the end: what
/// `serde_json` cannot tell past its recursion limit.
fn is_one_balanced_value(bytes: &[u8]) -> bool {
    let (mut depth, mut in_string, mut escaped, mut closed) = (0usize, false, false, false);
    for &byte in bytes {
        if closed {
            if !byte.is_ascii_whitespace() {
                return false;
            }
        } else if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' => depth += 1,
                b']' | b'}' => {
                    let Some(outer) = depth.checked_sub(1) else {
                        return false;
                    };
                    depth = outer;
                    closed = depth == 0;
                }
                _ => {}
            }
        }
    }
    closed
}

/// An `application/x-www-form-urlencoded` body as the same fields a JSON object has, so
/// both formats pass the same checks.
fn decode_form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut fields = Map::new();
    for pair in bytes.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        let name = form_text(name)?;
        if fields
            .insert(name.clone(), Value::String(form_text(value)?))
            .is_some()
        {
            return Err(Problem::field(name, "given more than once"));
        }
    }
    from_fields(fields)
}

/// One percent-encoded form component; bytes that are not UTF-8 make the body malformed
/// rather than being silently replaced (which would change a password).
fn form_text(raw: &[u8]) -> Result<String, Problem> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_encoding::percent_decode(&spaced)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| Problem::bad_request("The form body is not valid UTF-8"))
}

/// Refuses control characters in any text, then deserialises. Control characters have no
/// place in an email, a name, a password or a token, and one backend stores what another
/// refuses (PostgreSQL rejects U+0000), so they are stopped here, before any database.
fn from_fields<T: DeserializeOwned>(fields: Map<String, Value>) -> Result<T, Problem> {
    let mut errors = Vec::new();
    for (name, value) in &fields {
        control_characters(name, value, &mut errors);
    }
    if !errors.is_empty() {
        return Err(Problem::validation(errors));
    }
    serde_path_to_error::deserialize(Value::Object(fields)).map_err(|error| {
        let path = error.path().to_string();
        shape_error(&path, &strip_position(&error.into_inner().to_string()))
    })
}

fn control_characters(path: &str, value: &Value, errors: &mut Vec<FieldError>) {
    match value {
        Value::String(text) if text.chars().any(|c| c.is_ascii_control()) => {
            errors.push(FieldError {
                field: path.to_owned(),
                message: "must not contain control characters".to_owned(),
            });
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                control_characters(&format!("{path}[{index}]"), item, errors);
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                control_characters(&format!("{path}.{name}"), item, errors);
            }
        }
        _ => {}
    }
}

/// A 422 for a document of the wrong shape: the field is the path serde was at, or, for
/// missing and unknown fields (reported at the parent), the name quoted in the message.
fn shape_error(path: &str, message: &str) -> Problem {
    let quoted = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("missing field") || message.starts_with("unknown field"));
    let field = match (path, quoted) {
        // serde reports an unknown field at the field itself, a missing one at its parent.
        (path, Some(name)) if path == name || path.ends_with(&format!(".{name}")) => {
            path.to_owned()
        }
        (".", Some(name)) => name.to_owned(),
        // A document that is not an object fails at the root or at its first element.
        (path, None) if path == "." || path.starts_with('[') => "body".to_owned(),
        (path, Some(name)) => format!("{path}.{name}"),
        (path, None) => path.to_owned(),
    };
    let message = if message.starts_with("missing field") {
        "field required".to_owned()
    } else if message.starts_with("unknown field") {
        "unknown field".to_owned()
    } else {
        in_client_words(message)
    };
    Problem::validation(vec![FieldError { field, message }])
}

/// serde's "invalid type: integer `1`, expected u8" as "must be a whole number": the
/// client wrote JSON, not Rust.
fn in_client_words(message: &str) -> String {
    let Some((_, expected)) = message.split_once(", expected ") else {
        return message.to_owned();
    };
    let expected = match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128"
        | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a sequence" => "a list",
        "a map" => "an object",
        other if other.starts_with("struct ") || other.starts_with("enum ") => "an object",
        other => other,
    };
    format!("must be {expected}")
}

fn strip_position(message: &str) -> String {
    message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_owned()
}

/// Turns a garde report into one 422 listing every field.
pub fn validated<T: garde::Validate<Context = ()>>(value: T) -> Result<T, Problem> {
    value.validate().map_err(|report| {
        Problem::validation(
            report
                .iter()
                .map(|(path, error)| FieldError {
                    field: path.to_string(),
                    message: match error.message() {
                        "not set" => "field required".to_owned(),
                        other => other.to_owned(),
                    },
                })
                .collect(),
        )
    })?;
    Ok(value)
}

/// The authenticated, active user making the request.
pub struct CurrentUser(pub User);

impl FromRequest for CurrentUser {
    type Error = Problem;
    type Future = LocalBoxFuture<'static, Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer_token(req.headers());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token.ok_or_else(|| Problem::unauthorized("Not authenticated"))?;
            let state = state.ok_or_else(|| Problem::internal(&anyhow::anyhow!("no app state")))?;
            Ok(Self(state.auth.authenticate(&token).await?))
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// A user id from the path. Anything that is not a positive integer cannot name a user, so
/// it is a 404 like any other id that names nobody.
pub fn user_id(raw: &str) -> Result<shelter_domain::UserId, Problem> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(shelter_domain::UserId::new)
        .ok_or_else(|| Problem::not_found("User not found"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        email: Option<String>,
        age: Option<u8>,
    }

    #[test]
    fn json_errors_are_400_for_syntax_and_422_for_shape() {
        let cases: &[(&[u8], u16, Option<&str>)] = &[
            (b"{\"email\": ", 400, None),
            (b"not json", 400, None),
            (b"", 400, None),
            (b"{} trailing", 400, None),
            (b"{\"nope\": 1} trailing", 400, None),
            (b"{\"email\": \"a\xff\"}", 400, None),
            (b"{\"email\": \"a\\u0000\"}", 422, Some("email")),
            (b"{\"email\": \"tab\\there\"}", 422, Some("email")),
            (b"{\"email\": \"del\x7f\"}", 422, Some("email")),
            (b"[\"a@x.com\", 1]", 422, Some("body")),
            (&[b'['; 200], 400, None),
            (
                &[&[b'['; 200][..], &[b']'; 200][..]].concat(),
                422,
                Some("body"),
            ),
            (
                &[&[b'['; 200][..], &[b']'; 200][..], b" x"].concat(),
                400,
                None,
            ),
            (b"{\"age\": \"x\"}", 422, Some("age")),
            (b"{\"age\": 300}", 422, Some("age")),
            (b"{\"nope\": 1}", 422, Some("nope")),
            (b"[1, 2]", 422, Some("body")),
            (b"\"text\"", 422, Some("body")),
        ];
        for (body, status, field) in cases {
            let problem = decode_json::<Sample>(body).expect_err("invalid");
            assert_eq!(
                problem.status().as_u16(),
                *status,
                "{:?}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(
                problem.errors().first().map(|e| e.field.as_str()),
                *field,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn error_texts_name_no_rust_types() {
        for body in [
            &b"[1, 2]"[..],
            b"\"text\"",
            b"{\"age\": \"x\"}",
            b"{\"email\": 3}",
        ] {
            let problem = decode_json::<Sample>(body).expect_err("invalid");
            let text = format!("{:?}", problem.errors());
            assert!(
                !text.contains("struct") && !text.contains("Sample") && !text.contains("u8"),
                "{text}"
            );
        }
    }

    #[test]
    fn forms_pass_the_same_checks_as_json() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Login {
            username: Option<String>,
            password: Option<String>,
        }
        let login: Login = decode_form(b"username=ann+b%40x.com&password=p%26w").expect("ok");
        assert_eq!(login.username.as_deref(), Some("ann b@x.com"));
        assert_eq!(login.password.as_deref(), Some("p&w"));
        let cases: &[(&[u8], u16, Option<&str>)] = &[
            (b"username=root%00", 422, Some("username")),
            (b"username=a%0Ab", 422, Some("username")),
            (b"username=%FF", 400, None),
            (b"username=a&username=b", 422, Some("username")),
            (b"nope=1", 422, Some("nope")),
        ];
        for (body, status, field) in cases {
            let problem = decode_form::<Login>(body).expect_err("invalid");
            let shown = String::from_utf8_lossy(body);
            assert_eq!(problem.status().as_u16(), *status, "{shown}");
            assert_eq!(
                problem.errors().first().map(|e| e.field.as_str()),
                *field,
                "{shown}"
            );
        }
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let mut headers = HeaderMap::new();
        for (value, expected) in [
            ("Bearer abc", Some("abc")),
            ("bearer  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer", None),
            ("Bearer ", None),
        ] {
            headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
            assert_eq!(bearer_token(&headers).as_deref(), expected, "{value:?}");
        }
    }

    #[test]
    fn only_positive_integers_are_user_ids() {
        assert_eq!(user_id("7").expect("id").get(), 7);
        for raw in ["0", "-1", "abc", "1.5", "99999999999999999999", ""] {
            assert_eq!(user_id(raw).expect_err(raw).status().as_u16(), 404, "{raw}");
        }
    }
}
