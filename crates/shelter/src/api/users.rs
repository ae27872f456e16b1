//! `/users` handlers: signup and account management, with `ETag`, `If-None-Match` and
//! `If-Match`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, web};
use shelter_domain::{ListedUser, Page, User, UserId, UserSink};

use super::dto::{UserPage, UserResponse};
use crate::edge::body::RawBody;
use crate::edge::caller::{CurrentUser, user_id};
use crate::edge::refusal::{ProblemBody, Refusal};
use crate::edge::requests::{ListQuery, SignupRequest, UpdateRequest};
use crate::edge::state::AppState;
use crate::edge::steps::{listing, may_sign_up};

/// The entity tag of a user's current representation. The revision changes with every
/// write, and ids are never reused, so the tag names exactly one representation.
fn etag(user: &User) -> String {
    format!("\"{}-{}\"", user.id(), user.revision())
}

fn with_user(mut response: actix_web::HttpResponseBuilder, user: &User) -> HttpResponse {
    response
        .insert_header((header::ETAG, etag(user)))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .content_type(header::ContentType::json())
        .body(UserResponse::from(user).to_json())
}

/// `If-None-Match` (weak comparison): 304 when the client's copy is current.
fn not_modified(headers: &HeaderMap, user: &User) -> bool {
    let current = etag(user);
    headers
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == current)
}

/// The revision an `If-Match` header demands of user `id`: `None` without the header or
/// with `*`; a revision no row has (so the write answers 412 after the permission and
/// existence checks) when no listed tag can be this user's. An unreadable header (bytes
/// that are not text) matches nothing: it was sent as a precondition, so it must not be
/// ignored.
fn expected_revision(headers: &HeaderMap, id: UserId) -> Option<i64> {
    let values: Vec<String> = headers
        .get_all(header::IF_MATCH)
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(',')
                .map(|tag| tag.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    if values.is_empty() || values.iter().any(|tag| tag == "*") {
        return None;
    }
    let prefix = format!("\"{id}-");
    Some(
        values
            .iter()
            // Weak tags never match strongly (RFC 9110 §13.1.1).
            .find_map(|tag| tag.strip_prefix(&prefix)?.strip_suffix('"')?.parse().ok())
            .unwrap_or(-1),
    )
}

fn user_or_304(req: &HttpRequest, user: &User) -> HttpResponse {
    if not_modified(req.headers(), user) {
        HttpResponse::NotModified()
            .insert_header((header::ETAG, etag(user)))
            .finish()
    } else {
        with_user(HttpResponse::Ok(), user)
    }
}

/// Create an account.
#[utoipa::path(
    post, path = "/users", tag = "users",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "Created; the welcome email is queued", body = UserResponse,
            headers(("Location" = String, description = "/users/{id}"), ("ETag" = String))),
        (status = 400, body = ProblemBody), (status = 409, description = "Email or username taken", body = ProblemBody),
        (status = 413, body = ProblemBody), (status = 415, body = ProblemBody), (status = 422, body = ProblemBody),
        (status = 429, description = "Too many signups from this address", body = ProblemBody, headers(("Retry-After" = u64))),
    )
)]
pub async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    may_sign_up(&req, &state).await?;
    let account = body.json::<SignupRequest>().await?;
    let user = state.users.signup(account).await?;
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, format!("/users/{}", user.id())));
    Ok(with_user(response, &user))
}

/// The caller's own account.
#[utoipa::path(
    get, path = "/users/me", tag = "users", security(("bearer" = [])),
    params(("If-None-Match" = Option<String>, Header, description = "ETag of a cached copy")),
    responses(
        (status = 200, body = UserResponse, headers(("ETag" = String))),
        (status = 304, description = "The cached copy is current"),
        (status = 401, body = ProblemBody), (status = 403, description = "Inactive user", body = ProblemBody),
    )
)]
pub async fn read_me(req: HttpRequest, CurrentUser(me): CurrentUser) -> HttpResponse {
    user_or_304(&req, &me)
}

/// Change the caller's own account.
#[utoipa::path(
    patch, path = "/users/me", tag = "users", security(("bearer" = [])),
    params(("If-Match" = Option<String>, Header, description = "Only change the account if its ETag is this")),
    request_body = UpdateRequest,
    responses(
        (status = 200, body = UserResponse, headers(("ETag" = String))),
        (status = 401, body = ProblemBody),
        (status = 403, description = "Not allowed (privileged fields, wrong current password, inactive)", body = ProblemBody),
        (status = 409, body = ProblemBody), (status = 412, body = ProblemBody), (status = 422, body = ProblemBody),
    )
)]
pub async fn update_me(
    req: HttpRequest,
    state: web::Data<AppState>,
    CurrentUser(me): CurrentUser,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    update(&req, &state, &me, me.id(), body).await
}

