//! `AuthService`: login with a password, refresh-token rotation with reuse detection,
//! logout, password recovery and reset, and turning an access token back into a user.
//! Signing in without a password (a passkey, an emailed code) is in [`passwordless`].

mod passwordless;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;

use crate::address::EmailAddress;
use crate::audit::{AuditEvent, AuditLog, LoginFailure};
use crate::cluster::SessionEvents;
use crate::email::{EmailKind, PendingToken, TokenPurpose};
use crate::error::AuthError;
use crate::mfa::{self, Authenticator};
use crate::passkeys::{PasskeyStore, WebAuthn};
use crate::ports::{
    AccessToken, Clock, NewRefreshToken, PasswordHasher, RefreshTokenStore, Rotation, TokenIssuer,
    UserRepository,
};
use crate::session::{Challenge, ClientInfo, Session, SessionId, SignInMethod};
use crate::token::{SecretToken, TokenHash};
use crate::user::{Login, Password, User, UserId};

/// How long a password-reset link works.
pub const RESET_TOKEN_LIFETIME: Duration = Duration::hours(1);

/// How long an `mfa_token` waits for its code.
pub const MFA_TOKEN_LIFETIME: Duration = Duration::minutes(5);

/// Wrong codes that spend an `mfa_token`.
pub const MFA_ATTEMPTS: u32 = 5;

/// The session rules that deployments configure.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub refresh_lifetime: Duration,
    /// A spent refresh token presented again this soon after its rotation gets a fresh
    /// pair instead of revoking the login (two tabs refreshing at once).
    pub reuse_grace: Duration,
    pub require_verified_email: bool,
}

/// A successful login or refresh: an access token and a refresh token.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub user: User,
    pub session: SessionId,
    pub access_token: AccessToken,
    pub refresh_token: SecretToken,
}

/// Where the first step of a login leads.
#[derive(Debug)]
pub enum LoginStep {
    /// Signed in: the tokens of a new session.
    Done(LoginOutcome),
    /// The password was right and the user has a second factor: the second step
    /// ([`AuthService::complete_mfa`]) presents `token` with a code of one of `methods`.
    SecondStep {
        token: SecretToken,
        methods: &'static [SecondFactor],
    },
}

/// What a second step can present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    /// A code of the authenticator app (TOTP).
    Totp,
    /// One of the single-use recovery codes given when TOTP was confirmed.
    RecoveryCode,
    /// One of the user's passkeys (`POST /auth/mfa/options`, then a credential).
    Passkey,
}

impl SecondFactor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Passkey => "passkey",
        }
    }
}

/// The second factors of a TOTP user, without and with passkeys.
const TOTP_FACTORS: &[SecondFactor] = &[SecondFactor::Totp, SecondFactor::RecoveryCode];
const ALL_FACTORS: &[SecondFactor] = &[
    SecondFactor::Totp,
    SecondFactor::RecoveryCode,
    SecondFactor::Passkey,
];

/// Who presented an access token, through which login, until when.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub session: SessionId,
    /// When the token expires (a WebSocket opened with it must close then).
    pub expires_at: DateTime<Utc>,
}

pub struct AuthService {
    users: Arc<dyn UserRepository>,
    sessions: Arc<dyn RefreshTokenStore>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn TokenIssuer>,
    authenticator: Arc<dyn Authenticator>,
    audit: Arc<dyn AuditLog>,
    clock: Arc<dyn Clock>,
    policy: SessionPolicy,
    /// Told when a reset ends every session of a user.
    ended: Arc<dyn SessionEvents>,
    passkeys: Arc<dyn PasskeyStore>,
    /// `None` when the server has no WebAuthn relying party.
    webauthn: Option<Arc<dyn WebAuthn>>,
}

/// The adapters `AuthService` needs.
pub struct AuthPorts {
    pub user_store: Arc<dyn UserRepository>,
    pub sessions: Arc<dyn RefreshTokenStore>,
    pub hasher: Arc<dyn PasswordHasher>,
    pub tokens: Arc<dyn TokenIssuer>,
    pub authenticator: Arc<dyn Authenticator>,
    /// Records what changes nothing else: failed logins.
    pub audit: Arc<dyn AuditLog>,
    pub clock: Arc<dyn Clock>,
    /// Told when logins end.
    pub ended: Arc<dyn SessionEvents>,
    pub passkeys: Arc<dyn PasskeyStore>,
    pub webauthn: Option<Arc<dyn WebAuthn>>,
}

