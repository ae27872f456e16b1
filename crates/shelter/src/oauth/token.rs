//! The token, userinfo, revocation and introspection endpoints.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret as _;
use serde_json::{Map, Value, json};
use shelter_domain::oauth::{
    ClientCredentials, OAuthError, Subject, TokenRequest, UserClaims, scope_string,
};

use super::wire::{Form, credentials, error_response, no_store};
use crate::edge::state::AppState;

/// `POST /oauth/token`.
pub async fn token(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> HttpResponse {
    match issue(&req, &state, &body).await {
        Ok(answer) => answer,
        Err(error) => error_response(&error),
    }
}

async fn issue(
    req: &HttpRequest,
    state: &AppState,
    body: &[u8],
) -> Result<HttpResponse, OAuthError> {
    let form = Form::read(req, body)?;
    let request = match form.get("grant_type").as_deref() {
        Some("authorization_code") => TokenRequest::AuthorizationCode {
            code: form.require("code", "code is required")?,
            redirect_uri: form.get("redirect_uri"),
            code_verifier: form.get("code_verifier"),
        },
        Some("refresh_token") => TokenRequest::RefreshToken {
            refresh_token: form.require("refresh_token", "refresh_token is required")?,
            scope: form.get("scope"),
        },
        Some("client_credentials") => TokenRequest::ClientCredentials {
            scope: form.get("scope"),
        },
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
        None => return Err(OAuthError::InvalidRequest("grant_type is required")),
    };
    let client = credentials(req, &form)?;
    let tokens = state.oauth.token(&client, request).await?;
    let mut answer = json!({
        "access_token": tokens.access_token.expose_secret(),
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "scope": tokens.scope,
    });
    if let Some(id_token) = tokens.id_token {
        answer["id_token"] = id_token.into();
    }
    if let Some(refresh) = tokens.refresh_token {
        answer["refresh_token"] = refresh.expose().into();
    }
    Ok(no_store(HttpResponse::Ok()).json(answer))
}

/// The claims of a userinfo answer (and of the ID token, which writes the same names).
pub fn claims(claims: &UserClaims) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("sub".into(), claims.sub.clone().into());
    if let Some((email, verified)) = &claims.email {
        out.insert("email".into(), email.clone().into());
        out.insert("email_verified".into(), (*verified).into());
    }
    if let Some((username, updated_at)) = &claims.profile {
        out.insert("preferred_username".into(), username.clone().into());
        out.insert("name".into(), username.clone().into());
        out.insert("updated_at".into(), (*updated_at).into());
    }
    out
}

/// A refusal of a bearer token (RFC 6750 §3): with `error="invalid_token"` when one was
/// presented, without when none was.
fn bearer_refused(presented: bool) -> HttpResponse {
    let challenge = if presented {
        "Bearer realm=\"shelter\", error=\"invalid_token\""
    } else {
        "Bearer realm=\"shelter\""
    };
    let mut response = no_store(HttpResponse::Unauthorized()).json(json!({
        "error": "invalid_token",
        "error_description": "the access token is missing, expired or revoked",
    }));
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// `GET` or `POST /oauth/userinfo`: the token in the `Authorization` header, or in a
/// form body's `access_token` (RFC 6750 §2.2), never both.
pub async fn userinfo(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(|token| token.trim().to_owned());
    let form = if req.method() == actix_web::http::Method::POST {
        match Form::read(&req, &body) {
            Ok(form) => form.get("access_token"),
            Err(error) => return error_response(&error),
        }
    } else {
        None
    };
    let token = match (header, form) {
        (Some(_), Some(_)) => {
            return error_response(&OAuthError::InvalidRequest(
                "send the access token one way, not two",
            ));
        }
        (Some(token), None) | (None, Some(token)) => token,
        (None, None) => return bearer_refused(false),
    };
    match state.oauth.userinfo(&token).await {
        Ok(Some(user)) => no_store(HttpResponse::Ok()).json(claims(&user)),
        Ok(None) => bearer_refused(true),
        Err(error) => error_response(&error),
    }
}

/// The authenticating client and the `token` of a revocation or introspection request.
fn client_and_token(
    req: &HttpRequest,
    body: &[u8],
) -> Result<(ClientCredentials, String), OAuthError> {
    let form = Form::read(req, body)?;
    let client = credentials(req, &form)?;
    Ok((client, form.require("token", "token is required")?))
}

/// `POST /oauth/revoke` (RFC 7009): 200 whether or not the token was known.
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let result = match client_and_token(&req, &body) {
        Ok((client, token)) => state.oauth.revoke(&client, &token).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => no_store(HttpResponse::Ok()).finish(),
        Err(error) => error_response(&error),
    }
}

/// `POST /oauth/introspect` (RFC 7662).
pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let result = match client_and_token(&req, &body) {
        Ok((client, token)) => state.oauth.introspect(&client, &token).await,
        Err(error) => Err(error),
    };
    let found = match result {
        Ok(found) => found,
        Err(error) => return error_response(&error),
    };
    let Some(found) = found else {
        return no_store(HttpResponse::build(StatusCode::OK)).json(json!({ "active": false }));
    };
    let claims = &found.claims;
    let mut answer = json!({
        "active": true,
        "scope": scope_string(&claims.scopes),
        "client_id": claims.client.as_str(),
        "token_type": "Bearer",
        "exp": claims.expires_at.timestamp(),
        "iat": claims.issued_at.timestamp(),
        "sub": claims.sub(),
        "aud": claims.audience,
        "iss": state.issuer,
        "jti": claims.jti,
    });
    if let Some(username) = found.username {
        answer["username"] = username.into();
    }
    if let Subject::User { session, .. } = claims.subject {
        answer["sid"] = session.to_string().into();
    }
    no_store(HttpResponse::Ok()).json(answer)
}
