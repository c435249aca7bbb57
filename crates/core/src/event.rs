//! The audit trail: one row for every change — who, with which credential, what, when.

use crate::ids::{ApiKeyId, EventId, StaffId, TicketId, UserId};
use time::OffsetDateTime;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A ticket was opened.
    TicketCreated,
    /// A customer record was created.
    UserCreated,
    /// A customer posted a message.
    MessagePosted,
    /// Staff posted a response.
    ResponsePosted,
    /// Staff posted an internal note.
    NotePosted,
    /// The status changed.
    StatusChanged,
    /// A closed ticket was reopened.
    Reopened,
    /// A ticket was closed.
    Closed,
    /// A field (priority, department, topic, assignee, due date) changed.
    Edited,
    /// A collaborator was added or removed.
    Collaborator,
    /// An API key was created.
    ApiKeyCreated,
    /// An API key was revoked.
    ApiKeyRevoked,
    /// A department, topic or staff member was added.
    CatalogChanged,
    /// An event carried over from another help desk that has no kind of its own here (osTicket's
    /// assigned, transferred, referred, overdue, merged…); its data names the original.
    Imported,
}

impl EventKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TicketCreated => "ticket_created",
            Self::UserCreated => "user_created",
            Self::MessagePosted => "message_posted",
            Self::ResponsePosted => "response_posted",
            Self::NotePosted => "note_posted",
            Self::StatusChanged => "status_changed",
            Self::Reopened => "reopened",
            Self::Closed => "closed",
            Self::Edited => "edited",
            Self::Collaborator => "collaborator",
            Self::ApiKeyCreated => "api_key_created",
            Self::ApiKeyRevoked => "api_key_revoked",
            Self::CatalogChanged => "catalog_changed",
            Self::Imported => "imported",
        }
    }
}

/// Who acted, and through which credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Actor {
    /// The customer who acted, if a customer did.
    pub user_id: Option<UserId>,
    /// The staff member who acted, if staff did.
    pub staff_id: Option<StaffId>,
    /// The API key used, if any.
    pub api_key_id: Option<ApiKeyId>,
}

impl Actor {
    /// An action taken through an API key.
    pub fn api_key(id: ApiKeyId) -> Self {
        Self {
            api_key_id: Some(id),
            ..Self::default()
        }
    }

    /// An action of the operator at the command line, or of the system itself.
    pub fn system() -> Self {
        Self::default()
    }
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The ticket concerned, if any.
    pub ticket_id: Option<TicketId>,
    /// What happened.
    pub kind: EventKind,
    /// Who did it.
    pub actor: Actor,
    /// Details as a JSON object (old and new values, ids).
    pub data: String,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// Row id.
    pub id: EventId,
    /// The ticket concerned.
    pub ticket_id: Option<TicketId>,
    /// What happened (stored name).
    pub kind: String,
    /// Who did it.
    pub actor: Actor,
    /// Details (JSON text).
    pub data: String,
    /// When.
    pub created_at: OffsetDateTime,
}