impl AuthService {
    pub fn new(ports: AuthPorts, policy: SessionPolicy) -> Self {
        let AuthPorts {
            user_store: users,
            sessions,
            hasher,
            tokens,
            authenticator,
            audit,
            clock,
            ended,
            passkeys,
            webauthn,
        } = ports;
        Self {
            users,
            sessions,
            hasher,
            tokens,
            authenticator,
            audit,
            clock,
            policy,
            ended,
            passkeys,
            webauthn,
        }
    }

    /// Logs in by email or username and starts a new session.
    ///
    /// # Errors
    /// `InvalidCredentials` for an unknown login or a wrong password, in the same time (the
    /// hasher verifies against a dummy hash for an unknown user); `Inactive`, and
    /// `Unverified` when verification is required, only after the password was checked,
    /// so they reveal nothing to someone who does not know it. A user with TOTP gets
    /// [`LoginStep::SecondStep`] instead of a session.
    pub async fn login(
        &self,
        login: &Login,
        password: &SecretString,
        client: &ClientInfo,
    ) -> Result<LoginStep, AuthError> {
        let user = match login {
            Login::Email(email) => self.users.find_by_email(email).await?,
            Login::Username(name) => self.users.find_by_username(name).await?,
            Login::Nobody => None,
        };
        let verified = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
            .await?;
        let user = match user {
            Some(user) if verified => user,
            Some(user) => {
                self.failed(Some(user.id), LoginFailure::BadPassword).await;
                return Err(AuthError::InvalidCredentials);
            }
            None => {
                self.failed(None, LoginFailure::UnknownUser).await;
                return Err(AuthError::InvalidCredentials);
            }
        };
        if let Err(refused) = self.may_hold_tokens(&user) {
            let reason = if matches!(refused, AuthError::Inactive) {
                LoginFailure::Inactive
            } else {
                LoginFailure::Unverified
            };
            self.failed(Some(user.id), reason).await;
            return Err(refused);
        }
        self.first_factor_proven(user, SignInMethod::Password, client)
            .await
    }

    /// An upstream provider vouched for `user`: one factor, so a TOTP user still takes the
    /// second step.
    pub(crate) async fn provider_signed_in(
        &self,
        user: User,
        client: &ClientInfo,
    ) -> Result<LoginStep, AuthError> {
        self.may_hold_tokens(&user)?;
        self.first_factor_proven(user, SignInMethod::Provider, client)
            .await
    }

    /// Checks `user`'s password (confirming a link), recording a failure as a login's.
    pub(crate) async fn check_password(
        &self,
        user: &User,
        password: &SecretString,
    ) -> Result<(), AuthError> {
        let right = self
            .hasher
            .verify(password, Some(user.password_hash.clone()))
            .await?;
        if !right {
            self.failed(Some(user.id), LoginFailure::BadPassword).await;
            return Err(AuthError::InvalidCredentials);
        }
        Ok(())
    }

    /// A first factor other than a passkey was proven: a session, or for a TOTP user the
    /// second step with the factors this user has.
    async fn first_factor_proven(
        &self,
        user: User,
        first: SignInMethod,
        client: &ClientInfo,
    ) -> Result<LoginStep, AuthError> {
        let now = self.clock.now();
        if user.totp.is_on() {
            let methods = if self.has_passkeys(user.id).await? {
                ALL_FACTORS
            } else {
                TOTP_FACTORS
            };
            let mfa_token = SecretToken::generate();
            self.sessions
                .start_challenge(
                    user.id,
                    &mfa_token.hash(),
                    first,
                    now + MFA_TOKEN_LIFETIME,
                    now,
                )
                .await?;
            return Ok(LoginStep::SecondStep {
                token: mfa_token,
                methods,
            });
        }
        let mut client = client.clone();
        client.method = first;
        self.start_session(user, &client, now)
            .await
            .map(LoginStep::Done)
    }

