//! The user cache: rows by id, and which sessions are live, kept in process for
//! `SHELTER_USER_CACHE_SECONDS`, so that an authenticated request needs no query, and never
//! trusted past a change.
//!
//! - Every write through [`CachedUsers`] drops the row here before it returns (so before the
//!   request is answered) and publishes `ClusterEvent::Changed` for the other instances, whose
//!   sink calls [`UserCache::invalidate`].
//! - Ending a session through [`CachedSessions`] drops it here before it returns; the
//!   service then publishes `ClusterEvent::SessionEnded`, whose sink on the other instances
//!   calls [`UserCache::invalidate_session`].
//! - A row read before a change cannot be stored after that change's invalidation: every
//!   invalidation bumps an epoch, and a row read under an older epoch is dropped again.
//! - While the bus is not subscribed (Redis unreachable), other instances' changes could be
//!   missed, so the cache is bypassed; after a resubscription, rows cached before it are
//!   ignored, since the events in between are lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use shelter_domain::cluster::{ClusterBus, ClusterEvent};
use shelter_domain::ports::{NewRefreshToken, RefreshTokenStore, Rotation, UserRepository};
use shelter_domain::session::{Challenge, SignInMethod};
use shelter_domain::{
    ClientInfo, EmailAddress, ListSink, NewUser, Page, PasswordHash, PendingToken, Session,
    SessionId, SpentLink, StorageError, StoreError, TokenHash, TokenPurpose, User, UserChanges,
    UserFilter, UserId, Username,
};
use shelter_domain::{SignInCheck, SignInProof};

/// Rows kept at most; a row is about 300 bytes, so the cache stays under ~30 MiB.
const CAPACITY: u64 = 100_000;

#[derive(Clone)]
struct Entry {
    user: User,
    subscription: u64,
}

/// A session known to be live, and of whom.
#[derive(Clone)]
struct LiveSession {
    user: UserId,
    subscription: u64,
}

/// The rows, shared by every [`CachedUsers`] view of one process, and the live sessions.
pub struct UserCache {
    rows: moka::sync::Cache<UserId, Entry>,
    sessions: moka::sync::Cache<SessionId, LiveSession>,
    epoch: AtomicU64,
    bus: Arc<dyn ClusterBus>,
}

impl UserCache {
    pub fn new(lifetime: Duration, bus: Arc<dyn ClusterBus>) -> Arc<Self> {
        Arc::new(Self {
            rows: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(lifetime)
                .build(),
            sessions: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(lifetime)
                .build(),
            epoch: AtomicU64::new(0),
            bus,
        })
    }

    /// Drops the row of `user`: it changed, here or on another instance.
    pub fn invalidate(&self, user: UserId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.rows.invalidate(&user);
    }

