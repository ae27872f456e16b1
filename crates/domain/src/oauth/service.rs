//! `OAuthService`: the provider's rules, from an authorization request to the tokens and
//! what ends them.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use secrecy::ExposeSecret as _;

use super::model::{
    AccessTokenClaims, Authorization, AuthorizationParams, AuthorizeError, CODE_LIFETIME,
    ClientCredentials, Code, CodeSeal, Family, GrantSummary, IdTokenClaims, IdTokenHint,
    Introspection, Next, OAuthError, OAuthRotation, OAuthStore, OAuthTokens, Prompt, Redemption,
    Redirect, SignIn, Subject, TokenRequest, Tokens, UserClaims, scope_string,
};
use crate::clients::{Client, ClientId, ClientStore, ClientType, GrantType, Scope};
use crate::error::StorageError;
use crate::ports::{Clock, NewRefreshToken, UserRepository};
use crate::session::SessionId;
use crate::token::SecretToken;
use crate::user::{User, UserId};

/// The ports the provider needs.
pub struct OAuthPorts {
    pub clients: Arc<dyn ClientStore>,
    pub store: Arc<dyn OAuthStore>,
    pub users: Arc<dyn UserRepository>,
    pub tokens: Arc<dyn OAuthTokens>,
    pub codes: Arc<dyn CodeSeal>,
    pub clock: Arc<dyn Clock>,
}

/// The provider's settings.
#[derive(Debug, Clone, Copy)]
pub struct OAuthPolicy {
    pub refresh_lifetime: Duration,
    pub reuse_grace: Duration,
}

/// The OpenID Connect provider.
pub struct OAuthService {
    ports: OAuthPorts,
    policy: OAuthPolicy,
}

impl OAuthService {
    pub fn new(ports: OAuthPorts, policy: OAuthPolicy) -> Self {
        Self { ports, policy }
    }

    /// Checks an authorization request: first the client and redirect URI (an error page
    /// when they are wrong), then the rest (an error sent back to the client).
    ///
    /// # Errors
    /// [`AuthorizeError`].
    pub async fn check(
        &self,
        params: &AuthorizationParams,
    ) -> Result<Authorization, AuthorizeError> {
        let client_id = params
            .client_id
            .as_deref()
            .and_then(|raw| ClientId::parse(raw).ok())
            .ok_or(AuthorizeError::Page("client_id is missing or unknown"))?;
        let client = self
            .ports
            .clients
            .find(&client_id)
            .await?
            .ok_or(AuthorizeError::Page("client_id is missing or unknown"))?;
        let redirect_uri = match params.redirect_uri.as_deref() {
            Some(uri)
                if client
                    .settings
                    .redirect_uris
                    .iter()
                    .any(|r| r.as_str() == uri) =>
            {
                uri.to_owned()
            }
            // OpenID Connect requires the parameter; with exactly one URI registered, OAuth
            // lets it be left out.
            None if client.settings.redirect_uris.len() == 1 => {
                client.settings.redirect_uris[0].as_str().to_owned()
            }
            _ => {
                return Err(AuthorizeError::Page(
                    "redirect_uri is missing or not registered for this client",
                ));
            }
        };
        let state = params.state.clone();
        let refuse = |error, description: &str| {
            AuthorizeError::Redirect(Redirect::to(
                &redirect_uri,
                state.as_deref(),
                error,
                description,
            ))
        };
        match params.response_type.as_deref() {
            Some("code") => {}
            Some(_) => {
                return Err(refuse(
                    "unsupported_response_type",
                    "only response_type=code is supported",
                ));
            }
            None => return Err(refuse("invalid_request", "response_type is required")),
        }
        if !client
            .settings
            .grant_types
            .contains(&GrantType::AuthorizationCode)
        {
            return Err(refuse(
                "unauthorized_client",
                "the client may not use the authorization code grant",
            ));
        }
        let scopes = parse_scopes(params.scope.as_deref().unwrap_or(""), &client)
            .map_err(|description| refuse("invalid_scope", description))?;
        let code_challenge = parse_challenge(params, &client)
            .map_err(|description| refuse("invalid_request", description))?;
        let prompt = parse_prompt(params.prompt.as_deref())
            .map_err(|description| refuse("invalid_request", description))?;
        let max_age =
            match params.max_age.as_deref() {
                None | Some("") => None,
                Some(raw) => Some(raw.parse::<i64>().ok().filter(|age| *age >= 0).ok_or_else(
                    || refuse("invalid_request", "max_age must be a number of seconds"),
                )?),
            };
        let login_after = params
            .login_after
            .as_deref()
            .and_then(|raw| raw.parse::<i64>().ok())
            .and_then(|at| DateTime::from_timestamp(at, 0));
        Ok(Authorization {
            client,
            redirect_uri,
            scopes,
            state,
            nonce: params.nonce.clone(),
            code_challenge,
            prompt,
            max_age,
            login_after,
            login_hint: params.login_hint.clone(),
        })
    }

