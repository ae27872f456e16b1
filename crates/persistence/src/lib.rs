//! Shelter's SeaORM adapter: the same code and migrations on SQLite and PostgreSQL.
//!
//! - [`Database`]: the connection pool (SQLite in WAL mode with a busy timeout), migrations
//!   and a readiness ping.
//! - [`SeaOrmUserRepository`] implements the domain's `UserRepository` (users, one-time
//!   tokens, and the emails queued with them), [`SeaOrmRefreshTokenStore`] its
//!   `RefreshTokenStore` (sessions), [`SeaOrmSigningKeyStore`] its `SigningKeyStore`,
//!   [`SeaOrmEmailOutbox`] its `EmailOutbox`, [`SeaOrmClientStore`] its `ClientStore` (the
//!   OAuth client registry), [`SeaOrmOAuthStore`] its `OAuthStore` (consents and the
//!   token families of the OpenID Connect provider), [`SeaOrmLogoutOutbox`] its
//!   `LogoutOutbox` (back-channel logouts, queued where sign-ins end),
//!   [`SeaOrmPasskeyStore`] its `PasskeyStore` (passkeys and their ceremonies in flight),
//!   [`SeaOrmIdentityStore`] its `IdentityStore` (accounts at upstream providers).
//! - [`CachedUsers`] and [`CachedSessions`] put a [`UserCache`] in front of the user and
//!   session stores, kept coherent across instances through the cluster bus.
//! - `entity`: the SeaORM models, private to this crate: they are neither domain types nor
//!   HTTP DTOs.

mod audit;
mod cache;
mod clients;
mod database;
mod entity;
mod fault;
mod identities;
mod keys;
mod logouts;
mod oauth;
mod outbox;
mod passkeys;
mod pipelined;
mod sessions;
mod transaction;
mod users;

pub use audit::SeaOrmAuditLog;
pub use cache::{CachedSessions, CachedUsers, UserCache};
pub use clients::SeaOrmClientStore;
pub use database::{Database, DatabaseSettings, DatabaseUrl, Purged};
pub use identities::SeaOrmIdentityStore;
pub use keys::SeaOrmSigningKeyStore;
pub use logouts::SeaOrmLogoutOutbox;
pub use oauth::SeaOrmOAuthStore;
pub use outbox::SeaOrmEmailOutbox;
pub use passkeys::SeaOrmPasskeyStore;
pub use pipelined::APPLICATION_NAME as SHARED_READ_NAME;
pub use sessions::SeaOrmRefreshTokenStore;
pub use users::SeaOrmUserRepository;