    /// Forgets that `session` was live: it ended, here or on another instance.
    pub fn invalidate_session(&self, session: SessionId) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.sessions.invalidate(&session);
    }

    /// Whether `session` is known here to be a live session of `user`.
    fn live_session(&self, user: UserId, session: SessionId) -> bool {
        self.bus.subscription().is_some_and(|subscription| {
            self.sessions
                .get(&session)
                .is_some_and(|entry| entry.subscription == subscription && entry.user == user)
        })
    }

    /// A user and whether `session` is a live session of theirs, through the cache: no
    /// query when both are known here, else `load`, the store's one read, whose answers are
    /// kept (only "live": an ended session never comes back).
    async fn signed_in<F>(
        &self,
        id: UserId,
        session: SessionId,
        load: F,
    ) -> Result<Option<(User, bool)>, StoreError>
    where
        F: Future<Output = Result<Option<(User, bool)>, StoreError>>,
    {
        if self.live_session(id, session)
            && let Some(user) = self.get(id)
        {
            return Ok(Some((user, true)));
        }
        let (epoch, subscription) = (self.epoch.load(Ordering::SeqCst), self.bus.subscription());
        let found = load.await?;
        if let (Some((user, live)), Some(subscription)) = (&found, subscription) {
            self.rows.insert(
                id,
                Entry {
                    user: user.clone(),
                    subscription,
                },
            );
            if *live {
                self.sessions.insert(
                    session,
                    LiveSession {
                        user: id,
                        subscription,
                    },
                );
            }
            // An invalidation since the read began may have run before the inserts.
            if self.epoch.load(Ordering::SeqCst) != epoch {
                self.rows.invalidate(&id);
                self.sessions.invalidate(&session);
            }
        }
        Ok(found)
    }

    fn get(&self, id: UserId) -> Option<User> {
        let subscription = self.bus.subscription()?;
        match self.rows.get(&id) {
            Some(entry) if entry.subscription == subscription => {
                metrics::counter!("shelter_user_cache_hits_total").increment(1);
                Some(entry.user)
            }
            _ => {
                metrics::counter!("shelter_user_cache_misses_total").increment(1);
                None
            }
        }
    }

    /// Reads through the cache; `load` is the store's read.
    async fn read<F>(&self, id: UserId, load: F) -> Result<Option<User>, StoreError>
    where
        F: Future<Output = Result<Option<User>, StoreError>>,
    {
        if let Some(user) = self.get(id) {
            return Ok(Some(user));
        }
        let (epoch, subscription) = (self.epoch.load(Ordering::SeqCst), self.bus.subscription());
        let user = load.await?;
        if let (Some(user), Some(subscription)) = (&user, subscription) {
            self.rows.insert(
                id,
                Entry {
                    user: user.clone(),
                    subscription,
                },
            );
            // An invalidation since the read began may have run before the insert.
            if self.epoch.load(Ordering::SeqCst) != epoch {
                self.rows.invalidate(&id);
            }
        }
        Ok(user)
    }

    async fn changed(&self, user: UserId) {
        self.invalidate(user);
        self.bus.publish(&ClusterEvent::Changed { user }).await;
    }

    /// A refused write changed nothing, yet may mean this copy is stale (another writer
    /// won): it is dropped here, and only a write that happened is news for the others.
    async fn after_write<T>(&self, user: UserId, result: &Result<T, StoreError>) {
        if result.is_ok() {
            self.changed(user).await;
        } else {
            self.invalidate(user);
        }
    }
}

/// The user store with its writes announced to the cache. `cached()` reads rows by id
/// from the cache (for authentication); `fresh()` always asks the store (for the writes'
/// own reads, which must see the revision they compare against).
pub struct CachedUsers {
    store: Arc<dyn UserRepository>,
    cache: Arc<UserCache>,
    cached_reads: bool,
}

impl CachedUsers {
    pub fn cached(store: Arc<dyn UserRepository>, cache: Arc<UserCache>) -> Self {
        Self {
            store,
            cache,
            cached_reads: true,
        }
    }

    pub fn fresh(store: Arc<dyn UserRepository>, cache: Arc<UserCache>) -> Self {
        Self {
            store,
            cache,
            cached_reads: false,
        }
    }
}

#[async_trait]
impl UserRepository for CachedUsers {
    async fn insert(
        &self,
        user: NewUser,
        verification: Option<PendingToken>,
    ) -> Result<User, StoreError> {
        self.store.insert(user, verification).await
    }