    /// Where a checked request goes, for the browser's sign-in (if any): to sign in, to
    /// consent, or back to the client with a code (sealed, nothing written).
    ///
    /// # Errors
    /// The store's, or a code that could not be sealed.
    pub async fn next(
        &self,
        authorization: &Authorization,
        sign_in: Option<&SignIn>,
    ) -> Result<Next, AuthorizeError> {
        let now = self.ports.clock.now();
        let Some(sign_in) = sign_in.filter(|sign_in| sign_in.user.is_active()) else {
            return Ok(Self::or_sign_in(authorization, false));
        };
        let fresh_enough = match authorization.login_after {
            // Back from signing in again: this sign-in must be the new one.
            Some(after) => sign_in.auth_time >= after,
            None => {
                !authorization.prompt.login
                    && authorization
                        .max_age
                        .is_none_or(|age| now - sign_in.auth_time <= Duration::seconds(age))
            }
        };
        if !fresh_enough {
            return Ok(Self::or_sign_in(authorization, true));
        }
        if !authorization.client.settings.trusted {
            let granted = self
                .ports
                .store
                .grant(sign_in.user.id(), &authorization.client.id)
                .await?;
            let covered = granted.is_some_and(|granted| granted.is_superset(&authorization.scopes));
            if !covered || authorization.prompt.consent {
                if authorization.prompt.none {
                    return Ok(Next::Redirect(Redirect::error(
                        authorization,
                        "consent_required",
                        "the user has not allowed this application",
                    )));
                }
                return Ok(Next::Consent);
            }
        }
        self.code(authorization, sign_in, now).map(Next::Redirect)
    }

    fn or_sign_in(authorization: &Authorization, again: bool) -> Next {
        if authorization.prompt.none {
            Next::Redirect(Redirect::error(
                authorization,
                "login_required",
                "the user is not signed in",
            ))
        } else {
            Next::SignIn { again }
        }
    }

    /// The user's answer on the consent page: allowed, the consent is remembered and a code
    /// goes back; refused, `access_denied` does.
    ///
    /// # Errors
    /// The store's.
    pub async fn decide(
        &self,
        authorization: &Authorization,
        sign_in: &SignIn,
        allow: bool,
    ) -> Result<Redirect, AuthorizeError> {
        if !allow {
            return Ok(Redirect::error(
                authorization,
                "access_denied",
                "the user refused",
            ));
        }
        let now = self.ports.clock.now();
        self.ports
            .store
            .remember_grant(
                sign_in.user.id(),
                &authorization.client.id,
                &authorization.scopes,
                now,
            )
            .await?;
        self.code(authorization, sign_in, now)
    }

    fn code(
        &self,
        authorization: &Authorization,
        sign_in: &SignIn,
        now: DateTime<Utc>,
    ) -> Result<Redirect, AuthorizeError> {
        let code = Code {
            id: uuid::Uuid::new_v4(),
            client: authorization.client.id.clone(),
            user: sign_in.user.id(),
            session: sign_in.session,
            redirect_uri: authorization.redirect_uri.clone(),
            scopes: authorization.scopes.clone(),
            nonce: authorization.nonce.clone(),
            code_challenge: authorization.code_challenge.clone(),
            auth_time: sign_in.auth_time,
            method: sign_in.method,
            expires_at: now + CODE_LIFETIME,
        };
        let sealed = self
            .ports
            .codes
            .seal(&code)
            .map_err(AuthorizeError::Unexpected)?;
        let mut params = vec![("code", sealed)];
        params.extend(authorization.state.clone().map(|state| ("state", state)));
        Ok(Redirect {
            redirect_uri: authorization.redirect_uri.clone(),
            params,
        })
    }

