//! Reading a request body, with the contract's answers: 415 for a wrong content type, 413
//! over 64 KiB, 400 for a body that is not one whole JSON value or form, 422 (every bad
//! field at once) for well-formed but invalid data, control characters included. The
//! request types that become domain values implement [`FromBody`].

use std::future::{Ready, ready};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header::{self};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::refusal::{FieldError, Refusal};

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
    type Error = Refusal;
    type Future = Ready<Result<Self, Refusal>>;

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
    /// Reads a JSON body and turns it into domain values.
    pub async fn json<T: FromBody>(self) -> Result<T::Parsed, Refusal> {
        self.parse::<T>(&[Format::Json]).await
    }

    /// Reads a body in any of `accepted` formats and turns it into domain values. Every
    /// bad field, whether unknown, missing, malformed or refused by a domain rule, is
    /// reported in the same 422.
    pub async fn parse<T: FromBody>(self, accepted: &[Format]) -> Result<T::Parsed, Refusal> {
        from_object::<T>(self.object(accepted).await?)
    }

    /// Reads a form body into its fields, for a caller that takes some out (a page's CSRF
    /// token) before [`from_object`] reads the rest.
    pub async fn form(self) -> Result<Map<String, Value>, Refusal> {
        self.object(&[Format::Form]).await
    }

    async fn object(self, accepted: &[Format]) -> Result<Map<String, Value>, Refusal> {
        let format = self
            .format
            .filter(|format| accepted.contains(format))
            .ok_or_else(|| {
                let expected = if accepted.contains(&Format::Form) {
                    "application/json or application/x-www-form-urlencoded"
                } else {
                    "application/json"
                };
                Refusal::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("The body must be {expected}"),
                )
            })?;
        let bytes = read_limited(self.payload, self.declared_length).await?;
        match format {
            Format::Json => json_object(&bytes),
            Format::Form => form_object(&bytes),
        }
    }
}

/// A request body that becomes domain values. Plain-text rules (required, lengths) are
/// garde's, on the DTO; each domain value is parsed once, by its own constructor, in
/// `parse`.
pub trait FromBody: DeserializeOwned + garde::Validate<Context = ()> {
    type Parsed;

    /// The domain values, or `None` when a field is missing or invalid, in which case it
    /// has been noted in `fields`.
    fn parse(self, fields: &mut Fields) -> Option<Self::Parsed>;
}

/// The bad fields of one request, collected so the client hears of all of them at once.
#[derive(Debug, Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    /// Notes what is wrong with `field`, unless something already is: one entry per field,
    /// the first problem found.
    pub fn note(&mut self, field: &str, message: impl std::fmt::Display) {
        if !self.is_bad(field) {
            self.0.push(FieldError {
                field: field.to_owned(),
                message: message.to_string(),
            });
        }
    }

    fn is_bad(&self, field: &str) -> bool {
        self.0.iter().any(|error| error.field == field)
    }

    /// `raw` parsed by a domain constructor; `None` when absent, or when it does not parse
    /// (then noted).
    pub fn parse<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        raw: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        if self.is_bad(field) {
            return None;
        }
        match parse(raw?) {
            Ok(value) => Some(value),
            Err(error) => {
                self.note(field, error);
                None
            }
        }
    }

    /// As [`Fields::parse`], for a field that must be there.
    pub fn require<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        raw: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        if raw.is_none() {
            self.note(field, "field required");
        }
        self.parse(field, raw, parse)
    }

    fn finish<T>(self, parsed: Option<T>) -> Result<T, Refusal> {
        match parsed {
            Some(parsed) if self.0.is_empty() => Ok(parsed),
            _ => Err(Refusal::validation(self.0)),
        }
    }
}

fn too_large() -> Refusal {
    Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("The body must be at most {} KiB", MAX_BODY_BYTES / 1024),
    )
}

async fn read_limited(
    mut payload: Payload,
    declared_length: Option<usize>,
) -> Result<web::BytesMut, Refusal> {
    if declared_length.is_some_and(|length| length > MAX_BODY_BYTES) {
        return Err(too_large());
    }
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| Refusal::bad_request("The body could not be read"))?;
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
            Refusal::new(
                StatusCode::REQUEST_TIMEOUT,
                "The body took too long to arrive",
            )
        })?
}

