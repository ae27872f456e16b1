//! Shelter's auth adapters.
//!
//! - [`Argon2PasswordHasher`] implements `PasswordHasher` with argon2id, off the async
//!   workers and with bounded concurrency.
//! - [`JwtTokenIssuer`] implements `TokenIssuer` with HS256 JWTs.

mod hasher;
mod jwt;

pub use hasher::{Argon2PasswordHasher, HashingParams};
pub use jwt::JwtTokenIssuer;
