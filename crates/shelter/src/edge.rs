//! The edge that every inbound adapter stands on. Rule: nothing here imports an adapter
//! (`api`, `pages`); an adapter takes what it needs from here and renders the outcome its
//! own way (problem+json, a page).
//!
//! - [`state`]: `AppState`, what every handler may use;
//! - [`middleware`] and [`cors`]: what wraps every request (request id, timing, deadline,
//!   the request context, metrics);
//! - [`context`]: the request context (request id, client, actor) the audit log records;
//! - [`body`]: reading a body (size, JSON or form, control characters, field errors);
//!   [`caller`]: the bearer token, the authenticated caller, path ids;
//! - [`requests`]: the request types both adapters parse into domain values;
//! - [`limits`]: rate-limit enforcement and the client address;
//! - [`sign_in`]: a login's steps as a value (`SignIn`);
//! - [`steps`]: the other steps two adapters both run (sign-up quota, email requests,
//!   listing users);
//! - [`browser`] and [`cookies`]: the browser session (cookies, CSRF) that the pages, and
//!   the OpenID Connect endpoints after them, share;
//! - [`refusal`]: `Refusal`, every refusal in one type, problem+json by default.

pub mod body;
pub mod browser;
pub mod caller;
pub mod context;
pub mod cookies;
pub mod cors;
pub mod limits;
pub mod middleware;
pub mod refusal;
pub mod requests;
pub mod sign_in;
pub mod state;
pub mod steps;
