//! Posting into an existing ticket: customer messages (the client reply API), staff replies and
//! internal notes. Each is one unit of work; the ticket row is locked first so concurrent posts
//! on one ticket apply one after another and its counters stay exact.

use super::{DeskSettings, Work, event_data};
use crate::attachment::NewAttachment;
use crate::body::MessageBody;
use crate::catalog::{Staff, StatusState, TicketStatus};
use crate::email::EmailAddress;
use crate::error::Error;
use crate::event::{Actor, EventKind, NewEvent};
use crate::ids::EntryId;
use crate::ids::{StaffId, StatusId, UserId};
use crate::outbox::{Announcement, EventType, NoticeSwitches, TicketSnapshot, announce};
use crate::store::Writer;
use crate::thread::{Author, EntryFlags, EntryKind, MailIds, NewEntry, ThreadEntry};
use crate::ticket::{Source, Ticket, TicketNumber};
use serde_json::json;
use std::net::IpAddr;
use time::OffsetDateTime;

/// Who a customer message claims to come from.
#[derive(Debug, Clone)]
pub enum CustomerRef {
    /// One of the customer's addresses.
    Email(EmailAddress),
    /// The customer's id.
    Id(UserId),
    /// A sender who is not a participant, accepted only because the mail's headers thread it
    /// onto the ticket: posted with a warning flag, reopening nothing.
    Unverified {
        /// The display name from the mail.
        name: Option<String>,
        /// The sender's address.
        email: EmailAddress,
    },
}

/// Who a staff reply or note comes from: a username, an address or an id.
#[derive(Debug, Clone)]
pub enum StaffRef {
    /// Login name (case-insensitive).
    Username(String),
    /// Address (case-insensitive).
    Email(EmailAddress),
    /// Row id.
    Id(StaffId),
}

/// A status named by id or (case-insensitive) name.
#[derive(Debug, Clone)]
pub enum StatusRef {
    /// Row id.
    Id(StatusId),
    /// Name, e.g. `Resolved`.
    Name(String),
}

/// A checked customer message.
#[derive(Debug, Clone)]
pub struct CustomerMessage {
    /// The poster; must be the owner or a collaborator.
    pub poster: CustomerRef,
    /// The body.
    pub body: MessageBody,
    /// Files.
    pub attachments: Vec<NewAttachment>,
    /// The customer's address.
    pub ip: Option<IpAddr>,
    /// Channel.
    pub source: Source,
    /// Mail headers, when it came by mail.
    pub mail: MailIds,
    /// Whether it may reopen a closed ticket (not for automatic mail).
    pub may_reopen: bool,
    /// Marks from mail intake.
    pub flags: EntryFlags,
    /// Whether staff are alerted (the API's `notify`; off for automatic mail).
    pub notify: bool,
}

/// A checked staff reply.
#[derive(Debug, Clone)]
pub struct StaffReply {
    /// The staff member replying.
    pub staff: StaffRef,
    /// The body.
    pub body: MessageBody,
    /// Files.
    pub attachments: Vec<NewAttachment>,
    /// A status to set in the same transaction.
    pub status: Option<StatusRef>,
    /// Whether the reply is mailed to the customer and collaborators (the API's `notify`).
    pub notify: bool,
}

/// Who an internal note is from.
#[derive(Debug, Clone)]
pub enum NoteAuthor {
    /// A staff member.
    Staff(StaffRef),
    /// A free-form name (an integration, "Monitoring").
    Named(String),
}

/// A checked internal note.
#[derive(Debug, Clone)]
pub struct InternalNote {
    /// Its author.
    pub author: NoteAuthor,
    /// Optional title.
    pub title: Option<String>,
    /// The body.
    pub body: MessageBody,
    /// Mail headers, when it came by mail.
    pub mail: MailIds,
    /// Marks from mail intake.
    pub flags: EntryFlags,
    /// Whether staff get the internal-note alert (where it is switched on).
    pub notify: bool,
}

/// The ticket after a post, and the new entry.
#[derive(Debug, Clone)]
pub struct Posted {
    /// The ticket as it is now.
    pub ticket: Ticket,
    /// The entry posted.
    pub entry: ThreadEntry,
}

