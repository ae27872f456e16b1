//! Shelter's domain: the user rules, with no knowledge of HTTP, SQL, SMTP or JWT.
//!
//! - [`address`] and [`user`]: value types that cannot hold invalid data (`EmailAddress`,
//!   `Username`, `Login`, `Password`, `UserId`, `Page`) and the `User` record.
//! - [`ports`]: one trait per outside concern, and a table of every port of the domain
//!   (those told in their own model's words live beside it). Adapters in other crates
//!   implement them; with the `mocks` feature each has a mockall mock for other crates'
//!   tests.
//! - [`accounts`] and [`auth`]: `UserService` and `AuthService`, which carry every rule of the
//!   HTTP contract for accounts and login.
//! - [`token`] and [`email`]: opaque tokens (kept hashed) and the emails that carry them.
//! - [`limits`]: the rate-limit port. [`cluster`]: the cluster bus (chat, sessions that
//!   end, stale cached users) and the ports that carry what instances tell each other.
//! - [`session`]: logins and the `sid` that ties access tokens to them.
//! - [`mfa`]: the TOTP second factor (`MfaService`, the `Authenticator` port).
//! - [`passkeys`]: WebAuthn passkeys (`PasskeyService`, the `WebAuthn` and `PasskeyStore`
//!   ports); signing in with them, or with an emailed code, is in `auth`.
//! - [`identities`]: sign-in with upstream OpenID Connect providers and the accounts
//!   linked from them (`FederationService`, the `Upstream`, `IdentityStore` and `Seal`
//!   ports).
//! - [`keys`]: which signing key signs and which are published, from their dates.
//! - [`clients`]: the OAuth clients of the OpenID Connect provider (`ClientService`, the
//!   `ClientStore` port).
//! - [`oauth`]: the OpenID Connect provider (`OAuthService`): authorization requests, codes
//!   and the tokens issued from them, and its ports.
//! - [`audit`]: the audit log's events, its port, and the request origin its events record.
//! - [`error`]: one error enum per concern, in domain words.

pub mod accounts;
pub mod address;
pub mod audit;
pub mod auth;
pub mod clients;
pub mod cluster;
pub mod email;
pub mod error;
pub mod identities;
pub mod keys;
pub mod limits;
pub mod mfa;
pub mod oauth;
pub mod passkeys;
pub mod ports;
pub mod session;
pub mod token;
pub mod user;

pub use accounts::{AccountUpdate, NewAccount, UserService};
pub use address::{EmailAddress, EmailError};
pub use auth::{AuthPorts, AuthService, LoginOutcome, LoginStep, SecondFactor, SessionPolicy};
pub use email::{EmailKind, OutboundEmail, PendingToken, QueuedEmail, SpentLink, TokenPurpose};
pub use error::{
    AuthError, Dependency, HashError, StorageError, StoreError, Unavailable, UserError,
};
pub use mfa::MfaService;
pub use passkeys::{PasskeyError, PasskeyService};
pub use session::{ClientInfo, Session, SessionId};
pub use token::{SecretToken, TokenHash};
pub use user::{
    ListSink, ListedUser, Login, NewUser, Page, PaginationError, Password, PasswordError,
    PasswordHash, SignInCheck, SignInProof, StoredUser, Totp, User, UserChanges, UserFilter,
    UserId, UserSink, Username, UsernameError,
};
