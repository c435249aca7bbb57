//! Changing a ticket's fields and its collaborators; every change is an event.

use super::Work;
use super::posting::{
    StaffRef, StatusRef, announce_change, change_status, current_status, find_staff, find_status,
    locked_ticket, record,
};
use crate::error::{Error, FieldError};
use crate::event::{Actor, EventKind};
use crate::ids::{DepartmentId, PriorityId, TopicId, UserId};
use crate::outbox::{EventType, NoticeSwitches};
use crate::ticket::{Collaborator, Ticket, TicketNumber};
use crate::user::{CustomerContact, User};
use serde_json::json;
use time::OffsetDateTime;

/// The requested changes; `None` leaves a field alone. For assignee and due date,
/// `Some(None)` clears the field.
#[derive(Debug, Clone, Default)]
pub struct TicketChanges {
    /// New status.
    pub status: Option<StatusRef>,
    /// New priority.
    pub priority: Option<PriorityId>,
    /// New department.
    pub department: Option<DepartmentId>,
    /// New help topic.
    pub topic: Option<TopicId>,
    /// New assignee, or `Some(None)` to unassign.
    pub assignee: Option<Option<StaffRef>>,
    /// New due date, or `Some(None)` to clear it.
    pub due_at: Option<Option<OffsetDateTime>>,
}

impl TicketChanges {
    /// True when nothing is asked for.
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.priority.is_none()
            && self.department.is_none()
            && self.topic.is_none()
            && self.assignee.is_none()
            && self.due_at.is_none()
    }
}

