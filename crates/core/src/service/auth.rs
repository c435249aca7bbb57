//! Deciding whether a presented API key may do something, in osTicket's order of checks.

use crate::StoreError;
use crate::apikey::{ApiKey, KeySecret, Scope};
use crate::store::Store;
use std::net::IpAddr;

/// Why a key was refused. The order of the variants is the order of the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRefusal {
    /// No key was sent, it is unknown, or it is not bound to the caller's address.
    #[error("Valid API key required")]
    Unknown,
    /// The key exists for this address but was revoked.
    #[error("API key not found/active or source IP not authorized")]
    Inactive,
    /// The key is valid but lacks the scope.
    #[error("API key not authorized")]
    MissingScope,
}

/// Checks `presented` (the raw header value, if any) from `ip` for `scope`.
///
/// Returns the key on success, the refusal reason otherwise, or a store error when the
/// database cannot be asked (which must not look like a bad key).
pub async fn authorize(
    store: &dyn Store,
    presented: Option<&str>,
    ip: IpAddr,
    scope: Scope,
) -> Result<Result<ApiKey, KeyRefusal>, StoreError> {
    let Some(raw) = presented.map(str::trim).filter(|raw| !raw.is_empty()) else {
        return Ok(Err(KeyRefusal::Unknown));
    };
    let hash = KeySecret::presented(raw).hash();
    let key = store.reader().await?.api_key_by_hash(&hash).await?;
    Ok(match key {
        Some(key) if !key.allows_ip(ip) => Err(KeyRefusal::Unknown),
        Some(key) if !key.is_active() => Err(KeyRefusal::Inactive),
        Some(key) if !key.has_scope(scope) => Err(KeyRefusal::MissingScope),
        Some(key) => Ok(key),
        None => Err(KeyRefusal::Unknown),
    })
}
