//! Reading a page's form: the CSRF check, then the fields of the API request the form
//! stands for, parsed by the edge as the API parses them.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use serde_json::{Map, Value};

use super::error::PageError;
use crate::edge::body::{FromBody, RawBody, from_object};
use crate::edge::browser;
use crate::edge::refusal::FieldError;
use crate::edge::state::AppState;

/// Reads a page's form and checks its CSRF token, which it takes out: the rest are the
/// fields of the API request the form stands for.
pub(super) async fn form(
    req: &HttpRequest,
    state: &AppState,
    body: RawBody,
) -> Result<Map<String, Value>, PageError> {
    let mut fields = body.form().await?;
    let token = fields.remove(browser::CSRF_FIELD);
    browser::check_csrf(req, state, token.as_ref().and_then(Value::as_str))?;
    Ok(fields)
}

pub(super) fn text(fields: &Map<String, Value>, name: &str) -> String {
    fields
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A form's fields read as the API request `T` reads them: its values, or the field errors
/// (a 422) to show on the form again. Any other refusal is a page of its own.
pub(super) fn parse<T: FromBody>(
    fields: Map<String, Value>,
) -> Result<Result<T::Parsed, Vec<FieldError>>, PageError> {
    match from_object::<T>(fields) {
        Ok(parsed) => Ok(Ok(parsed)),
        Err(problem) if problem.status() == StatusCode::UNPROCESSABLE_ENTITY => {
            Ok(Err(problem.into_errors()))
        }
        Err(problem) => Err(problem.into()),
    }
}

/// A passkey form's `credential`: the JSON text the script put there, as the JSON the
/// API reads. Text that is no JSON stays text, for the request type to refuse; an empty
/// field is no field.
pub(super) fn json_field(fields: &mut Map<String, Value>, name: &str) {
    let Some(Value::String(raw)) = fields.get(name) else {
        return;
    };
    if raw.is_empty() {
        fields.remove(name);
    } else if let Ok(parsed) = serde_json::from_str::<Value>(raw) {
        fields.insert(name.to_owned(), parsed);
    }
}