    /// The second step of a login with TOTP: the `mfa_token` of the first and a TOTP or
    /// recovery code.
    ///
    /// # Errors
    /// `InvalidMfa` for an unknown, expired or spent token and for a wrong or reused code
    /// (the fifth wrong code spends the token); `Inactive` or `Unverified` as for a login.
    pub async fn complete_mfa(
        &self,
        mfa_token: &str,
        code: &str,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, AuthError> {
        let now = self.clock.now();
        let (token, challenge, user) = self.open_challenge(mfa_token).await?;
        let right = mfa::spend_code(
            self.authenticator.as_ref(),
            self.users.as_ref(),
            &user,
            code,
            now,
        )
        .await?;
        if !right {
            self.failed(Some(user.id), LoginFailure::MfaFailed).await;
            self.sessions.fail_challenge(&token, MFA_ATTEMPTS).await?;
            return Err(AuthError::InvalidMfa);
        }
        self.close_challenge(&token, user, challenge.first.then_totp(), client)
            .await
    }

    /// The live challenge of an `mfa_token`, and its user if that user may still sign in.
    async fn open_challenge(
        &self,
        mfa_token: &str,
    ) -> Result<(TokenHash, Challenge, User), AuthError> {
        let token = SecretToken::presented(mfa_token).hash();
        let challenge = self
            .sessions
            .challenge(&token, self.clock.now())
            .await?
            .ok_or(AuthError::InvalidMfa)?;
        let user = self
            .users
            .find_by_id(challenge.user)
            .await?
            .ok_or(AuthError::InvalidMfa)?;
        self.may_hold_tokens(&user)?;
        Ok((token, challenge, user))
    }

    /// Spends a challenge whose second factor was right, and starts the session; of two
    /// racing steps, one wins.
    async fn close_challenge(
        &self,
        token: &TokenHash,
        user: User,
        method: SignInMethod,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, AuthError> {
        let now = self.clock.now();
        if !self.sessions.spend_challenge(token, now).await? {
            return Err(AuthError::InvalidMfa);
        }
        let mut client = client.clone();
        client.method = method;
        self.start_session(user, &client, now).await
    }

    /// Records a failed login. The answer does not wait on the log's health: a log that is
    /// down is a warning, not a different answer (which would tell attempts apart).
    async fn failed(&self, user: Option<UserId>, reason: LoginFailure) {
        let event = AuditEvent::login_failed(user, reason);
        if let Err(error) = self.audit.record(event, self.clock.now()).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "could not record a failed login"
            );
        }
    }

    async fn start_session(
        &self,
        user: User,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<LoginOutcome, AuthError> {
        let refresh_token = SecretToken::generate();
        let session = self
            .sessions
            .start_session(user.id, client, self.refresh_record(&refresh_token), now)
            .await?;
        let access_token = self.tokens.issue(&user, session, now)?;
        Ok(LoginOutcome {
            user,
            session,
            access_token,
            refresh_token,
        })
    }

    /// Exchanges a refresh token for a new pair, spending it.
    ///
    /// # Errors
    /// `InvalidRefreshToken` for an unknown, expired or revoked token, and for a spent one
    /// presented after the grace window, which also revokes its whole family; `Inactive` or
    /// `Unverified` as for a login.
    pub async fn refresh(&self, presented: &str) -> Result<LoginOutcome, AuthError> {
        let refresh_token = SecretToken::generate();
        let now = self.clock.now();
        let rotation = self
            .sessions
            .rotate(
                &SecretToken::presented(presented).hash(),
                self.refresh_record(&refresh_token),
                now,
                self.policy.reuse_grace,
            )
            .await?;
        let (user_id, session) = match rotation {
            Rotation::Rotated { user, session } | Rotation::WithinGrace { user, session } => {
                (user, session)
            }
            Rotation::Reused { user, session } => {
                self.ended.session_ended(user, session).await;
                return Err(AuthError::InvalidRefreshToken);
            }
            Rotation::Invalid => return Err(AuthError::InvalidRefreshToken),
        };
        let user = self
            .users
            .find_by_id(user_id)
            .await?
            .ok_or(AuthError::InvalidRefreshToken)?;
        self.may_hold_tokens(&user)?;
        let access_token = self.tokens.issue(&user, session, now)?;
        Ok(LoginOutcome {
            user,
            session,
            access_token,
            refresh_token,
        })
    }

    /// Ends the login the refresh token belongs to, its access tokens and sockets with it.
    /// Unknown tokens are ignored, so logging out twice is harmless.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected` only.
    pub async fn logout(&self, presented: &str) -> Result<(), AuthError> {
        let ended = self
            .sessions
            .end_by_token(&SecretToken::presented(presented).hash(), self.clock.now())
            .await?;
        if let Some((user, session)) = ended {
            self.ended.session_ended(user, session).await;
        }
        Ok(())
    }

    /// The keys other services verify access tokens with, now (the JWKS).
    pub fn published_keys(&self) -> Vec<crate::keys::PublishedKey> {
        self.tokens.published_keys(self.clock.now())
    }

    /// The live logins of `user`, newest first.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected` only.
    pub async fn sessions(&self, user: UserId) -> Result<Vec<Session>, AuthError> {
        Ok(self.sessions.list(user, self.clock.now()).await?)
    }

    /// Ends one login of `user`: its refresh and access tokens stop working at once, and
    /// its sockets close.
    ///
    /// # Errors
    /// `SessionNotFound` when `user` has no live session with this id.
    pub async fn end_session(&self, user: UserId, session: SessionId) -> Result<(), AuthError> {
        if !self.sessions.end(user, session, self.clock.now()).await? {
            return Err(AuthError::SessionNotFound);
        }
        self.ended.session_ended(user, session).await;
        Ok(())
    }

    /// Queues a reset email when `email` belongs to an active user; does nothing otherwise,
    /// and the caller answers the same either way.
    ///
    /// # Errors
    /// `Unexpected` only.
    pub async fn request_password_reset(&self, email: &EmailAddress) -> Result<(), AuthError> {
        let Some(user) = self.users.find_by_email(email).await? else {
            return Ok(());
        };
        if !user.is_active {
            return Ok(());
        }
        let now = self.clock.now();
        let token = PendingToken::new(
            user.email.clone(),
            EmailKind::PasswordReset,
            user.username.to_string(),
            now + RESET_TOKEN_LIFETIME,
        );
        self.users
            .create_one_time_token(user.id, TokenPurpose::ResetPassword, token, now)
            .await?;
        Ok(())
    }

    /// Sets a new password with a reset token, ending every session of the user.
    ///
    /// # Errors
    /// `InvalidResetToken` for an unknown, used or expired token.
    pub async fn reset_password(
        &self,
        token: &str,
        password: &Password,
    ) -> Result<UserId, AuthError> {
        let new_hash = self.hasher.hash(password).await?;
        let user = self
            .users
            .reset_password(
                &SecretToken::presented(token).hash(),
                new_hash,
                self.clock.now(),
            )
            .await?
            .ok_or(AuthError::InvalidResetToken)?;
        self.ended.ended(user.id).await;
        Ok(user.id)
    }

    /// Resolves an access token to its user and login, checked against the stores on every
    /// call: a deleted user, a token older than the last password change, or one of a login
    /// that has ended, is refused at once.
    ///
    /// # Errors
    /// `InvalidToken` or `Inactive`.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, AuthError> {
        let now = self.clock.now();
        let claims = self
            .tokens
            .verify(token, now)
            .map_err(|_| AuthError::InvalidToken)?;
        let (user, live) = self
            .users
            .signed_in(claims.user_id, claims.session, now)
            .await?
            .filter(|(user, _)| user.token_version == claims.token_version)
            .ok_or(AuthError::InvalidToken)?;
        if !live {
            return Err(AuthError::InvalidToken);
        }
        if !user.is_active {
            return Err(AuthError::Inactive);
        }
        Ok(Authenticated {
            user,
            session: claims.session,
            expires_at: claims.expires_at,
        })
    }

