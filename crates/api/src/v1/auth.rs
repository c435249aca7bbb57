//! Who is calling: an API key from `Authorization: Bearer` or `X-API-Key`, checked against the
//! caller's address and the route's scope, then against the key's rate limit.

use super::problem::Problem;
use crate::AppState;
use crate::client_ip::client_ip;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use helpline_core::apikey::{ApiKey, Scope};
use helpline_core::event::Actor;
use helpline_core::service::auth::{KeyRefusal, authorize};
use std::net::{IpAddr, SocketAddr};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key used.
    pub key: ApiKey,
    /// The client's address.
    pub ip: IpAddr,
}

impl Caller {
    /// The audit actor for writes made by this caller.
    pub fn actor(&self) -> Actor {
        Actor::api_key(self.key.id)
    }
}

/// The presented key: `Authorization: Bearer KEY` first, else `X-API-Key: KEY`.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        });
    bearer.or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
}

/// Authenticates the request for `scope`: 401 for a missing, unknown, revoked or wrongly
/// addressed key, 403 for a key without the scope, 429 past the key's rate limit.
pub async fn authenticate(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    scope: Scope,
) -> Result<Caller, Problem> {
    let ip = client_ip(peer.ip(), headers, &state.api.trusted_proxies);
    let key = match authorize(
        &*state.store,
        &state.keys,
        presented_key(headers),
        ip,
        scope,
    )
    .await?
    {
        Ok(key) => key,
        Err(refusal @ (KeyRefusal::Unknown | KeyRefusal::Inactive)) => {
            let detail = match refusal {
                KeyRefusal::Inactive => "the API key has been revoked",
                _ => {
                    "a valid API key for this address is required (Authorization: Bearer KEY or X-API-Key: KEY)"
                }
            };
            return Err(
                Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
                    .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")),
            );
        }
        Err(KeyRefusal::MissingScope) => {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "missing-scope",
                format!("this API key lacks the scope {scope}"),
            ));
        }
    };
    if let Err(wait) = state.rate_limiter.check(key.id) {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        let limit = state.rate_limiter.per_minute();
        return Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            format!("this API key may make {limit} requests per minute; retry in {seconds} s"),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(seconds))
        .with_header(
            header::HeaderName::from_static("ratelimit-policy"),
            header_value(&format!("\"per-key\";q={limit};w=60")),
        )
        .with_header(
            header::HeaderName::from_static("ratelimit"),
            header_value(&format!("\"per-key\";r=0;t={seconds}")),
        ));
    }
    Ok(Caller { key, ip })
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}
