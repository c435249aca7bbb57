//! Opening tickets.

use super::posting::announce_change;
use super::{DeskSettings, Work, event_data};
use crate::error::{Error, FieldError};
use crate::event::{Actor, EventKind, NewEvent};
use crate::number::NumberFormat;
use crate::outbox::{EventType, NoticeSwitches};
use crate::store::{Store, TicketDraft};
use crate::thread::{Author, EntryKind, NewEntry, ThreadEntry};
use crate::ticket::{NewTicket, Ticket};
use serde_json::json;

/// How often a random number is redrawn after colliding with an existing one before giving up.
const RANDOM_NUMBER_ATTEMPTS: usize = 32;

/// How many taken sequential numbers are skipped before giving up. Numbers can be taken when
/// tickets were imported or made under another mode; the counter then moves past them once, and
/// stays past them because the skip commits with the ticket.
const SEQUENTIAL_NUMBER_ATTEMPTS: usize = 100_000;

/// A newly opened ticket and its first message.
#[derive(Debug, Clone)]
pub struct OpenedTicket {
    /// The ticket.
    pub ticket: Ticket,
    /// Its first message.
    pub first_entry: ThreadEntry,
}

/// Opens a ticket: finds or creates the customer, picks department, status and priority, draws a
/// number, stores the first message with its attachments, and records the events — all in one
/// transaction, so a failure leaves nothing behind.
///
/// Field names in validation errors: `topic_id`, `priority_id`.
pub async fn open_ticket(
    store: &dyn Store,
    settings: &DeskSettings,
    new: NewTicket,
    actor: Actor,
) -> Result<OpenedTicket, Error> {
    store.write(open_ticket_work(settings, new, actor)).await
}

/// [`open_ticket`] as a unit of work, for callers that wrap it (idempotency keys).
pub fn open_ticket_work(
    settings: &DeskSettings,
    new: NewTicket,
    actor: Actor,
) -> Work<OpenedTicket> {
    let number_format = settings.number_format.clone();
    let sends_mail = settings.sends_mail;
    Box::new(move |tx| {
        Box::pin(async move {
            let now = crate::now();
            let mut problems = Vec::new();
            let topic = match new.topic_id {
                Some(id) => match tx.topic(id).await? {
                    Some(topic) if topic.active => Some(topic),
                    Some(_) => {
                        problems.push(FieldError::new(
                            "topic_id",
                            format!("help topic {id} is not active"),
                        ));
                        None
                    }
                    None => {
                        problems.push(FieldError::new(
                            "topic_id",
                            format!("no help topic has id {id}"),
                        ));
                        None
                    }
                },
                None => None,
            };
            let requested_priority = match new.priority_id {
                Some(id) => match tx.priority(id).await? {
                    Some(priority) => Some(priority.id),
                    None => {
                        problems.push(FieldError::new(
                            "priority_id",
                            format!("no priority has id {id}"),
                        ));
                        None
                    }
                },
                None => None,
            };
            if !problems.is_empty() {
                return Err(Error::Validation(problems));
            }
            let defaults = tx.new_ticket_defaults().await?;
            let priority_id = requested_priority
                .or(topic.as_ref().and_then(|t| t.priority_id))
                .unwrap_or(defaults.priority_id);
            let department_id = topic
                .as_ref()
                .map_or(defaults.department_id, |topic| topic.department_id);

            let (user, user_created) = tx.find_or_create_user(&new.contact, now).await?;
            if user_created {
                tx.insert_event(
                    &NewEvent {
                        ticket_id: None,
                        kind: EventKind::UserCreated,
                        actor,
                        data: event_data(json!({"user_id": user.id, "email": new.contact.email})),
                    },
                    now,
                )
                .await?;
            }

            let mut draft = TicketDraft {
                number: first_number(&number_format, tx).await?,
                subject: new.subject.clone(),
                user_id: user.id,
                department_id,
                topic_id: topic.as_ref().map(|t| t.id),
                status_id: defaults.status_id,
                priority_id,
                source: new.source,
                ip: new.ip,
                created_at: now,
            };
            let mut attempts = 1;
            let ticket = loop {
                if let Some(ticket) = tx.insert_ticket(&draft).await? {
                    break ticket;
                }
                match &number_format {
                    NumberFormat::Random(pattern) if attempts < RANDOM_NUMBER_ATTEMPTS => {
                        attempts += 1;
                        draft.number = pattern.random();
                    }
                    NumberFormat::Sequential(pattern) if attempts < SEQUENTIAL_NUMBER_ATTEMPTS => {
                        attempts += 1;
                        draft.number = pattern.sequential(tx.next_sequence("ticket_number").await?);
                    }
                    _ => {
                        return Err(Error::Conflict(format!(
                            "could not find a free ticket number for the format '{}'; \
                                 widen ticket_number_format",
                            number_format.pattern().as_str()
                        )));
                    }
                }
            };

            let first_entry = tx
                .insert_entry(
                    ticket.id,
                    &NewEntry {
                        kind: EntryKind::Message,
                        author: Author::User(user.id),
                        display_name: user.name.clone(),
                        title: Some(new.subject.as_str().to_owned()),
                        body: new.message,
                        source: new.source,
                        ip: new.ip,
                        api_key_id: actor.api_key_id,
                        mail: new.mail,
                        flags: new.flags,
                        attachments: new.attachments,
                    },
                    now,
                )
                .await?;
            tx.insert_event(
                &NewEvent {
                    ticket_id: Some(ticket.id),
                    kind: EventKind::TicketCreated,
                    actor: Actor {
                        user_id: Some(user.id),
                        ..actor
                    },
                    data: event_data(json!({
                        "number": ticket.number,
                        "source": ticket.source,
                        "entry_id": first_entry.id,
                        "notify": new.notify,
                    })),
                },
                now,
            )
            .await?;
            announce_change(
                tx,
                &ticket,
                EventType::TicketCreated,
                Some(first_entry.id),
                Actor {
                    user_id: Some(user.id),
                    ..actor
                },
                NoticeSwitches {
                    alert: new.notify.alert && sends_mail,
                    customer: new.notify.autorespond && sends_mail,
                },
                json!({"entry_id": first_entry.id, "source": ticket.source}),
                now,
            )
            .await?;
            Ok(OpenedTicket {
                ticket,
                first_entry,
            })
        })
    })
}

async fn first_number(
    format: &NumberFormat,
    tx: &mut dyn crate::store::Writer,
) -> Result<crate::ticket::TicketNumber, Error> {
    Ok(match format {
        NumberFormat::Random(pattern) => pattern.random(),
        NumberFormat::Sequential(pattern) => {
            pattern.sequential(tx.next_sequence("ticket_number").await?)
        }
    })
}