    /// The sign-in of `user`'s browser session, with when and how it was made; `None` when
    /// it has ended.
    ///
    /// # Errors
    /// The store's.
    pub async fn sign_in(
        &self,
        user: User,
        session: SessionId,
    ) -> Result<Option<SignIn>, StorageError> {
        let now = self.ports.clock.now();
        Ok(self
            .ports
            .store
            .sign_in(user.id(), session, now)
            .await?
            .map(|(auth_time, method)| SignIn {
                user,
                session,
                auth_time,
                method,
            }))
    }

    /// Authenticates a client: its secret for a confidential client (compared in constant
    /// time), nothing for a public one.
    ///
    /// # Errors
    /// `InvalidClient`, or the store's.
    pub async fn authenticate(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<Client, OAuthError> {
        let refused = || OAuthError::InvalidClient {
            basic: credentials.basic,
        };
        let id = ClientId::parse(&credentials.client_id).map_err(|_| refused())?;
        let client = self.ports.clients.find(&id).await?.ok_or_else(refused)?;
        match (&client.secret_hash, &credentials.secret) {
            (Some(stored), Some(presented))
                if SecretToken::presented(presented.expose_secret())
                    .hash()
                    .matches(stored) =>
            {
                Ok(client)
            }
            (None, None) if client.kind == ClientType::Public => Ok(client),
            _ => Err(refused()),
        }
    }

    /// The token endpoint.
    ///
    /// # Errors
    /// [`OAuthError`], as RFC 6749 names them.
    pub async fn token(
        &self,
        credentials: &ClientCredentials,
        request: TokenRequest,
    ) -> Result<Tokens, OAuthError> {
        let client = self.authenticate(credentials).await?;
        match request {
            TokenRequest::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                self.exchange(&client, &code, redirect_uri, code_verifier)
                    .await
            }
            TokenRequest::RefreshToken {
                refresh_token,
                scope,
            } => self.refresh(&client, &refresh_token, scope).await,
            TokenRequest::ClientCredentials { scope } => {
                self.client_credentials(&client, scope.as_deref()).await
            }
        }
    }

