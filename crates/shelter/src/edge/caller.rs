//! Who is asking: the bearer token, the authenticated caller (which the request context
//! records as the actor), and user ids in paths.

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use shelter_domain::User;
use shelter_domain::auth::Authenticated;

use super::refusal::Refusal;
use super::state::AppState;

/// The authenticated, active user making the request.
pub struct CurrentUser(pub User);

/// As [`CurrentUser`], with the login of the token.
pub struct CurrentLogin(pub Authenticated);

impl FromRequest for CurrentLogin {
    type Error = Refusal;
    type Future = LocalBoxFuture<'static, Result<Self, Refusal>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer_token(req.headers());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let token = token.ok_or_else(|| Refusal::unauthorized("Not authenticated"))?;
            let state = state.ok_or_else(|| Refusal::internal(&anyhow::anyhow!("no app state")))?;
            let login = state.auth.authenticate(&token).await?;
            super::context::set_actor(login.user.id());
            Ok(Self(login))
        })
    }
}

impl FromRequest for CurrentUser {
    type Error = Refusal;
    type Future = LocalBoxFuture<'static, Result<Self, Refusal>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let login = CurrentLogin::from_request(req, payload);
        Box::pin(async move { Ok(Self(login.await?.0.user)) })
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
pub fn user_id(raw: &str) -> Result<shelter_domain::UserId, Refusal> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(shelter_domain::UserId::new)
        .ok_or_else(|| Refusal::not_found("User not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
