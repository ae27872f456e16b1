//! The request context: where the request being served came from (request id, client
//! address, user agent) and, once authenticated, who made it. The middleware makes it once
//! per request, this module holds it for the request's task, and the audit log reads it
//! through the domain's `RequestOrigin` port ([`EdgeOrigin`]), which composition hands to
//! the persistence adapter. Nothing else writes it.
//!
//! A task-local does not follow work into a spawned task, so work that a request hands
//! off goes through [`spawn`], which carries the context along; `tokio::spawn` is
//! disallowed in this crate (clippy.toml) so that no task loses it silently.

use std::cell::RefCell;

use actix_web::HttpRequest;
use actix_web::http::header;
use ipnet::IpNet;
use shelter_domain::audit::{RequestContext, RequestOrigin};
use shelter_domain::{ClientInfo, UserId};

use super::limits::client_ip;

tokio::task_local! {
    static CONTEXT: RefCell<RequestContext>;
}

/// The context of a request, made once by the middleware: its id, the client address as
/// the rate limiter sees it (behind the trusted proxies) and the user agent.
pub fn of_request(req: &HttpRequest, request_id: &str, trusted: &[IpNet]) -> RequestContext {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|agent| String::from_utf8_lossy(agent.as_bytes()));
    RequestContext {
        request_id: Some(request_id.to_owned()),
        client: ClientInfo::new(client_ip(req, trusted), user_agent.as_deref()),
        actor: None,
    }
}

/// Runs `work` (one request) with `context` as where its events come from.
pub async fn scope<F: Future>(context: RequestContext, work: F) -> F::Output {
    CONTEXT.scope(RefCell::new(context), work).await
}

/// Notes the authenticated caller of the current request: the actor of what it changes.
pub fn set_actor(actor: UserId) {
    let _ = CONTEXT.try_with(|context| context.borrow_mut().actor = Some(actor));
}

/// The current request's context, or an empty one outside a request.
pub fn current() -> RequestContext {
    CONTEXT
        .try_with(|context| context.borrow().clone())
        .unwrap_or_default()
}

/// Spawns `work` on the runtime with the current request's context, so what it records is
/// the request's (an email asked for by address is queued after the answer, say).
#[expect(
    clippy::disallowed_methods,
    reason = "the one place that spawns, carrying the context"
)]
pub fn spawn<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(scope(current(), work))
}

/// The request origin the audit log asks: this module's context.
pub struct EdgeOrigin;

impl RequestOrigin for EdgeOrigin {
    fn current(&self) -> RequestContext {
        current()
    }
}
