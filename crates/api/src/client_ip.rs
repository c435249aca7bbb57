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
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .copied()
        .find(|&ip| !is_trusted(ip))
        .or_else(|| forwarded.first().copied())
        .unwrap_or(peer)
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
    }
}
