//! Signing in without a password: a passkey alone (usernameless: the authenticator names
//! the account), a passkey as the second step of a TOTP user, and a code or link sent by
//! email (one factor: a TOTP user still takes the second step).

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;

use super::{AuthService, LoginOutcome, LoginStep, MFA_ATTEMPTS};
use crate::address::EmailAddress;
use crate::audit::{AuditEvent, EventType, LoginFailure};
use crate::email::{PendingToken, TokenPurpose, code_hash};
use crate::error::AuthError;
use crate::passkeys::{CeremonyRefusal, FLOW_LIFETIME, Flow, FlowPurpose, StoredPasskey, WebAuthn};
use crate::session::{ClientInfo, SignInMethod};
use crate::token::SecretToken;
use crate::user::{SignInCheck, SignInProof, User, UserId};

/// How long an emailed sign-in code and its link work.
pub const EMAIL_CODE_LIFETIME: Duration = Duration::minutes(10);

/// Wrong codes that spend an emailed sign-in code.
pub const EMAIL_CODE_ATTEMPTS: u32 = 5;

impl AuthService {
    fn webauthn(&self) -> Result<&dyn WebAuthn, AuthError> {
        self.webauthn
            .as_deref()
            .ok_or(AuthError::PasskeysUnavailable)
    }

    /// Begins a passkey sign-in: options without an allow list (the authenticator offers
    /// its discoverable credential) and the `flow_token` the finish presents.
    ///
    /// # Errors
    /// `PasskeysUnavailable`, or a store failure.
    pub async fn passkey_options(&self) -> Result<(SecretToken, Value), AuthError> {
        let ceremony = self.webauthn()?.sign_in()?;
        let token = SecretToken::generate();
        let flow = Flow {
            purpose: FlowPurpose::SignIn,
            user: None,
            state: ceremony.state,
        };
        self.passkeys
            .start_flow(&token.hash(), &flow, self.clock.now() + FLOW_LIFETIME)
            .await?;
        Ok((token, ceremony.public_key))
    }

