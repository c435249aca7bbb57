//! Adding and removing the mailboxes mail is fetched from.

use super::{conflict_on_constraint, event_data};
use crate::Error;
use crate::event::{Actor, EventKind, NewEvent};
use crate::mailbox::{AfterFetch, Mailbox, MailboxId, NewMailbox};
use crate::store::Store;
use serde_json::json;

/// The shortest poll interval accepted, in seconds (servers ban clients that poll faster).
pub const MIN_POLL_SECONDS: u32 = 5;

/// Adds a mailbox. Archive folders exist only on IMAP; the same mailbox cannot be added twice.
pub async fn add_mailbox(
    store: &dyn Store,
    mailbox: NewMailbox,
    actor: Actor,
) -> Result<Mailbox, Error> {
    if mailbox.poll_seconds < MIN_POLL_SECONDS {
        return Err(Error::invalid(
            "interval",
            format!("must be at least {MIN_POLL_SECONDS} seconds"),
        ));
    }
    if !mailbox.address.protocol.is_imap() && mailbox.after_fetch != AfterFetch::Delete {
        return Err(Error::invalid(
            "after",
            "POP3 has no flags or folders: fetched messages are deleted",
        ));
    }
    store
        .write(move |tx| {
            Box::pin(async move {
                let now = crate::now();
                let shown = mailbox.address.redacted();
                let stored = tx.insert_mailbox(&mailbox, now).await.map_err(|e| {
                    conflict_on_constraint(e, || format!("the mailbox {shown} is already added"))
                })?;
                tx.insert_event(
                    &NewEvent {
                        ticket_id: None,
                        kind: EventKind::CatalogChanged,
                        actor,
                        data: event_data(
                            json!({"added": "mailbox", "id": stored.id, "mailbox": shown}),
                        ),
                    },
                    now,
                )
                .await?;
                Ok(stored)
            })
        })
        .await
}

/// Removes a mailbox; messages fetched from it stay.
pub async fn remove_mailbox(store: &dyn Store, id: MailboxId, actor: Actor) -> Result<(), Error> {
    store
        .write(move |tx| {
            Box::pin(async move {
                if !tx.delete_mailbox(id).await? {
                    return Err(Error::not_found(format!("mailbox {id}")));
                }
                tx.insert_event(
                    &NewEvent {
                        ticket_id: None,
                        kind: EventKind::CatalogChanged,
                        actor,
                        data: event_data(json!({"removed": "mailbox", "id": id})),
                    },
                    crate::now(),
                )
                .await?;
                Ok(())
            })
        })
        .await
}
