//! Creating, listing and revoking API keys.

use super::{conflict_on_constraint, event_data};
use crate::Error;
use crate::apikey::{ApiKey, NewApiKey};
use crate::event::{Actor, EventKind, NewEvent};
use crate::ids::ApiKeyId;
use crate::store::Store;
use serde_json::json;

/// Stores a new key. Refuses a key without address rules or scopes, and a secret already in use.
pub async fn create_api_key(
    store: &dyn Store,
    key: NewApiKey,
    actor: Actor,
) -> Result<ApiKey, Error> {
    let mut problems = Vec::new();
    if key.ip_rules.is_empty() {
        problems.push(crate::FieldError::new(
            "ip",
            "at least one address or CIDR block is required (0.0.0.0/0 and ::/0 allow any)",
        ));
    }
    if key.scopes.is_empty() {
        problems.push(crate::FieldError::new(
            "scope",
            "at least one scope is required",
        ));
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    store
        .write(move |tx| {
            Box::pin(async move {
                let now = crate::now();
                let stored = tx.insert_api_key(&key, now).await.map_err(|e| {
                    conflict_on_constraint(e, || "a key with this secret already exists".into())
                })?;
                tx.insert_event(
                    &NewEvent {
                        ticket_id: None,
                        kind: EventKind::ApiKeyCreated,
                        actor,
                        data: event_data(json!({
                            "api_key_id": stored.id,
                            "scopes": stored.scopes,
                            "ip": stored.ip_rules,
                        })),
                    },
                    now,
                )
                .await?;
                Ok(stored)
            })
        })
        .await
}

/// Revokes a key; revoking an already revoked key is allowed and changes nothing.
pub async fn revoke_api_key(
    store: &dyn Store,
    id: ApiKeyId,
    actor: Actor,
) -> Result<ApiKey, Error> {
    store
        .write(move |tx| {
            Box::pin(async move {
                let now = crate::now();
                let existing = tx
                    .api_key(id)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("API key {id}")))?;
                if !existing.is_active() {
                    return Ok(existing);
                }
                let revoked = tx
                    .revoke_api_key(id, now)
                    .await?
                    .ok_or_else(|| Error::not_found(format!("API key {id}")))?;
                tx.insert_event(
                    &NewEvent {
                        ticket_id: None,
                        kind: EventKind::ApiKeyRevoked,
                        actor,
                        data: event_data(json!({"api_key_id": id})),
                    },
                    now,
                )
                .await?;
                Ok(revoked)
            })
        })
        .await
}

/// Every key, revoked ones included.
pub async fn list_api_keys(store: &dyn Store) -> Result<Vec<ApiKey>, Error> {
    Ok(store.reader().await?.api_keys().await?)
}