    /// Signs in with a passkey: with user verification it stands alone, TOTP or not.
    ///
    /// # Errors
    /// `InvalidPasskey` for every failure of the ceremony (an unknown, used or expired
    /// flow token, an unknown credential, a wrong origin, no user verification, a
    /// regressed counter); `Inactive` or `Unverified` as for a login.
    pub async fn sign_in_with_passkey(
        &self,
        flow_token: &str,
        response: &Value,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, AuthError> {
        let user = self.passkey_user(flow_token, response).await?;
        self.passkey_session(user, client).await
    }

    /// The user whose passkey answered a sign-in ceremony, once the answer is verified.
    pub(crate) async fn passkey_user(
        &self,
        flow_token: &str,
        response: &Value,
    ) -> Result<User, AuthError> {
        let webauthn = self.webauthn()?;
        let now = self.clock.now();
        let state = self
            .passkeys
            .take_flow(&SecretToken::presented(flow_token).hash(), now)
            .await?
            .filter(|flow| flow.purpose == FlowPurpose::SignIn)
            .ok_or(AuthError::InvalidPasskey)?
            .state;
        let Some(passkey) = self.named_passkey(webauthn, response).await? else {
            self.failed(None, LoginFailure::BadPasskey).await;
            return Err(AuthError::InvalidPasskey);
        };
        self.check_passkey(webauthn, &state, response, &passkey, now)
            .await?;
        let user = self
            .users
            .find_by_id(passkey.user)
            .await?
            .ok_or(AuthError::InvalidPasskey)?;
        self.may_hold_tokens(&user)?;
        Ok(user)
    }

    /// The session of a verified passkey sign-in: it stands alone, TOTP or not.
    pub(crate) async fn passkey_session(
        &self,
        user: User,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, AuthError> {
        let mut client = client.clone();
        client.method = SignInMethod::Passkey;
        self.start_session(user, &client, self.clock.now()).await
    }

    /// Whether the user has a passkey this server can ask for.
    pub(crate) async fn has_passkeys(&self, user: UserId) -> Result<bool, AuthError> {
        Ok(self.webauthn.is_some() && !self.passkeys.stored(user).await?.is_empty())
    }

    /// Offers the passkeys of a TOTP user's second step: request options listing them.
    ///
    /// # Errors
    /// `InvalidMfa` for an unknown, expired or spent `mfa_token` or a user without
    /// passkeys; `PasskeysUnavailable`.
    pub async fn passkey_second_step_options(&self, mfa_token: &str) -> Result<Value, AuthError> {
        let webauthn = self.webauthn()?;
        let (token, _, user) = self.open_challenge(mfa_token).await?;
        let passkeys = self.passkeys.stored(user.id).await?;
        if passkeys.is_empty() {
            return Err(AuthError::InvalidMfa);
        }
        let ceremony = webauthn.second_step(&passkeys)?;
        if !self
            .sessions
            .offer_passkey(&token, &ceremony.state, self.clock.now())
            .await?
        {
            return Err(AuthError::InvalidMfa);
        }
        Ok(ceremony.public_key)
    }

    /// The second step with a passkey, after [`Self::passkey_second_step_options`].
    ///
    /// # Errors
    /// `InvalidMfa` as for a code (a failure counts against the token); `Inactive` or
    /// `Unverified` as for a login.
    pub async fn complete_mfa_with_passkey(
        &self,
        mfa_token: &str,
        response: &Value,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, AuthError> {
        let webauthn = self.webauthn()?;
        let now = self.clock.now();
        let (token, challenge, user) = self.open_challenge(mfa_token).await?;
        let state = challenge.passkey_ceremony.ok_or(AuthError::InvalidMfa)?;
        let passkey = self
            .named_passkey(webauthn, response)
            .await?
            .filter(|passkey| passkey.user == user.id);
        let checked = if let Some(passkey) = &passkey {
            self.check_passkey(webauthn, &state, response, passkey, now)
                .await
        } else {
            self.failed(Some(user.id), LoginFailure::BadPasskey).await;
            Err(AuthError::InvalidPasskey)
        };
        if let Err(refused) = checked {
            if !matches!(refused, AuthError::InvalidPasskey) {
                return Err(refused);
            }
            self.sessions.fail_challenge(&token, MFA_ATTEMPTS).await?;
            return Err(AuthError::InvalidMfa);
        }
        self.close_challenge(&token, user, challenge.first.then_passkey(), client)
            .await
    }

    /// The stored passkey a sign-in answer names, if any.
    async fn named_passkey(
        &self,
        webauthn: &dyn WebAuthn,
        response: &Value,
    ) -> Result<Option<StoredPasskey>, AuthError> {
        match webauthn.credential_id(response) {
            Some(id) => Ok(self.passkeys.find(&id).await?),
            None => Ok(None),
        }
    }

    /// Verifies an answer against its ceremony and passkey, and keeps the new counter. A
    /// counter that went backwards is refused like any failure, and audited apart: it may
    /// mean a cloned authenticator.
    async fn check_passkey(
        &self,
        webauthn: &dyn WebAuthn,
        state: &str,
        response: &Value,
        passkey: &StoredPasskey,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        match webauthn.authenticate(state, response, passkey) {
            Ok(assertion) => {
                self.passkeys.used(passkey.id, &assertion, now).await?;
                Ok(())
            }
            Err(CeremonyRefusal::CounterRegressed) => {
                tracing::warn!(user = %passkey.user, passkey = %passkey.id, "a passkey's signature counter went backwards");
                let event = AuditEvent::new(
                    EventType::PasskeyCounterRegressed,
                    Some(passkey.user),
                    Some(passkey.user),
                )
                .detail("passkey", passkey.id.to_string());
                if let Err(error) = self.audit.record(event, now).await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "could not record a counter regression"
                    );
                }
                Err(AuthError::InvalidPasskey)
            }
            Err(CeremonyRefusal::Rejected(reason)) => {
                tracing::info!(user = %passkey.user, %reason, "a passkey sign-in was refused");
                self.failed(Some(passkey.user), LoginFailure::BadPasskey)
                    .await;
                Err(AuthError::InvalidPasskey)
            }
        }
    }

    /// Queues a sign-in email (a code and a link) when `email` belongs to an active user,
    /// replacing any earlier one; does nothing otherwise, and the caller answers the same.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected` only.
    pub async fn request_email_code(&self, email: &EmailAddress) -> Result<(), AuthError> {
        let Some(user) = self.users.find_by_email(email).await? else {
            return Ok(());
        };
        if !user.is_active {
            return Ok(());
        }
        let now = self.clock.now();
        let pending = PendingToken::sign_in(
            user.email.clone(),
            user.username.to_string(),
            now + EMAIL_CODE_LIFETIME,
        );
        self.users
            .create_one_time_token(user.id, TokenPurpose::SignIn, pending, now)
            .await?;
        Ok(())
    }

    /// Signs in with the six digits of a sign-in email. One factor: a TOTP user gets the
    /// second step.
    ///
    /// # Errors
    /// `InvalidEmailCode` for an unknown address or a wrong, used, replaced or expired
    /// code (the fifth wrong code spends it); `Inactive` or `Unverified` as for a login.
    pub async fn sign_in_with_email_code(
        &self,
        email: &EmailAddress,
        code: &str,
        client: &ClientInfo,
    ) -> Result<LoginStep, AuthError> {
        let Some(user) = self.users.find_by_email(email).await? else {
            self.failed(None, LoginFailure::UnknownUser).await;
            return Err(AuthError::InvalidEmailCode);
        };
        let proof = SignInProof::Code {
            user: user.id,
            code: code_hash(code),
        };
        self.spend_sign_in_email(proof, client).await
    }

    /// Signs in with the link of a sign-in email, like its code.
    ///
    /// # Errors
    /// As [`Self::sign_in_with_email_code`].
    pub async fn sign_in_with_email_link(
        &self,
        token: &str,
        client: &ClientInfo,
    ) -> Result<LoginStep, AuthError> {
        let proof = SignInProof::Link(SecretToken::presented(token).hash());
        self.spend_sign_in_email(proof, client).await
    }

    async fn spend_sign_in_email(
        &self,
        proof: SignInProof,
        client: &ClientInfo,
    ) -> Result<LoginStep, AuthError> {
        let owner = match &proof {
            SignInProof::Code { user, .. } => Some(*user),
            SignInProof::Link(_) => None,
        };
        let check = self
            .users
            .spend_sign_in(proof, EMAIL_CODE_ATTEMPTS, self.clock.now())
            .await?;
        match check {
            SignInCheck::Right(user) => {
                self.may_hold_tokens(&user)?;
                self.first_factor_proven(user, SignInMethod::EmailCode, client)
                    .await
            }
            SignInCheck::Wrong => {
                self.failed(owner, LoginFailure::BadEmailCode).await;
                Err(AuthError::InvalidEmailCode)
            }
            SignInCheck::Missing => Err(AuthError::InvalidEmailCode),
        }
    }
}
