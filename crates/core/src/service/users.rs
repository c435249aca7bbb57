//! Customers through the API.

use super::{Work, event_data};
use crate::error::Error;
use crate::event::{Actor, EventKind, NewEvent};
use crate::store::Store;
use crate::user::{CustomerContact, User};
use serde_json::json;

/// Creates a customer; an address that already belongs to one is a conflict.
pub async fn create_user(
    store: &dyn Store,
    contact: CustomerContact,
    actor: Actor,
) -> Result<User, Error> {
    store.write(create_user_work(contact, actor)).await
}

/// [`create_user`] as a unit of work.
pub fn create_user_work(contact: CustomerContact, actor: Actor) -> Work<User> {
    Box::new(move |tx| {
        Box::pin(async move {
            let now = crate::now();
            let (user, created) = tx.find_or_create_user(&contact, now).await?;
            if !created {
                return Err(Error::Conflict(format!(
                    "{} already belongs to customer {}",
                    contact.email, user.id
                )));
            }
            tx.insert_event(
                &NewEvent {
                    ticket_id: None,
                    kind: EventKind::UserCreated,
                    actor,
                    data: event_data(json!({"user_id": user.id, "email": contact.email})),
                },
                now,
            )
            .await?;
            Ok(user)
        })
    })
}