/// A body that is not one complete JSON value (trailing bytes, truncated, invalid UTF-8)
/// is the client's malformed request: 400, whatever else is wrong with it. A well-formed
/// document of the wrong shape is a validation error (422) naming the field.
fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, Refusal> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Refusal::bad_request("The request body is empty"));
    }
    let document: Value = serde_json::from_slice(bytes).map_err(|error| {
        let message = strip_position(&error.to_string());
        // Deeper than any request of ours. If it is still one whole document, its shape is
        // what is wrong; if it is cut short or followed by more, it is malformed.
        if message == "recursion limit exceeded" && is_one_balanced_value(bytes) {
            return Refusal::field("body", "is nested too deeply");
        }
        Refusal::bad_request(format!("The body is not valid JSON: {message}"))
    })?;
    // serde would fill a struct from an array too (`["a@x.com", "ann", "pw"]`).
    match document {
        Value::Object(fields) => Ok(fields),
        _ => Err(Refusal::field("body", "must be a JSON object")),
    }
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
fn form_object(bytes: &[u8]) -> Result<Map<String, Value>, Refusal> {
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
            return Err(Refusal::field(name, "given more than once"));
        }
    }
    Ok(fields)
}

/// One percent-encoded form component; bytes that are not UTF-8 make the body malformed
/// rather than being silently replaced (which would change a password).
fn form_text(raw: &[u8]) -> Result<String, Refusal> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_encoding::percent_decode(&spaced)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| Refusal::bad_request("The form body is not valid UTF-8"))
}

/// Checks the fields of a body and converts them. Control characters have no place in an
/// email, a name, a password or a token, and one backend stores what another refuses
/// (PostgreSQL rejects U+0000), so they are refused here, before any database. Unknown
/// fields are noted and set aside, so that the rest is still checked.
/// Turns the fields of a body into domain values, every bad field in one 422.
pub(crate) fn from_object<T: FromBody>(
    mut object: Map<String, Value>,
) -> Result<T::Parsed, Refusal> {
    let mut fields = Fields::default();
    let mut refused = Vec::new();
    for (name, value) in &object {
        control_characters(name, value, &mut refused);
    }
    for error in refused {
        fields.note(&error.field, error.message);
    }
    let known = serde_aux::serde_introspection::serde_introspect::<T>();
    object.retain(|name, _| {
        let is_known = known.contains(&name.as_str());
        if !is_known {
            fields.note(name, "unknown field");
        }
        is_known
    });
    let request: T = match serde_path_to_error::deserialize(Value::Object(object)) {
        Ok(request) => request,
        Err(error) => {
            let path = error.path().to_string();
            let shape = shape_error(&path, &strip_position(&error.into_inner().to_string()));
            for error in shape.into_errors() {
                fields.note(&error.field, error.message);
            }
            return fields.finish(None);
        }
    };
    if let Err(report) = request.validate() {
        for (path, error) in report.iter() {
            fields.note(
                &path.to_string(),
                match error.message() {
                    "not set" => "field required",
                    other => other,
                },
            );
        }
    }
    let parsed = request.parse(&mut fields);
    fields.finish(parsed)
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
fn shape_error(path: &str, message: &str) -> Refusal {
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
    Refusal::validation(vec![FieldError { field, message }])
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, garde::Validate)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        #[garde(skip)]
        email: Option<String>,
        #[garde(skip)]
        age: Option<u8>,
    }

    impl FromBody for Sample {
        type Parsed = Self;

        fn parse(self, _: &mut Fields) -> Option<Self> {
            Some(self)
        }
    }

    fn decode_json<T: FromBody>(bytes: &[u8]) -> Result<T::Parsed, Refusal> {
        from_object::<T>(json_object(bytes)?)
    }

    fn decode_form<T: FromBody>(bytes: &[u8]) -> Result<T::Parsed, Refusal> {
        from_object::<T>(form_object(bytes)?)
    }

    /// Every bad field of one body, in one answer.
    #[test]
    fn unknown_missing_and_invalid_fields_are_reported_together() {
        #[derive(Debug, Deserialize, garde::Validate)]
        #[serde(deny_unknown_fields)]
        struct Reset {
            #[garde(required, length(min = 1))]
            token: Option<String>,
            #[garde(skip)]
            new_password: Option<String>,
        }
        impl FromBody for Reset {
            type Parsed = ();

            fn parse(self, fields: &mut Fields) -> Option<()> {
                fields.require("new_password", self.new_password.as_deref(), |raw| {
                    shelter_domain::Password::parse(raw)
                })?;
                Some(())
            }
        }
        let problem = decode_json::<Reset>(br#"{"password": "x", "extra": 1}"#)
            .expect_err("three bad fields");
        let mut named: Vec<_> = problem.errors().iter().map(|e| e.field.clone()).collect();
        named.sort();
        assert_eq!(
            named,
            ["extra", "new_password", "password", "token"],
            "{:?}",
            problem.errors()
        );
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
        #[derive(Debug, Deserialize, garde::Validate)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Login {
            #[garde(skip)]
            username: Option<String>,
            #[garde(skip)]
            password: Option<String>,
        }
        impl FromBody for Login {
            type Parsed = Self;

            fn parse(self, _: &mut Fields) -> Option<Self> {
                Some(self)
            }
        }
        let login = decode_form::<Login>(b"username=ann+b%40x.com&password=p%26w").expect("ok");
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
}
