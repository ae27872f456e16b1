//! The OpenID Connect provider's rules: which authorization requests are answered how, what
//! a code and the tokens issued from it are bound to, and when they stop working.
//!
//! Nothing in flight is stored. An authorization request travels in the browser (the
//! query, then the consent form's fields, checked again when they come back), and its code
//! is a sealed value ([`CodeSeal`]) that only Shelter can open. The database is written
//! once, when a code is redeemed: that row ([`OAuthStore::redeem`]) makes the code
//! single-use and is the family of every token issued from it, bound to the sign-in the
//! code came from, so ending the sign-in ends them.

mod model;
mod service;

pub use model::*;
pub use service::{OAuthPolicy, OAuthPorts, OAuthService};
