//! The user cache: rows by id kept in process for `SHELTER_USER_CACHE_SECONDS`, so that an
//! authenticated request needs no query, and never trusted past a change.
//!
//! - Every write through [`CachedUsers`] drops the row here before it returns (so before the
//!   request is answered) and publishes `ChatEvent::Changed` for the other instances, whose
//!   sink calls [`UserCache::invalidate`].
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
use shelter_domain::ports::UserRepository;
use shelter_domain::realtime::{ChatBus, ChatEvent};
use shelter_domain::{
    EmailAddress, NewUser, Page, PasswordHash, PendingToken, StoreError, TokenHash, TokenPurpose,
    User, UserChanges, UserId, Username,
};

/// Rows kept at most; a row is about 300 bytes, so the cache stays under ~30 MiB.
const CAPACITY: u64 = 100_000;

#[derive(Clone)]
struct Entry {
    user: User,
    subscription: u64,
}

/// The rows, shared by every [`CachedUsers`] view of one process.
pub struct UserCache {
    rows: moka::sync::Cache<UserId, Entry>,
    epoch: AtomicU64,
    bus: Arc<dyn ChatBus>,
}

impl UserCache {
    pub fn new(lifetime: Duration, bus: Arc<dyn ChatBus>) -> Arc<Self> {
        Arc::new(Self {
            rows: moka::sync::Cache::builder()
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
        self.bus.publish(&ChatEvent::Changed { user }).await;
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

    async fn find_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError> {
        self.store.find_by_email(email).await
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<User>, StoreError> {
        self.store.find_by_username(username).await
    }

    async fn list(&self, page: Page) -> Result<(Vec<User>, u64), StoreError> {
        self.store.list(page).await
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

    async fn verify_email(
        &self,
        token: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError> {
        let user = self.store.verify_email(token, now).await?;
        if let Some(user) = &user {
            self.cache.changed(user.id).await;
        }
        Ok(user)
    }

    async fn reset_password(
        &self,
        token: &TokenHash,
        new_hash: PasswordHash,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, StoreError> {
        let user = self.store.reset_password(token, new_hash, now).await?;
        if let Some(user) = &user {
            self.cache.changed(user.id).await;
        }
        Ok(user)
    }
}