/// Delete the caller's own account.
#[utoipa::path(
    delete, path = "/users/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ProblemBody),
        (status = 409, description = "The last active superuser", body = ProblemBody),
        (status = 412, body = ProblemBody),
    )
)]
pub async fn delete_me(
    req: HttpRequest,
    state: web::Data<AppState>,
    CurrentUser(me): CurrentUser,
) -> Result<HttpResponse, Refusal> {
    state
        .users
        .delete_self(&me, expected_revision(req.headers(), me.id()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List users, ordered by id (superusers).
#[utoipa::path(
    get, path = "/users", tag = "users", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, body = UserPage),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody), (status = 422, body = ProblemBody),
    )
)]
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    CurrentUser(me): CurrentUser,
) -> Result<HttpResponse, Refusal> {
    let (filter, page) = listing(req.query_string())?;
    let mut writer = PageWriter::for_page(page);
    let total = state.users.list(&me, &filter, page, &mut writer).await?;
    Ok(HttpResponse::Ok()
        .content_type(header::ContentType::json())
        .body(writer.finish(total)))
}

/// Writes a `UserPage` as the store reads it, each user straight into the body: no model
/// of the page in between (for a hundred users, building one cost more than reading it).
struct PageWriter {
    json: Vec<u8>,
    users: usize,
    page: Page,
}

impl PageWriter {
    fn for_page(page: Page) -> Self {
        // About 250 bytes a user: one buffer of the page's size, not one grown by doubling.
        let users = usize::try_from(page.limit()).unwrap_or_default();
        let mut json = Vec::with_capacity(256 * users + 64);
        json.extend_from_slice(br#"{"items":["#);
        Self {
            json,
            users: 0,
            page,
        }
    }

    fn finish(mut self, total: u64) -> Vec<u8> {
        let (skip, limit) = (self.page.skip(), self.page.limit());
        self.json.extend_from_slice(
            format!(r#"],"total":{total},"skip":{skip},"limit":{limit}}}"#).as_bytes(),
        );
        self.json
    }
}

impl UserSink for PageWriter {
    fn user(&mut self, user: ListedUser<&str>) {
        if self.users > 0 {
            self.json.push(b',');
        }
        self.users += 1;
        UserResponse::from(user).write_json(&mut self.json);
    }
}

/// One user (that user or a superuser).
#[utoipa::path(
    get, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path), ("If-None-Match" = Option<String>, Header, description = "ETag of a cached copy")),
    responses(
        (status = 200, body = UserResponse, headers(("ETag" = String))),
        (status = 304, description = "The cached copy is current"),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
    )
)]
pub async fn read(
    req: HttpRequest,
    state: web::Data<AppState>,
    CurrentUser(me): CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, Refusal> {
    let id = user_id(&path)?;
    let user = state.users.get(&me, id).await?;
    Ok(user_or_304(&req, &user))
}

/// Change a user (that user or a superuser; only a superuser sets `is_active`, `is_superuser`).
#[utoipa::path(
    patch, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header, description = "Only change the user if its ETag is this")),
    request_body = UpdateRequest,
    responses(
        (status = 200, body = UserResponse, headers(("ETag" = String))),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 409, description = "Taken, or the last active superuser", body = ProblemBody),
        (status = 412, body = ProblemBody), (status = 422, body = ProblemBody),
    )
)]
pub async fn update_one(
    req: HttpRequest,
    state: web::Data<AppState>,
    CurrentUser(me): CurrentUser,
    path: web::Path<String>,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let id = user_id(&path)?;
    update(&req, &state, &me, id, body).await
}

async fn update(
    req: &HttpRequest,
    state: &AppState,
    me: &User,
    id: UserId,
    body: RawBody,
) -> Result<HttpResponse, Refusal> {
    let update = body.json::<UpdateRequest>().await?;
    let user = state
        .users
        .update(me, id, update, expected_revision(req.headers(), id))
        .await?;
    Ok(with_user(HttpResponse::Ok(), &user))
}

/// Delete a user (superusers).
#[utoipa::path(
    delete, path = "/users/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ProblemBody), (status = 403, body = ProblemBody), (status = 404, body = ProblemBody),
        (status = 409, description = "The last active superuser", body = ProblemBody),
        (status = 412, body = ProblemBody),
    )
)]
pub async fn delete_one(
    req: HttpRequest,
    state: web::Data<AppState>,
    CurrentUser(me): CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, Refusal> {
    let id = user_id(&path)?;
    state
        .users
        .delete(&me, id, expected_revision(req.headers(), id))
        .await?;
    Ok(HttpResponse::build(StatusCode::NO_CONTENT).finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).expect("header"));
        map
    }

    #[test]
    fn if_match_names_a_revision_or_one_nobody_has() {
        let id = UserId::new(5);
        assert_eq!(expected_revision(&HeaderMap::new(), id), None);
        assert_eq!(expected_revision(&headers(header::IF_MATCH, "*"), id), None);
        assert_eq!(
            expected_revision(&headers(header::IF_MATCH, "\"5-3\""), id),
            Some(3)
        );
        assert_eq!(
            expected_revision(&headers(header::IF_MATCH, "\"9-9\", \"5-4\""), id),
            Some(4)
        );
        for other in ["\"6-3\"", "W/\"5-3\"", "garbage", "\"5-x\"", ""] {
            assert_eq!(
                expected_revision(&headers(header::IF_MATCH, other), id),
                Some(-1),
                "{other}"
            );
        }
    }

    #[test]
    fn an_unreadable_if_match_matches_nothing() {
        let mut map = HeaderMap::new();
        map.insert(
            header::IF_MATCH,
            HeaderValue::from_bytes(b"\"\xff\"").expect("opaque header bytes"),
        );
        assert_eq!(expected_revision(&map, UserId::new(5)), Some(-1));
    }
}
