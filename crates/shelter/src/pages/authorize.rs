//! The OpenID Connect pages a browser visits: the authorization endpoint with its consent
//! page, and RP-initiated logout. An authorization request is never stored: it travels in
//! the login page's `next` and in the consent form's hidden fields, and is checked again
//! each time it comes back (a tampered field is only a different request, checked like
//! any other).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use shelter_domain::clients::{ClientId, Scope};
use shelter_domain::oauth::{
    Authorization, AuthorizationParams, AuthorizeError, Next, Redirect, SignIn,
};

use super::error::{PageError, PageResult};
use super::layout::{self, Notice, card, notice};
use crate::edge::browser;
use crate::edge::refusal::Refusal;
use crate::edge::state::AppState;

/// A request's parameters, from the query or a form body. A parameter given twice is
/// refused (RFC 6749 §3.1); unknown ones are ignored.
struct Parameters {
    pairs: Vec<(String, String)>,
}

impl Parameters {
    fn parse(raw: &[u8]) -> Self {
        Self {
            pairs: form_urlencoded::parse(raw).into_owned().collect(),
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .filter(|value| !value.is_empty())
    }

    fn repeated(&self, names: &[&str]) -> bool {
        names
            .iter()
            .any(|name| self.pairs.iter().filter(|(key, _)| key == name).count() > 1)
    }

    fn authorization(&self) -> AuthorizationParams {
        AuthorizationParams {
            response_type: self.get("response_type"),
            client_id: self.get("client_id"),
            redirect_uri: self.get("redirect_uri"),
            scope: self.get("scope"),
            state: self.get("state"),
            nonce: self.get("nonce"),
            code_challenge: self.get("code_challenge"),
            code_challenge_method: self.get("code_challenge_method"),
            prompt: self.get("prompt"),
            max_age: self.get("max_age"),
            login_hint: self.get("login_hint"),
            login_after: self.get("login_after"),
        }
    }
}

/// The parameters an authorization request is made of, in the order they are written back.
const AUTHORIZATION_PARAMETERS: [&str; 12] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "login_after",
];

fn pairs(params: &AuthorizationParams) -> Vec<(&'static str, &str)> {
    let values = [
        &params.response_type,
        &params.client_id,
        &params.redirect_uri,
        &params.scope,
        &params.state,
        &params.nonce,
        &params.code_challenge,
        &params.code_challenge_method,
        &params.prompt,
        &params.max_age,
        &params.login_hint,
        &params.login_after,
    ];
    AUTHORIZATION_PARAMETERS
        .into_iter()
        .zip(values)
        .filter_map(|(name, value)| value.as_deref().map(|value| (name, value)))
        .collect()
}

/// The redirect back to a client, with `iss` (RFC 9207).
fn back_to_client(state: &AppState, redirect: &Redirect) -> HttpResponse {
    match url::Url::parse(&redirect.redirect_uri) {
        Ok(mut uri) => {
            {
                let mut query = uri.query_pairs_mut();
                for (name, value) in &redirect.params {
                    query.append_pair(name, value);
                }
                query.append_pair("iss", &state.issuer);
            }
            layout::redirect(uri.as_str())
        }
        // Registered URIs are parsed when they are registered: this cannot happen.
        Err(_) => bad_request("The application's redirect URI is not valid."),
    }
}

/// A request that names no client or no URI of its: an error page, never a redirect.
fn bad_request(detail: &str) -> HttpResponse {
    let body = html! {
        (notice(Notice::Error, detail))
        p { "The application that sent you here made a request Shelter cannot answer. Go back to it and try again, or tell its owners." }
    };
    card(
        StatusCode::BAD_REQUEST,
        "This sign-in request is not valid",
        &body,
    )
}

fn refused(error: AuthorizeError, state: &AppState) -> PageResult {
    match error {
        AuthorizeError::Page(detail) => Ok(bad_request(detail)),
        AuthorizeError::Redirect(redirect) => Ok(back_to_client(state, &redirect)),
        AuthorizeError::Unavailable(unavailable) => Err(Refusal::dependency(&unavailable).into()),
        AuthorizeError::Unexpected(cause) => Err(Refusal::internal(&cause).into()),
    }
}

/// The browser's sign-in, with when and how it was made.
async fn sign_in(req: &HttpRequest, state: &AppState) -> Result<Option<SignIn>, PageError> {
    let Some(login) = browser::signed_in(req, state).await? else {
        return Ok(None);
    };
    state
        .oauth
        .sign_in(login.user, login.session)
        .await
        .map_err(|error| PageError::Refused(error.into()))
}

