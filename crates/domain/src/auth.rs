//! `AuthService`: login with a password, and turning an access token back into a user.

use std::sync::Arc;

use secrecy::SecretString;

use crate::error::AuthError;
use crate::ports::{AccessToken, Clock, PasswordHasher, TokenIssuer, UserRepository};
use crate::user::User;

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub user: User,
    pub access_token: AccessToken,
}

pub struct AuthService {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn TokenIssuer>,
    clock: Arc<dyn Clock>,
}

impl AuthService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn TokenIssuer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            users,
            hasher,
            tokens,
            clock,
        }
    }

    /// Logs in by email or username.
    ///
    /// # Errors
    /// `InvalidCredentials` for an unknown login or a wrong password, in the same time (the
    /// hasher verifies against a dummy hash for an unknown user); `Inactive` only after the
    /// password was checked, so it reveals nothing to someone who does not know it.
    pub async fn login(
        &self,
        login: &str,
        password: &SecretString,
    ) -> Result<LoginOutcome, AuthError> {
        let user = self.users.find_by_login(login.trim()).await?;
        let verified = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
            .await?;
        let user = match user {
            Some(user) if verified => user,
            _ => return Err(AuthError::InvalidCredentials),
        };
        if !user.is_active {
            return Err(AuthError::Inactive);
        }
        let access_token = self.tokens.issue(&user, self.clock.now())?;
        Ok(LoginOutcome { user, access_token })
    }

    /// Resolves an access token to its user, checked against the store on every call: a
    /// deleted user, or a token older than the last password change, is refused at once.
    ///
    /// # Errors
    /// `InvalidToken` or `Inactive`.
    pub async fn authenticate(&self, token: &str) -> Result<User, AuthError> {
        let claims = self
            .tokens
            .verify(token, self.clock.now())
            .map_err(|_| AuthError::InvalidToken)?;
        let user = self
            .users
            .find_by_id(claims.user_id)
            .await?
            .filter(|user| user.token_version == claims.token_version)
            .ok_or(AuthError::InvalidToken)?;
        if !user.is_active {
            return Err(AuthError::Inactive);
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UserId;
    use crate::ports::{
        AccessClaims, MockClock, MockPasswordHasher, MockTokenIssuer, MockUserRepository,
        TokenError,
    };
    use crate::users::tests::{at, user};
    use secrecy::ExposeSecret;

    fn clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(at);
        Arc::new(clock)
    }

    fn issuer() -> MockTokenIssuer {
        let mut tokens = MockTokenIssuer::new();
        tokens.expect_issue().returning(|user, _| {
            Ok(AccessToken {
                token: SecretString::from(format!("token-for-{}", user.id)),
                expires_in: 1800,
            })
        });
        tokens
    }

    fn service(
        users: MockUserRepository,
        hasher: MockPasswordHasher,
        tokens: MockTokenIssuer,
    ) -> AuthService {
        AuthService::new(Arc::new(users), Arc::new(hasher), Arc::new(tokens), clock())
    }

    #[tokio::test]
    async fn login_issues_a_token_for_the_right_password() {
        let mut users = MockUserRepository::new();
        users
            .expect_find_by_login()
            .withf(|login| login == "ann@example.com")
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
            .login(" ann@example.com ", &SecretString::from("right"))
            .await
            .expect("logged in");
        assert_eq!(outcome.access_token.token.expose_secret(), "token-for-1");
    }

    #[tokio::test]
    async fn an_unknown_user_still_costs_one_verification() {
        let mut users = MockUserRepository::new();
        users.expect_find_by_login().returning(|_| Ok(None));
        let mut hasher = MockPasswordHasher::new();
        hasher
            .expect_verify()
            .withf(|_, hash| hash.is_none())
            .times(1)
            .returning(|_, _| Ok(false));
        let mut tokens = MockTokenIssuer::new();
        tokens.expect_issue().never();
        let result = service(users, hasher, tokens)
            .login("nobody", &SecretString::from("whatever"))
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
            .expect_find_by_login()
            .returning(|_| Ok(Some(user(1, false))));
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().returning(|_, _| Ok(false));
        let result = service(users, hasher, MockTokenIssuer::new())
            .login("user1", &SecretString::from("wrong"))
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
                .expect_find_by_login()
                .returning(move |_| Ok(Some(inactive())));
            let mut hasher = MockPasswordHasher::new();
            hasher
                .expect_verify()
                .returning(move |_, _| Ok(password_ok));
            let result = service(users, hasher, MockTokenIssuer::new())
                .login("user1", &SecretString::from("pw"))
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
                    token_version,
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
            .expect_find_by_id()
            .returning(|id| Ok(Some(user(id.get(), false))));
        let found = service(users, MockPasswordHasher::new(), verifying(1))
            .authenticate("good")
            .await
            .expect("authenticated");
        assert_eq!(found.id, UserId::new(1));
    }

    #[tokio::test]
    async fn bad_stale_or_orphaned_tokens_are_refused() {
        let mut users = MockUserRepository::new();
        users
            .expect_find_by_id()
            .returning(|id| Ok(Some(user(id.get(), false))));
        let service_ = service(users, MockPasswordHasher::new(), verifying(1));
        assert!(matches!(
            service_.authenticate("forged").await,
            Err(AuthError::InvalidToken)
        ));

        let mut users = MockUserRepository::new();
        users
            .expect_find_by_id()
            .returning(|id| Ok(Some(user(id.get(), false))));
        let stale = service(users, MockPasswordHasher::new(), verifying(0))
            .authenticate("good")
            .await;
        assert!(matches!(stale, Err(AuthError::InvalidToken)), "{stale:?}");

        let mut users = MockUserRepository::new();
        users.expect_find_by_id().returning(|_| Ok(None));
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
        users.expect_find_by_id().returning(|id| {
            let mut u = user(id.get(), false);
            u.is_active = false;
            Ok(Some(u))
        });
        let result = service(users, MockPasswordHasher::new(), verifying(1))
            .authenticate("good")
            .await;
        assert!(matches!(result, Err(AuthError::Inactive)), "{result:?}");
    }
}
