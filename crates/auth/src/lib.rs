//! Shelter's auth adapters.
//!
//! - [`Argon2PasswordHasher`] implements `PasswordHasher` with argon2id on a fixed pool of
//!   hashing threads that reuse their memory, behind a bounded queue.
//! - [`JwtTokenIssuer`] implements `TokenIssuer` with HS256 JWTs.

mod hasher;
mod jwt;

pub use hasher::{Argon2PasswordHasher, HashingParams, HashingPool};
pub use jwt::{JwtTokenIssuer, TokenAudience};