/// Loads and locks a ticket for change, or fails with not-found.
pub(crate) async fn locked_ticket(
    tx: &mut dyn Writer,
    number: &TicketNumber,
) -> Result<Ticket, Error> {
    tx.lock_ticket(number)
        .await?
        .ok_or_else(|| Error::not_found(format!("ticket {number}")))
}

/// The client reply: a customer's message on an existing ticket.
///
/// Only the owner or a collaborator may post (anyone else: `Forbidden`, nothing stored). The
/// message clears the answered flag and sets the last-message time; a closed ticket whose status
/// allows it is reopened (`Conflict` when it does not). The staff alert it may ask for is sent
/// only when `settings` says this server sends mail.
pub fn post_customer_message(
    settings: &DeskSettings,
    number: TicketNumber,
    message: CustomerMessage,
    actor: Actor,
) -> Work<Posted> {
    let sends_mail = settings.sends_mail;
    Box::new(move |tx| {
        Box::pin(async move {
            let mut ticket = locked_ticket(tx, &number).await?;
            // Read the clock only once the ticket is locked, so entries posted one after
            // another on a ticket also carry increasing times.
            let now = crate::now();
            let collaborators = tx.collaborators(ticket.id).await?;
            let is_participant =
                |id: UserId| id == ticket.user_id || collaborators.iter().any(|c| c.user_id == id);
            let (author, display_name, poster_id, may_reopen, flags) = match &message.poster {
                CustomerRef::Unverified { name, email } => {
                    let shown = match name {
                        Some(name) => format!("{name} <{email}>"),
                        None => email.to_string(),
                    };
                    let flags = EntryFlags {
                        unknown_sender: true,
                        ..message.flags
                    };
                    (Author::System, shown, None, false, flags)
                }
                reference => {
                    let poster = match reference {
                        CustomerRef::Email(email) => tx.user_by_email(email).await?,
                        CustomerRef::Id(id) => tx.user(*id).await?,
                        CustomerRef::Unverified { .. } => None,
                    };
                    let Some(poster) = poster.filter(|user| is_participant(user.id)) else {
                        return Err(Error::Forbidden(format!(
                            "only the owner of ticket {number} or one of its collaborators may \
                             post messages on it"
                        )));
                    };
                    (
                        Author::User(poster.id),
                        poster.name.clone(),
                        Some(poster.id),
                        message.may_reopen,
                        message.flags,
                    )
                }
            };
            let status = current_status(tx, &ticket).await?;
            if status.state != StatusState::Open && may_reopen {
                if !status.allow_reopen {
                    return Err(Error::Conflict(format!(
                        "ticket {number} is {} and cannot be reopened",
                        status.name.to_lowercase()
                    )));
                }
                let open = tx.default_status().await?;
                change_status(tx, &mut ticket, &status, &open, now, actor).await?;
            }
            let entry = tx
                .insert_entry(
                    ticket.id,
                    &NewEntry {
                        kind: EntryKind::Message,
                        author,
                        display_name,
                        title: None,
                        body: message.body,
                        source: message.source,
                        ip: message.ip,
                        api_key_id: actor.api_key_id,
                        mail: message.mail,
                        flags,
                        attachments: message.attachments,
                    },
                    now,
                )
                .await?;
            ticket.last_message_at = Some(now);
            ticket.is_answered = false;
            ticket.updated_at = now;
            tx.update_ticket(&ticket).await?;
            record(
                tx,
                &ticket,
                EventKind::MessagePosted,
                Actor {
                    user_id: poster_id,
                    ..actor
                },
                json!({
                    "entry_id": entry.id,
                    "collaborator": poster_id.is_some_and(|id| id != ticket.user_id),
                    "unknown_sender": poster_id.is_none(),
                }),
                now,
            )
            .await?;
            announce_change(
                tx,
                &ticket,
                EventType::MessageCreated,
                Some(entry.id),
                Actor {
                    user_id: poster_id,
                    ..actor
                },
                NoticeSwitches {
                    alert: message.notify && sends_mail,
                    customer: false,
                },
                json!({"entry_id": entry.id}),
                now,
            )
            .await?;
            Ok(Posted { ticket, entry })
        })
    })
}