    async fn exchange(
        &self,
        client: &Client,
        presented: &str,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    ) -> Result<Tokens, OAuthError> {
        if !client
            .settings
            .grant_types
            .contains(&GrantType::AuthorizationCode)
        {
            return Err(OAuthError::UnauthorizedClient(
                "the client may not use the authorization code grant",
            ));
        }
        let now = self.ports.clock.now();
        let code = self
            .ports
            .codes
            .open(presented)
            .filter(|code| code.client == client.id)
            .ok_or(OAuthError::InvalidGrant("the code is not valid"))?;
        if code.expires_at <= now {
            return Err(OAuthError::InvalidGrant("the code has expired"));
        }
        if redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
            return Err(OAuthError::InvalidGrant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        match (&code.code_challenge, code_verifier) {
            (Some(challenge), Some(verifier)) if pkce_matches(challenge, &verifier) => {}
            (Some(_), _) => {
                return Err(OAuthError::InvalidGrant(
                    "code_verifier does not match the code_challenge",
                ));
            }
            (None, Some(_)) => {
                return Err(OAuthError::InvalidGrant(
                    "code_verifier given but the authorization request had no code_challenge",
                ));
            }
            (None, None) => {}
        }
        let user = self
            .ports
            .users
            .find_by_id(code.user)
            .await?
            .filter(User::is_active)
            .ok_or(OAuthError::InvalidGrant("the user is not active"))?;
        let refresh = self.refresh_token(client, &code.scopes, now);
        let redemption = self
            .ports
            .store
            .redeem(
                &code,
                refresh.as_ref().map(|(_, record)| record.clone()),
                now,
            )
            .await?;
        match redemption {
            Redemption::Fresh => {}
            Redemption::Reused => {
                return Err(OAuthError::InvalidGrant(
                    "the code was used before; the tokens issued from it are revoked",
                ));
            }
            Redemption::SignInEnded => {
                return Err(OAuthError::InvalidGrant("the sign-in has ended"));
            }
        }
        let family = Family {
            authorization: code.id,
            client: client.id.clone(),
            user: code.user,
            session: code.session,
            scopes: code.scopes,
            auth_time: code.auth_time,
            method: code.method,
        };
        self.user_tokens(
            client,
            &user,
            &family,
            code.nonce,
            refresh.map(|(token, _)| token),
            now,
        )
        .await
    }

    /// A refresh token for a client allowed the grant, whatever scopes it was granted
    /// (`offline_access` is not needed: its tokens end with the sign-in anyway).
    fn refresh_token(
        &self,
        client: &Client,
        _scopes: &BTreeSet<Scope>,
        now: DateTime<Utc>,
    ) -> Option<(SecretToken, NewRefreshToken)> {
        client
            .settings
            .grant_types
            .contains(&GrantType::RefreshToken)
            .then(|| {
                let token = SecretToken::generate();
                let record = NewRefreshToken {
                    hash: token.hash(),
                    expires_at: now + self.policy.refresh_lifetime,
                };
                (token, record)
            })
    }

    async fn user_tokens(
        &self,
        client: &Client,
        user: &User,
        family: &Family,
        nonce: Option<String>,
        refresh_token: Option<SecretToken>,
        now: DateTime<Utc>,
    ) -> Result<Tokens, OAuthError> {
        let lifetime = self.ports.tokens.lifetime();
        let claims = AccessTokenClaims {
            subject: Subject::User {
                user: user.id(),
                session: family.session,
                authorization: family.authorization,
            },
            client: client.id.clone(),
            audience: audience(client),
            scopes: family.scopes.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
            issued_at: now,
            expires_at: now + lifetime,
        };
        let access_token = self
            .ports
            .tokens
            .access_token(&claims)
            .await
            .map_err(OAuthError::Unexpected)?;
        let id_token = if family.scopes.contains(&Scope::OpenId) {
            let id = IdTokenClaims {
                user: UserClaims::of(user, &family.scopes),
                client: client.id.clone(),
                nonce,
                auth_time: family.auth_time,
                session: family.session,
                method: family.method,
                issued_at: now,
                expires_at: now + lifetime,
            };
            Some(
                self.ports
                    .tokens
                    .id_token(&id, access_token.expose_secret())
                    .await
                    .map_err(OAuthError::Unexpected)?,
            )
        } else {
            None
        };
        Ok(Tokens {
            access_token,
            expires_in: lifetime.num_seconds(),
            id_token,
            refresh_token,
            scope: scope_string(&family.scopes),
        })
    }

    async fn refresh(
        &self,
        client: &Client,
        presented: &str,
        scope: Option<String>,
    ) -> Result<Tokens, OAuthError> {
        if !client
            .settings
            .grant_types
            .contains(&GrantType::RefreshToken)
        {
            return Err(OAuthError::UnauthorizedClient(
                "the client may not use the refresh token grant",
            ));
        }
        let now = self.ports.clock.now();
        let Some((token, record)) = self.refresh_token(client, &BTreeSet::new(), now) else {
            return Err(OAuthError::UnauthorizedClient(
                "the client may not use the refresh token grant",
            ));
        };
        let rotation = self
            .ports
            .store
            .rotate(
                &SecretToken::presented(presented).hash(),
                &client.id,
                record,
                now,
                self.policy.reuse_grace,
            )
            .await?;
        let mut family = match rotation {
            OAuthRotation::Rotated(family) => family,
            OAuthRotation::Reused => {
                return Err(OAuthError::InvalidGrant(
                    "the refresh token was used before; its family is revoked",
                ));
            }
            OAuthRotation::Invalid => {
                return Err(OAuthError::InvalidGrant("the refresh token is not valid"));
            }
        };
        if let Some(scope) = scope.filter(|scope| !scope.trim().is_empty()) {
            let asked = parse_scopes(&scope, client).map_err(OAuthError::InvalidScope)?;
            if !asked.is_subset(&family.scopes) {
                return Err(OAuthError::InvalidScope(
                    "a refresh may only narrow the scopes that were granted",
                ));
            }
            family.scopes = asked;
        }
        let user = self
            .ports
            .users
            .find_by_id(family.user)
            .await?
            .filter(User::is_active)
            .ok_or(OAuthError::InvalidGrant("the user is not active"))?;
        self.user_tokens(client, &user, &family, None, Some(token), now)
            .await
    }

    async fn client_credentials(
        &self,
        client: &Client,
        scope: Option<&str>,
    ) -> Result<Tokens, OAuthError> {
        if client.kind != ClientType::Confidential
            || !client
                .settings
                .grant_types
                .contains(&GrantType::ClientCredentials)
        {
            return Err(OAuthError::UnauthorizedClient(
                "the client may not use the client credentials grant",
            ));
        }
        // A client acts for nobody: the user scopes make no sense for it.
        let scopes = match scope.map(str::trim) {
            None | Some("") => BTreeSet::new(),
            Some(_) => {
                return Err(OAuthError::InvalidScope(
                    "the client credentials grant has no user scopes to ask for",
                ));
            }
        };
        let now = self.ports.clock.now();
        let lifetime = self.ports.tokens.lifetime();
        let claims = AccessTokenClaims {
            subject: Subject::Client,
            client: client.id.clone(),
            audience: audience(client),
            scopes,
            jti: uuid::Uuid::new_v4().to_string(),
            issued_at: now,
            expires_at: now + lifetime,
        };
        let access_token = self
            .ports
            .tokens
            .access_token(&claims)
            .await
            .map_err(OAuthError::Unexpected)?;
        Ok(Tokens {
            access_token,
            expires_in: lifetime.num_seconds(),
            id_token: None,
            refresh_token: None,
            scope: String::new(),
        })
    }

    /// The live claims of an access token, checked against the store.
    async fn live(&self, token: &str) -> Result<Option<AccessTokenClaims>, StorageError> {
        let now = self.ports.clock.now();
        let Ok(claims) = self.ports.tokens.verify_access(token, now) else {
            return Ok(None);
        };
        Ok(self
            .ports
            .store
            .is_live(&claims, now)
            .await?
            .then_some(claims))
    }

    /// The userinfo endpoint: the claims the token's scopes release. `None` for a token
    /// that is bad, expired, revoked, of an ended sign-in, a client's own, or of a user who
    /// is gone or inactive.
    ///
    /// # Errors
    /// The store's.
    pub async fn userinfo(&self, token: &str) -> Result<Option<UserClaims>, OAuthError> {
        let Some(claims) = self.live(token).await? else {
            return Ok(None);
        };
        let Subject::User { user, .. } = claims.subject else {
            return Ok(None);
        };
        Ok(self
            .ports
            .users
            .find_by_id(user)
            .await?
            .filter(User::is_active)
            .map(|user| UserClaims::of(&user, &claims.scopes)))
    }

    /// Revocation (RFC 7009): a refresh token takes its family with it; an access token is
    /// refused until it expires. Tokens of other clients, and unknown ones, are ignored.
    ///
    /// # Errors
    /// `InvalidClient`, or the store's.
    pub async fn revoke(
        &self,
        credentials: &ClientCredentials,
        token: &str,
    ) -> Result<(), OAuthError> {
        let client = self.authenticate(credentials).await?;
        let now = self.ports.clock.now();
        if let Ok(claims) = self.ports.tokens.verify_access(token, now) {
            if claims.client == client.id {
                self.ports
                    .store
                    .revoke_access(&claims.jti, claims.expires_at)
                    .await?;
            }
            return Ok(());
        }
        self.ports
            .store
            .revoke_refresh(&SecretToken::presented(token).hash(), &client.id, now)
            .await?;
        Ok(())
    }

    /// Introspection (RFC 7662): a client sees its own tokens, a resource server
    /// (`introspection: true`) every one. `None` is `{"active": false}`.
    ///
    /// # Errors
    /// `InvalidClient`, or the store's.
    pub async fn introspect(
        &self,
        credentials: &ClientCredentials,
        token: &str,
    ) -> Result<Option<Introspection>, OAuthError> {
        let client = self.authenticate(credentials).await?;
        let Some(claims) = self.live(token).await? else {
            return Ok(None);
        };
        if claims.client != client.id && !client.settings.introspection {
            return Ok(None);
        }
        let username = match claims.subject {
            Subject::User { user, .. } => {
                match self
                    .ports
                    .users
                    .find_by_id(user)
                    .await?
                    .filter(User::is_active)
                {
                    Some(user) => Some(user.username().to_string()),
                    None => return Ok(None),
                }
            }
            Subject::Client => None,
        };
        Ok(Some(Introspection { claims, username }))
    }

    /// The applications `user` has allowed.
    ///
    /// # Errors
    /// The store's.
    pub async fn grants(&self, user: UserId) -> Result<Vec<GrantSummary>, StorageError> {
        self.ports.store.grants(user).await
    }

    /// Forgets `user`'s consent to `client` and revokes that application's tokens;
    /// `false` when there was none.
    ///
    /// # Errors
    /// The store's.
    pub async fn forget(&self, user: UserId, client: &ClientId) -> Result<bool, StorageError> {
        let now = self.ports.clock.now();
        self.ports.store.forget_grant(user, client, now).await
    }

    /// What an `id_token_hint` says, if this provider signed it.
    pub fn id_token_hint(&self, token: &str) -> Option<IdTokenHint> {
        self.ports.tokens.id_token_hint(token)
    }

    /// A client, for the logout endpoint to check a `post_logout_redirect_uri` against.
    ///
    /// # Errors
    /// The store's.
    pub async fn client(&self, id: &ClientId) -> Result<Option<Client>, StorageError> {
        self.ports.clients.find(id).await
    }
}

/// The `aud` of a client's access tokens.
fn audience(client: &Client) -> String {
    client
        .settings
        .audience
        .clone()
        .unwrap_or_else(|| client.id.to_string())
}

/// The scopes of a request, each known and allowed for the client.
fn parse_scopes(raw: &str, client: &Client) -> Result<BTreeSet<Scope>, &'static str> {
    let mut scopes = BTreeSet::new();
    for word in raw.split(' ').filter(|word| !word.is_empty()) {
        let scope = Scope::parse(word).ok_or("a scope is unknown")?;
        if !client.settings.scopes.contains(&scope) {
            return Err("a scope is not allowed for this client");
        }
        scopes.insert(scope);
    }
    if scopes.is_empty() {
        return Err("scope is required (openid for an ID token)");
    }
    Ok(scopes)
}