    fn may_hold_tokens(&self, user: &User) -> Result<(), AuthError> {
        if !user.is_active {
            return Err(AuthError::Inactive);
        }
        if self.policy.require_verified_email && !user.email_verified {
            return Err(AuthError::Unverified);
        }
        Ok(())
    }

    fn refresh_record(&self, token: &SecretToken) -> NewRefreshToken {
        NewRefreshToken {
            hash: token.hash(),
            expires_at: self.clock.now() + self.policy.refresh_lifetime,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The session of a one-step login; a test that expects one fails on a second step.
    fn signed_in(step: LoginStep) -> LoginOutcome {
        match step {
            LoginStep::Done(outcome) => outcome,
            LoginStep::SecondStep { .. } => panic!("a second step, not a session"),
        }
    }
    use crate::UserId;
    use crate::accounts::tests::{at, user};
    use crate::cluster::MockSessionEvents;
    use crate::ports::{
        AccessClaims, MockClock, MockPasswordHasher, MockRefreshTokenStore, MockTokenIssuer,
        MockUserRepository, TokenError,
    };
    use crate::user::Username;
    use secrecy::ExposeSecret;

    fn clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(at);
        Arc::new(clock)
    }

    fn issuer() -> MockTokenIssuer {
        let mut tokens = MockTokenIssuer::new();
        tokens.expect_issue().returning(|user, _, _| {
            Ok(AccessToken {
                token: SecretString::from(format!("token-for-{}", user.id)),
                expires_in: 1800,
            })
        });
        tokens
    }

    const POLICY: SessionPolicy = SessionPolicy {
        refresh_lifetime: Duration::days(30),
        reuse_grace: Duration::seconds(10),
        require_verified_email: false,
    };

    /// The session every test login starts.
    fn session() -> SessionId {
        "0b5c8f3e-2d1a-4c6b-9e7f-1a2b3c4d5e6f".parse().expect("id")
    }

    /// A store where logins start [`session`], which stays live.
    fn sessions() -> MockRefreshTokenStore {
        let mut sessions = MockRefreshTokenStore::new();
        sessions
            .expect_start_session()
            .returning(|_, _, _, _| Ok(session()));
        sessions
    }

    fn service(
        users: MockUserRepository,
        hasher: MockPasswordHasher,
        tokens: MockTokenIssuer,
    ) -> AuthService {
        service_with(users, hasher, tokens, sessions(), POLICY)
    }

    fn service_with(
        users: MockUserRepository,
        hasher: MockPasswordHasher,
        tokens: MockTokenIssuer,
        sessions: MockRefreshTokenStore,
        policy: SessionPolicy,
    ) -> AuthService {
        AuthService::new(
            AuthPorts {
                user_store: Arc::new(users),
                sessions: Arc::new(sessions),
                hasher: Arc::new(hasher),
                tokens: Arc::new(tokens),
                authenticator: Arc::new(crate::mfa::MockAuthenticator::new()),
                audit: Arc::new(recording()),
                clock: clock(),
                ended: Arc::new(crate::cluster::NoSessions),
                passkeys: Arc::new(no_passkeys()),
                webauthn: None,
            },
            policy,
        )
    }

    /// A passkey store of users without passkeys.
    fn no_passkeys() -> crate::passkeys::MockPasskeyStore {
        let mut passkeys = crate::passkeys::MockPasskeyStore::new();
        passkeys.expect_stored().returning(|_| Ok(Vec::new()));
        passkeys
    }

    /// An audit log that takes every event.
    fn recording() -> crate::audit::MockAuditLog {
        let mut audit = crate::audit::MockAuditLog::new();
        audit.expect_record().returning(|_, _| Ok(()));
        audit
    }

    fn service_told(
        users: MockUserRepository,
        tokens: MockTokenIssuer,
        sessions: MockRefreshTokenStore,
        events: MockSessionEvents,
    ) -> AuthService {
        AuthService::new(
            AuthPorts {
                user_store: Arc::new(users),
                sessions: Arc::new(sessions),
                hasher: Arc::new(MockPasswordHasher::new()),
                tokens: Arc::new(tokens),
                authenticator: Arc::new(crate::mfa::MockAuthenticator::new()),
                audit: Arc::new(recording()),
                clock: clock(),
                ended: Arc::new(events),
                passkeys: Arc::new(no_passkeys()),
                webauthn: None,
            },
            POLICY,
        )
    }

    fn accepting() -> MockPasswordHasher {
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().returning(|_, _| Ok(true));
        hasher
            .expect_hash()
            .returning(|_| Ok(crate::PasswordHash::from_phc("new-hash".into())));
        hasher
    }

    #[tokio::test]
    async fn login_starts_a_session_with_its_client_and_the_hash_of_the_refresh_token() {
        let mut users = MockUserRepository::new();
        users
            .expect_find_by_username()
            .returning(|_| Ok(Some(user(1, false))));
        let client = ClientInfo::new(Some([203, 0, 113, 7].into()), Some("Phone/1"));
        let expected = client.clone();
        let mut sessions = MockRefreshTokenStore::new();
        sessions
            .expect_start_session()
            .withf(move |id, client, token, now| {
                *id == UserId::new(1)
                    && *client == expected
                    && *now == at()
                    && token.expires_at == at() + Duration::days(30)
            })
            .times(1)
            .returning(|_, _, _, _| Ok(session()));
        let mut tokens = MockTokenIssuer::new();
        tokens
            .expect_issue()
            .withf(|user, sid, _| user.id == UserId::new(1) && *sid == session())
            .times(1)
            .returning(|_, _, _| {
                Ok(AccessToken {
                    token: SecretString::from("token"),
                    expires_in: 1800,
                })
            });
        let outcome = service_with(users, accepting(), tokens, sessions, POLICY)
            .login(&Login::parse("user1"), &SecretString::from("pw"), &client)
            .await
            .map(signed_in)
            .expect("logged in");
        assert_eq!(outcome.refresh_token.expose().len(), 43);
        assert_eq!(outcome.session, session());
    }

    #[tokio::test]
    async fn unverified_users_are_refused_when_verification_is_required() {
        let mut users = MockUserRepository::new();
        users
            .expect_find_by_username()
            .returning(|_| Ok(Some(user(1, false))));
        let policy = SessionPolicy {
            require_verified_email: true,
            ..POLICY
        };
        let result = service_with(users, accepting(), issuer(), sessions(), policy)
            .login(
                &Login::parse("user1"),
                &SecretString::from("pw"),
                &ClientInfo::default(),
            )
            .await;
        assert!(matches!(result, Err(AuthError::Unverified)), "{result:?}");
    }

    fn rotating(outcome: Rotation) -> MockRefreshTokenStore {
        let mut sessions = MockRefreshTokenStore::new();
        sessions
            .expect_rotate()
            .withf(|presented, replacement, now, grace| {
                *presented == SecretToken::presented("old").hash()
                    && replacement.expires_at == at() + Duration::days(30)
                    && *now == at()
                    && *grace == Duration::seconds(10)
            })
            .times(1)
            .returning(move |_, _, _, _| Ok(outcome.clone()));
        sessions
    }

    fn found() -> MockUserRepository {
        let mut users = MockUserRepository::new();
        users
            .expect_find_by_id()
            .returning(|id| Ok(Some(user(id.get(), false))));
        users
            .expect_signed_in()
            .returning(|id, _, _| Ok(Some((user(id.get(), false), true))));
        users
    }

    #[tokio::test]
    async fn refresh_issues_a_new_pair_when_rotated_or_within_grace() {
        for rotation in [
            Rotation::Rotated {
                user: UserId::new(1),
                session: session(),
            },
            Rotation::WithinGrace {
                user: UserId::new(1),
                session: session(),
            },
        ] {
            let outcome = service_with(
                found(),
                MockPasswordHasher::new(),
                issuer(),
                rotating(rotation),
                POLICY,
            )
            .refresh("old")
            .await
            .expect("refreshed");
            assert_eq!(outcome.access_token.token.expose_secret(), "token-for-1");
        }
    }

    /// Session events that expect exactly `times` ends of [`session`] of user 1.
    fn ending(times: usize) -> MockSessionEvents {
        let mut events = MockSessionEvents::new();
        events
            .expect_session_ended()
            .withf(|user, sid| *user == UserId::new(1) && *sid == session())
            .times(times)
            .returning(|_, _| ());
        events
    }

    #[tokio::test]
    async fn a_reused_or_unknown_refresh_token_is_refused_and_reuse_ends_the_session() {
        let reused = Rotation::Reused {
            user: UserId::new(1),
            session: session(),
        };
        for (rotation, ends) in [(reused, 1), (Rotation::Invalid, 0)] {
            let mut tokens = MockTokenIssuer::new();
            tokens.expect_issue().never();
            let result = service_told(
                MockUserRepository::new(),
                tokens,
                rotating(rotation),
                ending(ends),
            )
            .refresh("old")
            .await;
            assert!(
                matches!(result, Err(AuthError::InvalidRefreshToken)),
                "{result:?}"
            );
        }
    }

    #[tokio::test]
    async fn logout_ends_the_session_of_the_hash_and_says_so_once() {
        for (found, ends) in [(Some((UserId::new(1), session())), 1), (None, 0)] {
            let mut sessions = MockRefreshTokenStore::new();
            sessions
                .expect_end_by_token()
                .withf(|hash, now| *hash == SecretToken::presented("tok").hash() && *now == at())
                .times(1)
                .returning(move |_, _| Ok(found));
            service_told(
                MockUserRepository::new(),
                MockTokenIssuer::new(),
                sessions,
                ending(ends),
            )
            .logout("tok")
            .await
            .expect("logged out");
        }
    }

    #[tokio::test]
    async fn ending_a_session_is_only_for_its_own_user() {
        for (ended, result_is_ok) in [(true, true), (false, false)] {
            let mut sessions = MockRefreshTokenStore::new();
            sessions
                .expect_end()
                .withf(|user, sid, _| *user == UserId::new(1) && *sid == session())
                .times(1)
                .returning(move |_, _, _| Ok(ended));
            let result = service_told(
                MockUserRepository::new(),
                MockTokenIssuer::new(),
                sessions,
                ending(usize::from(ended)),
            )
            .end_session(UserId::new(1), session())
            .await;
            assert_eq!(result.is_ok(), result_is_ok, "{result:?}");
            if !result_is_ok {
                assert!(matches!(result, Err(AuthError::SessionNotFound)));
            }
        }
    }

    #[tokio::test]
    async fn recovery_queues_a_one_hour_reset_only_for_active_known_users() {
        let mut users = MockUserRepository::new();
        users.expect_find_by_email().returning(|email| {
            Ok(match email.as_str() {
                "user1@example.com" => Some(user(1, false)),
                "user2@example.com" => {
                    let mut u = user(2, false);
                    u.is_active = false;
                    Some(u)
                }
                _ => None,
            })
        });
        users
            .expect_create_one_time_token()
            .withf(|id, purpose, token, _| {
                *id == UserId::new(1)
                    && *purpose == TokenPurpose::ResetPassword
                    && token.email().kind == EmailKind::PasswordReset
                    && token.email().to.as_str() == "user1@example.com"
                    && token.expires_at() == at() + RESET_TOKEN_LIFETIME
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let service = service(users, MockPasswordHasher::new(), MockTokenIssuer::new());
        for email in [
            "USER1@example.com",
            "user2@example.com",
            "nobody@example.com",
        ] {
            let email = EmailAddress::parse(email).expect("email");
            service
                .request_password_reset(&email)
                .await
                .expect("same answer");
        }
    }

    #[tokio::test]
    async fn reset_needs_a_valid_token() {
        let mut users = MockUserRepository::new();
        users
            .expect_reset_password()
            .withf(|hash, new_hash, _| {
                *hash == SecretToken::presented("good").hash() && new_hash.as_str() == "new-hash"
            })
            .returning(|_, _, _| Ok(Some(user(1, false))));
        users.expect_reset_password().returning(|_, _, _| Ok(None));
        let mut ended = crate::cluster::MockSessionEvents::new();
        ended
            .expect_ended()
            .with(mockall::predicate::eq(UserId::new(1)))
            .times(1)
            .returning(|_| ());
        let service = AuthService::new(
            AuthPorts {
                user_store: Arc::new(users),
                sessions: Arc::new(sessions()),
                hasher: Arc::new(accepting()),
                tokens: Arc::new(MockTokenIssuer::new()),
                authenticator: Arc::new(crate::mfa::MockAuthenticator::new()),
                audit: Arc::new(recording()),
                clock: clock(),
                ended: Arc::new(ended),
                passkeys: Arc::new(no_passkeys()),
                webauthn: None,
            },
            POLICY,
        );
        let password = Password::parse("brand new password").expect("pw");
        assert_eq!(
            service
                .reset_password("good", &password)
                .await
                .expect("reset"),
            UserId::new(1)
        );
        let result = service.reset_password("bad", &password).await;
        assert!(
            matches!(result, Err(AuthError::InvalidResetToken)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn login_issues_a_token_for_the_right_password() {
        let mut users = MockUserRepository::new();
        users
            .expect_find_by_email()
            .withf(|email| email.as_str() == "ann@example.com")
            .returning(|_| Ok(Some(user(1, false))));
        let mut hasher = MockPasswordHasher::new();
        hasher
            .expect_verify()
            .withf(|candidate, hash| {
                candidate.expose_secret() == "right"
                    && hash.as_ref().is_some_and(|h| h.as_str() == "hash-of-user1")
            })
            .returning(|_, _| Ok(true));
        let outcome = service(users, hasher, issuer())
            .login(
                &Login::parse(" ann@example.com "),
                &SecretString::from("right"),
                &ClientInfo::default(),
            )
            .await
            .map(signed_in)
            .expect("logged in");
        assert_eq!(outcome.access_token.token.expose_secret(), "token-for-1");
    }

    #[test]
    fn a_login_is_an_email_a_username_or_nobody() {
        assert_eq!(
            Login::parse(" Ann@Example.com "),
            Login::Email(EmailAddress::parse("ann@example.com").expect("email"))
        );
        assert_eq!(
            Login::parse("Ann"),
            Login::Username(Username::parse("Ann").expect("name"))
        );
        for nobody in ["", "a", "not an email", "x@y", "two words"] {
            assert_eq!(Login::parse(nobody), Login::Nobody, "{nobody:?}");
        }
        assert_eq!(Login::parse("ANN").key(), Login::parse("ann").key());
        assert_eq!(Login::parse("a b").key(), Login::parse("c d").key());
    }

    /// A hasher that expects exactly one verification, against the dummy hash.
    fn verifying_the_dummy_once() -> MockPasswordHasher {
        let mut hasher = MockPasswordHasher::new();
        hasher
            .expect_verify()
            .withf(|_, hash| hash.is_none())
            .times(1)
            .returning(|_, _| Ok(false));
        hasher
    }

    #[tokio::test]
    async fn a_login_no_account_can_have_still_costs_one_verification() {
        let mut users = MockUserRepository::new();
        users.expect_find_by_email().never();
        users.expect_find_by_username().never();
        let hasher = verifying_the_dummy_once();
        let result = service(users, hasher, MockTokenIssuer::new())
            .login(
                &Login::parse("not a login"),
                &SecretString::from("whatever"),
                &ClientInfo::default(),
            )
            .await;
        assert!(
            matches!(result, Err(AuthError::InvalidCredentials)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn an_unknown_user_still_costs_one_verification() {
        let mut users = MockUserRepository::new();
        users.expect_find_by_username().returning(|_| Ok(None));
        let hasher = verifying_the_dummy_once();
        let mut tokens = MockTokenIssuer::new();
        tokens.expect_issue().never();
        let result = service(users, hasher, tokens)
            .login(
                &Login::parse("nobody"),
                &SecretString::from("whatever"),
                &ClientInfo::default(),
            )
            .await;
        assert!(
            matches!(result, Err(AuthError::InvalidCredentials)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn a_wrong_password_is_the_same_error_as_an_unknown_user() {
        let mut users = MockUserRepository::new();
        users
            .expect_find_by_username()
            .returning(|_| Ok(Some(user(1, false))));
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().returning(|_, _| Ok(false));
        let result = service(users, hasher, MockTokenIssuer::new())
            .login(
                &Login::parse("user1"),
                &SecretString::from("wrong"),
                &ClientInfo::default(),
            )
            .await;
        assert!(
            matches!(result, Err(AuthError::InvalidCredentials)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn inactive_users_are_refused_only_after_the_password_check() {
        let inactive = || {
            let mut u = user(1, false);
            u.is_active = false;
            u
        };
        for (password_ok, expect_inactive) in [(true, true), (false, false)] {
            let mut users = MockUserRepository::new();
            users
                .expect_find_by_username()
                .returning(move |_| Ok(Some(inactive())));
            let mut hasher = MockPasswordHasher::new();
            hasher
                .expect_verify()
                .returning(move |_, _| Ok(password_ok));
            let result = service(users, hasher, MockTokenIssuer::new())
                .login(
                    &Login::parse("user1"),
                    &SecretString::from("pw"),
                    &ClientInfo::default(),
                )
                .await;
            if expect_inactive {
                assert!(matches!(result, Err(AuthError::Inactive)), "{result:?}");
            } else {
                assert!(
                    matches!(result, Err(AuthError::InvalidCredentials)),
                    "{result:?}"
                );
            }
        }
    }

    fn verifying(token_version: i64) -> MockTokenIssuer {
        let mut tokens = MockTokenIssuer::new();
        tokens.expect_verify().returning(move |token, _| {
            if token == "good" {
                Ok(AccessClaims {
                    user_id: UserId::new(1),
                    session: session(),
                    token_version,
                    expires_at: at() + Duration::minutes(30),
                })
            } else {
                Err(TokenError::Invalid)
            }
        });
        tokens
    }

    #[tokio::test]
    async fn a_valid_token_resolves_to_its_user() {
        let mut users = MockUserRepository::new();
        users
            .expect_signed_in()
            .withf(|id, sid, now| *id == UserId::new(1) && *sid == session() && *now == at())
            .times(1)
            .returning(|id, _, _| Ok(Some((user(id.get(), false), true))));
        let found = service(users, MockPasswordHasher::new(), verifying(1))
            .authenticate("good")
            .await
            .expect("authenticated");
        assert_eq!(found.user.id, UserId::new(1));
        assert_eq!(found.session, session());
    }

    #[tokio::test]
    async fn a_token_of_an_ended_session_is_refused() {
        let mut users = MockUserRepository::new();
        users
            .expect_signed_in()
            .withf(|id, sid, now| *id == UserId::new(1) && *sid == session() && *now == at())
            .times(1)
            .returning(|id, _, _| Ok(Some((user(id.get(), false), false))));
        let result = service(users, MockPasswordHasher::new(), verifying(1))
            .authenticate("good")
            .await;
        assert!(matches!(result, Err(AuthError::InvalidToken)), "{result:?}");
    }

    #[tokio::test]
    async fn bad_stale_or_orphaned_tokens_are_refused() {
        let mut users = MockUserRepository::new();
        users
            .expect_signed_in()
            .returning(|id, _, _| Ok(Some((user(id.get(), false), true))));
        let service_ = service(users, MockPasswordHasher::new(), verifying(1));
        assert!(matches!(
            service_.authenticate("forged").await,
            Err(AuthError::InvalidToken)
        ));

        let mut users = MockUserRepository::new();
        users
            .expect_signed_in()
            .returning(|id, _, _| Ok(Some((user(id.get(), false), true))));
        let stale = service(users, MockPasswordHasher::new(), verifying(0))
            .authenticate("good")
            .await;
        assert!(matches!(stale, Err(AuthError::InvalidToken)), "{stale:?}");

        let mut users = MockUserRepository::new();
        users.expect_signed_in().returning(|_, _, _| Ok(None));
        let deleted = service(users, MockPasswordHasher::new(), verifying(1))
            .authenticate("good")
            .await;
        assert!(
            matches!(deleted, Err(AuthError::InvalidToken)),
            "{deleted:?}"
        );
    }

    #[tokio::test]
    async fn a_deactivated_users_token_is_forbidden() {
        let mut users = MockUserRepository::new();
        users.expect_signed_in().returning(|id, _, _| {
            let mut u = user(id.get(), false);
            u.is_active = false;
            Ok(Some((u, true)))
        });
        let result = service(users, MockPasswordHasher::new(), verifying(1))
            .authenticate("good")
            .await;
        assert!(matches!(result, Err(AuthError::Inactive)), "{result:?}");
    }
}
