//! The caller's address: the TCP peer, or — only when the peer is a trusted proxy — the
//! nearest untrusted address in `X-Forwarded-For`.

use axum::http::HeaderMap;
use helpline_core::apikey::IpRule;
use std::net::IpAddr;

/// Resolves the client address as osTicket does: `X-Forwarded-For` is walked right to left,
/// skipping trusted proxies, and believed only when the direct peer is trusted.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpRule]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|rule| rule.allows(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    // Walk from the nearest hop outwards. Each trusted hop vouches for the one before it; the
    // first untrusted one is the client. A hop that cannot be read ends the walk at the last
    // address we could vouch for: skipping it would let a client's own forged entry further
    // left be taken as its address.
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
        .and_then(|inner| inner.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(xff: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_str(xff).expect("header"),
        );
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_header_is_ignored_from_untrusted_peers() {
        let trusted = vec!["10.0.0.1".parse().expect("rule")];
        assert_eq!(
            client_ip(ip("203.0.113.9"), &headers("198.51.100.1"), &trusted),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn nearest_untrusted_hop_is_the_client() {
        let trusted = vec!["10.0.0.0/8".parse().expect("rule")];
        let h = headers("198.51.100.1, 203.0.113.5, 10.0.0.7");
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.5"));
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        let with_port = headers("198.51.100.1, 203.0.113.5:4711, [2001:db8::1]:443");
        assert_eq!(
            client_ip(ip("10.0.0.1"), &with_port, &trusted),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn an_unreadable_hop_stops_the_walk() {
        let trusted = vec!["10.0.0.0/8".parse().expect("rule")];
        // The client forged "198.51.100.1"; a hop the proxy wrote cannot be read.
        let h = headers("198.51.100.1, garbage, 10.0.0.7");
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.7"));
    }
}