fn parse_prompt(raw: Option<&str>) -> Result<Prompt, &'static str> {
    let mut prompt = Prompt::default();
    for word in raw.unwrap_or("").split(' ').filter(|word| !word.is_empty()) {
        match word {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => prompt.select_account = true,
            _ => return Err("prompt must be none, login, consent or select_account"),
        }
    }
    if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
        return Err("prompt=none cannot be combined with another value");
    }
    Ok(prompt)
}

/// The PKCE challenge: S256 only, and required of public clients and of those registered
/// with `require_pkce`.
fn parse_challenge(
    params: &AuthorizationParams,
    client: &Client,
) -> Result<Option<String>, &'static str> {
    match (
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    ) {
        (Some(challenge), Some("S256")) if is_challenge(challenge) => {
            Ok(Some(challenge.to_owned()))
        }
        (Some(_), Some("S256")) => Err("code_challenge must be 43 characters of base64url"),
        (Some(_), Some(_) | None) => {
            Err("code_challenge_method must be S256 (plain is not supported)")
        }
        (None, Some(_)) => Err("code_challenge is missing"),
        (None, None) if client.kind == ClientType::Public || client.settings.require_pkce => {
            Err("this client must send a PKCE code_challenge (S256)")
        }
        (None, None) => Ok(None),
    }
}

