//! Idempotency keys: a client may repeat a write with the same `Idempotency-Key` and get the
//! first answer back, with no second write — even when the repeats arrive at the same time.
//!
//! The key is claimed inside the same transaction as the write it guards, and the answer is
//! stored in that transaction too: either both commit or neither does. A concurrent repeat
//! blocks on the claim (PostgreSQL's unique index, SQLite's single writer) until the first
//! commits, then finds the stored answer.

use super::Work;
use crate::error::Error;
use crate::ids::ApiKeyId;
use crate::store::Store;
use time::Duration;

/// How long a key and its answer are kept.
pub const RETENTION: Duration = Duration::hours(24);

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// One idempotent request: whose key, which key, and a hash of what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Keys are per API key: two clients may use the same value.
    pub api_key_id: ApiKeyId,
    /// The header's value.
    pub key: String,
    /// Hex SHA-256 over the method, path and body.
    pub request_hash: String,
}

impl IdempotencyKey {
    /// Checks the header value and hashes the request.
    pub fn new(
        api_key_id: ApiKeyId,
        key: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<Self, Error> {
        let key = key.trim();
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(Error::invalid(
                "Idempotency-Key",
                format!("must be 1 to {MAX_KEY_LEN} printable ASCII characters"),
            ));
        }
        let mut request = Vec::with_capacity(method.len() + path.len() + body.len() + 2);
        request.extend_from_slice(method.as_bytes());
        request.push(b' ');
        request.extend_from_slice(path.as_bytes());
        request.push(b'\n');
        request.extend_from_slice(body);
        Ok(Self {
            api_key_id,
            key: key.to_owned(),
            request_hash: crate::attachment::sha256_hex(&request),
        })
    }
}

/// The answer stored for a key, replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// Body (JSON text).
    pub body: String,
}

/// What a stored key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Hash of the request that first used the key.
    pub request_hash: String,
    /// Its answer.
    pub response: StoredResponse,
}

/// The outcome of an idempotent write.
#[derive(Debug)]
pub enum Idempotent<T> {
    /// The write ran now.
    Fresh(T),
    /// The key was used before for the same request: here is the first answer.
    Replayed(StoredResponse),
}

/// Runs `work` once per key. Without a key it simply runs. With a key seen before: the same
/// request replays the stored answer; a different request is refused with
/// [`Error::KeyReuse`]. `render` turns the result into the answer to store.
pub async fn run_idempotent<T: Send + 'static>(
    store: &dyn Store,
    key: Option<IdempotencyKey>,
    render: impl FnOnce(&T) -> StoredResponse + Send + 'static,
    work: Work<T>,
) -> Result<Idempotent<T>, Error> {
    let Some(key) = key else {
        return store.write(work).await.map(Idempotent::Fresh);
    };
    store
        .write(move |tx| {
            Box::pin(async move {
                let now = crate::now();
                if let Some(existing) = tx.claim_idempotency_key(&key, now - RETENTION, now).await?
                {
                    if existing.request_hash != key.request_hash {
                        return Err(Error::KeyReuse(format!(
                            "Idempotency-Key '{}' was already used for a different request",
                            key.key
                        )));
                    }
                    return Ok(Idempotent::Replayed(existing.response));
                }
                let value = work(tx).await?;
                let response = render(&value);
                tx.complete_idempotency_key(&key, &response).await?;
                Ok(Idempotent::Fresh(value))
            })
        })
        .await
}

/// Deletes keys older than the retention period; returns how many.
pub async fn purge_expired_keys(store: &dyn Store) -> Result<u64, Error> {
    store
        .write(|tx| {
            Box::pin(async move { Ok(tx.purge_idempotency_keys(crate::now() - RETENTION).await?) })
        })
        .await
}
