//! Shelter's auth adapters.
//!
//! - [`Argon2PasswordHasher`] implements `PasswordHasher` with argon2id on a fixed pool of
//!   hashing threads that reuse their memory, behind a bounded queue.
//! - [`JwtTokenIssuer`] implements `TokenIssuer` with HS256 or `EdDSA` JWTs; [`KeyRing`]
//!   holds the Ed25519 keys every instance shares through the database.
//! - [`Sealer`] encrypts secrets at rest (signing keys, TOTP secrets).

mod hasher;
mod jwt;
pub mod keys;
mod sealing;

pub use hasher::{Argon2PasswordHasher, HashingParams, HashingPool};
pub use jwt::{JwtTokenIssuer, TokenAudience};
pub use keys::KeyRing;
pub use sealing::{Purpose, Sealer};
