//! Deciding whether a presented API key may do something, in osTicket's order of checks.

use crate::StoreError;
use crate::apikey::{ApiKey, KeySecret, Scope};
use crate::store::Store;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

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

/// How many keys a [`KeyCache`] holds at most; past that it starts over. Desks have a handful
/// of keys, so this only bounds the memory a flood of distinct valid keys could take.
const CACHED_KEYS: usize = 1024;

/// Keys read from the database recently, by the hash of their secret, so that a busy client's
/// requests do not each read its key again: that read took about a fifth of the request threads'
/// CPU time on the compatible create route.
///
/// Only keys that exist are kept (an unknown key is looked up every time, so a key created a
/// moment ago works at once), each for at most the time-to-live. That bounds how long a key
/// revoked elsewhere — by `helpline key revoke`, or on another node — keeps working here. The
/// checks themselves (address, revocation, scope) run on every request against the kept copy.
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    keys: Mutex<HashMap<String, (Instant, ApiKey)>>,
}

impl KeyCache {
    /// A cache keeping each key for `ttl`; `Duration::ZERO` keeps none (every request reads its
    /// key from the database).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The key with this hash, if it was read less than the time-to-live ago.
    fn get(&self, hash: &str) -> Option<ApiKey> {
        let keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let (read_at, key) = keys.get(hash)?;
        (read_at.elapsed() < self.ttl).then(|| key.clone())
    }

    /// Keeps `key`, read from the database at `read_at`.
    fn put(&self, hash: String, key: &ApiKey, read_at: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        if keys.len() >= CACHED_KEYS && !keys.contains_key(&hash) {
            keys.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if keys.len() >= CACHED_KEYS {
                keys.clear();
            }
        }
        keys.insert(hash, (read_at, key.clone()));
    }
}

/// Checks `presented` (the raw header value, if any) from `ip` for `scope`, reading the key from
/// `cache` when it holds it and from the database otherwise.
///
/// Returns the key on success, the refusal reason otherwise, or a store error when the
/// database cannot be asked (which must not look like a bad key).
pub async fn authorize(
    store: &dyn Store,
    cache: &KeyCache,
    presented: Option<&str>,
    ip: IpAddr,
    scope: Scope,
) -> Result<Result<ApiKey, KeyRefusal>, StoreError> {
    let Some(raw) = presented.map(str::trim).filter(|raw| !raw.is_empty()) else {
        return Ok(Err(KeyRefusal::Unknown));
    };
    let hash = KeySecret::presented(raw).hash();
    let key = match cache.get(&hash) {
        Some(key) => Some(key),
        None => {
            // Timed from before the read: the copy is never older than it looks.
            let read_at = Instant::now();
            let key = store.reader().await?.api_key_by_hash(&hash).await?;
            if let Some(key) = &key {
                cache.put(hash, key, read_at);
            }
            key
        }
    };
    Ok(match key {
        Some(key) if !key.allows_ip(ip) => Err(KeyRefusal::Unknown),
        Some(key) if !key.is_active() => Err(KeyRefusal::Inactive),
        Some(key) if !key.has_scope(scope) => Err(KeyRefusal::MissingScope),
        Some(key) => Ok(key),
        None => Err(KeyRefusal::Unknown),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ApiKeyId;

    fn key(id: i64) -> ApiKey {
        ApiKey {
            id: ApiKeyId(id),
            prefix: format!("hl_{id}"),
            ip_rules: Vec::new(),
            scopes: vec![Scope::Admin],
            note: None,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            revoked_at: None,
        }
    }

    #[test]
    fn a_key_is_kept_for_its_time_to_live_and_no_longer() {
        let cache = KeyCache::new(Duration::from_millis(200));
        cache.put("a".into(), &key(1), Instant::now());
        assert_eq!(cache.get("a").map(|k| k.id), Some(ApiKeyId(1)));
        assert!(cache.get("b").is_none(), "only the hash it was kept under");
        let long_ago = Instant::now()
            .checked_sub(Duration::from_millis(250))
            .expect("the clock is past 250 ms");
        cache.put("old".into(), &key(2), long_ago);
        assert!(cache.get("old").is_none(), "read longer ago than the TTL");
    }

    #[test]
    fn a_zero_time_to_live_keeps_nothing() {
        let cache = KeyCache::new(Duration::ZERO);
        cache.put("a".into(), &key(1), Instant::now());
        assert!(cache.get("a").is_none());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = KeyCache::new(Duration::from_secs(60));
        for id in 0..=CACHED_KEYS as i64 {
            cache.put(format!("hash{id}"), &key(id), Instant::now());
        }
        let held = cache.keys.lock().expect("unpoisoned").len();
        assert!(held <= CACHED_KEYS, "{held} keys held");
        let newest = format!("hash{CACHED_KEYS}");
        assert!(cache.get(&newest).is_some(), "the newest key is kept");
    }
}