    async fn find_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        if self.cached_reads {
            self.cache.read(id, self.store.find_by_id(id)).await
        } else {
            self.store.find_by_id(id).await
        }
    }

    async fn signed_in(
        &self,
        id: UserId,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<Option<(User, bool)>, StoreError> {
        if self.cached_reads {
            self.cache
                .signed_in(id, session, self.store.signed_in(id, session, now))
                .await
        } else {
            self.store.signed_in(id, session, now).await
        }
    }

    async fn find_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError> {
        self.store.find_by_email(email).await
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        self.store.find_by_username(username).await
    }

    async fn list(
        &self,
        filter: &UserFilter,
        page: Page,
        sink: &mut ListSink,
    ) -> Result<u64, StoreError> {
        self.store.list(filter, page, sink).await
    }

    async fn update(
        &self,
        id: UserId,
        expected_revision: Option<i64>,
        changes: UserChanges,
        now: DateTime<Utc>,
    ) -> Result<User, StoreError> {
        let result = self.store.update(id, expected_revision, changes, now).await;
        self.cache.after_write(id, &result).await;
        result
    }

    async fn delete(&self, id: UserId, expected_revision: Option<i64>) -> Result<(), StoreError> {
        let result = self.store.delete(id, expected_revision).await;
        self.cache.after_write(id, &result).await;
        result
    }

    async fn create_one_time_token(
        &self,
        user: UserId,
        purpose: TokenPurpose,
        token: PendingToken,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.store
            .create_one_time_token(user, purpose, token, now)
            .await
    }

    async fn link_state(
        &self,
        purpose: TokenPurpose,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<SpentLink, StoreError> {
        self.store.link_state(purpose, token, now).await
    }

    async fn verify_email(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError> {
        let user = self.store.verify_email(token, now).await?;
        if let Some(user) = &user {
            self.cache.changed(user.id()).await;
        }
        Ok(user)
    }

    async fn spend_sign_in(
        &self,
        proof: SignInProof,
        max_failures: u32,
        now: DateTime<Utc>,
    ) -> Result<SignInCheck, StoreError> {
        let check = self.store.spend_sign_in(proof, max_failures, now).await?;
        if let SignInCheck::Right(user) = &check {
            self.cache.changed(user.id()).await;
        }
        Ok(check)
    }

    async fn use_totp_step(&self, user: UserId, step: i64) -> Result<bool, StoreError> {
        let result = self.store.use_totp_step(user, step).await;
        self.cache.after_write(user, &result).await;
        result
    }

    async fn spend_recovery_code(
        &self,
        user: UserId,
        code: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.store.spend_recovery_code(user, code, now).await
    }

    async fn reset_password(
        &self,
        token: &TokenHash,
        new_hash: PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError> {
        let user = self.store.reset_password(token, new_hash, now).await?;
        if let Some(user) = &user {
            self.cache.changed(user.id()).await;
        }
        Ok(user)
    }
}

/// The session store with its ends announced to the cache, and liveness read through it.
pub struct CachedSessions {
    store: Arc<dyn RefreshTokenStore>,
    cache: Arc<UserCache>,
}

impl CachedSessions {
    pub fn new(store: Arc<dyn RefreshTokenStore>, cache: Arc<UserCache>) -> Self {
        Self { store, cache }
    }
}

#[async_trait]
impl RefreshTokenStore for CachedSessions {
    async fn start_session(
        &self,
        user: UserId,
        client: &ClientInfo,
        token: NewRefreshToken,
        now: DateTime<Utc>,
    ) -> Result<SessionId, StorageError> {
        self.store.start_session(user, client, token, now).await
    }

    async fn rotate(
        &self,
        presented: &TokenHash,
        replacement: NewRefreshToken,
        now: DateTime<Utc>,
        grace: chrono::Duration,
    ) -> Result<Rotation, StorageError> {
        let rotation = self
            .store
            .rotate(presented, replacement, now, grace)
            .await?;
        if let Rotation::Reused { session, .. } = &rotation {
            self.cache.invalidate_session(*session);
        }
        Ok(rotation)
    }

    async fn end_by_token(
        &self,
        presented: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<(UserId, SessionId)>, StorageError> {
        let ended = self.store.end_by_token(presented, now).await?;
        if let Some((_, session)) = ended {
            self.cache.invalidate_session(session);
        }
        Ok(ended)
    }

    async fn end(
        &self,
        user: UserId,
        session: SessionId,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let result = self.store.end(user, session, now).await;
        self.cache.invalidate_session(session);
        result
    }

    async fn list(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<Session>, StorageError> {
        self.store.list(user, now).await
    }

    async fn start_challenge(
        &self,
        user: UserId,
        token: &TokenHash,
        first: SignInMethod,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        self.store
            .start_challenge(user, token, first, expires_at, now)
            .await
    }

    async fn challenge(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<Challenge>, StorageError> {
        self.store.challenge(token, now).await
    }

    async fn offer_passkey(
        &self,
        token: &TokenHash,
        ceremony: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        self.store.offer_passkey(token, ceremony, now).await
    }

    async fn fail_challenge(&self, token: &TokenHash, max: u32) -> Result<(), StorageError> {
        self.store.fail_challenge(token, max).await
    }

    async fn spend_challenge(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        self.store.spend_challenge(token, now).await
    }
}