/// A staff reply: visible to the customer, sets the last-response time and the answered flag,
/// and may change the status in the same transaction. The customer is mailed only when
/// `settings` says this server sends mail.
pub fn post_staff_reply(
    settings: &DeskSettings,
    number: TicketNumber,
    reply: StaffReply,
    actor: Actor,
) -> Work<Posted> {
    let sends_mail = settings.sends_mail;
    Box::new(move |tx| {
        Box::pin(async move {
            let mut ticket = locked_ticket(tx, &number).await?;
            // Read the clock only once the ticket is locked, so entries posted one after
            // another on a ticket also carry increasing times.
            let now = crate::now();
            let staff = find_staff(tx, &reply.staff, "staff").await?;
            let new_status = match &reply.status {
                Some(reference) => Some(find_status(tx, reference, "status").await?),
                None => None,
            };
            let entry = tx
                .insert_entry(
                    ticket.id,
                    &NewEntry {
                        kind: EntryKind::Response,
                        author: Author::Staff(staff.id),
                        display_name: staff.name.clone(),
                        title: None,
                        body: reply.body,
                        source: Source::Api,
                        ip: None,
                        api_key_id: actor.api_key_id,
                        mail: MailIds::default(),
                        flags: EntryFlags::default(),
                        attachments: reply.attachments,
                    },
                    now,
                )
                .await?;
            let staff_actor = Actor {
                staff_id: Some(staff.id),
                ..actor
            };
            if let Some(new_status) = new_status {
                let old = current_status(tx, &ticket).await?;
                change_status(tx, &mut ticket, &old, &new_status, now, staff_actor).await?;
            }
            ticket.last_response_at = Some(now);
            ticket.is_answered = true;
            ticket.updated_at = now;
            tx.update_ticket(&ticket).await?;
            record(
                tx,
                &ticket,
                EventKind::ResponsePosted,
                staff_actor,
                json!({"entry_id": entry.id}),
                now,
            )
            .await?;
            announce_change(
                tx,
                &ticket,
                EventType::ReplyCreated,
                Some(entry.id),
                staff_actor,
                NoticeSwitches::from_notify(reply.notify && sends_mail),
                json!({"entry_id": entry.id}),
                now,
            )
            .await?;
            Ok(Posted { ticket, entry })
        })
    })
}

/// An internal note, never shown to customers. Its staff alert is sent only when `settings` says
/// this server sends mail.
pub fn post_internal_note(
    settings: &DeskSettings,
    number: TicketNumber,
    note: InternalNote,
    actor: Actor,
) -> Work<Posted> {
    let sends_mail = settings.sends_mail;
    Box::new(move |tx| {
        Box::pin(async move {
            let mut ticket = locked_ticket(tx, &number).await?;
            // Read the clock only once the ticket is locked, so entries posted one after
            // another on a ticket also carry increasing times.
            let now = crate::now();
            let (author, display_name, note_actor) = match &note.author {
                NoteAuthor::Staff(reference) => {
                    let staff = find_staff(tx, reference, "staff").await?;
                    let note_actor = Actor {
                        staff_id: Some(staff.id),
                        ..actor
                    };
                    (Author::Staff(staff.id), staff.name, note_actor)
                }
                NoteAuthor::Named(name) => (Author::System, name.clone(), actor),
            };
            let entry = tx
                .insert_entry(
                    ticket.id,
                    &NewEntry {
                        kind: EntryKind::Note,
                        author,
                        display_name,
                        title: note.title,
                        body: note.body,
                        source: if note.mail.message_id.is_some() {
                            Source::Email
                        } else {
                            Source::Api
                        },
                        ip: None,
                        api_key_id: actor.api_key_id,
                        mail: note.mail,
                        flags: note.flags,
                        attachments: Vec::new(),
                    },
                    now,
                )
                .await?;
            ticket.updated_at = now;
            tx.update_ticket(&ticket).await?;
            record(
                tx,
                &ticket,
                EventKind::NotePosted,
                note_actor,
                json!({"entry_id": entry.id}),
                now,
            )
            .await?;
            announce_change(
                tx,
                &ticket,
                EventType::NoteCreated,
                Some(entry.id),
                note_actor,
                NoticeSwitches {
                    alert: note.notify && sends_mail,
                    customer: false,
                },
                json!({"entry_id": entry.id}),
                now,
            )
            .await?;
            Ok(Posted { ticket, entry })
        })
    })
}