/// Applies `changes`: references are checked (unknown ones are validation errors naming the
/// field, and nothing changes), each changed field is recorded as an `edited` event with its old
/// and new value, and a status change also records `status_changed` (and `closed`/`reopened`).
pub fn update_ticket(number: TicketNumber, changes: TicketChanges, actor: Actor) -> Work<Ticket> {
    Box::new(move |tx| {
        Box::pin(async move {
            if changes.is_empty() {
                return Err(Error::invalid("body", "no field to change was given"));
            }
            let mut ticket = locked_ticket(tx, &number).await?;
            // Read the clock only once the ticket is locked, so entries posted one after
            // another on a ticket also carry increasing times.
            let now = crate::now();
            let mut problems = Vec::new();
            let status = match &changes.status {
                Some(reference) => match find_status(tx, reference, "status").await {
                    Ok(status) => Some(status),
                    Err(Error::Validation(mut fields)) => {
                        problems.append(&mut fields);
                        None
                    }
                    Err(other) => return Err(other),
                },
                None => None,
            };
            if let Some(id) = changes.priority
                && tx.priority(id).await?.is_none()
            {
                problems.push(FieldError::new(
                    "priority_id",
                    format!("no priority has id {id}"),
                ));
            }
            if let Some(id) = changes.department
                && tx.department(id).await?.is_none()
            {
                problems.push(FieldError::new(
                    "department_id",
                    format!("no department has id {id}"),
                ));
            }
            if let Some(id) = changes.topic {
                match tx.topic(id).await? {
                    Some(topic) if topic.active => {}
                    _ => problems.push(FieldError::new(
                        "topic_id",
                        format!("no active help topic has id {id}"),
                    )),
                }
            }
            let assignee = match &changes.assignee {
                Some(Some(reference)) => match find_staff(tx, reference, "assignee").await {
                    Ok(staff) => Some(Some(staff.id)),
                    Err(Error::Validation(mut fields)) => {
                        problems.append(&mut fields);
                        None
                    }
                    Err(other) => return Err(other),
                },
                Some(None) => Some(None),
                None => None,
            };
            if !problems.is_empty() {
                return Err(Error::Validation(problems));
            }

            let mut edits = serde_json::Map::new();
            if let Some(id) = changes.priority
                && id != ticket.priority_id
            {
                edits.insert("priority_id".into(), json!([ticket.priority_id, id]));
                ticket.priority_id = id;
            }
            if let Some(id) = changes.department
                && id != ticket.department_id
            {
                edits.insert("department_id".into(), json!([ticket.department_id, id]));
                ticket.department_id = id;
            }
            if let Some(id) = changes.topic
                && Some(id) != ticket.topic_id
            {
                edits.insert("topic_id".into(), json!([ticket.topic_id, id]));
                ticket.topic_id = Some(id);
            }
            if let Some(assignee) = assignee
                && assignee != ticket.assignee_id
            {
                edits.insert("assignee_id".into(), json!([ticket.assignee_id, assignee]));
                ticket.assignee_id = assignee;
            }
            if let Some(due_at) = changes.due_at
                && due_at != ticket.due_at
            {
                edits.insert(
                    "due_at".into(),
                    json!([ticket.due_at.map(rfc3339), due_at.map(rfc3339)]),
                );
                ticket.due_at = due_at;
            }
            let status = status.filter(|s| s.id != ticket.status_id);
            if edits.is_empty() && status.is_none() {
                // Nothing differs from what is stored: no write, no event, no new update time.
                return Ok(ticket);
            }
            for (field, change) in &edits {
                record(
                    tx,
                    &ticket,
                    EventKind::Edited,
                    actor,
                    json!({ field: change }),
                    now,
                )
                .await?;
            }
            ticket.updated_at = now;
            if !edits.is_empty() {
                announce_change(
                    tx,
                    &ticket,
                    EventType::TicketUpdated,
                    None,
                    actor,
                    NoticeSwitches::NONE,
                    json!({ "changes": edits }),
                    now,
                )
                .await?;
            }
            if let Some(status) = status {
                let old = current_status(tx, &ticket).await?;
                change_status(tx, &mut ticket, &old, &status, now, actor).await?;
            }
            ticket.updated_at = now;
            tx.update_ticket(&ticket).await?;
            Ok(ticket)
        })
    })
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Who to add as a collaborator: an existing customer, or an address (the customer is created
/// when new).
#[derive(Debug, Clone)]
pub enum CollaboratorRef {
    /// An existing customer.
    User(UserId),
    /// An address, with an optional name for a new customer.
    Contact(CustomerContact),
}

/// Adds a collaborator. The owner cannot be one; adding one twice changes nothing. Returns the
/// customer and whether they were added now.
pub fn add_collaborator(
    number: TicketNumber,
    who: CollaboratorRef,
    actor: Actor,
) -> Work<(User, bool)> {
    Box::new(move |tx| {
        Box::pin(async move {
            let mut ticket = locked_ticket(tx, &number).await?;
            // Read the clock only once the ticket is locked, so entries posted one after
            // another on a ticket also carry increasing times.
            let now = crate::now();
            let user = match who {
                CollaboratorRef::User(id) => tx
                    .user(id)
                    .await?
                    .ok_or_else(|| Error::invalid("user_id", format!("no customer has id {id}")))?,
                CollaboratorRef::Contact(contact) => tx.find_or_create_user(&contact, now).await?.0,
            };
            if user.id == ticket.user_id {
                return Err(Error::Conflict(format!(
                    "customer {} owns ticket {number}; an owner is not a collaborator",
                    user.id
                )));
            }
            let added = tx.add_collaborator(ticket.id, user.id, now).await?;
            if added {
                ticket.updated_at = now;
                tx.update_ticket(&ticket).await?;
                record(
                    tx,
                    &ticket,
                    EventKind::Collaborator,
                    actor,
                    json!({"added": user.id}),
                    now,
                )
                .await?;
                announce_change(
                    tx,
                    &ticket,
                    EventType::TicketUpdated,
                    None,
                    actor,
                    NoticeSwitches::NONE,
                    json!({"collaborator_added": user.id}),
                    now,
                )
                .await?;
            }
            Ok((user, added))
        })
    })
}

/// Removes a collaborator; not-found when they were not one.
pub fn remove_collaborator(number: TicketNumber, user: UserId, actor: Actor) -> Work<()> {
    Box::new(move |tx| {
        Box::pin(async move {
            let mut ticket = locked_ticket(tx, &number).await?;
            // Read the clock only once the ticket is locked, so entries posted one after
            // another on a ticket also carry increasing times.
            let now = crate::now();
            if !tx.remove_collaborator(ticket.id, user).await? {
                return Err(Error::not_found(format!(
                    "collaborator {user} on ticket {number}"
                )));
            }
            ticket.updated_at = now;
            tx.update_ticket(&ticket).await?;
            record(
                tx,
                &ticket,
                EventKind::Collaborator,
                actor,
                json!({"removed": user}),
                now,
            )
            .await?;
            announce_change(
                tx,
                &ticket,
                EventType::TicketUpdated,
                None,
                actor,
                NoticeSwitches::NONE,
                json!({"collaborator_removed": user}),
                now,
            )
            .await?;
            Ok(())
        })
    })
}

/// A ticket's collaborators with their customer records.
pub async fn collaborators_of(
    store: &dyn crate::store::Store,
    number: &TicketNumber,
) -> Result<Vec<(Collaborator, User)>, Error> {
    let mut reader = store.reader().await?;
    let ticket = reader
        .ticket_by_number(number)
        .await?
        .ok_or_else(|| Error::not_found(format!("ticket {number}")))?;
    let mut out = Vec::new();
    for collaborator in reader.collaborators(ticket.id).await? {
        if let Some(user) = reader.user(collaborator.user_id).await? {
            out.push((collaborator, user));
        }
    }
    Ok(out)
}