/// Checks the request, refusing a repeated parameter like any other bad one.
async fn check(state: &AppState, params: &Parameters) -> Result<Authorization, AuthorizeError> {
    let authorization = state.oauth.check(&params.authorization()).await?;
    if params.repeated(&AUTHORIZATION_PARAMETERS) {
        let mut redirect = Redirect {
            redirect_uri: authorization.redirect_uri.clone(),
            params: vec![
                ("error", "invalid_request".to_owned()),
                (
                    "error_description",
                    "a parameter was given more than once".to_owned(),
                ),
            ],
        };
        redirect
            .params
            .extend(authorization.state.clone().map(|s| ("state", s)));
        return Err(AuthorizeError::Redirect(redirect));
    }
    Ok(authorization)
}

pub async fn authorize_get(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    let params = Parameters::parse(req.query_string().as_bytes());
    authorize(&req, &state, &params).await
}

pub async fn authorize_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> PageResult {
    authorize(&req, &state, &Parameters::parse(&body)).await
}

async fn authorize(req: &HttpRequest, state: &AppState, params: &Parameters) -> PageResult {
    let authorization = match check(state, params).await {
        Ok(authorization) => authorization,
        Err(error) => return refused(error, state),
    };
    let sign_in = sign_in(req, state).await?;
    match state.oauth.next(&authorization, sign_in.as_ref()).await {
        Ok(Next::Redirect(redirect)) => Ok(back_to_client(state, &redirect)),
        Ok(Next::SignIn { again }) => Ok(layout::redirect(&to_sign_in(
            &params.authorization(),
            again,
        ))),
        Ok(Next::Consent) => {
            let user = sign_in.map(|sign_in| sign_in.user);
            Ok(consent_page(
                req,
                state,
                &authorization,
                &params.authorization(),
                user.as_ref(),
            ))
        }
        Err(error) => refused(error, state),
    }
}

/// The login page, coming back to this request. Signing in `again` (for `prompt=login` or
/// `max_age`) comes back with `login_after` in their place, so the new sign-in satisfies the
/// request instead of asking once more.
fn to_sign_in(params: &AuthorizationParams, again: bool) -> String {
    let mut params = params.clone();
    if again {
        params.prompt = params.prompt.as_deref().map(|prompt| {
            prompt
                .split(' ')
                .filter(|word| *word != "login")
                .collect::<Vec<_>>()
                .join(" ")
        });
        params.max_age = None;
        params.login_after = Some(chrono::Utc::now().timestamp().to_string());
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs(&params))
        .finish();
    let next = format!("/oauth/authorize?{query}");
    let mut login = layout::login_path(Some(&next));
    if again {
        login.push_str("&again=1");
    }
    login
}

fn scope_text(scope: Scope) -> &'static str {
    match scope {
        Scope::OpenId => "Know who you are (your Shelter account id)",
        Scope::Profile => "See your username",
        Scope::Email => "See your email address and whether it is confirmed",
        Scope::OfflineAccess => "Keep access while you are signed in, when you are not using it",
    }
}

fn consent_page(
    req: &HttpRequest,
    state: &AppState,
    authorization: &Authorization,
    params: &AuthorizationParams,
    user: Option<&shelter_domain::User>,
) -> HttpResponse {
    let csrf = browser::csrf_token(req, state);
    let name = authorization.client.settings.name.as_str();
    let body = html! {
        div.card {
            h1 { "Allow " (name) "?" }
            p { strong { (name) } " asks to:" }
            ul { @for scope in &authorization.scopes { li { (scope_text(*scope)) } } }
            p.hint { "You can take this back at any time on your account page, under “Apps with access”." }
            form method="post" action="/oauth/consent" {
                (layout::csrf(&csrf))
                (hidden(params))
                button type="submit" name="decision" value="allow" { "Allow" }
                " "
                button.secondary type="submit" name="decision" value="deny" { "Deny" }
            }
        }
    };
    let mut page = layout::html(StatusCode::OK, &layout::page("Allow access", user, &body));
    layout::allow_form_target(&mut page, &authorization.redirect_uri);
    page
}

fn hidden(params: &AuthorizationParams) -> Markup {
    html! {
        @for (name, value) in pairs(params) {
            input type="hidden" name=(name) value=(value);
        }
    }
}

