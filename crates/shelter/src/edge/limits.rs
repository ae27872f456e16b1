//! Rate limits at the HTTP edge: who the client is, and the 429 answer.

use std::net::IpAddr;

use actix_web::HttpRequest;

use ipnet::IpNet;
use shelter_domain::limits::{Decision, Limit};

use super::refusal::Refusal;
use super::state::AppState;

/// The client's address: the socket peer, unless the peer is a trusted proxy; then the
/// right-most `X-Forwarded-For` hop that is not one (hops left of it could be forged by the
/// client itself).
pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // Walk from the right: our proxies appended those hops, so they can be believed up to
    // the first one that is not a trusted proxy, which is the client.
    for hop in hops.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => {}
            Ok(ip) => return Some(ip),
            // An unreadable hop where the client should be: who it is cannot be told.
            Err(_) => return Some(peer),
        }
    }
    Some(
        hops.first()
            .and_then(|hop| hop.parse().ok())
            .unwrap_or(peer),
    )
}

/// Counts one request under `limit`; over it, a 429 with `Retry-After`. Without a limiter
/// (limits switched off) everything passes.
pub async fn enforce(state: &AppState, limit: Limit, key: &str) -> Result<(), Refusal> {
    let Some(limiter) = &state.limiter else {
        return Ok(());
    };
    match limiter.check(limit, key).await {
        Ok(Decision::Allowed) => Ok(()),
        Ok(Decision::Limited { retry_after }) => {
            metrics::counter!("shelter_rate_limited_total", "limit" => limit.as_str()).increment(1);
            Err(Refusal::limited(
                "Too many requests; try again later",
                retry_after
                    .as_millis()
                    .div_ceil(1000)
                    .try_into()
                    .unwrap_or(u64::MAX)
                    .max(1),
            ))
        }
        Err(_) => Err(Refusal::unavailable("The rate limiter is unavailable", 5)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn request(peer: &str, forwarded: Option<&str>) -> HttpRequest {
        let mut request = TestRequest::default().peer_addr(peer.parse().expect("socket address"));
        if let Some(value) = forwarded {
            request = request.insert_header(("x-forwarded-for", value));
        }
        request.to_http_request()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("net")).collect()
    }

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let trusted = nets(&["10.0.0.0/8"]);
        let ip = |peer, xff| client_ip(&request(peer, xff), &trusted).map(|ip| ip.to_string());
        assert_eq!(
            ip("203.0.113.9:5000", Some("1.2.3.4")).as_deref(),
            Some("203.0.113.9"),
            "untrusted peer: header ignored"
        );
        assert_eq!(
            ip("10.0.0.2:5000", Some("1.2.3.4")).as_deref(),
            Some("1.2.3.4")
        );
        assert_eq!(
            ip("10.0.0.2:5000", Some("6.6.6.6, 1.2.3.4, 10.0.0.7")).as_deref(),
            Some("1.2.3.4"),
            "the right-most untrusted hop; the forged left-most one is ignored"
        );
        assert_eq!(ip("10.0.0.2:5000", None).as_deref(), Some("10.0.0.2"));
        assert_eq!(
            ip("10.0.0.2:5000", Some("not-an-ip")).as_deref(),
            Some("10.0.0.2")
        );
        assert_eq!(
            ip("10.0.0.2:5000", Some("10.0.0.9")).as_deref(),
            Some("10.0.0.9"),
            "all hops trusted"
        );
    }
}
