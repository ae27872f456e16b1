//! `UserService`: signup and the management of accounts, with the permission rules of the
//! contract (self vs superuser, who may set which field, the last active superuser).

use std::sync::Arc;

use secrecy::SecretString;

use chrono::Duration;

use crate::address::EmailAddress;
use crate::cluster::SessionEvents;
use crate::email::{EmailKind, PendingToken, SpentLink, TokenPurpose};
use crate::error::{StoreError, UserError};
use crate::ports::{Clock, PasswordHasher, UserRepository};
use crate::token::SecretToken;
use crate::user::{
    ListSink, NewUser, Page, Password, PasswordHash, User, UserChanges, UserFilter, UserId,
    Username,
};

/// A validated signup request.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: EmailAddress,
    pub username: Username,
    pub password: Password,
}

/// A validated update request; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountUpdate {
    pub email: Option<EmailAddress>,
    pub username: Option<Username>,
    pub password: Option<Password>,
    /// The caller's own password, required to change an email or a password.
    pub current_password: Option<SecretString>,
    pub is_active: Option<bool>,
    pub is_superuser: Option<bool>,
}

/// How long an email-verification link works.
pub const VERIFICATION_TOKEN_LIFETIME: Duration = Duration::hours(48);

/// Writes to one user tried against the revision read before falling back to an
/// unconditional write (see [`UserService::update`]).
const OPTIMISTIC_ATTEMPTS: u32 = 8;

/// Re-authentication: `password` must be `user`'s own.
///
/// # Errors
/// `WrongCurrentPassword`, or the hasher's.
pub(crate) async fn confirm_password(
    hasher: &dyn PasswordHasher,
    user: &User,
    password: &SecretString,
) -> Result<(), UserError> {
    if hasher
        .verify(password, Some(user.password_hash.clone()))
        .await?
    {
        Ok(())
    } else {
        Err(UserError::WrongCurrentPassword)
    }
}

pub struct UserService {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
    sessions: Arc<dyn SessionEvents>,
}

