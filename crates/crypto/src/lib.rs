//! Shelter's cryptography adapters: password hashing, signed tokens, sealed secrets and
//! one-time codes.
//!
//! - [`Argon2PasswordHasher`] implements `PasswordHasher` with argon2id on a fixed pool of
//!   hashing threads that reuse their memory, behind a bounded queue.
//! - [`JwtTokenIssuer`] implements `TokenIssuer` with HS256 or `EdDSA` JWTs; [`KeyRing`]
//!   holds the Ed25519 keys every instance shares through the database.
//! - [`OidcTokens`] and [`SealedCodes`]: the OpenID Connect provider's RS256 tokens and its
//!   sealed authorization codes.
//! - [`Sealer`] encrypts secrets at rest (signing keys, TOTP secrets).
//! - [`TotpAuthenticator`] implements `Authenticator`: RFC 6238 codes with totp-rs.
//! - [`RelyingParty`] implements `WebAuthn`: passkey ceremonies with webauthn-rs.

mod hasher;
mod jwt;
pub mod keys;
mod oidc;
mod sealing;
mod totp;
mod webauthn;

pub use hasher::{Argon2PasswordHasher, HashingParams, HashingPool};
pub use jwt::{JwtTokenIssuer, TokenAudience};
pub use keys::KeyRing;
pub use oidc::{OidcTokens, SealedCodes, SealedValues};
pub use sealing::{Purpose, Sealer};
pub use totp::{TotpAuthenticator, code_at};
pub use webauthn::RelyingParty;