/// An S256 challenge: the base64url of 32 bytes.
fn is_challenge(raw: &str) -> bool {
    raw.len() == 43
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `verifier` (43 to 128 unreserved characters, RFC 7636 §4.1) hashes to
/// `challenge`. The transform is the `oauth2` crate's.
fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed
        && oauth2::PkceCodeChallenge::from_code_verifier_sha256(&oauth2::PkceCodeVerifier::new(
            verifier.to_owned(),
        ))
        .as_str()
            == challenge
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::tests::{at, user};
    use crate::clients::{ClientName, ClientSettings, ClientUri, MockClientStore};
    use crate::oauth::model::{MockCodeSeal, MockOAuthStore, MockOAuthTokens};
    use crate::ports::{MockClock, MockUserRepository};
    use crate::session::SignInMethod;

    const CALLBACK: &str = "https://app.example/cb";

    fn client(kind: ClientType) -> Client {
        let mut settings = ClientSettings::new(ClientName::parse("App").expect("name"));
        settings.redirect_uris = vec![ClientUri::parse(CALLBACK).expect("uri")];
        Client {
            id: ClientId::parse("app").expect("id"),
            kind,
            settings,
            secret_hash: None,
            created_at: at(),
            updated_at: at(),
        }
    }

    fn service(kind: ClientType, store: MockOAuthStore, codes: MockCodeSeal) -> OAuthService {
        let mut clients = MockClientStore::new();
        let registered = client(kind);
        clients
            .expect_find()
            .returning(move |id| Ok((id.as_str() == "app").then(|| registered.clone())));
        let mut clock = MockClock::new();
        clock.expect_now().returning(at);
        OAuthService::new(
            OAuthPorts {
                clients: Arc::new(clients),
                store: Arc::new(store),
                users: Arc::new(MockUserRepository::new()),
                tokens: Arc::new(MockOAuthTokens::new()),
                codes: Arc::new(codes),
                clock: Arc::new(clock),
            },
            OAuthPolicy {
                refresh_lifetime: Duration::days(30),
                reuse_grace: Duration::seconds(10),
            },
        )
    }

    fn params(extra: impl FnOnce(&mut AuthorizationParams)) -> AuthorizationParams {
        let mut params = AuthorizationParams {
            response_type: Some("code".into()),
            client_id: Some("app".into()),
            redirect_uri: Some(CALLBACK.into()),
            scope: Some("openid email".into()),
            state: Some("s".into()),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            code_challenge_method: Some("S256".into()),
            ..AuthorizationParams::default()
        };
        extra(&mut params);
        params
    }

    fn error_of(redirect: &Redirect) -> Option<&str> {
        redirect
            .params
            .iter()
            .find(|(name, _)| *name == "error")
            .map(|(_, value)| value.as_str())
    }

    #[tokio::test]
    async fn a_bad_client_or_redirect_uri_is_a_page_and_the_rest_go_back_to_the_client() {
        let oauth = service(
            ClientType::Public,
            MockOAuthStore::new(),
            MockCodeSeal::new(),
        );
        for bad in [
            params(|p| p.client_id = Some("nobody".into())),
            params(|p| p.redirect_uri = Some("https://evil.example/cb".into())),
        ] {
            assert!(matches!(
                oauth.check(&bad).await,
                Err(AuthorizeError::Page(_))
            ));
        }
        for (bad, error) in [
            (
                params(|p| p.code_challenge_method = Some("plain".into())),
                "invalid_request",
            ),
            (params(|p| p.code_challenge = None), "invalid_request"),
            (
                params(|p| p.scope = Some("openid admin".into())),
                "invalid_scope",
            ),
            (
                params(|p| p.response_type = Some("token".into())),
                "unsupported_response_type",
            ),
            (
                params(|p| p.prompt = Some("none login".into())),
                "invalid_request",
            ),
        ] {
            match oauth.check(&bad).await {
                Err(AuthorizeError::Redirect(redirect)) => {
                    assert_eq!(error_of(&redirect), Some(error), "{bad:?}");
                    assert!(redirect.params.contains(&("state", "s".into())));
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_remembered_consent_answers_with_a_sealed_code_and_writes_nothing() {
        let mut store = MockOAuthStore::new();
        store
            .expect_grant()
            .returning(|_, _| Ok(Some([Scope::OpenId, Scope::Email, Scope::Profile].into())));
        store.expect_remember_grant().never();
        let mut codes = MockCodeSeal::new();
        codes
            .expect_seal()
            .withf(|code| code.expires_at == at() + CODE_LIFETIME && code.nonce.is_none())
            .returning(|_| Ok("sealed".into()));
        let oauth = service(ClientType::Public, store, codes);
        let authorization = oauth.check(&params(|_| {})).await.expect("checked");
        let sign_in = SignIn {
            user: user(7, false),
            session: SessionId::generate(),
            auth_time: at() - Duration::minutes(5),
            method: SignInMethod::Password,
        };
        let Ok(Next::Redirect(redirect)) = oauth.next(&authorization, Some(&sign_in)).await else {
            panic!("a redirect with a code");
        };
        assert!(redirect.params.contains(&("code", "sealed".into())));
        // Older than max_age: sign in again; prompt=none says so instead.
        let stale = oauth
            .check(&params(|p| p.max_age = Some("60".into())))
            .await
            .expect("checked");
        assert!(matches!(
            oauth.next(&stale, Some(&sign_in)).await,
            Ok(Next::SignIn { again: true })
        ));
        let silent = oauth
            .check(&params(|p| p.prompt = Some("none".into())))
            .await
            .expect("checked");
        let Ok(Next::Redirect(redirect)) = oauth.next(&silent, None).await else {
            panic!("an error back to the client");
        };
        assert_eq!(error_of(&redirect), Some("login_required"));
    }

    #[test]
    fn pkce_takes_the_rfc_7636_example_and_nothing_else() {
        // RFC 7636, Appendix B.
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(
            challenge,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!pkce_matches(
            challenge,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"
        ));
        assert!(!pkce_matches(challenge, "short"));
    }
}