impl UserService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        hasher: Arc<dyn PasswordHasher>,
        clock: Arc<dyn Clock>,
        sessions: Arc<dyn SessionEvents>,
    ) -> Self {
        Self {
            users,
            hasher,
            clock,
            sessions,
        }
    }

    /// Registers a new, active, unverified, ordinary user, and queues the welcome email
    /// with its verification token in the same transaction.
    ///
    /// # Errors
    /// `EmailTaken`, `UsernameTaken`, or `Unexpected`.
    pub async fn signup(&self, account: NewAccount) -> Result<User, UserError> {
        self.create(account, false).await
    }

    /// Creates a superuser whose email counts as verified (used by the CLI and at start).
    ///
    /// # Errors
    /// As [`UserService::signup`].
    pub async fn create_superuser(&self, account: NewAccount) -> Result<User, UserError> {
        self.create(account, true).await
    }

    async fn create(&self, account: NewAccount, superuser: bool) -> Result<User, UserError> {
        let password_hash = self.hasher.hash(&account.password).await?;
        let now = self.clock.now();
        let welcome = (!superuser).then(|| {
            PendingToken::new(
                account.email.clone(),
                EmailKind::Welcome,
                account.username.to_string(),
                now + VERIFICATION_TOKEN_LIFETIME,
            )
        });
        let new = NewUser::new(account.email, account.username, password_hash, now);
        let new = if superuser { new.superuser() } else { new };
        let user = self.users.insert(new, welcome).await?;
        Ok(user)
    }

    /// Marks the address a verification token was sent to as verified.
    ///
    /// # Errors
    /// `InvalidVerificationToken` for an unknown, used or expired token, or one sent to an
    /// address the user no longer has.
    pub async fn verify_email(&self, token: &str) -> Result<User, UserError> {
        self.users
            .verify_email(&SecretToken::presented(token).hash(), self.clock.now())
            .await?
            .ok_or(UserError::InvalidVerificationToken)
    }

    /// Reads a user: oneself, or anyone for a superuser.
    ///
    /// # Errors
    /// `Forbidden` for someone else's account (checked before the look-up, so ids of other
    /// users cannot be probed), `NotFound`, or `Unexpected`.
    /// Queues a new verification email when `email` belongs to an active user who has not
    /// verified it; does nothing otherwise, and the caller answers the same either way.
    /// The store retires the user's earlier verification links.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected` only.
    pub async fn resend_verification(&self, email: &EmailAddress) -> Result<(), UserError> {
        let Some(user) = self.users.find_by_email(email).await? else {
            return Ok(());
        };
        if user.email_verified || !user.is_active {
            return Ok(());
        }
        let now = self.clock.now();
        let token = PendingToken::new(
            user.email.clone(),
            EmailKind::VerifyEmail,
            user.username.to_string(),
            now + VERIFICATION_TOKEN_LIFETIME,
        );
        self.users
            .create_one_time_token(user.id, TokenPurpose::VerifyEmail, token, now)
            .await?;
        Ok(())
    }

    /// What became of the token of an email link, for a page to say why it no longer works.
    ///
    /// # Errors
    /// `Unavailable` or `Unexpected` only.
    pub async fn link_state(
        &self,
        purpose: TokenPurpose,
        token: &str,
    ) -> Result<SpentLink, UserError> {
        let hash = SecretToken::presented(token).hash();
        Ok(self
            .users
            .link_state(purpose, &hash, self.clock.now())
            .await?)
    }

    pub async fn get(&self, actor: &User, id: UserId) -> Result<User, UserError> {
        if actor.id == id {
            return Ok(actor.clone());
        }
        Self::require_superuser(actor)?;
        self.users.find_by_id(id).await?.ok_or(UserError::NotFound)
    }

    /// Lists users ordered by id into `sink`, for superusers; returns how many `filter`
    /// shows in all.
    ///
    /// # Errors
    /// `Forbidden` or `Unexpected`.
    pub async fn list(
        &self,
        actor: &User,
        filter: &UserFilter,
        page: Page,
        sink: &mut ListSink,
    ) -> Result<u64, UserError> {
        Self::require_superuser(actor)?;
        Ok(self.users.list(filter, page, sink).await?)
    }

    /// Changes a user: oneself, or anyone for a superuser. Only a superuser sets
    /// `is_active` / `is_superuser`; an email or password change needs the caller's current
    /// password; a password change invalidates every token issued before it; an email
    /// change makes the email unverified.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `CurrentPasswordRequired`, `WrongCurrentPassword`,
    /// `PreconditionFailed` (`expected_revision` differs), `EmailTaken`, `UsernameTaken`,
    /// `LastSuperuser`, or `Unexpected`.
    pub async fn update(
        &self,
        actor: &User,
        id: UserId,
        update: AccountUpdate,
        expected_revision: Option<i64>,
    ) -> Result<User, UserError> {
        if actor.id != id {
            Self::require_superuser(actor)?;
        }
        if (update.is_active.is_some() || update.is_superuser.is_some()) && !actor.is_superuser {
            return Err(UserError::PrivilegedField);
        }
        if update.email.is_some() || update.password.is_some() {
            // The caller re-authenticates with their own password: for a self-service change
            // that is the account's current password, for a superuser it is theirs.
            let current = update
                .current_password
                .as_ref()
                .ok_or(UserError::CurrentPasswordRequired)?;
            confirm_password(self.hasher.as_ref(), actor, current).await?;
        }
        let mut target = if actor.id == id {
            actor.clone()
        } else {
            self.users
                .find_by_id(id)
                .await?
                .ok_or(UserError::NotFound)?
        };
        let password_hash = match &update.password {
            Some(password) => Some(self.hasher.hash(password).await?),
            None => None,
        };
        // Without `If-Match` the caller asked for last-writer-wins, never a 412: the write
        // is tried against the revision just read and, when another writer got there
        // first, computed again from the fresh row. The last try writes unconditionally
        // under the store's row lock, so even a long queue of writers ends.
        for attempt in 1..=OPTIMISTIC_ATTEMPTS {
            if expected_revision.is_some_and(|revision| revision != target.revision) {
                return Err(UserError::PreconditionFailed);
            }
            let changes = self.changes(&target, &update, password_hash.as_ref());
            if changes.is_empty() {
                return Ok(target);
            }
            let revision = (expected_revision.is_some() || attempt < OPTIMISTIC_ATTEMPTS)
                .then_some(target.revision);
            let ends_sessions = changes.ends_sessions();
            match self
                .users
                .update(id, revision, changes, self.clock.now())
                .await
            {
                Err(StoreError::RevisionMismatch) if expected_revision.is_none() => {
                    target = self
                        .users
                        .find_by_id(id)
                        .await?
                        .ok_or(UserError::NotFound)?;
                }
                result => {
                    let user = result?;
                    if ends_sessions {
                        self.sessions.ended(id).await;
                    }
                    return Ok(user);
                }
            }
        }
        unreachable!("the last attempt writes without a revision")
    }

    /// What `update` changes on `target`: only the fields that differ, so an unchanged
    /// email sends no verification and an empty change writes nothing.
    fn changes(
        &self,
        target: &User,
        update: &AccountUpdate,
        password_hash: Option<&PasswordHash>,
    ) -> UserChanges {
        let mut changes = UserChanges::default();
        if let Some(name) = update
            .username
            .clone()
            .filter(|name| *name != target.username)
        {
            changes = changes.username(name);
        }
        if let Some(active) = update.is_active.filter(|v| *v != target.is_active) {
            changes = changes.active(active);
        }
        if let Some(superuser) = update.is_superuser.filter(|v| *v != target.is_superuser) {
            changes = changes.superuser(superuser);
        }
        if let Some(email) = update.email.clone().filter(|email| *email != target.email) {
            let greeting = changes.new_username().unwrap_or(&target.username).clone();
            changes = changes.email(
                email,
                &greeting,
                self.clock.now() + VERIFICATION_TOKEN_LIFETIME,
            );
        }
        if let Some(hash) = password_hash {
            changes = changes.password(hash.clone());
        }
        changes
    }

    /// Deletes one's own account.
    ///
    /// # Errors
    /// `LastSuperuser`, `PreconditionFailed`, `NotFound` (deleted meanwhile) or `Unexpected`.
    pub async fn delete_self(
        &self,
        actor: &User,
        expected_revision: Option<i64>,
    ) -> Result<(), UserError> {
        self.users.delete(actor.id, expected_revision).await?;
        self.sessions.ended(actor.id).await;
        Ok(())
    }

    /// Deletes any account, for superusers.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `PreconditionFailed`, `LastSuperuser` or `Unexpected`.
    pub async fn delete(
        &self,
        actor: &User,
        id: UserId,
        expected_revision: Option<i64>,
    ) -> Result<(), UserError> {
        Self::require_superuser(actor)?;
        self.users.delete(id, expected_revision).await?;
        self.sessions.ended(id).await;
        Ok(())
    }

    fn require_superuser(actor: &User) -> Result<(), UserError> {
        if actor.is_superuser {
            Ok(())
        } else {
            Err(UserError::NotSuperuser)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cluster::MockSessionEvents;
    use crate::error::StoreError;
    use crate::ports::{MockClock, MockPasswordHasher, MockUserRepository};
    use crate::user::PasswordHash;
    use chrono::{DateTime, TimeZone, Utc};
    use mockall::predicate::eq;

    pub(crate) fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 19, 42, 0)
            .single()
            .expect("valid time")
    }

    pub(crate) fn user(id: i64, superuser: bool) -> User {
        User {
            id: UserId::new(id),
            email: EmailAddress::parse(&format!("user{id}@example.com")).expect("email"),
            username: Username::parse(&format!("user{id}")).expect("username"),
            password_hash: PasswordHash::from_phc(format!("hash-of-user{id}")),
            password_set: true,
            is_active: true,
            is_superuser: superuser,
            email_verified: false,
            totp: crate::user::Totp::Off,
            token_version: 1,
            revision: 1,
            created_at: at(),
            updated_at: at(),
        }
    }

    fn clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(at);
        Arc::new(clock)
    }

    fn service(users: MockUserRepository, hasher: MockPasswordHasher) -> UserService {
        let mut sessions = MockSessionEvents::new();
        sessions.expect_ended().returning(|_| ());
        service_telling(users, hasher, sessions)
    }

    fn service_telling(
        users: MockUserRepository,
        hasher: MockPasswordHasher,
        sessions: MockSessionEvents,
    ) -> UserService {
        UserService::new(
            Arc::new(users),
            Arc::new(hasher),
            clock(),
            Arc::new(sessions),
        )
    }

    #[tokio::test]
    async fn deactivation_password_change_and_deletion_end_sessions_and_nothing_else_does() {
        let cases: [(AccountUpdate, bool); 3] = [
            (
                AccountUpdate {
                    is_active: Some(false),
                    ..AccountUpdate::default()
                },
                true,
            ),
            (
                AccountUpdate {
                    password: Some(Password::parse("a new password").expect("pw")),
                    current_password: Some(SecretString::from("")),
                    ..AccountUpdate::default()
                },
                true,
            ),
            (
                AccountUpdate {
                    username: Some(Username::parse("renamed").expect("name")),
                    ..AccountUpdate::default()
                },
                false,
            ),
        ];
        for (update, ends) in cases {
            let mut users = MockUserRepository::new();
            users
                .expect_find_by_id()
                .returning(|id| Ok(Some(user(id.get(), false))));
            users
                .expect_update()
                .returning(|id, _, _, _| Ok(user(id.get(), false)));
            let mut sessions = MockSessionEvents::new();
            sessions
                .expect_ended()
                .with(eq(UserId::new(2)))
                .times(usize::from(ends))
                .returning(|_| ());
            let described = format!("{update:?}");
            service_telling(users, hasher_accepting(""), sessions)
                .update(&user(1, true), UserId::new(2), update, None)
                .await
                .unwrap_or_else(|e| panic!("{described}: {e}"));
        }
        let mut users = MockUserRepository::new();
        users.expect_delete().returning(|_, _| Ok(()));
        let mut sessions = MockSessionEvents::new();
        sessions
            .expect_ended()
            .with(eq(UserId::new(2)))
            .times(1)
            .returning(|_| ());
        service_telling(users, MockPasswordHasher::new(), sessions)
            .delete(&user(1, true), UserId::new(2), None)
            .await
            .expect("deleted");
    }

    fn account() -> NewAccount {
        NewAccount {
            email: EmailAddress::parse("ann@example.com").expect("email"),
            username: Username::parse("ann").expect("username"),
            password: Password::parse("correct horse").expect("password"),
        }
    }

    fn hasher_accepting(password: &'static str) -> MockPasswordHasher {
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().returning(move |candidate, _| {
            use secrecy::ExposeSecret;
            Ok(candidate.expose_secret() == password)
        });
        hasher
            .expect_hash()
            .returning(|p| Ok(PasswordHash::from_phc(format!("hash({})", p.expose()))));
        hasher
    }

    #[tokio::test]
    async fn signup_stores_a_hash_never_the_password() {
        let mut users = MockUserRepository::new();
        users
            .expect_insert()
            .withf(|new, welcome| {
                new.password_hash().as_str() == "hash(correct horse)"
                    && !new.is_superuser()
                    && !new.email_verified()
                    && new.now() == at()
                    && welcome.as_ref().is_some_and(|w| {
                        w.email().kind == EmailKind::Welcome
                            && &w.email().to == new.email()
                            && w.expires_at() == at() + VERIFICATION_TOKEN_LIFETIME
                    })
            })
            .times(1)
            .returning(|_, _| Ok(user(1, false)));
        let created = service(users, hasher_accepting(""))
            .signup(account())
            .await
            .expect("signup succeeds");
        assert_eq!(created.id, UserId::new(1));
    }

    #[tokio::test]
    async fn signup_reports_a_taken_email() {
        let mut users = MockUserRepository::new();
        users
            .expect_insert()
            .returning(|_, _| Err(StoreError::EmailTaken));
        let result = service(users, hasher_accepting("")).signup(account()).await;
        assert!(matches!(result, Err(UserError::EmailTaken)), "{result:?}");
    }

    #[tokio::test]
    async fn superusers_are_created_verified() {
        let mut users = MockUserRepository::new();
        users
            .expect_insert()
            .withf(|new, welcome| new.is_superuser() && new.email_verified() && welcome.is_none())
            .times(1)
            .returning(|_, _| Ok(user(1, true)));
        service(users, hasher_accepting(""))
            .create_superuser(account())
            .await
            .expect("created");
    }

    #[tokio::test]
    async fn a_user_reads_itself_without_a_lookup() {
        let mut users = MockUserRepository::new();
        users.expect_find_by_id().never();
        let me = user(1, false);
        let got = service(users, MockPasswordHasher::new())
            .get(&me, me.id)
            .await
            .expect("own account");
        assert_eq!(got, me);
    }

    #[tokio::test]
    async fn a_user_cannot_read_or_probe_another() {
        let mut users = MockUserRepository::new();
        users.expect_find_by_id().never();
        let result = service(users, MockPasswordHasher::new())
            .get(&user(1, false), UserId::new(2))
            .await;
        assert!(matches!(result, Err(UserError::NotSuperuser)), "{result:?}");
    }

    #[tokio::test]
    async fn a_superuser_reads_anyone_and_gets_404_for_nobody() {
        let mut users = MockUserRepository::new();
        users
            .expect_find_by_id()
            .with(eq(UserId::new(2)))
            .returning(|_| Ok(Some(user(2, false))));
        users
            .expect_find_by_id()
            .with(eq(UserId::new(3)))
            .returning(|_| Ok(None));
        let service = service(users, MockPasswordHasher::new());
        let admin = user(1, true);
        assert_eq!(
            service.get(&admin, UserId::new(2)).await.expect("found").id,
            UserId::new(2)
        );
        let missing = service.get(&admin, UserId::new(3)).await;
        assert!(matches!(missing, Err(UserError::NotFound)), "{missing:?}");
    }

    #[test]
    fn a_search_is_trimmed_lower_cased_and_bounded() {
        let filter = UserFilter::default()
            .search("  Ann@EXAMPLE ")
            .expect("short");
        assert_eq!(filter.search_text(), Some("ann@example"));
        assert!(
            UserFilter::default()
                .search("   ")
                .expect("blank")
                .is_everyone()
        );
        let long = "a".repeat(UserFilter::MAX_SEARCH + 1);
        assert!(UserFilter::default().search(&long).is_err());
        assert!(UserFilter::default().search("a\u{0}b").is_err(), "no NUL");
    }

    #[tokio::test]
    async fn resending_verification_queues_only_for_an_unverified_active_user() {
        for (verified, active, queued) in [(false, true, 1), (true, true, 0), (false, false, 0)] {
            let mut users = MockUserRepository::new();
            users.expect_find_by_email().returning(move |_| {
                let mut found = user(1, false);
                found.email_verified = verified;
                found.is_active = active;
                Ok(Some(found))
            });
            users
                .expect_create_one_time_token()
                .withf(|id, purpose, token, _| {
                    *id == UserId::new(1)
                        && *purpose == TokenPurpose::VerifyEmail
                        && token.email().kind == EmailKind::VerifyEmail
                        && token.expires_at() == at() + VERIFICATION_TOKEN_LIFETIME
                })
                .times(queued)
                .returning(|_, _, _, _| Ok(()));
            service(users, MockPasswordHasher::new())
                .resend_verification(&EmailAddress::parse("user1@example.com").expect("email"))
                .await
                .expect("answered");
        }
    }

    #[tokio::test]
    async fn only_superusers_list_users() {
        let mut users = MockUserRepository::new();
        users.expect_list().times(1).returning(|_, _, sink| {
            sink.user(user(1, true).summary());
            Ok(1)
        });
        let service = service(users, MockPasswordHasher::new());
        let page = Page::new(0, 100).expect("page");
        let everyone = UserFilter::default();
        let mut items = Vec::new();
        assert!(matches!(
            service
                .list(&user(2, false), &everyone, page, &mut items)
                .await,
            Err(UserError::NotSuperuser)
        ));
        let total = service
            .list(&user(1, true), &everyone, page, &mut items)
            .await
            .expect("listed");
        assert_eq!((items.len(), total), (1, 1));
    }

    #[tokio::test]
    async fn ordinary_users_cannot_set_privileged_fields() {
        let me = user(1, false);
        for update in [
            AccountUpdate {
                is_superuser: Some(true),
                ..AccountUpdate::default()
            },
            AccountUpdate {
                is_active: Some(true),
                ..AccountUpdate::default()
            },
        ] {
            let result = service(MockUserRepository::new(), MockPasswordHasher::new())
                .update(&me, me.id, update, None)
                .await;
            assert!(
                matches!(result, Err(UserError::PrivilegedField)),
                "{result:?}"
            );
        }
    }

    #[tokio::test]
    async fn ordinary_users_cannot_update_others() {
        let result = service(MockUserRepository::new(), MockPasswordHasher::new())
            .update(
                &user(1, false),
                UserId::new(2),
                AccountUpdate::default(),
                None,
            )
            .await;
        assert!(matches!(result, Err(UserError::NotSuperuser)), "{result:?}");
    }

    #[tokio::test]
    async fn changing_the_password_needs_the_current_one() {
        let me = user(1, false);
        let missing = service(MockUserRepository::new(), hasher_accepting("old password"))
            .update(
                &me,
                me.id,
                AccountUpdate {
                    password: Some(Password::parse("new password").expect("pw")),
                    ..AccountUpdate::default()
                },
                None,
            )
            .await;
        assert!(
            matches!(missing, Err(UserError::CurrentPasswordRequired)),
            "{missing:?}"
        );
        let wrong = service(MockUserRepository::new(), hasher_accepting("old password"))
            .update(
                &me,
                me.id,
                AccountUpdate {
                    email: Some(EmailAddress::parse("new@example.com").expect("email")),
                    current_password: Some(SecretString::from("not it")),
                    ..AccountUpdate::default()
                },
                None,
            )
            .await;
        assert!(
            matches!(wrong, Err(UserError::WrongCurrentPassword)),
            "{wrong:?}"
        );
    }

    #[tokio::test]
    async fn a_password_change_invalidates_tokens() {
        let mut users = MockUserRepository::new();
        users
            .expect_update()
            .withf(|_, revision, changes, _| {
                *revision == Some(1)
                    && changes.revokes_tokens()
                    && changes
                        .new_password_hash()
                        .is_some_and(|h| h.as_str() == "hash(new password)")
            })
            .times(1)
            .returning(|_, _, _, _| Ok(user(1, false)));
        let me = user(1, false);
        service(users, hasher_accepting("old password"))
            .update(
                &me,
                me.id,
                AccountUpdate {
                    password: Some(Password::parse("new password").expect("pw")),
                    current_password: Some(SecretString::from("old password")),
                    ..AccountUpdate::default()
                },
                None,
            )
            .await
            .expect("updated");
    }

    #[tokio::test]
    async fn an_email_change_makes_it_unverified() {
        let mut users = MockUserRepository::new();
        users
            .expect_update()
            .withf(|_, _, changes, _| {
                changes.email_verified() == Some(false)
                    && changes
                        .new_email()
                        .is_some_and(|e| e.as_str() == "new@example.com")
                    && !changes.revokes_tokens()
                    && changes.verification().is_some_and(|v| {
                        v.email().kind == EmailKind::VerifyEmail
                            && v.email().to.as_str() == "new@example.com"
                    })
            })
            .times(1)
            .returning(|_, _, _, _| Ok(user(1, false)));
        let me = user(1, false);
        service(users, hasher_accepting("pw"))
            .update(
                &me,
                me.id,
                AccountUpdate {
                    email: Some(EmailAddress::parse("NEW@example.com").expect("email")),
                    current_password: Some(SecretString::from("pw")),
                    ..AccountUpdate::default()
                },
                None,
            )
            .await
            .expect("updated");
    }

    #[tokio::test]
    async fn an_unchanged_update_writes_nothing() {
        let mut users = MockUserRepository::new();
        users.expect_update().never();
        let me = user(1, false);
        let same = service(users, MockPasswordHasher::new())
            .update(
                &me,
                me.id,
                AccountUpdate {
                    username: Some(me.username.clone()),
                    ..AccountUpdate::default()
                },
                None,
            )
            .await
            .expect("no-op");
        assert_eq!(same, me);
    }

    #[tokio::test]
    async fn a_stale_revision_fails_the_precondition() {
        let mut users = MockUserRepository::new();
        users.expect_update().never();
        let me = user(1, false);
        let result = service(users, MockPasswordHasher::new())
            .update(
                &me,
                me.id,
                AccountUpdate {
                    username: Some(Username::parse("renamed").expect("name")),
                    ..AccountUpdate::default()
                },
                Some(7),
            )
            .await;
        assert!(
            matches!(result, Err(UserError::PreconditionFailed)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn the_store_guards_the_last_superuser() {
        let mut users = MockUserRepository::new();
        users
            .expect_find_by_id()
            .returning(|id| Ok(Some(user(id.get(), true))));
        users
            .expect_update()
            .withf(|_, _, changes, _| changes.is_superuser() == Some(false))
            .returning(|_, _, _, _| Err(StoreError::LastSuperuser));
        users
            .expect_delete()
            .returning(|_, _| Err(StoreError::LastSuperuser));
        let service = service(users, MockPasswordHasher::new());
        let admin = user(1, true);
        let demote = service
            .update(
                &admin,
                UserId::new(2),
                AccountUpdate {
                    is_superuser: Some(false),
                    ..AccountUpdate::default()
                },
                None,
            )
            .await;
        assert!(
            matches!(demote, Err(UserError::LastSuperuser)),
            "{demote:?}"
        );
        let delete = service.delete_self(&admin, None).await;
        assert!(
            matches!(delete, Err(UserError::LastSuperuser)),
            "{delete:?}"
        );
    }

    #[tokio::test]
    async fn verification_spends_the_hashed_token() {
        let token = SecretToken::generate();
        let expected = token.hash();
        let mut users = MockUserRepository::new();
        users
            .expect_verify_email()
            .withf(move |hash, now| *hash == expected && *now == at())
            .returning(|_, _| Ok(Some(user(1, false))));
        let service = service(users, MockPasswordHasher::new());
        service
            .verify_email(token.expose())
            .await
            .expect("verified");

        let mut users = MockUserRepository::new();
        users.expect_verify_email().returning(|_, _| Ok(None));
        let result = service_with(users).verify_email("nope").await;
        assert!(
            matches!(result, Err(UserError::InvalidVerificationToken)),
            "{result:?}"
        );
    }

    fn service_with(users: MockUserRepository) -> UserService {
        service(users, MockPasswordHasher::new())
    }

    #[tokio::test]
    async fn only_superusers_delete_by_id() {
        let mut users = MockUserRepository::new();
        users
            .expect_delete()
            .with(eq(UserId::new(2)), eq(None))
            .times(1)
            .returning(|_, _| Ok(()));
        let service = service(users, MockPasswordHasher::new());
        assert!(matches!(
            service.delete(&user(1, false), UserId::new(2), None).await,
            Err(UserError::NotSuperuser)
        ));
        service
            .delete(&user(1, true), UserId::new(2), None)
            .await
            .expect("deleted");
    }
}