/// The consent form's answer: the request comes back in its fields, checked again.
pub async fn consent(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> PageResult {
    let params = Parameters::parse(&body);
    browser::check_csrf(&req, &state, params.get(browser::CSRF_FIELD).as_deref())?;
    let authorization = match check(&state, &params).await {
        Ok(authorization) => authorization,
        Err(error) => return refused(error, &state),
    };
    let Some(sign_in) = sign_in(&req, &state).await? else {
        return Ok(layout::redirect(&to_sign_in(
            &params.authorization(),
            false,
        )));
    };
    let allow = match params.get("decision").as_deref() {
        Some("allow") => true,
        Some("deny") => false,
        _ => return Err(Refusal::bad_request("decision must be allow or deny").into()),
    };
    match state.oauth.decide(&authorization, &sign_in, allow).await {
        Ok(redirect) => Ok(back_to_client(&state, &redirect)),
        Err(error) => refused(error, &state),
    }
}

/// RP-initiated logout: `GET` or `POST /oauth/logout`, or the confirmation form's answer.
pub async fn logout_get(req: HttpRequest, state: web::Data<AppState>) -> PageResult {
    let params = Parameters::parse(req.query_string().as_bytes());
    logout(&req, &state, &params).await
}

pub async fn logout_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> PageResult {
    let params = Parameters::parse(&body);
    if params.get("confirm").is_some() {
        browser::check_csrf(&req, &state, params.get(browser::CSRF_FIELD).as_deref())?;
        end_browser_session(&req, &state).await?;
        return after_logout(&state, &params, None).await;
    }
    logout(&req, &state, &params).await
}

async fn logout(req: &HttpRequest, state: &AppState, params: &Parameters) -> PageResult {
    let Some(hint) = params.get("id_token_hint") else {
        return Ok(confirm_logout(req, state, params));
    };
    let Some(hint) = state.oauth.id_token_hint(&hint) else {
        return Ok(bad_request(
            "id_token_hint is not an ID token of this provider.",
        ));
    };
    if params
        .get("client_id")
        .is_some_and(|client| client != hint.client.as_str())
    {
        return Ok(bad_request(
            "client_id is not the audience of id_token_hint.",
        ));
    }
    match browser::signed_in(req, state).await? {
        // The hint names this sign-in: it ends without asking.
        Some(login) if Some(login.session) == hint.session && login.user.id() == hint.user => {
            end_browser_session(req, state).await?;
        }
        // Another sign-in is on in this browser: ending it needs the visitor's word.
        Some(_) => return Ok(confirm_logout(req, state, params)),
        None => {}
    }
    after_logout(state, params, Some(hint.client)).await
}

async fn end_browser_session(req: &HttpRequest, state: &AppState) -> Result<(), PageError> {
    if let Some(refresh) = browser::refresh_token(req) {
        state.auth.logout(&refresh).await?;
    }
    browser::clear(req, state);
    Ok(())
}

/// Back to the client's `post_logout_redirect_uri` if it registered that exact URI, else a
/// signed-out page.
async fn after_logout(
    state: &AppState,
    params: &Parameters,
    client: Option<ClientId>,
) -> PageResult {
    let client = client.or_else(|| {
        params
            .get("client_id")
            .and_then(|raw| ClientId::parse(&raw).ok())
    });
    if let (Some(client), Some(uri)) = (client, params.get("post_logout_redirect_uri")) {
        let registered = state.oauth.client(&client).await?.is_some_and(|client| {
            client
                .settings
                .post_logout_redirect_uris
                .iter()
                .any(|registered| registered.as_str() == uri)
        });
        if registered && let Ok(mut target) = url::Url::parse(&uri) {
            if let Some(state) = params.get("state") {
                target.query_pairs_mut().append_pair("state", &state);
            }
            return Ok(layout::redirect(target.as_str()));
        }
    }
    let body = html! {
        (notice(Notice::Ok, "You are signed out."))
        p { a href="/login" { "Sign in again" } }
    };
    Ok(card(StatusCode::OK, "Signed out", &body))
}

fn confirm_logout(req: &HttpRequest, state: &AppState, params: &Parameters) -> HttpResponse {
    let csrf = browser::csrf_token(req, state);
    let body = html! {
        form method="post" action="/oauth/logout" {
            (layout::csrf(&csrf))
            @for name in ["post_logout_redirect_uri", "state", "client_id"] {
                @if let Some(value) = params.get(name) {
                    input type="hidden" name=(name) value=(value);
                }
            }
            p { "An application asks you to sign out of Shelter in this browser." }
            button type="submit" name="confirm" value="yes" { "Sign out" }
        }
    };
    let mut page = card(StatusCode::OK, "Sign out?", &body);
    if let Some(target) = params.get("post_logout_redirect_uri") {
        layout::allow_form_target(&mut page, &target);
    }
    page
}