/// The ticket's current status row.
pub(crate) async fn current_status(
    tx: &mut dyn Writer,
    ticket: &Ticket,
) -> Result<TicketStatus, Error> {
    tx.status(ticket.status_id).await?.ok_or_else(|| {
        Error::Store(crate::StoreError::Corrupt(format!(
            "ticket {} has unknown status {}",
            ticket.number, ticket.status_id
        )))
    })
}

/// Moves a ticket from `old` to `new` status, keeping closed/reopened times and recording
/// `status_changed` plus `closed` or `reopened` as the state changes.
pub(crate) async fn change_status(
    tx: &mut dyn Writer,
    ticket: &mut Ticket,
    old: &TicketStatus,
    new: &TicketStatus,
    now: OffsetDateTime,
    actor: Actor,
) -> Result<(), Error> {
    if old.id == new.id {
        return Ok(());
    }
    ticket.status_id = new.id;
    ticket.updated_at = now;
    let was_open = old.state == StatusState::Open;
    let is_open = new.state == StatusState::Open;
    if was_open && !is_open {
        ticket.closed_at = Some(now);
    } else if !was_open && is_open {
        ticket.closed_at = None;
        ticket.reopened_at = Some(now);
    }
    record(
        tx,
        ticket,
        EventKind::StatusChanged,
        actor,
        json!({"from": {"id": old.id, "name": old.name}, "to": {"id": new.id, "name": new.name}}),
        now,
    )
    .await?;
    if was_open != is_open {
        let kind = if is_open {
            EventKind::Reopened
        } else {
            EventKind::Closed
        };
        record(tx, ticket, kind, actor, json!({"status": new.name}), now).await?;
    }
    announce_change(
        tx,
        ticket,
        EventType::StatusChanged,
        None,
        actor,
        NoticeSwitches::NONE,
        json!({
            "from": {"id": old.id, "name": old.name, "state": old.state},
            "to": {"id": new.id, "name": new.name, "state": new.state},
        }),
        now,
    )
    .await?;
    Ok(())
}

/// Writes the outbox announcement of a change to `ticket`, in the change's transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn announce_change(
    tx: &mut dyn Writer,
    ticket: &Ticket,
    event: EventType,
    entry_id: Option<EntryId>,
    actor: Actor,
    notices: NoticeSwitches,
    data: serde_json::Value,
    now: OffsetDateTime,
) -> Result<(), Error> {
    announce(
        tx,
        &Announcement {
            event,
            ticket_id: ticket.id,
            entry_id,
            actor,
            notices,
            data,
            occurred_at: now,
            ticket: Some(TicketSnapshot::of(ticket)),
        },
    )
    .await?;
    Ok(())
}

/// Finds an active staff member; an unknown one is a validation error on `field`.
pub(crate) async fn find_staff(
    tx: &mut dyn Writer,
    reference: &StaffRef,
    field: &str,
) -> Result<Staff, Error> {
    let all = tx.staff().await?;
    let found = all.into_iter().find(|s| match reference {
        StaffRef::Id(id) => s.id == *id,
        StaffRef::Username(name) => s.username.eq_ignore_ascii_case(name),
        StaffRef::Email(email) => s.email.key() == email.key(),
    });
    match found {
        Some(staff) if staff.active => Ok(staff),
        Some(staff) => Err(Error::invalid(
            field,
            format!("staff member '{}' is not active", staff.username),
        )),
        None => Err(Error::invalid(field, "no such staff member")),
    }
}

/// Finds a status by id or name; an unknown one is a validation error on `field`.
pub(crate) async fn find_status(
    tx: &mut dyn Writer,
    reference: &StatusRef,
    field: &str,
) -> Result<TicketStatus, Error> {
    let all = tx.statuses().await?;
    all.into_iter()
        .find(|s| match reference {
            StatusRef::Id(id) => s.id == *id,
            StatusRef::Name(name) => s.name.eq_ignore_ascii_case(name.trim()),
        })
        .ok_or_else(|| Error::invalid(field, "no such status"))
}

/// Records an event on a ticket.
pub(crate) async fn record(
    tx: &mut dyn Writer,
    ticket: &Ticket,
    kind: EventKind,
    actor: Actor,
    data: serde_json::Value,
    now: OffsetDateTime,
) -> Result<(), Error> {
    tx.insert_event(
        &NewEvent {
            ticket_id: Some(ticket.id),
            kind,
            actor,
            data: event_data(data),
        },
        now,
    )
    .await?;
    Ok(())
}
